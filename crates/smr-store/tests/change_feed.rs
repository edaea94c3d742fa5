//! The change feed on both engines: every version written appends a change in the same
//! transaction (a failed transaction appends none), consumers read changes in order from a
//! position kept in the store, and a saved position never moves back.

use serde_json::json;
use smr_store::{FeedPosition, Store, WriteOp};

mod support;

use support::{postgres, sqlite};

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
    assert_eq!(
        store.feed_head().await.expect("head"),
        changes[1].position,
        "the head is the last change"
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
