//! The record's current medicines as the safety checks read them ([`smr_safety::Medicine`]),
//! and a draft order read the same way, so an order and the record meet on the same
//! dictionary reading of each medicine.
//!
//! A medicine is current when its line is active (a current therapy, or a recent event with
//! no later stop). Stopped, completed and on-hold lines are not current, so they never fire a
//! rule. A line is visible to the caller when any of its entries is; only visible entries are
//! listed, so a withheld entry's id never reaches the output.

use std::sync::Arc;

use serde_json::Value;
use smr_dmd::MedicineLookup;
use smr_safety::{DoseFacts, Medicine};

use crate::MedicationRecord;
use crate::merge::{Entry, LineStatus};
use crate::source::{self, Role, Source};

fn dose_facts(s: &Source) -> Option<DoseFacts> {
    s.dose.as_ref().map(|d| DoseFacts {
        value: d.value,
        unit: d.unit.clone(),
        per_day: s.per_day.map(|p| p.0),
    })
}

/// The current medicines of a merged record. `sources` are the resources the record was
/// merged from (in the same order); `visible` says whether the caller may see one.
pub fn current_medicines(
    record: &MedicationRecord,
    sources: &[Value],
    visible: &dyn Fn(&Value) -> bool,
) -> Vec<Medicine> {
    record
        .lines
        .iter()
        .filter(|l| l.status == LineStatus::Active)
        .map(|line| {
            let members: Vec<&Entry> = line.entries.iter().map(|&i| &record.entries[i]).collect();
            let is_visible = |e: &Entry| sources.get(e.input).is_some_and(visible);
            // The entry that says what is taken now: the latest current therapy, else the
            // latest event, else the latest entry.
            let chosen = members
                .iter()
                .rev()
                .find(|e| e.source.is_current_therapy())
                .or_else(|| members.iter().rev().find(|e| e.source.role == Role::Event))
                .or(members.last())
                .copied();
            let info = chosen
                .and_then(|e| e.info.clone())
                .or_else(|| members.iter().rev().find_map(|e| e.info.clone()));
            let mut entries: Vec<String> = Vec::new();
            if let Some(e) = chosen.filter(|e| is_visible(e)) {
                entries.push(e.source.versioned_reference());
            }
            for e in members.iter().rev().filter(|e| is_visible(e)) {
                let r = e.source.versioned_reference();
                if !entries.contains(&r) {
                    entries.push(r);
                }
            }
            Medicine {
                key: line.key.clone(),
                name: line.display(),
                visible: members.iter().any(|e| is_visible(e)),
                entries,
                info,
                dose: chosen.and_then(|e| dose_facts(&e.source)),
                route: chosen
                    .and_then(|e| e.source.route.as_ref())
                    .and_then(|r| r.display.clone()),
                setting: chosen.map(|e| e.origin.setting.as_str().to_owned()),
            }
        })
        .collect()
}

/// A draft MedicationRequest (a CDS order) as a medicine to check: resolved through the same
/// dictionary as the record, with its dose and route. `None` for a resource that is not a
/// medication entry (or is entered in error).
pub fn order_medicine(order: &Value, lookup: &dyn MedicineLookup) -> Option<Medicine> {
    let s = source::read(order, &|_| None)?;
    let codings: Vec<(Option<&str>, &str)> = s
        .codings
        .iter()
        .map(|(system, code, _)| (system.as_deref(), code.as_str()))
        .collect();
    let name_text = s
        .text
        .as_deref()
        .or_else(|| s.codings.iter().find_map(|(_, _, d)| d.as_deref()));
    let info = if codings.is_empty() && name_text.is_none() {
        None
    } else {
        lookup.resolve(&codings, name_text).map(Arc::new)
    };
    let name = name_text
        .map(str::to_owned)
        .or_else(|| info.as_ref().map(|i| i.matched.name.clone()))
        .or_else(|| s.codings.first().map(|(_, c, _)| format!("code {c}")))
        .unwrap_or_else(|| "medicine not named".to_owned());
    Some(Medicine {
        key: format!("order:{}", s.reference),
        name,
        entries: vec![s.reference.clone()],
        info,
        dose: dose_facts(&s),
        route: s.route.as_ref().and_then(|r| r.display.clone()),
        visible: true,
        setting: None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use smr_dmd::Layered;

    use super::*;
    use crate::{RecordInput, merge};

    fn mr(id: &str, status: &str, code: &str) -> Value {
        json!({"resourceType": "MedicationRequest", "id": id, "status": status, "intent": "order",
            "subject": {"reference": "Patient/p"}, "authoredOn": "2026-11-01",
            "medicationCodeableConcept": {"coding": [{"system": "https://dmd.nhs.uk", "code": code}]},
            "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}]}]})
    }

    #[test]
    fn only_active_lines_are_current_and_hidden_entries_are_not_listed() {
        let sources = vec![
            mr("a", "active", "320000009"),  // simvastatin 40mg
            mr("b", "stopped", "319799004"), // clopidogrel, stopped
            mr("c", "active", "321987003"),  // citalopram, to be hidden
        ];
        let input = RecordInput {
            patient: "p",
            now: 1_796_083_200_000_000,
            now_text: "2026-12-01T00:00:00Z",
            stopped_within_days: 90,
            sources: &sources,
            provenances: &[],
            organisations: &[],
            medications: &[],
        };
        let lookup = Layered::default();
        let record = merge(&input, &lookup);
        let hidden = |r: &Value| r["id"] != "c";
        let meds = current_medicines(&record, &sources, &hidden);
        assert_eq!(meds.len(), 2, "{meds:#?}");
        let simva = meds
            .iter()
            .find(|m| m.name.contains("Simvastatin"))
            .expect("simvastatin");
        assert!(simva.visible);
        assert_eq!(simva.entries, ["MedicationRequest/a"]);
        assert_eq!(simva.dose.as_ref().and_then(|d| d.per_day), Some(1.0));
        let secret = meds.iter().find(|m| !m.visible).expect("the hidden one");
        assert!(secret.entries.is_empty());
        assert!(
            !meds.iter().any(|m| m.name.contains("Clopidogrel")),
            "stopped is not current"
        );
    }

    #[test]
    fn an_order_is_read_like_an_entry() {
        let m =
            order_medicine(&mr("d1", "draft", "320000009"), &Layered::default()).expect("order");
        assert_eq!(m.entries, ["MedicationRequest/d1"]);
        assert_eq!(
            m.info.as_ref().map(|i| i.ingredients[0].name.as_str()),
            Some("simvastatin")
        );
        assert_eq!(
            m.dose.map(|d| (d.value, d.unit)),
            Some((1.0, "tablet".to_owned()))
        );
    }
}
