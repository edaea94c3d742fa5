//! SMR's application layer: every use case, taking the caller's [`RequestContext`].
//!
//! The wire (FHIR REST, CDS Hooks, later MLLP, web pages, CLI import) parses requests and
//! renders answers; everything between — may this caller do this, to this patient, what
//! does their view of the record hide, and the audit record of what happened — is here,
//! and only then the store.
//!
//! Layout:
//! - [`App`] (this file): the handle the wire holds; cheap to clone.
//! - `authorize`: role table and SMART scopes per interaction, the caller's organisation
//!   keys (cached), the [`smr_store::Access`] compiled into the store's SQL.
//! - `audit`: AuditEvents shaped like IHE Basic Audit Log Patterns, appended to the store's
//!   hash chain; the patient's and administrator's view of them.
//! - `records`: read, vread, search, history, `$everything`, and writes (create, update,
//!   patch, delete, transaction, batch) with sensitivity labels applied.
//! - `pgx`: pharmacogenomic results and the re-check of current medicines.
//! - `terminology`: the drug dictionary (imported dm+d release over the built-in ones).
//! - `provenance`: who made a write, as the template of the Provenance the store writes.
//! - `feed`: what follows a commit (the PGx re-check, the DetectedIssue events), driven by
//!   the store's change feed, never by the handler that wrote.
//! - `medication_record`: `$medication-record`, merged by `smr-record`.
//! - `subscriptions`: R4 Subscriptions: who may hold one (the patient its criteria names),
//!   and running them from the change feed (websocket pings, signed rest-hooks).
//! - `eps`: `$process-message`, NHS EPS FHIR messages planned by `smr-eps` and written as
//!   one transaction.
//! - `hl7v2`: an HL7 v2 message (from MLLP or a file) stored as its sender, answered by an ACK.
//! - `export`: FHIR Bulk Data `$export` jobs (NDJSON files written by a background task,
//!   de-identified by `smr-deid` on request).
//! - `safety`: the medicines safety checks' inputs (the whole record, visibility marked) and
//!   `$safety-check`.
//! - `safety_recheck`: the `safety-recheck` feed consumer keeping the stored safety
//!   DetectedIssues of a record current (created, updated, closed when no longer found).
//! - `reconcile`: medicines reconciliation (`$reconcile`, `$reconcile-confirm`,
//!   `$reconcile-timeliness`), compared by `smr-reconcile`.
//! - `analytics`: the regional analytics (`/analytics/*`): facts gathered from the store for
//!   `smr-analytics`, analysts only, every question audited.
//! - `pincer`: the PINCER indicators: `$pincer` for one patient, and the disclosure-controlled
//!   aggregates per practice, sub-ICB and ICB for analysts.
//!
//! Invariants:
//! - Every use case authorises before it touches the store, and records an AuditEvent of
//!   its outcome — allowed or refused — before it returns; a read's record is committed
//!   before its data is handed back, a write's in the same database transaction.
//! - Refused requests write nothing but their audit record.
//! - Nothing here knows HTTP.

pub mod analytics;
mod audit;
mod authorize;
pub mod cds;
pub mod eps;
mod error;
pub mod export;
pub mod feed;
pub mod hl7v2;
pub mod import;
pub mod medication_record;
pub mod pgx;
pub mod pincer;
mod provenance;
pub mod reconcile;
mod records;
pub mod safety;
pub mod safety_recheck;
pub mod subscriptions;
mod terminology;

use std::sync::Arc;

use smr_store::Store;

pub use audit::{AuditAction, Event};
pub use authorize::OrgKeys;
pub use error::AppError;
pub use records::{PatchOutcome, WriteKind};
pub use smr_access::{CareSetting, Interaction, Principal, PurposeOfUse, RequestContext, Role};

/// The application: the store plus what the use cases share.
#[derive(Debug, Clone)]
pub struct App {
    store: Store,
    orgs: Arc<authorize::OrgKeyCache>,
    events: Arc<pgx::IssueEvents>,
    pgx_results: Arc<pgx::ResultsCache>,
    /// The drug dictionary (see `terminology`).
    terminology: Arc<terminology::Terminology>,
    /// Subscriptions' policy, index and websocket notifications (see `subscriptions`).
    subscriptions: Arc<subscriptions::Subscriptions>,
    /// Bulk Data export jobs and where their files go (see `export`).
    exports: Arc<export::Exports>,
    /// Which patient each recent CDS card was about (see `cds::CardLedger`).
    cards: Arc<cds::CardLedger>,
    /// Patients' records as the CDS safety checks last read them (see `safety::SafetyCache`).
    safety_cache: Arc<safety::SafetyCache>,
}

impl App {
    pub fn new(store: Store) -> Self {
        App {
            store,
            orgs: Arc::default(),
            events: Arc::default(),
            pgx_results: Arc::default(),
            terminology: Arc::default(),
            subscriptions: Arc::default(),
            exports: Arc::new(export::Exports::temporary()),
            cards: Arc::default(),
            safety_cache: Arc::default(),
        }
    }

    /// Which engine the store runs on (for health checks and diagnostics).
    pub fn engine(&self) -> smr_store::Engine {
        self.store.engine()
    }

    /// Whether the store can serve reads now (for `/healthz`); the error says why not.
    pub async fn health(&self) -> Result<(), smr_store::StoreError> {
        self.store.ping(std::time::Duration::from_secs(2)).await
    }

    /// Closes the store's connections (at shutdown).
    pub async fn close(&self) {
        self.store.close().await;
    }
}

/// Microseconds since the epoch, now.
pub(crate) fn now_micros() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64
}
