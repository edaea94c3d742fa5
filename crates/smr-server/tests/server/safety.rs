//! Issue 11, medicines safety: `GET Patient/{id}/$safety-check` (the whole current record
//! reviewed into DetectedIssues) and the safety cards CDS `order-select` / `order-sign` give
//! beside the pharmacogenomic ones, written through the HTTP API by a GP, with a patient's
//! consent withholding a medicine from a community pharmacy; and the stored DetectedIssues
//! the `safety-recheck` feed consumer keeps current. Each runs on SQLite and, when
//! configured, PostgreSQL.

use crate::support;

use axum::http::StatusCode;
use serde_json::{Value, json};
use smr_access::Role;
use support::{Client, TestApp, fixture};

backend_tests! {
    the_whole_record_is_reviewed_into_cited_detected_issues => whole_record;
    a_recent_egfr_turns_the_missing_data_note_into_a_renal_issue => renal_result;
    a_withheld_medicine_is_reported_without_being_named => hidden_medicine;
    order_select_gives_safety_cards_beside_pgx_cards => order_select_cards;
    two_interacting_drafts_give_one_card => order_sign_pair;
    who_may_run_the_safety_check => access;
    stored_issues_follow_the_record_through_the_change_feed => stored_issues_follow_record;
    stored_issues_carry_the_labels_of_what_they_name => stored_issue_labels;
}

const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const DMD: &str = "https://dmd.nhs.uk";
const SCT: &str = "http://snomed.info/sct";
const GP: &str = "A81001";
const PHARMACY: &str = "FA123";

struct World {
    patient: String,
    gp: Client,
}

async fn world(app: &TestApp) -> World {
    let gp_org = app
        .create(&json!({"resourceType": "Organization", "identifier": [{"system": ODS, "value": GP}], "name": "Test Surgery"}))
        .await;
    app.create(&json!({"resourceType": "Organization", "identifier": [{"system": ODS, "value": PHARMACY}], "name": "Test Pharmacy"}))
        .await;
    let mut patient = fixture("patient.json");
    patient["generalPractitioner"] = json!([{"reference": format!("Organization/{}", gp_org["id"].as_str().unwrap_or_default())}]);
    let patient = app.create(&patient).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    World {
        patient,
        gp: app.as_user("u-gp", Role::Gp, Some(GP)),
    }
}

fn days_ago(days: i64) -> String {
    let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64;
    smr_fhir::datetime::format_instant(now - days * 86_400_000_000)
}

/// A GP prescription (nominated pharmacy named, so the pharmacy cares for the patient).
fn prescription(patient: &str, medicine: Value, status: &str, tablets_a_day: Option<u32>) -> Value {
    let mut mr = json!({"resourceType": "MedicationRequest", "status": status, "intent": "order",
        "medicationCodeableConcept": medicine, "subject": {"reference": format!("Patient/{patient}")},
        "authoredOn": days_ago(10), "dispenseRequest": {"performer": {"identifier": {"system": ODS, "value": PHARMACY}}}});
    if let Some(n) = tablets_a_day {
        mr["dosageInstruction"] = json!([{"text": format!("{n} tablet(s) once a day"),
            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": {"value": n, "unit": "tablet"}}]}]);
    }
    mr
}

fn dmd(code: &str) -> Value {
    json!({"coding": [{"system": DMD, "code": code}]})
}

async fn created(client: &Client, resource: &Value) -> String {
    let ty = resource["resourceType"].as_str().unwrap_or_default();
    let reply = client.post(&format!("/fhir/{ty}"), resource).await;
    let status = reply.status;
    let body = reply.json();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    format!("{ty}/{}", body["id"].as_str().unwrap_or_default())
}

fn allergy(patient: &str, code: &str, verification: &str) -> Value {
    json!({"resourceType": "AllergyIntolerance",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "code": verification}]},
        "code": {"coding": [{"system": SCT, "code": code}]},
        "patient": {"reference": format!("Patient/{patient}")}})
}

async fn safety_check(client: &Client, patient: &str) -> Value {
    let reply = client
        .get(&format!("/fhir/Patient/{patient}/$safety-check"))
        .await;
    let status = reply.status;
    let body = reply.json();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["type"], "collection");
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

fn code(issue: &Value) -> &str {
    issue["code"]["coding"][0]["code"]
        .as_str()
        .unwrap_or_default()
}

fn implicated(issue: &Value) -> Vec<String> {
    issue["implicated"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["reference"].as_str())
        .map(|r| r.split("/_history/").next().unwrap_or(r).to_owned())
        .collect()
}

async fn whole_record(app: &TestApp) {
    let w = world(app).await;
    let p = &w.patient;
    let simva = created(&w.gp, &prescription(p, dmd("320000009"), "active", Some(1))).await;
    let clari = created(&w.gp, &prescription(p, dmd("83999008"), "active", Some(2))).await;
    created(&w.gp, &prescription(p, dmd("329653008"), "active", Some(3))).await;
    created(&w.gp, &prescription(p, dmd("11847009"), "active", Some(2))).await;
    let amox = created(
        &w.gp,
        &prescription(p, dmd("39732311000001104"), "active", Some(3)),
    )
    .await;
    // Stopped: esomeprazole with it would interact, but only current medicines count.
    let clopidogrel = created(
        &w.gp,
        &prescription(p, dmd("319799004"), "stopped", Some(1)),
    )
    .await;
    created(&w.gp, &prescription(p, dmd("317334001"), "active", Some(1))).await;
    created(&w.gp, &prescription(p, dmd("109081006"), "active", None)).await;
    // "Allergy to penicillin" as UK GP records code it (a finding), and a refuted macrolide
    // allergy that must not fire on the clarithromycin.
    let penicillin = created(&w.gp, &allergy(p, "91936005", "confirmed")).await;
    created(&w.gp, &allergy(p, "860907004", "refuted")).await;

    let bundle = safety_check(&w.gp, p).await;
    let issues = resources(&bundle, "DetectedIssue");
    let codes: Vec<&str> = issues.iter().map(|i| code(i)).collect();
    assert!(
        codes.contains(&"DRG") && codes.contains(&"DUPTHPY"),
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == "ALGY").count(),
        1,
        "{bundle}"
    );
    assert_eq!(issues[0]["severity"], "high", "most severe first: {bundle}");

    let drg = issues
        .iter()
        .find(|i| implicated(i).contains(&simva))
        .expect("simvastatin + clarithromycin");
    assert_eq!(code(drg), "DRG");
    assert!(implicated(drg).contains(&clari), "{drg}");
    let evidence = drg["evidence"].to_string();
    assert!(
        evidence.contains("Drug Safety Update") && evidence.contains("Phansalkar"),
        "{evidence}"
    );
    let algy = issues.iter().find(|i| code(i) == "ALGY").expect("allergy");
    assert_eq!(implicated(algy), [amox.clone(), penicillin.clone()]);
    assert!(
        !bundle.to_string().contains(&clopidogrel),
        "a stopped medicine fires nothing"
    );

    // The checks that could not run say what is missing: no eGFR for metformin and the NSAIDs.
    let outcome = resources(&bundle, "OperationOutcome");
    assert_eq!(outcome.len(), 1, "{bundle}");
    let notes = outcome[0]["issue"].to_string();
    assert!(
        notes.contains("Metformin") && notes.contains("eGFR"),
        "{notes}"
    );
}

async fn renal_result(app: &TestApp) {
    let w = world(app).await;
    let p = &w.patient;
    let metformin = created(&w.gp, &prescription(p, dmd("109081006"), "active", None)).await;
    let before = safety_check(&w.gp, p).await;
    assert!(resources(&before, "DetectedIssue").is_empty(), "{before}");
    assert_eq!(resources(&before, "OperationOutcome").len(), 1, "{before}");

    let egfr = created(
        &w.gp,
        &json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "62238-1"}]},
            "subject": {"reference": format!("Patient/{p}")}, "effectiveDateTime": days_ago(20),
            "valueQuantity": {"value": 25, "unit": "mL/min/{1.73_m2}", "system": "http://unitsofmeasure.org", "code": "mL/min/{1.73_m2}"}}),
    )
    .await;
    let after = safety_check(&w.gp, p).await;
    let issues = resources(&after, "DetectedIssue");
    assert_eq!(issues.len(), 1, "{after}");
    assert_eq!(code(issues[0]), "LAB");
    assert_eq!(issues[0]["severity"], "high");
    assert_eq!(implicated(issues[0]), [metformin, egfr]);
    assert!(resources(&after, "OperationOutcome").is_empty(), "{after}");
}

async fn withholding_world(app: &TestApp) -> (World, String, String) {
    let w = world(app).await;
    let p = &w.patient;
    // Haloperidol is labelled PSY by SMR from its medicine; amiodarone is not.
    let secret = created(
        &w.gp,
        &prescription(
            p,
            json!({"text": "Haloperidol 5mg tablets"}),
            "active",
            Some(1),
        ),
    )
    .await;
    let stored = w.gp.get(&format!("/fhir/{secret}")).await.json();
    assert!(
        stored["meta"]["security"].to_string().contains("PSY"),
        "{stored}"
    );
    let amiodarone = created(&w.gp, &prescription(p, dmd("69236009"), "active", Some(1))).await;
    app.as_patient(p)
        .post(
            "/fhir/Consent",
            &support::consent_withholding_psy_from_pharmacies(p),
        )
        .await
        .expect(StatusCode::CREATED);
    (w, secret, amiodarone)
}

async fn hidden_medicine(app: &TestApp) {
    let (w, secret, amiodarone) = withholding_world(app).await;
    let p = &w.patient;
    let pharmacist = app.as_user("u-ph", Role::CommunityPharmacist, Some(PHARMACY));
    let secret_id = secret.split('/').nth(1).unwrap_or_default().to_owned();

    // The pharmacist: the interaction is reported, the medicine is not named.
    let bundle = safety_check(&pharmacist, p).await;
    let text = bundle.to_string();
    for leak in ["aloperidol", secret_id.as_str()] {
        assert!(!text.contains(leak), "{leak} leaked: {text}");
    }
    let issues = resources(&bundle, "DetectedIssue");
    assert_eq!(issues.len(), 1, "{bundle}");
    assert_eq!(code(issues[0]), "DRG");
    assert!(
        issues[0]["code"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot see"),
        "{}",
        issues[0]
    );
    assert_eq!(implicated(issues[0]), [amiodarone]);

    // The GP sees it named.
    let bundle = safety_check(&w.gp, p).await;
    let issues = resources(&bundle, "DetectedIssue");
    assert_eq!(issues.len(), 1, "{bundle}");
    assert!(
        issues[0]["code"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Haloperidol"),
        "{}",
        issues[0]
    );
    assert!(implicated(issues[0]).contains(&secret));

    // A CDS order by the pharmacy's prescriber: clarithromycin (QT) against both.
    let req = json!({"hook": "order-select", "hookInstance": "h-hidden",
        "context": {"userId": "Practitioner/x", "patientId": p, "selections": ["MedicationRequest/d1"],
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
                "resourceType": "MedicationRequest", "id": "d1", "status": "draft", "intent": "order",
                "subject": {"reference": format!("Patient/{p}")}, "medicationCodeableConcept": dmd("83999008")}}]}}});
    let reply = pharmacist
        .post("/cds-services/smr-pgx-order-select", &req)
        .await;
    let cards = reply.expect(StatusCode::OK).json()["cards"].clone();
    let text = cards.to_string();
    assert!(
        !text.contains("aloperidol") && !text.contains(&secret_id),
        "{text}"
    );
    let summaries: Vec<&str> = cards
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["summary"].as_str())
        .collect();
    assert!(
        summaries
            .iter()
            .any(|s| s.contains("A medicine you cannot see interacts with")),
        "{summaries:?}"
    );
    assert!(
        summaries.iter().any(|s| s.contains("Amiodarone")),
        "{summaries:?}"
    );
    let hidden_card = cards
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| {
            c["summary"]
                .as_str()
                .is_some_and(|s| s.contains("cannot see"))
        })
        .expect("the hidden card");
    assert!(
        hidden_card["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("Ask the patient or their GP")
    );
    assert_eq!(hidden_card["indicator"], "critical");
}

fn order_request(hook: &str, patient: &str, drafts: &[(&str, Value)]) -> Value {
    let entries: Vec<Value> = drafts
        .iter()
        .map(|(id, medicine)| json!({"resource": {"resourceType": "MedicationRequest", "id": id,
            "status": "draft", "intent": "order", "subject": {"reference": format!("Patient/{patient}")},
            "medicationCodeableConcept": medicine}}))
        .collect();
    let mut context = json!({"userId": "Practitioner/x", "patientId": patient,
        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": entries}});
    if hook == "order-select" {
        context["selections"] = json!([format!("MedicationRequest/{}", drafts[0].0)]);
    }
    json!({"hook": hook, "hookInstance": "h1", "context": context})
}

fn cards_of(reply: support::Reply) -> Vec<Value> {
    let cards = reply.expect(StatusCode::OK).json()["cards"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for c in &cards {
        assert!(
            c["summary"]
                .as_str()
                .is_some_and(|s| s.chars().count() < 140),
            "{c}"
        );
        assert!(
            c["source"]["label"].as_str().is_some_and(|l| !l.is_empty()),
            "{c}"
        );
        if c["suggestions"].as_array().is_some_and(|s| !s.is_empty()) {
            assert_eq!(c["selectionBehavior"], "at-most-one", "{c}");
        }
    }
    cards
}

async fn order_select_cards(app: &TestApp) {
    let w = world(app).await;
    let p = &w.patient;
    // A CYP2C19 poor metabolizer (PGx: clopidogrel) who takes esomeprazole (MHRA: clopidogrel).
    app.request(
        axum::http::Method::POST,
        &format!("/fhir/Patient/{p}/$pgx-outside-calls"),
        &[("content-type", "text/tab-separated-values")],
        Some("CYP2C19\t*2/*2\n".into()),
    )
    .await
    .expect(StatusCode::OK);
    let req = order_request("order-select", p, &[("d1", dmd("319799004"))]);
    // Before the PPI is on record: the PGx card alone. This read of the record is cached
    // (SQLite); the write below must retire it.
    let before = cards_of(w.gp.post("/cds-services/smr-pgx-order-select", &req).await);
    assert_eq!(before.len(), 1, "{before:?}");
    created(&w.gp, &prescription(p, dmd("317334001"), "active", Some(1))).await;

    let cards = cards_of(w.gp.post("/cds-services/smr-pgx-order-select", &req).await);
    let indicators: Vec<&str> = cards
        .iter()
        .filter_map(|c| c["indicator"].as_str())
        .collect();
    assert_eq!(
        indicators,
        ["critical", "warning"],
        "PGx then safety, most urgent first: {cards:?}"
    );
    let safety = &cards[1];
    assert!(
        safety["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("Esomeprazole"),
        "{safety}"
    );
    assert!(
        safety["source"]["label"]
            .as_str()
            .unwrap_or_default()
            .contains("Drug Safety Update"),
        "{safety}"
    );
    assert_eq!(safety["source"]["topic"]["code"], "safety-interaction");
    assert!(
        safety["overrideReasons"]
            .as_array()
            .is_some_and(|r| !r.is_empty()),
        "{safety}"
    );

    // Ordering the PPI instead: the source's alternative PPIs are offered in its place.
    let req = order_request("order-select", p, &[("d2", dmd("317335000"))]);
    created(&w.gp, &prescription(p, dmd("319799004"), "active", Some(1))).await;
    let cards = cards_of(w.gp.post("/cds-services/smr-pgx-order-select", &req).await);
    let with_suggestions = cards
        .iter()
        .find(|c| c["suggestions"].as_array().is_some_and(|s| !s.is_empty()))
        .expect("a card with alternatives");
    let labels = with_suggestions["suggestions"].to_string();
    assert!(
        labels.contains("lansoprazole") && labels.contains("pantoprazole"),
        "{labels}"
    );
    let actions = &with_suggestions["suggestions"][0]["actions"];
    assert_eq!(actions[0]["type"], "delete");
    assert_eq!(actions[0]["resourceId"], "MedicationRequest/d2");
    assert_eq!(actions[1]["type"], "create");
}

async fn order_sign_pair(app: &TestApp) {
    let w = world(app).await;
    let p = &w.patient;
    let req = order_request(
        "order-sign",
        p,
        &[("s1", dmd("320000009")), ("s2", dmd("83999008"))],
    );
    let cards = cards_of(w.gp.post("/cds-services/smr-pgx-order-sign", &req).await);
    let pair: Vec<&Value> = cards
        .iter()
        .filter(|c| c["source"]["topic"]["code"] == "safety-interaction")
        .collect();
    assert_eq!(
        pair.len(),
        1,
        "one card for the pair, found from both drafts: {cards:?}"
    );
    assert_eq!(pair[0]["indicator"], "critical");
}

async fn access(app: &TestApp) {
    let w = world(app).await;
    let p = &w.patient;
    created(&w.gp, &prescription(p, dmd("320000009"), "active", Some(1))).await;
    // Another practice has no relationship with the patient.
    app.as_user("u-other", Role::Gp, Some("B99999"))
        .get(&format!("/fhir/Patient/{p}/$safety-check"))
        .await
        .expect(StatusCode::FORBIDDEN);
    app.as_user("u-analyst", Role::Analyst, Some(GP))
        .get(&format!("/fhir/Patient/{p}/$safety-check"))
        .await
        .expect(StatusCode::FORBIDDEN);
    w.gp.get("/fhir/Patient/no-such-patient/$safety-check")
        .await
        .expect(StatusCode::NOT_FOUND);
    // The patient may review their own record.
    safety_check(&app.as_patient(p), p).await;
    // Listed in the CapabilityStatement.
    let cs = app
        .get("/fhir/metadata")
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(cs.to_string().contains("\"safety-check\""));
}

const SAFETY_ISSUE_SYSTEM: &str = "https://fhir.smr.nhs.uk/Id/safety-detected-issue";

/// The patient's stored safety DetectedIssues, as `client` may see them.
async fn stored_issues(client: &Client, patient: &str) -> Vec<Value> {
    let bundle = client
        .get(&format!(
            "/fhir/DetectedIssue?patient={patient}&identifier={SAFETY_ISSUE_SYSTEM}|"
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    resources(&bundle, "DetectedIssue")
        .into_iter()
        .cloned()
        .collect()
}

fn closed_by_review(issue: &Value) -> bool {
    issue["mitigation"].to_string().contains("no-longer-found")
}

/// Waits until the stored issue implicating `entry` passes `test`, and returns it.
async fn stored_issue_where(
    client: &Client,
    patient: &str,
    entry: &str,
    test: impl Fn(&Value) -> bool,
) -> Value {
    support::eventually(|| async {
        stored_issues(client, patient)
            .await
            .into_iter()
            .find(|i| implicated(i).iter().any(|r| r == entry) && test(i))
    })
    .await
}

async fn stored_issues_follow_record(app: &TestApp) {
    let w = world(app).await;
    let p = &w.patient;
    let simva = created(&w.gp, &prescription(p, dmd("320000009"), "active", Some(1))).await;
    let clari = created(&w.gp, &prescription(p, dmd("83999008"), "active", Some(2))).await;

    // Found: stored once, open, naming both, with SMR's Provenance.
    let issue = stored_issue_where(&w.gp, p, &simva, |i| !closed_by_review(i)).await;
    assert_eq!(code(&issue), "DRG", "{issue}");
    assert!(implicated(&issue).contains(&clari), "{issue}");
    let id = issue["id"].as_str().unwrap_or_default().to_owned();
    let provenance = app
        .get(&format!("/fhir/Provenance?target=DetectedIssue/{id}"))
        .await
        .expect(StatusCode::OK)
        .json();
    let provenances = resources(&provenance, "Provenance");
    assert!(!provenances.is_empty(), "{provenance}");
    assert!(provenance.to_string().contains("SMR"), "{provenance}");

    // An unrelated write re-reviews the record and changes nothing stored.
    created(&w.gp, &prescription(p, dmd("109081006"), "active", None)).await;
    support::feed_settled(app).await;
    let again = stored_issues(&w.gp, p).await;
    let same: Vec<&Value> = again.iter().filter(|i| i["id"] == id.as_str()).collect();
    assert_eq!(same.len(), 1, "one issue per problem: {again:?}");
    assert_eq!(same[0]["meta"]["versionId"], issue["meta"]["versionId"]);
    assert_eq!(
        again.iter().filter(|i| code(i) == "DRG").count(),
        1,
        "{again:?}"
    );

    // Clarithromycin stopped: the issue is closed, not deleted.
    let clari_id = clari.split('/').nth(1).unwrap_or_default();
    let mut stopped = w.gp.get(&format!("/fhir/{clari}")).await.json();
    stopped["status"] = json!("stopped");
    w.gp.put(&format!("/fhir/{clari}"), &stopped)
        .await
        .expect(StatusCode::OK);
    let shut = stored_issue_where(&w.gp, p, &simva, closed_by_review).await;
    assert_eq!(shut["id"], id.as_str(), "the same issue, closed");
    assert_eq!(shut["status"], "final");

    // Restarted: the same issue is reopened.
    let mut restarted =
        w.gp.get(&format!("/fhir/MedicationRequest/{clari_id}"))
            .await
            .json();
    restarted["status"] = json!("active");
    w.gp.put(&format!("/fhir/{clari}"), &restarted)
        .await
        .expect(StatusCode::OK);
    let reopened = stored_issue_where(&w.gp, p, &simva, |i| !closed_by_review(i)).await;
    assert_eq!(reopened["id"], id.as_str());
    assert_eq!(reopened["identifiedDateTime"], issue["identifiedDateTime"]);

    // A clinician's withdrawal (entered in error) is respected: not reopened, not duplicated.
    let mut withdrawn = reopened.clone();
    withdrawn["status"] = json!("entered-in-error");
    w.gp.put(&format!("/fhir/DetectedIssue/{id}"), &withdrawn)
        .await
        .expect(StatusCode::OK);
    created(&w.gp, &prescription(p, dmd("317334001"), "active", Some(1))).await;
    support::feed_settled(app).await;
    let after = stored_issues(&w.gp, p).await;
    let drg: Vec<&Value> = after.iter().filter(|i| code(i) == "DRG").collect();
    assert_eq!(drg.len(), 1, "{after:?}");
    assert_eq!(drg[0]["status"], "entered-in-error");
}

async fn stored_issue_labels(app: &TestApp) {
    let (w, secret, amiodarone) = withholding_world(app).await;
    let p = &w.patient;
    // The GP sees the stored interaction issue, labelled like the medicine it names.
    let issue = stored_issue_where(&w.gp, p, &amiodarone, |_| true).await;
    assert!(implicated(&issue).contains(&secret), "{issue}");
    assert!(
        issue["meta"]["security"].to_string().contains("PSY"),
        "{issue}"
    );
    // The pharmacy the consent withholds the medicine from does not see the issue.
    let pharmacist = app.as_user("u-ph", Role::CommunityPharmacist, Some(PHARMACY));
    let seen = stored_issues(&pharmacist, p).await;
    assert!(
        seen.iter().all(|i| i["id"] != issue["id"]),
        "withheld issue shown: {seen:?}"
    );
}
