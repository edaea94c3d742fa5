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

/// The FHIRPath-ish locations of every `reference` that satisfies `pred`, e.g. to report
/// `urn:uuid:` references a transaction left unresolved.
pub fn find(value: &Value, path: &str, pred: &dyn Fn(&str) -> bool, out: &mut Vec<String>) {
    match value {
        Value::Object(obj) => {
            for (key, child) in obj {
                let child_path = format!("{path}.{key}");
                if key == "reference"
                    && let Value::String(s) = child
                {
                    if pred(s) {
                        out.push(child_path);
                    }
                    continue;
                }
                find(child, &child_path, pred, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                find(item, &format!("{path}[{i}]"), pred, out);
            }
        }
        _ => {}
    }
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
        let mut left = Vec::new();
        find(&v, "X", &|s| s.starts_with("urn:uuid:"), &mut left);
        assert!(left.is_empty());
    }
}
