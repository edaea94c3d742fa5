//! R4 `Subscription` read into what SMR needs to run it (FHIR R4 subscription.html).
//!
//! SMR runs only subscriptions on one patient's record: the criteria is a search on a
//! patient-compartment type that names exactly one patient (`MedicationRequest?patient=123`,
//! `DetectedIssue?patient=Patient/123`, `Observation?subject=Patient/123&code=…`), so who may
//! subscribe is who may read that patient. Channels: `rest-hook` (a POST to an endpoint, empty
//! or with the resource) and `websocket` (the R4 `bind`/`bound`/`ping` binding). Everything
//! else is refused here with an issue naming the element, before anything is stored.

use serde_json::Value;

use crate::outcome::{Issue, IssueCode};
use crate::query::{self, Handling, SearchRequest, Test};
use crate::resource_types;

/// How a notification reaches the subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    RestHook {
        endpoint: String,
        /// The resource is sent as the body (`payload` names a FHIR JSON type); otherwise the
        /// POST is empty (R4: "no payload" means a ping).
        full_payload: bool,
        /// `channel.header`: `Name: value` pairs sent with every notification.
        headers: Vec<(String, String)>,
    },
    Websocket,
}

/// The `status` values R4 defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Requested,
    Active,
    Error,
    Off,
}

impl Status {
    fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "requested" => Status::Requested,
            "active" => Status::Active,
            "error" => Status::Error,
            "off" => Status::Off,
            _ => return None,
        })
    }
}

/// A Subscription SMR can run.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionSpec {
    pub status: Status,
    /// The criteria as a search (the resource type is `search.resource_type`).
    pub search: SearchRequest,
    /// The one patient the criteria names (a Patient id).
    pub patient: String,
    pub channel: Channel,
}

/// Resource types whose changes can be subscribed to: those in a patient's record.
fn subscribable(res_type: &str) -> bool {
    res_type != "Patient" && resource_types::patient_compartment_params(res_type).is_some()
}

/// Reads a Subscription resource. Errors name the element (`Subscription.criteria`, …).
pub fn read(resource: &Value) -> Result<SubscriptionSpec, Issue> {
    let invalid = |path: &str, message: String| {
        Issue::error(IssueCode::BusinessRule, message).at(format!("Subscription.{path}"))
    };
    let status_text = resource
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("status", "a Subscription needs a status".into()))?;
    let status = Status::parse(status_text)
        .ok_or_else(|| invalid("status", format!("unknown status '{status_text}'")))?;
    let criteria = resource
        .get("criteria")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("criteria", "a Subscription needs criteria".into()))?;
    let (search, patient) = read_criteria(criteria).map_err(|m| invalid("criteria", m))?;
    let channel = resource
        .get("channel")
        .ok_or_else(|| invalid("channel", "a Subscription needs a channel".into()))?;
    let channel = read_channel(channel).map_err(|(path, m)| invalid(&path, m))?;
    Ok(SubscriptionSpec {
        status,
        search,
        patient,
        channel,
    })
}

/// `Type?query` → the search and the one patient it names.
pub fn read_criteria(criteria: &str) -> Result<(SearchRequest, String), String> {
    let (res_type, query_text) = criteria.split_once('?').ok_or_else(|| {
        format!("criteria '{criteria}' must be a search on one patient, e.g. MedicationRequest?patient=123")
    })?;
    let res_type = res_type.trim_start_matches('/');
    if !subscribable(res_type) {
        return Err(format!(
            "SMR runs subscriptions on resources of a patient's record; '{res_type}' is not one"
        ));
    }
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query_text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if pairs.iter().any(|(k, _)| {
        matches!(
            k.as_str(),
            "_include" | "_revinclude" | "_sort" | "_count" | "_summary" | "_elements" | "_total"
        )
    }) {
        return Err("criteria may only filter (no _include, _sort, _count, _summary)".into());
    }
    let parsed = query::parse(res_type, &pairs, Handling::Strict).map_err(|issues| {
        issues
            .iter()
            .map(|i| i.diagnostics.clone())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let patient = the_patient(&parsed.request).ok_or_else(|| {
        format!(
            "criteria must name exactly one patient (e.g. {res_type}?patient=Patient/123), so \
             that who may subscribe is who may read that patient"
        )
    })?;
    Ok((parsed.request, patient))
}

/// The search parameters by which a criteria names its patient.
pub const PATIENT_PARAMS: &[&str] = &["patient", "subject"];

/// The one patient a criteria's `patient`/`subject` reference names. `subject` may name other
/// kinds (a Group, a Device), so it must say `Patient/…`; every `patient`/`subject` criterion
/// must name the same one patient.
fn the_patient(search: &SearchRequest) -> Option<String> {
    let mut named: Vec<&str> = Vec::new();
    for criterion in &search.criteria {
        if !PATIENT_PARAMS.contains(&criterion.param.as_str()) {
            continue;
        }
        let Test::Reference(values) = &criterion.test else {
            return None;
        };
        let [value] = values.as_slice() else {
            return None;
        };
        match value.target_type.as_deref() {
            Some("Patient") => {}
            None if criterion.param == "patient" => {}
            _ => return None,
        }
        named.push(&value.target_id);
    }
    match named.as_slice() {
        [first, rest @ ..] if rest.iter().all(|p| p == first) => Some((*first).to_owned()),
        _ => None,
    }
}

fn read_channel(channel: &Value) -> Result<Channel, (String, String)> {
    let kind = channel.get("type").and_then(Value::as_str).ok_or_else(|| {
        (
            "channel.type".to_owned(),
            "a channel needs a type".to_owned(),
        )
    })?;
    match kind {
        "rest-hook" => {
            let endpoint = channel
                .get("endpoint")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    (
                        "channel.endpoint".to_owned(),
                        "a rest-hook channel needs an endpoint".to_owned(),
                    )
                })?;
            if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
                return Err((
                    "channel.endpoint".into(),
                    format!("endpoint '{endpoint}' is not an http(s) URL"),
                ));
            }
            let full_payload = match channel.get("payload").and_then(Value::as_str) {
                None | Some("") => false,
                Some("application/fhir+json" | "application/json" | "application/json+fhir") => {
                    true
                }
                Some(other) => {
                    return Err((
                        "channel.payload".into(),
                        format!(
                            "payload '{other}' is not supported: use application/fhir+json or none"
                        ),
                    ));
                }
            };
            let mut headers = Vec::new();
            for header in channel
                .get("header")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let text = header.as_str().unwrap_or_default();
                let (name, value) = text
                    .split_once(':')
                    .filter(|(n, _)| valid_header_name(n.trim()))
                    .ok_or_else(|| {
                        (
                            "channel.header".to_owned(),
                            format!("header '{text}' is not 'Name: value'"),
                        )
                    })?;
                let name = name.trim();
                if reserved_header(name) {
                    return Err((
                        "channel.header".into(),
                        format!("header '{name}' is set by SMR and cannot be given"),
                    ));
                }
                if value.chars().any(|c| c == '\r' || c == '\n') {
                    return Err((
                        "channel.header".into(),
                        "a header value may not contain line breaks".into(),
                    ));
                }
                headers.push((name.to_owned(), value.trim().to_owned()));
            }
            Ok(Channel::RestHook {
                endpoint: endpoint.to_owned(),
                full_payload,
                headers,
            })
        }
        "websocket" => Ok(Channel::Websocket),
        other => Err((
            "channel.type".into(),
            format!("channel type '{other}' is not supported by SMR: use rest-hook or websocket"),
        )),
    }
}

fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Headers SMR sets itself on a notification; a subscriber may not replace them.
fn reserved_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("x-smr-")
        || matches!(
            lower.as_str(),
            "content-type" | "content-length" | "host" | "transfer-encoding" | "connection"
        )
}

/// Whether `endpoint` is under one of `allowed` (URL prefixes). A prefix matches only at a
/// boundary: `https://hooks.example.nhs.uk` admits `https://hooks.example.nhs.uk/a` but not
/// `https://hooks.example.nhs.uk.evil.example/`, and no endpoint with user information.
pub fn endpoint_allowed(endpoint: &str, allowed: &[String]) -> bool {
    let Some((_, rest)) = endpoint.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    allowed.iter().any(|prefix| {
        let prefix = prefix.trim();
        if prefix.is_empty() {
            return false;
        }
        endpoint.strip_prefix(prefix).is_some_and(|after| {
            prefix.ends_with('/') || after.is_empty() || after.starts_with(['/', '?'])
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hook(criteria: &str) -> Value {
        json!({
            "resourceType": "Subscription",
            "status": "requested",
            "reason": "test",
            "criteria": criteria,
            "channel": {"type": "rest-hook", "endpoint": "https://hooks.example/a", "payload": "application/fhir+json",
                        "header": ["Authorization: Bearer abc"]}
        })
    }

    #[test]
    fn reads_a_rest_hook_on_one_patient() {
        let spec = read(&hook("MedicationRequest?patient=Patient/123")).unwrap();
        assert_eq!(spec.patient, "123");
        assert_eq!(spec.search.resource_type, "MedicationRequest");
        assert_eq!(spec.status, Status::Requested);
        assert_eq!(
            spec.channel,
            Channel::RestHook {
                endpoint: "https://hooks.example/a".into(),
                full_payload: true,
                headers: vec![("Authorization".into(), "Bearer abc".into())],
            }
        );
        let spec = read(&hook("DetectedIssue?patient=123")).unwrap();
        assert_eq!(spec.patient, "123");
        let spec = read(&hook(
            "Observation?subject=Patient/9&code=http://loinc.org|1-8",
        ))
        .unwrap();
        assert_eq!(spec.patient, "9");
        let spec = read(&hook("MedicationRequest?subject=Patient/7&patient=7")).unwrap();
        assert_eq!(spec.patient, "7");
    }

    #[test]
    fn refuses_criteria_without_exactly_one_patient() {
        for bad in [
            "MedicationRequest",
            "MedicationRequest?status=active",
            "MedicationRequest?patient=1,2",
            "MedicationRequest?patient=1&patient=2",
            "Patient?_id=1",
            "Organization?name=x",
            "MedicationRequest?patient=1&_include=MedicationRequest:medication",
            "MedicationRequest?nonsense=1&patient=1",
            "Observation?subject=Group/1",
            "Observation?subject=1",
            "Observation?performer=Patient/1",
        ] {
            let err = read(&hook(bad)).unwrap_err();
            assert_eq!(
                err.expression.as_deref(),
                Some("Subscription.criteria"),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_unsupported_channels_and_headers() {
        let mut r = hook("MedicationRequest?patient=1");
        r["channel"]["type"] = json!("email");
        assert!(read(&r).is_err());
        let mut r = hook("MedicationRequest?patient=1");
        r["channel"]["header"] = json!(["X-SMR-Signature: forged"]);
        assert!(read(&r).is_err());
        let mut r = hook("MedicationRequest?patient=1");
        r["channel"]["endpoint"] = json!("ftp://x");
        assert!(read(&r).is_err());
        let mut r = hook("MedicationRequest?patient=1");
        r["channel"]["payload"] = json!("application/fhir+xml");
        assert!(read(&r).is_err());
        let ws = json!({"resourceType": "Subscription", "status": "requested", "criteria": "MedicationRequest?patient=1",
                        "channel": {"type": "websocket"}});
        assert_eq!(read(&ws).unwrap().channel, Channel::Websocket);
    }

    #[test]
    fn endpoints_match_the_allow_list_at_a_boundary() {
        let allowed = vec![
            "https://hooks.example.nhs.uk".to_owned(),
            "http://127.0.0.1:9000/in/".to_owned(),
        ];
        assert!(endpoint_allowed(
            "https://hooks.example.nhs.uk/a/b",
            &allowed
        ));
        assert!(endpoint_allowed("https://hooks.example.nhs.uk", &allowed));
        assert!(endpoint_allowed("http://127.0.0.1:9000/in/x", &allowed));
        assert!(!endpoint_allowed(
            "https://hooks.example.nhs.uk.evil.example/",
            &allowed
        ));
        assert!(!endpoint_allowed(
            "https://hooks.example.nhs.uk@evil.example/",
            &allowed
        ));
        assert!(!endpoint_allowed("http://127.0.0.1:9000/other", &allowed));
        assert!(!endpoint_allowed("https://elsewhere.example/", &allowed));
        assert!(!endpoint_allowed("https://hooks.example.nhs.uk/", &[]));
    }
}
