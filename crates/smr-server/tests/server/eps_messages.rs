//! Issue 9, EPS messages: `POST /fhir/$process-message` with the NHS EPS examples in
//! `../shared/reference/fhir/nhs-eps-examples` (tests that need them skip when absent). Every
//! example is accepted with a response message; a patient named by many messages is stored
//! once; a cancellation stops the order it names; a message sent again adds nothing; a
//! dispense is linked to its stored order; an unknown NHS number, a Bundle that is not a
//! message and a caller without write rights are refused with nothing stored. Each runs on
//! SQLite and, when configured, PostgreSQL.

use crate::support;

use std::path::PathBuf;

use axum::http::StatusCode;
use serde_json::{Value, json};
use smr_access::Role;
use support::{Client, TestApp};

backend_tests! {
    every_example_is_accepted_once_each => every_example;
    a_patient_named_by_several_messages_is_stored_once => patient_once;
    a_cancellation_stops_the_order_it_names => cancellation;
    a_cancellation_before_its_order_keeps_the_order_cancelled => cancellation_first;
    a_message_sent_again_adds_nothing => resend;
    a_dispense_is_linked_to_its_stored_order => dispense_linked;
    the_provenance_names_the_sender => provenance;
    an_unknown_nhs_number_is_refused_and_nothing_stored => unknown_patient;
    a_bundle_that_is_not_an_eps_message_is_a_bad_request => not_a_message;
    a_role_without_write_rights_is_forbidden => forbidden;
    a_prescriber_keeps_the_directory_inside_the_order => prescriber;
}

const EXAMPLES: &str = "reference/fhir/nhs-eps-examples";
const NHS: &str = "https://fhir.nhs.uk/Id/nhs-number";
const ITEM: &str = "https://fhir.nhs.uk/Id/prescription-order-item-number";
const PRESCRIPTION: &str = "https://fhir.nhs.uk/Id/prescription-order-number";
const ORDER_9449304130: &str = "primary-care_acute_nominated-pharmacy_responsible-party-org_separate-telecom_1-Process-Request-Send-200_OK.json";
const SAME_PRESCRIPTION_9449304130: &str =
    "primary-care_repeat-prescribing_1-Process-Request-Send-200_OK.json";
const CANCEL: &str = "primary-care_acute_nominated-pharmacy_medical-prescriber_cancellations_2-Process-Request-Cancel-200_OK.json";
const CANCEL_SEND: &str = "primary-care_acute_nominated-pharmacy_medical-prescriber_cancellations_2-Process-Request-Send-200_OK.json";
const CANCELLED_ITEM: &str = "5cb17f5a-11ac-4e18-825f-6470467238b3";
const SINGLE_ORDER: &str = "secondary-care_community_repeat-dispensing_nominated-pharmacy_clinical-practitioner_single-medication-request_1-Process-Request-Send-200_OK.json";
const SINGLE_DISPENSE: &str = "secondary-care_community_repeat-dispensing_nominated-pharmacy_clinical-practitioner_single-medication-request_1-Process-Request-Dispense-200_OK.json";

/// Every example file, by name, sorted; empty (with a notice) when `../shared` is absent.
fn examples() -> Vec<(String, Value)> {
    let Some(dir) = support::shared_path(EXAMPLES) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no EPS examples in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("example");
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, serde_json::from_str(&text).expect("example JSON"))
        })
        .collect()
}

fn example(name: &str) -> Option<Value> {
    let dir = support::shared_path(EXAMPLES)?;
    let text = std::fs::read_to_string(dir.join(name)).expect("example");
    Some(serde_json::from_str(&text).expect("example JSON"))
}

/// The NHS numbers a message names (its Patient entries, dispenses' subjects).
fn nhs_numbers(bundle: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for e in bundle["entry"].as_array().into_iter().flatten() {
        let r = &e["resource"];
        let ids = r["identifier"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|_| r["resourceType"] == "Patient")
            .chain(std::iter::once(&r["subject"]["identifier"]));
        for id in ids {
            if id["system"] == NHS
                && let Some(v) = id["value"].as_str()
            {
                out.push(v.to_owned());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Registers every patient the messages name (SMR refuses messages for patients it does not
/// hold); their ids.
async fn register(app: &TestApp, bundles: &[&Value]) -> Vec<String> {
    let mut all: Vec<String> = bundles.iter().flat_map(|b| nhs_numbers(b)).collect();
    all.sort();
    all.dedup();
    let mut ids = Vec::new();
    for nhs in all {
        ids.push(support::named_patient(app, &nhs, "EPS").await);
    }
    ids
}

/// Posts a message; checks the response message names the request and answers `code`.
async fn send(client: &Client, bundle: &Value, status: StatusCode, code: &str) -> Value {
    let reply = client
        .post("/fhir/$process-message", bundle)
        .await
        .expect(status);
    let body = reply.json();
    assert_eq!(body["resourceType"], "Bundle", "{body}");
    assert_eq!(body["type"], "message");
    let header = &body["entry"][0]["resource"];
    assert_eq!(header["resourceType"], "MessageHeader");
    let request = smr_eps::read_header(bundle).expect("request header");
    assert_eq!(header["response"]["identifier"], request.id.as_str());
    assert_eq!(header["response"]["code"], code, "{body}");
    assert_eq!(
        header["eventCoding"],
        bundle["entry"][0]["resource"]["eventCoding"]
    );
    assert_eq!(
        body["entry"][1]["resource"]["resourceType"],
        "OperationOutcome"
    );
    body
}

async fn count(app: &TestApp, query: &str) -> i64 {
    let sep = if query.contains('?') { '&' } else { '?' };
    let body = app
        .get(&format!("/fhir/{query}{sep}_summary=count"))
        .await
        .expect(StatusCode::OK)
        .json();
    body["total"]
        .as_i64()
        .unwrap_or_else(|| panic!("no total: {body}"))
}

const COUNTED: &[&str] = &[
    "Patient",
    "MedicationRequest",
    "MedicationDispense",
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Provenance",
];

async fn counts(app: &TestApp) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for ty in COUNTED {
        out.push((ty.to_string(), count(app, ty).await));
    }
    out
}

/// The stored order of one prescription line in one patient's record.
async fn order(app: &TestApp, patient: &str, prescription: &str, item: &str) -> Value {
    let body = app
        .get(&format!(
            "/fhir/MedicationRequest?subject=Patient/{patient}&identifier={PRESCRIPTION}|{prescription}&identifier={ITEM}|{item}"
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    let entries = body["entry"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        entries.len(),
        1,
        "one stored order for {prescription}/{item}: {body}"
    );
    entries[0]["resource"].clone()
}

async fn patient_id(app: &TestApp, nhs: &str) -> String {
    let body = app
        .get(&format!("/fhir/Patient?identifier={NHS}|{nhs}"))
        .await
        .expect(StatusCode::OK)
        .json();
    body["entry"][0]["resource"]["id"]
        .as_str()
        .expect("patient")
        .to_owned()
}

async fn every_example(app: &TestApp) {
    let all = examples();
    if all.is_empty() {
        return;
    }
    let patients = register(app, &all.iter().map(|(_, b)| b).collect::<Vec<_>>()).await;
    for (name, bundle) in &all {
        let reply = app.post("/fhir/$process-message", bundle).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: {}", reply.text);
        send(app, bundle, StatusCode::OK, "ok").await;
    }
    let first = counts(app).await;
    assert_eq!(
        first[0],
        ("Patient".into(), patients.len() as i64),
        "{first:?}"
    );
    let orders = first[1].1;
    let dispenses = first[2].1;
    assert!(orders > 0 && dispenses > 0, "{first:?}");
    // Every order and dispense is in a registered patient's record.
    for ty in ["MedicationRequest", "MedicationDispense"] {
        let in_records: i64 = {
            let mut n = 0;
            for p in &patients {
                n += count(app, &format!("{ty}?subject=Patient/{p}")).await;
            }
            n
        };
        let total = count(app, ty).await;
        assert_eq!(in_records, total, "{ty} outside the patients' records");
    }
    // Everything again: nothing more is stored.
    for (_, bundle) in &all {
        send(app, bundle, StatusCode::OK, "ok").await;
    }
    assert_eq!(counts(app).await, first);
}

async fn patient_once(app: &TestApp) {
    let all = examples();
    if all.is_empty() {
        return;
    }
    // Four messages about patient 9990548609, each with its own Patient entry.
    let about: Vec<&Value> = all
        .iter()
        .map(|(_, b)| b)
        .filter(|b| nhs_numbers(b) == ["9990548609"])
        .take(4)
        .collect();
    assert_eq!(about.len(), 4);
    let ids = register(app, &about).await;
    for bundle in &about {
        send(app, bundle, StatusCode::OK, "ok").await;
    }
    assert_eq!(
        count(app, &format!("Patient?identifier={NHS}|9990548609")).await,
        1
    );
    assert_eq!(count(app, "Patient").await, 1);
    let in_record = count(
        app,
        &format!("MedicationRequest?subject=Patient/{}", ids[0]),
    )
    .await;
    assert_eq!(in_record, count(app, "MedicationRequest").await);
    assert!(in_record > 0);
    // The sender's Organization, matched by ODS code, is stored once too.
    assert_eq!(
        count(
            app,
            "Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code|A83008"
        )
        .await,
        1
    );
}

async fn cancellation(app: &TestApp) {
    let (Some(order_msg), Some(cancel_msg), Some(other)) = (
        example(ORDER_9449304130),
        example(CANCEL),
        example(CANCEL_SEND),
    ) else {
        return;
    };
    register(app, &[&order_msg, &cancel_msg, &other]).await;
    send(app, &order_msg, StatusCode::OK, "ok").await;
    send(app, &other, StatusCode::OK, "ok").await;
    let patient = patient_id(app, "9449304130").await;
    let before = order(app, &patient, "24F5DA-A83008-7EFE6Z", CANCELLED_ITEM).await;
    assert_eq!(before["status"], "active");

    let reply = send(app, &cancel_msg, StatusCode::OK, "ok").await;
    let after = order(app, &patient, "24F5DA-A83008-7EFE6Z", CANCELLED_ITEM).await;
    assert_eq!(
        after["id"], before["id"],
        "the stored order itself is cancelled"
    );
    assert_eq!(after["status"], "cancelled");
    assert_eq!(after["statusReason"]["coding"][0]["code"], "0002");
    assert_eq!(after["meta"]["versionId"], "2");
    let said = reply["entry"][1]["resource"]["issue"].to_string();
    assert!(said.contains("updated"), "{said}");
    // The prescription's other lines, and another patient's order, are not touched.
    let sibling = order(
        app,
        &patient,
        "24F5DA-A83008-7EFE6Z",
        "a54219b8-f741-4c47-b662-e4f8dfa49ab6",
    )
    .await;
    assert_eq!(sibling["status"], "active");
    assert_eq!(count(app, "MedicationRequest?status=cancelled").await, 1);
    // The cancellation stored no second copy of the order.
    assert_eq!(
        count(
            app,
            &format!(
                "MedicationRequest?identifier={ITEM}|{CANCELLED_ITEM}&subject=Patient/{patient}"
            )
        )
        .await,
        1
    );
    // Sent again, it changes nothing.
    send(app, &cancel_msg, StatusCode::OK, "ok").await;
    let again = order(app, &patient, "24F5DA-A83008-7EFE6Z", CANCELLED_ITEM).await;
    assert_eq!(again["meta"]["versionId"], "2");
}

async fn cancellation_first(app: &TestApp) {
    let (Some(order_msg), Some(cancel_msg)) =
        (example(SAME_PRESCRIPTION_9449304130), example(CANCEL))
    else {
        return;
    };
    register(app, &[&order_msg, &cancel_msg]).await;
    send(app, &cancel_msg, StatusCode::OK, "ok").await;
    send(app, &order_msg, StatusCode::OK, "ok").await;
    let patient = patient_id(app, "9449304130").await;
    let line = order(app, &patient, "24F5DA-A83008-7EFE6Z", CANCELLED_ITEM).await;
    assert_eq!(
        line["status"], "cancelled",
        "an order arriving after its cancellation stays cancelled"
    );
    assert_eq!(count(app, "MedicationRequest").await, 4);
    assert_eq!(count(app, "MedicationRequest?status=active").await, 3);
}

async fn resend(app: &TestApp) {
    let Some(order_msg) = example(ORDER_9449304130) else {
        return;
    };
    register(app, &[&order_msg]).await;
    let first = send(app, &order_msg, StatusCode::OK, "ok").await;
    let stored = counts(app).await;
    assert!(
        first["entry"][1]["resource"]["issue"]
            .to_string()
            .contains("created")
    );
    let second = send(app, &order_msg, StatusCode::OK, "ok").await;
    assert_eq!(counts(app).await, stored);
    let said = second["entry"][1]["resource"]["issue"].to_string();
    assert!(!said.contains("created"), "{said}");
    assert!(said.contains("already stored"), "{said}");
}

async fn dispense_linked(app: &TestApp) {
    let (Some(order_msg), Some(dispense)) = (example(SINGLE_ORDER), example(SINGLE_DISPENSE))
    else {
        return;
    };
    register(app, &[&order_msg, &dispense]).await;
    send(app, &order_msg, StatusCode::OK, "ok").await;
    send(app, &dispense, StatusCode::OK, "ok").await;
    let patient = patient_id(app, "9449305552").await;
    let order = order(
        app,
        &patient,
        "B407F7-A99968-4DB2AU",
        "a54219b8-f741-4c47-b662-e4f8dfa49ab6",
    )
    .await;
    let body = app
        .get(&format!(
            "/fhir/MedicationDispense?subject=Patient/{patient}"
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    let entries = body["entry"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 1, "{body}");
    let md = &entries[0]["resource"];
    assert_eq!(
        md["authorizingPrescription"][0]["reference"],
        format!(
            "MedicationRequest/{}",
            order["id"].as_str().unwrap_or_default()
        )
    );
    // The message's copy of the order went; the performer it names stays contained.
    let contained = md["contained"].as_array().cloned().unwrap_or_default();
    assert!(
        contained
            .iter()
            .all(|c| c["resourceType"] != "MedicationRequest"),
        "{md}"
    );
    assert_eq!(md["performer"][0]["actor"]["reference"], "#performer");
    assert_eq!(md["subject"]["reference"], format!("Patient/{patient}"));
}

async fn provenance(app: &TestApp) {
    let Some(order_msg) = example(ORDER_9449304130) else {
        return;
    };
    register(app, &[&order_msg]).await;
    send(app, &order_msg, StatusCode::OK, "ok").await;
    let patient = patient_id(app, "9449304130").await;
    let order = order(app, &patient, "24F5DA-A83008-7EFE6Z", CANCELLED_ITEM).await;
    let body = app
        .get(&format!(
            "/fhir/Provenance?target=MedicationRequest/{}",
            order["id"].as_str().unwrap_or_default()
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    let prov = &body["entry"][0]["resource"];
    let agents = prov["agent"].as_array().cloned().unwrap_or_default();
    let sender = agents
        .iter()
        .find(|a| a["who"]["identifier"]["value"] == "A83008")
        .unwrap_or_else(|| panic!("no sender agent: {prov}"));
    assert_eq!(sender["type"]["coding"][0]["code"], "author");
    assert_eq!(prov["entity"][0]["role"], "source", "{prov}");
    assert!(
        prov["entity"][0]["what"]["display"]
            .as_str()
            .unwrap_or_default()
            .contains("prescription-order"),
        "{prov}"
    );
}

async fn unknown_patient(app: &TestApp) {
    let Some(order_msg) = example(ORDER_9449304130) else {
        return;
    };
    // Another patient is held; the message's is not.
    support::named_patient(app, "9990548609", "Other").await;
    let before = counts(app).await;
    let reply = send(
        app,
        &order_msg,
        StatusCode::UNPROCESSABLE_ENTITY,
        "fatal-error",
    )
    .await;
    let outcome = &reply["entry"][1]["resource"];
    assert_eq!(outcome["issue"][0]["severity"], "error");
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap_or_default()
            .contains("9449304130"),
        "{outcome}"
    );
    assert_eq!(counts(app).await, before, "nothing stored");
}

async fn not_a_message(app: &TestApp) {
    let header = json!({"resourceType": "MessageHeader",
        "eventCoding": {"system": "https://fhir.nhs.uk/CodeSystem/message-event", "code": "prescription-order"},
        "source": {"endpoint": "https://example.org"}});
    let cases = [
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": header}]}),
        json!({"resourceType": "Bundle", "type": "message",
               "entry": [{"resource": {"resourceType": "Patient"}}]}),
        json!({"resourceType": "Bundle", "type": "message"}),
        json!({"resourceType": "Patient"}),
    ];
    let before = counts(app).await;
    for bundle in &cases {
        let reply = app
            .post("/fhir/$process-message", bundle)
            .await
            .expect(StatusCode::BAD_REQUEST);
        assert_eq!(
            reply.json()["resourceType"],
            "OperationOutcome",
            "{}",
            reply.text
        );
    }
    // A message with an event SMR does not take: 400, answered as a response message.
    let mut unknown = header.clone();
    unknown["eventCoding"]["code"] = json!("prescription-release");
    let reply = app
        .post(
            "/fhir/$process-message",
            &json!({"resourceType": "Bundle", "type": "message",
                    "entry": [{"fullUrl": "urn:uuid:5b1ef5c4-7f38-4a4d-9a7e-3d1b6f3c8f00", "resource": unknown}]}),
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert!(
        reply.text.contains("prescription-release"),
        "{}",
        reply.text
    );
    assert_eq!(counts(app).await, before);
}

async fn forbidden(app: &TestApp) {
    let (Some(order_msg), Some(dispense)) = (example(SINGLE_ORDER), example(SINGLE_DISPENSE))
    else {
        return;
    };
    register(app, &[&order_msg]).await;
    let before = counts(app).await;
    for (role, bundle) in [
        (Role::CommunityPharmacist, &order_msg),
        (Role::Nurse, &order_msg),
        (Role::Analyst, &order_msg),
        (Role::CareWorker, &dispense),
        (Role::Gp, &dispense),
    ] {
        let client = app.as_user("eps-user", role, Some("RBA"));
        let reply = send(&client, bundle, StatusCode::FORBIDDEN, "fatal-error").await;
        assert_eq!(
            reply["entry"][1]["resource"]["issue"][0]["code"],
            "forbidden"
        );
    }
    assert_eq!(counts(app).await, before, "nothing stored");
}

async fn prescriber(app: &TestApp) {
    let Some(order_msg) = example(SINGLE_ORDER) else {
        return;
    };
    // The patient's GP practice is the prescriber's organisation (RBA): a care relationship.
    let mut patient = support::fixture("patient.json");
    patient["identifier"][0]["value"] = json!("9449305552");
    patient["generalPractitioner"] = json!([{"identifier": {
        "system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RBA"}}]);
    let patient = app.create(&patient).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let client = app.as_user("dr-eps", Role::HospitalPrescriber, Some("RBA"));
    send(&client, &order_msg, StatusCode::OK, "ok").await;
    // A prescriber may not add to the shared directory: who prescribed stays in the order.
    for ty in ["Organization", "Practitioner", "PractitionerRole"] {
        assert_eq!(count(app, ty).await, 0, "{ty}");
    }
    let order = order(
        app,
        &patient,
        "B407F7-A99968-4DB2AU",
        "a54219b8-f741-4c47-b662-e4f8dfa49ab6",
    )
    .await;
    let requester = order["requester"]["reference"].as_str().expect("requester");
    let local = requester.strip_prefix('#').expect("a contained requester");
    let contained = order["contained"].as_array().cloned().unwrap_or_default();
    let role = contained
        .iter()
        .find(|c| c["id"] == local)
        .unwrap_or_else(|| panic!("{requester} not contained: {order}"));
    assert_eq!(role["resourceType"], "PractitionerRole");
    assert!(
        role["practitioner"]["reference"]
            .as_str()
            .is_some_and(|r| r.starts_with('#')),
        "{role}"
    );
}
