//! Every discrepancy type and intent, unmapped and empty lists, the confirmation plan,
//! timeliness, and the property that every input line is in exactly one output line.

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::compare::{Discrepancy as D, Empty, Intent as I};
use crate::*;

const DMD: &str = "https://dmd.nhs.uk";
const SIMVA_40: &str = "320000009";
const RAMIPRIL_5_CAPS: &str = "318902004";
const RAMIPRIL_5_TABS: &str = "408051007";
const FUROSEMIDE_40: &str = "317972000";
const LANSO_30: &str = "317309001";
/// Lansoprazole 30mg gastro-resistant capsules (A A H Pharmaceuticals Ltd): an AMP of LANSO_30.
const LANSO_30_BRAND: &str = "10131811000001109";
const PARACETAMOL_500: &str = "322236009";
const ATORVA_20: &str = "320030001";
const WARFARIN_1_TABS: &str = "319733000";
const WARFARIN_1_CAPS: &str = "32751111000001103";

fn lookup() -> &'static smr_dmd::Dictionary {
    smr_dmd::starter()
}

/// A MedicationStatement: `tablets` a dose, `per_day` times a day, optional route code.
fn statement(id: &str, code: &str, status: &str, tablets: f64, per_day: u32) -> Value {
    json!({"resourceType": "MedicationStatement", "id": id, "status": status,
        "medicationCodeableConcept": {"coding": [{"system": DMD, "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "dosage": [{"text": format!("{tablets} tablet(s) {per_day} times a day"),
            "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": {"value": tablets, "unit": "tablet"}}]}]})
}

fn with_route(mut r: Value, code: &str, display: &str) -> Value {
    r["dosage"][0]["route"] =
        json!({"coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}]});
    r
}

fn lines(resources: &[Value]) -> Vec<MedLine> {
    resources
        .iter()
        .enumerate()
        .filter_map(|(i, r)| line::read(r, None, i, &|_| None, lookup()))
        .collect()
}

fn only(source: &[Value], target: &[Value]) -> Outcome {
    let rec = compare(&lines(source), &lines(target));
    assert_eq!(rec.lines.len(), 1, "{:#?}", rec.lines);
    rec.lines[0].clone()
}

#[test]
fn the_same_medicine_as_a_brand_is_unchanged_with_no_intent() {
    let o = only(
        &[statement("s", LANSO_30, "active", 1.0, 1)],
        &[statement("t", LANSO_30_BRAND, "active", 1.0, 1)],
    );
    assert_eq!(o.classification, D::Unchanged);
    assert!(o.differences.is_empty());
    assert_eq!(o.intent, None);
}

#[test]
fn a_current_medicine_missing_from_the_target_is_an_unintentional_omission() {
    let rec = compare(
        &lines(&[
            statement("s1", PARACETAMOL_500, "active", 2.0, 4),
            statement("s2", SIMVA_40, "active", 1.0, 1),
        ]),
        &lines(&[statement("t", SIMVA_40, "active", 1.0, 1)]),
    );
    let o = rec
        .lines
        .iter()
        .find(|l| l.classification == D::Omission)
        .expect("omission");
    assert_eq!(o.intent, Some(I::Unintentional));
    assert_eq!(o.source, vec![0]);
    assert!(o.target.is_empty());
    assert!(o.proposed_current, "an omission is proposed to continue");
}

#[test]
fn a_medicine_added_in_the_target_is_a_commission() {
    let o = only(&[], &[statement("t", ATORVA_20, "active", 1.0, 1)]);
    assert_eq!(o.classification, D::Commission);
    assert_eq!(o.intent, Some(I::Unintentional));
    let mut documented = statement("t", ATORVA_20, "active", 1.0, 1);
    documented["note"] = json!([{"text": "Started for secondary prevention after MI"}]);
    let o = only(&[], &[documented]);
    assert_eq!(o.intent, Some(I::Intentional));
    assert_eq!(
        o.reason.as_deref(),
        Some("Started for secondary prevention after MI")
    );
}

#[test]
fn a_different_dose_is_a_dose_discrepancy_and_a_prior_prescription_makes_it_deliberate() {
    let o = only(
        &[statement("s", SIMVA_40, "active", 1.0, 1)],
        &[statement("t", SIMVA_40, "active", 0.5, 1)],
    );
    assert_eq!(o.classification, D::Dose);
    assert_eq!(o.intent, Some(I::Unintentional));
    let mut replaced = json!({"resourceType": "MedicationRequest", "id": "t", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": DMD, "code": SIMVA_40}]},
        "subject": {"reference": "Patient/p1"}, "priorPrescription": {"reference": "MedicationRequest/old"}});
    replaced["dosageInstruction"] = statement("x", SIMVA_40, "active", 0.5, 1)["dosage"].clone();
    let o = only(&[statement("s", SIMVA_40, "active", 1.0, 1)], &[replaced]);
    assert_eq!(o.classification, D::Dose);
    assert_eq!(o.intent, Some(I::UndocumentedIntentional));
}

#[test]
fn a_dose_in_mg_and_the_same_dose_in_tablets_is_unchanged() {
    let mut mg = statement("t", SIMVA_40, "active", 1.0, 1);
    mg["dosage"][0]["doseAndRate"][0]["doseQuantity"] = json!({"value": 40, "unit": "mg"});
    let o = only(&[statement("s", SIMVA_40, "active", 1.0, 1)], &[mg.clone()]);
    assert_eq!(o.classification, D::Unchanged, "{:?}", o.details);
    mg["dosage"][0]["doseAndRate"][0]["doseQuantity"] = json!({"value": 80, "unit": "mg"});
    let o = only(&[statement("s", SIMVA_40, "active", 1.0, 1)], &[mg]);
    assert_eq!(o.classification, D::Dose);
}

#[test]
fn a_different_timing_is_a_frequency_discrepancy() {
    let o = only(
        &[statement("s", FUROSEMIDE_40, "active", 1.0, 1)],
        &[statement("t", FUROSEMIDE_40, "active", 1.0, 2)],
    );
    assert_eq!(o.classification, D::Frequency);
    assert_eq!(o.differences, vec![D::Frequency]);
}

#[test]
fn a_different_route_is_a_route_discrepancy() {
    let o = only(
        &[with_route(
            statement("s", PARACETAMOL_500, "active", 2.0, 4),
            "26643006",
            "Oral",
        )],
        &[with_route(
            statement("t", PARACETAMOL_500, "active", 2.0, 4),
            "37161004",
            "Rectal",
        )],
    );
    assert_eq!(o.classification, D::Route);
}

#[test]
fn capsules_for_tablets_is_a_formulation_discrepancy() {
    let o = only(
        &[statement("s", RAMIPRIL_5_CAPS, "active", 1.0, 1)],
        &[statement("t", RAMIPRIL_5_TABS, "active", 1.0, 1)],
    );
    assert_eq!(o.classification, D::Formulation);
    assert!(
        !o.differences.contains(&D::Dose),
        "same strength: {:?}",
        o.details
    );
}

#[test]
fn the_same_medicine_twice_in_the_target_is_a_duplication_in_one_line() {
    let o = only(
        &[statement("s", WARFARIN_1_TABS, "active", 3.0, 1)],
        &[
            statement("t1", WARFARIN_1_TABS, "active", 3.0, 1),
            statement("t2", WARFARIN_1_CAPS, "active", 3.0, 1),
        ],
    );
    assert_eq!(o.classification, D::Duplication);
    assert_eq!(o.target, vec![0, 1]);
    assert_eq!(o.intent, Some(I::Unintentional));
}

#[test]
fn a_stop_without_a_reason_is_undocumented_intentional_and_with_one_intentional() {
    let o = only(
        &[statement("s", SIMVA_40, "active", 1.0, 1)],
        &[statement("t", SIMVA_40, "stopped", 1.0, 1)],
    );
    assert_eq!(o.classification, D::Stopped);
    assert_eq!(o.intent, Some(I::UndocumentedIntentional));
    assert!(!o.proposed_current);
    let mut reasoned = statement("t", SIMVA_40, "stopped", 1.0, 1);
    reasoned["statusReason"] = json!([{"text": "Myalgia; CK raised"}]);
    let o = only(&[statement("s", SIMVA_40, "active", 1.0, 1)], &[reasoned]);
    assert_eq!(o.intent, Some(I::Intentional));
}

#[test]
fn a_deleted_list_entry_is_a_stop() {
    let list = json!({"resourceType": "List", "status": "current", "mode": "changes",
        "subject": {"reference": "Patient/p1"},
        "contained": [statement("t", SIMVA_40, "active", 1.0, 1)],
        "entry": [{"item": {"reference": "#t"}, "deleted": true, "flag": {"text": "Stopped: interaction with clarithromycin"}}]});
    let target = fhir_in::read_list(&list, "target", "p1", lookup()).expect("read");
    let rec = compare(
        &lines(&[statement("s", SIMVA_40, "active", 1.0, 1)]),
        &target.lines,
    );
    assert_eq!(rec.lines[0].classification, D::Stopped);
    assert_eq!(rec.lines[0].intent, Some(I::Intentional));
}

#[test]
fn unmapped_codes_are_kept_marked_unmapped() {
    let mut unknown = statement("t", "999999999999", "active", 1.0, 1);
    unknown["medicationCodeableConcept"] =
        json!({"coding": [{"system": DMD, "code": "999999999999"}], "text": "Herbal tonic X"});
    let rec = compare(
        &lines(&[statement("s", SIMVA_40, "active", 1.0, 1)]),
        &lines(&[unknown.clone(), statement("t2", SIMVA_40, "active", 1.0, 1)]),
    );
    assert_eq!(rec.lines.len(), 2);
    let u = rec
        .lines
        .iter()
        .find(|l| l.unmapped)
        .expect("unmapped line");
    assert_eq!(u.classification, D::Unmapped);
    assert_eq!(u.intent, Some(I::Unintentional));
    assert_eq!(u.display, "Herbal tonic X");
    // The same unmapped medicine on both sides is matched as written.
    let o = only(&[unknown.clone()], &[unknown]);
    assert_eq!(o.classification, D::Unchanged);
    assert!(o.unmapped);
}

#[test]
fn empty_lists_are_said_to_be_empty() {
    let rec = compare(&[], &[]);
    assert_eq!(rec.empty, Empty::Both);
    let list = changes_list(
        &rec,
        &[],
        &[],
        "p1",
        "2026-01-01T00:00:00Z",
        "the SMR record",
        &[],
    );
    assert_eq!(list["emptyReason"]["coding"][0]["code"], "nilknown");
    assert!(
        list["note"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Both lists are empty")
    );
    let source = lines(&[statement("s", SIMVA_40, "active", 1.0, 1)]);
    let rec = compare(&source, &[]);
    assert_eq!(rec.empty, Empty::Target);
    let list = changes_list(
        &rec,
        &source,
        &[],
        "p1",
        "2026-01-01T00:00:00Z",
        "the SMR record",
        &[],
    );
    assert!(
        list["note"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("target list is empty")
    );
}

#[test]
fn the_answer_is_a_changes_list_with_flags_intents_and_contained_proposals() {
    let source = lines(&[statement("s", SIMVA_40, "active", 1.0, 1)]);
    let target = lines(&[statement("t", SIMVA_40, "active", 0.5, 1)]);
    let rec = compare(&source, &target);
    let list = changes_list(
        &rec,
        &source,
        &target,
        "p1",
        "2026-01-01T00:00:00Z",
        "the source list",
        &[],
    );
    assert_eq!(list["mode"], "changes");
    assert_eq!(list["code"]["coding"][0]["code"], "430193006");
    let entry = &list["entry"][0];
    assert_eq!(
        entry["flag"]["coding"][0]["system"],
        fhir_out::DISCREPANCY_SYSTEM
    );
    assert_eq!(entry["flag"]["coding"][0]["code"], "dose");
    assert_eq!(
        entry["extension"][0]["valueCoding"]["code"],
        "unintentional"
    );
    assert_eq!(entry["item"]["reference"], "#line-1");
    assert_eq!(
        list["contained"][0]["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"],
        0.5
    );
}

fn decision(line: &str, action: &str) -> Value {
    json!({"name": "decision", "part": [{"name": "line", "valueString": line}, {"name": "action", "valueCode": action}]})
}

#[test]
fn a_confirmation_writes_accepted_and_changed_lines_and_lists_rejected_ones() {
    let source = lines(&[
        statement("s1", SIMVA_40, "active", 1.0, 1),
        statement("s2", PARACETAMOL_500, "active", 2.0, 4),
    ]);
    let target = lines(&[
        statement("t", SIMVA_40, "active", 0.5, 1),
        statement("t2", ATORVA_20, "active", 1.0, 1),
    ]);
    let rec = compare(&source, &target);
    assert_eq!(rec.lines.len(), 3);
    let list = changes_list(
        &rec,
        &source,
        &target,
        "p1",
        "2026-01-01T00:00:00Z",
        "the source list",
        &[],
    );
    let mut changed = statement("x", ATORVA_20, "active", 2.0, 1);
    if let Some(o) = changed.as_object_mut() {
        o.remove("id");
    }
    let mut change = decision("line-1", "change");
    if let Some(p) = change["part"].as_array_mut() {
        p.push(json!({"name": "medication", "resource": changed}));
    }
    let params = json!({"resourceType": "Parameters", "parameter": [
        {"name": "reconciliation", "resource": list},
        change, decision("line-2", "reject"), decision("line-3", "accept")]});
    let request = read_confirm(&params).expect("read");
    let plan = plan_confirm(&request, "p1", "2026-01-01T01:00:00Z", "hospital").expect("plan");
    assert_eq!((plan.accepted, plan.changed, plan.rejected), (1, 1, 1));
    assert_eq!(plan.statements.len(), 2);
    assert_eq!(plan.list["mode"], "snapshot");
    assert_eq!(plan.list["entry"].as_array().map(Vec::len), Some(3));
    for (_, s) in &plan.statements {
        assert_eq!(
            s["derivedFrom"][0]["reference"],
            Value::from(plan.list_url.as_str())
        );
        assert_eq!(s["subject"]["reference"], "Patient/p1");
        assert!(s.get("id").is_none());
    }
    // A line without a decision refuses the whole confirmation.
    let params = json!({"resourceType": "Parameters", "parameter": [
        {"name": "reconciliation", "resource": request.list}, decision("line-1", "accept")]});
    let err = plan_confirm(
        &read_confirm(&params).expect("read"),
        "p1",
        "2026-01-01T01:00:00Z",
        "hospital",
    );
    assert!(matches!(err, Err(InputError::Unprocessable(m)) if m.contains("no decision")));
}

#[test]
fn a_target_about_another_patient_or_without_target_is_refused() {
    let params = json!({"resourceType": "Parameters", "parameter": [{"name": "source", "resource": {"resourceType": "List", "status": "current", "mode": "snapshot"}}]});
    assert!(
        matches!(read_request(&params, "p1", lookup()), Err(InputError::Structure(m)) if m.contains("'target'"))
    );
    let mut other = statement("t", SIMVA_40, "active", 1.0, 1);
    other["subject"] = json!({"reference": "Patient/p2"});
    let params = json!({"resourceType": "Parameters", "parameter": [{"name": "target", "resource": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": other}]}}]});
    assert!(
        matches!(read_request(&params, "p1", lookup()), Err(InputError::Unprocessable(m)) if m.contains("Patient/p2"))
    );
    let dangling = json!({"resourceType": "List", "status": "current", "mode": "snapshot", "entry": [{"item": {"reference": "MedicationStatement/nowhere"}}]});
    assert!(matches!(
        fhir_in::read_list(&dangling, "target", "p1", lookup()),
        Err(InputError::Unprocessable(_))
    ));
}

#[test]
fn a_bundle_list_names_its_entries_by_full_url_and_entries_need_no_id() {
    let mut s = statement("ignored", SIMVA_40, "active", 1.0, 1);
    if let Some(o) = s.as_object_mut() {
        o.remove("id");
    }
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:0f5c4b4e-5a7b-4b57-9d1c-000000000001", "resource": {"resourceType": "List", "status": "current", "mode": "snapshot",
            "entry": [{"item": {"reference": "urn:uuid:0f5c4b4e-5a7b-4b57-9d1c-000000000002"}}]}},
        {"fullUrl": "urn:uuid:0f5c4b4e-5a7b-4b57-9d1c-000000000002", "resource": s}]});
    let list = fhir_in::read_list(&bundle, "target", "p1", lookup()).expect("read");
    assert_eq!(list.lines.len(), 1);
    assert_eq!(list.lines[0].key, "vtm:96304005");
}

fn at(text: &str) -> i64 {
    smr_fhir::datetime::parse_range(text)
        .map(|(s, _)| s)
        .unwrap_or_default()
}

fn encounter(id: &str, start: &str, end: Option<&str>) -> Value {
    let mut e = json!({"resourceType": "Encounter", "id": id, "status": if end.is_some() {"finished"} else {"in-progress"},
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "period": {"start": start}});
    if let Some(end) = end {
        e["period"]["end"] = json!(end);
    }
    e
}

fn confirmed_list(id: &str, date: &str, setting: &str) -> Value {
    json!({"resourceType": "List", "id": id, "status": "current", "mode": "snapshot",
        "extension": [{"url": fhir_out::EXT_SETTING, "valueCode": setting}],
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "430193006"}]}, "date": date})
}

#[test]
fn timeliness_measures_admissions_and_discharges_against_qs120() {
    let encounters = [
        encounter("e1", "2026-03-01T10:00:00Z", Some("2026-03-05T12:00:00Z")),
        encounter("e2", "2026-04-01T10:00:00Z", None),
    ];
    let lists = [
        confirmed_list("l1", "2026-03-01T20:00:00Z", "hospital"),
        confirmed_list("l2", "2026-03-14T12:00:00Z", "gp-practice"),
    ];
    let now = at("2026-04-01T20:00:00Z");
    let r = timeliness::for_patient(&encounters, &lists, &[], now);
    assert_eq!(r.len(), 3);
    assert_eq!(
        (r[0].measure, r[0].status),
        (timeliness::Measure::Admission, timeliness::Status::Met)
    );
    assert!((r[0].hours - 10.0).abs() < 1e-9);
    assert_eq!(
        (r[1].measure, r[1].status),
        (timeliness::Measure::Discharge, timeliness::Status::NotMet)
    );
    assert!((r[1].hours - 9.0 * 24.0).abs() < 1e-9);
    assert_eq!(r[2].status, timeliness::Status::Pending);
    // Past 24 hours with no reconciliation: not met.
    let r = timeliness::for_patient(&encounters[1..], &[], &[], at("2026-04-02T10:00:01Z"));
    assert_eq!(r[0].status, timeliness::Status::NotMet);
    assert!(r[0].hours > 24.0 && r[0].hours < 24.01);
    let all = timeliness::for_patient(&encounters, &lists, &[], now);
    let agg = timeliness::aggregate([("A81001", all.as_slice())]);
    let march = agg[&(
        "A81001".to_owned(),
        "2026-03".to_owned(),
        timeliness::Measure::Admission,
    )];
    assert_eq!((march.met, march.not_met, march.pending), (1, 0, 0));
    let april = agg[&(
        "A81001".to_owned(),
        "2026-04".to_owned(),
        timeliness::Measure::Admission,
    )];
    assert_eq!(april.pending, 1);
}

#[test]
fn discharge_information_arrives_when_smr_stored_the_discharge_list() {
    let encounters = [encounter(
        "e1",
        "2026-03-01T10:00:00Z",
        Some("2026-03-05T12:00:00Z"),
    )];
    let discharge = json!({"resourceType": "MedicationRequest", "id": "d1", "status": "active", "intent": "order",
        "meta": {"lastUpdated": "2026-03-10T12:00:00Z"}, "encounter": {"reference": "Encounter/e1"},
        "category": [{"coding": [{"code": "discharge"}]}]});
    let lists = [confirmed_list("l2", "2026-03-14T12:00:00Z", "gp-practice")];
    let r = timeliness::for_patient(
        &encounters,
        &lists,
        &[discharge],
        at("2026-04-01T00:00:00Z"),
    );
    let d = r
        .iter()
        .find(|x| x.measure == timeliness::Measure::Discharge)
        .expect("discharge");
    assert_eq!(d.status, timeliness::Status::Met);
    assert!((d.hours - 96.0).abs() < 1e-9);
}

const CODES: [&str; 8] = [
    SIMVA_40,
    RAMIPRIL_5_CAPS,
    RAMIPRIL_5_TABS,
    FUROSEMIDE_40,
    LANSO_30,
    LANSO_30_BRAND,
    WARFARIN_1_TABS,
    "123456789",
];
const STATUSES: [&str; 4] = ["active", "stopped", "on-hold", "completed"];

fn arbitrary_line() -> impl Strategy<Value = (usize, usize, u8, u8)> {
    (0..CODES.len(), 0..STATUSES.len(), 1u8..4, 1u8..4)
}

proptest! {
    #[test]
    fn every_input_line_is_in_exactly_one_output_line(
        source in proptest::collection::vec(arbitrary_line(), 0..8),
        target in proptest::collection::vec(arbitrary_line(), 0..8),
    ) {
        let make = |v: &[(usize, usize, u8, u8)], side: &str| -> Vec<Value> {
            v.iter().enumerate().map(|(i, (c, s, d, f))| {
                statement(&format!("{side}{i}"), CODES[*c], STATUSES[*s], f64::from(*d), u32::from(*f))
            }).collect()
        };
        let s = lines(&make(&source, "s"));
        let t = lines(&make(&target, "t"));
        prop_assert_eq!(s.len(), source.len());
        prop_assert_eq!(t.len(), target.len());
        let rec = compare(&s, &t);
        let mut seen_s = vec![0; s.len()];
        let mut seen_t = vec![0; t.len()];
        for l in &rec.lines {
            for &i in &l.source { seen_s[i] += 1; }
            for &i in &l.target { seen_t[i] += 1; }
            prop_assert!(!l.source.is_empty() || !l.target.is_empty());
            prop_assert_eq!(l.intent.is_none(), l.classification == D::Unchanged);
        }
        prop_assert!(seen_s.iter().all(|&n| n == 1));
        prop_assert!(seen_t.iter().all(|&n| n == 1));
    }
}
