//! Reads: current version, a given version, history, and a patient's whole record.

use std::collections::HashSet;

use smr_fhir::resource_types;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::access::{filter_visible, push_predicate};
use crate::model::{
    Access, HistoryEntry, HistoryPage, HistoryRequest, HistoryScope, StoredResource,
};
use crate::sql::Sql;
use crate::write::locate;
use crate::{Store, StoreError};

/// Columns every resource-returning query selects, in this order (see [`resource_from_row`]).
pub(crate) const RESOURCE_COLUMNS: &str =
    "v.res_type, v.id, v.version, v.last_updated, v.deleted, v.body, v.patient_key";

/// How many columns [`RESOURCE_COLUMNS`] selects: a query's own columns follow them.
pub(crate) const RESOURCE_COLUMN_COUNT: usize = 7;

pub(crate) fn resource_from_row(row: &AnyRow) -> StoredResource {
    StoredResource {
        res_type: row.get(0),
        id: row.get(1),
        version: row.get(2),
        last_updated: row.get(3),
        deleted: row.get::<i64, _>(4) != 0,
        body: row.get(5),
        owner: row.get(6),
    }
}

impl Store {
    /// The current version; `NotFound` if it never existed, `Gone` if its current version is a
    /// deletion.
    pub async fn read(&self, res_type: &str, id: &str) -> Result<StoredResource, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let found = read_current(&mut conn, res_type, id).await?;
        match found {
            None => Err(StoreError::NotFound {
                res_type: res_type.into(),
                id: id.into(),
            }),
            Some(r) if r.deleted => Err(StoreError::Gone {
                res_type: r.res_type,
                id: r.id,
                version: r.version,
            }),
            Some(r) => Ok(r),
        }
    }

    pub async fn vread(
        &self,
        res_type: &str,
        id: &str,
        version: i64,
    ) -> Result<StoredResource, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let mut sql = Sql::new("SELECT ");
        sql.push(RESOURCE_COLUMNS)
            .push(" FROM resource_versions v WHERE v.res_type = ")
            .text(res_type);
        sql.push(" AND v.id = ")
            .text(id)
            .push(" AND v.version = ")
            .int(version);
        let row = sql.into_query().fetch_optional(&mut *conn).await?;
        match row.map(|r| resource_from_row(&r)) {
            None => Err(StoreError::NotFound {
                res_type: res_type.into(),
                id: format!("{id}/_history/{version}"),
            }),
            Some(r) if r.deleted => Err(StoreError::Gone {
                res_type: r.res_type,
                id: r.id,
                version,
            }),
            Some(r) => Ok(r),
        }
    }

    /// History, newest first, paged by a keyset cursor so pages stay stable while writes land.
    /// Versions `access` does not allow are left out: other patients' by the SQL, those a
    /// consent withholds by their own labels (a page may then be short; its cursor still
    /// continues where the SQL stopped).
    pub async fn history(
        &self,
        req: &HistoryRequest,
        access: &Access,
    ) -> Result<HistoryPage, StoreError> {
        let mut conn = self.reader.acquire().await?;
        let mut sql = Sql::new("SELECT ");
        sql.push(RESOURCE_COLUMNS)
            .push(", v.method FROM resource_versions v WHERE 1 = 1");
        match &req.scope {
            HistoryScope::Instance { res_type, id } => {
                sql.push(" AND v.res_type = ")
                    .text(res_type.as_str())
                    .push(" AND v.id = ")
                    .text(id.as_str());
            }
            HistoryScope::Type { res_type } => {
                sql.push(" AND v.res_type = ").text(res_type.as_str());
            }
            HistoryScope::System => {}
        }
        let scope_type = match &req.scope {
            HistoryScope::Instance { res_type, .. } | HistoryScope::Type { res_type } => {
                Some(res_type.as_str())
            }
            HistoryScope::System => None,
        };
        push_predicate(&mut sql, access, "v", scope_type, false);
        if let Some(since) = req.since {
            sql.push(" AND v.last_updated >= ").int(since);
        }
        if let Some(cursor) = &req.cursor {
            let c = HistoryCursor::decode(cursor)?;
            sql.push(" AND (v.last_updated < ").int(c.last_updated);
            sql.push(" OR (v.last_updated = ")
                .int(c.last_updated)
                .push(" AND (v.res_type > ")
                .text(c.res_type.clone());
            sql.push(" OR (v.res_type = ")
                .text(c.res_type)
                .push(" AND (v.id > ")
                .text(c.id.clone());
            sql.push(" OR (v.id = ")
                .text(c.id)
                .push(" AND v.version < ")
                .int(c.version)
                .push("))))))");
        }
        // LIMIT as a literal (SMR's own number): a bound LIMIT makes SQLite re-prepare.
        sql.push(&format!(
            " ORDER BY v.last_updated DESC, v.res_type, v.id, v.version DESC LIMIT {}",
            req.count + 1
        ));
        let rows = sql.into_query().fetch_all(&mut *conn).await?;
        let mut entries: Vec<HistoryEntry> = rows
            .iter()
            .map(|row| HistoryEntry {
                resource: resource_from_row(row),
                method: row.get(RESOURCE_COLUMN_COUNT),
            })
            .collect();
        let next_cursor = if entries.len() > req.count {
            entries.truncate(req.count);
            entries
                .last()
                .map(|e| HistoryCursor::of(&e.resource).encode())
        } else {
            None
        };
        if access.consent_actors.is_some() {
            let visible: HashSet<(String, String, i64)> = filter_visible(
                &mut conn,
                entries.iter().map(|e| e.resource.clone()).collect(),
                access,
            )
            .await?
            .into_iter()
            .map(|r| (r.res_type, r.id, r.version))
            .collect();
            entries.retain(|e| {
                visible.contains(&(
                    e.resource.res_type.clone(),
                    e.resource.id.clone(),
                    e.resource.version,
                ))
            });
        }
        Ok(HistoryPage {
            entries,
            next_cursor,
        })
    }

    /// `Patient/{id}/$everything`: the patient, every resource in their compartment, and the
    /// shared resources (medications, practitioners, organisations, locations) those refer to.
    /// Only what `access` allows is returned (the caller checks the patient first).
    pub async fn everything(
        &self,
        patient_id: &str,
        access: &Access,
    ) -> Result<Vec<StoredResource>, StoreError> {
        let patient = self.read("Patient", patient_id).await?;
        let mut conn = self.reader.acquire().await?;
        let mut seen: HashSet<(String, String)> = HashSet::new();
        let mut out = vec![patient];
        seen.insert(("Patient".into(), patient_id.into()));

        // Owned by this patient (the distribution key): one shard on Citus.
        let mut sql = Sql::new("SELECT ");
        sql.push(RESOURCE_COLUMNS).push(
            " FROM resources r JOIN resource_versions v ON v.patient_key = r.patient_key \
             AND v.res_type = r.res_type AND v.id = r.id AND v.version = r.version \
             WHERE r.deleted = 0 AND r.patient_key = ",
        );
        sql.text(patient_id).push(" ORDER BY v.res_type, v.id");
        for row in sql.into_query().fetch_all(&mut *conn).await? {
            let r = resource_from_row(&row);
            if seen.insert((r.res_type.clone(), r.id.clone())) {
                out.push(r);
            }
        }

        // In the compartment through a secondary parameter (e.g. an Observation performed by
        // the patient but about someone else is owned by the other patient).
        let mut sql = Sql::new(
            "SELECT DISTINCT x.res_type, x.id, x.param FROM idx_reference x \
             WHERE x.target_type = 'Patient' AND x.target_id = ",
        );
        sql.text(patient_id);
        let mut extra = Vec::new();
        for row in sql.into_query().fetch_all(&mut *conn).await? {
            let (ty, id, param): (String, String, String) = (row.get(0), row.get(1), row.get(2));
            let in_compartment = resource_types::served(&ty)
                .is_some_and(|t| t.compartment_params.contains(&param.as_str()));
            if in_compartment && !seen.contains(&(ty.clone(), id.clone())) {
                extra.push((ty, id));
            }
        }
        for r in read_many(&mut conn, &extra).await? {
            if seen.insert((r.res_type.clone(), r.id.clone())) {
                out.push(r);
            }
        }

        // Shared resources the record refers to.
        let mut sql = Sql::new(
            "SELECT DISTINCT x.target_type, x.target_id FROM idx_reference x \
             WHERE x.target_id IS NOT NULL AND x.patient_key = ",
        );
        sql.text(patient_id);
        let mut shared = Vec::new();
        for row in sql.into_query().fetch_all(&mut *conn).await? {
            let (ty, id): (Option<String>, Option<String>) = (row.get(0), row.get(1));
            if let (Some(ty), Some(id)) = (ty, id) {
                let is_shared =
                    resource_types::served(&ty).is_some_and(|t| t.compartment_params.is_empty());
                if is_shared && !seen.contains(&(ty.clone(), id.clone())) {
                    shared.push((ty, id));
                }
            }
        }
        for r in read_many(&mut conn, &shared).await? {
            if seen.insert((r.res_type.clone(), r.id.clone())) {
                out.push(r);
            }
        }
        filter_visible(&mut conn, out, access).await
    }
}

impl Store {
    /// The current versions of the resources of `types` in one patient's record, in type and
    /// id order, as `access` lets the caller see them (consent-withheld entries left out).
    /// One query on the patient's own rows: a single shard on Citus.
    pub async fn patient_record(
        &self,
        patient_id: &str,
        types: &[&str],
        access: &Access,
    ) -> Result<Vec<StoredResource>, StoreError> {
        if types.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.reader.acquire().await?;
        let mut sql = Sql::new("SELECT ");
        sql.push(RESOURCE_COLUMNS).push(
            " FROM resources r JOIN resource_versions v ON v.patient_key = r.patient_key \
             AND v.res_type = r.res_type AND v.id = r.id AND v.version = r.version \
             WHERE r.deleted = 0 AND r.patient_key = ",
        );
        sql.text(patient_id).push(" AND r.res_type IN (");
        for (i, ty) in types.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.text(*ty);
        }
        sql.push(") ORDER BY v.res_type, v.id");
        let rows = sql.into_query().fetch_all(&mut *conn).await?;
        let resources = rows.iter().map(resource_from_row).collect();
        filter_visible(&mut conn, resources, access).await
    }

    /// The current versions of resources outside any patient's record (Organization,
    /// Medication, …) by `(type, id)`; missing, deleted and patient-record resources are
    /// skipped, so this never reveals a patient's entry.
    pub async fn read_shared(
        &self,
        keys: &[(String, String)],
    ) -> Result<Vec<StoredResource>, StoreError> {
        let shared: Vec<(String, String)> = keys
            .iter()
            .filter(|(ty, _)| {
                resource_types::served(ty).is_some_and(|t| t.compartment_params.is_empty())
            })
            .cloned()
            .collect();
        if shared.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.reader.acquire().await?;
        read_many(&mut conn, &shared).await
    }
}

pub(crate) async fn read_current(
    conn: &mut AnyConnection,
    res_type: &str,
    id: &str,
) -> Result<Option<StoredResource>, StoreError> {
    let Some(key) = locate(conn, res_type, id).await? else {
        return Ok(None);
    };
    let mut sql = Sql::new("SELECT ");
    sql.push(RESOURCE_COLUMNS).push(
        " FROM resources r JOIN resource_versions v ON v.patient_key = r.patient_key \
         AND v.res_type = r.res_type AND v.id = r.id AND v.version = r.version \
         WHERE r.patient_key = ",
    );
    sql.text(key)
        .push(" AND r.res_type = ")
        .text(res_type)
        .push(" AND r.id = ")
        .text(id);
    let row = sql.into_query().fetch_optional(&mut *conn).await?;
    Ok(row.map(|r| resource_from_row(&r)))
}

/// Current, non-deleted versions of the given resources; missing ones are skipped.
pub(crate) async fn read_many(
    conn: &mut AnyConnection,
    keys: &[(String, String)],
) -> Result<Vec<StoredResource>, StoreError> {
    let mut out = Vec::with_capacity(keys.len());
    for (ty, id) in keys {
        if let Some(r) = read_current(conn, ty, id).await?
            && !r.deleted
        {
            out.push(r);
        }
    }
    Ok(out)
}

/// Where a history page ended: the last entry's sort key.
struct HistoryCursor {
    last_updated: i64,
    res_type: String,
    id: String,
    version: i64,
}

impl HistoryCursor {
    fn of(r: &StoredResource) -> Self {
        HistoryCursor {
            last_updated: r.last_updated,
            res_type: r.res_type.clone(),
            id: r.id.clone(),
            version: r.version,
        }
    }

    fn encode(&self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.last_updated, self.version, self.res_type, self.id
        )
    }

    fn decode(text: &str) -> Result<Self, StoreError> {
        let bad = || StoreError::BadRequest(format!("invalid history cursor '{text}'"));
        let mut parts = text.splitn(4, '.');
        let last_updated = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let version = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let res_type = parts.next().ok_or_else(bad)?.to_owned();
        let id = parts.next().ok_or_else(bad)?.to_owned();
        Ok(HistoryCursor {
            last_updated,
            res_type,
            id,
            version,
        })
    }
}
