//! `smr loadgen` against a running `smr serve`: every operation of the mix answered and
//! reported, each acknowledged write read back by `--verify`; and a node killed with SIGKILL
//! in the middle of the load loses no write it acknowledged (issue 13), on the embedded store
//! and with two nodes sharing PostgreSQL.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::support::StoreTarget;

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
    serve_with(data, &[])
}

/// `smr serve` with `data` as its data directory and `extra` arguments (e.g. a
/// `--database-url`), on a free port.
fn serve_with(data: &Path, extra: &[String]) -> (Child, String) {
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
        .args(extra)
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

/// Starts `smr loadgen` against `urls`, recording acknowledged writes in `acks`.
fn load_in_background(urls: &[&str], token: &str, rate: &str, acks: &Path) -> Child {
    let mut cmd = smr();
    cmd.arg("loadgen");
    for url in urls {
        cmd.args(["--url", url]);
    }
    cmd.args(["--token", token])
        .args(["--rate", rate, "--duration", "6s", "--patients", "20"])
        .arg("--acks")
        .arg(acks)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("smr loadgen")
}

/// Waits for a load whose node was killed: it must report failures (exit 2). Returns how
/// many writes were acknowledged.
fn finish_killed_load(load: Child, acks: &Path) -> usize {
    let out = load.wait_with_output().expect("loadgen ends");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "the requests sent to the killed node fail:\n{report}"
    );
    let acknowledged = std::fs::read_to_string(acks)
        .expect("acks file")
        .lines()
        .count();
    assert!(acknowledged > 50, "{acknowledged} acknowledged:\n{report}");
    acknowledged
}

/// `smr loadgen --verify` through `base`: whether every write in `acks` was found, and what
/// it printed.
fn verify(base: &str, token: &str, acks: &Path) -> (bool, String) {
    let out = smr()
        .args(["loadgen", "--url", base, "--token", token])
        .arg("--verify")
        .arg(acks)
        .output()
        .expect("smr loadgen --verify");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
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
    let (all_found, said) = verify(&base, &token, &acks);
    stop(server);
    assert!(all_found, "{said}");
    assert!(said.contains(": 0 missing"), "{said}");
}

#[test]
fn a_node_killed_mid_load_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let (server, base) = serve(&data);
    let token = system_token(&data);
    let acks = dir.path().join("acks.txt");
    let load = load_in_background(&[&base], &token, "150", &acks);
    // Let the load run, then kill the node without warning (SIGKILL).
    std::thread::sleep(std::time::Duration::from_secs(3));
    stop(server);
    let acknowledged = finish_killed_load(load, &acks);

    // A new node on the same store holds every write the old one acknowledged.
    let (server, base) = serve(&data);
    let (all_found, said) = verify(&base, &token, &acks);
    stop(server);
    assert!(all_found, "{said}");
    assert!(
        said.contains(&format!("verified {acknowledged} acknowledged writes")),
        "{said}"
    );
}

/// Issue 13's check on PostgreSQL: two nodes share one database (and NATS, when the machine
/// has it, as a deployment does); the load goes to both; one is killed with SIGKILL in the
/// middle of it; the other holds every write either acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_nodes_share_the_load_and_a_killed_one_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(target) = StoreTarget::new("postgres", dir.path(), "smr_loadgen").await else {
        return;
    };
    // One data directory for both nodes: it holds the token-signing key they both trust.
    let data = dir.path().join("data");
    let mut shared: Vec<String> = target.args.clone();
    if let Ok(nats) = std::env::var("SMR_TEST_NATS_URL") {
        shared.extend(["--nats-url".to_owned(), nats]);
    }
    let (node_a, base_a) = serve_with(&data, &shared);
    let (node_b, base_b) = serve_with(&data, &shared);
    let token = system_token(&data);
    let acks = dir.path().join("acks.txt");
    let load = load_in_background(&[&base_a, &base_b], &token, "100", &acks);
    std::thread::sleep(std::time::Duration::from_secs(3));
    stop(node_a);
    let acknowledged = finish_killed_load(load, &acks);
    let (all_found, said) = verify(&base_b, &token, &acks);
    stop(node_b);
    target.finish().await;
    assert!(all_found, "{said}");
    assert!(
        said.contains(&format!("verified {acknowledged} acknowledged writes")),
        "{said}"
    );
}
