//! Patients' consent choices, read from R4 `Consent` resources into restrictions the store
//! can apply as a predicate.
//!
//! SMR reads two kinds of Consent:
//!
//! - **Privacy** (`scope` = `patient-privacy`): `deny` provisions (top level, or nested in a
//!   `permit`) withhold entries carrying the provision's `securityLabel`s (HL7 v3 ActCode
//!   `HIV`, `PSY`, `ETH`, `STD`, `SEX`, or any label a client set) from the provision's
//!   actors. An actor is an organisation (`Organization/{id}` or an ODS identifier) or a
//!   care setting (an identifier in [`CARE_SETTING_SYSTEM`], e.g. `community-pharmacy`).
//!   A deny without actors applies to everyone but the patient; one without labels withholds
//!   every entry of the record from those actors.
//! - **Research** (`scope` = `research`) with a top-level `deny`: the patient has opted out of
//!   secondary use; analytics and de-identified exports leave them out.
//!
//! Only `active` Consents within their `provision.period` count. A Consent SMR cannot read
//! (no scope, an unknown provision type) is rejected at write time rather than treated as
//! "no restriction".

use serde_json::Value;
use smr_fhir::datetime;

use crate::care::org_keys;

/// SMR's code system for care settings, used to name a setting as a Consent actor.
pub const CARE_SETTING_SYSTEM: &str = "https://fhir.smr.nhs.uk/CodeSystem/care-setting";
/// `Consent.scope` codes (http://terminology.hl7.org/CodeSystem/consentscope).
pub const CONSENT_SCOPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/consentscope";

/// A restriction's label when it withholds every entry.
pub const ALL_LABELS: &str = "*";
/// A restriction's actor when it applies to everyone but the patient.
pub const ANY_ACTOR: &str = "*";
/// The actor of a secondary-use (research) opt-out.
pub const RESEARCH_ACTOR: &str = "purpose:research";

/// One (label, actor) pair a patient withholds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Restriction {
    /// A security label code, or [`ALL_LABELS`].
    pub label: String,
    /// `Organization/{id}`, `ods:{CODE}`, `setting:{name}`, [`ANY_ACTOR`] or
    /// [`RESEARCH_ACTOR`].
    pub actor: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentError {
    #[error("Consent.scope must be patient-privacy or research for SMR to apply it")]
    UnknownScope,
    #[error("Consent.provision.type must be permit or deny, got '{0}'")]
    UnknownProvisionType(String),
    #[error("a Consent.provision.actor must name an Organization or a care setting: {0}")]
    UnreadableActor(String),
}

/// The restrictions `consent` imposes at `now` (microseconds). An inactive or expired
/// Consent imposes none.
pub fn restrictions(consent: &Value, now: i64) -> Result<Vec<Restriction>, ConsentError> {
    let scope = scope_code(consent).ok_or(ConsentError::UnknownScope)?;
    if !matches!(scope, "patient-privacy" | "research") {
        return Err(ConsentError::UnknownScope);
    }
    let Some(provision) = consent.get("provision") else {
        return Ok(Vec::new());
    };
    check_provision_types(provision)?;
    if consent.get("status").and_then(Value::as_str) != Some("active") || !in_period(provision, now)
    {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    if scope == "research" {
        if provision_type(provision) == Some("deny") {
            out.push(Restriction {
                label: ALL_LABELS.into(),
                actor: RESEARCH_ACTOR.into(),
            });
        }
        return Ok(out);
    }
    collect_denials(provision, now, &mut out)?;
    out.sort();
    out.dedup();
    Ok(out)
}

fn scope_code(consent: &Value) -> Option<&str> {
    consent
        .pointer("/scope/coding")?
        .as_array()?
        .iter()
        .filter(|c| {
            c.get("system")
                .and_then(Value::as_str)
                .is_none_or(|s| s == CONSENT_SCOPE_SYSTEM)
        })
        .find_map(|c| c.get("code").and_then(Value::as_str))
}

fn provision_type(provision: &Value) -> Option<&str> {
    provision.get("type").and_then(Value::as_str)
}

fn nested(provision: &Value) -> impl Iterator<Item = &Value> {
    provision
        .get("provision")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn check_provision_types(provision: &Value) -> Result<(), ConsentError> {
    match provision_type(provision) {
        None | Some("permit") | Some("deny") => {}
        Some(other) => return Err(ConsentError::UnknownProvisionType(other.into())),
    }
    nested(provision).try_for_each(check_provision_types)
}

fn in_period(provision: &Value, now: i64) -> bool {
    let Some(period) = provision.get("period") else {
        return true;
    };
    let bound = |key: &str| {
        period
            .get(key)
            .and_then(Value::as_str)
            .and_then(|t| datetime::parse_range(t).ok())
    };
    bound("start").is_none_or(|(low, _)| low <= now)
        && bound("end").is_none_or(|(_, high)| now < high)
}

fn collect_denials(
    provision: &Value,
    now: i64,
    out: &mut Vec<Restriction>,
) -> Result<(), ConsentError> {
    if provision_type(provision) == Some("deny") && in_period(provision, now) {
        let labels: Vec<String> = provision
            .get("securityLabel")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("code").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        let labels = if labels.is_empty() {
            vec![ALL_LABELS.to_owned()]
        } else {
            labels
        };
        let actors = actors(provision)?;
        for label in &labels {
            for actor in &actors {
                out.push(Restriction {
                    label: label.clone(),
                    actor: actor.clone(),
                });
            }
        }
    }
    for child in nested(provision) {
        collect_denials(child, now, out)?;
    }
    Ok(())
}

fn actors(provision: &Value) -> Result<Vec<String>, ConsentError> {
    let mut out = Vec::new();
    for actor in provision
        .get("actor")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(reference) = actor.get("reference") else {
            continue;
        };
        let mut keys = org_keys(reference);
        if let Some(identifier) = reference.get("identifier")
            && identifier.get("system").and_then(Value::as_str) == Some(CARE_SETTING_SYSTEM)
            && let Some(setting) = identifier
                .get("value")
                .and_then(Value::as_str)
                .and_then(crate::CareSetting::parse)
        {
            keys.push(setting.consent_key());
        }
        if keys.is_empty() {
            return Err(ConsentError::UnreadableActor(reference.to_string()));
        }
        out.extend(keys);
    }
    if out.is_empty() {
        out.push(ANY_ACTOR.to_owned());
    }
    Ok(out)
}

/// The labels on a resource (`meta.security` codes).
pub fn security_labels(resource: &Value) -> impl Iterator<Item = &str> {
    resource
        .pointer("/meta/security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("code").and_then(Value::as_str))
}

/// Whether `resource` is withheld by any of `restrictions` (already narrowed to the caller's
/// actors): a restriction of every label withholds everything in the compartment.
pub fn is_withheld(resource: &Value, withheld_labels: &[String]) -> bool {
    if withheld_labels.is_empty() {
        return false;
    }
    if withheld_labels.iter().any(|l| l == ALL_LABELS) {
        return resource.get("resourceType").and_then(Value::as_str) != Some("Patient");
    }
    security_labels(resource).any(|code| withheld_labels.iter().any(|l| l == code))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn privacy(provision: Value) -> Value {
        json!({"resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": CONSENT_SCOPE_SYSTEM, "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "provision": provision})
    }

    #[test]
    fn nested_deny_of_a_label_to_an_organisation_and_a_setting() {
        let c = privacy(json!({"type": "permit", "provision": [{"type": "deny",
            "actor": [
                {"role": {"text": "pharmacy"}, "reference": {"identifier": {
                    "system": CARE_SETTING_SYSTEM, "value": "community-pharmacy"}}},
                {"role": {"text": "hospital"}, "reference": {"reference": "Organization/h1"}}],
            "securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                               "code": "PSY"}]}]}));
        let r = restrictions(&c, 0).unwrap_or_default();
        let pairs: Vec<_> = r
            .iter()
            .map(|r| (r.label.as_str(), r.actor.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("PSY", "Organization/h1"),
                ("PSY", "setting:community-pharmacy")
            ]
        );
    }

    #[test]
    fn deny_without_actor_or_label_is_everyone_and_everything() {
        let c = privacy(json!({"type": "deny"}));
        let r = restrictions(&c, 0).unwrap_or_default();
        assert_eq!(
            r,
            [Restriction {
                label: "*".into(),
                actor: "*".into()
            }]
        );
    }

    #[test]
    fn inactive_or_expired_consent_restricts_nothing() {
        let mut c = privacy(json!({"type": "deny"}));
        c["status"] = json!("inactive");
        assert_eq!(restrictions(&c, 0), Ok(vec![]));
        let c = privacy(json!({"type": "deny", "period": {"end": "2020-01-01"}}));
        let now = datetime::parse_range("2026-01-01")
            .map(|r| r.0)
            .unwrap_or_default();
        assert_eq!(restrictions(&c, now), Ok(vec![]));
    }

    #[test]
    fn research_opt_out() {
        let c = json!({"resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": CONSENT_SCOPE_SYSTEM, "code": "research"}]},
            "provision": {"type": "deny"}});
        let r = restrictions(&c, 0).unwrap_or_default();
        assert_eq!(r[0].actor, RESEARCH_ACTOR);
    }

    #[test]
    fn unreadable_consents_are_errors_not_silence() {
        let c =
            json!({"resourceType": "Consent", "status": "active", "provision": {"type": "deny"}});
        assert_eq!(restrictions(&c, 0), Err(ConsentError::UnknownScope));
        let c = privacy(json!({"type": "maybe"}));
        assert!(matches!(
            restrictions(&c, 0),
            Err(ConsentError::UnknownProvisionType(_))
        ));
        let c = privacy(json!({"type": "deny", "actor": [{"reference": {"display": "Dr X"}}]}));
        assert!(matches!(
            restrictions(&c, 0),
            Err(ConsentError::UnreadableActor(_))
        ));
    }

    #[test]
    fn withheld_entries_by_label() {
        let psy = json!({"resourceType": "MedicationRequest",
            "meta": {"security": [{"code": "PSY"}]}});
        let plain = json!({"resourceType": "MedicationRequest"});
        let labels = vec!["PSY".to_owned()];
        assert!(is_withheld(&psy, &labels));
        assert!(!is_withheld(&plain, &labels));
        let all = vec!["*".to_owned()];
        assert!(is_withheld(&plain, &all));
        assert!(!is_withheld(&json!({"resourceType": "Patient"}), &all));
    }
}
