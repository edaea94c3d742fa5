//! What the `smr import` tests share: a store for the real binary to write into (the data
//! directory of a SQLite store, or a fresh PostgreSQL database when `SMR_TEST_DATABASE_URL`
//! is set, dropped afterwards) and a count of what it holds.

#![allow(dead_code)]

use std::path::Path;

use smr_store::{Access, Store};
use sqlx::Connection;

/// Where the binary writes: its arguments (`--data-dir` or `--database-url`) and the store URL.
pub struct StoreTarget {
    pub args: Vec<String>,
    pub url: String,
    /// PostgreSQL: the admin URL and the database to drop.
    cleanup: Option<(String, String)>,
}

impl StoreTarget {
    /// A store on `engine` (`sqlite`: under `dir`; otherwise PostgreSQL, `None` and a SKIP
    /// notice when SMR_TEST_DATABASE_URL is not set). `prefix` names the test's database.
    pub async fn new(engine: &str, dir: &Path, prefix: &str) -> Option<StoreTarget> {
        if engine == "sqlite" {
            let data = dir.join("data");
            return Some(StoreTarget {
                args: vec!["--data-dir".into(), data.display().to_string()],
                url: format!("sqlite://{}", data.join("smr.db").display()),
                cleanup: None,
            });
        }
        let Some(admin) = std::env::var("SMR_TEST_DATABASE_URL")
            .ok()
            .filter(|s| !s.is_empty())
        else {
            eprintln!("SKIP postgres: SMR_TEST_DATABASE_URL is not set");
            return None;
        };
        let database = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut c = sqlx::PgConnection::connect(&admin).await.expect("connect");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&mut c)
            .await
            .expect("create database");
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let url = format!("{base}/{database}");
        Some(StoreTarget {
            args: vec!["--database-url".into(), url.clone()],
            url,
            cleanup: Some((admin, database)),
        })
    }

    /// Drops a PostgreSQL test database (nothing for SQLite: its directory is temporary).
    pub async fn finish(self) {
        if let Some((admin, database)) = self.cleanup
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

/// How many current resources of `ty` the store at `url` holds.
pub async fn count(url: &str, ty: &str) -> i64 {
    let store = Store::open(url).await.expect("open store");
    let pairs = vec![
        ("_total".to_owned(), "accurate".to_owned()),
        ("_count".to_owned(), "1".to_owned()),
    ];
    let request = smr_fhir::query::parse(ty, &pairs, smr_fhir::query::Handling::Strict)
        .expect("query")
        .request;
    let page = store
        .search(&request, &Access::unrestricted())
        .await
        .expect("search");
    store.close().await;
    page.total.expect("total")
}
