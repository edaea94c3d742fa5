//! Consent resources as the patient's choices in sentences: which kinds of medicines are
//! withheld from whom.

use serde_json::{Value, json};

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

/// The identifier system of the Consent the web app keeps for a patient's choices (one per
/// patient, its value the Patient id), so saving the form updates it rather than adding more.
pub const WEB_CONSENT_SYSTEM: &str = "https://fhir.smr.nhs.uk/Id/web-app-consent";
const CARE_SETTING_SYSTEM: &str = "https://fhir.smr.nhs.uk/CodeSystem/care-setting";
const ACT_CODE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

/// The kinds of sensitive medicines a patient may withhold (`smr-access` sensitivity labels).
pub const CATEGORIES: [(&str, &str); 4] = [
    ("HIV", "HIV medicines"),
    ("PSY", "Mental health medicines"),
    ("ETH", "Substance misuse medicines"),
    ("SEX", "Sexual health medicines"),
];
/// The care settings they may be withheld from (never the patient's own GP practice here:
/// the GP holds the record; withholding from a named organisation is done with the practice).
pub const SETTINGS: [(&str, &str); 4] = [
    ("community-pharmacy", "pharmacies"),
    ("hospital", "hospitals"),
    ("community", "community health teams"),
    ("care-home", "care homes"),
];

/// One checkbox of the consent form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentOption {
    /// `LABEL:setting`, what the form posts.
    pub value: String,
    pub category: &'static str,
    pub setting: &'static str,
    pub checked: bool,
}

/// Whether a Consent is the one the web app keeps for this patient.
pub fn is_web_consent(consent: &Value) -> bool {
    items(consent, "/identifier")
        .iter()
        .any(|i| text(i, "/system").as_deref() == Some(WEB_CONSENT_SYSTEM))
}

/// The (label, setting) pairs the web app's Consent withholds.
pub fn web_choices(consent: &Value) -> Vec<(String, String)> {
    if text(consent, "/status").as_deref() != Some("active") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for p in items(consent, "/provision/provision") {
        if text(p, "/type").as_deref() != Some("deny") {
            continue;
        }
        for label in items(p, "/securityLabel")
            .iter()
            .filter_map(|l| text(l, "/code"))
        {
            for actor in items(p, "/actor")
                .iter()
                .filter_map(|a| text(a, "/reference/identifier/value"))
            {
                out.push((label.clone(), actor));
            }
        }
    }
    out
}

/// The form's checkboxes, ticked where `current` withholds.
pub fn options(current: &[(String, String)]) -> Vec<ConsentOption> {
    let mut out = Vec::new();
    for (label, category) in CATEGORIES {
        for (setting, setting_words) in SETTINGS {
            out.push(ConsentOption {
                value: format!("{label}:{setting}"),
                category,
                setting: setting_words,
                checked: current.iter().any(|(l, s)| l == label && s == setting),
            });
        }
    }
    out
}

/// The choices among posted `LABEL:setting` values that the form offers (others ignored).
pub fn parse_choices<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = values
        .into_iter()
        .filter_map(|v| v.split_once(':'))
        .filter(|(l, s)| {
            CATEGORIES.iter().any(|(c, _)| c == l) && SETTINGS.iter().any(|(x, _)| x == s)
        })
        .map(|(l, s)| (l.to_owned(), s.to_owned()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The Consent recording `choices` for `patient_id` (inactive when nothing is withheld), in
/// the shape `smr-access::consent` reads: one deny provision per (label, setting).
pub fn consent_resource(
    patient_id: &str,
    id: Option<&str>,
    choices: &[(String, String)],
    now: &str,
) -> Value {
    let provisions: Vec<Value> = choices
        .iter()
        .map(|(label, setting)| {
            json!({
                "type": "deny",
                "actor": [{
                    "role": {"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                        "code": "IRCP"}],
                        "text": setting},
                    "reference": {"identifier": {"system": CARE_SETTING_SYSTEM, "value": setting}}
                }],
                "securityLabel": [{"system": ACT_CODE_SYSTEM, "code": label}]
            })
        })
        .collect();
    let mut consent = json!({
        "resourceType": "Consent",
        "identifier": [{"system": WEB_CONSENT_SYSTEM, "value": patient_id}],
        "status": if choices.is_empty() { "inactive" } else { "active" },
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{patient_id}")},
        "dateTime": now,
        "provision": {"type": "permit"}
    });
    if !provisions.is_empty() {
        consent["provision"]["provision"] = Value::Array(provisions);
    }
    if let Some(id) = id {
        consent["id"] = json!(id);
    }
    consent
}

#[cfg(test)]
mod form_tests {
    use super::*;

    #[test]
    fn choices_round_trip_through_the_resource() {
        let choices = parse_choices(["PSY:community-pharmacy", "XXX:hospital", "HIV:nowhere"]);
        assert_eq!(
            choices,
            [("PSY".to_owned(), "community-pharmacy".to_owned())]
        );
        let c = consent_resource("p1", None, &choices, "2026-12-07T12:00:00Z");
        assert!(is_web_consent(&c));
        assert_eq!(web_choices(&c), choices);
        assert!(options(&choices).iter().filter(|o| o.checked).count() == 1);
        let none = consent_resource("p1", Some("c1"), &[], "2026-12-07T12:00:00Z");
        assert_eq!(none["status"], "inactive");
        assert!(web_choices(&none).is_empty());
    }
}
