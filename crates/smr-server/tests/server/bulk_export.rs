//! Issue 9: FHIR Bulk Data export (`$export` at system, Patient and Group level): kick-off,
//! polling, manifest, NDJSON downloads, `_type`/`_since`, cancelling, who may export, consent
//! and secondary-use opt-outs, `deidentify=true`, and a round trip (export, import into an
//! empty store, the same resources). Each runs on SQLite and, when configured, PostgreSQL.

use crate::support;

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use smr_access::{CareSetting, Principal, RequestContext, Role, Scopes};
use smr_store::{Engine, WriteOp};
use support::{BASE, Client, TestApp, fixture, route};

backend_tests! {
    kick_off_poll_manifest_and_download => full_flow;
    type_and_since_narrow_the_export => type_and_since;
    patient_and_group_level_exports => patient_and_group;
    delete_cancels_and_removes_the_job => cancel;
    bad_kick_offs_are_400s => bad_requests;
    only_systems_and_analysts_export_and_only_their_own_jobs => who_may_export;
    consent_and_research_opt_outs_are_honoured => consent_and_opt_out;
    deidentified_extracts_hold_no_direct_identifiers => deidentified;
    an_export_imported_into_an_empty_store_is_the_same_resources => round_trip;
}

const NHS_NUMBER: &str = "9990000018";
const PSEUDONYM_SYSTEM: &str = "https://fhir.smr.nhs.uk/Id/research-pseudonym";
const CONSENT_SCOPE: &str = "http://terminology.hl7.org/CodeSystem/consentscope";

/// A patient from the fixture (NHS number, name, birth date, address) with `nhs` as NHS number.
async fn patient(app: &TestApp, nhs: &str) -> String {
    let mut p = fixture("patient.json");
    p["identifier"][0]["value"] = json!(nhs);
    app.create(&p).await["id"].as_str().expect("id").to_owned()
}

async fn medication_request(app: &TestApp, patient: &str) -> Value {
    let mut mr = fixture("medication-request.json");
    mr["subject"]["reference"] = json!(format!("Patient/{patient}"));
    mr.as_object_mut().map(|o| o.remove("identifier"));
    app.create(&mr).await
}

/// Kicks off `path` (asynchronously); answers the status URL's router path.
async fn kick_off(client: &Client, path: &str) -> String {
    let reply = client
        .request(Method::GET, path, &[("prefer", "respond-async")], None)
        .await
        .expect(StatusCode::ACCEPTED);
    let location = reply.header("content-location").expect("Content-Location");
    assert!(
        location.starts_with(&format!("{BASE}/$export-status/")),
        "{location}"
    );
    route(&location)
}

/// Polls until the job is done; answers the manifest.
async fn finished(client: &Client, status: &str) -> Value {
    for _ in 0..10_000 {
        let reply = client.get(status).await;
        match reply.status {
            StatusCode::ACCEPTED => {
                assert!(
                    reply.header("x-progress").is_some(),
                    "X-Progress while running"
                );
                assert!(reply.header("retry-after").is_some());
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            StatusCode::OK => {
                assert_eq!(
                    reply.header("content-type").as_deref(),
                    Some("application/json")
                );
                return reply.json();
            }
            other => panic!("status {other}: {}", reply.text),
        }
    }
    panic!("the export never finished");
}

async fn export(client: &Client, path: &str) -> Value {
    let status = kick_off(client, path).await;
    finished(client, &status).await
}

/// Every line of every output file, by type.
async fn download(client: &Client, manifest: &Value) -> BTreeMap<String, Vec<Value>> {
    let mut out = BTreeMap::new();
    for file in manifest["output"].as_array().expect("output") {
        let ty = file["type"].as_str().expect("type").to_owned();
        let lines = lines(client, file["url"].as_str().expect("url")).await;
        assert_eq!(file["count"], json!(lines.len()), "count of {ty}");
        for line in &lines {
            assert_eq!(line["resourceType"], json!(ty));
        }
        out.insert(ty, lines);
    }
    out
}

async fn lines(client: &Client, url: &str) -> Vec<Value> {
    let reply = client.get(&route(url)).await.expect(StatusCode::OK);
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/fhir+ndjson")
    );
    reply
        .text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON resource per line"))
        .collect()
}

fn ids(resources: Option<&Vec<Value>>) -> Vec<String> {
    let mut out: Vec<String> = resources
        .into_iter()
        .flatten()
        .map(|r| r["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    out.sort();
    out
}

async fn full_flow(app: &TestApp) {
    app.create(&json!({"resourceType": "Organization", "name": "Test Surgery",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "A81001"}]}))
        .await;
    let p = patient(app, NHS_NUMBER).await;
    let mr = medication_request(app, &p).await;
    let manifest = export(app, "/fhir/$export").await;
    assert!(
        manifest["transactionTime"]
            .as_str()
            .is_some_and(|t| t.contains('T'))
    );
    assert_eq!(manifest["request"], json!(format!("{BASE}/$export")));
    assert_eq!(manifest["requiresAccessToken"], json!(true));
    assert_eq!(manifest["error"], json!([]));
    for file in manifest["output"].as_array().expect("output") {
        assert!(
            file["url"]
                .as_str()
                .is_some_and(|u| u.starts_with(&format!("{BASE}/$export-file/"))),
            "{file}"
        );
    }
    let files = download(app, &manifest).await;
    assert!(
        !files.contains_key("AuditEvent"),
        "the audit trail is not exported"
    );
    assert_eq!(ids(files.get("Patient")), vec![p.clone()]);
    assert_eq!(files["Organization"].len(), 1);
    // Each line is the resource as a read returns it.
    let read = app
        .get(&format!("/fhir/Patient/{p}"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(files["Patient"][0], read);
    assert_eq!(files["MedicationRequest"], vec![mr]);
    assert!(
        files.contains_key("Provenance"),
        "each write's Provenance is part of the record"
    );
    // The kick-off and each download are audited.
    let audit = app
        .get("/fhir/AuditEvent?_count=50")
        .await
        .expect(StatusCode::OK)
        .text;
    assert!(audit.contains("\"$export\""), "{audit}");
    let downloads = manifest["output"].as_array().map_or(0, Vec::len);
    assert!(
        audit.matches("\"$export-file\"").count() >= downloads,
        "{audit}"
    );
}

async fn type_and_since(app: &TestApp) {
    let p = patient(app, NHS_NUMBER).await;
    let first = medication_request(app, &p).await;
    let second = medication_request(app, &p).await;
    let manifest = export(app, "/fhir/$export?_type=Patient,MedicationRequest").await;
    let files = download(app, &manifest).await;
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        ["MedicationRequest", "Patient"]
    );
    assert_eq!(files["MedicationRequest"].len(), 2);
    // `_since`: only what changed after the first MedicationRequest was written.
    let since = first["meta"]["lastUpdated"].as_str().expect("lastUpdated");
    let encoded: String = form_urlencoded::byte_serialize(since.as_bytes()).collect();
    let manifest = export(
        app,
        &format!("/fhir/$export?_type=MedicationRequest&_since={encoded}"),
    )
    .await;
    let files = download(app, &manifest).await;
    assert_eq!(
        ids(files.get("MedicationRequest")),
        vec![second["id"].as_str().expect("id").to_owned()]
    );
}

async fn patient_and_group(app: &TestApp) {
    app.create(&json!({"resourceType": "Organization", "name": "Elsewhere"}))
        .await;
    let p1 = patient(app, NHS_NUMBER).await;
    let p2 = patient(app, "9990000026").await;
    medication_request(app, &p1).await;
    medication_request(app, &p2).await;
    let manifest = export(app, "/fhir/Patient/$export").await;
    let files = download(app, &manifest).await;
    assert!(
        !files.contains_key("Organization"),
        "Patient level: the compartment only"
    );
    assert_eq!(ids(files.get("Patient")).len(), 2);
    assert_eq!(files["MedicationRequest"].len(), 2);

    let group = app
        .create(
            &json!({"resourceType": "Group", "type": "person", "actual": true,
            "member": [{"entity": {"reference": format!("Patient/{p1}")}}]}),
        )
        .await;
    let gid = group["id"].as_str().expect("id");
    let manifest = export(app, &format!("/fhir/Group/{gid}/$export")).await;
    assert_eq!(
        manifest["request"],
        json!(format!("{BASE}/Group/{gid}/$export"))
    );
    let files = download(app, &manifest).await;
    assert_eq!(ids(files.get("Patient")), vec![p1.clone()]);
    let subjects: Vec<&Value> = files["MedicationRequest"]
        .iter()
        .map(|m| &m["subject"]["reference"])
        .collect();
    assert_eq!(subjects, vec![&json!(format!("Patient/{p1}"))]);
    assert!(!files.contains_key("Organization"));
    // An unknown Group is a 404.
    app.request(
        Method::GET,
        "/fhir/Group/nope/$export",
        &[("prefer", "respond-async")],
        None,
    )
    .await
    .expect(StatusCode::NOT_FOUND);
}

async fn cancel(app: &TestApp) {
    let p = patient(app, NHS_NUMBER).await;
    medication_request(app, &p).await;
    let status = kick_off(app, "/fhir/$export").await;
    app.delete(&status).await.expect(StatusCode::ACCEPTED);
    app.get(&status).await.expect(StatusCode::NOT_FOUND);
    app.delete(&status).await.expect(StatusCode::NOT_FOUND);
    // A finished job's files go with it.
    let status = kick_off(app, "/fhir/$export?_type=Patient").await;
    let manifest = finished(app, &status).await;
    let url = route(manifest["output"][0]["url"].as_str().expect("url"));
    app.get(&url).await.expect(StatusCode::OK);
    app.delete(&status).await.expect(StatusCode::ACCEPTED);
    app.get(&url).await.expect(StatusCode::NOT_FOUND);
    app.get("/fhir/$export-status/unknown")
        .await
        .expect(StatusCode::NOT_FOUND);
}

async fn bad_requests(app: &TestApp) {
    let reply = app
        .get("/fhir/$export")
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["resourceType"], "OperationOutcome");
    assert!(reply.text.contains("respond-async"));
    for path in [
        "/fhir/$export?_outputFormat=text/csv",
        "/fhir/$export?_type=Foo",
        "/fhir/$export?_type=AuditEvent",
        "/fhir/Patient/$export?_type=Organization",
        "/fhir/$export?_since=yesterday",
        "/fhir/$export?_since=2024-01-01",
        "/fhir/$export?_typeFilter=MedicationRequest%3Fstatus%3Dactive",
        "/fhir/$export?deidentify=maybe",
        "/fhir/$export?deidentify=true&_type=Bundle",
    ] {
        let reply = app
            .request(Method::GET, path, &[("prefer", "respond-async")], None)
            .await
            .expect(StatusCode::BAD_REQUEST);
        assert_eq!(reply.json()["resourceType"], "OperationOutcome", "{path}");
    }
    for format in ["application/fhir+ndjson", "application/ndjson", "ndjson"] {
        let encoded: String = form_urlencoded::byte_serialize(format.as_bytes()).collect();
        kick_off(
            app,
            &format!("/fhir/$export?_type=Patient&_outputFormat={encoded}"),
        )
        .await;
    }
}

async fn who_may_export(app: &TestApp) {
    let p = patient(app, NHS_NUMBER).await;
    medication_request(app, &p).await;
    for client in [
        app.as_user("dr", Role::Gp, Some("A81001")),
        app.as_patient(&p),
        app.as_user("root", Role::Admin, Some("X26")),
        // An analyst only for a de-identified extract.
        app.as_user("ann", Role::Analyst, Some("X26")),
    ] {
        let reply = client
            .request(
                Method::GET,
                "/fhir/$export",
                &[("prefer", "respond-async")],
                None,
            )
            .await
            .expect(StatusCode::FORBIDDEN);
        assert_eq!(reply.json()["resourceType"], "OperationOutcome");
    }
    let analyst = app.as_user("ann", Role::Analyst, Some("X26"));
    let manifest = export(&analyst, "/fhir/$export?deidentify=true").await;
    let files = download(&analyst, &manifest).await;
    assert_eq!(files["Patient"].len(), 1);
    assert_ne!(files["Patient"][0]["id"], json!(p));

    // Only the user who started a job polls, downloads or cancels it.
    let status = kick_off(app, "/fhir/$export?_type=Patient").await;
    let manifest = finished(app, &status).await;
    let url = route(manifest["output"][0]["url"].as_str().expect("url"));
    let other = app.as_user("other-system", Role::System, Some("X26"));
    other.get(&status).await.expect(StatusCode::NOT_FOUND);
    other.get(&url).await.expect(StatusCode::NOT_FOUND);
    other.delete(&status).await.expect(StatusCode::NOT_FOUND);
    app.get(&url).await.expect(StatusCode::OK);
}

async fn consent_and_opt_out(app: &TestApp) {
    // Patient 1 withholds PSY-labelled entries from everyone.
    let p1 = patient(app, NHS_NUMBER).await;
    let open = medication_request(app, &p1).await;
    let mut psy = fixture("medication-request.json");
    psy["subject"]["reference"] = json!(format!("Patient/{p1}"));
    psy["meta"] = json!({"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}]});
    let psy = app.create(&psy).await;
    app.create(&json!({"resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{p1}")},
        "provision": {"type": "deny", "securityLabel": [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}]}}))
        .await;
    // Patient 2 opted out of secondary use.
    let p2 = patient(app, "9990000026").await;
    let p2_mr = medication_request(app, &p2).await;
    app.create(&json!({"resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "research"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{p2}")},
        "provision": {"type": "deny"}}))
        .await;

    // Identified (direct care, a back-end system): consent applies, the opt-out does not.
    let files = download(app, &export(app, "/fhir/$export").await).await;
    let mrs = ids(files.get("MedicationRequest"));
    let id = |v: &Value| v["id"].as_str().expect("id").to_owned();
    assert!(mrs.contains(&id(&open)));
    assert!(!mrs.contains(&id(&psy)), "withheld by consent");
    assert!(mrs.contains(&id(&p2_mr)));
    assert_eq!(ids(files.get("Patient")).len(), 2);

    // De-identified: the opted-out patient and their whole record are left out.
    let files = download(app, &export(app, "/fhir/$export?deidentify=true").await).await;
    assert_eq!(files["Patient"].len(), 1, "only patient 1");
    let pseudonym = format!(
        "Patient/{}",
        files["Patient"][0]["id"].as_str().expect("id")
    );
    assert_eq!(
        files["MedicationRequest"].len(),
        1,
        "patient 1's open entry only"
    );
    for (ty, resources) in &files {
        for r in resources {
            for field in ["subject", "patient"] {
                if let Some(reference) = r[field]["reference"].as_str() {
                    assert_eq!(reference, pseudonym, "{ty} of another patient: {r}");
                }
            }
        }
    }
}

async fn deidentified(app: &TestApp) {
    let p = patient(app, NHS_NUMBER).await;
    medication_request(app, &p).await;
    medication_request(app, &p).await;
    let manifest = export(app, "/fhir/$export?deidentify=true").await;
    assert_eq!(
        manifest["extension"]["https://fhir.smr.nhs.uk/StructureDefinition/bulk-deidentified"],
        json!(true)
    );
    let files = download(app, &manifest).await;
    let all = serde_json::to_string(&files).expect("text");
    for identifying in [
        NHS_NUMBER,
        "O'Brien",
        "Zoë",
        "Anne",
        "Example Street",
        "Leeds",
        "4AP",
        &p,
    ] {
        assert!(!all.contains(identifying), "{identifying} in the extract");
    }
    assert!(!all.contains("Two tablets"), "dosage text is free text");
    assert!(!files.contains_key("Bundle"));
    let patient = &files["Patient"][0];
    assert_eq!(patient["birthDate"], "1958-03");
    assert_eq!(patient["address"][0]["postalCode"], "LS1");
    assert_eq!(patient["identifier"][0]["system"], PSEUDONYM_SYSTEM);
    assert!(patient.get("name").is_none() && patient.get("text").is_none());
    let pseudonym = format!("Patient/{}", patient["id"].as_str().expect("id"));
    // The same pseudonym in every file that refers to the patient.
    for mr in &files["MedicationRequest"] {
        assert_eq!(mr["subject"]["reference"], json!(pseudonym));
        assert!(mr.get("identifier").is_none());
    }
    let mut references = Vec::new();
    collect_references(
        &serde_json::to_value(&files).expect("value"),
        &mut references,
    );
    let to_patients: Vec<&String> = references
        .iter()
        .filter(|r| r.starts_with("Patient/"))
        .collect();
    assert!(to_patients.len() >= 2);
    assert!(
        to_patients.iter().all(|r| **r == pseudonym),
        "{to_patients:?}"
    );
    // Another export, another key: not linkable to the first.
    let again = download(
        app,
        &export(app, "/fhir/$export?deidentify=true&_type=Patient").await,
    )
    .await;
    assert_ne!(again["Patient"][0]["id"], patient["id"]);
    assert_ne!(again["Patient"][0]["identifier"], patient["identifier"]);
}

fn collect_references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("reference") {
                out.push(r.clone());
            }
            o.values().for_each(|v| collect_references(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| collect_references(v, out)),
        _ => {}
    }
}

/// A back-end system's context, for importing straight through `App::import_batch`.
fn system_ctx() -> RequestContext {
    RequestContext::new(
        Principal {
            user: "round-trip".into(),
            role: Role::System,
            organisation: Some("X26".into()),
            setting: CareSetting::Unspecified,
            setting_claimed: false,
            patient: None,
            scopes: Scopes::unrestricted(),
            name: None,
            issuer: "test".into(),
        },
        None,
        "round-trip".into(),
    )
}

fn without_meta(resource: &Value) -> Value {
    let mut r = resource.clone();
    r.as_object_mut().map(|o| o.remove("meta"));
    r
}

async fn round_trip(app: &TestApp) {
    app.create(&json!({"resourceType": "Organization", "name": "Test Surgery",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "A81001"}]}))
        .await;
    let p1 = patient(app, NHS_NUMBER).await;
    let p2 = patient(app, "9990000026").await;
    medication_request(app, &p1).await;
    medication_request(app, &p2).await;
    app.create(&json!({"resourceType": "AllergyIntolerance",
        "patient": {"reference": format!("Patient/{p1}")},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91936005"}]}}))
        .await;
    let files = download(app, &export(app, "/fhir/$export").await).await;

    let target = match app.store.engine() {
        Engine::Sqlite => support::sqlite_app().await,
        Engine::Postgres => support::postgres_app().await.expect("postgres"),
    };
    let importer = smr_app::App::new(target.store.clone());
    let ctx = system_ctx();
    // Patients and the directory before the entries that refer to them.
    let order = |ty: &str| match ty {
        "Organization" | "Practitioner" | "Location" | "Medication" => 0,
        "Patient" => 1,
        "Provenance" => 3,
        _ => 2,
    };
    let mut types: Vec<&String> = files.keys().collect();
    types.sort_by_key(|t| order(t));
    for ty in types {
        let ops: Vec<WriteOp> = files[ty]
            .iter()
            .map(|r| WriteOp::Update {
                resource: r.clone(),
                full_url: None,
                if_match: None,
                patched: false,
                condition: None,
            })
            .collect();
        let results = importer
            .import_batch(&ctx, &format!("{ty}.ndjson"), ops, false)
            .await
            .expect("import");
        for r in results {
            assert!(
                !matches!(r, smr_app::import::ImportResult::Rejected(_)),
                "{ty}: {r:?}"
            );
        }
    }
    let mut compared = 0;
    for (ty, resources) in &files {
        for r in resources {
            let id = r["id"].as_str().expect("id");
            let copy = target
                .get(&format!("/fhir/{ty}/{id}"))
                .await
                .expect(StatusCode::OK)
                .json();
            assert_eq!(without_meta(&copy), without_meta(r), "{ty}/{id}");
            compared += 1;
        }
    }
    assert!(compared >= 6, "{compared}");
    target.finish().await;
}
