//! Pharmacogenomic results and the re-check of current medicines (moved from smr-server).
//!
//! - [`App::pgx_results`]: a patient's usable results for a CDS call, through a cache kept
//!   with the store's Observation change count ([`ResultsCache`]).
//! - [`App::import_pgx`]: `$pgx-outside-calls` and `$pgx-vcf` (the wire parses the file into
//!   write ops; here the caller, the patient and each op are checked and the write audited).
//! - `recheck` (run by the change feed's `pgx-recheck` consumer, see `feed`): when
//!   genotype/phenotype Observations are written, the patient's active medicines are re-checked and one DetectedIssue is
//!   created per affected medicine (conditional create on its identifier, so a repeat creates
//!   nothing). The issue carries the medicine's security labels, so a consent that withholds
//!   the medicine withholds the issue too. SMR does this as itself: its reads are not
//!   audited, its writes are, with SMR as the agent.
//! - [`IssueEvents`], [`App::event_filter`]: every DetectedIssue created is announced to
//!   event-stream subscribers, each of whom is shown only the issues of patients they may see
//!   (and not those a consent withholds from them).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use smr_access::policy::{Operation, operation_allowed};
use smr_access::{CareSetting, Interaction, Principal, RequestContext, Role, Scopes};
use smr_cds::genotype::{self, GeneResult, PatientResults};
use smr_fhir::datetime;
use smr_fhir::query::{self, Handling};
use smr_store::{Access, PatientView, StoreError, StoredResource, WriteOp, WriteOutcome};
use tokio::sync::broadcast;

use crate::audit::{AuditAction, Event, write_record};
use crate::authorize::check_interaction;
use crate::{App, AppError, WriteKind, now_micros};

/// A DetectedIssue created by a re-check, announced to event-stream subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueEvent {
    /// `DetectedIssue/{id}`.
    pub issue: String,
    /// The patient's id.
    pub patient: String,
}

/// The broadcast of new DetectedIssues (one per App, not a process-wide static).
#[derive(Debug)]
pub struct IssueEvents {
    sender: broadcast::Sender<IssueEvent>,
}

impl Default for IssueEvents {
    fn default() -> Self {
        // Slow subscribers lose the oldest events (and are told how many) rather than
        // holding writers back.
        IssueEvents {
            sender: broadcast::channel(1024).0,
        }
    }
}

impl IssueEvents {
    pub fn subscribe(&self) -> broadcast::Receiver<IssueEvent> {
        self.sender.subscribe()
    }

    pub(crate) fn send(&self, event: IssueEvent) {
        // No subscribers is normal; the send error only says so.
        let _ = self.sender.send(event);
    }
}

// ---------------------------------------------------------------------------
// The results cache

/// Entries kept at most; when full, the cache starts again empty (simple, bounded, and the
/// next calls refill it with the patients being prescribed for now).
const CAPACITY: usize = 100_000;

/// What was read for one patient, and the change count it is valid for.
type Entry = (u64, Arc<PatientResults>);

/// Patients' pharmacogenomic results as last read from the store, for CDS calls that come
/// without a prefetch.
///
/// Why: such a call otherwise searches the store for the patient's genotype Observations and
/// reads them, on every order a prescriber selects, while genotypes change rarely. Why it
/// cannot serve a stale genotype: an entry is kept with the store's Observation change count
/// taken *before* the read that filled it, and is used only while that count is unchanged
/// (see `smr_store::Store::change_count`). Any committed Observation write, for any patient,
/// retires every entry. On stores where this process does not see every write (PostgreSQL)
/// there is no count, and nothing is cached.
///
/// Entries hold every usable result of the patient (read with unrestricted access); they are
/// handed only to callers whose view of the patient withholds nothing.
#[derive(Debug, Default)]
pub struct ResultsCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl ResultsCache {
    /// The results read for `patient` when the change count was `count`, if any.
    pub fn get(&self, patient: &str, count: u64) -> Option<Arc<PatientResults>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(patient)
            .filter(|(c, _)| *c == count)
            .map(|(_, r)| Arc::clone(r))
    }

    /// Keeps `results`, read after the change count was `count`.
    pub fn put(&self, patient: &str, count: u64, results: Arc<PatientResults>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CAPACITY && !entries.contains_key(patient) {
            entries.clear();
        }
        entries.insert(patient.to_owned(), (count, results));
    }
}

// ---------------------------------------------------------------------------
// Helpers

/// Whether `id` is a FHIR id (`[A-Za-z0-9\-\.]{1,64}`): checked before an id is put into a
/// query text, so it cannot add criteria of its own.
pub(crate) fn check_patient_id(id: &str) -> Result<(), AppError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(AppError::BadRequest(format!(
            "'{id}' is not a valid patient id"
        )))
    }
}

pub(crate) fn parse_body(r: &StoredResource) -> Option<Value> {
    serde_json::from_str(&r.body).ok()
}

pub(crate) fn patient_of_subject(obs: &Value) -> Option<String> {
    let reference = obs.pointer("/subject/reference").and_then(Value::as_str)?;
    let mut parts = reference.rsplit('/');
    let id = parts.next()?;
    (parts.next()? == "Patient").then(|| id.to_owned())
}

/// The context SMR acts in for its own processing (re-checks): a back-end system named
/// `smr`, with no organisation, for treatment.
pub fn system_context(request_id: String) -> RequestContext {
    RequestContext::new(
        Principal {
            user: "smr".into(),
            role: Role::System,
            organisation: None,
            setting: CareSetting::Unspecified,
            setting_claimed: false,
            patient: None,
            scopes: Scopes::unrestricted(),
            name: Some("SMR".into()),
            issuer: "smr".into(),
        },
        None,
        request_id,
    )
}

/// The `meta.security` codings of a resource (empty when it has none).
fn security_labels(resource: &Value) -> Vec<Value> {
    resource
        .pointer("/meta/security")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Adds `labels` to `resource.meta.security`, skipping codings already there.
pub(crate) fn add_security_labels(resource: &mut Value, labels: &[Value]) {
    if labels.is_empty() {
        return;
    }
    let Some(obj) = resource.as_object_mut() else {
        return;
    };
    let meta = obj.entry("meta").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    let security = meta.entry("security").or_insert_with(|| json!([]));
    let Some(list) = security.as_array_mut() else {
        return;
    };
    for label in labels {
        let same = |c: &Value| {
            c.get("system") == label.get("system") && c.get("code") == label.get("code")
        };
        if !list.iter().any(same) {
            list.push(label.clone());
        }
    }
}

impl App {
    /// Every match of a search written as `Type?a=b&c=d`, up to `MAX_COUNT`, as `access`
    /// sees it: a patient with more PGx results or active medicines than that is not
    /// expected.
    pub(crate) async fn search_all(
        &self,
        search: &str,
        access: &Access,
    ) -> Result<Vec<StoredResource>, AppError> {
        let (res_type, query_text) = search.split_once('?').unwrap_or((search, ""));
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query_text.as_bytes())
            .into_owned()
            .collect();
        let mut parsed = query::parse(res_type, &pairs, Handling::Strict).map_err(|issues| {
            let text: Vec<String> = issues.into_iter().map(|i| i.diagnostics).collect();
            AppError::BadRequest(text.join("; "))
        })?;
        parsed.request.count = query::MAX_COUNT;
        // Only the matches are used: skip the COUNT query an accurate total would cost.
        parsed.request.total = query::TotalMode::None;
        Ok(self.store.search(&parsed.request, access).await?.matches)
    }

    /// The patient's usable pharmacogenomic results (one per gene) as `access` sees them.
    /// Results that cannot be read are logged and left out: one bad Observation must not
    /// hide the others.
    async fn read_results(
        &self,
        patient: &str,
        access: &Access,
    ) -> Result<Vec<GeneResult>, AppError> {
        let found = self
            .search_all(&smr_cds::hooks::genotype_query(patient), access)
            .await?;
        let mut results = Vec::new();
        for r in &found {
            match genotype::read_observation_json(&r.body) {
                Ok(Some(g)) => results.push(g),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(observation = %r.reference(), error = %e, "pharmacogenomic result not usable")
                }
            }
        }
        Ok(genotype::select_results(results))
    }

    /// The patient's usable pharmacogenomic results, for a CDS call without a genotypes
    /// prefetch. The caller must be allowed CDS calls, may read Observations and may open
    /// the patient's record (`Forbidden` otherwise); results a consent withholds from them
    /// are left out. Not audited: the CDS call is, once (see [`App::cds_authorize`]).
    ///
    /// Read through [`ResultsCache`] when the store keeps change counts and the caller's
    /// view withholds nothing.
    pub async fn pgx_results(
        &self,
        ctx: &RequestContext,
        patient: &str,
    ) -> Result<Arc<PatientResults>, AppError> {
        check_patient_id(patient)?;
        if !operation_allowed(ctx.principal.role, Operation::CdsCall) {
            return Err(AppError::forbidden(format!(
                "role {} may not call CDS services",
                ctx.principal.role
            )));
        }
        check_interaction(ctx, "Observation", Interaction::Search)?;
        let access = self.access(ctx).await?;
        let view = self.patient_view(ctx, &access, patient).await?;
        self.pgx_results_seen(patient, &access, &view).await
    }

    /// [`App::pgx_results`] for an authorised CDS call, with the access and view its check
    /// computed (`Forbidden` for a call about a patient not on record).
    pub async fn cds_pgx_results(
        &self,
        ctx: &RequestContext,
        patient: &str,
        call: &crate::cds::CdsCall,
    ) -> Result<Arc<PatientResults>, AppError> {
        check_interaction(ctx, "Observation", Interaction::Search)?;
        let (access, view) = call
            .seen()
            .ok_or_else(|| AppError::forbidden(format!("patient '{patient}' is not on record")))?;
        self.pgx_results_seen(patient, access, view).await
    }

    /// The results of `patient` as a caller with `access` and `view` may have them.
    async fn pgx_results_seen(
        &self,
        patient: &str,
        access: &Access,
        view: &smr_store::PatientView,
    ) -> Result<Arc<PatientResults>, AppError> {
        let wrap = |results| Arc::new(PatientResults::new(results));
        if !view.withheld_labels.is_empty() {
            // Some entries are withheld from this caller: their own reading, uncached.
            return Ok(wrap(self.read_results(patient, access).await?));
        }
        let all = Access::unrestricted();
        // The count is taken before the read: see `smr_store::Store::change_count`.
        let Some(count) = self.store.change_count("Observation") else {
            return Ok(wrap(self.read_results(patient, &all).await?));
        };
        if let Some(hit) = self.pgx_results.get(patient, count) {
            return Ok(hit);
        }
        let results = wrap(self.read_results(patient, &all).await?);
        self.pgx_results.put(patient, count, Arc::clone(&results));
        Ok(results)
    }

    /// `$pgx-outside-calls` / `$pgx-vcf`: stores `ops` (the results read from the file, and
    /// their Provenance) for `patient`. The caller's role must allow PGx intake, the patient
    /// must exist (`NotFound`) and be one the caller may see; then the ops are written like
    /// any write (each checked, audited as `operation`), which re-checks the patient's
    /// medicines.
    pub async fn import_pgx(
        &self,
        ctx: &RequestContext,
        patient: &str,
        ops: Vec<WriteOp>,
        operation: &'static str,
    ) -> Result<Vec<WriteOutcome>, AppError> {
        let checked = async {
            check_patient_id(patient)?;
            if !operation_allowed(ctx.principal.role, Operation::PgxIntake) {
                return Err(AppError::forbidden(format!(
                    "role {} may not import pharmacogenomic results",
                    ctx.principal.role
                )));
            }
            if ctx.is_break_glass() && !smr_access::policy::may_break_glass(ctx.principal.role) {
                return Err(AppError::forbidden(format!(
                    "role {} cannot use break-glass access",
                    ctx.principal.role
                )));
            }
            let access = self.access(ctx).await?;
            // 404 for an unknown patient comes before the relationship check.
            self.store.read("Patient", patient).await?;
            self.patient_view(ctx, &access, patient).await?;
            Ok(())
        }
        .await;
        if let Err(e) = checked {
            let event = Event::new("operation", AuditAction::Execute)
                .detail(operation)
                .patient(patient);
            return self.audited(ctx, event, Err(e)).await;
        }
        self.write(ctx, ops, WriteKind::Operation(operation)).await
    }

    /// Creates the DetectedIssues for one patient's current medicines, as SMR itself (one
    /// audited transaction); returns their references. Run by the change feed's
    /// `pgx-recheck` consumer (`feed`); the DetectedIssues it writes are announced by the
    /// feed's event consumer like any other.
    ///
    /// Writes through the store rather than [`App::write`]: SMR needs no authorisation.
    pub(crate) async fn recheck(&self, patient: &str) -> Result<Vec<String>, AppError> {
        check_patient_id(patient)?;
        let all = Access::unrestricted();
        let results = self.read_results(patient, &all).await?;
        if results.is_empty() {
            return Ok(Vec::new());
        }
        let mut medicines = self
            .search_all(
                &format!("MedicationRequest?patient={patient}&status=active"),
                &all,
            )
            .await?;
        medicines.extend(
            self.search_all(
                &format!("MedicationStatement?patient={patient}&status=active"),
                &all,
            )
            .await?,
        );
        let patient_ref = format!("Patient/{patient}");
        let identified = datetime::format_instant(now_micros());
        let mut ops = Vec::new();
        let mut identifiers = BTreeSet::new();
        for m in &medicines {
            let Some(order) = parse_body(m) else { continue };
            let labels = security_labels(&order);
            for finding in smr_cds::assess_order(&order, &results) {
                let Some(mut issue) =
                    smr_cds::issue::detected_issue(&finding, &patient_ref, &identified)
                else {
                    continue;
                };
                let Some(value) = smr_cds::issue::identifier_value(&finding) else {
                    continue;
                };
                // Two findings with one identifier would both be created in one transaction.
                if !identifiers.insert(value.clone()) {
                    continue;
                }
                // A consent that withholds the medicine withholds what is said about it.
                add_security_labels(&mut issue, &labels);
                let condition = vec![(
                    "identifier".to_owned(),
                    format!("{}|{value}", smr_cds::issue::identifier_system()),
                )];
                let if_none_exist = query::parse("DetectedIssue", &condition, Handling::Strict)
                    .map_err(|issues| AppError::Store(StoreError::Internal(format!("{issues:?}"))))?
                    .request;
                ops.push(WriteOp::Create {
                    resource: issue,
                    full_url: None,
                    if_none_exist: Some(if_none_exist),
                });
            }
        }
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let ctx = system_context(format!("recheck-{}", uuid::Uuid::now_v7()));
        let event = Event::new("operation", AuditAction::Execute)
            .detail("pgx-recheck")
            .patient(patient);
        // SMR's own DetectedIssues say so: their Provenance names the `smr` system principal.
        let provenance = crate::provenance::template(&ctx, ctx.principal.setting, None);
        let outcomes = self
            .store
            .transaction_with_provenance(
                ops,
                Box::new(move |result| write_record(&ctx, event, result)),
                Some(provenance),
            )
            .await?;
        Ok(outcomes
            .iter()
            .filter_map(|o| match o {
                WriteOutcome::Created(r) => Some(r.reference()),
                _ => None,
            })
            .collect())
    }

    // -----------------------------------------------------------------------
    // The event stream

    /// A receiver of every DetectedIssue created, unfiltered: pass each event through an
    /// [`EventFilter`] (from [`App::event_filter`]) before showing it to anyone.
    pub fn issue_events(&self) -> broadcast::Receiver<IssueEvent> {
        self.events.subscribe()
    }

    /// Opens an event stream for `ctx`, optionally for one patient: the role must allow the
    /// event stream and, with a patient, the caller must be able to open their record
    /// (`Forbidden` otherwise). Audited once, here.
    pub async fn event_filter(
        &self,
        ctx: &RequestContext,
        patient: Option<&str>,
    ) -> Result<EventFilter, AppError> {
        let mut event = Event::new("operation", AuditAction::Execute).detail("cds-events");
        if let Some(p) = patient {
            event = event.patient(p);
        }
        let result = async {
            if let Some(p) = patient {
                check_patient_id(p)?;
            }
            if !operation_allowed(ctx.principal.role, Operation::CdsEvents) {
                return Err(AppError::forbidden(format!(
                    "role {} may not follow the DetectedIssue event stream",
                    ctx.principal.role
                )));
            }
            check_interaction(ctx, "DetectedIssue", Interaction::Search)?;
            let access = self.access(ctx).await?;
            if let Some(p) = patient {
                self.patient_view(ctx, &access, p).await?;
            }
            Ok(EventFilter {
                access,
                patient: patient.map(str::to_owned),
                views: Mutex::default(),
            })
        }
        .await;
        self.audited(ctx, event, result).await
    }

    /// Whether `ctx` may be told of DetectedIssues of `patient` (a one-off check; a stream
    /// should use an [`EventFilter`], which caches its decisions).
    pub async fn may_follow_patient(&self, ctx: &RequestContext, patient: &str) -> bool {
        if check_patient_id(patient).is_err()
            || !operation_allowed(ctx.principal.role, Operation::CdsEvents)
            || check_interaction(ctx, "DetectedIssue", Interaction::Search).is_err()
        {
            return false;
        }
        match self.access(ctx).await {
            Ok(access) => self
                .store
                .patient_view(patient, &access)
                .await
                .is_ok_and(|v| v.allowed),
            Err(_) => false,
        }
    }
}

/// How long an event stream trusts its decision about one patient (care relationships
/// begin and end, consents change).
const VIEW_TTL: Duration = Duration::from_secs(60);

/// Views kept per stream at most (then it starts again empty).
const VIEW_CAPACITY: usize = 10_000;

/// Which events one stream may carry: the caller's access (computed once, when the stream
/// opened) and their view of each patient seen, kept for [`VIEW_TTL`].
#[derive(Debug)]
pub struct EventFilter {
    access: Access,
    patient: Option<String>,
    views: Mutex<HashMap<String, (Instant, PatientView)>>,
}

impl EventFilter {
    /// The patient the stream was opened for, if any.
    pub fn patient(&self) -> Option<&str> {
        self.patient.as_deref()
    }

    /// Whether the stream may carry `event`: its patient is the stream's (when it has one),
    /// the caller may open that patient's record, and the issue is not withheld from them by
    /// the patient's consent. Errors count as "no".
    pub async fn allows(&self, app: &App, event: &IssueEvent) -> bool {
        if self.patient.as_ref().is_some_and(|p| *p != event.patient) {
            return false;
        }
        let Some(view) = self.view(app, &event.patient).await else {
            return false;
        };
        if !view.allowed {
            return false;
        }
        if view.withheld_labels.is_empty() {
            return true;
        }
        // Something is withheld: look at the issue's labels.
        let Some(id) = event.issue.strip_prefix("DetectedIssue/") else {
            return false;
        };
        match app.store.read("DetectedIssue", id).await {
            Ok(r) => serde_json::from_str::<Value>(&r.body).is_ok_and(|v| !view.hides(&v)),
            Err(_) => false,
        }
    }

    async fn view(&self, app: &App, patient: &str) -> Option<PatientView> {
        if let Some((at, view)) = self
            .views
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(patient)
            && at.elapsed() < VIEW_TTL
        {
            return Some(view.clone());
        }
        let access = Access {
            at: now_micros(),
            ..self.access.clone()
        };
        let view = match app.store.patient_view(patient, &access).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(patient = %patient, error = %e, "event stream: access check failed");
                return None;
            }
        };
        let mut views = self.views.lock().unwrap_or_else(PoisonError::into_inner);
        if views.len() >= VIEW_CAPACITY {
            views.clear();
        }
        views.insert(patient.to_owned(), (Instant::now(), view.clone()));
        Some(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_used_only_at_the_count_it_was_read_at() {
        let cache = ResultsCache::default();
        cache.put("p1", 7, Arc::new(PatientResults::default()));
        assert!(cache.get("p1", 7).is_some());
        assert!(
            cache.get("p1", 8).is_none(),
            "a later write retires the entry"
        );
        assert!(cache.get("p2", 7).is_none());
    }

    #[test]
    fn labels_are_added_once() {
        let psy =
            json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"});
        let mut issue = json!({"resourceType": "DetectedIssue"});
        add_security_labels(&mut issue, std::slice::from_ref(&psy));
        add_security_labels(&mut issue, std::slice::from_ref(&psy));
        assert_eq!(issue["meta"]["security"], json!([psy]));
    }

    #[test]
    fn patient_ids_cannot_carry_query_text() {
        assert!(check_patient_id("p-1.2").is_ok());
        assert!(check_patient_id("p1&code=x").is_err());
        assert!(check_patient_id("").is_err());
    }
}
