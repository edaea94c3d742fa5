//! `$process-message`: NHS EPS FHIR messages (prescription orders, their cancellations,
//! dispense notifications) stored in the patient's record as one all-or-nothing write.
//!
//! `smr-eps` reads the message into a plan (pure); this module does what needs the store:
//! authorises by event, finds the patient by NHS number (an unknown one is refused: SMR does
//! not learn of patients from prescriptions), finds the orders a cancellation stops or a
//! dispense was made against, and hands the writes to [`App::write`] with the sender in the
//! Provenance template, so the message is authorised, validated, audited and given Provenance
//! like any other write. Contract: docs/eps.md.

use serde_json::{Value, json};
use smr_access::{Interaction, RequestContext, policy};
use smr_eps::{Event as EpsEvent, Header, Plan, Role as PlanRole};
use smr_fhir::query::{self, Handling, SearchRequest, TotalMode};
use smr_fhir::{Issue, IssueCode};
use smr_store::{Access, StoreError, StoredResource, WriteOp, WriteOutcome};

use crate::audit::{AuditAction, Event};
use crate::authorize::check_interaction;
use crate::{App, AppError, WriteKind};

const OPERATION: &str = "$process-message";
/// A cancellation updates the order at the version it read; when another writer changed it
/// in between, the whole message is planned again (each retry follows someone else's commit).
const RETRIES: usize = 8;
const PARTICIPANT_TYPE_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/provenance-participant-type";
/// `Bundle.identifier` of EPS messages is an RFC 4122 UUID.
const RFC4122_SYSTEM: &str = "https://tools.ietf.org/html/rfc4122";

/// A message stored.
#[derive(Debug, Clone)]
pub struct ProcessedMessage {
    pub header: Header,
    /// The patient's id.
    pub patient: String,
    /// Each resource the message wrote or found already stored.
    pub entries: Vec<MessageEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEntry {
    /// `Type/id`.
    pub reference: String,
    pub outcome: EntryOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryOutcome {
    Created,
    /// An order cancelled.
    Updated,
    /// Stored by an earlier message (the same message sent again, or a shared resource).
    AlreadyStored,
    /// An order already cancelled by an earlier copy of this cancellation.
    Unchanged,
}

impl EntryOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryOutcome::Created => "created",
            EntryOutcome::Updated => "updated",
            EntryOutcome::AlreadyStored => "already stored",
            EntryOutcome::Unchanged => "unchanged",
        }
    }
}

impl App {
    /// Stores the EPS message `bundle` (see the module note). A Bundle that is not an EPS
    /// message is `BadRequest`; a patient SMR does not hold is `Store(Invalid)` (422); either
    /// way nothing is stored and the refusal is audited.
    pub async fn process_message(
        &self,
        ctx: &RequestContext,
        bundle: &Value,
    ) -> Result<ProcessedMessage, AppError> {
        let result = self.process_message_inner(ctx, bundle).await;
        // Writes audit themselves (with the write); a refusal before the write is audited here.
        if let Err((e, false)) = &result {
            let event = Event::new("operation", AuditAction::Execute)
                .detail(OPERATION)
                .failed(e);
            self.audit(ctx, &event).await?;
        }
        result.map_err(|(e, _)| e)
    }

    /// The error's flag says whether it was audited already (by the write).
    async fn process_message_inner(
        &self,
        ctx: &RequestContext,
        bundle: &Value,
    ) -> Result<ProcessedMessage, (AppError, bool)> {
        let before = |e: AppError| (e, false);
        // Directory resources the caller may not create are kept inside what refers to them.
        let p = &ctx.principal;
        let may_create = |ty: &str| {
            policy::role_allows(p.role, ty, Interaction::Create)
                && p.scopes.allows(ty, Interaction::Create)
        };
        let plan = smr_eps::plan(bundle, &may_create)
            .map_err(|e| before(AppError::BadRequest(e.to_string())))?;
        for (ty, interaction) in required(plan.header.event) {
            check_interaction(ctx, ty, *interaction).map_err(before)?;
        }
        let ctx = with_sender(ctx, &plan.header);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let patient = self
                .patient_by_nhs_number(&plan.nhs_number)
                .await
                .map_err(before)?;
            let mut bound = plan.clone();
            bound.bind_patient(&patient);
            let (ops, mut entries) = self.message_ops(bound, &patient).await.map_err(before)?;
            if ops.is_empty() {
                // Nothing to write (a cancellation sent again): still audited.
                let event = Event::new("operation", AuditAction::Execute)
                    .detail(OPERATION)
                    .patient(patient.clone());
                self.audit(&ctx, &event).await.map_err(|e| (e, true))?;
                return Ok(ProcessedMessage {
                    header: plan.header,
                    patient,
                    entries,
                });
            }
            match self.write(&ctx, ops, WriteKind::Operation(OPERATION)).await {
                Ok(outcomes) => {
                    entries.extend(outcomes.iter().filter_map(entry_of));
                    return Ok(ProcessedMessage {
                        header: plan.header,
                        patient,
                        entries,
                    });
                }
                Err(AppError::Entry(e))
                    if attempt < RETRIES
                        && matches!(e.error, StoreError::PreconditionFailed(_)) =>
                {
                    continue;
                }
                Err(e) => return Err((e, true)),
            }
        }
    }

    /// The id of the Patient SMR holds with this NHS number (one at most: the store keeps NHS
    /// numbers unique); 422 when there is none.
    async fn patient_by_nhs_number(&self, nhs_number: &str) -> Result<String, AppError> {
        let search = criteria(
            "Patient",
            &[(
                "identifier".into(),
                format!("{}|{nhs_number}", smr_fhir::nhs_number::NHS_NUMBER_SYSTEM),
            )],
        )?;
        let found = self.find(&search).await?;
        match found.as_slice() {
            [one] => Ok(one.id.clone()),
            _ => Err(AppError::Store(StoreError::Invalid(vec![
                Issue::error(
                    IssueCode::NotFound,
                    format!(
                        "SMR holds no patient with NHS number {nhs_number}: an EPS message is \
                         stored only in the record of a patient SMR already holds"
                    ),
                )
                .at("Patient.identifier"),
            ]))),
        }
    }

    /// Every match of `search` in the whole store (the write that follows is what is
    /// authorised against the caller's access).
    async fn find(&self, search: &SearchRequest) -> Result<Vec<StoredResource>, AppError> {
        let mut probe = search.clone();
        probe.count = 2;
        probe.cursor = None;
        probe.total = TotalMode::None;
        Ok(self
            .store
            .search(&probe, &Access::unrestricted())
            .await?
            .matches)
    }

    /// The plan as write operations: conditional creates, cancelled orders as updates at the
    /// version read, dispenses linked to the stored order they were made against. Entries
    /// that need no write (a cancellation already applied) are answered directly.
    async fn message_ops(
        &self,
        plan: Plan,
        patient: &str,
    ) -> Result<(Vec<WriteOp>, Vec<MessageEntry>), AppError> {
        let mut ops = Vec::new();
        let mut entries = Vec::new();
        for mut write in plan.writes {
            match &write.role {
                PlanRole::Cancellation {
                    line,
                    status_reason,
                } => {
                    let search =
                        criteria("MedicationRequest", &smr_eps::order_criteria(line, patient))?;
                    let orders = self.find(&search).await?;
                    if !orders.is_empty() {
                        for order in orders {
                            let mut stored = smr_fhir::json::parse_str(&order.body)
                                .map_err(|e| StoreError::Internal(e.to_string()))?;
                            if smr_eps::cancel(&mut stored, status_reason.as_ref()) {
                                ops.push(WriteOp::Update {
                                    resource: stored,
                                    full_url: None,
                                    if_match: Some(order.version),
                                    patched: false,
                                    condition: None,
                                });
                            } else {
                                entries.push(MessageEntry {
                                    reference: order.reference(),
                                    outcome: EntryOutcome::Unchanged,
                                });
                            }
                        }
                        continue;
                    }
                    // Not held (yet): stored cancelled, so the order cannot arrive later and
                    // stand as active.
                }
                PlanRole::Dispense {
                    prescription: Some((line, local)),
                } => {
                    let search =
                        criteria("MedicationRequest", &smr_eps::order_criteria(line, patient))?;
                    if let [order] = self.find(&search).await?.as_slice() {
                        smr_eps::link_dispense(&mut write.resource, local, &order.reference());
                    }
                }
                _ => {}
            }
            let ty = write.resource_type().to_owned();
            ops.push(WriteOp::Create {
                resource: write.resource,
                full_url: write.full_url,
                if_none_exist: Some(criteria(&ty, &write.criteria)?),
            });
        }
        Ok((ops, entries))
    }
}

/// What the caller's role must be allowed, by event (directory resources are checked per
/// entry by the write).
fn required(event: EpsEvent) -> &'static [(&'static str, Interaction)] {
    match event {
        EpsEvent::PrescriptionOrder => &[("MedicationRequest", Interaction::Create)],
        EpsEvent::PrescriptionOrderUpdate => &[
            ("MedicationRequest", Interaction::Update),
            ("MedicationRequest", Interaction::Create),
        ],
        EpsEvent::DispenseNotification => &[("MedicationDispense", Interaction::Create)],
    }
}

fn criteria(res_type: &str, pairs: &[(String, String)]) -> Result<SearchRequest, AppError> {
    query::parse(res_type, pairs, Handling::Strict)
        .map(|p| p.request)
        .map_err(|issues| AppError::Store(StoreError::Invalid(issues)))
}

fn entry_of(outcome: &WriteOutcome) -> Option<MessageEntry> {
    let (r, outcome) = match outcome {
        WriteOutcome::Created(r) => (r, EntryOutcome::Created),
        WriteOutcome::Updated(r) => (r, EntryOutcome::Updated),
        WriteOutcome::Existing(r) => (r, EntryOutcome::AlreadyStored),
        WriteOutcome::Deleted(_) => return None,
    };
    Some(MessageEntry {
        reference: r.reference(),
        outcome,
    })
}

/// The caller's context with the message's sender added to the Provenance every entry gets:
/// an agent for the sending organisation (author of an order or cancellation, performer of a
/// dispense) and the message itself as the source entity, after anything the client sent in
/// `X-Provenance`. A client Provenance SMR cannot read is left for the write to refuse.
fn with_sender(ctx: &RequestContext, header: &Header) -> RequestContext {
    let mut provenance = match ctx.x_provenance.as_deref() {
        Some(text) => match smr_fhir::json::parse_str(text) {
            Ok(v) if v.is_object() => v,
            _ => return ctx.clone(),
        },
        None => json!({"resourceType": "Provenance"}),
    };
    let (code, display) = match header.event {
        EpsEvent::DispenseNotification => ("performer", "Performer"),
        _ => ("author", "Author"),
    };
    let mut who = header
        .sender
        .clone()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    if who.get("display").is_none() {
        who["display"] = json!(header.sender_display());
    }
    let agent = json!({
        "type": {"coding": [{"system": PARTICIPANT_TYPE_SYSTEM, "code": code, "display": display}],
                 "text": "EPS message sender"},
        "who": who,
    });
    let mut what = json!({"display": format!(
        "EPS {} message from {}{}",
        header.event.code(),
        header.sender_display(),
        header
            .source
            .as_ref()
            .and_then(|s| s.get("endpoint"))
            .and_then(Value::as_str)
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    )});
    if let Some(id) = &header.message_identifier {
        what["identifier"] = json!({"system": RFC4122_SYSTEM, "value": id});
    }
    let entity = json!({"role": "source", "what": what});
    if let Some(obj) = provenance.as_object_mut() {
        for (key, item) in [("agent", agent), ("entity", entity)] {
            match obj.get_mut(key) {
                Some(Value::Array(list)) => list.push(item),
                _ => {
                    obj.insert(key.into(), json!([item]));
                }
            }
        }
    }
    let mut out = ctx.clone();
    out.x_provenance = Some(provenance.to_string());
    out
}
