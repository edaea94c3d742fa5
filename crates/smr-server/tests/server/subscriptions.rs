//! R4 Subscriptions (issue 9): who may hold one, the rest-hook allow-list, signed rest-hook
//! notifications driven by the change feed, a failing endpoint going to `error`, and the
//! websocket binding (`bind` / `bound` / `ping`) over a real socket. Each test runs on SQLite
//! and, when SMR_TEST_DATABASE_URL is set, on PostgreSQL.

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use smr_access::Role;
use smr_app::subscriptions::{SubscriptionPolicy, sign, unhex};
use smr_server::ServerConfig;
use support::{TestApp, eventually, fixture_order, fixture_patient};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// What a hook receiver was sent.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: String,
}

/// A local HTTP endpoint that records POSTs and answers `status`.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

async fn receiver(status: StatusCode) -> Receiver {
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let sink = Arc::clone(&received);
    let router = axum::Router::new().route(
        "/hooks/{*rest}",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let sink = Arc::clone(&sink);
            async move {
                sink.lock().unwrap().push(Received { headers, body });
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.ok();
    });
    Receiver {
        url: format!("http://{addr}/hooks/"),
        received,
    }
}

fn config(allowed: &str) -> ServerConfig {
    ServerConfig {
        subscriptions: SubscriptionPolicy {
            allowed_endpoints: vec![allowed.to_owned()],
            retry_delays: vec![Duration::from_millis(10), Duration::from_millis(10)],
            signing_key: b"test signing key".to_vec(),
        },
        ..ServerConfig::default()
    }
}

fn rest_hook(patient: &str, criteria_extra: &str, endpoint: &str) -> Value {
    json!({
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "Tell the ward system about new orders",
        "criteria": format!("MedicationRequest?patient=Patient/{patient}{criteria_extra}"),
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "header": ["Authorization: Bearer receiver-token"]
        }
    })
}

fn websocket_subscription(patient: &str) -> Value {
    json!({
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "Live view of the patient's orders",
        "criteria": format!("MedicationRequest?patient={patient}"),
        "channel": {"type": "websocket"}
    })
}

/// Runs `body` on a fresh SQLite store and, when configured, a fresh PostgreSQL database,
/// each made with the configuration `make` gives for the receiver's URL.
macro_rules! on_both_engines {
    ($($name:ident => $body:ident;)*) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$body(|config| async move { Some(super::support::sqlite_app_with(config).await) }).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$body(|config| async move {
                        let app = super::support::postgres_app_with(config).await;
                        if app.is_none() {
                            eprintln!("SKIP postgres::{}: SMR_TEST_DATABASE_URL is not set", stringify!($name));
                        }
                        app
                    }).await;
                }
            )*
        }
    };
}

on_both_engines! {
    accepts_refuses_and_authorises_subscriptions => accepts_refuses_and_authorises;
    rest_hook_notifications_are_signed_and_match_the_criteria => rest_hook_notifications;
    failing_endpoint_sets_the_subscription_to_error => failing_endpoint;
    websocket_binding_pings_on_a_write => websocket_binding;
}

async fn accepts_refuses_and_authorises<F, Fut>(make: F)
where
    F: FnOnce(ServerConfig) -> Fut,
    Fut: std::future::Future<Output = Option<TestApp>>,
{
    let allowed = "http://127.0.0.1:9/hooks/";
    let Some(app) = make(config(allowed)).await else {
        return;
    };
    let patient = fixture_patient(&app).await;

    // Accepted, and SMR sets it active.
    let reply = app
        .post(
            "/fhir/Subscription",
            &rest_hook(&patient, "", "http://127.0.0.1:9/hooks/a"),
        )
        .await
        .expect(StatusCode::CREATED);
    let created = reply.json();
    assert_eq!(created["status"], "active");
    let id = created["id"].as_str().unwrap().to_owned();

    // An endpoint outside the allow-list: 422, nothing stored.
    for endpoint in [
        "https://elsewhere.example/hooks/a",
        "http://127.0.0.1:9/other",
        "http://127.0.0.1:9@evil.example/hooks/",
    ] {
        let reply = app
            .post("/fhir/Subscription", &rest_hook(&patient, "", endpoint))
            .await
            .expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reply.json()["resourceType"], "OperationOutcome");
        assert!(reply.text.contains("allow-list"), "{}", reply.text);
    }
    // Criteria that name no patient, or an unsupported channel: 422.
    let mut no_patient = rest_hook(&patient, "", "http://127.0.0.1:9/hooks/a");
    no_patient["criteria"] = json!("MedicationRequest?status=active");
    app.post("/fhir/Subscription", &no_patient)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    let mut email = websocket_subscription(&patient);
    email["channel"] = json!({"type": "email", "endpoint": "mailto:a@example.nhs.uk"});
    app.post("/fhir/Subscription", &email)
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    let listed = app
        .get("/fhir/Subscription")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(
        listed["entry"].as_array().map_or(0, Vec::len),
        1,
        "{listed}"
    );

    // A clinician with no care relationship may neither subscribe nor read one.
    let stranger = app.as_user("dr-stranger", Role::Gp, Some("Y99999"));
    stranger
        .post("/fhir/Subscription", &websocket_subscription(&patient))
        .await
        .expect(StatusCode::FORBIDDEN);
    stranger
        .get(&format!("/fhir/Subscription/{id}"))
        .await
        .expect(StatusCode::FORBIDDEN);
    stranger
        .get(&format!("/fhir/Subscription/{id}/$secret"))
        .await
        .expect(StatusCode::FORBIDDEN);
    stranger
        .delete(&format!("/fhir/Subscription/{id}"))
        .await
        .expect(StatusCode::FORBIDDEN);
    // Listing every Subscription is for back-end systems.
    stranger
        .get("/fhir/Subscription")
        .await
        .expect(StatusCode::FORBIDDEN);

    // A patient may subscribe to their own record, not to another's.
    let own = app.as_patient(&patient);
    own.post("/fhir/Subscription", &websocket_subscription(&patient))
        .await
        .expect(StatusCode::CREATED);
    let other = app.as_patient("someone-else");
    other
        .post("/fhir/Subscription", &websocket_subscription(&patient))
        .await
        .expect(StatusCode::FORBIDDEN);

    // The CapabilityStatement says where the websocket binding is.
    let cs = app
        .get("/fhir/metadata")
        .await
        .expect(StatusCode::OK)
        .json();
    let ws = cs["rest"][0]["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["url"] == "http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket"
        })
        .expect("websocket extension");
    assert_eq!(ws["valueUri"], "ws://smr.test/fhir/websocket");
    app.finish().await;
}

async fn rest_hook_notifications<F, Fut>(make: F)
where
    F: FnOnce(ServerConfig) -> Fut,
    Fut: std::future::Future<Output = Option<TestApp>>,
{
    let hooks = receiver(StatusCode::OK).await;
    let Some(app) = make(config(&hooks.url)).await else {
        return;
    };
    let patient = fixture_patient(&app).await;
    let other = support::named_patient(&app, "9434765870", "Other").await;
    let sub = app
        .post(
            "/fhir/Subscription",
            &rest_hook(&patient, "&status=active", &format!("{}ward", hooks.url)),
        )
        .await
        .expect(StatusCode::CREATED)
        .json();
    let id = sub["id"].as_str().unwrap().to_owned();
    // The subscription is running once the consumer has read it; orders before that are
    // not the point of this test, so wait for the feed to pass the Subscription's write.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Not matching: another patient's order, and this patient's draft order.
    app.post("/fhir/MedicationRequest", &fixture_order(&other))
        .await
        .expect(StatusCode::CREATED);
    let mut draft = fixture_order(&patient);
    draft["status"] = json!("draft");
    app.post("/fhir/MedicationRequest", &draft)
        .await
        .expect(StatusCode::CREATED);
    // Matching.
    let mut active = fixture_order(&patient);
    active["status"] = json!("active");
    let order = app
        .post("/fhir/MedicationRequest", &active)
        .await
        .expect(StatusCode::CREATED)
        .json();
    let order_id = order["id"].as_str().unwrap();

    let got = eventually(|| {
        let received = Arc::clone(&hooks.received);
        async move { received.lock().unwrap().first().cloned() }
    })
    .await;
    let header = |name: &str| {
        got.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("x-smr-subscription"), id);
    assert!(
        header("x-smr-resource").starts_with(&format!("MedicationRequest/{order_id}/_history/"))
    );
    assert_eq!(header("authorization"), "Bearer receiver-token");
    assert_eq!(header("content-type"), "application/fhir+json");
    assert!(!header("x-smr-event").is_empty());
    let body: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(body["id"], order_id);

    // The signature checks with the secret `$secret` gives the subscription's owner.
    let params = app
        .get(&format!("/fhir/Subscription/{id}/$secret"))
        .await
        .expect(StatusCode::OK)
        .json();
    let secret = params["parameter"][0]["valueString"].as_str().unwrap();
    let expected = sign(&unhex(secret).unwrap(), got.body.as_bytes());
    assert_eq!(header("x-smr-signature"), format!("sha256={expected}"));

    // Only the matching order was sent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hooks.received.lock().unwrap().len(), 1);
    app.finish().await;
}

async fn failing_endpoint<F, Fut>(make: F)
where
    F: FnOnce(ServerConfig) -> Fut,
    Fut: std::future::Future<Output = Option<TestApp>>,
{
    let hooks = receiver(StatusCode::INTERNAL_SERVER_ERROR).await;
    let Some(app) = make(config(&hooks.url)).await else {
        return;
    };
    let patient = fixture_patient(&app).await;
    let mut sub = rest_hook(&patient, "", &format!("{}broken", hooks.url));
    sub["channel"].as_object_mut().unwrap().remove("payload");
    let id = app
        .post("/fhir/Subscription", &sub)
        .await
        .expect(StatusCode::CREATED)
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.post("/fhir/MedicationRequest", &fixture_order(&patient))
        .await
        .expect(StatusCode::CREATED);
    let failed = eventually(|| {
        let app = &app;
        let id = id.clone();
        async move {
            let s = app.get(&format!("/fhir/Subscription/{id}")).await.json();
            (s["status"] == "error").then_some(s)
        }
    })
    .await;
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("500"), "{error}");
    // First attempt and both retries, with an empty body.
    let received = hooks.received.lock().unwrap().clone();
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|r| r.body.is_empty()));
    app.finish().await;
}

async fn websocket_binding<F, Fut>(make: F)
where
    F: FnOnce(ServerConfig) -> Fut,
    Fut: std::future::Future<Output = Option<TestApp>>,
{
    let Some(app) = make(config("http://127.0.0.1:9/hooks/")).await else {
        return;
    };
    let patient = fixture_patient(&app).await;
    let id = app
        .post("/fhir/Subscription", &websocket_subscription(&patient))
        .await
        .expect(StatusCode::CREATED)
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A real socket: the websocket upgrade needs one.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(smr_server::serve(
        listener,
        app.router.clone(),
        smr_server::ConnectionTimeouts::default(),
        async {
            stopped.await.ok();
        },
    ));
    let connect = |token: String| async move {
        let mut request = format!("ws://{addr}/fhir/websocket")
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        tokio_tungstenite::connect_async(request)
            .await
            .map(|(ws, _)| ws)
    };
    // Without a token: no upgrade.
    let mut anonymous = format!("ws://{addr}/fhir/websocket")
        .into_client_request()
        .unwrap();
    anonymous.headers_mut().remove("authorization");
    assert!(
        within(
            "refused upgrade",
            tokio_tungstenite::connect_async(anonymous)
        )
        .await
        .is_err()
    );

    // A stranger's bind is refused.
    let stranger = support::issue(
        &app.issuer,
        smr_auth::TokenRequest {
            org: Some("Y99999".into()),
            ..smr_auth::TokenRequest::new("dr-stranger", Role::Gp)
        },
    );
    let mut ws = within("upgrade", connect(stranger)).await.expect("upgrade");
    ws.send(Message::Text(format!("bind {id}").into()))
        .await
        .unwrap();
    let answer = next_text(&mut ws).await;
    assert!(answer.starts_with(&format!("error {id}")), "{answer}");
    drop(ws);

    // The patient binds, then hears of a write to their orders.
    let token = support::issue(
        &app.issuer,
        smr_auth::TokenRequest {
            patient: Some(patient.clone()),
            ..smr_auth::TokenRequest::new(format!("patient-{patient}"), Role::Patient)
        },
    );
    let mut ws = within("upgrade", connect(token)).await.expect("upgrade");
    ws.send(Message::Text(format!("bind {id}").into()))
        .await
        .unwrap();
    assert_eq!(next_text(&mut ws).await, format!("bound {id}"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.post("/fhir/MedicationRequest", &fixture_order(&patient))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(next_text(&mut ws).await, format!("ping {id}"));

    drop(ws);
    stop.send(()).ok();
    within("server shutdown", server).await.ok();
    within("store close", app.finish()).await;
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text message (WebSocket pings and pongs skipped).
async fn next_text(ws: &mut Socket) -> String {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a message within 30 s")
            .expect("open")
            .expect("readable");
        if let Message::Text(text) = message {
            return text.to_string();
        }
    }
}

/// `future`'s output, or a panic naming `what` after 30 s (a hang becomes a failure).
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within 30 s"))
}
