//! One medicine's timeline across settings (`$medication-record?medicine=CODE`): every source
//! entry of the medicine's line, in date order, each followed by the Provenance records about
//! it. The code may name the medicine at any dm+d level (VTM, VMP, AMP, packs), or be a code
//! exactly as an entry wrote it (so unmapped medicines have timelines too).

use std::collections::BTreeSet;

use serde_json::{Value, json};
use smr_dmd::{MedicineInfo, MedicineLookup};

use crate::RecordInput;
use crate::merge;
use crate::setting::Provenances;
use crate::source::strip_history;

/// The medicine asked for: `CODE` or `SYSTEM|CODE`.
pub fn parse_medicine(text: &str) -> (Option<&str>, &str) {
    match text.split_once('|') {
        Some((system, code)) if !system.is_empty() => (Some(system), code.trim()),
        Some((_, code)) => (None, code.trim()),
        None => (None, text.trim()),
    }
}

/// The timeline as a FHIR `collection` Bundle; `base` is the server's FHIR base URL for the
/// entries' full URLs. An empty collection when the patient has no entry of the medicine.
pub fn bundle(
    input: &RecordInput<'_>,
    lookup: &dyn MedicineLookup,
    medicine: &str,
    base: &str,
) -> Value {
    let (system, code) = parse_medicine(medicine);
    let provenances = Provenances::new(input.provenances, input.organisations);
    let medications = crate::medications_by_reference(input.medications);
    let entries = merge::entries(input.sources, &provenances, &medications, lookup);
    let keys = merge::line_keys(&entries);

    let mut wanted: BTreeSet<String> = BTreeSet::new();
    if let Some(info) = lookup.resolve(&[(system, code)], None) {
        wanted.insert(MedicineInfo::moiety_key(&info));
    }
    for (entry, key) in entries.iter().zip(&keys) {
        let names_it =
            entry.source.codings.iter().any(|(s, c, _)| {
                c == code && system.is_none_or(|wanted| s.as_deref() == Some(wanted))
            });
        if names_it {
            wanted.insert(key.clone());
        }
    }

    let mut bundle_entries = Vec::new();
    // A Provenance about several entries appears once (a Bundle's full URLs are unique),
    // after the first of them.
    let mut shown_provenance: BTreeSet<&str> = BTreeSet::new();
    for (entry, key) in entries.iter().zip(&keys) {
        if !wanted.contains(key) {
            continue;
        }
        let resource = &input.sources[entry.input];
        bundle_entries.push(json!({
            "fullUrl": format!("{base}/{}", entry.source.reference),
            "resource": resource,
        }));
        for provenance in input
            .provenances
            .iter()
            .filter(|p| targets(p, &entry.source.reference))
        {
            if let Some(id) = provenance.get("id").and_then(Value::as_str)
                && shown_provenance.insert(id)
            {
                bundle_entries.push(json!({
                    "fullUrl": format!("{base}/Provenance/{id}"),
                    "resource": provenance,
                }));
            }
        }
    }
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": input.now_text,
        "entry": bundle_entries,
    })
}

fn targets(provenance: &Value, reference: &str) -> bool {
    provenance
        .get("target")
        .and_then(Value::as_array)
        .is_some_and(|targets| {
            targets.iter().any(|t| {
                t.get("reference")
                    .and_then(Value::as_str)
                    .is_some_and(|r| strip_history(r) == reference)
            })
        })
}
