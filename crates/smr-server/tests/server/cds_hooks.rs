//! CDS Hooks pharmacogenomics: outside-call intake, order-select/order-sign/patient-view
//! cards, feedback, and the re-check on new results, on SQLite and PostgreSQL.

use crate::support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use support::{Reply, TestApp, fixture};
use tower::ServiceExt;

backend_tests! {
    discovery_lists_the_three_services => discovery;
    poor_metabolizer_and_clopidogrel_by_dmd_code_gives_a_switch_card => clopidogrel_by_code;
    clopidogrel_by_text_only_gives_the_same_advice => clopidogrel_by_text;
    unidentifiable_medicine_gives_an_info_card => unidentifiable;
    indeterminate_genotype_gives_an_info_card => indeterminate;
    capecitabine_without_dpyd_result_advises_testing => dpyd_untested;
    prefetch_and_store_give_the_same_cards => prefetch_equals_store;
    nice_dg59_card_follows_the_prefetched_conditions => dg59_conditions;
    store_reads_follow_every_change_to_the_results => store_follows_changes;
    order_sign_checks_every_draft_order => order_sign;
    malformed_requests_are_rejected => malformed;
    feedback_is_stored_as_audit_events => feedback;
    bad_outside_call_file_stores_nothing => bad_outside_calls;
    outside_calls_store_observations_and_provenance => outside_calls_stored;
    new_genotype_raises_a_detected_issue_once_and_patient_view_shows_it => recheck;
    detected_issues_are_streamed_as_server_sent_events => sse;
}

fn text_fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cds")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fixture with every `PATIENT_ID` replaced.
fn with_patient(mut value: Value, patient: &str) -> Value {
    fn walk(v: &mut Value, patient: &str) {
        match v {
            Value::String(s) if s.contains("PATIENT_ID") => *s = s.replace("PATIENT_ID", patient),
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, patient)),
            Value::Object(o) => o.values_mut().for_each(|x| walk(x, patient)),
            _ => {}
        }
    }
    walk(&mut value, patient);
    value
}

async fn new_patient(app: &TestApp) -> String {
    // The fixture's NHS number may belong to one Patient only; these tests need several.
    let mut p = fixture("patient.json");
    p.as_object_mut().map(|o| o.shift_remove("identifier"));
    let p = app.create(&p).await;
    p["id"].as_str().expect("patient id").to_owned()
}

async fn import_calls(app: &TestApp, patient: &str, tsv: &str) -> Reply {
    app.request(
        Method::POST,
        &format!("/fhir/Patient/{patient}/$pgx-outside-calls"),
        &[("content-type", "text/tab-separated-values")],
        Some(tsv.to_owned()),
    )
    .await
}

fn order_select(patient: &str, medication: Value) -> Value {
    let mut req = with_patient(fixture("cds/order-select.json"), patient);
    req["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"] = medication;
    req
}

/// The cards of a CDS Hooks response, checking what every card must satisfy.
#[track_caller]
fn cards(reply: Reply) -> Vec<Value> {
    let reply = reply.expect(StatusCode::OK);
    let cards = reply.json()["cards"]
        .as_array()
        .cloned()
        .expect("cards array");
    for c in &cards {
        let summary = c["summary"].as_str().expect("summary");
        assert!(summary.chars().count() < 140, "summary too long: {summary}");
        assert!(
            matches!(
                c["indicator"].as_str(),
                Some("info" | "warning" | "critical")
            ),
            "{c}"
        );
        assert!(
            c["source"]["label"].as_str().is_some_and(|l| !l.is_empty()),
            "{c}"
        );
        assert!(c["uuid"].as_str().is_some(), "{c}");
        if c["suggestions"].as_array().is_some_and(|s| !s.is_empty()) {
            assert_eq!(c["selectionBehavior"], "at-most-one", "{c}");
        }
    }
    cards
}

async fn discovery(app: &TestApp) {
    let d = app.get("/cds-services").await.expect(StatusCode::OK).json();
    let services = d["services"].as_array().expect("services");
    let hooks: Vec<&str> = services.iter().filter_map(|s| s["hook"].as_str()).collect();
    assert_eq!(hooks, ["order-select", "order-sign", "patient-view"]);
    for s in services {
        assert!(
            s["id"].as_str().is_some()
                && s["description"].as_str().is_some()
                && s["title"].as_str().is_some()
        );
        assert_eq!(s["prefetch"]["patient"], "Patient/{{context.patientId}}");
    }
    assert!(
        services[0]["prefetch"]["genotypes"]
            .as_str()
            .is_some_and(|q| q.contains("http://loinc.org|84413-4"))
    );
    assert!(
        services[0]["prefetch"]["conditions"]
            .as_str()
            .is_some_and(|q| q.starts_with("Condition?patient="))
    );
}

async fn poor_metabolizer(app: &TestApp) -> String {
    let patient = new_patient(app).await;
    import_calls(app, &patient, &text_fixture("outside-calls-cyp2c19-pm.tsv"))
        .await
        .expect(StatusCode::OK);
    patient
}

#[track_caller]
fn assert_clopidogrel_switch(cards: &[Value]) {
    assert_eq!(cards.len(), 1, "{cards:?}");
    let c = &cards[0];
    assert!(
        matches!(c["indicator"].as_str(), Some("critical" | "warning")),
        "{c}"
    );
    assert_eq!(
        c["indicator"], "critical",
        "strong recommendation to use an alternative"
    );
    assert!(
        c["summary"]
            .as_str()
            .is_some_and(|s| s.contains("Clopidogrel") && s.contains("CYP2C19 Poor Metabolizer")),
        "{c}"
    );
    let detail = c["detail"].as_str().expect("detail");
    assert!(
        detail.contains("2022") && detail.contains("Clopidogrel") && detail.contains("`*2/*2`"),
        "{detail}"
    );
    assert!(detail.contains("classification: strong"), "{detail}");
    assert!(
        c["source"]["url"].as_str().is_some_and(
            |u| u.contains("cpicpgx.org/guidelines/guideline-for-clopidogrel-and-cyp2c19")
        ),
        "{c}"
    );
    assert!(
        c["source"]["label"]
            .as_str()
            .is_some_and(|l| l.contains("CPIC 2022")),
        "{c}"
    );
    let suggestions = c["suggestions"].as_array().expect("suggestions");
    let labels: Vec<&str> = suggestions
        .iter()
        .filter_map(|s| s["label"].as_str())
        .collect();
    assert!(
        labels.iter().any(|l| l.contains("prasugrel"))
            && labels.iter().any(|l| l.contains("ticagrelor")),
        "{labels:?}"
    );
    for s in suggestions {
        let actions = s["actions"].as_array().expect("actions");
        assert_eq!(actions[0]["type"], "delete");
        // CDS Hooks 2.0: `resourceId` is one relative reference, a string.
        assert_eq!(actions[0]["resourceId"], json!("MedicationRequest/draft-1"));
        assert_eq!(actions[1]["type"], "create");
        let created = &actions[1]["resource"];
        assert_eq!(created["resourceType"], "MedicationRequest");
        assert_eq!(created["status"], "draft");
        assert!(
            created.get("dosageInstruction").is_none(),
            "the alternative's dose is the prescriber's"
        );
        support::check_schema(&created.to_string());
    }
    assert!(
        c["overrideReasons"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x["code"] == "previously-tolerated")),
        "{c}"
    );
}

async fn clopidogrel_by_code(app: &TestApp) {
    let patient = poor_metabolizer(app).await;
    let req = order_select(
        &patient,
        json!({"coding": [{"system": "https://dmd.nhs.uk", "code": "319799004"}]}),
    );
    let cards = cards(app.post("/cds-services/smr-pgx-order-select", &req).await);
    assert_clopidogrel_switch(&cards);
    assert!(
        cards[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("dm+d code 319799004"))
    );
}

async fn clopidogrel_by_text(app: &TestApp) {
    let patient = poor_metabolizer(app).await;
    let req = order_select(&patient, json!({"text": "Clopidogrel 75mg tablets"}));
    let cards = cards(app.post("/cds-services/smr-pgx-order-select", &req).await);
    assert_clopidogrel_switch(&cards);
}

async fn unidentifiable(app: &TestApp) {
    let patient = poor_metabolizer(app).await;
    let req = order_select(&patient, json!({"text": "Zapwizzle 10mg capsules"}));
    let cards = cards(app.post("/cds-services/smr-pgx-order-select", &req).await);
    // The pharmacogenomic card, and the medicines safety check saying it could not run
    // either (issue 11: an unmapped medicine is never silence).
    assert_eq!(cards.len(), 2, "{cards:?}");
    assert!(cards.iter().all(|c| c["indicator"] == "info"), "{cards:?}");
    assert!(
        cards[1]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("unmapped medicine")),
        "{}",
        cards[1]
    );
    assert!(
        cards[0]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("could not identify")),
        "{}",
        cards[0]
    );
    assert!(
        cards[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no pharmacogenomic check was possible"))
    );
}

async fn indeterminate(app: &TestApp) {
    let patient = new_patient(app).await;
    import_calls(app, &patient, "CYP2C19\t*1/*999\n")
        .await
        .expect(StatusCode::OK);
    let req = order_select(&patient, json!({"text": "Clopidogrel 75mg tablets"}));
    let cards = cards(app.post("/cds-services/smr-pgx-order-select", &req).await);
    assert_eq!(cards.len(), 1, "{cards:?}");
    assert_eq!(cards[0]["indicator"], "info");
    assert!(
        cards[0]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("CYP2C19 result indeterminate")),
        "{}",
        cards[0]
    );
    assert!(
        cards[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("*999")),
        "the reason is given: {}",
        cards[0]
    );
    assert!(
        cards[0]["source"]["url"]
            .as_str()
            .is_some_and(|u| u.contains("clopidogrel"))
    );
}

async fn dpyd_untested(app: &TestApp) {
    let patient = poor_metabolizer(app).await;
    let req = order_select(&patient, json!({"text": "Capecitabine 500mg tablets"}));
    let cards = cards(app.post("/cds-services/smr-pgx-order-select", &req).await);
    assert_eq!(cards.len(), 1, "{cards:?}");
    let c = &cards[0];
    assert_eq!(c["indicator"], "info");
    assert!(
        c["summary"]
            .as_str()
            .is_some_and(|s| s.contains("no DPYD result")),
        "{c}"
    );
    let detail = c["detail"].as_str().expect("detail");
    assert!(
        detail.contains("before starting") && detail.contains("MHRA") && detail.contains("CPIC"),
        "{detail}"
    );
    // No result for a gene without a test-first recommendation gives no card.
    let req = order_select(&patient, json!({"text": "Simvastatin 40mg tablets"}));
    assert!(cards_of(app, &req).await.is_empty());
}

async fn cards_of(app: &TestApp, req: &Value) -> Vec<Value> {
    cards(app.post("/cds-services/smr-pgx-order-select", req).await)
}

/// Cards without their random ids (card and suggestion uuids).
fn without_uuids(mut cards: Vec<Value>) -> Vec<Value> {
    for c in &mut cards {
        if let Some(o) = c.as_object_mut() {
            o.shift_remove("uuid");
        }
        for s in c["suggestions"].as_array_mut().into_iter().flatten() {
            if let Some(o) = s.as_object_mut() {
                o.shift_remove("uuid");
            }
        }
    }
    cards
}

async fn prefetch_equals_store(app: &TestApp) {
    let patient = poor_metabolizer(app).await;
    let mut req = order_select(
        &patient,
        json!({"coding": [{"system": "http://snomed.info/sct", "code": "319799004"}], "text": "Clopidogrel 75mg tablets"}),
    );
    let fetched = without_uuids(cards_of(app, &req).await);
    let query = format!(
        "/fhir/Observation?patient={patient}&code=http://loinc.org|84413-4,http://loinc.org|53040-2"
    );
    let bundle = app.get(&query).await.expect(StatusCode::OK).json();
    assert_eq!(bundle["total"], 4, "genotype and phenotype for two genes");
    req["prefetch"] =
        json!({"patient": {"resourceType": "Patient", "id": patient}, "genotypes": bundle});
    let prefetched = without_uuids(cards_of(app, &req).await);
    assert!(!fetched.is_empty());
    assert_eq!(fetched, prefetched);
    // A prefetch of null means the client could not fetch it: SMR fetches it itself.
    req["prefetch"]["genotypes"] = Value::Null;
    assert_eq!(without_uuids(cards_of(app, &req).await), fetched);
    // A prefetched empty Bundle is believed: no results, so no clopidogrel recommendation;
    // the only card is NICE DG59's missing CYP2C19 test (the request carries no conditions,
    // so the card says the guidance applies after ischaemic stroke/TIA).
    req["prefetch"]["genotypes"] =
        json!({"resourceType": "Bundle", "type": "searchset", "total": 0});
    let cards = cards_of(app, &req).await;
    assert_eq!(cards.len(), 1, "{cards:?}");
    assert!(
        cards[0]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("no CYP2C19 result")),
        "{cards:?}"
    );
}

/// NICE DG59: clopidogrel with no CYP2C19 result gives a card when the prefetched
/// Conditions include an ischaemic stroke/TIA (citing it), and none when they do not.
async fn dg59_conditions(app: &TestApp) {
    let patient = new_patient(app).await;
    let mut req = order_select(&patient, json!({"text": "Clopidogrel 75mg tablets"}));
    let condition = |id: &str, text: &str| json!({"resource": {"resourceType": "Condition", "id": id, "code": {"text": text}}});
    let bundle = |entries: Vec<Value>| json!({"resourceType": "Bundle", "type": "searchset", "entry": entries});
    req["prefetch"] = json!({
        "genotypes": bundle(vec![]),
        "conditions": bundle(vec![condition("c1", "Asthma")]),
    });
    assert!(cards_of(app, &req).await.is_empty());
    req["prefetch"]["conditions"] = bundle(vec![
        condition("c1", "Asthma"),
        condition("c2", "Acute ischaemic stroke"),
    ]);
    let cards = cards_of(app, &req).await;
    assert_eq!(cards.len(), 1, "{cards:?}");
    let detail = cards[0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("DG59") && detail.contains("Condition/c2 (Acute ischaemic stroke)"),
        "{detail}"
    );
}

/// Calls without prefetch read the store through a cache (SQLite): it must never answer with
/// results that have since been deleted or replaced.
async fn store_follows_changes(app: &TestApp) {
    let patient = poor_metabolizer(app).await;
    let req = order_select(&patient, json!({"text": "Clopidogrel 75mg tablets"}));
    assert_clopidogrel_switch(&cards_of(app, &req).await);
    // Repeated: the second answer may come from the cache, and must be the same.
    assert_clopidogrel_switch(&cards_of(app, &req).await);

    let query = format!(
        "/fhir/Observation?patient={patient}&code=http://loinc.org|84413-4,http://loinc.org|53040-2"
    );
    let bundle = app.get(&query).await.expect(StatusCode::OK).json();
    for e in bundle["entry"].as_array().expect("entries") {
        let id = e["resource"]["id"].as_str().expect("id");
        app.delete(&format!("/fhir/Observation/{id}"))
            .await
            .expect(StatusCode::OK);
    }
    let after_delete = cards_of(app, &req).await;
    assert!(
        after_delete.iter().all(|c| c["indicator"] != "critical"),
        "the deleted poor-metabolizer result must not be used: {after_delete:?}"
    );

    import_calls(app, &patient, &text_fixture("outside-calls-cyp2c19-pm.tsv"))
        .await
        .expect(StatusCode::OK);
    assert_clopidogrel_switch(&cards_of(app, &req).await);
}

async fn order_sign(app: &TestApp) {
    let patient = poor_metabolizer(app).await;
    let mut req = order_select(&patient, json!({"text": "Clopidogrel 75mg tablets"}));
    req["hook"] = json!("order-sign");
    let second = json!({"resource": {
        "resourceType": "MedicationRequest", "id": "draft-2", "status": "draft", "intent": "order",
        "subject": {"reference": format!("Patient/{patient}")},
        "medicationCodeableConcept": {"text": "Capecitabine 500mg tablets"}
    }});
    req["context"]["draftOrders"]["entry"]
        .as_array_mut()
        .expect("entries")
        .push(second);
    // order-select looks at the selections only; order-sign at every draft order.
    let mut select = req.clone();
    select["hook"] = json!("order-select");
    assert_eq!(cards_of(app, &select).await.len(), 1);
    let signed = cards(app.post("/cds-services/smr-pgx-order-sign", &req).await);
    assert_eq!(signed.len(), 2);
    assert_eq!(signed[0]["indicator"], "critical", "most urgent first");
}

async fn malformed(app: &TestApp) {
    let reply = app
        .request(
            Method::POST,
            "/cds-services/smr-pgx-order-select",
            &[("content-type", "application/json")],
            Some("{not json".into()),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.json()["error"].as_str().is_some());
    let mut req = order_select("p1", json!({"text": "Clopidogrel"}));
    req["context"]
        .as_object_mut()
        .map(|c| c.shift_remove("patientId"));
    let reply = app
        .post("/cds-services/smr-pgx-order-select", &req)
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert!(
        reply.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("patientId"))
    );
    let mut req = order_select("p1", json!({"text": "Clopidogrel"}));
    req["hook"] = json!("patient-view");
    app.post("/cds-services/smr-pgx-order-select", &req)
        .await
        .expect(StatusCode::BAD_REQUEST);
    req["hook"] = json!("order-select");
    req["context"]["draftOrders"] = json!([]);
    app.post("/cds-services/smr-pgx-order-select", &req)
        .await
        .expect(StatusCode::BAD_REQUEST);
    app.post("/cds-services/no-such-service", &req)
        .await
        .expect(StatusCode::NOT_FOUND);
}

async fn feedback(app: &TestApp) {
    let body = json!({"feedback": [
        {"card": "9368d37b-283f-44a0-93ea-547cebab93ed", "outcome": "accepted",
         "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}], "outcomeTimestamp": "2026-11-02T10:15:00Z"},
        {"card": "0a8e3a4c-cb2e-4b1f-a4a6-1f1b4f1b9f10", "outcome": "overridden",
         "overrideReason": {"reason": {"code": "previously-tolerated", "system": "https://fhir.smr.nhs.uk/CodeSystem/pgx-override-reason"}, "userComment": "On it for 3 years"},
         "outcomeTimestamp": "2026-11-02T10:16:00Z"}
    ]});
    let reply = app
        .post("/cds-services/smr-pgx-order-select/feedback", &body)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(reply["stored"].as_array().map(Vec::len), Some(2));
    // Feedback joins the audit trail: each item readable by its id.
    let stored: Vec<String> = reply["stored"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    let overridden: Vec<Value> = {
        let mut found = Vec::new();
        for reference in &stored {
            let e = app
                .get(&format!("/fhir/{reference}"))
                .await
                .expect(StatusCode::OK)
                .json();
            if e.to_string().contains("overridden") {
                found.push(e);
            }
        }
        found
    };
    assert_eq!(overridden.len(), 1);
    let e = &overridden[0];
    assert_eq!(e["recorded"], "2026-11-02T10:16:00Z");
    assert!(e.to_string().contains("On it for 3 years"));
    let bad = json!({"feedback": [{"card": "x", "outcome": "ignored", "outcomeTimestamp": "2026-11-02T10:16:00Z"}]});
    app.post("/cds-services/smr-pgx-order-select/feedback", &bad)
        .await
        .expect(StatusCode::BAD_REQUEST);
    app.post(
        "/cds-services/smr-pgx-order-select/feedback",
        &json!({"feedback": []}),
    )
    .await
    .expect(StatusCode::BAD_REQUEST);
    // Bad feedback stored nothing: the newest feedback records are still the two above (the
    // refusals themselves are audited, as operations, not as feedback).
    let newest = app
        .get("/fhir/AuditEvent?_count=50")
        .await
        .expect(StatusCode::OK)
        .text;
    assert_eq!(newest.matches("On it for 3 years").count(), 1, "{newest}");
}

async fn bad_outside_calls(app: &TestApp) {
    let patient = new_patient(app).await;
    // Creating the patient wrote its own Provenance; the failed import must add none.
    let provenances = app.get("/fhir/Provenance").await.json()["total"].clone();
    assert_eq!(provenances, 1);
    let reply = import_calls(app, &patient, &text_fixture("outside-calls-bad.tsv"))
        .await
        .expect(StatusCode::BAD_REQUEST);
    let outcome = reply.json();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let text = outcome.to_string();
    assert!(
        text.contains("line 2: unknown gene 'FOO1'") && text.contains("line 3"),
        "{text}"
    );
    assert_eq!(
        app.get(&format!("/fhir/Observation?patient={patient}"))
            .await
            .json()["total"],
        0
    );
    assert_eq!(
        app.get("/fhir/Provenance").await.json()["total"],
        provenances
    );
    // Unknown patient: 404, nothing stored.
    import_calls(app, "no-such-patient", "CYP2D6\t*1/*1\n")
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(app.get("/fhir/Observation").await.json()["total"], 0);
}

async fn outside_calls_stored(app: &TestApp) {
    let patient = new_patient(app).await;
    // As FHIR Parameters, with the lab named.
    let org = app
        .create(&json!({"resourceType": "Organization", "name": "Regional Genomics Laboratory"}))
        .await;
    let org_ref = format!("Organization/{}", org["id"].as_str().expect("org id"));
    let params = json!({"resourceType": "Parameters", "parameter": [
        {"name": "outsideCalls", "valueString": "CYP2C19\t*2/*2\tPoor Metabolizer\nCYP2C9\t\t\t1.5\n"},
        {"name": "performer", "valueReference": {"reference": org_ref}}
    ]});
    let reply = app
        .post(
            &format!("/fhir/Patient/{patient}/$pgx-outside-calls"),
            &params,
        )
        .await
        .expect(StatusCode::OK)
        .json();
    let entries = reply["entry"].as_array().expect("entries");
    assert_eq!(
        entries.len(),
        4,
        "CYP2C19 genotype + phenotype, CYP2C9 phenotype only, Provenance"
    );
    let genotype = &entries[0]["resource"];
    assert_eq!(genotype["code"]["coding"][0]["code"], "84413-4");
    assert_eq!(
        genotype["component"][0]["valueCodeableConcept"]["coding"][0]["code"],
        "HGNC:2621"
    );
    assert_eq!(genotype["performer"][0]["reference"], org_ref.as_str());
    let phenotype = &entries[1]["resource"];
    assert_eq!(phenotype["code"]["coding"][0]["code"], "53040-2");
    assert_eq!(
        phenotype["valueCodeableConcept"]["text"],
        "Poor Metabolizer"
    );
    assert_eq!(
        phenotype["derivedFrom"][0]["reference"],
        format!("Observation/{}", genotype["id"].as_str().expect("id"))
    );
    let provenance = &entries[3]["resource"];
    assert_eq!(provenance["resourceType"], "Provenance");
    let targets: Vec<&str> = provenance["target"]
        .as_array()
        .expect("targets")
        .iter()
        .filter_map(|t| t["reference"].as_str())
        .collect();
    assert_eq!(targets.len(), 3);
    assert!(
        targets.iter().all(|t| t.starts_with("Observation/")),
        "placeholders resolved: {targets:?}"
    );
    assert_eq!(provenance["agent"][0]["who"]["reference"], org_ref.as_str());
    // Without a performer the agent is "SMR import".
    let reply = import_calls(app, &patient, "TPMT\t*1/*3A\n")
        .await
        .expect(StatusCode::OK)
        .json();
    let last = reply["entry"]
        .as_array()
        .and_then(|e| e.last().cloned())
        .expect("provenance");
    assert_eq!(last["resource"]["agent"][0]["who"]["display"], "SMR import");
}

async fn recheck(app: &TestApp) {
    let patient = new_patient(app).await;
    let order = app
        .create(&with_patient(fixture("cds/codeine-order.json"), &patient))
        .await;
    let order_ref = format!(
        "MedicationRequest/{}",
        order["id"].as_str().expect("order id")
    );
    let issues = format!("/fhir/DetectedIssue?patient={patient}");
    assert_eq!(app.get(&issues).await.json()["total"], 0);
    let obs = app
        .create(&with_patient(
            fixture("cds/genotype-cyp2d6-um.json"),
            &patient,
        ))
        .await;
    let obs_ref = format!("Observation/{}", obs["id"].as_str().expect("obs id"));
    // The re-check follows the commit through the change feed: wait for it.
    let found = support::eventually(|| async {
        let found = app.get(&issues).await.expect(StatusCode::OK).json();
        (found["total"] == 1).then_some(found)
    })
    .await;
    assert_eq!(found["total"], 1, "{found}");
    let issue = &found["entry"][0]["resource"];
    assert_eq!(issue["status"], "final");
    assert_eq!(
        issue["severity"], "high",
        "CPIC: avoid codeine in CYP2D6 ultrarapid metabolizers (strong)"
    );
    assert_eq!(issue["code"]["coding"][0]["code"], "GEN");
    let implicated: Vec<&str> = issue["implicated"]
        .as_array()
        .expect("implicated")
        .iter()
        .filter_map(|r| r["reference"].as_str())
        .collect();
    assert_eq!(implicated, [order_ref.as_str(), obs_ref.as_str()]);
    assert_eq!(
        issue["evidence"][0]["detail"][0]["reference"],
        obs_ref.as_str()
    );
    assert!(
        issue["reference"]
            .as_str()
            .is_some_and(|u| u.contains("codeine"))
    );
    assert!(
        issue["detail"]
            .as_str()
            .is_some_and(|d| d.contains("codeine"))
    );
    // The same result again (as a new Observation, and through a transaction) raises nothing new.
    app.create(&with_patient(
        fixture("cds/genotype-cyp2d6-um.json"),
        &patient,
    ))
    .await;
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": with_patient(fixture("cds/genotype-cyp2d6-um.json"), &patient), "request": {"method": "POST", "url": "Observation"}}
    ]});
    app.post("/fhir", &tx).await.expect(StatusCode::OK);
    support::feed_settled(app).await;
    assert_eq!(app.get(&issues).await.json()["total"], 1);
    // patient-view shows it.
    let req = json!({"hook": "patient-view", "hookInstance": "7a3c8e4e-7f39-4c59-9d4e-1f1c2d3e4f50",
                     "context": {"userId": "Practitioner/example", "patientId": patient}});
    let shown = cards(app.post("/cds-services/smr-pgx-patient-view", &req).await);
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(shown[0]["indicator"], "critical");
    assert!(
        shown[0]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("Codeine")),
        "{}",
        shown[0]
    );
    assert!(
        shown[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&order_ref))
    );
    // A patient without issues gets no cards.
    let other = new_patient(app).await;
    let req = json!({"hook": "patient-view", "hookInstance": "x", "context": {"userId": "Practitioner/example", "patientId": other}});
    assert!(cards(app.post("/cds-services/smr-pgx-patient-view", &req).await).is_empty());
}

async fn sse(app: &TestApp) {
    let patient = new_patient(app).await;
    app.create(&with_patient(fixture("cds/codeine-order.json"), &patient))
        .await;
    // The stream obeys the same access rules as the API: a GP of another practice is refused.
    let stranger = app.as_user("other-gp", smr_access::Role::Gp, Some("B86001"));
    stranger
        .get(&format!("/cds-services/events?patient={patient}"))
        .await
        .expect(StatusCode::FORBIDDEN);
    let token = support::issue(
        &app.issuer,
        smr_auth::TokenRequest {
            org: Some(support::SYSTEM_ORG.into()),
            ..smr_auth::TokenRequest::new("events-reader", smr_access::Role::System)
        },
    );
    let request = Request::builder()
        .uri(format!("/cds-services/events?patient={patient}"))
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request");
    let response = app.router.clone().oneshot(request).await.expect("router");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"))
    );
    let mut body = response.into_body();
    app.create(&with_patient(
        fixture("cds/genotype-cyp2d6-um.json"),
        &patient,
    ))
    .await;
    let mut text = String::new();
    while !text.contains("\n\n") {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("an event within 10 s")
            .expect("stream open")
            .expect("frame");
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(text.contains("event: detected-issue"), "{text}");
    assert!(
        text.contains("DetectedIssue/") && text.contains(&format!("Patient/{patient}")),
        "{text}"
    );
}
