//! The record's use cases: read, vread, search, history, `$everything`, and writes.

use std::collections::HashMap;

use serde_json::{Value, json};
use smr_access::sensitivity;
use smr_access::{Interaction, RequestContext, Role};
use smr_fhir::query::SearchRequest;
use smr_store::{
    Access, HistoryPage, HistoryRequest, HistoryScope, PatientAccess, SearchPage, StoreError,
    StoredResource, WriteOp, WriteOutcome, is_patient_data,
};

use crate::audit::{AuditAction, Event, write_record};
use crate::authorize::{check_interaction, check_sees_patients, no_relationship};
use crate::{App, AppError};

/// How a write reached SMR, for its audit record (FHIR restful-interaction codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    Create,
    Update,
    Patch,
    Delete,
    Transaction,
    /// One entry of a batch (each entry is its own write).
    BatchEntry,
    /// A write an operation makes (`$pgx-outside-calls`, CDS feedback).
    Operation(&'static str),
}

impl WriteKind {
    fn event(self) -> Event {
        match self {
            WriteKind::Create => Event::new("create", AuditAction::Create),
            WriteKind::Update => Event::new("update", AuditAction::Update),
            WriteKind::Patch => Event::new("patch", AuditAction::Update),
            WriteKind::Delete => Event::new("delete", AuditAction::Delete),
            WriteKind::Transaction => Event::new("transaction", AuditAction::Execute),
            WriteKind::BatchEntry => Event::new("batch", AuditAction::Execute),
            WriteKind::Operation(name) => {
                Event::new("operation", AuditAction::Execute).detail(name)
            }
        }
    }
}

/// How many times a PATCH without `If-Match` re-applies itself after losing a race.
const PATCH_RETRIES: usize = 8;
/// How often a conditional update is resolved again after another writer changed what its
/// criteria match (each retry follows a commit by someone else, so this is progress).
const CONDITIONAL_RETRIES: usize = 32;

/// A patch function's answer: the patched resource or why it could not be applied.
pub type PatchOutcome = Result<(), AppError>;

impl App {
    pub async fn read(
        &self,
        ctx: &RequestContext,
        res_type: &str,
        id: &str,
    ) -> Result<StoredResource, AppError> {
        let mut event = Event::new("read", AuditAction::Read);
        let result = self.read_inner(ctx, res_type, id, None, &mut event).await;
        self.audited(ctx, event, result).await
    }

    pub async fn vread(
        &self,
        ctx: &RequestContext,
        res_type: &str,
        id: &str,
        version: i64,
    ) -> Result<StoredResource, AppError> {
        let mut event = Event::new("vread", AuditAction::Read);
        let result = self
            .read_inner(ctx, res_type, id, Some(version), &mut event)
            .await;
        self.audited(ctx, event, result).await
    }

    async fn read_inner(
        &self,
        ctx: &RequestContext,
        res_type: &str,
        id: &str,
        version: Option<i64>,
        event: &mut Event,
    ) -> Result<StoredResource, AppError> {
        check_interaction(ctx, res_type, Interaction::Read)?;
        let access = self.access(ctx).await?;
        check_sees_patients(ctx, &access, res_type)?;
        let r = match version {
            Some(v) => self.store.vread(res_type, id, v).await?,
            None => self.store.read(res_type, id).await?,
        };
        event.entities.push(match version {
            Some(v) => format!("{res_type}/{id}/_history/{v}"),
            None => format!("{res_type}/{id}"),
        });
        if res_type == "Subscription" {
            self.check_subscription_patient(ctx, &access, &r.body)
                .await?;
        }
        if smr_store::in_patient_record(res_type, &r.owner) {
            if !r.owner.contains('/') {
                event.patients.push(r.owner.clone());
            }
            let view = self.patient_view(ctx, &access, &r.owner).await?;
            let hidden = serde_json::from_str::<Value>(&r.body).map_or(true, |v| view.hides(&v));
            if hidden {
                // Said as "not found": a refusal would tell the caller the entry exists.
                return Err(AppError::Store(StoreError::NotFound {
                    res_type: res_type.into(),
                    id: id.into(),
                }));
            }
        }
        Ok(r)
    }

    /// A search; only rows the caller may see take part (matches, total, paging, includes).
    /// `query_text` is the query as the client sent it, for the audit record.
    pub async fn search(
        &self,
        ctx: &RequestContext,
        request: &SearchRequest,
        query_text: &str,
    ) -> Result<SearchPage, AppError> {
        let mut event = Event::new("search-type", AuditAction::Read)
            .detail(request.resource_type.clone())
            .query(query_text);
        let result = async {
            check_interaction(ctx, &request.resource_type, Interaction::Search)?;
            // A chain searches the type it looks into: the caller must be allowed that search.
            for ty in chained_types(request) {
                check_interaction(ctx, ty, Interaction::Search)?;
            }
            only_systems_list_subscriptions(ctx, &request.resource_type)?;
            let access = self.access(ctx).await?;
            check_sees_patients(ctx, &access, &request.resource_type)?;
            // A search that names patients the caller may not open is refused with the reason
            // (and the break-glass hint), rather than answered "nothing recorded".
            for patient in named_patients(request) {
                self.patient_view(ctx, &access, &patient).await?;
            }
            let mut page = self.store.search(request, &access).await?;
            // Included resources of a type the caller may not read are left out.
            let role = ctx.principal.role;
            let scopes = &ctx.principal.scopes;
            page.included.retain(|r| {
                smr_access::policy::role_allows(role, &r.res_type, Interaction::Read)
                    && scopes.allows(&r.res_type, Interaction::Read)
            });
            Ok(page)
        }
        .await;
        if let Ok(page) = &result {
            event.patients = patients_of(page.matches.iter().chain(&page.included));
        }
        self.audited(ctx, event, result).await
    }

    /// History: other patients' versions and those withheld by consent are left out.
    pub async fn history(
        &self,
        ctx: &RequestContext,
        request: &HistoryRequest,
    ) -> Result<HistoryPage, AppError> {
        let interaction = match &request.scope {
            HistoryScope::Instance { .. } => "history-instance",
            HistoryScope::Type { .. } => "history-type",
            HistoryScope::System => "history-system",
        };
        let mut event = Event::new(interaction, AuditAction::Read);
        let result = async {
            let access = self.access(ctx).await?;
            match &request.scope {
                HistoryScope::Instance { res_type, id } => {
                    check_interaction(ctx, res_type, Interaction::Read)?;
                    check_sees_patients(ctx, &access, res_type)?;
                    event.entities.push(format!("{res_type}/{id}"));
                    // History of a resource that never existed is a 404, not an empty Bundle;
                    // of a record the caller may not open, a 403.
                    match self.store.read(res_type, id).await {
                        Ok(current) => {
                            if is_patient_data(res_type) {
                                self.patient_view(ctx, &access, &current.owner).await?;
                            }
                            if res_type == "Subscription" {
                                self.check_subscription_patient(ctx, &access, &current.body)
                                    .await?;
                            }
                        }
                        Err(StoreError::Gone { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                HistoryScope::Type { res_type } => {
                    check_interaction(ctx, res_type, Interaction::Search)?;
                    only_systems_list_subscriptions(ctx, res_type)?;
                    check_sees_patients(ctx, &access, res_type)?;
                }
                HistoryScope::System => {
                    // Every type: only a caller who may search all of them.
                    if ctx.principal.role != Role::System {
                        return Err(AppError::forbidden(
                            "system-wide history is for back-end systems (role system)",
                        ));
                    }
                }
            }
            Ok(self.store.history(request, &access).await?)
        }
        .await;
        if let Ok(page) = &result {
            event.patients = patients_of(page.entries.iter().map(|e| &e.resource));
        }
        self.audited(ctx, event, result).await
    }

    /// `Patient/{id}/$everything`, as the caller may see it.
    pub async fn everything(
        &self,
        ctx: &RequestContext,
        patient: &str,
    ) -> Result<Vec<StoredResource>, AppError> {
        let event = Event::new("operation", AuditAction::Read)
            .detail("$everything")
            .patient(patient);
        let result = async {
            check_interaction(ctx, "Patient", Interaction::Read)?;
            let access = self.access(ctx).await?;
            // 404 for an unknown patient comes before the relationship check.
            self.store.read("Patient", patient).await?;
            self.patient_view(ctx, &access, patient).await?;
            let role = ctx.principal.role;
            let scopes = &ctx.principal.scopes;
            let mut all = self.store.everything(patient, &access).await?;
            all.retain(|r| {
                smr_access::policy::role_allows(role, &r.res_type, Interaction::Read)
                    && scopes.allows(&r.res_type, Interaction::Read)
            });
            Ok(all)
        }
        .await;
        self.audited(ctx, event, result).await
    }

    /// Writes `ops` all-or-nothing, after checking each against the caller's role, scopes
    /// and patients, and labelling medication entries by sensitivity. The audit record is
    /// committed with the write.
    ///
    /// Conditional updates (`PUT Type?criteria`) are resolved to an id first, as R4 defines
    /// (no match: create; one match: update it; more: 412), and that resolution is what is
    /// authorised. The store checks it again under a lock on the criteria; when another
    /// writer got there first the whole write is resolved and authorised again, so N
    /// simultaneous conditional updates make one resource and N versions, never N resources.
    pub async fn write(
        &self,
        ctx: &RequestContext,
        ops: Vec<WriteOp>,
        kind: WriteKind,
    ) -> Result<Vec<WriteOutcome>, AppError> {
        let conditional = ops.iter().any(|op| {
            matches!(
                op,
                WriteOp::Update {
                    condition: Some(_),
                    ..
                }
            )
        });
        if !conditional {
            return self.write_once(ctx, ops, kind).await;
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut resolved = ops.clone();
            if let Err(refusal) = self.resolve_conditional_updates(&mut resolved).await {
                self.audit_refused_write(ctx, kind, &refusal).await;
                return Err(refusal);
            }
            match self.write_once(ctx, resolved, kind).await {
                Err(AppError::Entry(e))
                    if attempt < CONDITIONAL_RETRIES
                        && matches!(e.error, StoreError::PreconditionFailed(_)) =>
                {
                    continue;
                }
                result => return result,
            }
        }
    }

    /// R4 3.1.0.4.3: what a conditional update's criteria resolve to. The search sees the whole
    /// store (a match the caller may not change is refused by the authorisation that follows,
    /// not silently duplicated).
    async fn resolve_conditional_updates(&self, ops: &mut [WriteOp]) -> Result<(), AppError> {
        for op in ops.iter_mut() {
            let WriteOp::Update {
                resource,
                condition: Some(search),
                ..
            } = op
            else {
                continue;
            };
            let mut probe = search.clone();
            probe.count = 2;
            probe.cursor = None;
            probe.total = smr_fhir::query::TotalMode::None;
            let page = self.store.search(&probe, &Access::unrestricted()).await?;
            let body_id = resource
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let id = match (page.matches.as_slice(), body_id) {
                ([], Some(id)) => id,
                // Time-ordered ids, as the store gives a create.
                ([], None) => uuid::Uuid::now_v7().to_string(),
                ([one], None) => one.id.clone(),
                ([one], Some(id)) if one.id == id => id,
                ([one], Some(id)) => {
                    return Err(AppError::BadRequest(format!(
                        "the criteria match {}/{} but the resource's id is '{id}'",
                        one.res_type, one.id
                    )));
                }
                _ => {
                    return Err(AppError::Store(StoreError::PreconditionFailed(format!(
                        "the conditional update's criteria match more than one {}",
                        search.resource_type
                    ))));
                }
            };
            if let Some(body) = resource.as_object_mut() {
                body.insert("id".into(), Value::String(id));
            }
        }
        Ok(())
    }

    /// A write refused before it reached the store still leaves its audit record.
    async fn audit_refused_write(&self, ctx: &RequestContext, kind: WriteKind, refusal: &AppError) {
        let event = kind.event().failed(refusal);
        if let Err(e) = self.audit(ctx, &event).await {
            tracing::error!(error = %e, "audit record of a refused write not written");
        }
    }

    async fn write_once(
        &self,
        ctx: &RequestContext,
        mut ops: Vec<WriteOp>,
        kind: WriteKind,
    ) -> Result<Vec<WriteOutcome>, AppError> {
        let event = kind.event();
        let checked = match self.authorize_writes(ctx, &mut ops).await {
            Ok(()) => crate::provenance::from_client(ctx),
            Err(e) => Err(e),
        };
        let client_provenance = match checked {
            Ok(p) => p,
            Err(refusal) => {
                self.audit_refused_write(ctx, kind, &refusal).await;
                return Err(refusal);
            }
        };
        let keys = self.org_keys(ctx).await?;
        let setting = self.writer_setting(ctx).await?;
        let mut provenance =
            crate::provenance::template(ctx, setting, crate::provenance::org_reference(&keys));
        if let Some(client) = client_provenance {
            crate::provenance::merge_client(&mut provenance, client);
        }
        let audit_ctx = ctx.clone();
        let outcomes = self
            .store
            .transaction_with_provenance(
                ops,
                Box::new(move |result| write_record(&audit_ctx, event, result)),
                Some(provenance),
            )
            .await?;
        // What follows a commit (the PGx re-check, events) is driven by the change feed
        // (`feed`), not by this handler.
        Ok(outcomes)
    }

    /// Reads, patches (with `apply`) and writes back one resource; the version read is the
    /// precondition, so a concurrent write is never overwritten: with `if_match` the caller
    /// gets 412, without it the patch is re-applied to the newer version.
    pub async fn patch(
        &self,
        ctx: &RequestContext,
        res_type: &str,
        id: &str,
        if_match: Option<i64>,
        apply: impl Fn(&mut Value) -> PatchOutcome,
    ) -> Result<WriteOutcome, AppError> {
        let refuse = |e: AppError| async {
            if let Err(err) = self.audit(ctx, &WriteKind::Patch.event().failed(&e)).await {
                tracing::error!(error = %err, "audit record of a refused patch not written");
            }
            Err(e)
        };
        if let Err(e) = check_interaction(ctx, res_type, Interaction::Update) {
            return refuse(e).await;
        }
        for _ in 0..PATCH_RETRIES {
            let current = match self.store.read(res_type, id).await {
                Ok(r) => r,
                Err(e) => return refuse(e.into()).await,
            };
            if let Some(v) = if_match
                && v != current.version
            {
                return refuse(
                    StoreError::PreconditionFailed(format!(
                        "If-Match names version {v} but the current version is {}",
                        current.version
                    ))
                    .into(),
                )
                .await;
            }
            // Read as stored, numbers' text included (serde_json would rewrite `1E-22`).
            let mut resource: Value = match smr_fhir::json::parse_str(&current.body) {
                Ok(v) => v,
                Err(e) => return refuse(StoreError::Internal(e.to_string()).into()).await,
            };
            if let Err(e) = apply(&mut resource) {
                return refuse(e).await;
            }
            let op = WriteOp::Update {
                resource,
                full_url: None,
                if_match: Some(current.version),
                patched: true,
                condition: None,
            };
            match self.write(ctx, vec![op], WriteKind::Patch).await {
                Ok(mut outcomes) => {
                    return outcomes
                        .pop()
                        .ok_or_else(|| AppError::BadRequest("empty write".into()));
                }
                Err(AppError::Entry(e))
                    if if_match.is_none()
                        && matches!(e.error, StoreError::PreconditionFailed(_)) =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        Err(AppError::Store(StoreError::Conflict(
            "resource changed repeatedly while patching; retry".into(),
        )))
    }

    /// Checks every op and labels medication entries; the first refusal names its entry.
    pub(crate) async fn authorize_writes(
        &self,
        ctx: &RequestContext,
        ops: &mut [WriteOp],
    ) -> Result<(), AppError> {
        let access = self.access(ctx).await?;
        let keys = self.org_keys(ctx).await?;
        let many = ops.len() > 1;
        let at = |i: usize, e: AppError| match e {
            AppError::Forbidden(m) if many => AppError::Forbidden(format!("entry {i}: {m}")),
            other => other,
        };
        // Patients created in this same transaction, by fullUrl: entries may refer to them.
        let new_patients: HashMap<String, ()> = ops
            .iter()
            .filter_map(|op| match op {
                WriteOp::Create {
                    resource,
                    full_url: Some(url),
                    ..
                } if type_of(resource) == Some("Patient") => Some((url.clone(), ())),
                _ => None,
            })
            .collect();
        for (i, op) in ops.iter_mut().enumerate() {
            match op {
                WriteOp::Create { resource, .. } => {
                    let ty = type_of(resource).unwrap_or_default().to_owned();
                    check_interaction(ctx, &ty, Interaction::Create).map_err(|e| at(i, e))?;
                    if ty == "Subscription" {
                        self.check_subscription_write(ctx, &access, resource)
                            .await
                            .map_err(|e| at(i, e))?;
                    }
                    self.check_new_content(ctx, &access, &keys, resource, &new_patients)
                        .await
                        .map_err(|e| at(i, e))?;
                    label(resource);
                }
                WriteOp::Update { resource, .. } => {
                    let ty = type_of(resource).unwrap_or_default().to_owned();
                    let id = resource
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    match self.store.read(&ty, &id).await {
                        Ok(current) => {
                            check_interaction(ctx, &ty, Interaction::Update)
                                .map_err(|e| at(i, e))?;
                            self.check_existing(ctx, &access, &current)
                                .await
                                .map_err(|e| at(i, e))?;
                        }
                        // Create-on-update (or re-creating a deleted resource).
                        Err(StoreError::NotFound { .. } | StoreError::Gone { .. }) => {
                            check_interaction(ctx, &ty, Interaction::Create)
                                .map_err(|e| at(i, e))?;
                        }
                        Err(e) => return Err(e.into()),
                    }
                    if ty == "Subscription" {
                        self.check_subscription_write(ctx, &access, resource)
                            .await
                            .map_err(|e| at(i, e))?;
                    }
                    self.check_new_content(ctx, &access, &keys, resource, &new_patients)
                        .await
                        .map_err(|e| at(i, e))?;
                    label(resource);
                }
                WriteOp::Delete { res_type, id, .. } => {
                    check_interaction(ctx, res_type, Interaction::Delete).map_err(|e| at(i, e))?;
                    match self.store.read(res_type, id).await {
                        Ok(current) => self
                            .check_existing(ctx, &access, &current)
                            .await
                            .map_err(|e| at(i, e))?,
                        // Deleting what is not there changes nothing.
                        Err(StoreError::NotFound { .. } | StoreError::Gone { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(())
    }

    /// The caller may change an existing resource only in a record they may open, and not
    /// an entry the patient withholds from them.
    async fn check_existing(
        &self,
        ctx: &RequestContext,
        access: &Access,
        current: &StoredResource,
    ) -> Result<(), AppError> {
        if current.res_type == "Subscription" {
            return self
                .check_subscription_patient(ctx, access, &current.body)
                .await;
        }
        if !smr_store::in_patient_record(&current.res_type, &current.owner) {
            return Ok(());
        }
        let view = self.store.patient_view(&current.owner, access).await?;
        if !view.allowed {
            return Err(AppError::forbidden(no_relationship(ctx, &current.owner)));
        }
        let hidden = serde_json::from_str::<Value>(&current.body).map_or(true, |v| view.hides(&v));
        if hidden {
            return Err(AppError::forbidden(
                "this entry is withheld from you by the patient's consent",
            ));
        }
        Ok(())
    }

    /// The record a new or changed resource lands in must be one the caller may write to:
    /// their own (patients), one their organisation cares for (clinicians), any (systems,
    /// break-glass). A write that itself shows the caller's organisation caring for the
    /// patient (registering them, admitting them, opening an episode of care) is allowed:
    /// that is how a relationship begins, and it is audited like every write.
    async fn check_new_content(
        &self,
        ctx: &RequestContext,
        access: &Access,
        keys: &[String],
        resource: &Value,
        new_patients: &HashMap<String, ()>,
    ) -> Result<(), AppError> {
        let ty = type_of(resource).unwrap_or_default();
        if !is_patient_data(ty) {
            return Ok(());
        }
        let establishes = smr_access::care::links(resource)
            .iter()
            .any(|l| keys.contains(&l.org));
        let owner = smr_store::owning_patient(resource);
        match (&access.patients, owner) {
            (PatientAccess::Any, _) => Ok(()),
            (_, OwnerRef::NewPatient) if ty == "Patient" => {
                if establishes {
                    Ok(())
                } else {
                    Err(AppError::forbidden(
                        "a new Patient must name your organisation as their GP practice \
                         (generalPractitioner), or be created by a back-end system",
                    ))
                }
            }
            (_, OwnerRef::Placeholder(url)) if new_patients.contains_key(&url) => Ok(()),
            (PatientAccess::Only(own), OwnerRef::Patient(p)) if *own == p => Ok(()),
            (PatientAccess::CaredFor(_), OwnerRef::Patient(p)) => {
                if establishes {
                    return Ok(());
                }
                let view = self.store.patient_view(&p, access).await?;
                if view.allowed {
                    Ok(())
                } else {
                    Err(AppError::forbidden(no_relationship(ctx, &p)))
                }
            }
            (PatientAccess::CaredFor(_), OwnerRef::None) => Ok(()),
            (_, OwnerRef::Patient(p)) => Err(AppError::forbidden(no_relationship(ctx, &p))),
            _ => Err(AppError::forbidden(format!(
                "role {} may not write entries outside its own patients' records",
                ctx.principal.role
            ))),
        }
    }
}

pub use smr_store::OwnerRef;

/// The patients a search names through its patient-compartment parameters (`patient=`,
/// `subject=Patient/…`) or, for Patient, `_id`: those it is about.
/// The types chained (`param.x`) and reverse-chained (`_has:Type:…`) criteria look into.
fn chained_types(request: &SearchRequest) -> Vec<&str> {
    request
        .criteria
        .iter()
        .filter_map(|c| match &c.test {
            smr_fhir::query::Test::Chain { target_type, .. } => Some(target_type.as_str()),
            smr_fhir::query::Test::Has { source_type, .. } => Some(source_type.as_str()),
            _ => None,
        })
        .collect()
}

fn named_patients(request: &SearchRequest) -> Vec<String> {
    let compartment = smr_fhir::resource_types::served(&request.resource_type)
        .map_or(&[][..], |t| t.compartment_params);
    let mut out = Vec::new();
    for c in &request.criteria {
        match &c.test {
            smr_fhir::query::Test::Reference(tests)
                if c.param == "patient" || compartment.contains(&c.param.as_str()) =>
            {
                out.extend(
                    tests
                        .iter()
                        .filter(|t| t.target_type.as_deref().is_none_or(|ty| ty == "Patient"))
                        .filter(|t| !t.target_id.is_empty() && !t.target_id.contains('/'))
                        .map(|t| t.target_id.clone()),
                );
            }
            smr_fhir::query::Test::Id(ids) if request.resource_type == "Patient" => {
                out.extend(ids.iter().cloned());
            }
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

fn type_of(resource: &Value) -> Option<&str> {
    resource.get("resourceType").and_then(Value::as_str)
}

/// The distinct patients whose records `resources` belong to.
fn patients_of<'a>(resources: impl Iterator<Item = &'a StoredResource>) -> Vec<String> {
    let mut out: Vec<String> = resources
        .filter(|r| is_patient_data(&r.res_type) && !r.owner.contains('/'))
        .map(|r| r.owner.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Adds the sensitivity labels of a medication entry's medicine to `meta.security`, keeping
/// any a client set.
fn label(resource: &mut Value) {
    let labels: Vec<Value> = if type_of(resource) == Some("Bundle") {
        bundle_labels(resource)
    } else {
        label_codings(resource)
    };
    crate::pgx::add_security_labels(resource, &labels);
}

fn label_codings(resource: &Value) -> Vec<Value> {
    sensitivity::labels_for(resource)
        .into_iter()
        .map(|code| {
            let mut coding = json!({"system": sensitivity::ACT_CODE_SYSTEM, "code": code});
            if let Some(display) = sensitivity::label_display(code) {
                coding["display"] = json!(display);
            }
            coding
        })
        .collect()
}

/// A stored Bundle is read, and withheld by consent, as one resource: it carries the labels of
/// every medication entry in it, and any ActCode label a client set on an entry, so a consent
/// that hides a sensitive medicine hides the document holding it too.
fn bundle_labels(bundle: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    let entries = bundle.get("entry").and_then(Value::as_array);
    for resource in entries
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("resource"))
    {
        out.extend(label_codings(resource));
        let own = resource.pointer("/meta/security").and_then(Value::as_array);
        out.extend(
            own.into_iter()
                .flatten()
                .filter(|c| {
                    c.get("system").and_then(Value::as_str) == Some(sensitivity::ACT_CODE_SYSTEM)
                })
                .cloned(),
        );
    }
    out
}

/// Subscriptions are read one by one (by whoever may read the patient each names); listing
/// them all is for back-end systems, since a list cannot be checked row by row without its
/// paging and totals telling what was left out.
fn only_systems_list_subscriptions(ctx: &RequestContext, res_type: &str) -> Result<(), AppError> {
    if res_type == "Subscription" && ctx.principal.role != Role::System {
        return Err(AppError::forbidden(
            "searching Subscriptions is for back-end systems; read yours by id",
        ));
    }
    Ok(())
}
