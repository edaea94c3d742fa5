//! Who may do what: the authorisation matrix (every role × every endpoint × relationship or
//! not × break-glass or not), consent, audit of every request and refusal, and the
//! authentication failures. Each runs on SQLite and, when configured, PostgreSQL.
//!
//! The expected answers are written here from the role table in `docs/access.md`, not
//! computed by SMR's own policy code, so a change to either shows up as a failure.

use crate::support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use smr_access::Role;
use support::{Client, TestApp};

const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const GP: &str = "A81001";
const HOSPITAL: &str = "R1A";
const PHARMACY: &str = "FA123";
const CARE_TEAM: &str = "C9C01";
const OTHER_GP: &str = "B86001";

/// The organisation each clinical role works for in these tests: each has a relationship
/// with `cared` (and none with `stranger`).
fn org_of(role: Role) -> Option<&'static str> {
    Some(match role {
        Role::Gp | Role::Admin => GP,
        Role::HospitalPrescriber | Role::HospitalPharmacist => HOSPITAL,
        Role::CommunityPharmacist => PHARMACY,
        Role::Nurse | Role::CareWorker => CARE_TEAM,
        Role::Analyst => "QHM",
        Role::System => support::SYSTEM_ORG,
        Role::Patient => return None,
    })
}

fn ods(code: &str) -> Value {
    json!({"identifier": {"system": ODS, "value": code}})
}

struct World {
    cared: String,
    stranger: String,
    /// A MedicationRequest of each patient.
    cared_order: String,
    stranger_order: String,
}

async fn world(app: &TestApp) -> World {
    let gp_org = app
        .create(
            &json!({"resourceType": "Organization", "identifier": [{"system": ODS, "value": GP}],
            "name": "Test Surgery"}),
        )
        .await;
    let gp_ref = format!("Organization/{}", gp_org["id"].as_str().unwrap_or_default());
    // Registered by reference to the Organization: the GP's token names its ODS code, and SMR
    // finds the Organization carrying it.
    let cared = app
        .create(
            &json!({"resourceType": "Patient", "name": [{"family": "Cared"}],
            "generalPractitioner": [{"reference": gp_ref}]}),
        )
        .await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let stranger = app
        .create(
            &json!({"resourceType": "Patient", "name": [{"family": "Stranger"}],
            "generalPractitioner": [ods(OTHER_GP)]}),
        )
        .await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    app.create(
        &json!({"resourceType": "Encounter", "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": format!("Patient/{cared}")}, "serviceProvider": ods(HOSPITAL)}),
    )
    .await;
    app.create(&json!({"resourceType": "EpisodeOfCare", "status": "active",
        "patient": {"reference": format!("Patient/{cared}")}, "managingOrganization": ods(CARE_TEAM)}))
        .await;
    let order = |patient: &str, pharmacy: &str| {
        json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "medicationCodeableConcept": {"text": "Amlodipine 5mg tablets"},
            "subject": {"reference": format!("Patient/{patient}")},
            "authoredOn": today(),
            "dispenseRequest": {"performer": ods(pharmacy)}})
    };
    let cared_order = app.create(&order(&cared, PHARMACY)).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // The stranger's prescription is nominated to another pharmacy.
    let stranger_order = app.create(&order(&stranger, "FB000")).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    World {
        cared,
        stranger,
        cared_order,
        stranger_order,
    }
}

fn today() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    ReadPatient,
    SearchOrders,
    Everything,
    OrderHistory,
    CreateOrder,
    CreateDispense,
    CreateAdministration,
    CreateStatement,
    AuditLog,
    CdsOrderSelect,
}

const ENDPOINTS: [Endpoint; 10] = [
    Endpoint::ReadPatient,
    Endpoint::SearchOrders,
    Endpoint::Everything,
    Endpoint::OrderHistory,
    Endpoint::CreateOrder,
    Endpoint::CreateDispense,
    Endpoint::CreateAdministration,
    Endpoint::CreateStatement,
    Endpoint::AuditLog,
    Endpoint::CdsOrderSelect,
];

/// What each role may write (docs/access.md).
fn writes(role: Role, res_type: &str) -> bool {
    let list: &[&str] = match role {
        Role::Gp => &["MedicationRequest", "MedicationStatement"],
        Role::HospitalPrescriber => &[
            "MedicationRequest",
            "MedicationStatement",
            "MedicationAdministration",
        ],
        Role::HospitalPharmacist => &["MedicationDispense", "MedicationStatement"],
        Role::CommunityPharmacist => &["MedicationDispense", "MedicationStatement"],
        Role::Nurse => &["MedicationAdministration", "MedicationStatement"],
        Role::CareWorker => &["MedicationAdministration"],
        Role::Patient => &["MedicationStatement"],
        Role::Analyst | Role::Admin => &[],
        Role::System => &[
            "MedicationRequest",
            "MedicationDispense",
            "MedicationAdministration",
            "MedicationStatement",
        ],
    };
    list.contains(&res_type)
}

/// The expected answer: allowed or not.
fn expected(role: Role, endpoint: Endpoint, related: bool, break_glass: bool) -> bool {
    if break_glass && matches!(role, Role::Patient | Role::Analyst) {
        return false;
    }
    // May the caller open this patient's record at all?
    let opens = match role {
        Role::System => true,
        Role::Patient => related,
        Role::Analyst => false,
        Role::Admin => break_glass,
        _ => related || break_glass,
    };
    match endpoint {
        Endpoint::ReadPatient
        | Endpoint::SearchOrders
        | Endpoint::Everything
        | Endpoint::OrderHistory => opens,
        Endpoint::CreateOrder => opens && writes(role, "MedicationRequest"),
        Endpoint::CreateDispense => opens && writes(role, "MedicationDispense"),
        Endpoint::CreateAdministration => opens && writes(role, "MedicationAdministration"),
        Endpoint::CreateStatement => opens && writes(role, "MedicationStatement"),
        // The access log: a patient their own; an administrator their organisation's users';
        // a back-end system all.
        Endpoint::AuditLog => match role {
            Role::Patient => related,
            Role::Admin | Role::System => true,
            _ => false,
        },
        Endpoint::CdsOrderSelect => {
            opens
                && matches!(
                    role,
                    Role::Gp
                        | Role::HospitalPrescriber
                        | Role::HospitalPharmacist
                        | Role::CommunityPharmacist
                        | Role::Nurse
                        | Role::System
                )
        }
    }
}

fn entry(res_type: &str, patient: &str) -> Value {
    let subject = json!({"reference": format!("Patient/{patient}")});
    let medicine = json!({"text": "Amlodipine 5mg tablets"});
    match res_type {
        "MedicationDispense" => json!({"resourceType": res_type, "status": "completed",
            "medicationCodeableConcept": medicine, "subject": subject}),
        "MedicationAdministration" => json!({"resourceType": res_type, "status": "completed",
            "medicationCodeableConcept": medicine, "subject": subject,
            "effectiveDateTime": "2026-12-01T08:00:00Z"}),
        "MedicationStatement" => json!({"resourceType": res_type, "status": "active",
            "medicationCodeableConcept": medicine, "subject": subject}),
        _ => json!({"resourceType": res_type, "status": "active", "intent": "order",
            "medicationCodeableConcept": medicine, "subject": subject}),
    }
}

async fn call(
    client: &Client,
    endpoint: Endpoint,
    patient: &str,
    order: &str,
    bg: bool,
) -> StatusCode {
    let mut headers = vec![];
    if bg {
        headers.push((
            "x-break-glass-reason",
            "unconscious in the emergency department",
        ));
    }
    let (method, path, body) = match endpoint {
        Endpoint::ReadPatient => (Method::GET, format!("/fhir/Patient/{patient}"), None),
        Endpoint::SearchOrders => (
            Method::GET,
            format!("/fhir/MedicationRequest?patient={patient}"),
            None,
        ),
        Endpoint::Everything => (
            Method::GET,
            format!("/fhir/Patient/{patient}/$everything"),
            None,
        ),
        Endpoint::OrderHistory => (
            Method::GET,
            format!("/fhir/MedicationRequest/{order}/_history"),
            None,
        ),
        Endpoint::CreateOrder => (
            Method::POST,
            "/fhir/MedicationRequest".into(),
            Some(entry("MedicationRequest", patient)),
        ),
        Endpoint::CreateDispense => (
            Method::POST,
            "/fhir/MedicationDispense".into(),
            Some(entry("MedicationDispense", patient)),
        ),
        Endpoint::CreateAdministration => (
            Method::POST,
            "/fhir/MedicationAdministration".into(),
            Some(entry("MedicationAdministration", patient)),
        ),
        Endpoint::CreateStatement => (
            Method::POST,
            "/fhir/MedicationStatement".into(),
            Some(entry("MedicationStatement", patient)),
        ),
        Endpoint::AuditLog => (
            Method::GET,
            format!("/fhir/AuditEvent?patient=Patient/{patient}"),
            None,
        ),
        Endpoint::CdsOrderSelect => {
            let mut req = support::fixture("cds/order-select.json");
            req["context"]["patientId"] = json!(patient);
            req["prefetch"] = json!({});
            if let Some(draft) = req.pointer_mut("/context/draftOrders/entry/0/resource") {
                draft["subject"] = json!({"reference": format!("Patient/{patient}")});
            }
            (
                Method::POST,
                "/cds-services/smr-pgx-order-select".into(),
                Some(req),
            )
        }
    };
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    client
        .request(method, &path, &headers, body.map(|b| b.to_string()))
        .await
        .status
}

/// The newest audit record, as a back-end system lists it.
async fn newest_audit(app: &TestApp) -> Value {
    let page = app
        .get("/fhir/AuditEvent?_count=1")
        .await
        .expect(StatusCode::OK)
        .json();
    page["entry"][0]["resource"].clone()
}

async fn authorisation_matrix(app: &TestApp) {
    let w = world(app).await;
    let mut failures = Vec::new();
    for role in Role::ALL {
        for endpoint in ENDPOINTS {
            for related in [true, false] {
                for bg in [false, true] {
                    let (patient, order) = if related {
                        (&w.cared, &w.cared_order)
                    } else {
                        (&w.stranger, &w.stranger_order)
                    };
                    let client = match role {
                        Role::Patient => app.as_patient(&w.cared),
                        _ => app.as_user(&format!("u-{role}"), role, org_of(role)),
                    };
                    let want = expected(role, endpoint, related, bg);
                    let status = call(&client, endpoint, patient, order, bg).await;
                    let allowed = status.is_success();
                    if allowed != want || (!allowed && status != StatusCode::FORBIDDEN) {
                        failures.push(format!(
                            "{role} {endpoint:?} related={related} break-glass={bg}: got {status}, expected {}",
                            if want { "success" } else { "403" }
                        ));
                        continue;
                    }
                    // Every request, allowed or refused, leaves an audit record naming the user.
                    let audit = newest_audit(app).await;
                    let user = audit.pointer("/agent/0/who/identifier/value").cloned();
                    let expected_user = match role {
                        Role::Patient => format!("patient-{}", w.cared),
                        _ => format!("u-{role}"),
                    };
                    let outcome = audit["outcome"].as_str().unwrap_or_default();
                    let purpose = audit
                        .pointer("/purposeOfEvent/0/coding/0/code")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if user != Some(json!(expected_user))
                        || (allowed != (outcome == "0"))
                        || (bg && purpose != "BTG")
                    {
                        failures.push(format!(
                            "{role} {endpoint:?} related={related} break-glass={bg}: audit record {audit}"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        Role::ALL.len() * ENDPOINTS.len() * 4,
        failures.join("\n")
    );
}

async fn searches_return_only_cared_for_patients(app: &TestApp) {
    let w = world(app).await;
    let gp = app.as_user("u-gp", Role::Gp, Some(GP));
    let page = gp
        .get("/fhir/Patient?_total=accurate")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["entry"][0]["resource"]["id"], json!(w.cared));
    // The count leaks nothing either, and includes do not reach other patients.
    let orders = gp
        .get("/fhir/MedicationRequest?_total=accurate&_include=MedicationRequest:subject")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(orders["total"], 1, "{orders}");
    let ids: Vec<&str> = orders["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["id"].as_str())
        .collect();
    assert!(ids.contains(&w.cared.as_str()) && !ids.contains(&w.stranger.as_str()));
    let history = gp
        .get("/fhir/MedicationRequest/_history")
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(!history.to_string().contains(&w.stranger_order));
    // A pharmacy's relationship ends 90 days after the nomination.
    let old = json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"text": "Amlodipine 5mg tablets"},
        "subject": {"reference": format!("Patient/{}", w.stranger)}, "authoredOn": "2020-01-01",
        "dispenseRequest": {"performer": ods("FB999")}});
    app.create(&old).await;
    let pharmacist = app.as_user("u-ph", Role::CommunityPharmacist, Some("FB999"));
    pharmacist
        .get(&format!("/fhir/Patient/{}", w.stranger))
        .await
        .expect(StatusCode::FORBIDDEN);
}

async fn consent_withholds_labelled_entries(app: &TestApp) {
    let w = world(app).await;
    // Olanzapine is labelled PSY by SMR from its medicine.
    let statement = app
        .create(
            &json!({"resourceType": "MedicationStatement", "status": "active",
            "medicationCodeableConcept": {"text": "Olanzapine 10mg tablets"},
            "subject": {"reference": format!("Patient/{}", w.cared)}}),
        )
        .await;
    let labels = statement
        .pointer("/meta/security")
        .cloned()
        .unwrap_or_default();
    assert!(labels.to_string().contains("\"PSY\""), "{statement}");
    let statement_id = statement["id"].as_str().unwrap_or_default().to_owned();
    // The patient withholds psychiatric medicines from community pharmacies.
    let patient = app.as_patient(&w.cared);
    patient
        .post(
            "/fhir/Consent",
            &support::consent_withholding_psy_from_pharmacies(&w.cared),
        )
        .await
        .expect(StatusCode::CREATED);
    let pharmacist = app.as_user("u-ph", Role::CommunityPharmacist, Some(PHARMACY));
    let gp = app.as_user("u-gp", Role::Gp, Some(GP));
    let search = format!(
        "/fhir/MedicationStatement?patient={}&_total=accurate",
        w.cared
    );
    assert_eq!(
        pharmacist.get(&search).await.expect(StatusCode::OK).json()["total"],
        0
    );
    assert_eq!(
        gp.get(&search).await.expect(StatusCode::OK).json()["total"],
        1
    );
    pharmacist
        .get(&format!("/fhir/MedicationStatement/{statement_id}"))
        .await
        .expect(StatusCode::NOT_FOUND);
    let everything = pharmacist
        .get(&format!("/fhir/Patient/{}/$everything", w.cared))
        .await
        .expect(StatusCode::OK)
        .text;
    assert!(!everything.contains(&statement_id));
    // The patient always sees their own record.
    assert_eq!(
        patient.get(&search).await.expect(StatusCode::OK).json()["total"],
        1
    );
}

async fn patient_reads_own_access_log(app: &TestApp) {
    let w = world(app).await;
    let gp = app.as_user("u-gp", Role::Gp, Some(GP));
    gp.get(&format!("/fhir/Patient/{}", w.cared))
        .await
        .expect(StatusCode::OK);
    let er = app.as_user("u-er", Role::HospitalPrescriber, Some("R9Z"));
    er.request(
        Method::GET,
        &format!("/fhir/Patient/{}", w.cared),
        &[("x-break-glass-reason", "collapsed in A&E")],
        None,
    )
    .await
    .expect(StatusCode::OK);
    let patient = app.as_patient(&w.cared);
    let log = patient
        .get(&format!("/fhir/AuditEvent?patient=Patient/{}", w.cared))
        .await
        .expect(StatusCode::OK)
        .json();
    let text = log.to_string();
    assert!(text.contains("u-gp") && text.contains("u-er"), "{text}");
    assert!(text.contains("collapsed in A&E") && text.contains("BTG"));
    // Without a patient parameter a patient still sees only their own record's log.
    let own = patient
        .get("/fhir/AuditEvent")
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(
        !own.to_string()
            .contains(&format!("Patient/{}\"", w.stranger))
    );
    // Never another patient's, and never changed through the API.
    patient
        .get(&format!("/fhir/AuditEvent?patient=Patient/{}", w.stranger))
        .await
        .expect(StatusCode::FORBIDDEN);
    let id = log["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    app.delete(&format!("/fhir/AuditEvent/{id}"))
        .await
        .expect(StatusCode::FORBIDDEN);
    // The break-glass access is listed for the organisation's administrator.
    let admin = app.as_user("u-admin", Role::Admin, Some("R9Z"));
    let listed = admin
        .get("/fhir/AuditEvent?purpose=BTG")
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(listed.to_string().contains("collapsed in A&E"), "{listed}");
}

async fn refused_requests_write_nothing(app: &TestApp) {
    let w = world(app).await;
    let stranger_gp = app.as_user("u-other", Role::Gp, Some(OTHER_GP));
    let before = app
        .get(&format!(
            "/fhir/MedicationRequest?patient={}&_total=accurate",
            w.cared
        ))
        .await
        .json()["total"]
        .clone();
    stranger_gp
        .post(
            "/fhir/MedicationRequest",
            &entry("MedicationRequest", &w.cared),
        )
        .await
        .expect(StatusCode::FORBIDDEN);
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": entry("MedicationRequest", &w.stranger), "request": {"method": "POST", "url": "MedicationRequest"}},
        {"resource": entry("MedicationRequest", &w.cared), "request": {"method": "POST", "url": "MedicationRequest"}}]});
    stranger_gp
        .post("/fhir", &bundle)
        .await
        .expect(StatusCode::FORBIDDEN);
    let audit = newest_audit(app).await;
    assert_eq!(audit["outcome"], "4", "{audit}");
    let after = app
        .get(&format!(
            "/fhir/MedicationRequest?patient={}&_total=accurate",
            w.cared
        ))
        .await
        .json()["total"]
        .clone();
    assert_eq!(before, after);
}

async fn authentication_failures(app: &TestApp) {
    let anonymous = app.with_token(None);
    let reply = anonymous
        .get("/fhir/Patient")
        .await
        .expect(StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["resourceType"], "OperationOutcome");
    assert!(
        reply
            .header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer"))
    );
    let bad = app.with_token("not.a.token".to_owned());
    let reply = bad
        .get("/fhir/Patient")
        .await
        .expect(StatusCode::UNAUTHORIZED);
    assert!(
        reply
            .header("www-authenticate")
            .is_some_and(|h| h.contains("invalid_token"))
    );
    // A token signed by another key (an unknown issuer).
    let stranger = smr_auth::LocalIssuer::generate().expect("key");
    let foreign = stranger
        .issue(&smr_auth::TokenRequest {
            org: Some(GP.into()),
            ..smr_auth::TokenRequest::new("x", Role::Gp)
        })
        .expect("token");
    app.with_token(foreign)
        .get("/fhir/Patient")
        .await
        .expect(StatusCode::UNAUTHORIZED);
    // An expired token (beyond the 60 s allowed skew).
    let expired = app
        .issuer
        .issue_at(
            &smr_auth::TokenRequest {
                org: Some(GP.into()),
                ttl: std::time::Duration::from_secs(60),
                ..smr_auth::TokenRequest::new("x", Role::Gp)
            },
            time::OffsetDateTime::now_utc().unix_timestamp() - 3600,
        )
        .expect("token");
    app.with_token(expired)
        .get("/fhir/Patient")
        .await
        .expect(StatusCode::UNAUTHORIZED);
    // Public endpoints.
    anonymous.get("/fhir/metadata").await.expect(StatusCode::OK);
    anonymous.get("/healthz").await.expect(StatusCode::OK);
    // A break-glass header without a reason.
    app.request(
        Method::GET,
        "/fhir/Patient",
        &[("x-break-glass-reason", "  ")],
        None,
    )
    .await
    .expect(StatusCode::BAD_REQUEST);
}

async fn scopes_limit_a_token(app: &TestApp) {
    let w = world(app).await;
    let token = support::issue(
        &app.issuer,
        smr_auth::TokenRequest {
            org: Some(GP.into()),
            scope: Some("user/MedicationRequest.rs".into()),
            ..smr_auth::TokenRequest::new("u-scoped", Role::Gp)
        },
    );
    let scoped = app.with_token(token);
    scoped
        .get(&format!("/fhir/MedicationRequest?patient={}", w.cared))
        .await
        .expect(StatusCode::OK);
    scoped
        .get(&format!("/fhir/Patient/{}", w.cared))
        .await
        .expect(StatusCode::FORBIDDEN);
    scoped
        .post(
            "/fhir/MedicationRequest",
            &entry("MedicationRequest", &w.cared),
        )
        .await
        .expect(StatusCode::FORBIDDEN);
}

backend_tests! {
    matrix => authorisation_matrix;
    searches => searches_return_only_cared_for_patients;
    consent => consent_withholds_labelled_entries;
    access_log => patient_reads_own_access_log;
    refusals => refused_requests_write_nothing;
    authentication => authentication_failures;
    scopes => scopes_limit_a_token;
}
