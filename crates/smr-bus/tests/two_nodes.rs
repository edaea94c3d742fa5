//! Two SMR nodes on one PostgreSQL database and the machine's NATS JetStream: a websocket
//! Subscription held on node A hears of a write made on node B, and the bus carries
//! identifiers only. With the bus on, neither node's own feed loop runs Subscriptions, so the
//! notification can only have come through NATS.
//!
//! Needs SMR_TEST_DATABASE_URL (skipped without it, like every PostgreSQL test) and NATS at
//! SMR_TEST_NATS_URL (default nats://127.0.0.1:4222): skipped when it is not reachable, failed
//! instead when SMR_REQUIRE_NATS is set (as `.ci/run` does).

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use smr_app::{App, WriteKind};
use smr_bus::BusConfig;
use smr_store::{Store, WriteOp};
use sqlx::Connection;

const PATIENT: &str = include_str!("../../smr-server/tests/fixtures/patient.json");
const ORDER: &str = include_str!("../../smr-server/tests/fixtures/medication-request.json");

async fn nats_url() -> Option<String> {
    let url = std::env::var("SMR_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    match tokio::time::timeout(Duration::from_secs(5), async_nats::connect(&url)).await {
        Ok(Ok(_)) => Some(url),
        outcome => {
            let reason = match outcome {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".into(),
            };
            assert!(
                std::env::var_os("SMR_REQUIRE_NATS").is_none(),
                "NATS at {url} is required (SMR_REQUIRE_NATS) but not reachable: {reason}"
            );
            eprintln!("SKIP: NATS at {url} is not reachable ({reason})");
            None
        }
    }
}

async fn create(app: &App, resource: Value) -> String {
    let ctx = smr_app::pgx::system_context("two-nodes-test".into());
    let op = WriteOp::Create {
        resource,
        full_url: None,
        if_none_exist: None,
    };
    let outcomes = app
        .write(&ctx, vec![op], WriteKind::Create)
        .await
        .expect("write");
    outcomes[0].resource().expect("created").id.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_on_node_a_hears_a_write_on_node_b() {
    let Some(admin_url) = std::env::var("SMR_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        eprintln!("SKIP: SMR_TEST_DATABASE_URL is not set");
        return;
    };
    let Some(nats) = nats_url().await else {
        return;
    };
    let database = format!("smr_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("connect");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await
        .expect("create database");
    let url = match admin_url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{database}"),
        None => panic!("SMR_TEST_DATABASE_URL has no database"),
    };

    let node_a = App::new(Store::open(&url).await.expect("node A store"));
    let node_b = App::new(Store::open(&url).await.expect("node B store"));
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let config = BusConfig {
        url: nats.clone(),
        stream: format!("SMR_TEST_{unique}"),
        subject_prefix: format!("smrtest.{unique}"),
    };
    let bus_a = smr_bus::start(node_a.clone(), config.clone())
        .await
        .expect("node A on the bus");
    let bus_b = smr_bus::start(node_b.clone(), config.clone())
        .await
        .expect("node B on the bus");
    let feed_a = node_a.start_feed_consumers();
    let feed_b = node_b.start_feed_consumers();
    let client = async_nats::connect(&nats).await.expect("NATS");
    let mut raw = client
        .subscribe(format!("smrtest.{unique}.MedicationRequest.>"))
        .await
        .expect("subscribe");
    let mut pings = node_a.subscription_pings();

    // Everything is written on node B.
    let patient = create(&node_b, serde_json::from_str(PATIENT).unwrap()).await;
    let subscription = create(
        &node_b,
        json!({
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "ward view",
            "criteria": format!("MedicationRequest?patient={patient}"),
            "channel": {"type": "websocket"}
        }),
    )
    .await;
    let mut order: Value = serde_json::from_str(ORDER).unwrap();
    order["subject"]["reference"] = json!(format!("Patient/{patient}"));
    let order_id = create(&node_b, order).await;

    // Node A pings its websockets for the subscription.
    let ping = tokio::time::timeout(Duration::from_secs(30), pings.recv())
        .await
        .expect("a ping on node A within 30 s")
        .expect("ping");
    assert_eq!(ping.subscription, subscription);

    // The message on the bus names the change and nothing of its content.
    let message = tokio::time::timeout(Duration::from_secs(30), raw.next())
        .await
        .expect("a message within 30 s")
        .expect("message");
    assert_eq!(
        message.subject.as_str(),
        format!("smrtest.{unique}.MedicationRequest.{patient}")
    );
    let body: Value = serde_json::from_slice(&message.payload).expect("JSON");
    assert_eq!(body["id"], json!(order_id));
    assert_eq!(body["patient"], json!(patient));
    assert!(body.get("medicationCodeableConcept").is_none());
    assert!(!String::from_utf8_lossy(&message.payload).contains("dosage"));

    drop((feed_a, feed_b, bus_a, bus_b));
    let js = async_nats::jetstream::new(client);
    js.delete_stream(&config.stream).await.ok();
    node_a.close().await;
    node_b.close().await;
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await;
}
