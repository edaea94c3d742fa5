//! AuditEvents as a patient reads their access log: who opened their record, when, in which
//! role and organisation, why, and whether it was a break-glass (emergency) access.

use serde_json::Value;

use crate::json::{concept, items, short_time, text};

const ROLE_SYSTEM_CODE: &str = "/role/0/coding/0/code";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    pub when: String,
    /// The user's id (token `sub`), to tell the patient's own views from others'.
    pub user: Option<String>,
    /// The user's name, else their user id.
    pub who: String,
    /// The SMR role name (`gp`, …).
    pub role: Option<String>,
    /// ODS code of their organisation.
    pub organisation: Option<String>,
    /// What they did ("read", "search Patient", "$medication-record", …).
    pub what: String,
    /// Purpose of use in words ("treatment", "break the glass", …).
    pub purpose: String,
    pub break_glass: bool,
    /// The reason given for a break-glass access.
    pub reason: Option<String>,
    /// The request was refused (nothing was shown).
    pub refused: bool,
}

impl AccessEntry {
    pub fn from_resource(event: &Value) -> Self {
        let agents = items(event, "/agent");
        let user = agents
            .iter()
            .find(|a| a.get("requestor").and_then(Value::as_bool) == Some(true))
            .or_else(|| agents.first());
        let organisation = agents
            .iter()
            .filter(|a| a.get("requestor").and_then(Value::as_bool) != Some(true))
            .find_map(|a| text(a, "/who/identifier/value"));
        let purpose_concept = items(event, "/purposeOfEvent").first();
        let purpose_code = purpose_concept.and_then(|p| text(p, "/coding/0/code"));
        let break_glass = purpose_code.as_deref() == Some("BTG");
        let subtypes = items(event, "/subtype");
        let interaction = subtypes.first().and_then(|s| text(s, "/code"));
        let detail = subtypes.get(1).and_then(|s| text(s, "/code"));
        let what = what_words(interaction.as_deref(), detail.as_deref());
        AccessEntry {
            when: text(event, "/recorded")
                .map(|t| short_time(&t))
                .unwrap_or_default(),
            user: user.and_then(|u| text(u, "/who/identifier/value")),
            who: user
                .and_then(|u| text(u, "/who/display").or_else(|| text(u, "/who/identifier/value")))
                .unwrap_or_else(|| "unknown".to_owned()),
            role: user.and_then(|u| text(u, ROLE_SYSTEM_CODE)),
            organisation,
            what,
            purpose: purpose_concept
                .and_then(|p| text(p, "/coding/0/display").or_else(|| concept(p)))
                .unwrap_or_else(|| "not stated".to_owned()),
            break_glass,
            reason: if break_glass {
                purpose_concept.and_then(|p| text(p, "/text"))
            } else {
                None
            },
            refused: matches!(text(event, "/outcome").as_deref(), Some("4" | "8")),
        }
    }
}

/// An audited interaction in words ("Looked at your test results").
fn what_words(interaction: Option<&str>, detail: Option<&str>) -> String {
    let thing = |res_type: &str| match res_type {
        "Patient" => "your personal details",
        "Observation" => "your test results",
        "DetectedIssue" => "your medicine alerts",
        "MedicationRequest" => "your prescriptions",
        "MedicationDispense" => "your dispensed medicines",
        "MedicationStatement" | "MedicationAdministration" => "your medicines",
        "Consent" => "your consent choices",
        "AuditEvent" => "your access log",
        "AllergyIntolerance" => "your allergies",
        _ => "your record",
    };
    match (interaction, detail) {
        (Some("operation"), Some("$medication-record")) => "Opened your medicines record".into(),
        (Some("operation"), Some("$everything")) => "Opened your whole record".into(),
        (Some("operation"), Some(op)) => format!("Ran {op} on your record"),
        (Some("search-type"), Some(res_type)) => format!("Looked at {}", thing(res_type)),
        (Some("read" | "vread"), _) => "Opened an entry of your record".into(),
        (Some("create"), _) => "Added to your record".into(),
        (Some("update" | "patch"), _) => "Changed your record".into(),
        (Some("delete"), _) => "Removed an entry from your record".into(),
        (Some(other), _) => other.to_owned(),
        (None, _) => "Access".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_break_glass_access_reads_with_its_reason() {
        let e = json!({"resourceType": "AuditEvent", "recorded": "2026-12-07T10:00:00Z",
            "outcome": "0",
            "subtype": [{"code": "operation"}, {"code": "$medication-record"}],
            "purposeOfEvent": [{"coding": [{"code": "BTG", "display": "break the glass"}],
                                "text": "unconscious in ED"}],
            "agent": [{"requestor": true, "who": {"display": "Dr A"},
                       "role": [{"coding": [{"code": "hospital-prescriber"}]}]},
                      {"requestor": false, "who": {"identifier": {"value": "Y9H01"}}}]});
        let a = AccessEntry::from_resource(&e);
        assert!(a.break_glass);
        assert_eq!(a.reason.as_deref(), Some("unconscious in ED"));
        assert_eq!(a.who, "Dr A");
        assert_eq!(a.organisation.as_deref(), Some("Y9H01"));
        assert_eq!(a.what, "Opened your medicines record");
        assert_eq!(a.when, "2026-12-07 10:00");
    }
}
