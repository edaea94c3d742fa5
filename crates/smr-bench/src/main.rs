//! `smr-bench`: throughput and latency of SMR's hot paths, in process.
//!
//! Every scenario runs on a fresh database (a temporary SQLite file, or a new PostgreSQL
//! database dropped afterwards), drives a fixed number of operations over N concurrent tasks
//! on a multi-thread tokio runtime, and reports throughput and latency percentiles from an HDR
//! histogram. `--layer router` sends real HTTP requests through the axum router
//! (`tower::ServiceExt::oneshot`: routing, body limits, JSON parsing, response building, no
//! sockets); `--layer store` calls `smr_store::Store` directly.
//!
//! Scenarios: `create` (POST MedicationRequest), `read` (GET by id), `search` (by patient,
//! 50 results), `transaction` (100-entry Bundles), `raw-insert` (the same rows inserted raw:
//! the ceiling), `cpu` (the CPU cost of each step of a create, single-threaded), `page-growth`
//! (a page of a search by patient as the patient's record grows; not part of `all`),
//! `medication-record` (`$medication-record` for one patient of `--sizes` entries; not part of
//! `all`), `dmd-import` (parse and store an NHSBSA dm+d release; not part of `all`),
//! `analytics` (every analytics measure over 1 million in-memory patients, time and peak
//! memory; not part of `all`), `all`.

mod analytics;
mod data;
mod dmd;
mod growth;
mod load;
mod raw;
mod record;
mod target;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, header};
use clap::{Parser, ValueEnum};
use http_body_util::BodyExt;
use serde_json::Value;
use smr_fhir::query::{self, Handling};
use smr_store::{Store, WriteOp, WriteOutcome};
use tower::ServiceExt;

use crate::data::{NhsNumbers, pick};
use crate::load::{Op, OpFuture, Report, drive};
use crate::target::{EngineArg, FreshDb, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Create,
    Read,
    Search,
    Transaction,
    RawInsert,
    Cpu,
    PageGrowth,
    MedicationRecord,
    /// The dm+d import rate (parse and store); needs --dmd-release. Not part of `all`.
    DmdImport,
    /// Every analytics measure over --analytics-patients synthetic patients in memory, with
    /// time and peak memory. Not part of `all`.
    Analytics,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Layer {
    /// Through the axum router (HTTP semantics, no sockets).
    Router,
    /// `smr_store::Store` called directly.
    Store,
}

#[derive(Debug, Parser)]
#[command(
    name = "smr-bench",
    about = "Benchmarks of SMR's hot paths (in process)"
)]
pub(crate) struct Args {
    #[arg(long, value_enum, default_value = "sqlite")]
    engine: EngineArg,
    /// PostgreSQL server (admin) URL: each run creates a fresh database there and drops it.
    #[arg(
        long,
        env = "SMR_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    #[arg(long, value_enum, default_value = "all")]
    scenario: Scenario,
    #[arg(long, value_enum, default_value = "router")]
    layer: Layer,
    /// Measured operations per scenario (a transaction scenario uses --bundles instead).
    #[arg(long, default_value_t = 20_000)]
    ops: usize,
    /// Operations run before measuring (not reported).
    #[arg(long, default_value_t = 1_000)]
    warmup: usize,
    /// Concurrent client tasks.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Patients seeded for read/search (and as subjects for creates).
    #[arg(long, default_value_t = 1_000)]
    patients: usize,
    /// MedicationRequests seeded per patient: what a search by patient returns.
    #[arg(long, default_value_t = 50)]
    per_patient: usize,
    /// Entries per transaction Bundle (one Patient plus MedicationRequests).
    #[arg(long, default_value_t = 100)]
    bundle_size: usize,
    /// Measured transaction Bundles.
    #[arg(long, default_value_t = 200)]
    bundles: usize,
    /// `page-growth`: the sizes of the one patient's record, one fresh database each.
    #[arg(long, value_delimiter = ',', default_values_t = [50, 1_000, 10_000, 100_000])]
    sizes: Vec<usize>,
    /// Instead of benchmarking, write the HTTP benchmark's seed data to DIR and exit:
    /// `seed-NNNN.json` transaction Bundles (10 patients each, PUT with ids `bench-pNNNNNN` and
    /// `bench-mNNNNNN-KKK`) and `create-template.json` (subject `Patient/__PATIENT__`).
    #[arg(long, value_name = "DIR")]
    write_seed: Option<std::path::PathBuf>,
    /// `dmd-import`: an NHSBSA dm+d XML release folder.
    #[arg(long, value_name = "DIR")]
    dmd_release: Option<std::path::PathBuf>,
    /// `dmd-import`: copies of the release's rows to store (to approach a full release).
    #[arg(long, default_value_t = 1)]
    dmd_scale: usize,
    /// `analytics`: synthetic patients to compute every measure over.
    #[arg(long, default_value_t = 1_000_000)]
    analytics_patients: usize,
}

/// The allocator `smr serve` runs with (see Cargo.toml).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The default multi-thread runtime: one worker per core, as `smr serve` runs.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    if let Some(dir) = &args.write_seed {
        return write_seed(dir, args.patients, args.per_patient);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "smr-bench: engine={} layer={:?} scenario={:?} ops={} concurrency={} tokio workers={threads}",
        args.engine.name(),
        args.layer,
        args.scenario,
        args.ops,
        args.concurrency
    );
    let mut reports = Vec::new();
    let all = args.scenario == Scenario::All;
    if all || args.scenario == Scenario::Cpu {
        cpu_breakdown(args.ops.min(20_000));
    }
    if all || args.scenario == Scenario::RawInsert {
        reports.extend(raw_insert(&args).await?);
    }
    if all || args.scenario == Scenario::Create {
        reports.push(create(&args).await?);
    }
    if all || args.scenario == Scenario::Read || args.scenario == Scenario::Search {
        reports.extend(read_and_search(&args, all).await?);
    }
    if all || args.scenario == Scenario::Transaction {
        reports.push(transaction(&args).await?);
    }
    if args.scenario == Scenario::Analytics {
        analytics::analytics(args.analytics_patients)?;
    }
    if args.scenario == Scenario::DmdImport {
        dmd::dmd_import(&args).await?;
    }
    if args.scenario == Scenario::PageGrowth {
        reports.extend(growth::page_growth(&args).await?);
    }
    if args.scenario == Scenario::MedicationRecord {
        reports.extend(record::medication_record(&args).await?);
    }
    if !reports.is_empty() {
        println!("{}", Report::header());
        for r in &reports {
            println!("{}", r.row());
        }
    }
    Ok(())
}

pub(crate) fn report(
    args: &Args,
    scenario: &str,
    layer: &str,
    ops: usize,
    resources_per_op: usize,
    measured: (std::time::Duration, hdrhistogram::Histogram<u64>),
) -> Report {
    let r = Report {
        scenario: scenario.into(),
        engine: args.engine.name().into(),
        layer: layer.into(),
        ops,
        concurrency: args.concurrency,
        resources_per_op,
        elapsed: measured.0,
        latency: measured.1,
    };
    eprintln!("{}", r.row());
    r
}

fn layer_name(layer: Layer) -> &'static str {
    match layer {
        Layer::Router => "router",
        Layer::Store => "store",
    }
}

/// Warms up on indices `ops..ops+warmup`, then measures `0..ops`.
pub(crate) async fn measure(
    args: &Args,
    ops: usize,
    warmup: usize,
    op: Op,
) -> anyhow::Result<(std::time::Duration, hdrhistogram::Histogram<u64>)> {
    if warmup > 0 {
        drive(ops..ops + warmup, args.concurrency, op.clone())
            .await
            .context("warm-up")?;
    }
    drive(0..ops, args.concurrency, op).await
}

// ---------------------------------------------------------------------------------------------
// Seeding

/// `n` patients, created in transactions of 100; returns their ids.
async fn seed_patients(
    store: &Store,
    n: usize,
    nhs: &mut NhsNumbers,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(n);
    let mut left = n;
    while left > 0 {
        let batch = left.min(100);
        left -= batch;
        let ops = (0..batch)
            .map(|_| WriteOp::Create {
                resource: data::patient(&nhs.next_number()),
                full_url: None,
                if_none_exist: None,
            })
            .collect();
        for outcome in store
            .transaction(ops)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
        {
            ids.push(created_id(outcome)?);
        }
    }
    Ok(ids)
}

/// A patient with their MedicationRequests.
struct Record {
    patient: String,
    medication_requests: Vec<String>,
}

/// `patients` patients with `per_patient` MedicationRequests each, one transaction per patient.
pub(crate) async fn seed_records(
    store: &Store,
    patients: usize,
    per_patient: usize,
    nhs: &mut NhsNumbers,
) -> anyhow::Result<Vec<Record>> {
    let started = Instant::now();
    let mut records = Vec::with_capacity(patients);
    for _ in 0..patients {
        let url = format!("urn:uuid:{}", uuid::Uuid::new_v4());
        let mut ops = vec![WriteOp::Create {
            resource: data::patient(&nhs.next_number()),
            full_url: Some(url.clone()),
            if_none_exist: None,
        }];
        ops.extend((0..per_patient).map(|_| WriteOp::Create {
            resource: data::medication_request(&url),
            full_url: None,
            if_none_exist: None,
        }));
        let mut outcomes = store
            .transaction(ops)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .into_iter();
        let patient = created_id(outcomes.next().context("no patient outcome")?)?;
        let medication_requests = outcomes.map(created_id).collect::<anyhow::Result<_>>()?;
        records.push(Record {
            patient,
            medication_requests,
        });
    }
    eprintln!(
        "seeded {patients} patients x {per_patient} MedicationRequests in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(records)
}

pub(crate) fn created_id(outcome: WriteOutcome) -> anyhow::Result<String> {
    match outcome {
        WriteOutcome::Created(r) => Ok(r.id),
        other => bail!("expected a create, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP through the router

/// Sends one request through the router and returns the body, failing on any other status.
pub(crate) async fn call(
    router: Router,
    method: Method,
    uri: String,
    body: Option<Bytes>,
    expect: StatusCode,
) -> anyhow::Result<Bytes> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::ACCEPT, "application/fhir+json");
    if let Some(token) = target::BENCH_TOKEN.get() {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if body.is_some() {
        builder = builder.header(header::CONTENT_TYPE, "application/fhir+json");
    }
    let request = builder.body(body.map(Body::from).unwrap_or_else(Body::empty))?;
    let response = router.oneshot(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    if status != expect {
        bail!(
            "expected {expect}, got {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(bytes)
}

// ---------------------------------------------------------------------------------------------
// Scenarios

async fn create(args: &Args) -> anyhow::Result<Report> {
    let target = Target::open(args.engine, &args.database_url).await?;
    let mut nhs = NhsNumbers::new();
    let patients = seed_patients(&target.store, args.patients, &mut nhs).await?;
    let total = args.ops + args.warmup;
    let resources: Vec<Value> = (0..total)
        .map(|i| data::medication_request(&format!("Patient/{}", patients[i % patients.len()])))
        .collect();
    let op: Op = match args.layer {
        Layer::Router => {
            let bodies: Arc<Vec<Bytes>> = Arc::new(
                resources
                    .iter()
                    .map(|r| Bytes::from(r.to_string()))
                    .collect(),
            );
            eprintln!(
                "create: request body {} bytes (compact JSON)",
                bodies[0].len()
            );
            let router = target.router.clone();
            Arc::new(move |i| -> OpFuture {
                let (router, body) = (router.clone(), bodies[i].clone());
                Box::pin(async move {
                    call(
                        router,
                        Method::POST,
                        "/fhir/MedicationRequest".into(),
                        Some(body),
                        StatusCode::CREATED,
                    )
                    .await?;
                    Ok(())
                })
            })
        }
        Layer::Store => {
            let values: Arc<Vec<Mutex<Option<Value>>>> =
                Arc::new(resources.into_iter().map(|v| Mutex::new(Some(v))).collect());
            let store = target.store.clone();
            Arc::new(move |i| -> OpFuture {
                let store = store.clone();
                let value = values[i].lock().ok().and_then(|mut v| v.take());
                Box::pin(async move {
                    store
                        .create(value.context("resource already used")?)
                        .await?;
                    Ok(())
                })
            })
        }
    };
    let measured = measure(args, args.ops, args.warmup, op).await?;
    let r = report(
        args,
        "create MedicationRequest",
        layer_name(args.layer),
        args.ops,
        1,
        measured,
    );
    target.close().await?;
    Ok(r)
}

async fn read_and_search(args: &Args, all: bool) -> anyhow::Result<Vec<Report>> {
    let target = Target::open(args.engine, &args.database_url).await?;
    let mut nhs = NhsNumbers::new();
    let records =
        Arc::new(seed_records(&target.store, args.patients, args.per_patient, &mut nhs).await?);
    let mut reports = Vec::new();

    if all || args.scenario == Scenario::Read {
        let ids: Arc<Vec<String>> = Arc::new(
            records
                .iter()
                .flat_map(|r| r.medication_requests.iter().cloned())
                .collect(),
        );
        let sample = call(
            target.router.clone(),
            Method::GET,
            format!("/fhir/MedicationRequest/{}", ids[0]),
            None,
            StatusCode::OK,
        )
        .await?;
        eprintln!(
            "read: response body {} bytes; {} MedicationRequests stored",
            sample.len(),
            ids.len()
        );
        let op: Op = match args.layer {
            Layer::Router => {
                let router = target.router.clone();
                Arc::new(move |i| -> OpFuture {
                    let uri = format!("/fhir/MedicationRequest/{}", ids[pick(i, ids.len())]);
                    let router = router.clone();
                    Box::pin(async move {
                        call(router, Method::GET, uri, None, StatusCode::OK).await?;
                        Ok(())
                    })
                })
            }
            Layer::Store => {
                let store = target.store.clone();
                Arc::new(move |i| -> OpFuture {
                    let (store, ids) = (store.clone(), ids.clone());
                    Box::pin(async move {
                        store
                            .read("MedicationRequest", &ids[pick(i, ids.len())])
                            .await?;
                        Ok(())
                    })
                })
            }
        };
        let measured = measure(args, args.ops, args.warmup, op).await?;
        reports.push(report(
            args,
            "read MedicationRequest",
            layer_name(args.layer),
            args.ops,
            1,
            measured,
        ));
    }

    if all || args.scenario == Scenario::Search {
        let query = |patient: &str| {
            format!(
                "subject=Patient/{patient}&_count={}",
                args.per_patient.max(1)
            )
        };
        // Check once, outside the timed loop, that a search returns the whole record.
        let uri = format!("/fhir/MedicationRequest?{}", query(&records[0].patient));
        let body = call(
            target.router.clone(),
            Method::GET,
            uri,
            None,
            StatusCode::OK,
        )
        .await?;
        let bundle: Value = serde_json::from_slice(&body)?;
        let n = bundle["entry"].as_array().map_or(0, Vec::len);
        if n != args.per_patient {
            bail!("search returned {n} entries, expected {}", args.per_patient);
        }
        eprintln!(
            "search: {n} matches per search, response body {} bytes",
            body.len()
        );
        let queries: Arc<Vec<String>> =
            Arc::new(records.iter().map(|r| query(&r.patient)).collect());
        let op: Op = match args.layer {
            Layer::Router => {
                let router = target.router.clone();
                Arc::new(move |i| -> OpFuture {
                    let uri = format!(
                        "/fhir/MedicationRequest?{}",
                        queries[pick(i, queries.len())]
                    );
                    let router = router.clone();
                    Box::pin(async move {
                        call(router, Method::GET, uri, None, StatusCode::OK).await?;
                        Ok(())
                    })
                })
            }
            Layer::Store => {
                let store = target.store.clone();
                Arc::new(move |i| -> OpFuture {
                    let (store, queries) = (store.clone(), queries.clone());
                    Box::pin(async move {
                        let q = &queries[pick(i, queries.len())];
                        let pairs: Vec<(String, String)> = q
                            .split('&')
                            .filter_map(|kv| kv.split_once('='))
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                            .collect();
                        let parsed = query::parse("MedicationRequest", &pairs, Handling::Strict)
                            .map_err(|issues| anyhow::anyhow!("{issues:?}"))?;
                        store
                            .search(&parsed.request, &smr_store::Access::unrestricted())
                            .await?;
                        Ok(())
                    })
                })
            }
        };
        let measured = measure(args, args.ops, args.warmup, op).await?;
        let name = format!("search by patient ({} results)", args.per_patient);
        reports.push(report(
            args,
            &name,
            layer_name(args.layer),
            args.ops,
            args.per_patient,
            measured,
        ));
    }
    target.close().await?;
    Ok(reports)
}

async fn transaction(args: &Args) -> anyhow::Result<Report> {
    let target = Target::open(args.engine, &args.database_url).await?;
    let mut nhs = NhsNumbers::new();
    let warmup = (args.bundles / 10).max(1);
    let total = args.bundles + warmup;
    let bundles: Vec<Value> = (0..total)
        .map(|_| data::transaction_bundle(args.bundle_size, &nhs.next_number()))
        .collect();
    let op: Op = match args.layer {
        Layer::Router => {
            let bodies: Arc<Vec<Bytes>> =
                Arc::new(bundles.iter().map(|b| Bytes::from(b.to_string())).collect());
            eprintln!(
                "transaction: {} entries, request body {} bytes",
                args.bundle_size,
                bodies[0].len()
            );
            let router = target.router.clone();
            Arc::new(move |i| -> OpFuture {
                let (router, body) = (router.clone(), bodies[i].clone());
                Box::pin(async move {
                    call(
                        router,
                        Method::POST,
                        "/fhir".into(),
                        Some(body),
                        StatusCode::OK,
                    )
                    .await?;
                    Ok(())
                })
            })
        }
        Layer::Store => {
            let ops: Vec<Mutex<Option<Vec<WriteOp>>>> = bundles
                .into_iter()
                .map(|b| {
                    let ops = b["entry"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|e| WriteOp::Create {
                            resource: e["resource"].clone(),
                            full_url: e["fullUrl"].as_str().map(str::to_owned),
                            if_none_exist: None,
                        })
                        .collect();
                    Mutex::new(Some(ops))
                })
                .collect();
            let ops = Arc::new(ops);
            let store = target.store.clone();
            Arc::new(move |i| -> OpFuture {
                let store = store.clone();
                let ops = ops[i].lock().ok().and_then(|mut o| o.take());
                Box::pin(async move {
                    store
                        .transaction(ops.context("bundle already used")?)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    Ok(())
                })
            })
        }
    };
    let measured = measure(args, args.bundles, warmup, op).await?;
    let name = format!("transaction Bundle ({} entries)", args.bundle_size);
    let r = report(
        args,
        &name,
        layer_name(args.layer),
        args.bundles,
        args.bundle_size,
        measured,
    );
    target.close().await?;
    Ok(r)
}

/// The ceiling: the same rows inserted raw, on a database that has SMR's schema.
async fn raw_insert(args: &Args) -> anyhow::Result<Vec<Report>> {
    let db = FreshDb::create(args.engine, &args.database_url).await?;
    // The store creates the schema (its migrations), then steps aside.
    let store = Store::open(&db.url).await?;
    let mut nhs = NhsNumbers::new();
    let patients = seed_patients(&store, args.patients.min(100), &mut nhs).await?;
    // The store stays open but idle: on SQLite its checkpointer thread copies the WAL back
    // during the raw inserts, as it does under the store's own writes.
    let pool = raw::open_pool(args.engine, &db.url).await?;
    raw::create_body_table(&pool).await?;
    let total = args.ops + args.warmup;
    let rows: Arc<Vec<Arc<raw::Rows>>> = Arc::new(
        (0..total)
            .map(|i| {
                let patient = &patients[i % patients.len()];
                Arc::new(raw::Rows::of(
                    data::medication_request(&format!("Patient/{patient}")),
                    patient,
                ))
            })
            .collect(),
    );
    eprintln!(
        "raw-insert: stored body {} bytes; index rows per create: {}",
        rows[0].body.len(),
        raw::index_summary(&rows[0].entries)
    );
    let mut reports = Vec::new();

    let (p, r) = (pool.clone(), rows.clone());
    let body_only: Op = Arc::new(move |i| -> OpFuture {
        let (pool, rows) = (p.clone(), r[i].clone());
        Box::pin(async move { raw::insert_body(&pool, &rows).await })
    });
    let measured = measure(args, args.ops, args.warmup, body_only).await?;
    reports.push(report(
        args,
        "raw insert: 1 row (id, body) per txn",
        "sqlx",
        args.ops,
        1,
        measured,
    ));

    let (p, r) = (pool.clone(), rows.clone());
    let args_engine = args.engine;
    let same_rows: Op = Arc::new(move |i| -> OpFuture {
        let (pool, rows) = (p.clone(), r[i].clone());
        let engine = args_engine;
        Box::pin(async move { raw::insert_same_rows(engine, &pool, rows).await })
    });
    let measured = measure(args, args.ops, args.warmup, same_rows).await?;
    reports.push(report(
        args,
        "raw insert: SMR's rows for 1 create per txn",
        "sqlx",
        args.ops,
        1,
        measured,
    ));

    pool.close().await;
    store.close().await;
    db.drop_db().await?;
    Ok(reports)
}

/// Seed data for `scripts/bench-http.sh`, with ids a wrk script can compute.
fn write_seed(dir: &std::path::Path, patients: usize, per_patient: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut nhs = NhsNumbers::new();
    let put = |resource: Value, url: String| serde_json::json!({"resource": resource, "request": {"method": "PUT", "url": url}});
    for (file, first) in (0..patients).step_by(10).enumerate() {
        let mut entries = Vec::new();
        for n in first..(first + 10).min(patients) {
            let pid = format!("bench-p{n:06}");
            let mut patient = data::patient(&nhs.next_number());
            patient["id"] = serde_json::json!(pid);
            entries.push(put(patient, format!("Patient/{pid}")));
            for k in 0..per_patient {
                let mid = format!("bench-m{n:06}-{k:03}");
                let mut mr = data::medication_request(&format!("Patient/{pid}"));
                mr["id"] = serde_json::json!(mid);
                entries.push(put(mr, format!("MedicationRequest/{mid}")));
            }
        }
        let bundle =
            serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
        std::fs::write(dir.join(format!("seed-{file:04}.json")), bundle.to_string())?;
    }
    let template = data::medication_request("Patient/__PATIENT__");
    std::fs::write(dir.join("create-template.json"), template.to_string())?;
    eprintln!(
        "wrote seed for {patients} patients x {per_patient} MedicationRequests to {}",
        dir.display()
    );
    Ok(())
}

/// Single-threaded CPU cost of each step a create performs outside the database.
fn cpu_breakdown(iterations: usize) {
    let resource = data::medication_request("Patient/9d7f0e0c-3b7a-4c8e-9a51-2f1f4b6c1d2e");
    let body = resource.to_string();
    let mut stored = resource.clone();
    stored["id"] = serde_json::json!(uuid::Uuid::new_v4().to_string());
    stored["meta"] =
        serde_json::json!({"versionId": "1", "lastUpdated": "2026-11-02T09:30:00.123456Z"});
    let iterations = iterations.max(1);
    let time = |name: &str, f: &mut dyn FnMut()| {
        let started = Instant::now();
        for _ in 0..iterations {
            f();
        }
        let us = started.elapsed().as_secs_f64() * 1e6 / iterations as f64;
        println!("| {name} | {us:.2} |");
    };
    println!("CPU per MedicationRequest create step, single thread, {iterations} iterations:\n");
    println!("| step | µs per create |\n|---|---:|");
    time("parse request body (serde_json::from_slice)", &mut || {
        std::hint::black_box(serde_json::from_slice::<Value>(body.as_bytes()).ok());
    });
    time(
        "validate (smr_fhir::validate::validate_resource)",
        &mut || {
            std::hint::black_box(smr_fhir::validate::validate_resource(&resource).is_ok());
        },
    );
    time("index extraction (smr_fhir::extract::extract)", &mut || {
        std::hint::black_box(smr_fhir::extract::extract(&stored));
    });
    time("serialise stored body (serde_json::to_string)", &mut || {
        std::hint::black_box(serde_json::to_string(&stored).ok());
    });
    time("uuid v4", &mut || {
        std::hint::black_box(uuid::Uuid::new_v4().to_string());
    });
    println!();
}
