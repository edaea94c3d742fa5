//! Issue 11, PINCER indicators: `GET Patient/{id}/$pincer` and `GET /analytics/pincer` over a
//! generated population whose counts are known by construction (three practices, one under
//! the ICB directly and two under a sub-ICB), with the disclosure rule applied in the
//! expectations. Each runs on SQLite and, when configured, PostgreSQL.

use crate::support;

use axum::http::StatusCode;
use serde_json::{Value, json};
use smr_access::Role;
use support::TestApp;

backend_tests! {
    pincer_flags_a_patient_by_the_entries_that_put_them_there => patient_result;
    pincer_aggregates_count_practices_sub_icbs_and_icbs_with_disclosure_control => aggregates;
    pincer_is_refused_without_a_relationship_or_the_analyst_role => access;
}

const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const DMD: &str = "https://dmd.nhs.uk";
const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/medicationrequest-category";
const CONSENT_SCOPE: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
const MONTH: &str = "2026-06";
const AT: &str = "2026-06-01";

const IBUPROFEN: &str = "329653008"; // Ibuprofen 400mg tablets
const IBUPROFEN_AMP: &str = "11177511000001107"; // Ibuprofen 400mg tablets (Zentiva)
const NAPROXEN: &str = "329807003"; // Naproxen 500mg tablets
const OMEPRAZOLE: &str = "317291008"; // Omeprazole 20mg gastro-resistant capsules
const WARFARIN: &str = "319733000"; // Warfarin 1mg tablets

const AGED_70: &str = "1956-01-15";
const AGED_64: &str = "1962-01-15";
const AGED_50: &str = "1976-01-15";

const ICB: &str = "QWE";
const SUB_ICB: &str = "15F";
const P1: &str = "A81001";
const P2: &str = "B82002";
const P3: &str = "C83003";

async fn org(app: &TestApp, ods: &str, name: &str, part_of: Option<&str>) -> String {
    let mut o = json!({"resourceType": "Organization", "identifier": [{"system": ODS, "value": ods}], "name": name});
    if let Some(parent) = part_of {
        o["partOf"] = json!({"reference": format!("Organization/{parent}")});
    }
    app.create(&o).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn patient(app: &TestApp, practice: &str, birth: &str) -> String {
    let p = json!({"resourceType": "Patient", "birthDate": birth, "gender": "female",
        "generalPractitioner": [{"reference": format!("Organization/{practice}")}]});
    app.create(&p).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn prescription(patient: &str, code: &str, authored: &str) -> Value {
    json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "category": [{"coding": [{"system": CATEGORY, "code": "community"}]}],
        "medicationCodeableConcept": {"coding": [{"system": DMD, "code": code}]},
        "subject": {"reference": format!("Patient/{patient}")}, "authoredOn": authored})
}

async fn prescribe(app: &TestApp, patient: &str, code: &str) -> String {
    let created = app.create(&prescription(patient, code, "2026-05-10")).await;
    format!(
        "MedicationRequest/{}",
        created["id"].as_str().unwrap_or_default()
    )
}

/// The population, and what it was built to contain.
struct Population {
    /// A P1 patient aged 70 on ibuprofen (indicator a) and warfarin-free.
    flagged: String,
    flagged_nsaid: String,
    /// A P3 patient whose NSAID is withheld from everyone by their consent.
    hidden: String,
}

/// Indicator a (65+, oral NSAID, no gastroprotection) and d (anticoagulant + NSAID) by
/// construction:
/// - P1 (under the ICB directly): 20 aged 70 without gastroprotection, 10 on an NSAID (half
///   of them a branded product); 3 aged 64 on an NSAID and 2 aged 70 on an NSAID with a PPI
///   (neither in a's denominator); 9 aged 50 on warfarin, 8 of them with an NSAID; 1 aged 70
///   on an NSAID who opted out of secondary use (counted nowhere).
/// - P2 (under the sub-ICB): 12 aged 70, 9 on naproxen.
/// - P3 (under the sub-ICB): 6 aged 70, 2 on an NSAID (one withheld by consent).
async fn population(app: &TestApp) -> Population {
    let icb = org(app, ICB, "Test ICB", None).await;
    let sub = org(app, SUB_ICB, "Test sub-ICB", Some(&icb)).await;
    let p1 = org(app, P1, "Practice One", Some(&icb)).await;
    let p2 = org(app, P2, "Practice Two", Some(&sub)).await;
    let p3 = org(app, P3, "Practice Three", Some(&sub)).await;

    let mut flagged = None;
    for i in 0..20 {
        let p = patient(app, &p1, AGED_70).await;
        if i < 10 {
            let rx = prescribe(app, &p, if i % 2 == 0 { IBUPROFEN } else { IBUPROFEN_AMP }).await;
            if flagged.is_none() {
                flagged = Some((p.clone(), rx));
            }
        }
    }
    for _ in 0..3 {
        let p = patient(app, &p1, AGED_64).await;
        prescribe(app, &p, IBUPROFEN).await;
    }
    for _ in 0..2 {
        let p = patient(app, &p1, AGED_70).await;
        prescribe(app, &p, NAPROXEN).await;
        prescribe(app, &p, OMEPRAZOLE).await;
    }
    for i in 0..9 {
        let p = patient(app, &p1, AGED_50).await;
        prescribe(app, &p, WARFARIN).await;
        if i < 8 {
            prescribe(app, &p, IBUPROFEN).await;
        }
    }
    let opted_out = patient(app, &p1, AGED_70).await;
    prescribe(app, &opted_out, IBUPROFEN).await;
    app.create(&json!({"resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "research"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{opted_out}")},
        "provision": {"type": "deny"}}))
        .await;

    for i in 0..12 {
        let p = patient(app, &p2, AGED_70).await;
        if i < 9 {
            prescribe(app, &p, NAPROXEN).await;
        }
    }
    let mut hidden = None;
    for i in 0..6 {
        let p = patient(app, &p3, AGED_70).await;
        if i == 0 {
            // Withheld from everyone (PSY label, consent denying PSY).
            let mut rx = prescription(&p, IBUPROFEN, "2026-05-10");
            rx["meta"] = json!({"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}]});
            app.create(&rx).await;
            app.create(&json!({"resourceType": "Consent", "status": "active",
                "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}]},
                "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                "patient": {"reference": format!("Patient/{p}")},
                "provision": {"type": "deny", "securityLabel": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}]}}))
                .await;
            hidden = Some(p);
        } else if i == 1 {
            prescribe(app, &p, NAPROXEN).await;
        }
    }
    let (flagged, flagged_nsaid) = flagged.unwrap_or_default();
    Population {
        flagged,
        flagged_nsaid,
        hidden: hidden.unwrap_or_default(),
    }
}

fn indicator<'a>(parameters: &'a Value, id: &str) -> &'a Value {
    parameters["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "indicator" && p["part"][0]["valueCode"] == id)
        .unwrap_or_else(|| panic!("no indicator {id} in {parameters}"))
}

fn parts<'a>(indicator: &'a Value, name: &str) -> Vec<&'a Value> {
    indicator["part"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == name)
        .collect()
}

fn boolean(indicator: &Value, name: &str) -> Option<bool> {
    parts(indicator, name)
        .first()
        .and_then(|p| p["valueBoolean"].as_bool())
}

async fn patient_result(app: &TestApp) {
    let pop = population(app).await;
    let gp = app.as_user("u-gp1", Role::Gp, Some(P1));
    let reply = gp
        .get(&format!("/fhir/Patient/{}/$pincer?date={AT}", pop.flagged))
        .await;
    let status = reply.status;
    let body = reply.json();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["resourceType"], "Parameters");
    let count = body["parameter"]
        .as_array()
        .map(|a| a.iter().filter(|p| p["name"] == "indicator").count());
    assert_eq!(count, Some(14), "13 indicators, 14 measures");
    let a = indicator(&body, "a");
    assert_eq!(boolean(a, "denominator"), Some(true));
    assert_eq!(boolean(a, "numerator"), Some(true));
    let entries: Vec<&str> = parts(a, "entry")
        .iter()
        .filter_map(|p| p["valueReference"]["reference"].as_str())
        .collect();
    assert_eq!(entries, [pop.flagged_nsaid.as_str()]);
    assert!(
        parts(a, "source")[0]["valueString"]
            .as_str()
            .is_some_and(|s| s.contains("bmjmed-2022-000392"))
    );
    let d = indicator(&body, "d");
    assert_eq!(
        (boolean(d, "denominator"), boolean(d, "numerator")),
        (Some(false), Some(false))
    );

    // The default date is today: the May prescriptions are then a different window, but the
    // answer is still one part per indicator.
    let today = gp
        .get(&format!("/fhir/Patient/{}/$pincer", pop.flagged))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(today["parameter"][0]["name"], "date");

    // A withheld NSAID still flags the patient, but is never named.
    let gp3 = app.as_user("u-gp3", Role::Gp, Some(P3));
    let hidden = gp3
        .get(&format!("/fhir/Patient/{}/$pincer?date={AT}", pop.hidden))
        .await
        .expect(StatusCode::OK)
        .json();
    let a = indicator(&hidden, "a");
    assert_eq!(boolean(a, "numerator"), Some(true));
    assert!(parts(a, "entry").is_empty(), "{a}");
    assert_eq!(parts(a, "hiddenEntries")[0]["valueInteger"], 1);
    assert!(!hidden.to_string().contains(IBUPROFEN));

    // Bad input: a date that is not a full date.
    for bad in ["2026-06", "2026-02-30", "yesterday"] {
        let reply = gp
            .get(&format!("/fhir/Patient/{}/$pincer?date={bad}", pop.flagged))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(reply.json()["resourceType"], "OperationOutcome");
    }
    gp.get("/fhir/Patient/no-such-patient/$pincer")
        .await
        .expect(StatusCode::NOT_FOUND);
}

fn unit<'a>(answer: &'a Value, indicator: &str, code: &str) -> &'a Value {
    answer["indicators"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["id"] == indicator)
        .and_then(|i| i["units"].as_array())
        .into_iter()
        .flatten()
        .find(|u| u["code"] == code)
        .unwrap_or_else(|| panic!("no unit {code} for {indicator} in {answer}"))
}

fn published(u: &Value) -> (Value, Value, Value, Value) {
    (
        u["numerator"].clone(),
        u["denominator"].clone(),
        u["rate"].clone(),
        u["percentile"].clone(),
    )
}

async fn aggregates(app: &TestApp) {
    population(app).await;
    let analyst = app.as_user("u-analyst", Role::Analyst, Some("X26"));
    let get = |level: &str| {
        let analyst = analyst.clone();
        let url = format!("/analytics/pincer?level={level}&month={MONTH}");
        async move {
            let reply = analyst.get(&url).await;
            let status = reply.status;
            let body = reply.json();
            assert_eq!(status, StatusCode::OK, "{body}");
            body
        }
    };
    let practice = get("practice").await;
    assert_eq!(practice["referenceDate"], AT);
    assert_eq!(practice["level"], "practice");
    // Disclosure control (smr-sdc): per unit, flagged and not flagged, the denominator their
    // rounded sum; a redacted part redacts the other (the total would give it back).
    // a: P1 10 of 20 → 10, 20; P2 9 of 12 (3 not flagged) → withheld; P3 2 of 6 → withheld.
    assert_eq!(
        published(unit(&practice, "a", P1)),
        (json!(10), json!(20), json!(0.5), json!(0.0))
    );
    for withheld in [P2, P3] {
        let (n, _, rate, rank) = published(unit(&practice, "a", withheld));
        assert_eq!((n, rate, rank), (Value::Null, Value::Null, Value::Null));
    }
    assert_eq!(unit(&practice, "a", P1)["name"], "Practice One");
    // Deciles of the published rates: P1's 0.5 only.
    let deciles = &practice["indicators"][0]["deciles"];
    for d in ["10", "50", "90"] {
        assert!(
            (deciles[d].as_f64().unwrap_or_default() - 0.5).abs() < 1e-9,
            "{deciles}"
        );
    }
    // d: P1 8 of 9 with an NSAID (1 not flagged) → withheld.
    let (n, _, rate, _) = published(unit(&practice, "d", P1));
    assert_eq!((n, rate), (Value::Null, Value::Null));
    // The one opted-out patient: a count of 1 is redacted.
    assert_eq!(practice["patientsOptedOut"], Value::Null);
    // Everyone is registered with a practice: zero describes nobody and is published.
    assert_eq!(practice["patientsWithoutUnit"], 0);

    let sub = get("sub-icb").await;
    // P2 + P3: 11 of 18 (7 not flagged) → withheld; P1 has no sub-ICB: its 34 patients → 35.
    let (n, _, rate, _) = published(unit(&sub, "a", SUB_ICB));
    assert_eq!((n, rate), (Value::Null, Value::Null));
    assert_eq!(sub["patientsWithoutUnit"], 35);
    let icb = get("icb").await;
    // All: 21 of 38 (17 not flagged) → 20 and 15, denominator 35.
    assert_eq!(
        published(unit(&icb, "a", ICB)),
        (json!(20), json!(35), json!(20.0 / 35.0), json!(0.0))
    );

    // Bad parameters are a 400 with an OperationOutcome.
    for bad in [
        "/analytics/pincer?level=region&month=2026-06",
        "/analytics/pincer?level=practice&month=2026-13",
        "/analytics/pincer?level=practice",
    ] {
        let reply = analyst.get(bad).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(reply.json()["resourceType"], "OperationOutcome");
    }
    // An administrator may read them too.
    app.as_user("u-admin", Role::Admin, Some("X26"))
        .get(&format!("/analytics/pincer?level=icb&month={MONTH}"))
        .await
        .expect(StatusCode::OK);
}

async fn access(app: &TestApp) {
    let pop = population(app).await;
    // A GP of another practice has no relationship with the patient.
    app.as_user("u-gp3", Role::Gp, Some(P3))
        .get(&format!("/fhir/Patient/{}/$pincer", pop.flagged))
        .await
        .expect(StatusCode::FORBIDDEN);
    // Only analysts and administrators see the aggregates.
    for role in [Role::Gp, Role::HospitalPharmacist, Role::Nurse] {
        app.as_user("u-not-analyst", role, Some(P1))
            .get(&format!("/analytics/pincer?level=practice&month={MONTH}"))
            .await
            .expect(StatusCode::FORBIDDEN);
    }
    // Both refusals are audited.
    let audit = app
        .get("/fhir/AuditEvent?_count=20")
        .await
        .expect(StatusCode::OK)
        .json()
        .to_string();
    assert!(
        audit.contains("pincer-aggregates"),
        "aggregates refusal audited"
    );
    assert!(audit.contains("$pincer"), "$pincer refusal audited");
}
