//! The router and its shared state.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::get;
use smr_app::App;
use smr_app::subscriptions::{HookSender, SubscriptionPolicy};
use smr_auth::Verifier;
use tower_http::normalize_path::NormalizePath;

use crate::results_cache::PrefetchMemo;
use crate::{auth, hardening, routes};

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest accepted request body, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// Public base URL of the FHIR endpoint (e.g. `https://smr.example.nhs.uk/fhir`), used in
    /// `Location`, `fullUrl` and paging links. When not set: from the forwarding headers if
    /// they are trusted, otherwise `http://localhost/fhir` (`smr serve` always sets it).
    pub base_url: Option<String>,
    /// Take the base URL from `X-Forwarded-Proto`/`X-Forwarded-Host`/`Host` when no base URL
    /// is configured. Only behind a proxy that sets them: otherwise any client could point
    /// the links SMR hands to other clients at a host of its choosing.
    pub trust_forwarded_headers: bool,
    /// Requests per second each user may make (burst: the same number); `None`: no limit.
    /// Back-end systems (role `system`) are exempt: they manage their own load.
    pub rate_limit: Option<NonZeroU32>,
    /// How long a request may take before it is answered with 503.
    pub request_timeout: Duration,
    /// Served over TLS (adds Strict-Transport-Security).
    pub tls: bool,
    /// Rest-hook allow-list, retries and signing key of Subscriptions.
    pub subscriptions: SubscriptionPolicy,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 8 * 1024 * 1024,
            base_url: None,
            trust_forwarded_headers: false,
            rate_limit: None,
            request_timeout: Duration::from_secs(30),
            tls: false,
            subscriptions: SubscriptionPolicy::default(),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    /// Every use case goes through the application layer.
    pub app: App,
    /// Checks bearer tokens.
    pub verifier: Arc<Verifier>,
    pub config: Arc<ServerConfig>,
    /// Genotype prefetches read for CDS calls, by their text (see `results_cache`).
    pub(crate) prefetch_memo: Arc<PrefetchMemo>,
    pub(crate) limiter: Option<Arc<auth::UserLimiter>>,
    /// The web app's demo sign-ins (see `web::DemoSignIn`); empty unless the caller adds them.
    pub(crate) demo_sign_ins: Arc<Vec<crate::web::DemoSignIn>>,
    /// The change feed's consumers (PGx re-check, DetectedIssue events), running while any
    /// clone of the state lives.
    _feed: Arc<smr_app::feed::FeedConsumers>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub fn new(app: App, verifier: Arc<Verifier>, config: ServerConfig) -> Self {
        let limiter = config.rate_limit.map(auth::user_limiter);
        // Before the feed consumers start: they deliver the notifications.
        let hooks = match crate::subscriptions::RestHooks::new() {
            Ok(hooks) => Some(Arc::new(hooks) as Arc<dyn HookSender>),
            Err(e) => {
                tracing::error!(error = %e, "no HTTP client for rest-hook subscriptions");
                None
            }
        };
        app.configure_subscriptions(config.subscriptions.clone(), hooks);
        AppState {
            _feed: app.start_feed_consumers(),
            app,
            verifier,
            config: Arc::new(config),
            prefetch_memo: Arc::default(),
            limiter,
            demo_sign_ins: Arc::default(),
        }
    }
}

/// The whole HTTP API.
pub fn router(state: AppState) -> Router {
    let fhir = Router::new()
        .route("/metadata", get(routes::metadata::capability_statement))
        .route(
            "/",
            axum::routing::post(routes::bundle::transaction_or_batch),
        )
        .route(
            "/$process-message",
            axum::routing::post(routes::eps::process_message),
        )
        .route("/_history", get(routes::history::system))
        // Bulk Data export (routes/export.rs, docs/bulk-export.md).
        .route("/$export", get(routes::export::system))
        .route("/Patient/$export", get(routes::export::patient))
        .route("/Group/{id}/$export", get(routes::export::group))
        .route(
            "/$export-status/{job}",
            get(routes::export::status).delete(routes::export::cancel),
        )
        .route("/$export-file/{job}/{file}", get(routes::export::file))
        .route("/CodeSystem/$lookup", get(routes::terminology::lookup))
        .route(
            "/{res_type}",
            get(routes::search::search_get)
                .post(routes::instance::create)
                .put(routes::instance::conditional_update),
        )
        .route(
            "/{res_type}/_search",
            axum::routing::post(routes::search::search_post),
        )
        .route("/{res_type}/_history", get(routes::history::type_level))
        .route(
            "/{res_type}/{id}",
            get(routes::instance::read)
                .put(routes::instance::update)
                .patch(routes::instance::patch)
                .delete(routes::instance::delete),
        )
        .route("/{res_type}/{id}/_history", get(routes::history::instance))
        .route(
            "/{res_type}/{id}/_history/{version}",
            get(routes::instance::vread),
        )
        .route(
            "/Patient/{id}/$pgx-outside-calls",
            axum::routing::post(crate::pgx_intake::outside_calls),
        )
        .route(
            "/Patient/{id}/$pgx-vcf",
            axum::routing::post(crate::pgx_intake::vcf),
        )
        .route(
            "/Patient/{id}/$medication-record",
            get(routes::medication_record::operation),
        )
        .route(
            "/Patient/{id}/$safety-check",
            get(routes::safety::operation),
        )
        .route("/Patient/{id}/$pincer", get(routes::pincer::patient))
        .route(
            "/Patient/{id}/$reconcile",
            axum::routing::post(routes::reconcile::compare),
        )
        .route(
            "/Patient/{id}/$reconcile-confirm",
            axum::routing::post(routes::reconcile::confirm),
        )
        .route(
            "/Patient/{id}/$reconcile-timeliness",
            get(routes::reconcile::timeliness),
        )
        .route(
            "/Subscription/{id}/$secret",
            get(routes::subscription::secret),
        )
        .route("/websocket", get(crate::subscriptions::websocket))
        .route(
            "/{res_type}/{id}/{operation}",
            get(routes::everything::operation).post(routes::everything::operation),
        )
        .fallback(routes::not_found);
    let api = Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/cds-services", get(routes::cds::discovery))
        .route("/cds-services/events", get(routes::cds::events))
        .route("/analytics/pincer", get(routes::pincer::aggregates))
        .route(
            "/analytics/{report}",
            get(routes::analytics::report_handler),
        )
        .route(
            "/cds-services/{id}",
            axum::routing::post(routes::cds::invoke),
        )
        .route(
            "/cds-services/{id}/feedback",
            axum::routing::post(routes::cds::feedback),
        )
        .nest("/fhir", fhir)
        // The web app for clinicians and patients (HTML pages; `web`).
        .merge(crate::web::router())
        // Outermost last: headers on every answer, then the time limit, then who is asking.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(middleware::from_fn(hardening::request_limits))
        .layer(middleware::from_fn(hardening::error_bodies))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            hardening::time_limit,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            hardening::security_headers,
        ))
        // Bodies are read by `http::read_body`, which enforces the configured limit and answers
        // with an OperationOutcome; axum's own default limit would answer in plain text.
        .layer(DefaultBodyLimit::disable())
        .with_state(state);
    // `/fhir/`, `/fhir/metadata/` and `/fhir/Patient/` are the same endpoints as without the
    // slash (fhir-kit-client posts transactions to `base + "/"`). The path is trimmed before
    // routing, which a layer on the API router itself would be too late for.
    Router::new().fallback_service(NormalizePath::trim_trailing_slash(api))
}
