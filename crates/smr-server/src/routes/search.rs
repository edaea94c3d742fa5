//! Type-level search: `GET /fhir/{type}?…` and `POST /fhir/{type}/_search`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Request, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::json;
use smr_fhir::IssueCode;
use smr_fhir::outcome::operation_outcome;
use smr_fhir::query;

use super::served_type;
use crate::app::AppState;
use crate::auth::Ctx;
use crate::bundle::BundleWriter;
use crate::error::ApiError;
use crate::http::{base_url, check_accept, fhir_json_response, prefer_handling, query_pairs};
use crate::subset;

pub async fn search_get(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(res_type): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(uri.query());
    run(&state, &ctx, &res_type, &headers, pairs).await
}

pub async fn search_post(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(res_type): Path<String>,
    request: Request<Body>,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let media = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !media.starts_with("application/x-www-form-urlencoded") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IssueCode::NotSupported,
            "POST _search takes application/x-www-form-urlencoded parameters",
        ));
    }
    let bytes = axum::body::to_bytes(body, state.config.max_body_bytes)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                IssueCode::TooLong,
                "search body too large",
            )
        })?;
    let mut pairs = query_pairs(parts.uri.query());
    pairs.extend(form_urlencoded::parse(&bytes).into_owned());
    run(&state, &ctx, &res_type, &parts.headers, pairs).await
}

async fn run(
    state: &AppState,
    ctx: &smr_app::RequestContext,
    res_type: &str,
    headers: &HeaderMap,
    pairs: Vec<(String, String)>,
) -> Result<Response, ApiError> {
    served_type(res_type)?;
    let format = pairs
        .iter()
        .find(|(k, _)| k == "_format")
        .map(|(_, v)| v.as_str());
    check_accept(headers, format)?;
    if res_type == "AuditEvent" {
        return super::audit::search(state, ctx, headers, &pairs).await;
    }
    let parsed = query::parse(res_type, &pairs, prefer_handling(headers))
        .map_err(|issues| ApiError::issues(StatusCode::BAD_REQUEST, issues))?;
    let subset = subset::requested(res_type, &pairs, true)?;
    let query_text = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter())
        .finish();
    let page = state.app.search(ctx, &parsed.request, &query_text).await?;
    let base = base_url(state, headers);

    let self_url = link(
        &base,
        res_type,
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let mut links = vec![("self", self_url)];
    if let Some(cursor) = &page.next_cursor {
        let kept = pairs
            .iter()
            .filter(|(k, _)| k != "_cursor")
            .map(|(k, v)| (k.as_str(), v.as_str()));
        links.push((
            "next",
            link(&base, res_type, kept.chain([("_cursor", cursor.as_str())])),
        ));
    }
    let mut bundle = BundleWriter::new("searchset", page.total, &links);
    // `_summary`/`_elements` stay in the self and next links above (only `_cursor` is
    // replaced), so every page is cut down the same way.
    for r in &page.matches {
        let body = subset::body(&r.body, subset.as_ref())?;
        bundle.search_entry_with(&base, r, &body, "match");
    }
    for r in &page.included {
        let body = subset::body(&r.body, subset.as_ref())?;
        bundle.search_entry_with(&base, r, &body, "include");
    }
    if !parsed.warnings.is_empty() {
        // Lenient handling dropped parameters: say so, in-band, as FHIR search prescribes.
        bundle.entry(
            json!({"search": {"mode": "outcome"}}),
            Some(&operation_outcome(&parsed.warnings).to_string()),
        );
    }
    Ok(fhir_json_response(StatusCode::OK, bundle.finish()))
}

pub(crate) fn link<'a>(
    base: &str,
    res_type: &str,
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    if query.is_empty() {
        format!("{base}/{res_type}")
    } else {
        format!("{base}/{res_type}?{query}")
    }
}
