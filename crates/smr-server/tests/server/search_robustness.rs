//! Search that stays bounded and honest (issue 14): limits on what one search may ask for,
//! database limits answered as client errors, values that fold to nothing refused, chained and
//! reverse-chained search within the caller's access, and pages that cost the same whatever the
//! number of matches. On SQLite and PostgreSQL.

use crate::support;

use axum::http::StatusCode;
use serde_json::{Value, json};
use smr_access::Role;
use smr_fhir::query::{Criterion, SearchRequest, StringMode, Test};
use smr_store::StoreError;
use support::match_ids as ids;
use support::named_patient as patient;
use support::{TestApp, fixture};

const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const NHS: &str = "https://fhir.nhs.uk/Id/nhs-number";
const DMD: &str = "https://dmd.nhs.uk";
const CLOPIDOGREL: &str = "319799004";
const PARACETAMOL: &str = "39720311000001101";

backend_tests! {
    too_many_parameters_or_values_is_400_naming_the_limit => bounded_criteria;
    repeated_or_too_many_includes_and_sort_keys_are_400 => bounded_includes_and_sort;
    searches_within_the_limits_still_run => within_limits;
    values_that_fold_to_nothing_are_refused_not_dropped => folds_to_nothing;
    database_limits_are_400_too_costly_never_database_text => database_limits;
    chained_search_by_nhs_number_and_medication_code => chained;
    reverse_chaining_with_has => reverse_chained;
    chains_never_show_what_the_caller_cannot_read => chains_respect_access;
    exact_total_is_opt_in_and_paging_links_stay_right => totals_and_paging;
    a_page_read_in_index_order_keeps_every_criterion => driven_page_filters;
}

/// A 400 whose single issue has `code` and whose text mentions `needle`.
#[track_caller]
fn assert_refused(reply: support::Reply, code: &str, needle: &str) {
    let outcome = reply.expect(StatusCode::BAD_REQUEST).json();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(outcome["issue"][0]["code"], code, "{outcome}");
    let text = outcome["issue"][0]["diagnostics"].as_str().unwrap_or("");
    assert!(text.contains(needle), "'{needle}' not in {outcome}");
}

fn repeated(name: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{name}=n{i}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn alternatives(n: usize) -> String {
    (0..n)
        .map(|i| format!("v{i}"))
        .collect::<Vec<_>>()
        .join(",")
}

async fn bounded_criteria(app: &TestApp) {
    patient(app, "9990000018", "Smith").await;
    // 33 AND-ed parameters, and the 1,000 that made SQLite answer 500.
    for n in [33, 1000] {
        let reply = app
            .get(&format!("/fhir/Patient?{}", repeated("name", n)))
            .await;
        assert_refused(reply, "too-costly", "at most 32 search parameters");
    }
    // 101 OR-ed values, and the 496 that made SQLite answer 500.
    for n in [101, 496] {
        let reply = app
            .get(&format!("/fhir/Patient?name={}", alternatives(n)))
            .await;
        assert_refused(reply, "too-costly", "at most 100 values of 'name'");
    }
    // Values of one parameter count together across its AND-ed repeats.
    let reply = app
        .get(&format!(
            "/fhir/Patient?name={}&name:contains={}",
            alternatives(60),
            alternatives(60)
        ))
        .await;
    assert_refused(reply, "too-costly", "at most 100 values of 'name'");
    // POST _search is bounded the same way.
    let reply = app
        .request(
            axum::http::Method::POST,
            "/fhir/Patient/_search",
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(repeated("family", 40)),
        )
        .await;
    assert_refused(reply, "too-costly", "at most 32 search parameters");
}

async fn bounded_includes_and_sort(app: &TestApp) {
    let twice = "_revinclude=Provenance:target&_revinclude=Provenance:target";
    assert_refused(
        app.get(&format!("/fhir/MedicationRequest?{twice}")).await,
        "invalid",
        "repeated",
    );
    let many: Vec<String> = (0..300)
        .map(|_| "_revinclude=Provenance:target".to_owned())
        .collect();
    assert_refused(
        app.get(&format!("/fhir/MedicationRequest?{}", many.join("&")))
            .await,
        "invalid",
        "repeated",
    );
    let seventeen: Vec<String> = (0..17)
        .map(|i| format!("_include=MedicationRequest:p{i}"))
        .collect();
    assert_refused(
        app.get(&format!("/fhir/MedicationRequest?{}", seventeen.join("&")))
            .await,
        "too-costly",
        "at most 16 _include and _revinclude",
    );
    assert_refused(
        app.get("/fhir/MedicationRequest?_sort=status,intent,authoredon,_id,code,category,priority,_lastUpdated,status")
            .await,
        "too-costly",
        "at most 8 _sort keys",
    );
    assert_refused(
        app.get("/fhir/MedicationRequest?_sort=status,intent,authoredon,_id&_sort=code,category,priority,_lastUpdated,status")
            .await,
        "too-costly",
        "at most 8 _sort keys",
    );
}

async fn within_limits(app: &TestApp) {
    let a = patient(app, "9990000018", "Smith").await;
    let thirty_two = app
        .get(&format!("/fhir/Patient?{}", repeated("_id", 32)))
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(ids(&thirty_two).is_empty());
    let hundred = format!("{},smith", alternatives(99));
    let found = app
        .get(&format!("/fhir/Patient?name={hundred}"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(ids(&found), vec![a]);
    app.get("/fhir/MedicationRequest?_sort=status,intent,authoredon,_id,code,category,priority,_lastUpdated")
        .await
        .expect(StatusCode::OK);
}

async fn folds_to_nothing(app: &TestApp) {
    patient(app, "9990000018", "Smith").await;
    patient(app, "9990000026", "Jones").await;
    // `!!!`, an emoji, an undecodable byte, a zero-width space, nothing.
    for value in ["!!!", "%F0%9F%98%80", "%FF", "%E2%80%8B", ""] {
        for param in ["name", "family:contains", "address"] {
            let reply = app.get(&format!("/fhir/Patient?{param}={value}")).await;
            assert_refused(reply, "invalid", "no letters or digits");
        }
    }
    let reply = app.get("/fhir/MedicationRequest?code:text=%E2%80%8B").await;
    assert_refused(reply, "invalid", "no letters or digits");
    // One empty alternative among good ones is refused too: it is not silently dropped.
    let reply = app.get("/fhir/Patient?name=smith,!!!").await;
    assert_refused(reply, "invalid", "no letters or digits");
    // An exact match compares the text as given: it matches nothing here, and is no error.
    let exact = app
        .get("/fhir/Patient?family:exact=!!!")
        .await
        .expect(StatusCode::OK)
        .json();
    assert!(ids(&exact).is_empty());
}

async fn database_limits(app: &TestApp) {
    // Past the parser's bounds (built directly, as only SMR code can): the database's own
    // limit must come back as "too costly", not as its internal error.
    let mut request = SearchRequest::new("Patient");
    request.criteria.push(Criterion {
        param: "name".into(),
        test: Test::String {
            values: (0..2000).map(|i| format!("v{i}")).collect(),
            mode: StringMode::StartsWith,
        },
    });
    match app
        .store
        .search(&request, &smr_store::Access::unrestricted())
        .await
    {
        Ok(_) => {} // PostgreSQL plans 2,000 alternatives without complaint.
        Err(StoreError::TooCostly(_)) => {}
        Err(other) => panic!("expected TooCostly, got {other:?}"),
    }
    if app.store.engine() == smr_store::Engine::Sqlite {
        let error = app
            .store
            .search(&request, &smr_store::Access::unrestricted())
            .await
            .expect_err("SQLite's expression depth is 1,000");
        assert!(matches!(error, StoreError::TooCostly(_)), "{error:?}");
        assert!(!error.to_string().contains("Expression tree"), "{error}");
    }
}

/// A patient registered with the GP practice `gp` (ODS code): that practice cares for them.
async fn registered(app: &TestApp, nhs: &str, family: &str, gp: &str) -> String {
    let mut p = fixture("patient.json");
    p["identifier"][0]["value"] = json!(nhs);
    p["name"][0]["family"] = json!(family);
    p["generalPractitioner"] = json!([{"identifier": {"system": ODS, "value": gp}}]);
    app.create(&p).await["id"].as_str().expect("id").to_owned()
}

async fn medication(app: &TestApp, code: &str) -> String {
    let m =
        json!({"resourceType": "Medication", "code": {"coding": [{"system": DMD, "code": code}]}});
    app.create(&m).await["id"].as_str().expect("id").to_owned()
}

/// A MedicationRequest of `patient` for the Medication resource `medication`.
async fn order(app: &TestApp, patient: &str, medication: &str, status: &str) -> String {
    let mut mr = fixture("medication-request.json");
    mr["subject"]["reference"] = json!(format!("Patient/{patient}"));
    mr["status"] = json!(status);
    mr.as_object_mut().map(|o| o.remove("identifier"));
    mr.as_object_mut()
        .map(|o| o.remove("medicationCodeableConcept"));
    mr["medicationReference"] = json!({"reference": format!("Medication/{medication}")});
    app.create(&mr).await["id"].as_str().expect("id").to_owned()
}

async fn found(client: &support::Client, query: &str) -> Vec<String> {
    let mut found = ids(&client
        .get(&format!("/fhir/{query}"))
        .await
        .expect(StatusCode::OK)
        .json());
    found.sort();
    found
}

async fn chained(app: &TestApp) {
    let a = registered(app, "9990000018", "Smith", "A81001").await;
    let b = registered(app, "9990000026", "Jones", "A81001").await;
    let clopidogrel = medication(app, CLOPIDOGREL).await;
    let paracetamol = medication(app, PARACETAMOL).await;
    let a1 = order(app, &a, &clopidogrel, "active").await;
    let b1 = order(app, &b, &paracetamol, "active").await;
    let client = &app.client;
    // Finding a patient's medicines by NHS number in one call, as NHS systems search.
    for chain in [
        "patient.identifier",
        "subject.identifier",
        "subject:Patient.identifier",
    ] {
        assert_eq!(
            found(
                client,
                &format!("MedicationRequest?{chain}={NHS}|9990000018")
            )
            .await,
            vec![a1.clone()],
            "{chain}"
        );
    }
    assert_eq!(
        found(client, "MedicationRequest?subject.name=jones").await,
        vec![b1.clone()]
    );
    assert_eq!(
        found(
            client,
            &format!("MedicationRequest?medication.code={DMD}|{CLOPIDOGREL}")
        )
        .await,
        vec![a1.clone()]
    );
    // Chains combine with other criteria (AND) and alternatives (OR) as any parameter does.
    assert_eq!(
        found(
            client,
            "MedicationRequest?subject.identifier=9990000018,9990000026&status=active"
        )
        .await
        .len(),
        2
    );
    assert!(found(client, &format!("MedicationRequest?patient.identifier={NHS}|9990000018&medication.code={PARACETAMOL}")).await.is_empty());
    // A deleted target no longer matches.
    app.delete(&format!("/fhir/Medication/{paracetamol}")).await;
    assert!(
        found(
            client,
            &format!("MedicationRequest?medication.code={PARACETAMOL}")
        )
        .await
        .is_empty()
    );
    // Ambiguous targets must be named; deeper chains are not supported.
    assert_refused(
        app.get("/fhir/MedicationRequest?requester.name=hippocrates")
            .await,
        "invalid",
        "name the type",
    );
    app.get("/fhir/MedicationRequest?requester:Practitioner.name=hippocrates")
        .await
        .expect(StatusCode::OK);
    assert_refused(
        app.get("/fhir/MedicationRequest?patient.organization.name=x")
            .await,
        "not-supported",
        "one level",
    );
    assert_refused(
        app.get("/fhir/MedicationRequest?status.code=x").await,
        "invalid",
        "not a reference parameter",
    );
}

async fn reverse_chained(app: &TestApp) {
    let a = registered(app, "9990000018", "Smith", "A81001").await;
    let b = registered(app, "9990000026", "Jones", "A81001").await;
    let c = registered(app, "9990000034", "Brown", "A81001").await;
    let clopidogrel = medication(app, CLOPIDOGREL).await;
    let paracetamol = medication(app, PARACETAMOL).await;
    order(app, &a, &clopidogrel, "active").await;
    order(app, &b, &paracetamol, "stopped").await;
    let client = &app.client;
    assert_eq!(
        found(
            client,
            "Patient?_has:MedicationRequest:subject:status=active"
        )
        .await,
        vec![a.clone()]
    );
    let mut either = vec![a.clone(), b.clone()];
    either.sort();
    assert_eq!(
        found(
            client,
            "Patient?_has:MedicationRequest:subject:status=active,stopped"
        )
        .await,
        either
    );
    assert_eq!(
        found(
            client,
            "Patient?_has:MedicationRequest:patient:status:not=active"
        )
        .await,
        vec![b.clone()]
    );
    // Which medicines someone is prescribed, and who is prescribed a medicine.
    assert_eq!(
        found(
            client,
            &format!("Medication?_has:MedicationRequest:medication:subject=Patient/{a}")
        )
        .await,
        vec![clopidogrel.clone()]
    );
    assert_eq!(
        found(
            client,
            &format!("Patient?_has:MedicationRequest:subject:medication=Medication/{paracetamol}")
        )
        .await,
        vec![b.clone()]
    );
    assert!(
        !found(
            client,
            "Patient?_has:MedicationRequest:subject:status=active"
        )
        .await
        .contains(&c)
    );
    assert_refused(
        app.get("/fhir/Patient?_has:MedicationRequest:subject")
            .await,
        "invalid",
        "_has:Type:reference:parameter",
    );
    assert_refused(
        app.get("/fhir/Medication?_has:MedicationRequest:subject:status=active")
            .await,
        "invalid",
        "cannot refer to Medication",
    );
}

async fn chains_respect_access(app: &TestApp) {
    let cared = registered(app, "9990000018", "Cared", "A81001").await;
    let stranger = registered(app, "9990000026", "Stranger", "B86001").await;
    let clopidogrel = medication(app, CLOPIDOGREL).await;
    let paracetamol = medication(app, PARACETAMOL).await;
    let cared_order = order(app, &cared, &paracetamol, "active").await;
    order(app, &stranger, &clopidogrel, "active").await;
    let gp = app.as_user("dr-who", Role::Gp, Some("A81001"));
    // The GP has no relationship with the stranger: _has and chains find only the cared-for.
    assert_eq!(
        found(&gp, "Patient?_has:MedicationRequest:subject:status=active").await,
        vec![cared.clone()]
    );
    assert!(
        found(
            &gp,
            &format!("Patient?_has:MedicationRequest:subject:medication=Medication/{clopidogrel}")
        )
        .await
        .is_empty()
    );
    assert!(
        found(
            &gp,
            &format!("MedicationRequest?patient.identifier={NHS}|9990000026")
        )
        .await
        .is_empty()
    );
    // Medications are not patient data, so nothing but the chain's own access check stands
    // between a caller and "what is the stranger prescribed".
    assert!(
        found(
            &gp,
            &format!("Medication?_has:MedicationRequest:medication:subject=Patient/{stranger}")
        )
        .await
        .is_empty(),
        "a stranger's prescriptions leak through _has"
    );
    assert_eq!(
        found(
            &app.client,
            &format!("Medication?_has:MedicationRequest:medication:subject=Patient/{stranger}")
        )
        .await,
        vec![clopidogrel.clone()],
        "the back-end system sees every record"
    );
    let patient = app.as_patient(&cared);
    assert!(
        found(
            &patient,
            &format!("Medication?_has:MedicationRequest:medication:subject=Patient/{stranger}")
        )
        .await
        .is_empty()
    );
    assert_eq!(
        found(
            &patient,
            &format!("MedicationRequest?medication.code={DMD}|{PARACETAMOL}")
        )
        .await,
        vec![cared_order]
    );
}

fn next_link(bundle: &Value) -> Option<String> {
    bundle["link"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
        .and_then(|l| l["url"].as_str())
        .map(support::route)
}

async fn totals_and_paging(app: &TestApp) {
    let a = registered(app, "9990000018", "Smith", "A81001").await;
    let b = registered(app, "9990000026", "Jones", "A81001").await;
    let paracetamol = medication(app, PARACETAMOL).await;
    let mut expected = Vec::new();
    for _ in 0..7 {
        expected.push(order(app, &a, &paracetamol, "active").await);
    }
    order(app, &b, &paracetamol, "active").await;
    expected.sort();
    let get = |q: String| async move {
        app.get(&format!("/fhir/MedicationRequest?{q}"))
            .await
            .expect(StatusCode::OK)
            .json()
    };
    // The first page holds every match: its total is known without counting.
    for count in [7, 50] {
        let all = get(format!("subject=Patient/{a}&_count={count}")).await;
        assert_eq!(all["total"], 7, "{all}");
        assert!(next_link(&all).is_none(), "no next link without more rows");
    }
    // More matches than the page: no total unless asked for, then an exact one.
    let first = get(format!("subject=Patient/{a}&_count=3")).await;
    assert!(first.get("total").is_none(), "{first}");
    for mode in ["accurate", "estimate"] {
        let counted = get(format!("subject=Patient/{a}&_count=3&_total={mode}")).await;
        assert_eq!(counted["total"], 7, "_total={mode}");
        assert_eq!(ids(&counted).len(), 3);
    }
    let none = get(format!("subject=Patient/{a}&_count=3&_total=none")).await;
    assert!(none.get("total").is_none());
    assert_eq!(
        get("_count=0".into()).await["total"],
        8,
        "_count=0 is a count"
    );
    assert_refused(
        app.get("/fhir/MedicationRequest?_total=some").await,
        "invalid",
        "_total",
    );
    // Paging: every match once, in id order, and a next link iff more rows remain.
    for query in [
        format!("subject=Patient/{a}&_count=3"),
        format!("patient={a}&_count=3"),
        format!("subject:Patient={a}&_count=3&_sort=_id"),
        format!("subject=Patient/{a}&status=active&_count=1"),
    ] {
        let mut seen = Vec::new();
        let mut next = Some(format!("/fhir/MedicationRequest?{query}"));
        let mut pages = 0;
        while let Some(url) = next {
            let page = app.get(&url).await.expect(StatusCode::OK).json();
            let got = ids(&page);
            assert!(!got.is_empty(), "no empty page ({query}): {page}");
            seen.extend(got);
            next = next_link(&page);
            pages += 1;
            assert!(pages <= 7, "paging terminates");
        }
        assert_eq!(seen, expected, "{query}");
    }
    // Exactly one page's worth: no next link pointing at an empty page.
    let six = get(format!("subject=Patient/{a}&_count=6")).await;
    let rest = app
        .get(&next_link(&six).expect("a next link"))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(ids(&rest).len(), 1);
    assert!(next_link(&rest).is_none());
    assert!(
        rest.get("total").is_none(),
        "a later page does not know the total"
    );
}

async fn driven_page_filters(app: &TestApp) {
    let a = registered(app, "9990000018", "Smith", "A81001").await;
    let paracetamol = medication(app, PARACETAMOL).await;
    let clopidogrel = medication(app, CLOPIDOGREL).await;
    let mut active = Vec::new();
    for n in 0..6 {
        let status = if n % 2 == 0 { "active" } else { "stopped" };
        let id = order(
            app,
            &a,
            if n < 3 { &paracetamol } else { &clopidogrel },
            status,
        )
        .await;
        if status == "active" {
            active.push(id);
        }
    }
    active.sort();
    let client = &app.client;
    assert_eq!(
        found(
            client,
            &format!("MedicationRequest?subject=Patient/{a}&status=active")
        )
        .await,
        active
    );
    assert_eq!(
        found(
            client,
            &format!("MedicationRequest?subject=Patient/{a}&status:not=active")
        )
        .await
        .len(),
        3
    );
    assert_eq!(
        found(
            client,
            &format!(
                "MedicationRequest?subject=Patient/{a}&medication.code={CLOPIDOGREL}&status=active"
            )
        )
        .await
        .len(),
        1
    );
    assert_eq!(
        found(client, &format!("MedicationRequest?subject=Patient/{a}&_lastUpdated=gt2020-01-01&authoredon:missing=false")).await.len(),
        6
    );
    // Access still applies: a GP of another practice sees nothing of this record.
    let other = app.as_user("dr-other", Role::Gp, Some("B86001"));
    let refused = other
        .get(&format!("/fhir/MedicationRequest?subject=Patient/{a}"))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    // One resource referring to the same target twice (two spellings): listed once.
    let practitioner = app
        .create(&json!({"resourceType": "Practitioner", "name": [{"family": "Hippocrates"}]}))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut observations = Vec::new();
    for _ in 0..3 {
        let o = json!({"resourceType": "Observation", "status": "final",
        "code": {"text": "blood pressure"},
        "subject": {"reference": format!("Patient/{a}")},
        "performer": [
            {"reference": format!("Practitioner/{practitioner}")},
            {"reference": format!("{}/Practitioner/{practitioner}", support::BASE)}
        ]});
        observations.push(app.create(&o).await["id"].as_str().expect("id").to_owned());
    }
    observations.sort();
    let mut seen = Vec::new();
    let mut next = Some(format!(
        "/fhir/Observation?performer=Practitioner/{practitioner}&_count=1"
    ));
    while let Some(url) = next {
        let page = app.get(&url).await.expect(StatusCode::OK).json();
        seen.extend(ids(&page));
        next = next_link(&page);
        assert!(seen.len() <= 3, "no repeats: {seen:?}");
    }
    assert_eq!(seen, observations);
}
