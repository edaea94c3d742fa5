//! Write integrity under races and bad references, on SQLite and PostgreSQL: conditional
//! creates and updates never duplicate, every entry belongs to a patient SMR holds, and history says which
//! interaction made each version.

use crate::support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::fixture_patient as patient;
use support::{TestApp, fixture};

backend_tests! {
    simultaneous_conditional_creates_make_one_resource => simultaneous_conditional_creates;
    simultaneous_conditional_creates_in_transactions_make_one_resource => simultaneous_conditional_transactions;
    a_reference_to_a_patient_smr_does_not_hold_is_rejected => ghost_patient_rejected;
    a_patient_created_in_the_same_transaction_may_be_referenced => patient_in_same_transaction;
    history_of_a_patch_says_patch => patch_history_method;
    conditional_update_creates_updates_and_refuses_ambiguity => conditional_update_semantics;
    simultaneous_conditional_updates_make_one_resource => simultaneous_conditional_updates;
    conditional_update_in_a_transaction => conditional_update_in_transaction;
}

const CONDITION: &str = "identifier=https://fhir.nhs.uk/Id/prescription-order-item-number|race-1";
const RACERS: usize = 20;

fn medication_request(patient_id: &str) -> Value {
    let mut mr = support::fixture_order(patient_id);
    mr["identifier"] = json!([{
        "system": "https://fhir.nhs.uk/Id/prescription-order-item-number",
        "value": "race-1"
    }]);
    mr
}

async fn matches(app: &TestApp) -> usize {
    let found = app
        .get(&format!("/fhir/MedicationRequest?{CONDITION}"))
        .await
        .expect(StatusCode::OK)
        .json();
    found["entry"].as_array().map_or(0, Vec::len)
}

async fn simultaneous_conditional_creates(app: &TestApp) {
    let pid = patient(app).await;
    let body = medication_request(&pid).to_string();
    let racers = (0..RACERS).map(|_| {
        let client = app.client.clone();
        let body = body.clone();
        tokio::spawn(async move {
            client
                .request(
                    Method::POST,
                    "/fhir/MedicationRequest",
                    &[("if-none-exist", CONDITION)],
                    Some(body),
                )
                .await
                .status
        })
    });
    let mut created = 0;
    for racer in racers {
        match racer.await.expect("racer") {
            StatusCode::CREATED => created += 1,
            StatusCode::OK => {}
            other => panic!("a conditional create answered {other}"),
        }
    }
    assert_eq!(created, 1, "exactly one of {RACERS} racers creates");
    assert_eq!(matches(app).await, 1, "no duplicate prescription");
    // And the condition keeps working afterwards (duplicates would make it 412 for ever).
    app.request(
        Method::POST,
        "/fhir/MedicationRequest",
        &[("if-none-exist", CONDITION)],
        Some(body),
    )
    .await
    .expect(StatusCode::OK);
}

async fn simultaneous_conditional_transactions(app: &TestApp) {
    let pid = patient(app).await;
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{
            "fullUrl": "urn:uuid:6f1b9c1e-0d3c-4f43-9d7e-5b8f7e0c2a11",
            "resource": medication_request(&pid),
            "request": {"method": "POST", "url": "MedicationRequest", "ifNoneExist": CONDITION}
        }]
    })
    .to_string();
    let racers = (0..RACERS).map(|_| {
        let client = app.client.clone();
        let bundle = bundle.clone();
        tokio::spawn(async move {
            let reply = client
                .request(Method::POST, "/fhir", &[], Some(bundle))
                .await
                .expect(StatusCode::OK);
            reply.json()["entry"][0]["response"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
    });
    let mut created = 0;
    for racer in racers {
        let status = racer.await.expect("racer");
        if status.starts_with("201") {
            created += 1;
        } else {
            assert!(status.starts_with("200"), "entry answered {status}");
        }
    }
    assert_eq!(created, 1, "exactly one transaction creates");
    assert_eq!(matches(app).await, 1, "no duplicate prescription");
}

async fn ghost_patient_rejected(app: &TestApp) {
    let ghost = medication_request("ghost");
    let reply = app
        .post("/fhir/MedicationRequest", &ghost)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    let outcome = reply.json();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(outcome["issue"][0]["code"], "not-found");
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "MedicationRequest.subject"
    );
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .is_some_and(|d| d.contains("Patient/ghost")),
        "{outcome}"
    );

    // An update (create-on-update) is checked the same way.
    let mut put = ghost.clone();
    put["id"] = json!("mr-ghost");
    app.put("/fhir/MedicationRequest/mr-ghost", &put)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);

    // In a transaction, the whole transaction fails and nothing is written.
    let pid = patient(app).await;
    let mut good = medication_request(&pid);
    good["identifier"][0]["value"] = json!("good-one");
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": good, "request": {"method": "POST", "url": "MedicationRequest"}},
            {"resource": ghost, "request": {"method": "POST", "url": "MedicationRequest"}}
        ]
    });
    app.post("/fhir", &bundle)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    let all = app
        .get("/fhir/MedicationRequest?_summary=count")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(all["total"], 0, "nothing written by a failed transaction");

    // A deleted patient holds no new entries either.
    app.delete(&format!("/fhir/Patient/{pid}"))
        .await
        .expect(StatusCode::OK);
    app.post("/fhir/MedicationRequest", &medication_request(&pid))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
}

async fn patient_in_same_transaction(app: &TestApp) {
    let patient_url = "urn:uuid:0b7f8a9e-3c51-4f0e-8a55-1d2b3c4d5e6f";
    let mut mr = medication_request("placeholder");
    mr["subject"]["reference"] = json!(patient_url);
    // The medicine comes first: the order of entries must not matter.
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": mr, "request": {"method": "POST", "url": "MedicationRequest"}},
            {"fullUrl": patient_url, "resource": fixture("patient.json"),
             "request": {"method": "POST", "url": "Patient"}}
        ]
    });
    let reply = app
        .post("/fhir", &bundle)
        .await
        .expect(StatusCode::OK)
        .json();
    for entry in reply["entry"].as_array().expect("entries") {
        assert!(
            entry["response"]["status"]
                .as_str()
                .is_some_and(|s| s.starts_with("201")),
            "{entry}"
        );
    }
}

async fn patch_history_method(app: &TestApp) {
    let pid = patient(app).await;
    let mr = app.create(&medication_request(&pid)).await;
    let path = format!("/fhir/MedicationRequest/{}", mr["id"].as_str().expect("id"));
    let patch = json!([{"op": "replace", "path": "/status", "value": "stopped"}]).to_string();
    app.request(
        Method::PATCH,
        &path,
        &[("content-type", "application/json-patch+json")],
        Some(patch),
    )
    .await
    .expect(StatusCode::OK);
    let mut put = app.get(&path).await.expect(StatusCode::OK).json();
    put["status"] = json!("active");
    app.put(&path, &put).await.expect(StatusCode::OK);

    let history = app
        .get(&format!("{path}/_history"))
        .await
        .expect(StatusCode::OK)
        .json();
    let methods: Vec<(&str, &str)> = history["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["resource"]["meta"]["versionId"].as_str().unwrap_or(""),
                e["request"]["method"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(methods, vec![("3", "PUT"), ("2", "PATCH"), ("1", "POST")]);
}

async fn conditional_put(app: &TestApp, condition: &str, body: &Value) -> support::Reply {
    app.request(
        Method::PUT,
        &format!("/fhir/MedicationRequest?{condition}"),
        &[],
        Some(body.to_string()),
    )
    .await
}

async fn conditional_update_semantics(app: &TestApp) {
    let pid = patient(app).await;
    let mut mr = medication_request(&pid);
    // No match: created (201), with a server-assigned id.
    let created = conditional_put(app, CONDITION, &mr)
        .await
        .expect(StatusCode::CREATED)
        .json();
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["meta"]["versionId"], "1");
    // One match: that resource is updated.
    mr["status"] = json!("on-hold");
    let updated = conditional_put(app, CONDITION, &mr)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(updated["id"], id.as_str());
    assert_eq!(updated["meta"]["versionId"], "2");
    assert_eq!(updated["status"], "on-hold");
    // The same with the matching id in the body.
    mr["id"] = json!(id);
    conditional_put(app, CONDITION, &mr)
        .await
        .expect(StatusCode::OK);
    // An id that is not the match: 400.
    mr["id"] = json!("someone-else");
    let reply = conditional_put(app, CONDITION, &mr).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.json()["resourceType"], "OperationOutcome");
    // Criteria that match several: 412, nothing written.
    let mut other = medication_request(&pid);
    other["identifier"][0]["value"] = json!("race-2");
    app.create(&other).await;
    let both = format!("subject=Patient/{pid}");
    let reply = conditional_put(app, &both, &medication_request(&pid)).await;
    assert_eq!(
        reply.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        reply.text
    );
    // No criteria: 400, not an update of everything.
    let reply = app
        .request(
            Method::PUT,
            "/fhir/MedicationRequest",
            &[],
            Some(medication_request(&pid).to_string()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(matches(app).await, 1);
}

async fn simultaneous_conditional_updates(app: &TestApp) {
    let pid = patient(app).await;
    let body = medication_request(&pid);
    let racers = (0..RACERS).map(|_| {
        let client = app.client.clone();
        let body = body.to_string();
        tokio::spawn(async move {
            client
                .request(
                    Method::PUT,
                    &format!("/fhir/MedicationRequest?{CONDITION}"),
                    &[],
                    Some(body),
                )
                .await
        })
    });
    let mut created = 0;
    for racer in racers {
        let reply = racer.await.expect("racer");
        match reply.status {
            StatusCode::CREATED => created += 1,
            StatusCode::OK => {}
            other => panic!("a conditional update answered {other}: {}", reply.text),
        }
    }
    assert_eq!(created, 1, "exactly one of {RACERS} racers creates");
    assert_eq!(matches(app).await, 1, "no duplicate prescription");
    let found = app
        .get(&format!("/fhir/MedicationRequest?{CONDITION}"))
        .await
        .json();
    let id = found["entry"][0]["resource"]["id"].as_str().expect("id");
    let history = app
        .get(&format!("/fhir/MedicationRequest/{id}/_history?_count=100"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(
        history["entry"].as_array().map_or(0, Vec::len),
        RACERS,
        "every racer's write is a version of the one resource"
    );
}

async fn conditional_update_in_transaction(app: &TestApp) {
    let pid = patient(app).await;
    let entry = |status: &str| {
        let mut mr = medication_request(&pid);
        mr["status"] = json!(status);
        json!({
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{
                "resource": mr,
                "request": {"method": "PUT", "url": format!("MedicationRequest?{CONDITION}")}
            }]
        })
    };
    let first = app
        .post("/fhir", &entry("active"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(
        first["entry"][0]["response"]["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("201")),
        "{first}"
    );
    let second = app
        .post("/fhir", &entry("stopped"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(
        second["entry"][0]["response"]["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("200")),
        "{second}"
    );
    assert_eq!(matches(app).await, 1);
}
