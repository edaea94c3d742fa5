//! Entries SMR does not store on their own — a Medication, a Location, a PractitionerRole
//! with no identifier to find it again by, a directory resource the caller may not add to the
//! shared directory — are copied into each stored resource that refers to them
//! (`contained`, ids `eps1`, `eps2`, …), so no stored reference points at a `urn:uuid:` of a
//! message SMR did not keep.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Value, json};
use smr_fhir::references;

pub(crate) fn contain_referenced(
    resource: &mut Value,
    by_url: &HashMap<String, &Value>,
    written: &HashSet<String>,
    patients: &HashSet<&str>,
) {
    let mut taken: HashSet<String> = resource
        .get("contained")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let mut refs = Vec::new();
    references::collect(resource, &mut refs);
    let mut queue: VecDeque<String> = refs.into();
    let mut map: HashMap<String, String> = HashMap::new();
    let mut copies = Vec::new();
    let mut n = 0;
    while let Some(reference) = queue.pop_front() {
        if map.contains_key(&reference)
            || written.contains(&reference)
            || patients.contains(reference.as_str())
        {
            continue;
        }
        let Some(target) = by_url.get(&reference) else {
            continue;
        };
        let local = loop {
            n += 1;
            let candidate = format!("eps{n}");
            if taken.insert(candidate.clone()) {
                break candidate;
            }
        };
        let mut copy = (*target).clone();
        if let Some(obj) = copy.as_object_mut() {
            obj.shift_remove("meta");
            // dom-2: a contained resource contains nothing.
            obj.shift_remove("contained");
            obj.insert("id".into(), json!(local));
        }
        let mut inner = Vec::new();
        references::collect(&copy, &mut inner);
        queue.extend(inner);
        map.insert(reference, format!("#{local}"));
        copies.push(copy);
    }
    if copies.is_empty() {
        return;
    }
    if let Some(obj) = resource.as_object_mut() {
        let contained = obj.entry("contained").or_insert_with(|| json!([]));
        if let Value::Array(list) = contained {
            list.extend(copies);
        }
    }
    references::rewrite(resource, &map);
}
