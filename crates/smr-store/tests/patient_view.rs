//! A caller's view of one patient (`Store::patient_view`) and whether a Patient is on record
//! (`Store::patient_exists`), asked again and again as a busy server does, on both engines:
//! the answers follow every write that grants a care relationship or deletes a Patient, and
//! a relationship's end, even where SMR caches them (SQLite).

use serde_json::json;
use smr_store::{Access, PatientAccess, Store, WriteOp};

mod support;

use support::{create, postgres, sqlite};

const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

fn cared_for_by(ods: &str, at: i64) -> Access {
    Access {
        patients: PatientAccess::CaredFor(vec![format!("ods:{ods}")]),
        consent_actors: None,
        at,
    }
}

async fn allowed(store: &Store, patient: &str, access: &Access) -> bool {
    // Twice: the second answer may come from the cache and must agree with the first.
    let first = store.patient_view(patient, access).await.expect("view");
    let second = store.patient_view(patient, access).await.expect("view");
    assert_eq!(first, second, "a repeated view must give the same answer");
    first.allowed
}

async fn views_follow_writes_and_time(store: &Store) {
    let now = 1_800_000_000_000_000; // 2027-01-15, microseconds
    let patient = create(
        store,
        json!({"resourceType": "Patient",
            "generalPractitioner": [{"identifier": {"system": ODS, "value": "A81001"}}]}),
    )
    .await;
    assert!(allowed(store, &patient, &cared_for_by("A81001", now)).await);
    assert!(!allowed(store, &patient, &cared_for_by("RXX01", now)).await);

    // An admission gives the hospital access at once, although its refusal was just asked.
    let encounter = json!({"resourceType": "Encounter", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"reference": format!("Patient/{patient}")},
        "period": {"start": "2027-01-01T09:00:00Z", "end": "2027-01-05T12:00:00Z"},
        "serviceProvider": {"identifier": {"system": ODS, "value": "RXX01"}}});
    let until = smr_access::care::links(&encounter)[0]
        .valid_until
        .expect("a finished encounter's access ends");
    create(store, encounter).await;
    assert!(allowed(store, &patient, &cared_for_by("RXX01", now)).await);

    // The same question asked after the relationship ended is refused, cache or not.
    assert!(allowed(store, &patient, &cared_for_by("RXX01", until - 1)).await);
    assert!(!allowed(store, &patient, &cared_for_by("RXX01", until)).await);
    assert!(allowed(store, &patient, &cared_for_by("A81001", until + 1)).await);

    // Registration moved to another practice: the old one loses access.
    store
        .transaction(vec![WriteOp::Update {
            resource: json!({"resourceType": "Patient", "id": patient,
                "generalPractitioner": [{"identifier": {"system": ODS, "value": "B82002"}}]}),
            full_url: None,
            if_match: None,
            patched: false,
            condition: None,
        }])
        .await
        .expect("update");
    assert!(!allowed(store, &patient, &cared_for_by("A81001", now)).await);
    assert!(allowed(store, &patient, &cared_for_by("B82002", now)).await);
}

async fn existence_follows_writes(store: &Store) {
    assert!(!store.patient_exists("nobody").await.expect("exists"));
    let patient = create(store, json!({"resourceType": "Patient"})).await;
    assert!(store.patient_exists(&patient).await.expect("exists"));
    assert!(store.patient_exists(&patient).await.expect("exists"));
    store
        .transaction(vec![WriteOp::Delete {
            res_type: "Patient".into(),
            id: patient.clone(),
            if_match: None,
        }])
        .await
        .expect("delete");
    assert!(
        !store.patient_exists(&patient).await.expect("exists"),
        "a deleted Patient is no longer on record"
    );
}

macro_rules! on_both_engines {
    ($($name:ident => $body:ident;)*) => {
        mod sqlite_engine {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fresh = super::sqlite().await;
                    super::$body(&fresh.store).await;
                    fresh.finish().await;
                }
            )*
        }
        mod postgres_engine {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(fresh) = super::postgres().await else {
                        eprintln!("SKIP: SMR_TEST_DATABASE_URL is not set");
                        return;
                    };
                    super::$body(&fresh.store).await;
                    fresh.finish().await;
                }
            )*
        }
    };
}

on_both_engines! {
    views_follow_writes_and_time => views_follow_writes_and_time;
    existence_follows_writes => existence_follows_writes;
}
