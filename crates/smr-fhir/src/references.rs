//! Walking and rewriting `Reference.reference` values, e.g. a transaction's `urn:uuid:`
//! placeholders to the ids the server assigned.

use std::collections::HashMap;

use serde_json::Value;

/// Replaces every `reference` string found in `map` with its mapped value. Returns how many
/// references were rewritten.
pub fn rewrite(value: &mut Value, map: &HashMap<String, String>) -> usize {
    match value {
        Value::Object(obj) => {
            let mut n = 0;
            for (key, child) in obj.iter_mut() {
                if key == "reference"
                    && let Value::String(s) = child
                {
                    if let Some(new) = map.get(s.as_str()) {
                        *s = new.clone();
                        n += 1;
                    }
                    continue;
                }
                n += rewrite(child, map);
            }
            n
        }
        Value::Array(items) => items.iter_mut().map(|v| rewrite(v, map)).sum(),
        _ => 0,
    }
}

/// Every `reference` string in `value`, in document order.
pub fn collect(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(obj) => {
            for (key, child) in obj {
                match (key.as_str(), child) {
                    ("reference", Value::String(s)) => out.push(s.clone()),
                    _ => collect(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
        _ => {}
    }
}

/// A conditional reference (`Practitioner?identifier=…|123`), split into type and query.
/// Only meaningful inside a transaction, where the server resolves it by search.
pub fn conditional(reference: &str) -> Option<(&str, &str)> {
    let (ty, query) = reference.split_once('?')?;
    crate::resource_types::is_r4_resource_type(ty).then_some((ty, query))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rewrites_nested_references_only() {
        let mut v = json!({
            "subject": {"reference": "urn:uuid:1"},
            "note": [{"text": "urn:uuid:1"}],
            "basedOn": [{"reference": "urn:uuid:2"}, {"reference": "Patient/x"}]
        });
        let map = HashMap::from([
            ("urn:uuid:1".to_owned(), "Patient/a".to_owned()),
            ("urn:uuid:2".to_owned(), "MedicationRequest/b".to_owned()),
        ]);
        assert_eq!(rewrite(&mut v, &map), 2);
        assert_eq!(v["subject"]["reference"], "Patient/a");
        assert_eq!(v["note"][0]["text"], "urn:uuid:1");
        let mut all = Vec::new();
        collect(&v, &mut all);
        assert_eq!(all, vec!["Patient/a", "MedicationRequest/b", "Patient/x"]);
        assert_eq!(
            conditional("Practitioner?identifier=a|1"),
            Some(("Practitioner", "identifier=a|1"))
        );
        assert_eq!(conditional("Patient/1"), None);
    }
}
