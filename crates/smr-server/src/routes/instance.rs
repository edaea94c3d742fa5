//! Instance interactions: create, read, vread, update, patch, delete.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use smr_app::{AppError, WriteKind};
use smr_fhir::IssueCode;
use smr_fhir::fhirpath_patch;
use smr_fhir::query::{self, Handling};
use smr_store::{WriteOp, WriteOutcome};

use super::served_type;
use crate::app::AppState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::http::{
    self, BodyKind, Return, base_url, check_accept, fhir_json_response, prefer_return,
    resource_response,
};
use crate::subset;

pub async fn create(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(res_type): Path<String>,
    request: Request<Body>,
) -> Result<Response, ApiError> {
    served_type(&res_type)?;
    let (headers, mut resource) = http::read_json(&state, request, BodyKind::Resource).await?;
    check_body_type(&resource, &res_type)?;
    if res_type == "AuditEvent" {
        let body = state.app.submit_audit_event(&ctx, resource).await?;
        let id = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut response = fhir_json_response(StatusCode::CREATED, body);
        let location = format!("{}/AuditEvent/{id}/_history/1", base_url(&state, &headers));
        if let Ok(v) = axum::http::HeaderValue::from_str(&location) {
            response
                .headers_mut()
                .insert(axum::http::header::LOCATION, v);
        }
        return Ok(response);
    }
    // FHIR create ignores a client-supplied id (the server assigns one).
    if let Some(obj) = resource.as_object_mut() {
        obj.shift_remove("id");
    }
    let if_none_exist = match headers.get("if-none-exist").and_then(|v| v.to_str().ok()) {
        Some(q) => Some(conditional_search(&res_type, q, "If-None-Exist")?),
        None => None,
    };
    let op = WriteOp::Create {
        resource,
        full_url: None,
        if_none_exist,
    };
    let base = base_url(&state, &headers);
    let ret = prefer_return(&headers);
    let outcome = write_one(&state, &ctx, op, WriteKind::Create).await?;
    Ok(match outcome {
        WriteOutcome::Created(r) => resource_response(StatusCode::CREATED, &r, &base, ret, true),
        WriteOutcome::Existing(r) => resource_response(StatusCode::OK, &r, &base, ret, true),
        other => return Err(unexpected(other)),
    })
}

pub async fn read(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path((res_type, id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    served_type(&res_type)?;
    check_accept(&headers, None)?;
    let subset = subset::requested(&res_type, &http::query_pairs(uri.query()), false)?;
    if res_type == "AuditEvent" {
        // The audit trail is its own append-only chain, not a resource table.
        let body = state.app.audit_event(&ctx, &id).await?;
        let body = subset::body(&body, subset.as_ref())?.into_owned();
        return Ok(fhir_json_response(StatusCode::OK, body));
    }
    let mut r = state.app.read(&ctx, &res_type, &id).await?;
    // A client holding the current version gets 304 instead of the body again.
    if let Some(tag) = headers.get("if-none-match").and_then(|v| v.to_str().ok())
        && http::parse_etag(tag) == Some(r.version)
    {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    if subset.is_some() {
        r.body = subset::body(&r.body, subset.as_ref())?.into_owned();
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
    Ctx(ctx): Ctx,
    Path((res_type, id, version)): Path<(String, String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    served_type(&res_type)?;
    let version: i64 = version
        .parse()
        .map_err(|_| ApiError::not_found(format!("{res_type}/{id} has no version '{version}'")))?;
    let subset = subset::requested(&res_type, &http::query_pairs(uri.query()), false)?;
    let mut r = state.app.vread(&ctx, &res_type, &id, version).await?;
    if subset.is_some() {
        r.body = subset::body(&r.body, subset.as_ref())?.into_owned();
    }
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
    Ctx(ctx): Ctx,
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
    let op = WriteOp::Update {
        patched: false,
        condition: None,
        resource,
        full_url: None,
        if_match,
    };
    let outcome = write_one(&state, &ctx, op, WriteKind::Update).await?;
    write_response(&state, &headers, outcome)
}

/// Conditional update (R4 3.1.0.4.3), `PUT Type?criteria`: updates the one resource the
/// criteria match, creates one when none does (201), and answers 412 when several do. How a
/// sending system keeps its copy current by its own identifier without knowing SMR's ids;
/// race-free (see `App::write`).
pub async fn conditional_update(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(res_type): Path<String>,
    request: Request<Body>,
) -> Result<Response, ApiError> {
    served_type(&res_type)?;
    let query_text = request.uri().query().unwrap_or_default().to_owned();
    let (headers, resource) = http::read_json(&state, request, BodyKind::Resource).await?;
    check_body_type(&resource, &res_type)?;
    let condition = conditional_search(&res_type, &query_text, "A conditional update")?;
    let op = WriteOp::Update {
        patched: false,
        condition: Some(condition),
        resource,
        full_url: None,
        if_match: http::if_match(&headers)?,
    };
    let outcome = write_one(&state, &ctx, op, WriteKind::Update).await?;
    write_response(&state, &headers, outcome)
}

/// PATCH in either format R4 defines (http.html#patch): JSON Patch (RFC 6902,
/// `application/json-patch+json`) or FHIRPath Patch (a `Parameters` resource,
/// `application/fhir+json` or `application/json`); any other Content-Type is 415 naming both.
/// The patch is applied to the version read and written back with that version as the
/// precondition, so a concurrent write is never overwritten: with `If-Match` the client gets
/// 412, without it the patch is re-applied to the newer version. The new version's history
/// entry says PATCH.
pub async fn patch(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path((res_type, id)): Path<(String, String)>,
    request: Request<Body>,
) -> Result<Response, ApiError> {
    served_type(&res_type)?;
    let (headers, patch) = read_patch(&state, request, &res_type).await?;
    let if_match = http::if_match(&headers)?;
    let apply = |resource: &mut Value| -> Result<(), AppError> {
        match &patch {
            Patch::Json(p) => json_patch::patch(resource, p)
                .map_err(|e| AppError::BadRequest(format!("patch failed: {e}")))?,
            Patch::FhirPath(ops) => fhirpath_patch::apply(resource, ops)
                .map_err(|e| AppError::BadRequest(format!("FHIRPath Patch failed: {e}")))?,
        }
        if resource.get("resourceType").and_then(Value::as_str) != Some(res_type.as_str())
            || resource.get("id").and_then(Value::as_str) != Some(id.as_str())
        {
            return Err(AppError::BadRequest(
                "a patch may not change resourceType or id".into(),
            ));
        }
        Ok(())
    };
    let outcome = state
        .app
        .patch(&ctx, &res_type, &id, if_match, apply)
        .await
        .map_err(|e| match e {
            // A patch that cannot be applied to this resource is unprocessable (422).
            AppError::BadRequest(message) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                IssueCode::Processing,
                message,
            ),
            // A single resource's error, not a transaction entry's (as in `write_one`).
            AppError::Entry(e) => e.error.into(),
            other => other.into(),
        })?;
    write_response(&state, &headers, outcome)
}

enum Patch {
    Json(json_patch::Patch),
    FhirPath(Vec<fhirpath_patch::Operation>),
}

/// Reads a patch body in the format its Content-Type names.
async fn read_patch(
    state: &AppState,
    request: Request<Body>,
    res_type: &str,
) -> Result<(HeaderMap, Patch), ApiError> {
    let (headers, bytes) = http::read_body(state, request, BodyKind::Patch).await?;
    let doc = http::parse_json(&bytes)?;
    if http::media_type(&headers).as_deref() == Some("application/json-patch+json") {
        let patch = serde_json::from_value(doc)
            .map_err(|e| ApiError::bad_request(format!("not a JSON Patch document: {e}")))?;
        return Ok((headers, Patch::Json(patch)));
    }
    if !fhirpath_patch::is_fhirpath_patch(&doc) {
        // FHIR JSON that is no Parameters resource is no patch format SMR reads (a JSON Patch
        // labelled as FHIR JSON, typically): the same 415 as for any other format.
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IssueCode::NotSupported,
            "a PATCH sent as application/fhir+json or application/json must be a Parameters \
             resource (FHIRPath Patch); send a JSON Patch as application/json-patch+json",
        ));
    }
    let ops = fhirpath_patch::parse(res_type, &doc).map_err(patch_error)?;
    Ok((headers, Patch::FhirPath(ops)))
}

fn patch_error(e: fhirpath_patch::PatchError) -> ApiError {
    use fhirpath_patch::PatchError;
    let (status, code) = match &e {
        PatchError::Invalid(_) => (StatusCode::BAD_REQUEST, IssueCode::Invalid),
        PatchError::UnsupportedPath(_) => (StatusCode::BAD_REQUEST, IssueCode::NotSupported),
        PatchError::NotApplicable(_) => (StatusCode::UNPROCESSABLE_ENTITY, IssueCode::Processing),
    };
    ApiError::new(status, code, e.to_string())
}

pub async fn delete(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path((res_type, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    served_type(&res_type)?;
    let if_match = http::if_match(&headers)?;
    let op = WriteOp::Delete {
        res_type: res_type.clone(),
        id: id.clone(),
        if_match,
    };
    match write_one(&state, &ctx, op, WriteKind::Delete).await? {
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

/// One write through the application layer; a store error is the entry's own error (not
/// a transaction's, whose messages name entries).
pub(crate) async fn write_one(
    state: &AppState,
    ctx: &smr_app::RequestContext,
    op: WriteOp,
    kind: WriteKind,
) -> Result<WriteOutcome, ApiError> {
    match state.app.write(ctx, vec![op], kind).await {
        Ok(mut outcomes) => outcomes
            .pop()
            .ok_or_else(|| unexpected(WriteOutcome::Deleted(None))),
        Err(AppError::Entry(e)) => Err(e.error.into()),
        Err(e) => Err(e.into()),
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
/// The criteria of a conditional write; `what` names it in the error (`If-None-Exist`, ...).
pub(crate) fn conditional_search(
    res_type: &str,
    query_text: &str,
    what: &str,
) -> Result<query::SearchRequest, ApiError> {
    let query_text = query_text.split_once('?').map_or(query_text, |(_, q)| q);
    let pairs = http::query_pairs(Some(query_text));
    if pairs.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{what} needs at least one search parameter"
        )));
    }
    let parsed = query::parse(res_type, &pairs, Handling::Strict)
        .map_err(|issues| ApiError::issues(StatusCode::BAD_REQUEST, issues))?;
    Ok(parsed.request)
}
