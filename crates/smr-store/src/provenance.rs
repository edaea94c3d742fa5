//! The `Provenance` the store writes beside every patient-record entry a write creates,
//! changes or deletes, completed from the caller's [`ProvenanceTemplate`] once the entry's
//! version is known (only the store assigns ids and versions).

use std::collections::HashSet;

use serde_json::{Map, Value, json};
use smr_fhir::datetime;

use crate::access::{in_patient_record, is_patient_data};
use crate::model::{ProvenanceTemplate, StoredResource, WriteOp, WriteOutcome};

const DATA_OPERATION: &str = "http://terminology.hl7.org/CodeSystem/v3-DataOperation";

/// The identifier system for an identifier that is itself a URI (`meta.source` is one).
const URI_SYSTEM: &str = "urn:ietf:rfc:3986";

/// Whether entries of `res_type` may get a Provenance: types of a patient's record, except
/// Provenances themselves (a record of a record would never end). Shared resources
/// (Organization, Medication, …) are not a patient's record.
pub(crate) fn is_recorded(res_type: &str) -> bool {
    is_patient_data(res_type) && res_type != "Provenance"
}

/// Whether this stored entry gets one: its type may, and it is in a patient's record (a
/// stored Bundle about no patient is shared).
pub(crate) fn is_recorded_entry(stored: &StoredResource) -> bool {
    is_recorded(&stored.res_type) && in_patient_record(&stored.res_type, &stored.owner)
}

/// What a written entry's Provenance says was done to it, and the version it targets; `None`
/// when nothing was written (a conditional create that found a match, a delete of nothing).
pub(crate) fn activity(outcome: &WriteOutcome) -> Option<(&StoredResource, &'static str)> {
    match outcome {
        WriteOutcome::Created(r) => Some((r, "CREATE")),
        WriteOutcome::Updated(r) => Some((r, "UPDATE")),
        WriteOutcome::Deleted(Some(r)) => Some((r, "DELETE")),
        WriteOutcome::Existing(_) | WriteOutcome::Deleted(None) => None,
    }
}

/// The `Type/id`s that Provenances created by the write itself name (a PGx import writes
/// its own, naming the lab): those entries are already accounted for and get no second one.
/// Read after the transaction's placeholders were rewritten.
pub(crate) fn own_targets(ops: &[WriteOp]) -> HashSet<String> {
    let mut targets = HashSet::new();
    for op in ops {
        let (WriteOp::Create { resource, .. } | WriteOp::Update { resource, .. }) = op else {
            continue;
        };
        if resource.get("resourceType").and_then(Value::as_str) != Some("Provenance") {
            continue;
        }
        let Some(list) = resource.get("target").and_then(Value::as_array) else {
            continue;
        };
        for target in list {
            if let Some(reference) = target.get("reference").and_then(Value::as_str) {
                let plain = reference.split("/_history/").next().unwrap_or(reference);
                targets.insert(plain.to_owned());
            }
        }
    }
    targets
}

/// The Provenance of `stored` (written by `activity`), from `template`; `written` is the
/// entry's resource as stored (none for a delete).
pub(crate) fn complete(
    template: &ProvenanceTemplate,
    stored: &StoredResource,
    activity: &str,
    written: Option<&Value>,
) -> Value {
    let mut rest = match &template.base {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    // What the store decides is never taken from the template (a client's X-Provenance may
    // carry anything).
    for key in [
        "resourceType",
        "id",
        "meta",
        "target",
        "recorded",
        "activity",
    ] {
        rest.shift_remove(key);
    }
    let mut body = Map::new();
    body.insert("resourceType".into(), json!("Provenance"));
    // The entry's confidentiality labels: a consent that withholds the entry (judged by its
    // labels) then withholds what its Provenance says about it.
    let security = written
        .and_then(|w| w.pointer("/meta/security"))
        .and_then(Value::as_array)
        .filter(|labels| !labels.is_empty());
    if let Some(labels) = security {
        body.insert("meta".into(), json!({"security": labels}));
    }
    body.insert(
        "target".into(),
        json!([{"reference": format!("{}/{}/_history/{}", stored.res_type, stored.id, stored.version)}]),
    );
    body.insert(
        "recorded".into(),
        json!(datetime::format_instant(stored.last_updated)),
    );
    let display = match activity {
        "CREATE" => "create",
        "UPDATE" => "revise",
        _ => "delete",
    };
    body.insert(
        "activity".into(),
        json!({"coding": [{"system": DATA_OPERATION, "code": activity, "display": display}]}),
    );
    body.extend(rest);
    // R4 Meta.source: "In the provenance resource, this corresponds to Provenance.entity.what[x]".
    let source = written
        .and_then(|w| w.pointer("/meta/source"))
        .and_then(Value::as_str);
    if let Some(source) = source {
        let entity = json!({
            "role": "source",
            "what": {"identifier": {"system": URI_SYSTEM, "value": source}, "display": "source system"},
        });
        match body.get_mut("entity").and_then(Value::as_array_mut) {
            Some(list) => list.push(entity),
            None => {
                body.insert("entity".into(), json!([entity]));
            }
        }
    }
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(version: i64) -> StoredResource {
        StoredResource {
            res_type: "MedicationRequest".into(),
            id: "m1".into(),
            version,
            last_updated: 0,
            deleted: false,
            body: String::new(),
            owner: "p1".into(),
        }
    }

    #[test]
    fn store_decides_target_recorded_and_activity() {
        let template = ProvenanceTemplate {
            base: json!({"resourceType": "Provenance", "id": "x", "target": [{"reference": "Patient/evil"}],
                         "agent": [{"who": {"display": "Dr A"}}]}),
        };
        let written = json!({"meta": {"source": "urn:oid:1.2.3", "security": [{"code": "R"}]}});
        let p = complete(&template, &stored(2), "UPDATE", Some(&written));
        assert_eq!(
            p["target"][0]["reference"],
            "MedicationRequest/m1/_history/2"
        );
        assert_eq!(p["activity"]["coding"][0]["code"], "UPDATE");
        assert!(p.get("id").is_none());
        assert_eq!(p["meta"]["security"][0]["code"], "R");
        assert_eq!(
            p["entity"][0]["what"]["identifier"]["value"],
            "urn:oid:1.2.3"
        );
        assert_eq!(p["agent"][0]["who"]["display"], "Dr A");
    }

    #[test]
    fn own_provenances_name_their_targets_without_version() {
        let ops = vec![WriteOp::Create {
            resource: json!({"resourceType": "Provenance",
                             "target": [{"reference": "Observation/o1/_history/1"}]}),
            full_url: None,
            if_none_exist: None,
        }];
        assert!(own_targets(&ops).contains("Observation/o1"));
        assert!(is_recorded("MedicationRequest") && !is_recorded("Provenance"));
        assert!(!is_recorded("Organization"));
    }
}
