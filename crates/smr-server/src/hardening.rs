//! Limits and headers every answer gets: a time limit per request and security headers.

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
