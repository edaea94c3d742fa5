//! The merge on small hand-made records: each conflict kind raises its finding and nothing
//! else does; the record does not depend on the order entries arrive in.

use proptest::prelude::*;
use serde_json::{Value, json};
use smr_dmd::{ConceptRef, IngredientStrength, Level, MedicineInfo, MedicineLookup};

use crate::*;

/// A dictionary of four products: atorvastatin 20 mg and 40 mg tablets (VMPs), a brand of
/// the 20 mg (AMP), ibuprofen 400 mg and naproxen 500 mg tablets (VMPs).
struct TestDictionary;

fn info(
    level: Level,
    code: &str,
    name: &str,
    vmp: Option<(&str, &str)>,
    vtm: (&str, &str),
    strength: &str,
) -> MedicineInfo {
    MedicineInfo {
        level,
        matched: ConceptRef {
            code: code.into(),
            name: name.into(),
        },
        vmp: vmp.map(|(c, n)| ConceptRef {
            code: c.into(),
            name: n.into(),
        }),
        vtm: Some(ConceptRef {
            code: vtm.0.into(),
            name: vtm.1.into(),
        }),
        ingredients: vec![IngredientStrength {
            name: vtm.1.to_lowercase(),
            code: None,
            strength: Some(strength.into()),
        }],
        form: Some("Tablet".into()),
        route: Some("Oral".into()),
        bnf: None,
        controlled_drug: None,
        source: "test".into(),
    }
}

impl MedicineLookup for TestDictionary {
    fn resolve(
        &self,
        codings: &[(Option<&str>, &str)],
        _text: Option<&str>,
    ) -> Option<MedicineInfo> {
        const ATORVA: (&str, &str) = ("1000001", "Atorvastatin");
        codings.iter().find_map(|(_, code)| match *code {
            "320030001" => Some(info(
                Level::Vmp,
                code,
                "Atorvastatin 20mg tablets",
                Some(("320030001", "Atorvastatin 20mg tablets")),
                ATORVA,
                "20 mg",
            )),
            "320031002" => Some(info(
                Level::Vmp,
                code,
                "Atorvastatin 40mg tablets",
                Some(("320031002", "Atorvastatin 40mg tablets")),
                ATORVA,
                "40 mg",
            )),
            "9000001" => Some(info(
                Level::Amp,
                code,
                "Lipitor 20mg tablets (Upjohn)",
                Some(("320030001", "Atorvastatin 20mg tablets")),
                ATORVA,
                "20 mg",
            )),
            "329653008" => Some(info(
                Level::Vmp,
                code,
                "Ibuprofen 400mg tablets",
                Some(("329653008", "Ibuprofen 400mg tablets")),
                ("1000002", "Ibuprofen"),
                "400 mg",
            )),
            "329807003" => Some(info(
                Level::Vmp,
                code,
                "Naproxen 500mg tablets",
                Some(("329807003", "Naproxen 500mg tablets")),
                ("1000003", "Naproxen"),
                "500 mg",
            )),
            _ => None,
        })
    }
}

const NOW: &str = "2026-12-01T12:00:00Z";

fn now() -> i64 {
    smr_fhir::datetime::parse_instant_micros(NOW).expect("valid")
}

fn med(code: &str) -> Value {
    json!({"coding": [{"system": "https://dmd.nhs.uk", "code": code}]})
}

fn dosage(tablets: u32, per_day: u32) -> Value {
    json!([{"text": format!("{tablets} tablet(s) {per_day} time(s) a day"),
        "route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006", "display": "Oral"}]},
        "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
        "doseAndRate": [{"doseQuantity": {"value": tablets, "unit": "tablet"}}]}])
}

fn plan(id: &str, code: &str, status: &str, authored: &str, category: &str) -> Value {
    json!({"resourceType": "MedicationRequest", "id": id, "meta": {"versionId": "1", "lastUpdated": authored},
        "status": status, "intent": "plan", "category": [{"coding": [{"code": category}]}],
        "medicationCodeableConcept": med(code), "subject": {"reference": "Patient/p"},
        "authoredOn": authored, "dosageInstruction": dosage(1, 1)})
}

fn dispense(id: &str, code: &str, when: &str) -> Value {
    json!({"resourceType": "MedicationDispense", "id": id, "meta": {"versionId": "1"}, "status": "completed",
        "medicationCodeableConcept": med(code), "subject": {"reference": "Patient/p"},
        "whenHandedOver": when, "dosageInstruction": dosage(1, 1)})
}

fn administration(id: &str, code: &str, when: &str) -> Value {
    json!({"resourceType": "MedicationAdministration", "id": id, "meta": {"versionId": "1"}, "status": "completed",
        "category": {"coding": [{"code": "inpatient"}]},
        "medicationCodeableConcept": med(code), "subject": {"reference": "Patient/p"},
        "effectiveDateTime": when,
        "dosage": {"route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006"}]}, "dose": {"value": 1, "unit": "tablet"}}})
}

fn merged(sources: &[Value], provenances: &[Value]) -> (MedicationRecord, Value) {
    let input = RecordInput {
        patient: "p",
        now: now(),
        now_text: NOW,
        stopped_within_days: DEFAULT_STOPPED_WITHIN_DAYS,
        sources,
        provenances,
        organisations: &[],
        medications: &[],
    };
    let record = merge(&input, &TestDictionary);
    let bundle = record.to_bundle(&input);
    (record, bundle)
}

fn kinds(record: &MedicationRecord) -> Vec<&'static str> {
    record.findings.iter().map(|f| f.kind.code()).collect()
}

#[test]
fn a_gp_repeat_a_branded_dispense_and_a_ward_administration_are_one_line_in_three_settings() {
    let (record, bundle) = merged(
        &[
            plan("gp", "320030001", "active", "2026-10-01", "community"),
            dispense("pharmacy", "9000001", "2026-11-02"),
            administration("ward", "320030001", "2026-11-20T08:00:00Z"),
        ],
        &[],
    );
    assert_eq!(record.lines.len(), 1);
    assert_eq!(kinds(&record), Vec::<&str>::new());
    let line = &bundle["entry"][1]["resource"];
    assert_eq!(line["resourceType"], "MedicationStatement");
    assert_eq!(line["status"], "active");
    assert_eq!(
        line["medicationCodeableConcept"]["coding"][0]["code"],
        "320030001"
    );
    assert_eq!(line["derivedFrom"].as_array().map(Vec::len), Some(3));
    let settings: Vec<&str> = line["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["url"] == output::SETTING_EXTENSION)
        .filter_map(|e| e["extension"][0]["valueCoding"]["code"].as_str())
        .collect();
    assert_eq!(settings, ["community-pharmacy", "gp-practice", "hospital"]);
    let list = &bundle["entry"][0]["resource"];
    assert_eq!(
        (
            list["resourceType"].as_str(),
            list["mode"].as_str(),
            list["title"].as_str()
        ),
        (Some("List"), Some("working"), Some("Medication record"))
    );
    assert_eq!(
        list["entry"][0]["item"]["reference"],
        bundle["entry"][1]["fullUrl"]
    );
}

#[test]
fn a_dose_changed_in_hospital_and_not_taken_up_by_the_gp_is_a_dose_mismatch_only() {
    let mut discharge = plan(
        "discharge",
        "320031002",
        "active",
        "2026-11-10",
        "discharge",
    );
    discharge["intent"] = json!("order");
    let (record, bundle) = merged(
        &[
            plan("gp", "320030001", "active", "2026-10-01", "community"),
            discharge,
        ],
        &[],
    );
    assert_eq!(kinds(&record), ["dose-mismatch"]);
    assert_eq!(
        record.lines.len(),
        1,
        "two strengths of one moiety are one line"
    );
    let line = &bundle["entry"][1]["resource"];
    assert_eq!(
        line["medicationCodeableConcept"]["coding"][0]["code"], "1000001",
        "VTM level"
    );
    let issue = &bundle["entry"][2]["resource"];
    assert_eq!(issue["resourceType"], "DetectedIssue");
    assert_eq!(issue["implicated"].as_array().map(Vec::len), Some(2));
}

#[test]
fn a_medicine_stopped_by_the_gp_and_dispensed_afterwards_is_stopped_but_continued_only() {
    let mut stopped = plan("gp", "320030001", "stopped", "2026-09-01", "community");
    stopped["dispenseRequest"] =
        json!({"validityPeriod": {"start": "2026-09-01", "end": "2026-11-01"}});
    let (record, _) = merged(
        &[stopped, dispense("pharmacy", "320030001", "2026-11-15")],
        &[],
    );
    assert_eq!(kinds(&record), ["stopped-but-continued"]);
    assert_eq!(
        record.lines[0].status,
        LineStatus::Active,
        "still being supplied"
    );
}

#[test]
fn a_brand_and_a_generic_both_prescribed_by_the_gp_are_a_duplicate_only() {
    let (record, _) = merged(
        &[
            plan("generic", "320030001", "active", "2026-10-01", "community"),
            plan("brand", "9000001", "active", "2026-10-05", "community"),
        ],
        &[],
    );
    assert_eq!(kinds(&record), ["duplicate-ingredient"]);
}

#[test]
fn two_nsaids_in_different_settings_are_a_class_duplicate_only() {
    let mut naproxen = plan("naproxen", "329807003", "active", "2026-11-01", "discharge");
    naproxen["intent"] = json!("order");
    let (record, _) = merged(
        &[
            plan(
                "ibuprofen",
                "329653008",
                "active",
                "2026-10-01",
                "community",
            ),
            naproxen,
        ],
        &[],
    );
    assert_eq!(kinds(&record), ["duplicate-class"]);
    assert_eq!(record.findings[0].severity, "high");
}

#[test]
fn an_unmapped_code_is_its_own_line_as_written() {
    let mut unknown = plan("x", "123456789", "active", "2026-10-01", "community");
    unknown["medicationCodeableConcept"] = json!({"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "617312", "display": "atorvastatin 10 MG Oral Tablet"}]});
    let (record, bundle) = merged(
        &[
            unknown,
            plan("gp", "320030001", "active", "2026-10-01", "community"),
        ],
        &[],
    );
    assert_eq!(record.lines.len(), 2);
    let unmapped = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .find(|r| r["medicationCodeableConcept"]["coding"][0]["code"] == "617312")
        .expect("unmapped line");
    assert!(
        unmapped["extension"]
            .as_array()
            .is_some_and(|e| e.iter().any(|x| x["valueCode"] == "unmapped"))
    );
    assert!(kinds(&record).is_empty());
}

#[test]
fn gp_connect_issues_fold_into_their_plan_and_a_stop_ends_the_line() {
    let plan_entry = plan("plan", "320030001", "active", "2026-06-01", "community");
    let issue = |id: &str, when: &str| {
        json!({"resourceType": "MedicationRequest", "id": id, "meta": {"versionId": "1"}, "status": "completed",
            "intent": "order", "basedOn": [{"reference": "MedicationRequest/plan"}],
            "medicationCodeableConcept": med("320030001"), "subject": {"reference": "Patient/p"}, "authoredOn": when})
    };
    let (record, bundle) = merged(
        &[
            plan_entry.clone(),
            issue("i1", "2026-10-01"),
            issue("i2", "2026-11-01"),
        ],
        &[],
    );
    assert_eq!(record.lines.len(), 1);
    assert_eq!(
        bundle["entry"][1]["resource"]["derivedFrom"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    assert!(kinds(&record).is_empty(), "completed issues are not stops");

    let mut stopped = plan_entry;
    stopped["status"] = json!("stopped");
    stopped["meta"]["lastUpdated"] = json!("2026-11-20T10:00:00Z");
    let (record, bundle) = merged(
        &[
            stopped,
            issue("i1", "2026-10-01"),
            issue("i2", "2026-11-01"),
        ],
        &[],
    );
    assert_eq!(record.lines[0].status, LineStatus::Stopped);
    assert_eq!(
        bundle["entry"][1]["resource"]["effectivePeriod"]["end"],
        "2026-11-20T10:00:00Z"
    );
}

#[test]
fn stopped_medicines_leave_the_record_after_the_window() {
    let mut old = plan("old", "320030001", "stopped", "2025-01-01", "community");
    old["dispenseRequest"] = json!({"validityPeriod": {"end": "2025-03-01"}});
    let (record, bundle) = merged(&[old], &[]);
    assert!(record.lines.is_empty());
    assert!(bundle["entry"][0]["resource"]["emptyReason"].is_object());
}

#[test]
fn the_writer_provenance_names_the_setting_before_the_category_does() {
    let gp = plan("gp", "320030001", "active", "2026-10-01", "inpatient");
    let provenance = json!({"resourceType": "Provenance", "id": "prov", "recorded": "2026-10-01T09:00:00Z",
        "target": [{"reference": "MedicationRequest/gp/_history/1"}],
        "agent": [{"role": [{"coding": [{"system": smr_access::consent::CARE_SETTING_SYSTEM, "code": "gp-practice"}]}],
            "who": {"display": "Dr A"}, "onBehalfOf": {"identifier": {"system": smr_access::ODS_SYSTEM, "value": "Y12345"}}}]});
    let (record, _) = merged(&[gp], &[provenance]);
    assert_eq!(
        record.lines[0].settings[0].setting,
        smr_access::CareSetting::GpPractice
    );
    assert_eq!(record.lines[0].settings[0].ods.as_deref(), Some("Y12345"));
}

#[test]
fn the_timeline_lists_one_medicines_entries_in_date_order_with_their_provenance() {
    let sources = [
        administration("ward", "320030001", "2026-11-20T08:00:00Z"),
        plan("gp", "320030001", "active", "2026-10-01", "community"),
        plan("other", "329653008", "active", "2026-10-01", "community"),
        dispense("pharmacy", "9000001", "2026-11-02"),
    ];
    let provenance = json!({"resourceType": "Provenance", "id": "prov", "recorded": "2026-10-01T09:00:00Z",
        "target": [{"reference": "MedicationRequest/gp"}, {"reference": "MedicationDispense/pharmacy"}], "agent": []});
    let input = RecordInput {
        patient: "p",
        now: now(),
        now_text: NOW,
        stopped_within_days: 90,
        sources: &sources,
        provenances: std::slice::from_ref(&provenance),
        organisations: &[],
        medications: &[],
    };
    let bundle = timeline::bundle(
        &input,
        &TestDictionary,
        "9000001",
        "https://smr.example/fhir",
    );
    let urls: Vec<&str> = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["fullUrl"].as_str())
        .collect();
    assert_eq!(
        urls,
        [
            "https://smr.example/fhir/MedicationRequest/gp",
            "https://smr.example/fhir/Provenance/prov",
            "https://smr.example/fhir/MedicationDispense/pharmacy",
            "https://smr.example/fhir/MedicationAdministration/ward",
        ]
    );
}

#[test]
fn stopped_within_reads_days_and_units() {
    assert_eq!(parse_stopped_within("30"), Some(30));
    assert_eq!(parse_stopped_within("2wk"), Some(14));
    assert_eq!(parse_stopped_within("6mo"), Some(180));
    assert_eq!(parse_stopped_within("1a"), Some(365));
    assert_eq!(parse_stopped_within("soon"), None);
    assert_eq!(parse_stopped_within("-3"), None);
}

fn scenario() -> Vec<Value> {
    let mut stopped = plan("stopped", "320030001", "stopped", "2026-09-01", "community");
    stopped["dispenseRequest"] = json!({"validityPeriod": {"end": "2026-11-01"}});
    let mut discharge = plan(
        "discharge",
        "320031002",
        "active",
        "2026-11-10",
        "discharge",
    );
    discharge["intent"] = json!("order");
    vec![
        stopped,
        discharge,
        plan("gp", "320030001", "active", "2026-10-01", "community"),
        plan("brand", "9000001", "active", "2026-10-05", "community"),
        dispense("pharmacy", "9000001", "2026-11-02"),
        administration("ward", "320030001", "2026-11-20T08:00:00Z"),
        plan(
            "ibuprofen",
            "329653008",
            "active",
            "2026-10-01",
            "community",
        ),
        plan(
            "naproxen",
            "329807003",
            "on-hold",
            "2026-10-01",
            "community",
        ),
        plan("unknown", "111", "active", "2026-10-01", "community"),
    ]
}

proptest! {
    #[test]
    fn the_order_entries_arrive_in_does_not_change_the_record(seed in any::<u64>()) {
        let reference = merged(&scenario(), &[]).1;
        let mut shuffled = scenario();
        // A Fisher–Yates shuffle driven by the seed.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(merged(&shuffled, &[]).1, reference);
    }
}
