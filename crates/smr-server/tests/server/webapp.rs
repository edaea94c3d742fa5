//! The web app under `/app` (issue 12), through the real router: signing in (the cookie and
//! where it counts), each page as each role — a GP with a care relationship, a clinician
//! without one (break-glass prompt, then break-glass, audited), a patient (own medicines and
//! access log, nobody else's page), an analyst (no patient pages) — the same-origin check on
//! cookie-authenticated forms, and HTML escaping of a hostile medicine name.

use crate::support;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use smr_access::Role;
use support::{Client, Reply, TestApp, fixture};

backend_tests! {
    signing_in_sets_a_strict_http_only_cookie_that_counts_only_under_app => sign_in_cookie;
    pages_without_a_token_redirect_to_the_sign_in_page => redirects;
    a_gp_with_a_care_relationship_sees_the_record_pgx_panel_and_alerts => gp_record;
    a_clinician_without_a_relationship_gets_the_break_glass_prompt_and_none_of_the_record => break_glass;
    patient_search_finds_only_patients_the_clinician_may_see => patient_search;
    a_patient_sees_their_own_medicines_and_access_log_and_no_one_elses_page => patient_view;
    an_analyst_cannot_open_a_patient_page => analyst;
    cookie_authenticated_forms_must_come_from_smr_pages => csrf;
    a_hostile_medicine_name_is_escaped => escaping;
    a_patient_edits_their_consent_choices => consent;
    a_gp_reconciles_a_discharge_list_compare_decide_confirm => reconcile;
    a_consent_saved_on_the_page_hides_medicines_from_the_pages_it_names => consent_enforced;
}

const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const GP: &str = "Y91001";
const OTHER_HOSPITAL: &str = "RXX99";
const HOSTILE: &str = "<script>alert('x')</script> Tonic";
const FORM: &str = "application/x-www-form-urlencoded";
/// dm+d VMP: Clopidogrel 75mg tablets.
const CLOPIDOGREL_75MG: &str = "319799004";

struct World {
    patient: String,
    other_patient: String,
    gp: Client,
}

/// A patient registered with the GP practice, on clopidogrel and a medicine with a hostile
/// name, with a CYP2C19 poor-metaboliser genotype on record; and another patient.
async fn world(app: &TestApp) -> World {
    app.create(&json!({"resourceType": "Organization",
        "identifier": [{"system": ODS, "value": GP}], "name": "Web Surgery"}))
        .await;
    let mut patient = fixture("patient.json");
    patient["generalPractitioner"] = json!([{"identifier": {"system": ODS, "value": GP}}]);
    let patient = id_of(&app.create(&patient).await);
    let mut other = fixture("patient.json");
    other["identifier"][0]["value"] = json!("9990000026");
    other["name"][0]["family"] = json!("Other");
    let other_patient = id_of(&app.create(&other).await);
    let gp = app.as_user("u-web-gp", Role::Gp, Some(GP));
    for medicine in [
        json!({"coding": [{"system": "https://dmd.nhs.uk", "code": CLOPIDOGREL_75MG,
            "display": "Clopidogrel 75mg tablets"}]}),
        json!({"text": HOSTILE}),
    ] {
        let order = json!({"resourceType": "MedicationRequest", "status": "active",
            "intent": "order", "medicationCodeableConcept": medicine,
            "subject": {"reference": format!("Patient/{patient}")},
            "authoredOn": "2026-11-01", "dosageInstruction": [{"text": "one a day"}]});
        gp.post("/fhir/MedicationRequest", &order)
            .await
            .expect(StatusCode::CREATED);
    }
    app.create(&json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "84413-4"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "48018-6"}]},
            "valueCodeableConcept": {"coding": [{"system": "http://www.genenames.org/geneId",
                "code": "HGNC:2621", "display": "CYP2C19"}]}}],
        "valueCodeableConcept": {"text": "*2/*2"}}))
        .await;
    World {
        patient,
        other_patient,
        gp,
    }
}

fn id_of(resource: &Value) -> String {
    resource["id"].as_str().expect("id").to_owned()
}

fn token_of(app: &TestApp, user: &str, role: Role, org: Option<&str>) -> String {
    support::issue(
        &app.issuer,
        smr_auth::TokenRequest {
            org: org.map(str::to_owned),
            ..smr_auth::TokenRequest::new(user, role)
        },
    )
}

/// A browser's form post from SMR's own page (`Origin` is the host it posts to).
async fn post_form(client: &Client, path: &str, body: &str, extra: &[(&str, &str)]) -> Reply {
    let mut headers = vec![("content-type", FORM)];
    headers.extend_from_slice(extra);
    client
        .request(Method::POST, path, &headers, Some(body.to_owned()))
        .await
}

fn form_body(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn is_html(reply: &Reply) -> bool {
    reply
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/html"))
}

async fn sign_in_cookie(app: &TestApp) {
    let w = world(app).await;
    let browser = app.with_token(None);
    let token = token_of(app, "u-web-gp", Role::Gp, Some(GP));
    let reply = post_form(
        &browser,
        "/app/sign-in",
        &form_body(&[("token", &token)]),
        &[("origin", "http://smr.test"), ("host", "smr.test")],
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    let cookie = reply.header("set-cookie").expect("a cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/app"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let pair = cookie.split(';').next().expect("name=value").to_owned();
    let with_cookie = [("cookie", pair.as_str())];
    let page = browser
        .request(
            Method::GET,
            &format!("/app/patients/{}", w.patient),
            &with_cookie,
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert!(
        is_html(&page) && page.text.contains("Clopidogrel"),
        "{}",
        page.text
    );
    // The cookie is not a credential for the API.
    browser
        .request(
            Method::GET,
            &format!("/fhir/Patient/{}", w.patient),
            &with_cookie,
            None,
        )
        .await
        .expect(StatusCode::UNAUTHORIZED);
    // A bad token is refused on the form, and no cookie is set.
    let refused = post_form(&browser, "/app/sign-in", "token=not-a-token", &[])
        .await
        .expect(StatusCode::UNAUTHORIZED);
    assert!(refused.header("set-cookie").is_none());
    assert!(is_html(&refused));
    // A sign-in posted from another site is refused.
    post_form(
        &browser,
        "/app/sign-in",
        &form_body(&[("token", &token)]),
        &[("sec-fetch-site", "cross-site")],
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    // Signing out clears the cookie.
    let out = post_form(
        &browser,
        "/app/sign-out",
        "",
        &[("cookie", pair.as_str()), ("sec-fetch-site", "same-origin")],
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    assert!(
        out.header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
}

async fn redirects(app: &TestApp) {
    let browser = app.with_token(None);
    for path in ["/app", "/app/patients", "/app/me", "/app/patients/x"] {
        let reply = browser.get(path).await.expect(StatusCode::SEE_OTHER);
        assert_eq!(
            reply.header("location").as_deref(),
            Some("/app/sign-in"),
            "{path}"
        );
    }
    // An expired or foreign cookie: back to sign-in, cookie cleared.
    let stale = browser
        .request(
            Method::GET,
            "/app/patients",
            &[("cookie", "smr_session=nonsense")],
            None,
        )
        .await
        .expect(StatusCode::SEE_OTHER);
    assert!(
        stale
            .header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
    let form = browser.get("/app/sign-in").await.expect(StatusCode::OK);
    assert!(form.text.contains(r#"<html lang="en-GB">"#) && form.text.contains(r#"name="token""#));
    let css = browser.get("/app/style.css").await.expect(StatusCode::OK);
    assert!(
        css.header("content-type")
            .is_some_and(|t| t.starts_with("text/css"))
    );
    // Pages allow no script and only SMR's own stylesheet.
    let csp = form.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
}

async fn gp_record(app: &TestApp) {
    let w = world(app).await;
    let page =
        w.gp.get(&format!("/app/patients/{}", w.patient))
            .await
            .expect(StatusCode::OK);
    assert!(is_html(&page));
    let html = &page.text;
    assert!(html.contains("Clopidogrel 75mg tablets"), "{html}");
    assert!(html.contains("badge-gp-practice"), "{html}");
    assert!(html.contains("999 000 0018"), "{html}");
    // The PGx panel: the result and the cited advice for the current medicine.
    assert!(
        html.contains("CYP2C19") && html.contains("Poor Metabolizer"),
        "{html}"
    );
    assert!(
        html.contains("on record") && html.contains("Guideline: CPIC"),
        "{html}"
    );
    assert!(html.contains("Reconcile with another list"), "{html}");
    // Each line links to its timeline across settings.
    let link = format!(
        "/app/patients/{}/timeline?medicine=https%3A%2F%2Fdmd.nhs.uk%7C{CLOPIDOGREL_75MG}",
        w.patient
    );
    assert!(
        html.contains(&link.replace('&', "&#38;")) || html.contains(&link),
        "{html}"
    );
    let timeline = w.gp.get(&link).await.expect(StatusCode::OK);
    assert!(
        timeline.text.contains("Clopidogrel 75mg tablets: timeline")
            && timeline.text.contains("Prescribed")
            && timeline.text.contains("badge-gp-practice"),
        "{}",
        timeline.text
    );
    // Unknown patient: a friendly 404 page.
    let missing = w.gp.get("/app/patients/no-such-patient").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(is_html(&missing));
}

async fn break_glass(app: &TestApp) {
    let w = world(app).await;
    let stranger = app.as_user(
        "u-web-registrar",
        Role::HospitalPrescriber,
        Some(OTHER_HOSPITAL),
    );
    let prompt = stranger
        .get(&format!("/app/patients/{}", w.patient))
        .await
        .expect(StatusCode::FORBIDDEN);
    assert!(prompt.text.contains("break-glass") && prompt.text.contains(r#"name="reason""#));
    assert!(!prompt.text.contains("Clopidogrel"), "{}", prompt.text);
    assert!(!prompt.text.contains("CYP2C19"));
    let timeline = stranger
        .get(&format!(
            "/app/patients/{}/timeline?medicine={CLOPIDOGREL_75MG}",
            w.patient
        ))
        .await
        .expect(StatusCode::FORBIDDEN);
    assert!(!timeline.text.contains("Prescribed"));
    // Without a reason: the prompt again.
    post_form(
        &stranger,
        &format!("/app/patients/{}/break-glass", w.patient),
        "reason=",
        &[],
    )
    .await
    .expect(StatusCode::BAD_REQUEST);
    let opened = post_form(
        &stranger,
        &format!("/app/patients/{}/break-glass", w.patient),
        &form_body(&[("reason", "unconscious in ED")]),
        &[],
    )
    .await
    .expect(StatusCode::OK);
    assert!(
        opened.text.contains("Clopidogrel 75mg tablets"),
        "{}",
        opened.text
    );
    assert!(opened.text.contains("Emergency (break-glass) access"));
    // The API's audit trail has the break-glass access with its reason.
    let audit = app
        .get(&format!(
            "/fhir/AuditEvent?patient={}&purpose=BTG",
            w.patient
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    let reasons: Vec<&str> = audit["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["purposeOfEvent"][0]["text"].as_str())
        .collect();
    assert!(reasons.contains(&"unconscious in ED"), "{audit}");
    // The header the API takes works on pages too.
    let by_header = stranger
        .request(
            Method::GET,
            &format!("/app/patients/{}", w.patient),
            &[("x-break-glass-reason", "collapsed in clinic")],
            None,
        )
        .await
        .expect(StatusCode::OK);
    assert!(by_header.text.contains("Clopidogrel"));
}

async fn patient_search(app: &TestApp) {
    let w = world(app).await;
    let found =
        w.gp.get("/app/patients?q=999+000+0018")
            .await
            .expect(StatusCode::OK);
    assert!(
        found.text.contains(&format!("/app/patients/{}", w.patient)),
        "{}",
        found.text
    );
    let by_name =
        w.gp.get("/app/patients?q=O%27Brien")
            .await
            .expect(StatusCode::OK);
    assert!(
        by_name
            .text
            .contains(&format!("/app/patients/{}", w.patient))
    );
    let stranger = app.as_user(
        "u-web-registrar",
        Role::HospitalPrescriber,
        Some(OTHER_HOSPITAL),
    );
    let none = stranger
        .get("/app/patients?q=9990000018")
        .await
        .expect(StatusCode::OK);
    assert!(
        !none
            .text
            .contains(&format!("/app/patients/{}\"", w.patient))
    );
    assert!(
        none.text.contains("0 patients found") && none.text.contains("break glass"),
        "{}",
        none.text
    );
    let opened = post_form(
        &stranger,
        "/app/patients/break-glass",
        &form_body(&[("nhs", "9990000018"), ("reason", "anaphylaxis, no history")]),
        &[],
    )
    .await
    .expect(StatusCode::OK);
    assert!(opened.text.contains("Clopidogrel 75mg tablets"));
}

async fn patient_view(app: &TestApp) {
    let w = world(app).await;
    // Someone opens the record: the GP, then a stranger by break-glass.
    w.gp.get(&format!("/app/patients/{}", w.patient))
        .await
        .expect(StatusCode::OK);
    app.as_user(
        "u-web-registrar",
        Role::HospitalPrescriber,
        Some(OTHER_HOSPITAL),
    )
    .request(
        Method::GET,
        &format!("/app/patients/{}", w.patient),
        &[("x-break-glass-reason", "unconscious in ED")],
        None,
    )
    .await
    .expect(StatusCode::OK);
    let me = app.as_patient(&w.patient);
    let page = me.get("/app/me").await.expect(StatusCode::OK);
    let html = &page.text;
    assert!(
        html.contains("Clopidogrel 75mg tablets") && html.contains("You are taking this"),
        "{html}"
    );
    assert!(html.contains("your GP practice"), "{html}");
    assert!(html.contains("CYP2C19"), "{html}");
    // Their result and what it means for their medicine, in plain words.
    assert!(html.contains("much more slowly than most people"), "{html}");
    assert!(
        html.contains("Your prescriber may choose a different medicine"),
        "{html}"
    );
    assert!(
        html.contains("u-web-gp") && html.contains("Opened your medicines record"),
        "{html}"
    );
    assert!(
        html.contains(r#"class="break-glass""#) && html.contains("unconscious in ED"),
        "{html}"
    );
    // Their own visits are not listed as someone looking.
    assert!(
        !html.contains(&format!("<td>patient-{}", w.patient)),
        "{html}"
    );
    // Another patient's page: refused, nothing shown.
    let other = me.get(&format!("/app/patients/{}", w.other_patient)).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    assert!(!other.text.contains("Other") || !other.text.contains("999 000 0026"));
    assert!(
        !other.text.contains(r#"name="reason""#),
        "no break-glass for patients"
    );
    // A clinician has no "my record".
    w.gp.get("/app/me").await.expect(StatusCode::FORBIDDEN);
}

async fn analyst(app: &TestApp) {
    let w = world(app).await;
    let analyst = app.as_user("u-web-analyst", Role::Analyst, Some("QWO"));
    let page = analyst.get(&format!("/app/patients/{}", w.patient)).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(is_html(&page));
    assert!(!page.text.contains("Clopidogrel") && !page.text.contains(r#"name="reason""#));
    analyst.get("/app/me").await.expect(StatusCode::FORBIDDEN);
    let search = analyst.get("/app/patients?q=9990000018").await;
    assert_eq!(search.status, StatusCode::FORBIDDEN);
}

async fn csrf(app: &TestApp) {
    let w = world(app).await;
    let browser = app.with_token(None);
    let token = token_of(
        app,
        "u-web-registrar",
        Role::HospitalPrescriber,
        Some(OTHER_HOSPITAL),
    );
    let cookie = format!("smr_session={token}");
    let path = format!("/app/patients/{}/break-glass", w.patient);
    let body = form_body(&[("reason", "forged")]);
    for extra in [
        vec![("cookie", cookie.as_str())],
        vec![
            ("cookie", cookie.as_str()),
            ("origin", "https://evil.example"),
            ("host", "smr.test"),
        ],
        vec![
            ("cookie", cookie.as_str()),
            ("sec-fetch-site", "cross-site"),
        ],
    ] {
        let reply = post_form(&browser, &path, &body, &extra).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{extra:?}");
        assert!(!reply.text.contains("Clopidogrel"));
    }
    let same = post_form(
        &browser,
        &path,
        &body,
        &[
            ("cookie", cookie.as_str()),
            ("origin", "http://smr.test"),
            ("host", "smr.test"),
        ],
    )
    .await
    .expect(StatusCode::OK);
    assert!(same.text.contains("Clopidogrel"));
}

async fn escaping(app: &TestApp) {
    let w = world(app).await;
    for (client, path) in [
        (w.gp.clone(), format!("/app/patients/{}", w.patient)),
        (app.as_patient(&w.patient), "/app/me".to_owned()),
    ] {
        let page = client.get(&path).await.expect(StatusCode::OK);
        assert!(!page.text.contains("<script"), "{}", page.text);
        assert!(page.text.contains("&#60;script&#62;"), "{}", page.text);
    }
    // What a user types into the search box comes back escaped too.
    let reply =
        w.gp.get("/app/patients?q=%3Cscript%3Ex")
            .await
            .expect(StatusCode::OK);
    assert!(!reply.text.contains("<script"));
}

async fn consent(app: &TestApp) {
    let w = world(app).await;
    let me = app.as_patient(&w.patient);
    let page = me.get("/app/me").await.expect(StatusCode::OK);
    assert!(
        page.text.contains(r#"value="PSY:community-pharmacy""#),
        "{}",
        page.text
    );
    assert!(!page.text.contains(" checked>"));
    for round in 0..2 {
        let saved = post_form(
            &me,
            "/app/me/consent",
            "withhold=PSY%3Acommunity-pharmacy&withhold=HIV%3Ahospital&withhold=bogus",
            &[],
        )
        .await
        .expect(StatusCode::SEE_OTHER);
        assert!(
            saved
                .header("location")
                .is_some_and(|l| l.starts_with("/app/me?saved"))
        );
        let page = me.get("/app/me?saved=1").await.expect(StatusCode::OK);
        assert!(
            page.text.contains("Your choices are saved"),
            "round {round}"
        );
        assert!(
            page.text
                .contains("Mental health medicines withheld from community-pharmacy"),
            "{}",
            page.text
        );
        assert_eq!(page.text.matches(" checked>").count(), 2, "round {round}");
    }
    // Saved twice, kept once: the web app updates its Consent.
    let consents = app
        .get(&format!("/fhir/Consent?patient={}", w.patient))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(
        consents["entry"].as_array().map(Vec::len),
        Some(1),
        "{consents}"
    );
    // Nothing withheld any more: the Consent goes inactive.
    post_form(&me, "/app/me/consent", "", &[])
        .await
        .expect(StatusCode::SEE_OTHER);
    let page = me.get("/app/me").await.expect(StatusCode::OK);
    assert_eq!(page.text.matches(" checked>").count(), 0);
    // A clinician cannot post a patient's consent form.
    post_form(&w.gp, "/app/me/consent", "withhold=PSY%3Ahospital", &[])
        .await
        .expect(StatusCode::FORBIDDEN);
}

/// Undoes the HTML escaping of an attribute value (askama writes numeric entities).
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("&#") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find(';') else {
            out.push_str(&rest[i..]);
            return out;
        };
        match after[..end].parse::<u32>().ok().and_then(char::from_u32) {
            Some(c) => out.push(c),
            None => out.push_str(&rest[i..i + 3 + end]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

async fn reconcile(app: &TestApp) {
    let w = world(app).await;
    let path = format!("/app/patients/{}/reconcile", w.patient);
    let form = w.gp.get(&path).await.expect(StatusCode::OK);
    assert!(form.text.contains(r#"name="target""#));
    // A discharge list: clopidogrel at another dose, and a new medicine.
    let discharge = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "MedicationStatement", "status": "active",
            "medicationCodeableConcept": {"coding": [{"system": "https://dmd.nhs.uk",
                "code": CLOPIDOGREL_75MG, "display": "Clopidogrel 75mg tablets"}]},
            "subject": {"reference": format!("Patient/{}", w.patient)},
            "dosage": [{"text": "two a day"}]}},
        {"resource": {"resourceType": "MedicationStatement", "status": "active",
            "medicationCodeableConcept": {"text": "Discharge tonic"},
            "subject": {"reference": format!("Patient/{}", w.patient)}}}
    ]});
    // Not JSON: said beside the box, nothing compared.
    let bad = post_form(&w.gp, &path, "target=%7Bnot", &[]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text.contains("not valid JSON"));
    let compared = post_form(
        &w.gp,
        &path,
        &form_body(&[("target", &discharge.to_string())]),
        &[],
    )
    .await
    .expect(StatusCode::OK);
    let html = &compared.text;
    assert!(
        html.contains("Comparison") && html.contains("Discharge tonic"),
        "{html}"
    );
    assert!(html.contains("Clopidogrel"), "{html}");
    let answer = html
        .split(r#"name="reconciliation" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(unescape)
        .expect("the comparison travels with the form");
    let lines: Vec<String> = html
        .split(r#"name="decision-"#)
        .skip(1)
        .filter_map(|rest| rest.split('"').next().map(str::to_owned))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(!lines.is_empty(), "{html}");
    let mut pairs = vec![("reconciliation".to_owned(), answer)];
    for line in &lines {
        pairs.push((format!("decision-{line}"), "accept".to_owned()));
    }
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    // A community pharmacist may not reconcile: refused, nothing written.
    let pharmacist = app.as_user("u-web-pharmacist", Role::CommunityPharmacist, Some(GP));
    let refused = post_form(&pharmacist, &format!("{path}/confirm"), &body, &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let saved = post_form(&w.gp, &format!("{path}/confirm"), &body, &[])
        .await
        .expect(StatusCode::CREATED);
    assert!(
        saved.text.contains("Reconciliation saved"),
        "{}",
        saved.text
    );
    let lists = app
        .get(&format!("/fhir/List?patient={}&code=430193006", w.patient))
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(lists["entry"].as_array().map(Vec::len), Some(1), "{lists}");
    assert_eq!(lists["entry"][0]["resource"]["mode"], "snapshot");
}

async fn consent_enforced(app: &TestApp) {
    let w = world(app).await;
    const PHARMACY: &str = "FA991";
    // The pharmacy is nominated on an order, so it cares for the patient.
    w.gp.post(
        "/fhir/MedicationRequest",
        &json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "medicationCodeableConcept": {"text": "Paracetamol 500mg tablets"},
            "subject": {"reference": format!("Patient/{}", w.patient)},
            "dispenseRequest": {"performer": {"identifier": {"system": ODS, "value": PHARMACY}}}}),
    )
    .await
    .expect(StatusCode::CREATED);
    app.create(
        &json!({"resourceType": "MedicationStatement", "status": "active",
        "medicationCodeableConcept": {"text": "Olanzapine 10mg tablets"},
        "subject": {"reference": format!("Patient/{}", w.patient)}}),
    )
    .await;
    let pharmacist = app.as_user(
        "u-web-pharmacist",
        Role::CommunityPharmacist,
        Some(PHARMACY),
    );
    let record = format!("/app/patients/{}", w.patient);
    let before = pharmacist.get(&record).await.expect(StatusCode::OK);
    assert!(before.text.contains("Olanzapine"), "{}", before.text);
    // Reconciliation is offered only to roles that may reconcile.
    assert!(!before.text.contains("Reconcile with another list"));
    // The patient withholds mental health medicines from pharmacies, on their page.
    let me = app.as_patient(&w.patient);
    post_form(
        &me,
        "/app/me/consent",
        "withhold=PSY%3Acommunity-pharmacy",
        &[],
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    let after = pharmacist.get(&record).await.expect(StatusCode::OK);
    assert!(!after.text.contains("Olanzapine"), "{}", after.text);
    assert!(after.text.contains("Paracetamol"), "{}", after.text);
    // The API agrees with the page.
    let api = pharmacist
        .get(&format!("/fhir/Patient/{}/$medication-record", w.patient))
        .await
        .expect(StatusCode::OK);
    assert!(!api.text.contains("Olanzapine"));
    // Others still see it, and the patient always does.
    assert!(
        w.gp.get(&record)
            .await
            .expect(StatusCode::OK)
            .text
            .contains("Olanzapine")
    );
    assert!(
        me.get("/app/me")
            .await
            .expect(StatusCode::OK)
            .text
            .contains("Olanzapine")
    );
}
