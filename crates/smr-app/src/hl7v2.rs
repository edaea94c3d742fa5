//! HL7 v2 intake (issue 9): one message in, one ACK out, one all-or-nothing write between.
//!
//! `smr_hl7v2::read` parses the message, checks the sender against the senders file and maps
//! it to a plan of FHIR resources keyed by identifier. Here the plan meets the store:
//! - the patient is found by NHS number (an ADT message creates an unknown one, or merges
//!   PID's demographics into a known one; a pharmacy message for an unknown patient is `AE`);
//! - each resource is found by its identifier (namespaced by the sender): absent → a
//!   conditional create (`If-None-Exist` on the identifier, so two copies racing make one);
//!   present and unchanged (`meta` aside) → nothing; present and changed → an update of that
//!   version. A re-sent message therefore writes nothing new;
//! - everything goes through [`App::write`] in one transaction, as the sender: a back-end
//!   system principal whose organisation is the sender's ODS code and whose setting is the
//!   sender's (stated), so the Provenance and AuditEvent name the sender.
//!
//! Every message gets an ACK: `AA` stored (or already stored), `AE` the content is wrong (the
//! ERR segment names segment and field), `AR` unreadable, unsupported, an unknown sender, or
//! SMR unable to write now (the sender should retry). Refusals are audited too.

use serde_json::{Value, json};
use smr_access::{Principal, RequestContext, Role, Scopes};
use smr_fhir::nhs_number::NHS_NUMBER_SYSTEM;
use smr_fhir::query::{self, Handling, SearchRequest};
use smr_hl7v2::{AckCode, Condition, Hl7Error, Location, Senders, ack};
use smr_store::{Access, StoreError, StoredResource, WriteOp};

use crate::audit::{AuditAction, Event};
use crate::records::WriteKind;
use crate::{App, AppError};

/// The answer to one message.
#[derive(Debug, Clone)]
pub struct Hl7Reply {
    /// The ACK message, ER7 text (unframed).
    pub ack: String,
    pub code: AckCode,
    /// Why it was not `AA`.
    pub error: Option<Hl7Error>,
    /// `Type/id` of every resource created or updated.
    pub written: Vec<String>,
}

impl App {
    /// Stores one HL7 v2 message (unframed bytes) from a sender in `senders` and answers
    /// with its ACK. `channel` says where it came from (a peer address, a file) for the logs.
    pub async fn hl7v2_message(&self, senders: &Senders, bytes: &[u8], channel: &str) -> Hl7Reply {
        let ack_id = uuid::Uuid::now_v7().simple().to_string();
        let now = time::OffsetDateTime::now_utc();
        let accepted = match smr_hl7v2::read(bytes, senders) {
            Ok(a) => a,
            Err(refused) => {
                let msh4 = refused
                    .message
                    .as_ref()
                    .map(|m| m.msh().get(4, 1).to_owned())
                    .unwrap_or_default();
                let ctx = unknown_sender_context(&msh4, &ack_id);
                self.audit_refusal(&ctx, &refused.error).await;
                tracing::info!(%channel, code = refused.error.code.as_str(), reason = %refused.error, "HL7 v2 message refused");
                return reply(refused.message.as_ref(), &refused.error, &ack_id, now);
            }
        };
        let ctx = sender_context(&accepted.sender, &accepted.plan.header.control_id);
        match self.store_plan(&ctx, &accepted.plan).await {
            Ok(written) => Hl7Reply {
                ack: ack::build(Some(&accepted.message), AckCode::Accept, None, &ack_id, now),
                code: AckCode::Accept,
                error: None,
                written,
            },
            Err(error) => {
                tracing::info!(%channel, code = error.code.as_str(), reason = %error, "HL7 v2 message not stored");
                reply(Some(&accepted.message), &error, &ack_id, now)
            }
        }
    }

    /// Finds what the plan names and writes the rest in one transaction (audited by `write`;
    /// a refusal found before writing is audited here).
    async fn store_plan(
        &self,
        ctx: &RequestContext,
        plan: &smr_hl7v2::Plan,
    ) -> Result<Vec<String>, Hl7Error> {
        let result = self.plan_ops(plan).await;
        let (ops, items) = match result {
            Ok(v) => v,
            Err(e) => {
                self.audit_refusal(ctx, &e).await;
                return Err(e);
            }
        };
        if ops.is_empty() {
            // All of it is stored already (a message sent again): nothing to write, still a
            // trace that it came.
            let event = Event::new("operation", AuditAction::Execute)
                .detail("$hl7v2")
                .query(format!(
                    "control-id={}&unchanged=true",
                    plan.header.control_id
                ));
            if let Err(e) = self.audit(ctx, &event).await {
                return Err(unavailable(&e));
            }
            return Ok(Vec::new());
        }
        match self.write(ctx, ops, WriteKind::Operation("$hl7v2")).await {
            Ok(outcomes) => Ok(outcomes
                .iter()
                .filter_map(|o| o.resource().map(|r| r.reference()))
                .collect()),
            Err(e) => Err(write_error(&e, &items, plan)),
        }
    }

    /// The writes of a plan, and for each write where its resource was read (for errors).
    async fn plan_ops(
        &self,
        plan: &smr_hl7v2::Plan,
    ) -> Result<(Vec<WriteOp>, Vec<Location>), Hl7Error> {
        let mut ops = Vec::new();
        let mut at = Vec::new();
        let found = self
            .by_identifier(
                "Patient",
                NHS_NUMBER_SYSTEM,
                &plan.nhs_number,
                &plan.patient_location,
            )
            .await?;
        let subject = match (found, &plan.patient) {
            (Some(existing), Some(from_pid)) => {
                let current = parse_stored(&existing, &plan.patient_location)?;
                let merged = smr_hl7v2::map::merge_demographics(&current, from_pid);
                if !crate::import::same_content(&merged, &current) {
                    ops.push(WriteOp::Update {
                        resource: merged,
                        full_url: None,
                        if_match: Some(existing.version),
                        patched: false,
                        condition: None,
                    });
                    at.push(plan.patient_location.clone());
                }
                format!("Patient/{}", existing.id)
            }
            (Some(existing), None) => format!("Patient/{}", existing.id),
            (None, Some(from_pid)) => {
                let placeholder = format!("urn:uuid:{}", uuid::Uuid::new_v4());
                ops.push(WriteOp::Create {
                    resource: from_pid.clone(),
                    full_url: Some(placeholder.clone()),
                    if_none_exist: Some(identifier_search(
                        "Patient",
                        NHS_NUMBER_SYSTEM,
                        &plan.nhs_number,
                        &plan.patient_location,
                    )?),
                });
                at.push(plan.patient_location.clone());
                placeholder
            }
            (None, None) => {
                return Err(Hl7Error::content(
                    plan.patient_location.clone(),
                    Condition::UnknownKey,
                    format!(
                        "PID-3: SMR holds no patient with NHS number {}",
                        plan.nhs_number
                    ),
                ));
            }
        };
        for item in &plan.items {
            let ty = item.resource["resourceType"].as_str().unwrap_or_default();
            let mut resource = item.resource.clone();
            resource["subject"] = json!({"reference": subject});
            if let Some((element, system, value)) = &item.link
                && let Some(order) = self
                    .by_identifier("MedicationRequest", system, value, &item.location)
                    .await?
            {
                let reference = json!({"reference": order.reference()});
                resource[*element] = if *element == "authorizingPrescription" {
                    json!([reference])
                } else {
                    reference
                };
            }
            match self
                .by_identifier(ty, &item.system, &item.value, &item.location)
                .await?
            {
                None if item.must_exist => {
                    return Err(Hl7Error::content(
                        item.location.clone(),
                        Condition::UnknownKey,
                        format!(
                            "{}: SMR holds no order '{}' from this sender to change",
                            item.location, item.value
                        ),
                    ));
                }
                None => {
                    ops.push(WriteOp::Create {
                        resource,
                        full_url: None,
                        if_none_exist: Some(identifier_search(
                            ty,
                            &item.system,
                            &item.value,
                            &item.location,
                        )?),
                    });
                    at.push(item.location.clone());
                }
                Some(existing) => {
                    let current = parse_stored(&existing, &item.location)?;
                    if item.status_only {
                        let status = resource["status"].clone();
                        resource = current.clone();
                        resource["status"] = status;
                    }
                    resource["id"] = json!(existing.id);
                    if !crate::import::same_content(&resource, &current) {
                        ops.push(WriteOp::Update {
                            resource,
                            full_url: None,
                            if_match: Some(existing.version),
                            patched: false,
                            condition: None,
                        });
                        at.push(item.location.clone());
                    }
                }
            }
        }
        Ok((ops, at))
    }

    /// The one resource of `ty` with this identifier, over the whole store (the sender is a
    /// back-end system acting for any patient; a duplicate must be found, not re-created).
    async fn by_identifier(
        &self,
        ty: &str,
        system: &str,
        value: &str,
        at: &Location,
    ) -> Result<Option<StoredResource>, Hl7Error> {
        let mut request = identifier_search(ty, system, value, at)?;
        request.count = 2;
        request.total = query::TotalMode::None;
        let page = self
            .store
            .search(&request, &Access::unrestricted())
            .await
            .map_err(|e| unavailable(&AppError::Store(e)))?;
        match page.matches.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.clone())),
            _ => Err(Hl7Error::content(
                at.clone(),
                Condition::UnknownKey,
                format!("{at}: SMR holds more than one {ty} with identifier '{value}'"),
            )),
        }
    }

    async fn audit_refusal(&self, ctx: &RequestContext, error: &Hl7Error) {
        let refusal = match error.condition {
            Condition::NotAuthorised => AppError::Forbidden(error.to_string()),
            _ => AppError::BadRequest(error.to_string()),
        };
        let event = Event::new("operation", AuditAction::Execute)
            .detail("$hl7v2")
            .failed(&refusal);
        if let Err(e) = self.audit(ctx, &event).await {
            tracing::error!(error = %e, "audit record of a refused HL7 v2 message not written");
        }
    }
}

/// The sender as a back-end system principal: its ODS code as organisation, its setting as
/// stated (so the Provenance says it), its name for the audit record.
pub fn sender_context(sender: &smr_hl7v2::Sender, control_id: &str) -> RequestContext {
    RequestContext::new(
        Principal {
            user: format!("hl7v2:{}", sender.ods_code),
            role: Role::System,
            organisation: Some(sender.ods_code.clone()),
            setting: sender.setting,
            setting_claimed: true,
            patient: None,
            scopes: Scopes::unrestricted(),
            // A sender listed without a name is named by nobody (FHIR forbids empty strings).
            name: (!sender.name.is_empty()).then(|| sender.name.clone()),
            issuer: "smr-mllp".into(),
        },
        None,
        format!("hl7v2-{}-{control_id}", sender.ods_code),
    )
}

/// Who an unreadable message or an unknown sender is, for the audit record of its refusal:
/// nobody SMR knows, with no rights.
fn unknown_sender_context(msh4: &str, ack_id: &str) -> RequestContext {
    let label = if msh4.trim().is_empty() {
        "unknown"
    } else {
        msh4.trim()
    };
    RequestContext::new(
        Principal {
            user: format!("hl7v2:{label}"),
            role: Role::System,
            organisation: None,
            setting: smr_access::CareSetting::Unspecified,
            setting_claimed: false,
            patient: None,
            scopes: Scopes::none(),
            name: None,
            issuer: "smr-mllp".into(),
        },
        None,
        format!("hl7v2-refused-{ack_id}"),
    )
}

fn identifier_search(
    ty: &str,
    system: &str,
    value: &str,
    at: &Location,
) -> Result<SearchRequest, Hl7Error> {
    let pairs = vec![("identifier".to_owned(), format!("{system}|{value}"))];
    query::parse(ty, &pairs, Handling::Strict)
        .map(|p| p.request)
        .map_err(|_| {
            Hl7Error::content(
                at.clone(),
                Condition::DataTypeError,
                format!("{at}: '{value}' cannot be used as an identifier"),
            )
        })
}

fn parse_stored(stored: &StoredResource, at: &Location) -> Result<Value, Hl7Error> {
    smr_fhir::json::parse_str(&stored.body).map_err(|e| {
        Hl7Error::reject(
            Some(at.clone()),
            Condition::InternalError,
            format!("the stored {} cannot be read: {e}", stored.reference()),
        )
    })
}

/// SMR could not do its part (the store is down, the audit failed): `AR`, so the sender
/// keeps the message and sends it again.
fn unavailable(e: &AppError) -> Hl7Error {
    Hl7Error::reject(
        None,
        Condition::InternalError,
        format!("SMR cannot store messages now, send again later: {e}"),
    )
}

/// A failed write as an ACK error: the entry's own problem (invalid, a conflict) is `AE` at
/// the field its resource was read from; a store failure is `AR`.
fn write_error(e: &AppError, items: &[Location], plan: &smr_hl7v2::Plan) -> Hl7Error {
    let (entry, store) = match e {
        AppError::Entry(entry) => (Some(entry.entry), &entry.error),
        AppError::Store(s) => (None, s),
        AppError::Forbidden(_) | AppError::BadRequest(_) => {
            return Hl7Error::reject(None, Condition::NotAuthorised, e.to_string());
        }
    };
    match store {
        StoreError::Database(_)
        | StoreError::Internal(_)
        | StoreError::Unavailable(_)
        | StoreError::Migrate(_) => unavailable(e),
        _ => {
            let at = entry
                .and_then(|i| items.get(i))
                .cloned()
                .unwrap_or_else(|| plan.patient_location.clone());
            let text = format!("{at}: SMR refused what this maps to: {store}");
            Hl7Error::content(at, Condition::DataTypeError, text)
        }
    }
}

fn reply(
    message: Option<&smr_hl7v2::Message>,
    error: &Hl7Error,
    ack_id: &str,
    now: time::OffsetDateTime,
) -> Hl7Reply {
    Hl7Reply {
        ack: ack::build(message, error.code, Some(error), ack_id, now),
        code: error.code,
        error: Some(error.clone()),
        written: Vec::new(),
    }
}
