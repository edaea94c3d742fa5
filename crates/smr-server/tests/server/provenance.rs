//! Issue 8: every created, changed or deleted entry of a patient's record gets a Provenance,
//! written in the same database transaction (target as a versioned reference, activity, the
//! user acting for their organisation in their care setting, the source system when the client
//! names one), found by `GET /fhir/Provenance?target=…` by those who may see the record only.
//! Each runs on SQLite and, when configured, PostgreSQL.

use crate::support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use smr_access::Role;
use support::{Client, TestApp, fixture};

backend_tests! {
    create_update_delete_each_get_a_provenance => create_update_delete;
    pharmacist_write_names_pharmacy_setting_and_source_system => pharmacist_source;
    transaction_of_three_gets_three_and_failed_none => transactions;
    conditional_create_that_finds_a_match_records_nothing => conditional_existing;
    provenance_belongs_to_the_patients_record => visibility;
    shared_resources_get_no_provenance => shared_resources;
    x_provenance_header_is_recorded_with_the_write => x_provenance;
    bad_x_provenance_writes_nothing => bad_x_provenance;
    smr_names_itself_and_pgx_intake_is_not_doubled => smr_and_intake;
    consent_that_withholds_an_entry_withholds_its_provenance => consent;
    stored_bundle_gets_one_only_in_a_patients_record => stored_bundles;
    a_client_written_provenance_lives_in_its_targets_record => client_provenance_record;
    setting_comes_from_the_callers_organisation_unless_the_token_states_one => setting_from_organisation;
}

const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const GP: &str = "A81001";
const OTHER_GP: &str = "B86001";
const PHARMACY: &str = "FA123";
const DATA_OPERATION: &str = "http://terminology.hl7.org/CodeSystem/v3-DataOperation";

struct World {
    patient: String,
    gp_org: String,
}

/// A patient registered with the GP's Organization (by reference) whose prescriptions are
/// nominated to the pharmacy, so both have a care relationship.
async fn world(app: &TestApp) -> World {
    let gp_org = app
        .create(&json!({"resourceType": "Organization",
            "identifier": [{"system": ODS, "value": GP}], "name": "Test Surgery"}))
        .await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut patient = fixture("patient.json");
    patient["generalPractitioner"] = json!([{"reference": format!("Organization/{gp_org}")}]);
    let patient = app.create(&patient).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    World { patient, gp_org }
}

fn order(patient: &str) -> Value {
    let mut mr = fixture("medication-request.json");
    mr["subject"]["reference"] = json!(format!("Patient/{patient}"));
    mr["dispenseRequest"]["performer"] = json!({"identifier": {"system": ODS, "value": PHARMACY}});
    mr
}

/// `client` prescribes the fixture order for `patient`; its id.
async fn ordered(client: &Client, patient: &str) -> String {
    client
        .post("/fhir/MedicationRequest", &order(patient))
        .await
        .expect(StatusCode::CREATED)
        .json()["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn gp(app: &TestApp) -> Client {
    app.as_user("u-gp", Role::Gp, Some(GP))
}

/// The Provenances `client` finds for `target` (`Type/id`), oldest first.
async fn provenances(client: &Client, target: &str) -> Vec<Value> {
    let reply = client
        .get(&format!(
            "/fhir/Provenance?target={target}&_total=accurate&_count=100"
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    let mut found: Vec<Value> = reply["entry"]
        .as_array()
        .map(|entries| entries.iter().map(|e| e["resource"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(reply["total"].as_u64(), Some(found.len() as u64));
    found.sort_by_key(|p| p["recorded"].as_str().unwrap_or_default().to_owned());
    found
}

async fn provenance_total(app: &TestApp) -> i64 {
    app.get("/fhir/Provenance?_total=accurate&_count=0")
        .await
        .expect(StatusCode::OK)
        .json()["total"]
        .as_i64()
        .unwrap_or(-1)
}

fn activity(p: &Value) -> &str {
    assert_eq!(p["activity"]["coding"][0]["system"], DATA_OPERATION);
    p["activity"]["coding"][0]["code"]
        .as_str()
        .unwrap_or_default()
}

fn target(p: &Value) -> &str {
    p["target"][0]["reference"].as_str().unwrap_or_default()
}

async fn create_update_delete(app: &TestApp) {
    let w = world(app).await;
    let gp = gp(app);
    let created = gp
        .post("/fhir/MedicationRequest", &order(&w.patient))
        .await
        .expect(StatusCode::CREATED)
        .json();
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let reference = format!("MedicationRequest/{id}");

    let found = provenances(&gp, &reference).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let p = &found[0];
    assert_eq!(target(p), format!("{reference}/_history/1"));
    assert_eq!(activity(p), "CREATE");
    // Recorded when the version was: its lastUpdated.
    assert_eq!(p["recorded"], created["meta"]["lastUpdated"]);
    let agent = &p["agent"][0];
    assert_eq!(agent["type"]["coding"][0]["code"], "author");
    assert_eq!(
        agent["type"]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
    );
    assert_eq!(agent["who"]["identifier"]["value"], "u-gp");
    // The Organization SMR holds with the GP's ODS code, and the code itself.
    assert_eq!(
        agent["onBehalfOf"]["reference"],
        format!("Organization/{}", w.gp_org)
    );
    assert_eq!(agent["onBehalfOf"]["identifier"]["system"], ODS);
    assert_eq!(agent["onBehalfOf"]["identifier"]["value"], GP);
    assert_eq!(agent["role"][0]["coding"][0]["code"], "gp-practice");
    assert!(p.get("entity").is_none(), "no source system named: {p}");

    let mut changed = created.clone();
    changed["status"] = json!("on-hold");
    gp.put(&format!("/fhir/{reference}"), &changed)
        .await
        .expect(StatusCode::OK);
    let found = provenances(&gp, &reference).await;
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(target(&found[1]), format!("{reference}/_history/2"));
    assert_eq!(activity(&found[1]), "UPDATE");

    // `_revinclude=Provenance:target` finds them through the same (unversioned) index.
    let with_provenance = gp
        .get(&format!(
            "/fhir/MedicationRequest?_id={id}&_revinclude=Provenance:target"
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    let included = with_provenance["entry"].as_array().map_or(0, |e| {
        e.iter()
            .filter(|e| e["resource"]["resourceType"] == "Provenance")
            .count()
    });
    assert_eq!(included, 2, "{with_provenance}");

    gp.delete(&format!("/fhir/{reference}"))
        .await
        .expect(StatusCode::OK);
    let found = provenances(&gp, &reference).await;
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(target(&found[2]), format!("{reference}/_history/3"));
    assert_eq!(activity(&found[2]), "DELETE");
    assert_eq!(found[2]["agent"][0]["who"]["identifier"]["value"], "u-gp");

    // Each Provenance reads back by id, as any resource.
    let read = gp
        .get(&format!(
            "/fhir/Provenance/{}",
            found[0]["id"].as_str().unwrap_or_default()
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(target(&read), format!("{reference}/_history/1"));
}

async fn pharmacist_source(app: &TestApp) {
    let w = world(app).await;
    let order_id = app.create(&order(&w.patient)).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let pharmacist = app.as_user("u-ph", Role::CommunityPharmacist, Some(PHARMACY));
    let source = "urn:oid:2.16.840.1.113883.2.1.3.2.4.18.48";
    let dispense = json!({"resourceType": "MedicationDispense", "status": "completed",
        "meta": {"source": source},
        "medicationCodeableConcept": {"text": "Paracetamol 500mg tablets"},
        "subject": {"reference": format!("Patient/{}", w.patient)},
        "authorizingPrescription": [{"reference": format!("MedicationRequest/{order_id}")}]});
    let created = pharmacist
        .post("/fhir/MedicationDispense", &dispense)
        .await
        .expect(StatusCode::CREATED)
        .json();
    let reference = format!(
        "MedicationDispense/{}",
        created["id"].as_str().unwrap_or_default()
    );
    let found = provenances(&pharmacist, &reference).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let agent = &found[0]["agent"][0];
    assert_eq!(agent["who"]["identifier"]["value"], "u-ph");
    assert_eq!(agent["role"][0]["coding"][0]["code"], "community-pharmacy");
    // No Organization with that ODS code is held: named by identifier only.
    assert_eq!(agent["onBehalfOf"]["identifier"]["value"], PHARMACY);
    assert!(agent["onBehalfOf"].get("reference").is_none());
    // meta.source is the source system entity.
    let entity = &found[0]["entity"][0];
    assert_eq!(entity["role"], "source");
    assert_eq!(entity["what"]["identifier"]["value"], source);
}

async fn transactions(app: &TestApp) {
    let w = world(app).await;
    let before = provenance_total(app).await;
    let entry = |resource: Value| {
        let ty = resource["resourceType"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        json!({"fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()), "resource": resource,
               "request": {"method": "POST", "url": ty}})
    };
    let statement = json!({"resourceType": "MedicationStatement", "status": "active",
        "medicationCodeableConcept": {"text": "Ibuprofen 200mg tablets"},
        "subject": {"reference": format!("Patient/{}", w.patient)}});
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        entry(order(&w.patient)), entry(order(&w.patient)), entry(statement)]});
    let reply = gp(app)
        .post("/fhir", &tx)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(provenance_total(app).await, before + 3);
    for e in reply["entry"].as_array().expect("entries") {
        let location = e["response"]["location"].as_str().unwrap_or_default();
        let plain = location.split("/_history/").next().unwrap_or_default();
        let found = provenances(app, plain).await;
        assert_eq!(found.len(), 1, "{location}: {found:?}");
        assert_eq!(target(&found[0]), location);
    }

    // A transaction that fails writes nothing, Provenances included.
    let mut bad = order(&w.patient);
    bad["status"] = json!("not-a-status");
    let failing = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        entry(order(&w.patient)), entry(bad)]});
    let status = gp(app).post("/fhir", &failing).await.status;
    assert!(status.is_client_error(), "{status}");
    assert_eq!(provenance_total(app).await, before + 3);
}

async fn conditional_existing(app: &TestApp) {
    let w = world(app).await;
    let gp = gp(app);
    let body = order(&w.patient).to_string();
    let condition = "identifier=https://fhir.nhs.uk/Id/prescription-order-item-number|a54219b8-f741-4c47-b662-e4f8dfa49ab6";
    gp.request(
        Method::POST,
        "/fhir/MedicationRequest",
        &[("if-none-exist", condition)],
        Some(body.clone()),
    )
    .await
    .expect(StatusCode::CREATED);
    let before = provenance_total(app).await;
    gp.request(
        Method::POST,
        "/fhir/MedicationRequest",
        &[("if-none-exist", condition)],
        Some(body),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(provenance_total(app).await, before);
}

async fn visibility(app: &TestApp) {
    let w = world(app).await;
    let gp = gp(app);
    let id = ordered(&gp, &w.patient).await;
    let reference = format!("MedicationRequest/{id}");
    let found = provenances(&gp, &reference).await;
    assert_eq!(found.len(), 1);
    let provenance_id = found[0]["id"].as_str().unwrap_or_default().to_owned();
    // Another practice's GP has no relationship with the patient: the Provenance is part of
    // the patient's record, hidden like the entry it describes.
    let other = app.as_user("u-other", Role::Gp, Some(OTHER_GP));
    assert!(provenances(&other, &reference).await.is_empty());
    let status = other
        .get(&format!("/fhir/Provenance/{provenance_id}"))
        .await
        .status;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
        "{status}"
    );
    // The patient sees who wrote their record.
    let own = app.as_patient(&w.patient);
    assert_eq!(provenances(&own, &reference).await.len(), 1);
}

async fn shared_resources(app: &TestApp) {
    let before = provenance_total(app).await;
    app.create(&json!({"resourceType": "Organization",
        "identifier": [{"system": ODS, "value": "Y12345"}], "name": "Another"}))
        .await;
    app.create(&json!({"resourceType": "Medication",
        "code": {"text": "Paracetamol 500mg tablets"}}))
        .await;
    assert_eq!(provenance_total(app).await, before);
}

async fn x_provenance(app: &TestApp) {
    let w = world(app).await;
    let header = json!({"resourceType": "Provenance",
        // Whatever the client says of target and activity, SMR decides them.
        "target": [{"reference": "Patient/someone-else"}],
        "reason": [{"text": "medication review"}],
        "agent": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "assembler"}]},
                   "who": {"display": "EMIS Web"}}]})
    .to_string();
    let created = gp(app)
        .request(
            Method::POST,
            "/fhir/MedicationRequest",
            &[("x-provenance", header.as_str())],
            Some(order(&w.patient).to_string()),
        )
        .await
        .expect(StatusCode::CREATED)
        .json();
    let reference = format!(
        "MedicationRequest/{}",
        created["id"].as_str().unwrap_or_default()
    );
    let found = provenances(&gp(app), &reference).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let p = &found[0];
    assert_eq!(p["target"].as_array().map(Vec::len), Some(1));
    assert_eq!(target(p), format!("{reference}/_history/1"));
    assert_eq!(activity(p), "CREATE");
    assert_eq!(p["reason"][0]["text"], "medication review");
    // The authenticated author first, the client's agents after.
    assert_eq!(p["agent"][0]["who"]["identifier"]["value"], "u-gp");
    assert_eq!(p["agent"][1]["who"]["display"], "EMIS Web");
}

async fn bad_x_provenance(app: &TestApp) {
    let w = world(app).await;
    let orders = |client: Client| async move {
        client
            .get("/fhir/MedicationRequest?_total=accurate&_count=0")
            .await
            .expect(StatusCode::OK)
            .json()["total"]
            .as_i64()
            .unwrap_or(-1)
    };
    let before = (
        orders(app.client.clone()).await,
        provenance_total(app).await,
    );
    for (header, status) in [
        (r#"{"resourceType": "Patient"}"#, StatusCode::BAD_REQUEST),
        ("not json", StatusCode::BAD_REQUEST),
        // Valid JSON, but not a valid Provenance once completed (inside the write's
        // transaction): the create it came with is rolled back with it.
        (
            r#"{"resourceType": "Provenance", "reason": "because"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let reply = gp(app)
            .request(
                Method::POST,
                "/fhir/MedicationRequest",
                &[("x-provenance", header)],
                Some(order(&w.patient).to_string()),
            )
            .await;
        assert_eq!(reply.status, status, "{header}: {}", reply.text);
        assert_eq!(
            (
                orders(app.client.clone()).await,
                provenance_total(app).await
            ),
            before,
            "{header}"
        );
    }
}

fn placed(fixture_name: &str, patient: &str) -> Value {
    let text = fixture(fixture_name)
        .to_string()
        .replace("PATIENT_ID", patient);
    serde_json::from_str(&text).expect("fixture JSON")
}

async fn smr_and_intake(app: &TestApp) {
    let w = world(app).await;
    app.create(&placed("cds/codeine-order.json", &w.patient))
        .await;
    // A CYP2D6 ultrarapid result: SMR's re-check writes a DetectedIssue, and its Provenance
    // names SMR (the `smr` system principal), acting for no organisation.
    app.create(&placed("cds/genotype-cyp2d6-um.json", &w.patient))
        .await;
    // The re-check follows the commit through the change feed: wait for it.
    let issues = support::eventually(|| async {
        let issues = app
            .get(&format!("/fhir/DetectedIssue?patient={}", w.patient))
            .await
            .expect(StatusCode::OK)
            .json();
        (issues["total"] == 1).then_some(issues)
    })
    .await;
    let issue = format!(
        "DetectedIssue/{}",
        issues["entry"][0]["resource"]["id"]
            .as_str()
            .unwrap_or_default()
    );
    let found = provenances(app, &issue).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["agent"][0]["who"]["identifier"]["value"], "smr");
    assert!(found[0]["agent"][0].get("onBehalfOf").is_none());

    // The PGx intake writes its own Provenance (naming the lab) for the results it stores:
    // SMR adds no second one.
    let reply = app
        .request(
            Method::POST,
            &format!("/fhir/Patient/{}/$pgx-outside-calls", w.patient),
            &[("content-type", "text/tab-separated-values")],
            Some("CYP2C19\t*2/*2\tPoor Metabolizer\n".to_owned()),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    let genotype = reply["entry"][0]["response"]["location"]
        .as_str()
        .unwrap_or_default()
        .split("/_history/")
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(genotype.starts_with("Observation/"), "{reply}");
    let found = provenances(app, &genotype).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0]["agent"][0]["type"]["coding"][0]["code"],
        "performer"
    );
}

async fn consent(app: &TestApp) {
    let w = world(app).await;
    let order_id = app.create(&order(&w.patient)).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // Olanzapine is labelled PSY by SMR from its medicine; its Provenance carries the label.
    let statement = gp(app)
        .post(
            "/fhir/MedicationStatement",
            &json!({"resourceType": "MedicationStatement", "status": "active",
                "medicationCodeableConcept": {"text": "Olanzapine 10mg tablets"},
                "subject": {"reference": format!("Patient/{}", w.patient)}}),
        )
        .await
        .expect(StatusCode::CREATED)
        .json();
    let statement_ref = format!(
        "MedicationStatement/{}",
        statement["id"].as_str().unwrap_or_default()
    );
    // The patient withholds psychiatric medicines from community pharmacies.
    app.as_patient(&w.patient)
        .post(
            "/fhir/Consent",
            &support::consent_withholding_psy_from_pharmacies(&w.patient),
        )
        .await
        .expect(StatusCode::CREATED);
    let pharmacist = app.as_user("u-ph", Role::CommunityPharmacist, Some(PHARMACY));
    assert!(provenances(&pharmacist, &statement_ref).await.is_empty());
    assert_eq!(
        provenances(&pharmacist, &format!("MedicationRequest/{order_id}"))
            .await
            .len(),
        1
    );
    let found = provenances(&gp(app), &statement_ref).await;
    assert_eq!(found.len(), 1);
    assert!(found[0]["meta"]["security"].to_string().contains("\"PSY\""));
}

async fn stored_bundles(app: &TestApp) {
    let w = world(app).await;
    let collection = |entries: Vec<Value>| {
        json!({"resourceType": "Bundle", "type": "collection",
            "entry": entries.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()})
    };
    let before = provenance_total(app).await;
    // A collection with no patient's entry is shared, like a Medication: no Provenance.
    app.create(&collection(vec![json!({"resourceType": "Medication",
        "code": {"text": "Paracetamol 500mg tablets"}})]))
        .await;
    assert_eq!(provenance_total(app).await, before);
    // One about the patient is in their record, and gets one.
    let statement = json!({"resourceType": "MedicationStatement", "status": "active",
        "medicationCodeableConcept": {"text": "Amlodipine 5mg tablets"},
        "subject": {"reference": format!("Patient/{}", w.patient)}});
    let stored = app.create(&collection(vec![statement])).await;
    let found = provenances(
        app,
        &format!("Bundle/{}", stored["id"].as_str().unwrap_or_default()),
    )
    .await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(provenance_total(app).await, before + 1);
}

/// A Provenance a client writes itself (a lab import recording its results) names no Patient;
/// it belongs to the record of the entry it targets, so those caring for the patient find it
/// and others do not.
async fn client_provenance_record(app: &TestApp) {
    let w = world(app).await;
    let gp = gp(app);
    let id = ordered(&gp, &w.patient).await;
    let reference = format!("MedicationRequest/{id}");
    app.create(&json!({
        "resourceType": "Provenance",
        "target": [{"reference": reference}],
        "recorded": "2026-12-06T10:00:00Z",
        "agent": [{"who": {"display": "Reconciliation service"}}]
    }))
    .await;
    let by_lab = |found: &[Value]| {
        found
            .iter()
            .filter(|p| p["agent"][0]["who"]["display"] == "Reconciliation service")
            .count()
    };
    assert_eq!(by_lab(&provenances(&gp, &reference).await), 1);
    assert_eq!(
        by_lab(&provenances(&app.as_patient(&w.patient), &reference).await),
        1
    );
    let other = app.as_user("u-other", Role::Gp, Some(OTHER_GP));
    assert_eq!(by_lab(&provenances(&other, &reference).await), 0);
}

/// A back-end system (an ePMA interface engine) has no setting of its own: SMR records the
/// one its organisation's Organization states. A token that states a setting keeps it.
async fn setting_from_organisation(app: &TestApp) {
    const HOSPITAL: &str = "RXX01";
    let w = world(app).await;
    app.create(&json!({"resourceType": "Organization",
        "identifier": [{"system": ODS, "value": HOSPITAL}], "name": "Test Hospital",
        "type": [{"coding": [{"system": smr_access::consent::CARE_SETTING_SYSTEM,
                              "code": "hospital"}]}]}))
        .await;
    let setting_of = |p: &Value| p["agent"][0]["role"][0]["coding"][0]["code"].clone();

    let engine = app.as_user("epma", Role::System, Some(HOSPITAL));
    let id = ordered(&engine, &w.patient).await;
    let found = provenances(&engine, &format!("MedicationRequest/{id}")).await;
    assert_eq!(setting_of(&found[0]), "hospital", "{found:?}");

    let stated = app.with_token(support::issue(
        &app.issuer,
        smr_auth::TokenRequest {
            org: Some(HOSPITAL.to_owned()),
            setting: Some(smr_access::CareSetting::CareHome),
            ..smr_auth::TokenRequest::new("epma-2", Role::System)
        },
    ));
    let id = ordered(&stated, &w.patient).await;
    let found = provenances(&stated, &format!("MedicationRequest/{id}")).await;
    assert_eq!(setting_of(&found[0]), "care-home", "{found:?}");

    // An organisation SMR holds no Organization for: the role's usual setting.
    let other = app.as_user("loader", Role::System, Some("ZZZ99"));
    let id = ordered(&other, &w.patient).await;
    let found = provenances(&other, &format!("MedicationRequest/{id}")).await;
    assert_eq!(setting_of(&found[0]), "unspecified", "{found:?}");
}
