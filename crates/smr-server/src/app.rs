//! The router and its shared state.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use smr_store::Store;

use crate::results_cache::{PrefetchMemo, ResultsCache};
use crate::routes;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest accepted request body, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// Public base URL of the FHIR endpoint (e.g. `https://smr.example.nhs.uk/fhir`). When not
    /// set, it is derived from each request's `Host` header.
    pub base_url: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 8 * 1024 * 1024,
            base_url: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<ServerConfig>,
    /// Pharmacogenomic results read for CDS calls (see `results_cache`).
    pub(crate) pgx_results: Arc<ResultsCache>,
    /// Genotype prefetches read for CDS calls, by their text (see `results_cache`).
    pub(crate) prefetch_memo: Arc<PrefetchMemo>,
}

impl AppState {
    pub fn new(store: Store, config: ServerConfig) -> Self {
        AppState {
            store,
            config: Arc::new(config),
            pgx_results: Arc::default(),
            prefetch_memo: Arc::default(),
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
        .route("/_history", get(routes::history::system))
        .route(
            "/{res_type}",
            get(routes::search::search_get).post(routes::instance::create),
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
            "/{res_type}/{id}/{operation}",
            get(routes::everything::operation).post(routes::everything::operation),
        )
        .fallback(routes::not_found);
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/cds-services", get(routes::cds::discovery))
        .route("/cds-services/events", get(routes::cds::events))
        .route(
            "/cds-services/{id}",
            axum::routing::post(routes::cds::invoke),
        )
        .route(
            "/cds-services/{id}/feedback",
            axum::routing::post(routes::cds::feedback),
        )
        .nest("/fhir", fhir)
        // Bodies are read by `http::read_body`, which enforces the configured limit and answers
        // with an OperationOutcome; axum's own default limit would answer in plain text.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}
