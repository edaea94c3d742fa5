//! The `safety-recheck` review of a stored record (`App::review_and_store`), on a fresh SQLite
//! store: what it writes as the record changes, and that a second run writes nothing.
//! (The feed-driven path, on both engines, is in smr-server's tests/safety.rs.)

use serde_json::{Value, json};
use smr_access::{Principal, RequestContext, Role, Scopes};
use smr_app::safety_recheck::ReviewWrites;
use smr_app::{App, WriteKind};
use smr_store::{Store, WriteOp, WriteOutcome};
use tempfile::TempDir;

async fn open() -> (TempDir, App) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/smr.db", dir.path().display());
    let store = Store::open(&url).await.expect("store");
    (dir, App::new(store))
}

fn system() -> RequestContext {
    RequestContext::new(
        Principal {
            user: "loader".into(),
            role: Role::System,
            organisation: None,
            setting: Role::System.default_setting(),
            setting_claimed: false,
            patient: None,
            scopes: Scopes::unrestricted(),
            name: None,
            issuer: "test".into(),
        },
        None,
        "t1".into(),
    )
}

async fn write(app: &App, op: WriteOp) -> String {
    let out = app
        .write(&system(), vec![op], WriteKind::Create)
        .await
        .expect("write");
    out.iter()
        .find_map(WriteOutcome::resource)
        .map(|r| r.id.clone())
        .expect("written")
}

fn create(resource: Value) -> WriteOp {
    WriteOp::Create {
        resource,
        full_url: None,
        if_none_exist: None,
    }
}

fn order(patient: &str, code: &str, status: &str) -> Value {
    json!({"resourceType": "MedicationRequest", "status": status, "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": "https://dmd.nhs.uk", "code": code}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "authoredOn": "2026-11-01T09:00:00+00:00"})
}

#[tokio::test]
async fn the_review_creates_closes_and_reopens_one_issue_per_problem() {
    let (_dir, app) = open().await;
    let patient = write(&app, create(json!({"resourceType": "Patient"}))).await;
    // Simvastatin 40 mg + clarithromycin: contraindicated (MHRA DSU 2012, Phansalkar 2012).
    write(&app, create(order(&patient, "320000009", "active"))).await;
    let clari = write(&app, create(order(&patient, "83999008", "active"))).await;

    let first = app.review_and_store(&patient).await.expect("review");
    assert_eq!(first.created, 1, "{first:?}");
    assert_eq!(
        app.review_and_store(&patient).await.expect("again"),
        ReviewWrites::default(),
        "nothing changed, nothing written"
    );

    let mut stopped = order(&patient, "83999008", "stopped");
    stopped["id"] = json!(clari);
    let update = |resource: Value| WriteOp::Update {
        resource,
        full_url: None,
        if_match: None,
        patched: false,
        condition: None,
    };
    write(&app, update(stopped)).await;
    let closing = app.review_and_store(&patient).await.expect("review");
    assert_eq!(closing.closed, 1, "{closing:?}");
    assert_eq!(
        app.review_and_store(&patient).await.expect("again"),
        ReviewWrites::default()
    );

    let mut restarted = order(&patient, "83999008", "active");
    restarted["id"] = json!(clari);
    write(&app, update(restarted)).await;
    let reopening = app.review_and_store(&patient).await.expect("review");
    assert_eq!(reopening.reopened, 1, "{reopening:?}");
}

#[tokio::test]
async fn a_new_rules_release_reviews_every_record_with_medicines_once() {
    use smr_app::safety_recheck::{SAFETY_RECHECK, SAFETY_RULES_SWEEP};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&format!("sqlite://{}/smr.db", dir.path().display()))
        .await
        .expect("store");
    let app = App::new(store.clone());

    // A store whose `safety-recheck` consumer has never run needs no sweep: the consumer's
    // first run starts at the feed's beginning and reviews everyone.
    assert_eq!(app.safety_rules_sweep_step().await.expect("sweep"), 0);
    let saved: Value = serde_json::from_str(
        &store
            .job_state(SAFETY_RULES_SWEEP)
            .await
            .expect("read")
            .expect("state saved"),
    )
    .expect("json");
    assert_eq!(saved["done"], json!(true), "{saved}");
    let current = saved["rules"].as_str().expect("rules version").to_owned();

    // Records the consumer has already passed (written under an earlier release of the
    // rules), and a sweep finished under that earlier release.
    let first = write(&app, create(json!({"resourceType": "Patient"}))).await;
    write(&app, create(order(&first, "320000009", "active"))).await;
    write(&app, create(order(&first, "83999008", "active"))).await;
    let second = write(&app, create(json!({"resourceType": "Patient"}))).await;
    write(&app, create(order(&second, "320000009", "active"))).await;
    let no_medicines = write(&app, create(json!({"resourceType": "Patient"}))).await;
    let head = store.feed_head().await.expect("head");
    store
        .save_consumer_position(SAFETY_RECHECK, head)
        .await
        .expect("position");
    store
        .save_job_state(
            SAFETY_RULES_SWEEP,
            r#"{"rules": "SMR bundled safety rules 2000-01-01", "after": null, "done": true}"#,
        )
        .await
        .expect("state");

    assert_eq!(
        app.safety_rules_sweep_step().await.expect("sweep"),
        2,
        "both patients with medicines reviewed, not {no_medicines}"
    );
    assert_eq!(
        app.review_and_store(&first).await.expect("review"),
        ReviewWrites::default(),
        "the sweep stored what the review finds (the interaction)"
    );
    assert_eq!(
        app.safety_rules_sweep_step().await.expect("sweep"),
        0,
        "finished: not run again for the same rules"
    );

    // A sweep interrupted after its first patient resumes after it.
    let lower = first.clone().min(second.clone());
    store
        .save_job_state(
            SAFETY_RULES_SWEEP,
            &json!({"rules": current, "after": lower, "done": false}).to_string(),
        )
        .await
        .expect("state");
    assert_eq!(app.safety_rules_sweep_step().await.expect("sweep"), 1);
}
