//! Medicines reconciliation (pure, issue 11): a source list of medicines (by default the
//! patient's SMR record) compared with a target list (an admission medication history, a
//! discharge summary), each medicine classified with the discrepancy taxonomy and an intent,
//! and the clinician's confirmation planned as one write.
//!
//! Layout:
//! - [`line`]: one medication line, read with `smr-record`'s reading of an entry and resolved
//!   through the same dictionary lookup, so lines meet the record on the moiety key;
//! - [`compare`]: lines grouped by medicine and classified (unchanged, omission, commission,
//!   dose, frequency, route, formulation, duplication, stopped; unmapped) with an intent
//!   (intentional, undocumented intentional, unintentional);
//! - [`fhir_in`]: the `$reconcile` Parameters (`source`, `target`: List or Bundle) read;
//! - [`fhir_out`]: the answer (a `List`, mode `changes`) and the confirmation plan
//!   (MedicationStatements and a `snapshot` List);
//! - [`timeliness`]: NICE QS120 statements 4 and 5, per patient and aggregated.
//!
//! Invariants: every input line is in exactly one output line (a property test checks it);
//! an unmapped medicine is a line marked unmapped, never dropped; an empty list is said to be
//! empty; nothing here does I/O.

pub mod compare;
pub mod fhir_in;
pub mod fhir_out;
pub mod line;
pub mod timeliness;

#[cfg(test)]
mod tests;

pub use compare::{Discrepancy, Empty, Intent, Outcome, Reconciliation, Side, compare};
pub use fhir_in::{InputError, InputList, Request, read_request};
pub use fhir_out::{ConfirmPlan, ConfirmRequest, changes_list, plan_confirm, read_confirm};
pub use line::{MedLine, State};
