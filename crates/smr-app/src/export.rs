//! FHIR Bulk Data export (Bulk Data Access IG 2.0.0, issue 9): `$export` at system, Patient
//! and Group level, run as a background job that writes NDJSON files.
//!
//! Layout:
//! - [`App::export_start`] authorises (`smr_access::policy::may_export`: `system`, or an
//!   `analyst` for `deidentify=true` only), checks the types, audits the kick-off and spawns
//!   the job (a tokio task).
//! - The job pages through the store type by type with the caller's [`Access`] — the same
//!   predicate a search compiles, so care relationships and consent apply exactly as they do
//!   to a search — never a table dump. Each page is written to `{Type}.ndjson` in the job's
//!   directory before the next is read, so memory holds one page whatever the export's size.
//! - Secondary use (`deidentify=true`, or an analyst's purpose `HRESCH`): patients who opted
//!   out (a `research` Consent denying, see `smr_access::consent`) are left out: the research
//!   actor joins the consent actors (every entry of theirs is withheld in SQL) and their
//!   Patient resource is dropped after a look at their consent view.
//! - De-identification is `smr_deid` (pure), under a key drawn at kick-off and kept only in
//!   the job: stable within one export, unlinkable across exports.
//! - [`App::export_status`], [`App::export_file`], [`App::export_cancel`]: only the user who
//!   started a job sees it (others are told it does not exist).
//!
//! Jobs live in memory: they do not survive a restart (their files stay in the export
//! directory until removed by hand). Files stay until the job is cancelled (`DELETE`).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use smr_access::consent::{ALL_LABELS, RESEARCH_ACTOR};
use smr_access::policy::{self, PatientAccess};
use smr_access::{Interaction, PurposeOfUse, RequestContext, Role};
use smr_fhir::query::{self, Handling, SearchRequest};
use smr_fhir::resource_types::{self, SERVED_TYPES};
use smr_store::{Access, StoreError, StoredResource, is_patient_data};

use crate::audit::{AuditAction, Event};
use crate::{App, AppError, now_micros};

/// Resources read per store page (the search maximum).
const PAGE: usize = query::MAX_COUNT;
/// Patients per search when exporting a Group (a search takes at most 100 values).
const MEMBERS_PER_SEARCH: usize = 100;
/// Jobs one user may have running at once; more is refused (the Bulk Data IG's 429 case).
pub const MAX_RUNNING_PER_USER: usize = 4;

/// Which `$export`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportLevel {
    /// `GET /$export`: every type the caller may export.
    System,
    /// `GET /Patient/$export`: the patient-compartment types, every patient the caller sees.
    Patient,
    /// `GET /Group/{id}/$export`: the patient-compartment types of the Group's member Patients.
    Group(String),
}

/// A kick-off request, its parameters already read from the URL.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub level: ExportLevel,
    /// `_type`; `None`: every type the level and the caller allow.
    pub types: Option<Vec<String>>,
    /// `_since` (a FHIR instant): only resources last updated after it.
    pub since: Option<String>,
    pub deidentify: bool,
    /// The kick-off URL as the client sent it (the manifest's `request`).
    pub request_url: String,
}

/// One file of a finished export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    /// The resource type of its lines (`OperationOutcome` for the error file).
    pub res_type: String,
    /// The file's name within the job (`MedicationRequest.ndjson`).
    pub name: String,
    pub count: u64,
}

/// A finished export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// When the export's view of the store was taken (FHIR instant).
    pub transaction_time: String,
    pub request: String,
    pub deidentified: bool,
    pub output: Vec<ExportFile>,
    pub error: Vec<ExportFile>,
}

/// What polling a job answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportStatus {
    /// Still running; the text is for `X-Progress`.
    Running(String),
    Done(Manifest),
    /// Stopped by an error (logged); nothing of it should be used.
    Failed(String),
}

/// The export jobs of this process.
#[derive(Debug)]
pub(crate) struct Exports {
    dir: PathBuf,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

impl Exports {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Exports {
            dir,
            jobs: Mutex::default(),
        }
    }

    /// A directory of its own under the system's temporary directory (tests, and any App
    /// built without `with_export_dir`).
    pub(crate) fn temporary() -> Self {
        Self::new(
            std::env::temp_dir()
                .join("smr-exports")
                .join(uuid::Uuid::new_v4().simple().to_string()),
        )
    }

    fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.jobs.lock().ok()?.get(id).cloned()
    }
}

#[derive(Debug)]
struct Job {
    id: String,
    /// The starting user: (token issuer, user).
    owner: (String, String),
    dir: PathBuf,
    cancelled: AtomicBool,
    state: Mutex<ExportStatus>,
}

impl Job {
    fn set(&self, status: ExportStatus) {
        if let Ok(mut s) = self.state.lock() {
            *s = status;
        }
    }

    fn status(&self) -> ExportStatus {
        self.state
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|_| ExportStatus::Failed("job state poisoned".into()))
    }
}

fn owner_of(ctx: &RequestContext) -> (String, String) {
    (ctx.principal.issuer.clone(), ctx.principal.user.clone())
}

/// What the job runs with, decided at kick-off.
struct Plan {
    level: ExportLevel,
    types: Vec<String>,
    since: Option<String>,
    access: Access,
    /// Leave out patients who opted out of secondary use.
    opt_outs_apply: bool,
    deid: Option<smr_deid::Deidentifier>,
    /// Group members (Patient ids), for `ExportLevel::Group`.
    members: Vec<String>,
    manifest: Manifest,
}

impl App {
    /// Sets where export files are written (`smr serve`: `<data-dir>/exports`).
    pub fn with_export_dir(mut self, dir: PathBuf) -> Self {
        self.exports = Arc::new(Exports::new(dir));
        self
    }

    /// Starts an export; answers the job id. Audited (the kick-off, allowed or refused).
    pub async fn export_start(
        &self,
        ctx: &RequestContext,
        request: ExportRequest,
    ) -> Result<String, AppError> {
        let event = Event::new("operation", AuditAction::Execute)
            .detail("$export")
            .query(request.request_url.clone());
        let result = self.plan_export(ctx, request).await;
        let (plan, event) = match result {
            Ok(plan) => {
                let mut event = event;
                event.patients = plan.members.clone();
                (plan, event)
            }
            Err(e) => return self.audited(ctx, event, Err(e)).await,
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        // The completion record carries the kick-off's request id (the job runs with its
        // context), which ties the two together.
        self.audit(ctx, &event).await?;
        let job = Arc::new(Job {
            id: id.clone(),
            owner: owner_of(ctx),
            dir: self.exports.dir.join(&id),
            cancelled: AtomicBool::new(false),
            state: Mutex::new(ExportStatus::Running("starting".into())),
        });
        if let Ok(mut jobs) = self.exports.jobs.lock() {
            jobs.insert(id.clone(), job.clone());
        }
        let app = self.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let status = match app.run_export(&job, plan).await {
                Ok(manifest) => {
                    app.audit_completion(&ctx, &job, &manifest).await;
                    ExportStatus::Done(manifest)
                }
                Err(_) if job.cancelled.load(Ordering::SeqCst) => {
                    ExportStatus::Failed("cancelled".into())
                }
                Err(e) => {
                    tracing::error!(job = %job.id, error = %e, "export failed");
                    ExportStatus::Failed(e.to_string())
                }
            };
            if job.cancelled.load(Ordering::SeqCst) {
                remove_dir(job.dir.clone()).await;
            } else {
                job.set(status);
            }
        });
        Ok(id)
    }

    async fn plan_export(
        &self,
        ctx: &RequestContext,
        request: ExportRequest,
    ) -> Result<Plan, AppError> {
        let role = ctx.principal.role;
        if !policy::may_export(role, request.deidentify) {
            return Err(AppError::forbidden(match role {
                Role::Analyst => {
                    "an analyst may export de-identified research extracts only (deidentify=true)"
                        .to_owned()
                }
                _ => format!(
                    "role {role} may not run a bulk export (back-end systems, and analysts \
                     for de-identified extracts)"
                ),
            }));
        }
        if ctx.is_break_glass() {
            return Err(AppError::forbidden(
                "break-glass opens one patient's record, never a bulk export",
            ));
        }
        let running = self.exports.jobs.lock().map_or(0, |jobs| {
            jobs.values()
                .filter(|j| j.owner == owner_of(ctx))
                .filter(|j| matches!(j.status(), ExportStatus::Running(_)))
                .count()
        });
        if running >= MAX_RUNNING_PER_USER {
            return Err(AppError::Store(StoreError::TooCostly(format!(
                "{MAX_RUNNING_PER_USER} exports of yours are still running; wait for one to finish"
            ))));
        }
        let since = match &request.since {
            Some(s) if !smr_fhir::datetime::is_valid_instant(s) => {
                return Err(AppError::BadRequest(format!(
                    "_since must be a FHIR instant (e.g. 2024-01-01T00:00:00Z), got '{s}'"
                )));
            }
            other => other.clone(),
        };
        let types = self.export_types(ctx, &request)?;
        // The caller's own access, as for a search; an analyst (who reads no record) sees
        // every patient for a de-identified extract only, with consent applied as to anyone.
        let mut access = if role == Role::Analyst {
            Access {
                patients: PatientAccess::Any,
                consent_actors: policy::consent_actors(ctx, &[]),
                at: now_micros(),
            }
        } else {
            self.access(ctx).await?
        };
        let opt_outs_apply = request.deidentify || ctx.purpose == PurposeOfUse::Research;
        if opt_outs_apply && let Some(actors) = access.consent_actors.as_mut() {
            actors.push(RESEARCH_ACTOR.to_owned());
        }
        let members = match &request.level {
            ExportLevel::Group(id) => self.group_members(id).await?,
            _ => Vec::new(),
        };
        let deid = request.deidentify.then(|| {
            // 256 bits from two v4 UUIDs (each 122 random bits from the CSPRNG uuid draws
            // from) plus the job's clock: kept only in this job, never written anywhere.
            let mut key = [0u8; 32];
            key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            smr_deid::Deidentifier::new(key)
        });
        let manifest = Manifest {
            transaction_time: smr_fhir::datetime::format_instant(now_micros()),
            request: request.request_url.clone(),
            deidentified: request.deidentify,
            output: Vec::new(),
            error: Vec::new(),
        };
        Ok(Plan {
            level: request.level,
            types,
            since,
            access,
            opt_outs_apply,
            deid,
            members,
            manifest,
        })
    }

    /// The types this export writes: `_type` checked, or every type the level and caller allow.
    fn export_types(
        &self,
        ctx: &RequestContext,
        request: &ExportRequest,
    ) -> Result<Vec<String>, AppError> {
        let p = &ctx.principal;
        let at_level = |ty: &str| {
            // The audit trail is not part of the record; cohorts and stored documents are not
            // de-identified entry by entry, so a research extract leaves them out.
            ty != "AuditEvent"
                && !(request.deidentify && matches!(ty, "Bundle" | "Group"))
                && match request.level {
                    ExportLevel::System => true,
                    ExportLevel::Patient => is_patient_data(ty),
                    // Members are found through a type's patient parameter; a stored Bundle
                    // has none.
                    ExportLevel::Group(_) => {
                        ty == "Patient"
                            || resource_types::served(ty)
                                .is_some_and(|t| !t.compartment_params.is_empty())
                    }
                }
        };
        let role_reads = |ty: &str| {
            if p.role == Role::Analyst {
                policy::RECORD_TYPES.contains(&ty) || policy::SHARED_TYPES.contains(&ty)
            } else {
                policy::role_allows(p.role, ty, Interaction::Search)
            }
        };
        match &request.types {
            None => Ok(SERVED_TYPES
                .iter()
                .map(|t| t.name)
                .filter(|ty| {
                    at_level(ty) && role_reads(ty) && p.scopes.allows(ty, Interaction::Search)
                })
                .map(str::to_owned)
                .collect()),
            Some(types) => {
                let mut out: Vec<String> = Vec::new();
                for ty in types {
                    if !resource_types::is_served(ty) {
                        return Err(AppError::BadRequest(format!(
                            "_type: '{ty}' is not a resource type SMR serves"
                        )));
                    }
                    if !at_level(ty) {
                        return Err(AppError::BadRequest(format!(
                            "_type: {ty} is not exported at this level{}",
                            if request.deidentify {
                                " or in a de-identified extract"
                            } else {
                                ""
                            }
                        )));
                    }
                    if !role_reads(ty) || !p.scopes.allows(ty, Interaction::Search) {
                        return Err(AppError::forbidden(format!(
                            "role {} or the token's scopes do not allow exporting {ty}",
                            p.role
                        )));
                    }
                    if !out.contains(ty) {
                        out.push(ty.clone());
                    }
                }
                Ok(out)
            }
        }
    }

    /// The Patient ids a Group lists (`member.entity`), active members only.
    async fn group_members(&self, id: &str) -> Result<Vec<String>, AppError> {
        let group = self.store.read("Group", id).await?;
        let group: Value = serde_json::from_str(&group.body)
            .map_err(|e| AppError::Store(StoreError::Internal(e.to_string())))?;
        let mut out: Vec<String> = group
            .get("member")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|m| m.get("inactive").and_then(Value::as_bool) != Some(true))
            .filter_map(|m| m.pointer("/entity/reference").and_then(Value::as_str))
            .filter_map(|r| r.strip_prefix("Patient/"))
            .filter(|id| !id.is_empty() && !id.contains('/'))
            .map(str::to_owned)
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn run_export(&self, job: &Job, mut plan: Plan) -> Result<Manifest, AppError> {
        let dir = job.dir.clone();
        tokio::task::spawn_blocking(move || std::fs::create_dir_all(&dir))
            .await
            .map_err(|e| internal(format!("export directory: {e}")))?
            .map_err(|e| internal(format!("export directory: {e}")))?;
        let total_types = plan.types.len();
        let mut errors = NdjsonFile::new(job.dir.join("errors.ndjson"));
        let types = std::mem::take(&mut plan.types);
        for (n, ty) in types.iter().enumerate() {
            let mut out = NdjsonFile::new(job.dir.join(format!("{ty}.ndjson")));
            let chunks: Vec<Option<&[String]>> = match plan.level {
                ExportLevel::Group(_) => {
                    plan.members.chunks(MEMBERS_PER_SEARCH).map(Some).collect()
                }
                _ => vec![None],
            };
            for chunk in chunks {
                let mut cursor = None;
                loop {
                    if job.cancelled.load(Ordering::SeqCst) {
                        return Err(AppError::BadRequest("cancelled".into()));
                    }
                    let request = page_request(ty, plan.since.as_deref(), chunk, cursor.take())?;
                    let page = self.store.search(&request, &plan.access).await?;
                    let mut lines = String::new();
                    let mut problems = String::new();
                    let mut count = 0u64;
                    let mut problem_count = 0u64;
                    for r in &page.matches {
                        if let Some(members) = chunk
                            && !members.contains(&r.owner)
                        {
                            // Found through another member's reference: written with its own
                            // patient's chunk (or not at all), so never twice.
                            continue;
                        }
                        if plan.opt_outs_apply
                            && r.res_type == "Patient"
                            && self.opted_out(&r.id).await?
                        {
                            continue;
                        }
                        match line(r, plan.deid.as_ref()) {
                            Ok(text) => {
                                lines.push_str(&text);
                                lines.push('\n');
                                count += 1;
                            }
                            Err(reason) => {
                                problems.push_str(&outcome_line(&format!(
                                    "{}/{} not exported: {reason}",
                                    r.res_type,
                                    if plan.deid.is_some() {
                                        "(pseudonymised)"
                                    } else {
                                        r.id.as_str()
                                    }
                                )));
                                problem_count += 1;
                            }
                        }
                    }
                    out.append(lines, count).await?;
                    errors.append(problems, problem_count).await?;
                    job.set(ExportStatus::Running(format!(
                        "{ty} ({} of {total_types} types); {} resources written",
                        n + 1,
                        plan.manifest.output.iter().map(|f| f.count).sum::<u64>() + out.count
                    )));
                    match page.next_cursor {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
            }
            if out.finish().await? > 0 {
                plan.manifest.output.push(ExportFile {
                    res_type: ty.clone(),
                    name: format!("{ty}.ndjson"),
                    count: out.count,
                });
            }
        }
        if errors.finish().await? > 0 {
            plan.manifest.error.push(ExportFile {
                res_type: "OperationOutcome".into(),
                name: "errors.ndjson".into(),
                count: errors.count,
            });
        }
        Ok(plan.manifest)
    }

    /// Whether `patient` opted out of secondary use (a `research` Consent denying).
    pub(crate) async fn opted_out(&self, patient: &str) -> Result<bool, AppError> {
        let research = Access {
            patients: PatientAccess::Any,
            consent_actors: Some(vec![RESEARCH_ACTOR.to_owned()]),
            at: now_micros(),
        };
        let view = self.store.patient_view(patient, &research).await?;
        Ok(view.withheld_labels.iter().any(|l| l == ALL_LABELS))
    }

    async fn audit_completion(&self, ctx: &RequestContext, job: &Job, manifest: &Manifest) {
        let counts: Vec<String> = manifest
            .output
            .iter()
            .map(|f| format!("{}={}", f.res_type, f.count))
            .collect();
        let event = Event::new("operation", AuditAction::Execute)
            .detail("$export-complete")
            .query(format!("job={} {}", job.id, counts.join(" ")));
        if let Err(e) = self.audit(ctx, &event).await {
            tracing::error!(error = %e, "audit record of a finished export not written");
        }
    }

    fn owned_job(&self, ctx: &RequestContext, id: &str) -> Result<Arc<Job>, AppError> {
        match self.exports.get(id) {
            // Another user's job is "not found": its existence is not theirs to learn.
            Some(job) if job.owner == owner_of(ctx) => Ok(job),
            _ => Err(AppError::Store(StoreError::NotFound {
                res_type: "$export-status".into(),
                id: id.to_owned(),
            })),
        }
    }

    /// A job's status, for its owner.
    pub fn export_status(&self, ctx: &RequestContext, id: &str) -> Result<ExportStatus, AppError> {
        Ok(self.owned_job(ctx, id)?.status())
    }

    /// Cancels a job (running or finished) and removes its files. Audited.
    pub async fn export_cancel(&self, ctx: &RequestContext, id: &str) -> Result<(), AppError> {
        let event = Event::new("operation", AuditAction::Delete)
            .detail("$export-cancel")
            .query(format!("job={id}"));
        let result = async {
            let job = self.owned_job(ctx, id)?;
            job.cancelled.store(true, Ordering::SeqCst);
            if let Ok(mut jobs) = self.exports.jobs.lock() {
                jobs.remove(id);
            }
            // A running job also removes the directory when it sees the flag, after its last
            // write.
            remove_dir(job.dir.clone()).await;
            Ok(())
        }
        .await;
        self.audited(ctx, event, result).await
    }

    /// The path of one file of a finished job, for its owner. Audited (each download).
    pub async fn export_file(
        &self,
        ctx: &RequestContext,
        id: &str,
        name: &str,
    ) -> Result<PathBuf, AppError> {
        let event = Event::new("operation", AuditAction::Read)
            .detail("$export-file")
            .query(format!("job={id} file={name}"));
        let result = (|| {
            let job = self.owned_job(ctx, id)?;
            let not_found = || {
                AppError::Store(StoreError::NotFound {
                    res_type: format!("$export-file/{id}"),
                    id: name.to_owned(),
                })
            };
            let ExportStatus::Done(manifest) = job.status() else {
                return Err(not_found());
            };
            // Only names the manifest lists: nothing else of the directory is reachable.
            if !manifest
                .output
                .iter()
                .chain(&manifest.error)
                .any(|f| f.name == name)
            {
                return Err(not_found());
            }
            Ok(job.dir.join(name))
        })();
        self.audited(ctx, event, result).await
    }
}

/// One page of `ty`, in id order, updated after `since`, of `members` when given.
fn page_request(
    ty: &str,
    since: Option<&str>,
    members: Option<&[String]>,
    cursor: Option<String>,
) -> Result<SearchRequest, AppError> {
    let mut pairs = Vec::new();
    if let Some(since) = since {
        pairs.push(("_lastUpdated".to_owned(), format!("gt{since}")));
    }
    if let Some(members) = members {
        if ty == "Patient" {
            pairs.push(("_id".to_owned(), members.join(",")));
        } else {
            let param = resource_types::served(ty)
                .and_then(|t| t.compartment_params.first())
                .ok_or_else(|| internal(format!("{ty} has no patient parameter")))?;
            let refs: Vec<String> = members.iter().map(|m| format!("Patient/{m}")).collect();
            pairs.push(((*param).to_owned(), refs.join(",")));
        }
    }
    let mut request = query::parse(ty, &pairs, Handling::Strict)
        .map_err(|issues| {
            AppError::BadRequest(
                issues
                    .iter()
                    .map(|i| i.diagnostics.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?
        .request;
    request.count = PAGE;
    request.total = query::TotalMode::None;
    request.cursor = cursor;
    Ok(request)
}

/// A resource as one NDJSON line: as stored when it is one line already (it is compact
/// JSON unless a client sent it pretty-printed), else re-serialised with its number text kept.
fn line(r: &StoredResource, deid: Option<&smr_deid::Deidentifier>) -> Result<String, String> {
    if deid.is_none() && !r.body.contains('\n') {
        return Ok(r.body.clone());
    }
    let value = smr_fhir::json::parse_str(&r.body).map_err(|e| e.to_string())?;
    let value = match deid {
        Some(d) => d.resource(&value),
        None => value,
    };
    serde_json::to_string(&value).map_err(|e| e.to_string())
}

fn outcome_line(message: &str) -> String {
    let mut text = json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": message}]
    })
    .to_string();
    text.push('\n');
    text
}

fn internal(message: String) -> AppError {
    AppError::Store(StoreError::Internal(message))
}

async fn remove_dir(dir: PathBuf) {
    let _ = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "export files not removed"),
    })
    .await;
}

/// An NDJSON file written page by page, created with its first line. Writes run on the
/// blocking pool, so the runtime's workers never wait on the disk.
struct NdjsonFile {
    path: PathBuf,
    file: Option<std::io::BufWriter<std::fs::File>>,
    count: u64,
}

impl NdjsonFile {
    fn new(path: PathBuf) -> Self {
        NdjsonFile {
            path,
            file: None,
            count: 0,
        }
    }

    async fn append(&mut self, text: String, count: u64) -> Result<(), AppError> {
        if text.is_empty() {
            return Ok(());
        }
        let file = self.file.take();
        let path = self.path.clone();
        let file = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            let mut file = match file {
                Some(f) => f,
                None => std::io::BufWriter::new(create(&path)?),
            };
            file.write_all(text.as_bytes())?;
            Ok(file)
        })
        .await
        .map_err(|e| internal(format!("export write: {e}")))?
        .map_err(|e| internal(format!("export write {}: {e}", self.path.display())))?;
        self.file = Some(file);
        self.count += count;
        Ok(())
    }

    /// Flushes and closes; answers the line count.
    async fn finish(&mut self) -> Result<u64, AppError> {
        if let Some(mut file) = self.file.take() {
            tokio::task::spawn_blocking(move || file.flush())
                .await
                .map_err(|e| internal(format!("export write: {e}")))?
                .map_err(|e| internal(format!("export write {}: {e}", self.path.display())))?;
        }
        Ok(self.count)
    }
}

fn create(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}
