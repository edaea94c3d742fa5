//! Consent resources as the patient's choices in sentences: which kinds of medicines are
//! withheld from whom.

use serde_json::Value;

use crate::json::{concept, items, text};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentChoice {
    pub status: String,
    pub date: Option<String>,
    /// One sentence per rule ("Mental health medicines are withheld from community pharmacy").
    pub rules: Vec<String>,
}

impl ConsentChoice {
    pub fn from_resource(consent: &Value) -> Self {
        let mut rules = Vec::new();
        if let Some(provision) = consent.get("provision") {
            collect_rules(provision, &mut rules);
        }
        if rules.is_empty() {
            rules.push("No medicines are withheld by this consent.".to_owned());
        }
        ConsentChoice {
            status: text(consent, "/status").unwrap_or_else(|| "unknown".to_owned()),
            date: text(consent, "/dateTime"),
            rules,
        }
    }

    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

fn collect_rules(provision: &Value, out: &mut Vec<String>) {
    if text(provision, "/type").as_deref() == Some("deny") {
        let labels: Vec<String> = items(provision, "/securityLabel")
            .iter()
            .map(|l| label_words(text(l, "/code").as_deref().unwrap_or("")).to_owned())
            .collect();
        let actors: Vec<String> = items(provision, "/actor")
            .iter()
            .filter_map(|a| {
                a.get("role")
                    .and_then(concept)
                    .or_else(|| text(a, "/reference/identifier/value"))
                    .or_else(|| text(a, "/reference/display"))
            })
            .collect();
        let what = if labels.is_empty() {
            "All medicines".to_owned()
        } else {
            labels.join(", ")
        };
        let whom = if actors.is_empty() {
            "everyone".to_owned()
        } else {
            actors.join(", ")
        };
        out.push(format!("{what} withheld from {whom}"));
    }
    for nested in items(provision, "/provision") {
        collect_rules(nested, out);
    }
}

/// The sensitivity labels of `smr-access::sensitivity` in words.
fn label_words(code: &str) -> &'static str {
    match code {
        "HIV" => "HIV medicines",
        "PSY" => "Mental health medicines",
        "SUD" | "ETH" => "Substance misuse medicines",
        "SEX" | "STD" | "SDV" => "Sexual health medicines",
        "" => "Medicines",
        _ => "Sensitive medicines",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_deny_provision_reads_as_a_sentence() {
        let c = json!({"resourceType": "Consent", "status": "active", "provision": {
            "type": "permit", "provision": [{"type": "deny",
                "actor": [{"role": {"text": "community pharmacy"}}],
                "securityLabel": [{"code": "PSY"}]}]}});
        let v = ConsentChoice::from_resource(&c);
        assert!(v.is_active());
        assert_eq!(
            v.rules,
            ["Mental health medicines withheld from community pharmacy"]
        );
    }
}
