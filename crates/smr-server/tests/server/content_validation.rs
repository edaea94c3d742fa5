//! What SMR accepts as content, on SQLite and PostgreSQL: narrative XHTML a web page can render
//! safely, JSON every client reads the same way, references R4 allows, FHIRPath Patch.

use crate::support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::fixture_order as medication_request;
use support::fixture_patient as patient;
use support::{TestApp, fixture};

backend_tests! {
    narrative_with_a_script_is_rejected => narrative_script;
    narrative_with_an_event_attribute_is_rejected => narrative_event_attribute;
    narrative_without_the_xhtml_namespace_is_rejected => narrative_namespace;
    malformed_narrative_is_rejected => narrative_malformed;
    narrative_of_a_contained_resource_is_checked => narrative_contained;
    ordinary_narrative_is_accepted => narrative_ordinary;
    decimal_text_is_kept_exactly => decimal_text_kept;
    numbers_outside_the_double_range_are_rejected => number_out_of_range;
    duplicate_keys_are_rejected => duplicate_keys;
    duplicate_keys_are_rejected_in_every_json_body => duplicate_keys_everywhere;
    json_nesting_is_bounded => nesting_bounded;
    absolute_uri_references_are_accepted => absolute_uri_references;
    a_urn_cannot_name_the_records_patient => urn_patient_rejected;
    junk_references_are_still_rejected => junk_references;
    fhirpath_patch_replaces_adds_and_deletes => fhirpath_patch_operations;
    fhirpath_patch_errors_name_the_problem => fhirpath_patch_errors;
    patch_in_another_format_is_415 => patch_unsupported_media_type;
}

const XHTML: &str = "http://www.w3.org/1999/xhtml";

fn with_div(mut resource: Value, div: &str) -> Value {
    resource["text"] = json!({"status": "generated", "div": div});
    resource
}

/// The 422 OperationOutcome's single issue: (code, expression, diagnostics).
#[track_caller]
fn rejected(reply: support::Reply) -> (String, String, String) {
    let oo = reply.expect(StatusCode::UNPROCESSABLE_ENTITY).json();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    let issue = &oo["issue"][0];
    (
        issue["code"].as_str().unwrap_or_default().to_owned(),
        issue["expression"][0]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        issue["diagnostics"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn narrative_script(app: &TestApp) {
    let pid = patient(app).await;
    let mr = with_div(
        medication_request(&pid),
        &format!(
            "<div xmlns=\"{XHTML}\"><p>Take one</p><script>alert(document.cookie)</script></div>"
        ),
    );
    let (code, expression, diagnostics) = rejected(app.post("/fhir/MedicationRequest", &mr).await);
    assert_eq!(code, "invalid");
    assert_eq!(expression, "MedicationRequest.text.div");
    assert!(diagnostics.contains("<script>"), "{diagnostics}");

    // Nothing was stored.
    let found = app
        .get("/fhir/MedicationRequest")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(found["entry"].as_array().map_or(0, Vec::len), 0);

    // An update is checked the same way.
    let stored = app.create(&medication_request(&pid)).await;
    let mut changed = with_div(
        stored.clone(),
        &format!("<div xmlns=\"{XHTML}\"><script>x</script></div>"),
    );
    changed["id"] = stored["id"].clone();
    let id = stored["id"].as_str().expect("id");
    let (_, expression, _) = rejected(
        app.put(&format!("/fhir/MedicationRequest/{id}"), &changed)
            .await,
    );
    assert_eq!(expression, "MedicationRequest.text.div");
}

async fn narrative_event_attribute(app: &TestApp) {
    let pid = patient(app).await;
    let mr = with_div(
        medication_request(&pid),
        &format!("<div xmlns=\"{XHTML}\"><img src=\"x.png\" onerror=\"alert(1)\"/></div>"),
    );
    let (code, expression, diagnostics) = rejected(app.post("/fhir/MedicationRequest", &mr).await);
    assert_eq!(code, "invalid");
    assert_eq!(expression, "MedicationRequest.text.div");
    assert!(diagnostics.contains("onerror"), "{diagnostics}");
    assert!(diagnostics.contains("<img>"), "{diagnostics}");

    let link = with_div(
        medication_request(&pid),
        &format!("<div xmlns=\"{XHTML}\"><a href=\"javascript:alert(1)\">leaflet</a></div>"),
    );
    let (_, _, diagnostics) = rejected(app.post("/fhir/MedicationRequest", &link).await);
    assert!(diagnostics.contains("javascript:"), "{diagnostics}");
}

async fn narrative_namespace(app: &TestApp) {
    let pid = patient(app).await;
    let mr = with_div(medication_request(&pid), "<div><p>Take one daily</p></div>");
    let (code, expression, diagnostics) = rejected(app.post("/fhir/MedicationRequest", &mr).await);
    assert_eq!(code, "invalid");
    assert_eq!(expression, "MedicationRequest.text.div");
    assert!(diagnostics.contains(XHTML), "{diagnostics}");

    // The Patient's narrative too.
    let p = with_div(fixture("patient.json"), "<div>Zoë</div>");
    let (_, expression, _) = rejected(app.post("/fhir/Patient", &p).await);
    assert_eq!(expression, "Patient.text.div");
}

async fn narrative_malformed(app: &TestApp) {
    let pid = patient(app).await;
    for div in [
        format!("<div xmlns=\"{XHTML}\"><p>Take one</div>"),
        format!("<div xmlns=\"{XHTML}\">500&nbsp;mg</div>"),
        format!("<div xmlns=\"{XHTML}\"><td nowrap>x</td></div>"),
    ] {
        let mr = with_div(medication_request(&pid), &div);
        let (code, expression, diagnostics) =
            rejected(app.post("/fhir/MedicationRequest", &mr).await);
        assert_eq!(code, "structure", "{div}: {diagnostics}");
        assert_eq!(expression, "MedicationRequest.text.div");
        assert!(diagnostics.contains("well-formed"), "{diagnostics}");
    }
}

async fn narrative_contained(app: &TestApp) {
    let pid = patient(app).await;
    let mut mr = medication_request(&pid);
    mr["contained"] = json!([{
        "resourceType": "Medication",
        "id": "med1",
        "text": {"status": "generated", "div": format!("<div xmlns=\"{XHTML}\"><iframe src=\"https://example.org\"></iframe></div>")},
        "code": mr["medicationCodeableConcept"].clone()
    }]);
    let (_, expression, diagnostics) = rejected(app.post("/fhir/MedicationRequest", &mr).await);
    assert_eq!(expression, "MedicationRequest.contained[0].text.div");
    assert!(diagnostics.contains("<iframe>"), "{diagnostics}");
}

async fn narrative_ordinary(app: &TestApp) {
    let pid = patient(app).await;
    let div = format!(
        "<div xmlns=\"{XHTML}\"><p><b>Paracetamol</b> 500&#160;mg tablets &amp; water</p>\
         <table class=\"grid\"><thead><tr><th>Dose</th><th>When</th></tr></thead>\
         <tbody><tr><td style=\"font-weight: bold\">2</td><td>up to 4 times a day</td></tr></tbody></table>\
         <p>See the <a href=\"https://www.nhs.uk/medicines/paracetamol-for-adults/\">leaflet</a>.</p>\
         <img src=\"#pack\" alt=\"pack\"/></div>"
    );
    let mr = with_div(medication_request(&pid), &div);
    let created = app
        .post("/fhir/MedicationRequest", &mr)
        .await
        .expect(StatusCode::CREATED)
        .json();
    let id = created["id"].as_str().expect("id");
    let read = app
        .get(&format!("/fhir/MedicationRequest/{id}"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(read["text"]["div"], json!(div));
}

/// A 400 OperationOutcome's single issue: (code, expression, diagnostics).
#[track_caller]
fn bad_request(reply: support::Reply) -> (String, String, String) {
    let oo = reply.expect(StatusCode::BAD_REQUEST).json();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    let issue = &oo["issue"][0];
    (
        issue["code"].as_str().unwrap_or_default().to_owned(),
        issue["expression"][0]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        issue["diagnostics"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn post_text(app: &TestApp, path: &str, body: String) -> support::Reply {
    app.request(Method::POST, path, &[], Some(body)).await
}

/// The MedicationRequest fixture as text with the dose written as `dose` (verbatim).
fn medication_request_text(patient_id: &str, dose: &str) -> String {
    let mut mr = medication_request(patient_id);
    mr["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = json!(1);
    mr.to_string().replace(
        "\"doseQuantity\":{\"value\":1,",
        &format!("\"doseQuantity\":{{\"value\":{dose},"),
    )
}

async fn decimal_text_kept(app: &TestApp) {
    let pid = patient(app).await;
    let body = medication_request_text(&pid, "1E-22");
    assert!(body.contains("\"value\":1E-22,"), "{body}");
    let created = post_text(app, "/fhir/MedicationRequest", body).await;
    let created = created.expect(StatusCode::CREATED);
    assert!(
        created.text.contains("\"value\":1E-22,"),
        "{}",
        created.text
    );
    let id = created.json()["id"].as_str().expect("id").to_owned();
    let read = app.get(&format!("/fhir/MedicationRequest/{id}")).await;
    assert!(read.text.contains("\"value\":1E-22,"), "{}", read.text);

    // A JSON Patch elsewhere in the resource leaves the decimal's text alone.
    let patched = app
        .request(
            Method::PATCH,
            &format!("/fhir/MedicationRequest/{id}"),
            &[("content-type", "application/json-patch+json")],
            Some(json!([{"op": "replace", "path": "/status", "value": "on-hold"}]).to_string()),
        )
        .await
        .expect(StatusCode::OK);
    assert!(
        patched.text.contains("\"value\":1E-22,"),
        "{}",
        patched.text
    );
    assert!(patched.text.contains("\"on-hold\""), "{}", patched.text);

    // Other spellings keep theirs too.
    for dose in ["1.50", "2e5", "0.000100"] {
        let created = post_text(
            app,
            "/fhir/MedicationRequest",
            medication_request_text(&pid, dose),
        )
        .await
        .expect(StatusCode::CREATED);
        assert!(
            created.text.contains(&format!("\"value\":{dose},")),
            "{}",
            created.text
        );
    }
}

async fn number_out_of_range(app: &TestApp) {
    let pid = patient(app).await;
    let (code, expression, diagnostics) = bad_request(
        post_text(
            app,
            "/fhir/MedicationRequest",
            medication_request_text(&pid, "1e999"),
        )
        .await,
    );
    assert_eq!(code, "value");
    assert_eq!(
        expression,
        "dosageInstruction[0].doseAndRate[0].doseQuantity.value"
    );
    assert!(diagnostics.contains("1e999"), "{diagnostics}");
    let found = app
        .get("/fhir/MedicationRequest")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(
        found["entry"].as_array().map_or(0, Vec::len),
        0,
        "nothing stored"
    );
    bad_request(
        post_text(
            app,
            "/fhir/MedicationRequest",
            medication_request_text(&pid, "-1E+400"),
        )
        .await,
    );
}

async fn duplicate_keys(app: &TestApp) {
    let (code, expression, diagnostics) = bad_request(
        post_text(
            app,
            "/fhir/Patient",
            r#"{"resourceType":"Patient","gender":"male","gender":"female"}"#.into(),
        )
        .await,
    );
    assert_eq!(code, "structure");
    assert_eq!(expression, "");
    assert!(diagnostics.contains("'gender'"), "{diagnostics}");

    let (_, expression, diagnostics) = bad_request(
        post_text(
            app,
            "/fhir/Patient",
            r#"{"resourceType":"Patient","name":[{"family":"A"},{"family":"B","given":["x"],"family":"C"}]}"#
                .into(),
        )
        .await,
    );
    assert_eq!(expression, "name[1]");
    assert!(diagnostics.contains("'family'"), "{diagnostics}");

    // The plain `{"a":1,"a":2}` of the report.
    let (_, _, diagnostics) =
        bad_request(post_text(app, "/fhir/Patient", r#"{"a":1,"a":2}"#.into()).await);
    assert!(diagnostics.contains("'a'"), "{diagnostics}");
}

async fn duplicate_keys_everywhere(app: &TestApp) {
    let pid = patient(app).await;
    // Transaction and batch Bundles.
    for ty in ["transaction", "batch"] {
        let bundle = format!(
            r#"{{"resourceType":"Bundle","type":"{ty}","entry":[{{"request":{{"method":"POST","url":"Patient"}},"resource":{{"resourceType":"Patient","id":"a","id":"b"}}}}]}}"#
        );
        let (_, expression, _) = bad_request(post_text(app, "/fhir", bundle).await);
        assert_eq!(expression, "entry[0].resource");
    }
    // Update.
    let put = app
        .request(
            Method::PUT,
            &format!("/fhir/Patient/{pid}"),
            &[],
            Some(format!(
                r#"{{"resourceType":"Patient","id":"{pid}","gender":"male","gender":"female"}}"#
            )),
        )
        .await;
    bad_request(put);
    // JSON Patch.
    let patch = app
        .request(
            Method::PATCH,
            &format!("/fhir/Patient/{pid}"),
            &[("content-type", "application/json-patch+json")],
            Some(r#"[{"op":"replace","path":"/gender","value":"male","value":"female"}]"#.into()),
        )
        .await;
    let (_, expression, _) = bad_request(patch);
    assert_eq!(expression, "[0]");
    // A CDS Hooks request, its prefetch included: a CDS error object, 400.
    let mut req = fixture("cds/order-select.json");
    req["context"]["patientId"] = json!(pid);
    req["prefetch"] = json!({"genotypes": {"resourceType": "Bundle", "type": "searchset"}});
    let text = req.to_string().replace(
        r#""type":"searchset""#,
        r#""type":"searchset","type":"collection""#,
    );
    let reply = app
        .request(
            Method::POST,
            "/cds-services/smr-pgx-order-select",
            &[("content-type", "application/json")],
            Some(text),
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    let error = reply.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.contains("'type'"), "{error}");
    // CDS feedback.
    let reply = app
        .request(
            Method::POST,
            "/cds-services/smr-pgx-order-select/feedback",
            &[("content-type", "application/json")],
            Some(r#"{"feedback":[],"feedback":[]}"#.into()),
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert!(reply.text.contains("duplicate key"), "{}", reply.text);
}

async fn nesting_bounded(app: &TestApp) {
    let depth = smr_fhir::json::MAX_DEPTH + 1;
    let body = format!(
        r#"{{"resourceType":"Patient","extension":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let (code, _, diagnostics) = bad_request(post_text(app, "/fhir/Patient", body).await);
    assert_eq!(code, "structure");
    assert!(diagnostics.contains("deeper"), "{diagnostics}");
}

async fn absolute_uri_references(app: &TestApp) {
    let pid = patient(app).await;
    let mut mr = medication_request(&pid);
    mr["requester"] = json!({"reference": "urn:foobar:practitioner:1"});
    mr["performer"] = json!({"reference": "https://example.org/fhir/Practitioner/7"});
    mr["recorder"] = json!({"reference": "urn:oid:2.16.840.1.113883.2.1.4.1"});
    mr["basedOn"] = json!([{"reference": "urn:ietf:rfc:3986"}, {"reference": "tag:example.org,2026:careplan-1"}]);
    let created = app
        .post("/fhir/MedicationRequest", &mr)
        .await
        .expect(StatusCode::CREATED)
        .json();
    let id = created["id"].as_str().expect("id");
    let read = app
        .get(&format!("/fhir/MedicationRequest/{id}"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(read["requester"]["reference"], "urn:foobar:practitioner:1");
    assert_eq!(read["basedOn"], mr["basedOn"]);
    // Still the patient's record.
    let found = app
        .get(&format!("/fhir/MedicationRequest?subject=Patient/{pid}"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(found["entry"].as_array().map_or(0, Vec::len), 1);
}

async fn urn_patient_rejected(app: &TestApp) {
    let mut mr = medication_request("x");
    mr["subject"] = json!({"reference": "urn:foobar:patient:1"});
    let (code, expression, diagnostics) = rejected(app.post("/fhir/MedicationRequest", &mr).await);
    assert_eq!(code, "invalid");
    assert_eq!(expression, "MedicationRequest.subject");
    assert!(
        diagnostics.contains("urn:foobar:patient:1"),
        "{diagnostics}"
    );
    assert!(diagnostics.contains("Patient/<id>"), "{diagnostics}");

    let allergy = json!({
        "resourceType": "AllergyIntolerance",
        "patient": {"reference": "urn:uuid:a11a6118-634e-4e7e-a01b-cc2addb1b993"},
        "code": {"text": "penicillin"}
    });
    let (_, expression, _) = rejected(app.post("/fhir/AllergyIntolerance", &allergy).await);
    assert_eq!(expression, "AllergyIntolerance.patient");

    // Inside a transaction, a urn:uuid that is no entry's fullUrl names nobody either.
    let mut mr = medication_request("x");
    mr["subject"] = json!({"reference": "urn:uuid:0c3e0c8e-4f0a-4a7a-9a53-4ad1a0b0c001"});
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": mr, "request": {"method": "POST", "url": "MedicationRequest"}}]
    });
    let reply = app.post("/fhir", &bundle).await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.text
    );
    assert!(reply.text.contains("subject"), "{}", reply.text);
    let found = app
        .get("/fhir/MedicationRequest")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(
        found["entry"].as_array().map_or(0, Vec::len),
        0,
        "nothing stored"
    );
}

async fn junk_references(app: &TestApp) {
    let pid = patient(app).await;
    for junk in [
        "urn:foobar",
        "urn:",
        "not a reference",
        "Practitioner/ 1",
        ":x",
    ] {
        let mut mr = medication_request(&pid);
        mr["requester"] = json!({"reference": junk});
        let (code, expression, _) = rejected(app.post("/fhir/MedicationRequest", &mr).await);
        assert_eq!(code, "invalid", "{junk}");
        assert_eq!(
            expression, "MedicationRequest.requester.reference",
            "{junk}"
        );
    }
}

fn operation(parts: Value) -> Value {
    json!({"name": "operation", "part": parts})
}

fn parameters(operations: Vec<Value>) -> String {
    json!({"resourceType": "Parameters", "parameter": operations}).to_string()
}

async fn fhirpath_patch(app: &TestApp, path: &str, body: String) -> support::Reply {
    app.request(
        Method::PATCH,
        path,
        &[("content-type", "application/fhir+json")],
        Some(body),
    )
    .await
}

async fn fhirpath_patch_operations(app: &TestApp) {
    let pid = patient(app).await;
    let mr = app.create(&medication_request(&pid)).await;
    let path = format!("/fhir/MedicationRequest/{}", mr["id"].as_str().expect("id"));

    let replace = parameters(vec![operation(json!([
        {"name": "type", "valueCode": "replace"},
        {"name": "path", "valueString": "MedicationRequest.status"},
        {"name": "value", "valueCode": "on-hold"}
    ]))]);
    let patched = fhirpath_patch(app, &path, replace)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(patched["status"], "on-hold");
    assert_eq!(patched["meta"]["versionId"], "2");

    let add_and_delete = parameters(vec![
        operation(json!([
            {"name": "type", "valueCode": "add"},
            {"name": "path", "valueString": "MedicationRequest"},
            {"name": "name", "valueString": "note"},
            {"name": "value", "valueAnnotation": {"text": "Paused while the patient is in hospital"}}
        ])),
        operation(json!([
            {"name": "type", "valueCode": "delete"},
            {"name": "path", "valueString": "MedicationRequest.dispenseRequest"}
        ])),
        operation(json!([
            {"name": "type", "valueCode": "replace"},
            {"name": "path", "valueString": "MedicationRequest.dosageInstruction[0].text"},
            {"name": "value", "valueString": "One tablet up to four times a day"}
        ])),
    ]);
    // application/json is FHIR JSON too.
    let patched = app
        .request(
            Method::PATCH,
            &path,
            &[("content-type", "application/json; charset=utf-8")],
            Some(add_and_delete),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(
        patched["note"],
        json!([{"text": "Paused while the patient is in hospital"}])
    );
    assert!(patched.get("dispenseRequest").is_none(), "{patched}");
    assert_eq!(
        patched["dosageInstruction"][0]["text"],
        "One tablet up to four times a day"
    );
    let read = app.get(&path).await.expect(StatusCode::OK).json();
    assert_eq!(read, patched);

    // History says PATCH for both patched versions.
    let history = app
        .get(&format!("{path}/_history"))
        .await
        .expect(StatusCode::OK)
        .json();
    let methods: Vec<&str> = history["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["request"]["method"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(methods, vec!["PATCH", "PATCH", "POST"]);

    // The CapabilityStatement lists the format.
    let cs = app
        .get("/fhir/metadata")
        .await
        .expect(StatusCode::OK)
        .json();
    let formats: Vec<&str> = cs["patchFormat"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        formats,
        vec!["application/json-patch+json", "application/fhir+json"]
    );
}

async fn fhirpath_patch_errors(app: &TestApp) {
    let pid = patient(app).await;
    let mr = app.create(&medication_request(&pid)).await;
    let path = format!("/fhir/MedicationRequest/{}", mr["id"].as_str().expect("id"));

    // A path outside the supported subset: 400 naming it.
    let unsupported = "MedicationRequest.dosageInstruction.where(text.contains('tablet')).text";
    let body = parameters(vec![operation(json!([
        {"name": "type", "valueCode": "delete"},
        {"name": "path", "valueString": unsupported}
    ]))]);
    let (code, _, diagnostics) = bad_request(fhirpath_patch(app, &path, body).await);
    assert_eq!(code, "not-supported");
    assert!(diagnostics.contains(unsupported), "{diagnostics}");

    // Not a FHIRPath Patch: a JSON Patch sent as FHIR JSON is no format SMR reads (415).
    let body = json!([{"op": "replace", "path": "/status", "value": "stopped"}]).to_string();
    let oo = fhirpath_patch(app, &path, body)
        .await
        .expect(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        .json();
    let diagnostics = oo["issue"][0]["diagnostics"].as_str().unwrap_or_default();
    assert!(diagnostics.contains("Parameters"), "{diagnostics}");
    assert!(
        diagnostics.contains("application/json-patch+json"),
        "{diagnostics}"
    );

    // A Parameters resource that is no FHIRPath Patch: 400.
    let body = json!({"resourceType": "Parameters", "parameter": [{"name": "status", "valueCode": "stopped"}]}).to_string();
    let (_, _, diagnostics) = bad_request(fhirpath_patch(app, &path, body).await);
    assert!(diagnostics.contains("'operation'"), "{diagnostics}");

    // Well formed, but nothing to replace: 422, nothing written.
    let body = parameters(vec![operation(json!([
        {"name": "type", "valueCode": "replace"},
        {"name": "path", "valueString": "MedicationRequest.note[3].text"},
        {"name": "value", "valueString": "x"}
    ]))]);
    let reply = fhirpath_patch(app, &path, body).await;
    let (_, _, diagnostics) = rejected(reply);
    assert!(diagnostics.contains("selects nothing"), "{diagnostics}");

    // A result that is not a valid resource is refused by validation (422).
    let body = parameters(vec![operation(json!([
        {"name": "type", "valueCode": "replace"},
        {"name": "path", "valueString": "MedicationRequest.status"},
        {"name": "value", "valueCode": "paused"}
    ]))]);
    let (code, expression, _) = rejected(fhirpath_patch(app, &path, body).await);
    assert_eq!(code, "code-invalid");
    assert_eq!(expression, "MedicationRequest.status");

    let read = app.get(&path).await.expect(StatusCode::OK).json();
    assert_eq!(read["meta"]["versionId"], "1", "nothing was written");
}

async fn patch_unsupported_media_type(app: &TestApp) {
    let pid = patient(app).await;
    let mr = app.create(&medication_request(&pid)).await;
    let path = format!("/fhir/MedicationRequest/{}", mr["id"].as_str().expect("id"));
    for media in [
        "text/plain",
        "application/xml",
        "application/merge-patch+json",
    ] {
        let reply = app
            .request(
                Method::PATCH,
                &path,
                &[("content-type", media)],
                Some("status=stopped".into()),
            )
            .await
            .expect(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let oo = reply.json();
        assert_eq!(oo["resourceType"], "OperationOutcome");
        let diagnostics = oo["issue"][0]["diagnostics"].as_str().unwrap_or_default();
        assert!(diagnostics.contains(media), "{diagnostics}");
        assert!(
            diagnostics.contains("application/json-patch+json"),
            "{diagnostics}"
        );
        assert!(
            diagnostics.contains("application/fhir+json"),
            "{diagnostics}"
        );
        assert!(diagnostics.contains("Parameters"), "{diagnostics}");
    }
}
