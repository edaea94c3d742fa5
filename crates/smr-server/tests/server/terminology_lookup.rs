//! `GET /fhir/CodeSystem/$lookup` over the built-in drug dictionary (the test app imports no
//! release; the release path is covered by smr-app's and smr-cli's tests).

use crate::support;

use axum::http::StatusCode;
use smr_access::Role;

#[tokio::test]
async fn a_dmd_code_is_looked_up_as_parameters() {
    let app = support::sqlite_app().await;
    let gp = app.as_user("u-gp", Role::Gp, Some("A81001"));
    let reply = gp
        .get("/fhir/CodeSystem/$lookup?system=https://dmd.nhs.uk&code=320000009")
        .await
        .expect(StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["resourceType"], "Parameters");
    let params = body["parameter"].as_array().expect("parameters");
    fn named<'a>(
        params: &'a [serde_json::Value],
        n: &'a str,
    ) -> impl Iterator<Item = &'a serde_json::Value> {
        params.iter().filter(move |p| p["name"] == n)
    }
    assert_eq!(
        named(params, "display")
            .next()
            .map(|p| p["valueString"].clone()),
        Some("Simvastatin 40mg tablets".into())
    );
    let property = |code: &str| {
        named(params, "property")
            .find(|p| p["part"][0]["valueCode"] == code)
            .map(|p| p["part"][1].clone())
    };
    assert_eq!(
        property("level").map(|v| v["valueCode"].clone()),
        Some("vmp".into())
    );
    assert_eq!(
        property("vtm").map(|v| v["valueCoding"]["code"].clone()),
        Some("96304005".into())
    );

    gp.get("/fhir/CodeSystem/$lookup?system=https://dmd.nhs.uk&code=1")
        .await
        .expect(StatusCode::NOT_FOUND);
    gp.get("/fhir/CodeSystem/$lookup?system=http://loinc.org&code=1")
        .await
        .expect(StatusCode::BAD_REQUEST);
    gp.get("/fhir/CodeSystem/$lookup?system=https://dmd.nhs.uk")
        .await
        .expect(StatusCode::BAD_REQUEST);
    app.with_token(None)
        .get("/fhir/CodeSystem/$lookup?system=https://dmd.nhs.uk&code=320000009")
        .await
        .expect(StatusCode::UNAUTHORIZED);
    app.finish().await;
}
