//! `POST /fhir/Patient/{id}/$pgx-vcf`: VCF calls stored as results, on both engines.

use crate::support;

use axum::http::{Method, StatusCode};
use serde_json::Value;
use support::TestApp;
use support::fixture_patient as patient;

backend_tests! {
    complete_calls_are_stored_and_the_rest_reported => stores_complete_calls;
    a_vcf_with_no_complete_call_stores_nothing => nothing_complete;
}

fn vcf(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../smr-pgx/tests/fixtures/vcf")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn stores_complete_calls(app: &TestApp) {
    let id = patient(app).await;
    let reply = app
        .request(
            Method::POST,
            &format!("/fhir/Patient/{id}/$pgx-vcf"),
            &[("content-type", "text/x-vcf")],
            Some(vcf("cyp2c19_s2_s17.vcf")),
        )
        .await
        .expect(StatusCode::OK)
        .json();
    let entries = reply["entry"].as_array().expect("entries");
    let genotype = entries
        .iter()
        .find(|e| e["resource"]["code"]["coding"][0]["code"] == "84413-4")
        .expect("a genotype Observation");
    assert_eq!(
        genotype["resource"]["valueCodeableConcept"]["text"],
        "*2/*17"
    );
    let provenance = entries
        .iter()
        .find(|e| e["resource"]["resourceType"] == "Provenance")
        .expect("Provenance");
    assert!(
        provenance["resource"]["entity"][0]["what"]["display"]
            .as_str()
            .unwrap_or_default()
            .contains("VCF")
    );
    // Genes the file says nothing about are reported, not stored as normal.
    let outcome = entries
        .iter()
        .find_map(|e| e["response"].get("outcome"))
        .expect("what was not stored");
    let issues: Vec<&str> = outcome["issue"]
        .as_array()
        .expect("issues")
        .iter()
        .filter_map(|i| i["diagnostics"].as_str())
        .collect();
    assert!(
        issues.iter().any(|d| d.starts_with("CYP2C9: not stored")),
        "{issues:?}"
    );
    let stored: Value = app
        .get(&format!(
            "/fhir/Observation?patient={id}&code=http://loinc.org|84413-4"
        ))
        .await
        .json();
    assert_eq!(
        stored["total"], 1,
        "only the complete CYP2C19 call is stored"
    );
}

async fn nothing_complete(app: &TestApp) {
    let id = patient(app).await;
    let reply = app
        .request(
            Method::POST,
            &format!("/fhir/Patient/{id}/$pgx-vcf"),
            &[("content-type", "text/x-vcf")],
            Some(vcf("cyp2c19_missing.vcf")),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .json();
    assert!(reply["issue"].as_array().is_some_and(|i| i.iter().any(|i| {
        i["diagnostics"]
            .as_str()
            .unwrap_or_default()
            .contains("CYP2C19: not stored")
    })));
    let stored: Value = app
        .get(&format!("/fhir/Observation?patient={id}"))
        .await
        .json();
    assert_eq!(stored["total"], 0);
    app.request(
        Method::POST,
        &format!("/fhir/Patient/{id}/$pgx-vcf"),
        &[("content-type", "text/x-vcf")],
        Some("not a vcf".into()),
    )
    .await
    .expect(StatusCode::BAD_REQUEST);
    app.request(
        Method::POST,
        "/fhir/Patient/nobody/$pgx-vcf",
        &[("content-type", "text/x-vcf")],
        Some(vcf("cyp2c19_s2_s17.vcf")),
    )
    .await
    .expect(StatusCode::NOT_FOUND);
}
