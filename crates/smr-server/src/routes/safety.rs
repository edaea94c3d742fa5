//! `GET Patient/{id}/$safety-check`: the patient's whole current medication record reviewed
//! by the medicines safety rules (issue 11) — interactions, duplication, allergies, renal
//! dosing — as a `collection` Bundle of DetectedIssues, with an OperationOutcome listing any
//! check that could not be made (see docs/safety.md).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use crate::app::AppState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::http::fhir_json_response;

pub async fn operation(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let bundle = state.app.safety_check(&ctx, &id).await?;
    Ok(fhir_json_response(StatusCode::OK, bundle.to_string()))
}
