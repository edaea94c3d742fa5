//! FHIR resources read into what the indicators read ([`PatientData`]).
//!
//! What counts as "prescribed": a MedicationRequest that is a prescription issued in primary
//! care, as the GP records OpenSAFELY reads hold them —
//! - `intent` `order`, `original-order`, `reflex-order` or `instance-order` (a repeat
//!   authorisation, `plan`, is not an issue; a pharmacy's `filler-order` is not a
//!   prescription; `proposal` and `option` were never prescribed);
//! - `status` anything but `entered-in-error`, `cancelled` or `draft` (a prescription later
//!   stopped or completed was still issued);
//! - `category` `community` or not stated (hospital `inpatient`, `outpatient` and `discharge`
//!   orders are other prescribers' and are not what PINCER measures);
//! - dated by `authoredOn` (an undated request is listed as such, never guessed).
//!
//! MedicationStatements (what the patient says they take) and MedicationDispenses (what a
//! pharmacy supplied against a prescription already counted) are not prescriptions.
//!
//! Conditions are dated by `onsetDateTime` (`onsetPeriod.start`), else `recordedDate`; those
//! `entered-in-error` or `refuted` are ignored; `inactive`, `remission` and `resolved` ones
//! are still history (a past ulcer is a risk) but resolve asthma. Observations and Procedures
//! are dated by `effective[x]` / `performed[x]` (else `issued`); `entered-in-error` and
//! `cancelled` ones (and Procedures `not-done`) are ignored.

use serde_json::Value;
use smr_dmd::MedicineLookup;

use super::{ClinicalEvent, Date, EventKind, PatientData, Pincer, Prescription};

const PRESCRIBED_INTENTS: [&str; 4] = ["order", "original-order", "reflex-order", "instance-order"];
const NOT_ISSUED: [&str; 3] = ["entered-in-error", "cancelled", "draft"];
const PRIMARY_CARE_CATEGORIES: [&str; 1] = ["community"];

fn str_at<'a>(r: &'a Value, pointer: &str) -> Option<&'a str> {
    r.pointer(pointer).and_then(Value::as_str)
}

fn codings(cc: Option<&Value>) -> Vec<(String, String)> {
    cc.and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            Some((
                c.get("system")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                c.get("code")?.as_str()?.to_owned(),
            ))
        })
        .collect()
}

fn status_code(r: &Value, element: &str) -> Option<String> {
    r.get(element)?
        .get("coding")?
        .as_array()?
        .iter()
        .find_map(|c| c.get("code").and_then(Value::as_str))
        .map(str::to_owned)
}

/// Whether a MedicationRequest counts as a primary-care prescription (see the module
/// documentation); `Err` says why not.
pub fn counts_as_prescribed(request: &Value) -> Result<(), &'static str> {
    let intent = request.get("intent").and_then(Value::as_str).unwrap_or("");
    if !PRESCRIBED_INTENTS.contains(&intent) {
        return Err("not an issued prescription (intent)");
    }
    let status = request.get("status").and_then(Value::as_str).unwrap_or("");
    if NOT_ISSUED.contains(&status) {
        return Err("not issued (status)");
    }
    let categories: Vec<String> = request
        .get("category")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|c| codings(Some(c)))
        .map(|(_, code)| code)
        .collect();
    if !categories.is_empty()
        && !categories
            .iter()
            .any(|c| PRIMARY_CARE_CATEGORIES.contains(&c.as_str()))
    {
        return Err("not a primary-care prescription (category)");
    }
    Ok(())
}

/// The medicine a MedicationRequest names: its codeable concept, a contained Medication or a
/// referenced one from `medications`.
fn medicine_codings<'a>(
    request: &'a Value,
    medications: &'a [Value],
) -> (Vec<(String, String)>, Option<&'a str>) {
    if let Some(cc) = request.get("medicationCodeableConcept") {
        return (codings(Some(cc)), cc.get("text").and_then(Value::as_str));
    }
    let Some(reference) = str_at(request, "/medicationReference/reference") else {
        return (Vec::new(), str_at(request, "/medicationReference/display"));
    };
    let medication = if let Some(local) = reference.strip_prefix('#') {
        request
            .get("contained")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|c| c.get("id").and_then(Value::as_str) == Some(local))
    } else {
        let id = reference
            .split("/_history")
            .next()
            .unwrap_or(reference)
            .rsplit('/')
            .next()
            .unwrap_or("");
        medications
            .iter()
            .find(|m| m.get("id").and_then(Value::as_str) == Some(id))
    };
    match medication {
        Some(m) => (
            codings(m.get("code")),
            str_at(m, "/code/text").or(str_at(request, "/medicationReference/display")),
        ),
        None => (Vec::new(), str_at(request, "/medicationReference/display")),
    }
}

fn reference_of(r: &Value) -> String {
    format!(
        "{}/{}",
        r.get("resourceType").and_then(Value::as_str).unwrap_or(""),
        r.get("id").and_then(Value::as_str).unwrap_or("")
    )
}

fn first_date(r: &Value, pointers: &[&str]) -> Option<Date> {
    pointers
        .iter()
        .find_map(|p| str_at(r, p).and_then(Date::parse))
}

/// Reads a patient's resources. `visible` says whether the caller may see a resource.
pub fn read_patient(
    pincer: &Pincer,
    patient: &Value,
    resources: &[Value],
    medications: &[Value],
    lookup: &dyn MedicineLookup,
    visible: &dyn Fn(&Value) -> bool,
) -> PatientData {
    let mut data = PatientData {
        birth_date: str_at(patient, "/birthDate").and_then(Date::parse),
        deceased: match patient.get("deceasedBoolean") {
            Some(Value::Bool(true)) => Some(Date::from_days(i32::MIN / 2)),
            _ => str_at(patient, "/deceasedDateTime").and_then(Date::parse),
        },
        ..PatientData::default()
    };
    for r in resources {
        let seen = visible(r);
        match r.get("resourceType").and_then(Value::as_str) {
            Some("MedicationRequest") => {
                if counts_as_prescribed(r).is_err() {
                    continue;
                }
                let reference = reference_of(r);
                let Some(date) = str_at(r, "/authoredOn").and_then(Date::parse) else {
                    if seen {
                        data.undated.push(reference);
                    }
                    continue;
                };
                let (codes, text) = medicine_codings(r, medications);
                let pairs: Vec<(Option<&str>, &str)> = codes
                    .iter()
                    .map(|(s, c)| ((!s.is_empty()).then_some(s.as_str()), c.as_str()))
                    .collect();
                match lookup.resolve(&pairs, text) {
                    Some(info) => data.prescriptions.push(Prescription {
                        reference,
                        date,
                        groups: pincer.groups_of(&info),
                        visible: seen,
                    }),
                    None if seen => data.unmapped.push(reference),
                    None => {}
                }
            }
            Some("Condition") => {
                let verification = status_code(r, "verificationStatus");
                if matches!(
                    verification.as_deref(),
                    Some("entered-in-error" | "refuted")
                ) {
                    continue;
                }
                let clinical = status_code(r, "clinicalStatus");
                let Some(date) = first_date(
                    r,
                    &["/onsetDateTime", "/onsetPeriod/start", "/recordedDate"],
                ) else {
                    continue;
                };
                push_event(
                    pincer,
                    &mut data,
                    r,
                    EventKind::Condition,
                    date,
                    seen,
                    |_| {
                        matches!(
                            clinical.as_deref(),
                            Some("inactive" | "remission" | "resolved")
                        )
                    },
                );
            }
            Some("Observation") => {
                let status = r.get("status").and_then(Value::as_str).unwrap_or("");
                if matches!(status, "entered-in-error" | "cancelled") {
                    continue;
                }
                let Some(date) = first_date(
                    r,
                    &[
                        "/effectiveDateTime",
                        "/effectivePeriod/start",
                        "/effectiveInstant",
                        "/issued",
                    ],
                ) else {
                    continue;
                };
                push_event(
                    pincer,
                    &mut data,
                    r,
                    EventKind::Observation,
                    date,
                    seen,
                    |_| false,
                );
            }
            Some("Procedure") => {
                let status = r.get("status").and_then(Value::as_str).unwrap_or("");
                if matches!(status, "entered-in-error" | "not-done") {
                    continue;
                }
                let Some(date) = first_date(r, &["/performedDateTime", "/performedPeriod/start"])
                else {
                    continue;
                };
                push_event(
                    pincer,
                    &mut data,
                    r,
                    EventKind::Procedure,
                    date,
                    seen,
                    |_| false,
                );
            }
            _ => {}
        }
    }
    data
}

fn push_event(
    pincer: &Pincer,
    data: &mut PatientData,
    r: &Value,
    kind: EventKind,
    date: Date,
    visible: bool,
    resolved: impl Fn(&Value) -> bool,
) {
    let codes = codings(r.get("code"));
    let sets = pincer.sets_of(codes.iter().map(|(s, c)| (s.as_str(), c.as_str())));
    if sets == 0 {
        return;
    }
    // A comparator's bound is kept as the value: "<15" is below 45 and ">90" is not, which is
    // all a threshold reads.
    let value = r.pointer("/valueQuantity/value").and_then(Value::as_f64);
    data.events.push(ClinicalEvent {
        reference: reference_of(r),
        kind,
        date,
        sets,
        value,
        resolved: resolved(r),
        visible,
    });
}
