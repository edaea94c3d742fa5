//! `smr serve` with a TLS certificate or key it cannot use stops at once with an error naming
//! the file, before it opens the store.

use std::process::Command;

fn serve(data_dir: &std::path::Path, tls_args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_smr"))
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0", "--synthetic-patients", "0"])
        .args(tls_args)
        .env_remove("SMR_TLS_CERT")
        .env_remove("SMR_TLS_KEY")
        .env_remove("SMR_DATABASE_URL")
        .output()
        .expect("run smr")
}

#[test]
fn an_unreadable_certificate_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let cert = dir.path().join("no-such-cert.pem");
    let key = dir.path().join("no-such-key.pem");
    let out = serve(
        &data,
        &[
            "--tls-cert".as_ref(),
            cert.as_os_str(),
            "--tls-key".as_ref(),
            key.as_os_str(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started: {stderr}");
    assert!(stderr.contains("no-such-cert.pem"), "{stderr}");
    assert!(
        !data.join("smr.db").exists(),
        "the store was opened before the TLS files were checked"
    );
}

#[test]
fn a_certificate_without_a_key_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cert = dir.path().join("cert.pem");
    let out = serve(
        &dir.path().join("data"),
        &["--tls-cert".as_ref(), cert.as_os_str()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started: {stderr}");
    assert!(stderr.contains("--tls-key"), "{stderr}");
}
