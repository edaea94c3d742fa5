//! History: instance, type and system level, newest first, keyset-paged.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use smr_fhir::datetime;
use smr_fhir::query::{DEFAULT_COUNT, MAX_COUNT};
use smr_store::{HistoryRequest, HistoryScope};

use super::served_type;
use crate::app::AppState;
use crate::auth::Ctx;
use crate::bundle::BundleWriter;
use crate::error::ApiError;
use crate::http::{base_url, fhir_json_response, query_pairs};
use crate::subset;

pub async fn instance(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path((res_type, id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    served_type(&res_type)?;
    let path = format!("{res_type}/{id}/_history");
    run(
        &state,
        &ctx,
        HistoryScope::Instance { res_type, id },
        &path,
        &uri,
        &headers,
    )
    .await
}

pub async fn type_level(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(res_type): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    served_type(&res_type)?;
    let path = format!("{res_type}/_history");
    run(
        &state,
        &ctx,
        HistoryScope::Type { res_type },
        &path,
        &uri,
        &headers,
    )
    .await
}

pub async fn system(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    run(
        &state,
        &ctx,
        HistoryScope::System,
        "_history",
        &uri,
        &headers,
    )
    .await
}

async fn run(
    state: &AppState,
    ctx: &smr_app::RequestContext,
    scope: HistoryScope,
    path: &str,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(uri.query());
    let subset = match &scope {
        HistoryScope::Instance { res_type, .. } | HistoryScope::Type { res_type } => {
            subset::requested(res_type, &pairs, false)?
        }
        // `_elements` names elements of one type; `_summary` works per entry's own type.
        HistoryScope::System if pairs.iter().any(|(k, _)| k == "_elements") => {
            return Err(ApiError::bad_request(
                "_elements needs a resource type: use it on type or instance history",
            ));
        }
        HistoryScope::System => subset::requested("", &pairs, false)?,
    };
    let mut req = HistoryRequest {
        scope,
        count: DEFAULT_COUNT,
        since: None,
        cursor: None,
    };
    for (key, value) in &pairs {
        match key.as_str() {
            "_count" => {
                let n: usize = value.parse().map_err(|_| {
                    ApiError::bad_request(format!("_count must be a number, got '{value}'"))
                })?;
                req.count = n.clamp(1, MAX_COUNT);
            }
            "_since" => {
                req.since = Some(
                    datetime::parse_instant_micros(value)
                        .map_err(|e| ApiError::bad_request(e.to_string()))?,
                );
            }
            "_cursor" => req.cursor = Some(value.clone()),
            "_format" | "_pretty" | "_summary" | "_elements" => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "history does not support the parameter '{other}'"
                )));
            }
        }
    }
    let page = state.app.history(ctx, &req).await?;
    let base = base_url(state, headers);
    let link = |pairs: Vec<(&str, &str)>| {
        let q = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        if q.is_empty() {
            format!("{base}/{path}")
        } else {
            format!("{base}/{path}?{q}")
        }
    };
    let current: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut links = vec![("self", link(current.clone()))];
    if let Some(cursor) = &page.next_cursor {
        let mut next: Vec<(&str, &str)> = current
            .into_iter()
            .filter(|(k, _)| *k != "_cursor")
            .collect();
        next.push(("_cursor", cursor));
        links.push(("next", link(next)));
    }
    let mut bundle = BundleWriter::new("history", None, &links);
    for entry in &page.entries {
        let body = subset::body(&entry.resource.body, subset.as_ref())?;
        bundle.history_entry_with(&base, entry, &body);
    }
    Ok(fhir_json_response(StatusCode::OK, bundle.finish()))
}
