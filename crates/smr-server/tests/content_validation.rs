//! What SMR accepts as content, on SQLite and PostgreSQL: narrative XHTML a web page can render
//! safely, JSON every client reads the same way, references R4 allows, FHIRPath Patch.

mod support;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::{TestApp, fixture};

backend_tests! {
    narrative_with_a_script_is_rejected => narrative_script;
    narrative_with_an_event_attribute_is_rejected => narrative_event_attribute;
    narrative_without_the_xhtml_namespace_is_rejected => narrative_namespace;
    malformed_narrative_is_rejected => narrative_malformed;
    narrative_of_a_contained_resource_is_checked => narrative_contained;
    ordinary_narrative_is_accepted => narrative_ordinary;
}

const XHTML: &str = "http://www.w3.org/1999/xhtml";

async fn patient(app: &TestApp) -> String {
    let p = app.create(&fixture("patient.json")).await;
    p["id"].as_str().expect("id").to_owned()
}

fn medication_request(patient_id: &str) -> Value {
    let mut mr = fixture("medication-request.json");
    mr["subject"]["reference"] = json!(format!("Patient/{patient_id}"));
    mr
}

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
