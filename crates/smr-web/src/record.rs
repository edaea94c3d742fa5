//! The single medication record as the page shows it: one row per medicine (a
//! `MedicationStatement` of the `$medication-record` Bundle), a badge per care setting that
//! holds it (the `medication-record-setting` extensions), the conflicts found while merging
//! (its DetectedIssues, matched to lines by the entries they implicate) and each line's
//! sources. Nothing is recomputed here: the merge is `smr-record`'s.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::issues::IssueView;
use crate::json::{concept, items, short_time, text};

const SETTING_EXT: &str = "https://fhir.smr.nhs.uk/StructureDefinition/medication-record-setting";
const MAPPING_EXT: &str = "https://fhir.smr.nhs.uk/StructureDefinition/medication-record-mapping";

/// One care setting holding a medicine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingBadge {
    /// `gp-practice`, `hospital`, … (the care-setting code; also the badge's CSS class).
    pub code: String,
    /// For clinicians: "GP practice", "Hospital", …
    pub label: &'static str,
    /// For patients: "your GP practice", "a hospital", …
    pub plain: &'static str,
    pub last_activity: Option<String>,
    /// `lastEntry`: the setting's latest entry for this medicine.
    pub last_entry: Option<String>,
    /// ODS code of the organisation, where known.
    pub organisation: Option<String>,
}

/// One medicine of the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MedicineLine {
    pub name: String,
    /// `system|code` of the medicine, for its timeline.
    pub code: Option<String>,
    /// `medicine=…` (URL-encoded): the query of the line's timeline page.
    pub timeline_query: Option<String>,
    pub status: String,
    pub dosage: Option<String>,
    pub started: Option<String>,
    pub ended: Option<String>,
    pub settings: Vec<SettingBadge>,
    /// `vmp`, `vtm` or `unmapped`.
    pub mapping: String,
    pub notes: Vec<String>,
    /// Every source entry merged into the line (versioned references, date order).
    pub sources: Vec<String>,
    /// Titles of the conflicts that implicate this line's entries.
    pub conflicts: Vec<String>,
}

impl MedicineLine {
    pub fn is_current(&self) -> bool {
        matches!(self.status.as_str(), "active" | "on-hold" | "intended")
    }

    pub fn unmapped(&self) -> bool {
        self.mapping == "unmapped"
    }

    /// The status as a patient reads it.
    pub fn plain_status(&self) -> &'static str {
        match self.status.as_str() {
            "active" => "You are taking this",
            "on-hold" => "Paused for now",
            "stopped" => "Stopped",
            "completed" => "Finished",
            "intended" => "Planned",
            _ => "Status not known",
        }
    }
}

/// The whole record page's content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordView {
    pub lines: Vec<MedicineLine>,
    /// Conflicts found while merging, most severe first.
    pub conflicts: Vec<IssueView>,
}

impl RecordView {
    /// Reads a `$medication-record` collection Bundle.
    pub fn from_bundle(bundle: &Value) -> Self {
        let resources: Vec<&Value> = items(bundle, "/entry")
            .iter()
            .filter_map(|e| e.get("resource"))
            .collect();
        let mut conflicts: Vec<IssueView> = resources
            .iter()
            .filter(|r| text(r, "/resourceType").as_deref() == Some("DetectedIssue"))
            .map(|r| IssueView::from_resource(r))
            .collect();
        conflicts.sort_by_key(IssueView::rank);
        let lines = resources
            .iter()
            .filter(|r| text(r, "/resourceType").as_deref() == Some("MedicationStatement"))
            .map(|r| line(r, &conflicts))
            .collect();
        RecordView { lines, conflicts }
    }

    /// Names of the current medicines (for the PGx panel's "on record" marks).
    pub fn current_names(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter(|l| l.is_current())
            .map(|l| l.name.clone())
            .collect()
    }
}

fn line(statement: &Value, conflicts: &[IssueView]) -> MedicineLine {
    let medicine = statement.get("medicationCodeableConcept");
    let code = medicine.and_then(|m| {
        let coding = items(m, "/coding").first()?;
        let code = text(coding, "/code")?;
        Some(match text(coding, "/system") {
            Some(system) => format!("{system}|{code}"),
            None => code,
        })
    });
    let sources: Vec<String> = items(statement, "/derivedFrom")
        .iter()
        .filter_map(|r| text(r, "/reference"))
        .collect();
    let own: BTreeSet<&str> = sources.iter().map(String::as_str).collect();
    let line_conflicts = conflicts
        .iter()
        .filter(|c| c.implicated.iter().any(|r| own.contains(r.as_str())))
        .map(|c| c.title.clone())
        .collect();
    let extensions = items(statement, "/extension");
    let settings = extensions
        .iter()
        .filter(|e| text(e, "/url").as_deref() == Some(SETTING_EXT))
        .map(setting_badge)
        .collect();
    let mapping = extensions
        .iter()
        .find(|e| text(e, "/url").as_deref() == Some(MAPPING_EXT))
        .and_then(|e| text(e, "/valueCode"))
        .unwrap_or_else(|| "unmapped".to_owned());
    let timeline_query = code.as_ref().map(|c| {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("medicine", c)
            .finish()
    });
    MedicineLine {
        timeline_query,
        name: medicine
            .and_then(concept)
            .unwrap_or_else(|| "(medicine not named)".to_owned()),
        code,
        status: text(statement, "/status").unwrap_or_else(|| "unknown".to_owned()),
        dosage: items(statement, "/dosage")
            .first()
            .and_then(|d| text(d, "/text")),
        started: text(statement, "/effectivePeriod/start").map(|t| short_time(&t)),
        ended: text(statement, "/effectivePeriod/end").map(|t| short_time(&t)),
        settings,
        mapping,
        notes: items(statement, "/note")
            .iter()
            .filter_map(|n| text(n, "/text"))
            .collect(),
        sources,
        conflicts: line_conflicts,
    }
}

fn setting_badge(ext: &Value) -> SettingBadge {
    let sub = |name: &str| {
        items(ext, "/extension")
            .iter()
            .find(|e| text(e, "/url").as_deref() == Some(name))
    };
    let code = sub("setting")
        .and_then(|e| text(e, "/valueCoding/code"))
        .unwrap_or_else(|| "unspecified".to_owned());
    let (label, plain) = setting_words(&code);
    SettingBadge {
        label,
        plain,
        last_activity: sub("lastActivity")
            .and_then(|e| text(e, "/valueDateTime"))
            .map(|t| short_time(&t)),
        last_entry: sub("lastEntry").and_then(|e| text(e, "/valueReference/reference")),
        organisation: sub("organization").and_then(|e| {
            text(e, "/valueReference/identifier/value")
                .or_else(|| text(e, "/valueReference/display"))
        }),
        // Only the known codes become CSS classes; anything else is drawn as unspecified.
        code: if label == "Unspecified" {
            "unspecified".to_owned()
        } else {
            code
        },
    }
}

/// A care-setting code in words: (for clinicians, for patients).
pub(crate) fn setting_words(code: &str) -> (&'static str, &'static str) {
    match code {
        "gp-practice" => ("GP practice", "your GP practice"),
        "hospital" => ("Hospital", "a hospital"),
        "community-pharmacy" => ("Community pharmacy", "a pharmacy"),
        "community" => ("Community", "a community health team"),
        "care-home" => ("Care home", "a care home"),
        "patient-reported" => ("Patient-reported", "you told us"),
        _ => ("Unspecified", "a care setting not recorded"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bundle() -> Value {
        json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "List", "status": "current"}},
            {"resource": {"resourceType": "MedicationStatement", "status": "active",
                "medicationCodeableConcept": {"coding": [{"system": "https://dmd.nhs.uk",
                    "code": "123", "display": "Ramipril 5mg capsules"}]},
                "dosage": [{"text": "one daily"}],
                "effectivePeriod": {"start": "2026-01-02T10:00:00Z"},
                "derivedFrom": [{"reference": "MedicationRequest/a/_history/1"}],
                "extension": [
                    {"url": SETTING_EXT, "extension": [
                        {"url": "setting", "valueCoding": {"code": "gp-practice"}},
                        {"url": "lastActivity", "valueDateTime": "2026-02-01"},
                        {"url": "organization", "valueReference": {"identifier": {"value": "Y90001"}}}]},
                    {"url": SETTING_EXT, "extension": [
                        {"url": "setting", "valueCoding": {"code": "<script>"}}]},
                    {"url": MAPPING_EXT, "valueCode": "vmp"}]}},
            {"resource": {"resourceType": "MedicationStatement", "status": "stopped",
                "medicationCodeableConcept": {"text": "Mystery tonic"},
                "derivedFrom": [{"reference": "MedicationStatement/b/_history/2"}]}},
            {"resource": {"resourceType": "DetectedIssue", "status": "preliminary",
                "severity": "high", "code": {"text": "Stopped but continued"},
                "implicated": [{"reference": "MedicationRequest/a/_history/1"}]}}
        ]})
    }

    #[test]
    fn lines_carry_settings_and_their_conflicts() {
        let view = RecordView::from_bundle(&bundle());
        assert_eq!(view.lines.len(), 2);
        let ramipril = &view.lines[0];
        assert_eq!(ramipril.code.as_deref(), Some("https://dmd.nhs.uk|123"));
        assert_eq!(
            ramipril.timeline_query.as_deref(),
            Some("medicine=https%3A%2F%2Fdmd.nhs.uk%7C123")
        );
        assert_eq!(ramipril.settings.len(), 2);
        assert_eq!(ramipril.settings[0].label, "GP practice");
        assert_eq!(ramipril.settings[0].organisation.as_deref(), Some("Y90001"));
        // An unknown code is never used as a CSS class.
        assert_eq!(ramipril.settings[1].code, "unspecified");
        assert_eq!(ramipril.conflicts, ["Stopped but continued"]);
        let tonic = &view.lines[1];
        assert!(tonic.unmapped());
        assert!(tonic.conflicts.is_empty());
        assert_eq!(view.current_names(), ["Ramipril 5mg capsules"]);
    }
}
