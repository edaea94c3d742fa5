//! Issue 11, medicines reconciliation: `POST Patient/{id}/$reconcile` (a discharge summary
//! compared with the patient's SMR record, or with an explicit source list),
//! `$reconcile-confirm` (the clinician's decisions written in one transaction with Provenance
//! and an AuditEvent, or nothing at all) and `$reconcile-timeliness` (NICE QS120), through the
//! HTTP API with each role's own token. Each runs on SQLite and, when configured, PostgreSQL.

use crate::support;

use axum::http::StatusCode;
use serde_json::{Value, json};
use smr_access::Role;
use support::{Client, TestApp, fixture};

backend_tests! {
    every_discrepancy_type_against_the_smr_record => every_type;
    an_explicit_source_list_is_compared_instead_of_the_record => explicit_source;
    a_confirmation_writes_medicines_provenance_and_an_audit_event => confirm;
    a_failed_confirmation_changes_nothing => failed_confirm;
    empty_lists_are_said_to_be_empty => empty_lists;
    bad_input_is_refused_with_an_operation_outcome => bad_input;
    only_clinicians_who_may_write_the_record_reconcile => access;
    timeliness_against_qs120 => timeliness;
}

const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const DMD: &str = "https://dmd.nhs.uk";
const GP: &str = "A81001";
const HOSPITAL: &str = "RXX01";
const DISCREPANCY: &str = "https://fhir.smr.nhs.uk/CodeSystem/reconciliation-discrepancy";
const INTENT_EXT: &str = "https://fhir.smr.nhs.uk/StructureDefinition/reconciliation-intent";

struct World {
    patient: String,
    gp: Client,
    doctor: Client,
    encounter: String,
}

/// A patient registered with the GP and admitted to the hospital (an inpatient Encounter
/// gives the hospital its care relationship).
async fn world(app: &TestApp) -> World {
    for (code, name) in [(GP, "Test Surgery"), (HOSPITAL, "Test Hospital")] {
        app.create(&json!({"resourceType": "Organization", "identifier": [{"system": ODS, "value": code}], "name": name}))
            .await;
    }
    let mut patient = fixture("patient.json");
    patient["generalPractitioner"] = json!([{"identifier": {"system": ODS, "value": GP}}]);
    let patient = app.create(&patient).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let encounter = app
        .create(
            &json!({"resourceType": "Encounter", "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "period": {"start": hours_ago(30)},
            "subject": {"reference": format!("Patient/{patient}")},
            "serviceProvider": {"identifier": {"system": ODS, "value": HOSPITAL}}}),
        )
        .await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    World {
        gp: app.as_user("u-gp", Role::Gp, Some(GP)),
        doctor: app.as_user("u-doctor", Role::HospitalPrescriber, Some(HOSPITAL)),
        patient,
        encounter,
    }
}

fn hours_ago(hours: i64) -> String {
    let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64;
    smr_fhir::datetime::format_instant(now - hours * 3_600_000_000)
}

/// A fixture of `fixtures/reconcile/` about `patient`.
fn reconcile_fixture(name: &str, patient: &str) -> Value {
    let text = fixture(&format!("reconcile/{name}"))
        .to_string()
        .replace("PATIENT_ID", patient);
    serde_json::from_str(&text).expect("fixture JSON")
}

fn dosage(tablets: u32, per_day: u32, route: (&str, &str)) -> Value {
    json!([{"text": format!("{tablets} tablet(s) {per_day} time(s) a day"),
        "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
        "route": {"coding": [{"system": "http://snomed.info/sct", "code": route.0, "display": route.1}]},
        "doseAndRate": [{"doseQuantity": {"value": tablets, "unit": "tablet", "system": "http://snomed.info/sct", "code": "428673006"}}]}])
}

const ORAL: (&str, &str) = ("26643006", "Oral");

/// A GP repeat authorisation.
fn repeat(patient: &str, code: &str, tablets: u32, per_day: u32) -> Value {
    json!({"resourceType": "MedicationRequest", "status": "active", "intent": "plan",
        "medicationCodeableConcept": {"coding": [{"system": DMD, "code": code}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "authoredOn": hours_ago(24 * 40), "dosageInstruction": dosage(tablets, per_day, ORAL)})
}

async fn created(client: &Client, resource: &Value) -> String {
    let ty = resource["resourceType"].as_str().unwrap_or_default();
    let reply = client.post(&format!("/fhir/{ty}"), resource).await;
    let status = reply.status;
    let body = reply.json();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    format!("{ty}/{}", body["id"].as_str().unwrap_or_default())
}

/// The GP record the discharge bundle is compared with: one medicine per discrepancy type.
async fn gp_record(w: &World) {
    for (code, tablets, per_day) in [
        ("320000009", 1, 1), // simvastatin: unchanged
        ("322236009", 2, 4), // paracetamol: omitted from the discharge list
        ("318902004", 1, 1), // ramipril capsules → tablets: formulation
        ("317972000", 1, 1), // furosemide once → twice a day: frequency
        ("319733000", 3, 1), // warfarin 3 mg → 2 mg: dose
        ("317291008", 1, 1), // omeprazole oral → nasogastric: route
        ("319775004", 1, 1), // aspirin stopped with a reason
        ("318859000", 1, 1), // lisinopril listed twice: duplication
    ] {
        created(&w.gp, &repeat(&w.patient, code, tablets, per_day)).await;
    }
}

fn parameters(source: Option<Value>, target: Option<Value>) -> Value {
    let mut p = Vec::new();
    if let Some(s) = source {
        p.push(json!({"name": "source", "resource": s}));
    }
    if let Some(t) = target {
        p.push(json!({"name": "target", "resource": t}));
    }
    json!({"resourceType": "Parameters", "parameter": p})
}

async fn reconcile(client: &Client, patient: &str, body: &Value) -> Value {
    let reply = client
        .post(&format!("/fhir/Patient/{patient}/$reconcile"), body)
        .await;
    let status = reply.status;
    let list = reply.json();
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["resourceType"], "List");
    assert_eq!(list["mode"], "changes");
    assert_eq!(list["status"], "current");
    assert_eq!(list["subject"]["reference"], format!("Patient/{patient}"));
    list
}

fn entries(list: &Value) -> Vec<&Value> {
    list["entry"].as_array().into_iter().flatten().collect()
}

fn classification(entry: &Value) -> &str {
    assert_eq!(entry["flag"]["coding"][0]["system"], DISCREPANCY);
    entry["flag"]["coding"][0]["code"]
        .as_str()
        .unwrap_or_default()
}

fn intent(entry: &Value) -> Option<&str> {
    entry["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["url"] == INTENT_EXT)
        .and_then(|e| e["valueCoding"]["code"].as_str())
}

/// The entry whose proposed medicine is named `name` (case-insensitive prefix).
fn line<'a>(list: &'a Value, name: &str) -> &'a Value {
    entries(list)
        .into_iter()
        .find(|e| {
            e["item"]["display"]
                .as_str()
                .is_some_and(|d| d.to_lowercase().starts_with(&name.to_lowercase()))
        })
        .unwrap_or_else(|| panic!("no line for {name} in {list}"))
}

/// Resources of `ty` in the patient's record.
async fn count(client: &Client, ty: &str, patient: &str) -> u64 {
    let reply = client
        .get(&format!(
            "/fhir/{ty}?subject=Patient/{patient}&_total=accurate"
        ))
        .await
        .expect(StatusCode::OK);
    reply.json()["total"].as_u64().unwrap_or(u64::MAX)
}

async fn every_type(app: &TestApp) {
    let w = world(app).await;
    gp_record(&w).await;
    let lists_before = count(&w.doctor, "List", &w.patient).await;
    let body = parameters(
        None,
        Some(reconcile_fixture("discharge-bundle.json", &w.patient)),
    );
    let list = reconcile(&w.doctor, &w.patient, &body).await;
    assert_eq!(entries(&list).len(), 10, "{list}");
    let expect = [
        ("Simvastatin", "unchanged", None),
        ("Paracetamol", "omission", Some("unintentional")),
        ("Ramipril", "formulation", Some("unintentional")),
        ("Furosemide", "frequency", Some("unintentional")),
        ("Warfarin", "dose", Some("unintentional")),
        ("Omeprazole", "route", Some("unintentional")),
        ("Aspirin", "stopped", Some("intentional")),
        ("Lisinopril", "duplication", Some("unintentional")),
        ("Atorvastatin", "commission", Some("unintentional")),
        ("Unlisted herbal remedy", "unmapped", Some("unintentional")),
    ];
    for (name, code, want_intent) in expect {
        let e = line(&list, name);
        assert_eq!(classification(e), code, "{name}: {e}");
        assert_eq!(intent(e), want_intent, "{name}: {e}");
    }
    // The source side names the record's stored entries; the stop keeps its reason.
    let aspirin = line(&list, "Aspirin");
    assert!(aspirin.to_string().contains("MedicationRequest/"));
    assert!(aspirin["flag"]["text"].is_string());
    let proposed = &list["contained"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| {
            format!("#{}", c["id"].as_str().unwrap_or_default()) == aspirin["item"]["reference"]
        })
        .cloned()
        .unwrap_or_default();
    assert_eq!(proposed["status"], "stopped");
    assert!(
        proposed["statusReason"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("GI bleed")
    );
    // The unmapped line is kept as written.
    let unmapped = line(&list, "Unlisted herbal remedy");
    assert!(unmapped.to_string().contains("reconciliation-unmapped"));
    // The note says how many lines need review.
    assert!(list["note"].to_string().contains("flagged for review"));
    // Nothing stored by the comparison.
    assert_eq!(count(&w.doctor, "List", &w.patient).await, lists_before);
}

async fn explicit_source(app: &TestApp) {
    let w = world(app).await;
    let body = parameters(
        Some(reconcile_fixture("admission-history-list.json", &w.patient)),
        Some(reconcile_fixture("discharge-bundle.json", &w.patient)),
    );
    let list = reconcile(&w.doctor, &w.patient, &body).await;
    assert_eq!(classification(line(&list, "Simvastatin")), "unchanged");
    assert_eq!(classification(line(&list, "Paracetamol")), "omission");
    // Without the GP record, ramipril is only in the target: added.
    assert_eq!(classification(line(&list, "Ramipril")), "commission");
    assert_eq!(
        classification(line(&list, "Aspirin")),
        "unchanged",
        "stopped on discharge, never in the history"
    );
}

fn decision(line: &str, action: &str) -> Value {
    json!({"name": "decision", "part": [{"name": "line", "valueString": line}, {"name": "action", "valueCode": action}]})
}

fn line_id(entry: &Value) -> String {
    entry["item"]["reference"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches('#')
        .to_owned()
}

async fn confirm(app: &TestApp) {
    let w = world(app).await;
    gp_record(&w).await;
    let body = parameters(
        None,
        Some(reconcile_fixture("discharge-bundle.json", &w.patient)),
    );
    let list = reconcile(&w.doctor, &w.patient, &body).await;
    let statements_before = count(&w.doctor, "MedicationStatement", &w.patient).await;
    let mut params = vec![
        json!({"name": "reconciliation", "resource": list}),
        json!({"name": "encounter", "valueReference": {"reference": format!("Encounter/{}", w.encounter)}}),
    ];
    let mut expected_written = 0;
    for e in entries(&list) {
        let id = line_id(e);
        let name = e["item"]["display"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        if name.starts_with("unlisted") {
            params.push(decision(&id, "reject"));
        } else if name.starts_with("warfarin") {
            let mut d = decision(&id, "change");
            d["part"].as_array_mut().into_iter().for_each(|p| {
                p.push(json!({"name": "medication", "resource": {"resourceType": "MedicationStatement", "status": "active",
                    "medicationCodeableConcept": {"coding": [{"system": DMD, "code": "319733000"}]},
                    "subject": {"reference": format!("Patient/{}", w.patient)},
                    "dosage": dosage(3, 1, ORAL)}}));
                p.push(json!({"name": "note", "valueString": "INR in range on 3 mg: keep the usual dose"}));
            });
            params.push(d);
            expected_written += 1;
        } else {
            params.push(decision(&id, "accept"));
            expected_written += 1;
        }
    }
    let reply = w
        .doctor
        .post(
            &format!("/fhir/Patient/{}/$reconcile-confirm", w.patient),
            &json!({"resourceType": "Parameters", "parameter": params}),
        )
        .await;
    let status = reply.status;
    assert!(
        reply
            .header("location")
            .is_some_and(|l| l.contains("/List/"))
    );
    let stored = reply.json();
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    assert_eq!(stored["mode"], "snapshot");
    assert_eq!(
        stored["encounter"]["reference"],
        format!("Encounter/{}", w.encounter)
    );
    assert_eq!(entries(&stored).len(), 10);
    let list_id = stored["id"].as_str().unwrap_or_default().to_owned();
    // The reconciled medicines, each derived from the reconciliation.
    assert_eq!(
        count(&w.doctor, "MedicationStatement", &w.patient).await,
        statements_before + expected_written
    );
    let written: Vec<String> = entries(&stored)
        .iter()
        .filter_map(|e| e["item"]["reference"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(written.len() as u64, expected_written);
    for r in &written {
        let s = w
            .doctor
            .get(&format!("/fhir/{r}"))
            .await
            .expect(StatusCode::OK)
            .json();
        assert_eq!(s["derivedFrom"][0]["reference"], format!("List/{list_id}"));
        // Provenance written by the normal write path.
        let prov = w
            .doctor
            .get(&format!("/fhir/Provenance?target={r}"))
            .await
            .expect(StatusCode::OK)
            .json();
        let provenance = prov["entry"][0]["resource"].to_string();
        assert!(provenance.contains("u-doctor"), "{prov}");
    }
    let warfarin = entries(&stored)
        .into_iter()
        .find(|e| {
            e["item"]["display"]
                .as_str()
                .is_some_and(|d| d.starts_with("Warfarin"))
        })
        .cloned()
        .unwrap_or_default();
    let s = w
        .doctor
        .get(&format!(
            "/fhir/{}",
            warfarin["item"]["reference"].as_str().unwrap_or_default()
        ))
        .await
        .json();
    assert_eq!(s["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"], 3);
    assert!(s["note"].to_string().contains("INR in range"));
    // The stop is recorded as a stopped statement.
    let aspirin = entries(&stored)
        .into_iter()
        .find(|e| {
            e["item"]["display"]
                .as_str()
                .is_some_and(|d| d.starts_with("Aspirin"))
        })
        .cloned()
        .unwrap_or_default();
    let s = w
        .doctor
        .get(&format!(
            "/fhir/{}",
            aspirin["item"]["reference"].as_str().unwrap_or_default()
        ))
        .await
        .json();
    assert_eq!(s["status"], "stopped");
    // The AuditEvent: the patient sees the confirmation in their access log.
    let audit = app
        .as_patient(&w.patient)
        .get(&format!("/fhir/AuditEvent?patient=Patient/{}", w.patient))
        .await
        .expect(StatusCode::OK)
        .json();
    let text = audit.to_string();
    assert!(text.contains("$reconcile-confirm"), "{audit}");
    assert!(
        text.contains("$reconcile\""),
        "the comparison is audited too: {audit}"
    );
    assert!(text.contains(&format!("List/{list_id}")), "{audit}");
}

async fn failed_confirm(app: &TestApp) {
    let w = world(app).await;
    gp_record(&w).await;
    let body = parameters(
        None,
        Some(reconcile_fixture("discharge-bundle.json", &w.patient)),
    );
    let list = reconcile(&w.doctor, &w.patient, &body).await;
    let lists = count(&w.doctor, "List", &w.patient).await;
    let statements = count(&w.doctor, "MedicationStatement", &w.patient).await;
    let ids: Vec<String> = entries(&list).into_iter().map(line_id).collect();
    // A line left undecided: 422, nothing written.
    let mut params = vec![json!({"name": "reconciliation", "resource": list})];
    params.extend(ids.iter().skip(1).map(|id| decision(id, "accept")));
    let reply = w
        .doctor
        .post(
            &format!("/fhir/Patient/{}/$reconcile-confirm", w.patient),
            &json!({"resourceType": "Parameters", "parameter": params}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.json()["resourceType"], "OperationOutcome");
    // A change the store refuses (a MedicationStatement without a medicine) fails the whole
    // transaction: the accepted lines before it are not written either.
    let mut params = vec![json!({"name": "reconciliation", "resource": list})];
    for (i, id) in ids.iter().enumerate() {
        if i == ids.len() - 1 {
            let mut d = decision(id, "change");
            d["part"].as_array_mut().into_iter().for_each(|p| {
                p.push(json!({"name": "medication", "resource": {"resourceType": "MedicationStatement", "status": "active"}}));
            });
            params.push(d);
        } else {
            params.push(decision(id, "accept"));
        }
    }
    let reply = w
        .doctor
        .post(
            &format!("/fhir/Patient/{}/$reconcile-confirm", w.patient),
            &json!({"resourceType": "Parameters", "parameter": params}),
        )
        .await;
    assert!(reply.status.is_client_error(), "{}", reply.json());
    assert_eq!(reply.json()["resourceType"], "OperationOutcome");
    assert_eq!(count(&w.doctor, "List", &w.patient).await, lists);
    assert_eq!(
        count(&w.doctor, "MedicationStatement", &w.patient).await,
        statements
    );
}

async fn empty_lists(app: &TestApp) {
    let w = world(app).await;
    let empty = reconcile_fixture("empty-list.json", &w.patient);
    // Nothing on the record and nothing on the list.
    let list = reconcile(
        &w.doctor,
        &w.patient,
        &parameters(None, Some(empty.clone())),
    )
    .await;
    assert!(entries(&list).is_empty());
    assert_eq!(list["emptyReason"]["coding"][0]["code"], "nilknown");
    assert!(
        list["note"].to_string().contains("Both lists are empty"),
        "{list}"
    );
    // A record with medicines against an empty discharge list: every one an omission.
    created(&w.gp, &repeat(&w.patient, "320000009", 1, 1)).await;
    let list = reconcile(&w.doctor, &w.patient, &parameters(None, Some(empty))).await;
    assert_eq!(entries(&list).len(), 1);
    assert_eq!(classification(entries(&list)[0]), "omission");
    let notes = list["note"].to_string();
    assert!(notes.contains("The target list is empty"), "{list}");
    assert!(notes.contains("No medicines on discharge"), "{list}");
}

async fn bad_input(app: &TestApp) {
    let w = world(app).await;
    let path = format!("/fhir/Patient/{}/$reconcile", w.patient);
    let refused = |reply: support::Reply, status: StatusCode| {
        let body = reply.json();
        assert_eq!(reply.status, status, "{body}");
        assert_eq!(body["resourceType"], "OperationOutcome");
        body
    };
    // Not a Parameters.
    let reply = w
        .doctor
        .post(&path, &reconcile_fixture("empty-list.json", &w.patient))
        .await;
    refused(reply, StatusCode::BAD_REQUEST);
    // No target.
    let reply = w
        .doctor
        .post(
            &path,
            &parameters(Some(reconcile_fixture("empty-list.json", &w.patient)), None),
        )
        .await;
    let body = refused(reply, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("target"));
    // A target about another patient.
    let other = reconcile_fixture("discharge-bundle.json", "someone-else");
    let reply = w.doctor.post(&path, &parameters(None, Some(other))).await;
    let body = refused(reply, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.to_string().contains("Patient/someone-else"));
    // A List entry naming nothing it carries.
    let mut dangling = reconcile_fixture("empty-list.json", &w.patient);
    if let Some(o) = dangling.as_object_mut() {
        o.remove("emptyReason");
    }
    dangling["entry"] = json!([{"item": {"reference": "MedicationStatement/not-here"}}]);
    let reply = w
        .doctor
        .post(&path, &parameters(None, Some(dangling)))
        .await;
    refused(reply, StatusCode::UNPROCESSABLE_ENTITY);
    // Unknown patient.
    let reply = w
        .doctor
        .post(
            "/fhir/Patient/no-such-patient/$reconcile",
            &parameters(
                None,
                Some(reconcile_fixture("empty-list.json", "no-such-patient")),
            ),
        )
        .await;
    refused(reply, StatusCode::NOT_FOUND);
    // Confirm without the reconciliation.
    let reply = w
        .doctor
        .post(
            &format!("/fhir/Patient/{}/$reconcile-confirm", w.patient),
            &json!({"resourceType": "Parameters", "parameter": [decision("line-1", "accept")]}),
        )
        .await;
    refused(reply, StatusCode::BAD_REQUEST);
}

async fn access(app: &TestApp) {
    let w = world(app).await;
    gp_record(&w).await;
    let body = parameters(
        None,
        Some(reconcile_fixture("discharge-bundle.json", &w.patient)),
    );
    let path = format!("/fhir/Patient/{}/$reconcile", w.patient);
    // The GP and the hospital prescriber may; so may a hospital pharmacist of the hospital.
    reconcile(&w.gp, &w.patient, &body).await;
    let hospital_pharmacist = app.as_user("u-hp", Role::HospitalPharmacist, Some(HOSPITAL));
    reconcile(&hospital_pharmacist, &w.patient, &body).await;
    // A community pharmacist may not write Lists; a nurse may not; the patient may not.
    for client in [
        app.as_user("u-cp", Role::CommunityPharmacist, Some("FA123")),
        app.as_user("u-nurse", Role::Nurse, Some(HOSPITAL)),
        app.as_patient(&w.patient),
    ] {
        let reply = client.post(&path, &body).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert_eq!(reply.json()["resourceType"], "OperationOutcome");
    }
    // A GP elsewhere has no care relationship with the patient.
    let stranger = app.as_user("u-other", Role::Gp, Some("B86001"));
    let reply = stranger.post(&path, &body).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let reply = stranger
        .post(
            &format!("/fhir/Patient/{}/$reconcile-confirm", w.patient),
            &json!({"resourceType": "Parameters"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    // Refusals are audited.
    let audit = app
        .as_patient(&w.patient)
        .get(&format!("/fhir/AuditEvent?patient=Patient/{}", w.patient))
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(audit.to_string().contains("u-other"), "{audit}");
}

async fn timeliness(app: &TestApp) {
    let w = world(app).await;
    let path = format!("/fhir/Patient/{}/$reconcile-timeliness", w.patient);
    // Admitted 30 hours ago, nothing reconciled: not met.
    let p = w.doctor.get(&path).await.expect(StatusCode::OK).json();
    let measurement = |p: &Value, name: &str| -> Value {
        p["parameter"][0]["part"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|x| x["name"] == name)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        measurement(&p, "measure")["valueCode"],
        "qs120-4-admission-24h"
    );
    assert_eq!(measurement(&p, "status")["valueCode"], "not-met");
    // A reconciliation confirmed now (30 hours after admission) is late: still not met, with
    // the hours and the List named.
    created(&w.gp, &repeat(&w.patient, "320000009", 1, 1)).await;
    let body = parameters(None, Some(reconcile_fixture("empty-list.json", &w.patient)));
    let list = reconcile(&w.doctor, &w.patient, &body).await;
    let mut params = vec![json!({"name": "reconciliation", "resource": list})];
    params.extend(
        entries(&list)
            .into_iter()
            .map(|e| decision(&line_id(e), "reject")),
    );
    w.doctor
        .post(
            &format!("/fhir/Patient/{}/$reconcile-confirm", w.patient),
            &json!({"resourceType": "Parameters", "parameter": params}),
        )
        .await
        .expect(StatusCode::CREATED);
    let p = w.doctor.get(&path).await.expect(StatusCode::OK).json();
    assert_eq!(measurement(&p, "status")["valueCode"], "not-met");
    assert!(
        measurement(&p, "reconciliation")["valueReference"]["reference"]
            .as_str()
            .is_some_and(|r| r.starts_with("List/"))
    );
    let hours = measurement(&p, "hours")["valueDecimal"]
        .as_f64()
        .unwrap_or_default();
    assert!((29.0..31.0).contains(&hours), "{hours}");
    // A new admission (after that reconciliation) reconciled at once: met.
    let second = created(
        &w.doctor,
        &json!({"resourceType": "Encounter", "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "period": {"start": hours_ago(0)},
            "subject": {"reference": format!("Patient/{}", w.patient)},
            "serviceProvider": {"identifier": {"system": ODS, "value": HOSPITAL}}}),
    )
    .await;
    let list = reconcile(&w.doctor, &w.patient, &body).await;
    let mut params = vec![
        json!({"name": "reconciliation", "resource": list}),
        json!({"name": "encounter", "valueReference": {"reference": second}}),
    ];
    params.extend(
        entries(&list)
            .into_iter()
            .map(|e| decision(&line_id(e), "accept")),
    );
    w.doctor
        .post(
            &format!("/fhir/Patient/{}/$reconcile-confirm", w.patient),
            &json!({"resourceType": "Parameters", "parameter": params}),
        )
        .await
        .expect(StatusCode::CREATED);
    let p = w.doctor.get(&path).await.expect(StatusCode::OK).json();
    let statuses: Vec<String> = p["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            m["part"]
                .as_array()?
                .iter()
                .find(|x| x["name"] == "status")?["valueCode"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(statuses, vec!["not-met", "met"]);
    // A stranger may not see it.
    let reply = app
        .as_user("u-other", Role::Gp, Some("B86001"))
        .get(&path)
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}
