//! FHIR over HTTP: media types, request bodies, headers, and response construction.

use axum::body::{Body, to_bytes};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use smr_fhir::IssueCode;
use smr_fhir::query::Handling;
use smr_store::StoredResource;

use crate::app::AppState;
use crate::error::ApiError;

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

pub fn fhir_json_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    response
}

/// What the client asked to get back (`Prefer: return=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    Representation,
    Minimal,
    OperationOutcome,
}

pub fn prefer_return(headers: &HeaderMap) -> Return {
    match prefer_value(headers, "return").as_deref() {
        Some("minimal") => Return::Minimal,
        Some("OperationOutcome") => Return::OperationOutcome,
        _ => Return::Representation,
    }
}

/// `Prefer: handling=strict|lenient`. SMR's default is strict (see the CapabilityStatement).
pub fn prefer_handling(headers: &HeaderMap) -> Handling {
    match prefer_value(headers, "handling").as_deref() {
        Some("lenient") => Handling::Lenient,
        _ => Handling::Strict,
    }
}

fn prefer_value(headers: &HeaderMap, key: &str) -> Option<String> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(key))
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
}

/// `If-Match: W/"3"` → 3.
pub fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    parse_etag(text).map(Some).ok_or_else(|| {
        ApiError::bad_request(format!(
            "If-Match must be a version ETag like W/\"3\", got '{text}'"
        ))
    })
}

pub fn parse_etag(text: &str) -> Option<i64> {
    let text = text.strip_prefix("W/").unwrap_or(text);
    text.trim_matches('"').parse().ok()
}

/// The kinds of body an endpoint accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// A FHIR resource: `application/fhir+json` or `application/json`.
    Resource,
    /// A patch: JSON Patch (`application/json-patch+json`) or FHIRPath Patch (a `Parameters`
    /// resource as `application/fhir+json` or `application/json`).
    Patch,
}

/// Reads a body, enforcing the media type (415) and the size limit (413).
pub async fn read_body(
    state: &AppState,
    request: Request<Body>,
    kind: BodyKind,
) -> Result<(HeaderMap, axum::body::Bytes), ApiError> {
    let (parts, body) = request.into_parts();
    check_content_type(&parts.headers, kind)?;
    let limit = state.config.max_body_bytes;
    let bytes = to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            IssueCode::TooLong,
            format!("request body exceeds the limit of {limit} bytes"),
        )
    })?;
    Ok((parts.headers, bytes))
}

/// Parses a JSON request body strictly (`smr_fhir::json`): every JSON body SMR accepts is read
/// here, so none is stored with duplicate keys, numbers clients cannot read back, or its
/// decimal text rewritten. 400 with an OperationOutcome naming the key or path otherwise.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    smr_fhir::json::parse(bytes).map_err(json_error)
}

/// Checks a JSON body by the same rules without building it (for bodies read another way
/// afterwards, such as CDS Hooks requests whose prefetch stays raw text).
pub fn check_json(bytes: &[u8]) -> Result<(), ApiError> {
    smr_fhir::json::check(bytes).map_err(json_error)
}

fn json_error(e: smr_fhir::json::JsonError) -> ApiError {
    use smr_fhir::json::JsonErrorKind;
    let code = match e.kind {
        JsonErrorKind::NumberOutOfRange(_) => IssueCode::Value,
        _ => IssueCode::Structure,
    };
    let mut error = ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string());
    if !e.path.is_empty() {
        for issue in &mut error.issues {
            issue.expression = Some(e.path.clone());
        }
    }
    error
}

/// Reads a FHIR JSON resource body (an object).
pub async fn read_json(
    state: &AppState,
    request: Request<Body>,
    kind: BodyKind,
) -> Result<(HeaderMap, Value), ApiError> {
    let (headers, bytes) = read_body(state, request, kind).await?;
    let value = parse_json(&bytes)?;
    if !value.is_object() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            IssueCode::Structure,
            "body must be a JSON object",
        ));
    }
    Ok((headers, value))
}

fn check_content_type(headers: &HeaderMap, kind: BodyKind) -> Result<(), ApiError> {
    // A missing Content-Type on a resource is read as FHIR JSON, the only format served; a
    // wrong one is not. A patch must say it is one.
    let Some(media) = media_type(headers) else {
        return if kind == BodyKind::Resource {
            Ok(())
        } else {
            Err(unsupported("(none)", kind))
        };
    };
    let accepted: &[&str] = match kind {
        BodyKind::Resource => &["application/fhir+json", "application/json"],
        BodyKind::Patch => &[
            "application/json-patch+json",
            "application/fhir+json",
            "application/json",
        ],
    };
    if accepted.contains(&media.as_str()) {
        Ok(())
    } else {
        Err(unsupported(&media, kind))
    }
}

/// The request's media type (`Content-Type` without parameters, lower-case).
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?;
    Some(
        value
            .to_str()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

fn unsupported(media: &str, kind: BodyKind) -> ApiError {
    let accepted = match kind {
        BodyKind::Resource => "application/fhir+json or application/json",
        BodyKind::Patch => {
            "application/json-patch+json (JSON Patch), or application/fhir+json with a \
             Parameters resource (FHIRPath Patch)"
        }
    };
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        IssueCode::NotSupported,
        format!("Content-Type '{media}' is not supported here; use {accepted}"),
    )
}

/// 406 unless the client accepts JSON (FHIR JSON is the only format SMR produces).
pub fn check_accept(headers: &HeaderMap, format: Option<&str>) -> Result<(), ApiError> {
    let json_ok = |m: &str| {
        let m = m
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        matches!(
            m.as_str(),
            "json" | "application/json" | "application/fhir+json" | "*/*" | "application/*" | ""
        )
    };
    if let Some(f) = format {
        if !json_ok(f) {
            return Err(not_acceptable(f));
        }
        return Ok(());
    }
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    if accept.split(',').any(json_ok) {
        Ok(())
    } else {
        Err(not_acceptable(accept))
    }
}

fn not_acceptable(asked: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_ACCEPTABLE,
        IssueCode::NotSupported,
        format!("'{asked}' cannot be produced; SMR serves application/fhir+json"),
    )
}

/// Base URL of the FHIR endpoint for links and `fullUrl`s: the configured one; else, only when
/// configured to trust them, the forwarding headers a proxy sets; else `http://localhost/fhir`
/// (`https` when SMR serves TLS itself, also the scheme when a proxy sends no
/// `X-Forwarded-Proto`). Request headers never decide it by default, so a client cannot plant
/// another host in the links SMR hands out.
pub fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(base) = &state.config.base_url {
        return base.trim_end_matches('/').to_owned();
    }
    let own_scheme = if state.config.tls { "https" } else { "http" };
    if !state.config.trust_forwarded_headers {
        return format!("{own_scheme}://localhost/fhir");
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|h| h.to_str().ok())
            // A proxy chain lists the first (client-facing) value first.
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let host = header("x-forwarded-host")
        .or_else(|| header(header::HOST.as_str()))
        .filter(|h| is_authority(h))
        .unwrap_or("localhost");
    let scheme = match header("x-forwarded-proto") {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        Some(p) if p.eq_ignore_ascii_case("http") => "http",
        _ => own_scheme,
    };
    format!("{scheme}://{host}/fhir")
}

/// A host with an optional port, nothing else (no path, user info or spaces).
fn is_authority(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// `Last-Modified` uses the HTTP date format (RFC 9110 IMF-fixdate).
pub fn http_date(micros: i64) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// The response to a successful write or read of one resource: body per `Prefer`, and
/// `ETag`, `Last-Modified`, and (for creates) `Location`.
pub fn resource_response(
    status: StatusCode,
    stored: &StoredResource,
    base: &str,
    ret: Return,
    location: bool,
) -> Response {
    let body = match ret {
        Return::Representation => stored.body.clone(),
        Return::Minimal => String::new(),
        Return::OperationOutcome => smr_fhir::outcome::information(format!(
            "{}/{} version {} stored",
            stored.res_type, stored.id, stored.version
        ))
        .to_string(),
    };
    let mut response = if body.is_empty() {
        status.into_response()
    } else {
        fhir_json_response(status, body)
    };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&stored.etag()) {
        headers.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&http_date(stored.last_updated)) {
        headers.insert(header::LAST_MODIFIED, v);
    }
    if location {
        let url = format!(
            "{base}/{}/{}/_history/{}",
            stored.res_type, stored.id, stored.version
        );
        if let Ok(v) = HeaderValue::from_str(&url) {
            headers.insert(header::LOCATION, v);
        }
    }
    response
}

/// Decoded query pairs of a request URI.
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags() {
        assert_eq!(parse_etag("W/\"3\""), Some(3));
        assert_eq!(parse_etag("\"12\""), Some(12));
        assert_eq!(parse_etag("W/\"x\""), None);
    }

    #[test]
    fn http_dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn prefer_header() {
        let mut h = HeaderMap::new();
        h.insert(
            "prefer",
            HeaderValue::from_static("return=minimal, handling=lenient"),
        );
        assert_eq!(prefer_return(&h), Return::Minimal);
        assert_eq!(prefer_handling(&h), Handling::Lenient);
    }
}
