//! `POST /fhir` with a Bundle: `transaction` (all-or-nothing) or `batch` (each entry alone).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use smr_app::{AppError, RequestContext, WriteKind};
use smr_fhir::query::{self, Handling};
use smr_fhir::{IssueCode, datetime, resource_types};
use smr_store::{StoredResource, WriteOp, WriteOutcome};

use super::instance::conditional_search;
use crate::app::AppState;
use crate::auth::Ctx;
use crate::bundle::{BundleWriter, full_url};
use crate::error::ApiError;
use crate::http::{self, BodyKind, base_url, fhir_json_response, parse_etag};

/// One parsed Bundle entry.
enum Entry {
    Write(Box<WriteOp>),
    Read { res_type: String, id: String },
    Search { res_type: String, query: String },
}

pub async fn transaction_or_batch(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    request: Request<Body>,
) -> Result<Response, ApiError> {
    let (headers, bundle) = http::read_json(&state, request, BodyKind::Resource).await?;
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(ApiError::bad_request(
            "POST to the base URL takes a transaction or batch Bundle",
        )
        .within("resourceType"));
    }
    let kind = bundle
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match kind.as_str() {
        "transaction" => transaction(&state, &ctx, &headers, entries).await,
        "batch" => batch(&state, &ctx, &headers, entries).await,
        other => Err(ApiError::bad_request(format!(
            "Bundle.type must be transaction or batch to be processed, got '{other}' \
             (a collection or document Bundle is stored by POST to /Bundle)"
        ))
        .within("Bundle.type")),
    }
}

async fn transaction(
    state: &AppState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    entries: Vec<Value>,
) -> Result<Response, ApiError> {
    let parsed: Vec<Entry> = entries
        .into_iter()
        .enumerate()
        .map(|(i, e)| parse_entry(i, e))
        .collect::<Result<_, _>>()?;
    let mut ops = Vec::new();
    let mut op_of_entry = Vec::with_capacity(parsed.len());
    let mut reads = Vec::new();
    for (i, entry) in parsed.into_iter().enumerate() {
        match entry {
            Entry::Write(op) => {
                op_of_entry.push(Some(ops.len()));
                ops.push(*op);
            }
            other => {
                op_of_entry.push(None);
                reads.push((i, other));
            }
        }
    }
    let outcomes = state.app.write(ctx, ops, WriteKind::Transaction).await?;
    // Reads run after the writes commit, so they see them (FHIR transaction processing order).
    let base = base_url(state, headers);
    let mut read_results = Vec::new();
    for (i, entry) in reads {
        read_results.push((i, run_read(state, ctx, &base, entry).await));
    }
    let mut bundle = BundleWriter::new("transaction-response", None, &[]);
    let mut reads = read_results.into_iter();
    for op in op_of_entry {
        match op {
            Some(n) => write_entry(&mut bundle, &base, &outcomes[n]),
            None => {
                if let Some((_, result)) = reads.next() {
                    read_entry(&mut bundle, result);
                }
            }
        }
    }
    Ok(fhir_json_response(StatusCode::OK, bundle.finish()))
}

async fn batch(
    state: &AppState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    entries: Vec<Value>,
) -> Result<Response, ApiError> {
    let base = base_url(state, headers);
    let mut bundle = BundleWriter::new("batch-response", None, &[]);
    for (i, raw) in entries.into_iter().enumerate() {
        let result = match parse_entry(i, raw) {
            Err(e) => Err(e),
            Ok(Entry::Write(op)) => {
                match state.app.write(ctx, vec![*op], WriteKind::BatchEntry).await {
                    Ok(outcomes) => {
                        for outcome in &outcomes {
                            write_entry(&mut bundle, &base, outcome);
                        }
                        continue;
                    }
                    Err(AppError::Entry(e)) => Err(ApiError::from(e.error)),
                    Err(e) => Err(ApiError::from(e)),
                }
            }
            Ok(read) => run_read(state, ctx, &base, read).await,
        };
        read_entry(&mut bundle, result);
    }
    Ok(fhir_json_response(StatusCode::OK, bundle.finish()))
}

fn entry_error(i: usize, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(format!("Bundle.entry[{i}]: {}", message.into()))
        .within(&format!("Bundle.entry[{i}].request"))
}

fn parse_entry(i: usize, entry: Value) -> Result<Entry, ApiError> {
    let request = entry
        .get("request")
        .ok_or_else(|| entry_error(i, "entry has no request"))?;
    let method = request
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let url = request
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| entry_error(i, "request has no url"))?;
    let url = url.trim_start_matches('/');
    let (path, query_text) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (url, None),
    };
    let segments: Vec<&str> = path.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(entry_error(
            i,
            format!("request url '{url}' has an empty segment"),
        ));
    }
    let res_type = segments[0].to_owned();
    if !resource_types::is_served(&res_type) {
        return Err(entry_error(
            i,
            format!("resource type '{res_type}' is not served"),
        ));
    }
    let if_match = match request.get("ifMatch").and_then(Value::as_str) {
        Some(tag) => {
            Some(parse_etag(tag).ok_or_else(|| entry_error(i, format!("bad ifMatch '{tag}'")))?)
        }
        None => None,
    };
    let full_url = entry
        .get("fullUrl")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let resource = entry.get("resource").cloned();
    let need_resource = || {
        let r = resource
            .clone()
            .ok_or_else(|| entry_error(i, format!("{method} needs a resource")))?;
        if r.get("resourceType").and_then(Value::as_str) != Some(res_type.as_str()) {
            return Err(entry_error(i, format!("resource is not a {res_type}")));
        }
        Ok::<Value, ApiError>(r)
    };
    match (method, segments.as_slice(), query_text) {
        ("POST", [_], None) => {
            let mut resource = need_resource()?;
            if let Some(obj) = resource.as_object_mut() {
                obj.shift_remove("id");
            }
            let if_none_exist = match request.get("ifNoneExist").and_then(Value::as_str) {
                Some(q) => Some(
                    conditional_search(&res_type, q, "ifNoneExist")
                        .map_err(|e| e.within(&format!("Bundle.entry[{i}].request.ifNoneExist")))?,
                ),
                None => None,
            };
            Ok(Entry::Write(Box::new(WriteOp::Create {
                resource,
                full_url,
                if_none_exist,
            })))
        }
        ("PUT", [_, id], None) => {
            let mut resource = need_resource()?;
            match resource.get("id").and_then(Value::as_str) {
                Some(rid) if rid != *id => {
                    return Err(entry_error(
                        i,
                        format!("resource id '{rid}' does not match the url id '{id}'"),
                    ));
                }
                Some(_) => {}
                None => {
                    if let Some(obj) = resource.as_object_mut() {
                        obj.insert("id".into(), Value::String((*id).to_owned()));
                    }
                }
            }
            Ok(Entry::Write(Box::new(WriteOp::Update {
                patched: false,
                condition: None,
                resource,
                full_url,
                if_match,
            })))
        }
        ("DELETE", [_, id], None) => Ok(Entry::Write(Box::new(WriteOp::Delete {
            res_type,
            id: (*id).to_owned(),
            if_match,
        }))),
        ("GET", [_, id], None) => Ok(Entry::Read {
            res_type,
            id: (*id).to_owned(),
        }),
        ("GET", [_], q) => Ok(Entry::Search {
            res_type,
            query: q.unwrap_or_default().to_owned(),
        }),
        ("PUT", [_], Some(q)) => {
            let resource = need_resource()?;
            let condition = conditional_search(&res_type, q, "A conditional update")
                .map_err(|e| e.within(&format!("Bundle.entry[{i}].request.url")))?;
            Ok(Entry::Write(Box::new(WriteOp::Update {
                patched: false,
                condition: Some(condition),
                resource,
                full_url,
                if_match,
            })))
        }
        ("DELETE", [_], Some(_)) => Err(entry_error(i, "conditional delete is not supported")),
        ("PATCH", _, _) => Err(entry_error(
            i,
            "PATCH inside a Bundle is not supported; use PATCH on the resource URL",
        )),
        _ => Err(entry_error(i, format!("cannot process {method} {url}"))),
    }
}

async fn run_read(
    state: &AppState,
    ctx: &RequestContext,
    base: &str,
    entry: Entry,
) -> Result<(StatusCode, String), ApiError> {
    match entry {
        Entry::Read { res_type, id } => Ok((
            StatusCode::OK,
            state.app.read(ctx, &res_type, &id).await?.body,
        )),
        Entry::Search { res_type, query } => {
            let pairs = http::query_pairs(Some(&query));
            let parsed = query::parse(&res_type, &pairs, Handling::Strict)
                .map_err(|issues| ApiError::issues(StatusCode::BAD_REQUEST, issues))?;
            let page = state.app.search(ctx, &parsed.request, &query).await?;
            let mut bundle = BundleWriter::new("searchset", page.total, &[]);
            for r in &page.matches {
                bundle.search_entry(base, r, "match");
            }
            Ok((StatusCode::OK, bundle.finish()))
        }
        Entry::Write(_) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            IssueCode::Exception,
            "write routed as read",
        )),
    }
}

fn write_entry(bundle: &mut BundleWriter, base: &str, outcome: &WriteOutcome) {
    let (status, stored): (&str, Option<&StoredResource>) = match outcome {
        WriteOutcome::Created(r) => ("201 Created", Some(r)),
        WriteOutcome::Updated(r) | WriteOutcome::Existing(r) => ("200 OK", Some(r)),
        WriteOutcome::Deleted(Some(_)) => ("200 OK", None),
        WriteOutcome::Deleted(None) => ("204 No Content", None),
    };
    let mut response = json!({"status": status});
    let mut fields = json!({});
    if let Some(r) = stored {
        fields["fullUrl"] = json!(full_url(base, r));
        response["location"] = json!(format!("{}/{}/_history/{}", r.res_type, r.id, r.version));
        response["etag"] = json!(r.etag());
        response["lastModified"] = json!(datetime::format_instant(r.last_updated));
    } else if let WriteOutcome::Deleted(Some(r)) = outcome {
        response["etag"] = json!(r.etag());
    }
    fields["response"] = response;
    bundle.entry(fields, stored.map(|r| r.body.as_str()));
}

fn read_entry(bundle: &mut BundleWriter, result: Result<(StatusCode, String), ApiError>) {
    match result {
        Ok((status, body)) => bundle.entry(
            json!({"response": {"status": status_line(status)}}),
            Some(&body),
        ),
        Err(e) => {
            let outcome = smr_fhir::outcome::operation_outcome(&e.issues);
            bundle.entry(
                json!({"response": {"status": status_line(e.status), "outcome": outcome}}),
                None,
            );
        }
    }
}

fn status_line(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    )
}
