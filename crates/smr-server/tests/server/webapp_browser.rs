//! The web app in a real browser: headless Chromium driven over WebDriver (chromedriver),
//! against `smr_server::serve` on a local port. A GP signs in with the form, finds the patient
//! and opens their record; the GP signs out; the patient signs in and sees their medicines and
//! who opened their record (a break-glass access highlighted).
//!
//! Needs the Debian packages `chromium` and `chromium-driver`. Without them the test says so
//! and passes, unless `SMR_REQUIRE_BROWSER=1` (then it fails). With `SMR_SCREENSHOTS_DIR`
//! set, it saves PNG screenshots of the pages there (`docs/screenshots/` was made this way).
//!
//! A second test loads the synthetic population `smr serve` starts with (`smr-synth`) and signs
//! in as each demo role: GP, hospital prescriber, community pharmacist, patient, analyst and
//! administrator.
//!
//! WebDriver is spoken over a minimal HTTP/1.1 client on `std::net` (one request per
//! connection): chromedriver is local and the protocol is a handful of JSON calls.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use base64::Engine;
use serde_json::{Value, json};
use smr_access::Role;
use support::fixture;

const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const GP: &str = "Y91002";
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gp_and_a_patient_use_the_web_app_in_headless_chromium() {
    let Some(browser) = browser("a_gp_and_a_patient_use_the_web_app_in_headless_chromium") else {
        return;
    };
    let app = support::sqlite_app().await;
    app.create(&json!({"resourceType": "Organization",
        "identifier": [{"system": ODS, "value": GP}], "name": "Browser Surgery"}))
        .await;
    let mut patient = fixture("patient.json");
    patient["generalPractitioner"] = json!([{"identifier": {"system": ODS, "value": GP}}]);
    let patient = app.create(&patient).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let gp = app.as_user("u-browser-gp", Role::Gp, Some(GP));
    gp.post(
        "/fhir/MedicationRequest",
        &json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": "https://dmd.nhs.uk",
                "code": "319799004", "display": "Clopidogrel 75mg tablets"}]},
            "subject": {"reference": format!("Patient/{patient}")},
            "authoredOn": "2026-11-01", "dosageInstruction": [{"text": "one a day"}]}),
    )
    .await
    .expect(StatusCode::CREATED);
    app.create(&json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "84413-4"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "48018-6"}]},
            "valueCodeableConcept": {"coding": [{"system": "http://www.genenames.org/geneId",
                "code": "HGNC:2621", "display": "CYP2C19"}]}}],
        "valueCodeableConcept": {"text": "*2/*2"}}))
        .await;
    // An emergency access by another hospital, for the patient's access log.
    app.as_user(
        "u-browser-registrar",
        Role::HospitalPrescriber,
        Some("RXX98"),
    )
    .request(
        axum::http::Method::GET,
        &format!("/app/patients/{patient}"),
        &[("x-break-glass-reason", "unconscious in ED")],
        None,
    )
    .await
    .expect(StatusCode::OK);
    let issue = |request| support::issue(&app.issuer, request);
    let gp_token = issue(smr_auth::TokenRequest {
        org: Some(GP.into()),
        name: Some("Dr Browser".into()),
        ..smr_auth::TokenRequest::new("u-browser-gp", Role::Gp)
    });
    let patient_token = issue(smr_auth::TokenRequest {
        patient: Some(patient.clone()),
        name: Some("Zoë O'Brien".into()),
        ..smr_auth::TokenRequest::new(format!("patient-{patient}"), Role::Patient)
    });
    let hospital_token = issue(smr_auth::TokenRequest {
        org: Some("RXX97".into()),
        name: Some("Dr Elsewhere".into()),
        ..smr_auth::TokenRequest::new("u-browser-elsewhere", Role::HospitalPrescriber)
    });
    let analyst_token = issue(smr_auth::TokenRequest {
        org: Some("Q9X".into()),
        name: Some("ICB Analyst".into()),
        ..smr_auth::TokenRequest::new("u-browser-analyst", Role::Analyst)
    });

    let shots = std::env::var_os("SMR_SCREENSHOTS_DIR").map(PathBuf::from);
    let tokens = Tokens {
        gp: gp_token,
        patient: patient_token,
        analyst: analyst_token,
        hospital: hospital_token,
    };
    in_browser(app, browser, move |session, base| {
        browse(session, base, &patient, &tokens, shots.as_deref())
    })
    .await;
}

/// The bearer tokens of the users the browser signs in as.
struct Tokens {
    gp: String,
    patient: String,
    analyst: String,
    /// A hospital prescriber with no care relationship with the patient.
    hospital: String,
}

/// Kills chromedriver (and with it the browser) when the test ends, however it ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn browse(
    session: &Session<'_>,
    base: &str,
    patient: &str,
    tokens: &Tokens,
    shots: Option<&Path>,
) -> Result<(), String> {
    let (gp_token, patient_token, analyst_token) = (
        tokens.gp.as_str(),
        tokens.patient.as_str(),
        tokens.analyst.as_str(),
    );
    {
        // A GP: to the app, redirected to sign-in, token pasted, signed in.
        session.go(&format!("{base}/app"))?;
        session.wait_for("Access token")?;
        shot(session, shots, "sign-in.png")?;
        sign_in(session, gp_token)?;
        session.wait_for("NHS number or name")?;
        session.type_into("#q", "999 000 0018")?;
        session.click("form[role=search] button")?;
        session.wait_for(&format!("/app/patients/{patient}"))?;
        shot(session, shots, "patient-search.png")?;
        session.go(&format!("{base}/app/patients/{patient}"))?;
        let record = session.wait_for("Pharmacogenomics")?;
        for text in [
            "Clopidogrel 75mg tablets",
            "GP practice",
            "CYP2C19",
            "Guideline: CPIC",
        ] {
            expect_in(&record, text)?;
        }
        shot(session, shots, "record.png")?;
        // Keyboard and link navigation: the line's timeline (inside its <details>).
        session.click("details summary")?;
        session.click("a[href*='/timeline?medicine=']")?;
        session.wait_for("Clopidogrel 75mg tablets: timeline")?;
        expect_in(&session.source()?, "Prescribed")?;
        shot(session, shots, "timeline.png")?;
        session.click("form[action='/app/sign-out'] button")?;
        session.wait_for("Access token")?;

        // The patient: their own page.
        sign_in(session, patient_token)?;
        let me = session.wait_for("Who has looked at my record")?;
        for text in [
            "My medicines",
            "Clopidogrel 75mg tablets",
            "You are taking this",
            "Emergency access",
            "unconscious in ED",
            "u-browser-gp",
        ] {
            expect_in(&me, text)?;
        }
        shot(session, shots, "my-record.png")?;
        // Another patient's page is refused in the browser too.
        session.go(&format!("{base}/app/patients/someone-else"))?;
        let refused = session.wait_for("Back to the start")?;
        if refused.contains("Clopidogrel") {
            return Err("a patient saw a record page that is not theirs".into());
        }

        // An ICB analyst: the dashboards, never a person.
        session.go(&format!("{base}/app"))?;
        session.click("form[action='/app/sign-out'] button")?;
        session.wait_for("Access token")?;
        sign_in(session, analyst_token)?;
        // Signed in (the header names the analyst) before going on: navigating earlier could
        // race the sign-in post and land on the sign-in page.
        session.wait_for("ICB Analyst")?;
        session.go(&format!("{base}/app/icb"))?;
        let dashboard = session.wait_for("ICB dashboards")?;
        // (This store's organisations have no ICB above them: no unit to count, said so.)
        for text in [
            "disclosure control",
            "No unit at this level",
            "Prescribing safety",
        ] {
            expect_in(&dashboard, text)?;
        }
        if dashboard.contains("Clopidogrel 75mg tablets") || dashboard.contains(patient) {
            return Err("the ICB dashboard named a medicine line or a patient".into());
        }
        session.click("a[href^='/app/icb/safety']")?;
        let safety = session.wait_for("Back to the PGx dashboards")?;
        expect_in(&safety, "PINCER indicators")?;
        expect_in(&safety, "Medicines reconciliation (NICE QS120)")?;

        // A hospital prescriber with no care relationship: the break-glass prompt, not the
        // record; with a reason, the record.
        session.click("form[action='/app/sign-out'] button")?;
        session.wait_for("Access token")?;
        sign_in(session, &tokens.hospital)?;
        session.wait_for("Dr Elsewhere")?;
        session.go(&format!("{base}/app/patients/{patient}"))?;
        let prompt = session.wait_for("You have no care relationship with this patient")?;
        if prompt.contains("Clopidogrel 75mg tablets") {
            return Err("the break-glass prompt showed the record".into());
        }
        shot(session, shots, "break-glass.png")?;
        session.type_into("#reason", "collapsed in outpatients, no history available")?;
        session.click("form[action$='/break-glass'] button")?;
        let opened = session.wait_for("Pharmacogenomics")?;
        expect_in(&opened, "Clopidogrel 75mg tablets")?;
        Ok(())
    }
}

fn sign_in(session: &Session<'_>, token: &str) -> Result<(), String> {
    session.type_into("#token", token)?;
    session.click("form[action='/app/sign-in'] button")
}

fn expect_in(html: &str, text: &str) -> Result<(), String> {
    // The DOM as the browser serialises it: apostrophes and such stay as typed.
    if html.contains(text) {
        Ok(())
    } else {
        Err(format!("the page does not contain {text:?}:\n{html}"))
    }
}

fn shot(session: &Session<'_>, dir: Option<&Path>, name: &str) -> Result<(), String> {
    let Some(dir) = dir else {
        return Ok(());
    };
    let data = session.get("screenshot")?;
    let png = base64::engine::general_purpose::STANDARD
        .decode(data.as_str().unwrap_or_default())
        .map_err(|e| format!("screenshot not base64: {e}"))?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join(name), png).map_err(|e| e.to_string())
}

struct WebDriver {
    port: u16,
}

struct Session<'a> {
    wd: &'a WebDriver,
    id: String,
}

impl WebDriver {
    /// Waits (up to 20 s) for chromedriver to answer `/status` ready.
    fn connect(port: u16) -> Result<Self, String> {
        let wd = WebDriver { port };
        let started = Instant::now();
        loop {
            if let Ok(status) = wd.call("GET", "/status", None)
                && status["ready"] == json!(true)
            {
                return Ok(wd);
            }
            if started.elapsed() > Duration::from_secs(20) {
                return Err("chromedriver did not become ready within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn new_session(&self, chromium: &Path, profile: &Path) -> Result<Session<'_>, String> {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        let answer = self.call(
            "POST",
            "/session",
            Some(
                json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
                "binary": chromium.display().to_string(), "args": args}}}}),
            ),
        )?;
        let id = answer["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session: {answer}"))?
            .to_owned();
        Ok(Session { wd: self, id })
    }

    /// One WebDriver call; its `value`, or the WebDriver error as text.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        let body = read_response(&mut stream)?;
        let value: Value =
            serde_json::from_str(&body).map_err(|e| format!("not JSON ({e}): {body}"))?;
        let value = value.get("value").cloned().unwrap_or(Value::Null);
        if let Some(error) = value.get("error") {
            return Err(format!(
                "WebDriver {method} {path}: {error}: {}",
                value["message"]
            ));
        }
        Ok(value)
    }
}

/// Reads one HTTP response's body: by `Content-Length` (chromedriver keeps the connection
/// open, so reading to the end would wait), chunked, or to the end.
fn read_response(stream: &mut TcpStream) -> Result<String, String> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let header_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the connection closed before the headers ended".into());
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..header_end]).to_ascii_lowercase();
    let length = head.lines().find_map(|l| {
        l.strip_prefix("content-length:")
            .and_then(|v| v.trim().parse::<usize>().ok())
    });
    match length {
        Some(length) => {
            while raw.len() < header_end + length {
                let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&buf[..n]);
            }
            let end = raw.len().min(header_end + length);
            Ok(String::from_utf8_lossy(&raw[header_end..end]).into_owned())
        }
        None => {
            let _ = stream.read_to_end(&mut raw);
            let body = String::from_utf8_lossy(&raw[header_end..]).into_owned();
            Ok(if head.contains("transfer-encoding: chunked") {
                dechunk(&body)
            } else {
                body
            })
        }
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

impl Session<'_> {
    fn post(&self, what: &str, body: Value) -> Result<Value, String> {
        self.wd
            .call("POST", &format!("/session/{}/{what}", self.id), Some(body))
    }

    fn get(&self, what: &str) -> Result<Value, String> {
        self.wd
            .call("GET", &format!("/session/{}/{what}", self.id), None)
    }

    fn delete(&self) -> Result<Value, String> {
        self.wd
            .call("DELETE", &format!("/session/{}", self.id), None)
    }

    fn go(&self, url: &str) -> Result<(), String> {
        self.post("url", json!({"url": url})).map(drop)
    }

    fn source(&self) -> Result<String, String> {
        Ok(self.get("source")?.as_str().unwrap_or_default().to_owned())
    }

    /// The page source once it contains `text` (a click's navigation completes after the
    /// click returns), or an error after 15 s with the page as it was.
    fn wait_for(&self, text: &str) -> Result<String, String> {
        let started = Instant::now();
        loop {
            let html = self.source()?;
            if html.contains(text) || started.elapsed() > Duration::from_secs(15) {
                return expect_in(&html, text).map(|()| html);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn element(&self, css: &str) -> Result<String, String> {
        let found = self.post("element", json!({"using": "css selector", "value": css}))?;
        found[ELEMENT_KEY]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no element {css}"))
    }

    fn type_into(&self, css: &str, text: &str) -> Result<(), String> {
        let id = self.element(css)?;
        self.post(&format!("element/{id}/clear"), json!({}))?;
        self.post(&format!("element/{id}/value"), json!({"text": text}))
            .map(drop)
    }

    fn click(&self, css: &str) -> Result<(), String> {
        let id = self.element(css)?;
        self.post(&format!("element/{id}/click"), json!({}))
            .map(drop)
    }
}

/// Chromium and chromedriver, or `None` (the test then skips, unless `SMR_REQUIRE_BROWSER=1`).
fn browser(test: &str) -> Option<(PathBuf, PathBuf)> {
    let required = std::env::var("SMR_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    match (
        find_program(&["chromium", "chromium-browser", "google-chrome"]),
        find_program(&["chromedriver"]),
    ) {
        (Some(chromium), Some(driver)) => Some((chromium, driver)),
        _ => {
            assert!(
                !required,
                "SMR_REQUIRE_BROWSER=1 but chromium and chromedriver are not both on PATH"
            );
            eprintln!("SKIP {test}: chromium and chromedriver are not both on PATH");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_demo_role_uses_the_web_app_on_the_synthetic_population() {
    let Some(chromium_and_driver) =
        browser("each_demo_role_uses_the_web_app_on_the_synthetic_population")
    else {
        return;
    };
    let app = support::sqlite_app().await;
    // The population `smr serve` loads, smaller: one practice's worth and the demo patient.
    let config = smr_synth::SynthConfig {
        patients: 50,
        today: time::OffsetDateTime::now_utc().date(),
        ..smr_synth::SynthConfig::default()
    };
    for bundle in &smr_synth::generate(&config).bundles {
        app.post("/fhir", bundle).await.expect(StatusCode::OK);
    }
    let orgs = smr_synth::demo_organisations(&config);
    let nhs = smr_synth::demo_patient_nhs_number(&config);
    let found = app
        .get(&format!(
            "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}"
        ))
        .await
        .expect(StatusCode::OK)
        .json();
    let patient = found["entry"][0]["resource"]["id"]
        .as_str()
        .expect("the demo patient")
        .to_owned();
    let issue = |user: &str, role: Role, org: Option<&str>, name: &str| {
        support::issue(
            &app.issuer,
            smr_auth::TokenRequest {
                org: org.map(str::to_owned),
                name: Some(name.to_owned()),
                ..smr_auth::TokenRequest::new(user, role)
            },
        )
    };
    let clinicians = vec![
        (
            "Demo GP",
            issue("demo-gp", Role::Gp, Some(&orgs.gp_practice), "Demo GP"),
        ),
        (
            "Demo Registrar",
            issue(
                "demo-hospital",
                Role::HospitalPrescriber,
                Some(&orgs.hospital),
                "Demo Registrar",
            ),
        ),
        (
            "Demo Pharmacist",
            issue(
                "demo-pharmacist",
                Role::CommunityPharmacist,
                Some(&orgs.pharmacy),
                "Demo Pharmacist",
            ),
        ),
    ];
    let patient_token = support::issue(
        &app.issuer,
        smr_auth::TokenRequest {
            patient: Some(patient.clone()),
            name: Some("Demo Patient".into()),
            ..smr_auth::TokenRequest::new(format!("patient-{patient}"), Role::Patient)
        },
    );
    let analyst = issue(
        "demo-analyst",
        Role::Analyst,
        Some(&orgs.icb),
        "Demo Analyst",
    );
    let admin = issue(
        "demo-admin",
        Role::Admin,
        Some(&orgs.gp_practice),
        "Demo Manager",
    );

    let shots = std::env::var_os("SMR_SCREENSHOTS_DIR").map(PathBuf::from);
    in_browser(app, chromium_and_driver, move |session, base| {
        let shots = shots.as_deref();
        {
            let sign_in_as = |token: &str, name: &str| -> Result<(), String> {
                session.go(&format!("{base}/app/sign-in"))?;
                session.wait_for("Access token")?;
                sign_in(session, token)?;
                session.wait_for(name).map(drop)
            };
            let sign_out = || -> Result<(), String> {
                session.click("form[action='/app/sign-out'] button")?;
                session.wait_for("Access token").map(drop)
            };
            // Each clinician with a care relationship opens the demo patient's record.
            for (name, token) in &clinicians {
                sign_in_as(token, name)?;
                session.go(&format!("{base}/app/patients/{patient}"))?;
                let record = session.wait_for("Pharmacogenomics")?;
                for text in ["Medicines", "Alerts"] {
                    expect_in(&record, text)?;
                }
                if record.contains("You have no care relationship") {
                    return Err(format!("{name} was refused the demo patient's record"));
                }
                sign_out()?;
            }
            // The patient: their own page and who opened it (the clinicians above).
            sign_in_as(&patient_token, "Who has looked at my record")?;
            let me = session.source()?;
            for text in [
                "My medicines",
                "Demo GP",
                "Demo Registrar",
                "Demo Pharmacist",
            ] {
                expect_in(&me, text)?;
            }
            sign_out()?;
            // The analyst: the dashboards, with figures, and never a person.
            sign_in_as(&analyst, "Demo Analyst")?;
            session.go(&format!("{base}/app/icb"))?;
            let dashboard = session.wait_for("PGx adoption")?;
            if dashboard.contains(&nhs) || dashboard.contains(&patient) {
                return Err("the ICB dashboard named a patient".into());
            }
            shot(session, shots, "icb.png")?;
            session.click("a[href^='/app/icb/safety']")?;
            session.wait_for("Back to the PGx dashboards")?;
            shot(session, shots, "icb-safety.png")?;
            sign_out()?;
            // The administrator: patient search and the dashboards in the navigation.
            sign_in_as(&admin, "Demo Manager")?;
            session.go(&format!("{base}/app/patients"))?;
            let search = session.wait_for("NHS number or name")?;
            expect_in(&search, "ICB dashboards")?;
            Ok(())
        }
    })
    .await;
}

/// Serves `app` on a local port, runs `scenario` in a fresh headless Chromium (a new profile,
/// a 1200×1800 window) against it, then stops the browser, the server and the store; a
/// scenario's error fails the test.
async fn in_browser<F>(app: support::TestApp, (chromium, driver): (PathBuf, PathBuf), scenario: F)
where
    F: FnOnce(&Session<'_>, &str) -> Result<(), String> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(smr_server::serve(
        listener,
        app.router.clone(),
        smr_server::ConnectionTimeouts::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let outcome = tokio::task::spawn_blocking(move || {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let _driver = Driver(
            Command::new(&driver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("chromedriver did not start: {e}"))?,
        );
        let wd = WebDriver::connect(port)?;
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let session = wd.new_session(&chromium, profile.path())?;
        let result = session
            .post("window/rect", json!({"width": 1200, "height": 1800}))
            .and_then(|_| scenario(&session, &base));
        let _ = session.delete();
        result
    })
    .await
    .expect("the browser task");
    let _ = stop.send(());
    let _ = server.await;
    app.finish().await;
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
