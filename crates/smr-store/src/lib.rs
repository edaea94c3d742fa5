//! SMR storage: versioned FHIR resources and their search indexes, on SQLite (embedded, zero
//! setup) or PostgreSQL (deployments; Citus-ready), through one sqlx `Any` code path.
//!
//! Layout:
//! - [`engine`]: connecting, per-engine pool settings and migrations.
//! - [`model`]: what goes in and comes out: write operations, stored resources, pages.
//! - `write`: the one write path (create, update, delete, transactions), indexing in the same
//!   database transaction as the version it indexes.
//! - `read`: read, vread, history, `$everything`.
//! - `search`: FHIR search compiled to SQL over the index tables, with keyset paging.
//! - `group_commit`: SQLite's single writer, committing many callers' transactions together.
//! - `sql`: a tiny SQL builder that numbers bind parameters.
//! - `changes`: per-type counters of committed writes, for caches in this process.
//! - `access`: access rules as SQL (patients the caller may see, consent restrictions).
//! - `audit`: the hash-chained audit trail (append, list, verify).
//! - `audit_appender`: SQLite: reads' audit records committed by a thread of their own.
//! - `checkpointer`: SQLite: WAL checkpoints by a thread of their own, never by a commit.
//! - `dmd`: the imported dm+d release, replaced whole in one transaction.
//! - `jobs`: saved state of long-running jobs, and the keyset walk over patients they use.
//! - `provenance`: the Provenance written beside every patient-record entry a write changes.
//!
//! Invariants: a version row, its `resources` pointer and its index rows change together or not
//! at all; the index tables only ever describe current, non-deleted versions; the stored body is
//! the JSON as received plus `id` and `meta.versionId`/`meta.lastUpdated`.

mod access;
mod audit;
mod audit_appender;
mod changes;
mod checkpointer;
mod dmd;
pub mod engine;
mod error;
mod feed;
mod group_commit;
mod jobs;
pub mod layout;
pub mod model;
mod provenance;
mod read;
mod search;
mod sql;
mod view_cache;
mod write;

pub use access::{PatientView, in_patient_record, is_patient_data};
pub use audit::GENESIS_HASH;
pub use dmd::{DmdRelease, DmdRow};
pub use engine::{Engine, Store};
pub use error::StoreError;
pub use feed::{Change, FeedPosition};
pub use model::*;
pub use write::{EntryError, OwnerRef, owning_patient};
