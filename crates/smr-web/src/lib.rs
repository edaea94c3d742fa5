//! SMR's web app, the rendering half: askama templates (compile-checked, HTML-escaped by
//! default) and the view models they show, built from the FHIR JSON and results the
//! application layer hands back. No I/O, no HTTP: `smr-server`'s `web` handlers
//! authenticate, call `smr-app` exactly as the FHIR routes do, and pass what they got here.
//!
//! Layout:
//! - [`layout`]: who is signed in and the navigation every page shares (extend
//!   [`layout::Section`] for a new top-level page).
//! - [`json`]: small readers of FHIR JSON (text at a path, codings), shared by the models.
//! - [`patients`]: Patient search results.
//! - [`record`]: the single medication record (`$medication-record` Bundle) as lines with
//!   setting badges, conflicts and each line's sources.
//! - [`issues`]: DetectedIssues (alerts) as rows.
//! - [`pgx`]: genotype/phenotype Observations read by `smr-cds`, with the guideline advice of
//!   `smr-pgx-guidelines` for affected medicines.
//! - [`access_log`]: AuditEvents as "who opened my record, when and why".
//! - [`consent`]: Consent resources as plain sentences.
//! - [`icb`]: the ICB dashboards from the published analytics reports (charts as `data:` SVG
//!   images, tables, CSV links).
//! - [`timeline`]: one medicine's entries across settings, with their Provenance, and its page.
//! - [`reconcile`]: the reconciliation workflow (compare, decide, confirm) and its pages.
//! - [`pages`]: one template per page and the functions that render them.
//!
//! Invariant: nothing reaches the page unescaped; no template uses `|safe`.

pub mod access_log;
pub mod consent;
pub mod icb;
pub mod issues;
pub mod json;
pub mod layout;
pub mod pages;
pub mod patients;
pub mod pgx;
pub mod reconcile;
pub mod record;
pub mod timeline;

pub use layout::{DemoUser, Section, Viewer};

/// The stylesheet every page links to (served at `/app/style.css`: a same-origin file keeps
/// the Content-Security-Policy free of `unsafe-inline`).
pub const STYLESHEET: &str = include_str!("style.css");

/// Why a page could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template rendering failed: {0}")]
    Template(#[from] askama::Error),
}
