//! FHIR Bulk Data export (Bulk Data Access IG 2.0.0): the kick-off (`GET /$export`,
//! `/Patient/$export`, `/Group/{id}/$export`), status polling and cancelling
//! (`/$export-status/{job}`), and the NDJSON files (`/$export-file/{job}/{file}`).
//!
//! HTTP only: parameters read and checked here, everything else is `smr_app::export`. Files
//! are streamed from disk in chunks, never read whole. Contract: `docs/bulk-export.md`.

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use smr_app::export::{ExportLevel, ExportRequest, ExportStatus, Manifest};
use smr_fhir::IssueCode;

use crate::app::AppState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::http::{base_url, query_pairs};

/// The NDJSON media type of the files (and the `_outputFormat` SMR writes).
pub const FHIR_NDJSON: &str = "application/fhir+ndjson";
/// `_outputFormat` values meaning NDJSON (the IG's abbreviations included).
const NDJSON_FORMATS: &[&str] = &["application/fhir+ndjson", "application/ndjson", "ndjson"];
/// How long a client is asked to wait between polls, in seconds.
const RETRY_AFTER_SECONDS: &str = "2";
/// Bytes read from a file per chunk of a download.
const CHUNK: usize = 256 * 1024;

pub async fn system(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    kick_off(&state, ctx, ExportLevel::System, &uri, &headers).await
}

pub async fn patient(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    kick_off(&state, ctx, ExportLevel::Patient, &uri, &headers).await
}

pub async fn group(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    kick_off(&state, ctx, ExportLevel::Group(id), &uri, &headers).await
}

async fn kick_off(
    state: &AppState,
    ctx: smr_app::RequestContext,
    level: ExportLevel,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let base = base_url(state, headers);
    if !prefers_async(headers) {
        return Err(ApiError::bad_request(
            "a bulk export runs asynchronously: send `Prefer: respond-async`",
        ));
    }
    let request = read_parameters(level, uri, &base)?;
    let job = state.app.export_start(&ctx, request).await?;
    let mut response = StatusCode::ACCEPTED.into_response();
    let location = format!("{base}/$export-status/{job}");
    if let Ok(value) = HeaderValue::from_str(&location) {
        response
            .headers_mut()
            .insert(header::CONTENT_LOCATION, value);
    }
    Ok(response)
}

/// `Prefer: respond-async` (among other preferences, in any case).
fn prefers_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .any(|p| p.trim().eq_ignore_ascii_case("respond-async"))
}

/// The kick-off's parameters. Anything SMR does not implement is a 400 (SMR is strict), so a
/// client never receives more than it asked for believing it was filtered.
fn read_parameters(level: ExportLevel, uri: &Uri, base: &str) -> Result<ExportRequest, ApiError> {
    let mut types: Option<Vec<String>> = None;
    let mut since = None;
    let mut deidentify = false;
    for (key, value) in query_pairs(uri.query()) {
        match key.as_str() {
            "_outputFormat" => {
                // An unencoded `+` in a query string reads as a space.
                let value = value.replace(' ', "+");
                if !NDJSON_FORMATS.contains(&value.as_str()) {
                    return Err(ApiError::bad_request(format!(
                        "_outputFormat '{value}' is not supported: SMR writes {FHIR_NDJSON}"
                    )));
                }
            }
            "_type" => {
                let list = types.get_or_insert_with(Vec::new);
                for ty in value.split(',').map(str::trim) {
                    if ty.is_empty() {
                        return Err(ApiError::bad_request("_type has an empty entry"));
                    }
                    list.push(ty.to_owned());
                }
            }
            "_since" => {
                if since.replace(value).is_some() {
                    return Err(ApiError::bad_request("_since is given more than once"));
                }
            }
            "deidentify" => {
                deidentify = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "deidentify must be true or false, got '{other}'"
                        )));
                    }
                }
            }
            other => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    IssueCode::NotSupported,
                    format!(
                        "export parameter '{other}' is not supported (SMR takes _outputFormat, \
                         _type, _since and deidentify)"
                    ),
                ));
            }
        }
    }
    let path = uri.path().strip_prefix("/fhir").unwrap_or(uri.path());
    let request_url = match uri.query() {
        Some(q) => format!("{base}{path}?{q}"),
        None => format!("{base}{path}"),
    };
    Ok(ExportRequest {
        level,
        types,
        since,
        deidentify,
        request_url,
    })
}

pub async fn status(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(job): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match state.app.export_status(&ctx, &job)? {
        ExportStatus::Running(progress) => {
            let mut response = StatusCode::ACCEPTED.into_response();
            let h = response.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&progress) {
                h.insert("x-progress", v);
            }
            h.insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
            Ok(response)
        }
        ExportStatus::Done(manifest) => {
            let base = base_url(&state, &headers);
            let body = manifest_json(&manifest, &base, &job).to_string();
            let mut response = (StatusCode::OK, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Ok(response)
        }
        // The cause is in the log; the client learns the export failed and should start again.
        ExportStatus::Failed(_) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            IssueCode::Exception,
            "the export failed; start a new one",
        )),
    }
}

/// The completion manifest (Bulk Data IG 2.0.0, "Response - Complete Status").
fn manifest_json(manifest: &Manifest, base: &str, job: &str) -> Value {
    let files = |list: &[smr_app::export::ExportFile]| -> Vec<Value> {
        list.iter()
            .map(|f| {
                json!({
                    "type": f.res_type,
                    "url": format!("{base}/$export-file/{job}/{}", f.name),
                    "count": f.count,
                })
            })
            .collect()
    };
    let mut out = json!({
        "transactionTime": manifest.transaction_time,
        "request": manifest.request,
        "requiresAccessToken": true,
        "output": files(&manifest.output),
        "error": files(&manifest.error),
    });
    if manifest.deidentified {
        out["extension"] = json!({
            "https://fhir.smr.nhs.uk/StructureDefinition/bulk-deidentified": true
        });
    }
    out
}

pub async fn cancel(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(job): Path<String>,
) -> Result<Response, ApiError> {
    state.app.export_cancel(&ctx, &job).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn file(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path((job, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let path = state.app.export_file(&ctx, &job, &name).await?;
    let opened = tokio::task::spawn_blocking(move || std::fs::File::open(path))
        .await
        .map_err(|_| ApiError::internal())?;
    let file = match opened {
        Ok(f) => f,
        // Cancelled between the look-up and the open.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::not_found(format!("no export file {name}")));
        }
        Err(e) => {
            tracing::error!(error = %e, "export file not readable");
            return Err(ApiError::internal());
        }
    };
    let stream = futures_util::stream::unfold(Some(file), |state| async move {
        let mut file = state?;
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; CHUNK];
            let n = file.read(&mut buf)?;
            buf.truncate(n);
            Ok::<_, std::io::Error>((file, buf))
        })
        .await;
        match read {
            Ok(Ok((_, buf))) if buf.is_empty() => None,
            Ok(Ok((file, buf))) => Some((Ok(Bytes::from(buf)), Some(file))),
            Ok(Err(e)) => Some((Err(e), None)),
            Err(e) => Some((Err(std::io::Error::other(e)), None)),
        }
    });
    let mut response = Body::from_stream(stream).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_NDJSON));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn respond_async_among_other_preferences() {
        let mut h = HeaderMap::new();
        assert!(!prefers_async(&h));
        h.insert(
            "prefer",
            HeaderValue::from_static("handling=strict, Respond-Async"),
        );
        assert!(prefers_async(&h));
    }

    #[test]
    fn parameters() {
        let base = "http://x/fhir";
        let uri: Uri = "/fhir/$export?_type=Patient,MedicationRequest&_type=Condition&_outputFormat=ndjson&deidentify=true"
            .parse()
            .expect("uri");
        let r = read_parameters(ExportLevel::System, &uri, base).expect("read");
        assert_eq!(
            r.types.as_deref(),
            Some(
                &[
                    "Patient".to_owned(),
                    "MedicationRequest".into(),
                    "Condition".into()
                ][..]
            )
        );
        assert!(r.deidentify);
        assert!(r.request_url.starts_with("http://x/fhir/$export?_type="));
        for bad in [
            "/fhir/$export?_outputFormat=text/csv",
            "/fhir/$export?_typeFilter=x",
            "/fhir/$export?deidentify=yes",
            "/fhir/$export?_type=",
        ] {
            let uri: Uri = bad.parse().expect("uri");
            assert!(
                read_parameters(ExportLevel::System, &uri, base).is_err(),
                "{bad}"
            );
        }
    }
}
