//! `smr import FILE.hl7`: HL7 v2 messages from a file (blank-line separated, `\n` line ends,
//! as files are usually written) stored as the MLLP listener stores them: a refused message is
//! reported and the rest stored; a re-run adds nothing; without senders the import refuses to
//! start. SQLite and, when `SMR_TEST_DATABASE_URL` is set, PostgreSQL.

use std::path::Path;
use std::process::Command;

use crate::support;

use support::count;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../smr-server/tests/fixtures/hl7v2")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn import_file(engine: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(place) = support::StoreTarget::new(engine, dir.path(), "smr_hl7").await else {
        return;
    };
    let (target, url) = (place.args.clone(), place.url.clone());
    let text: String = ["adt-a01.hl7", "rde-unknown-code-system.hl7", "rde-o11.hl7"]
        .iter()
        .map(|f| format!("{}\n\n", fixture(f).replace('\r', "\n")))
        .collect();
    let file = dir.path().join("messages.hl7");
    std::fs::write(&file, text).expect("write");
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_smr"))
            .env_remove("SMR_DATABASE_URL")
            .env_remove("SMR_DATA_DIR")
            .arg("import")
            .args(&target)
            .args(extra)
            .arg(&file)
            .output()
            .expect("run smr import");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = run(&[]);
    assert_eq!(code, 1, "no senders: {err}");
    assert!(err.contains("--sender"), "{err}");
    for _ in 0..2 {
        let (code, out, err) = run(&["--sender", "RTH,hospital"]);
        assert_eq!(code, 2, "one message refused: {out} {err}");
        assert!(out.contains("2 messages stored"), "{out}");
        assert!(err.contains("messages.hl7#2: AE: RXE-2"), "{err}");
        assert_eq!(count(&url, "Patient").await, 1);
        assert_eq!(count(&url, "Encounter").await, 1);
        assert_eq!(count(&url, "MedicationRequest").await, 1);
    }
    place.finish().await;
}

#[tokio::test]
async fn sqlite_hl7v2_file_import() {
    import_file("sqlite").await;
}

#[tokio::test]
async fn postgres_hl7v2_file_import() {
    import_file("postgres").await;
}
