//! Issue 8: `GET /fhir/Patient/{id}/$medication-record`, the single medication record, written
//! through the HTTP API by a GP, a community pharmacist and a hospital with their own tokens.
//! Each conflict kind produces its DetectedIssue and nothing else does; unmapped codes stay
//! lines of their own; `?medicine=` gives one medicine's timeline with its Provenance. Each
//! runs on SQLite and, when configured, PostgreSQL.

use crate::support;

use axum::http::StatusCode;
use serde_json::{Value, json};
use smr_access::{CareSetting, Role};
use smr_auth::TokenRequest;
use support::{Client, TestApp, fixture, issue};

backend_tests! {
    gp_repeat_branded_dispense_and_ward_administration_are_one_line => three_settings_one_line;
    dose_changed_in_hospital_raises_a_dose_mismatch_only => dose_mismatch;
    stopped_by_the_gp_and_still_dispensed_raises_stopped_but_continued_only => stopped_but_continued;
    brand_and_generic_prescribed_twice_raise_a_duplicate_only => duplicate;
    gp_connect_plan_and_its_issues_are_one_line => gp_connect;
    unmapped_codes_are_lines_of_their_own => unmapped;
    the_timeline_of_one_medicine_lists_its_entries_with_provenance => timeline;
    who_may_see_the_record => access;
    stopped_within_changes_the_window => stopped_within;
}

const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const DMD: &str = "https://dmd.nhs.uk";
const GP: &str = "A81001";
const PHARMACY: &str = "FA123";
const HOSPITAL: &str = "RXX01";
const SETTING_EXTENSION: &str =
    "https://fhir.smr.nhs.uk/StructureDefinition/medication-record-setting";
/// dm+d: Warfarin 1mg tablets (VMP), a supplier's product of it (AMP), and the 3 mg VMP.
const WARFARIN_1MG: &str = "319733000";
const WARFARIN_1MG_TEVA: &str = "437711000001102";
const WARFARIN_3MG: &str = "319734006";

struct World {
    patient: String,
    gp: Client,
    pharmacist: Client,
    ward: Client,
}

/// A patient registered with the GP, nominating the pharmacy, and in hospital now; a client
/// for each setting, signed in as its own role and organisation.
async fn world(app: &TestApp) -> World {
    for (code, name) in [
        (GP, "Test Surgery"),
        (PHARMACY, "Test Pharmacy"),
        (HOSPITAL, "Test Hospital"),
    ] {
        app.create(&json!({"resourceType": "Organization", "identifier": [{"system": ODS, "value": code}], "name": name}))
            .await;
    }
    let mut patient = fixture("patient.json");
    patient["generalPractitioner"] = json!([{"identifier": {"system": ODS, "value": GP}}]);
    let patient = app.create(&patient).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    app.create(
        &json!({"resourceType": "Encounter", "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": format!("Patient/{patient}")},
        "serviceProvider": {"identifier": {"system": ODS, "value": HOSPITAL}}}),
    )
    .await;
    let ward = app.with_token(issue(
        &app.issuer,
        TokenRequest {
            org: Some(HOSPITAL.to_owned()),
            setting: Some(CareSetting::Hospital),
            ..TokenRequest::new("u-ward-nurse", Role::Nurse)
        },
    ));
    World {
        gp: app.as_user("u-gp", Role::Gp, Some(GP)),
        pharmacist: app.as_user("u-pharmacist", Role::CommunityPharmacist, Some(PHARMACY)),
        ward,
        patient,
    }
}

/// A FHIR dateTime `days` before now.
fn days_ago(days: i64) -> String {
    let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64;
    smr_fhir::datetime::format_instant(now - days * 86_400_000_000)
}

fn medicine(code: &str) -> Value {
    json!({"coding": [{"system": DMD, "code": code}]})
}

fn dosage(tablets: u32) -> Value {
    json!([{"text": format!("{tablets} tablet(s) once a day"),
        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
        "route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006", "display": "Oral"}]},
        "doseAndRate": [{"doseQuantity": {"value": tablets, "unit": "tablet", "system": "http://snomed.info/sct", "code": "428673006"}}]}])
}

/// A repeat authorisation (GP Connect "plan").
fn repeat(patient: &str, code: &str, authored_days_ago: i64) -> Value {
    json!({"resourceType": "MedicationRequest", "status": "active", "intent": "plan",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category", "code": "community"}]}],
        "courseOfTherapyType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy", "code": "continuous"}]},
        "medicationCodeableConcept": medicine(code), "subject": {"reference": format!("Patient/{patient}")},
        "authoredOn": days_ago(authored_days_ago), "dosageInstruction": dosage(1),
        "dispenseRequest": {"performer": {"identifier": {"system": ODS, "value": PHARMACY}}}})
}

fn dispense(patient: &str, code: &str, prescription: Option<&str>, days: i64) -> Value {
    let mut d = json!({"resourceType": "MedicationDispense", "status": "completed",
        "medicationCodeableConcept": medicine(code), "subject": {"reference": format!("Patient/{patient}")},
        "performer": [{"actor": {"identifier": {"system": ODS, "value": PHARMACY}}}],
        "quantity": {"value": 28, "unit": "tablet"},
        "whenHandedOver": days_ago(days), "dosageInstruction": dosage(1)});
    if let Some(p) = prescription {
        d["authorizingPrescription"] = json!([{"reference": p}]);
    }
    d
}

fn administration(patient: &str, code: &str, days: i64) -> Value {
    json!({"resourceType": "MedicationAdministration", "status": "completed",
        "category": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medication-admin-category", "code": "inpatient"}]},
        "medicationCodeableConcept": medicine(code), "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": days_ago(days),
        "dosage": {"route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006"}]},
            "dose": {"value": 1, "unit": "tablet", "system": "http://snomed.info/sct", "code": "428673006"}}})
}

async fn created(client: &Client, resource: &Value) -> String {
    let ty = resource["resourceType"].as_str().unwrap_or_default();
    let reply = client.post(&format!("/fhir/{ty}"), resource).await;
    let status = reply.status;
    let body = reply.json();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    format!("{ty}/{}", body["id"].as_str().unwrap_or_default())
}

async fn record(client: &Client, patient: &str, query: &str) -> Value {
    let reply = client
        .get(&format!(
            "/fhir/Patient/{patient}/$medication-record{query}"
        ))
        .await;
    let status = reply.status;
    let body = reply.json();
    assert_eq!(status, StatusCode::OK, "{body}");
    support::check_schema(&body.to_string());
    body
}

fn resources<'a>(bundle: &'a Value, ty: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == ty)
        .collect()
}

fn issue_codes(bundle: &Value) -> Vec<String> {
    resources(bundle, "DetectedIssue")
        .iter()
        .filter_map(|i| i["code"]["coding"][0]["code"].as_str().map(str::to_owned))
        .collect()
}

fn settings(line: &Value) -> Vec<String> {
    line["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["url"] == SETTING_EXTENSION)
        .filter_map(|e| {
            e["extension"]
                .as_array()?
                .iter()
                .find(|x| x["url"] == "setting")?["valueCoding"]["code"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

fn derived_from(line: &Value) -> Vec<String> {
    line["derivedFrom"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["reference"].as_str())
        .map(|r| r.split("/_history/").next().unwrap_or(r).to_owned())
        .collect()
}

/// A GP repeat of warfarin 1 mg, a pharmacy dispense of a supplier's product of it under that
/// repeat, and a ward administration: their references.
async fn one_medicine_in_three_settings(w: &World) -> (String, String, String) {
    let plan = created(&w.gp, &repeat(&w.patient, WARFARIN_1MG, 40)).await;
    let supply = created(
        &w.pharmacist,
        &dispense(&w.patient, WARFARIN_1MG_TEVA, Some(&plan), 10),
    )
    .await;
    let given = created(&w.ward, &administration(&w.patient, WARFARIN_1MG, 1)).await;
    (plan, supply, given)
}

async fn three_settings_one_line(app: &TestApp) {
    let w = world(app).await;
    let (plan, supply, given) = one_medicine_in_three_settings(&w).await;

    let bundle = record(&w.gp, &w.patient, "").await;
    assert_eq!(bundle["type"], "collection");
    let list = &bundle["entry"][0]["resource"];
    assert_eq!(
        (
            list["resourceType"].as_str(),
            list["mode"].as_str(),
            list["title"].as_str()
        ),
        (Some("List"), Some("working"), Some("Medication record"))
    );
    let lines = resources(&bundle, "MedicationStatement");
    assert_eq!(lines.len(), 1, "{bundle}");
    let line = lines[0];
    assert_eq!(line["status"], "active");
    assert_eq!(
        line["medicationCodeableConcept"]["coding"][0]["code"], WARFARIN_1MG,
        "VMP level"
    );
    let mut expected = vec![plan, supply, given];
    expected.sort();
    let mut got = derived_from(line);
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(
        settings(line),
        ["community-pharmacy", "gp-practice", "hospital"]
    );
    assert_eq!(issue_codes(&bundle), Vec::<String>::new(), "{bundle}");
    assert_eq!(
        list["entry"][0]["item"]["reference"],
        bundle["entry"][1]["fullUrl"]
    );
}

async fn dose_mismatch(app: &TestApp) {
    let w = world(app).await;
    let gp_plan = created(&w.gp, &repeat(&w.patient, WARFARIN_1MG, 60)).await;
    let hospital = app.as_user("u-registrar", Role::HospitalPrescriber, Some(HOSPITAL));
    let mut discharge = repeat(&w.patient, WARFARIN_3MG, 2);
    discharge["intent"] = json!("order");
    discharge["category"][0]["coding"][0]["code"] = json!("discharge");
    let discharge = created(&hospital, &discharge).await;

    let bundle = record(&w.gp, &w.patient, "").await;
    assert_eq!(issue_codes(&bundle), ["dose-mismatch"], "{bundle}");
    let issue = resources(&bundle, "DetectedIssue")[0];
    let implicated: Vec<String> = derived_from(&json!({"derivedFrom": issue["implicated"]}));
    assert_eq!(implicated, [gp_plan, discharge]);
    assert_eq!(
        issue["patient"]["reference"],
        format!("Patient/{}", w.patient)
    );
    assert_eq!(resources(&bundle, "MedicationStatement").len(), 1);
}

async fn stopped_but_continued(app: &TestApp) {
    let w = world(app).await;
    let plan = created(&w.gp, &repeat(&w.patient, WARFARIN_1MG, 60)).await;
    let mut stopped =
        w.gp.get(&format!("/fhir/{plan}"))
            .await
            .expect(StatusCode::OK)
            .json();
    stopped["status"] = json!("stopped");
    stopped["statusReason"] = json!({"text": "INR unstable; switched by anticoagulation clinic"});
    w.gp.put(&format!("/fhir/{plan}"), &stopped)
        .await
        .expect(StatusCode::OK);
    let supply = created(
        &w.pharmacist,
        &dispense(&w.patient, WARFARIN_1MG, Some(&plan), 0),
    )
    .await;

    let bundle = record(&w.pharmacist, &w.patient, "").await;
    assert_eq!(issue_codes(&bundle), ["stopped-but-continued"], "{bundle}");
    let issue = resources(&bundle, "DetectedIssue")[0];
    assert_eq!(
        derived_from(&json!({"derivedFrom": issue["implicated"]})),
        [plan, supply]
    );
    assert_eq!(issue["severity"], "high");
}

async fn duplicate(app: &TestApp) {
    let w = world(app).await;
    created(&w.gp, &repeat(&w.patient, WARFARIN_1MG, 60)).await;
    created(&w.gp, &repeat(&w.patient, WARFARIN_1MG_TEVA, 30)).await;
    let bundle = record(&w.gp, &w.patient, "").await;
    assert_eq!(issue_codes(&bundle), ["duplicate-ingredient"], "{bundle}");
    assert_eq!(resources(&bundle, "MedicationStatement").len(), 1);
}

async fn gp_connect(app: &TestApp) {
    let w = world(app).await;
    let plan = created(&w.gp, &repeat(&w.patient, WARFARIN_1MG, 90)).await;
    let mut issues = Vec::new();
    for days in [60, 30, 1] {
        let mut order = repeat(&w.patient, WARFARIN_1MG, days);
        order["intent"] = json!("order");
        order["status"] = json!("completed");
        order["basedOn"] = json!([{"reference": plan}]);
        issues.push(created(&w.gp, &order).await);
    }
    let bundle = record(&w.gp, &w.patient, "").await;
    let lines = resources(&bundle, "MedicationStatement");
    assert_eq!(lines.len(), 1, "{bundle}");
    assert_eq!(lines[0]["status"], "active");
    let mut expected = vec![plan];
    expected.extend(issues);
    assert_eq!(
        derived_from(lines[0]),
        expected,
        "plan, then its issues in date order"
    );
    assert!(
        issue_codes(&bundle).is_empty(),
        "issues of a plan are not duplicates: {bundle}"
    );
}

async fn unmapped(app: &TestApp) {
    let w = world(app).await;
    let mut rx = repeat(&w.patient, WARFARIN_1MG, 5);
    rx["medicationCodeableConcept"] = json!({"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "999999991", "display": "Imaginary 5 MG Oral Tablet"}]});
    created(&w.gp, &rx).await;
    let mut dmd_unknown = repeat(&w.patient, "12345611000001105", 5);
    dmd_unknown["medicationCodeableConcept"]["text"] = json!("Unlisted cream");
    created(&w.gp, &dmd_unknown).await;
    let warfarin = created(&w.gp, &repeat(&w.patient, WARFARIN_1MG, 5)).await;
    // An RxNorm-coded entry whose name the dictionary knows maps at ingredient level.
    let mut us = repeat(&w.patient, WARFARIN_1MG, 4);
    us["medicationCodeableConcept"] = json!({"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "855332", "display": "Warfarin Sodium 5 MG Oral Tablet"}]});
    // A finished course (an active one beside the GP's repeat would be a duplicate).
    us["status"] = json!("completed");
    let us = created(&w.gp, &us).await;

    let bundle = record(&w.gp, &w.patient, "").await;
    let lines = resources(&bundle, "MedicationStatement");
    assert_eq!(lines.len(), 3, "{bundle}");
    let warfarin_line = lines
        .iter()
        .find(|l| derived_from(l).contains(&warfarin))
        .expect("the warfarin line");
    assert!(
        derived_from(warfarin_line).contains(&us),
        "RxNorm by name joins it: {bundle}"
    );
    let unmapped: Vec<&&Value> = lines
        .iter()
        .filter(|l| {
            l["extension"]
                .as_array()
                .is_some_and(|e| e.iter().any(|x| x["valueCode"] == "unmapped"))
        })
        .collect();
    assert_eq!(unmapped.len(), 2);
    let codes: Vec<&str> = unmapped
        .iter()
        .filter_map(|l| l["medicationCodeableConcept"]["coding"][0]["code"].as_str())
        .collect();
    assert!(
        codes.contains(&"999999991") && codes.contains(&"12345611000001105"),
        "{codes:?}"
    );
    assert!(issue_codes(&bundle).is_empty());
}

async fn timeline(app: &TestApp) {
    let w = world(app).await;
    let (plan, supply, given) = one_medicine_in_three_settings(&w).await;
    let other = repeat(&w.patient, "329653008", 3);
    created(&w.gp, &other).await;

    let bundle = record(
        &w.gp,
        &w.patient,
        &format!("?medicine={DMD}%7C{WARFARIN_1MG_TEVA}"),
    )
    .await;
    let entries: Vec<&Value> = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .collect();
    let sources: Vec<String> = entries
        .iter()
        .filter(|r| r["resourceType"] != "Provenance")
        .map(|r| {
            format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap_or(""),
                r["id"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        sources,
        [plan.clone(), supply.clone(), given.clone()],
        "date order, other medicines left out"
    );
    // Each entry is followed by its Provenance, naming the setting that wrote it.
    for (i, r) in entries.iter().enumerate() {
        if r["resourceType"] != "Provenance" {
            let next = entries.get(i + 1).expect("a Provenance follows");
            assert_eq!(next["resourceType"], "Provenance");
            let target = next["target"][0]["reference"].as_str().unwrap_or_default();
            assert!(target.starts_with(&format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap_or(""),
                r["id"].as_str().unwrap_or("")
            )));
        }
    }
}

async fn access(app: &TestApp) {
    let w = world(app).await;
    created(&w.gp, &repeat(&w.patient, WARFARIN_1MG, 5)).await;
    // The patient sees their own record.
    let own = record(&app.as_patient(&w.patient), &w.patient, "").await;
    assert_eq!(resources(&own, "MedicationStatement").len(), 1);
    // A GP elsewhere has no care relationship.
    let stranger = app.as_user("u-other", Role::Gp, Some("B86001"));
    let reply = stranger
        .get(&format!("/fhir/Patient/{}/$medication-record", w.patient))
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.json()["resourceType"], "OperationOutcome");
    // Unknown patient: 404.
    let reply =
        w.gp.get("/fhir/Patient/no-such-patient/$medication-record")
            .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["resourceType"], "OperationOutcome");
    // No token: 401.
    let reply = app
        .with_token(None)
        .get(&format!("/fhir/Patient/{}/$medication-record", w.patient))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // A bad parameter: 400.
    let reply =
        w.gp.get(&format!(
            "/fhir/Patient/{}/$medication-record?stopped-within=soon",
            w.patient
        ))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

async fn stopped_within(app: &TestApp) {
    let w = world(app).await;
    let plan = created(&w.gp, &repeat(&w.patient, WARFARIN_1MG, 200)).await;
    let mut stopped =
        w.gp.get(&format!("/fhir/{plan}"))
            .await
            .expect(StatusCode::OK)
            .json();
    stopped["status"] = json!("stopped");
    stopped["dispenseRequest"]["validityPeriod"] =
        json!({"start": days_ago(200), "end": days_ago(30)});
    w.gp.put(&format!("/fhir/{plan}"), &stopped)
        .await
        .expect(StatusCode::OK);

    let default = record(&w.gp, &w.patient, "").await;
    let lines = resources(&default, "MedicationStatement");
    assert_eq!(
        lines.len(),
        1,
        "stopped 30 days ago is within the default 90"
    );
    assert_eq!(lines[0]["status"], "stopped");
    assert!(lines[0]["effectivePeriod"]["end"].is_string());
    let narrow = record(&w.gp, &w.patient, "?stopped-within=14").await;
    assert!(resources(&narrow, "MedicationStatement").is_empty());
    assert!(narrow["entry"][0]["resource"]["emptyReason"].is_object());
}
