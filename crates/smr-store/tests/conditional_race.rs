//! Conditional writes under contention, straight on the store (no HTTP, no tokens: as many
//! writers in the race window as the database takes). On PostgreSQL, READ COMMITTED lets two
//! transactions both find no match and both insert; SMR serialises on the criteria. On SQLite
//! the single writer serialises already; the test runs there too, so both engines keep the
//! behaviour.

use serde_json::{Value, json};
use smr_fhir::query::{self, Handling};
use smr_store::{Store, StoreError, WriteOp, WriteOutcome};

const RACERS: usize = 32;
const SYSTEM: &str = "https://fhir.nhs.uk/Id/prescription-order-item-number";

mod support;

use support::{postgres, sqlite};

fn criteria(value: &str) -> query::SearchRequest {
    let pairs = vec![("identifier".to_owned(), format!("{SYSTEM}|{value}"))];
    query::parse("MedicationRequest", &pairs, Handling::Strict)
        .expect("criteria")
        .request
}

fn order(patient: &str, value: &str) -> Value {
    json!({
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "identifier": [{"system": SYSTEM, "value": value}],
        "medicationCodeableConcept": {"text": "Simvastatin 40mg tablets"},
        "subject": {"reference": format!("Patient/{patient}")}
    })
}

async fn patient(store: &Store) -> String {
    let outcome = store
        .transaction(vec![WriteOp::Create {
            resource: json!({"resourceType": "Patient", "gender": "female"}),
            full_url: None,
            if_none_exist: None,
        }])
        .await
        .expect("patient");
    match &outcome[0] {
        WriteOutcome::Created(r) => r.id.clone(),
        other => panic!("{other:?}"),
    }
}

async fn count(store: &Store, value: &str) -> usize {
    let mut search = criteria(value);
    search.count = 100;
    store
        .search(&search, &smr_store::Access::unrestricted())
        .await
        .expect("search")
        .matches
        .len()
}

async fn racing_conditional_creates(store: &Store) {
    let pid = patient(store).await;
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let store = store.clone();
            let op = WriteOp::Create {
                resource: order(&pid, "create-race"),
                full_url: None,
                if_none_exist: Some(criteria("create-race")),
            };
            tokio::spawn(async move { store.transaction(vec![op]).await })
        })
        .collect();
    let mut created = 0;
    for racer in racers {
        match racer.await.expect("racer").expect("write").pop() {
            Some(WriteOutcome::Created(_)) => created += 1,
            Some(WriteOutcome::Existing(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(created, 1, "one of {RACERS} racers creates");
    assert_eq!(count(store, "create-race").await, 1, "no duplicate");
}

/// Each racer resolved the criteria to "no match" and chose its own new id; the store must
/// let exactly one of them create and refuse the rest (they resolve again and update).
async fn racing_conditional_updates(store: &Store) {
    let pid = patient(store).await;
    let racers: Vec<_> = (0..RACERS)
        .map(|n| {
            let store = store.clone();
            let mut resource = order(&pid, "update-race");
            resource["id"] = json!(format!("racer-{n}"));
            let op = WriteOp::Update {
                resource,
                full_url: None,
                if_match: None,
                patched: false,
                condition: Some(criteria("update-race")),
            };
            tokio::spawn(async move { store.transaction(vec![op]).await })
        })
        .collect();
    let mut created = 0;
    for racer in racers {
        match racer.await.expect("racer") {
            Ok(_) => created += 1,
            Err(e) => assert!(
                matches!(e.error, StoreError::PreconditionFailed(_)),
                "{e:?}"
            ),
        }
    }
    assert_eq!(created, 1, "one of {RACERS} racers creates");
    assert_eq!(count(store, "update-race").await, 1, "no duplicate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conditional_creates_race_free_on_sqlite() {
    let fresh = sqlite().await;
    racing_conditional_creates(&fresh.store).await;
    fresh.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conditional_updates_race_free_on_sqlite() {
    let fresh = sqlite().await;
    racing_conditional_updates(&fresh.store).await;
    fresh.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conditional_creates_race_free_on_postgres() {
    let Some(fresh) = postgres().await else {
        eprintln!("SKIP: SMR_TEST_DATABASE_URL is not set");
        return;
    };
    racing_conditional_creates(&fresh.store).await;
    fresh.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conditional_updates_race_free_on_postgres() {
    let Some(fresh) = postgres().await else {
        eprintln!("SKIP: SMR_TEST_DATABASE_URL is not set");
        return;
    };
    racing_conditional_updates(&fresh.store).await;
    fresh.finish().await;
}
