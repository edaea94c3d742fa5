//! `smr audit verify` on a tampered audit trail: it must name the first record that was
//! altered, removed, reordered or cut off, on SQLite and (when `SMR_TEST_DATABASE_URL` is
//! set) PostgreSQL. The tampering drops the append-only triggers first, as someone with
//! direct access to the database could.

use std::process::Command;

use smr_store::{AuditRecord, Store};
use sqlx::Connection;

fn smr() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smr"))
}

/// A store with ten chained audit records (seq 1..=10).
async fn store_with_records(url: &str) {
    let store = Store::open(url).await.expect("open store");
    for n in 0..10 {
        let id = format!("audit-{n}");
        store
            .append_audit(vec![AuditRecord {
                id: id.clone(),
                recorded: 1_000_000 + n,
                agent_user: Some("u".into()),
                agent_org: Some("A81001".into()),
                purpose: Some("TREAT".into()),
                outcome: "0".into(),
                patients: vec!["p1".into()],
                body: format!(r#"{{"resourceType":"AuditEvent","id":"{id}","note":"x{n}"}}"#),
            }])
            .await
            .expect("append");
    }
    store.close().await;
}

enum Target {
    Sqlite(tempfile::TempDir),
    Postgres { admin: String, database: String },
}

impl Target {
    fn url(&self) -> String {
        match self {
            Target::Sqlite(dir) => format!("sqlite://{}", dir.path().join("smr.db").display()),
            Target::Postgres { admin, database } => {
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
                format!("{base}/{database}")
            }
        }
    }

    fn verify(&self) -> (bool, String) {
        let mut cmd = smr();
        cmd.args(["audit", "verify"]).env_remove("SMR_DATABASE_URL");
        match self {
            Target::Sqlite(dir) => cmd.arg("--data-dir").arg(dir.path()),
            Target::Postgres { .. } => cmd.args(["--database-url", &self.url()]),
        };
        let out = cmd.output().expect("smr audit verify");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    async fn tamper(&self, statements: &[&str]) {
        let url = self.url();
        let drop_triggers: &[&str] = match self {
            Target::Sqlite(_) => &[
                "DROP TRIGGER IF EXISTS audit_log_no_update",
                "DROP TRIGGER IF EXISTS audit_log_no_delete",
            ],
            Target::Postgres { .. } => &["DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log"],
        };
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&url).await.expect("connect");
        for s in drop_triggers.iter().chain(statements) {
            sqlx::query(sqlx::AssertSqlSafe(s.to_string()))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        conn.close().await.ok();
    }

    async fn drop(self) {
        if let Target::Postgres { admin, database } = self
            && let Ok(mut c) = sqlx::PgConnection::connect(&admin).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
            )))
            .execute(&mut c)
            .await;
        }
    }
}

async fn fresh(engine: &str) -> Option<Target> {
    let target = match engine {
        "sqlite" => Target::Sqlite(tempfile::tempdir().expect("temp dir")),
        _ => {
            let admin = std::env::var("SMR_TEST_DATABASE_URL")
                .ok()
                .filter(|s| !s.is_empty())?;
            let database = format!("smr_audit_{}", uuid::Uuid::new_v4().simple());
            let mut c = sqlx::PgConnection::connect(&admin).await.expect("connect");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
                .execute(&mut c)
                .await
                .expect("create database");
            Target::Postgres { admin, database }
        }
    };
    store_with_records(&target.url()).await;
    Some(target)
}

async fn check(engine: &str, statements: &[&str], expected: &str) {
    let Some(target) = fresh(engine).await else {
        eprintln!("SKIP {engine}: SMR_TEST_DATABASE_URL is not set");
        return;
    };
    target.tamper(statements).await;
    let (ok, out) = target.verify();
    target.drop().await;
    assert!(!ok, "{engine}: tampering not detected: {out}");
    assert!(
        out.contains(expected),
        "{engine}: expected '{expected}', got: {out}"
    );
}

async fn all_cases(engine: &str) {
    let Some(target) = fresh(engine).await else {
        eprintln!("SKIP {engine}: SMR_TEST_DATABASE_URL is not set");
        return;
    };
    let (ok, out) = target.verify();
    target.drop().await;
    assert!(ok, "{engine}: an untouched chain verifies: {out}");
    assert!(out.contains("10 records"), "{out}");
    check(
        engine,
        &["UPDATE audit_log SET body = body || ' ' WHERE seq = 4"],
        "record 4 altered",
    )
    .await;
    check(
        engine,
        &["DELETE FROM audit_log WHERE seq = 6"],
        "record 6 removed",
    )
    .await;
    check(
        engine,
        &[
            "UPDATE audit_log SET seq = -1 WHERE seq = 3",
            "UPDATE audit_log SET seq = 3 WHERE seq = 7",
            "UPDATE audit_log SET seq = 7 WHERE seq = -1",
        ],
        "record 3 reordered",
    )
    .await;
    check(
        engine,
        &["DELETE FROM audit_log WHERE seq = 10"],
        "record 10 truncated",
    )
    .await;
    // Rewriting a record together with its own hash still breaks the link to the next one.
    check(
        engine,
        &["UPDATE audit_log SET hash = 'f00d', body = '{}' WHERE seq = 8"],
        "record 8 altered",
    )
    .await;
}

#[tokio::test]
async fn sqlite_tampering_is_named() {
    all_cases("sqlite").await;
}

#[tokio::test]
async fn postgres_tampering_is_named() {
    all_cases("postgres").await;
}
