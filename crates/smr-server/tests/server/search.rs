//! FHIR search through the real router, on SQLite and PostgreSQL.

use crate::support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use support::match_ids as ids;
use support::named_patient as patient;
use support::{TestApp, fixture, route};

backend_tests! {
    search_by_patient_code_status_and_date => by_patient_code_status_date;
    token_forms_and_modifiers => tokens;
    string_search_folds_case_and_accents => strings;
    sort_count_and_stable_paging => paging;
    include_and_revinclude => includes;
    summary_count_total_and_missing => summary_and_missing;
    unknown_parameters_strict_by_default_lenient_on_request => handling;
}

fn order(patient: &str, code: &str, display: &str, status: &str, authored: &str) -> Value {
    let mut mr = fixture("medication-request.json");
    mr["subject"]["reference"] = json!(format!("Patient/{patient}"));
    mr["medicationCodeableConcept"] =
        json!({"coding": [{"system": "https://dmd.nhs.uk", "code": code, "display": display}]});
    mr["status"] = json!(status);
    mr["authoredOn"] = json!(authored);
    mr.as_object_mut().map(|o| o.remove("identifier"));
    mr
}

async fn search(app: &TestApp, query: &str) -> Value {
    app.get(&format!("/fhir/{query}"))
        .await
        .expect(StatusCode::OK)
        .json()
}

// Real dm+d VMP codes (SNOMED CT identifiers with valid check digits): Paracetamol 500mg
// tablets and Clopidogrel 75mg tablets.
const PARACETAMOL: &str = "39720311000001101";
const CLOPIDOGREL: &str = "319799004";

async fn by_patient_code_status_date(app: &TestApp) {
    let a = patient(app, "9990000018", "Smith").await;
    let b = patient(app, "9990000026", "Jones").await;
    let a1 = app
        .create(&order(
            &a,
            PARACETAMOL,
            "Paracetamol 500mg tablets",
            "active",
            "2026-01-10",
        ))
        .await;
    let a2 = app
        .create(&order(
            &a,
            CLOPIDOGREL,
            "Clopidogrel 75mg tablets",
            "stopped",
            "2026-03-05T10:00:00Z",
        ))
        .await;
    app.create(&order(
        &b,
        PARACETAMOL,
        "Paracetamol 500mg tablets",
        "active",
        "2025-12-31",
    ))
    .await;
    let id = |v: &Value| v["id"].as_str().unwrap_or_default().to_owned();

    let mut by_patient = ids(&search(app, &format!("MedicationRequest?patient={a}")).await);
    by_patient.sort();
    let mut expected = vec![id(&a1), id(&a2)];
    expected.sort();
    assert_eq!(by_patient, expected);
    assert_eq!(
        ids(&search(
            app,
            &format!("MedicationRequest?subject=Patient/{a}&status=stopped")
        )
        .await),
        vec![id(&a2)]
    );
    assert_eq!(
        ids(&search(app, &format!("MedicationRequest?subject:Patient={b}")).await).len(),
        1
    );
    assert_eq!(
        ids(&search(app, &format!("MedicationRequest?code={CLOPIDOGREL}")).await),
        vec![id(&a2)]
    );
    assert_eq!(
        ids(&search(app, "MedicationRequest?status=active,stopped").await).len(),
        3,
        "comma is OR"
    );
    assert_eq!(
        ids(&search(app, "MedicationRequest?status=active&status=stopped").await).len(),
        0,
        "repeat is AND"
    );

    // Date prefixes over the value's precision.
    assert_eq!(
        ids(&search(app, "MedicationRequest?authoredon=2026-01").await),
        vec![id(&a1)]
    );
    assert_eq!(
        ids(&search(app, "MedicationRequest?authoredon=ge2026-01-01").await).len(),
        2
    );
    assert_eq!(
        ids(&search(app, "MedicationRequest?authoredon=lt2026").await).len(),
        1
    );
    assert_eq!(
        ids(&search(app, "MedicationRequest?authoredon=gt2026-03-05").await).len(),
        0
    );
    assert_eq!(
        ids(&search(app, "MedicationRequest?authoredon=sa2026-01-10").await),
        vec![id(&a2)]
    );
    assert_eq!(
        ids(&search(app, "MedicationRequest?authoredon=eb2026-01-10").await).len(),
        1
    );
    assert_eq!(
        ids(&search(app, "MedicationRequest?authoredon=ne2026-01-10").await).len(),
        2
    );
    assert_eq!(
        ids(&search(app, "MedicationRequest?authoredon=le2026-01-10").await).len(),
        2
    );
    let now = ids(&search(app, "MedicationRequest?_lastUpdated=gt2020-01-01").await);
    assert_eq!(now.len(), 3);
    assert_eq!(
        ids(&search(
            app,
            &format!("MedicationRequest?_id={},{}", id(&a1), id(&a2))
        )
        .await)
        .len(),
        2
    );
    app.get("/fhir/MedicationRequest?authoredon=2026-13-01")
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert_eq!(
        ids(&search(app, "Patient?birthdate=1958-03-14").await).len(),
        2
    );
}

async fn tokens(app: &TestApp) {
    let a = patient(app, "9990000018", "Smith").await;
    let mr = app
        .create(&order(
            &a,
            PARACETAMOL,
            "Paracetamol 500mg tablets",
            "active",
            "2026-01-10",
        ))
        .await;
    let id = mr["id"].as_str().unwrap_or_default().to_owned();
    // dm+d codes under either system name are the same concept to a prescriber, but a token
    // search is exact about the system it is given.
    assert_eq!(
        ids(&search(
            app,
            &format!("MedicationRequest?code=https://dmd.nhs.uk|{PARACETAMOL}")
        )
        .await),
        vec![id.clone()]
    );
    assert!(
        ids(&search(
            app,
            &format!("MedicationRequest?code=http://snomed.info/sct|{PARACETAMOL}")
        )
        .await)
        .is_empty()
    );
    assert_eq!(
        ids(&search(app, "MedicationRequest?code=https://dmd.nhs.uk|").await),
        vec![id.clone()]
    );
    assert!(
        ids(&search(app, &format!("MedicationRequest?code=|{PARACETAMOL}")).await).is_empty(),
        "|code means no system"
    );
    assert_eq!(
        ids(&search(app, "MedicationRequest?status=|active").await),
        vec![id.clone()],
        "status has no system"
    );
    assert!(ids(&search(app, "MedicationRequest?status:not=active").await).is_empty());
    assert_eq!(
        ids(&search(app, "MedicationRequest?status:not=stopped").await),
        vec![id.clone()]
    );
    assert_eq!(
        ids(&search(app, "MedicationRequest?code:text=paracetamol").await),
        vec![id.clone()]
    );
    let p = search(
        app,
        "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9990000018",
    )
    .await;
    assert_eq!(ids(&p), vec![a.clone()]);
    assert_eq!(ids(&search(app, "Patient?gender=female").await), vec![a]);
    assert_eq!(
        ids(&search(app, "MedicationRequest?intent=order&category=community").await),
        vec![id]
    );
}

async fn strings(app: &TestApp) {
    let a = patient(app, "9990000018", "O'Brien").await;
    patient(app, "9990000026", "Obama").await;
    assert_eq!(
        ids(&search(app, "Patient?family=o%27bri").await),
        vec![a.clone()]
    );
    assert_eq!(
        ids(&search(app, "Patient?given=zoe").await).len(),
        2,
        "accent-insensitive: Zoë"
    );
    assert_eq!(
        ids(&search(app, "Patient?name=OB").await).len(),
        2,
        "starts-with, case-insensitive"
    );
    assert_eq!(
        ids(&search(app, "Patient?family:exact=O'Brien").await),
        vec![a.clone()]
    );
    assert!(ids(&search(app, "Patient?family:exact=o'brien").await).is_empty());
    assert_eq!(
        ids(&search(app, "Patient?family:contains=bri").await),
        vec![a.clone()]
    );
    assert_eq!(
        ids(&search(app, "Patient?address-city=leeds").await).len(),
        2
    );
    assert_eq!(
        ids(&search(app, "Patient?address-postalcode=LS1").await).len(),
        2
    );
}

async fn paging(app: &TestApp) {
    let a = patient(app, "9990000018", "Smith").await;
    for day in 1..=7 {
        app.create(&order(
            &a,
            PARACETAMOL,
            "Paracetamol 500mg tablets",
            "active",
            &format!("2026-02-{day:02}"),
        ))
        .await;
    }
    let sorted = search(app, "MedicationRequest?_sort=-authoredon&_count=100").await;
    let dates: Vec<&str> = sorted["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["resource"]["authoredOn"].as_str())
        .collect();
    assert_eq!(dates.first(), Some(&"2026-02-07"));
    assert_eq!(dates.last(), Some(&"2026-02-01"));

    // Page three at a time, writing between pages: every resource present at the start is
    // seen exactly once.
    let mut seen = Vec::new();
    let mut next = Some(format!(
        "{}/MedicationRequest?patient={a}&_count=3&_sort=authoredon&_total=accurate",
        support::BASE
    ));
    let mut pages = 0;
    while let Some(url) = next {
        let page = app.get(&route(&url)).await.expect(StatusCode::OK).json();
        let exists_now = if pages == 0 { 7 } else { 8 };
        assert_eq!(page["total"], exists_now, "total counts what exists now");
        seen.extend(ids(&page));
        if pages == 0 {
            app.create(&order(
                &a,
                PARACETAMOL,
                "Paracetamol 500mg tablets",
                "active",
                "2026-02-08",
            ))
            .await;
        }
        pages += 1;
        next = page["link"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
            .and_then(|l| l["url"].as_str())
            .map(str::to_owned);
        assert!(pages < 10, "paging terminates");
    }
    let unique: std::collections::HashSet<&String> = seen.iter().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "no resource repeated across pages"
    );
    assert_eq!(
        seen.len(),
        8,
        "the write that landed after the first page sorts last and is seen once"
    );
    app.get("/fhir/MedicationRequest?_cursor=garbage")
        .await
        .expect(StatusCode::BAD_REQUEST);
    app.get("/fhir/MedicationRequest?_sort=subject")
        .await
        .expect(StatusCode::BAD_REQUEST);
}

async fn includes(app: &TestApp) {
    let a = patient(app, "9990000018", "Smith").await;
    let practitioner = app
        .create(&json!({"resourceType": "Practitioner", "name": [{"family": "Hippocrates", "given": ["Ann"]}]}))
        .await;
    let mut mr = order(
        &a,
        PARACETAMOL,
        "Paracetamol 500mg tablets",
        "active",
        "2026-01-10",
    );
    mr["requester"] = json!({"reference": format!("Practitioner/{}", practitioner["id"].as_str().unwrap_or_default())});
    app.create(&mr).await;
    let bundle = search(
        app,
        "MedicationRequest?_include=MedicationRequest:requester&_include=MedicationRequest:subject",
    )
    .await;
    let modes: Vec<(String, String)> = bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["resource"]["resourceType"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                e["search"]["mode"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(modes.contains(&("MedicationRequest".into(), "match".into())));
    assert!(modes.contains(&("Practitioner".into(), "include".into())));
    assert!(modes.contains(&("Patient".into(), "include".into())));
    assert_eq!(bundle["total"], 1, "includes are not counted");

    let rev = search(
        app,
        &format!("Patient?_id={a}&_revinclude=MedicationRequest:subject"),
    )
    .await;
    assert_eq!(rev["entry"].as_array().map_or(0, Vec::len), 2);
    app.get("/fhir/MedicationRequest?_include=MedicationRequest:status")
        .await
        .expect(StatusCode::BAD_REQUEST);
}

async fn summary_and_missing(app: &TestApp) {
    let a = patient(app, "9990000018", "Smith").await;
    let mut no_date = order(
        &a,
        PARACETAMOL,
        "Paracetamol 500mg tablets",
        "active",
        "2026-01-10",
    );
    no_date.as_object_mut().map(|o| o.remove("authoredOn"));
    app.create(&no_date).await;
    app.create(&order(
        &a,
        PARACETAMOL,
        "Paracetamol 500mg tablets",
        "active",
        "2026-01-10",
    ))
    .await;
    let count = search(app, "MedicationRequest?_summary=count").await;
    assert_eq!(count["total"], 2);
    assert!(count.get("entry").is_none());
    assert_eq!(
        ids(&search(app, "MedicationRequest?authoredon:missing=true").await).len(),
        1
    );
    assert_eq!(
        ids(&search(app, "MedicationRequest?authoredon:missing=false").await).len(),
        1
    );
    let no_total = search(app, "MedicationRequest?_total=none").await;
    assert!(no_total.get("total").is_none());
    assert_eq!(
        ids(&search(app, "MedicationRequest?_count=0").await).len(),
        0
    );
}

async fn handling(app: &TestApp) {
    let strict = app
        .get("/fhir/MedicationRequest?colour=blue")
        .await
        .expect(StatusCode::BAD_REQUEST)
        .json();
    assert_eq!(strict["issue"][0]["code"], "not-supported");
    let lenient = app
        .request(
            Method::GET,
            "/fhir/MedicationRequest?colour=blue",
            &[("prefer", "handling=lenient")],
            None,
        )
        .await
        .expect(StatusCode::OK)
        .json();
    let outcome = lenient["entry"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["search"]["mode"] == "outcome"))
        .cloned();
    assert!(outcome.is_some_and(|o| o["resource"]["issue"][0]["severity"] == "warning"));
    // A malformed value of a known parameter is an error even under lenient handling.
    app.request(
        Method::GET,
        "/fhir/MedicationRequest?authoredon=yesterday",
        &[("prefer", "handling=lenient")],
        None,
    )
    .await
    .expect(StatusCode::BAD_REQUEST);
    app.get("/fhir/MedicationRequest?_format=xml")
        .await
        .expect(StatusCode::NOT_ACCEPTABLE);
    let form = app
        .request(
            Method::POST,
            "/fhir/MedicationRequest/_search",
            &[("content-type", "application/x-www-form-urlencoded")],
            Some("status=active".into()),
        )
        .await;
    assert_eq!(form.expect(StatusCode::OK).json()["type"], "searchset");
}
