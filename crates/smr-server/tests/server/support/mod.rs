//! Test harness: a fresh store per test on each backend, driven through the real router.
//!
//! SQLite always (a temporary directory); PostgreSQL when `SMR_TEST_DATABASE_URL` names a
//! server (a fresh database per test, dropped afterwards). Use [`backend_tests!`] to run one
//! test body on both.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use smr_access::Role;
use smr_auth::{LocalIssuer, TokenRequest, Verifier};
use smr_server::{AppState, ServerConfig, router};
use smr_store::Store;
use sqlx::Connection;
use tower::ServiceExt;

pub const BASE: &str = "http://smr.test/fhir";

/// The organisation of the harness's default (back-end system) token.
pub const SYSTEM_ORG: &str = "X26";

pub struct TestApp {
    pub router: Router,
    /// A client signed in as a back-end system (role `system`, every scope): tests of the
    /// FHIR API itself use it; tests of access control make their own with [`TestApp::as_user`].
    pub client: Client,
    pub store: Store,
    /// Signs tokens the router trusts.
    pub issuer: Arc<LocalIssuer>,
    cleanup: Option<Cleanup>,
    _dir: Option<tempfile::TempDir>,
}

enum Cleanup {
    DropPostgres { admin_url: String, database: String },
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    #[track_caller]
    pub fn expect(self, status: StatusCode) -> Self {
        assert_eq!(self.status, status, "body: {}", self.text);
        self
    }
}

pub async fn sqlite_app() -> TestApp {
    sqlite_app_with(ServerConfig::default()).await
}

pub async fn sqlite_app_with(config: ServerConfig) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("smr.db").display());
    let store = Store::open(&url).await.expect("open sqlite store");
    build(store, config, None, Some(dir))
}

/// The PostgreSQL server to test against, if any.
pub fn postgres_url() -> Option<String> {
    std::env::var("SMR_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// `SMR_TEST_PG_LAYOUT=partitioned`: PostgreSQL test databases are hash-partitioned by
/// patient (the layout that distributes on Citus; `smr_store::layout`), so the whole suite
/// checks that nothing SMR does needs a table whole.
fn partitioned_layout() -> bool {
    std::env::var("SMR_TEST_PG_LAYOUT").is_ok_and(|v| v == "partitioned")
}

pub async fn postgres_app() -> Option<TestApp> {
    postgres_app_with(ServerConfig::default()).await
}

pub async fn postgres_app_with(config: ServerConfig) -> Option<TestApp> {
    let admin_url = postgres_url()?;
    let database = format!("smr_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("connect to SMR_TEST_DATABASE_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    admin.close().await.ok();
    let url = with_database(&admin_url, &database);
    let store = Store::open(&url).await.expect("open postgres store");
    if partitioned_layout() {
        store
            .partition_by_patient(4)
            .await
            .expect("partition the test database by patient");
    }
    Some(build(
        store,
        config,
        Some(Cleanup::DropPostgres {
            admin_url,
            database,
        }),
        None,
    ))
}

/// Replaces the database name (path) of a postgres URL.
fn with_database(url: &str, database: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let scheme_end = head.find("://").map_or(0, |i| i + 3);
    let host_end = head[scheme_end..]
        .find('/')
        .map_or(head.len(), |i| scheme_end + i);
    let mut out = format!("{}/{database}", &head[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn build(
    store: Store,
    config: ServerConfig,
    cleanup: Option<Cleanup>,
    dir: Option<tempfile::TempDir>,
) -> TestApp {
    let config = ServerConfig {
        base_url: Some(BASE.into()),
        ..config
    };
    let issuer = Arc::new(LocalIssuer::generate().expect("signing key"));
    let verifier = Arc::new(Verifier::new(smr_auth::DEFAULT_AUDIENCE));
    verifier.trust_local(&issuer);
    let router = router(AppState::new(
        smr_app::App::new(store.clone()),
        verifier,
        config,
    ));
    let system = issue(
        &issuer,
        TokenRequest {
            org: Some(SYSTEM_ORG.into()),
            ..TokenRequest::new("test-system", Role::System)
        },
    );
    TestApp {
        client: Client {
            router: router.clone(),
            token: Some(system),
        },
        router,
        store,
        issuer,
        cleanup,
        _dir: dir,
    }
}

impl TestApp {
    /// A client (signed in as the harness's back-end system) of another router over the same
    /// store, built with exactly `config` (no test base URL imposed).
    pub fn client_with(&self, config: ServerConfig) -> Client {
        let verifier = Arc::new(Verifier::new(smr_auth::DEFAULT_AUDIENCE));
        verifier.trust_local(&self.issuer);
        let router = router(AppState::new(
            smr_app::App::new(self.store.clone()),
            verifier,
            config,
        ));
        Client {
            router,
            token: self.client.token.clone(),
        }
    }
}

pub fn issue(issuer: &LocalIssuer, request: TokenRequest) -> String {
    issuer.issue(&request).expect("token")
}

/// Sends requests through the router, as an HTTP client would, with its bearer token.
#[derive(Clone)]
pub struct Client {
    router: Router,
    token: Option<String>,
}

impl std::ops::Deref for TestApp {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl TestApp {
    /// A client signed in as `user` in `role` for organisation `org` (ODS code).
    pub fn as_user(&self, user: &str, role: Role, org: Option<&str>) -> Client {
        self.with_token(issue(
            &self.issuer,
            TokenRequest {
                org: org.map(str::to_owned),
                ..TokenRequest::new(user, role)
            },
        ))
    }

    /// A client signed in as the patient whose Patient id is `patient`.
    pub fn as_patient(&self, patient: &str) -> Client {
        self.with_token(issue(
            &self.issuer,
            TokenRequest {
                patient: Some(patient.to_owned()),
                ..TokenRequest::new(format!("patient-{patient}"), Role::Patient)
            },
        ))
    }

    /// A client sending `token` (or none).
    pub fn with_token(&self, token: impl Into<Option<String>>) -> Client {
        Client {
            router: self.router.clone(),
            token: token.into(),
        }
    }

    /// Closes the store and drops a PostgreSQL test database.
    pub async fn finish(mut self) {
        self.store.close().await;
        if let Some(Cleanup::DropPostgres {
            admin_url,
            database,
        }) = self.cleanup.take()
            && let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await;
        }
    }
}

impl Client {
    pub fn new(router: Router, token: Option<String>) -> Self {
        Client { router, token }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(path);
        let mut has_type = false;
        let mut has_auth = false;
        for (k, v) in headers {
            has_type |= k.eq_ignore_ascii_case("content-type");
            has_auth |= k.eq_ignore_ascii_case("authorization");
            builder = builder.header(*k, *v);
        }
        if let (Some(token), false) = (&self.token, has_auth) {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() && !has_type {
            builder = builder.header(header::CONTENT_TYPE, "application/fhir+json");
        }
        let request = builder
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .expect("request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("router never fails");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let text = String::from_utf8(bytes.to_vec()).expect("utf-8 body");
        let media = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !text.is_empty() && media.contains("ndjson") {
            // Bulk Data files: one resource per line.
            text.lines().for_each(check_schema);
        } else if !text.is_empty() && media.contains("json") {
            check_schema(&text);
        }
        Reply {
            status,
            headers,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, &[], None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.request(Method::POST, path, &[], Some(body.to_string()))
            .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.request(Method::PUT, path, &[], Some(body.to_string()))
            .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.request(Method::DELETE, path, &[], None).await
    }

    /// Creates and returns the stored resource.
    pub async fn create(&self, resource: &Value) -> Value {
        let ty = resource["resourceType"].as_str().expect("resourceType");
        self.post(&format!("/fhir/{ty}"), resource)
            .await
            .expect(StatusCode::CREATED)
            .json()
    }
}

/// The official R4 JSON Schema, when `../shared` is present: every JSON body SMR returns in
/// tests is checked against it.
static SCHEMA: LazyLock<Option<Value>> = LazyLock::new(|| {
    let path = shared_path("reference/fhir/r4-spec/fhir.schema.json")?;
    let text = std::fs::read_to_string(path).ok()?;
    let mut schema: Value = serde_json::from_str(&text).ok()?;
    add_fhir_version_4_0_1(&mut schema);
    Some(schema)
});

/// The published R4 JSON Schema was generated for 4.0.0: its FHIRVersion enums stop at "4.0.0"
/// although R4's technical correction, the version every R4 server declares, is "4.0.1".
/// Without this, no correct R4 CapabilityStatement could pass.
fn add_fhir_version_4_0_1(value: &mut Value) {
    match value {
        Value::Object(obj) => {
            if let Some(Value::Array(options)) = obj.get_mut("enum")
                && options.iter().any(|o| o == "4.0.0")
                && !options.iter().any(|o| o == "4.0.1")
            {
                options.push(Value::String("4.0.1".into()));
            }
            obj.values_mut().for_each(add_fhir_version_4_0_1);
        }
        Value::Array(items) => items.iter_mut().for_each(add_fhir_version_4_0_1),
        _ => {}
    }
}

/// One validator per resource type (the schema's top-level `oneOf` narrowed to that type), so a
/// failure names the offending element instead of "matched none of 146 alternatives".
static VALIDATORS: LazyLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> =
    LazyLock::new(Default::default);

fn validator_for(res_type: &str) -> Option<Arc<jsonschema::Validator>> {
    let schema = SCHEMA.as_ref()?;
    let mut cache = VALIDATORS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(v) = cache.get(res_type) {
        return Some(v.clone());
    }
    let mut narrowed = schema.clone();
    narrowed["oneOf"] = serde_json::json!([{"$ref": format!("#/definitions/{res_type}")}]);
    let validator = Arc::new(jsonschema::validator_for(&narrowed).expect("FHIR schema compiles"));
    cache.insert(res_type.to_owned(), validator.clone());
    Some(validator)
}

#[track_caller]
pub fn check_schema(text: &str) {
    let value: Value = serde_json::from_str(text).expect("JSON body");
    check_resource_schema(&value);
    for entry in value["entry"].as_array().into_iter().flatten() {
        if let Some(resource) = entry.get("resource") {
            check_resource_schema(resource);
        }
    }
}

#[track_caller]
fn check_resource_schema(value: &Value) {
    let Some(res_type) = value["resourceType"].as_str() else {
        return;
    };
    let Some(validator) = validator_for(res_type) else {
        return;
    };
    let errors: Vec<String> = validator
        .iter_errors(value)
        .take(5)
        .map(|e| format!("{:?} at {}", e.kind(), e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{res_type} violates the FHIR R4 JSON Schema: {errors:?}\n{value}"
    );
}

/// A path under `../shared` (beside the project), or `None` with a notice when it is absent
/// (a failure instead when `SMR_REQUIRE_SHARED` is set, as in CI).
pub fn shared_path(relative: &str) -> Option<std::path::PathBuf> {
    smr_testdata::shared(relative)
}

/// The router path for an absolute link SMR returned (e.g. a `next` link).
pub fn route(url: &str) -> String {
    format!("/fhir{}", url.strip_prefix(BASE).unwrap_or(url))
}

pub fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture JSON")
}

/// Runs an async test body against SQLite, and against PostgreSQL when configured.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident => $body:ident;)*) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::support::sqlite_app().await;
                    super::$body(&app).await;
                    app.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = $crate::support::postgres_app().await else {
                        eprintln!("SKIP postgres::{}: SMR_TEST_DATABASE_URL is not set", stringify!($name));
                        return;
                    };
                    super::$body(&app).await;
                    app.finish().await;
                }
            )*
        }
    };
}

/// Creates the fixture Patient (`patient.json`) and returns its id.
pub async fn fixture_patient(app: &TestApp) -> String {
    app.create(&fixture("patient.json")).await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// The fixture MedicationRequest (`medication-request.json`) for `patient_id`.
pub fn fixture_order(patient_id: &str) -> Value {
    let mut mr = fixture("medication-request.json");
    mr["subject"]["reference"] = Value::String(format!("Patient/{patient_id}"));
    mr
}

/// The patient's Consent withholding their mental-health (`PSY`) medicines from community
/// pharmacies.
pub fn consent_withholding_psy_from_pharmacies(patient_id: &str) -> Value {
    let mut consent = fixture("consent-withhold-psy-from-pharmacies.json");
    consent["patient"]["reference"] = Value::String(format!("Patient/{patient_id}"));
    consent
}

/// Creates the fixture Patient with this NHS number and family name; its id.
pub async fn named_patient(app: &TestApp, nhs: &str, family: &str) -> String {
    let mut p = fixture("patient.json");
    p["identifier"][0]["value"] = Value::String(nhs.to_owned());
    p["name"][0]["family"] = Value::String(family.to_owned());
    app.create(&p).await["id"].as_str().expect("id").to_owned()
}

/// The ids of a searchset's matches (not its included resources), in order.
pub fn match_ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == "match")
        .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
        .collect()
}

/// Polls `check` until it gives a value: for effects that follow a commit through the change
/// feed (the PGx re-check, events). Panics after 30 s, which only a broken consumer takes.
#[allow(dead_code)]
pub async fn eventually<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the change feed did not deliver within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Waits until the change feed's durable consumers have processed every committed change
/// (so "nothing new happened" can be asserted, not just observed too early).
#[allow(dead_code)]
pub async fn feed_settled(app: &TestApp) {
    eventually(|| async {
        let head = app.store.feed_head().await.ok()?;
        for consumer in [
            smr_app::feed::PGX_RECHECK,
            smr_app::safety_recheck::SAFETY_RECHECK,
        ] {
            let at = app.store.consumer_position(consumer).await.ok()?;
            if at < head {
                return None;
            }
        }
        Some(())
    })
    .await
}
