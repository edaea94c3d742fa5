//! FHIR resources read into the check's context: AllergyIntolerance → [`Allergy`],
//! Observation (eGFR, creatinine clearance) → [`RenalResult`]. Visibility is the caller's to
//! set: these readers take it as given.

use serde_json::Value;

use crate::context::{Allergy, AllergyStatus, RenalResult};
use crate::knowledge::RenalKnowledge;

fn codes_of(concept: Option<&Value>) -> impl Iterator<Item = &str> {
    concept
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("code").and_then(Value::as_str))
}

fn reference(r: &Value) -> Option<String> {
    Some(format!(
        "{}/{}",
        r.get("resourceType")?.as_str()?,
        r.get("id")?.as_str()?
    ))
}

/// An AllergyIntolerance as the checks read it. `None` for another resource type.
///
/// Not checked (status `Ignored`): `verificationStatus` refuted or entered-in-error,
/// `clinicalStatus` inactive or resolved, and a `category` that does not include
/// `medication` (a food or environmental allergy cannot conflict with a medicine). An allergy
/// with no category is checked: UK GP records often carry none.
pub fn read_allergy(r: &Value, visible: bool) -> Option<Allergy> {
    if r.get("resourceType").and_then(Value::as_str) != Some("AllergyIntolerance") {
        return None;
    }
    let verification: Vec<&str> = codes_of(r.get("verificationStatus")).collect();
    let clinical: Vec<&str> = codes_of(r.get("clinicalStatus")).collect();
    let categories: Vec<&str> = r
        .get("category")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let status = if verification.contains(&"entered-in-error") {
        AllergyStatus::Ignored("entered-in-error")
    } else if verification.contains(&"refuted") {
        AllergyStatus::Ignored("refuted")
    } else if clinical.contains(&"resolved") {
        AllergyStatus::Ignored("resolved")
    } else if clinical.contains(&"inactive") {
        AllergyStatus::Ignored("inactive")
    } else if !categories.is_empty() && !categories.contains(&"medication") {
        AllergyStatus::Ignored("not a medication allergy")
    } else {
        AllergyStatus::Active
    };
    let code = r.get("code");
    let codings = code
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let value = c.get("code")?.as_str()?.trim();
            (!value.is_empty()).then(|| {
                (
                    c.get("system").and_then(Value::as_str).map(str::to_owned),
                    value.to_owned(),
                    c.get("display").and_then(Value::as_str).map(str::to_owned),
                )
            })
        })
        .collect();
    Some(Allergy {
        reference: reference(r),
        visible,
        codings,
        text: code
            .and_then(|c| c.get("text"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        status,
        criticality: r
            .get("criticality")
            .and_then(Value::as_str)
            .map(str::to_owned),
        intolerance: r.get("type").and_then(Value::as_str) == Some("intolerance"),
    })
}

/// An Observation as a renal function result: `None` unless it is an eGFR or creatinine
/// clearance (by the codes in `renal.json`) with a final (or amended, corrected) numeric value
/// and a date.
pub fn read_renal(r: &Value, knowledge: &RenalKnowledge, visible: bool) -> Option<RenalResult> {
    if r.get("resourceType").and_then(Value::as_str) != Some("Observation") {
        return None;
    }
    if !matches!(
        r.get("status").and_then(Value::as_str),
        Some("final" | "amended" | "corrected")
    ) {
        return None;
    }
    let measure = r
        .pointer("/code/coding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|c| {
            knowledge.measure_of(
                c.get("system").and_then(Value::as_str)?,
                c.get("code").and_then(Value::as_str)?,
            )
        })?;
    let q = r.get("valueQuantity")?;
    let number = q.get("value")?;
    let mut value = number
        .as_f64()
        .or_else(|| number.to_string().parse().ok())?;
    let comparator = q.get("comparator").and_then(Value::as_str).unwrap_or("");
    // "<15" is below 15: read it just below, so a "below 15" band applies.
    if comparator == "<" {
        value -= 1e-6;
    }
    let (when, when_text) = ["effectiveDateTime", "issued"]
        .iter()
        .find_map(|k| r.get(*k).and_then(Value::as_str))
        .or_else(|| r.pointer("/effectivePeriod/start").and_then(Value::as_str))
        .and_then(|t| {
            smr_fhir::datetime::parse_range(t)
                .ok()
                .map(|(start, _)| (start, t.to_owned()))
        })?;
    Some(RenalResult {
        measure,
        value,
        value_text: format!("{comparator}{number}"),
        when,
        when_text,
        reference: reference(r),
        visible,
    })
}
