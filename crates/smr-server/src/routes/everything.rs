//! Instance operations: `Patient/{id}/$everything`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use smr_fhir::IssueCode;

use crate::app::AppState;
use crate::auth::Ctx;
use crate::bundle::BundleWriter;
use crate::error::ApiError;
use crate::http::{base_url, fhir_json_response};

pub async fn operation(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path((res_type, id, operation)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if res_type != "Patient" || operation != "$everything" {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            IssueCode::NotSupported,
            format!("operation {res_type}/{{id}}/{operation} is not supported"),
        ));
    }
    let resources = state.app.everything(&ctx, &id).await?;
    let base = base_url(&state, &headers);
    let self_link = format!("{base}/Patient/{id}/$everything");
    let mut bundle = BundleWriter::new(
        "searchset",
        Some(resources.len() as i64),
        &[("self", self_link)],
    );
    for r in &resources {
        bundle.search_entry(&base, r, "match");
    }
    Ok(fhir_json_response(StatusCode::OK, bundle.finish()))
}
