//! The GP record's medicines as GP Connect writes them, and the community pharmacy's
//! dispenses of them.
//!
//! A prescription of the practice is an authorisation, a MedicationRequest `intent: plan`
//! (`courseOfTherapyType` continuous for repeats, acute for short courses), and its issues,
//! MedicationRequests `intent: order`, `status: completed`, `basedOn` the plan: the last one
//! to three monthly issues of a repeat, the one issue of an acute course. A stopped plan has
//! `status: stopped`, the reason in `statusReason` and the stop date as
//! `dispenseRequest.validityPeriod.end`. Issues to a patient who nominated a pharmacy carry
//! it as `dispenseRequest.performer` (EPS nomination), and the pharmacy's MedicationDispenses
//! name the issue in `authorizingPrescription`.

use serde_json::{Value, json};
use time::Date;

use crate::care;
use crate::clinical::{Rx, Setting, Status, brand_of};
use crate::dosage;
use crate::provenance::Pending;
use crate::rng::Rng;
use crate::{OrgRef, PRESCRIPTION_ITEM_SYSTEM, date, date_time, days_before, medication};

const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/medicationrequest-category";
const COURSE: &str = "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy";

/// Issues are this many days apart (a 28-day supply each).
pub const ISSUE_INTERVAL: i64 = 28;

/// What a prescription's entries were written as, for the settings that refer to them.
#[derive(Debug, Clone)]
pub struct Written {
    /// Index into the record's prescriptions.
    pub rx: usize,
    /// The latest issue's fullUrl.
    pub latest_issue: Option<String>,
}

/// Where a patient's GP medicines are written from.
pub struct Gp<'a> {
    pub subject: &'a Value,
    /// The prescribing GP (a Reference).
    pub gp: &'a Value,
    pub hospital: &'a OrgRef,
    /// The nominated pharmacy, if any.
    pub pharmacy: Option<&'a OrgRef>,
    pub today: Date,
}

/// The entries written and the settings' Provenances to come.
#[derive(Debug, Default)]
pub struct Out {
    pub written: Vec<Written>,
    pub gp: Pending,
    pub pharmacy: Pending,
    /// Inpatient orders that predate this record's stays (an MI's loading dose).
    pub hospital: Pending,
}

fn category(code: &str, display: &str) -> Value {
    json!([{"coding": [{"system": CATEGORY, "code": code, "display": display}]}])
}

pub fn community_category() -> Value {
    category("community", "Community")
}

pub fn inpatient_category() -> Value {
    category("inpatient", "Inpatient")
}

pub fn discharge_category() -> Value {
    category("discharge", "Discharge")
}

fn course(repeat: bool) -> Value {
    json!({"coding": [if repeat {
        json!({"system": COURSE, "code": "continuous", "display": "Continuous long term therapy"})
    } else {
        json!({"system": COURSE, "code": "acute", "display": "Short course (acute) therapy"})
    }]})
}

/// Writes every prescription of `rxs` (plans, issues, dispenses) into the Bundle.
pub fn write(
    g: &mut crate::BundleBuilder,
    rng: &mut Rng,
    at: &Gp,
    rxs: &[Rx],
    conditions: &[(crate::clinical::Condition, String)],
    demo: bool,
) -> Out {
    let mut out = Out::default();
    let mut dispensed_one = false;
    for (i, rx) in rxs.iter().enumerate() {
        let reason = rx
            .reason
            .and_then(|c| conditions.iter().find(|(x, _)| *x == c))
            .map(|(_, u)| json!([{"reference": u}]));
        if rx.setting == Setting::Inpatient {
            let when = date_time(rng, days_before(at.today, rx.days_ago));
            let mut mr = json!({
                "resourceType": "MedicationRequest",
                "status": "completed",
                "intent": "order",
                "category": inpatient_category(),
                "medicationCodeableConcept": medication(rx.drug),
                "subject": at.subject,
                "authoredOn": when,
                "requester": at.hospital.reference(),
                "courseOfTherapyType": course(false),
                "dosageInstruction": [dosage::dosage(rx.drug, rx.dose)],
            });
            if let Some(r) = reason {
                mr["reasonReference"] = r;
            }
            let url = g.add(mr, None);
            out.hospital.push(url, &when);
            out.written.push(Written {
                rx: i,
                latest_issue: None,
            });
            continue;
        }
        let dosage = dosage::dosage(rx.drug, rx.dose);
        let (value, unit) = care::supply(rx.drug, rx.dose);
        let quantity = json!({"value": value, "unit": unit});
        let supply = json!({"value": ISSUE_INTERVAL, "unit": "day", "system": "http://unitsofmeasure.org", "code": "d"});
        // Issue dates, newest first, in days before today.
        let (issues, plan_days): (Vec<i64>, i64) = match rx.status {
            Status::Active => {
                let n = if demo { 3 } else { rng.range(1, 3) };
                let issues: Vec<i64> = (0..n).map(|k| rx.days_ago + ISSUE_INTERVAL * k).collect();
                let first = *issues.last().unwrap_or(&rx.days_ago);
                // Authorised at least a day before its first issue shown, so plan and issues
                // order by time.
                (issues, first + rng.range(1, 700))
            }
            Status::Stopped => {
                // `days_ago` is the stop date; the last issue came before it.
                let last = rx.days_ago + rng.range(3, 20);
                let n = rng.range(1, 2);
                let issues: Vec<i64> = (0..n).map(|k| last + ISSUE_INTERVAL * k).collect();
                let first = *issues.last().unwrap_or(&last);
                (issues, first + rng.range(1, 500))
            }
            Status::Completed => (vec![rx.days_ago], rx.days_ago),
        };
        let plan_when = date_time(rng, days_before(at.today, plan_days));
        let mut validity = json!({"start": date(days_before(at.today, plan_days))});
        if rx.status == Status::Stopped {
            validity["end"] = json!(date(days_before(at.today, rx.days_ago)));
        }
        let mut plan = json!({
            "resourceType": "MedicationRequest",
            "status": match rx.status {
                Status::Active => "active",
                Status::Completed => "completed",
                Status::Stopped => "stopped",
            },
            "intent": "plan",
            "category": community_category(),
            "medicationCodeableConcept": medication(rx.drug),
            "subject": at.subject,
            "authoredOn": plan_when,
            "requester": at.gp,
            "courseOfTherapyType": course(rx.repeat),
            "dosageInstruction": [dosage],
            "dispenseRequest": {"validityPeriod": validity, "quantity": quantity, "expectedSupplyDuration": supply},
        });
        if let Some(why) = rx.status_reason {
            plan["statusReason"] = json!({"text": why});
        }
        if let Some(r) = &reason {
            plan["reasonReference"] = r.clone();
        }
        if let Some(p) = at.pharmacy {
            plan["dispenseRequest"]["performer"] = p.reference();
        }
        let plan_url = g.add(plan, None);
        out.gp.push(plan_url.clone(), &plan_when);
        let mut latest = None;
        // Oldest first, so the latest issue is written last.
        for &days in issues.iter().rev() {
            let when = date_time(rng, days_before(at.today, days));
            let mut issue = json!({
                "resourceType": "MedicationRequest",
                "identifier": [{"system": PRESCRIPTION_ITEM_SYSTEM, "value": rng.uuid()}],
                "status": "completed",
                "intent": "order",
                "category": community_category(),
                "medicationCodeableConcept": medication(rx.drug),
                "subject": at.subject,
                "authoredOn": when,
                "requester": at.gp,
                "basedOn": [{"reference": plan_url}],
                "courseOfTherapyType": course(rx.repeat),
                "dosageInstruction": [dosage::dosage(rx.drug, rx.dose)],
                "dispenseRequest": {"validityPeriod": {"start": date(days_before(at.today, days))}, "quantity": quantity, "expectedSupplyDuration": supply},
            });
            if let Some(p) = at.pharmacy {
                issue["dispenseRequest"]["performer"] = p.reference();
            }
            let url = g.add(issue, None);
            out.gp.push(url.clone(), &when);
            latest = Some((url, days));
        }
        if let (Some(pharmacy), Some((issue_url, issued))) = (at.pharmacy, &latest) {
            let handed = if rx.extra.dispensed_after_stop {
                // Handed over after the stop date, from the issue written before it.
                Some(rx.days_ago - rng.range(1, 5.min(rx.days_ago).max(1)))
            } else if rx.status == Status::Active
                // Issued today or yesterday: not collected yet.
                && *issued >= 2
                && (rx.extra.everywhere
                    || (demo && !dispensed_one)
                    || rng.chance(care::DISPENSE_SHARE))
            {
                let after = rng.range(1, 4.min(issued - 1).max(1));
                Some((issued - after).max(0))
            } else {
                None
            };
            if let Some(handed) = handed {
                dispensed_one = true;
                let brand = brand_of(rx.drug).filter(|_| {
                    rx.extra.brand_dispense || (!rx.extra.everywhere && rng.chance(0.3))
                });
                let md = care::dispense(
                    rng,
                    rx,
                    medication(brand.unwrap_or(rx.drug)),
                    at.subject,
                    issue_url,
                    pharmacy,
                    days_before(at.today, handed.max(0)),
                );
                let when = md["whenHandedOver"].as_str().unwrap_or_default().to_owned();
                let url = g.add(md, None);
                out.pharmacy.push(url, &when);
            }
        }
        out.written.push(Written {
            rx: i,
            latest_issue: latest.map(|(u, _)| u),
        });
    }
    out
}
