//! The one write path. Single creates, updates and deletes are transactions of one entry, so
//! every write gets the same validation, reference rewriting, versioning and indexing.
//!
//! Lost updates are impossible by construction: the `resources` pointer only moves with
//! `UPDATE … WHERE version = <the version we read>`; if another writer got there first the
//! update touches no row, and the entry either fails with 412 (it named a version in
//! `If-Match`) or re-reads and tries again (it did not).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};
use smr_fhir::index::{IndexEntry, IndexValue};
use smr_fhir::nhs_number::NHS_NUMBER_SYSTEM;
use smr_fhir::{
    Issue, IssueCode, datetime, extract, query, references, resource_types, stored_bundle, validate,
};
use sqlx::{AnyConnection, Row};

use crate::model::{AuditFn, ProvenanceTemplate, StoredResource, WriteOp, WriteOutcome};
use crate::provenance;
use crate::sql::Sql;
use crate::{Engine, Store, StoreError};

/// A write whose only SQL is the one script of `insert_new`: one create, not conditional, not a
/// Patient (whose NHS-number claim runs after the script). Group commit can then fold its
/// savepoint into that script.
pub(crate) fn is_single_plain_create(ops: &[WriteOp]) -> bool {
    matches!(ops, [WriteOp::Create { resource, if_none_exist: None, .. }]
        if resource.get("resourceType").and_then(Value::as_str) != Some("Patient"))
}

/// Statements that go to the database together. On SQLite they are sent as one
/// multi-statement text in one round trip (its driver binds `$N` across the statements of one
/// text, and each round trip to the connection's worker thread costs more than the insert
/// itself); PostgreSQL prepares one statement at a time, so there they run one by one.
struct Script {
    engine: Engine,
    current: Sql,
    ready: Vec<Sql>,
    /// SQLite group commit: a savepoint opened by the script's first statement and released
    /// by its last, so a single create costs one round trip (see `group_commit`).
    savepoint: Option<String>,
}

impl Script {
    fn new(engine: Engine) -> Self {
        Script {
            engine,
            current: Sql::default(),
            ready: Vec::new(),
            savepoint: None,
        }
    }

    fn within_savepoint(engine: Engine, savepoint: Option<Savepoint<'_>>) -> Self {
        let mut script = Script::new(engine);
        if let (Engine::Sqlite, Some(sp)) = (engine, savepoint) {
            if sp.open {
                script.current.push(&format!("SAVEPOINT {}", sp.name));
            }
            if sp.release {
                script.savepoint = Some(sp.name.to_owned());
            }
        }
        script
    }

    /// Starts the next statement and returns the builder to write it with.
    fn statement(&mut self) -> &mut Sql {
        if !self.current.text.is_empty() {
            match self.engine {
                Engine::Sqlite => {
                    self.current.push("; ");
                }
                Engine::Postgres => self.ready.push(std::mem::take(&mut self.current)),
            }
        }
        &mut self.current
    }

    async fn run(mut self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        if let Some(name) = self.savepoint.take() {
            self.statement().push(&format!("RELEASE {name}"));
        }
        if !self.current.text.is_empty() {
            self.ready.push(self.current);
        }
        for sql in self.ready {
            sql.into_query().execute(&mut *conn).await?;
        }
        Ok(())
    }
}

/// Group commit's savepoint around a single create, opened by the first script and released
/// by the last: the create's own, or (when the create gets a Provenance) the create's opens
/// it and the Provenance's releases it, so both are undone together.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Savepoint<'a> {
    name: &'a str,
    open: bool,
    release: bool,
}

/// A transaction entry that failed, and why. `entry` is the index in the submitted order.
#[derive(Debug, thiserror::Error)]
#[error("entry {entry}: {error}")]
pub struct EntryError {
    pub entry: usize,
    #[source]
    pub error: StoreError,
}

/// How many times a write without `If-Match` re-reads after losing a race before giving up.
const MAX_RETRIES: usize = 16;

/// Identifier systems that may be held by one Patient only.
const UNIQUE_PATIENT_IDENTIFIERS: &[&str] = &[NHS_NUMBER_SYSTEM];

impl Store {
    /// Creates a resource with a server-assigned id.
    pub async fn create(&self, resource: Value) -> Result<StoredResource, StoreError> {
        let op = WriteOp::Create {
            resource,
            full_url: None,
            if_none_exist: None,
        };
        match self.write_one(op).await? {
            WriteOutcome::Created(r) | WriteOutcome::Existing(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// Updates (or creates, with the client's id) `resource`; `if_match` is the version the
    /// client last saw.
    pub async fn update(
        &self,
        resource: Value,
        if_match: Option<i64>,
    ) -> Result<WriteOutcome, StoreError> {
        self.write_one(WriteOp::Update {
            patched: false,
            condition: None,
            resource,
            full_url: None,
            if_match,
        })
        .await
    }

    pub async fn delete(
        &self,
        res_type: &str,
        id: &str,
        if_match: Option<i64>,
    ) -> Result<WriteOutcome, StoreError> {
        let op = WriteOp::Delete {
            res_type: res_type.to_owned(),
            id: id.to_owned(),
            if_match,
        };
        self.write_one(op).await
    }

    pub async fn write_one(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        let mut outcomes = self.transaction(vec![op]).await.map_err(|e| e.error)?;
        outcomes
            .pop()
            .ok_or_else(|| StoreError::BadRequest("empty write".into()))
    }

    /// Runs `ops` all-or-nothing, in FHIR transaction order (deletes, creates, updates), and
    /// returns their outcomes in the order given.
    pub async fn transaction(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteOutcome>, EntryError> {
        self.transaction_with(ops, None, None).await
    }

    /// [`Store::transaction`] with its audit record: `audit` builds it from the result, and
    /// it is appended to the audit chain in the same database transaction as a successful
    /// write (or, for a failed one, on its own: refusals are audited too).
    pub async fn transaction_audited(
        &self,
        ops: Vec<WriteOp>,
        audit: AuditFn,
    ) -> Result<Vec<WriteOutcome>, EntryError> {
        self.transaction_with(ops, Some(audit), None).await
    }

    /// [`Store::transaction_audited`] that also writes, in the same database transaction, a
    /// Provenance completed from `provenance` for every patient-record entry it creates,
    /// updates or deletes (see [`ProvenanceTemplate`]).
    pub async fn transaction_with_provenance(
        &self,
        ops: Vec<WriteOp>,
        audit: AuditFn,
        provenance: Option<ProvenanceTemplate>,
    ) -> Result<Vec<WriteOutcome>, EntryError> {
        self.transaction_with(ops, Some(audit), provenance).await
    }

    async fn transaction_with(
        &self,
        ops: Vec<WriteOp>,
        audit: Option<AuditFn>,
        provenance: Option<ProvenanceTemplate>,
    ) -> Result<Vec<WriteOutcome>, EntryError> {
        let checked = check_targets_distinct(&ops).and_then(|()| {
            ops.iter().enumerate().try_for_each(|(i, op)| match op {
                WriteOp::Create { resource, .. } | WriteOp::Update { resource, .. } => {
                    resource_type_of(resource)
                        .map(|_| ())
                        .map_err(|error| EntryError { entry: i, error })
                }
                WriteOp::Delete { .. } => Ok(()),
            })
        });
        if let Err(e) = checked {
            if let Some(audit) = audit {
                self.append_audit(vec![audit(Err(&e))])
                    .await
                    .map_err(|error| EntryError { entry: 0, error })?;
            }
            return Err(e);
        }
        match &self.queue {
            // SQLite: hand the work to the single writer, which commits many callers'
            // transactions together (group commit).
            Some(queue) => queue.submit(ops, audit, provenance).await,
            None => {
                let at0 = |error: StoreError| EntryError { entry: 0, error };
                let mut tx = self.writer.begin().await.map_err(|e| at0(e.into()))?;
                match self.execute(&mut tx, ops, provenance.as_ref()).await {
                    Ok(outcomes) => {
                        if let Some(audit) = audit {
                            let record = audit(Ok(&outcomes));
                            // The head's row lock is taken last and held to the commit, so
                            // the chain stays a line without holding up the write's own work.
                            let mut head = crate::audit::read_head(self.engine, &mut tx)
                                .await
                                .map_err(at0)?;
                            crate::audit::append(&mut tx, &mut head, std::slice::from_ref(&record))
                                .await
                                .map_err(at0)?;
                            crate::audit::write_head(&mut tx, &head)
                                .await
                                .map_err(at0)?;
                        }
                        tx.commit().await.map_err(|e| at0(e.into()))?;
                        self.changes.record(&outcomes);
                        Ok(outcomes)
                    }
                    Err(e) => {
                        drop(tx);
                        if let Some(audit) = audit {
                            self.append_audit(vec![audit(Err(&e))]).await.map_err(at0)?;
                        }
                        Err(e)
                    }
                }
            }
        }
    }

    /// The body of a transaction on an open database transaction (or savepoint): nothing is
    /// committed here, and on error the caller rolls back.
    pub(crate) async fn execute(
        &self,
        tx: &mut AnyConnection,
        ops: Vec<WriteOp>,
        provenance: Option<&ProvenanceTemplate>,
    ) -> Result<Vec<WriteOutcome>, EntryError> {
        self.execute_with(tx, ops, None, provenance).await
    }

    /// [`Store::execute`] for a single plain create whose one script opens and releases
    /// `savepoint` itself (see [`is_single_plain_create`]).
    pub(crate) async fn execute_in_savepoint(
        &self,
        tx: &mut AnyConnection,
        ops: Vec<WriteOp>,
        savepoint: &str,
        provenance: Option<&ProvenanceTemplate>,
    ) -> Result<Vec<WriteOutcome>, EntryError> {
        self.execute_with(tx, ops, Some(savepoint), provenance)
            .await
    }

    async fn execute_with(
        &self,
        tx: &mut AnyConnection,
        mut ops: Vec<WriteOp>,
        savepoint: Option<&str>,
        provenance: Option<&ProvenanceTemplate>,
    ) -> Result<Vec<WriteOutcome>, EntryError> {
        let at = |entry: usize| move |error: StoreError| EntryError { entry, error };
        // Decide every create's id (or the existing match of a conditional create) first, so
        // references between entries can be rewritten before anything is indexed.
        let mut ids: Vec<Option<String>> = vec![None; ops.len()];
        let mut outcomes: Vec<Option<WriteOutcome>> = vec![None; ops.len()];
        let mut placeholders: HashMap<String, String> = HashMap::new();
        serialise_conditional_writes(self.engine, &mut *tx, &ops)
            .await
            .map_err(at(0))?;
        self.recheck_conditional_updates(&mut *tx, &ops).await?;
        for (i, op) in ops.iter().enumerate() {
            match op {
                WriteOp::Create {
                    resource,
                    full_url,
                    if_none_exist,
                } => {
                    let res_type = resource_type_of(resource).map_err(at(i))?;
                    let existing = match if_none_exist {
                        Some(search) => {
                            let found = self.search_in(&mut *tx, search, 2).await.map_err(at(i))?;
                            if found.len() > 1 {
                                return Err(at(i)(StoreError::PreconditionFailed(format!(
                                    "If-None-Exist matched {} or more {res_type} resources",
                                    found.len()
                                ))));
                            }
                            found.into_iter().next()
                        }
                        None => None,
                    };
                    let id = match &existing {
                        Some(r) => r.id.clone(),
                        // Time-ordered (v7) ids: new rows land at the right edge of every index keyed by
                        // id instead of on a random page, so a create dirties fewer pages.
                        None => uuid::Uuid::now_v7().to_string(),
                    };
                    if let Some(url) = full_url {
                        placeholders.insert(url.clone(), format!("{res_type}/{id}"));
                    }
                    ids[i] = Some(id);
                    if let Some(r) = existing {
                        outcomes[i] = Some(WriteOutcome::Existing(r));
                    }
                }
                WriteOp::Update {
                    resource,
                    full_url: Some(url),
                    ..
                } => {
                    if let Some((ty, id)) = type_and_id(resource) {
                        placeholders.insert(url.clone(), format!("{ty}/{id}"));
                    }
                }
                _ => {}
            }
        }
        self.resolve_conditional_references(tx, &ops, &mut placeholders)
            .await?;
        // Validation follows the rewriting, so that what is checked is what will be stored.
        for (i, op) in ops.iter_mut().enumerate() {
            if let WriteOp::Create { resource, .. } | WriteOp::Update { resource, .. } = op {
                if !placeholders.is_empty() {
                    references::rewrite(resource, &placeholders);
                }
                validate::validate_resource(resource)
                    .map_err(|issues| at(i)(StoreError::Invalid(issues)))?;
            }
        }
        check_patients_exist(&mut *tx, &ops, &ids)
            .await
            .map_err(|(i, e)| at(i)(e))?;
        // Which entries get a Provenance is known by type before anything is written; a single
        // create that gets one leaves group commit's savepoint open for its Provenance.
        let own_provenance = provenance::own_targets(&ops);
        let provenance_follows = provenance.is_some()
            && ops
                .iter()
                .any(|op| op_type(op).is_some_and(provenance::is_recorded));
        let create_savepoint = savepoint.map(|name| Savepoint {
            name,
            open: true,
            release: !provenance_follows,
        });

        for phase in [Phase::Delete, Phase::Create, Phase::Update] {
            for i in 0..ops.len() {
                if outcomes[i].is_some() || Phase::of(&ops[i]) != phase {
                    continue;
                }
                let outcome = match &mut ops[i] {
                    WriteOp::Delete {
                        res_type,
                        id,
                        if_match,
                    } => delete(self.engine, &mut *tx, res_type, id, *if_match).await,
                    WriteOp::Create { resource, .. } => {
                        let id = ids[i].clone().unwrap_or_default();
                        let owner =
                            match provenance_target_owner(&mut *tx, resource, &outcomes).await {
                                Ok(owner) => owner,
                                Err(e) => return Err(at(i)(e)),
                            };
                        insert_new(
                            self.engine,
                            create_savepoint,
                            &mut *tx,
                            resource,
                            &id,
                            "POST",
                            owner.as_deref(),
                        )
                        .await
                        .map(WriteOutcome::Created)
                    }
                    WriteOp::Update {
                        resource,
                        if_match,
                        patched,
                        ..
                    } => {
                        let method = if *patched { "PATCH" } else { "PUT" };
                        update(self.engine, &mut *tx, resource, *if_match, method).await
                    }
                };
                outcomes[i] = Some(outcome.map_err(at(i))?);
            }
        }
        let mut savepoint_open = create_savepoint.is_some_and(|sp| !sp.release);
        if let Some(template) = provenance {
            for (i, outcome) in outcomes.iter().enumerate() {
                let Some((stored, activity)) = outcome.as_ref().and_then(provenance::activity)
                else {
                    continue;
                };
                if !provenance::is_recorded_entry(stored)
                    || own_provenance.contains(&stored.reference())
                {
                    continue;
                }
                let written = match &ops[i] {
                    WriteOp::Create { resource, .. } | WriteOp::Update { resource, .. } => {
                        Some(resource)
                    }
                    WriteOp::Delete { .. } => None,
                };
                let mut body = provenance::complete(template, stored, activity, written);
                validate::validate_resource(&body)
                    .map_err(|issues| at(i)(StoreError::Invalid(issues)))?;
                let id = uuid::Uuid::now_v7().to_string();
                // Released by this (the last) script when the create left it open.
                let release = savepoint.filter(|_| savepoint_open).map(|name| Savepoint {
                    name,
                    open: false,
                    release: true,
                });
                savepoint_open = false;
                // Kept in the record (the shard) of the entry it describes.
                insert_new(
                    self.engine,
                    release,
                    &mut *tx,
                    &mut body,
                    &id,
                    "POST",
                    Some(&stored.owner),
                )
                .await
                .map_err(at(i))?;
            }
        }
        if let (true, Some(name), Engine::Sqlite) = (savepoint_open, savepoint, self.engine) {
            sqlx::query(sqlx::AssertSqlSafe(format!("RELEASE {name}")))
                .execute(&mut *tx)
                .await
                .map_err(|e| at(0)(e.into()))?;
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or(WriteOutcome::Deleted(None)))
            .collect())
    }
}

impl Store {
    /// Resolves conditional references (`Practitioner?identifier=…`) by searching inside the
    /// transaction: exactly one match is required, as FHIR prescribes; anything else fails the
    /// transaction with the entry named.
    async fn resolve_conditional_references(
        &self,
        tx: &mut AnyConnection,
        ops: &[WriteOp],
        placeholders: &mut HashMap<String, String>,
    ) -> Result<(), EntryError> {
        for (i, op) in ops.iter().enumerate() {
            let (WriteOp::Create { resource, .. } | WriteOp::Update { resource, .. }) = op else {
                continue;
            };
            let mut refs = Vec::new();
            references::collect(resource, &mut refs);
            for reference in refs {
                let Some((ty, query_text)) = references::conditional(&reference) else {
                    continue;
                };
                if placeholders.contains_key(&reference) {
                    continue;
                }
                let fail = |message: String| EntryError {
                    entry: i,
                    error: StoreError::PreconditionFailed(message),
                };
                let pairs: Vec<(String, String)> = form_urlencoded::parse(query_text.as_bytes())
                    .into_owned()
                    .collect();
                let search = query::parse(ty, &pairs, query::Handling::Strict)
                    .map_err(|issues| EntryError {
                        entry: i,
                        error: StoreError::Invalid(issues),
                    })?
                    .request;
                let found = self
                    .search_in(tx, &search, 2)
                    .await
                    .map_err(|error| EntryError { entry: i, error })?;
                match found.as_slice() {
                    [one] => {
                        placeholders.insert(reference.clone(), format!("{ty}/{}", one.id));
                    }
                    [] => {
                        return Err(fail(format!(
                            "conditional reference '{reference}' matches no resource"
                        )));
                    }
                    _ => {
                        return Err(fail(format!(
                            "conditional reference '{reference}' matches more than one resource"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Delete,
    Create,
    Update,
}

impl Phase {
    fn of(op: &WriteOp) -> Phase {
        match op {
            WriteOp::Delete { .. } => Phase::Delete,
            WriteOp::Create { .. } => Phase::Create,
            WriteOp::Update { .. } => Phase::Update,
        }
    }
}

/// Every entry's owning patient must be one SMR holds (or one this transaction writes): a
/// medicine that belongs to no patient is unreachable by the patient's record, their access
/// rules and their audit trail. Only the reference that decides the record is checked;
/// references to other resources (a Practitioner outside the record) may dangle, so exports
/// re-import.
async fn check_patients_exist(
    tx: &mut AnyConnection,
    ops: &[WriteOp],
    ids: &[Option<String>],
) -> Result<(), (usize, StoreError)> {
    let written: HashSet<&str> = ops
        .iter()
        .zip(ids)
        .filter_map(|(op, id)| match op {
            WriteOp::Create { resource, .. } if is_patient(resource) => id.as_deref(),
            WriteOp::Update { resource, .. } if is_patient(resource) => {
                resource.get("id").and_then(Value::as_str)
            }
            _ => None,
        })
        .collect();
    let mut known: HashSet<String> = HashSet::new();
    for (i, op) in ops.iter().enumerate() {
        let (WriteOp::Create { resource, .. } | WriteOp::Update { resource, .. }) = op else {
            continue;
        };
        if is_patient(resource) {
            continue;
        }
        let patient = match owning_patient(resource) {
            OwnerRef::Patient(p) => p,
            OwnerRef::Placeholder(_) => {
                unresolved_patient(resource).map_err(|e| (i, e))?;
                continue;
            }
            OwnerRef::NewPatient | OwnerRef::None => continue,
        };
        if written.contains(patient.as_str()) || known.contains(&patient) {
            continue;
        }
        match current(&mut *tx, "Patient", &patient).await {
            Ok(Some(c)) if !c.deleted => {
                known.insert(patient);
            }
            Ok(found) => {
                let ty = resource_type_of(resource).unwrap_or_default();
                let element = ["subject", "patient"]
                    .into_iter()
                    .find(|e| {
                        resource
                            .pointer(&format!("/{e}/reference"))
                            .and_then(Value::as_str)
                            == Some(&format!("Patient/{patient}"))
                    })
                    .map_or_else(
                        || {
                            // A stored document's patient is its Composition's subject.
                            if ty == "Bundle"
                                && resource.get("type").and_then(Value::as_str) == Some("document")
                            {
                                "Bundle.entry[0].resource.subject".to_owned()
                            } else {
                                ty.clone()
                            }
                        },
                        |e| format!("{ty}.{e}"),
                    );
                let why = if found.is_some() {
                    "was deleted"
                } else {
                    "does not exist"
                };
                return Err((
                    i,
                    StoreError::Invalid(vec![
                        Issue::error(
                            IssueCode::NotFound,
                            format!(
                                "Patient/{patient} {why}: every {ty} must belong to a patient SMR holds"
                            ),
                        )
                        .at(&element),
                    ]),
                ));
            }
            Err(e) => return Err((i, e)),
        }
    }
    Ok(())
}

/// A URN left in the element naming the patient (`subject`, `patient`) after a transaction's
/// placeholders were rewritten names no Patient SMR holds: R4 allows such absolute URIs in
/// references (they are accepted elsewhere, e.g. a performer), but an entry of a patient's
/// record must say whose record it is, as `Patient/<id>`.
fn unresolved_patient(resource: &Value) -> Result<(), StoreError> {
    let Some((element, url)) = ["subject", "patient"].into_iter().find_map(|e| {
        let url = resource.get(e)?.get("reference")?.as_str()?;
        url.starts_with("urn:").then_some((e, url))
    }) else {
        return Ok(());
    };
    let ty = resource_type_of(resource).unwrap_or_default();
    Err(StoreError::Invalid(vec![
        Issue::error(
            IssueCode::Invalid,
            format!(
                "{ty}.{element} is '{url}', which names no Patient SMR holds: a {ty} belongs to a \
                 patient's record and must reference it as Patient/<id> (or, inside a \
                 transaction, by the fullUrl of a Patient the transaction creates)"
            ),
        )
        .at(format!("{ty}.{element}")),
    ]))
}

/// The record a client-written Provenance belongs to when it names no Patient itself: the
/// record of the entry it first targets (written earlier in this transaction, or already
/// held), so it is read under that patient's access rules and kept in that shard. A lab import
/// that records its Observations' Provenance would otherwise land outside every record, where
/// nobody caring for the patient could find it. `None`: the usual owner rules apply.
async fn provenance_target_owner(
    tx: &mut AnyConnection,
    resource: &Value,
    written: &[Option<WriteOutcome>],
) -> Result<Option<String>, StoreError> {
    if resource.get("resourceType").and_then(Value::as_str) != Some("Provenance")
        || !matches!(owning_patient(resource), OwnerRef::None)
    {
        return Ok(None);
    }
    let Some(target) = resource
        .pointer("/target/0/reference")
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    let plain = target.split("/_history/").next().unwrap_or(target);
    let Some((res_type, id)) = plain.split_once('/') else {
        return Ok(None);
    };
    let in_this_write = written.iter().flatten().find_map(|outcome| match outcome {
        WriteOutcome::Created(r) | WriteOutcome::Updated(r) | WriteOutcome::Existing(r)
            if r.res_type == res_type && r.id == id =>
        {
            Some(r.owner.clone())
        }
        _ => None,
    });
    let owner = match in_this_write {
        Some(owner) => Some(owner),
        None => {
            sqlx::query("SELECT patient_key FROM resource_locator WHERE res_type = $1 AND id = $2")
                .bind(res_type.to_owned())
                .bind(id.to_owned())
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| row.get::<String, _>(0))
        }
    };
    // Only a patient's record: a Provenance of a shared resource keeps its own key.
    Ok(owner.filter(|key| !key.contains('/')))
}

fn is_patient(resource: &Value) -> bool {
    resource.get("resourceType").and_then(Value::as_str) == Some("Patient")
}

/// Makes conditional creates and updates race-free on PostgreSQL. Under READ COMMITTED two
/// transactions can both search for `If-None-Exist` (or a conditional update's criteria), both
/// find nothing and both insert: duplicate prescriptions. Each transaction first takes a
/// transaction-scoped advisory lock on every conditional write's search key (the type and its
/// criteria, so every request with the same condition queues behind the first), in sorted
/// order so two transactions never wait on each other. The search that follows starts a new
/// statement snapshot, so it sees what the lock's previous holder committed. SQLite needs
/// nothing: its single writer already serialises.
async fn serialise_conditional_writes(
    engine: Engine,
    tx: &mut AnyConnection,
    ops: &[WriteOp],
) -> Result<(), StoreError> {
    if engine != Engine::Postgres {
        return Ok(());
    }
    let mut keys: Vec<String> = ops
        .iter()
        .filter_map(|op| match op {
            WriteOp::Create {
                if_none_exist: Some(search),
                ..
            }
            | WriteOp::Update {
                condition: Some(search),
                ..
            } => Some(conditional_key(search)),
            _ => None,
        })
        .collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// The lock key of a conditional write: its type and criteria, independent of the order in
/// which the client wrote the parameters (paging and sorting do not change what matches). A
/// conditional create and a conditional update with the same criteria share it.
fn conditional_key(search: &query::SearchRequest) -> String {
    let mut criteria: Vec<String> = search.criteria.iter().map(|c| format!("{c:?}")).collect();
    criteria.sort();
    format!(
        "conditional {} {}",
        search.resource_type,
        criteria.join(" & ")
    )
}

impl Store {
    /// A conditional update's criteria must still name what the caller resolved them to
    /// (the resource's id, or nothing), now that the lock on them is held.
    async fn recheck_conditional_updates(
        &self,
        tx: &mut AnyConnection,
        ops: &[WriteOp],
    ) -> Result<(), EntryError> {
        for (i, op) in ops.iter().enumerate() {
            let WriteOp::Update {
                resource,
                condition: Some(search),
                ..
            } = op
            else {
                continue;
            };
            let at = |error: StoreError| EntryError { entry: i, error };
            let found = self.search_in(&mut *tx, search, 2).await.map_err(at)?;
            let id = resource.get("id").and_then(Value::as_str);
            let changed = match found.as_slice() {
                [] => false,
                [one] => Some(one.id.as_str()) != id,
                _ => true,
            };
            if changed {
                return Err(at(StoreError::PreconditionFailed(format!(
                    "the conditional update's criteria match {} {} resource(s) now; \
                     they changed while the update was prepared",
                    found.len(),
                    search.resource_type
                ))));
            }
        }
        Ok(())
    }
}

fn unexpected(outcome: WriteOutcome) -> StoreError {
    StoreError::BadRequest(format!("unexpected write outcome {outcome:?}"))
}

/// Two entries writing the same resource would make the result depend on processing order;
/// FHIR says such a transaction fails, and SMR never merges them silently.
fn check_targets_distinct(ops: &[WriteOp]) -> Result<(), EntryError> {
    let mut seen = HashSet::new();
    for (i, op) in ops.iter().enumerate() {
        if let Some(target) = op.target()
            && !seen.insert(target.clone())
        {
            return Err(EntryError {
                entry: i,
                error: StoreError::BadRequest(format!(
                    "{}/{} appears in more than one entry of this transaction",
                    target.0, target.1
                )),
            });
        }
    }
    Ok(())
}

fn resource_type_of(resource: &Value) -> Result<String, StoreError> {
    let ty = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("resource has no resourceType", "resourceType"))?;
    if !resource_types::is_served(ty) {
        return Err(invalid(
            format!("resource type '{ty}' is not served by SMR"),
            "resourceType",
        ));
    }
    Ok(ty.to_owned())
}

/// The type an op writes.
fn op_type(op: &WriteOp) -> Option<&str> {
    match op {
        WriteOp::Create { resource, .. } | WriteOp::Update { resource, .. } => {
            resource.get("resourceType").and_then(Value::as_str)
        }
        WriteOp::Delete { res_type, .. } => Some(res_type),
    }
}

fn type_and_id(resource: &Value) -> Option<(String, String)> {
    let ty = resource.get("resourceType")?.as_str()?;
    let id = resource.get("id")?.as_str()?;
    Some((ty.to_owned(), id.to_owned()))
}

fn invalid(message: impl Into<String>, expression: &str) -> StoreError {
    StoreError::Invalid(vec![
        Issue::error(IssueCode::Invalid, message).at(expression),
    ])
}

/// Microseconds now, and strictly after `previous` so versions of one resource never share
/// or reverse a timestamp (clocks step backwards; history order must not).
fn timestamp_after(previous: Option<i64>) -> i64 {
    let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64;
    match previous {
        Some(p) if now <= p => p + 1,
        _ => now,
    }
}

/// Sets `id` and `meta.versionId`/`meta.lastUpdated`, keeping the rest of `meta` as sent,
/// and orders `resourceType`, `id`, `meta` first (as FHIR examples do) with every other element
/// in the order received.
fn stamp(resource: &mut Value, id: &str, version: i64, last_updated: i64) {
    let Value::Object(obj) = resource else { return };
    let mut meta = match obj.shift_remove("meta") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    meta.insert("versionId".into(), Value::String(version.to_string()));
    meta.insert(
        "lastUpdated".into(),
        Value::String(datetime::format_instant(last_updated)),
    );
    obj.shift_remove("id");
    let mut ordered = Map::with_capacity(obj.len() + 2);
    if let Some(ty) = obj.shift_remove("resourceType") {
        ordered.insert("resourceType".into(), ty);
    }
    ordered.insert("id".into(), Value::String(id.to_owned()));
    ordered.insert("meta".into(), Value::Object(meta));
    ordered.extend(std::mem::take(obj));
    *obj = ordered;
}

/// Whose record a resource (as a client sent it) would land in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerRef {
    /// An existing patient's (by id; a Patient update names itself).
    Patient(String),
    /// A Patient being created: its own new record.
    NewPatient,
    /// A patient created in the same transaction, by its `fullUrl` (`urn:uuid:…`).
    Placeholder(String),
    /// No patient's: a shared resource, or a compartment resource that names no patient.
    None,
}

/// The record `resource` belongs to, read the way the store keys it ([`owner_key`]).
pub fn owning_patient(resource: &Value) -> OwnerRef {
    let Some(ty) = resource.get("resourceType").and_then(Value::as_str) else {
        return OwnerRef::None;
    };
    if ty == "Patient" {
        return match resource.get("id").and_then(Value::as_str) {
            Some(id) => OwnerRef::Patient(id.to_owned()),
            None => OwnerRef::NewPatient,
        };
    }
    if ty == "Bundle" {
        // A stored Bundle's patient comes from its content; an ill-formed one is refused by
        // validation (stored_bundle::check), so no owner here.
        return match stored_bundle::owner(resource) {
            Ok(Some(p)) => OwnerRef::Patient(p),
            _ => OwnerRef::None,
        };
    }
    let Some(served) = resource_types::served(ty) else {
        return OwnerRef::None;
    };
    let entries = extract::extract(resource);
    for param in served.compartment_params {
        for entry in entries.iter().filter(|e| e.param == *param) {
            if let IndexValue::Reference {
                target_type,
                target_id,
                url,
            } = &entry.value
            {
                if target_type.as_deref() == Some("Patient")
                    && let Some(id) = target_id
                {
                    return OwnerRef::Patient(id.clone());
                }
                if url.starts_with("urn:") {
                    return OwnerRef::Placeholder(url.clone());
                }
            }
        }
    }
    OwnerRef::None
}

/// [`owner_key`] for a resource about to be stored: a Bundle's patient is read from its
/// entries, not from index entries (a stored Bundle's entries are not indexed).
fn record_key(res_type: &str, id: &str, resource: &Value, entries: &[IndexEntry]) -> String {
    if res_type == "Bundle" {
        return match stored_bundle::owner(resource) {
            Ok(Some(p)) => p,
            _ => format!("Bundle/{id}"),
        };
    }
    owner_key(res_type, id, entries)
}

/// The patient a resource belongs to (see `resource_types`): its distribution key.
pub(crate) fn owner_key(res_type: &str, id: &str, entries: &[IndexEntry]) -> String {
    if res_type == "Patient" {
        return id.to_owned();
    }
    if let Some(served) = resource_types::served(res_type) {
        for param in served.compartment_params {
            for entry in entries.iter().filter(|e| e.param == *param) {
                if let IndexValue::Reference {
                    target_type: Some(t),
                    target_id: Some(pid),
                    ..
                } = &entry.value
                    && t == "Patient"
                {
                    return pid.clone();
                }
            }
        }
    }
    format!("{res_type}/{id}")
}

pub(crate) async fn locate(
    conn: &mut AnyConnection,
    res_type: &str,
    id: &str,
) -> Result<Option<String>, StoreError> {
    let row =
        sqlx::query("SELECT patient_key FROM resource_locator WHERE res_type = $1 AND id = $2")
            .bind(res_type.to_owned())
            .bind(id.to_owned())
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|r| r.get::<String, _>(0)))
}

struct Current {
    patient_key: String,
    version: i64,
    last_updated: i64,
    deleted: bool,
}

async fn current(
    conn: &mut AnyConnection,
    res_type: &str,
    id: &str,
) -> Result<Option<Current>, StoreError> {
    let Some(patient_key) = locate(conn, res_type, id).await? else {
        return Ok(None);
    };
    let row = sqlx::query(
        "SELECT version, last_updated, deleted FROM resources \
         WHERE patient_key = $1 AND res_type = $2 AND id = $3",
    )
    .bind(patient_key.clone())
    .bind(res_type.to_owned())
    .bind(id.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| Current {
        patient_key,
        version: r.get(0),
        last_updated: r.get(1),
        deleted: r.get::<i64, _>(2) != 0,
    }))
}

/// Inserts version 1 of a resource that has never existed.
/// `owner` overrides the key read from the resource (a Provenance the store writes lives
/// with the entry it describes).
#[allow(clippy::too_many_arguments)]
async fn insert_new(
    engine: Engine,
    savepoint: Option<Savepoint<'_>>,
    conn: &mut AnyConnection,
    resource: &mut Value,
    id: &str,
    method: &str,
    owner: Option<&str>,
) -> Result<StoredResource, StoreError> {
    let res_type = resource_type_of(resource)?;
    let last_updated = timestamp_after(None);
    stamp(resource, id, 1, last_updated);
    let entries = extract::extract(resource);
    let key = owner.map_or_else(
        || record_key(&res_type, id, resource, &entries),
        str::to_owned,
    );
    let stored = StoredResource {
        res_type: res_type.clone(),
        id: id.to_owned(),
        version: 1,
        last_updated,
        deleted: false,
        body: serde_json::to_string(resource).map_err(|e| StoreError::BadRequest(e.to_string()))?,
        owner: key.clone(),
    };
    let mut script = Script::within_savepoint(engine, savepoint);
    script
        .statement()
        .push("INSERT INTO resource_locator (res_type, id, patient_key) VALUES (")
        .text(res_type.as_str())
        .push(", ")
        .text(id)
        .push(", ")
        .text(key.as_str())
        .push(")");
    script
        .statement()
        .push("INSERT INTO resources (patient_key, res_type, id, version, last_updated, deleted) VALUES (")
        .text(key.as_str())
        .push(", ")
        .text(res_type.as_str())
        .push(", ")
        .text(id)
        .push(", 1, ")
        .int(last_updated)
        .push(", 0)");
    push_version(&mut script, &key, &stored, method);
    push_index(&mut script, &key, &res_type, id, &entries);
    push_derived(&mut script, &key, &res_type, id, resource, last_updated)?;
    script
        .run(conn)
        .await
        .map_err(|e| conflict_on_unique(e, format!("{res_type}/{id} already exists")))?;
    claim_identifiers(conn, &res_type, id, &entries).await?;
    Ok(stored)
}

async fn update(
    engine: Engine,
    conn: &mut AnyConnection,
    resource: &mut Value,
    if_match: Option<i64>,
    method: &str,
) -> Result<WriteOutcome, StoreError> {
    let (res_type, id) =
        type_and_id(resource).ok_or_else(|| invalid("an update needs the resource id", "id"))?;
    for _ in 0..MAX_RETRIES {
        let Some(cur) = current(conn, &res_type, &id).await? else {
            if let Some(v) = if_match {
                return Err(StoreError::PreconditionFailed(format!(
                    "If-Match names version {v} of {res_type}/{id}, which does not exist"
                )));
            }
            return insert_new(engine, None, conn, resource, &id, "PUT", None)
                .await
                .map(WriteOutcome::Created);
        };
        if let Some(v) = if_match
            && v != cur.version
        {
            return Err(stale(&res_type, &id, v, cur.version));
        }
        let version = cur.version + 1;
        let last_updated = timestamp_after(Some(cur.last_updated));
        stamp(resource, &id, version, last_updated);
        let entries = extract::extract(resource);
        let key = record_key(&res_type, &id, resource, &entries);
        if !advance_pointer(
            conn,
            &cur,
            &key,
            &res_type,
            &id,
            version,
            last_updated,
            false,
        )
        .await?
        {
            if if_match.is_some() {
                return Err(stale(&res_type, &id, cur.version, cur.version + 1));
            }
            continue;
        }
        let stored = StoredResource {
            res_type: res_type.clone(),
            id: id.clone(),
            version,
            last_updated,
            deleted: false,
            body: serde_json::to_string(resource)
                .map_err(|e| StoreError::BadRequest(e.to_string()))?,
            owner: key.clone(),
        };
        let mut script = Script::new(engine);
        push_version(&mut script, &key, &stored, method);
        if !cur.deleted {
            push_delete_index(&mut script, &cur.patient_key, &res_type, &id);
            push_delete_derived(&mut script, &cur.patient_key, &res_type, &id);
        }
        push_index(&mut script, &key, &res_type, &id, &entries);
        push_derived(&mut script, &key, &res_type, &id, resource, last_updated)?;
        script.run(conn).await?;
        release_identifiers(conn, &res_type, &id).await?;
        claim_identifiers(conn, &res_type, &id, &entries).await?;
        return Ok(if cur.deleted {
            WriteOutcome::Created(stored)
        } else {
            WriteOutcome::Updated(stored)
        });
    }
    Err(StoreError::Conflict(format!(
        "{res_type}/{id} is being updated too often to apply this write; retry"
    )))
}

async fn delete(
    engine: Engine,
    conn: &mut AnyConnection,
    res_type: &str,
    id: &str,
    if_match: Option<i64>,
) -> Result<WriteOutcome, StoreError> {
    for _ in 0..MAX_RETRIES {
        let Some(cur) = current(conn, res_type, id).await? else {
            return Ok(WriteOutcome::Deleted(None));
        };
        if let Some(v) = if_match
            && v != cur.version
        {
            return Err(stale(res_type, id, v, cur.version));
        }
        if cur.deleted {
            return Ok(WriteOutcome::Deleted(None));
        }
        let version = cur.version + 1;
        let last_updated = timestamp_after(Some(cur.last_updated));
        let key = cur.patient_key.clone();
        if !advance_pointer(conn, &cur, &key, res_type, id, version, last_updated, true).await? {
            if if_match.is_some() {
                return Err(stale(res_type, id, cur.version, cur.version + 1));
            }
            continue;
        }
        let stored = StoredResource {
            res_type: res_type.to_owned(),
            id: id.to_owned(),
            version,
            last_updated,
            deleted: true,
            body: String::new(),
            owner: key.clone(),
        };
        let mut script = Script::new(engine);
        push_version(&mut script, &key, &stored, "DELETE");
        push_delete_index(&mut script, &key, res_type, id);
        push_delete_derived(&mut script, &key, res_type, id);
        script.run(conn).await?;
        release_identifiers(conn, res_type, id).await?;
        return Ok(WriteOutcome::Deleted(Some(stored)));
    }
    Err(StoreError::Conflict(format!(
        "{res_type}/{id} is being updated too often to delete; retry"
    )))
}

fn stale(res_type: &str, id: &str, wanted: i64, current: i64) -> StoreError {
    StoreError::PreconditionFailed(format!(
        "If-Match names version {wanted} of {res_type}/{id} but the current version is {current}"
    ))
}

/// Moves the current-version pointer from `cur.version` to `version`, only if nobody else
/// moved it first. When the owning patient changed, the row moves to the new key (a delete and
/// an insert: Citus cannot update a distribution column in place).
#[allow(clippy::too_many_arguments)]
async fn advance_pointer(
    conn: &mut AnyConnection,
    cur: &Current,
    key: &str,
    res_type: &str,
    id: &str,
    version: i64,
    last_updated: i64,
    deleted: bool,
) -> Result<bool, StoreError> {
    let deleted = i64::from(deleted);
    if key == cur.patient_key {
        let done = sqlx::query(
            "UPDATE resources SET version = $1, last_updated = $2, deleted = $3 \
             WHERE patient_key = $4 AND res_type = $5 AND id = $6 AND version = $7",
        )
        .bind(version)
        .bind(last_updated)
        .bind(deleted)
        .bind(key.to_owned())
        .bind(res_type.to_owned())
        .bind(id.to_owned())
        .bind(cur.version)
        .execute(&mut *conn)
        .await?;
        return Ok(done.rows_affected() == 1);
    }
    let moved = sqlx::query(
        "DELETE FROM resources WHERE patient_key = $1 AND res_type = $2 AND id = $3 AND version = $4",
    )
    .bind(cur.patient_key.clone())
    .bind(res_type.to_owned())
    .bind(id.to_owned())
    .bind(cur.version)
    .execute(&mut *conn)
    .await?;
    if moved.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO resources (patient_key, res_type, id, version, last_updated, deleted) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(key.to_owned())
    .bind(res_type.to_owned())
    .bind(id.to_owned())
    .bind(version)
    .bind(last_updated)
    .bind(deleted)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE resource_locator SET patient_key = $1 WHERE res_type = $2 AND id = $3")
        .bind(key.to_owned())
        .bind(res_type.to_owned())
        .bind(id.to_owned())
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

fn push_version(script: &mut Script, key: &str, stored: &StoredResource, method: &str) {
    script
        .statement()
        .push(
            "INSERT INTO resource_versions \
             (patient_key, res_type, id, version, last_updated, deleted, method, body) VALUES (",
        )
        .text(key)
        .push(", ")
        .text(stored.res_type.as_str())
        .push(", ")
        .text(stored.id.as_str())
        .push(", ")
        .int(stored.version)
        .push(", ")
        .int(stored.last_updated)
        .push(", ")
        .int(i64::from(stored.deleted))
        .push(", ")
        .text(method)
        .push(", ")
        .text(stored.body.as_str())
        .push(")");
    // The change feed's row, in the same transaction as the version it announces.
    let action = if stored.deleted {
        "delete"
    } else if stored.version == 1 {
        "create"
    } else {
        "update"
    };
    script
        .statement()
        .push(
            "INSERT INTO change_log (res_type, id, version, patient_key, action, changed_at) VALUES (",
        )
        .text(stored.res_type.as_str())
        .push(", ")
        .text(stored.id.as_str())
        .push(", ")
        .int(stored.version)
        .push(", ")
        .text(key)
        .push(", ")
        .text(action)
        .push(", ")
        .int(stored.last_updated)
        .push(")");
}

const INDEX_TABLES: &[&str] = &[
    "idx_token",
    "idx_string",
    "idx_date",
    "idx_reference",
    "idx_number",
    "idx_quantity",
    "idx_uri",
];

fn push_delete_index(script: &mut Script, key: &str, res_type: &str, id: &str) {
    for table in INDEX_TABLES {
        let sql = script.statement();
        sql.push("DELETE FROM ")
            .push(table)
            .push(" WHERE patient_key = ")
            .text(key);
        sql.push(" AND res_type = ")
            .text(res_type)
            .push(" AND id = ")
            .text(id);
    }
}

/// Rows derived from a resource beside its index: the care relationships it shows and, for a
/// Consent, the restrictions it imposes (read as of `now`, its write time). A Consent SMR
/// cannot read is refused rather than stored without effect.
fn push_derived(
    script: &mut Script,
    key: &str,
    res_type: &str,
    id: &str,
    resource: &Value,
    now: i64,
) -> Result<(), StoreError> {
    if smr_access::care::LINK_TYPES.contains(&res_type) {
        for link in smr_access::care::links(resource) {
            let sql = script.statement();
            sql.push(
                "INSERT INTO care_relationship \
                 (patient_key, source_type, source_id, org, kind, valid_until) VALUES (",
            )
            .text(key)
            .push(", ")
            .text(res_type)
            .push(", ")
            .text(id);
            sql.push(", ")
                .text(link.org)
                .push(", ")
                .text(link.kind.as_str())
                .push(", ");
            match link.valid_until {
                Some(t) => sql.int(t),
                None => sql.push("NULL"),
            };
            sql.push(") ON CONFLICT DO NOTHING");
        }
    }
    if res_type == "Consent" {
        let restrictions = smr_access::consent::restrictions(resource, now)
            .map_err(|e| invalid(e.to_string(), "Consent"))?;
        for r in restrictions {
            script
                .statement()
                .push("INSERT INTO consent_restriction (patient_key, consent_id, label, actor) VALUES (")
                .text(key)
                .push(", ")
                .text(id)
                .push(", ")
                .text(r.label)
                .push(", ")
                .text(r.actor)
                .push(") ON CONFLICT DO NOTHING");
        }
    }
    Ok(())
}

fn push_delete_derived(script: &mut Script, key: &str, res_type: &str, id: &str) {
    if smr_access::care::LINK_TYPES.contains(&res_type) {
        script
            .statement()
            .push("DELETE FROM care_relationship WHERE patient_key = ")
            .text(key)
            .push(" AND source_type = ")
            .text(res_type)
            .push(" AND source_id = ")
            .text(id);
    }
    if res_type == "Consent" {
        script
            .statement()
            .push("DELETE FROM consent_restriction WHERE patient_key = ")
            .text(key)
            .push(" AND consent_id = ")
            .text(id);
    }
}

/// Rows per multi-row INSERT: few statements per write, far below every engine's bind limit.
const ROWS_PER_INSERT: usize = 64;

fn push_index(script: &mut Script, key: &str, res_type: &str, id: &str, entries: &[IndexEntry]) {
    for (table, columns) in [
        ("idx_token", "system, code, text"),
        ("idx_string", "normalized, exact"),
        ("idx_date", "low, high"),
        ("idx_reference", "target_type, target_id, url"),
        ("idx_number", "value"),
        ("idx_quantity", "value, system, code, unit"),
        ("idx_uri", "value"),
    ] {
        let rows: Vec<&IndexEntry> = entries
            .iter()
            .filter(|e| table_of(&e.value) == table)
            .collect();
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let sql = script.statement();
            sql.push("INSERT INTO ")
                .push(table)
                .push(" (patient_key, res_type, id, param, ");
            sql.push(columns).push(") VALUES ");
            for (n, entry) in chunk.iter().enumerate() {
                if n > 0 {
                    sql.push(", ");
                }
                sql.push("(")
                    .text(key)
                    .push(", ")
                    .text(res_type)
                    .push(", ")
                    .text(id);
                sql.push(", ").text(entry.param.clone());
                push_values(sql, &entry.value);
                sql.push(")");
            }
        }
    }
}

fn table_of(value: &IndexValue) -> &'static str {
    match value {
        IndexValue::Token { .. } => "idx_token",
        IndexValue::String { .. } => "idx_string",
        IndexValue::Date { .. } => "idx_date",
        IndexValue::Reference { .. } => "idx_reference",
        IndexValue::Number { .. } => "idx_number",
        IndexValue::Quantity { .. } => "idx_quantity",
        IndexValue::Uri { .. } => "idx_uri",
    }
}

fn push_values(sql: &mut Sql, value: &IndexValue) {
    match value {
        IndexValue::Token { system, code, text } => {
            sql.push(", ")
                .opt_text(system.clone())
                .push(", ")
                .opt_text(code.clone());
            // Stored folded, so `:text` searches compare like with like.
            sql.push(", ")
                .opt_text(text.as_deref().map(smr_fhir::text::normalize));
        }
        IndexValue::String { normalized, exact } => {
            sql.push(", ")
                .text(normalized.clone())
                .push(", ")
                .text(exact.clone());
        }
        IndexValue::Date { low, high } => {
            sql.push(", ").int(*low).push(", ").int(*high);
        }
        IndexValue::Reference {
            target_type,
            target_id,
            url,
        } => {
            sql.push(", ")
                .opt_text(target_type.clone())
                .push(", ")
                .opt_text(target_id.clone());
            sql.push(", ").text(url.clone());
        }
        IndexValue::Number { value } => {
            sql.push(", ").real(*value);
        }
        IndexValue::Quantity {
            value,
            system,
            code,
            unit,
        } => {
            sql.push(", ")
                .real(*value)
                .push(", ")
                .opt_text(system.clone());
            sql.push(", ")
                .opt_text(code.clone())
                .push(", ")
                .opt_text(unit.clone());
        }
        IndexValue::Uri { value } => {
            sql.push(", ").text(value.clone());
        }
    }
}

/// Records the resource's unique business identifiers (a Patient's NHS number), failing with a
/// conflict when another resource already holds one.
async fn claim_identifiers(
    conn: &mut AnyConnection,
    res_type: &str,
    id: &str,
    entries: &[IndexEntry],
) -> Result<(), StoreError> {
    if res_type != "Patient" {
        return Ok(());
    }
    let mut claimed = HashSet::new();
    for entry in entries.iter().filter(|e| e.param == "identifier") {
        let IndexValue::Token {
            system: Some(system),
            code: Some(value),
            ..
        } = &entry.value
        else {
            continue;
        };
        if !UNIQUE_PATIENT_IDENTIFIERS.contains(&system.as_str()) || !claimed.insert(value.clone())
        {
            continue;
        }
        let held = sqlx::query(
            "SELECT 1 FROM unique_identifier WHERE value = $1 AND system = $2 AND res_type = $3",
        )
        .bind(value.clone())
        .bind(system.clone())
        .bind(res_type.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
        if held.is_some() {
            // Say that it is taken, not by whom: naming the other patient's id would let anyone
            // who may write a Patient find which record holds an NHS number.
            return Err(StoreError::Conflict(format!(
                "identifier {system}|{value} is already held by another {res_type} in SMR"
            )));
        }
        sqlx::query(
            "INSERT INTO unique_identifier (system, value, res_type, id) VALUES ($1, $2, $3, $4)",
        )
        .bind(system.clone())
        .bind(value.clone())
        .bind(res_type.to_owned())
        .bind(id.to_owned())
        .execute(&mut *conn)
        .await
        .map_err(|e| {
            conflict_on_unique(e, format!("identifier {system}|{value} is already held"))
        })?;
    }
    Ok(())
}

async fn release_identifiers(
    conn: &mut AnyConnection,
    res_type: &str,
    id: &str,
) -> Result<(), StoreError> {
    if res_type != "Patient" {
        return Ok(());
    }
    sqlx::query("DELETE FROM unique_identifier WHERE res_type = $1 AND id = $2")
        .bind(res_type.to_owned())
        .bind(id.to_owned())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Maps a unique-constraint violation (a concurrent writer won) to a conflict.
fn conflict_on_unique(error: sqlx::Error, message: String) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(message),
        _ => error.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stamp_puts_id_and_meta_first_and_keeps_other_meta() {
        let mut r = json!({"resourceType": "Patient", "active": true, "meta": {"profile": ["x"]}});
        stamp(&mut r, "p1", 3, 0);
        let keys: Vec<_> = r
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        assert_eq!(keys, vec!["resourceType", "id", "meta", "active"]);
        assert_eq!(r["meta"]["versionId"], "3");
        assert_eq!(r["meta"]["profile"][0], "x");
        let last_updated = r["meta"]["lastUpdated"].as_str().unwrap_or_default();
        assert!(
            last_updated.starts_with("1970-01-01T00:00:00"),
            "{last_updated}"
        );
    }

    #[test]
    fn owner_is_the_referenced_patient_or_the_resource_itself() {
        let entry = |param: &str, ty: &str| IndexEntry {
            param: param.into(),
            value: IndexValue::Reference {
                target_type: Some(ty.into()),
                target_id: Some("p1".into()),
                url: format!("{ty}/p1"),
            },
        };
        assert_eq!(
            owner_key("MedicationRequest", "m", &[entry("subject", "Patient")]),
            "p1"
        );
        assert_eq!(
            owner_key("MedicationRequest", "m", &[entry("subject", "Group")]),
            "MedicationRequest/m"
        );
        assert_eq!(owner_key("Patient", "p9", &[]), "p9");
        assert_eq!(
            owner_key("Medication", "x", &[entry("subject", "Patient")]),
            "Medication/x"
        );
    }
}
