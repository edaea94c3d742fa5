//! One medicine's timeline across settings: the `$medication-record?medicine=` Bundle (every
//! source entry of that medicine in date order, each followed by the Provenance records about
//! it) as rows — what happened, when, where (the care setting the Provenance names) and by
//! whom — and its page.

use askama::Template;
use serde_json::Value;

use crate::RenderError;
use crate::json::{concept, items, short_time, text};
use crate::layout::{Chrome, Section, Viewer};
use crate::record::setting_words;

/// SMR's care-setting code system (a Provenance agent's role names the setting with it).
const CARE_SETTING_SYSTEM: &str = "https://fhir.smr.nhs.uk/CodeSystem/care-setting";

/// One source entry of the medicine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    /// `Type/id`.
    pub reference: String,
    /// "Prescribed", "Dispensed", …
    pub event: &'static str,
    pub date: Option<String>,
    pub status: String,
    pub medicine: String,
    pub dose: Option<String>,
    /// Care setting in words, from the entry's Provenance ("not recorded" when none says).
    pub setting: &'static str,
    /// The setting's code, for the badge's class.
    pub setting_code: String,
    /// Who recorded it (Provenance agent), and for which organisation.
    pub recorded_by: Option<String>,
}

/// Reads a `$medication-record?medicine=` Bundle.
pub fn from_bundle(bundle: &Value) -> Vec<TimelineEntry> {
    let mut out: Vec<TimelineEntry> = Vec::new();
    for resource in items(bundle, "/entry")
        .iter()
        .filter_map(|e| e.get("resource"))
    {
        let ty = text(resource, "/resourceType").unwrap_or_default();
        if ty == "Provenance" {
            // About the entry it follows: the first one naming a setting wins.
            if let Some(last) = out.last_mut()
                && last.setting_code == "unspecified"
            {
                apply_provenance(last, resource);
            }
            continue;
        }
        out.push(entry(&ty, resource));
    }
    out
}

fn entry(ty: &str, r: &Value) -> TimelineEntry {
    let event = match ty {
        "MedicationRequest" if text(r, "/intent").as_deref() == Some("plan") => "Repeat authorised",
        "MedicationRequest" => "Prescribed",
        "MedicationDispense" => "Dispensed",
        "MedicationAdministration" => "Given",
        "MedicationStatement" => "Recorded as taken",
        _ => "Recorded",
    };
    let date = [
        "/authoredOn",
        "/whenHandedOver",
        "/whenPrepared",
        "/effectiveDateTime",
        "/effectivePeriod/start",
        "/dateAsserted",
    ]
    .iter()
    .find_map(|p| text(r, p))
    .map(|t| short_time(&t));
    let dose = items(r, "/dosageInstruction")
        .first()
        .and_then(|d| text(d, "/text"))
        .or_else(|| text(r, "/dosage/text"))
        .or_else(|| items(r, "/dosage").first().and_then(|d| text(d, "/text")));
    TimelineEntry {
        reference: format!("{ty}/{}", text(r, "/id").unwrap_or_default()),
        event,
        date,
        status: text(r, "/status").unwrap_or_else(|| "unknown".to_owned()),
        medicine: r
            .get("medicationCodeableConcept")
            .and_then(concept)
            .or_else(|| text(r, "/medicationReference/display"))
            .unwrap_or_else(|| "(medicine not named)".to_owned()),
        dose,
        setting: "not recorded",
        setting_code: "unspecified".to_owned(),
        recorded_by: None,
    }
}

fn apply_provenance(entry: &mut TimelineEntry, provenance: &Value) {
    for agent in items(provenance, "/agent") {
        let code = items(agent, "/role")
            .iter()
            .flat_map(|r| items(r, "/coding"))
            .find(|c| text(c, "/system").as_deref() == Some(CARE_SETTING_SYSTEM))
            .and_then(|c| text(c, "/code"));
        let Some(code) = code else {
            continue;
        };
        let (label, _) = setting_words(&code);
        entry.setting = label;
        entry.setting_code = if label == "Unspecified" {
            "unspecified".to_owned()
        } else {
            code
        };
        let who = text(agent, "/who/display").or_else(|| text(agent, "/who/identifier/value"));
        let org = text(agent, "/onBehalfOf/identifier/value")
            .or_else(|| text(agent, "/onBehalfOf/display"));
        entry.recorded_by = match (who, org) {
            (Some(w), Some(o)) => Some(format!("{w} ({o})")),
            (Some(w), None) => Some(w),
            (None, Some(o)) => Some(o),
            (None, None) => None,
        };
        return;
    }
}

#[derive(Template)]
#[template(path = "timeline.html")]
struct TimelinePage<'a> {
    page: Chrome,
    patient_id: &'a str,
    medicine: &'a str,
    entries: &'a [TimelineEntry],
}

/// The timeline page of one medicine.
pub fn page(
    viewer: &Viewer,
    patient_id: &str,
    entries: &[TimelineEntry],
) -> Result<String, RenderError> {
    let medicine = entries
        .first()
        .map_or("This medicine", |e| e.medicine.as_str());
    Ok(TimelinePage {
        page: Chrome::new(
            format!("{medicine}: timeline"),
            Some(viewer),
            Section::Patients,
        ),
        patient_id,
        medicine,
        entries,
    }
    .render()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_take_their_setting_from_the_provenance_that_follows() {
        let bundle = json!({"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "MedicationRequest", "id": "a", "intent": "plan",
                "status": "active", "authoredOn": "2026-01-01",
                "medicationCodeableConcept": {"text": "Warfarin 1mg tablets"},
                "dosageInstruction": [{"text": "as directed"}]}},
            {"resource": {"resourceType": "Provenance", "agent": [{
                "role": [{"coding": [{"system": CARE_SETTING_SYSTEM, "code": "gp-practice"}]}],
                "who": {"display": "Dr A"},
                "onBehalfOf": {"identifier": {"value": "A81001"}}}]}},
            {"resource": {"resourceType": "MedicationDispense", "id": "b", "status": "completed",
                "whenHandedOver": "2026-01-03T09:30:00Z",
                "medicationCodeableConcept": {"text": "Warfarin 1mg tablets"}}}
        ]});
        let t = from_bundle(&bundle);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].event, "Repeat authorised");
        assert_eq!(t[0].setting, "GP practice");
        assert_eq!(t[0].recorded_by.as_deref(), Some("Dr A (A81001)"));
        assert_eq!(t[1].event, "Dispensed");
        assert_eq!(t[1].setting, "not recorded");
        assert_eq!(t[1].date.as_deref(), Some("2026-01-03 09:30"));
        let viewer = Viewer {
            name: "x".into(),
            role: "gp".into(),
            organisation: None,
            patient: None,
        };
        let html = page(&viewer, "p1", &t).expect("render");
        assert!(html.contains("Warfarin 1mg tablets: timeline"));
    }
}
