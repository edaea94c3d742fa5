//! AuditEvents shaped like IHE Basic Audit Log Patterns (BALP): type `rest`, subtype the
//! FHIR interaction, action, outcome, the user and their organisation as agents with role
//! and purpose of use, the patient and the data as entities, and the request id.
//!
//! The JSON text built here is what the store hashes into the chain and what a patient is
//! served, byte for byte.

use base64::Engine as _;
use serde_json::{Value, json};
use smr_access::{ODS_SYSTEM, RequestContext};
use smr_fhir::datetime;
use smr_store::{AuditPage, AuditQuery, AuditRecord, EntryError, WriteOutcome};

use crate::{App, AppError, now_micros};

/// SMR's identifier system for users named in tokens (`sub`).
pub const USER_SYSTEM: &str = "https://fhir.smr.nhs.uk/Id/user";
/// SMR's code system for its roles.
pub const ROLE_SYSTEM: &str = "https://fhir.smr.nhs.uk/CodeSystem/role";
/// SMR's code system for audit subtypes beyond the FHIR interactions (CDS Hooks calls, …).
pub const SUBTYPE_SYSTEM: &str = "https://fhir.smr.nhs.uk/CodeSystem/audit-subtype";
const REQUEST_ID_SYSTEM: &str = "https://fhir.smr.nhs.uk/Id/request-id";

/// AuditEvent.action (http://hl7.org/fhir/audit-event-action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    Create,
    Read,
    Update,
    Delete,
    Execute,
}

impl AuditAction {
    fn code(self) -> &'static str {
        match self {
            AuditAction::Create => "C",
            AuditAction::Read => "R",
            AuditAction::Update => "U",
            AuditAction::Delete => "D",
            AuditAction::Execute => "E",
        }
    }
}

/// What happened, for one AuditEvent.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// A `http://hl7.org/fhir/restful-interaction` code (`read`, `search-type`, `create`,
    /// `transaction`, `operation`, …).
    pub interaction: &'static str,
    /// For operations and CDS calls: what exactly (`$everything`, `cds-order-select`).
    pub detail: Option<String>,
    pub action: AuditAction,
    /// Patients whose records were touched (ids).
    pub patients: Vec<String>,
    /// Resources read or written (`Type/id` or `Type/id/_history/v`).
    pub entities: Vec<String>,
    /// The search or operation's query text, when there is one.
    pub query: Option<String>,
    /// `None` for success, else why it failed (and whether the caller was refused).
    pub failure: Option<Failure>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub refused: bool,
    pub reason: String,
}

impl Event {
    pub fn new(interaction: &'static str, action: AuditAction) -> Self {
        Event {
            interaction,
            detail: None,
            action,
            patients: Vec::new(),
            entities: Vec::new(),
            query: None,
            failure: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn patient(mut self, patient: impl Into<String>) -> Self {
        self.patients.push(patient.into());
        self
    }

    pub fn query(mut self, query: impl Into<String>) -> Self {
        self.query = Some(query.into());
        self
    }

    /// Marks the event failed with `error` (refused when it is a `Forbidden`).
    pub fn failed(mut self, error: &AppError) -> Self {
        self.failure = Some(Failure {
            refused: matches!(error, AppError::Forbidden(_)),
            reason: error.to_string(),
        });
        self
    }
}

/// The caller's purpose of use as AuditEvent codings: for `agent.purposeOfUse`, and for
/// `purposeOfEvent` (with the break-glass reason as its text).
pub(crate) fn purpose_of_use(ctx: &RequestContext) -> (Value, Value) {
    let purpose = json!({"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
        "code": ctx.purpose.code(),
        "display": ctx.purpose.display(),
    }]});
    let mut purpose_of_event = purpose.clone();
    if let Some(reason) = &ctx.break_glass {
        purpose_of_event["text"] = json!(reason);
    }
    (purpose, purpose_of_event)
}

/// The agent naming the caller's organisation by ODS code, beside the user.
pub(crate) fn organisation_agent(ods_code: &str) -> Value {
    json!({
        "type": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
            "code": "datacollector", "display": "data collector"}]},
        "who": {"identifier": {"system": ODS_SYSTEM, "value": ods_code}},
        "requestor": false,
    })
}

/// The AuditEvent for `event` by `ctx`, as the record the store appends.
pub(crate) fn record(ctx: &RequestContext, event: &Event) -> AuditRecord {
    let recorded = now_micros();
    let id = uuid::Uuid::now_v7().to_string();
    let p = &ctx.principal;
    let outcome = match &event.failure {
        None => "0",
        Some(f) if f.refused => "4",
        Some(_) => "8",
    };
    let (purpose, purpose_of_event) = purpose_of_use(ctx);
    let mut subtype = vec![json!({
        "system": "http://hl7.org/fhir/restful-interaction",
        "code": event.interaction,
    })];
    if let Some(detail) = &event.detail {
        subtype.push(json!({"system": SUBTYPE_SYSTEM, "code": detail}));
    }
    let mut user = json!({
        "type": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
            "code": "humanuser", "display": "human user"}]},
        "who": {"identifier": {"system": USER_SYSTEM, "value": p.user}},
        "role": [{"coding": [{"system": ROLE_SYSTEM, "code": p.role.as_str()}],
                  "text": p.setting.as_str()}],
        "requestor": true,
        "purposeOfUse": [purpose],
    });
    if p.role == smr_access::Role::System {
        user["type"] = json!({"coding": [{
            "system": "http://dicom.nema.org/resources/ontology/DCM",
            "code": "110150", "display": "Application"}]});
    }
    if let Some(name) = &p.name {
        user["who"]["display"] = json!(name);
    }
    let mut agents = vec![user];
    if let Some(org) = &p.organisation {
        agents.push(organisation_agent(org));
    }
    let mut entities = Vec::new();
    let mut patients = event.patients.clone();
    patients.sort();
    patients.dedup();
    for patient in &patients {
        entities.push(json!({
            "what": {"reference": format!("Patient/{patient}")},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                     "code": "1", "display": "Person"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role",
                     "code": "1", "display": "Patient"},
        }));
    }
    for what in &event.entities {
        entities.push(json!({
            "what": {"reference": what},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                     "code": "2", "display": "System Object"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role",
                     "code": "4", "display": "Domain Resource"},
        }));
    }
    if let Some(q) = &event.query {
        entities.push(json!({
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                     "code": "2", "display": "System Object"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role",
                     "code": "24", "display": "Query"},
            "query": base64::engine::general_purpose::STANDARD.encode(q),
        }));
    }
    entities.push(json!({
        "what": {"identifier": {"system": REQUEST_ID_SYSTEM, "value": ctx.request_id}},
        "type": {"system": "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType",
                 "code": "XrequestId", "display": "X-Request-Id"},
    }));
    let recorded_text = datetime::format_instant(recorded);
    let mut body = json!({
        "resourceType": "AuditEvent",
        "id": id,
        "meta": {"versionId": "1", "lastUpdated": recorded_text},
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
                 "code": "rest", "display": "RESTful Operation"},
        "subtype": subtype,
        "action": event.action.code(),
        "recorded": recorded_text,
        "outcome": outcome,
    });
    if let Some(f) = &event.failure {
        body["outcomeDesc"] = json!(f.reason);
    }
    body["purposeOfEvent"] = json!([purpose_of_event]);
    body["agent"] = Value::Array(agents);
    body["source"] = json!({
        "observer": {"display": "SMR"},
        "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                  "code": "4", "display": "Application Server"}],
    });
    body["entity"] = Value::Array(entities);
    AuditRecord {
        id,
        recorded,
        agent_user: Some(p.user.clone()),
        agent_org: p.organisation.clone(),
        purpose: Some(ctx.purpose.code().to_owned()),
        outcome: outcome.to_owned(),
        patients,
        body: body.to_string(),
    }
}

/// The event of a write once its result is known: the versions written become entities and
/// their patients are listed.
pub(crate) fn write_record(
    ctx: &RequestContext,
    mut event: Event,
    result: Result<&[WriteOutcome], &EntryError>,
) -> AuditRecord {
    match result {
        Ok(outcomes) => {
            for o in outcomes {
                if let Some(r) = o.resource() {
                    event
                        .entities
                        .push(format!("{}/{}/_history/{}", r.res_type, r.id, r.version));
                    if smr_store::is_patient_data(&r.res_type) && !r.owner.contains('/') {
                        event.patients.push(r.owner.clone());
                    }
                }
            }
        }
        Err(e) => {
            event.failure = Some(Failure {
                refused: false,
                reason: e.to_string(),
            });
        }
    }
    record(ctx, &event)
}

impl App {
    /// Appends the AuditEvent of `event` and waits for it to be committed.
    pub async fn audit(&self, ctx: &RequestContext, event: &Event) -> Result<(), AppError> {
        self.store
            .append_audit(vec![record(ctx, event)])
            .await
            .map_err(AppError::from)
    }

    /// Audits `result`: the event as given on success, marked failed otherwise. A failure
    /// to audit a successful read fails the read (no data without its trace).
    pub(crate) async fn audited<T>(
        &self,
        ctx: &RequestContext,
        event: Event,
        result: Result<T, AppError>,
    ) -> Result<T, AppError> {
        match result {
            Ok(value) => {
                self.audit(ctx, &event).await?;
                Ok(value)
            }
            Err(error) => {
                if let Err(e) = self.audit(ctx, &event.clone().failed(&error)).await {
                    tracing::error!(error = %e, "audit record of a failed request not written");
                }
                Err(error)
            }
        }
    }

    /// AuditEvents the caller may list: a patient their own record's, an administrator
    /// their organisation's agents', a back-end system any. Listing is itself audited.
    pub async fn audit_events(
        &self,
        ctx: &RequestContext,
        mut query: AuditQuery,
    ) -> Result<AuditPage, AppError> {
        let mut event = Event::new("search-type", AuditAction::Read).detail("AuditEvent");
        let allowed =
            crate::authorize::check_interaction(ctx, "AuditEvent", smr_access::Interaction::Search)
                .and_then(|()| {
                    let p = &ctx.principal;
                    match p.role {
                        smr_access::Role::Patient => {
                            let own = p.patient.clone().unwrap_or_default();
                            match &query.patient {
                                Some(asked) if *asked != own => Err(AppError::forbidden(
                                    "a patient may only list the access log of their own record",
                                )),
                                _ => {
                                    query.patient = Some(own);
                                    Ok(())
                                }
                            }
                        }
                        smr_access::Role::Admin => {
                            query.agent_org = p.organisation.clone();
                            Ok(())
                        }
                        _ => Ok(()),
                    }
                });
        if let Some(patient) = &query.patient {
            event = event.patient(patient.clone());
        }
        let result = match allowed {
            Ok(()) => self
                .store
                .audit_events(&query)
                .await
                .map_err(AppError::from),
            Err(e) => Err(e),
        };
        self.audited(ctx, event, result).await
    }

    /// One AuditEvent by id, under the same rules as [`App::audit_events`].
    pub async fn audit_event(&self, ctx: &RequestContext, id: &str) -> Result<String, AppError> {
        let event = Event::new("read", AuditAction::Read).detail("AuditEvent");
        let result = async {
            crate::authorize::check_interaction(ctx, "AuditEvent", smr_access::Interaction::Read)?;
            let not_found = || {
                AppError::Store(smr_store::StoreError::NotFound {
                    res_type: "AuditEvent".into(),
                    id: id.into(),
                })
            };
            let (body, patients) = self.store.audit_event(id).await?.ok_or_else(not_found)?;
            let p = &ctx.principal;
            let visible = match p.role {
                smr_access::Role::Patient => {
                    p.patient.as_ref().is_some_and(|own| patients.contains(own))
                }
                smr_access::Role::Admin => serde_json::from_str::<Value>(&body).is_ok_and(|v| {
                    v["agent"].as_array().into_iter().flatten().any(|a| {
                        a.pointer("/who/identifier/value").and_then(Value::as_str)
                            == p.organisation.as_deref()
                            && a.pointer("/who/identifier/system").and_then(Value::as_str)
                                == Some(ODS_SYSTEM)
                    })
                }),
                _ => true,
            };
            // Not "forbidden": that would confirm the record exists.
            if visible { Ok(body) } else { Err(not_found()) }
        }
        .await;
        self.audited(ctx, event, result).await
    }

    /// An AuditEvent a back-end system submits (an interface engine forwarding its own
    /// audit, as IHE ATNA's "record audit event"): validated, given an id and `meta`, and
    /// appended to the chain as sent. Only role `system`; nobody changes or deletes one.
    pub async fn submit_audit_event(
        &self,
        ctx: &RequestContext,
        mut body: Value,
    ) -> Result<String, AppError> {
        let event = Event::new("create", AuditAction::Create).detail("AuditEvent");
        let result = async {
            if ctx.principal.role != smr_access::Role::System {
                return Err(AppError::forbidden(format!(
                    "role {} may not create AuditEvent: SMR records audit events itself",
                    ctx.principal.role
                )));
            }
            let recorded = now_micros();
            let id = uuid::Uuid::now_v7().to_string();
            let Some(obj) = body.as_object_mut() else {
                return Err(AppError::BadRequest(
                    "an AuditEvent must be a JSON object".into(),
                ));
            };
            obj.shift_remove("id");
            let mut meta = match obj.shift_remove("meta") {
                Some(Value::Object(m)) => m,
                _ => serde_json::Map::new(),
            };
            meta.insert("versionId".into(), json!("1"));
            meta.insert(
                "lastUpdated".into(),
                json!(datetime::format_instant(recorded)),
            );
            let mut ordered = serde_json::Map::new();
            if let Some(t) = obj.shift_remove("resourceType") {
                ordered.insert("resourceType".into(), t);
            }
            ordered.insert("id".into(), json!(id));
            ordered.insert("meta".into(), Value::Object(meta));
            ordered.extend(std::mem::take(obj));
            let body = Value::Object(ordered);
            smr_fhir::validate::validate_resource(&body)
                .map_err(|issues| AppError::Store(smr_store::StoreError::Invalid(issues)))?;
            let patients = body["entity"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e.pointer("/what/reference").and_then(Value::as_str))
                .filter_map(|r| r.strip_prefix("Patient/"))
                .filter(|p| !p.is_empty() && !p.contains('/'))
                .map(str::to_owned)
                .collect();
            let text = body.to_string();
            self.store
                .append_audit(vec![AuditRecord {
                    id: id.clone(),
                    recorded,
                    agent_user: Some(ctx.principal.user.clone()),
                    agent_org: ctx.principal.organisation.clone(),
                    purpose: Some(ctx.purpose.code().to_owned()),
                    outcome: body["outcome"].as_str().unwrap_or("0").to_owned(),
                    patients,
                    body: text.clone(),
                }])
                .await?;
            Ok(text)
        }
        .await;
        self.audited(ctx, event, result).await
    }

    /// Verifies the whole audit chain (`smr audit verify`).
    pub async fn verify_audit(&self) -> Result<smr_store::AuditVerification, AppError> {
        Ok(self.store.verify_audit().await?)
    }
}
