//! Bundles SMR stores as resources: `collection` and `document` (R4 allows any Bundle to be
//! stored; SMR keeps these two so discharge summaries and medication lists stay whole).
//! Transaction and batch Bundles are processed at the base URL, never stored.
//!
//! A stored Bundle is one resource in one patient's record: the patient its content is about.
//! Its entries are validated as resources of their own types (see `validate`), but they are
//! not indexed: `Bundle?identifier=` finds the Bundle, never a MedicationRequest inside it.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::extract;
use crate::resource_types;
use crate::{IndexValue, Issue, IssueCode};

/// The Bundle types that may be stored.
pub const STORABLE_TYPES: &[&str] = &["collection", "document"];

/// R4 Bundle invariants for a Bundle to be stored (http://hl7.org/fhir/R4/bundle.html#invs),
/// plus SMR's rule that it belongs to at most one patient. Empty when it may be stored.
pub fn check(bundle: &Value) -> Vec<Issue> {
    let mut issues = Vec::new();
    let ty = bundle.get("type").and_then(Value::as_str);
    match ty {
        Some(t) if STORABLE_TYPES.contains(&t) => {}
        Some(t) => {
            issues.push(
                Issue::error(
                    IssueCode::NotSupported,
                    format!(
                        "a '{t}' Bundle is not stored: transaction and batch Bundles are \
                         processed by POST to the base URL; /Bundle stores Bundles of type {}",
                        STORABLE_TYPES.join(" or ")
                    ),
                )
                .at("Bundle.type"),
            );
            return issues;
        }
        // The required element is reported by the structural validation.
        None => return issues,
    }
    let entries: &[Value] = bundle
        .get("entry")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    if bundle.get("total").is_some() {
        issues.push(
            Issue::error(
                IssueCode::Invariant,
                "bdl-1: total only when a search or history",
            )
            .at("Bundle.total"),
        );
    }
    let mut full_urls: HashSet<(&str, Option<&str>)> = HashSet::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = |child: &str| format!("Bundle.entry[{i}].{child}");
        if entry.get("search").is_some() {
            issues.push(
                Issue::error(
                    IssueCode::Invariant,
                    "bdl-2: entry.search only when a search",
                )
                .at(at("search")),
            );
        }
        if entry.get("request").is_some() {
            issues.push(
                Issue::error(
                    IssueCode::Invariant,
                    "bdl-3: entry.request only for some types of bundles (batch, transaction, history)",
                )
                .at(at("request")),
            );
        }
        if entry.get("response").is_some() {
            issues.push(
                Issue::error(
                    IssueCode::Invariant,
                    "bdl-4: entry.response only for some types of bundles (batch-response, \
                     transaction-response, history)",
                )
                .at(at("response")),
            );
        }
        if entry.get("resource").is_none() {
            // bdl-5 allows a request or response instead, which bdl-3/bdl-4 exclude here.
            issues.push(
                Issue::error(
                    IssueCode::Invariant,
                    "bdl-5: an entry of a stored Bundle must have a resource",
                )
                .at(format!("Bundle.entry[{i}]")),
            );
        }
        if let Some(url) = entry.get("fullUrl").and_then(Value::as_str) {
            if url.contains("/_history/") {
                issues.push(
                    Issue::error(
                        IssueCode::Invariant,
                        "bdl-8: fullUrl cannot be a version specific reference",
                    )
                    .at(at("fullUrl")),
                );
            }
            let version = entry
                .pointer("/resource/meta/versionId")
                .and_then(Value::as_str);
            if !full_urls.insert((url, version)) {
                issues.push(
                    Issue::error(
                        IssueCode::Invariant,
                        format!(
                            "bdl-7: fullUrl '{url}' appears twice; entries with the same fullUrl \
                             must have different meta.versionId"
                        ),
                    )
                    .at(at("fullUrl")),
                );
            }
        }
    }
    if ty == Some("document") {
        let identified = bundle.pointer("/identifier/system").is_some()
            && bundle.pointer("/identifier/value").is_some();
        if !identified {
            issues.push(
                Issue::error(
                    IssueCode::Invariant,
                    "bdl-9: a document must have an identifier with a system and a value",
                )
                .at("Bundle.identifier"),
            );
        }
        if bundle.get("timestamp").is_none() {
            issues.push(
                Issue::error(IssueCode::Invariant, "bdl-10: a document must have a date")
                    .at("Bundle.timestamp"),
            );
        }
        let first = entries
            .first()
            .and_then(|e| e.pointer("/resource/resourceType"))
            .and_then(Value::as_str);
        if first != Some("Composition") {
            issues.push(
                Issue::error(
                    IssueCode::Invariant,
                    "bdl-11: a document must have a Composition as the first resource",
                )
                .at(if entries.is_empty() {
                    "Bundle.entry".to_owned()
                } else {
                    "Bundle.entry[0].resource".to_owned()
                }),
            );
        }
    }
    if issues.is_empty()
        && let Err(issue) = owner(bundle)
    {
        issues.push(issue);
    }
    issues
}

/// The patient (id) whose record a stored Bundle belongs to, `None` for a Bundle with no
/// patient's data (kept as a shared resource, like a Medication). A document belongs to its
/// Composition's subject; every entry that belongs to a patient must belong to the same one,
/// as the Bundle is read under one record's access rules.
pub fn owner(bundle: &Value) -> Result<Option<String>, Issue> {
    let entries: &[Value] = bundle
        .get("entry")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let full_urls: HashMap<&str, &Value> = entries
        .iter()
        .filter_map(|e| Some((e.get("fullUrl")?.as_str()?, e.get("resource")?)))
        .collect();
    let mut owner: Option<(String, usize)> = None;
    if bundle.get("type").and_then(Value::as_str) == Some("document") {
        let subject = entries
            .first()
            .and_then(|e| e.pointer("/resource/subject/reference"))
            .and_then(Value::as_str);
        match subject.and_then(|r| resolve_patient(r, &full_urls)) {
            Some(p) => owner = Some((p, 0)),
            None => {
                return Err(Issue::error(
                    IssueCode::Invariant,
                    "a stored document belongs to the patient its Composition is about: \
                     Composition.subject must reference Patient/<id> of a patient SMR holds \
                     (directly, or through the fullUrl of a Patient entry carrying that id)",
                )
                .at("Bundle.entry[0].resource.subject"));
            }
        }
    }
    for (i, entry) in entries.iter().enumerate() {
        let Some(resource) = entry.get("resource") else {
            continue;
        };
        let Some(patient) = entry_patient(resource, &full_urls).map_err(|why| {
            Issue::error(IssueCode::Invariant, why).at(format!("Bundle.entry[{i}].resource"))
        })?
        else {
            continue;
        };
        match &owner {
            None => owner = Some((patient, i)),
            Some((p, first)) if *p != patient => {
                return Err(Issue::error(
                    IssueCode::Invariant,
                    format!(
                        "entry {i} belongs to Patient/{patient} but entry {first} to Patient/{p}: \
                         a stored Bundle is kept in one patient's record, so all its entries \
                         must be about the same patient"
                    ),
                )
                .at(format!("Bundle.entry[{i}].resource")));
            }
            Some(_) => {}
        }
    }
    Ok(owner.map(|(p, _)| p))
}

/// The patient an entry's resource belongs to. A resource of the patient compartment that
/// names no patient SMR can identify is refused: kept in no record, it would be readable by
/// anyone allowed to read shared resources.
fn entry_patient(
    resource: &Value,
    full_urls: &HashMap<&str, &Value>,
) -> Result<Option<String>, String> {
    let Some(ty) = resource.get("resourceType").and_then(Value::as_str) else {
        return Ok(None);
    };
    if ty == "Patient" {
        return match resource.get("id").and_then(Value::as_str) {
            Some(id) => Ok(Some(id.to_owned())),
            None => Err(
                "a Patient entry must carry the id of the patient SMR holds, so that the Bundle \
                 can be kept in that patient's record"
                    .into(),
            ),
        };
    }
    match resource_types::served(ty) {
        Some(served) if !served.compartment_params.is_empty() => {
            let entries = extract::extract(resource);
            for param in served.compartment_params {
                for e in entries.iter().filter(|e| e.param == *param) {
                    if let IndexValue::Reference {
                        target_type,
                        target_id,
                        url,
                    } = &e.value
                    {
                        if target_type.as_deref() == Some("Patient")
                            && let Some(id) = target_id
                        {
                            return Ok(Some(id.clone()));
                        }
                        if let Some(p) = resolve_patient(url, full_urls) {
                            return Ok(Some(p));
                        }
                    }
                }
            }
            Err(format!(
                "this {ty} belongs in a patient's record but names no patient SMR can identify: \
                 reference the patient as Patient/<id>"
            ))
        }
        Some(_) => Ok(None),
        // A type SMR does not serve: its `subject`/`patient`, when it names a patient.
        None => Ok(["subject", "patient"]
            .into_iter()
            .filter_map(|k| resource.pointer(&format!("/{k}/reference"))?.as_str())
            .find_map(|r| resolve_patient(r, full_urls))),
    }
}

/// `Patient/<id>` (relative or an absolute URL ending so), or the fullUrl of a Patient entry
/// that carries its id.
fn resolve_patient(reference: &str, full_urls: &HashMap<&str, &Value>) -> Option<String> {
    if let Some(target) = full_urls.get(reference)
        && target.get("resourceType").and_then(Value::as_str) == Some("Patient")
    {
        return target.get("id").and_then(Value::as_str).map(str::to_owned);
    }
    let path = if reference.starts_with("http://") || reference.starts_with("https://") {
        // An absolute URL: only its last two segments name the resource.
        let mut segs = reference.rsplitn(3, '/');
        let id = segs.next()?;
        let ty = segs.next()?;
        return (ty == "Patient" && !id.is_empty()).then(|| id.to_owned());
    } else {
        reference
    };
    match path.split_once('/') {
        Some(("Patient", id)) if !id.is_empty() && !id.contains(['/', ':']) => Some(id.to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ms(patient: &str) -> Value {
        json!({"resourceType": "MedicationStatement", "status": "active",
            "medicationCodeableConcept": {"text": "x"},
            "subject": {"reference": patient}})
    }

    #[test]
    fn collection_owner() {
        let b = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": ms("Patient/p1")}, {"resource": {"resourceType": "Medication", "code": {"text": "x"}}}]});
        assert_eq!(owner(&b).unwrap(), Some("p1".into()));
        let b = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": ms("Patient/p1")}, {"resource": ms("Patient/p2")}]});
        assert_eq!(
            owner(&b).unwrap_err().expression.as_deref(),
            Some("Bundle.entry[1].resource")
        );
        let b = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Medication", "code": {"text": "x"}}}]});
        assert_eq!(owner(&b).unwrap(), None);
        let b = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": ms("urn:uuid:0f6a1a7e-1d1b-4a61-9a3e-5d3d2f1a0b11")}]});
        assert!(owner(&b).is_err());
    }

    #[test]
    fn document_owner_through_full_url() {
        let b = json!({"resourceType": "Bundle", "type": "document", "entry": [
            {"resource": {"resourceType": "Composition", "subject": {"reference": "urn:uuid:1"}}},
            {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient", "id": "p7"}}]});
        assert_eq!(owner(&b).unwrap(), Some("p7".into()));
        let b = json!({"resourceType": "Bundle", "type": "document", "entry": [
            {"resource": {"resourceType": "Composition", "subject": {"reference": "Group/1"}}}]});
        assert!(owner(&b).is_err());
    }

    #[test]
    fn resolve() {
        let m = HashMap::new();
        assert_eq!(resolve_patient("Patient/a", &m), Some("a".into()));
        assert_eq!(
            resolve_patient("https://x.nhs.uk/fhir/Patient/a", &m),
            Some("a".into())
        );
        assert_eq!(resolve_patient("Patient/a/_history/1", &m), None);
        assert_eq!(resolve_patient("urn:x:Patient/a", &m), None);
    }

    #[test]
    fn invariants() {
        let t = |b: Value| {
            check(&b)
                .into_iter()
                .map(|i| i.expression.unwrap_or_default())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            t(json!({"resourceType": "Bundle", "type": "transaction"})),
            vec!["Bundle.type"]
        );
        assert_eq!(
            t(
                json!({"resourceType": "Bundle", "type": "document", "entry": [{"resource": ms("Patient/p")}]})
            ),
            vec![
                "Bundle.identifier",
                "Bundle.timestamp",
                "Bundle.entry[0].resource"
            ]
        );
        assert_eq!(
            t(
                json!({"resourceType": "Bundle", "type": "collection", "entry": [
                {"fullUrl": "urn:uuid:1", "resource": ms("Patient/p")},
                {"fullUrl": "urn:uuid:1", "resource": ms("Patient/p")}]})
            ),
            vec!["Bundle.entry[1].fullUrl"]
        );
    }
}
