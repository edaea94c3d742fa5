//! The FHIR REST API end to end through the real router, on SQLite and PostgreSQL.

use crate::support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::fixture_order as medication_request;
use support::fixture_patient as patient;
use support::{Reply, TestApp, fixture};

backend_tests! {
    capability_statement_describes_what_is_served => capability_statement;
    create_read_vread_update_delete => crud_cycle;
    decimals_and_element_order_survive_storage => decimals_round_trip;
    if_match_guards_against_lost_updates => if_match;
    conditional_create_with_if_none_exist => conditional_create;
    json_patch_updates_a_resource => json_patch;
    bad_input_gets_operation_outcomes_and_writes_nothing => bad_input;
    nhs_number_is_unique_across_patients => nhs_number_unique;
    history_instance_type_and_paging => history;
    patient_everything_returns_the_record => everything;
}

fn count(reply: &Reply) -> usize {
    reply.json()["entry"].as_array().map_or(0, Vec::len)
}

async fn capability_statement(app: &TestApp) {
    let cs = app
        .get("/fhir/metadata")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    let types: Vec<&str> = cs["rest"][0]["resource"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["type"].as_str())
        .collect();
    assert!(types.contains(&"MedicationRequest") && types.contains(&"Provenance"));
    // Transaction and batch Bundles are processed at the base; collection and document
    // Bundles are stored at /Bundle.
    assert!(
        types.contains(&"Bundle"),
        "collection/document Bundles are stored"
    );
    let health = app.get("/healthz").await.expect(StatusCode::OK);
    assert_eq!(health.text, "ok");
}

async fn crud_cycle(app: &TestApp) {
    let pid = patient(app).await;
    let created = app
        .post("/fhir/MedicationRequest", &medication_request(&pid))
        .await
        .expect(StatusCode::CREATED);
    let mr = created.json();
    let id = mr["id"].as_str().expect("id").to_owned();
    assert_eq!(mr["meta"]["versionId"], "1");
    assert_eq!(created.header("etag").as_deref(), Some("W/\"1\""));
    assert_eq!(
        created.header("location"),
        Some(format!(
            "{}/MedicationRequest/{id}/_history/1",
            support::BASE
        ))
    );
    assert!(
        created
            .header("last-modified")
            .is_some_and(|d| d.ends_with("GMT"))
    );

    let read = app
        .get(&format!("/fhir/MedicationRequest/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(read.json(), mr);
    assert!(
        read.header("content-type")
            .is_some_and(|c| c.starts_with("application/fhir+json"))
    );

    let mut changed = mr.clone();
    changed["status"] = json!("on-hold");
    let updated = app
        .put(&format!("/fhir/MedicationRequest/{id}"), &changed)
        .await
        .expect(StatusCode::OK);
    assert_eq!(updated.json()["meta"]["versionId"], "2");
    assert_eq!(updated.header("etag").as_deref(), Some("W/\"2\""));

    let v1 = app
        .get(&format!("/fhir/MedicationRequest/{id}/_history/1"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(v1["status"], "active");
    let search = app
        .get("/fhir/MedicationRequest?status=on-hold")
        .await
        .expect(StatusCode::OK);
    assert_eq!(count(&search), 1, "search sees the update at once");

    app.delete(&format!("/fhir/MedicationRequest/{id}"))
        .await
        .expect(StatusCode::OK);
    app.get(&format!("/fhir/MedicationRequest/{id}"))
        .await
        .expect(StatusCode::GONE);
    let after = app
        .get("/fhir/MedicationRequest?status=on-hold")
        .await
        .expect(StatusCode::OK);
    assert_eq!(count(&after), 0, "deleted resources leave search");
    app.delete(&format!("/fhir/MedicationRequest/{id}"))
        .await
        .expect(StatusCode::NO_CONTENT);
    app.get("/fhir/MedicationRequest/does-not-exist")
        .await
        .expect(StatusCode::NOT_FOUND);
    app.get("/fhir/Banana/1")
        .await
        .expect(StatusCode::NOT_FOUND);

    // Update-as-create with a client id, then resurrect after delete.
    let mut own = medication_request(&pid);
    own["id"] = json!("client-chosen-1");
    app.put("/fhir/MedicationRequest/client-chosen-1", &own)
        .await
        .expect(StatusCode::CREATED);
    app.delete("/fhir/MedicationRequest/client-chosen-1")
        .await
        .expect(StatusCode::OK);
    let again = app
        .put("/fhir/MedicationRequest/client-chosen-1", &own)
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(again.json()["meta"]["versionId"], "3");
}

async fn decimals_round_trip(app: &TestApp) {
    let pid = patient(app).await;
    let sent = medication_request(&pid);
    let stored = app.create(&sent).await;
    let text = app
        .get(&format!(
            "/fhir/MedicationRequest/{}",
            stored["id"].as_str().unwrap_or_default()
        ))
        .await
        .text;
    assert!(text.contains("\"value\":1.0"), "decimal text kept: {text}");
    let mut back: Value = serde_json::from_str(&text).expect("json");
    let obj = back.as_object_mut().expect("object");
    obj.remove("id");
    obj.remove("meta");
    assert_eq!(back, sent, "nothing lost or added but id and meta");
    let stored: Value = serde_json::from_str(&text).expect("json");
    let keys: Vec<&str> = stored
        .as_object()
        .expect("object")
        .keys()
        .take(4)
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        vec!["resourceType", "id", "meta", "identifier"],
        "id and meta first, the rest as sent"
    );
}

async fn if_match(app: &TestApp) {
    let pid = patient(app).await;
    let mr = app.create(&medication_request(&pid)).await;
    let path = format!(
        "/fhir/MedicationRequest/{}",
        mr["id"].as_str().unwrap_or_default()
    );
    let body = mr.to_string();
    app.request(
        Method::PUT,
        &path,
        &[("if-match", "W/\"1\"")],
        Some(body.clone()),
    )
    .await
    .expect(StatusCode::OK);
    let stale = app
        .request(
            Method::PUT,
            &path,
            &[("if-match", "W/\"1\"")],
            Some(body.clone()),
        )
        .await;
    let stale = stale.expect(StatusCode::PRECONDITION_FAILED).json();
    assert_eq!(stale["resourceType"], "OperationOutcome");
    app.request(Method::DELETE, &path, &[("if-match", "W/\"1\"")], None)
        .await
        .expect(StatusCode::PRECONDITION_FAILED);
    app.request(Method::PUT, &path, &[("if-match", "banana")], Some(body))
        .await
        .expect(StatusCode::BAD_REQUEST);
    let current = app.get(&path).await.json();
    assert_eq!(current["meta"]["versionId"], "2");
}

async fn conditional_create(app: &TestApp) {
    let pid = patient(app).await;
    let mr = medication_request(&pid);
    let condition = "identifier=https://fhir.nhs.uk/Id/prescription-order-item-number|a54219b8-f741-4c47-b662-e4f8dfa49ab6";
    let first = app
        .request(
            Method::POST,
            "/fhir/MedicationRequest",
            &[("if-none-exist", condition)],
            Some(mr.to_string()),
        )
        .await;
    let first = first.expect(StatusCode::CREATED).json();
    let second = app
        .request(
            Method::POST,
            "/fhir/MedicationRequest",
            &[("if-none-exist", condition)],
            Some(mr.to_string()),
        )
        .await;
    let second = second.expect(StatusCode::OK).json();
    assert_eq!(
        first["id"], second["id"],
        "the existing resource is returned, not a duplicate"
    );
    app.create(&{
        let mut other = mr.clone();
        other["identifier"][0]["value"] = json!("second");
        other
    })
    .await;
    let all = app
        .get(&format!("/fhir/MedicationRequest?patient={pid}"))
        .await
        .json();
    assert_eq!(all["total"], 2);
    let bad = app
        .request(
            Method::POST,
            "/fhir/MedicationRequest",
            &[("if-none-exist", "nonsense=1")],
            Some(mr.to_string()),
        )
        .await;
    bad.expect(StatusCode::BAD_REQUEST);
}

async fn json_patch(app: &TestApp) {
    let pid = patient(app).await;
    let mr = app.create(&medication_request(&pid)).await;
    let path = format!(
        "/fhir/MedicationRequest/{}",
        mr["id"].as_str().unwrap_or_default()
    );
    let patch = json!([{"op": "replace", "path": "/status", "value": "stopped"}]).to_string();
    let patched = app
        .request(
            Method::PATCH,
            &path,
            &[("content-type", "application/json-patch+json")],
            Some(patch.clone()),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(patched["status"], "stopped");
    assert_eq!(patched["meta"]["versionId"], "2");
    app.request(
        Method::PATCH,
        &path,
        &[
            ("content-type", "application/json-patch+json"),
            ("if-match", "W/\"1\""),
        ],
        Some(patch),
    )
    .await
    .expect(StatusCode::PRECONDITION_FAILED);
    let invalid =
        json!([{"op": "replace", "path": "/status", "value": "not-a-status"}]).to_string();
    app.request(
        Method::PATCH,
        &path,
        &[("content-type", "application/json-patch+json")],
        Some(invalid),
    )
    .await
    .expect(StatusCode::UNPROCESSABLE_ENTITY);
    let wrong_type = json!([{"op": "remove", "path": "/status"}]).to_string();
    app.request(
        Method::PATCH,
        &path,
        &[("content-type", "application/fhir+json")],
        Some(wrong_type),
    )
    .await
    .expect(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(app.get(&path).await.json()["status"], "stopped");
}

async fn bad_input(app: &TestApp) {
    let pid = patient(app).await;
    let text = medication_request(&pid).to_string();
    let r = app
        .request(
            Method::POST,
            "/fhir/MedicationRequest",
            &[("content-type", "text/plain")],
            Some(text.clone()),
        )
        .await;
    assert_eq!(
        r.expect(StatusCode::UNSUPPORTED_MEDIA_TYPE).json()["resourceType"],
        "OperationOutcome"
    );
    app.request(
        Method::POST,
        "/fhir/MedicationRequest",
        &[],
        Some("{not json".into()),
    )
    .await
    .expect(StatusCode::BAD_REQUEST);
    app.request(
        Method::GET,
        "/fhir/metadata",
        &[("accept", "application/fhir+xml")],
        None,
    )
    .await
    .expect(StatusCode::NOT_ACCEPTABLE);

    let mut invalid = medication_request(&pid);
    invalid["status"] = json!("taken");
    invalid["dosageInstruction"][0]["timing"]["repeat"]["frequency"] = json!("four");
    let outcome = app
        .post("/fhir/MedicationRequest", &invalid)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    let expressions: Vec<&str> = outcome["issue"]
        .as_array()
        .expect("issues")
        .iter()
        .filter_map(|i| i["expression"][0].as_str())
        .collect();
    assert!(
        expressions.contains(&"MedicationRequest.status"),
        "{expressions:?}"
    );
    assert!(
        expressions.contains(&"MedicationRequest.dosageInstruction[0].timing.repeat.frequency"),
        "{expressions:?}"
    );

    let mut bad_nhs = fixture("patient.json");
    bad_nhs["identifier"][0]["value"] = json!("9990000019");
    let outcome = app
        .post("/fhir/Patient", &bad_nhs)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "Patient.identifier[0].value"
    );

    let wrong_type = app.post("/fhir/Patient", &medication_request(&pid)).await;
    wrong_type.expect(StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get("/fhir/MedicationRequest").await.json()["total"],
        0,
        "nothing was written"
    );

    let small = support::sqlite_app_with(smr_server::ServerConfig {
        max_body_bytes: 512,
        base_url: None,
        ..smr_server::ServerConfig::default()
    })
    .await;
    small
        .request(Method::POST, "/fhir/MedicationRequest", &[], Some(text))
        .await
        .expect(StatusCode::PAYLOAD_TOO_LARGE);
    small.finish().await;
}

async fn nhs_number_unique(app: &TestApp) {
    let first = patient(app).await;
    let conflict = app
        .post("/fhir/Patient", &fixture("patient.json"))
        .await
        .expect(StatusCode::CONFLICT)
        .json();
    // It says the number is taken, never by whom (another patient's id is not the writer's
    // to learn).
    let diagnostics = conflict["issue"][0]["diagnostics"]
        .as_str()
        .unwrap_or_default();
    assert!(diagnostics.contains("already held"), "{diagnostics}");
    assert!(!diagnostics.contains(&first), "{diagnostics}");
    // The holder may update itself, and a deleted patient releases the number.
    let mut same = app.get(&format!("/fhir/Patient/{first}")).await.json();
    same["gender"] = json!("unknown");
    app.put(&format!("/fhir/Patient/{first}"), &same)
        .await
        .expect(StatusCode::OK);
    app.delete(&format!("/fhir/Patient/{first}"))
        .await
        .expect(StatusCode::OK);
    app.post("/fhir/Patient", &fixture("patient.json"))
        .await
        .expect(StatusCode::CREATED);
}

async fn history(app: &TestApp) {
    let pid = patient(app).await;
    let mr = app.create(&medication_request(&pid)).await;
    let id = mr["id"].as_str().unwrap_or_default().to_owned();
    let mut current = mr.clone();
    for status in ["on-hold", "active", "completed"] {
        current["status"] = json!(status);
        current = app
            .put(&format!("/fhir/MedicationRequest/{id}"), &current)
            .await
            .expect(StatusCode::OK)
            .json();
    }
    app.delete(&format!("/fhir/MedicationRequest/{id}"))
        .await
        .expect(StatusCode::OK);
    let h = app
        .get(&format!("/fhir/MedicationRequest/{id}/_history"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(h["type"], "history");
    let entries = h["entry"].as_array().expect("entries");
    assert_eq!(entries.len(), 5);
    assert_eq!(entries[0]["request"]["method"], "DELETE");
    assert!(entries[0].get("resource").is_none());
    assert_eq!(entries[1]["resource"]["status"], "completed");
    assert_eq!(entries[4]["request"]["method"], "POST");

    // Page through type history two at a time while another write lands.
    let mut seen = Vec::new();
    let mut next = Some(format!(
        "{}/MedicationRequest/_history?_count=2",
        support::BASE
    ));
    let mut pages = 0;
    while let Some(url) = next {
        let page = app
            .get(&support::route(&url))
            .await
            .expect(StatusCode::OK)
            .json();
        for e in page["entry"].as_array().cloned().unwrap_or_default() {
            seen.push(
                e["response"]["etag"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        if pages == 0 {
            app.create(&medication_request(&pid)).await;
        }
        pages += 1;
        next = page["link"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
            .and_then(|l| l["url"].as_str())
            .map(str::to_owned);
    }
    assert_eq!(
        seen.len(),
        5,
        "older versions neither repeat nor vanish: {seen:?}"
    );
    app.get("/fhir/MedicationRequest/nope/_history")
        .await
        .expect(StatusCode::NOT_FOUND);
    let system = app
        .get("/fhir/_history?_count=100")
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(system["entry"].as_array().map_or(0, Vec::len) >= 7);
}

async fn everything(app: &TestApp) {
    let pid = patient(app).await;
    let other = {
        let mut p = fixture("patient.json");
        p["identifier"][0]["value"] = json!("9990000026");
        app.create(&p).await["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let med = app
        .create(&json!({
            "resourceType": "Medication",
            "code": {"coding": [{"system": "https://dmd.nhs.uk", "code": "39720311000001101"}]}
        }))
        .await;
    let mut mr = medication_request(&pid);
    mr.as_object_mut()
        .map(|o| o.remove("medicationCodeableConcept"));
    mr["medicationReference"] =
        json!({"reference": format!("Medication/{}", med["id"].as_str().unwrap_or_default())});
    app.create(&mr).await;
    app.create(&json!({
        "resourceType": "AllergyIntolerance",
        "patient": {"reference": format!("Patient/{pid}")},
        "code": {"text": "penicillin"}
    }))
    .await;
    app.create(&medication_request(&other)).await;
    let bundle = app
        .get(&format!("/fhir/Patient/{pid}/$everything"))
        .await
        .expect(StatusCode::OK)
        .json();
    let mut types: Vec<&str> = bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["resource"]["resourceType"].as_str())
        .collect();
    types.sort_unstable();
    // Each entry of the record (Patient, MedicationRequest, AllergyIntolerance) has the
    // Provenance SMR wrote with it, which belongs to the record too; the other patient's does not.
    assert_eq!(
        types,
        vec![
            "AllergyIntolerance",
            "Medication",
            "MedicationRequest",
            "Patient",
            "Provenance",
            "Provenance",
            "Provenance"
        ]
    );
    app.get("/fhir/Patient/nobody/$everything")
        .await
        .expect(StatusCode::NOT_FOUND);
}
