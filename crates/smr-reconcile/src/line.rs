//! One medication line of a list being reconciled: the entry as the list names it, the
//! medicine as SMR's drug dictionary reads it, and what a reconciliation compares (dose,
//! frequency, route, form, status, a documented reason).
//!
//! Lines are read with `smr-record`'s reading of an entry (`source::read`) and resolved with
//! its dictionary resolution (`merge::resolve`, `merge::own_key`), so a line of a discharge
//! list and a line of the SMR record meet on the same moiety key whatever product, pack or
//! brand each names.

use serde_json::Value;
use smr_dmd::{MedicineInfo, MedicineLookup};
use smr_record::merge::{self, LineStatus};
use smr_record::source::{self, Dose, Role, Route, Source, TherapyStatus};

/// Whether the list says the patient takes the medicine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Active, intended, on the list without a stop; or an event (issue, dispense,
    /// administration) showing it is being taken.
    Current,
    /// Stopped, cancelled, completed, on hold (withheld) or not taken.
    Stopped,
}

/// One line of a source or target list.
#[derive(Debug, Clone)]
pub struct MedLine {
    /// How the input names the entry: `Type/id` (`/_history/v` for stored entries), or the
    /// position in the list when the entry has no id.
    pub reference: String,
    /// Whether `reference` names a resource stored in SMR (the record's entries).
    pub stored: bool,
    /// The moiety key (`vtm:…`, `ingredients:…`) or `unmapped:…` (as `smr-record` keys lines).
    pub key: String,
    /// The medicine as written (a CodeableConcept).
    pub concept: Value,
    pub display: String,
    /// What the dictionary says; `None` when no dictionary knows the medicine.
    pub info: Option<MedicineInfo>,
    pub state: State,
    /// The entry's own status, as written.
    pub status_text: String,
    pub dose: Option<Dose>,
    /// Administrations a day, when the timing is structured.
    pub per_day: Option<f64>,
    pub route: Option<Route>,
    /// dm+d dose form of the product named (VMP level and below).
    pub form: Option<String>,
    /// The first dosage's text.
    pub dosage_text: Option<String>,
    /// The dosage as written (a Dosage array), for the reconciled statement.
    pub dosage: Option<Value>,
    /// A documented reason for a change: `statusReason`, a `note`, or the list entry's flag
    /// text or note.
    pub reason: Option<String>,
    /// The entry says it replaces an earlier one (`priorPrescription`): the change is
    /// deliberate even when no reason is written.
    pub replaces_prior: bool,
}

impl MedLine {
    pub fn is_unmapped(&self) -> bool {
        self.info.is_none()
    }
}

fn display_of(source: &Source, info: Option<&MedicineInfo>) -> String {
    if let Some(info) = info {
        if let Some(vmp) = &info.vmp {
            return vmp.name.clone();
        }
        return info.matched.name.clone();
    }
    source
        .text
        .clone()
        .or_else(|| source.codings.iter().find_map(|(_, _, d)| d.clone()))
        .or_else(|| source.codings.first().map(|(_, c, _)| c.clone()))
        .unwrap_or_else(|| "medicine not named".to_owned())
}

fn state_of(source: &Source) -> State {
    match source.role {
        Role::Event => State::Current,
        Role::Inert => State::Stopped,
        Role::Therapy => match source.status {
            TherapyStatus::Active | TherapyStatus::Other => State::Current,
            TherapyStatus::OnHold | TherapyStatus::Stopped | TherapyStatus::Completed => {
                State::Stopped
            }
        },
    }
}

fn texts(v: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |t: Option<&str>| {
        if let Some(t) = t.map(str::trim).filter(|t| !t.is_empty()) {
            out.push(t.to_owned());
        }
    };
    match v {
        Some(Value::Array(items)) => {
            for item in items {
                push(concept_text(item).as_deref());
            }
        }
        Some(other) => push(concept_text(other).as_deref()),
        None => {}
    }
    out
}

/// The text of a CodeableConcept or an Annotation: `text`, else the first coding's display.
fn concept_text(v: &Value) -> Option<String> {
    v.get("text")
        .and_then(Value::as_str)
        .or_else(|| v.pointer("/coding/0/display").and_then(Value::as_str))
        .or_else(|| v.pointer("/coding/0/code").and_then(Value::as_str))
        .map(str::to_owned)
}

/// The documented reason for a change an entry (and its list entry) carries.
fn reason_of(resource: &Value, list_entry: Option<&Value>) -> Option<String> {
    let mut reasons = texts(resource.get("statusReason"));
    reasons.extend(texts(resource.get("note")));
    if let Some(entry) = list_entry {
        reasons.extend(texts(entry.get("flag")));
        reasons.extend(texts(entry.get("note")));
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// Reads one medication entry (MedicationRequest, MedicationStatement, MedicationDispense,
/// MedicationAdministration) of a list. `list_entry` is the List's entry naming it, when the
/// list is a List (its `flag`, `note` and `deleted` are part of what the list says);
/// `medications` resolves `medicationReference`s. `None` for a resource of another type or
/// one entered in error.
pub fn read(
    resource: &Value,
    list_entry: Option<&Value>,
    position: usize,
    medications: &dyn Fn(&str) -> Option<Value>,
    lookup: &dyn MedicineLookup,
) -> Option<MedLine> {
    // A list's entries need no id (a Bundle names them by fullUrl); every line is kept, so
    // one without is read under a name of its position.
    let anonymous = resource.get("id").and_then(Value::as_str).is_none();
    let named;
    let resource = if anonymous {
        let mut r = resource.clone();
        if let Some(o) = r.as_object_mut() {
            o.insert("id".into(), Value::from(format!("entry-{position}")));
        }
        named = r;
        &named
    } else {
        resource
    };
    let s = source::read(resource, medications)?;
    let info = merge::resolve(&s, lookup);
    let deleted = list_entry
        .and_then(|e| e.get("deleted"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let state = if deleted {
        State::Stopped
    } else {
        state_of(&s)
    };
    let reference = if anonymous {
        format!("entry {position}")
    } else {
        s.reference.clone()
    };
    Some(MedLine {
        reference,
        stored: false,
        key: merge::own_key(&s, info.as_ref()),
        concept: merge::written_concept(&s),
        display: display_of(&s, info.as_ref()),
        form: info.as_ref().and_then(|i| i.form.clone()),
        state,
        status_text: if deleted {
            "deleted".to_owned()
        } else {
            s.status_text.clone()
        },
        dose: s.dose.clone(),
        per_day: s.per_day.map(|p| p.0),
        route: s.route.clone(),
        dosage_text: s.dosage_text.clone(),
        dosage: source::dosage_of(s.kind, resource),
        reason: reason_of(resource, list_entry),
        replaces_prior: resource.get("priorPrescription").is_some(),
        info,
    })
}

/// The current lines of a merged SMR record (active and on-hold ones; stopped and completed
/// medicines are not what the patient takes), each read from the entry that says what is
/// taken now: the latest current therapy, else the latest event, else the latest entry.
/// `sources` are the resources the record was merged from, in the same order.
pub fn from_record(record: &smr_record::MedicationRecord, sources: &[Value]) -> Vec<MedLine> {
    record
        .lines
        .iter()
        .filter(|l| matches!(l.status, LineStatus::Active | LineStatus::OnHold))
        .filter_map(|line| {
            let members: Vec<&merge::Entry> =
                line.entries.iter().map(|&i| &record.entries[i]).collect();
            let chosen = members
                .iter()
                .rev()
                .find(|e| e.source.is_current_therapy())
                .or_else(|| members.iter().rev().find(|e| e.source.role == Role::Event))
                .or(members.last())
                .copied()?;
            let s = &chosen.source;
            let info = chosen.info.as_deref().cloned().or_else(|| {
                members
                    .iter()
                    .rev()
                    .find_map(|e| e.info.as_deref().cloned())
            });
            let resource = sources.get(chosen.input);
            Some(MedLine {
                reference: s.versioned_reference(),
                stored: true,
                key: line.key.clone(),
                concept: merge::written_concept(s),
                display: line.display(),
                form: info.as_ref().and_then(|i| i.form.clone()),
                state: if line.status == LineStatus::OnHold {
                    State::Stopped
                } else {
                    State::Current
                },
                status_text: line.status.as_str().to_owned(),
                dose: s.dose.clone(),
                per_day: s.per_day.map(|p| p.0),
                route: s.route.clone(),
                dosage_text: s.dosage_text.clone(),
                dosage: line.dosage.clone(),
                reason: resource.and_then(|r| reason_of(r, None)),
                replaces_prior: false,
                info,
            })
        })
        .collect()
}
