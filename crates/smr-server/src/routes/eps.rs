//! `POST /fhir/$process-message`: an NHS EPS FHIR message (prescription order, cancellation,
//! dispense notification) stored by `App::process_message`, answered with a response message
//! (`MessageHeader.response` naming the request's header: `ok`, or `fatal-error` with the
//! OperationOutcome). A body that is not a message with a readable header gets a bare
//! OperationOutcome (400). Contract: docs/eps.md.

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use smr_eps::ResponseCode;
use smr_fhir::outcome::operation_outcome;

use crate::app::AppState;
use crate::auth::Ctx;
use crate::bundle::now_micros;
use crate::error::ApiError;
use crate::http::{self, BodyKind, base_url, fhir_json_response};

pub async fn process_message(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    request: Request<Body>,
) -> Result<Response, ApiError> {
    let (headers, bundle) = http::read_json(&state, request, BodyKind::Resource).await?;
    let endpoint = format!("{}/$process-message", base_url(&state, &headers));
    let result = state.app.process_message(&ctx, &bundle).await;
    // Read again here only to answer: the use case read it already and refused what it is not.
    let Ok(header) = smr_eps::read_header(&bundle) else {
        return Err(match result {
            Err(e) => e.into(),
            Ok(_) => ApiError::internal(),
        });
    };
    let (status, code, outcome) = match result {
        Ok(done) => {
            let mut issues: Vec<Value> = done
                .entries
                .iter()
                .map(|e| {
                    json!({"severity": "information", "code": "informational",
                           "diagnostics": format!("{} {}", e.reference, e.outcome.as_str())})
                })
                .collect();
            if issues.is_empty() {
                issues.push(json!({"severity": "information", "code": "informational",
                                   "diagnostics": "nothing to store"}));
            }
            (
                StatusCode::OK,
                ResponseCode::Ok,
                json!({"resourceType": "OperationOutcome", "issue": issues}),
            )
        }
        Err(e) => {
            let api = ApiError::from(e);
            (
                api.status,
                ResponseCode::FatalError,
                operation_outcome(&api.issues),
            )
        }
    };
    let ids = [(); 3].map(|()| uuid::Uuid::new_v4().to_string());
    let body = smr_eps::response(
        &header,
        [&ids[0], &ids[1], &ids[2]],
        &endpoint,
        &smr_fhir::datetime::format_instant(now_micros()),
        code,
        outcome,
    );
    Ok(fhir_json_response(status, body.to_string()))
}
