//! Limits and headers every answer gets: a time limit per request, bounds on the request line
//! and headers, an OperationOutcome in every error answer, and security headers.

use axum::body::HttpBody;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use smr_fhir::IssueCode;

use crate::app::AppState;
use crate::error::ApiError;

/// Answers 503 with an OperationOutcome when a request takes longer than configured (the
/// event stream is long-lived by design and exempt). The handler is dropped, which cancels
/// its database work at the next await.
pub async fn time_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.uri().path() == "/cds-services/events" {
        return next.run(request).await;
    }
    let limit = state.config.request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            IssueCode::Timeout,
            format!("the request took longer than {} s", limit.as_secs()),
        )
        .into_response(),
    }
}

/// Headers that keep patient data out of caches, frames and content sniffing.
pub async fn security_headers(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    if response.status() == StatusCode::INTERNAL_SERVER_ERROR {
        response = opaque_internal_error(&response);
    }
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name, value: &'static str| {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'",
    );
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::CACHE_CONTROL, "no-store");
    if state.config.tls {
        set(
            headers,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    response
}

/// Longest request target (path and query) SMR reads. Far above any real search (a 100-value
/// search is a few KB) and below hyper's own buffer, so the answer is SMR's 414 with an
/// OperationOutcome rather than a bare connection-level error.
pub const MAX_URI_BYTES: usize = 16 * 1024;
/// Most header bytes (names and values) SMR reads; a bearer token is 1–2 KB.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// 414 for an overlong request target and 431 for oversized headers, each with an
/// OperationOutcome naming the limit.
pub async fn request_limits(request: Request, next: Next) -> Response {
    let uri_len = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            IssueCode::TooLong,
            format!("the request target is {uri_len} bytes; SMR reads at most {MAX_URI_BYTES}"),
        )
        .into_response();
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            IssueCode::TooLong,
            format!(
                "the request headers are {header_bytes} bytes; SMR reads at most {MAX_HEADER_BYTES}"
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// Every error answer carries an OperationOutcome, also those the router makes itself with an
/// empty body (405 for a method a path does not support, with its `Allow` header kept).
pub async fn error_bodies(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.body().size_hint().exact() != Some(0)
    {
        return response;
    }
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            IssueCode::NotSupported,
            format!("{method} is not supported on {path}"),
        ),
        StatusCode::NOT_FOUND => (IssueCode::NotFound, format!("nothing at {path}")),
        _ => (
            IssueCode::Processing,
            status
                .canonical_reason()
                .unwrap_or("the request failed")
                .to_owned(),
        ),
    };
    let mut with_body = ApiError::new(status, code, message).into_response();
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            with_body.headers_mut().insert(name.clone(), value.clone());
        }
    }
    with_body
}

/// Whatever produced a 500, its body is replaced by a generic OperationOutcome carrying only
/// the request id (the operator finds the cause in the log by it): no SQL, path or library
/// text reaches a client.
fn opaque_internal_error(response: &Response) -> Response {
    let request_id = response.headers().get("x-request-id").cloned();
    let message = match request_id.as_ref().and_then(|v| v.to_str().ok()) {
        Some(id) => format!("{} (request id {id})", crate::error::INTERNAL_MESSAGE),
        None => crate::error::INTERNAL_MESSAGE.to_owned(),
    };
    let mut generic = ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        IssueCode::Exception,
        message,
    )
    .into_response();
    if let Some(id) = request_id {
        generic.headers_mut().insert("x-request-id", id);
    }
    generic
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_500_carries_only_a_generic_message_and_the_request_id() {
        let mut leaky = (
            StatusCode::INTERNAL_SERVER_ERROR,
            "error returned from database: near \"FROM\": syntax error",
        )
            .into_response();
        leaky
            .headers_mut()
            .insert("x-request-id", HeaderValue::from_static("req-42"));
        let generic = opaque_internal_error(&leaky);
        assert_eq!(generic.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(generic.headers()["x-request-id"], "req-42");
        let body = generic
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("OperationOutcome") && text.contains("req-42"),
            "{text}"
        );
        assert!(
            !text.contains("database") && !text.contains("FROM"),
            "{text}"
        );
    }
}
