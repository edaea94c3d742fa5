//! A fresh database per run: a temporary SQLite file, or a new PostgreSQL database that is
//! dropped afterwards.

use axum::Router;
use clap::ValueEnum;
use smr_server::{AppState, ServerConfig, router};
use smr_store::Store;
use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    Sqlite,
    Postgres,
}

impl EngineArg {
    pub fn name(self) -> &'static str {
        match self {
            EngineArg::Sqlite => "sqlite",
            EngineArg::Postgres => "postgres",
        }
    }
}

/// A fresh, empty database (schema not yet created) and how to remove it.
pub struct FreshDb {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, database: String },
}

impl FreshDb {
    pub async fn create(engine: EngineArg, admin_url: &str) -> anyhow::Result<FreshDb> {
        match engine {
            EngineArg::Sqlite => {
                let dir = tempfile::Builder::new().prefix("smr-bench-").tempdir()?;
                let url = format!("sqlite://{}", dir.path().join("smr.db").display());
                Ok(FreshDb {
                    url,
                    cleanup: Cleanup::Dir(dir),
                })
            }
            EngineArg::Postgres => {
                let database = format!("smr_bench_{}", uuid::Uuid::new_v4().simple());
                let mut admin = sqlx::PgConnection::connect(admin_url).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
                    .execute(&mut admin)
                    .await?;
                admin.close().await?;
                let url = with_database(admin_url, &database);
                Ok(FreshDb {
                    url,
                    cleanup: Cleanup::Postgres {
                        admin_url: admin_url.to_owned(),
                        database,
                    },
                })
            }
        }
    }

    /// Removes the database (the SQLite directory goes when dropped).
    pub async fn drop_db(self) -> anyhow::Result<()> {
        if let Cleanup::Postgres {
            admin_url,
            database,
        } = &self.cleanup
        {
            let mut admin = sqlx::PgConnection::connect(admin_url).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await?;
            admin.close().await?;
        }
        Ok(())
    }
}

/// The bearer token every benchmark request sends.
pub static BENCH_TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The key that signs [`BENCH_TOKEN`].
static BENCH_ISSUER: std::sync::OnceLock<smr_auth::LocalIssuer> = std::sync::OnceLock::new();

/// The store and the real router over it, on a fresh database.
pub struct Target {
    pub store: Store,
    pub router: Router,
    pub db: FreshDb,
}

impl Target {
    pub async fn open(engine: EngineArg, admin_url: &str) -> anyhow::Result<Target> {
        let db = FreshDb::create(engine, admin_url).await?;
        let store = Store::open(&db.url).await?;
        let config = ServerConfig {
            base_url: Some("http://smr.bench/fhir".into()),
            ..ServerConfig::default()
        };
        // Requests carry a back-end system's token: authentication, the access decision and
        // the audit record are part of what is measured.
        // One issuer per process: `BENCH_TOKEN` is signed once, and every target (a scenario
        // of `all`, a size of `page-growth`) must trust it.
        if BENCH_ISSUER.get().is_none() {
            let _ = BENCH_ISSUER.set(smr_auth::LocalIssuer::generate()?);
        }
        let issuer = BENCH_ISSUER
            .get()
            .ok_or_else(|| anyhow::anyhow!("no signing key"))?;
        let verifier = std::sync::Arc::new(smr_auth::Verifier::new(smr_auth::DEFAULT_AUDIENCE));
        verifier.trust_local(issuer);
        let token = issuer.issue(&smr_auth::TokenRequest {
            org: Some("X26".into()),
            ttl: std::time::Duration::from_secs(24 * 3600),
            ..smr_auth::TokenRequest::new("smr-bench", smr_access::Role::System)
        })?;
        let _ = BENCH_TOKEN.set(token);
        let app = smr_app::App::new(store.clone());
        let router = router(AppState::new(app, verifier, config));
        Ok(Target { store, router, db })
    }

    pub async fn close(self) -> anyhow::Result<()> {
        self.store.close().await;
        drop(self.router);
        self.db.drop_db().await
    }
}

/// Replaces the database name (path) of a postgres URL.
fn with_database(url: &str, database: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let scheme_end = head.find("://").map_or(0, |i| i + 3);
    let host_end = head[scheme_end..]
        .find('/')
        .map_or(head.len(), |i| scheme_end + i);
    let mut out = format!("{}/{database}", &head[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_is_replaced() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
