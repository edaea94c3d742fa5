//! `smr loadgen`: a national mix of SMR's operations sent to one or more running nodes at a
//! target rate, with throughput and latency percentiles per operation (issue 13).
//!
//! Layout: [`Mix`] (the operations and their shares, with where the shares come from),
//! [`Operation::request`] (each operation as the HTTP request a real client sends), the
//! open-loop scheduler in [`run`] and the report. `--acks` keeps every acknowledged write and
//! `--verify` reads them back, so a node killed mid-load can be shown to have lost none.
//!
//! Open loop: request *n* is due at `start + n / rate` whatever the answers; its latency is
//! counted from when it was due, not from when it went out, so a server that stalls is not
//! flattered by the load generator slowing down with it (coordinated omission). At most
//! `--max-in-flight` requests are outstanding; beyond that a due request waits, and the wait
//! counts in its latency.

use std::collections::BTreeMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

use crate::http_client::http_client;

#[derive(Debug, clap::Args)]
pub struct LoadgenArgs {
    /// Base URL of a node, e.g. http://127.0.0.1:8080 (repeat for several: requests go to
    /// each in turn).
    #[arg(long = "url", required = true)]
    urls: Vec<String>,
    /// Bearer token for every request: a `system` token (an interface engine's) may do every
    /// operation of the mix; `smr token --role system` makes one for a local node.
    #[arg(long, env = "SMR_TOKEN", hide_env_values = true)]
    token: String,
    /// Target rate, operations per second, across all nodes.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// How long to send for, e.g. 30s, 5m.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Patients created (through the first node) before the load starts; every operation is
    /// about one of them.
    #[arg(long, default_value_t = 100)]
    patients: usize,
    /// Most requests outstanding at once.
    #[arg(long, default_value_t = 256)]
    max_in_flight: usize,
    /// The mix: `national` (the shares of [`MIX`], see docs/scale.md) or `even` (every
    /// operation equally often: a smoke test of each).
    #[arg(long, value_enum, default_value = "national")]
    mix: MixKind,
    /// Seed of the sequence of operations and patients: the same seed sends the same mix.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Append every acknowledged write (`Type/id/_history/version`, one per line) to FILE.
    #[arg(long, value_name = "FILE")]
    acks: Option<PathBuf>,
    /// Send no load: read back every write listed in FILE (from `--acks`) through the first
    /// node and report any the store does not hold; exit 2 when one is missing.
    #[arg(long, value_name = "FILE", conflicts_with = "acks")]
    verify: Option<PathBuf>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |i| text.split_at(i));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (e.g. 30s, 5m, 500ms)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("'{text}': use ms, s, m or h")),
    };
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(format!("'{text}' is not a positive duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// The operations of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// A GP issues a prescription (repeat or acute): `POST MedicationRequest`.
    Prescription,
    /// A community pharmacy dispenses it (EPS dispense notification): `POST MedicationDispense`.
    Dispense,
    /// A nurse records a ward or care-home administration: `POST MedicationAdministration`.
    Administration,
    /// A prescriber picks a drug: `POST /cds-services/smr-pgx-order-select`.
    CdsOrderSelect,
    /// A clinician opens the record: `GET Patient/{id}/$medication-record`.
    RecordView,
    /// A hospital admits with a medication history: a transaction of an Encounter and the
    /// patient's medicines as MedicationStatements.
    Admission,
    /// A pharmacist reconciles an admission list: `POST Patient/{id}/$reconcile`.
    Reconciliation,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Prescription => "prescription",
            Operation::Dispense => "dispense",
            Operation::Administration => "administration",
            Operation::CdsOrderSelect => "cds-order-select",
            Operation::RecordView => "record-view",
            Operation::Admission => "admission",
            Operation::Reconciliation => "reconciliation",
        }
    }

    fn writes(self) -> bool {
        matches!(
            self,
            Operation::Prescription
                | Operation::Dispense
                | Operation::Administration
                | Operation::Admission
        )
    }
}

/// Shares of the national mix, per 10,000 operations, from daily volumes in England:
///
/// | operation | per day | source |
/// |---|---|---|
/// | prescription | 3.3 million items | NHSBSA: ≈ 1.2 billion prescription items a year (issue 13) |
/// | dispense | 3.3 million | every EPS item is dispensed and notified once |
/// | administration | 1 million | assumption: ≈ 100,000 occupied acute beds (NHS England bed availability, KH03) × ≈ 10 recorded doses a day |
/// | CDS order-select | 1.1 million | assumption: one drug choice per new (non-repeat) item, ≈ a third of items |
/// | record view | 2 million | assumption: ≈ 1 million GP appointments a day (NHS Digital, Appointments in General Practice) plus hospital and pharmacy views |
/// | admission | 46,000 | NHS Digital HES: ≈ 17 million admissions a year |
/// | reconciliation | 92,000 | two per admission (admission and discharge; NICE QS120) |
///
/// Volumes marked "assumption" have no published national count; replace them with a
/// deployment's own figures when it has them.
pub const MIX: &[(Operation, u32)] = &[
    (Operation::Prescription, 3_050),
    (Operation::Dispense, 3_050),
    (Operation::Administration, 920),
    (Operation::CdsOrderSelect, 1_020),
    (Operation::RecordView, 1_850),
    (Operation::Admission, 40),
    (Operation::Reconciliation, 70),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MixKind {
    National,
    Even,
}

/// dm+d VMPs in SMR's dictionary (the synthetic population's repeat medicines).
const MEDICINES: &[(&str, &str)] = &[
    ("320000009", "Simvastatin 40mg tablets"),
    ("322236009", "Paracetamol 500mg tablets"),
    ("318902004", "Ramipril 2.5mg capsules"),
    ("317972000", "Furosemide 20mg tablets"),
    ("317291008", "Omeprazole 20mg gastro-resistant capsules"),
    ("319775004", "Aspirin 75mg dispersible tablets"),
    ("318859000", "Lisinopril 10mg tablets"),
    ("319799004", "Clopidogrel 75mg tablets"),
];

/// A small, seedable generator (SplitMix64): the mix needs repeatability, not cryptography.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn operation(&mut self, mix: MixKind) -> Operation {
        if mix == MixKind::Even {
            return MIX[self.below(MIX.len())].0;
        }
        let total: u32 = MIX.iter().map(|(_, w)| w).sum();
        let mut pick = (self.next() % u64::from(total)) as u32;
        for (op, weight) in MIX {
            if pick < *weight {
                return *op;
            }
            pick -= weight;
        }
        Operation::Prescription
    }
}

fn now_instant() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "2026-01-01T00:00:00Z".into())
}

fn medicine(code: &str, display: &str) -> Value {
    json!({"coding": [{"system": "https://dmd.nhs.uk", "code": code, "display": display}]})
}

/// One request: method, path under the node's base URL, body.
struct Request {
    method: reqwest::Method,
    path: String,
    body: Option<Value>,
}

impl Operation {
    fn request(self, patient: &str, rng: &mut Rng) -> Request {
        let (code, display) = MEDICINES[rng.below(MEDICINES.len())];
        let subject = json!({"reference": format!("Patient/{patient}")});
        let post = |path: String, body: Value| Request {
            method: reqwest::Method::POST,
            path,
            body: Some(body),
        };
        match self {
            Operation::Prescription => post(
                "/fhir/MedicationRequest".into(),
                json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                    "subject": subject, "medicationCodeableConcept": medicine(code, display),
                    "authoredOn": now_instant(),
                    "dosageInstruction": [{"text": "1 tablet once a day"}],
                    "dispenseRequest": {"quantity": {"value": 28, "unit": "tablet"}}}),
            ),
            Operation::Dispense => post(
                "/fhir/MedicationDispense".into(),
                json!({"resourceType": "MedicationDispense", "status": "completed",
                    "subject": subject, "medicationCodeableConcept": medicine(code, display),
                    "quantity": {"value": 28, "unit": "tablet"},
                    "whenHandedOver": now_instant()}),
            ),
            Operation::Administration => post(
                "/fhir/MedicationAdministration".into(),
                json!({"resourceType": "MedicationAdministration", "status": "completed",
                    "subject": subject, "medicationCodeableConcept": medicine(code, display),
                    "effectiveDateTime": now_instant(),
                    "dosage": {"text": "1 tablet"}}),
            ),
            Operation::CdsOrderSelect => post(
                "/cds-services/smr-pgx-order-select".into(),
                json!({"hook": "order-select",
                    "hookInstance": uuid::Uuid::new_v4().to_string(),
                    "context": {"userId": "Practitioner/loadgen", "patientId": patient,
                        "selections": ["MedicationRequest/draft-1"],
                        "draftOrders": {"resourceType": "Bundle", "type": "collection",
                            "entry": [{"resource": {"resourceType": "MedicationRequest",
                                "id": "draft-1", "status": "draft", "intent": "order",
                                "subject": subject,
                                "medicationCodeableConcept": medicine(code, display),
                                "dosageInstruction": [{"text": "1 tablet once a day"}]}}]}}}),
            ),
            Operation::RecordView => Request {
                method: reqwest::Method::GET,
                path: format!("/fhir/Patient/{patient}/$medication-record"),
                body: None,
            },
            Operation::Admission => {
                let mut entries = vec![json!({"fullUrl": "urn:uuid:encounter",
                    "resource": {"resourceType": "Encounter", "status": "in-progress",
                        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                            "code": "IMP", "display": "inpatient encounter"},
                        "subject": subject, "period": {"start": now_instant()}},
                    "request": {"method": "POST", "url": "Encounter"}})];
                for _ in 0..3 {
                    let (code, display) = MEDICINES[rng.below(MEDICINES.len())];
                    entries.push(json!({"resource": {"resourceType": "MedicationStatement",
                            "status": "active", "subject": subject,
                            "context": {"reference": "urn:uuid:encounter"},
                            "medicationCodeableConcept": medicine(code, display),
                            "dateAsserted": now_instant()},
                        "request": {"method": "POST", "url": "MedicationStatement"}}));
                }
                post(
                    "/fhir".into(),
                    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}),
                )
            }
            Operation::Reconciliation => {
                let contained: Vec<Value> = (0..2)
                    .map(|n| {
                        let (code, display) = MEDICINES[rng.below(MEDICINES.len())];
                        json!({"resourceType": "MedicationStatement", "id": format!("m{n}"),
                            "status": "active", "subject": subject,
                            "medicationCodeableConcept": medicine(code, display),
                            "dosage": [{"text": "1 tablet once a day"}]})
                    })
                    .collect();
                let entry: Vec<Value> = (0..2)
                    .map(|n| json!({"item": {"reference": format!("#m{n}")}}))
                    .collect();
                post(
                    format!("/fhir/Patient/{patient}/$reconcile"),
                    json!({"resourceType": "Parameters", "parameter": [{"name": "target",
                        "resource": {"resourceType": "List", "status": "current",
                            "mode": "snapshot", "title": "Admission medication history",
                            "subject": subject, "contained": contained, "entry": entry}}]}),
                )
            }
        }
    }
}

/// What one request came to.
struct Outcome {
    operation: Operation,
    /// From when it was due to when its answer was read.
    latency: Duration,
    /// `Ok(acknowledged writes)` or the reason it failed (status and a line of the body).
    result: Result<Vec<String>, String>,
}

/// The versions a successful write acknowledged (`Type/id/_history/v`).
fn acknowledged(body: &Value) -> Vec<String> {
    let versioned = |r: &Value| -> Option<String> {
        Some(format!(
            "{}/{}/_history/{}",
            r.get("resourceType")?.as_str()?,
            r.get("id")?.as_str()?,
            r.pointer("/meta/versionId")?.as_str()?
        ))
    };
    if body.get("resourceType").and_then(Value::as_str) == Some("Bundle") {
        body.get("entry")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| {
                e.pointer("/response/location")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| e.get("resource").and_then(versioned))
            })
            .collect()
    } else {
        versioned(body).into_iter().collect()
    }
}

struct Node {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Node {
    async fn send(&self, request: &Request) -> Result<Value, String> {
        let mut builder = self
            .client
            .request(
                request.method.clone(),
                format!("{}{}", self.base, request.path),
            )
            .bearer_auth(&self.token)
            .header("Accept", "application/fhir+json");
        if let Some(body) = &request.body {
            builder = builder
                .header("Content-Type", "application/fhir+json")
                .body(body.to_string());
        }
        let response = builder
            .send()
            .await
            .map_err(|e| format!("no answer: {e}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| format!("{status}, body unread: {e}"))?;
        if !status.is_success() {
            let reason: String = text.chars().take(160).collect();
            return Err(format!("{status}: {reason}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// Creates `count` patients through `node` (transactions of 50) and returns their ids.
async fn create_patients(node: &Node, count: usize, seed: u64) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(count);
    let mut made = 0;
    while made < count {
        let batch = (count - made).min(50);
        let entries: Vec<Value> = (0..batch)
            .map(|n| {
                json!({"resource": {"resourceType": "Patient",
                    "name": [{"family": format!("Loadgen-{seed}"), "given": [format!("P{}", made + n)]}],
                    "gender": if (made + n) % 2 == 0 { "female" } else { "male" },
                    "birthDate": format!("19{:02}-01-01", 30 + (made + n) % 70)},
                    "request": {"method": "POST", "url": "Patient"}})
            })
            .collect();
        let request = Request {
            method: reqwest::Method::POST,
            path: "/fhir".into(),
            body: Some(json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})),
        };
        let answer = node
            .send(&request)
            .await
            .map_err(|e| anyhow::anyhow!("creating the load's patients at {}: {e}", node.base))?;
        for location in acknowledged(&answer) {
            if let Some(id) = location
                .strip_prefix("Patient/")
                .and_then(|rest| rest.split('/').next())
            {
                ids.push(id.to_owned());
            }
        }
        made += batch;
    }
    if ids.len() != count {
        bail!(
            "the node acknowledged {} of {count} patients created",
            ids.len()
        );
    }
    Ok(ids)
}

pub async fn run(args: LoadgenArgs) -> anyhow::Result<std::process::ExitCode> {
    let client = http_client("smr-loadgen", Duration::from_secs(60))?;
    let nodes: Vec<Arc<Node>> = args
        .urls
        .iter()
        .map(|url| {
            Arc::new(Node {
                client: client.clone(),
                base: url.trim_end_matches('/').to_owned(),
                token: args.token.clone(),
            })
        })
        .collect();
    if let Some(file) = &args.verify {
        return verify(&nodes[0], file).await;
    }
    if !(args.rate.is_finite() && args.rate > 0.0) {
        bail!("--rate must be a positive number of operations per second");
    }
    if args.patients == 0 {
        bail!("--patients must be at least 1");
    }
    eprintln!(
        "creating {} patients through {}",
        args.patients, nodes[0].base
    );
    let patients = Arc::new(create_patients(&nodes[0], args.patients, args.seed).await?);

    let total = (args.rate * args.duration.as_secs_f64()).round() as u64;
    let progress = indicatif::ProgressBar::new(total);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} sent, {per_sec} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (tx, mut rx) = mpsc::unbounded_channel::<Outcome>();
    let mut acks = match &args.acks {
        Some(path) => Some(BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?,
        )),
        None => None,
    };
    let in_flight = Arc::new(Semaphore::new(args.max_in_flight.max(1)));
    let start = tokio::time::Instant::now();
    let sender = {
        let nodes = nodes.clone();
        let progress = progress.clone();
        let seed = args.seed;
        let rate = args.rate;
        let mix = args.mix;
        tokio::spawn(async move {
            let mut rng = Rng(seed);
            for n in 0..total {
                let due = start + Duration::from_secs_f64(n as f64 / rate);
                tokio::time::sleep_until(due).await;
                let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
                    break;
                };
                let operation = rng.operation(mix);
                let patient = patients[rng.below(patients.len())].clone();
                let request = operation.request(&patient, &mut rng);
                let node = Arc::clone(&nodes[n as usize % nodes.len()]);
                let tx = tx.clone();
                let due = due.into_std();
                tokio::spawn(async move {
                    let answer = node.send(&request).await;
                    let latency = due.elapsed();
                    drop(permit);
                    let result = answer.map(|body| {
                        if operation.writes() {
                            acknowledged(&body)
                        } else {
                            Vec::new()
                        }
                    });
                    let _ = tx.send(Outcome {
                        operation,
                        latency,
                        result,
                    });
                });
                progress.inc(1);
            }
        })
    };

    let mut report = Report::default();
    while let Some(outcome) = rx.recv().await {
        if let (Some(file), Ok(versions)) = (acks.as_mut(), &outcome.result) {
            for v in versions {
                writeln!(file, "{v}").context("writing the acks file")?;
            }
        }
        report.add(outcome);
        if report.errors > 0 {
            progress.set_message(format!("{} errors", report.errors));
        }
    }
    sender.await.context("the sender stopped")?;
    progress.finish_and_clear();
    if let Some(mut file) = acks {
        file.flush().context("writing the acks file")?;
    }
    let elapsed = start.elapsed();
    report.print(elapsed, &args, nodes.len());
    Ok(if report.errors > 0 {
        std::process::ExitCode::from(2)
    } else {
        std::process::ExitCode::SUCCESS
    })
}

#[derive(Default)]
struct Report {
    per_operation: BTreeMap<Operation, OperationStats>,
    errors: u64,
}

struct OperationStats {
    latency: Histogram<u64>,
    ok: u64,
    failed: u64,
    /// Failure reasons and how often each was seen (the first 80 characters).
    reasons: BTreeMap<String, u64>,
}

impl OperationStats {
    fn new() -> Self {
        OperationStats {
            // 1 µs to 10 minutes, 3 significant figures.
            latency: Histogram::new_with_bounds(1, 600_000_000, 3)
                .expect("constant, valid histogram bounds"),
            ok: 0,
            failed: 0,
            reasons: BTreeMap::new(),
        }
    }
}

impl Report {
    fn add(&mut self, outcome: Outcome) {
        let stats = self
            .per_operation
            .entry(outcome.operation)
            .or_insert_with(OperationStats::new);
        let micros = u64::try_from(outcome.latency.as_micros()).unwrap_or(u64::MAX);
        stats.latency.saturating_record(micros.max(1));
        match outcome.result {
            Ok(_) => stats.ok += 1,
            Err(reason) => {
                stats.failed += 1;
                self.errors += 1;
                *stats
                    .reasons
                    .entry(reason.chars().take(80).collect())
                    .or_default() += 1;
            }
        }
    }

    fn print(&self, elapsed: Duration, args: &LoadgenArgs, nodes: usize) {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        println!(
            "smr loadgen: {} nodes, {} mix, target {} ops/s for {:.0} s, {} patients, seed {}",
            nodes,
            match args.mix {
                MixKind::National => "national",
                MixKind::Even => "even",
            },
            args.rate,
            args.duration.as_secs_f64(),
            args.patients,
            args.seed
        );
        println!(
            "{:<18} {:>8} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "operation", "sent", "ok", "errors", "ok/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        let mut all = OperationStats::new();
        let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        for (op, s) in &self.per_operation {
            let _ = all.latency.add(&s.latency);
            all.ok += s.ok;
            all.failed += s.failed;
            println!(
                "{:<18} {:>8} {:>8} {:>7} {:>9.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                op.name(),
                s.ok + s.failed,
                s.ok,
                s.failed,
                s.ok as f64 / seconds,
                ms(&s.latency, 0.5),
                ms(&s.latency, 0.9),
                ms(&s.latency, 0.99),
                s.latency.max() as f64 / 1000.0
            );
        }
        println!(
            "{:<18} {:>8} {:>8} {:>7} {:>9.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            "all",
            all.ok + all.failed,
            all.ok,
            all.failed,
            all.ok as f64 / seconds,
            ms(&all.latency, 0.5),
            ms(&all.latency, 0.9),
            ms(&all.latency, 0.99),
            all.latency.max() as f64 / 1000.0
        );
        for (op, s) in &self.per_operation {
            for (reason, count) in &s.reasons {
                println!("error {}: {count} × {reason}", op.name());
            }
        }
    }
}

/// `--verify FILE`: every acknowledged version read back (vread) through `node`.
async fn verify(node: &Node, file: &PathBuf) -> anyhow::Result<std::process::ExitCode> {
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    let mut checked = 0u64;
    let mut missing = Vec::new();
    for line in reader.lines() {
        let line = line.context("reading the acks file")?;
        let version = line.trim();
        if version.is_empty() {
            continue;
        }
        checked += 1;
        let request = Request {
            method: reqwest::Method::GET,
            path: format!("/fhir/{version}"),
            body: None,
        };
        if let Err(reason) = node.send(&request).await {
            missing.push(format!("{version}: {reason}"));
        }
    }
    println!(
        "verified {checked} acknowledged writes through {}: {} missing",
        node.base,
        missing.len()
    );
    for m in missing.iter().take(20) {
        println!("missing {m}");
    }
    Ok(if missing.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(2)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }

    #[test]
    fn the_mix_follows_its_shares() {
        let mut rng = Rng(7);
        let mut counts: BTreeMap<Operation, u32> = BTreeMap::new();
        for _ in 0..100_000 {
            *counts.entry(rng.operation(MixKind::National)).or_default() += 1;
        }
        let total: u32 = MIX.iter().map(|(_, w)| w).sum();
        for (op, weight) in MIX {
            let expected = f64::from(*weight) / f64::from(total) * 100_000.0;
            let seen = f64::from(counts.get(op).copied().unwrap_or(0));
            assert!(
                (seen - expected).abs() <= 4.0 * expected.sqrt() + 5.0,
                "{op:?}: {seen} vs {expected}"
            );
        }
    }

    #[test]
    fn acknowledged_versions_come_from_resources_and_transaction_answers() {
        let created = json!({"resourceType": "MedicationRequest", "id": "a",
            "meta": {"versionId": "1"}});
        assert_eq!(
            acknowledged(&created),
            vec!["MedicationRequest/a/_history/1"]
        );
        let answer = json!({"resourceType": "Bundle", "type": "transaction-response",
            "entry": [{"response": {"status": "201 Created",
                "location": "Encounter/e/_history/1"}}]});
        assert_eq!(acknowledged(&answer), vec!["Encounter/e/_history/1"]);
        assert!(acknowledged(&json!({"cards": []})).is_empty());
    }

    #[test]
    fn every_request_is_well_formed_json_for_its_path() {
        let mut rng = Rng(1);
        for (op, _) in MIX {
            let request = op.request("p1", &mut rng);
            assert!(request.path.starts_with('/'), "{op:?}");
            if let Some(body) = &request.body {
                assert!(body.is_object(), "{op:?}");
            }
        }
    }
}
