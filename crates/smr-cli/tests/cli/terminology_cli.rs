//! `smr terminology import-dmd` and `smr terminology lookup`, driving the real binary on a
//! temporary data directory with release 1 then release 2 of `../shared/reference/dmd-xml`
//! (release 2 moves VMP 22480211000001104 to 12345).

use std::path::Path;
use std::process::{Command, Output};

fn smr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smr"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("SMR_DATABASE_URL")
        .output()
        .expect("run smr")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn import_release_1_then_2_and_look_codes_up() {
    let Some(root) = smr_testdata::shared("reference/dmd-xml") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let data = path(&data);

    // Before any import: the built-in dictionary answers, the gel is unknown.
    let o = smr(&["terminology", "lookup", "320000009", "--data-dir", data]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("Simvastatin 40mg tablets"),
        "{}",
        text(&o)
    );
    let o = smr(&[
        "terminology",
        "lookup",
        "22480211000001104",
        "--data-dir",
        data,
    ]);
    assert!(!o.status.success(), "{}", text(&o));

    let r1 = root.join("release-1");
    let o = smr(&["terminology", "import-dmd", path(&r1), "--data-dir", data]);
    assert!(o.status.success(), "{}", text(&o));
    let summary = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        summary.starts_with(
            "imported dm+d release 3010419: 2859 VTM, 7 VMP, 15 AMP, 14 VMPP, 26 AMPP"
        ),
        "{summary}"
    );
    let o = smr(&[
        "terminology",
        "lookup",
        "29915211000001103",
        "--data-dir",
        data,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.starts_with("AMP 29915211000001103 (Diclofenac 2.32% gel)"),
        "{out}"
    );
    assert!(
        out.contains("VMP 22480211000001104 (Diclofenac 2.32% gel)"),
        "{out}"
    );
    assert!(
        out.contains("VTM 32889211000001103 (Diclofenac diethylammonium)"),
        "{out}"
    );

    let r2 = root.join("release-2");
    let o = smr(&["terminology", "import-dmd", path(&r2), "--data-dir", data]);
    assert!(o.status.success(), "{}", text(&o));
    let o = smr(&[
        "terminology",
        "lookup",
        "22480211000001104",
        "--json",
        "--data-dir",
        data,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(json["concept"]["code"], "12345");
    assert_eq!(json["info"]["level"], "vmp");
    assert_eq!(json["info"]["vtm"]["code"], "32889211000001103");
    assert_eq!(json["info"]["source"], "dm+d release 3010419");

    // A release with a file missing: a clear error naming it, and release 2 still in place.
    let bad = tmp.path().join("bad");
    std::fs::create_dir(&bad).expect("mkdir");
    for entry in std::fs::read_dir(&r1).expect("release 1") {
        let entry = entry.expect("entry");
        let name = entry.file_name().into_string().expect("name");
        if name.starts_with("f_") && !name.starts_with("f_vmpp2_") {
            std::fs::copy(entry.path(), bad.join(&name)).expect("copy");
        }
    }
    let o = smr(&["terminology", "import-dmd", path(&bad), "--data-dir", data]);
    assert!(!o.status.success());
    assert!(text(&o).contains("no f_vmpp2_*.xml file"), "{}", text(&o));
    // …and a malformed one: named with its element, nothing replaced.
    let vmp = std::fs::read_to_string(r1.join("f_vmp2_3010419.xml")).expect("vmp");
    std::fs::copy(
        r1.join("f_vmpp2_3010419.xml"),
        bad.join("f_vmpp2_3010419.xml"),
    )
    .expect("copy");
    std::fs::write(
        bad.join("f_vmp2_3010419.xml"),
        vmp.replacen("<NM>Diclofenac 2.32% gel</NM>", "", 1),
    )
    .expect("write");
    let o = smr(&["terminology", "import-dmd", path(&bad), "--data-dir", data]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("f_vmp2_3010419.xml: <VMP> at byte"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("has no <NM>"), "{}", text(&o));
    let o = smr(&["terminology", "lookup", "12345", "--data-dir", data]);
    assert!(o.status.success(), "release 2 is intact: {}", text(&o));

    let o = smr(&["audit", "verify", "--data-dir", data]);
    assert!(o.status.success(), "{}", text(&o));
}

/// A running `smr serve` picks up a release that another process (`smr terminology
/// import-dmd` on the same data directory) imports, without a restart: the server compares
/// the store's release identifier with its own every few seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_server_picks_up_a_release_imported_beside_it() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let Some(root) = smr_testdata::shared("reference/dmd-xml") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let mut server = Command::new(env!("CARGO_BIN_EXE_smr"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--synthetic-patients",
            "0",
            "--no-demo-tokens",
        ])
        .arg("--data-dir")
        .arg(&data)
        .env("RUST_LOG", "info")
        .env_remove("SMR_DATABASE_URL")
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
            base = Some(line[at + "SMR FHIR API on ".len()..].trim().to_owned());
            break;
        }
    }
    // Keep reading the server's log so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let base = base.expect("the server's address");
    let token = smr(&[
        "token",
        "--role",
        "system",
        "--user",
        "t",
        "--org",
        "X26",
        "--data-dir",
        path(&data),
    ]);
    let token = String::from_utf8_lossy(&token.stdout)
        .trim()
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    let lookup =
        format!("{base}/CodeSystem/$lookup?system=https://dmd.nhs.uk&code=22480211000001104");
    // A plain HTTP/1.1 GET is all this needs (the server is on loopback, without TLS).
    let status = |url: String, token: String| async move {
        tokio::task::spawn_blocking(move || http_status(&url, &token))
            .await
            .unwrap_or(0)
    };
    assert_ne!(
        status(lookup.clone(), token.clone()).await,
        200,
        "the gel is not in the built-in dictionary"
    );

    let o = smr(&[
        "terminology",
        "import-dmd",
        path(&root.join("release-1")),
        "--data-dir",
        path(&data),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let started = std::time::Instant::now();
    let mut found = false;
    while started.elapsed() < std::time::Duration::from_secs(60) {
        if status(lookup.clone(), token.clone()).await == 200 {
            found = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let _ = server.kill();
    let _ = server.wait();
    assert!(found, "the server did not pick up the imported release");
}

/// The status code of `GET url` (an `http://host:port/path` URL) with a bearer token; 0 when
/// the request fails.
fn http_status(url: &str, token: &str) -> u16 {
    use std::io::{Read, Write};
    let Some(rest) = url.strip_prefix("http://") else {
        return 0;
    };
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Ok(mut stream) = std::net::TcpStream::connect(host) else {
        return 0;
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return 0;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}
