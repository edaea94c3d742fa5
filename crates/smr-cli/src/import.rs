//! `smr import FILE…`: streaming bulk import of FHIR NDJSON (Bulk Data) and Bundles
//! (transaction, batch, collection; `.gz` accepted) into a store (`--data-dir`,
//! `--database-url`) or through a running server (`--url` with `--token`). See
//! `docs/import.md`.
//!
//! One pipeline: a reader thread parses the files (`import/source.rs`) into units and sends
//! them over a bounded channel (so memory stays flat whatever the file size); the writer
//! gathers them into batches and writes each through `smr_app::App::import_batch` (direct) or
//! as a FHIR `batch` Bundle (`import/remote.rs`). Every entry it could not write goes to the
//! rejects file with its line and an OperationOutcome, and the rest goes on.
//!
//! Exit codes: 0 everything loaded (or already there), 2 some entries rejected, 1 a fatal
//! error (files unreadable, store unavailable).

mod gp_extract;
mod hl7v2;
mod remote;
mod source;

use std::collections::{BTreeMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use smr_access::{CareSetting, Principal, RequestContext, Role, Scopes};
use smr_app::import::ImportResult;
use smr_app::{App, AppError};
use smr_fhir::{Issue, IssueCode};
use smr_store::{Store, StoreError, WriteOp, WriteOutcome};

use source::{Entry, Origin, Unit};

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// NDJSON (`.ndjson`, `.jsonl`: one resource or Bundle per line) or JSON (`.json`: one
    /// Bundle or resource) files, optionally gzipped (`.gz`). Patient files go first.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Directory of the embedded store (created if missing).
    #[arg(long, default_value = "./smr-data", env = "SMR_DATA_DIR")]
    data_dir: PathBuf,
    /// A PostgreSQL store instead, e.g. postgres://user@host/smr.
    #[arg(long, env = "SMR_DATABASE_URL", conflicts_with = "url")]
    database_url: Option<String>,
    /// Import through a running SMR server at this FHIR base URL (e.g.
    /// http://localhost:8080/fhir) instead of writing to a store.
    #[arg(long, requires = "token")]
    url: Option<String>,
    /// Bearer token for --url (a back-end system's, e.g. from `smr token --role system`).
    #[arg(long, env = "SMR_TOKEN")]
    token: Option<String>,
    /// ODS code of the organisation the import acts for (direct mode; recorded in Provenance
    /// and audit).
    #[arg(long)]
    org: Option<String>,
    /// Where rejected entries go (NDJSON). Default: import-rejects.ndjson beside the first file.
    #[arg(long)]
    rejects: Option<PathBuf>,
    /// Entries per database transaction (or per batch Bundle with --url). 100 measured
    /// fastest on SQLite: the cost of each statement in a transaction grows with the
    /// transaction (docs/import.md).
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// For HL7 v2 files (`.hl7`): the senders file resolving MSH-4, as `smr serve
    /// --mllp-senders` (docs/hl7v2.md).
    #[arg(long, value_name = "FILE")]
    mllp_senders: Option<PathBuf>,
    /// For HL7 v2 files (`.hl7`): the one sender they come from, e.g. `RTH,hospital`.
    #[arg(long, value_name = "ODS,SETTING[,NAME]")]
    sender: Option<String>,
    /// For GP extracts (`.csv`, `.csv.gz`): the practice's ODS code, for files (or rows)
    /// without a `practice_ods` column (docs/gp-extract.md).
    #[arg(long, value_name = "ODS")]
    practice: Option<String>,
}

/// How many units the reader may be ahead of the writer (in chunks of [`CHUNK`]).
const CHANNEL_CHUNKS: usize = 8;
const CHUNK: usize = 256;

/// Where the entries go (made once per run, so its size does not matter).
#[allow(clippy::large_enum_variant)]
enum Target {
    Direct { app: App, ctx: RequestContext },
    Remote(remote::Remote),
}

/// What became of one entry.
pub(crate) enum Answer {
    Loaded,
    Unchanged,
    Rejected(Value),
}

/// Counts per resource type.
#[derive(Default)]
struct Tally {
    loaded: u64,
    unchanged: u64,
    rejected: u64,
}

pub async fn run(args: ImportArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    for f in &args.files {
        anyhow::ensure!(f.is_file(), "no such file: {}", f.display());
    }
    // GP extracts go last: their rows name patients that FHIR files of the same run load.
    let (gp_files, files): (Vec<PathBuf>, Vec<PathBuf>) = args
        .files
        .iter()
        .cloned()
        .partition(|f| gp_extract::is_gp_extract(f));
    let mut rejected = false;
    if !files.is_empty() {
        rejected = run_files(&args, files).await?;
    }
    if !gp_files.is_empty() {
        rejected |= import_gp(&args, &gp_files).await?;
    }
    Ok(if rejected {
        std::process::ExitCode::from(2)
    } else {
        std::process::ExitCode::SUCCESS
    })
}

/// The rejects file of a run: `--rejects`, or beside the first file.
fn rejects_path(args: &ImportArgs, first: &Path) -> PathBuf {
    args.rejects.clone().unwrap_or_else(|| {
        first
            .parent()
            .unwrap_or(Path::new("."))
            .join("import-rejects.ndjson")
    })
}

/// Loads GP extracts into a store (not through `--url`: the practice is the writer, which a
/// server's token cannot say); whether any row was rejected.
async fn import_gp(args: &ImportArgs, files: &[PathBuf]) -> anyhow::Result<bool> {
    anyhow::ensure!(
        args.url.is_none(),
        "GP extracts are imported into a store (--data-dir or --database-url), not through --url"
    );
    let path = rejects_path(args, &args.files[0]);
    // FHIR files of the same run may have written rejects there already: append to them.
    let mut rejects = Rejects::open(&path, true)?;
    let Target::Direct { app, .. } = open_target(args).await? else {
        anyhow::bail!("GP extracts need a store");
    };
    let mut tallies = BTreeMap::new();
    let started = Instant::now();
    let result = gp_extract::import(
        &app,
        files,
        args.practice.as_deref(),
        args.batch,
        &mut tallies,
        &mut rejects,
    )
    .await;
    if let Err(e) = app.drain_feed().await {
        tracing::warn!(error = %e, "change feed not drained: a server will process it");
    }
    app.close().await;
    let count = rejects.finish()?;
    result?;
    println!("GP extracts:");
    print_summary(&tallies, started.elapsed());
    if count > 0 {
        println!(
            "{count} rows rejected: see {} (line, reason)",
            path.display()
        );
    }
    Ok(count > 0)
}

/// FHIR and HL7 v2 files; whether anything was rejected or refused.
async fn run_files(args: &ImportArgs, files: Vec<PathBuf>) -> anyhow::Result<bool> {
    // HL7 v2 files go first, message by message, as the MLLP listener stores them.
    let (hl7_files, fhir_files): (Vec<PathBuf>, Vec<PathBuf>) =
        files.into_iter().partition(|f| hl7v2::is_hl7(f));
    let hl7_refused = if hl7_files.is_empty() {
        0
    } else {
        import_hl7(args, &hl7_files).await?
    };
    if fhir_files.is_empty() {
        return Ok(hl7_refused > 0);
    }
    let mut files = fhir_files;
    // Entries of a patient's record need their Patient first (SMR refuses an entry whose
    // patient it does not hold), and Bulk Data exports refer to practitioners and places by
    // conditional reference (`Practitioner?identifier=…`), which must find them: Patient
    // files go first, then those of shared resources, then the rest in the order given.
    files.sort_by_key(|f| load_order(f));
    let rejects_path = rejects_path(args, &args.files[0]);
    let target = open_target(args).await?;
    let mut rejects = Rejects::open(&rejects_path, false)?;
    let bytes = Arc::new(AtomicU64::new(0));
    let total_bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Unit>>(CHANNEL_CHUNKS);
    let reader_bytes = bytes.clone();
    let reader_files = files.clone();
    let reader = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut open = true;
        for file in &reader_files {
            source::read_file(file, reader_bytes.clone(), |unit| {
                chunk.push(unit);
                if chunk.len() >= CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                    open = tx.blocking_send(full).is_ok();
                }
                open
            })
            .with_context(|| format!("reading {}", file.display()))?;
            if !open {
                return Ok(());
            }
        }
        if !chunk.is_empty() {
            let _ = tx.blocking_send(chunk);
        }
        Ok(())
    });

    let mut progress = Progress::new(total_bytes, bytes.clone());
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let mut batch = Batch::default();
    let started = Instant::now();
    let written = async {
        while let Some(chunk) = rx.recv().await {
            for unit in chunk {
                match unit {
                    Unit::Single(entry) => {
                        if !batch.accepts(&entry) || batch.entries.len() >= args.batch {
                            flush(&target, &mut batch, &mut tallies, &mut rejects).await?;
                        }
                        batch.push(entry);
                    }
                    Unit::Transaction(entries) => {
                        flush(&target, &mut batch, &mut tallies, &mut rejects).await?;
                        let answers = write(&target, &entries, true).await?;
                        record(&entries, answers, &mut tallies, &mut rejects)?;
                    }
                    Unit::Reject(origin, issues) => {
                        let outcome = smr_fhir::outcome::operation_outcome(&issues);
                        rejects.write(&origin, &outcome)?;
                        tally(&mut tallies, &origin).rejected += 1;
                    }
                }
            }
            progress.update(&tallies, started);
        }
        flush(&target, &mut batch, &mut tallies, &mut rejects).await?;
        anyhow::Ok(())
    }
    .await;
    // Stop the reader first when the writer failed (its channel is closed by dropping rx).
    drop(rx);
    let read = reader.await.context("the reader thread failed")?;
    written?;
    read?;
    progress.finish();
    if let Target::Direct { app, .. } = &target {
        // What follows the commits (the PGx re-check of imported genotypes) is the change
        // feed's; no server is running here, so run its consumers to the end now.
        if let Err(e) = app.drain_feed().await {
            tracing::warn!(error = %e, "change feed not drained: a server will process it");
        }
        app.close().await;
    }
    let rejected = rejects.finish()?;
    print_summary(&tallies, started.elapsed());
    if rejected > 0 {
        println!(
            "{rejected} entries rejected: see {} (line, reason)",
            rejects_path.display()
        );
    }
    Ok(rejected > 0 || hl7_refused > 0)
}

/// Stores the HL7 v2 messages of `files` directly (not through `--url`); the number refused.
async fn import_hl7(args: &ImportArgs, files: &[PathBuf]) -> anyhow::Result<u64> {
    anyhow::ensure!(
        args.url.is_none(),
        "HL7 v2 files are imported into a store (--data-dir or --database-url), not through --url"
    );
    let senders = hl7v2::senders(args.mllp_senders.as_deref(), args.sender.as_deref())?;
    let Target::Direct { app, .. } = open_target(args).await? else {
        anyhow::bail!("HL7 v2 files need a store");
    };
    let counts = hl7v2::import(&app, &senders, files).await;
    if let Err(e) = app.drain_feed().await {
        tracing::warn!(error = %e, "change feed not drained: a server will process it");
    }
    app.close().await;
    let counts = counts?;
    println!(
        "HL7 v2: {} messages stored (or already stored), {} refused",
        counts.stored, counts.refused
    );
    Ok(counts.refused)
}

/// Shared resources that entries of a record refer to (their file names start with the type,
/// as Bulk Data names them).
const SHARED_FIRST: &[&str] = &[
    "Organization",
    "Location",
    "Practitioner",
    "PractitionerRole",
    "Medication.",
    "Medication-",
];

fn load_order(path: &Path) -> u8 {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if name.starts_with("Patient") {
        0
    } else if SHARED_FIRST.iter().any(|t| name.starts_with(t)) {
        1
    } else {
        2
    }
}

async fn open_target(args: &ImportArgs) -> anyhow::Result<Target> {
    if let Some(url) = &args.url {
        let token = args.token.clone().context("--url needs --token")?;
        return Ok(Target::Remote(remote::Remote::new(url, &token)?));
    }
    let url = match &args.database_url {
        Some(url) => url.clone(),
        None => {
            std::fs::create_dir_all(&args.data_dir)
                .with_context(|| format!("creating {}", args.data_dir.display()))?;
            format!("sqlite://{}", args.data_dir.join("smr.db").display())
        }
    };
    let store = Store::open(&url)
        .await
        .with_context(|| format!("opening store {}", crate::redact(&url)))?;
    let ctx = RequestContext::new(
        Principal {
            user: "smr-import".into(),
            role: Role::System,
            organisation: args.org.clone(),
            setting: CareSetting::Unspecified,
            setting_claimed: false,
            patient: None,
            scopes: Scopes::unrestricted(),
            name: Some("smr import".into()),
            issuer: "smr".into(),
        },
        None,
        format!("import-{}", uuid::Uuid::now_v7()),
    );
    Ok(Target::Direct {
        app: App::new(store),
        ctx,
    })
}

/// The entries gathered for the next transaction.
#[derive(Default)]
struct Batch {
    entries: Vec<Entry>,
    keys: HashSet<String>,
}

impl Batch {
    /// A second write of one target (or one conditional create's criteria) waits for the next
    /// batch: within one transaction it would fail, or create twice.
    fn accepts(&self, entry: &Entry) -> bool {
        entry.key.as_ref().is_none_or(|k| !self.keys.contains(k))
    }

    fn push(&mut self, entry: Entry) {
        if let Some(k) = &entry.key {
            self.keys.insert(k.clone());
        }
        self.entries.push(entry);
    }
}

async fn flush(
    target: &Target,
    batch: &mut Batch,
    tallies: &mut BTreeMap<String, Tally>,
    rejects: &mut Rejects,
) -> anyhow::Result<()> {
    if batch.entries.is_empty() {
        return Ok(());
    }
    let entries = std::mem::take(&mut batch.entries);
    batch.keys.clear();
    let answers = write(target, &entries, false).await?;
    record(&entries, answers, tallies, rejects)
}

/// Writes `entries` (one transaction when `atomic`) and answers each.
async fn write(target: &Target, entries: &[Entry], atomic: bool) -> anyhow::Result<Vec<Answer>> {
    let source = entries
        .first()
        .map(|e| e.origin.file.to_string())
        .unwrap_or_default();
    match target {
        Target::Direct { app, ctx } => {
            let ops: Vec<WriteOp> = entries.iter().map(|e| e.op.clone()).collect();
            let results = app
                .import_batch(ctx, &source, ops, atomic)
                .await
                .context("the store failed; the import stopped (re-run to complete it)")?;
            Ok(results
                .into_iter()
                .map(|r| match r {
                    // A conditional create that found its resource wrote nothing.
                    ImportResult::Written(WriteOutcome::Existing(_))
                    | ImportResult::Unchanged(_) => Answer::Unchanged,
                    ImportResult::Written(_) => Answer::Loaded,
                    ImportResult::Rejected(e) => Answer::Rejected(outcome_of(&e)),
                })
                .collect())
        }
        Target::Remote(remote) => remote.write(entries, atomic).await,
    }
}

fn record(
    entries: &[Entry],
    answers: Vec<Answer>,
    tallies: &mut BTreeMap<String, Tally>,
    rejects: &mut Rejects,
) -> anyhow::Result<()> {
    if answers.len() != entries.len() {
        bail!(
            "{} answers for {} entries: the import cannot tell which were written",
            answers.len(),
            entries.len()
        );
    }
    for (entry, answer) in entries.iter().zip(answers) {
        let t = tally(tallies, &entry.origin);
        match answer {
            Answer::Loaded => t.loaded += 1,
            Answer::Unchanged => t.unchanged += 1,
            Answer::Rejected(outcome) => {
                t.rejected += 1;
                rejects.write(&entry.origin, &outcome)?;
            }
        }
    }
    rejects.flush()
}

fn tally<'a>(tallies: &'a mut BTreeMap<String, Tally>, origin: &Origin) -> &'a mut Tally {
    let ty = origin.res_type.as_deref().unwrap_or("(unreadable)");
    tallies.entry(ty.to_owned()).or_default()
}

/// A failed entry's reason as an OperationOutcome, as the API would answer it.
fn outcome_of(error: &AppError) -> Value {
    let store = match error {
        AppError::Forbidden(m) => return outcome(IssueCode::Forbidden, m),
        AppError::BadRequest(m) => return outcome(IssueCode::Invalid, m),
        AppError::Store(s) => s,
        AppError::Entry(e) => &e.error,
    };
    let code = match store {
        StoreError::Invalid(issues) => return smr_fhir::outcome::operation_outcome(issues),
        StoreError::NotFound { .. } => IssueCode::NotFound,
        StoreError::Gone { .. } => IssueCode::Deleted,
        StoreError::PreconditionFailed(_) => IssueCode::Conflict,
        StoreError::Conflict(_) => IssueCode::Duplicate,
        StoreError::BadRequest(_) => IssueCode::Invalid,
        StoreError::TooCostly(_) => IssueCode::TooCostly,
        _ => IssueCode::Exception,
    };
    outcome(code, &store.to_string())
}

fn outcome(code: IssueCode, message: &str) -> Value {
    smr_fhir::outcome::operation_outcome(&[Issue::error(code, message)])
}

/// The rejects file: one JSON object per rejected entry.
struct Rejects {
    path: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    count: u64,
    /// It held earlier rejects of this run when opened (so it is kept, even if empty now).
    earlier: bool,
}

impl Rejects {
    /// Creates the file, or (`append`) adds to what an earlier phase of this run wrote.
    fn open(path: &Path, append: bool) -> anyhow::Result<Self> {
        let earlier = append && std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
        let file = if earlier {
            std::fs::OpenOptions::new().append(true).open(path)
        } else {
            std::fs::File::create(path)
        }
        .with_context(|| format!("creating the rejects file {}", path.display()))?;
        Ok(Rejects {
            path: path.to_owned(),
            out: std::io::BufWriter::new(file),
            count: 0,
            earlier,
        })
    }

    fn write(&mut self, origin: &Origin, outcome: &Value) -> anyhow::Result<()> {
        let mut line = json!({
            "file": &*origin.file,
            "line": origin.line,
            "resourceType": origin.res_type,
            "id": origin.id,
            "outcome": outcome,
        });
        if let Some(entry) = origin.entry {
            line["entry"] = json!(entry);
        }
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")?;
        self.count += 1;
        Ok(())
    }

    /// Flushed after every batch, so a killed import's file lists what it rejected.
    fn flush(&mut self) -> anyhow::Result<()> {
        self.out.flush().context("writing the rejects file")
    }

    /// Closes the file (removed when empty) and answers how many were rejected.
    fn finish(mut self) -> anyhow::Result<u64> {
        self.flush()?;
        if self.count == 0 && !self.earlier {
            let _ = std::fs::remove_file(&self.path);
        }
        Ok(self.count)
    }
}

/// A progress bar with rate and ETA on a terminal; otherwise a line on standard error at
/// most every few seconds (logs, tests).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    bytes: Arc<AtomicU64>,
    last_line: Instant,
}

impl Progress {
    fn new(total: u64, bytes: Arc<AtomicU64>) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {bytes}/{total_bytes} {msg} ETA {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            bytes,
            last_line: Instant::now() - Duration::from_secs(60),
        }
    }

    fn update(&mut self, tallies: &BTreeMap<String, Tally>, started: Instant) {
        let (loaded, unchanged, rejected) = totals(tallies);
        let done = loaded + unchanged + rejected;
        let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-3);
        let msg = format!("{done} entries ({rejected} rejected) {rate:.0}/s");
        match &self.bar {
            Some(bar) => {
                bar.set_position(self.bytes.load(Ordering::Relaxed));
                bar.set_message(msg);
            }
            None if self.last_line.elapsed() >= Duration::from_secs(2) => {
                self.last_line = Instant::now();
                eprintln!("import progress: {msg}");
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn totals(tallies: &BTreeMap<String, Tally>) -> (u64, u64, u64) {
    tallies.values().fold((0, 0, 0), |(l, u, r), t| {
        (l + t.loaded, u + t.unchanged, r + t.rejected)
    })
}

fn print_summary(tallies: &BTreeMap<String, Tally>, elapsed: Duration) {
    println!(
        "{:<28} {:>10} {:>10} {:>10}",
        "resourceType", "loaded", "unchanged", "rejected"
    );
    for (ty, t) in tallies {
        println!(
            "{ty:<28} {:>10} {:>10} {:>10}",
            t.loaded, t.unchanged, t.rejected
        );
    }
    let (loaded, unchanged, rejected) = totals(tallies);
    println!(
        "{:<28} {loaded:>10} {unchanged:>10} {rejected:>10}",
        "total"
    );
    let secs = elapsed.as_secs_f64().max(1e-3);
    println!(
        "{} entries in {secs:.1} s ({:.0} entries/s)",
        loaded + unchanged + rejected,
        (loaded + unchanged + rejected) as f64 / secs
    );
}
