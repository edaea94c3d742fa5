//! The CDS Hooks services SMR offers, reading their requests, and feedback as AuditEvents.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::cards::{Card, SMR_SYSTEM_BASE, assess_order, card};
use crate::genotype::{
    self, BundleError, GeneResult, LOINC, LOINC_GENOTYPE, LOINC_PHENOTYPE, UnreadableResults,
};
use crate::view::ObservationBundleView;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    OrderSelect,
    OrderSign,
    PatientView,
}

impl Hook {
    pub fn name(self) -> &'static str {
        match self {
            Hook::OrderSelect => "order-select",
            Hook::OrderSign => "order-sign",
            Hook::PatientView => "patient-view",
        }
    }
}

pub struct Service {
    pub id: &'static str,
    pub hook: Hook,
    pub title: &'static str,
    pub description: &'static str,
}

pub const SERVICES: &[Service] = &[
    Service {
        id: "smr-pgx-order-select",
        hook: Hook::OrderSelect,
        title: "SMR pharmacogenomics: medicine being chosen",
        description: "Checks the selected draft medication orders against the patient's pharmacogenomic results \
                      (CPIC/DPWG guidance) and suggests an alternative or a dose adjustment.",
    },
    Service {
        id: "smr-pgx-order-sign",
        hook: Hook::OrderSign,
        title: "SMR pharmacogenomics: orders being signed",
        description: "Checks every draft medication order against the patient's pharmacogenomic results before signing.",
    },
    Service {
        id: "smr-pgx-patient-view",
        hook: Hook::PatientView,
        title: "SMR pharmacogenomics: open issues",
        description: "Shows the patient's open pharmacogenomic DetectedIssues: current medicines affected by a genotype \
                      result recorded after they were started.",
    },
];

pub fn service(id: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.id == id)
}

/// The search (relative to the FHIR base) that fetches the results SMR reads.
pub fn genotype_query(patient_id: &str) -> String {
    format!(
        "Observation?patient={patient_id}&code={LOINC}|{LOINC_GENOTYPE},{LOINC}|{LOINC_PHENOTYPE}"
    )
}

pub fn medications_query(patient_id: &str) -> String {
    format!("MedicationRequest?patient={patient_id}&status=active")
}

pub fn issues_query(patient_id: &str) -> String {
    format!(
        "DetectedIssue?patient={patient_id}&code={}|{}",
        crate::issue::ACT_CODE_SYSTEM,
        crate::issue::GENETIC_ALERT
    )
}

fn prefetch_templates(hook: Hook) -> Value {
    let p = "{{context.patientId}}";
    let mut t = json!({"patient": format!("Patient/{p}"), "genotypes": genotype_query(p)});
    if hook == Hook::PatientView {
        t["medications"] = json!(medications_query(p));
        t["issues"] = json!(issues_query(p));
    }
    t
}

/// `GET /cds-services`.
pub fn discovery() -> Value {
    let services: Vec<Value> = SERVICES
        .iter()
        .map(|s| {
            json!({
                "hook": s.hook.name(),
                "id": s.id,
                "title": s.title,
                "description": s.description,
                "prefetch": prefetch_templates(s.hook),
            })
        })
        .collect();
    json!({"services": services})
}

/// What is wrong with a CDS Hooks request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("the request body must be a JSON object")]
    NotObject,
    #[error("'{0}' is required")]
    Missing(&'static str),
    #[error("this service answers the '{expected}' hook, not '{got}'")]
    WrongHook { expected: &'static str, got: String },
    #[error("{0}")]
    Invalid(String),
}

/// The request as sent, read in one pass: only `context` (small) becomes a `Value`; the
/// genotypes prefetch is read straight into [`ObservationView`]s (see [`crate::view`] for
/// why). Any element of the wrong type anywhere fails this reading, and the request is then
/// read again by [`RequestDoc`], which isolates the fault.
///
/// [`ObservationView`]: crate::view::ObservationView
#[derive(Deserialize)]
struct FastRequestDoc<'a> {
    #[serde(borrow, default)]
    hook: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "hookInstance")]
    hook_instance: Option<Cow<'a, str>>,
    #[serde(default)]
    context: Option<Value>,
    #[serde(borrow, default)]
    prefetch: Option<FastPrefetchDoc<'a>>,
}

/// The prefetch items SMR's services read; others (e.g. `patient`) are skipped unread.
#[derive(Deserialize)]
struct FastPrefetchDoc<'a> {
    #[serde(borrow, default)]
    genotypes: Option<ObservationBundleView<'a>>,
    #[serde(borrow, default)]
    issues: Option<&'a RawValue>,
}

/// The request as sent, each prefetch item kept as raw JSON text so that a fault in one
/// is reported against it (the slow path, for requests [`FastRequestDoc`] cannot read).
#[derive(Deserialize)]
struct RequestDoc<'a> {
    #[serde(borrow, default)]
    hook: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "hookInstance")]
    hook_instance: Option<Cow<'a, str>>,
    #[serde(default)]
    context: Option<Value>,
    #[serde(borrow, default)]
    prefetch: Option<BTreeMap<Cow<'a, str>, &'a RawValue>>,
}

/// The genotypes prefetch, read: usable results and the entries that could not be read.
pub type PrefetchedResults = Result<(Vec<GeneResult>, UnreadableResults), BundleError>;

/// The parts of a request SMR uses.
#[derive(Debug)]
pub struct HookRequest<'a> {
    pub patient_id: String,
    pub context: Value,
    /// `prefetch.genotypes`, when the client supplied it (`null` means it could not).
    pub genotypes: Option<PrefetchedResults>,
    /// `prefetch.issues` as JSON text, when supplied.
    pub issues: Option<&'a RawValue>,
}

fn json_error(body: &[u8], e: serde_json::Error) -> RequestError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => RequestError::Json(e.to_string()),
        Category::Data if !body.trim_ascii_start().starts_with(b"{") => RequestError::NotObject,
        Category::Data => {
            RequestError::Invalid(format!("request does not match CDS Hooks 2.0: {e}"))
        }
    }
}

/// Reads a hook request from the body as sent.
pub fn parse_request<'a>(
    service: &Service,
    body: &'a [u8],
) -> Result<HookRequest<'a>, RequestError> {
    // UTF-8 is checked once for the whole body, so the parser need not check every string.
    let text = std::str::from_utf8(body)
        .map_err(|e| RequestError::Json(format!("the body is not UTF-8: {e}")))?;
    if let Ok(doc) = serde_json::from_str::<FastRequestDoc<'a>>(text) {
        let (patient_id, context) =
            check_request(service, doc.hook, doc.hook_instance, doc.context)?;
        let (genotypes, issues) = match doc.prefetch {
            Some(p) => (
                p.genotypes.as_ref().map(genotype::results_from_bundle_view),
                p.issues.filter(|v| v.get() != "null"),
            ),
            None => (None, None),
        };
        return Ok(HookRequest {
            patient_id,
            context,
            genotypes,
            issues,
        });
    }
    let doc: RequestDoc<'a> = serde_json::from_str(text).map_err(|e| json_error(body, e))?;
    let (patient_id, context) = check_request(service, doc.hook, doc.hook_instance, doc.context)?;
    let prefetch = doc.prefetch.unwrap_or_default();
    let item = |key: &str| prefetch.get(key).copied().filter(|v| v.get() != "null");
    Ok(HookRequest {
        patient_id,
        context,
        genotypes: item("genotypes").map(|raw| genotype::results_from_bundle_json(raw.get())),
        issues: item("issues"),
    })
}

/// The checks every request passes, whichever way it was read: the hook, its instance, and
/// a context with a patient id (and draft orders, for the order hooks).
fn check_request(
    service: &Service,
    hook: Option<Cow<'_, str>>,
    hook_instance: Option<Cow<'_, str>>,
    context: Option<Value>,
) -> Result<(String, Value), RequestError> {
    let hook = hook.ok_or(RequestError::Missing("hook"))?;
    if hook != service.hook.name() {
        return Err(RequestError::WrongHook {
            expected: service.hook.name(),
            got: hook.into_owned(),
        });
    }
    hook_instance.ok_or(RequestError::Missing("hookInstance"))?;
    let context = context
        .filter(Value::is_object)
        .ok_or(RequestError::Missing("context"))?;
    let patient_id = context
        .get("patientId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(RequestError::Missing("context.patientId"))?;
    // A patient id goes into searches; keep it to FHIR id syntax.
    if patient_id.len() > 64
        || !patient_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(RequestError::Invalid(format!(
            "context.patientId '{patient_id}' is not a FHIR id"
        )));
    }
    let patient_id = patient_id.to_owned();
    if service.hook != Hook::PatientView {
        let orders = context
            .get("draftOrders")
            .ok_or(RequestError::Missing("context.draftOrders"))?;
        if orders.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
            return Err(RequestError::Invalid(
                "context.draftOrders must be a FHIR Bundle".into(),
            ));
        }
    }
    Ok((patient_id, context))
}

/// The draft medication orders to check: for order-select only the `selections` (all when
/// none are given), for order-sign all of them.
pub fn orders_to_check(hook: Hook, context: &Value) -> Vec<&Value> {
    let selections: Vec<&str> = match hook {
        Hook::OrderSelect => context
            .get("selections")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect(),
        _ => Vec::new(),
    };
    context
        .pointer("/draftOrders/entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("resource"))
        .filter(|r| {
            matches!(
                r.get("resourceType").and_then(Value::as_str),
                Some("MedicationRequest")
            )
        })
        .filter(|r| {
            selections.is_empty()
                || r.get("id").and_then(Value::as_str).is_some_and(|id| {
                    selections.contains(&format!("MedicationRequest/{id}").as_str())
                })
        })
        .collect()
}

/// Cards for draft orders, most urgent first.
pub fn order_cards(orders: &[&Value], results: &[GeneResult]) -> Vec<Card> {
    let mut cards: Vec<Card> = orders
        .iter()
        .flat_map(|o| {
            assess_order(o, results)
                .into_iter()
                .map(move |f| card(&f, Some(o)))
        })
        .collect();
    cards.sort_by_key(|c| std::cmp::Reverse(c.indicator));
    cards
}

/// One CDS Hooks feedback item as an AuditEvent (see the server's documentation for why).
/// `recorded` is used when the item has no valid `outcomeTimestamp`.
pub fn feedback_audit_event(
    service_id: &str,
    item: &Value,
    recorded: &str,
) -> Result<Value, RequestError> {
    let card = item
        .get("card")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .ok_or(RequestError::Missing("feedback.card"))?;
    let outcome = item
        .get("outcome")
        .and_then(Value::as_str)
        .ok_or(RequestError::Missing("feedback.outcome"))?;
    if !matches!(outcome, "accepted" | "overridden") {
        return Err(RequestError::Invalid(format!(
            "feedback.outcome must be accepted or overridden, got '{outcome}'"
        )));
    }
    // outcomeTimestamp is required by CDS Hooks 2.0, but a client that omits it should not
    // lose the feedback: the time SMR received it is the next best thing.
    let when = item
        .get("outcomeTimestamp")
        .and_then(Value::as_str)
        .unwrap_or(recorded);
    let system = format!("{SMR_SYSTEM_BASE}/CodeSystem/cds-feedback");
    let mut details = vec![json!({"type": "outcome", "valueString": outcome})];
    if let Some(accepted) = item.get("acceptedSuggestions").and_then(Value::as_array) {
        let ids: Vec<&str> = accepted
            .iter()
            .filter_map(|s| s.get("id").and_then(Value::as_str))
            .collect();
        if !ids.is_empty() {
            details.push(json!({"type": "acceptedSuggestions", "valueString": ids.join(" ")}));
        }
    }
    if let Some(reason) = item.get("overrideReason") {
        if let Some(code) = reason.pointer("/reason/code").and_then(Value::as_str) {
            let system = reason
                .pointer("/reason/system")
                .and_then(Value::as_str)
                .unwrap_or_default();
            details
                .push(json!({"type": "overrideReason", "valueString": format!("{system}|{code}")}));
        }
        if let Some(comment) = reason
            .get("userComment")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
        {
            details.push(json!({"type": "userComment", "valueString": comment}));
        }
    }
    Ok(json!({
        "resourceType": "AuditEvent",
        "type": {"system": system, "code": "cds-hooks-feedback", "display": "CDS Hooks card feedback"},
        "subtype": [{"system": system, "code": outcome, "display": if outcome == "accepted" { "Card accepted" } else { "Card overridden" }}],
        "action": "E",
        "recorded": when,
        "outcome": "0",
        "agent": [{"type": {"text": "CDS Hooks client"}, "requestor": true}],
        "source": {"site": service_id, "observer": {"display": format!("SMR CDS Hooks service {service_id}")}},
        "entity": [{
            "what": {"identifier": {"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{card}")}},
            "name": "CDS Hooks card",
            "detail": details,
        }],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER_SELECT: &Service = &SERVICES[0];

    fn genotype(id: &str, gene: &str, value: Value) -> Value {
        json!({
            "resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": LOINC_GENOTYPE}]},
            "component": [{
                "code": {"coding": [{"system": LOINC, "code": crate::genotype::LOINC_GENE_STUDIED}]},
                "valueCodeableConcept": {"text": gene}
            }],
            "valueCodeableConcept": value,
        })
    }

    fn request(entries: Vec<Value>) -> Vec<u8> {
        let entry: Vec<Value> = entries
            .into_iter()
            .map(|r| json!({"resource": r}))
            .collect();
        serde_json::to_vec(&json!({
            "hook": "order-select", "hookInstance": "h1",
            "context": {"patientId": "p1", "userId": "Practitioner/1",
                        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": []},
                        "selections": []},
            "prefetch": {"patient": {"resourceType": "Patient", "id": "p1"},
                         "genotypes": {"resourceType": "Bundle", "type": "searchset", "entry": entry}}
        }))
        .expect("serialisable")
    }

    fn genes(req: &HookRequest<'_>) -> (Vec<String>, Vec<Option<String>>) {
        let Some(Ok((ok, bad))) = &req.genotypes else {
            panic!(
                "genotypes were prefetched and readable: {:?}",
                req.genotypes
            )
        };
        (
            ok.iter().map(|r| r.gene.symbol().to_owned()).collect(),
            bad.iter().map(|(r, _)| r.clone()).collect(),
        )
    }

    #[test]
    fn a_well_formed_prefetch_is_read() {
        let body = request(vec![
            genotype("a", "CYP2C19", json!({"text": "*2/*2"})),
            genotype("b", "CYP2D6", json!({"text": "*1/*1"})),
        ]);
        let req = parse_request(ORDER_SELECT, &body).expect("a valid request");
        assert_eq!(req.patient_id, "p1");
        assert_eq!(
            genes(&req),
            (vec!["CYP2C19".into(), "CYP2D6".into()], vec![])
        );
    }

    #[test]
    fn a_malformed_entry_is_reported_and_the_others_still_read() {
        // `valueCodeableConcept.text` of the wrong JSON type fails the one-pass reading; the
        // slow path then isolates the fault to that entry.
        let body = request(vec![
            genotype("a", "CYP2C19", json!({"text": "*2/*2"})),
            genotype("b", "CYP2D6", json!({"text": 5})),
        ]);
        let req = parse_request(ORDER_SELECT, &body).expect("a valid request");
        let (ok, bad) = genes(&req);
        assert_eq!(ok, vec!["CYP2C19".to_owned()]);
        assert_eq!(bad.len(), 1);
    }

    #[test]
    fn null_prefetch_means_not_supplied() {
        let mut v: Value = serde_json::from_slice(&request(vec![])).expect("json");
        v["prefetch"]["genotypes"] = Value::Null;
        let body = serde_json::to_vec(&v).expect("json");
        let req = parse_request(ORDER_SELECT, &body).expect("a valid request");
        assert!(req.genotypes.is_none());
    }

    #[test]
    fn a_prefetch_that_is_not_a_bundle_is_an_error() {
        let mut v: Value = serde_json::from_slice(&request(vec![])).expect("json");
        v["prefetch"]["genotypes"] = json!({"resourceType": "Observation"});
        let body = serde_json::to_vec(&v).expect("json");
        let req = parse_request(ORDER_SELECT, &body).expect("a valid request");
        assert!(matches!(req.genotypes, Some(Err(BundleError::NotBundle))));
    }

    #[test]
    fn bad_bodies_get_the_right_error() {
        let err = |b: &[u8]| parse_request(ORDER_SELECT, b).err();
        assert!(matches!(err(b"{not json"), Some(RequestError::Json(_))));
        assert!(matches!(
            err(b"{\"hook\": \"\xff\"}"),
            Some(RequestError::Json(_))
        ));
        assert_eq!(err(b"[1, 2]"), Some(RequestError::NotObject));
        assert_eq!(err(b"{}"), Some(RequestError::Missing("hook")));
        assert!(matches!(
            err(br#"{"hook": "patient-view", "hookInstance": "x", "context": {}}"#),
            Some(RequestError::WrongHook { .. })
        ));
        assert!(matches!(
            err(br#"{"hook": "order-select", "hookInstance": "x", "context": {"patientId": "a b"}}"#),
            Some(RequestError::Invalid(_))
        ));
        assert!(matches!(
            err(br#"{"hook": 5}"#),
            Some(RequestError::Invalid(_))
        ));
    }
}
