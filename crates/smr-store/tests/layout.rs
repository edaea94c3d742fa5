//! The PostgreSQL layout partitioned by patient (`smr_store::layout`): every table with a
//! `patient_key` is classified; partitioning keeps the rows already written and the store
//! goes on reading, searching, writing and auditing; it can be run twice; the embedded store
//! refuses it.

use serde_json::json;
use smr_fhir::query::{self, Handling};
use smr_store::layout::{NOT_BY_PATIENT, PATIENT_TABLES};
use smr_store::{Access, Store, StoreError, WriteOp};

mod support;

use support::{create, postgres, sqlite};

fn order(patient: &str, text: &str) -> serde_json::Value {
    json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"text": text},
        "subject": {"reference": format!("Patient/{patient}")}})
}

async fn orders_of(store: &Store, patient: &str) -> usize {
    let pairs = vec![("patient".to_owned(), patient.to_owned())];
    let request = query::parse("MedicationRequest", &pairs, Handling::Strict)
        .expect("search")
        .request;
    store
        .search(&request, &Access::unrestricted())
        .await
        .expect("search")
        .matches
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_patient_keyed_table_is_classified() {
    let Some(fresh) = postgres().await else {
        eprintln!("SKIP: SMR_TEST_DATABASE_URL is not set");
        return;
    };
    let unclassified = fresh
        .store
        .unclassified_patient_tables()
        .await
        .expect("catalog");
    assert!(
        unclassified.is_empty(),
        "tables with a patient_key in neither layout::PATIENT_TABLES nor NOT_BY_PATIENT: {unclassified:?}"
    );
    for (table, _) in NOT_BY_PATIENT {
        assert!(!PATIENT_TABLES.contains(table), "{table} is in both lists");
    }
    fresh.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_partitioning_keeps_the_record_and_the_store_working() {
    let Some(fresh) = postgres().await else {
        eprintln!("SKIP: SMR_TEST_DATABASE_URL is not set");
        return;
    };
    let store = &fresh.store;
    let before = create(
        store,
        json!({"resourceType": "Patient",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"}]}),
    )
    .await;
    create(store, order(&before, "Simvastatin 40mg tablets")).await;

    store.partition_by_patient(4).await.expect("partition");
    store.partition_by_patient(4).await.expect("a second run");
    for (table, parts) in store.patient_table_partitions().await.expect("catalog") {
        assert_eq!(parts, 4, "{table} is split into 4");
    }
    assert!(
        store
            .unclassified_patient_tables()
            .await
            .expect("catalog")
            .is_empty()
    );

    // The rows written before are where they were.
    assert_eq!(orders_of(store, &before).await, 1);
    // Writes and reads go on, for old and new patients alike, with history and audit.
    create(store, order(&before, "Amlodipine 5mg tablets")).await;
    assert_eq!(orders_of(store, &before).await, 2);
    let after = create(store, json!({"resourceType": "Patient"})).await;
    for n in 0..5 {
        create(store, order(&after, &format!("Medicine {n}"))).await;
    }
    assert_eq!(orders_of(store, &after).await, 5);
    let patient = store.read("Patient", &before).await.expect("read");
    assert_eq!(patient.version, 1);
    assert!(
        store
            .verify_audit()
            .await
            .is_ok_and(|v| matches!(v, smr_store::AuditVerification::Intact { .. })),
        "the audit chain survives the move"
    );
    // The NHS number is still unique across the record.
    let duplicate = store
        .transaction(vec![WriteOp::Create {
            resource: json!({"resourceType": "Patient",
                "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"}]}),
            full_url: None,
            if_none_exist: None,
        }])
        .await;
    assert!(
        duplicate.is_err(),
        "a second Patient with the same NHS number"
    );
    fresh.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_refuses_partitioning() {
    let fresh = sqlite().await;
    assert!(matches!(
        fresh.store.partition_by_patient(4).await,
        Err(StoreError::BadRequest(_))
    ));
    fresh.finish().await;
}
