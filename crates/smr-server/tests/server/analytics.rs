//! Issue 12, regional analytics: `GET /analytics/{measures,equity,result-to-change,
//! override-reasons,value}` over a population whose counts are known by construction, with
//! the disclosure rule in the expectations. Each runs on SQLite and, when configured,
//! PostgreSQL.

use crate::support;

use axum::http::StatusCode;
use serde_json::{Value, json};
use smr_access::Role;
use support::TestApp;

backend_tests! {
    analytics_measures_count_patients_per_unit_with_disclosure_control => measures;
    analytics_reports_split_estimate_and_download => other_reports;
    analytics_is_for_analysts_and_says_what_is_wrong => refusals;
    icb_dashboard_shows_the_published_measures_as_charts_tables_and_downloads => dashboard;
    reconciliation_timeliness_is_counted_per_unit_against_qs120 => timeliness;
}

const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const DMD: &str = "https://dmd.nhs.uk";
const CONSENT_SCOPE: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
const MONTH: &str = "2026-06";
const CLOPIDOGREL: &str = "319799004"; // Clopidogrel 75mg tablets
const ICB: &str = "QWE";
const SUB_ICB: &str = "15F";
const PRACTICE: &str = "A81001";

async fn org(app: &TestApp, ods: &str, part_of: Option<&str>) -> String {
    let mut o = json!({"resourceType": "Organization", "identifier": [{"system": ODS, "value": ods}], "name": ods});
    if let Some(parent) = part_of {
        o["partOf"] = json!({"reference": format!("Organization/{parent}")});
    }
    app.create(&o).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn patient(app: &TestApp, practice: &str, gender: &str) -> String {
    let p = json!({"resourceType": "Patient", "birthDate": "1956-01-15", "gender": gender,
        "generalPractitioner": [{"reference": format!("Organization/{practice}")}]});
    app.create(&p).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn prescribe(app: &TestApp, patient: &str) {
    app.create(
        &json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": DMD, "code": CLOPIDOGREL}]},
        "subject": {"reference": format!("Patient/{patient}")}, "authoredOn": "2026-06-10"}),
    )
    .await;
}

/// A CYP2C19 *2/*2 result (poor metabolizer: CPIC advises an alternative to clopidogrel).
async fn genotype(app: &TestApp, patient: &str) {
    app.create(&json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "84413-4"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": "2026-05-20", "valueCodeableConcept": {"text": "*2/*2"},
        "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "48018-6"}]},
            "valueCodeableConcept": {"coding": [{"system": "http://www.genenames.org/geneId",
                "code": "HGNC:2621", "display": "CYP2C19"}]}}]}))
        .await;
}

/// A GP ordering clopidogrel for the patient through CDS Hooks `order-select`, then
/// overriding the PGx card with a reason (feedback names only the card).
async fn override_alert(app: &TestApp, patient: &str) {
    let gp = app.as_user("u-gp", Role::Gp, Some(PRACTICE));
    let mut request = support::fixture("cds/order-select.json");
    let text = request.to_string().replace("PATIENT_ID", patient);
    request = serde_json::from_str(&text).expect("json");
    request["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"] =
        json!({"coding": [{"system": DMD, "code": CLOPIDOGREL}]});
    let reply = gp
        .post("/cds-services/smr-pgx-order-select", &request)
        .await
        .expect(StatusCode::OK)
        .json();
    let card = reply["cards"]
        .as_array()
        .and_then(|cards| {
            cards
                .iter()
                .find(|c| c["summary"].as_str().is_some_and(|s| s.contains("CYP2C19")))
        })
        .unwrap_or_else(|| panic!("a CYP2C19 card in {reply}"));
    gp.post(
        "/cds-services/smr-pgx-order-select/feedback",
        &json!({"feedback": [{"card": card["uuid"], "outcome": "overridden",
            "outcomeTimestamp": "2026-06-10T10:00:00Z",
            "overrideReason": {"reason": {"system": "https://fhir.smr.nhs.uk/CodeSystem/override-reason",
                "code": "patient-tolerating"}}}]}),
    )
    .await
    .expect(StatusCode::OK);
}

/// One practice under a sub-ICB under the ICB: 20 patients on clopidogrel in June (12 women,
/// 8 men), 10 of them (all women) with a CYP2C19 poor-metabolizer result, whose PGx alert the
/// GP overrode; 5 patients on nothing; one on clopidogrel with a result who opted out of
/// secondary use (never counted); one registered nowhere (not placed).
async fn population(app: &TestApp) {
    let icb = org(app, ICB, None).await;
    let sub = org(app, SUB_ICB, Some(&icb)).await;
    let practice = org(app, PRACTICE, Some(&sub)).await;
    for i in 0..20 {
        let p = patient(app, &practice, if i < 12 { "female" } else { "male" }).await;
        prescribe(app, &p).await;
        if i < 10 {
            genotype(app, &p).await;
            override_alert(app, &p).await;
        }
    }
    for _ in 0..5 {
        patient(app, &practice, "female").await;
    }
    let opted_out = patient(app, &practice, "female").await;
    prescribe(app, &opted_out).await;
    genotype(app, &opted_out).await;
    app.create(&json!({"resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "research"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{opted_out}")},
        "provision": {"type": "deny"}}))
        .await;
    app.create(&json!({"resourceType": "Patient", "birthDate": "1970-01-01"}))
        .await;
}

fn measure<'a>(body: &'a Value, slug: &str) -> &'a Value {
    body["measures"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["measure"] == slug))
        .unwrap_or_else(|| panic!("no {slug} in {body}"))
}

async fn measures(app: &TestApp) {
    population(app).await;
    let analyst = app.as_user("u-analyst", Role::Analyst, Some("X26"));
    for (level, unit) in [("icb", ICB), ("sub-icb", SUB_ICB), ("practice", PRACTICE)] {
        let body = analyst
            .get(&format!("/analytics/measures?month={MONTH}&level={level}"))
            .await
            .expect(StatusCode::OK)
            .json();
        assert_eq!(body["month"], MONTH);
        assert_eq!(body["level"], level);
        let adoption = measure(&body, "pgx-adoption");
        let table = &adoption["table"];
        assert_eq!(table["row_labels"], json!([unit]), "{adoption}");
        // 10 of 20 with a genotype: both cells published (rounded to 5), the opted-out
        // patient counted nowhere.
        assert_eq!(table["cells"], json!([[10, 10]]), "{adoption}");
        assert_eq!(
            adoption["rates"][0]["rate"]["value"],
            json!(0.5),
            "{adoption}"
        );
        // All 10 results are actionable for the clopidogrel they were prescribed.
        let actionable = measure(&body, "actionable-results");
        assert_eq!(
            actionable["table"]["cells"],
            json!([[10, 0]]),
            "{actionable}"
        );
        // The 10 overridden alerts, linked to their patients through the cards SMR issued.
        let overrides = measure(&body, "alert-override");
        assert_eq!(overrides["table"]["cells"], json!([[10, 0]]), "{overrides}");
        let acceptance = measure(&body, "alert-acceptance");
        assert_eq!(
            acceptance["table"]["cells"],
            json!([[0, 10]]),
            "{acceptance}"
        );
        // One patient is registered nowhere: a count of 1 is never published.
        assert_eq!(
            body["patientsNotPlaced"]["noRegisteredPracticeInAnIcb"],
            json!({"redacted": "primary"}),
            "{body}"
        );
    }
}

async fn other_reports(app: &TestApp) {
    population(app).await;
    let analyst = app.as_user("u-analyst", Role::Analyst, Some("X26"));
    // By sex: women 10 of 12 (the complement of 2 is redacted, and so, to protect it, is
    // its neighbour); men 0 of 8.
    let equity = analyst
        .get(&format!(
            "/analytics/equity?month={MONTH}&level=icb&code={ICB}&measure=pgx-adoption&dimension=sex"
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(equity["dimension"], "sex");
    let labels = equity["table"]["row_labels"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let female = labels
        .iter()
        .position(|l| l == "female")
        .expect("a female row");
    assert_eq!(
        equity["table"]["cells"][female][1],
        json!({"redacted": "primary"}),
        "{equity}"
    );

    let csv = analyst
        .get(&format!(
            "/analytics/measures?month={MONTH}&level=practice&measure=pgx-adoption&format=csv"
        ))
        .await
        .expect(StatusCode::OK);
    assert!(
        csv.header("content-type")
            .is_some_and(|c| c.starts_with("text/csv")),
        "{:?}",
        csv.headers
    );
    assert!(csv.text.starts_with("Practice,"), "{}", csv.text);
    assert!(
        csv.text.contains(&format!("{PRACTICE},10,10")),
        "{}",
        csv.text
    );

    let value = analyst
        .get(&format!(
            "/analytics/value?month={MONTH}&level=icb&code={ICB}&parameter=cost_per_bed_day_gbp:400,900,1000"
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(
        value.to_string().contains("cost_per_bed_day_gbp"),
        "{value}"
    );

    analyst
        .get(&format!(
            "/analytics/result-to-change?month={MONTH}&level=icb"
        ))
        .await
        .expect(StatusCode::OK);
    let reasons = analyst
        .get(&format!(
            "/analytics/override-reasons?month={MONTH}&level=icb&code={ICB}"
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(
        reasons["table"]["row_labels"]
            .to_string()
            .contains("patient-tolerating"),
        "{reasons}"
    );
}

async fn refusals(app: &TestApp) {
    population(app).await;
    let gp = app.as_user("u-gp", Role::Gp, Some(PRACTICE));
    let refused = gp.get(&format!("/analytics/measures?month={MONTH}")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert_eq!(refused.json()["resourceType"], "OperationOutcome");

    let analyst = app.as_user("u-analyst", Role::Analyst, Some("X26"));
    for (path, status) in [
        ("/analytics/measures", StatusCode::BAD_REQUEST),
        ("/analytics/measures?month=June", StatusCode::BAD_REQUEST),
        (
            "/analytics/measures?month=2026-06&level=ward",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/analytics/measures?month=2026-06&measure=happiness",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/analytics/measures?month=2026-06&format=csv",
            StatusCode::BAD_REQUEST,
        ),
        ("/analytics/equity?month=2026-06", StatusCode::BAD_REQUEST),
        (
            "/analytics/value?month=2026-06&code=QWE&parameter=relative_adr_reduction:2",
            StatusCode::BAD_REQUEST,
        ),
        ("/analytics/horoscope?month=2026-06", StatusCode::NOT_FOUND),
    ] {
        let reply = analyst.get(path).await;
        assert_eq!(reply.status, status, "{path}: {}", reply.text);
        assert_eq!(reply.json()["resourceType"], "OperationOutcome", "{path}");
    }

    // Every question is audited with the analyst and its parameters.
    let admin = app.as_user("u-admin", Role::Admin, Some("X26"));
    let audit = admin
        .get("/fhir/AuditEvent?_count=200")
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(
        audit.to_string().contains("analytics-measures"),
        "no analytics audit record in {audit}"
    );
}

async fn dashboard(app: &TestApp) {
    population(app).await;
    // An analyst of the ICB: the equity and value panels describe their own ICB.
    let analyst = app.as_user("u-analyst", Role::Analyst, Some(ICB));
    let page = analyst
        .get(&format!("/app/icb?month={MONTH}&level=icb"))
        .await
        .expect(StatusCode::OK);
    assert!(
        page.header("content-type")
            .is_some_and(|c| c.starts_with("text/html")),
        "{:?}",
        page.headers
    );
    let html = &page.text;
    for expected in [
        "ICB dashboards",
        "PGx adoption",
        "Equity in QWE",
        "by deprivation",
        "Harm and cost avoided in QWE",
        "data:image/svg+xml;base64,",
        "/app/icb/measure.csv?month=2026-06&#38;level=icb&#38;measure=pgx-adoption",
    ] {
        assert!(
            html.contains(expected),
            "no {expected:?} in the page:\n{html}"
        );
    }
    // The published figures, never a raw count: 10 of 20 with a genotype.
    assert!(
        html.contains("<td>10</td><td>20</td><td>50.0%</td>"),
        "{html}"
    );
    // Every chart has a text alternative.
    assert!(!html.contains("alt=\"\""), "{html}");

    let csv = analyst
        .get(&format!(
            "/app/icb/measure.csv?month={MONTH}&level=practice&measure=pgx-adoption"
        ))
        .await
        .expect(StatusCode::OK);
    assert!(
        csv.header("content-disposition")
            .is_some_and(|d| d.starts_with("attachment")),
        "{:?}",
        csv.headers
    );
    assert!(
        csv.text.contains(&format!("{PRACTICE},10,10")),
        "{}",
        csv.text
    );

    // Other roles get the refusal page, not the numbers.
    let gp = app.as_user("u-gp", Role::Gp, Some(PRACTICE));
    let refused = gp.get(&format!("/app/icb?month={MONTH}")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert!(!refused.text.contains("PGx adoption"), "{}", refused.text);
}

/// An inpatient admission on 5 June 2026 at 10:00, reconciled `after_hours` later (or never).
async fn admission(app: &TestApp, patient: &str, after_hours: Option<u32>) {
    let encounter = app
        .create(
            &json!({"resourceType": "Encounter", "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": {"reference": format!("Patient/{patient}")},
            "period": {"start": "2026-06-05T10:00:00Z"}}),
        )
        .await;
    let Some(hours) = after_hours else {
        return;
    };
    let id = encounter["id"].as_str().unwrap_or_default();
    app.create(&json!({"resourceType": "List", "status": "current", "mode": "snapshot",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "430193006"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "encounter": {"reference": format!("Encounter/{id}")},
        "date": format!("2026-06-{:02}T{:02}:00:00Z", 5 + (10 + hours) / 24, (10 + hours) % 24),
        "emptyReason": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/list-empty-reason", "code": "nilknown"}]}}))
        .await;
}

async fn timeliness(app: &TestApp) {
    let icb = org(app, ICB, None).await;
    let practice = org(app, PRACTICE, Some(&icb)).await;
    // 15 admissions reconciled within 24 hours, 10 after 30 hours, 2 never (not met: the
    // 24 hours ran out long ago).
    for i in 0..27 {
        let p = patient(app, &practice, "female").await;
        let hours = match i {
            0..15 => Some(6),
            15..25 => Some(30),
            _ => None,
        };
        admission(app, &p, hours).await;
    }
    let analyst = app.as_user("u-analyst", Role::Analyst, Some("X26"));
    let body = analyst
        .get(&format!(
            "/analytics/reconciliation-timeliness?month={MONTH}&level=practice"
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    let admissions = &body["statements"][0];
    assert_eq!(admissions["measure"], "qs120-4-admission-24h", "{body}");
    assert_eq!(
        admissions["table"]["row_labels"],
        json!([PRACTICE]),
        "{body}"
    );
    // 15 met and 12 not met → 15 and 10 (rounded), 0 pending; 15 of 25 decided.
    assert_eq!(admissions["table"]["cells"], json!([[15, 10, 0]]), "{body}");
    assert_eq!(
        admissions["rates"][0]["rate"]["value"],
        json!(0.6),
        "{body}"
    );
    // No discharge this month: nothing to publish for statement 5.
    assert!(body["statements"][1].get("table").is_none(), "{body}");

    let csv = analyst
        .get(&format!(
            "/analytics/reconciliation-timeliness?month={MONTH}&level=icb&format=csv"
        ))
        .await
        .expect(StatusCode::OK);
    assert!(csv.text.contains(&format!("{ICB},15,10,0")), "{}", csv.text);

    // Split for equity: all 27 are women, so the women's row holds the counts.
    let split = analyst
        .get(&format!(
            "/analytics/safety-equity?month={MONTH}&level=practice&code={PRACTICE}&dimension=sex"
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(split["dimension"], "sex", "{split}");
    assert_eq!(
        split["pincer"].as_array().map(Vec::len),
        Some(14),
        "every PINCER measure: {split}"
    );
    let admissions = &split["reconciliation"][0];
    assert_eq!(admissions["measure"], "qs120-4-admission-24h");
    let labels = admissions["table"]["row_labels"].clone();
    let female = labels
        .as_array()
        .and_then(|l| l.iter().position(|g| g == "female"))
        .expect("a female row");
    assert_eq!(
        admissions["table"]["cells"][female],
        json!([15, 10]),
        "{split}"
    );
    assert_eq!(
        admissions["rates"][female]["rate"]["value"],
        json!(0.6),
        "{split}"
    );
    let unknown_unit = analyst
        .get(&format!(
            "/analytics/safety-equity?month={MONTH}&level=practice&code=NOPE&dimension=sex"
        ))
        .await;
    assert_eq!(
        unknown_unit.status,
        StatusCode::BAD_REQUEST,
        "{}",
        unknown_unit.text
    );

    // The safety dashboard shows the same published counts beside the PINCER indicators.
    let page = analyst
        .get(&format!("/app/icb/safety?month={MONTH}&level=practice"))
        .await
        .expect(StatusCode::OK);
    for expected in [
        "NICE QS120",
        "PINCER indicators",
        &format!("<th scope=\"row\">{PRACTICE}</th><td>15</td><td>10</td><td>0</td><td>60.0%</td>"),
    ] {
        assert!(
            page.text.contains(expected),
            "no {expected:?} in\n{}",
            page.text
        );
    }
    // And split for equity on the page, for one unit.
    let split_page = analyst
        .get(&format!(
            "/app/icb/safety?month={MONTH}&level=practice&code={PRACTICE}&dimension=sex"
        ))
        .await
        .expect(StatusCode::OK);
    assert!(
        split_page
            .text
            .contains(&format!("Equity in {PRACTICE}: by sex")),
        "{}",
        split_page.text
    );
    assert!(
        split_page.text.contains("PINCER a.") && split_page.text.contains("<td>60.0%</td>"),
        "{}",
        split_page.text
    );
    let gp = app.as_user("u-gp", Role::Gp, Some(PRACTICE));
    let refused = gp.get(&format!("/app/icb/safety?month={MONTH}")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
}
