//! Instance interactions: create, read, vread, update, patch, delete.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use smr_fhir::IssueCode;
use smr_fhir::query::{self, Handling};
use smr_store::{StoreError, WriteOp, WriteOutcome};

use super::served_type;
use crate::app::AppState;
use crate::error::ApiError;
use crate::http::{
    self, BodyKind, Return, base_url, check_accept, fhir_json_response, prefer_return,
    resource_response,
};

/// How many times a PATCH without `If-Match` re-applies itself after losing a race.
const PATCH_RETRIES: usize = 8;

pub async fn create(
    State(state): State<AppState>,
    Path(res_type): Path<String>,
    request: Request<Body>,
) -> Result<Response, ApiError> {
    served_type(&res_type)?;
    let (headers, mut resource) = http::read_json(&state, request, BodyKind::Resource).await?;
    check_body_type(&resource, &res_type)?;
    // FHIR create ignores a client-supplied id (the server assigns one).
    if let Some(obj) = resource.as_object_mut() {
        obj.shift_remove("id");
    }
    let if_none_exist = match headers.get("if-none-exist").and_then(|v| v.to_str().ok()) {
        Some(q) => Some(conditional_search(&res_type, q)?),
        None => None,
    };
    let op = WriteOp::Create {
        resource,
        full_url: None,
        if_none_exist,
    };
    let base = base_url(&state, &headers);
    let ret = prefer_return(&headers);
    let outcome = state.store.write_one(op).await?;
    crate::pgx_intake::after_write(&state, std::slice::from_ref(&outcome)).await;
    Ok(match outcome {
        WriteOutcome::Created(r) => resource_response(StatusCode::CREATED, &r, &base, ret, true),
        WriteOutcome::Existing(r) => resource_response(StatusCode::OK, &r, &base, ret, true),
        other => return Err(unexpected(other)),
    })
}

pub async fn read(
    State(state): State<AppState>,
    Path((res_type, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    served_type(&res_type)?;
    check_accept(&headers, None)?;
    let r = state.store.read(&res_type, &id).await?;
    // A client holding the current version gets 304 instead of the body again.
    if let Some(tag) = headers.get("if-none-match").and_then(|v| v.to_str().ok())
        && http::parse_etag(tag) == Some(r.version)
    {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    Ok(resource_response(
        StatusCode::OK,
        &r,
        &base_url(&state, &headers),
        Return::Representation,
        false,
    ))
}

pub async fn vread(
    State(state): State<AppState>,
    Path((res_type, id, version)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    served_type(&res_type)?;
    let version: i64 = version
        .parse()
        .map_err(|_| ApiError::not_found(format!("{res_type}/{id} has no version '{version}'")))?;
    let r = state.store.vread(&res_type, &id, version).await?;
    Ok(resource_response(
        StatusCode::OK,
        &r,
        &base_url(&state, &headers),
        Return::Representation,
        false,
    ))
}

pub async fn update(
    State(state): State<AppState>,
    Path((res_type, id)): Path<(String, String)>,
    request: Request<Body>,
) -> Result<Response, ApiError> {
    served_type(&res_type)?;
    let (headers, resource) = http::read_json(&state, request, BodyKind::Resource).await?;
    check_body_type(&resource, &res_type)?;
    match resource.get("id").and_then(Value::as_str) {
        Some(body_id) if body_id == id => {}
        Some(body_id) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                IssueCode::Invalid,
                format!("resource id '{body_id}' does not match the URL id '{id}'"),
            ));
        }
        None => {
            return Err(ApiError::bad_request(
                "an update must carry the resource id (FHIR R4 3.1.0.4)",
            ));
        }
    }
    let if_match = http::if_match(&headers)?;
    let outcome = state.store.update(resource, if_match).await?;
    crate::pgx_intake::after_write(&state, std::slice::from_ref(&outcome)).await;
    write_response(&state, &headers, outcome)
}

/// JSON Patch (RFC 6902). The patch is applied to the version read and written back with that
/// version as the precondition, so a concurrent write is never overwritten: with `If-Match`
/// the client gets 412, without it the patch is re-applied to the newer version.
pub async fn patch(
    State(state): State<AppState>,
    Path((res_type, id)): Path<(String, String)>,
    request: Request<Body>,
) -> Result<Response, ApiError> {
    served_type(&res_type)?;
    let (headers, patch_doc) = read_patch(&state, request).await?;
    let patch: json_patch::Patch = serde_json::from_value(patch_doc)
        .map_err(|e| ApiError::bad_request(format!("not a JSON Patch document: {e}")))?;
    let if_match = http::if_match(&headers)?;
    for _ in 0..PATCH_RETRIES {
        let current = state.store.read(&res_type, &id).await?;
        if let Some(v) = if_match
            && v != current.version
        {
            return Err(StoreError::PreconditionFailed(format!(
                "If-Match names version {v} but the current version is {}",
                current.version
            ))
            .into());
        }
        let mut resource: Value = serde_json::from_str(&current.body).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                IssueCode::Exception,
                e.to_string(),
            )
        })?;
        json_patch::patch(&mut resource, &patch).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                IssueCode::Processing,
                format!("patch failed: {e}"),
            )
        })?;
        if resource.get("resourceType").and_then(Value::as_str) != Some(res_type.as_str())
            || resource.get("id").and_then(Value::as_str) != Some(id.as_str())
        {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                IssueCode::Processing,
                "a patch may not change resourceType or id",
            ));
        }
        match state.store.update(resource, Some(current.version)).await {
            Ok(outcome) => {
                crate::pgx_intake::after_write(&state, std::slice::from_ref(&outcome)).await;
                return write_response(&state, &headers, outcome);
            }
            Err(StoreError::PreconditionFailed(_)) if if_match.is_none() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        IssueCode::Conflict,
        "resource changed repeatedly while patching; retry",
    ))
}

async fn read_patch(
    state: &AppState,
    request: Request<Body>,
) -> Result<(HeaderMap, Value), ApiError> {
    let (headers, bytes) = http::read_body(state, request, BodyKind::JsonPatch).await?;
    Ok((headers, http::parse_json(&bytes)?))
}

pub async fn delete(
    State(state): State<AppState>,
    Path((res_type, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    served_type(&res_type)?;
    let if_match = http::if_match(&headers)?;
    match state.store.delete(&res_type, &id, if_match).await? {
        WriteOutcome::Deleted(Some(r)) => {
            let body = smr_fhir::outcome::information(format!(
                "{res_type}/{id} deleted (version {})",
                r.version
            ));
            let mut response = fhir_json_response(StatusCode::OK, body.to_string());
            if let Ok(v) = axum::http::HeaderValue::from_str(&r.etag()) {
                response.headers_mut().insert(axum::http::header::ETAG, v);
            }
            Ok(response)
        }
        WriteOutcome::Deleted(None) => Ok(StatusCode::NO_CONTENT.into_response()),
        other => Err(unexpected(other)),
    }
}

fn write_response(
    state: &AppState,
    headers: &HeaderMap,
    outcome: WriteOutcome,
) -> Result<Response, ApiError> {
    let base = base_url(state, headers);
    let ret = prefer_return(headers);
    Ok(match outcome {
        WriteOutcome::Created(r) => resource_response(StatusCode::CREATED, &r, &base, ret, true),
        WriteOutcome::Updated(r) => resource_response(StatusCode::OK, &r, &base, ret, true),
        other => return Err(unexpected(other)),
    })
}

fn unexpected(outcome: WriteOutcome) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        IssueCode::Exception,
        format!("unexpected outcome {outcome:?}"),
    )
}

pub(crate) fn check_body_type(resource: &Value, res_type: &str) -> Result<(), ApiError> {
    match resource.get("resourceType").and_then(Value::as_str) {
        Some(t) if t == res_type => Ok(()),
        Some(t) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            IssueCode::Invalid,
            format!("body is a {t} but the URL names {res_type}"),
        )
        .within("resourceType")),
        None => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            IssueCode::Required,
            "body has no resourceType",
        )),
    }
}

/// Parses an `If-None-Exist` / `ifNoneExist` query into a strict search.
pub(crate) fn conditional_search(
    res_type: &str,
    query_text: &str,
) -> Result<query::SearchRequest, ApiError> {
    let query_text = query_text.split_once('?').map_or(query_text, |(_, q)| q);
    let pairs = http::query_pairs(Some(query_text));
    if pairs.is_empty() {
        return Err(ApiError::bad_request(
            "If-None-Exist needs at least one search parameter",
        ));
    }
    let parsed = query::parse(res_type, &pairs, Handling::Strict)
        .map_err(|issues| ApiError::issues(StatusCode::BAD_REQUEST, issues))?;
    Ok(parsed.request)
}
