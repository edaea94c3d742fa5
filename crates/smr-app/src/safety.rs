//! Medicines safety (issue 11): what the checks of `smr-safety` read, built from the patient's
//! *whole* current record with each entry marked visible or not to the caller, and
//! `Patient/{id}/$safety-check`.
//!
//! The checks must see everything — a medicine the patient withholds from this organisation
//! still interacts with what it prescribes — so the record is read without the caller's
//! consent filter, and each resource is then marked with whether the caller may see it: the
//! caller's role and token allow its type, and the patient's consent does not withhold it.
//! `smr-safety` uses hidden items but never names them. Nothing hidden leaves this module
//! except through `smr-safety`'s output.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use serde_json::{Value, json};
use smr_access::{Interaction, RequestContext};
use smr_record::{RecordInput, SOURCE_TYPES};
use smr_safety::{Allergy, Medicine, Problem, RenalResult, RuleSource, SafetyContext};
use smr_store::{Access, PatientView};

use crate::audit::{AuditAction, Event};
use crate::authorize::check_interaction;
use crate::medication_record::LoadedRecord;
use crate::pgx::check_patient_id;
use crate::{App, AppError, now_micros};

/// Everything of a patient's record the safety checks read, visibility marked.
#[derive(Debug, Clone, Default)]
pub struct SafetyInputs {
    pub medicines: Vec<Medicine>,
    pub allergies: Vec<Allergy>,
    pub renal: Vec<RenalResult>,
    /// When the record was read (microseconds since the epoch).
    pub now: i64,
}

/// [`SafetyInputs`] with the security labels of the entries they were read from.
#[derive(Debug, Clone, Default)]
pub(crate) struct SafetyRecord {
    pub inputs: SafetyInputs,
    /// `Type/id` → its `meta.security` codings (entries without labels are absent).
    pub labels: std::collections::HashMap<String, Vec<Value>>,
}

/// The types the checks read, besides the medication entries.
const OTHER_TYPES: [&str; 3] = ["Provenance", "AllergyIntolerance", "Observation"];

/// Every type a safety read depends on (the record's, and the shared Organizations and
/// Medications its entries name): a write of any of them retires the cached reads.
const SAFETY_READ_TYPES: [&str; 9] = [
    "MedicationRequest",
    "MedicationDispense",
    "MedicationAdministration",
    "MedicationStatement",
    "Provenance",
    "AllergyIntolerance",
    "Observation",
    "Organization",
    "Medication",
];

/// A patient's record as the safety checks read it, before any caller's visibility.
#[derive(Debug)]
struct LoadedSafety {
    sources: Vec<Value>,
    /// Allergies and Observations (Provenance goes into the merge).
    others: Vec<Value>,
    record: smr_record::MedicationRecord,
    labels: std::collections::HashMap<String, Vec<Value>>,
    /// When it was read and merged.
    now: i64,
}

impl LoadedSafety {
    /// The checks' inputs, each entry marked by `visible` (the caller's view).
    fn inputs(&self, visible: &(dyn Fn(&Value) -> bool + Sync)) -> Result<SafetyInputs, AppError> {
        let rules = smr_safety::bundled().map_err(rules_unavailable)?;
        let medicines =
            smr_record::current::current_medicines(&self.record, &self.sources, visible);
        let allergies = self
            .others
            .iter()
            .filter_map(|r| smr_safety::fhir_in::read_allergy(r, visible(r)))
            .collect();
        let renal = self
            .others
            .iter()
            .filter_map(|r| smr_safety::fhir_in::read_renal(r, rules.renal(), visible(r)))
            .collect();
        Ok(SafetyInputs {
            medicines,
            allergies,
            renal,
            now: self.now,
        })
    }
}

/// What a cached read is valid for: the summed change counts of [`SAFETY_READ_TYPES`] taken
/// before the read, and the dictionary it was merged with (a reloaded dm+d release is a new
/// one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CacheKey {
    count: u64,
    dictionary: usize,
}

/// One cached read: what it is valid for, when it was made, and the record.
type CachedSafety = (CacheKey, Instant, Arc<LoadedSafety>);

/// Entries kept at most; when full, the cache starts again empty (as the PGx results cache).
const SAFETY_CACHE_CAPACITY: usize = 50_000;
/// The longest a cached read is used: "stopped within 90 days" and "a recent eGFR" are
/// judged at the read's time, which may not drift far from the check's.
const SAFETY_CACHE_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(30);

/// Patients' records as the CDS safety checks last read and merged them.
///
/// Why: every order a prescriber selects checks the draft against the patient's whole record,
/// and reading and merging ~20 medicines with their Provenance costs about 1.4 ms of CPU
/// (`docs/benchmarks.md`) while the record rarely changes between two orders. Why it cannot
/// serve a stale record: an entry is used only while no resource of a type it was read from
/// has been written since (the store's per-type change counts, taken before the read, as the
/// PGx results cache does) and for at most [`SAFETY_CACHE_MAX_AGE`]. Entries hold the record
/// before any caller's visibility; each call marks what its caller may see.
#[derive(Debug, Default)]
pub(crate) struct SafetyCache {
    entries: Mutex<HashMap<String, CachedSafety>>,
}

impl SafetyCache {
    fn get(&self, patient: &str, key: CacheKey) -> Option<Arc<LoadedSafety>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(patient)
            .filter(|(k, at, _)| *k == key && at.elapsed() <= SAFETY_CACHE_MAX_AGE)
            .map(|(_, _, loaded)| Arc::clone(loaded))
    }

    fn put(&self, patient: &str, key: CacheKey, loaded: Arc<LoadedSafety>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= SAFETY_CACHE_CAPACITY && !entries.contains_key(patient) {
            entries.clear();
        }
        entries.insert(patient.to_owned(), (key, Instant::now(), loaded));
    }
}

/// Whether the caller may see `resource` of the patient: their role and token allow its type,
/// and the patient's consent (`view`) does not withhold it.
fn visible_to(ctx: &RequestContext, view: &PatientView, resource: &Value) -> bool {
    let p = &ctx.principal;
    let ty = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("");
    smr_access::policy::role_allows(p.role, ty, Interaction::Read)
        && p.scopes.allows(ty, Interaction::Read)
        && !view.hides(resource)
}

pub(crate) fn rules_unavailable(e: smr_safety::DataError) -> AppError {
    AppError::Store(smr_store::StoreError::Internal(format!(
        "the medicines safety rules are not usable: {e}"
    )))
}

impl App {
    /// Reads the patient's current medicines, allergies and renal results, each marked with
    /// whether the caller may see it. The caller's access to the patient is checked by the
    /// use case calling this; not audited here (the use case is).
    async fn read_safety_inputs(
        &self,
        ctx: &RequestContext,
        view: &PatientView,
        patient: &str,
    ) -> Result<SafetyInputs, AppError> {
        let visible = |r: &Value| visible_to(ctx, view, r);
        Ok(self.read_safety_record(patient, &visible).await?.inputs)
    }

    /// The safety inputs of `patient`'s whole record, each entry marked by `visible`, with
    /// the security labels of every entry read (for what is written about them).
    pub(crate) async fn read_safety_record(
        &self,
        patient: &str,
        visible: &(dyn Fn(&Value) -> bool + Sync),
    ) -> Result<SafetyRecord, AppError> {
        let loaded = self.load_safety(patient).await?;
        Ok(SafetyRecord {
            inputs: loaded.inputs(visible)?,
            labels: loaded.labels,
        })
    }

    /// Reads and merges what the checks need of `patient`'s whole record, for any caller.
    async fn load_safety(&self, patient: &str) -> Result<LoadedSafety, AppError> {
        let mut types: Vec<&str> = SOURCE_TYPES.to_vec();
        types.extend(OTHER_TYPES);
        // Unfiltered on purpose: see the module documentation.
        let LoadedRecord {
            sources: everything,
            provenances,
            organisations,
            medications,
        } = self
            .load_record(patient, &types, &Access::unrestricted())
            .await?;
        let labels = everything
            .iter()
            .filter_map(|r| {
                let ty = r.get("resourceType")?.as_str()?;
                let id = r.get("id")?.as_str()?;
                let security = r.pointer("/meta/security")?.as_array()?;
                (!security.is_empty()).then(|| (format!("{ty}/{id}"), security.clone()))
            })
            .collect();
        let (sources, others): (Vec<Value>, Vec<Value>) = everything.into_iter().partition(|r| {
            r.get("resourceType")
                .and_then(Value::as_str)
                .is_some_and(|t| SOURCE_TYPES.contains(&t))
        });
        let now = now_micros();
        let now_text = smr_fhir::datetime::format_instant(now);
        let input = RecordInput {
            patient,
            now,
            now_text: &now_text,
            stopped_within_days: smr_record::DEFAULT_STOPPED_WITHIN_DAYS,
            sources: &sources,
            provenances: &provenances,
            organisations: &organisations,
            medications: &medications,
        };
        let lookup = self.medicine_lookup();
        let record = smr_record::merge(&input, lookup.as_ref());
        Ok(LoadedSafety {
            sources,
            others,
            record,
            labels,
            now,
        })
    }

    /// The safety inputs of a CDS call's patient (after [`App::cds_authorize`], which checks
    /// the caller and writes the call's one audit record). `Forbidden` when the caller may
    /// not open the record.
    pub async fn cds_safety_inputs(
        &self,
        ctx: &RequestContext,
        patient: &str,
    ) -> Result<SafetyInputs, AppError> {
        check_patient_id(patient)?;
        let access = self.access(ctx).await?;
        let view = self.patient_view(ctx, &access, patient).await?;
        self.safety_inputs_seen(ctx, patient, &view).await
    }

    /// [`App::cds_safety_inputs`] for an authorised CDS call, with the view its check
    /// computed (`Forbidden` for a call about a patient not on record).
    pub async fn cds_call_safety_inputs(
        &self,
        ctx: &RequestContext,
        patient: &str,
        call: &crate::cds::CdsCall,
    ) -> Result<SafetyInputs, AppError> {
        let (_, view) = call
            .seen()
            .ok_or_else(|| AppError::forbidden(format!("patient '{patient}' is not on record")))?;
        self.safety_inputs_seen(ctx, patient, view).await
    }

    /// The safety inputs of `patient`, each entry marked visible or not by the caller's
    /// `view`, through the cache (SQLite).
    async fn safety_inputs_seen(
        &self,
        ctx: &RequestContext,
        patient: &str,
        view: &PatientView,
    ) -> Result<SafetyInputs, AppError> {
        let visible = |r: &Value| visible_to(ctx, view, r);
        // The count is taken before the read (see `smr_store::Store::change_count`); no
        // count (PostgreSQL: other nodes write too) means no caching.
        let dictionary = self.medicine_lookup();
        let key = SAFETY_READ_TYPES
            .iter()
            .map(|t| self.store.change_count(t))
            .sum::<Option<u64>>()
            .map(|count| CacheKey {
                count,
                dictionary: Arc::as_ptr(&dictionary).cast::<()>() as usize,
            });
        drop(dictionary);
        if let Some(key) = key
            && let Some(hit) = self.safety_cache.get(patient, key)
        {
            return hit.inputs(&visible);
        }
        let loaded = Arc::new(self.load_safety(patient).await?);
        if let Some(key) = key {
            self.safety_cache.put(patient, key, Arc::clone(&loaded));
        }
        loaded.inputs(&visible)
    }

    /// `Patient/{id}/$safety-check`: the whole current record reviewed. A `collection`
    /// Bundle of DetectedIssues (most severe first; `implicated` names visible entries only)
    /// and, when some check could not be made, an OperationOutcome saying which data is
    /// missing. Audited.
    pub async fn safety_check(
        &self,
        ctx: &RequestContext,
        patient: &str,
    ) -> Result<Value, AppError> {
        let event = Event::new("operation", AuditAction::Read)
            .detail("$safety-check")
            .patient(patient);
        let result = async {
            check_patient_id(patient)?;
            check_interaction(ctx, "Patient", Interaction::Read)?;
            check_interaction(ctx, "DetectedIssue", Interaction::Read)?;
            let access = self.access(ctx).await?;
            // 404 for an unknown patient comes before the relationship check.
            self.store.read("Patient", patient).await?;
            let view = self.patient_view(ctx, &access, patient).await?;
            let inputs = self.read_safety_inputs(ctx, &view, patient).await?;
            let rules = smr_safety::bundled().map_err(rules_unavailable)?;
            let lookup = self.medicine_lookup();
            let problems = smr_safety::review_record(&SafetyContext {
                medicines: &inputs.medicines,
                allergies: &inputs.allergies,
                renal: &inputs.renal,
                now: inputs.now,
                lookup: lookup.as_ref(),
                rules,
            });
            Ok(safety_bundle(patient, &problems, inputs.now, rules.label()))
        }
        .await;
        self.audited(ctx, event, result).await
    }
}

/// The `$safety-check` answer: a `collection` Bundle of DetectedIssues and, when some check
/// could not be made, one OperationOutcome listing what is missing. Ids are not assigned:
/// these are findings of a check, not stored resources.
pub fn safety_bundle(patient: &str, problems: &[Problem], now: i64, rules: &str) -> Value {
    let now_text = smr_fhir::datetime::format_instant(now);
    let patient_ref = format!("Patient/{patient}");
    let mut entries: Vec<Value> = problems
        .iter()
        .filter_map(|p| smr_safety::fhir_out::detected_issue(p, &patient_ref, &now_text))
        .map(|issue| json!({"fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()), "resource": issue}))
        .collect();
    let notes: Vec<Value> = problems
        .iter()
        .filter_map(smr_safety::fhir_out::note_issue)
        .collect();
    if !notes.is_empty() {
        entries.push(json!({
            "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            "resource": {"resourceType": "OperationOutcome", "issue": notes},
        }));
    }
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": now_text,
        "meta": {"tag": [{"system": format!("{}/CodeSystem/safety-rules", smr_safety::SMR_SYSTEM_BASE),
                          "code": "bundled", "display": rules}]},
        "entry": entries,
    })
}
