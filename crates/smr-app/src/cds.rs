//! CDS Hooks use cases (moved from smr-server's `routes/cds.rs`): the access check and audit
//! record of a service call, the patient's DetectedIssues as the caller may see them, and
//! card feedback into the audit chain.
//!
//! One CDS call is one AuditEvent: [`App::cds_authorize`] writes it (allowed or refused);
//! what the call then reads ([`App::pgx_results`], [`App::pgx_issues`]) is not audited again.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use serde_json::{Value, json};
use smr_access::policy::{Operation, operation_allowed};
use smr_access::{Interaction, RequestContext};
use smr_cds::hooks::{self, Hook};
use smr_fhir::datetime;
use smr_store::{Access, AuditRecord};

use crate::audit::{AuditAction, Event, ROLE_SYSTEM, USER_SYSTEM};
use crate::authorize::check_interaction;
use crate::pgx::check_patient_id;
use crate::{App, AppError, now_micros};

/// Whether the patient of a CDS call is on record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CdsPatient {
    /// On record, and the caller may open their record.
    Known,
    /// Not on record (never, or deleted): no check can be made against SMR's data.
    Unknown,
}

/// One authorised CDS call (see [`App::cds_call`]).
#[derive(Debug, Clone)]
pub struct CdsCall {
    pub patient: CdsPatient,
    /// The caller's access and their view of the patient (`None` for an unknown patient).
    seen: Option<(smr_store::Access, smr_store::PatientView)>,
}

impl CdsCall {
    pub(crate) fn seen(&self) -> Option<(&smr_store::Access, &smr_store::PatientView)> {
        self.seen.as_ref().map(|(a, v)| (a, v))
    }
}

/// A patient's DetectedIssues (what `patient-view` reads) as the caller may see them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PatientIssues {
    /// The issues the caller may see (every match of `hooks::issues_query`, open or not).
    pub visible: Vec<Value>,
    /// How many open pharmacogenomic issues the patient's consent withholds from the caller
    /// (their medicine is withheld): enough to say "a medicine you cannot see is affected",
    /// never which.
    pub withheld: usize,
}

/// The service's hook, from its id (`smr-pgx-order-select`) or hook name (`order-select`).
fn hook_of(service: &str) -> Option<Hook> {
    hooks::service(service).map(|s| s.hook).or_else(|| {
        hooks::SERVICES
            .iter()
            .find(|s| s.hook.name() == service)
            .map(|s| s.hook)
    })
}

/// What a hook reads from the patient's record.
fn reads_of(hook: Hook) -> &'static str {
    match hook {
        Hook::OrderSelect | Hook::OrderSign => "Observation",
        Hook::PatientView => "DetectedIssue",
    }
}

fn check_cds_role(ctx: &RequestContext) -> Result<(), AppError> {
    if operation_allowed(ctx.principal.role, Operation::CdsCall) {
        Ok(())
    } else {
        Err(AppError::forbidden(format!(
            "role {} may not call CDS services",
            ctx.principal.role
        )))
    }
}

impl App {
    /// The access check of one CDS service call for `patient`, and its audit record (one per
    /// call, allowed or refused): the role must allow CDS calls, the token must allow reading
    /// what the hook reads, and the caller must be able to open the patient's record
    /// (`Forbidden` otherwise). A patient not on record is [`CdsPatient::Unknown`], so the
    /// wire can answer with a card saying no check could be made.
    ///
    /// `service` is the service id (or hook name); the audit record's subtype is
    /// `cds-{service}`.
    pub async fn cds_authorize(
        &self,
        ctx: &RequestContext,
        service: &str,
        patient: &str,
    ) -> Result<CdsPatient, AppError> {
        Ok(self.cds_call(ctx, service, patient).await?.patient)
    }

    /// [`App::cds_authorize`], keeping what the check computed — the caller's access and view
    /// of the patient — for the call's reads ([`App::cds_pgx_results`],
    /// [`App::cds_call_safety_inputs`]), so one CDS call asks the store once, not three times,
    /// whether the caller may open the record.
    pub async fn cds_call(
        &self,
        ctx: &RequestContext,
        service: &str,
        patient: &str,
    ) -> Result<CdsCall, AppError> {
        let event = Event::new("operation", AuditAction::Execute)
            .detail(format!("cds-{service}"))
            .patient(patient);
        let result = async {
            check_patient_id(patient)?;
            check_cds_role(ctx)?;
            let hook = hook_of(service)
                .ok_or_else(|| AppError::BadRequest(format!("no CDS service '{service}'")))?;
            check_interaction(ctx, reads_of(hook), Interaction::Search)?;
            let access = self.access(ctx).await?;
            if !self.store.patient_exists(patient).await? {
                return Ok(CdsCall {
                    patient: CdsPatient::Unknown,
                    seen: None,
                });
            }
            let view = self.patient_view(ctx, &access, patient).await?;
            Ok(CdsCall {
                patient: CdsPatient::Known,
                seen: Some((access, view)),
            })
        }
        .await;
        self.audited(ctx, event, result).await
    }

    /// The patient's DetectedIssues (`hooks::issues_query`) as the caller may see them, and
    /// how many open PGx issues their consent withholds from the caller. Same checks as
    /// [`App::cds_authorize`] for `patient-view`; not audited (the call is).
    pub async fn pgx_issues(
        &self,
        ctx: &RequestContext,
        patient: &str,
    ) -> Result<PatientIssues, AppError> {
        check_patient_id(patient)?;
        check_cds_role(ctx)?;
        check_interaction(ctx, "DetectedIssue", Interaction::Search)?;
        let access = self.access(ctx).await?;
        let view = self.patient_view(ctx, &access, patient).await?;
        let query = hooks::issues_query(patient);
        let found = self.search_all(&query, &access).await?;
        let seen: HashSet<&str> = found.iter().map(|r| r.id.as_str()).collect();
        let withheld = if view.withheld_labels.is_empty() {
            0
        } else {
            self.search_all(&query, &Access::unrestricted())
                .await?
                .iter()
                .filter(|r| !seen.contains(r.id.as_str()))
                .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
                .filter(smr_cds::issue::is_open_pgx_issue)
                .count()
        };
        let visible = found
            .iter()
            .filter_map(|r| serde_json::from_str(&r.body).ok())
            .collect();
        Ok(PatientIssues { visible, withheld })
    }

    /// CDS Hooks feedback: `audit_events` (built by `smr_cds::hooks::feedback_audit_event`)
    /// are appended to the audit chain, each with an id, `meta`, the caller as agent (user
    /// and organisation, role, purpose of use) and the request id. Returns
    /// `AuditEvent/{id}` for each. The role must allow CDS calls (`Forbidden`, audited); an
    /// AuditEvent that is not valid FHIR is `BadRequest` (audited) and nothing is stored.
    pub async fn record_cds_feedback(
        &self,
        ctx: &RequestContext,
        service: &str,
        audit_events: Vec<Value>,
    ) -> Result<Vec<String>, AppError> {
        let prepared = check_cds_role(ctx).and_then(|()| {
            let recorded = now_micros();
            audit_events
                .into_iter()
                .enumerate()
                .map(|(i, mut body)| {
                    link_card_patient(&self.cards, &mut body);
                    feedback_record(ctx, body, recorded, i)
                })
                .collect::<Result<Vec<_>, _>>()
        });
        let records = match prepared {
            Ok(records) => records,
            Err(e) => {
                let event = Event::new("operation", AuditAction::Execute)
                    .detail(format!("cds-{service}-feedback"));
                return self.audited(ctx, event, Err(e)).await;
            }
        };
        let stored = records
            .iter()
            .map(|r| format!("AuditEvent/{}", r.id))
            .collect();
        self.store.append_audit(records).await?;
        Ok(stored)
    }
}

/// Cards remembered by [`CardLedger`] (oldest forgotten first): a day of a busy hospital's
/// order hooks, about 20 MB at most.
const LEDGER_CAPACITY: usize = 200_000;

/// Which patient each recent CDS card was about, so that the card's feedback (CDS Hooks
/// feedback names only the card's uuid) lands in that patient's audit trail — the patient
/// sees who acted on an alert about them — and counts in the regional alert measures.
/// In memory and per process: feedback for a card issued before a restart, or by another
/// node, is stored without its patient (as before), never attributed to the wrong one.
#[derive(Debug, Default)]
pub(crate) struct CardLedger {
    inner: Mutex<LedgerInner>,
}

#[derive(Debug, Default)]
struct LedgerInner {
    patient_of: HashMap<String, String>,
    order: VecDeque<String>,
}

impl CardLedger {
    fn remember(&self, patient: &str, cards: &[&str]) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        for card in cards {
            if inner
                .patient_of
                .insert((*card).to_owned(), patient.to_owned())
                .is_none()
            {
                inner.order.push_back((*card).to_owned());
            }
        }
        while inner.order.len() > LEDGER_CAPACITY {
            if let Some(old) = inner.order.pop_front() {
                inner.patient_of.remove(&old);
            }
        }
    }

    fn patient_of(&self, card: &str) -> Option<String> {
        self.inner.lock().ok()?.patient_of.get(card).cloned()
    }
}

impl App {
    /// Remembers that `cards` (their uuids) were returned to a CDS call about `patient`.
    pub fn cards_issued(&self, patient: &str, cards: &[&str]) {
        if !cards.is_empty() && check_patient_id(patient).is_ok() {
            self.cards.remember(patient, cards);
        }
    }
}

/// Adds the patient of the card a feedback AuditEvent is about, when this process issued it.
fn link_card_patient(ledger: &CardLedger, body: &mut Value) {
    let card = body
        .get("entity")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.pointer("/what/identifier/value").and_then(Value::as_str))
        .find_map(|v| v.strip_prefix("urn:uuid:"));
    let Some(patient) = card.and_then(|c| ledger.patient_of(c)) else {
        return;
    };
    if let Some(entities) = body.get_mut("entity").and_then(Value::as_array_mut) {
        entities.push(json!({
            "what": {"reference": format!("Patient/{patient}")},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                     "code": "1", "display": "Person"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role",
                     "code": "1", "display": "Patient"},
        }));
    }
}

/// One feedback AuditEvent completed and turned into the record the chain appends.
fn feedback_record(
    ctx: &RequestContext,
    mut body: Value,
    recorded: i64,
    index: usize,
) -> Result<AuditRecord, AppError> {
    let bad = |m: String| AppError::BadRequest(format!("feedback item {index}: {m}"));
    if body.get("resourceType").and_then(Value::as_str) != Some("AuditEvent") {
        return Err(bad("not an AuditEvent".into()));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let now = datetime::format_instant(recorded);
    let p = &ctx.principal;
    let (purpose, purpose_of_event) = crate::audit::purpose_of_use(ctx);
    let Some(obj) = body.as_object_mut() else {
        return Err(bad("not a JSON object".into()));
    };
    obj.insert("id".into(), json!(id));
    obj.insert("meta".into(), json!({"versionId": "1", "lastUpdated": now}));
    // When the user acted (the item's outcomeTimestamp) stays; else when SMR heard of it.
    if !obj.get("recorded").is_some_and(Value::is_string) {
        obj.insert("recorded".into(), json!(now));
    }
    obj.insert("purposeOfEvent".into(), json!([purpose_of_event]));
    // The caller, as the requesting agent; their organisation beside them.
    let mut user = obj
        .get("agent")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or_else(|| json!({"requestor": true}));
    user["who"] = json!({"identifier": {"system": USER_SYSTEM, "value": p.user}});
    if let Some(name) = &p.name {
        user["who"]["display"] = json!(name);
    }
    user["role"] = json!([{"coding": [{"system": ROLE_SYSTEM, "code": p.role.as_str()}],
                           "text": p.setting.as_str()}]);
    user["requestor"] = json!(true);
    user["purposeOfUse"] = json!([purpose]);
    let mut agents = vec![user];
    if let Some(org) = &p.organisation {
        agents.push(crate::audit::organisation_agent(org));
    }
    obj.insert("agent".into(), Value::Array(agents));
    let entities = obj
        .entry("entity")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or_else(|| bad("entity must be an array".into()))?;
    let mut patients: Vec<String> = entities
        .iter()
        .filter_map(|e| e.pointer("/what/reference").and_then(Value::as_str))
        .filter_map(|r| r.strip_prefix("Patient/"))
        .filter(|id| check_patient_id(id).is_ok())
        .map(str::to_owned)
        .collect();
    patients.sort();
    patients.dedup();
    entities.push(json!({
        "what": {"identifier": {"system": REQUEST_ID_SYSTEM, "value": ctx.request_id}},
        "type": {"system": "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType",
                 "code": "XrequestId", "display": "X-Request-Id"},
    }));
    smr_fhir::validate::validate_resource(&body).map_err(|issues| {
        let text: Vec<String> = issues
            .into_iter()
            .map(|i| match i.expression {
                Some(at) => format!("{at}: {}", i.diagnostics),
                None => i.diagnostics,
            })
            .collect();
        bad(text.join("; "))
    })?;
    Ok(AuditRecord {
        id,
        recorded,
        agent_user: Some(p.user.clone()),
        agent_org: p.organisation.clone(),
        purpose: Some(ctx.purpose.code().to_owned()),
        outcome: "0".into(),
        patients,
        body: body.to_string(),
    })
}

/// The request-id identifier system of SMR's audit records (as `audit` writes them).
const REQUEST_ID_SYSTEM: &str = "https://fhir.smr.nhs.uk/Id/request-id";
