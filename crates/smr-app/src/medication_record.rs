//! `Patient/{id}/$medication-record`: the single medication record as the caller may see it
//! (issue 8). The store gives the patient's medication entries and their Provenance in one
//! query on the patient's own rows (consent-withheld entries already left out), the shared
//! Organizations and Medications they name in a second; `smr-record` does the merge.

use std::collections::BTreeSet;

use serde_json::Value;
use smr_access::{Interaction, RequestContext};
pub use smr_record::parse_stopped_within;
use smr_record::{RecordInput, SOURCE_TYPES};

use crate::audit::{AuditAction, Event};
use crate::authorize::check_interaction;
use crate::{App, AppError};

/// What the caller asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordQuery {
    /// Stopped or completed medicines ended longer ago than this many days are left out.
    pub stopped_within_days: i64,
    /// One medicine's timeline (`CODE` or `SYSTEM|CODE`) instead of the whole record.
    pub medicine: Option<String>,
}

impl Default for RecordQuery {
    fn default() -> Self {
        RecordQuery {
            stopped_within_days: smr_record::DEFAULT_STOPPED_WITHIN_DAYS,
            medicine: None,
        }
    }
}

impl App {
    /// The record (or one medicine's timeline) as a FHIR `collection` Bundle. `base` is the
    /// server's FHIR base URL, for the timeline's full URLs.
    pub async fn medication_record(
        &self,
        ctx: &RequestContext,
        patient: &str,
        query: &RecordQuery,
        base: &str,
    ) -> Result<Value, AppError> {
        let event = Event::new("operation", AuditAction::Read)
            .detail("$medication-record")
            .patient(patient);
        let result = async {
            check_interaction(ctx, "Patient", Interaction::Read)?;
            // Only the entry types the caller may read make up their view of the record.
            let mut types: Vec<&str> = SOURCE_TYPES
                .iter()
                .copied()
                .filter(|t| {
                    smr_access::policy::role_allows(ctx.principal.role, t, Interaction::Read)
                        && ctx.principal.scopes.allows(t, Interaction::Read)
                })
                .collect();
            if types.is_empty() {
                check_interaction(ctx, "MedicationStatement", Interaction::Read)?;
            }
            let provenance_readable =
                smr_access::policy::role_allows(
                    ctx.principal.role,
                    "Provenance",
                    Interaction::Read,
                ) && ctx.principal.scopes.allows("Provenance", Interaction::Read);
            if provenance_readable {
                types.push("Provenance");
            }
            let access = self.access(ctx).await?;
            // 404 for an unknown patient comes before the relationship check.
            self.store.read("Patient", patient).await?;
            self.patient_view(ctx, &access, patient).await?;

            let LoadedRecord {
                sources,
                provenances,
                organisations,
                medications,
            } = self.load_record(patient, &types, &access).await?;
            let now = crate::now_micros();
            let now_text = smr_fhir::datetime::format_instant(now);
            let input = RecordInput {
                patient,
                now,
                now_text: &now_text,
                stopped_within_days: query.stopped_within_days,
                sources: &sources,
                provenances: &provenances,
                organisations: &organisations,
                medications: &medications,
            };
            let dictionary = self.medicine_lookup();
            Ok(match &query.medicine {
                Some(medicine) => {
                    smr_record::timeline::bundle(&input, dictionary.as_ref(), medicine, base)
                }
                None => smr_record::merge(&input, dictionary.as_ref()).to_bundle(&input),
            })
        }
        .await;
        self.audited(ctx, event, result).await
    }
}

/// A patient's medication entries (and whatever else of `types` was asked for), their
/// Provenance, and the shared Organizations and Medications they name.
pub(crate) struct LoadedRecord {
    /// Medication entries and any other patient resources asked for, in type and id order.
    pub sources: Vec<Value>,
    pub provenances: Vec<Value>,
    pub organisations: Vec<Value>,
    pub medications: Vec<Value>,
}

impl App {
    /// Reads `types` of the patient's record as `access` lets the caller see them (one query
    /// on the patient's rows), then the Organizations and Medications they name.
    pub(crate) async fn load_record(
        &self,
        patient: &str,
        types: &[&str],
        access: &smr_store::Access,
    ) -> Result<LoadedRecord, AppError> {
        let stored = self.store.patient_record(patient, types, access).await?;
        let mut sources = Vec::new();
        let mut provenances = Vec::new();
        for r in &stored {
            let value: Value = serde_json::from_str(&r.body).map_err(|e| {
                AppError::Store(smr_store::StoreError::Internal(format!(
                    "stored {}/{} is not JSON: {e}",
                    r.res_type, r.id
                )))
            })?;
            if r.res_type == "Provenance" {
                provenances.push(value);
            } else {
                sources.push(value);
            }
        }
        let shared = self
            .store
            .read_shared(&shared_references(&sources, &provenances))
            .await?;
        let mut organisations = Vec::new();
        let mut medications = Vec::new();
        for r in shared {
            let Ok(value) = serde_json::from_str::<Value>(&r.body) else {
                continue;
            };
            match r.res_type.as_str() {
                "Organization" => organisations.push(value),
                "Medication" => medications.push(value),
                _ => {}
            }
        }
        Ok(LoadedRecord {
            sources,
            provenances,
            organisations,
            medications,
        })
    }
}

/// The Organizations and Medications the entries and their Provenance name.
fn shared_references(sources: &[Value], provenances: &[Value]) -> Vec<(String, String)> {
    let mut keys = BTreeSet::new();
    let mut add = |reference: Option<&str>| {
        if let Some((ty, id)) = reference
            .map(smr_record::source::strip_history)
            .as_deref()
            .and_then(|r| r.split_once('/'))
            && matches!(ty, "Organization" | "Medication")
            && !id.contains('/')
        {
            keys.insert((ty.to_owned(), id.to_owned()));
        }
    };
    for s in sources {
        add(s
            .pointer("/medicationReference/reference")
            .and_then(Value::as_str));
        add(s.pointer("/requester/reference").and_then(Value::as_str));
        for p in s
            .get("performer")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            add(p.pointer("/actor/reference").and_then(Value::as_str));
        }
        add(s.pointer("/performer/reference").and_then(Value::as_str));
    }
    for p in provenances {
        for agent in p
            .get("agent")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            add(agent
                .pointer("/onBehalfOf/reference")
                .and_then(Value::as_str));
        }
    }
    keys.into_iter().collect()
}
