//! Medicines safety rules for SMR, without I/O (issue 11, first part).
//!
//! Every rule is a data entry that cites its source, version and evidence; the code only
//! reads the entries and applies them. The data files (`data/`, compiled in):
//!
//! - `classes.json`: therapeutic classes as ingredient-name lists, each citing its BNF section;
//! - `interactions.json`: the 15 high-priority interactions of Phansalkar et al. (JAMIA 2012)
//!   and interactions named in MHRA Drug Safety Updates (and the PINCER anticoagulant + NSAID
//!   indicator), with severity, mechanism, management and the article each comes from;
//! - `duplicate-classes.json`: classes where two concurrent members are a hazard (also read by
//!   `smr-record`'s merge);
//! - `allergy.json`: allergy substance and finding codes (checked SCTIDs), name terms, and
//!   documented cross-reactivity;
//! - `renal.json`: renal dose bands against eGFR or creatinine clearance, with the LOINC and
//!   SNOMED CT codes of those results and the "recent" window.
//!
//! Layout:
//! - [`knowledge`]: the data files' shapes, parsed once, validated by [`check_data`];
//! - [`rules`]: [`RuleSource`], the interface a deployment implements to plug in another
//!   interaction source, and [`Bundled`], the data above;
//! - [`classes`]: which classes a medicine's ingredients belong to (salts match their base);
//! - [`context`]: what a check reads: medicines (each visible or not to the caller),
//!   allergies, renal results, now;
//! - [`fhir_in`]: AllergyIntolerance and Observation resources read into that context;
//! - [`dose`]: a medicine's daily dose of an ingredient, when strength and dosage say;
//! - [`check`]: [`check_order`] and [`review_record`], and the four kinds of rule;
//! - [`problem`]: what a check finds ([`Problem`]), de-duplicated and sorted most severe first;
//! - [`fhir_out`]: problems as FHIR DetectedIssues (and notes as OperationOutcome issues);
//! - [`pincer`]: the PINCER prescribing-safety indicators (`data/pincer.json`): per patient
//!   and aggregated per practice, sub-ICB and ICB.
//!
//! Invariants: a medicine, allergy or result the caller may not see (`visible: false`) is used
//! by every rule but never named, coded or referenced in the output (a property test checks
//! this); a medicine SMR cannot map, an allergy substance it does not know and a renal rule
//! without a recent result each give an explicit "cannot check" note, never silence.

pub mod check;
pub mod classes;
pub mod context;
pub mod dose;
pub mod fhir_in;
pub mod fhir_out;
pub mod knowledge;
pub mod pincer;
pub mod problem;
pub mod rules;

#[cfg(test)]
mod tests;

pub use check::{check_order, review_record};
pub use context::{Allergy, AllergyStatus, DoseFacts, Medicine, RenalResult, SafetyContext};
pub use knowledge::{DataError, Measure, Severity, check_data};
pub use problem::{Citation, IssueCode, OverrideReason, Problem, ProblemKind, Suggestion};
pub use rules::{Bundled, RuleSource, bundled};

/// Code system for SMR's own codes (override reasons, card topics). The same placeholder
/// canonical as the PGx cards use until SMR publishes its terminology.
pub const SMR_SYSTEM_BASE: &str = "https://fhir.smr.nhs.uk";

/// Microseconds in a day.
pub(crate) const DAY_MICROS: i64 = 86_400_000_000;
