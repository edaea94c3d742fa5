//! Access rules compiled into SQL: which patients' rows a query may see, and which entries a
//! patient's consent withholds from the caller.
//!
//! The predicate is on `patient_key` (one shard on Citus) and is part of the query that
//! counts, pages and includes, so a hidden row never shows through a total or a cursor.
//! Resources outside any patient's record (Medication, Organization, …) are not filtered.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use smr_access::consent::{self, ALL_LABELS};
use smr_fhir::resource_types;
use sqlx::{AnyConnection, Row};

use crate::model::{Access, PatientAccess, StoredResource};
use crate::sql::Sql;
use crate::view_cache::ViewKey;
use crate::{Store, StoreError};

/// Whether resources of `res_type` belong to a patient's record (and are filtered).
pub fn is_patient_data(res_type: &str) -> bool {
    // A stored Bundle is outside the R4 compartment but holds a patient's entries.
    res_type == "Patient"
        || res_type == "Bundle"
        || resource_types::served(res_type).is_some_and(|t| !t.compartment_params.is_empty())
}

/// Whether a stored row (type and `patient_key`) is in a patient's record and filtered. A
/// Bundle with no patient's entry (a collection of Medications) is keyed `Bundle/id` and is
/// shared, like a Medication.
pub fn in_patient_record(res_type: &str, owner: &str) -> bool {
    is_patient_data(res_type) && !(res_type == "Bundle" && owner.contains('/'))
}

/// Appends ` AND <access predicate>` for rows of `alias` (a `resources` or
/// `resource_versions` alias with `patient_key`, `res_type`, `id`). `res_type` is the type
/// searched, or `None` when the rows may be of any type (system history).
/// With `with_consent`, entries withheld by consent (judged by the labels of the current
/// version's index) are left out too.
pub(crate) fn push_predicate(
    sql: &mut Sql,
    access: &Access,
    alias: &str,
    res_type: Option<&str>,
    with_consent: bool,
) {
    if let Some(ty) = res_type
        && !is_patient_data(ty)
    {
        return;
    }
    // With rows of any type, shared resources (keyed `Type/id`) stay visible; so do shared
    // Bundles among Bundles.
    let shared_ok = if res_type.is_none() || res_type == Some("Bundle") {
        format!("{alias}.patient_key LIKE '%/%' OR ")
    } else {
        String::new()
    };
    match &access.patients {
        PatientAccess::Any => {}
        PatientAccess::Only(patient) => {
            sql.push(&format!(" AND ({shared_ok}{alias}.patient_key = "))
                .text(patient.clone())
                .push(")");
        }
        PatientAccess::CaredFor(orgs) => {
            sql.push(&format!(
                " AND ({shared_ok}{alias}.patient_key IN (SELECT c.patient_key FROM care_relationship c \
                 WHERE c.org IN ("
            ));
            push_list(sql, orgs);
            sql.push(") AND (c.valid_until IS NULL OR c.valid_until > ")
                .int(access.at)
                .push(")))");
        }
        PatientAccess::Nobody => {
            if shared_ok.is_empty() {
                sql.push(" AND 1 = 0");
            } else {
                sql.push(&format!(" AND {alias}.patient_key LIKE '%/%'"));
            }
        }
    }
    if let Some(actors) = access.consent_actors.as_ref().filter(|_| with_consent) {
        // Withheld: the patient restricts one of the row's labels (or every label) from one of
        // the caller's actors. The patient's own Patient resource is never withheld.
        sql.push(&format!(
            " AND NOT EXISTS (SELECT 1 FROM consent_restriction k WHERE k.patient_key = {alias}.patient_key \
             AND k.actor IN ("
        ));
        push_list(sql, actors);
        sql.push(&format!(
            ") AND ((k.label = '{ALL_LABELS}' AND {alias}.res_type <> 'Patient') OR k.label IN \
             (SELECT s.code FROM idx_token s WHERE s.patient_key = {alias}.patient_key \
             AND s.res_type = {alias}.res_type AND s.id = {alias}.id AND s.param = '_security')))"
        ));
    }
}

fn push_list(sql: &mut Sql, values: &[String]) {
    if values.is_empty() {
        // `IN ()` is not SQL; a list that matches nothing.
        sql.push("NULL");
        return;
    }
    for (n, v) in values.iter().enumerate() {
        if n > 0 {
            sql.push(", ");
        }
        sql.text(v.clone());
    }
}

/// What one patient's record looks like to a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientView {
    /// Whether the caller may open the record at all.
    pub allowed: bool,
    /// Labels withheld from the caller (`*` for every entry); empty when none.
    pub withheld_labels: Vec<String>,
}

impl PatientView {
    /// Whether `resource` (its JSON) is withheld from the caller.
    pub fn hides(&self, resource: &Value) -> bool {
        consent::is_withheld(resource, &self.withheld_labels)
    }
}

impl Store {
    /// Whether the caller may open the record of `patient` (a patient id), and what its
    /// consent withholds from them. Unfiltered for a resource outside any patient's record.
    pub async fn patient_view(
        &self,
        patient: &str,
        access: &Access,
    ) -> Result<PatientView, StoreError> {
        // On the embedded store the view is cached (see `view_cache`): the counts are taken
        // before the read, so a write racing it leaves the entry stale, never wrong.
        let stamp = smr_access::care::LINK_TYPES
            .iter()
            .chain(std::iter::once(&"Consent"))
            .map(|t| self.change_count(t))
            .sum::<Option<u64>>();
        let key = stamp.map(|_| ViewKey {
            patient: patient.to_owned(),
            patients: access.patients.clone(),
            consent_actors: access.consent_actors.clone(),
        });
        if let (Some(stamp), Some(key)) = (stamp, &key)
            && let Some(hit) = self.views.view(key, stamp, access.at)
        {
            return Ok(hit);
        }
        let mut conn = self.reader.acquire().await?;
        let mut views = views_until(&mut conn, &[patient.to_owned()], access).await?;
        let (view, until) = views.remove(patient).unwrap_or((
            PatientView {
                allowed: false,
                withheld_labels: Vec::new(),
            },
            0,
        ));
        if let (Some(stamp), Some(key)) = (stamp, key) {
            self.views.put_view(key, stamp, view.clone(), until);
        }
        Ok(view)
    }

    /// Whether Patient `id` is on record (not unknown, not deleted); cached on the embedded
    /// store while no Patient is written.
    pub async fn patient_exists(&self, id: &str) -> Result<bool, StoreError> {
        let stamp = self.change_count("Patient");
        if let Some(stamp) = stamp
            && let Some(hit) = self.views.patient_exists(id, stamp)
        {
            return Ok(hit);
        }
        let exists = match self.read("Patient", id).await {
            Ok(_) => true,
            Err(StoreError::NotFound { .. } | StoreError::Gone { .. }) => false,
            Err(e) => return Err(e),
        };
        if let Some(stamp) = stamp {
            self.views.put_patient_exists(id, stamp, exists);
        }
        Ok(exists)
    }

    /// Keeps the resources the caller may see (for reads that are not one search: includes,
    /// `$everything`, history).
    pub async fn filter_visible(
        &self,
        resources: Vec<StoredResource>,
        access: &Access,
    ) -> Result<Vec<StoredResource>, StoreError> {
        let mut conn = self.reader.acquire().await?;
        filter_visible(&mut conn, resources, access).await
    }
}

pub(crate) async fn filter_visible(
    conn: &mut AnyConnection,
    resources: Vec<StoredResource>,
    access: &Access,
) -> Result<Vec<StoredResource>, StoreError> {
    if access.patients == PatientAccess::Any && access.consent_actors.is_none() {
        return Ok(resources);
    }
    let owners: Vec<String> = resources
        .iter()
        .filter(|r| in_patient_record(&r.res_type, &r.owner))
        .map(|r| r.owner.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let views = views(conn, &owners, access).await?;
    Ok(resources
        .into_iter()
        .filter(|r| {
            if !in_patient_record(&r.res_type, &r.owner) {
                return true;
            }
            let Some(view) = views.get(&r.owner) else {
                return false;
            };
            if !view.allowed {
                return false;
            }
            if view.withheld_labels.is_empty() || r.deleted {
                return true;
            }
            match serde_json::from_str::<Value>(&r.body) {
                Ok(v) => !view.hides(&v),
                // A body SMR cannot read is not shown past a consent it cannot check.
                Err(_) => false,
            }
        })
        .collect())
}

/// The view of each patient in `patients` (ids).
async fn views(
    conn: &mut AnyConnection,
    patients: &[String],
    access: &Access,
) -> Result<HashMap<String, PatientView>, StoreError> {
    Ok(views_until(conn, patients, access)
        .await?
        .into_iter()
        .map(|(p, (view, _))| (p, view))
        .collect())
}

/// Each patient's view, with the instant (microseconds) until which an allowing view holds:
/// the end of the last care relationship that allows it (`i64::MAX` when none ends, or the
/// access does not depend on relationships).
async fn views_until(
    conn: &mut AnyConnection,
    patients: &[String],
    access: &Access,
) -> Result<HashMap<String, (PatientView, i64)>, StoreError> {
    let mut out = HashMap::new();
    if patients.is_empty() {
        return Ok(out);
    }
    let allowed: HashMap<String, i64> = match &access.patients {
        PatientAccess::Any => patients.iter().map(|p| (p.clone(), i64::MAX)).collect(),
        PatientAccess::Only(p) => patients
            .iter()
            .filter(|x| *x == p)
            .map(|p| (p.clone(), i64::MAX))
            .collect(),
        PatientAccess::Nobody => HashMap::new(),
        PatientAccess::CaredFor(orgs) => {
            let mut sql = Sql::new(
                "SELECT c.patient_key, MAX(COALESCE(c.valid_until, 9223372036854775807)) \
                 FROM care_relationship c WHERE c.patient_key IN (",
            );
            push_list(&mut sql, patients);
            sql.push(") AND c.org IN (");
            push_list(&mut sql, orgs);
            sql.push(") AND (c.valid_until IS NULL OR c.valid_until > ")
                .int(access.at)
                .push(") GROUP BY c.patient_key");
            sql.into_query()
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|row| (row.get::<String, _>(0), row.get::<i64, _>(1)))
                .collect()
        }
    };
    let mut withheld: HashMap<String, Vec<String>> = HashMap::new();
    if let Some(actors) = &access.consent_actors {
        let mut sql = Sql::new(
            "SELECT DISTINCT k.patient_key, k.label FROM consent_restriction k WHERE k.patient_key IN (",
        );
        push_list(&mut sql, patients);
        sql.push(") AND k.actor IN (");
        push_list(&mut sql, actors);
        sql.push(")");
        for row in sql.into_query().fetch_all(&mut *conn).await? {
            withheld
                .entry(row.get::<String, _>(0))
                .or_default()
                .push(row.get::<String, _>(1));
        }
    }
    for p in patients {
        let until = allowed.get(p).copied();
        out.insert(
            p.clone(),
            (
                PatientView {
                    allowed: until.is_some(),
                    withheld_labels: withheld.remove(p).unwrap_or_default(),
                },
                until.unwrap_or(0),
            ),
        );
    }
    Ok(out)
}
