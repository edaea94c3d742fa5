//! The change feed on both engines: every version written appends a change in the same
//! transaction (a failed transaction appends none), consumers read changes in order from a
//! position kept in the store, and a saved position never moves back.

use serde_json::json;
use smr_store::{FeedPosition, Store, WriteOp};
use sqlx::Connection;

struct Fresh {
    store: Store,
    drop_pg: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Fresh {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("smr.db").display());
    Fresh {
        store: Store::open(&url).await.expect("open sqlite"),
        drop_pg: None,
        _dir: Some(dir),
    }
}

async fn postgres() -> Option<Fresh> {
    let admin = std::env::var("SMR_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())?;
    let name = format!("smr_feed_{}", uuid::Uuid::new_v4().simple());
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
    Some(Fresh {
        store: Store::open(&url).await.expect("open postgres"),
        drop_pg: Some((admin, name)),
        _dir: None,
    })
}

impl Fresh {
    async fn finish(self) {
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

fn patient(nhs: &str) -> WriteOp {
    WriteOp::Create {
        resource: json!({"resourceType": "Patient", "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}]}),
        full_url: None,
        if_none_exist: None,
    }
}

async fn feed(store: &Store) {
    let start = store.feed_head().await.expect("head");
    assert_eq!(
        store.changes_after(start, 100).await.expect("changes"),
        vec![]
    );

    store
        .transaction(vec![patient("9990000018"), patient("9990000026")])
        .await
        .expect("write");
    let changes = store.changes_after(start, 100).await.expect("changes");
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(
        changes
            .iter()
            .all(|c| c.res_type == "Patient" && c.action == "create" && c.version == 1)
    );
    assert!(changes[0].position < changes[1].position, "in order");
    assert_eq!(
        changes[0].patient_key, changes[0].id,
        "a Patient owns its record"
    );

    // A failed transaction (the second entry is invalid) appends nothing.
    let bad = WriteOp::Create {
        resource: json!({"resourceType": "Patient", "gender": 7}),
        full_url: None,
        if_none_exist: None,
    };
    assert!(
        store
            .transaction(vec![patient("9990000034"), bad])
            .await
            .is_err()
    );
    let after = changes[1].position;
    assert_eq!(
        store.changes_after(after, 100).await.expect("changes"),
        vec![]
    );

    // Update and delete are changes too.
    let id = changes[0].id.clone();
    let mut updated = json!({"resourceType": "Patient", "id": id, "gender": "female",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"}]});
    store
        .transaction(vec![WriteOp::Update {
            resource: updated.take(),
            full_url: None,
            if_match: None,
            condition: None,
            patched: false,
        }])
        .await
        .expect("update");
    let later = store.changes_after(after, 100).await.expect("changes");
    assert_eq!(
        later
            .iter()
            .map(|c| (c.action.as_str(), c.version))
            .collect::<Vec<_>>(),
        [("update", 2)]
    );

    // Paging by position visits each change once.
    let first = store.changes_after(start, 1).await.expect("page");
    let second = store
        .changes_after(first[0].position, 1)
        .await
        .expect("page");
    assert_eq!(second[0], changes[1]);

    // Positions are kept per consumer and never move back.
    assert_eq!(
        store.consumer_position("test").await.expect("pos"),
        FeedPosition::default()
    );
    store
        .save_consumer_position("test", changes[1].position)
        .await
        .expect("save");
    store
        .save_consumer_position("test", changes[0].position)
        .await
        .expect("save older");
    assert_eq!(
        store.consumer_position("test").await.expect("pos"),
        changes[1].position
    );
    assert_eq!(
        store.consumer_position("other").await.expect("pos"),
        FeedPosition::default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_change_feed() {
    let fresh = sqlite().await;
    feed(&fresh.store).await;
    fresh.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_change_feed() {
    let Some(fresh) = postgres().await else {
        eprintln!("SKIP postgres_change_feed: SMR_TEST_DATABASE_URL is not set");
        return;
    };
    feed(&fresh.store).await;
    fresh.finish().await;
}
