//! Resource → index entries. OWNER: search helper.
use crate::IndexEntry;
use serde_json::Value;

/// Every index entry of `resource` (typed by its `resourceType`), for every search parameter
/// defined for that type. Unknown types give no entries.
pub fn extract(_resource: &Value) -> Vec<IndexEntry> {
    todo!("search helper")
}
