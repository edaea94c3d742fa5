//! `smr import` driving the real binary, on SQLite and (when `SMR_TEST_DATABASE_URL` is set)
//! a fresh PostgreSQL database per test: rejects with line numbers while the rest loads,
//! gzip, collection and transaction Bundles, re-runs without duplicates, and an import killed
//! with SIGKILL then re-run ending with exactly the file's resources.

use crate::support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use smr_store::{AuditQuery, Store};
use sqlx::Connection;

fn smr() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smr"));
    cmd.env_remove("SMR_DATABASE_URL")
        .env_remove("SMR_DATA_DIR");
    cmd
}

/// Where the import goes: a temporary data directory or a fresh PostgreSQL database.
struct Target {
    dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl Target {
    async fn fresh(engine: &str) -> Option<Target> {
        let dir = tempfile::tempdir().expect("temp dir");
        if engine == "sqlite" {
            return Some(Target {
                dir,
                postgres: None,
            });
        }
        let admin = std::env::var("SMR_TEST_DATABASE_URL")
            .ok()
            .filter(|s| !s.is_empty())?;
        let database = format!("smr_import_{}", uuid::Uuid::new_v4().simple());
        let mut c = sqlx::PgConnection::connect(&admin).await.expect("connect");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&mut c)
            .await
            .expect("create database");
        Some(Target {
            dir,
            postgres: Some((admin, database)),
        })
    }

    fn url(&self) -> String {
        match &self.postgres {
            None => format!("sqlite://{}", self.dir.path().join("data/smr.db").display()),
            Some((admin, database)) => {
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
                format!("{base}/{database}")
            }
        }
    }

    fn import(&self, files: &[&Path]) -> Command {
        let mut cmd = smr();
        cmd.arg("import");
        match &self.postgres {
            None => cmd.arg("--data-dir").arg(self.dir.path().join("data")),
            Some(_) => cmd.args(["--database-url", &self.url()]),
        };
        cmd.arg("--rejects").arg(self.rejects_path());
        cmd.args(files);
        cmd
    }

    fn rejects_path(&self) -> PathBuf {
        self.dir.path().join("rejects.ndjson")
    }

    fn rejects(&self) -> Vec<Value> {
        std::fs::read_to_string(self.rejects_path())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a rejects line is JSON"))
            .collect()
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write file");
        path
    }

    /// How many current resources of `ty` a search finds.
    async fn count(&self, ty: &str) -> i64 {
        support::count(&self.url(), ty).await
    }

    async fn audit_bodies(&self) -> Vec<String> {
        let store = Store::open(&self.url()).await.expect("open store");
        let page = store
            .audit_events(&AuditQuery {
                count: 1000,
                ..AuditQuery::default()
            })
            .await
            .expect("audit");
        store.close().await;
        page.records.into_iter().map(|(_, b)| b).collect()
    }

    async fn drop(self) {
        if let Some((admin, database)) = &self.postgres
            && let Ok(mut c) = sqlx::PgConnection::connect(admin).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
            )))
            .execute(&mut c)
            .await;
        }
    }
}

fn patient(id: &str) -> Value {
    json!({"resourceType": "Patient", "id": id, "gender": "female"})
}

fn observation(id: Option<&str>, patient: &str, n: usize) -> Value {
    let mut o = json!({"resourceType": "Observation", "status": "final",
        "code": {"text": format!("reading {n}")},
        "subject": {"reference": format!("Patient/{patient}")}});
    if let Some(id) = id {
        o["id"] = json!(id);
    }
    o
}

fn ndjson(values: &[Value]) -> String {
    values.iter().map(|v| format!("{v}\n")).collect()
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("run smr import");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn bad_lines_are_rejected_and_the_rest_loads(engine: &str) {
    let Some(t) = Target::fresh(engine).await else {
        eprintln!("SKIP {engine}: SMR_TEST_DATABASE_URL is not set");
        return;
    };
    let patients = t.file("Patient.ndjson", &ndjson(&[patient("p1"), patient("p2")]));
    let mut lines: Vec<String> = vec![
        observation(Some("o1"), "p1", 1).to_string(),
        observation(Some("o2"), "p2", 2).to_string(),
        // line 3: not JSON
        r#"{"resourceType": "Observation", "status": "#.to_owned(),
        observation(None, "p1", 4).to_string(),
        // line 5: invalid (status is required)
        json!({"resourceType": "Observation", "id": "bad", "code": {"text": "x"},
               "subject": {"reference": "Patient/p1"}})
        .to_string(),
        // line 6: a patient SMR does not hold
        observation(Some("o6"), "nobody", 6).to_string(),
        // line 7: an identifier, no id: a conditional create
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "y"},
               "identifier": [{"system": "urn:test", "value": "obs-7"}],
               "subject": {"reference": "Patient/p2"}})
        .to_string(),
    ];
    lines.push(String::new()); // a blank line is skipped, not rejected
    let observations = t.file("Observation.ndjson", &(lines.join("\n") + "\n"));
    // Given in the wrong order: Patient files are loaded first.
    let (code, out, err) = run(&mut t.import(&[&observations, &patients]));
    assert_eq!(code, 2, "some lines rejected: exit 2\n{out}\n{err}");
    let rejects = t.rejects();
    let lines_rejected: Vec<u64> = rejects
        .iter()
        .map(|r| r["line"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(lines_rejected, vec![3, 5, 6], "{rejects:?}");
    for r in &rejects {
        assert_eq!(r["file"], "Observation.ndjson");
        assert_eq!(r["outcome"]["resourceType"], "OperationOutcome");
    }
    assert_eq!(rejects[1]["id"], "bad");
    assert_eq!(t.count("Patient").await, 2);
    assert_eq!(t.count("Observation").await, 4);
    assert!(out.contains("Observation"), "summary per type: {out}");
    // Every write is audited: one AuditEvent per batch (its query, base64 as FHIR has it,
    // names the file and the count), the failed attempts before a split too.
    let audits = t.audit_bodies().await;
    assert!(
        audits
            .iter()
            .any(|b| b.contains("$import") && b.contains(r#""outcome":"0""#)),
        "an import AuditEvent"
    );
    // Provenance was written for the patient-record entries.
    assert!(t.count("Provenance").await >= 6);
    let provenances = t.count("Provenance").await;

    // A re-run: nothing new (ids, identifiers, derived ids), the same rejects.
    let (code, out, _) = run(&mut t.import(&[&patients, &observations]));
    assert_eq!(code, 2);
    assert_eq!(t.rejects().len(), 3);
    assert_eq!(t.count("Patient").await, 2);
    assert_eq!(t.count("Observation").await, 4);
    assert_eq!(
        t.count("Provenance").await,
        provenances,
        "no new versions: {out}"
    );
    t.drop().await;
}

async fn gzip_and_bundles(engine: &str) {
    let Some(t) = Target::fresh(engine).await else {
        eprintln!("SKIP {engine}: SMR_TEST_DATABASE_URL is not set");
        return;
    };
    let gz_path = t.dir.path().join("Patient.ndjson.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz_path).expect("create"),
        flate2::Compression::default(),
    );
    gz.write_all(ndjson(&[patient("g1"), patient("g2"), patient("g3")]).as_bytes())
        .expect("gzip");
    gz.finish().expect("gzip");
    let collection = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:a", "resource": observation(Some("c1"), "g1", 1)},
        {"resource": observation(None, "g2", 2)},
        {"resource": {"resourceType": "Observation", "code": {"text": "no status"},
                      "subject": {"reference": "Patient/g2"}}},
    ]});
    let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:new-patient", "resource": {"resourceType": "Patient", "gender": "male"},
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "t"},
                      "subject": {"reference": "urn:uuid:new-patient"}},
         "request": {"method": "POST", "url": "Observation"}},
        {"resource": patient("t1"), "request": {"method": "PUT", "url": "Patient/t1"}},
    ]});
    let c = t.file("collection.json", &collection.to_string());
    let tx = t.file("transaction.json", &transaction.to_string());
    let (code, out, err) = run(&mut t.import(&[&gz_path, &c, &tx]));
    assert_eq!(code, 2, "{out}\n{err}");
    let rejects = t.rejects();
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(rejects[0]["file"], "collection.json");
    assert_eq!(rejects[0]["entry"], 2);
    assert_eq!(t.count("Patient").await, 5);
    assert_eq!(t.count("Observation").await, 3);

    // A failing transaction writes nothing of itself.
    let failing = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient("f1"), "request": {"method": "PUT", "url": "Patient/f1"}},
        {"resource": observation(Some("f-obs"), "nobody", 1),
         "request": {"method": "PUT", "url": "Observation/f-obs"}},
    ]});
    let f = t.file("failing.json", &failing.to_string());
    let (code, _, _) = run(&mut t.import(&[&f]));
    assert_eq!(code, 2);
    assert_eq!(t.rejects().len(), 2);
    assert_eq!(t.count("Patient").await, 5);

    // Re-run of the good files: no duplicates.
    let (_, out, _) = run(&mut t.import(&[&gz_path, &c, &tx]));
    assert_eq!(t.count("Patient").await, 5, "{out}");
    assert_eq!(t.count("Observation").await, 3, "{out}");
    t.drop().await;
}

async fn killed_import_completes_on_rerun(engine: &str) {
    let Some(t) = Target::fresh(engine).await else {
        eprintln!("SKIP {engine}: SMR_TEST_DATABASE_URL is not set");
        return;
    };
    let (patients, per_patient) = (200, 30);
    let mut p = Vec::new();
    let mut o = Vec::new();
    for i in 0..patients {
        let id = format!("k{i}");
        p.push(patient(&id));
        for n in 0..per_patient {
            // A third with ids, a third with identifiers, a third with neither.
            let mut obs = observation(None, &id, n);
            match n % 3 {
                0 => obs["id"] = json!(format!("k{i}-{n}")),
                1 => {
                    obs["identifier"] =
                        json!([{"system": "urn:test", "value": format!("k{i}-{n}")}])
                }
                _ => {}
            }
            o.push(obs);
        }
    }
    let pf = t.file("Patient.ndjson", &ndjson(&p));
    let of = t.file("Observation.ndjson", &ndjson(&o));
    let mut child = t
        .import(&[&pf, &of])
        .args(["--batch", "100"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut killed = false;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap_or_default();
        // Kill once some entries were written (not at the very start).
        if line.starts_with("import progress:") && !line.starts_with("import progress: 0 ") {
            child.kill().expect("SIGKILL");
            killed = true;
            break;
        }
    }
    let _ = child.wait();
    assert!(
        killed,
        "the import ended before it could be killed: make the file bigger"
    );
    let partial = t.count("Observation").await;
    assert!(
        partial < (patients * per_patient) as i64,
        "killed mid-import: {partial}"
    );

    let (code, out, err) = run(&mut t.import(&[&pf, &of]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(t.count("Patient").await, patients as i64);
    assert_eq!(
        t.count("Observation").await,
        (patients * per_patient) as i64
    );
    t.drop().await;
}

#[tokio::test]
async fn sqlite_bad_lines_are_rejected_and_the_rest_loads() {
    bad_lines_are_rejected_and_the_rest_loads("sqlite").await;
}

#[tokio::test]
async fn postgres_bad_lines_are_rejected_and_the_rest_loads() {
    bad_lines_are_rejected_and_the_rest_loads("postgres").await;
}

#[tokio::test]
async fn sqlite_gzip_and_bundles() {
    gzip_and_bundles("sqlite").await;
}

#[tokio::test]
async fn postgres_gzip_and_bundles() {
    gzip_and_bundles("postgres").await;
}

#[tokio::test]
async fn sqlite_killed_import_completes_on_rerun() {
    killed_import_completes_on_rerun("sqlite").await;
}

#[tokio::test]
async fn postgres_killed_import_completes_on_rerun() {
    killed_import_completes_on_rerun("postgres").await;
}

/// `--url`: the entries go through a running `smr serve` as batch Bundles; the server's
/// per-entry refusals become rejects.
#[test]
fn through_a_running_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut server = smr()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--synthetic-patients",
            "0",
        ])
        .arg("--data-dir")
        .arg(&data)
        .arg("--no-demo-tokens")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("smr serve");
    let stderr = server.stderr.take().expect("stderr");
    let mut base = None;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap_or_default();
        if let Some(at) = line.find("SMR FHIR API on ") {
            base = Some(line[at + "SMR FHIR API on ".len()..].trim().to_owned());
            break;
        }
    }
    let base = base.expect("the server's address");
    let token = smr()
        .args([
            "token", "--role", "system", "--user", "importer", "--org", "X26",
        ])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .expect("smr token");
    let token = String::from_utf8_lossy(&token.stdout).trim().to_owned();
    let file = dir.path().join("Patient.ndjson");
    let lines = format!(
        "{}\n{{broken\n{}\n",
        patient("u1"),
        json!({"resourceType": "Patient", "id": "u2", "gender": "no-such-code"})
    );
    std::fs::write(&file, lines).expect("write");
    let rejects = dir.path().join("rejects.ndjson");
    let (code, out, err) = run(smr()
        .args(["import", "--url", &base, "--token", &token])
        .arg("--rejects")
        .arg(&rejects)
        .arg(&file));
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(code, 2, "{out}\n{err}");
    let rejected: Vec<Value> = std::fs::read_to_string(&rejects)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let lines: Vec<u64> = rejected
        .iter()
        .map(|r| r["line"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(lines, vec![2, 3], "{rejected:?}");
    assert!(out.contains("Patient"), "{out}");
}
