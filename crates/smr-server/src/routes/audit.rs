//! `GET /fhir/AuditEvent?…`: the audit trail, as the caller may list it (a patient: who
//! accessed their record, when, in which role and why; an administrator: their
//! organisation's users; a back-end system: everything).
//!
//! Parameters: `patient` (`Patient/{id}` or `{id}`), `date` with `ge`/`gt`/`le`/`lt`
//! prefixes, `purpose=BTG` (break-glass only), `_count`, `_cursor`. Newest first.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use smr_app::RequestContext;
use smr_fhir::datetime;
use smr_fhir::query::{DEFAULT_COUNT, MAX_COUNT};
use smr_store::AuditQuery;

use super::search::link;
use crate::app::AppState;
use crate::bundle::BundleWriter;
use crate::error::ApiError;
use crate::http::{base_url, fhir_json_response};

pub(crate) async fn search(
    state: &AppState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    pairs: &[(String, String)],
) -> Result<Response, ApiError> {
    let mut query = AuditQuery {
        count: DEFAULT_COUNT,
        ..AuditQuery::default()
    };
    let mut only_id = None;
    for (key, value) in pairs {
        match key.as_str() {
            "_id" => only_id = Some(value.clone()),
            "patient" | "entity" => {
                let id = value.strip_prefix("Patient/").unwrap_or(value);
                if id.is_empty() || id.contains('/') {
                    return Err(ApiError::bad_request(format!(
                        "{key} must be Patient/{{id}}, got '{value}'"
                    )));
                }
                query.patient = Some(id.to_owned());
            }
            "date" => {
                let (prefix, text) = match value.get(..2) {
                    Some(p @ ("ge" | "gt" | "le" | "lt" | "eq")) => (p, &value[2..]),
                    _ => ("eq", value.as_str()),
                };
                let (low, high) = datetime::parse_range(text)
                    .map_err(|e| ApiError::bad_request(format!("date: {e}")))?;
                match prefix {
                    "ge" => query.since = Some(low),
                    "gt" => query.since = Some(high),
                    "le" => query.before = Some(high),
                    "lt" => query.before = Some(low),
                    _ => {
                        query.since = Some(low);
                        query.before = Some(high);
                    }
                }
            }
            "purpose" | "purposeOfUse" => {
                let code = value.rsplit('|').next().unwrap_or_default();
                if code != "BTG" {
                    return Err(ApiError::bad_request(
                        "AuditEvent search by purpose supports BTG (break-glass) only",
                    ));
                }
                query.break_glass_only = true;
            }
            "_count" => {
                query.count = value
                    .parse::<usize>()
                    .map_err(|_| {
                        ApiError::bad_request(format!("_count must be a number, got '{value}'"))
                    })?
                    .min(MAX_COUNT);
            }
            "_cursor" => {
                query.cursor = Some(value.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid AuditEvent cursor '{value}'"))
                })?);
            }
            "_format" | "_pretty" | "_sort" => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "AuditEvent search supports patient, date, purpose, _count; not '{other}'"
                )));
            }
        }
    }
    let page = match only_id {
        // One record by id, under the same rules as a read (absent or not visible: empty).
        Some(id) => match state.app.audit_event(ctx, &id).await {
            Ok(body) => smr_store::AuditPage {
                records: vec![(0, body)],
                next_cursor: None,
            },
            Err(smr_app::AppError::Store(smr_store::StoreError::NotFound { .. })) => {
                smr_store::AuditPage::default()
            }
            Err(e) => return Err(e.into()),
        },
        None => state.app.audit_events(ctx, query).await?,
    };
    let total = only_id_total(pairs, &page);
    let base = base_url(state, headers);
    let current = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let mut links = vec![("self", link(&base, "AuditEvent", current))];
    if let Some(cursor) = page.next_cursor {
        let cursor = cursor.to_string();
        let kept = pairs
            .iter()
            .filter(|(k, _)| k != "_cursor")
            .map(|(k, v)| (k.as_str(), v.as_str()));
        links.push((
            "next",
            link(
                &base,
                "AuditEvent",
                kept.chain([("_cursor", cursor.as_str())]),
            ),
        ));
    }
    let mut bundle = BundleWriter::new("searchset", total, &links);
    for (_, body) in &page.records {
        bundle.raw_search_entry(&base, "AuditEvent", body);
    }
    Ok(fhir_json_response(StatusCode::OK, bundle.finish()))
}

/// A search by `_id` knows its total (0 or 1); a listing does not count the whole trail.
fn only_id_total(pairs: &[(String, String)], page: &smr_store::AuditPage) -> Option<i64> {
    pairs
        .iter()
        .any(|(k, _)| k == "_id")
        .then_some(page.records.len() as i64)
}
