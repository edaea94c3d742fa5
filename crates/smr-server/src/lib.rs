//! SMR's HTTP API: FHIR R4 REST (`/fhir`) over axum, on top of `smr-store`.
//!
//! Layout:
//! - [`app`]: the router and shared state (application layer, token verifier, configuration).
//! - [`auth`]: bearer tokens → the caller's `RequestContext`; break-glass; rate limits.
//! - `hardening`: request time limits and security headers.
//! - `error`: every failure becomes an `OperationOutcome` with the right HTTP status.
//! - `http`: FHIR content negotiation, bodies with a size limit, `Prefer`/`If-Match` headers,
//!   and responses with `ETag`/`Location`/`Last-Modified`.
//! - `bundle`: building searchset/history/transaction-response Bundles.
//! - `subset`: `_summary` / `_elements` on read, vread, search and history.
//! - [`serve`]: the accept loop with header and idle timeouts, and graceful shutdown; TLS
//!   termination with [`serve_tls`].
//! - [`mllp`]: the HL7 v2 MLLP listener (one task per connection, size and time limits,
//!   graceful shutdown); messages go to `App::hl7v2_message`.
//! - [`tls`]: the certificate and key for TLS, read from PEM files.
//! - `results_cache`: patients' PGx results read for CDS calls, retired by any Observation write.
//! - [`subscriptions`]: rest-hook delivery and the R4 websocket binding of Subscriptions.
//! - [`web`]: the web app under `/app` (sign-in, patient search, the record, the patient's
//!   own view): HTML rendered by `smr-web` from the same `smr-app` calls the FHIR routes make.
//! - `routes/`: one module per kind of interaction (metadata, instance, search, history,
//!   transaction/batch, `$everything`).

pub mod app;
pub mod auth;
mod bundle;
mod error;
mod hardening;
mod http;
pub mod mllp;
mod pgx_intake;
mod results_cache;
mod routes;
mod serve;
pub mod subscriptions;
mod subset;
pub mod tls;
pub mod web;

pub use app::{AppState, ServerConfig, router};
pub use serve::{ConnectionTimeouts, serve, serve_tls};
pub use tls::{TlsConfig, TlsError};
