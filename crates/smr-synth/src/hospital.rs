//! A hospital stay's medicines: the admission medication history (MedicationStatements,
//! category inpatient, told by the admitting clinician), inpatient orders (MedicationRequest
//! `intent: order`, category inpatient) with ward administrations (MedicationAdministration,
//! category inpatient, `context` the admission), and for a finished stay the discharge
//! medicines (MedicationRequest `intent: order`, category discharge) — all with the
//! admission Encounter as `context`/`encounter`, and one Provenance (setting `hospital`) for
//! the admission.

use serde_json::{Value, json};
use time::Date;

use crate::care::{self, Stay};
use crate::clinical::{Drug, Rx, Setting, Status};
use crate::dosage;
use crate::gp::{discharge_category, inpatient_category};
use crate::provenance::{CareSetting, Pending};
use crate::rng::Rng;
use crate::{BundleBuilder, OrgRef, date_time, days_before, medication};

const STATEMENT_CATEGORY: &str =
    "http://terminology.hl7.org/CodeSystem/medication-statement-category";
pub const ADMIN_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/medication-admin-category";

/// Most inpatient orders written per stay besides the medicines given everywhere.
const ORDERS_PER_STAY: usize = 2;
/// Most medicines in an admission history or a discharge list.
const LIST_MAX: usize = 6;

/// A medicine whose dose the hospital changed (written on the discharge list of the stay it
/// was changed in).
#[derive(Debug, Clone)]
pub struct Change {
    /// Index into the record's prescriptions.
    pub rx: usize,
    pub drug: Drug,
    pub dose: String,
}

/// Who and where on the ward.
pub struct Ward<'a> {
    pub subject: &'a Value,
    pub hospital: &'a OrgRef,
    /// The hospital clinician (a Reference to a Practitioner).
    pub clinician: &'a Value,
    pub today: Date,
}

/// The prescriptions (indices) a stay's medication history and discharge list hold: active
/// GP repeats, at most [`LIST_MAX`], those given everywhere and the one changed (`change`)
/// first.
pub fn admission_list(rxs: &[Rx], change: Option<usize>) -> Vec<usize> {
    let mut list: Vec<usize> = (0..rxs.len())
        .filter(|&i| {
            let rx = &rxs[i];
            rx.setting == Setting::Community && rx.repeat && rx.status == Status::Active
        })
        .collect();
    list.sort_by_key(|&i| !(rxs[i].extra.everywhere || Some(i) == change));
    list.truncate(LIST_MAX);
    list.sort_unstable();
    list
}

/// Days before today of admission, and of discharge for a finished stay.
fn days(stay: Stay) -> (i64, Option<i64>) {
    match stay {
        Stay::Current { admitted } => (admitted, None),
        Stay::Finished { discharged, length } => (discharged + length, Some(discharged)),
    }
}

/// Writes the stay's Encounter and medicines; returns the admission's Provenance (`None`
/// when no medicine was written).
pub fn stay(
    g: &mut BundleBuilder,
    rng: &mut Rng,
    at: &Ward,
    stay: Stay,
    rxs: &[Rx],
    change: Option<&Change>,
) -> Option<Value> {
    let encounter = care::encounter(rng, stay, at.subject, at.hospital, at.today);
    let admitted_at = encounter["period"]["start"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let discharged_at = encounter["period"]["end"].as_str().map(str::to_owned);
    let encounter_url = g.add(encounter, None);
    let context = json!({"reference": encounter_url});
    let (admitted, discharged) = days(stay);
    let mut pending = Pending::default();

    // What the patient was on when admitted: their GP repeats.
    let on_admission: Vec<(usize, &Rx)> = admission_list(rxs, change.map(|c| c.rx))
        .into_iter()
        .map(|i| (i, &rxs[i]))
        .collect();
    for (_, rx) in &on_admission {
        let url = g.add(
            json!({
                "resourceType": "MedicationStatement",
                "status": "active",
                "category": {"coding": [{"system": STATEMENT_CATEGORY, "code": "inpatient", "display": "Inpatient"}]},
                "medicationCodeableConcept": medication(rx.drug),
                "subject": at.subject,
                "context": context,
                "effectiveDateTime": admitted_at,
                "dateAsserted": admitted_at,
                "informationSource": at.clinician,
                "dosage": [dosage::dosage(rx.drug, rx.dose)],
            }),
            None,
        );
        pending.push(url, &admitted_at);
    }

    // Orders on the ward: the medicines given everywhere, and a few more, of those with a
    // dose to give.
    let changed_here = |i: usize| discharged.is_some() && change.is_some_and(|c| c.rx == i);
    let mut others = 0;
    for &(i, rx) in &on_admission {
        let (drug, dose): (Drug, &str) = match change.filter(|_| changed_here(i)) {
            Some(c) => (c.drug, c.dose.as_str()),
            None => (rx.drug, rx.dose),
        };
        let dosage = dosage::dosage(drug, dose);
        let Some(given) = dosage::dose(&dosage) else {
            continue;
        };
        if !rx.extra.everywhere {
            if others == ORDERS_PER_STAY {
                continue;
            }
            others += 1;
        }
        let order = g.add(
            json!({
                "resourceType": "MedicationRequest",
                "status": if discharged.is_some() { "completed" } else { "active" },
                "intent": "order",
                "category": inpatient_category(),
                "medicationCodeableConcept": medication(drug),
                "subject": at.subject,
                "encounter": context,
                "authoredOn": admitted_at,
                "requester": at.clinician,
                "dosageInstruction": [dosage.clone()],
            }),
            None,
        );
        pending.push(order.clone(), &admitted_at);
        // Given the day after admission (or at admission, admitted today).
        let when = if admitted > 0 {
            date_time(rng, days_before(at.today, admitted - 1))
        } else {
            admitted_at.clone()
        };
        let admin = g.add(
            json!({
                "resourceType": "MedicationAdministration",
                "status": "completed",
                "category": {"coding": [{"system": ADMIN_CATEGORY, "code": "inpatient", "display": "Inpatient"}]},
                "medicationCodeableConcept": medication(drug),
                "subject": at.subject,
                "context": context,
                "effectiveDateTime": when,
                "performer": [{"actor": at.clinician}],
                "request": {"reference": order},
                "dosage": {"text": dose, "route": dosage::route(drug), "dose": given},
            }),
            None,
        );
        pending.push(admin, &when);
    }

    // The discharge list: what to carry on with, one of them perhaps at a new dose.
    if let Some(discharged_at) = &discharged_at {
        for &(i, rx) in &on_admission {
            let changed = change.filter(|_| changed_here(i));
            let (drug, dose): (Drug, &str) = match changed {
                Some(c) => (c.drug, c.dose.as_str()),
                None => (rx.drug, rx.dose),
            };
            let mut mr = json!({
                "resourceType": "MedicationRequest",
                "status": "active",
                "intent": "order",
                "category": discharge_category(),
                "medicationCodeableConcept": medication(drug),
                "subject": at.subject,
                "encounter": context,
                "authoredOn": discharged_at,
                "requester": at.clinician,
                "dosageInstruction": [dosage::dosage(drug, dose)],
            });
            if changed.is_some() {
                mr["note"] = json!([{"text": format!("Changed in hospital from {}: {}", rx.drug.name, rx.dose)}]);
            }
            let url = g.add(mr, None);
            pending.push(url, discharged_at);
        }
    }
    pending.finish(CareSetting::Hospital, at.clinician.clone(), at.hospital)
}
