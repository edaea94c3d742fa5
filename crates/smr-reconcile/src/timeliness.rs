//! Timeliness of reconciliation against NICE QS120 (Medicines optimisation, March 2016):
//!
//! - quality statement 4 (medicines reconciliation in acute settings): "People who are
//!   inpatients in an acute setting have a reconciled list of their medicines within 24 hours
//!   of admission";
//! - quality statement 5 (medicines reconciliation in primary care): "People discharged from
//!   a care setting have a reconciled list of their medicines in their GP record within 1 week
//!   of the GP practice receiving the information".
//!
//! Per patient: each inpatient admission Encounter against the first confirmed
//! reconciliation after it (made in hospital, or naming that encounter); each discharge
//! against the first confirmed reconciliation by the GP practice after the discharge
//! information arrived. Aggregated: met / not met / pending counts per practice and month.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::fhir_out::{EXT_SETTING, is_reconciliation};

const HOUR: i64 = 3_600_000_000;
/// QS120 statement 4: 24 hours from admission.
pub const ADMISSION_LIMIT_HOURS: i64 = 24;
/// QS120 statement 5: 1 week from the practice receiving the discharge information.
pub const DISCHARGE_LIMIT_HOURS: i64 = 7 * 24;

/// Encounter classes (v3 ActCode) that are inpatient stays.
const INPATIENT_CLASSES: [&str; 3] = ["IMP", "ACUTE", "NONAC"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Measure {
    /// QS120 statement 4.
    Admission,
    /// QS120 statement 5.
    Discharge,
}

impl Measure {
    pub fn code(self) -> &'static str {
        match self {
            Measure::Admission => "qs120-4-admission-24h",
            Measure::Discharge => "qs120-5-discharge-7d",
        }
    }

    pub fn limit_hours(self) -> i64 {
        match self {
            Measure::Admission => ADMISSION_LIMIT_HOURS,
            Measure::Discharge => DISCHARGE_LIMIT_HOURS,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Met,
    NotMet,
    /// No reconciliation yet and the time allowed has not run out.
    Pending,
}

impl Status {
    pub fn code(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::NotMet => "not-met",
            Status::Pending => "pending",
        }
    }
}

/// One admission or discharge measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeliness {
    pub measure: Measure,
    /// `Encounter/id`.
    pub encounter: String,
    /// When the clock started (admission; discharge information received), µs and text.
    pub started: (i64, String),
    /// The first confirmed reconciliation after it (`List/id`) and when.
    pub reconciliation: Option<(String, i64, String)>,
    /// Hours from start to the reconciliation (or to now while pending / when none came).
    pub hours: f64,
    pub status: Status,
}

fn instant(text: &str) -> Option<(i64, String)> {
    smr_fhir::datetime::parse_range(text)
        .ok()
        .map(|(start, _)| (start, text.to_owned()))
}

fn reference_of(r: &Value) -> Option<String> {
    Some(format!(
        "{}/{}",
        r.get("resourceType")?.as_str()?,
        r.get("id")?.as_str()?
    ))
}

/// A confirmed reconciliation: a reconciliation List in `snapshot` mode, current.
struct Confirmed {
    reference: String,
    at: (i64, String),
    setting: Option<String>,
    encounter: Option<String>,
}

fn confirmed(lists: &[Value]) -> Vec<Confirmed> {
    let mut out: Vec<Confirmed> = lists
        .iter()
        .filter(|l| {
            l.get("resourceType").and_then(Value::as_str) == Some("List")
                && l.get("mode").and_then(Value::as_str) == Some("snapshot")
                && l.get("status").and_then(Value::as_str) == Some("current")
                && is_reconciliation(l)
        })
        .filter_map(|l| {
            Some(Confirmed {
                reference: reference_of(l)?,
                at: instant(l.get("date")?.as_str()?)?,
                setting: l
                    .get("extension")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|e| e.get("url").and_then(Value::as_str) == Some(EXT_SETTING))
                    .and_then(|e| e.get("valueCode").and_then(Value::as_str))
                    .map(str::to_owned),
                encounter: l
                    .pointer("/encounter/reference")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            })
        })
        .collect();
    out.sort_by_key(|c| c.at.0);
    out
}

fn measured(
    measure: Measure,
    encounter: String,
    started: (i64, String),
    found: Option<&Confirmed>,
    now: i64,
) -> Timeliness {
    let limit = measure.limit_hours() * HOUR;
    let (hours, status, reconciliation) = match found {
        Some(c) => {
            let elapsed = c.at.0 - started.0;
            (
                elapsed as f64 / HOUR as f64,
                if elapsed <= limit {
                    Status::Met
                } else {
                    Status::NotMet
                },
                Some((c.reference.clone(), c.at.0, c.at.1.clone())),
            )
        }
        None => {
            let elapsed = now - started.0;
            (
                elapsed as f64 / HOUR as f64,
                if elapsed <= limit {
                    Status::Pending
                } else {
                    Status::NotMet
                },
                None,
            )
        }
    };
    Timeliness {
        measure,
        encounter,
        started,
        reconciliation,
        hours,
        status,
    }
}

/// When the discharge information about `encounter` arrived: the earliest time SMR stored a
/// discharge medication entry of it (`meta.lastUpdated` of a MedicationRequest or
/// MedicationStatement with category `discharge` naming the encounter), else the end of the
/// stay.
fn discharge_arrival(
    encounter: &str,
    end: Option<(i64, String)>,
    entries: &[Value],
) -> Option<(i64, String)> {
    entries
        .iter()
        .filter(|r| {
            let names = ["encounter", "context"].iter().any(|k| {
                r.pointer(&format!("/{k}/reference"))
                    .and_then(Value::as_str)
                    == Some(encounter)
            });
            let discharge = r
                .get("category")
                .map(|c| match c {
                    Value::Array(items) => items.iter().collect::<Vec<_>>(),
                    other => vec![other],
                })
                .unwrap_or_default()
                .iter()
                .flat_map(|c| {
                    c.get("coding")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                })
                .any(|c| c.get("code").and_then(Value::as_str) == Some("discharge"));
            names && discharge
        })
        .filter_map(|r| instant(r.pointer("/meta/lastUpdated")?.as_str()?))
        .min_by_key(|(t, _)| *t)
        .or(end)
}

/// Every admission and discharge of one patient measured. `encounters` are the patient's
/// Encounters, `lists` their Lists (only confirmed reconciliations count), `entries` their
/// medication entries (for when discharge information arrived); `now` in µs.
pub fn for_patient(
    encounters: &[Value],
    lists: &[Value],
    entries: &[Value],
    now: i64,
) -> Vec<Timeliness> {
    let confirmed = confirmed(lists);
    let mut out = Vec::new();
    for e in encounters {
        let inpatient = e
            .pointer("/class/code")
            .and_then(Value::as_str)
            .is_some_and(|c| INPATIENT_CLASSES.contains(&c));
        let status = e.get("status").and_then(Value::as_str).unwrap_or_default();
        if !inpatient || matches!(status, "planned" | "cancelled" | "entered-in-error") {
            continue;
        }
        let Some(reference) = reference_of(e) else {
            continue;
        };
        let Some(admitted) = e
            .pointer("/period/start")
            .and_then(Value::as_str)
            .and_then(instant)
        else {
            continue;
        };
        let in_hospital = confirmed.iter().find(|c| {
            c.at.0 >= admitted.0
                && (c.encounter.as_deref() == Some(reference.as_str())
                    || c.setting.as_deref() == Some("hospital"))
        });
        out.push(measured(
            Measure::Admission,
            reference.clone(),
            admitted,
            in_hospital,
            now,
        ));
        if status == "finished" {
            let end = e
                .pointer("/period/end")
                .and_then(Value::as_str)
                .and_then(instant);
            if let Some(arrived) = discharge_arrival(&reference, end, entries) {
                let by_gp = confirmed
                    .iter()
                    .find(|c| c.at.0 >= arrived.0 && c.setting.as_deref() == Some("gp-practice"));
                out.push(measured(Measure::Discharge, reference, arrived, by_gp, now));
            }
        }
    }
    out.sort_by(|a, b| {
        a.started
            .0
            .cmp(&b.started.0)
            .then(a.measure.cmp(&b.measure))
    });
    out
}

/// Counts of one practice, month and measure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub met: u64,
    pub not_met: u64,
    pub pending: u64,
}

/// `YYYY-MM` of a FHIR instant's text (the month the clock started in).
fn month(text: &str) -> String {
    text.get(..7).unwrap_or(text).to_owned()
}

/// Aggregates measured patients: (practice ODS code, `YYYY-MM` the clock started in, measure)
/// → counts. For the analytics work; disclosure control is the caller's.
pub fn aggregate<'a>(
    patients: impl IntoIterator<Item = (&'a str, &'a [Timeliness])>,
) -> BTreeMap<(String, String, Measure), Counts> {
    let mut out: BTreeMap<(String, String, Measure), Counts> = BTreeMap::new();
    for (practice, results) in patients {
        for r in results {
            let c = out
                .entry((practice.to_owned(), month(&r.started.1), r.measure))
                .or_default();
            match r.status {
                Status::Met => c.met += 1,
                Status::NotMet => c.not_met += 1,
                Status::Pending => c.pending += 1,
            }
        }
    }
    out
}

/// The per-patient answer as a FHIR Parameters: one `measurement` per admission/discharge.
pub fn to_parameters(results: &[Timeliness]) -> Value {
    let parameters: Vec<Value> = results
        .iter()
        .map(|r| {
            let mut parts = vec![
                serde_json::json!({"name": "measure", "valueCode": r.measure.code()}),
                serde_json::json!({"name": "encounter", "valueReference": {"reference": r.encounter}}),
                serde_json::json!({"name": "started", "valueDateTime": r.started.1}),
                serde_json::json!({"name": "limitHours", "valueInteger": r.measure.limit_hours()}),
                serde_json::json!({"name": "hours", "valueDecimal": (r.hours * 100.0).round() / 100.0}),
                serde_json::json!({"name": "status", "valueCode": r.status.code()}),
            ];
            if let Some((reference, _, at)) = &r.reconciliation {
                parts.push(serde_json::json!({"name": "reconciliation", "valueReference": {"reference": reference}}));
                parts.push(serde_json::json!({"name": "reconciled", "valueDateTime": at}));
            }
            serde_json::json!({"name": "measurement", "part": parts})
        })
        .collect();
    let mut p = serde_json::json!({"resourceType": "Parameters"});
    if !parameters.is_empty() {
        p["parameter"] = Value::Array(parameters);
    }
    p
}
