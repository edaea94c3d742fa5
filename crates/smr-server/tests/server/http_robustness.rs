//! The HTTP surface as outside clients meet it, on SQLite and PostgreSQL: the base URL with a
//! trailing slash, OperationOutcomes on every error answer (405/414/431), a health check that
//! asks the database, links that request headers cannot redirect, and conflicts that do not
//! name another patient.

use crate::support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use smr_server::ServerConfig;
use support::{TestApp, fixture};

backend_tests! {
    a_transaction_posted_to_the_base_with_a_slash_is_processed => transaction_at_base_with_slash;
    reads_and_searches_answer_with_a_trailing_slash => trailing_slash_reads;
    method_not_allowed_carries_an_operation_outcome => method_not_allowed_outcome;
    an_overlong_request_target_is_414_with_an_outcome => uri_too_long;
    oversized_headers_are_431_with_an_outcome => headers_too_large;
    health_reports_an_unusable_database => health_follows_database;
    links_ignore_host_and_forwarding_headers_unless_trusted => links_not_from_headers;
    trusted_forwarding_headers_decide_links => links_from_trusted_headers;
    a_duplicate_nhs_number_does_not_name_the_other_patient => duplicate_nhs_number_anonymous;
}

fn assert_outcome(reply: &support::Reply, status: StatusCode) -> Value {
    assert_eq!(reply.status, status, "body: {}", reply.text);
    let body = reply.json();
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/fhir+json; charset=utf-8"),
        "an OperationOutcome is FHIR JSON"
    );
    body
}

async fn transaction_at_base_with_slash(app: &TestApp) {
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{
            "fullUrl": "urn:uuid:0c6d2a5e-5b3c-4f43-9d7e-1a7a2a0b9c01",
            "resource": fixture("patient.json"),
            "request": {"method": "POST", "url": "Patient"}
        }]
    });
    let reply = app.post("/fhir/", &bundle).await.expect(StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["type"], "transaction-response");
    assert!(
        body["entry"][0]["response"]["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("201")),
        "{body}"
    );
    // Batch too (fhir-kit-client's `batch()` posts to the same place).
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": []});
    let reply = app.post("/fhir/", &batch).await.expect(StatusCode::OK);
    assert_eq!(reply.json()["type"], "batch-response");
}

async fn trailing_slash_reads(app: &TestApp) {
    let metadata = app.get("/fhir/metadata/").await.expect(StatusCode::OK);
    assert_eq!(metadata.json()["resourceType"], "CapabilityStatement");
    let patient = app.create(&fixture("patient.json")).await;
    let id = patient["id"].as_str().expect("id");
    let search = app.get("/fhir/Patient/").await.expect(StatusCode::OK);
    assert_eq!(search.json()["type"], "searchset");
    let read = app
        .get(&format!("/fhir/Patient/{id}/"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(read.json()["id"], id);
    let with_query = app
        .get(&format!("/fhir/Patient/?_id={id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(with_query.json()["entry"][0]["resource"]["id"], id);
}

async fn method_not_allowed_outcome(app: &TestApp) {
    let reply = app.delete("/fhir/metadata").await;
    let body = assert_outcome(&reply, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["issue"][0]["code"], "not-supported");
    let allow = reply.header("allow").expect("Allow header kept");
    assert!(allow.contains("GET"), "{allow}");
}

async fn uri_too_long(app: &TestApp) {
    let long = "a".repeat(20 * 1024);
    let reply = app.get(&format!("/fhir/Patient?name={long}")).await;
    let body = assert_outcome(&reply, StatusCode::URI_TOO_LONG);
    assert_eq!(body["issue"][0]["code"], "too-long");
}

async fn headers_too_large(app: &TestApp) {
    let big = "b".repeat(40 * 1024);
    let reply = app
        .request(Method::GET, "/fhir/Patient", &[("x-padding", &big)], None)
        .await;
    let body = assert_outcome(&reply, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(body["issue"][0]["code"], "too-long");
}

async fn health_follows_database(app: &TestApp) {
    let client = app.client_with(ServerConfig::default());
    let ok = client.get("/healthz").await.expect(StatusCode::OK);
    assert_eq!(ok.text, "ok");
    // The store's pools closed: reads would fail, so health must say so.
    app.store.close().await;
    let down = client.get("/healthz").await;
    let body = assert_outcome(&down, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["issue"][0]["code"], "transient");
}

async fn created_location(client: &support::Client, headers: &[(&str, &str)]) -> String {
    let reply = client
        .request(
            Method::POST,
            "/fhir/Patient",
            headers,
            Some(patient_without_nhs_number().to_string()),
        )
        .await
        .expect(StatusCode::CREATED);
    reply.header("location").expect("Location")
}

/// Patients these tests create many of: without the fixture's NHS number, which is unique.
fn patient_without_nhs_number() -> Value {
    let mut patient = fixture("patient.json");
    if let Some(p) = patient.as_object_mut() {
        p.remove("identifier");
    }
    patient
}

const SPOOFED: [(&str, &str); 3] = [
    ("host", "evil.example"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "phish.example"),
];

async fn links_not_from_headers(app: &TestApp) {
    let client = app.client_with(ServerConfig::default());
    let location = created_location(&client, &SPOOFED).await;
    assert!(
        location.starts_with("http://localhost/fhir/Patient/"),
        "{location}"
    );
    let search = client
        .request(Method::GET, "/fhir/Patient?_count=1", &SPOOFED, None)
        .await
        .expect(StatusCode::OK)
        .json();
    for link in search["link"].as_array().expect("links") {
        let url = link["url"].as_str().expect("url");
        assert!(url.starts_with("http://localhost/fhir"), "{url}");
    }
    // Served over TLS, the fallback is https.
    let tls = app.client_with(ServerConfig {
        tls: true,
        ..ServerConfig::default()
    });
    let location = created_location(&tls, &SPOOFED).await;
    assert!(
        location.starts_with("https://localhost/fhir/Patient/"),
        "{location}"
    );
    // A configured base URL wins over everything.
    let configured = app.client_with(ServerConfig {
        base_url: Some("https://smr.example.nhs.uk/fhir/".into()),
        trust_forwarded_headers: true,
        ..ServerConfig::default()
    });
    let location = created_location(&configured, &SPOOFED).await;
    assert!(
        location.starts_with("https://smr.example.nhs.uk/fhir/Patient/"),
        "{location}"
    );
}

async fn links_from_trusted_headers(app: &TestApp) {
    let client = app.client_with(ServerConfig {
        trust_forwarded_headers: true,
        ..ServerConfig::default()
    });
    let location = created_location(&client, &SPOOFED).await;
    assert!(
        location.starts_with("https://phish.example/fhir/Patient/"),
        "{location}"
    );
    let location = created_location(&client, &[("host", "smr.internal:8080")]).await;
    assert!(
        location.starts_with("http://smr.internal:8080/fhir/Patient/"),
        "{location}"
    );
    // Something that is not a host falls back rather than landing in a link.
    let location = created_location(&client, &[("x-forwarded-host", "a b/c?d")]).await;
    assert!(location.starts_with("http://localhost/fhir/"), "{location}");
    // SMR serving TLS itself: links use https unless the proxy names another scheme.
    let tls = app.client_with(ServerConfig {
        trust_forwarded_headers: true,
        tls: true,
        ..ServerConfig::default()
    });
    let location = created_location(&tls, &[("host", "smr.internal:8443")]).await;
    assert!(
        location.starts_with("https://smr.internal:8443/fhir/Patient/"),
        "{location}"
    );
    let location = created_location(
        &tls,
        &[("host", "smr.internal:8443"), ("x-forwarded-proto", "http")],
    )
    .await;
    assert!(
        location.starts_with("http://smr.internal:8443/fhir/Patient/"),
        "{location}"
    );
}

async fn duplicate_nhs_number_anonymous(app: &TestApp) {
    let first = app.create(&fixture("patient.json")).await;
    let first_id = first["id"].as_str().expect("id");
    let reply = app.post("/fhir/Patient", &fixture("patient.json")).await;
    let body = assert_outcome(&reply, StatusCode::CONFLICT);
    let text = body.to_string();
    assert!(
        !text.contains(first_id),
        "the 409 must not name the other patient: {text}"
    );
    assert!(text.contains("already held"), "{text}");
}
