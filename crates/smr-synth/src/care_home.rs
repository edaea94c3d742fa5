//! A care home's medicines administration record: the residents' GP repeats given by the
//! home's staff (MedicationAdministration, category community, `request` the GP issue the
//! home was supplied from), under one Provenance (setting `care-home`, on behalf of the home).

use serde_json::{Value, json};
use time::Date;

use crate::clinical::Rx;
use crate::dosage;
use crate::gp::Written;
use crate::hospital::ADMIN_CATEGORY;
use crate::provenance::{CareSetting, Pending};
use crate::rng::Rng;
use crate::{BundleBuilder, OrgRef, date_time, days_before, medication};

/// Medicines on a resident's chart written as administrations, and the days given (today
/// and yesterday).
const MEDICINES: usize = 3;
const DAYS: i64 = 2;

/// Writes the administrations; returns their Provenance (`None` when none were written).
pub fn administrations(
    g: &mut BundleBuilder,
    rng: &mut Rng,
    subject: &Value,
    home: &OrgRef,
    rxs: &[Rx],
    written: &[Written],
    today: Date,
) -> Option<Value> {
    let mut pending = Pending::default();
    let charted = written
        .iter()
        .filter_map(|w| {
            let rx = &rxs[w.rx];
            let issue = w.latest_issue.as_ref()?;
            let d = dosage::dosage(rx.drug, rx.dose);
            let given = dosage::dose(&d)?;
            (rx.status == crate::clinical::Status::Active
                && rx.repeat
                && !rx.dose.contains("when required"))
            .then_some((rx, issue, given))
        })
        .take(MEDICINES);
    for (rx, issue, given) in charted {
        for day in (0..DAYS).rev() {
            let when = date_time(rng, days_before(today, day));
            let url = g.add(
                json!({
                    "resourceType": "MedicationAdministration",
                    "status": "completed",
                    "category": {"coding": [{"system": ADMIN_CATEGORY, "code": "community", "display": "Community"}]},
                    "medicationCodeableConcept": medication(rx.drug),
                    "subject": subject,
                    "effectiveDateTime": when,
                    "request": {"reference": issue},
                    "dosage": {"text": rx.dose, "route": dosage::route(rx.drug), "dose": given},
                }),
                None,
            );
            pending.push(url, &when);
        }
    }
    let who = json!({"display": format!("Senior carer, {}", home.name)});
    pending.finish(CareSetting::CareHome, who, home)
}
