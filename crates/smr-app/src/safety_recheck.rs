//! `safety-recheck`: the medicines safety DetectedIssues of a patient's record kept current
//! through the change feed (issue 11).
//!
//! A durable feed consumer beside `pgx-recheck` (driven from `feed`). A committed change to a
//! medication entry, an AllergyIntolerance, or a renal-function Observation (eGFR, creatinine
//! clearance; other Observations are skipped) re-reviews that patient's whole current record
//! with `smr_safety::review_record`, everything visible (the review is SMR's, not a caller's),
//! and reconciles what it finds with the patient's stored safety DetectedIssues, matched by
//! identifier (`…/Id/safety-detected-issue`, value `{kind}-{digest}` of the rule kind and what
//! is concerned, so the same problem found again has the same identifier):
//!
//! - found, not stored: a conditional create on patient + identifier (a replayed batch after
//!   a crash creates nothing twice);
//! - found, stored and open: an update when what it says changed (severity, text, implicated
//!   entries, sources, labels), else nothing; a clinician's mitigations are kept;
//! - found, stored and closed by an earlier review: reopened (the closing mitigation removed;
//!   the history keeps it);
//! - stored and open, no longer found: closed, not deleted — a mitigation "no longer found by
//!   the safety review" (the convention DetectedIssue readers already treat as closed);
//! - stored `entered-in-error` or `cancelled` (a clinician's decision): left alone, and not
//!   created again.
//!
//! Each stored issue carries the security labels of the entries it implicates, so a consent
//! that withholds a medicine from a caller withholds what is said about it too. The writes of
//! one patient are one transaction with a Provenance naming SMR and one AuditEvent.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use smr_fhir::datetime;
use smr_fhir::query::{self, Handling};
use smr_record::SOURCE_TYPES;
use smr_safety::{RuleSource, SafetyContext};
use smr_store::{Access, Change, FeedPosition, StoreError, WriteOp};

use crate::audit::{AuditAction, Event, write_record};
use crate::pgx::{add_security_labels, parse_body, system_context};
use crate::safety::rules_unavailable;
use crate::{App, AppError};

/// The durable consumer that keeps safety DetectedIssues current.
pub const SAFETY_RECHECK: &str = "safety-recheck";

/// Changes read per batch.
const BATCH: u32 = 500;

/// The code system of the mitigation that closes an issue no longer found.
fn review_code_system() -> String {
    format!(
        "{}/CodeSystem/safety-review-action",
        smr_safety::SMR_SYSTEM_BASE
    )
}

/// The code of that mitigation.
const NO_LONGER_FOUND: &str = "no-longer-found";

/// What one patient's review wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReviewWrites {
    pub created: usize,
    pub updated: usize,
    pub reopened: usize,
    pub closed: usize,
}

impl ReviewWrites {
    pub fn total(&self) -> usize {
        self.created + self.updated + self.reopened + self.closed
    }
}

/// What one batch of the consumer did.
#[derive(Debug)]
pub(crate) struct SafetyBatch {
    pub last: FeedPosition,
    pub changes: usize,
    pub reviewed: usize,
}

/// The job that reviews every record with medicines once after the bundled rules change
/// (its state is kept in the store's `job_state`).
pub const SAFETY_RULES_SWEEP: &str = "safety-rules-sweep";

/// Patients reviewed per step of the rules sweep (one saved position per step).
const SWEEP_BATCH: u32 = 100;

/// The rules sweep's saved state.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SweepState {
    /// The rules version (`RuleSource::label`) the sweep reviews records for.
    rules: String,
    /// The last patient key reviewed (`None`: none yet).
    after: Option<String>,
    /// Every record with medicines has been reviewed under `rules`.
    done: bool,
}

impl SweepState {
    /// The saved state (`None` when unreadable: the sweep then starts again, which is safe).
    fn parse(text: &str) -> Option<SweepState> {
        let value: Value = serde_json::from_str(text).ok()?;
        Some(SweepState {
            rules: value.get("rules")?.as_str()?.to_owned(),
            after: value
                .get("after")
                .and_then(Value::as_str)
                .map(str::to_owned),
            done: value.get("done")?.as_bool()?,
        })
    }
}

impl App {
    /// One step of the rules sweep; the number of records it reviewed (0: nothing to do).
    ///
    /// The feed-driven review only sees patients whose entries change, so when a release
    /// brings new or changed rules (a new `label`), records nobody touches would keep
    /// DetectedIssues found under the old rules and miss the new ones. The sweep walks every
    /// patient with a medication entry, in key order, reviewing each with the current rules;
    /// its position is saved after every step, so a restart resumes it, and a second sweep
    /// of the same records writes nothing (the review is idempotent). A store whose
    /// `safety-recheck` consumer has never run needs no sweep: that consumer's first run starts
    /// at the beginning of the feed and reviews every record with medicines anyway. Two nodes
    /// sweeping at once do the same idempotent work twice, nothing worse.
    pub async fn safety_rules_sweep_step(&self) -> Result<usize, AppError> {
        let rules = smr_safety::bundled().map_err(rules_unavailable)?;
        let current = rules.label();
        let saved = self
            .store
            .job_state(SAFETY_RULES_SWEEP)
            .await?
            .and_then(|text| SweepState::parse(&text));
        let mut state = match saved {
            Some(state) if state.rules == current => {
                if state.done {
                    return Ok(0);
                }
                state
            }
            Some(_) => SweepState {
                rules: current.to_owned(),
                after: None,
                done: false,
            },
            None => {
                let never_ran =
                    self.store.consumer_position(SAFETY_RECHECK).await? == FeedPosition::default();
                let state = SweepState {
                    rules: current.to_owned(),
                    after: None,
                    done: never_ran,
                };
                if never_ran {
                    self.save_sweep(&state).await?;
                    return Ok(0);
                }
                state
            }
        };
        let patients = self
            .store
            .patients_with_types(&SOURCE_TYPES, state.after.as_deref(), SWEEP_BATCH)
            .await?;
        for patient in &patients {
            match self.review_and_store(patient).await {
                Ok(_) => {}
                // Deleted since, or a key that is not a patient id: nothing to review.
                Err(AppError::Store(StoreError::NotFound { .. } | StoreError::Gone { .. })) => {}
                Err(AppError::BadRequest(_)) => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(last) = patients.last() {
            state.after = Some(last.clone());
        }
        state.done = patients.len() < SWEEP_BATCH as usize;
        self.save_sweep(&state).await?;
        if state.done {
            tracing::info!(
                rules = current,
                "safety rules sweep: every record with medicines reviewed"
            );
        }
        Ok(patients.len())
    }

    async fn save_sweep(&self, state: &SweepState) -> Result<(), AppError> {
        let text = json!({"rules": state.rules, "after": state.after, "done": state.done});
        self.store
            .save_job_state(SAFETY_RULES_SWEEP, &text.to_string())
            .await?;
        Ok(())
    }
}

impl App {
    /// One batch of `safety-recheck` from its saved position, then the position saved (for
    /// [`App::drain_feed`]); the number of changes read.
    pub async fn process_safety_changes(&self) -> Result<usize, AppError> {
        let position = self.store.consumer_position(SAFETY_RECHECK).await?;
        let Some(batch) = self.safety_batch(position).await? else {
            return Ok(0);
        };
        self.store
            .save_consumer_position(SAFETY_RECHECK, batch.last)
            .await?;
        Ok(batch.changes)
    }

    /// Processes the changes after `position`; `None` when there are none.
    pub(crate) async fn safety_batch(
        &self,
        position: FeedPosition,
    ) -> Result<Option<SafetyBatch>, AppError> {
        let changes = self.store.changes_after(position, BATCH).await?;
        let Some(last) = changes.last().map(|c| c.position) else {
            return Ok(None);
        };
        let mut patients = BTreeSet::new();
        for change in &changes {
            if patients.contains(&change.patient_key) {
                continue;
            }
            if self.affects_safety(change).await? {
                patients.insert(change.patient_key.clone());
            }
        }
        for patient in &patients {
            // A patient deleted since (or a key that is not a patient id) has nothing to review.
            match self.review_and_store(patient).await {
                Ok(_) => {}
                Err(AppError::Store(StoreError::NotFound { .. } | StoreError::Gone { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Some(SafetyBatch {
            last,
            changes: changes.len(),
            reviewed: patients.len(),
        }))
    }

    /// Whether a change can alter what the safety review finds for its patient.
    async fn affects_safety(&self, change: &Change) -> Result<bool, AppError> {
        // A resource outside any patient's record (`Type/id` keys) concerns nobody's review.
        if change.patient_key.contains('/') {
            return Ok(false);
        }
        let ty = change.res_type.as_str();
        if SOURCE_TYPES.contains(&ty) || ty == "AllergyIntolerance" {
            return Ok(true);
        }
        if ty != "Observation" {
            return Ok(false);
        }
        // A deleted Observation may have been the latest eGFR: review.
        let stored = match self.store.read("Observation", &change.id).await {
            Ok(stored) => stored,
            Err(StoreError::NotFound { .. } | StoreError::Gone { .. }) => return Ok(true),
            Err(e) => return Err(e.into()),
        };
        let rules = smr_safety::bundled().map_err(rules_unavailable)?;
        Ok(parse_body(&stored).is_some_and(|obs| {
            obs.pointer("/code/coding")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| {
                    let s = |k: &str| c.get(k).and_then(Value::as_str);
                    matches!((s("system"), s("code")), (Some(system), Some(code))
                        if rules.renal().measure_of(system, code).is_some())
                })
        }))
    }

    /// Reviews `patient`'s whole current record and brings their stored safety DetectedIssues
    /// up to date (see the module documentation). Idempotent: a second run with nothing
    /// changed writes nothing.
    pub async fn review_and_store(&self, patient: &str) -> Result<ReviewWrites, AppError> {
        crate::pgx::check_patient_id(patient)?;
        self.store.read("Patient", patient).await?;
        let rules = smr_safety::bundled().map_err(rules_unavailable)?;
        let record = self.read_safety_record(patient, &|_| true).await?;
        let inputs = &record.inputs;
        let lookup = self.medicine_lookup();
        let problems = smr_safety::review_record(&SafetyContext {
            medicines: &inputs.medicines,
            allergies: &inputs.allergies,
            renal: &inputs.renal,
            now: inputs.now,
            lookup: lookup.as_ref(),
            rules,
        });
        let patient_ref = format!("Patient/{patient}");
        let now_text = datetime::format_instant(inputs.now);
        let mut found: BTreeMap<String, Value> = BTreeMap::new();
        for problem in &problems {
            let Some(mut issue) =
                smr_safety::fhir_out::detected_issue(problem, &patient_ref, &now_text)
            else {
                continue;
            };
            let Some(value) = identifier_value(&issue) else {
                continue;
            };
            for reference in &problem.implicated {
                if let Some(labels) = record.labels.get(unversioned(reference)) {
                    add_security_labels(&mut issue, labels);
                }
            }
            found.entry(value).or_insert(issue);
        }
        let system = smr_safety::fhir_out::identifier_system();
        let stored = self
            .search_all(
                &format!("DetectedIssue?patient={patient}&identifier={system}|"),
                &Access::unrestricted(),
            )
            .await?;
        let mut stored_by_value: BTreeMap<String, (i64, Value)> = BTreeMap::new();
        for s in &stored {
            if let Some(body) = parse_body(s)
                && let Some(value) = identifier_value(&body)
            {
                stored_by_value.insert(value, (s.version, body));
            }
        }

        let mut writes = ReviewWrites::default();
        let mut ops = Vec::new();
        for (value, issue) in &found {
            match stored_by_value.get(value) {
                None => {
                    writes.created += 1;
                    ops.push(conditional_create(patient, &system, value, issue.clone())?);
                }
                Some((_, body)) if is_withdrawn(body) => {}
                Some((version, body)) => {
                    let reopening = is_closed(body);
                    let next = carried_over(issue, body);
                    if reopening {
                        writes.reopened += 1;
                    } else if same_content(&next, body) {
                        continue;
                    } else {
                        writes.updated += 1;
                    }
                    ops.push(update(next, *version));
                }
            }
        }
        for (value, (version, body)) in &stored_by_value {
            if found.contains_key(value) || is_withdrawn(body) || is_closed(body) {
                continue;
            }
            writes.closed += 1;
            ops.push(update(closed(body, &now_text), *version));
        }
        if ops.is_empty() {
            return Ok(writes);
        }
        let ctx = system_context(format!("safety-recheck-{}", uuid::Uuid::now_v7()));
        let event = Event::new("operation", AuditAction::Execute)
            .detail(SAFETY_RECHECK)
            .patient(patient);
        let provenance = crate::provenance::template(&ctx, ctx.principal.setting, None);
        self.store
            .transaction_with_provenance(
                ops,
                Box::new(move |result| write_record(&ctx, event, result)),
                Some(provenance),
            )
            .await?;
        Ok(writes)
    }
}

/// `Type/id` of a reference that may be versioned (`Type/id/_history/n`).
fn unversioned(reference: &str) -> &str {
    reference
        .split_once("/_history/")
        .map_or(reference, |(head, _)| head)
}

/// The issue's safety identifier value, if it has one.
fn identifier_value(issue: &Value) -> Option<String> {
    let system = smr_safety::fhir_out::identifier_system();
    issue
        .get("identifier")?
        .as_array()?
        .iter()
        .find(|i| i.get("system").and_then(Value::as_str) == Some(system.as_str()))?
        .get("value")?
        .as_str()
        .map(str::to_owned)
}

/// A clinician withdrew it (entered in error, cancelled): the review leaves it alone.
fn is_withdrawn(issue: &Value) -> bool {
    matches!(
        issue.get("status").and_then(Value::as_str),
        Some("entered-in-error" | "cancelled")
    )
}

fn is_review_closure(mitigation: &Value) -> bool {
    let system = review_code_system();
    mitigation
        .pointer("/action/coding")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("system").and_then(Value::as_str) == Some(system.as_str())
                    && c.get("code").and_then(Value::as_str) == Some(NO_LONGER_FOUND)
            })
        })
}

/// Closed by an earlier review (the problem was no longer found).
pub fn is_closed(issue: &Value) -> bool {
    issue
        .get("mitigation")
        .and_then(Value::as_array)
        .is_some_and(|m| m.iter().any(is_review_closure))
}

/// The found issue as an update of the stored one: its id and first identification kept,
/// and the mitigations a clinician recorded, without an earlier review's closure.
fn carried_over(found: &Value, stored: &Value) -> Value {
    let mut next = found.clone();
    next["id"] = stored["id"].clone();
    if let Some(first) = stored.get("identifiedDateTime") {
        next["identifiedDateTime"] = first.clone();
    }
    let kept: Vec<Value> = stored
        .get("mitigation")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| !is_review_closure(m))
        .cloned()
        .collect();
    if !kept.is_empty() {
        next["mitigation"] = Value::Array(kept);
    }
    next
}

/// The stored issue with a mitigation saying the review no longer finds it.
fn closed(stored: &Value, now: &str) -> Value {
    let mut next = stored.clone();
    if let Some(obj) = next.as_object_mut() {
        // The store writes meta afresh; versionId/lastUpdated of the old version must not
        // be sent back as if they were the new one's.
        if let Some(meta) = obj.get_mut("meta").and_then(Value::as_object_mut) {
            meta.remove("versionId");
            meta.remove("lastUpdated");
            // FHIR JSON has no empty objects.
            if meta.is_empty() {
                obj.remove("meta");
            }
        }
        let list = obj.entry("mitigation").or_insert_with(|| json!([]));
        if let Some(list) = list.as_array_mut() {
            list.push(json!({
                "action": {
                    "coding": [{"system": review_code_system(), "code": NO_LONGER_FOUND,
                                "display": "No longer found by the safety review"}],
                    "text": "No longer found by the SMR medicines safety review: the medicine, allergy or result concerned has changed"
                },
                "date": now,
                "author": {"display": "SMR medicines safety review"},
            }));
        }
    }
    next
}

/// Whether `next` says what `stored` says (ignoring meta, except the security labels).
fn same_content(next: &Value, stored: &Value) -> bool {
    const FIELDS: [&str; 9] = [
        "status",
        "code",
        "severity",
        "detail",
        "implicated",
        "evidence",
        "reference",
        "mitigation",
        "identifier",
    ];
    FIELDS.iter().all(|f| next.get(f) == stored.get(f)) && labels(next) == labels(stored)
}

fn labels(issue: &Value) -> BTreeSet<(String, String)> {
    issue
        .pointer("/meta/security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            (s("system"), s("code"))
        })
        .collect()
}

fn conditional_create(
    patient: &str,
    system: &str,
    value: &str,
    issue: Value,
) -> Result<WriteOp, AppError> {
    // The identifier's digest is of the medicines concerned, not the patient: two patients
    // with the same interaction share it, so the condition names the patient too.
    let condition = vec![
        ("patient".to_owned(), patient.to_owned()),
        ("identifier".to_owned(), format!("{system}|{value}")),
    ];
    let if_none_exist = query::parse("DetectedIssue", &condition, Handling::Strict)
        .map_err(|issues| AppError::Store(StoreError::Internal(format!("{issues:?}"))))?
        .request;
    Ok(WriteOp::Create {
        resource: issue,
        full_url: None,
        if_none_exist: Some(if_none_exist),
    })
}

fn update(resource: Value, version: i64) -> WriteOp {
    WriteOp::Update {
        resource,
        full_url: None,
        // A clinician's concurrent change makes the batch fail and be retried on fresh data.
        if_match: Some(version),
        patched: false,
        condition: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored_issue(value: &str) -> Value {
        json!({
            "resourceType": "DetectedIssue", "id": "d1",
            "meta": {"versionId": "3", "lastUpdated": "2026-12-01T00:00:00Z"},
            "identifier": [{"system": smr_safety::fhir_out::identifier_system(), "value": value}],
            "status": "final", "severity": "high", "detail": "x",
            "identifiedDateTime": "2026-11-01T00:00:00Z",
        })
    }

    #[test]
    fn closing_adds_the_review_mitigation_and_reopening_removes_only_it() {
        let stored = stored_issue("interaction-1");
        assert!(!is_closed(&stored));
        let mut with_clinician = stored.clone();
        with_clinician["mitigation"] = json!([{"action": {"text": "discussed with patient"}}]);
        let shut = closed(&with_clinician, "2026-12-06T10:00:00Z");
        assert!(is_closed(&shut));
        assert!(shut.pointer("/meta/versionId").is_none());
        let reopened = carried_over(&stored_issue("interaction-1"), &shut);
        assert!(!is_closed(&reopened));
        assert_eq!(
            reopened["mitigation"],
            json!([{"action": {"text": "discussed with patient"}}]),
            "a clinician's mitigation survives"
        );
        assert_eq!(reopened["identifiedDateTime"], "2026-11-01T00:00:00Z");
    }

    #[test]
    fn content_comparison_ignores_meta_but_not_labels() {
        let a = stored_issue("interaction-1");
        let mut b = a.clone();
        b["meta"]["versionId"] = json!("9");
        assert!(same_content(&b, &a));
        b["meta"]["security"] =
            json!([{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}]);
        assert!(!same_content(&b, &a));
        let mut c = a.clone();
        c["severity"] = json!("moderate");
        assert!(!same_content(&c, &a));
    }

    #[test]
    fn withdrawn_issues_are_recognised() {
        let mut s = stored_issue("x");
        assert!(!is_withdrawn(&s));
        s["status"] = json!("entered-in-error");
        assert!(is_withdrawn(&s));
    }

    #[test]
    fn versioned_references_lose_their_version() {
        assert_eq!(
            unversioned("MedicationRequest/a/_history/2"),
            "MedicationRequest/a"
        );
        assert_eq!(unversioned("AllergyIntolerance/b"), "AllergyIntolerance/b");
    }
}
