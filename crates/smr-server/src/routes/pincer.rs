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

fn params(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn one<'a>(params: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, ApiError> {
    let mut values = params
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str());
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::bad_request(format!(
            "{name} given more than once"
        )));
    }
    Ok(first)
}

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
