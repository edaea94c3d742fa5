//! Building response Bundles. Stored bodies are already JSON text, so entries are spliced in
//! as text rather than parsed and re-serialised: search and history cost one copy per resource.

use serde_json::{Value, json};
use smr_store::{HistoryEntry, StoredResource};

/// A Bundle under construction, written straight into its JSON text.
pub struct BundleWriter {
    text: String,
    entries: usize,
}

impl BundleWriter {
    /// Starts a Bundle of `bundle_type` with optional `total` and `link`s (relation, url).
    pub fn new(bundle_type: &str, total: Option<i64>, links: &[(&str, String)]) -> Self {
        let mut head = json!({
            "resourceType": "Bundle",
            "id": uuid::Uuid::new_v4().to_string(),
            "meta": {"lastUpdated": smr_fhir::datetime::format_instant(now_micros())},
            "type": bundle_type,
        });
        if let Some(total) = total {
            head["total"] = json!(total);
        }
        if !links.is_empty() {
            head["link"] = Value::Array(
                links
                    .iter()
                    .map(|(rel, url)| json!({"relation": rel, "url": url}))
                    .collect(),
            );
        }
        let mut text = head.to_string();
        text.pop(); // reopen the object to append entries
        BundleWriter { text, entries: 0 }
    }

    fn open_entry(&mut self) {
        self.text.push_str(if self.entries == 0 {
            ",\"entry\":["
        } else {
            ","
        });
        self.entries += 1;
    }

    /// An entry whose fields are `fields` (a JSON object) plus `resource` spliced in as text.
    pub fn entry(&mut self, fields: Value, resource: Option<&str>) {
        self.open_entry();
        let mut text = fields.to_string();
        if let Some(body) = resource.filter(|b| !b.is_empty()) {
            text.pop();
            if text.len() > 1 {
                text.push(',');
            }
            text.push_str("\"resource\":");
            text.push_str(body);
            text.push('}');
        }
        self.text.push_str(&text);
    }

    /// A search entry, written directly as text: this runs once per result of every search.
    pub fn search_entry(&mut self, base: &str, r: &StoredResource, mode: &'static str) {
        self.search_entry_with(base, r, &r.body, mode);
    }

    /// A search entry for `r` carrying `body` (the stored one cut down by `_summary`).
    pub fn search_entry_with(
        &mut self,
        base: &str,
        r: &StoredResource,
        body: &str,
        mode: &'static str,
    ) {
        self.open_entry();
        self.text.push_str("{\"fullUrl\":");
        // The base URL can come from a Host header: escape it as JSON like any other value.
        self.text
            .push_str(&Value::String(full_url(base, r)).to_string());
        if !body.is_empty() {
            self.text.push_str(",\"resource\":");
            self.text.push_str(body);
        }
        self.text.push_str(",\"search\":{\"mode\":\"");
        self.text.push_str(mode);
        self.text.push_str("\"}}");
    }

    /// A match whose body is not a stored resource version (an AuditEvent of the audit chain).
    pub fn raw_search_entry(&mut self, base: &str, res_type: &str, body: &str) {
        let id = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_default();
        self.open_entry();
        self.text.push_str("{\"fullUrl\":");
        self.text
            .push_str(&Value::String(format!("{base}/{res_type}/{id}")).to_string());
        self.text.push_str(",\"resource\":");
        self.text.push_str(body);
        self.text.push_str(",\"search\":{\"mode\":\"match\"}}");
    }

    /// A history entry carrying `body` (the stored one, or that cut down by `_summary`).
    pub fn history_entry_with(&mut self, base: &str, e: &HistoryEntry, body: &str) {
        let r = &e.resource;
        let url = if e.method == "POST" {
            r.res_type.clone()
        } else {
            format!("{}/{}", r.res_type, r.id)
        };
        let status = match (e.method.as_str(), r.deleted) {
            (_, true) => "204 No Content",
            ("POST", _) => "201 Created",
            _ if r.version == 1 => "201 Created",
            _ => "200 OK",
        };
        let fields = json!({
            "fullUrl": full_url(base, r),
            "request": {"method": e.method, "url": url},
            "response": {
                "status": status,
                "etag": r.etag(),
                "lastModified": smr_fhir::datetime::format_instant(r.last_updated),
            },
        });
        self.entry(fields, if r.deleted { None } else { Some(body) });
    }

    pub fn finish(mut self) -> String {
        if self.entries > 0 {
            self.text.push(']');
        }
        self.text.push('}');
        self.text
    }
}

pub fn full_url(base: &str, r: &StoredResource) -> String {
    format!("{base}/{}/{}", r.res_type, r.id)
}

pub fn now_micros() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_valid_json_with_and_without_entries() {
        let empty = BundleWriter::new(
            "searchset",
            Some(0),
            &[("self", "http://x/fhir/Patient".into())],
        )
        .finish();
        let v: Value = serde_json::from_str(&empty).unwrap_or_default();
        assert_eq!(v["total"], 0);
        assert!(v.get("entry").is_none());

        let mut w = BundleWriter::new("searchset", None, &[]);
        let r = StoredResource {
            res_type: "Patient".into(),
            id: "p".into(),
            version: 1,
            last_updated: 0,
            deleted: false,
            body: r#"{"resourceType":"Patient","id":"p"}"#.into(),
            owner: "p".into(),
        };
        w.search_entry("http://x/fhir", &r, "match");
        w.search_entry("http://x/fhir", &r, "include");
        let v: Value = serde_json::from_str(&w.finish()).unwrap_or_default();
        assert_eq!(v["entry"][1]["resource"]["id"], "p");
        assert_eq!(v["entry"][1]["search"]["mode"], "include");
        assert_eq!(v["entry"][0]["fullUrl"], "http://x/fhir/Patient/p");
    }
}
