//! `_summary` and `_elements` (http://hl7.org/fhir/R4/search.html#summary, #elements) on read,
//! vread, search and history, on SQLite and PostgreSQL.

use crate::support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::{TestApp, fixture, route};

backend_tests! {
    summary_true_keeps_summary_elements => summary_true;
    summary_text_keeps_text_and_mandatory_elements => summary_text;
    summary_data_removes_text => summary_data;
    summary_count_returns_only_the_total => summary_count;
    summary_false_returns_everything_untagged => summary_false;
    elements_keep_listed_and_mandatory_elements => elements;
    every_subsetted_resource_is_tagged_and_paging_keeps_the_subset => subsetted_and_paging;
    bad_summary_mode_is_400 => bad_mode;
    capability_statement_lists_summary_and_elements => capability;
}

const SUBSETTED_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

/// A patient and `n` of their orders, each with narrative and a note; returns the patient id.
async fn record(app: &TestApp, n: usize) -> String {
    let patient = app.create(&fixture("patient.json")).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for _ in 0..n {
        let mut mr = fixture("medication-request.json");
        mr["subject"]["reference"] = json!(format!("Patient/{patient}"));
        mr["text"] = json!({
            "status": "generated",
            "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Paracetamol 500mg tablets</p></div>"
        });
        mr["note"] = json!([{"text": "Take with food"}]);
        mr.as_object_mut().map(|o| o.remove("identifier"));
        app.create(&mr).await;
    }
    patient
}

async fn first_order(app: &TestApp, patient: &str) -> String {
    let bundle = get(
        app,
        &format!("/fhir/MedicationRequest?subject=Patient/{patient}"),
    )
    .await;
    bundle["entry"][0]["resource"]["id"]
        .as_str()
        .expect("an order")
        .to_owned()
}

async fn get(app: &TestApp, path: &str) -> Value {
    app.get(path).await.expect(StatusCode::OK).json()
}

/// The element names of a resource, sorted (stored element order is the client's).
fn keys(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    keys
}

fn sorted<'a>(names: &[&'a str]) -> Vec<&'a str> {
    let mut names = names.to_vec();
    names.sort_unstable();
    names
}

fn subsetted(v: &Value) -> bool {
    v["meta"]["tag"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["system"] == SUBSETTED_SYSTEM && t["code"] == "SUBSETTED")
}

fn resources(bundle: &Value) -> Vec<&Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("resource"))
        .collect()
}

async fn summary_true(app: &TestApp) {
    let patient = record(app, 1).await;
    let id = first_order(app, &patient).await;
    let read = get(app, &format!("/fhir/MedicationRequest/{id}?_summary=true")).await;
    // isSummary in the R4 MedicationRequest definition, mandatory elements, id and meta; not
    // text, note, dosageInstruction, dispenseRequest, category (not summary elements).
    assert_eq!(
        keys(&read),
        sorted(&[
            "resourceType",
            "id",
            "meta",
            "status",
            "intent",
            "medicationCodeableConcept",
            "subject",
            "authoredOn"
        ])
    );
    assert!(subsetted(&read), "{read}");
    assert_eq!(read["meta"]["versionId"], "1");

    let bundle = get(
        app,
        &format!("/fhir/MedicationRequest?subject=Patient/{patient}&_summary=true&_include=MedicationRequest:subject"),
    )
    .await;
    let found = resources(&bundle);
    assert_eq!(found.len(), 2);
    for r in found {
        assert!(subsetted(r), "{r}");
        assert!(r.get("text").is_none() && r.get("note").is_none(), "{r}");
    }
    // The included Patient is cut down by its own definition: name is a summary element.
    let p = &bundle["entry"][1]["resource"];
    assert_eq!(p["resourceType"], "Patient");
    assert!(
        p.get("name").is_some() && p.get("birthDate").is_some(),
        "{p}"
    );
}

async fn summary_text(app: &TestApp) {
    let patient = record(app, 1).await;
    let id = first_order(app, &patient).await;
    let read = get(app, &format!("/fhir/MedicationRequest/{id}?_summary=text")).await;
    assert_eq!(
        keys(&read),
        sorted(&[
            "resourceType",
            "id",
            "meta",
            "text",
            "status",
            "intent",
            "medicationCodeableConcept",
            "subject"
        ])
    );
    assert!(subsetted(&read));
    let bundle = get(
        app,
        &format!("/fhir/MedicationRequest?subject=Patient/{patient}&_summary=text"),
    )
    .await;
    assert_eq!(resources(&bundle)[0], &read);
}

async fn summary_data(app: &TestApp) {
    let patient = record(app, 1).await;
    let id = first_order(app, &patient).await;
    let full = get(app, &format!("/fhir/MedicationRequest/{id}")).await;
    let vread = get(
        app,
        &format!("/fhir/MedicationRequest/{id}/_history/1?_summary=data"),
    )
    .await;
    assert!(vread.get("text").is_none());
    assert!(subsetted(&vread));
    let mut expected = full.clone();
    expected.as_object_mut().map(|o| o.remove("text"));
    expected.as_object_mut().map(|o| o.remove("meta"));
    let mut got = vread.clone();
    got.as_object_mut().map(|o| o.remove("meta"));
    assert_eq!(got, expected, "everything but text is kept");
}

async fn summary_count(app: &TestApp) {
    let patient = record(app, 3).await;
    let bundle = get(
        app,
        &format!("/fhir/MedicationRequest?subject=Patient/{patient}&_summary=count"),
    )
    .await;
    assert_eq!(bundle["total"], 3);
    assert!(bundle.get("entry").is_none(), "{bundle}");
    // Count is a search mode: a read has nothing to count.
    let id = first_order(app, &patient).await;
    app.get(&format!("/fhir/MedicationRequest/{id}?_summary=count"))
        .await
        .expect(StatusCode::BAD_REQUEST);
}

async fn summary_false(app: &TestApp) {
    let patient = record(app, 1).await;
    let id = first_order(app, &patient).await;
    let full = get(app, &format!("/fhir/MedicationRequest/{id}")).await;
    let same = get(app, &format!("/fhir/MedicationRequest/{id}?_summary=false")).await;
    assert_eq!(full, same);
    assert!(!subsetted(&same));
    let bundle = get(
        app,
        &format!("/fhir/MedicationRequest?subject=Patient/{patient}&_summary=false"),
    )
    .await;
    assert_eq!(resources(&bundle)[0], &full);
}

async fn elements(app: &TestApp) {
    let patient = record(app, 1).await;
    let id = first_order(app, &patient).await;
    let expected = sorted(&[
        "resourceType",
        "id",
        "meta",
        "status",
        "intent",
        "medicationCodeableConcept",
        "subject",
        "note",
        "dispenseRequest",
    ]);
    let read = get(
        app,
        &format!("/fhir/MedicationRequest/{id}?_elements=note,dispenseRequest"),
    )
    .await;
    assert_eq!(keys(&read), expected);
    assert!(subsetted(&read));
    let bundle = get(
        app,
        &format!(
            "/fhir/MedicationRequest?subject=Patient/{patient}&_elements=note,dispenseRequest"
        ),
    )
    .await;
    assert_eq!(keys(resources(&bundle)[0]), expected);
    // Unknown or nested names are refused rather than silently returning less.
    for bad in ["nonsense", "dosageInstruction.text"] {
        app.get(&format!("/fhir/MedicationRequest/{id}?_elements={bad}"))
            .await
            .expect(StatusCode::BAD_REQUEST);
    }
}

async fn subsetted_and_paging(app: &TestApp) {
    let patient = record(app, 3).await;
    let mut url =
        format!("/fhir/MedicationRequest?subject=Patient/{patient}&_count=1&_summary=true");
    let mut pages = 0;
    loop {
        let bundle = get(app, &url).await;
        pages += 1;
        let found = resources(&bundle);
        assert_eq!(found.len(), 1, "{bundle}");
        assert!(subsetted(found[0]) && found[0].get("note").is_none());
        let links = bundle["link"].as_array().cloned().unwrap_or_default();
        let next = links.iter().find(|l| l["relation"] == "next");
        let Some(next) = next else { break };
        let next = next["url"].as_str().expect("url");
        assert!(next.contains("_summary=true"), "{next}");
        url = route(next);
        assert!(pages < 5, "paging does not end");
    }
    assert_eq!(pages, 3);

    // History, instance and type level; a deleted version stays an entry without a resource.
    let id = first_order(app, &patient).await;
    let history = get(
        app,
        &format!("/fhir/MedicationRequest/{id}/_history?_summary=true"),
    )
    .await;
    for r in resources(&history) {
        assert!(subsetted(r) && r.get("text").is_none(), "{r}");
    }
    let history = get(app, "/fhir/MedicationRequest/_history?_elements=note").await;
    let found = resources(&history);
    assert_eq!(found.len(), 3);
    for r in found {
        assert!(subsetted(r) && r.get("note").is_some() && r.get("text").is_none());
    }
    let history = get(app, "/fhir/_history?_summary=data").await;
    assert!(resources(&history).iter().all(|r| subsetted(r)));
    app.get("/fhir/_history?_elements=note")
        .await
        .expect(StatusCode::BAD_REQUEST);
}

async fn bad_mode(app: &TestApp) {
    let patient = record(app, 1).await;
    let id = first_order(app, &patient).await;
    for path in [
        format!("/fhir/MedicationRequest/{id}?_summary=maybe"),
        format!("/fhir/MedicationRequest/{id}/_history/1?_summary=maybe"),
        format!("/fhir/MedicationRequest/{id}/_history?_summary=maybe"),
        "/fhir/MedicationRequest?_summary=maybe".to_owned(),
    ] {
        let reply = app.get(&path).await.expect(StatusCode::BAD_REQUEST);
        let outcome = reply.json();
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        assert!(
            outcome["issue"][0]["diagnostics"]
                .as_str()
                .is_some_and(|d| d.contains("_summary")),
            "{outcome}"
        );
    }
    // Not dropped under lenient handling either: it would return more than was asked for.
    app.request(
        Method::GET,
        "/fhir/MedicationRequest?_summary=maybe",
        &[("prefer", "handling=lenient")],
        None,
    )
    .await
    .expect(StatusCode::BAD_REQUEST);
}

async fn capability(app: &TestApp) {
    let cs = get(app, "/fhir/metadata").await;
    let names: Vec<&str> = cs["rest"][0]["searchParam"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"_summary") && names.contains(&"_elements"),
        "{names:?}"
    );
}
