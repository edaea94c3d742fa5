//! The real `smr` binary: `smr synth` writes NDJSON transaction Bundles, and `smr serve` loads
//! a synthetic population into an empty store before answering.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn smr() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smr"))
}

#[test]
fn synth_writes_ndjson_transaction_bundles() {
    let out = smr()
        .args(["synth", "--patients", "20", "--seed", "7", "--out", "-"])
        .output()
        .expect("run smr synth");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let bundles: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON Bundle per line"))
        .collect();
    assert!(!bundles.is_empty());
    let mut patients = 0;
    for b in &bundles {
        assert_eq!(b["resourceType"], "Bundle");
        assert_eq!(b["type"], "transaction");
        for e in b["entry"].as_array().expect("entries") {
            assert!(
                e["fullUrl"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("urn:uuid:"))
            );
            if e["resource"]["resourceType"] == "Patient" {
                patients += 1;
                let nhs = e["resource"]["identifier"][0]["value"].as_str().unwrap();
                assert!(
                    nhs.starts_with("999") && smr_fhir::nhs_number::is_valid(nhs),
                    "{nhs}"
                );
            }
        }
    }
    assert_eq!(patients, 20);
    // Deterministic: the same seed writes the same bytes.
    let again = smr()
        .args(["synth", "--patients", "20", "--seed", "7"])
        .output()
        .expect("run smr synth");
    assert_eq!(String::from_utf8(again.stdout).unwrap(), text);
}

/// Kills the server however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A bare HTTP/1.1 GET; returns (status, body).
fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    get_as(port, path, None)
}

/// A bare HTTP/1.1 GET with a bearer token.
fn get_as(port: u16, path: &str, token: Option<&str>) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/fhir+json\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    Ok((
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        },
    ))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[test]
fn serve_loads_a_synthetic_population_into_an_empty_store() {
    let dir = TempDir(std::env::temp_dir().join(format!(
        "smr-synth-cli-{}-{}",
        std::process::id(),
        free_port()
    )));
    let port = free_port();
    let child = smr()
        .args(["serve", "--data-dir"])
        .arg(&dir.0)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--synthetic-patients",
            "60",
        ])
        .env_remove("SMR_DATABASE_URL")
        .stdout(Stdio::from(
            std::fs::File::create(dir.0.with_extension("out")).expect("stdout file"),
        ))
        .stderr(Stdio::null())
        .spawn()
        .expect("start smr serve");
    let mut server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok((200, _)) = get(port, "/healthz") {
            break;
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("smr serve exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "smr serve did not answer /healthz within 120 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Without a token, only the CapabilityStatement answers.
    let (status, _) = get(port, "/fhir/Patient?_summary=count").expect("count patients");
    assert_eq!(status, 401);
    assert_eq!(get(port, "/fhir/metadata").expect("metadata").0, 200);
    // `smr token` signs with the key `smr serve` created in the data directory.
    let out = smr()
        .args(["token", "--data-dir"])
        .arg(&dir.0)
        .args(["--role", "system", "--org", "X26", "--user", "loader"])
        .output()
        .expect("smr token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let token = stdout
        .lines()
        .last()
        .expect("a token line")
        .trim()
        .to_owned();
    let (status, body) =
        get_as(port, "/fhir/Patient?_summary=count", Some(&token)).expect("count patients");
    assert_eq!(status, 200, "{body}");
    let bundle: Value = serde_json::from_str(&body).expect("a JSON Bundle");
    assert_eq!(bundle["total"], 60, "{body}");
    let (_, body) =
        get_as(port, "/fhir/MedicationRequest?_summary=count", Some(&token)).expect("orders");
    let orders: Value = serde_json::from_str(&body).unwrap();
    assert!(orders["total"].as_i64().is_some_and(|n| n > 0), "{body}");
    // The demo GP printed at start sees the practice's patients, not everyone.
    let printed = std::fs::read_to_string(dir.0.with_extension("out")).unwrap_or_default();
    let gp = printed
        .lines()
        .find_map(|l| l.strip_prefix("export SMR_TOKEN_GP="))
        .unwrap_or_else(|| panic!("no demo GP token printed:\n{printed}"))
        .to_owned();
    let (status, body) =
        get_as(port, "/fhir/Patient?_summary=count", Some(&gp)).expect("GP's patients");
    assert_eq!(status, 200, "{body}");
    let seen = serde_json::from_str::<Value>(&body).unwrap()["total"]
        .as_i64()
        .unwrap_or(0);
    // 50 patients a practice: the first practice's, not the second's.
    assert!(
        seen > 0 && seen < 60,
        "the demo GP sees {seen} of 60 patients"
    );
    for user in ["HOSPITAL", "PHARMACIST", "PATIENT", "ANALYST", "ADMIN"] {
        assert!(
            printed.contains(&format!("export SMR_TOKEN_{user}=")),
            "{printed}"
        );
    }
    // The record and the key are the owner's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: std::path::PathBuf| {
            std::fs::metadata(&p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(dir.0.clone()), 0o700, "data directory");
        for name in ["smr.db", "smr.db-wal", "smr.db-shm"] {
            let file = dir.0.join(name);
            if file.exists() {
                assert_eq!(mode(file), 0o600, "{name}");
            }
        }
    }
    drop(server);
    let _ = std::fs::remove_file(dir.0.with_extension("out"));
}
