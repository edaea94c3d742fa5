//! `smr loadgen` against a running `smr serve`: every operation of the mix answered and
//! reported, each acknowledged write read back by `--verify`; and a node killed with SIGKILL
//! in the middle of the load loses no write it acknowledged (issue 13).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn smr() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smr"));
    cmd.env_remove("SMR_DATABASE_URL")
        .env_remove("SMR_TOKEN")
        .env_remove("SMR_TLS_CERT")
        .env_remove("SMR_TLS_KEY");
    cmd
}

/// `smr serve` on the embedded store in `data`, on a free port: the child and its base URL.
fn serve(data: &Path) -> (Child, String) {
    let mut server = smr()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--synthetic-patients",
            "0",
            "--no-demo-tokens",
            "--rate-limit",
            "0",
        ])
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("smr serve");
    let stderr = server.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut base = None;
    for line in lines.by_ref() {
        let line = line.unwrap_or_default();
        if let Some(at) = line.find("SMR FHIR API on ") {
            let fhir = line[at + "SMR FHIR API on ".len()..].trim();
            base = Some(fhir.trim_end_matches("/fhir").to_owned());
            break;
        }
    }
    // Keep reading the server's log so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (server, base.expect("the server's address"))
}

fn system_token(data: &Path) -> String {
    let out = smr()
        .args([
            "token", "--role", "system", "--user", "loadgen", "--org", "X26",
        ])
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("smr token");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn stop(mut server: Child) {
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn every_operation_is_answered_and_every_acknowledged_write_is_stored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (server, base) = serve(&data);
    let token = system_token(&data);
    let acks = dir.path().join("acks.txt");
    let out = smr()
        .args(["loadgen", "--url", &base, "--token", &token])
        .args(["--rate", "40", "--duration", "3s", "--patients", "10"])
        .args(["--mix", "even"])
        .arg("--acks")
        .arg(&acks)
        .output()
        .expect("smr loadgen");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{report}\n{log}");
    for operation in [
        "prescription",
        "dispense",
        "administration",
        "cds-order-select",
        "record-view",
        "admission",
        "reconciliation",
    ] {
        let row = report
            .lines()
            .find(|l| l.starts_with(operation))
            .unwrap_or_else(|| panic!("no row for {operation}:\n{report}"));
        let columns: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(columns[3], "0", "{operation} had errors:\n{report}");
        assert_ne!(columns[2], "0", "{operation} never succeeded:\n{report}");
    }
    let all = report
        .lines()
        .find(|l| l.starts_with("all "))
        .expect("a total row");
    assert_eq!(all.split_whitespace().nth(1), Some("120"), "{report}");

    let written = std::fs::read_to_string(&acks).expect("acks file");
    assert!(written.lines().count() >= 40, "{written}");
    let verified = smr()
        .args(["loadgen", "--url", &base, "--token", &token])
        .arg("--verify")
        .arg(&acks)
        .output()
        .expect("smr loadgen --verify");
    let said = String::from_utf8_lossy(&verified.stdout);
    stop(server);
    assert!(verified.status.success(), "{said}");
    assert!(said.contains(": 0 missing"), "{said}");
}

#[test]
fn a_node_killed_mid_load_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (server, base) = serve(&data);
    let token = system_token(&data);
    let acks = dir.path().join("acks.txt");
    let load = smr()
        .args(["loadgen", "--url", &base, "--token", &token])
        .args(["--rate", "150", "--duration", "6s", "--patients", "20"])
        .arg("--acks")
        .arg(&acks)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("smr loadgen");
    // Let the load run, then kill the node without warning (SIGKILL).
    std::thread::sleep(std::time::Duration::from_secs(3));
    stop(server);
    let out = load.wait_with_output().expect("loadgen ends");
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "the requests after the kill fail:\n{report}"
    );
    let acknowledged = std::fs::read_to_string(&acks)
        .expect("acks file")
        .lines()
        .count();
    assert!(
        acknowledged > 50,
        "{acknowledged} writes acknowledged before the kill"
    );

    // A new node on the same store holds every write the old one acknowledged.
    let (server, base) = serve(&data);
    let verified = smr()
        .args(["loadgen", "--url", &base, "--token", &token])
        .arg("--verify")
        .arg(&acks)
        .output()
        .expect("smr loadgen --verify");
    let said = String::from_utf8_lossy(&verified.stdout);
    stop(server);
    assert!(verified.status.success(), "{said}");
    assert!(
        said.contains(&format!("verified {acknowledged} acknowledged writes")),
        "{said}"
    );
}
