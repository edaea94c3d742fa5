//! `smr import FILE.csv`: GP system medication extracts (`docs/gp-extract.md`), mapped row by
//! row by `smr_gpextract` and written through `App::import_batch` as the practice: a back-end
//! system principal whose organisation is the practice's ODS code and whose setting is
//! `gp-practice` (stated), so each entry's Provenance and the AuditEvents name the practice,
//! as the HL7 v2 intake names its sender.
//!
//! Streaming: one row in memory at a time, plus the pending batch. Authorisations (plans)
//! and issues (orders) are gathered in two batches and the plans always written first, so an
//! issue is only written once its plan is known to be in SMR: an issue whose authorisation
//! was rejected, or is neither earlier in the file nor already stored, is rejected with the
//! reason instead of pointing at nothing. Ids are derived from the practice and the GP
//! system's ids, so a re-run is all `unchanged` (no version, Provenance or audit entity).
//!
//! Every bad row goes to the rejects file with its line and an OperationOutcome; the rest goes
//! on. A file whose header cannot be used is one reject at line 1.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde_json::Value;
use smr_access::{CareSetting, Principal, RequestContext, Role, Scopes};
use smr_app::import::ImportResult;
use smr_app::{App, AppError};
use smr_fhir::{Issue, IssueCode};
use smr_gpextract::{Extract, FileError, Kind, Row, RowError};
use smr_store::{StoreError, WriteOp, WriteOutcome};

use super::source::Origin;
use super::{Rejects, Tally};

const TYPE: &str = "MedicationRequest";

/// Whether `path` is a GP extract (`*.csv`, `*.csv.gz`).
pub fn is_gp_extract(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    name.ends_with(".csv") || name.ends_with(".csv.gz")
}

/// The practice as the writer: Provenance `onBehalfOf` its ODS code, setting `gp-practice`.
pub fn practice_context(ods: &str) -> RequestContext {
    RequestContext::new(
        Principal {
            user: format!("gp-extract:{ods}"),
            role: Role::System,
            organisation: Some(ods.to_owned()),
            setting: CareSetting::GpPractice,
            setting_claimed: true,
            patient: None,
            scopes: Scopes::unrestricted(),
            name: None,
            issuer: "smr-import".into(),
        },
        None,
        format!("gp-extract-{ods}-{}", uuid::Uuid::now_v7()),
    )
}

/// What is known of a plan in this run.
#[derive(Clone, Copy)]
enum PlanState {
    /// Written, unchanged, or found in SMR.
    Stored,
    /// Rejected at this line.
    Rejected(u64),
    /// Not in SMR (and not earlier in the file).
    Absent,
}

/// Loads `files` into `app`, recording every row in `tallies` and every reject in `rejects`.
pub async fn import(
    app: &App,
    files: &[PathBuf],
    practice: Option<&str>,
    batch: usize,
    tallies: &mut BTreeMap<String, Tally>,
    rejects: &mut Rejects,
) -> anyhow::Result<()> {
    let practice = match practice {
        Some(p) => Some(
            smr_gpextract::ods_code(p)
                .with_context(|| format!("--practice {p}: not an ODS code"))?,
        ),
        None => None,
    };
    for file in files {
        let name: Arc<str> = file
            .file_name()
            .map_or_else(
                || file.display().to_string(),
                |n| n.to_string_lossy().into(),
            )
            .into();
        let opened =
            std::fs::File::open(file).with_context(|| format!("reading {}", file.display()))?;
        let gz = name.to_ascii_lowercase().ends_with(".gz");
        let reader: Box<dyn Read> = if gz {
            Box::new(flate2::read::MultiGzDecoder::new(opened))
        } else {
            Box::new(opened)
        };
        let mut extract = match Extract::new(
            BufReader::with_capacity(1 << 16, reader),
            practice.as_deref(),
        ) {
            Ok(e) => e,
            Err(FileError::Io(e)) => {
                return Err(e).with_context(|| format!("reading {}", file.display()));
            }
            Err(FileError::Header(message)) => {
                let origin = origin(&name, 1, None);
                let outcome = outcome(IssueCode::Structure, &message);
                rejects.write(&origin, &outcome)?;
                tally(tallies).rejected += 1;
                continue;
            }
        };
        let mut loader = Loader {
            app,
            file: name.clone(),
            batch,
            practice: None,
            plans: Vec::new(),
            issues: Vec::new(),
            keys: HashSet::new(),
            states: HashMap::new(),
        };
        while let Some(next) = extract.next_row() {
            let row = next.with_context(|| format!("reading {}", file.display()))?;
            match row {
                Ok(row) => loader.push(row, tallies, rejects).await?,
                Err(e) => {
                    rejects.write(&origin(&name, e.line, None), &row_outcome(&e))?;
                    tally(tallies).rejected += 1;
                }
            }
        }
        loader.flush(tallies, rejects).await?;
    }
    Ok(())
}

fn origin(file: &Arc<str>, line: u64, id: Option<&str>) -> Origin {
    Origin {
        file: file.clone(),
        line: usize::try_from(line).unwrap_or(usize::MAX),
        entry: None,
        res_type: Some(TYPE.into()),
        id: id.map(str::to_owned),
    }
}

fn tally(tallies: &mut BTreeMap<String, Tally>) -> &mut Tally {
    tallies.entry(TYPE.to_owned()).or_default()
}

fn outcome(code: IssueCode, message: &str) -> Value {
    smr_fhir::outcome::operation_outcome(&[Issue::error(code, message)])
}

fn row_outcome(e: &RowError) -> Value {
    let code = match e.code {
        "required" => IssueCode::Required,
        "value" => IssueCode::Value,
        _ => IssueCode::Structure,
    };
    outcome(code, &e.message)
}

/// One file's pending batches.
struct Loader<'a> {
    app: &'a App,
    file: Arc<str>,
    batch: usize,
    /// The practice of the pending rows (one writer context per transaction).
    practice: Option<String>,
    plans: Vec<Row>,
    issues: Vec<Row>,
    /// Ids pending: a second write of one id waits for the next transaction.
    keys: HashSet<String>,
    states: HashMap<String, PlanState>,
}

impl Loader<'_> {
    async fn push(
        &mut self,
        row: Row,
        tallies: &mut BTreeMap<String, Tally>,
        rejects: &mut Rejects,
    ) -> anyhow::Result<()> {
        if self.practice.as_deref().is_some_and(|p| p != row.practice)
            || self.keys.contains(row.id())
        {
            self.flush(tallies, rejects).await?;
        }
        self.practice = Some(row.practice.clone());
        self.keys.insert(row.id().to_owned());
        match row.kind {
            Kind::Authorisation => self.plans.push(row),
            Kind::Issue => self.issues.push(row),
        }
        if self.plans.len() + self.issues.len() >= self.batch {
            self.flush(tallies, rejects).await?;
        }
        Ok(())
    }

    /// Writes the pending plans, then the issues whose plans are in SMR.
    async fn flush(
        &mut self,
        tallies: &mut BTreeMap<String, Tally>,
        rejects: &mut Rejects,
    ) -> anyhow::Result<()> {
        self.keys.clear();
        let Some(practice) = self.practice.take() else {
            return Ok(());
        };
        let ctx = practice_context(&practice);
        let plans = std::mem::take(&mut self.plans);
        for (row, stored) in self.write(&ctx, plans, tallies, rejects).await? {
            let state = if stored {
                PlanState::Stored
            } else {
                PlanState::Rejected(row.line)
            };
            self.states.insert(row.id().to_owned(), state);
        }
        let mut ready = Vec::new();
        for row in std::mem::take(&mut self.issues) {
            let plan = row.plan_id();
            let state = match self.states.get(&plan) {
                Some(s) => *s,
                None => {
                    let s = self.lookup(&ctx, &plan).await?;
                    self.states.insert(plan.clone(), s);
                    s
                }
            };
            let reason = match state {
                PlanState::Stored => {
                    ready.push(row);
                    continue;
                }
                PlanState::Rejected(line) => format!(
                    "line {}: not written: its authorisation '{}' (line {line}) was rejected",
                    row.line, row.authorisation_id
                ),
                PlanState::Absent => format!(
                    "line {}: authorisation '{}' of practice {practice} is neither earlier in the file nor in SMR",
                    row.line, row.authorisation_id
                ),
            };
            rejects.write(
                &origin(&self.file, row.line, Some(row.id())),
                &outcome(IssueCode::NotFound, &reason),
            )?;
            tally(tallies).rejected += 1;
        }
        self.write(&ctx, ready, tallies, rejects).await?;
        rejects.flush()
    }

    /// Whether the plan `id` is in SMR already (an earlier extract).
    async fn lookup(&self, ctx: &RequestContext, id: &str) -> anyhow::Result<PlanState> {
        match self.app.read(ctx, TYPE, id).await {
            Ok(_) => Ok(PlanState::Stored),
            Err(AppError::Store(StoreError::NotFound { .. } | StoreError::Gone { .. })) => {
                Ok(PlanState::Absent)
            }
            Err(e) => {
                Err(e).context("the store failed; the import stopped (re-run to complete it)")
            }
        }
    }

    /// Writes `rows` in one batch; each row with whether it is now in SMR.
    async fn write(
        &self,
        ctx: &RequestContext,
        rows: Vec<Row>,
        tallies: &mut BTreeMap<String, Tally>,
        rejects: &mut Rejects,
    ) -> anyhow::Result<Vec<(Row, bool)>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ops: Vec<WriteOp> = rows
            .iter()
            .map(|r| WriteOp::Update {
                resource: r.resource.clone(),
                full_url: None,
                if_match: None,
                patched: false,
                condition: None,
            })
            .collect();
        let results = self
            .app
            .import_batch(ctx, &self.file, ops, false)
            .await
            .context("the store failed; the import stopped (re-run to complete it)")?;
        anyhow::ensure!(
            results.len() == rows.len(),
            "{} answers for {} rows: the import cannot tell which were written",
            results.len(),
            rows.len()
        );
        let mut out = Vec::with_capacity(rows.len());
        for (row, result) in rows.into_iter().zip(results) {
            let t = tally(tallies);
            let stored = match result {
                ImportResult::Written(WriteOutcome::Existing(_)) | ImportResult::Unchanged(_) => {
                    t.unchanged += 1;
                    true
                }
                ImportResult::Written(_) => {
                    t.loaded += 1;
                    true
                }
                ImportResult::Rejected(e) => {
                    t.rejected += 1;
                    let outcome = rejection(&row, &e);
                    rejects.write(&origin(&self.file, row.line, Some(row.id())), &outcome)?;
                    false
                }
            };
            out.push((row, stored));
        }
        Ok(out)
    }
}

/// A refused row's reason; an unknown patient (the conditional subject reference found
/// nobody) is said in the extract's terms.
fn rejection(row: &Row, e: &AppError) -> Value {
    let reference = smr_gpextract::patient_reference(&row.nhs_number);
    let text = e.to_string();
    if text.contains(&reference) && text.contains("matches no resource") {
        return outcome(
            IssueCode::NotFound,
            &format!(
                "line {}, nhs_number: SMR holds no patient with NHS number {} (load the Patient first)",
                row.line, row.nhs_number
            ),
        );
    }
    super::outcome_of(e)
}
