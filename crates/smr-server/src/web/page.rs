//! HTML answers: the page with its headers, friendly error pages with the right status, the
//! viewer shown in the header, and reading a posted form with a size limit.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use smr_app::{AppError, RequestContext};
use smr_web::Viewer;

use crate::error::ApiError;

/// Pages load only their own stylesheet and post forms only to SMR; no scripts at all.
/// `data:` images are the ICB dashboards' charts (SVG in `<img>` never runs script).
const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                        form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// The most a form post may carry (a token is 1–2 KB, a reason at most 1 KB).
const MAX_FORM_BYTES: usize = 16 * 1024;

/// An HTML page with `status`.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    response
}

/// The signed-in user as the header shows them.
pub fn viewer(ctx: &RequestContext) -> Viewer {
    let p = &ctx.principal;
    Viewer {
        name: p.name.clone().unwrap_or_else(|| p.user.clone()),
        role: p.role.as_str().to_owned(),
        organisation: p.organisation.clone(),
        patient: p.patient.clone(),
    }
}

/// A friendly error page.
pub fn error_page(
    status: StatusCode,
    viewer: Option<&Viewer>,
    heading: &str,
    message: &str,
) -> Response {
    match smr_web::pages::error(viewer, heading, message) {
        Ok(body) => html(status, body),
        Err(e) => render_failed(&e),
    }
}

/// A page that could not be rendered: logged, and a plain 500.
pub fn render_failed(error: &smr_web::RenderError) -> Response {
    tracing::error!(error = %error, "web page not rendered");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "the page could not be shown",
    )
        .into_response()
}

/// Renders with `render`, or the error page when it fails.
pub fn rendered(status: StatusCode, page: Result<String, smr_web::RenderError>) -> Response {
    match page {
        Ok(body) => html(status, body),
        Err(e) => render_failed(&e),
    }
}

/// What the application layer's refusal or failure becomes on a page: the API's status, the
/// reason in words for a 4xx; a 5xx says only that something failed (the log has the cause).
pub fn app_error(viewer: &Viewer, error: AppError) -> Response {
    let message = error.to_string();
    let status = ApiError::from(error).status;
    status_page(viewer, status, &message)
}

/// The error page for an application-layer failure already turned into status and message.
pub fn status_page(viewer: &Viewer, status: StatusCode, message: &str) -> Response {
    let heading = match status {
        StatusCode::FORBIDDEN => "You may not see this",
        StatusCode::NOT_FOUND | StatusCode::GONE => "Not found",
        StatusCode::BAD_REQUEST => "That request could not be read",
        s if s.is_server_error() => "Something went wrong",
        _ => "That did not work",
    };
    if status.is_server_error() {
        tracing::error!(error = %message, "web page failed");
        return error_page(
            status,
            Some(viewer),
            heading,
            "SMR could not answer just now. Please try again; if it keeps happening, tell your \
             system administrator.",
        );
    }
    error_page(status, Some(viewer), heading, message)
}

/// `/app/…` paths that are not pages.
pub async fn not_found(request: Request) -> Response {
    let viewer = request.extensions().get::<RequestContext>().map(viewer);
    error_page(
        StatusCode::NOT_FOUND,
        viewer.as_ref(),
        "Page not found",
        "There is no page at this address.",
    )
}

/// The fields of a posted `application/x-www-form-urlencoded` body; `None` when it is too
/// large or cannot be read.
pub async fn form_fields(body: Body) -> Option<Vec<(String, String)>> {
    form_fields_up_to(body, MAX_FORM_BYTES).await
}

/// [`form_fields`] with a larger limit, for forms that carry a FHIR list.
pub async fn form_fields_up_to(body: Body, limit: usize) -> Option<Vec<(String, String)>> {
    let bytes = axum::body::to_bytes(body, limit).await.ok()?;
    Some(
        form_urlencoded::parse(&bytes)
            .into_owned()
            .collect::<Vec<_>>(),
    )
}

/// The first value of `name` among `fields`, trimmed; `None` when absent or blank.
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// A FHIR id (`[A-Za-z0-9\-\.]{1,64}`): anything else is not a patient and must not reach a
/// page's links.
pub fn is_fhir_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}
