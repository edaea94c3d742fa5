//! Pharmacogenomic decision support for SMR, without I/O.
//!
//! - [`genotype`]: genotype/phenotype Observations (HL7 Genomics Reporting IG shape) read into
//!   [`smr_pgx::Interpretation`]s, and built from PharmCAT outside calls.
//! - [`cards`]: an order plus the patient's results → findings (via [`smr_dmd::identify`] and
//!   [`smr_pgx_guidelines::recommend`]) → CDS Hooks 2.0 cards with suggestions.
//! - [`issue`]: findings on current medicines as FHIR DetectedIssues, and cards from them.
//! - [`hooks`]: the CDS Hooks services (discovery, request reading, feedback as AuditEvent).
//! - [`request`]: reading a hook request in one pass, the genotypes only when an order needs them.
//! - [`safety`]: medicines safety cards (interactions, duplication, allergy, renal) from
//!   `smr-safety`'s problems, beside the pharmacogenomic ones.
//! - [`uk_guidance`]: UK guidance asking for a test before a medicine (NICE DG59, MHRA DPYD,
//!   NICE HTE6), from `data/uk-testing-guidance.json`; a card when the test has not been done.
//! - [`view`]: typed, borrowing views of the FHIR elements read from requests (no `Value`).
//!
//! Every knowledge base used (allele tables, guideline tables, the dm+d subset) is parsed
//! once per process by its own crate; nothing here parses data per request.

pub mod cards;
pub mod genotype;
pub mod hooks;
pub mod issue;
pub mod request;
pub mod safety;
pub mod uk_guidance;
pub mod view;

pub use cards::{
    Card, Finding, FindingKind, Indicator, assess_order, assess_order_in_context, card,
};
pub use genotype::{
    GeneResult, GenotypeError, PatientResults, ResultKind, read_observation, select_results,
};
pub use hooks::{Hook, HookRequest, RequestError, SERVICES, Service};
