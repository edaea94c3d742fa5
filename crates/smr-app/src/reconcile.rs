//! Medicines reconciliation (issue 11): `Patient/{id}/$reconcile` compares a source list
//! (by default the patient's SMR record as the caller sees it) with a target list and answers
//! a `List` of changes, storing nothing; `$reconcile-confirm` writes the clinician's decisions
//! (the reconciled MedicationStatements and the reconciliation List) in one transaction
//! through the normal write path, so Provenance, the audit record and the change feed follow;
//! `$reconcile-timeliness` measures the patient's admissions and discharges against NICE
//! QS120. The comparison itself is `smr-reconcile` (pure).
//!
//! Who: clinicians who may write the patient's medicines and Lists (GP, hospital prescriber,
//! hospital pharmacist, back-end systems) and have a relationship with the patient; every
//! call is audited, refused or not.

use serde_json::Value;
use smr_access::{Interaction, RequestContext};
use smr_fhir::{Issue, IssueCode};
use smr_reconcile::{InputError, timeliness};
use smr_record::{RecordInput, SOURCE_TYPES};
use smr_store::{StoreError, WriteOp};

use crate::audit::{AuditAction, Event};
use crate::authorize::check_interaction;
use crate::medication_record::LoadedRecord;
use crate::pgx::check_patient_id;
use crate::{App, AppError, WriteKind, now_micros};

fn input_error(e: InputError) -> AppError {
    match e {
        InputError::Structure(m) => AppError::BadRequest(m),
        InputError::Unprocessable(m) => AppError::Store(StoreError::Invalid(vec![Issue::error(
            IssueCode::Processing,
            m,
        )])),
    }
}

/// What a confirmation wrote.
#[derive(Debug, Clone)]
pub struct Confirmed {
    /// The stored reconciliation List (mode `snapshot`).
    pub list: Value,
    /// `Type/id` of every resource written (the List and the MedicationStatements).
    pub written: Vec<String>,
}

impl App {
    /// Reconciliation is a prescriber's or pharmacist's act on the record: the caller must be
    /// allowed to write Lists and MedicationStatements, and to open this patient's record.
    async fn reconcile_authorize(
        &self,
        ctx: &RequestContext,
        patient: &str,
    ) -> Result<smr_store::Access, AppError> {
        check_patient_id(patient)?;
        check_interaction(ctx, "Patient", Interaction::Read)?;
        check_interaction(ctx, "List", Interaction::Create)?;
        check_interaction(ctx, "MedicationStatement", Interaction::Create)?;
        let access = self.access(ctx).await?;
        // 404 for an unknown patient comes before the relationship check.
        self.store.read("Patient", patient).await?;
        self.patient_view(ctx, &access, patient).await?;
        Ok(access)
    }

    /// `POST Patient/{id}/$reconcile`: the `List` (mode `changes`) classifying each medicine.
    /// Nothing is stored but the audit record.
    pub async fn reconcile(
        &self,
        ctx: &RequestContext,
        patient: &str,
        parameters: &Value,
    ) -> Result<Value, AppError> {
        let event = Event::new("operation", AuditAction::Execute)
            .detail("$reconcile")
            .patient(patient);
        let result = async {
            let access = self.reconcile_authorize(ctx, patient).await?;
            let lookup = self.medicine_lookup();
            let request = smr_reconcile::read_request(parameters, patient, lookup.as_ref())
                .map_err(input_error)?;
            let now = now_micros();
            let now_text = smr_fhir::datetime::format_instant(now);
            let mut notes = Vec::new();
            let (source, source_name) = match request.source {
                Some(list) => {
                    if list.ignored > 0 {
                        notes.push(format!(
                            "{} entr(ies) of the source list are not medication entries (or are \
                             entered in error) and were not compared.",
                            list.ignored
                        ));
                    }
                    (list.lines, "the source list")
                }
                None => (
                    self.record_lines(ctx, patient, &access, now, &now_text)
                        .await?,
                    "the SMR record",
                ),
            };
            if request.target.ignored > 0 {
                notes.push(format!(
                    "{} entr(ies) of the target list are not medication entries (or are entered \
                     in error) and were not compared.",
                    request.target.ignored
                ));
            }
            if let Some(reason) = &request.target.empty_reason {
                notes.push(format!("The target list says why it is empty: {reason}."));
            }
            let target = request.target.lines;
            let rec = smr_reconcile::compare(&source, &target);
            Ok(smr_reconcile::changes_list(
                &rec,
                &source,
                &target,
                patient,
                &now_text,
                source_name,
                &notes,
            ))
        }
        .await;
        self.audited(ctx, event, result).await
    }

    /// The patient's current medicines as the caller sees their SMR record, as lines.
    async fn record_lines(
        &self,
        ctx: &RequestContext,
        patient: &str,
        access: &smr_store::Access,
        now: i64,
        now_text: &str,
    ) -> Result<Vec<smr_reconcile::MedLine>, AppError> {
        let mut types: Vec<&str> = SOURCE_TYPES
            .iter()
            .copied()
            .filter(|t| {
                smr_access::policy::role_allows(ctx.principal.role, t, Interaction::Read)
                    && ctx.principal.scopes.allows(t, Interaction::Read)
            })
            .collect();
        if smr_access::policy::role_allows(ctx.principal.role, "Provenance", Interaction::Read)
            && ctx.principal.scopes.allows("Provenance", Interaction::Read)
        {
            types.push("Provenance");
        }
        let LoadedRecord {
            sources,
            provenances,
            organisations,
            medications,
        } = self.load_record(patient, &types, access).await?;
        let input = RecordInput {
            patient,
            now,
            now_text,
            stopped_within_days: smr_record::DEFAULT_STOPPED_WITHIN_DAYS,
            sources: &sources,
            provenances: &provenances,
            organisations: &organisations,
            medications: &medications,
        };
        let lookup = self.medicine_lookup();
        let record = smr_record::merge(&input, lookup.as_ref());
        Ok(smr_reconcile::line::from_record(&record, &sources))
    }

    /// `POST Patient/{id}/$reconcile-confirm`: the clinician's decision on every line of a
    /// `$reconcile` answer, written in one transaction (MedicationStatements for accepted and
    /// changed lines, the reconciliation List in `snapshot` mode naming them). A refused or
    /// failed confirmation writes nothing but its audit record.
    pub async fn reconcile_confirm(
        &self,
        ctx: &RequestContext,
        patient: &str,
        parameters: &Value,
    ) -> Result<Confirmed, AppError> {
        const OPERATION: &str = "$reconcile-confirm";
        let event = Event::new("operation", AuditAction::Execute)
            .detail(OPERATION)
            .patient(patient);
        let planned = async {
            self.reconcile_authorize(ctx, patient).await?;
            let request = smr_reconcile::read_confirm(parameters).map_err(input_error)?;
            if let Some(encounter) = &request.encounter {
                let id = encounter.trim_start_matches("Encounter/");
                let stored = match self.store.read("Encounter", id).await {
                    Ok(r) => r,
                    Err(StoreError::NotFound { .. } | StoreError::Gone { .. }) => {
                        return Err(input_error(InputError::Unprocessable(format!(
                            "{encounter} is not held by SMR"
                        ))));
                    }
                    Err(e) => return Err(e.into()),
                };
                if stored.owner != patient {
                    return Err(input_error(InputError::Unprocessable(format!(
                        "{encounter} is not an encounter of Patient/{patient}"
                    ))));
                }
            }
            let setting = self.writer_setting(ctx).await?;
            let now_text = smr_fhir::datetime::format_instant(now_micros());
            smr_reconcile::plan_confirm(&request, patient, &now_text, setting.as_str())
                .map_err(input_error)
        }
        .await;
        let plan = match planned {
            Ok(plan) => plan,
            Err(e) => return self.audited(ctx, event, Err(e)).await,
        };
        let mut ops = vec![WriteOp::Create {
            resource: plan.list,
            full_url: Some(plan.list_url),
            if_none_exist: None,
        }];
        for (url, statement) in plan.statements {
            ops.push(WriteOp::Create {
                resource: statement,
                full_url: Some(url),
                if_none_exist: None,
            });
        }
        // The write authorises each entry again, appends its own audit record in the same
        // transaction (refused or failed writes included) and has the store write Provenance.
        let outcomes = self
            .write(ctx, ops, WriteKind::Operation(OPERATION))
            .await?;
        let mut list = Value::Null;
        let mut written = Vec::new();
        for o in &outcomes {
            if let Some(r) = o.resource() {
                written.push(format!("{}/{}", r.res_type, r.id));
                if r.res_type == "List" {
                    list = serde_json::from_str(&r.body).map_err(|e| {
                        AppError::Store(StoreError::Internal(format!(
                            "stored List/{} is not JSON: {e}",
                            r.id
                        )))
                    })?;
                }
            }
        }
        Ok(Confirmed { list, written })
    }

    /// `GET Patient/{id}/$reconcile-timeliness`: each admission (QS120 statement 4, 24 hours)
    /// and discharge (statement 5, 7 days from the information arriving) against the first
    /// confirmed reconciliation after it, as a Parameters. Audited.
    pub async fn reconcile_timeliness(
        &self,
        ctx: &RequestContext,
        patient: &str,
    ) -> Result<Value, AppError> {
        let event = Event::new("operation", AuditAction::Read)
            .detail("$reconcile-timeliness")
            .patient(patient);
        let result = async {
            check_patient_id(patient)?;
            check_interaction(ctx, "Patient", Interaction::Read)?;
            check_interaction(ctx, "Encounter", Interaction::Read)?;
            check_interaction(ctx, "List", Interaction::Read)?;
            let access = self.access(ctx).await?;
            self.store.read("Patient", patient).await?;
            self.patient_view(ctx, &access, patient).await?;
            let types = [
                "Encounter",
                "List",
                "MedicationRequest",
                "MedicationStatement",
            ];
            let LoadedRecord { sources, .. } = self.load_record(patient, &types, &access).await?;
            let of = |ty: &str| -> Vec<Value> {
                sources
                    .iter()
                    .filter(|r| r.get("resourceType").and_then(Value::as_str) == Some(ty))
                    .cloned()
                    .collect()
            };
            let entries: Vec<Value> = sources
                .iter()
                .filter(|r| {
                    matches!(
                        r.get("resourceType").and_then(Value::as_str),
                        Some("MedicationRequest" | "MedicationStatement")
                    )
                })
                .cloned()
                .collect();
            let results =
                timeliness::for_patient(&of("Encounter"), &of("List"), &entries, now_micros());
            Ok(timeliness::to_parameters(&results))
        }
        .await;
        self.audited(ctx, event, result).await
    }
}
