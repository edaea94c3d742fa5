//! What goes into the store and what comes out.

use serde_json::Value;
pub use smr_access::policy::PatientAccess;
use smr_fhir::query::SearchRequest;

/// One version of a resource as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResource {
    pub res_type: String,
    pub id: String,
    pub version: i64,
    /// Microseconds since the Unix epoch.
    pub last_updated: i64,
    pub deleted: bool,
    /// The resource JSON text (empty for a deletion).
    pub body: String,
    /// The owning patient's id (the distribution key), or `Type/id` for a resource outside
    /// any patient's record.
    pub owner: String,
}

impl StoredResource {
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }

    pub fn reference(&self) -> String {
        format!("{}/{}", self.res_type, self.id)
    }
}

/// One history entry: a version plus how it was made.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub resource: StoredResource,
    /// `POST`, `PUT` or `DELETE`.
    pub method: String,
}

/// One write, alone or as an entry of a transaction.
#[derive(Debug, Clone)]
pub enum WriteOp {
    Create {
        resource: Value,
        /// The entry's `fullUrl` (e.g. `urn:uuid:…`), so other entries' references to it can be
        /// rewritten to the id the server assigns.
        full_url: Option<String>,
        /// `If-None-Exist`: create only when this search finds nothing.
        if_none_exist: Option<SearchRequest>,
    },
    /// Update, or create with a client-chosen id when absent.
    Update {
        resource: Value,
        full_url: Option<String>,
        if_match: Option<i64>,
        /// Made by PATCH (the new version's history entry says `PATCH`, not `PUT`).
        patched: bool,
        /// A conditional update (`PUT Type?criteria`): the caller resolved the criteria to the
        /// resource's id before authorising it; the store runs them again under a lock on
        /// the criteria and fails with `PreconditionFailed` when the answer has changed
        /// since (more than one match, or another resource matches now), so two writers can
        /// never both create what the criteria name.
        condition: Option<SearchRequest>,
    },
    Delete {
        res_type: String,
        id: String,
        if_match: Option<i64>,
    },
}

impl WriteOp {
    /// The `Type/id` this op writes, when known before execution (not for server-id creates).
    pub fn target(&self) -> Option<(String, String)> {
        match self {
            WriteOp::Create { .. } => None,
            WriteOp::Update { resource, .. } => {
                let ty = resource.get("resourceType")?.as_str()?;
                let id = resource.get("id")?.as_str()?;
                Some((ty.to_owned(), id.to_owned()))
            }
            WriteOp::Delete { res_type, id, .. } => Some((res_type.clone(), id.clone())),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum WriteOutcome {
    Created(StoredResource),
    Updated(StoredResource),
    /// A conditional create found this existing resource; nothing was written.
    Existing(StoredResource),
    /// Deleted: the new (deletion) version, or `None` when there was nothing to delete.
    Deleted(Option<StoredResource>),
}

impl WriteOutcome {
    pub fn resource(&self) -> Option<&StoredResource> {
        match self {
            WriteOutcome::Created(r) | WriteOutcome::Updated(r) | WriteOutcome::Existing(r) => {
                Some(r)
            }
            WriteOutcome::Deleted(r) => r.as_ref(),
        }
    }
}

/// One page of search results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchPage {
    pub matches: Vec<StoredResource>,
    /// Resources added by `_include` / `_revinclude`.
    pub included: Vec<StoredResource>,
    pub total: Option<i64>,
    /// Keyset cursor for the next page, when there is one.
    pub next_cursor: Option<String>,
}

/// One page of history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryPage {
    pub entries: Vec<HistoryEntry>,
    pub next_cursor: Option<String>,
}

/// Which history: one instance, one type, or everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryScope {
    Instance { res_type: String, id: String },
    Type { res_type: String },
    System,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRequest {
    pub scope: HistoryScope,
    pub count: usize,
    /// `_since`: only versions at or after this instant (microseconds).
    pub since: Option<i64>,
    pub cursor: Option<String>,
}

/// Whose records a read may return, compiled into the SQL of searches and history so counts,
/// paging and includes never see a hidden row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub patients: PatientAccess,
    /// Consent: the actors the caller counts as (see `smr_access::policy::consent_actors`);
    /// entries a patient withholds from any of them are hidden. `None`: not applied.
    pub consent_actors: Option<Vec<String>>,
    /// Microseconds since the epoch: care relationships are judged at this instant.
    pub at: i64,
}

impl Access {
    /// Everything: for SMR's own processing (re-checks, loading), never for a caller.
    pub fn unrestricted() -> Self {
        Access {
            patients: PatientAccess::Any,
            consent_actors: None,
            at: 0,
        }
    }
}

/// One audit record to append to the hash chain.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// The AuditEvent's id.
    pub id: String,
    /// Microseconds since the epoch.
    pub recorded: i64,
    pub agent_user: Option<String>,
    /// ODS code of the agent's organisation.
    pub agent_org: Option<String>,
    /// PurposeOfUse code (`TREAT`, `BTG`, …).
    pub purpose: Option<String>,
    /// AuditEvent.outcome (`0` success, `4` minor failure, `8` serious failure).
    pub outcome: String,
    /// Patients whose records the event touched: it is listed in each one's access log.
    pub patients: Vec<String>,
    /// The AuditEvent JSON text, exactly as it is hashed and served.
    pub body: String,
}

/// Builds a write's audit record once the write's result is known, inside the write's own
/// database transaction (so a write is never committed without its audit record).
pub type AuditFn =
    Box<dyn FnOnce(Result<&[WriteOutcome], &crate::EntryError>) -> AuditRecord + Send>;

/// Who made a write, for the `Provenance` the store writes beside every patient-record entry
/// it creates, changes or deletes (in the same database transaction). The caller knows the
/// agents (from its request context); only the store knows the versions it assigns, so the
/// store completes a copy per entry: `target` (the versioned reference), `recorded` (the
/// version's `lastUpdated`), `activity` (v3-DataOperation CREATE/UPDATE/DELETE), the entry's
/// `meta.source` as a source entity, and the entry's security labels (so a consent that
/// withholds the entry withholds its Provenance too).
#[derive(Debug, Clone, PartialEq)]
pub struct ProvenanceTemplate {
    /// A Provenance without `id`, `meta`, `target`, `recorded` or `activity`: at least
    /// `agent`; anything else given (`reason`, `policy`, `entity`, …) is kept.
    pub base: Value,
}

/// Which audit records to list, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only records that touched this patient's record.
    pub patient: Option<String>,
    /// Only records of agents of this organisation (ODS code).
    pub agent_org: Option<String>,
    /// Only break-glass records.
    pub break_glass_only: bool,
    /// `recorded` at or after / before (microseconds).
    pub since: Option<i64>,
    pub before: Option<i64>,
    pub count: usize,
    /// Continue after this sequence number (exclusive).
    pub cursor: Option<i64>,
}

/// One page of audit records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditPage {
    /// `(seq, body)` newest first.
    pub records: Vec<(i64, String)>,
    pub next_cursor: Option<i64>,
}

/// What `verify_audit` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditVerification {
    /// The whole chain checks: this many records.
    Intact { records: i64 },
    /// The first problem, at the record with this sequence number.
    Broken { seq: i64, problem: AuditProblem },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditProblem {
    /// The record's content does not match its hash.
    Altered,
    /// One or more records before this one are missing.
    Removed,
    /// The record is not where the chain put it.
    Reordered,
    /// Records after this one (the last present) are missing: the chain head names a later one.
    Truncated,
}

impl std::fmt::Display for AuditProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuditProblem::Altered => "altered",
            AuditProblem::Removed => "removed",
            AuditProblem::Reordered => "reordered",
            AuditProblem::Truncated => "truncated",
        })
    }
}
