//! The record as FHIR: a `collection` Bundle whose first entry is the `List` (mode
//! `working`, title "Medication record"), then one `MedicationStatement` per line, then one
//! `DetectedIssue` per finding. Ids and `urn:uuid:` full URLs are name-based (UUID v5 of the
//! patient and the line or finding), so the same record always reads the same.

use serde_json::{Map, Value, json};
use smr_access::consent::CARE_SETTING_SYSTEM;
use uuid::Uuid;

use crate::conflicts::{Finding, FindingKind};
use crate::merge::{Line, LineMedicine, LineStatus};

/// Where SMR's own extensions and code systems live.
pub const SMR_BASE: &str = "https://fhir.smr.nhs.uk";
/// One per setting on a line: `setting` (Coding), `lastActivity` (dateTime), `lastEntry`
/// (Reference) and, where known, `organization` (Reference).
pub const SETTING_EXTENSION: &str =
    "https://fhir.smr.nhs.uk/StructureDefinition/medication-record-setting";
/// How the line's medicine was mapped: `vmp`, `vtm` or `unmapped`.
pub const MAPPING_EXTENSION: &str =
    "https://fhir.smr.nhs.uk/StructureDefinition/medication-record-mapping";
pub const ISSUE_SYSTEM: &str = "https://fhir.smr.nhs.uk/CodeSystem/medication-record-issue";
const DMD_SYSTEM: &str = "https://dmd.nhs.uk";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

/// Namespace of SMR's name-based UUIDs (a v4 UUID chosen once).
const NAMESPACE: Uuid = Uuid::from_u128(0x5d0c_4b57_1f3e_4a9b_9c41_7a2e_6f0d_8b13);

pub(crate) fn name_uuid(parts: &[&str]) -> String {
    Uuid::new_v5(&NAMESPACE, parts.join("\u{1f}").as_bytes()).to_string()
}

pub(crate) fn bundle(
    patient: &str,
    now_text: &str,
    lines: &[Line],
    findings: &[Finding],
    stopped_within_days: i64,
) -> Value {
    let subject = json!({"reference": format!("Patient/{patient}")});
    let line_ids: Vec<String> = lines
        .iter()
        .map(|l| name_uuid(&[patient, "line", &l.key]))
        .collect();
    let mut list = json!({
        "resourceType": "List",
        "id": name_uuid(&[patient, "list"]),
        "status": "current",
        "mode": "working",
        "title": "Medication record",
        "code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/list-example-use-codes", "code": "medications", "display": "Medication List"}]},
        "subject": subject,
        "date": now_text,
        "orderedBy": {"text": "Status (current first), then medicine name"},
        "note": [{"text": format!(
            "Every medicine the patient is on or has on hold, and those stopped or completed in the last {stopped_within_days} days, merged from every care setting's entries by SMR. Decision support: check with the patient and the prescriber before acting."
        )}],
    });
    if lines.is_empty() {
        list["emptyReason"] = json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/list-empty-reason", "code": "nilknown", "display": "Nil Known"}],
            "text": "No medication entries are recorded for this patient in the period shown"});
    } else {
        list["entry"] = Value::Array(
            line_ids
                .iter()
                .map(|id| json!({"item": {"reference": format!("urn:uuid:{id}")}}))
                .collect(),
        );
    }
    let mut entries = vec![entry(&list)];
    for (line, id) in lines.iter().zip(&line_ids) {
        entries.push(entry(&line_statement(line, id, patient, now_text)));
    }
    for finding in findings {
        entries.push(entry(&detected_issue(finding, patient, now_text)));
    }
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": now_text,
        "entry": entries,
    })
}

fn entry(resource: &Value) -> Value {
    let id = resource
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    json!({"fullUrl": format!("urn:uuid:{id}"), "resource": resource})
}

fn line_statement(line: &Line, id: &str, patient: &str, now_text: &str) -> Value {
    let mut statement = Map::new();
    statement.insert("resourceType".into(), json!("MedicationStatement"));
    statement.insert("id".into(), json!(id));
    let mut extensions: Vec<Value> = line.settings.iter().map(setting_extension).collect();
    let mapping = match &line.medicine {
        LineMedicine::Vmp { .. } => "vmp",
        LineMedicine::Vtm { .. } => "vtm",
        LineMedicine::Unmapped { .. } => "unmapped",
    };
    extensions.push(json!({"url": MAPPING_EXTENSION, "valueCode": mapping}));
    statement.insert("extension".into(), Value::Array(extensions));
    statement.insert("status".into(), json!(line.status.as_str()));
    statement.insert("medicationCodeableConcept".into(), medication_concept(line));
    statement.insert(
        "subject".into(),
        json!({"reference": format!("Patient/{patient}")}),
    );
    let mut period = Map::new();
    if let Some((_, start)) = &line.start {
        period.insert("start".into(), json!(start));
    }
    if matches!(line.status, LineStatus::Stopped | LineStatus::Completed)
        && let Some((_, end)) = &line.end
    {
        period.insert("end".into(), json!(end));
    }
    if !period.is_empty() {
        statement.insert("effectivePeriod".into(), Value::Object(period));
    }
    statement.insert("dateAsserted".into(), json!(now_text));
    statement.insert(
        "derivedFrom".into(),
        Value::Array(
            line.derived_from
                .iter()
                .map(|r| json!({"reference": r}))
                .collect(),
        ),
    );
    let mut notes = Vec::new();
    match &line.medicine {
        LineMedicine::Unmapped { .. } => notes.push(json!({"text":
            "Unmapped: no dictionary SMR holds knows this medicine's code or name, so it is shown as written and not merged with other entries or checked."})),
        LineMedicine::Vtm { products, .. } if products.len() > 1 => notes.push(json!({"text":
            format!("Shown at ingredient level because the settings name different products: {}.", products.join("; "))})),
        _ => {}
    }
    if !notes.is_empty() {
        statement.insert("note".into(), Value::Array(notes));
    }
    if let Some(dosage) = &line.dosage {
        statement.insert("dosage".into(), dosage.clone());
    }
    Value::Object(statement)
}

fn medication_concept(line: &Line) -> Value {
    match &line.medicine {
        LineMedicine::Vmp { code, name } => json!({
            "coding": [{"system": DMD_SYSTEM, "code": code, "display": name}],
            "text": name,
        }),
        LineMedicine::Vtm { code, name, .. } => match code {
            Some(code) => json!({
                "coding": [{"system": DMD_SYSTEM, "code": code, "display": name}],
                "text": name,
            }),
            None => json!({"text": name}),
        },
        LineMedicine::Unmapped { concept } => concept.clone(),
    }
}

fn setting_extension(s: &crate::merge::SettingActivity) -> Value {
    let mut parts = vec![json!({"url": "setting", "valueCoding": {
        "system": CARE_SETTING_SYSTEM, "code": s.setting.as_str(), "display": setting_display(s.setting)}})];
    if let Some((_, when)) = &s.last_activity {
        parts.push(json!({"url": "lastActivity", "valueDateTime": when}));
    }
    parts.push(json!({"url": "lastEntry", "valueReference": {"reference": s.last_entry}}));
    if s.organisation.is_some() || s.ods.is_some() {
        let mut org = Map::new();
        if let Some(reference) = &s.organisation {
            org.insert("reference".into(), json!(reference));
        }
        if let Some(ods) = &s.ods {
            org.insert(
                "identifier".into(),
                json!({"system": smr_access::ODS_SYSTEM, "value": ods}),
            );
        }
        parts.push(json!({"url": "organization", "valueReference": org}));
    }
    json!({"url": SETTING_EXTENSION, "extension": parts})
}

pub fn setting_display(setting: smr_access::CareSetting) -> &'static str {
    use smr_access::CareSetting::*;
    match setting {
        GpPractice => "GP practice",
        Hospital => "Hospital",
        CommunityPharmacy => "Community pharmacy",
        Community => "Community care",
        CareHome => "Care home",
        PatientReported => "Patient-reported",
        Unspecified => "Setting not recorded",
    }
}

fn detected_issue(finding: &Finding, patient: &str, now_text: &str) -> Value {
    let mut key: Vec<&str> = vec![patient, "issue", finding.kind.code()];
    key.extend(finding.implicated.iter().map(String::as_str));
    let id = name_uuid(&key);
    let mut coding = vec![
        json!({"system": ISSUE_SYSTEM, "code": finding.kind.code(), "display": finding.kind.display()}),
    ];
    if matches!(
        finding.kind,
        FindingKind::DuplicateIngredient | FindingKind::DuplicateClass
    ) {
        coding.push(
            json!({"system": ACT_CODE, "code": "DUPTHPY", "display": "Duplicate Therapy Alert"}),
        );
    }
    json!({
        "resourceType": "DetectedIssue",
        "id": id,
        "status": "preliminary",
        "code": {"coding": coding, "text": finding.kind.display()},
        "severity": finding.severity,
        "patient": {"reference": format!("Patient/{patient}")},
        "identifiedDateTime": now_text,
        "author": {"display": "SMR medication record merge"},
        "implicated": finding.implicated.iter().map(|r| json!({"reference": r})).collect::<Vec<_>>(),
        "detail": finding.detail,
        "reference": format!("{SMR_BASE}/docs/medication-record#{}", finding.kind.code()),
        "extension": [{"url": "https://fhir.smr.nhs.uk/StructureDefinition/evidence", "valueString": finding.evidence}],
    })
}
