//! Care relationships: which organisations care for a patient, read from the resources that
//! show it.
//!
//! A clinical user may open a patient's record only when their organisation cares for the
//! patient. SMR derives that from the record itself, each source with its own window:
//!
//! | source | organisation | valid |
//! |---|---|---|
//! | `Patient.generalPractitioner` | the registered GP practice | while registered |
//! | `Encounter.serviceProvider` | the hospital | in progress, or until 30 days after it ended |
//! | `MedicationRequest.dispenseRequest.performer` | the nominated pharmacy | 90 days from `authoredOn` |
//! | `MedicationDispense.performer.actor` | the dispensing pharmacy | 90 days from the hand-over |
//! | `EpisodeOfCare.managingOrganization` | the community or care-home team | while active |
//!
//! An organisation is keyed as `Organization/{id}` when referenced by id and as `ods:{CODE}`
//! when referenced by its ODS identifier; the application layer expands a caller's ODS code
//! to both forms. The store keeps the links of each resource beside it, rewritten by every
//! write in the same transaction, so the access predicate is a join on `patient_key`.

use serde_json::Value;
use smr_fhir::datetime;

use crate::{ODS_SYSTEM, ods_key};

/// Days after an encounter ends during which the hospital keeps access (discharge
/// follow-up, results, queries).
pub const ENCOUNTER_DAYS: i64 = 30;
/// Days after a nomination or dispense during which the pharmacy keeps access.
pub const PHARMACY_DAYS: i64 = 90;

const DAY_MICROS: i64 = 86_400 * 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CareLinkKind {
    RegisteredGp,
    Encounter,
    PharmacyNomination,
    PharmacyDispense,
    EpisodeOfCare,
}

impl CareLinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CareLinkKind::RegisteredGp => "registered-gp",
            CareLinkKind::Encounter => "encounter",
            CareLinkKind::PharmacyNomination => "pharmacy-nomination",
            CareLinkKind::PharmacyDispense => "pharmacy-dispense",
            CareLinkKind::EpisodeOfCare => "episode-of-care",
        }
    }
}

/// One organisation's care relationship shown by one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CareLink {
    /// `Organization/{id}` or `ods:{CODE}`.
    pub org: String,
    pub kind: CareLinkKind,
    /// Microseconds since the epoch after which the link no longer counts; `None` while the
    /// relationship is open-ended (registration, an encounter in progress).
    pub valid_until: Option<i64>,
}

/// The resource types whose writes can change care relationships.
pub const LINK_TYPES: &[&str] = &[
    "Patient",
    "Encounter",
    "MedicationRequest",
    "MedicationDispense",
    "EpisodeOfCare",
];

/// The care relationships a resource shows (empty for every other type). `resource` is the
/// stored form, with `meta.lastUpdated` set: it stands in for a missing date.
pub fn links(resource: &Value) -> Vec<CareLink> {
    let ty = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("");
    let status = resource.get("status").and_then(Value::as_str).unwrap_or("");
    let mut out = Vec::new();
    match ty {
        "Patient" => {
            if resource.get("active").and_then(Value::as_bool) == Some(false) {
                return out;
            }
            for reference in array(resource.get("generalPractitioner")) {
                push_org(&mut out, reference, CareLinkKind::RegisteredGp, None);
            }
        }
        "Encounter" => {
            let until = match status {
                "planned" | "cancelled" | "entered-in-error" | "unknown" => return out,
                "arrived" | "triaged" | "in-progress" | "onleave" => None,
                // finished: 30 days from the end (or from the last update when no end is given).
                _ => Some(
                    period_end(resource.get("period"))
                        .or_else(|| last_updated(resource))
                        .map_or(0, |end| end + ENCOUNTER_DAYS * DAY_MICROS),
                ),
            };
            if let Some(provider) = resource.get("serviceProvider") {
                push_org(&mut out, provider, CareLinkKind::Encounter, until);
            }
        }
        "MedicationRequest" => {
            if matches!(status, "entered-in-error" | "draft") {
                return out;
            }
            let from = resource
                .get("authoredOn")
                .and_then(Value::as_str)
                .and_then(|t| datetime::parse_range(t).ok())
                .map(|(low, _)| low)
                .or_else(|| last_updated(resource))
                .unwrap_or(0);
            if let Some(performer) = resource.pointer("/dispenseRequest/performer") {
                push_org(
                    &mut out,
                    performer,
                    CareLinkKind::PharmacyNomination,
                    Some(from + PHARMACY_DAYS * DAY_MICROS),
                );
            }
        }
        "MedicationDispense" => {
            if matches!(status, "entered-in-error" | "cancelled" | "declined") {
                return out;
            }
            let when = ["whenHandedOver", "whenPrepared"]
                .iter()
                .filter_map(|k| resource.get(*k).and_then(Value::as_str))
                .find_map(|t| datetime::parse_range(t).ok())
                .map(|(_, high)| high)
                .or_else(|| last_updated(resource))
                .unwrap_or(0);
            for performer in array(resource.get("performer")) {
                if let Some(actor) = performer.get("actor") {
                    push_org(
                        &mut out,
                        actor,
                        CareLinkKind::PharmacyDispense,
                        Some(when + PHARMACY_DAYS * DAY_MICROS),
                    );
                }
            }
        }
        "EpisodeOfCare" => {
            if matches!(status, "active" | "waitlist" | "onhold")
                && let Some(org) = resource.get("managingOrganization")
            {
                push_org(&mut out, org, CareLinkKind::EpisodeOfCare, None);
            }
        }
        _ => {}
    }
    out.dedup();
    out
}

/// The organisation keys a `Reference` names: `Organization/{id}` for a literal reference to
/// an Organization, `ods:{CODE}` for a logical reference by ODS code.
pub fn org_keys(reference: &Value) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(text) = reference.get("reference").and_then(Value::as_str)
        && let Some(id) = text.strip_prefix("Organization/")
        && !id.is_empty()
        && !id.contains('/')
    {
        keys.push(format!("Organization/{id}"));
    }
    if let Some(identifier) = reference.get("identifier")
        && identifier.get("system").and_then(Value::as_str) == Some(ODS_SYSTEM)
        && let Some(code) = identifier.get("value").and_then(Value::as_str)
        && !code.trim().is_empty()
    {
        keys.push(ods_key(code));
    }
    keys
}

fn push_org(
    out: &mut Vec<CareLink>,
    reference: &Value,
    kind: CareLinkKind,
    valid_until: Option<i64>,
) {
    for org in org_keys(reference) {
        out.push(CareLink {
            org,
            kind,
            valid_until,
        });
    }
}

fn array(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    value.and_then(Value::as_array).into_iter().flatten()
}

fn period_end(period: Option<&Value>) -> Option<i64> {
    let end = period?.get("end")?.as_str()?;
    datetime::parse_range(end).ok().map(|(_, high)| high)
}

fn last_updated(resource: &Value) -> Option<i64> {
    let text = resource.pointer("/meta/lastUpdated")?.as_str()?;
    datetime::parse_instant_micros(text).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ods(code: &str) -> Value {
        json!({"identifier": {"system": ODS_SYSTEM, "value": code}})
    }

    #[test]
    fn registered_gp_by_id_and_by_ods_code() {
        let p = json!({"resourceType": "Patient", "generalPractitioner": [
            {"reference": "Organization/gp1"}, ods("a81001"), {"reference": "Practitioner/x"}]});
        let orgs: Vec<_> = links(&p).into_iter().map(|l| l.org).collect();
        assert_eq!(orgs, ["Organization/gp1", "ods:A81001"]);
        let inactive = json!({"resourceType": "Patient", "active": false,
            "generalPractitioner": [{"reference": "Organization/gp1"}]});
        assert!(links(&inactive).is_empty());
    }

    #[test]
    fn encounter_in_progress_is_open_and_finished_lasts_thirty_days() {
        let open = json!({"resourceType": "Encounter", "status": "in-progress",
            "serviceProvider": {"reference": "Organization/h"}});
        assert_eq!(links(&open)[0].valid_until, None);
        let done = json!({"resourceType": "Encounter", "status": "finished",
            "period": {"start": "2026-01-01", "end": "2026-01-10T00:00:00Z"},
            "serviceProvider": {"reference": "Organization/h"}});
        // Ranges are half-open: an instant's range ends one microsecond after it.
        let end = datetime::parse_range("2026-01-10T00:00:00Z").map_or(0, |r| r.1);
        assert_eq!(links(&done)[0].valid_until, Some(end + 30 * DAY_MICROS));
        let planned = json!({"resourceType": "Encounter", "status": "planned",
            "serviceProvider": {"reference": "Organization/h"}});
        assert!(links(&planned).is_empty());
    }

    #[test]
    fn pharmacy_nomination_and_dispense_last_ninety_days() {
        let mr = json!({"resourceType": "MedicationRequest", "status": "active",
            "authoredOn": "2026-03-01", "dispenseRequest": {"performer": ods("FA123")}});
        let l = links(&mr);
        assert_eq!(l[0].org, "ods:FA123");
        assert_eq!(l[0].kind, CareLinkKind::PharmacyNomination);
        let start = datetime::parse_range("2026-03-01")
            .map(|r| r.0)
            .unwrap_or_default();
        assert_eq!(l[0].valid_until, Some(start + 90 * DAY_MICROS));
        let md = json!({"resourceType": "MedicationDispense", "status": "completed",
            "whenHandedOver": "2026-03-02T10:00:00Z",
            "performer": [{"actor": {"reference": "Organization/ph"}}]});
        assert_eq!(links(&md)[0].kind, CareLinkKind::PharmacyDispense);
        let wrong = json!({"resourceType": "MedicationDispense", "status": "entered-in-error",
            "performer": [{"actor": {"reference": "Organization/ph"}}]});
        assert!(links(&wrong).is_empty());
    }

    #[test]
    fn active_episode_of_care_only() {
        let active = json!({"resourceType": "EpisodeOfCare", "status": "active",
            "managingOrganization": {"reference": "Organization/team"}});
        assert_eq!(links(&active)[0].kind, CareLinkKind::EpisodeOfCare);
        let finished = json!({"resourceType": "EpisodeOfCare", "status": "finished",
            "managingOrganization": {"reference": "Organization/team"}});
        assert!(links(&finished).is_empty());
    }

    #[test]
    fn other_types_and_malformed_references_show_nothing() {
        assert!(links(&json!({"resourceType": "Observation"})).is_empty());
        assert!(org_keys(&json!({"reference": "Organization/"})).is_empty());
        assert!(org_keys(&json!({"reference": "Organization/a/_history/1"})).is_empty());
        assert!(org_keys(&json!({"identifier": {"system": "x", "value": "A"}})).is_empty());
    }
}
