//! Who is looking at a page. A page request authenticates exactly like an API request, with
//! the token from the `Authorization: Bearer` header (scripts, tests) or, from a browser, from
//! the sign-in cookie — which is read here only, so it is never accepted outside `/app`.
//!
//! A page request without a usable token is redirected to the sign-in page (303), not
//! answered with a JSON 401. A cookie-authenticated form post must come from SMR's own pages
//! (`Sec-Fetch-Site`, else `Origin` against `Host`): with the cookie's `SameSite=Strict`,
//! that is the defence against cross-site request forgery.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::page::{error_page, viewer};
use crate::app::AppState;
use crate::auth;

/// The sign-in cookie: it holds the bearer token itself, so SMR keeps no session state.
pub const COOKIE: &str = "smr_session";
pub const SIGN_IN_PATH: &str = "/app/sign-in";

/// Pages anyone may load: the sign-in form (it checks its own posts) and the stylesheet.
fn is_public(path: &str) -> bool {
    matches!(path, SIGN_IN_PATH | "/app/style.css")
}

pub(crate) async fn authenticate(
    state: &AppState,
    mut request: Request,
    next: Next,
    request_id: String,
) -> Response {
    if is_public(request.uri().path()) {
        return next.run(request).await;
    }
    let headers = request.headers().clone();
    let (result, by_cookie) = if headers.contains_key(header::AUTHORIZATION) {
        (auth::context(state, &headers, request_id).await, false)
    } else if let Some(token) = cookie_token(&headers) {
        (
            auth::context_for_token(state, &headers, &token, request_id).await,
            true,
        )
    } else {
        return to_sign_in(false);
    };
    let ctx = match result {
        Ok(ctx) => ctx,
        // An expired or unknown token: sign in again (and forget the cookie that held it).
        Err(refusal) if refusal.status() == StatusCode::UNAUTHORIZED => {
            return to_sign_in(by_cookie);
        }
        // An empty break-glass reason (400), the token service unreachable (503): as the API.
        Err(other) => return other,
    };
    if by_cookie && !is_safe(request.method()) && !same_origin(&headers) {
        return error_page(
            StatusCode::FORBIDDEN,
            Some(&viewer(&ctx)),
            "This form did not come from SMR",
            "SMR accepts forms only from its own pages. Open the page again and resubmit.",
        );
    }
    if let Some(wait) = auth::rate_limited(state, &ctx) {
        return auth::too_many_requests(wait);
    }
    request.extensions_mut().insert(ctx);
    next.run(request).await
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

/// 303 to the sign-in page; with `clear`, the sign-in cookie is removed too.
pub fn to_sign_in(clear: bool) -> Response {
    let mut response = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, HeaderValue::from_static(SIGN_IN_PATH))],
    )
        .into_response();
    if clear {
        response
            .headers_mut()
            .append(header::SET_COOKIE, clear_cookie());
    }
    response
}

/// The token in the sign-in cookie, when there is one.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty()).then(|| value.to_owned())
        })
}

/// The cookie that signs a browser in: the token, readable by no script
/// (`HttpOnly`), sent on no cross-site request (`SameSite=Strict`), to `/app` only.
pub fn sign_in_cookie(token: &str, tls: bool) -> Option<HeaderValue> {
    let secure = if tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/app{secure}"
    ))
    .ok()
}

pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("smr_session=; HttpOnly; SameSite=Strict; Path=/app; Max-Age=0")
}

/// Whether a form post comes from SMR's own pages: the browser's `Sec-Fetch-Site` when it
/// sends one, else `Origin` naming the host the request was sent to. A post with neither is
/// not from a current browser's page and is refused.
pub fn same_origin(headers: &HeaderMap) -> bool {
    cross_site(headers) == Some(false)
}

/// `Some(true)` when the headers show a cross-site request, `Some(false)` same-origin,
/// `None` when they do not say (no `Sec-Fetch-Site`, no `Origin`).
pub fn cross_site(headers: &HeaderMap) -> Option<bool> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text("sec-fetch-site") {
        return Some(!matches!(site, "same-origin" | "none"));
    }
    let origin = text("origin")?;
    let Some(host) = text("host") else {
        return Some(true);
    };
    let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
    Some(!origin_host.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=b; smr_session=tok.en; c=d")]);
        assert_eq!(cookie_token(&h).as_deref(), Some("tok.en"));
        assert_eq!(cookie_token(&headers(&[("cookie", "smr_session=")])), None);
    }

    #[test]
    fn only_same_origin_posts_pass() {
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(same_origin(&headers(&[
            ("origin", "http://smr.test"),
            ("host", "smr.test")
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "smr.test")
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "null"),
            ("host", "smr.test")
        ])));
        assert!(!same_origin(&HeaderMap::new()));
    }

    #[test]
    fn the_cookie_is_strict_http_only_and_scoped_to_app() {
        let c = sign_in_cookie("t", false).expect("cookie");
        let c = c.to_str().expect("text");
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/app"));
        assert!(
            sign_in_cookie("t", true)
                .is_some_and(|c| c.to_str().is_ok_and(|c| c.ends_with("; Secure")))
        );
    }
}
