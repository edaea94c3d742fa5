//! Wording shared by the checks: how a medicine is named (never, when hidden), and the
//! "cannot check" notes.

use crate::context::Medicine;
use crate::knowledge::Severity;
use crate::problem::{Problem, ProblemKind, SUMMARY_MAX, fnv64, truncate};

/// What the output calls a medicine the caller may not see.
pub(crate) const HIDDEN_MEDICINE: &str = "a medicine you cannot see";

/// Said wherever something hidden is involved: what the caller can do about it.
pub(crate) const ASK: &str = "The patient has chosen to withhold it from your organisation or care setting. \
Ask the patient or their GP before prescribing.";

/// How a medicine is named in output.
pub(crate) trait Names {
    fn shown(&self) -> String;
}

impl Names for Medicine {
    fn shown(&self) -> String {
        if self.visible {
            self.name.clone()
        } else {
            HIDDEN_MEDICINE.to_owned()
        }
    }
}

/// First letter upper-case ("a medicine you cannot see" opening a sentence).
pub(crate) fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

pub(crate) fn severity_phrase(s: Severity) -> &'static str {
    match s {
        Severity::Contraindicated => "contraindicated",
        Severity::Serious => "serious",
        Severity::Moderate => "use with caution",
        Severity::Minor => "minor",
        Severity::Note => "not checked",
    }
}

fn note(
    summary: String,
    detail: String,
    missing: &str,
    key: String,
    implicated: Vec<String>,
) -> Problem {
    Problem {
        kind: ProblemKind::CannotCheck,
        severity: Severity::Note,
        code: None,
        summary: truncate(&summary, SUMMARY_MAX),
        detail,
        mechanism: None,
        management: None,
        citations: Vec::new(),
        evidence: None,
        verification: None,
        implicated,
        hidden: 0,
        override_reasons: Vec::new(),
        suggestion: None,
        missing: Some(missing.to_owned()),
        key: fnv64(&key),
    }
}

const UNMAPPED_MISSING: &str =
    "a dm+d (or SNOMED CT) code, or a medicine name, that SMR's drug dictionary knows";

/// A visible medicine SMR cannot map: none of the rules could be applied to it.
pub(crate) fn unmapped(m: &Medicine) -> Problem {
    note(
        format!(
            "Cannot check: unmapped medicine '{}'",
            truncate(&m.name, 80)
        ),
        format!(
            "SMR could not identify **{}** in its drug dictionary, so no interaction, duplication, allergy or \
             renal check was made for it. This is not a sign that there is no problem: check it by hand, or \
             record it with a dm+d code.",
            m.name
        ),
        UNMAPPED_MISSING,
        format!("unmapped|{}", m.key),
        m.entries.first().cloned().into_iter().collect(),
    )
}

/// A visible current medicine SMR cannot map, so the order could not be checked against it.
pub(crate) fn unmapped_other(m: &Medicine, order: &Medicine) -> Problem {
    note(
        format!(
            "Cannot check {} against unmapped medicine '{}'",
            truncate(&order.name, 40),
            truncate(&m.name, 60)
        ),
        format!(
            "The patient's record holds **{}**, which SMR could not identify in its drug dictionary, so this \
             order was not checked against it for interactions or duplication. Check it by hand.",
            m.name
        ),
        UNMAPPED_MISSING,
        format!("unmapped|{}", m.key),
        m.entries.first().cloned().into_iter().collect(),
    )
}

pub(crate) fn unknown_allergy(label: &str, reference: Option<&String>) -> Problem {
    note(
        format!(
            "Cannot check: unknown allergy substance '{}'",
            truncate(label, 80)
        ),
        format!(
            "The record holds an allergy or intolerance to **{label}**, but SMR does not know which medicines \
             that substance covers (no SNOMED CT or dm+d code it knows, and no name it recognises). Medicines \
             were not checked against it: check it by hand."
        ),
        "a SNOMED CT substance or allergy code, or a dm+d code, SMR knows for the allergy's substance",
        format!(
            "unknown-allergy|{}",
            reference.map_or(label, |r| r.as_str())
        ),
        reference.cloned().into_iter().collect(),
    )
}

pub(crate) fn renal_missing(
    m: &Medicine,
    rule_id: &str,
    days: i64,
    preferred: &str,
    other: &str,
) -> Problem {
    note(
        format!(
            "Cannot check renal dosing of {}: no {preferred} or {other} in the last {days} days",
            truncate(&m.name, 60)
        ),
        format!(
            "**{}** has renal dose rules, but the record holds no {preferred} (nor {other}) from the last {days} \
             days, so its dose was not checked against renal function. Check renal function before relying on \
             the dose.",
            m.name
        ),
        &format!("{preferred} (or {other}) within the last {days} days"),
        format!("renal-missing|{rule_id}|{}", m.key),
        m.entries.first().cloned().into_iter().collect(),
    )
}
