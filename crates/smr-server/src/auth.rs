//! Who is asking: bearer-token authentication, break-glass, request ids and per-user rate
//! limits, turning every request into a [`RequestContext`] for the application layer.
//!
//! Every endpoint needs a valid token but `/healthz` and `/fhir/metadata` (a
//! CapabilityStatement must be readable before a client can authenticate). A missing or
//! invalid token is a 401 with `WWW-Authenticate` (RFC 6750) and an OperationOutcome; the
//! token never reaches a log line.

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use smr_app::{RequestContext, Role};
use smr_auth::{AuthError, bearer_token};
use smr_fhir::IssueCode;

use crate::app::AppState;
use crate::error::ApiError;

/// The header a clinician sends to open a record outside a care relationship.
pub const BREAK_GLASS_HEADER: &str = "x-break-glass-reason";
/// FHIR R4 http.html: a Provenance for the write, read by `smr-app` (it is only text here).
pub const X_PROVENANCE_HEADER: &str = "x-provenance";
const REQUEST_ID_HEADER: &str = "x-request-id";
/// Longest break-glass reason kept (it is stored in every audit record of the request).
const MAX_REASON_LEN: usize = 1024;

pub(crate) type UserLimiter = DefaultKeyedRateLimiter<String>;

pub(crate) fn user_limiter(per_second: NonZeroU32) -> Arc<UserLimiter> {
    Arc::new(RateLimiter::keyed(Quota::per_second(per_second)))
}

fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/fhir/metadata" | "/fhir/metadata/")
}

pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let request_id = request_id(&request);
    if is_public(request.uri().path()) {
        let mut response = next.run(request).await;
        set_request_id(&mut response, &request_id);
        return response;
    }
    if crate::web::is_web_path(request.uri().path()) {
        // The web app's pages: the sign-in cookie as well as a bearer token, and a redirect to
        // the sign-in page instead of a 401 (`web::session`).
        let mut response =
            crate::web::session::authenticate(&state, request, next, request_id.clone()).await;
        set_request_id(&mut response, &request_id);
        return response;
    }
    let headers = request.headers().clone();
    let mut response = match context(&state, &headers, request_id.clone()).await {
        Ok(ctx) => {
            if let Some(wait) = rate_limited(&state, &ctx) {
                too_many_requests(wait)
            } else {
                request.extensions_mut().insert(ctx);
                next.run(request).await
            }
        }
        Err(refusal) => refusal,
    };
    set_request_id(&mut response, &request_id);
    response
}

pub(crate) async fn context(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    request_id: String,
) -> Result<RequestContext, Response> {
    let header_value = headers
        .get(header::AUTHORIZATION)
        .map(|v| {
            v.to_str()
                .map_err(|_| AuthError::Malformed("the Authorization header is not text"))
        })
        .transpose()
        .map_err(unauthorized)?;
    let token = match header_value {
        Some(v) => bearer_token(v).map_err(unauthorized)?,
        None => return Err(unauthorized(AuthError::MissingToken)),
    };
    context_for_token(state, headers, token, request_id).await
}

/// The context of a request bearing `token` (from the `Authorization` header, or the web
/// app's sign-in cookie): the same checks whichever way the token came.
pub(crate) async fn context_for_token(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    token: &str,
    request_id: String,
) -> Result<RequestContext, Response> {
    let principal = state
        .verifier
        .authenticate(token)
        .await
        .map_err(unauthorized)?;
    let break_glass = match headers.get(BREAK_GLASS_HEADER) {
        None => None,
        Some(v) => {
            let reason = v.to_str().map(str::trim).unwrap_or_default();
            if reason.is_empty() {
                return Err(ApiError::bad_request(
                    "X-Break-Glass-Reason needs a reason: why must you open this record?",
                )
                .into_response());
            }
            Some(reason.chars().take(MAX_REASON_LEN).collect::<String>())
        }
    };
    let mut ctx = RequestContext::new(principal, break_glass, request_id);
    if let Some(v) = headers.get(X_PROVENANCE_HEADER) {
        let text = v.to_str().map_err(|_| {
            ApiError::bad_request("the X-Provenance header is not text").into_response()
        })?;
        ctx.x_provenance = Some(text.to_owned());
    }
    Ok(ctx)
}

fn unauthorized(error: AuthError) -> Response {
    if error.is_temporary() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            IssueCode::Transient,
            error.to_string(),
        )
        .into_response();
    }
    tracing::info!(reason = %error, "request refused: not authenticated");
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        IssueCode::Login,
        error.to_string(),
    )
    .into_response();
    let challenge = match error.rfc6750_code() {
        // RFC 6750 §3: the description must be printable ASCII without quotes or backslashes.
        Some(code) => {
            let description: String = error
                .to_string()
                .chars()
                .filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\')
                .collect();
            format!("Bearer realm=\"smr\", error=\"{code}\", error_description=\"{description}\"")
        }
        None => "Bearer realm=\"smr\"".to_owned(),
    };
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

/// How long the caller must wait, when over their rate.
pub(crate) fn rate_limited(state: &AppState, ctx: &RequestContext) -> Option<std::time::Duration> {
    let limiter = state.limiter.as_ref()?;
    if ctx.principal.role == Role::System {
        return None;
    }
    let key = format!("{}|{}", ctx.principal.issuer, ctx.principal.user);
    limiter
        .check_key(&key)
        .err()
        .map(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
}

pub(crate) fn too_many_requests(wait: std::time::Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        IssueCode::Throttled,
        format!("too many requests: retry after {seconds} s"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// The client's `X-Request-Id` when it is a sensible token, else a new one.
fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

fn set_request_id(response: &mut Response, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
}

/// The caller's context, as the authentication middleware left it.
pub struct Ctx(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .map(Ctx)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    IssueCode::Login,
                    "this endpoint needs a bearer token",
                )
            })
    }
}
