//! Round trips of public example data through create → read → search, on both engines:
//! the official R4 examples, the NHS EPS messages, and the SMART/Synthea Bulk Data sample.
//! Every response is also checked against the R4 JSON Schema by the harness.
//! These read `../shared`, which only developers' machines have: they skip when it is absent.

use crate::support;

use std::collections::{BTreeMap, HashMap};

use axum::http::StatusCode;
use serde_json::{Value, json};
use smr_fhir::resource_types;
use support::{TestApp, shared_path};

backend_tests! {
    official_r4_examples_round_trip => r4_examples;
    nhs_eps_messages_round_trip => eps_messages;
    bulk_ndjson_sample_round_trips => bulk_sample;
}

/// A resource as the client sent it, without what the server owns (id, versionId,
/// lastUpdated), for comparison.
fn without_server_fields(mut v: Value) -> Value {
    if let Some(obj) = v.as_object_mut() {
        obj.shift_remove("id");
        let empty_meta = match obj.get_mut("meta").and_then(Value::as_object_mut) {
            Some(meta) => {
                meta.shift_remove("versionId");
                meta.shift_remove("lastUpdated");
                // Sensitivity labels SMR adds from the medicine (docs/access.md, "Consent").
                let empty_security = meta
                    .get_mut("security")
                    .and_then(Value::as_array_mut)
                    .is_some_and(|labels| {
                        labels.retain(|c| {
                            c["system"] != "http://terminology.hl7.org/CodeSystem/v3-ActCode"
                                || !["HIV", "PSY", "ETH", "STD", "SEX"]
                                    .contains(&c["code"].as_str().unwrap_or_default())
                        });
                        labels.is_empty()
                    });
                if empty_security {
                    meta.shift_remove("security");
                }
                meta.is_empty()
            }
            None => false,
        };
        if empty_meta {
            obj.shift_remove("meta");
        }
    }
    v
}

/// Equality where a conditional reference that was sent (`Type?query`) matches the literal
/// `Type/id` it was resolved to, and everything else must be identical (decimal text included).
fn same(sent: &Value, stored: &Value) -> Result<(), String> {
    match (sent, stored) {
        (Value::Object(a), Value::Object(b)) => {
            let ka: Vec<&String> = a.keys().collect();
            let kb: Vec<&String> = b.keys().collect();
            if ka != kb {
                return Err(format!("keys differ: {ka:?} vs {kb:?}"));
            }
            for (k, va) in a {
                let vb = &b[k];
                if let (true, Value::String(s), Value::String(t)) = (k == "reference", va, vb)
                    && let Some((ty, _)) = smr_fhir::references::conditional(s)
                    && t.starts_with(&format!("{ty}/"))
                {
                    continue;
                }
                same(va, vb).map_err(|e| format!("{k}.{e}"))?;
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .try_for_each(|(i, (x, y))| same(x, y).map_err(|e| format!("[{i}]{e}"))),
        (Value::Number(a), Value::Number(b)) if a.to_string() == b.to_string() => Ok(()),
        _ if sent == stored => Ok(()),
        _ => Err(format!(": {sent} != {stored}")),
    }
}

/// The examples' medicines belong to patients (`Patient/example`, ...) that the example set
/// defines elsewhere; SMR only stores an entry whose patient it holds, so each referenced
/// patient is put first (a bare Patient with that id).
async fn ensure_patients(
    app: &TestApp,
    resource: &Value,
    known: &mut std::collections::HashSet<String>,
) {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("reference")
                    && let Some(id) = r.strip_prefix("Patient/")
                    && !id.contains('/')
                {
                    out.push(id.to_owned());
                }
                map.values().for_each(|x| walk(x, out));
            }
            Value::Array(items) => items.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut ids = Vec::new();
    walk(resource, &mut ids);
    for id in ids {
        if known.insert(id.clone()) {
            app.put(
                &format!("/fhir/Patient/{id}"),
                &json!({"resourceType": "Patient", "id": id}),
            )
            .await
            .expect(StatusCode::CREATED);
        }
    }
}

/// The `.json` files of a directory, in name order.
fn json_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn read_json(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn r4_examples(app: &TestApp) {
    let Some(dir) = shared_path("reference/fhir/r4-examples") else {
        return;
    };
    let files = json_files(&dir);
    let mut checked = 0;
    let mut patients = std::collections::HashSet::new();
    for path in &files {
        let sent = read_json(path);
        let ty = sent["resourceType"].as_str().unwrap_or_default().to_owned();
        if !resource_types::is_served(&ty) {
            continue;
        }
        ensure_patients(app, &sent, &mut patients).await;
        let created = app.post(&format!("/fhir/{ty}"), &sent).await;
        if ty == "Subscription" {
            // The official example watches every patient's bilirubin results for a remote
            // endpoint: SMR runs Subscriptions on one patient's record only, and calls only
            // endpoints on its allow-list (docs/subscriptions.md), so it is refused as such.
            created.expect(StatusCode::UNPROCESSABLE_ENTITY);
            checked += 1;
            continue;
        }
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "{}: {}",
            path.display(),
            created.text
        );
        let id = created.json()["id"].as_str().expect("id").to_owned();
        let read = app
            .get(&format!("/fhir/{ty}/{id}"))
            .await
            .expect(StatusCode::OK)
            .json();
        if let Err(diff) = same(
            &without_server_fields(sent.clone()),
            &without_server_fields(read),
        ) {
            panic!("{} changed in storage at {diff}", path.display());
        }
        let found = app
            .get(&format!("/fhir/{ty}?_id={id}"))
            .await
            .expect(StatusCode::OK)
            .json();
        assert_eq!(found["total"], 1, "{}", path.display());
        checked += 1;
    }
    assert!(
        checked >= 19,
        "every served type's official example is checked ({checked})"
    );
}

async fn eps_messages(app: &TestApp) {
    let Some(dir) = shared_path("reference/fhir/nhs-eps-examples") else {
        return;
    };
    let files = json_files(&dir);
    let mut compared = 0;
    for path in &files {
        let message = read_json(path);
        // A message Bundle becomes a transaction of its entries SMR serves. Resources keep their
        // ids (PUT); a Patient is matched on NHS number, since the same patient recurs across
        // messages with different resource ids.
        let mut entries = Vec::new();
        for entry in message["entry"].as_array().expect("entries") {
            let resource = entry["resource"].clone();
            let ty = resource["resourceType"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if !resource_types::is_served(&ty) {
                continue;
            }
            // EPS resources often carry no id: the message names them by fullUrl only.
            let full_url = entry["fullUrl"].as_str().unwrap_or_default();
            let id = match resource["id"].as_str() {
                Some(id) => id.to_owned(),
                None => full_url.trim_start_matches("urn:uuid:").to_owned(),
            };
            let request = if ty == "Patient" {
                let nhs = resource["identifier"][0]["value"]
                    .as_str()
                    .unwrap_or_default();
                json!({"method": "POST", "url": "Patient", "ifNoneExist": format!("identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}")})
            } else {
                json!({"method": "PUT", "url": format!("{ty}/{id}")})
            };
            entries.push(
                json!({"fullUrl": entry["fullUrl"], "resource": resource, "request": request}),
            );
        }
        let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
        let reply = app.post("/fhir", &tx).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}: {}",
            path.display(),
            reply.text
        );
        let reply = reply.json();
        let results = reply["entry"].as_array().expect("response entries");

        // What each fullUrl became, to compare references as the server rewrote them.
        let mut rewritten: HashMap<String, String> = HashMap::new();
        for (sent, got) in entries.iter().zip(results) {
            let location = got["response"]["location"].as_str().unwrap_or_default();
            let target: Vec<&str> = location.split('/').take(2).collect();
            if let (Some(url), [ty, id]) = (sent["fullUrl"].as_str(), target.as_slice()) {
                rewritten.insert(url.to_owned(), format!("{ty}/{id}"));
            }
        }
        for (sent, got) in entries.iter().zip(results) {
            if got["response"]["status"] == "200 OK"
                && sent["resource"]["resourceType"] == "Patient"
            {
                continue; // matched an existing patient: nothing new was stored to compare
            }
            let mut expected = sent["resource"].clone();
            smr_fhir::references::rewrite(&mut expected, &rewritten);
            let location = got["response"]["location"].as_str().unwrap_or_default();
            let path_of = location.split("/_history").next().unwrap_or_default();
            let stored = app
                .get(&format!("/fhir/{path_of}"))
                .await
                .expect(StatusCode::OK)
                .json();
            if let Err(diff) = same(
                &without_server_fields(expected),
                &without_server_fields(stored),
            ) {
                panic!("{}: {path_of} changed in storage at {diff}", path.display());
            }
            compared += 1;
        }
    }
    assert!(compared > 100, "EPS resources compared: {compared}");
    // Searchable as a pharmacist would: prescriptions for a patient by NHS number.
    let patients = app
        .get("/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9449305552")
        .await
        .json();
    let pid = patients["entry"][0]["resource"]["id"]
        .as_str()
        .expect("EPS patient")
        .to_owned();
    let orders = app
        .get(&format!("/fhir/MedicationRequest?patient={pid}&_count=200"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(orders["total"].as_i64().unwrap_or(0) > 0);
}

/// Bulk Data NDJSON, imported in dependency order as transactions of PUTs. The sample's
/// Encounters use conditional references (`Practitioner?identifier=…`), which the transaction
/// resolves by search. It has no Location.ndjson although Encounters refer to Locations by
/// conditional reference, so the test first registers those Locations by identifier, as the
/// rest of the export would have. Immunization is not served by SMR and is left out.
async fn bulk_sample(app: &TestApp) {
    let Some(dir) = shared_path("reference/fhir/bulk-10-patients") else {
        return;
    };
    let load = |ty: &str| -> Vec<Value> {
        let text = std::fs::read_to_string(dir.join(format!("{ty}.000.ndjson"))).expect("ndjson");
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("line"))
            .collect()
    };
    let mut locations = std::collections::BTreeSet::new();
    for encounter in load("Encounter") {
        let mut refs = Vec::new();
        smr_fhir::references::collect(&encounter, &mut refs);
        locations.extend(
            refs.into_iter()
                .filter(|r| r.starts_with("Location?identifier=")),
        );
    }
    for reference in &locations {
        let (system, value) = reference
            .trim_start_matches("Location?identifier=")
            .split_once('|')
            .expect("system|value");
        app.create(&json!({"resourceType": "Location", "identifier": [{"system": system, "value": value}], "name": format!("Location {value}")})).await;
    }

    let mut sent_by_id: BTreeMap<(String, String), Value> = BTreeMap::new();
    for ty in [
        "Organization",
        "Practitioner",
        "PractitionerRole",
        "Patient",
        "Encounter",
        "Condition",
        "AllergyIntolerance",
        "MedicationRequest",
    ] {
        let resources = load(ty);
        for chunk in resources.chunks(250) {
            let entries: Vec<Value> = chunk
                .iter()
                .map(|r| {
                    let id = r["id"].as_str().unwrap_or_default();
                    json!({"resource": r, "request": {"method": "PUT", "url": format!("{ty}/{id}")}})
                })
                .collect();
            let reply = app
                .post(
                    "/fhir",
                    &json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}),
                )
                .await;
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{ty}: {}",
                reply.text.chars().take(2000).collect::<String>()
            );
        }
        for r in resources {
            sent_by_id.insert(
                (
                    ty.to_owned(),
                    r["id"].as_str().unwrap_or_default().to_owned(),
                ),
                r,
            );
        }
    }
    for ((ty, id), sent) in &sent_by_id {
        let stored = app
            .get(&format!("/fhir/{ty}/{id}"))
            .await
            .expect(StatusCode::OK)
            .json();
        if let Err(diff) = same(
            &without_server_fields(sent.clone()),
            &without_server_fields(stored),
        ) {
            panic!("{ty}/{id} changed in storage at {diff}");
        }
    }
    // Every patient's orders are found by patient search, and the counts add up.
    let mut per_patient: HashMap<String, i64> = HashMap::new();
    for ((ty, _), r) in &sent_by_id {
        if ty == "MedicationRequest" {
            let patient = r["subject"]["reference"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches("Patient/")
                .to_owned();
            *per_patient.entry(patient).or_default() += 1;
        }
    }
    for (patient, expected) in &per_patient {
        let found = app
            .get(&format!(
                "/fhir/MedicationRequest?patient={patient}&_summary=count"
            ))
            .await
            .json();
        assert_eq!(
            found["total"].as_i64(),
            Some(*expected),
            "orders of Patient/{patient}"
        );
    }
    assert_eq!(per_patient.values().sum::<i64>(), 1745);
}
