//! PINCER prescribing-safety indicators (issue 11; docs/pincer.md):
//! - `GET /fhir/Patient/{id}/$pincer[?date=YYYY-MM-DD]`: every indicator for one patient as a
//!   FHIR `Parameters` (who is flagged, by which entries, with the source);
//! - `GET /analytics/pincer?level=practice|sub-icb|icb&month=YYYY-MM`: the aggregates, after
//!   disclosure control, as JSON (analysts and administrators).

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::http::fhir_json_response;

use super::{one_param as one, query_params as params};

pub async fn patient(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let params = params(raw.as_deref());
    // Other parameters (`_format`, `_pretty`) change nothing.
    let date = one(&params, "date")?;
    let parameters = state.app.pincer_for_patient(&ctx, &id, date).await?;
    Ok(fhir_json_response(StatusCode::OK, parameters.to_string()))
}

pub async fn aggregates(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let params = params(raw.as_deref());
    let level = one(&params, "level")?.unwrap_or("practice");
    let month = one(&params, "month")?
        .ok_or_else(|| ApiError::bad_request("month (YYYY-MM) is required"))?;
    let body = state.app.pincer_aggregates(&ctx, level, month).await?;
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
