//! The web app for clinicians and patients, under `/app`: server-rendered HTML (templates and
//! view models in `smr-web`), no JavaScript needed.
//!
//! Every page takes the caller's [`RequestContext`] from the same authentication as the API
//! (a bearer token, or the sign-in cookie holding one: [`session`]) and calls the same
//! `smr-app` methods the FHIR routes call, so a page never shows what the API would refuse
//! the same user, and every page view is audited like the API call it makes.
//!
//! - [`session`]: the sign-in cookie (accepted under `/app` only), redirects to the sign-in
//!   page, the same-origin check on forms.
//! - [`sign_in`]: sign-in and sign-out, demo users, the stylesheet.
//! - [`patients`]: patient search, a patient's record, break-glass.
//! - [`icb`]: the ICB dashboards (analysts): charts, tables, CSV downloads.
//! - [`reconcile`]: the reconciliation workflow (compare, decide, confirm).
//! - [`me`]: a signed-in patient's own record, access log and consent.
//! - [`page`]: HTML responses and friendly error pages.

pub mod icb;
pub mod me;
pub mod page;
pub mod patients;
pub mod reconcile;
pub mod session;
pub mod sign_in;

use axum::Router;
use axum::routing::{get, post};

use crate::app::AppState;

/// Where the web app lives.
pub const PREFIX: &str = "/app";

/// Whether `path` is one of the web app's (`/app` and below; `/application` is not).
pub fn is_web_path(path: &str) -> bool {
    path == PREFIX
        || path
            .strip_prefix(PREFIX)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// A demo user offered on the sign-in page, one click away: the token `smr serve` printed
/// for them, kept server-side (the page posts the label, never shows the token).
#[derive(Clone)]
pub struct DemoSignIn {
    /// "GP", "patient", …: the button's text and what its form posts.
    pub label: String,
    /// ODS code, shown beside the label.
    pub organisation: Option<String>,
    pub token: String,
}

impl std::fmt::Debug for DemoSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("DemoSignIn")
            .field("label", &self.label)
            .field("organisation", &self.organisation)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Offers `users` on the web app's sign-in page (`smr serve` on its embedded store, with
    /// the synthetic population's demo sign-ins).
    pub fn with_demo_sign_ins(mut self, users: Vec<DemoSignIn>) -> Self {
        self.demo_sign_ins = std::sync::Arc::new(users);
        self
    }
}

/// The `/app` routes (mounted beside `/fhir`, behind the same middleware).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/app", get(sign_in::home))
        .route("/app/style.css", get(sign_in::stylesheet))
        .route("/app/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/app/sign-out", post(sign_in::sign_out))
        .route("/app/patients", get(patients::search))
        .route(
            "/app/patients/break-glass",
            post(patients::break_glass_search),
        )
        .route("/app/patients/{id}", get(patients::record))
        .route("/app/patients/{id}/timeline", get(patients::timeline))
        .route(
            "/app/patients/{id}/reconcile",
            get(reconcile::form).post(reconcile::compare),
        )
        .route(
            "/app/patients/{id}/reconcile/confirm",
            post(reconcile::confirm),
        )
        .route(
            "/app/patients/{id}/break-glass",
            post(patients::break_glass_record),
        )
        .route("/app/icb", get(icb::dashboard))
        .route("/app/icb/measure.csv", get(icb::measure_csv))
        .route("/app/icb/safety", get(icb::safety))
        .route("/app/me", get(me::page))
        .route("/app/me/consent", post(me::save_consent))
        .route("/app/{*rest}", get(page::not_found).post(page::not_found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_app_paths_are_web_paths() {
        assert!(is_web_path("/app"));
        assert!(is_web_path("/app/patients/1"));
        assert!(!is_web_path("/application"));
        assert!(!is_web_path("/fhir/Patient"));
    }
}
