//! `GET Patient/{id}/$medication-record`: the single medication record (issue 8), or with
//! `?medicine=CODE` one medicine's timeline across settings. `?stopped-within=` (days, or a
//! number with a unit: `30d`, `12wk`, `6mo`, `1a`) changes how long stopped medicines stay.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use smr_app::medication_record::RecordQuery;

use crate::app::AppState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::http::{base_url, fhir_json_response};

pub async fn operation(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let query = parse(raw.as_deref().unwrap_or(""))?;
    let base = base_url(&state, &headers);
    let bundle = state
        .app
        .medication_record(&ctx, &id, &query, &base)
        .await?;
    Ok(fhir_json_response(StatusCode::OK, bundle.to_string()))
}

fn parse(raw: &str) -> Result<RecordQuery, ApiError> {
    let mut query = RecordQuery::default();
    for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
        match name.as_ref() {
            "stopped-within" => {
                query.stopped_within_days = smr_app::medication_record::parse_stopped_within(&value).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "stopped-within '{value}' is not a number of days (e.g. 90) or a number with a unit (30d, 12wk, 6mo, 1a)"
                    ))
                })?;
            }
            "medicine" => {
                let value = value.trim();
                if value.is_empty() || value.ends_with('|') {
                    return Err(ApiError::bad_request(
                        "medicine must be a code, or system|code",
                    ));
                }
                query.medicine = Some(value.to_owned());
            }
            // Other parameters (`_format`, `_pretty`, ones SMR does not know) change nothing.
            _ => {}
        }
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_read_and_bad_ones_refused() {
        assert_eq!(parse("").ok(), Some(RecordQuery::default()));
        let q = parse("stopped-within=30&medicine=https%3A%2F%2Fdmd.nhs.uk%7C320030001").ok();
        assert_eq!(q.as_ref().map(|q| q.stopped_within_days), Some(30));
        assert_eq!(
            q.and_then(|q| q.medicine).as_deref(),
            Some("https://dmd.nhs.uk|320030001")
        );
        assert!(parse("stopped-within=soon").is_err());
        assert!(parse("medicine=").is_err());
    }
}
