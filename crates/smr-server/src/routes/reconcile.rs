//! Medicines reconciliation (issue 11, docs/reconciliation.md):
//! - `POST Patient/{id}/$reconcile`: a Parameters with `target` (and optionally `source`,
//!   by default the patient's SMR record), each a List or a Bundle; answered with a `List`
//!   (mode `changes`) classifying each medicine. Nothing is stored.
//! - `POST Patient/{id}/$reconcile-confirm`: the answer with a decision per line; writes the
//!   reconciled MedicationStatements and the reconciliation List in one transaction and
//!   answers 201 with the stored List.
//! - `GET Patient/{id}/$reconcile-timeliness`: NICE QS120 timeliness as a Parameters.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::Response;

use crate::app::AppState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::http::{self, BodyKind, base_url, fhir_json_response};

pub async fn compare(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    request: Request<Body>,
) -> Result<Response, ApiError> {
    let (_, parameters) = http::read_json(&state, request, BodyKind::Resource).await?;
    let list = state.app.reconcile(&ctx, &id, &parameters).await?;
    Ok(fhir_json_response(StatusCode::OK, list.to_string()))
}

pub async fn confirm(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    request: Request<Body>,
) -> Result<Response, ApiError> {
    let (headers, parameters) = http::read_json(&state, request, BodyKind::Resource).await?;
    let done = state.app.reconcile_confirm(&ctx, &id, &parameters).await?;
    let location = done
        .list
        .get("id")
        .and_then(|v| v.as_str())
        .map(|list_id| format!("{}/List/{list_id}/_history/1", base_url(&state, &headers)));
    let mut response = fhir_json_response(StatusCode::CREATED, done.list.to_string());
    if let Some(v) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

pub async fn timeliness(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let parameters = state.app.reconcile_timeliness(&ctx, &id).await?;
    Ok(fhir_json_response(StatusCode::OK, parameters.to_string()))
}
