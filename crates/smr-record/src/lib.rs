//! The single medication record (pure): a patient's medication entries from every care
//! setting — prescriptions (GP plans and their issues, hospital orders, discharge lists),
//! dispenses, administrations and statements — merged into one list of medicines.
//!
//! Layout:
//! - [`source`]: one entry read into what the merge needs (role, status, dates, dose, route);
//! - [`setting`]: which care setting an entry came from (its Provenance, its organisation,
//!   its category; never guessed);
//! - [`merge`]: entries → lines (one per moiety, at VMP level when the products agree);
//! - [`conflicts`]: the problems found while merging, as findings;
//! - [`output`]: the record as a FHIR `collection` Bundle (List, MedicationStatements,
//!   DetectedIssues);
//! - [`timeline`]: one medicine's entries across settings, in date order, with Provenance;
//! - [`current`]: the current medicines (and a draft order) as `smr-safety` reads them.
//!
//! Invariants: the record is a function of the entries, Provenances and dictionary (not of
//! the order they arrive in, which a property test checks); no entry is dropped (an entry
//! no dictionary knows is its own "unmapped" line); entered-in-error entries are not
//! medicines.

pub mod conflicts;
pub mod current;
pub mod merge;
pub mod output;
pub mod setting;
pub mod source;
pub mod timeline;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use serde_json::Value;
use smr_dmd::MedicineLookup;

pub use conflicts::{Finding, FindingKind};
pub use merge::{Entry, Line, LineMedicine, LineStatus};
pub use source::SOURCE_TYPES;

/// Stopped and completed medicines stay on the record this long by default.
pub const DEFAULT_STOPPED_WITHIN_DAYS: i64 = 90;

/// What the merge reads: the patient's medication entries and what describes them.
#[derive(Debug, Clone, Copy)]
pub struct RecordInput<'a> {
    /// The Patient's id.
    pub patient: &'a str,
    /// "Now", microseconds since the epoch, and as a FHIR instant.
    pub now: i64,
    pub now_text: &'a str,
    /// Stopped or completed lines ended longer ago than this are left out.
    pub stopped_within_days: i64,
    /// MedicationRequest, MedicationDispense, MedicationAdministration and
    /// MedicationStatement resources (others are ignored).
    pub sources: &'a [Value],
    /// Provenance resources about them.
    pub provenances: &'a [Value],
    /// Organizations they name (for ODS codes and care settings).
    pub organisations: &'a [Value],
    /// Medication resources that entries reference (`medicationReference`).
    pub medications: &'a [Value],
}

/// The merged record.
#[derive(Debug, Clone)]
pub struct MedicationRecord {
    pub entries: Vec<Entry>,
    /// The lines shown, current first, then by name.
    pub lines: Vec<Line>,
    pub findings: Vec<Finding>,
}

impl MedicationRecord {
    /// The record as a FHIR `collection` Bundle.
    pub fn to_bundle(&self, input: &RecordInput<'_>) -> Value {
        output::bundle(
            input.patient,
            input.now_text,
            &self.lines,
            &self.findings,
            input.stopped_within_days,
        )
    }
}

pub(crate) fn medications_by_reference(medications: &[Value]) -> HashMap<String, Value> {
    medications
        .iter()
        .filter_map(|m| {
            let id = m.get("id")?.as_str()?;
            Some((format!("Medication/{id}"), m.clone()))
        })
        .collect()
}

/// Merges the entries into the record.
pub fn merge(input: &RecordInput<'_>, lookup: &dyn MedicineLookup) -> MedicationRecord {
    let provenances = setting::Provenances::new(input.provenances, input.organisations);
    let medications = medications_by_reference(input.medications);
    let entries = merge::entries(input.sources, &provenances, &medications, lookup);
    let all_lines = merge::lines(&entries, input.sources, input.now);
    let findings = conflicts::find(&all_lines, &entries, input.now);
    let cutoff = input.now - input.stopped_within_days.max(0) * merge::DAY_MICROS;
    let mut lines: Vec<Line> = all_lines
        .into_iter()
        .filter(|l| match l.status {
            LineStatus::Active | LineStatus::OnHold | LineStatus::Unknown => true,
            LineStatus::Stopped | LineStatus::Completed => {
                l.end.as_ref().is_none_or(|(end, _)| *end >= cutoff)
            }
        })
        .collect();
    lines.sort_by(|a, b| {
        a.status
            .cmp(&b.status)
            .then_with(|| a.display().to_lowercase().cmp(&b.display().to_lowercase()))
            .then_with(|| a.key.cmp(&b.key))
    });
    let shown: std::collections::HashSet<&str> = lines.iter().map(|l| l.key.as_str()).collect();
    let findings = findings
        .into_iter()
        .filter(|f| f.lines.iter().all(|k| shown.contains(k.as_str())))
        .collect();
    MedicationRecord {
        entries,
        lines,
        findings,
    }
}

/// Parses `stopped-within`: whole days (`90`), or a number with a unit (`90d`, `12wk`, `6mo`,
/// `1a`; also `days`, `weeks`, `months`, `years`). `None` when it is neither.
pub fn parse_stopped_within(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().ok()?;
    let days = match unit.trim() {
        "" | "d" | "day" | "days" => 1,
        "wk" | "w" | "week" | "weeks" => 7,
        "mo" | "month" | "months" => 30,
        "a" | "y" | "year" | "years" => 365,
        _ => return None,
    };
    n.checked_mul(days).filter(|d| *d <= 365 * 200)
}
