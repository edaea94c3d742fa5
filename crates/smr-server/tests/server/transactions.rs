//! Transaction and batch Bundles, and concurrent writers, on SQLite and PostgreSQL.

use crate::support;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::{TestApp, fixture};

backend_tests! {
    transaction_rewrites_placeholders_and_commits_together => transaction_commits;
    failed_transaction_changes_nothing => transaction_all_or_nothing;
    duplicate_entries_for_one_resource_are_rejected => transaction_duplicates;
    if_match_is_honoured_inside_transactions => transaction_if_match;
    transaction_conditional_create_and_reads => transaction_conditional;
    batch_entries_succeed_or_fail_alone => batch;
    concurrent_if_match_writers_never_lose_an_update => concurrent_writers;
    concurrent_writes_fail_alone => concurrent_failures_isolated;
}

fn patient_entry(full_url: &str, nhs: &str) -> Value {
    let mut p = fixture("patient.json");
    p["identifier"][0]["value"] = json!(nhs);
    json!({"fullUrl": full_url, "resource": p, "request": {"method": "POST", "url": "Patient"}})
}

fn order_entry(patient_ref: &str) -> Value {
    let mut mr = fixture("medication-request.json");
    mr["subject"]["reference"] = json!(patient_ref);
    json!({"fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()), "resource": mr, "request": {"method": "POST", "url": "MedicationRequest"}})
}

fn bundle(kind: &str, entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": kind, "entry": entries})
}

async fn total(app: &TestApp, query: &str) -> i64 {
    app.get(&format!("/fhir/{query}"))
        .await
        .expect(StatusCode::OK)
        .json()["total"]
        .as_i64()
        .unwrap_or(-1)
}

async fn transaction_commits(app: &TestApp) {
    let placeholder = "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a";
    let tx = bundle(
        "transaction",
        vec![
            order_entry(placeholder),
            patient_entry(placeholder, "9990000018"),
            order_entry(placeholder),
        ],
    );
    let reply = app.post("/fhir", &tx).await.expect(StatusCode::OK).json();
    assert_eq!(reply["type"], "transaction-response");
    let entries = reply["entry"].as_array().expect("entries");
    assert_eq!(entries.len(), 3);
    let patient_id = entries[1]["resource"]["id"]
        .as_str()
        .expect("patient id")
        .to_owned();
    for e in entries {
        assert_eq!(e["response"]["status"], "201 Created");
        assert!(
            e["response"]["location"]
                .as_str()
                .is_some_and(|l| l.ends_with("/_history/1"))
        );
    }
    assert_eq!(
        entries[0]["resource"]["subject"]["reference"],
        format!("Patient/{patient_id}")
    );
    assert_eq!(
        total(app, &format!("MedicationRequest?patient={patient_id}")).await,
        2
    );
}

async fn transaction_all_or_nothing(app: &TestApp) {
    let placeholder = "urn:uuid:0b5a4c6e-3f49-4a8e-9d5e-1f2a3b4c5d6e";
    let mut bad = order_entry(placeholder);
    bad["resource"]["intent"] = json!("wish");
    let tx = bundle(
        "transaction",
        vec![
            patient_entry(placeholder, "9990000018"),
            order_entry(placeholder),
            bad,
        ],
    );
    let outcome = app
        .post("/fhir", &tx)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "Bundle.entry[2].resource.intent"
    );
    assert_eq!(total(app, "Patient").await, 0);
    assert_eq!(total(app, "MedicationRequest").await, 0);

    // A conflict in the last entry (an NHS number already held) also undoes the earlier ones.
    app.create(&fixture("patient.json")).await;
    let tx = bundle(
        "transaction",
        vec![
            order_entry("urn:uuid:7d6b3f9e-0c1a-4b2d-8e3f-a1b2c3d4e5f6"),
            patient_entry(
                "urn:uuid:7d6b3f9e-0c1a-4b2d-8e3f-a1b2c3d4e5f6",
                "9990000018",
            ),
        ],
    );
    app.post("/fhir", &tx).await.expect(StatusCode::CONFLICT);
    assert_eq!(total(app, "MedicationRequest").await, 0);

    app.post(
        "/fhir",
        &json!({"resourceType": "Bundle", "type": "collection"}),
    )
    .await
    .expect(StatusCode::BAD_REQUEST);
    app.post("/fhir", &fixture("patient.json"))
        .await
        .expect(StatusCode::BAD_REQUEST);
}

async fn transaction_duplicates(app: &TestApp) {
    let p = app.create(&fixture("patient.json")).await;
    let id = p["id"].as_str().unwrap_or_default();
    let put = json!({"resource": p, "request": {"method": "PUT", "url": format!("Patient/{id}")}});
    let delete = json!({"request": {"method": "DELETE", "url": format!("Patient/{id}")}});
    let reply = app
        .post("/fhir", &bundle("transaction", vec![put, delete]))
        .await
        .expect(StatusCode::BAD_REQUEST)
        .json();
    assert!(
        reply["issue"][0]["diagnostics"]
            .as_str()
            .unwrap_or_default()
            .contains("more than one entry")
    );
    assert_eq!(
        app.get(&format!("/fhir/Patient/{id}"))
            .await
            .expect(StatusCode::OK)
            .json()["meta"]["versionId"],
        "1"
    );
}

async fn transaction_if_match(app: &TestApp) {
    let p = app.create(&fixture("patient.json")).await;
    let id = p["id"].as_str().unwrap_or_default().to_owned();
    let mut changed = p.clone();
    changed["gender"] = json!("other");
    let stale = json!({"resource": changed, "request": {"method": "PUT", "url": format!("Patient/{id}"), "ifMatch": "W/\"7\""}});
    let tx = bundle(
        "transaction",
        vec![order_entry(&format!("Patient/{id}")), stale],
    );
    app.post("/fhir", &tx)
        .await
        .expect(StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        total(app, "MedicationRequest").await,
        0,
        "the whole transaction was rolled back"
    );
    let fresh = json!({"resource": changed, "request": {"method": "PUT", "url": format!("Patient/{id}"), "ifMatch": "W/\"1\""}});
    let reply = app
        .post("/fhir", &bundle("transaction", vec![fresh]))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(reply["entry"][0]["response"]["etag"], "W/\"2\"");
}

async fn transaction_conditional(app: &TestApp) {
    let existing = app.create(&fixture("patient.json")).await;
    let id = existing["id"].as_str().unwrap_or_default().to_owned();
    let mut conditional = patient_entry(
        "urn:uuid:1c9e7a52-3b4d-4f6a-9e8b-0d1c2b3a4f5e",
        "9990000018",
    );
    conditional["request"]["ifNoneExist"] =
        json!("identifier=https://fhir.nhs.uk/Id/nhs-number|9990000018");
    let read = json!({"request": {"method": "GET", "url": format!("Patient/{id}")}});
    let search = json!({"request": {"method": "GET", "url": "MedicationRequest?status=active"}});
    let reply = app
        .post(
            "/fhir",
            &bundle(
                "transaction",
                vec![
                    conditional,
                    order_entry("urn:uuid:1c9e7a52-3b4d-4f6a-9e8b-0d1c2b3a4f5e"),
                    read,
                    search,
                ],
            ),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    let entries = reply["entry"].as_array().expect("entries");
    assert_eq!(
        entries[0]["response"]["status"], "200 OK",
        "the existing patient was matched"
    );
    assert_eq!(
        entries[1]["resource"]["subject"]["reference"],
        format!("Patient/{id}"),
        "placeholder → existing id"
    );
    assert_eq!(entries[2]["resource"]["id"], id.as_str());
    assert_eq!(
        entries[3]["resource"]["total"], 1,
        "reads see the transaction's writes"
    );
    assert_eq!(total(app, "Patient").await, 1);
}

async fn batch(app: &TestApp) {
    let p = app.create(&fixture("patient.json")).await;
    let pid = p["id"].as_str().unwrap_or_default().to_owned();
    let mut bad = order_entry(&format!("Patient/{pid}"));
    bad["resource"]["status"] = json!("maybe");
    let reply = app
        .post(
            "/fhir",
            &bundle(
                "batch",
                vec![
                    order_entry(&format!("Patient/{pid}")),
                    bad,
                    json!({"request": {"method": "GET", "url": "Patient/nope"}}),
                ],
            ),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    let entries = reply["entry"].as_array().expect("entries");
    assert_eq!(reply["type"], "batch-response");
    assert_eq!(entries[0]["response"]["status"], "201 Created");
    assert_eq!(entries[1]["response"]["status"], "422 Unprocessable Entity");
    assert_eq!(
        entries[1]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert_eq!(entries[2]["response"]["status"], "404 Not Found");
    assert_eq!(total(app, "MedicationRequest").await, 1);
}

/// Many writers update one MedicationRequest, each with the version it read in `If-Match`.
/// Every write either lands as its own version or gets 412; the history holds exactly the
/// successful ones, in order, and nothing is lost.
async fn concurrent_writers(app: &TestApp) {
    let p = app.create(&fixture("patient.json")).await;
    let mut mr = fixture("medication-request.json");
    mr["subject"]["reference"] = json!(format!("Patient/{}", p["id"].as_str().unwrap_or_default()));
    let created = app.create(&mr).await;
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let path = Arc::new(format!("/fhir/MedicationRequest/{id}"));
    let client = app.client.clone();
    let writers = 16;
    let rounds = 5;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let app = client.clone();
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut stale) = (0, 0);
            for round in 0..rounds {
                let current = app.get(&path).await.json();
                let version = current["meta"]["versionId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let mut next = current.clone();
                next["note"] = json!([{"text": format!("writer {writer} round {round}")}]);
                let tag = format!("W/\"{version}\"");
                let reply = app
                    .request(
                        Method::PUT,
                        &path,
                        &[("if-match", tag.as_str())],
                        Some(next.to_string()),
                    )
                    .await;
                match reply.status {
                    StatusCode::OK => ok += 1,
                    StatusCode::PRECONDITION_FAILED => stale += 1,
                    other => panic!("unexpected {other}: {}", reply.text),
                }
            }
            (ok, stale)
        }));
    }
    let mut successes = 0;
    let mut failures = 0;
    for t in tasks {
        let (ok, stale) = t.await.expect("writer task");
        successes += ok;
        failures += stale;
    }
    assert_eq!(successes + failures, writers * rounds);
    assert!(successes >= 1);
    let current = app.get(&path).await.json();
    assert_eq!(
        current["meta"]["versionId"],
        (1 + successes).to_string(),
        "every success is its own version"
    );
    let history = app
        .get(&format!("{path}/_history?_count=1000"))
        .await
        .json();
    let versions: Vec<i64> = history["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| {
            e["resource"]["meta"]["versionId"]
                .as_str()
                .and_then(|v| v.parse().ok())
        })
        .collect();
    let expected: Vec<i64> = (1..=1 + successes as i64).rev().collect();
    assert_eq!(versions, expected, "history is complete and ordered");
}

/// Writes arriving together (on SQLite they share one group commit) succeed or fail alone: an
/// invalid one among them changes nothing for the others.
async fn concurrent_failures_isolated(app: &TestApp) {
    let p = app.create(&fixture("patient.json")).await;
    let patient = format!("Patient/{}", p["id"].as_str().unwrap_or_default());
    let mut tasks = Vec::new();
    for n in 0..40 {
        let client = app.client.clone();
        let mut mr = fixture("medication-request.json");
        mr["subject"]["reference"] = json!(patient);
        mr["identifier"][0]["value"] = json!(format!("order-{n}"));
        if n % 5 == 0 {
            mr["status"] = json!("not-a-status");
        }
        tasks.push(tokio::spawn(async move {
            client.post("/fhir/MedicationRequest", &mr).await.status
        }));
    }
    let mut created = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.expect("task") {
            StatusCode::CREATED => created += 1,
            StatusCode::UNPROCESSABLE_ENTITY => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((created, refused), (32, 8));
    assert_eq!(total(app, "MedicationRequest").await, 32);
}
