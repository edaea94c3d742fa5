//! The CDS Hooks services SMR offers, reading their requests, and feedback as AuditEvents.

use serde_json::{Value, json};

use crate::cards::{Card, SMR_SYSTEM_BASE, assess_order, card};
use crate::genotype::{GeneResult, LOINC, LOINC_GENOTYPE, LOINC_PHENOTYPE};

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
    #[error("the request body must be a JSON object")]
    NotObject,
    #[error("'{0}' is required")]
    Missing(&'static str),
    #[error("this service answers the '{expected}' hook, not '{got}'")]
    WrongHook { expected: &'static str, got: String },
    #[error("{0}")]
    Invalid(String),
}

/// The parts of a request SMR uses.
#[derive(Debug, Clone)]
pub struct HookRequest<'a> {
    pub patient_id: &'a str,
    pub context: &'a Value,
    pub prefetch: Option<&'a serde_json::Map<String, Value>>,
}

impl<'a> HookRequest<'a> {
    /// A prefetched item, when the client supplied one (`null` means it could not).
    pub fn prefetched(&self, key: &str) -> Option<&'a Value> {
        self.prefetch?.get(key).filter(|v| !v.is_null())
    }
}

pub fn parse_request<'a>(
    service: &Service,
    body: &'a Value,
) -> Result<HookRequest<'a>, RequestError> {
    let obj = body.as_object().ok_or(RequestError::NotObject)?;
    let hook = obj
        .get("hook")
        .and_then(Value::as_str)
        .ok_or(RequestError::Missing("hook"))?;
    if hook != service.hook.name() {
        return Err(RequestError::WrongHook {
            expected: service.hook.name(),
            got: hook.to_owned(),
        });
    }
    obj.get("hookInstance")
        .and_then(Value::as_str)
        .ok_or(RequestError::Missing("hookInstance"))?;
    let context = obj
        .get("context")
        .filter(|c| c.is_object())
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
    let prefetch = match obj.get("prefetch") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => return Err(RequestError::Invalid("prefetch must be an object".into())),
    };
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
    Ok(HookRequest {
        patient_id,
        context,
        prefetch,
    })
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
