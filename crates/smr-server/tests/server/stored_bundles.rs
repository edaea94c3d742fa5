//! Bundles of type `collection` and `document` stored as resources (`POST /fhir/Bundle`), on
//! SQLite and PostgreSQL: validation of their entries and R4 invariants, whose record they
//! land in, who may read them, consent, search and `$everything`. Transaction and batch
//! Bundles stay processed at the base URL.

use crate::support;

use axum::http::StatusCode;
use serde_json::{Value, json};
use smr_access::Role;
use support::TestApp;

backend_tests! {
    document_is_stored_and_read_back_as_sent => document_round_trip;
    collection_is_stored_in_its_patients_record => collection_stored;
    transaction_or_batch_at_bundle_endpoint_is_422 => transaction_at_bundle_endpoint;
    invalid_entry_is_422_naming_the_entry => invalid_entry;
    document_needs_composition_first_identifier_and_timestamp => document_invariants;
    mixed_patient_collection_is_422 => mixed_patients;
    bundle_about_an_unknown_patient_is_refused => unknown_patient;
    only_those_who_may_open_the_record_read_it => access;
    consent_withholds_a_bundle_holding_a_sensitive_medicine => consent;
    search_by_identifier_and_type => search;
    transaction_at_the_base_is_still_processed => transaction_at_base;
}

const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const GP: &str = "A81001";
const PHARMACY: &str = "FA123";
const DOC_ID: &str = "urn:uuid:0c3e5b8a-6d2f-4f0e-9b1a-7e4d2c9f1a01";

fn ods(code: &str) -> Value {
    json!({"identifier": {"system": ODS, "value": code}})
}

/// A patient registered with `GP`, with an order nominated to `PHARMACY`: both organisations
/// care for them.
async fn patient(app: &TestApp) -> String {
    let id = app
        .create(
            &json!({"resourceType": "Patient", "name": [{"family": "Documented"}],
            "generalPractitioner": [ods(GP)]}),
        )
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.create(
        &json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"text": "Amlodipine 5mg tablets"},
        "subject": {"reference": format!("Patient/{id}")},
        "dispenseRequest": {"performer": ods(PHARMACY)}}),
    )
    .await;
    id
}

fn statement(patient: &str, medicine: &str) -> Value {
    json!({"resourceType": "MedicationStatement", "status": "active",
        "medicationCodeableConcept": {"text": medicine},
        "subject": {"reference": format!("Patient/{patient}")}})
}

/// A discharge summary: a Composition about `patient` and the medicines on discharge.
fn document(patient: &str, medicine: &str) -> Value {
    json!({
        "resourceType": "Bundle",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": DOC_ID},
        "type": "document",
        "timestamp": "2026-12-01T10:00:00.000+00:00",
        "entry": [
            {"fullUrl": "urn:uuid:5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c01",
             "resource": {"resourceType": "Composition", "status": "final",
                "type": {"coding": [{"system": "http://snomed.info/sct", "code": "373942005",
                    "display": "Discharge summary"}]},
                "subject": {"reference": format!("Patient/{patient}")},
                "date": "2026-12-01T10:00:00+00:00",
                "author": [{"display": "Ward 7, Leeds General Infirmary"}],
                "title": "Discharge summary",
                "text": {"status": "generated",
                    "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Discharged home.</p></div>"},
                "section": [{"title": "Medications on discharge",
                    "entry": [{"reference": "urn:uuid:5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c02"}]}]}},
            {"fullUrl": "urn:uuid:5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c02",
             "resource": statement(patient, medicine)}
        ]
    })
}

fn collection(entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "collection",
        "entry": entries.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()})
}

/// The body as stored, without what the server adds (`id`, `meta`).
fn as_sent(mut stored: Value) -> Value {
    if let Some(o) = stored.as_object_mut() {
        o.remove("id");
        o.remove("meta");
    }
    stored
}

fn expressions(reply: &support::Reply) -> Vec<String> {
    reply.json()["issue"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|i| i["expression"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e.as_str().map(str::to_owned))
        .collect()
}

async fn document_round_trip(app: &TestApp) {
    let pid = patient(app).await;
    let doc = document(&pid, "Amlodipine 5mg tablets");
    let created = app
        .post("/fhir/Bundle", &doc)
        .await
        .expect(StatusCode::CREATED);
    let id = created.json()["id"].as_str().expect("id").to_owned();
    assert_eq!(created.json()["meta"]["versionId"], "1");
    assert_eq!(as_sent(created.json()), doc, "stored as sent");
    let read = app
        .get(&format!("/fhir/Bundle/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(read.text, created.text, "read back byte for byte");
    // Its entries are not stored resources: the patient's MedicationStatements are none.
    let statements = app
        .get(&format!(
            "/fhir/MedicationStatement?subject=Patient/{pid}&_total=accurate"
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(statements["total"], 0, "{statements}");
    // It is in the patient's record.
    let everything = app
        .get(&format!("/fhir/Patient/{pid}/$everything"))
        .await
        .expect(StatusCode::OK)
        .text;
    assert!(
        everything.contains(&format!("\"Bundle/{id}\""))
            || everything.contains(&format!("/Bundle/{id}\"")),
        "{everything}"
    );
    // Update and history like any resource.
    let mut changed = read.json();
    changed["timestamp"] = json!("2026-12-02T09:00:00.000+00:00");
    app.put(&format!("/fhir/Bundle/{id}"), &changed)
        .await
        .expect(StatusCode::OK);
    let history = app
        .get(&format!("/fhir/Bundle/{id}/_history"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(history["entry"].as_array().map(Vec::len), Some(2));
}

async fn collection_stored(app: &TestApp) {
    let pid = patient(app).await;
    let list = collection(vec![
        statement(&pid, "Amlodipine 5mg tablets"),
        json!({"resourceType": "Medication", "code": {"text": "Amlodipine 5mg tablets"}}),
    ]);
    let created = app.create(&list).await;
    assert_eq!(as_sent(created.clone()), list);
    let id = created["id"].as_str().expect("id");
    // A GP caring for the patient reads it.
    app.as_user("u-gp", Role::Gp, Some(GP))
        .get(&format!("/fhir/Bundle/{id}"))
        .await
        .expect(StatusCode::OK);
    // A collection with no patient's entry is shared, like a Medication.
    let formulary = app
        .create(&collection(vec![json!({"resourceType": "Medication",
            "code": {"text": "Paracetamol 500mg tablets"}})]))
        .await;
    app.as_user("u-gp2", Role::Gp, Some("B86001"))
        .get(&format!(
            "/fhir/Bundle/{}",
            formulary["id"].as_str().expect("id")
        ))
        .await
        .expect(StatusCode::OK);
}

async fn transaction_at_bundle_endpoint(app: &TestApp) {
    for kind in ["transaction", "batch", "searchset", "message"] {
        let bundle = json!({"resourceType": "Bundle", "type": kind, "entry": [
            {"resource": {"resourceType": "Medication", "code": {"text": "x"}},
             "request": {"method": "POST", "url": "Medication"}}]});
        let reply = app
            .post("/fhir/Bundle", &bundle)
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(expressions(&reply), vec!["Bundle.type"], "{}", reply.text);
        assert!(reply.text.contains("base URL"), "{}", reply.text);
        assert!(reply.text.contains("collection"), "{}", reply.text);
        app.put(
            "/fhir/Bundle/t1",
            &json!({"resourceType": "Bundle", "id": "t1", "type": kind}),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    }
    app.get("/fhir/Bundle/t1")
        .await
        .expect(StatusCode::NOT_FOUND);
}

async fn invalid_entry(app: &TestApp) {
    let pid = patient(app).await;
    let mut bad = statement(&pid, "Amlodipine 5mg tablets");
    bad["status"] = json!("taking");
    let reply = app
        .post(
            "/fhir/Bundle",
            &collection(vec![statement(&pid, "Ramipril 5mg capsules"), bad]),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        expressions(&reply),
        vec!["Bundle.entry[1].resource.status"],
        "{}",
        reply.text
    );
    // Narrative in an entry is checked like a stored resource's.
    let mut scripted = statement(&pid, "Amlodipine 5mg tablets");
    scripted["text"] = json!({"status": "generated",
        "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>alert(1)</script></div>"});
    let reply = app
        .post("/fhir/Bundle", &collection(vec![scripted]))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        expressions(&reply),
        vec!["Bundle.entry[0].resource.text.div"],
        "{}",
        reply.text
    );
    // An unknown element deep inside an entry.
    let mut odd = statement(&pid, "Amlodipine 5mg tablets");
    odd["medicationCodeableConcept"]["zz"] = json!(1);
    let reply = app
        .post("/fhir/Bundle", &collection(vec![odd]))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        expressions(&reply),
        vec!["Bundle.entry[0].resource.medicationCodeableConcept.zz"]
    );
}

async fn document_invariants(app: &TestApp) {
    let pid = patient(app).await;
    let mut doc = document(&pid, "Amlodipine 5mg tablets");
    let entries = doc["entry"].as_array_mut().expect("entries");
    entries.swap(0, 1);
    let reply = app
        .post("/fhir/Bundle", &doc)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(expressions(&reply), vec!["Bundle.entry[0].resource"]);
    assert!(reply.text.contains("bdl-11"), "{}", reply.text);
    let mut doc = document(&pid, "Amlodipine 5mg tablets");
    doc.as_object_mut().map(|o| o.remove("identifier"));
    doc.as_object_mut().map(|o| o.remove("timestamp"));
    let reply = app
        .post("/fhir/Bundle", &doc)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        expressions(&reply),
        vec!["Bundle.identifier", "Bundle.timestamp"]
    );
    // A document about no patient SMR can name.
    let mut doc = document(&pid, "Amlodipine 5mg tablets");
    doc["entry"][0]["resource"]["subject"] = json!({"display": "someone"});
    let reply = app
        .post("/fhir/Bundle", &doc)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        expressions(&reply),
        vec!["Bundle.entry[0].resource.subject"]
    );
    // The Composition is checked as a Composition, though SMR does not serve it alone.
    let mut doc = document(&pid, "Amlodipine 5mg tablets");
    doc["entry"][0]["resource"]
        .as_object_mut()
        .map(|o| o.remove("title"));
    doc["entry"][0]["resource"]["status"] = json!("done");
    let reply = app
        .post("/fhir/Bundle", &doc)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        expressions(&reply),
        vec![
            "Bundle.entry[0].resource.status",
            "Bundle.entry[0].resource.title"
        ],
        "{}",
        reply.text
    );
    app.post("/fhir/Composition", &doc["entry"][0]["resource"])
        .await
        .expect(StatusCode::NOT_FOUND);
    // bdl-7: a fullUrl twice.
    let mut doc = document(&pid, "Amlodipine 5mg tablets");
    doc["entry"][1]["fullUrl"] = doc["entry"][0]["fullUrl"].clone();
    let reply = app
        .post("/fhir/Bundle", &doc)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(expressions(&reply), vec!["Bundle.entry[1].fullUrl"]);
}

async fn mixed_patients(app: &TestApp) {
    let a = patient(app).await;
    let b = patient(app).await;
    let reply = app
        .post(
            "/fhir/Bundle",
            &collection(vec![
                statement(&a, "Amlodipine 5mg tablets"),
                statement(&b, "Ramipril 5mg capsules"),
            ]),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(expressions(&reply), vec!["Bundle.entry[1].resource"]);
    // A document about one patient holding another's entry.
    let mut doc = document(&a, "Amlodipine 5mg tablets");
    doc["entry"][1]["resource"] = statement(&b, "Amlodipine 5mg tablets");
    app.post("/fhir/Bundle", &doc)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
}

async fn unknown_patient(app: &TestApp) {
    let reply = app
        .post("/fhir/Bundle", &document("ghost", "Amlodipine 5mg tablets"))
        .await;
    assert!(
        reply.status.is_client_error(),
        "{}: {}",
        reply.status,
        reply.text
    );
    assert!(reply.text.contains("Patient/ghost"), "{}", reply.text);
    assert_eq!(
        expressions(&reply),
        vec!["Bundle.entry[0].resource.subject"]
    );
    app.get("/fhir/Bundle?type=document&_total=accurate")
        .await
        .expect(StatusCode::OK);
}

async fn access(app: &TestApp) {
    let pid = patient(app).await;
    let id = app.create(&document(&pid, "Amlodipine 5mg tablets")).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/fhir/Bundle/{id}");
    // A GP of another practice, with no relationship to the patient.
    let stranger = app.as_user("u-other", Role::Gp, Some("B86001"));
    let status = stranger.get(&path).await.status;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
        "{status}"
    );
    let found = stranger
        .get("/fhir/Bundle?type=document&_total=accurate")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(found["total"], 0, "{found}");
    // The patient's GP and the patient themselves read it.
    app.as_user("u-gp", Role::Gp, Some(GP))
        .get(&path)
        .await
        .expect(StatusCode::OK);
    app.as_patient(&pid).get(&path).await.expect(StatusCode::OK);
    // A patient may not store Bundles; a GP caring for the patient may.
    app.as_patient(&pid)
        .post("/fhir/Bundle", &document(&pid, "Amlodipine 5mg tablets"))
        .await
        .expect(StatusCode::FORBIDDEN);
    app.as_user("u-gp", Role::Gp, Some(GP))
        .post(
            "/fhir/Bundle",
            &collection(vec![statement(&pid, "Ramipril 5mg capsules")]),
        )
        .await
        .expect(StatusCode::CREATED);
    stranger
        .post(
            "/fhir/Bundle",
            &collection(vec![statement(&pid, "Ramipril 5mg capsules")]),
        )
        .await
        .expect(StatusCode::FORBIDDEN);
}

async fn consent(app: &TestApp) {
    let pid = patient(app).await;
    // Olanzapine is labelled PSY by SMR from its medicine; the document holding it is too.
    let doc = app.create(&document(&pid, "Olanzapine 10mg tablets")).await;
    let labels = doc.pointer("/meta/security").cloned().unwrap_or_default();
    assert!(labels.to_string().contains("\"PSY\""), "{doc}");
    let path = format!("/fhir/Bundle/{}", doc["id"].as_str().expect("id"));
    let pharmacist = app.as_user("u-ph", Role::CommunityPharmacist, Some(PHARMACY));
    pharmacist.get(&path).await.expect(StatusCode::OK);
    app.as_patient(&pid)
        .post(
            "/fhir/Consent",
            &support::consent_withholding_psy_from_pharmacies(&pid),
        )
        .await
        .expect(StatusCode::CREATED);
    pharmacist.get(&path).await.expect(StatusCode::NOT_FOUND);
    let search = pharmacist
        .get("/fhir/Bundle?type=document&_total=accurate")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(search["total"], 0, "{search}");
    app.as_user("u-gp", Role::Gp, Some(GP))
        .get(&path)
        .await
        .expect(StatusCode::OK);
}

async fn search(app: &TestApp) {
    let pid = patient(app).await;
    let doc = app.create(&document(&pid, "Amlodipine 5mg tablets")).await;
    let list = app
        .create(&collection(vec![statement(&pid, "Ramipril 5mg capsules")]))
        .await;
    let ids = |b: Value| -> Vec<String> {
        b["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
            .collect()
    };
    let found = app
        .get(&format!(
            "/fhir/Bundle?identifier=urn:ietf:rfc:3986|{DOC_ID}"
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(ids(found), vec![doc["id"].as_str().expect("id").to_owned()]);
    let found = app
        .get("/fhir/Bundle?type=collection")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(
        ids(found),
        vec![list["id"].as_str().expect("id").to_owned()]
    );
    let found = app
        .get("/fhir/Bundle?type=document&timestamp=ge2026-12-01")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(ids(found).len(), 1);
    // Entries are not indexed: parameters reaching into them are refused, not silently empty.
    app.get("/fhir/Bundle?composition=Composition/x")
        .await
        .expect(StatusCode::BAD_REQUEST);
    app.get("/fhir/Bundle?_include=Bundle:composition")
        .await
        .expect(StatusCode::BAD_REQUEST);
    // The CapabilityStatement lists Bundle with what it answers.
    let cs = app
        .get("/fhir/metadata")
        .await
        .expect(StatusCode::OK)
        .json();
    let bundle = cs["rest"][0]["resource"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["type"] == "Bundle")
        .cloned()
        .expect("Bundle listed");
    let params: Vec<&str> = bundle["searchParam"]
        .as_array()
        .expect("params")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        params.contains(&"identifier") && params.contains(&"type"),
        "{params:?}"
    );
    assert!(!params.contains(&"composition"), "{params:?}");
    assert!(bundle["interaction"].to_string().contains("\"create\""));
}

async fn transaction_at_base(app: &TestApp) {
    let pid = patient(app).await;
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:7d9e0f1a-2b3c-4d5e-8f6a-7b8c9d0e1f01",
         "resource": statement(&pid, "Amlodipine 5mg tablets"),
         "request": {"method": "POST", "url": "MedicationStatement"}}]});
    let reply = app.post("/fhir", &tx).await.expect(StatusCode::OK).json();
    assert_eq!(reply["type"], "transaction-response");
    let statements = app
        .get(&format!(
            "/fhir/MedicationStatement?subject=Patient/{pid}&_total=accurate"
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(statements["total"], 1);
    // A collection sent to the base is pointed at /Bundle.
    let reply = app
        .post("/fhir", &collection(vec![statement(&pid, "x")]))
        .await;
    assert!(reply.status.is_client_error());
    assert!(reply.text.contains("/Bundle"), "{}", reply.text);
}
