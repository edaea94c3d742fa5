//! Confidentiality labels for medication entries, from their medicine.
//! Placeholder: filled in by the sensitivity work.

use serde_json::Value;

/// The HL7 v3 ActCode confidentiality labels this module assigns, e.g. `["PSY"]`.
pub fn labels_for(_resource: &Value) -> Vec<&'static str> {
    Vec::new()
}
