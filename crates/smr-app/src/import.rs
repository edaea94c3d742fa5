//! Bulk import (`smr import`, issue 9): many writes at once, each entry validated, authorised,
//! given its Provenance and audited like an API write, with a bad entry never stopping the rest.
//!
//! [`App::import_batch`] writes a batch of entries in one database transaction. When the
//! transaction fails because of one entry, the batch is split around that entry (or halved,
//! when the failure names none) and the parts are written again, so the good entries land and
//! each bad one is answered with its own reason. Nothing here reads files: the CLI streams
//! them and hands over batches.
//!
//! Audit: one AuditEvent per committed transaction (an `operation` named `$import`, its query
//! naming the source file and the entry count, its entities every version written), as a
//! transaction through the API gets; a failed attempt before a split is audited as a failed
//! write, as the API does.
//!
//! Idempotency: an update whose resource equals the stored one, `meta` aside, is not written
//! again ([`ImportResult::Unchanged`]), so a re-run of an import adds no versions and no
//! Provenance for what it already loaded.

use serde_json::Value;
use smr_access::RequestContext;
use smr_store::{StoreError, StoredResource, WriteOp, WriteOutcome};

use crate::audit::{AuditAction, Event, write_record};
use crate::{App, AppError};

/// What became of one entry of a batch.
#[derive(Debug)]
pub enum ImportResult {
    /// Written (created, updated, deleted), or found by its `If-None-Exist`.
    Written(WriteOutcome),
    /// An update equal to what is stored (`meta` aside): nothing written.
    Unchanged(StoredResource),
    /// Refused or invalid; nothing of this entry was written.
    Rejected(AppError),
}

impl App {
    /// Writes `ops` (from `source`, for the audit record) and answers each entry in order.
    ///
    /// `atomic`: the entries are one FHIR transaction (all or nothing): no split; when one
    /// fails, that one is rejected with its reason and the others with a note naming it.
    /// Otherwise each entry stands alone and the batch is split until only bad entries fail.
    ///
    /// Errors are fatal (the store cannot write at all); entry failures are results.
    pub async fn import_batch(
        &self,
        ctx: &RequestContext,
        source: &str,
        ops: Vec<WriteOp>,
        atomic: bool,
    ) -> Result<Vec<ImportResult>, AppError> {
        let mut results: Vec<Option<ImportResult>> = (0..ops.len()).map(|_| None).collect();
        let mut pending: Vec<(usize, WriteOp)> = Vec::with_capacity(ops.len());
        for (i, op) in ops.into_iter().enumerate() {
            match self.unchanged(&op).await? {
                Some(stored) => results[i] = Some(ImportResult::Unchanged(stored)),
                None => pending.push((i, op)),
            }
        }
        if atomic {
            let (indexes, ops): (Vec<usize>, Vec<WriteOp>) = pending.into_iter().unzip();
            match self.import_write(ctx, source, ops).await {
                Ok(outcomes) => {
                    for (i, o) in indexes.into_iter().zip(outcomes) {
                        results[i] = Some(ImportResult::Written(o));
                    }
                }
                Err(e) if is_fatal(&e) => return Err(e),
                Err(e) => {
                    let failed = entry_of(&e).and_then(|k| indexes.get(k).copied());
                    let note = match failed {
                        Some(k) => format!("not written: the transaction's entry {k} failed"),
                        None => format!("not written: the transaction failed: {e}"),
                    };
                    let mut error = Some(e);
                    for i in indexes {
                        let reason = match failed {
                            Some(k) if k == i => error.take(),
                            _ => None,
                        };
                        let reason = reason.unwrap_or_else(|| AppError::BadRequest(note.clone()));
                        results[i] = Some(ImportResult::Rejected(reason));
                    }
                }
            }
        } else {
            self.write_splitting(ctx, source, pending, &mut results)
                .await?;
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| ImportResult::Rejected(internal("no result"))))
            .collect())
    }

    /// Writes `entries`; on an entry's failure writes the entries before it, retries it
    /// alone (to reject it with its own reason) and the rest in halves (an iterative
    /// bisection: a batch costs a few transactions per bad entry, never one per good one).
    async fn write_splitting(
        &self,
        ctx: &RequestContext,
        source: &str,
        entries: Vec<(usize, WriteOp)>,
        results: &mut [Option<ImportResult>],
    ) -> Result<(), AppError> {
        let mut work = vec![entries];
        while let Some(part) = work.pop() {
            if part.is_empty() {
                continue;
            }
            let ops: Vec<WriteOp> = part.iter().map(|(_, op)| op.clone()).collect();
            match self.import_write(ctx, source, ops).await {
                Ok(outcomes) => {
                    for ((i, _), o) in part.iter().zip(outcomes) {
                        results[*i] = Some(ImportResult::Written(o));
                    }
                }
                Err(e) if is_fatal(&e) => return Err(e),
                Err(e) if part.len() == 1 => {
                    results[part[0].0] = Some(ImportResult::Rejected(e));
                }
                Err(e) => {
                    let mut part = part;
                    // Split around the named entry (it goes alone, so it fails with its own
                    // reason) and halve the rest after it, which is untried: a run of bad
                    // entries then costs about two transactions each, however long the batch.
                    // Halve the whole part when the failure names no entry. Pushed in reverse
                    // so the file's order is kept.
                    let (head, middle, tail) = match entry_of(&e).filter(|&k| k < part.len()) {
                        Some(k) => {
                            let tail = part.split_off(k + 1);
                            let middle = part.split_off(k);
                            (part, middle, tail)
                        }
                        None => {
                            let tail = part.split_off(part.len() / 2);
                            (part, Vec::new(), tail)
                        }
                    };
                    let mut tail = tail;
                    let second = tail.split_off(tail.len() / 2);
                    work.push(second);
                    work.push(tail);
                    work.push(middle);
                    work.push(head);
                }
            }
        }
        Ok(())
    }

    /// [`App::write`] with the import's audit event: authorised, labelled, written with
    /// Provenance and audited in one database transaction.
    async fn import_write(
        &self,
        ctx: &RequestContext,
        source: &str,
        mut ops: Vec<WriteOp>,
    ) -> Result<Vec<WriteOutcome>, AppError> {
        let count = ops.len();
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("source", source)
            .append_pair("count", &count.to_string());
        let event = Event::new("operation", AuditAction::Execute)
            .detail("$import")
            .query(query.finish());
        if let Err(refusal) = self.authorize_writes(ctx, &mut ops).await {
            if let Err(e) = self.audit(ctx, &event.clone().failed(&refusal)).await {
                tracing::error!(error = %e, "audit record of a refused import not written");
            }
            return Err(refusal);
        }
        let keys = self.org_keys(ctx).await?;
        let setting = self.writer_setting(ctx).await?;
        let provenance =
            crate::provenance::template(ctx, setting, crate::provenance::org_reference(&keys));
        let audit_ctx = ctx.clone();
        let outcomes = self
            .store
            .transaction_with_provenance(
                ops,
                Box::new(move |result| write_record(&audit_ctx, event, result)),
                Some(provenance),
            )
            .await?;
        // What follows the commit (the PGx re-check) is the change feed's: `smr import`
        // drains it at the end of a direct load, a server's consumers see it at once.
        Ok(outcomes)
    }

    /// The stored resource an unconditional update would rewrite with equal content (`meta`
    /// aside: versions, timestamps and the labels SMR adds), if there is one.
    async fn unchanged(&self, op: &WriteOp) -> Result<Option<StoredResource>, AppError> {
        let WriteOp::Update {
            resource,
            if_match: None,
            condition: None,
            patched: false,
            ..
        } = op
        else {
            return Ok(None);
        };
        let (Some(ty), Some(id)) = (
            resource.get("resourceType").and_then(Value::as_str),
            resource.get("id").and_then(Value::as_str),
        ) else {
            return Ok(None);
        };
        let stored = match self.store.read(ty, id).await {
            Ok(s) => s,
            Err(StoreError::NotFound { .. } | StoreError::Gone { .. }) => return Ok(None),
            // An id the store cannot even look up is for the write to refuse, with its reason.
            Err(StoreError::BadRequest(_) | StoreError::Invalid(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Ok(current) = smr_fhir::json::parse_str(&stored.body) else {
            return Ok(None);
        };
        Ok(same_content(resource, &current).then_some(stored))
    }
}

/// Equal but for `meta`, and but for conditional references (`Practitioner?identifier=…`,
/// as Bulk Data exports write them), which the store resolved to `Type/id` when it wrote them.
pub(crate) fn same_content(written: &Value, stored: &Value) -> bool {
    let (Value::Object(a), Value::Object(b)) = (written, stored) else {
        return false;
    };
    let keys = |m: &serde_json::Map<String, Value>| m.keys().filter(|k| *k != "meta").count();
    keys(a) == keys(b)
        && a.iter()
            .filter(|(k, _)| *k != "meta")
            .all(|(k, v)| b.get(k).is_some_and(|w| equal(k, v, w)))
}

fn equal(key: &str, written: &Value, stored: &Value) -> bool {
    match (written, stored) {
        (Value::String(a), Value::String(b)) if key == "reference" && a != b => {
            smr_fhir::references::conditional(a)
                .is_some_and(|(ty, _)| b.strip_prefix(ty).is_some_and(|r| r.starts_with('/')))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.get(k).is_some_and(|w| equal(k, v, w)))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(v, w)| equal(key, v, w))
        }
        _ => written == stored,
    }
}

/// The entry a failed write names.
fn entry_of(e: &AppError) -> Option<usize> {
    match e {
        AppError::Entry(e) => Some(e.entry),
        _ => None,
    }
}

/// A failure of the store itself (it cannot commit, the database is gone), not of an entry:
/// splitting would only repeat it, so the import stops.
fn is_fatal(e: &AppError) -> bool {
    let store = match e {
        AppError::Store(s) => s,
        AppError::Entry(e) => &e.error,
        AppError::Forbidden(_) | AppError::BadRequest(_) => return false,
    };
    matches!(
        store,
        StoreError::Database(_)
            | StoreError::Internal(_)
            | StoreError::Unavailable(_)
            | StoreError::Migrate(_)
    )
}

fn internal(message: &str) -> AppError {
    AppError::Store(StoreError::Internal(message.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn meta_does_not_count_as_content() {
        let a = json!({"resourceType": "Patient", "id": "p", "gender": "male"});
        let b = json!({"resourceType": "Patient", "id": "p", "gender": "male",
                       "meta": {"versionId": "3"}});
        assert!(same_content(&a, &b));
        let c = json!({"resourceType": "Patient", "id": "p", "gender": "female"});
        assert!(!same_content(&a, &c));
        let d = json!({"resourceType": "Patient", "id": "p"});
        assert!(!same_content(&a, &d));
        let e = json!({"resourceType": "Encounter", "id": "e",
                       "participant": [{"individual": {"reference": "Practitioner?identifier=s|1"}}]});
        let f = json!({"resourceType": "Encounter", "id": "e",
                       "participant": [{"individual": {"reference": "Practitioner/x"}}]});
        let g = json!({"resourceType": "Encounter", "id": "e",
                       "participant": [{"individual": {"reference": "Location/x"}}]});
        assert!(same_content(&e, &f));
        assert!(!same_content(&e, &g));
    }
}
