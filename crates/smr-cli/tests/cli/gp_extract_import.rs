//! `smr import FILE.csv`: GP medication extracts (docs/gp-extract.md) driving the real
//! binary, on SQLite and (when `SMR_TEST_DATABASE_URL` is set) a fresh PostgreSQL database:
//! authorisations become plans and issues orders based on them, bad rows land in the rejects
//! file with their line while the rest loads, a re-run writes nothing, and the single
//! medication record shows one line for an authorisation and its issues.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;

use serde_json::Value;
use smr_access::{CareSetting, Principal, RequestContext, Role, Scopes};
use smr_app::App;
use smr_app::medication_record::RecordQuery;
use smr_gpextract::{Kind, resource_id};
use smr_store::{Access, Store};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gp-extract")
        .join(name)
}

async fn search(url: &str, ty: &str, params: &[(&str, &str)]) -> (i64, Vec<Value>) {
    let store = Store::open(url).await.expect("open store");
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    pairs.push(("_total".into(), "accurate".into()));
    pairs.push(("_count".into(), "100".into()));
    let request = smr_fhir::query::parse(ty, &pairs, smr_fhir::query::Handling::Strict)
        .expect("query")
        .request;
    let page = store
        .search(&request, &Access::unrestricted())
        .await
        .expect("search");
    store.close().await;
    let bodies = page
        .matches
        .iter()
        .map(|m| serde_json::from_str(&m.body).expect("stored JSON"))
        .collect();
    (page.total.expect("total"), bodies)
}

fn reader() -> RequestContext {
    RequestContext::new(
        Principal {
            user: "test".into(),
            role: Role::System,
            organisation: None,
            setting: CareSetting::Unspecified,
            setting_claimed: false,
            patient: None,
            scopes: Scopes::unrestricted(),
            name: None,
            issuer: "test".into(),
        },
        None,
        "test".into(),
    )
}

async fn gp_extract(engine: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(place) = support::StoreTarget::new(engine, dir.path(), "smr_gpx").await else {
        return;
    };
    let (target, url) = (place.args.clone(), place.url.clone());
    // Copies, so the rejects file lands in the temporary directory.
    let copy = |name: &str| {
        let to = dir.path().join(name);
        std::fs::copy(fixture(name), &to).expect("copy fixture");
        to
    };
    let (patients, good, bad) = (copy("Patient-gp.ndjson"), copy("good.csv"), copy("bad.csv"));
    let rejects_path = dir.path().join("import-rejects.ndjson");
    let run = |files: &[&Path]| {
        let out = Command::new(env!("CARGO_BIN_EXE_smr"))
            .env_remove("SMR_DATABASE_URL")
            .env_remove("SMR_DATA_DIR")
            .arg("import")
            .args(&target)
            .args(files)
            .output()
            .expect("run smr import");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // The CSV named first still goes after the Patients it refers to.
    let (code, out, err) = run(&[&good, &patients]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!rejects_path.exists(), "nothing rejected");
    let (total, requests) = search(&url, "MedicationRequest", &[]).await;
    assert_eq!(total, 7, "3 authorisations and 4 issues");
    let plan1 = resource_id("A81001", Kind::Authorisation, "AUTH-1");
    let by_id = |id: &str| {
        requests
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id} not stored"))
            .clone()
    };
    let plan = by_id(&plan1);
    assert_eq!(plan["intent"], "plan");
    assert_eq!(plan["status"], "active");
    assert_eq!(plan["subject"]["reference"], "Patient/gp-pat-1");
    assert_eq!(
        plan["medicationCodeableConcept"]["coding"][0]["code"],
        "318902004"
    );
    assert_eq!(plan["dosageInstruction"][0]["text"], "One capsule daily");
    for issue in ["ISS-1", "ISS-2"] {
        let order = by_id(&resource_id("A81001", Kind::Issue, issue));
        assert_eq!(order["intent"], "order");
        assert_eq!(
            order["basedOn"][0]["reference"],
            format!("MedicationRequest/{plan1}")
        );
    }
    let stopped = by_id(&resource_id("A81001", Kind::Authorisation, "AUTH-2"));
    assert_eq!(stopped["status"], "stopped");
    assert_eq!(stopped["statusReason"]["text"], "Muscle pain");
    // Each entry's Provenance names the practice, in the GP setting.
    let (_, provenances) = search(
        &url,
        "Provenance",
        &[("target", &format!("MedicationRequest/{plan1}"))],
    )
    .await;
    assert_eq!(provenances.len(), 1);
    let agent = &provenances[0]["agent"][0];
    assert_eq!(agent["onBehalfOf"]["identifier"]["value"], "A81001");
    assert_eq!(agent["role"][0]["coding"][0]["code"], "gp-practice");
    let (provenance_count, _) = search(&url, "Provenance", &[]).await;

    // Bad rows: rejected with their lines; the good one (an issue of an earlier extract's
    // authorisation) loads.
    let (code, out, err) = run(&[&bad]);
    assert_eq!(code, 2, "{out}\n{err}");
    let rejects: Vec<Value> = std::fs::read_to_string(&rejects_path)
        .expect("rejects file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("reject JSON"))
        .collect();
    let mut lines: Vec<(u64, String)> = rejects
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap_or_default(),
                r["outcome"]["issue"][0]["diagnostics"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    lines.sort();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0].0, 2);
    assert!(
        lines[0].1.contains("no patient with NHS number 9876543210"),
        "{lines:?}"
    );
    assert_eq!(lines[1].0, 3);
    assert!(
        lines[1].1.contains("AUTH-9' (line 2) was rejected"),
        "{lines:?}"
    );
    assert_eq!(lines[2].0, 4);
    assert!(lines[2].1.contains("start_date"), "{lines:?}");
    assert_eq!(lines[3].0, 5);
    assert!(lines[3].1.contains("dmd_code"), "{lines:?}");
    assert!(rejects.iter().all(|r| r["file"] == "bad.csv"));
    let (total, _) = search(&url, "MedicationRequest", &[]).await;
    assert_eq!(total, 8, "the good row of the bad file loaded");

    // A re-run of both adds nothing: every version stays 1, no new Provenance.
    let (code, out, err) = run(&[&good, &patients, &bad]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(out.contains("unchanged"), "{out}");
    let (total, requests) = search(&url, "MedicationRequest", &[]).await;
    assert_eq!(total, 8);
    assert!(
        requests.iter().all(|r| r["meta"]["versionId"] == "1"),
        "no new versions"
    );
    let (again, _) = search(&url, "Provenance", &[]).await;
    assert_eq!(
        again,
        provenance_count + 1,
        "only the bad file's good row's"
    );

    // The single medication record: one line for AUTH-1 and its issues.
    let store = Store::open(&url).await.expect("open store");
    let app = App::new(store);
    let query = RecordQuery {
        stopped_within_days: 3650,
        medicine: None,
    };
    let bundle = app
        .medication_record(&reader(), "gp-pat-1", &query, "http://smr.test/fhir")
        .await
        .expect("medication record");
    app.close().await;
    let statements: Vec<&Value> = bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "MedicationStatement")
        .collect();
    assert_eq!(statements.len(), 2, "ramipril and simvastatin: {bundle}");
    let ramipril: Vec<&&Value> = statements
        .iter()
        .filter(|s| {
            s["derivedFrom"].as_array().is_some_and(|d| {
                d.iter().any(|r| {
                    r["reference"]
                        .as_str()
                        .is_some_and(|r| r.starts_with(&format!("MedicationRequest/{plan1}")))
                })
            })
        })
        .collect();
    assert_eq!(
        ramipril.len(),
        1,
        "one line for the authorisation: {bundle}"
    );
    let derived = ramipril[0]["derivedFrom"].as_array().map(Vec::len);
    assert_eq!(derived, Some(4), "the plan and its three issues: {bundle}");
    assert_eq!(ramipril[0]["status"], "active");

    place.finish().await;
}

#[tokio::test]
async fn sqlite_gp_extract_import() {
    gp_extract("sqlite").await;
}

#[tokio::test]
async fn postgres_gp_extract_import() {
    gp_extract("postgres").await;
}

/// A gzipped extract without the `practice_ods` column loads with `--practice`; without it
/// (or with a header lacking columns) the file is one reject at line 1 and the run goes on.
#[tokio::test]
async fn sqlite_gzipped_extract_with_practice_flag() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let url = format!("sqlite://{}", data.join("smr.db").display());
    let patients = dir.path().join("Patient-gp.ndjson");
    std::fs::copy(fixture("Patient-gp.ndjson"), &patients).expect("copy");
    // good.csv without its last column (practice_ods).
    let text = std::fs::read_to_string(fixture("good.csv")).expect("fixture");
    let stripped: String = text
        .lines()
        .map(|l| format!("{}\n", l.rsplit_once(',').map_or(l, |(head, _)| head)))
        .collect();
    let gz = dir.path().join("extract.csv.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).expect("create"),
        flate2::Compression::default(),
    );
    enc.write_all(stripped.as_bytes()).expect("gzip");
    enc.finish().expect("gzip");
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_smr"))
            .env_remove("SMR_DATABASE_URL")
            .env_remove("SMR_DATA_DIR")
            .arg("import")
            .arg("--data-dir")
            .arg(&data)
            .args(extra)
            .arg(&patients)
            .arg(&gz)
            .output()
            .expect("run smr import");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = run(&[]);
    assert_eq!(code, 2, "{out}");
    let rejects =
        std::fs::read_to_string(dir.path().join("import-rejects.ndjson")).expect("rejects file");
    assert_eq!(rejects.lines().count(), 1, "{rejects}");
    assert!(rejects.contains("--practice"), "{rejects}");
    assert!(rejects.contains(r#""line":1"#), "{rejects}");
    let (code, out) = run(&["--practice", "b82002"]);
    assert_eq!(code, 0, "{out}");
    let (total, requests) = search(&url, "MedicationRequest", &[]).await;
    assert_eq!(total, 7);
    assert!(requests.iter().all(|r| {
        r["identifier"][0]["system"]
            .as_str()
            .is_some_and(|s| s.contains("/gp-extract/B82002/"))
    }));
}
