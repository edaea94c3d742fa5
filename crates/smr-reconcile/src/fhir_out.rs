//! The reconciliation as FHIR: the `$reconcile` answer (a `List`, mode `changes`, one entry
//! per medicine, the proposed medicine contained), and the `$reconcile-confirm` plan (the
//! reconciled MedicationStatements and the reconciliation `List`, mode `snapshot`, written
//! together).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::compare::{Discrepancy, Empty, Intent, Outcome, Reconciliation, Side};
use crate::fhir_in::InputError;
use crate::line::MedLine;

/// SMR's code system for the discrepancy taxonomy (`List.entry.flag`).
pub const DISCREPANCY_SYSTEM: &str =
    "https://fhir.smr.nhs.uk/CodeSystem/reconciliation-discrepancy";
/// SMR's code system for the intent of a discrepancy.
pub const INTENT_SYSTEM: &str = "https://fhir.smr.nhs.uk/CodeSystem/reconciliation-intent";
/// SMR's code system for a clinician's decision on a line.
pub const DECISION_SYSTEM: &str = "https://fhir.smr.nhs.uk/CodeSystem/reconciliation-decision";
pub const EXT_INTENT: &str = "https://fhir.smr.nhs.uk/StructureDefinition/reconciliation-intent";
pub const EXT_DIFFERENCE: &str =
    "https://fhir.smr.nhs.uk/StructureDefinition/reconciliation-difference";
pub const EXT_DECISION: &str =
    "https://fhir.smr.nhs.uk/StructureDefinition/reconciliation-decision";
pub const EXT_SETTING: &str = "https://fhir.smr.nhs.uk/StructureDefinition/reconciliation-setting";
pub const EXT_SOURCE: &str = "https://fhir.smr.nhs.uk/StructureDefinition/reconciliation-source";
pub const EXT_TARGET: &str = "https://fhir.smr.nhs.uk/StructureDefinition/reconciliation-target";
pub const EXT_UNMAPPED: &str =
    "https://fhir.smr.nhs.uk/StructureDefinition/reconciliation-unmapped";
/// SNOMED CT 430193006 |Medication reconciliation (procedure)|: `List.code` of both lists.
pub const SNOMED: &str = "http://snomed.info/sct";
pub const RECONCILIATION_CODE: &str = "430193006";
pub const RECONCILIATION_DISPLAY: &str = "Medication reconciliation";
const EMPTY_REASON_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/list-empty-reason";

fn code() -> Value {
    json!({"coding": [{"system": SNOMED, "code": RECONCILIATION_CODE, "display": RECONCILIATION_DISPLAY}],
           "text": "Medicines reconciliation"})
}

/// Whether a List is a reconciliation (its code).
pub fn is_reconciliation(list: &Value) -> bool {
    list.pointer("/code/coding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("system").and_then(Value::as_str) == Some(SNOMED)
                && c.get("code").and_then(Value::as_str) == Some(RECONCILIATION_CODE)
        })
}

fn discrepancy_coding(d: Discrepancy) -> Value {
    json!({"system": DISCREPANCY_SYSTEM, "code": d.code(), "display": d.display()})
}

fn intent_extension(i: Intent) -> Value {
    json!({"url": EXT_INTENT, "valueCoding": {"system": INTENT_SYSTEM, "code": i.code(), "display": i.display()}})
}

fn side_reference(line: &MedLine) -> Value {
    if line.stored {
        json!({"reference": line.reference, "display": line.display})
    } else {
        json!({"display": format!("{}: {}", line.reference, line.display)})
    }
}

/// The status a reconciled MedicationStatement gets.
fn statement_status(line: &MedLine, current: bool) -> &'static str {
    if current {
        return "active";
    }
    match line.status_text.as_str() {
        "completed" => "completed",
        "on-hold" => "on-hold",
        "not-taken" => "not-taken",
        _ => "stopped",
    }
}

/// The proposed medicine of a line as a MedicationStatement (contained in the answer).
fn proposal(
    outcome: &Outcome,
    id: &str,
    patient: &str,
    source: &[MedLine],
    target: &[MedLine],
) -> Value {
    let line = match outcome.proposal {
        Side::Source(i) => &source[i],
        Side::Target(i) => &target[i],
    };
    let mut concept = line.concept.clone();
    if concept.as_object().is_none_or(Map::is_empty) {
        concept = json!({"text": line.display});
    }
    let mut s = json!({
        "resourceType": "MedicationStatement",
        "id": id,
        "status": statement_status(line, outcome.proposed_current),
        "medicationCodeableConcept": concept,
        "subject": {"reference": format!("Patient/{patient}")},
    });
    if let Some(reason) = &outcome.reason
        && !outcome.proposed_current
    {
        s["statusReason"] = json!([{"text": reason}]);
    }
    if let Some(dosage) = &line.dosage {
        s["dosage"] = dosage.clone();
    }
    if let Some(reason) = &outcome.reason {
        s["note"] = json!([{"text": format!("Reason given: {reason}")}]);
    }
    s
}

fn entry_extensions(outcome: &Outcome, source: &[MedLine], target: &[MedLine]) -> Vec<Value> {
    let mut ext = Vec::new();
    if let Some(i) = outcome.intent {
        ext.push(intent_extension(i));
    }
    for d in outcome.differences.iter().skip(1) {
        ext.push(json!({"url": EXT_DIFFERENCE, "valueCoding": discrepancy_coding(*d)}));
    }
    if outcome.unmapped {
        ext.push(json!({"url": EXT_UNMAPPED, "valueBoolean": true}));
    }
    for &i in &outcome.source {
        ext.push(json!({"url": EXT_SOURCE, "valueReference": side_reference(&source[i])}));
    }
    for &i in &outcome.target {
        ext.push(json!({"url": EXT_TARGET, "valueReference": side_reference(&target[i])}));
    }
    ext
}

fn flag(outcome: &Outcome) -> Value {
    let mut flag = json!({"coding": [discrepancy_coding(outcome.classification)]});
    if !outcome.details.is_empty() {
        flag["text"] = Value::from(outcome.details.join("; "));
    }
    flag
}

/// What the answer says about empty lists, and the count of lines to review.
pub fn notes(rec: &Reconciliation, source_name: &str) -> Vec<String> {
    let mut notes = Vec::new();
    match rec.empty {
        Empty::Both => notes.push(format!(
            "Both lists are empty: {source_name} and the target list name no medicines, so \
             there is nothing to reconcile."
        )),
        Empty::Target => notes.push(format!(
            "The target list is empty: every current medicine of {source_name} is an omission \
             unless the target says it was stopped."
        )),
        Empty::Source => notes.push(format!(
            "{} is empty: every current medicine of the target is a commission (added).",
            capitalise(source_name)
        )),
        Empty::Neither => {}
    }
    let flagged = rec.flagged();
    if flagged > 0 {
        notes.push(format!(
            "{flagged} line(s) unintentional: flagged for review before the list is confirmed."
        ));
    }
    notes
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The `$reconcile` answer: a List (mode `changes`) with one entry per medicine, the proposed
/// medicine of each contained (`#line-N`), nothing stored. `extra_notes` are added (e.g.
/// entries that were not medication entries and were ignored).
pub fn changes_list(
    rec: &Reconciliation,
    source: &[MedLine],
    target: &[MedLine],
    patient: &str,
    now_text: &str,
    source_name: &str,
    extra_notes: &[String],
) -> Value {
    let mut contained = Vec::new();
    let mut entries = Vec::new();
    for (n, outcome) in rec.lines.iter().enumerate() {
        let id = format!("line-{}", n + 1);
        contained.push(proposal(outcome, &id, patient, source, target));
        let mut entry = json!({
            "flag": flag(outcome),
            "item": {"reference": format!("#{id}"), "display": outcome.display},
        });
        let ext = entry_extensions(outcome, source, target);
        if !ext.is_empty() {
            entry["extension"] = Value::Array(ext);
        }
        entries.push(entry);
    }
    let mut list = json!({
        "resourceType": "List",
        "status": "current",
        "mode": "changes",
        "title": "Medicines reconciliation",
        "code": code(),
        "subject": {"reference": format!("Patient/{patient}")},
        "date": now_text,
    });
    if !contained.is_empty() {
        list["contained"] = Value::Array(contained);
        list["entry"] = Value::Array(entries);
    } else {
        list["emptyReason"] = json!({"coding": [{"system": EMPTY_REASON_SYSTEM, "code": "nilknown", "display": "Nil Known"}],
                                     "text": "Both lists are empty: nothing to reconcile"});
    }
    let mut all_notes = notes(rec, source_name);
    all_notes.extend(extra_notes.iter().cloned());
    if !all_notes.is_empty() {
        list["note"] = Value::Array(all_notes.into_iter().map(|t| json!({"text": t})).collect());
    }
    list
}

/// A clinician's decision on one line.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The proposed medicine, as the answer contained it.
    Accept,
    /// This MedicationStatement instead.
    Change(Value),
    /// Nothing written for the line; the record stays as it was for this medicine.
    Reject,
}

impl Action {
    pub fn code(&self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Change(_) => "change",
            Action::Reject => "reject",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The line's contained id (`line-N`).
    pub line: String,
    pub action: Action,
    pub note: Option<String>,
}

/// A `$reconcile-confirm` request, read.
#[derive(Debug, Clone)]
pub struct ConfirmRequest {
    pub list: Value,
    pub decisions: Vec<Decision>,
    /// The Encounter the reconciliation belongs to (e.g. the admission), when given.
    pub encounter: Option<String>,
}

fn structure(m: impl Into<String>) -> InputError {
    InputError::Structure(m.into())
}

fn unprocessable(m: impl Into<String>) -> InputError {
    InputError::Unprocessable(m.into())
}

fn part<'a>(p: &'a Value, name: &str) -> Option<&'a Value> {
    p.get("part")
        .and_then(Value::as_array)?
        .iter()
        .find(|x| x.get("name").and_then(Value::as_str) == Some(name))
}

/// Reads a `$reconcile-confirm` Parameters: `reconciliation` (the List `$reconcile` gave),
/// one `decision` per line (parts `line`, `action`, `medication` for a change, `note`), and
/// optionally `encounter`.
pub fn read_confirm(parameters: &Value) -> Result<ConfirmRequest, InputError> {
    if parameters.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(structure(
            "$reconcile-confirm takes a Parameters resource with 'reconciliation' (the List \
             $reconcile answered) and one 'decision' per line",
        ));
    }
    let mut list = None;
    let mut decisions = Vec::new();
    let mut encounter = None;
    let params = parameters
        .get("parameter")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, p) in params.iter().enumerate() {
        match p.get("name").and_then(Value::as_str).unwrap_or_default() {
            "reconciliation" => {
                if list.is_some() {
                    return Err(structure("'reconciliation' is given more than once"));
                }
                list = Some(p.get("resource").cloned().ok_or_else(|| {
                    structure("'reconciliation' must carry the List in 'resource'")
                })?);
            }
            "encounter" => {
                let r = p
                    .pointer("/valueReference/reference")
                    .and_then(Value::as_str)
                    .filter(|r| r.starts_with("Encounter/"))
                    .ok_or_else(|| {
                        structure("'encounter' must be a valueReference to an Encounter")
                    })?;
                encounter = Some(r.to_owned());
            }
            "decision" => {
                let line = part(p, "line")
                    .and_then(|x| x.get("valueString"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        structure(format!(
                            "decision {i}: part 'line' (valueString, e.g. \"line-1\") is missing"
                        ))
                    })?
                    .to_owned();
                let code = part(p, "action")
                    .and_then(|x| x.get("valueCode"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| structure(format!("decision for {line}: part 'action' (valueCode accept | change | reject) is missing")))?;
                let action = match code {
                    "accept" => Action::Accept,
                    "reject" => Action::Reject,
                    "change" => Action::Change(
                        part(p, "medication")
                            .and_then(|x| x.get("resource"))
                            .cloned()
                            .ok_or_else(|| structure(format!(
                                "decision for {line}: a change needs part 'medication' with the \
                                 MedicationStatement to record"
                            )))?,
                    ),
                    other => {
                        return Err(structure(format!(
                            "decision for {line}: action '{other}' is not accept, change or reject"
                        )));
                    }
                };
                let note = part(p, "note")
                    .and_then(|x| x.get("valueString"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                decisions.push(Decision { line, action, note });
            }
            other => {
                return Err(structure(format!(
                    "parameter {i}: unknown parameter '{other}' (expected 'reconciliation', \
                     'decision' or 'encounter')"
                )));
            }
        }
    }
    let list = list.ok_or_else(|| {
        structure("the 'reconciliation' parameter is missing: give the List $reconcile answered")
    })?;
    Ok(ConfirmRequest {
        list,
        decisions,
        encounter,
    })
}

/// What a confirmation writes, in one transaction: the reconciled MedicationStatements and
/// the reconciliation List (mode `snapshot`) naming them, each with its `urn:uuid:` full URL.
#[derive(Debug, Clone)]
pub struct ConfirmPlan {
    pub list_url: String,
    pub list: Value,
    /// (fullUrl, MedicationStatement), in line order.
    pub statements: Vec<(String, Value)>,
    pub accepted: usize,
    pub changed: usize,
    pub rejected: usize,
}

fn subject_is(resource: &Value, patient: &str) -> bool {
    match resource
        .pointer("/subject/reference")
        .and_then(Value::as_str)
    {
        None => true,
        Some(r) => r.split("/_history/").next() == Some(format!("Patient/{patient}").as_str()),
    }
}

/// Plans the write of a confirmed reconciliation. `setting` is the care setting the
/// confirming clinician works in (recorded on the List, for timeliness).
pub fn plan_confirm(
    request: &ConfirmRequest,
    patient: &str,
    now_text: &str,
    setting: &str,
) -> Result<ConfirmPlan, InputError> {
    let list = &request.list;
    if list.get("resourceType").and_then(Value::as_str) != Some("List")
        || list.get("mode").and_then(Value::as_str) != Some("changes")
        || !is_reconciliation(list)
    {
        return Err(unprocessable(
            "'reconciliation' must be the List $reconcile answered (mode 'changes', code \
             SNOMED CT 430193006 Medication reconciliation)",
        ));
    }
    if !subject_is(list, patient) || list.pointer("/subject/reference").is_none() {
        return Err(unprocessable(format!(
            "the reconciliation List is not about Patient/{patient}"
        )));
    }
    let contained: BTreeMap<&str, &Value> = list
        .get("contained")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c.get("id")?.as_str()?, c)))
        .collect();
    let entries = list
        .get("entry")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut by_line: BTreeMap<&str, &Decision> = BTreeMap::new();
    for d in &request.decisions {
        if by_line.insert(d.line.as_str(), d).is_some() {
            return Err(unprocessable(format!(
                "{} has more than one decision",
                d.line
            )));
        }
    }
    let mut lines_seen = BTreeSet::new();
    let list_url = format!("urn:uuid:{}", uuid::Uuid::new_v4());
    let mut statements = Vec::new();
    let mut snapshot_entries = Vec::new();
    let (mut accepted, mut changed, mut rejected) = (0, 0, 0);
    for (i, entry) in entries.iter().enumerate() {
        let line = entry
            .pointer("/item/reference")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
            .ok_or_else(|| {
                unprocessable(format!(
                    "reconciliation entry {i} does not name a contained line"
                ))
            })?;
        let proposed = contained.get(line).copied().filter(|c| {
            c.get("resourceType").and_then(Value::as_str) == Some("MedicationStatement")
        });
        let proposed = proposed.ok_or_else(|| {
            unprocessable(format!("reconciliation entry {i} names #{line}, which is not a contained MedicationStatement"))
        })?;
        let classification = entry
            .pointer("/flag/coding")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|c| c.get("system").and_then(Value::as_str) == Some(DISCREPANCY_SYSTEM))
            .and_then(|c| c.get("code").and_then(Value::as_str))
            .and_then(Discrepancy::from_code)
            .ok_or_else(|| unprocessable(format!("reconciliation entry {i} ({line}) has no classification in flag ({DISCREPANCY_SYSTEM})")))?;
        lines_seen.insert(line);
        let decision = by_line.get(line).ok_or_else(|| {
            unprocessable(format!(
                "{line} has no decision: every line must be accepted, changed or rejected"
            ))
        })?;
        let written = match &decision.action {
            Action::Accept => {
                accepted += 1;
                Some(proposed.clone())
            }
            Action::Change(statement) => {
                if statement.get("resourceType").and_then(Value::as_str)
                    != Some("MedicationStatement")
                {
                    return Err(unprocessable(format!(
                        "the change to {line} must be a MedicationStatement"
                    )));
                }
                if !subject_is(statement, patient) {
                    return Err(unprocessable(format!(
                        "the change to {line} is about another patient, not Patient/{patient}"
                    )));
                }
                changed += 1;
                Some(statement.clone())
            }
            Action::Reject => {
                rejected += 1;
                None
            }
        };
        let mut snapshot_entry = Map::new();
        if let Some(flag) = entry.get("flag") {
            snapshot_entry.insert("flag".into(), flag.clone());
        }
        let mut ext = vec![
            json!({"url": EXT_DECISION, "valueCoding": {"system": DECISION_SYSTEM, "code": decision.action.code()}}),
        ];
        ext.extend(
            entry
                .get("extension")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .cloned(),
        );
        snapshot_entry.insert("extension".into(), Value::Array(ext));
        let display = entry
            .pointer("/item/display")
            .and_then(Value::as_str)
            .unwrap_or(line)
            .to_owned();
        match written {
            Some(mut statement) => {
                let url = format!("urn:uuid:{}", uuid::Uuid::new_v4());
                if let Some(o) = statement.as_object_mut() {
                    o.remove("id");
                    o.remove("meta");
                    o.insert(
                        "subject".into(),
                        json!({"reference": format!("Patient/{patient}")}),
                    );
                    o.insert("dateAsserted".into(), Value::from(now_text));
                    let mut derived = vec![json!({"reference": list_url})];
                    // The record's entries this line reconciled (stored ones only).
                    for e in entry
                        .get("extension")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if e.get("url").and_then(Value::as_str) == Some(EXT_SOURCE)
                            && let Some(r) = e
                                .pointer("/valueReference/reference")
                                .and_then(Value::as_str)
                        {
                            derived
                                .push(json!({"reference": smr_record::source::strip_history(r)}));
                        }
                    }
                    o.insert("derivedFrom".into(), Value::Array(derived));
                    if let Some(note) = &decision.note {
                        let mut notes = o
                            .get("note")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default();
                        notes.push(json!({"text": note}));
                        o.insert("note".into(), Value::Array(notes));
                    }
                }
                snapshot_entry.insert("item".into(), json!({"reference": url, "display": display}));
                statements.push((url, statement));
            }
            None => {
                snapshot_entry.insert(
                    "item".into(),
                    json!({"display": format!("{display} ({} rejected: nothing recorded)", classification.code())}),
                );
            }
        }
        snapshot_entries.push(Value::Object(snapshot_entry));
    }
    let unknown: Vec<&str> = by_line
        .keys()
        .copied()
        .filter(|l| !lines_seen.contains(l))
        .collect();
    if !unknown.is_empty() {
        return Err(unprocessable(format!(
            "decision(s) for line(s) the reconciliation does not have: {}",
            unknown.join(", ")
        )));
    }
    let mut snapshot = json!({
        "resourceType": "List",
        "extension": [{"url": EXT_SETTING, "valueCode": setting}],
        "status": "current",
        "mode": "snapshot",
        "title": "Medicines reconciliation (confirmed)",
        "code": code(),
        "subject": {"reference": format!("Patient/{patient}")},
        "date": now_text,
    });
    if let Some(e) = &request.encounter {
        snapshot["encounter"] = json!({"reference": e});
    }
    let mut notes: Vec<Value> = list
        .get("note")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    notes.push(json!({"text": format!("Confirmed: {accepted} accepted, {changed} changed, {rejected} rejected.")}));
    snapshot["note"] = Value::Array(notes);
    if snapshot_entries.is_empty() {
        snapshot["emptyReason"] = json!({"coding": [{"system": EMPTY_REASON_SYSTEM, "code": "nilknown", "display": "Nil Known"}],
                                         "text": "Both lists were empty: nothing to reconcile"});
    } else {
        snapshot["entry"] = Value::Array(snapshot_entries);
    }
    Ok(ConfirmPlan {
        list_url,
        list: snapshot,
        statements,
        accepted,
        changed,
        rejected,
    })
}
