//! Signing in and out. The form takes a token (any token the API accepts); the demo users
//! `smr serve` made are one click away when the server was given them
//! ([`AppState::with_demo_sign_ins`]). A token is checked before its cookie is set, so a bad
//! one is refused on the form, not on the next page.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use smr_app::{RequestContext, Role};

use super::page::{error_page, field, form_fields, rendered, viewer};
use super::session::{self, clear_cookie, cross_site, sign_in_cookie};
use crate::app::AppState;

/// `GET /app`: where a signed-in user starts.
pub async fn home(request: Request) -> Response {
    let Some(ctx) = request.extensions().get::<RequestContext>() else {
        return session::to_sign_in(false);
    };
    let to = match ctx.principal.role {
        Role::Patient => "/app/me",
        Role::Analyst => {
            return error_page(
                StatusCode::OK,
                Some(&viewer(ctx)),
                "Signed in",
                "An analyst sees disclosure-controlled aggregates only; there are no patient \
                 pages for this role.",
            );
        }
        _ => "/app/patients",
    };
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, HeaderValue::from_static(to))],
    )
        .into_response()
}

/// `GET /app/style.css`.
pub async fn stylesheet() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        smr_web::STYLESHEET,
    )
        .into_response()
}

fn demo_users(state: &AppState) -> Vec<smr_web::DemoUser> {
    state
        .demo_sign_ins
        .iter()
        .map(|d| smr_web::DemoUser {
            label: d.label.clone(),
            organisation: d.organisation.clone(),
        })
        .collect()
}

fn form_page(state: &AppState, status: StatusCode, message: Option<&str>) -> Response {
    rendered(status, smr_web::pages::sign_in(&demo_users(state), message))
}

/// `GET /app/sign-in`.
pub async fn form(State(state): State<AppState>) -> Response {
    form_page(&state, StatusCode::OK, None)
}

/// `POST /app/sign-in`: `token=…`, or `demo=LABEL` for a demo user.
pub async fn submit(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    // A sign-in posted from another site would sign the browser in as someone else.
    if cross_site(&headers) == Some(true) {
        return form_page(
            &state,
            StatusCode::FORBIDDEN,
            Some("Sign in from SMR's own sign-in page."),
        );
    }
    let Some(fields) = form_fields(body).await else {
        return form_page(
            &state,
            StatusCode::BAD_REQUEST,
            Some("The form could not be read."),
        );
    };
    let token = match (field(&fields, "token"), field(&fields, "demo")) {
        (Some(token), _) => token.to_owned(),
        (None, Some(label)) => match state.demo_sign_ins.iter().find(|d| d.label == label) {
            Some(demo) => demo.token.clone(),
            None => {
                return form_page(
                    &state,
                    StatusCode::BAD_REQUEST,
                    Some("There is no such demo user on this server."),
                );
            }
        },
        (None, None) => {
            return form_page(
                &state,
                StatusCode::BAD_REQUEST,
                Some("Paste your access token."),
            );
        }
    };
    // Tolerate a pasted "Bearer " prefix.
    let token = token
        .strip_prefix("Bearer ")
        .unwrap_or(&token)
        .trim()
        .to_owned();
    if let Err(e) = state.verifier.authenticate(&token).await {
        tracing::info!(reason = %e, "web sign-in refused");
        let status = if e.is_temporary() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::UNAUTHORIZED
        };
        // The error's text never contains the token (smr-auth's invariant).
        return form_page(
            &state,
            status,
            Some(&format!("That token was refused: {e}")),
        );
    }
    let Some(cookie) = sign_in_cookie(&token, state.config.tls) else {
        return form_page(
            &state,
            StatusCode::BAD_REQUEST,
            Some("That token cannot be kept in a cookie."),
        );
    };
    let mut response = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, HeaderValue::from_static("/app"))],
    )
        .into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

/// `POST /app/sign-out`: forgets the cookie (the token itself stays valid until it expires).
pub async fn sign_out() -> Response {
    let mut response = session::to_sign_in(false);
    response
        .headers_mut()
        .insert(header::SET_COOKIE, clear_cookie());
    response
}
