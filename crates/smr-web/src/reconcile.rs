//! The reconciliation workflow's pages: a target list pasted (a discharge or admission list,
//! as a FHIR List or Bundle) is compared with the record by `$reconcile`; its answer (a `List`
//! in `changes` mode) is shown as one row per medicine with its classification, what differs
//! and the intent the lists show, each with an accept/reject choice; the answer and the
//! choices go to `$reconcile-confirm`. The answer travels in the form unchanged, as it would
//! between a FHIR client's two calls (SMR does not sign it; what is confirmed is what is
//! written, under the confirming clinician's name).

use askama::Template;
use serde_json::{Value, json};

use crate::RenderError;
use crate::json::{concept, items, text};
use crate::layout::{Chrome, Section, Viewer};

const INTENT_EXT: &str = "https://fhir.smr.nhs.uk/StructureDefinition/reconciliation-intent";
const UNMAPPED_EXT: &str = "https://fhir.smr.nhs.uk/StructureDefinition/reconciliation-unmapped";

/// One medicine of a `$reconcile` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileLine {
    /// The contained statement's id (`line-3`): what a decision names.
    pub line: String,
    pub medicine: String,
    /// The discrepancy code (`unchanged`, `omission`, `dose`, …).
    pub classification: String,
    /// What differs, in words ("dose 3 tablet → 2 tablet").
    pub detail: Option<String>,
    /// `intentional`, `undocumented-intentional`, `unintentional` (absent when unchanged).
    pub intent: Option<String>,
    pub unmapped: bool,
    /// The proposed statement's status and dosage.
    pub proposed: String,
}

impl ReconcileLine {
    /// Flagged for review: nothing shows anyone meant the change.
    pub fn needs_review(&self) -> bool {
        self.intent.as_deref() == Some("unintentional")
    }

    /// The classification in words.
    pub fn classification_words(&self) -> &'static str {
        match self.classification.as_str() {
            "unchanged" => "Unchanged",
            "omission" => "Omitted from the new list",
            "commission" => "Added in the new list",
            "dose" => "Dose differs",
            "frequency" => "Frequency differs",
            "route" => "Route differs",
            "formulation" => "Formulation differs",
            "duplication" => "Listed twice",
            "stopped" => "Stopped in the new list",
            "unmapped" => "Not in the dictionary: review",
            _ => "Other difference",
        }
    }
}

/// A `$reconcile` answer read for the page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    pub lines: Vec<ReconcileLine>,
    pub notes: Vec<String>,
}

impl Comparison {
    pub fn from_list(list: &Value) -> Self {
        let contained = items(list, "/contained");
        let lines = items(list, "/entry")
            .iter()
            .map(|e| {
                let line = text(e, "/item/reference")
                    .map(|r| r.trim_start_matches('#').to_owned())
                    .unwrap_or_default();
                let statement = contained
                    .iter()
                    .find(|c| text(c, "/id").as_deref() == Some(line.as_str()));
                let ext = |url: &str| {
                    items(e, "/extension")
                        .iter()
                        .find(|x| text(x, "/url").as_deref() == Some(url))
                };
                let proposed = statement.map_or_else(String::new, |s| {
                    let status = text(s, "/status").unwrap_or_default();
                    match items(s, "/dosage").first().and_then(|d| text(d, "/text")) {
                        Some(d) => format!("{status}: {d}"),
                        None => status,
                    }
                });
                ReconcileLine {
                    medicine: statement
                        .and_then(|s| s.get("medicationCodeableConcept"))
                        .and_then(concept)
                        .unwrap_or_else(|| "(medicine not named)".to_owned()),
                    classification: text(e, "/flag/coding/0/code")
                        .unwrap_or_else(|| "unknown".to_owned()),
                    detail: text(e, "/flag/text"),
                    intent: ext(INTENT_EXT).and_then(|x| text(x, "/valueCoding/code")),
                    unmapped: ext(UNMAPPED_EXT)
                        .and_then(|x| x.get("valueBoolean"))
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    proposed,
                    line,
                }
            })
            .collect();
        Comparison {
            lines,
            notes: items(list, "/note")
                .iter()
                .filter_map(|n| text(n, "/text"))
                .collect(),
        }
    }
}

/// The `$reconcile` Parameters for a pasted target list.
pub fn compare_parameters(target: Value) -> Value {
    json!({"resourceType": "Parameters", "parameter": [{"name": "target", "resource": target}]})
}

/// The `$reconcile-confirm` Parameters: the answer, and `accept` or `reject` per line.
pub fn confirm_parameters(reconciliation: Value, decisions: &[(String, String)]) -> Value {
    let mut parameter = vec![json!({"name": "reconciliation", "resource": reconciliation})];
    for (line, action) in decisions {
        parameter.push(json!({"name": "decision", "part": [
            {"name": "line", "valueString": line},
            {"name": "action", "valueCode": action}
        ]}));
    }
    json!({"resourceType": "Parameters", "parameter": parameter})
}

#[derive(Template)]
#[template(path = "reconcile.html")]
struct ReconcilePage<'a> {
    page: Chrome,
    patient_id: &'a str,
    target: &'a str,
    message: Option<&'a str>,
    comparison: Option<&'a Comparison>,
    /// The `$reconcile` answer as JSON text, carried to the confirmation.
    answer: &'a str,
}

/// The reconciliation page: the paste box, and the comparison when there is one.
pub fn page(
    viewer: &Viewer,
    patient_id: &str,
    target: &str,
    message: Option<&str>,
    comparison: Option<(&Comparison, &str)>,
) -> Result<String, RenderError> {
    Ok(ReconcilePage {
        page: Chrome::new("Medicines reconciliation", Some(viewer), Section::Patients),
        patient_id,
        target,
        message,
        comparison: comparison.map(|(c, _)| c),
        answer: comparison.map_or("", |(_, a)| a),
    }
    .render()?)
}

#[derive(Template)]
#[template(path = "reconciled.html")]
struct ReconciledPage<'a> {
    page: Chrome,
    patient_id: &'a str,
    written: usize,
}

/// After a confirmation: what was written.
pub fn confirmed(viewer: &Viewer, patient_id: &str, written: usize) -> Result<String, RenderError> {
    Ok(ReconciledPage {
        page: Chrome::new("Reconciliation saved", Some(viewer), Section::Patients),
        patient_id,
        written,
    }
    .render()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_reads_as_lines_with_their_classification() {
        let list = json!({"resourceType": "List", "mode": "changes",
            "contained": [{"resourceType": "MedicationStatement", "id": "line-1",
                "status": "active", "medicationCodeableConcept": {"text": "Ramipril 5mg"},
                "dosage": [{"text": "one daily"}]}],
            "entry": [{"item": {"reference": "#line-1"},
                "flag": {"coding": [{"code": "omission"}], "text": "current in the source"},
                "extension": [{"url": INTENT_EXT, "valueCoding": {"code": "unintentional"}}]}],
            "note": [{"text": "1 line flagged for review"}]});
        let c = Comparison::from_list(&list);
        assert_eq!(c.lines.len(), 1);
        let l = &c.lines[0];
        assert_eq!(l.line, "line-1");
        assert_eq!(l.medicine, "Ramipril 5mg");
        assert!(l.needs_review());
        assert_eq!(l.classification_words(), "Omitted from the new list");
        assert_eq!(l.proposed, "active: one daily");
        let p = confirm_parameters(list, &[("line-1".into(), "accept".into())]);
        assert_eq!(p["parameter"][1]["part"][1]["valueCode"], "accept");
    }
}
