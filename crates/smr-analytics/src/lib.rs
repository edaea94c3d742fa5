//! SMR's regional analytics, pure: from per-patient facts to disclosure-controlled measures.
//!
//! - [`facts`]: the input, one [`PatientFacts`] per patient (organisation codes, equity
//!   attributes, opt-out, and dated events: prescriptions, genotype results, CDS alerts with
//!   feedback, prescribing changes, admissions). The gatherer (smr-app) builds them from the
//!   store; nothing here does I/O.
//! - [`knowledge`]: which drugs have CPIC level A guidance and which genes matter for each,
//!   from smr-pgx-guidelines.
//! - [`aggregate`]: one pass over the patients (opted-out patients are skipped before anything
//!   is counted) into raw counts per ICB, sub-ICB and practice, for a month and the month
//!   before, overall and per equity group. Raw counts stay inside the crate.
//! - [`publish`]: the public way out. Every table goes through `smr_sdc::publish` (counts of
//!   1–7 redacted, the rest rounded to 5, totals from rounded values, secondary suppression);
//!   rates, equity gaps and trends, medians and estimates are computed from published values.
//! - [`value`]: ADRs, admissions, bed-days and pounds avoided, from `data/value-model.json`
//!   (every parameter cited, low/central/high, overridable).
//! - [`render`]: SVG bar and line charts (title, desc, text labels, no script) and CSV.
//!
//! Measures and sources: `docs/analytics.md`; the disclosure rule: `docs/disclosure-control.md`.

pub mod aggregate;
pub mod facts;
pub mod knowledge;
pub mod publish;
pub mod render;
pub mod synthetic;
pub mod value;

pub use aggregate::{Aggregate, Dimension, Level, Measure, aggregate};
pub use facts::{
    AgeBand, Alert, EthnicGroup, Feedback, GenotypeResult, ImdQuintile, Month, PatientFacts,
    PrescribingChange, Prescription, Sex,
};
pub use knowledge::CpicDrugs;
pub use publish::{
    AnalyticsError, DelayReport, EquityReport, Gap, MeasureReport, ReasonsReport, SplitReport,
    Trend, publish_delay_equity, publish_delays, publish_equity, publish_measure,
    publish_override_reasons, publish_split,
};
pub use value::{Parameters, Range, ValueModel, ValueReport, estimate_value};

#[cfg(test)]
mod tests;
