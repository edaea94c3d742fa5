//! The store-level tests' fresh databases: a temporary SQLite file, or a new PostgreSQL
//! database on `SMR_TEST_DATABASE_URL` (absent: the PostgreSQL variant skips) dropped at the end.

#![allow(dead_code)]

use smr_store::{Store, WriteOp, WriteOutcome};
use sqlx::Connection;

pub struct Fresh {
    pub store: Store,
    drop_pg: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

pub async fn sqlite() -> Fresh {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("smr.db").display());
    Fresh {
        store: Store::open(&url).await.expect("open sqlite"),
        drop_pg: None,
        _dir: Some(dir),
    }
}

pub async fn postgres() -> Option<Fresh> {
    let admin = std::env::var("SMR_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())?;
    let name = format!("smr_store_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    conn.close().await.ok();
    let (head, tail) = admin
        .split_once('?')
        .map_or((admin.as_str(), None), |(h, q)| (h, Some(q)));
    let base = &head[..head.rfind('/').expect("database URL has a path")];
    let url = match tail {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    };
    let store = Store::open(&url).await.expect("open postgres");
    // `SMR_TEST_PG_LAYOUT=partitioned`: the layout that distributes on Citus (see
    // `smr_store::layout`), so every store test checks nothing needs a table whole.
    if std::env::var("SMR_TEST_PG_LAYOUT").is_ok_and(|v| v == "partitioned") {
        store
            .partition_by_patient(4)
            .await
            .expect("partition the test database by patient");
    }
    Some(Fresh {
        store,
        drop_pg: Some((admin, name)),
        _dir: None,
    })
}

impl Fresh {
    pub async fn finish(self) {
        self.store.close().await;
        if let Some((admin, name)) = self.drop_pg {
            let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await
            .expect("drop database");
        }
    }
}

/// Creates `resource` in its own transaction and returns its id.
pub async fn create(store: &Store, resource: serde_json::Value) -> String {
    let out = store
        .transaction(vec![WriteOp::Create {
            resource,
            full_url: None,
            if_none_exist: None,
        }])
        .await
        .expect("write");
    out.iter()
        .find_map(WriteOutcome::resource)
        .map(|r| r.id.clone())
        .expect("created")
}
