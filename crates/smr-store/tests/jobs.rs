//! Long-running jobs' support on both engines: saved state replaced whole, and the keyset walk
//! over patients with entries of some types (in key order, resumable, deleted entries and
//! shared resources left out).

use serde_json::json;
use smr_store::{Store, WriteOp};

mod support;

use support::{create, postgres, sqlite};

fn order(patient: &str) -> serde_json::Value {
    json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"text": "Simvastatin 40mg tablets"},
        "subject": {"reference": format!("Patient/{patient}")}})
}

async fn jobs(store: &Store) {
    assert_eq!(store.job_state("sweep").await.expect("read"), None);
    store.save_job_state("sweep", "one").await.expect("save");
    store.save_job_state("sweep", "two").await.expect("save");
    assert_eq!(
        store.job_state("sweep").await.expect("read").as_deref(),
        Some("two"),
        "a saved state replaces the last"
    );
    assert_eq!(store.job_state("other").await.expect("read"), None);

    let mut with_orders = Vec::new();
    for _ in 0..3 {
        let patient = create(store, json!({"resourceType": "Patient"})).await;
        create(store, order(&patient)).await;
        with_orders.push(patient);
    }
    create(store, json!({"resourceType": "Patient"})).await;
    create(
        store,
        json!({"resourceType": "Medication", "code": {"text": "shared"}}),
    )
    .await;
    let deleted = create(store, json!({"resourceType": "Patient"})).await;
    let deleted_order = create(store, order(&deleted)).await;
    store
        .transaction(vec![WriteOp::Delete {
            res_type: "MedicationRequest".into(),
            id: deleted_order,
            if_match: None,
        }])
        .await
        .expect("delete");
    with_orders.sort();

    let types = ["MedicationRequest", "MedicationStatement"];
    assert_eq!(
        store
            .patients_with_types(&types, None, 100)
            .await
            .expect("walk"),
        with_orders,
        "every patient with a current order, once each, in key order"
    );
    let page = store
        .patients_with_types(&types, None, 2)
        .await
        .expect("walk");
    assert_eq!(page, with_orders[..2]);
    assert_eq!(
        store
            .patients_with_types(&types, page.last().map(String::as_str), 2)
            .await
            .expect("walk"),
        with_orders[2..],
        "resumed after the last key"
    );
    assert!(
        store
            .patients_with_types(&["MedicationDispense"], None, 100)
            .await
            .expect("walk")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_jobs() {
    let fresh = sqlite().await;
    jobs(&fresh.store).await;
    fresh.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_jobs() {
    let Some(fresh) = postgres().await else {
        eprintln!("SKIP postgres_jobs: SMR_TEST_DATABASE_URL is not set");
        return;
    };
    jobs(&fresh.store).await;
    fresh.finish().await;
}
