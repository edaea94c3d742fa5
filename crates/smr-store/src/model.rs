//! What goes into the store and what comes out.

use serde_json::Value;
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
