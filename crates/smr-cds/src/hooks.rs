//! The CDS Hooks services SMR offers, reading their requests, and feedback as AuditEvents.

use serde_json::{Value, json};

use crate::cards::{Card, SMR_SYSTEM_BASE, assess_order_in_context, card};
use crate::genotype::{LOINC, LOINC_GENOTYPE, LOINC_PHENOTYPE, PatientResults};
pub use crate::request::{HookRequest, PrefetchedResults, parse_request};
use crate::uk_guidance::PatientContext;

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
        title: "SMR pharmacogenomics and medicines safety: medicine being chosen",
        description: "Checks the selected draft medication orders against the patient's pharmacogenomic results \
                      (CPIC/DPWG guidance) and against the whole medication record for interactions, duplication, \
                      allergies and renal dosing, and suggests an alternative or a dose adjustment.",
    },
    Service {
        id: "smr-pgx-order-sign",
        hook: Hook::OrderSign,
        title: "SMR pharmacogenomics and medicines safety: orders being signed",
        description: "Checks every draft medication order against the patient's pharmacogenomic results and the \
                      whole medication record (interactions, duplication, allergies, renal dosing) before signing.",
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

pub fn conditions_query(patient_id: &str) -> String {
    format!("Condition?patient={patient_id}&clinical-status=active")
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
    if hook != Hook::PatientView {
        // UK testing guidance for a population (NICE DG59: after ischaemic stroke/TIA).
        t["conditions"] = json!(conditions_query(p));
    }
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

/// Whether any of the orders names a medicine with pharmacogenomic guidance, i.e. whether
/// the patient's results are needed at all (most orders are for medicines without any).
pub fn orders_need_results(orders: &[&Value]) -> bool {
    orders.iter().any(|o| crate::cards::has_pgx_guidance(o))
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
pub fn order_cards(orders: &[&Value], results: &PatientResults) -> Vec<Card> {
    order_cards_in_context(orders, results, &PatientContext::default())
}

/// [`order_cards`] knowing what the request says about the patient (conditions, age).
pub fn order_cards_in_context(
    orders: &[&Value],
    results: &PatientResults,
    ctx: &PatientContext,
) -> Vec<Card> {
    let mut cards: Vec<Card> = orders
        .iter()
        .flat_map(|o| {
            assess_order_in_context(o, &results.results, &results.interpretations, ctx)
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

    /// An order-select request for clopidogrel (PGx guidance: the genotypes are needed) or,
    /// with `pgx_order` false, paracetamol (no guidance: they are not).
    fn request_for(pgx_order: bool, entries: Vec<Value>) -> Vec<u8> {
        let entry: Vec<Value> = entries
            .into_iter()
            .map(|r| json!({"resource": r}))
            .collect();
        let medicine = if pgx_order {
            "Clopidogrel 75mg tablets"
        } else {
            "Paracetamol 500mg tablets"
        };
        serde_json::to_vec(&json!({
            "hook": "order-select", "hookInstance": "h1",
            "context": {"patientId": "p1", "userId": "Practitioner/1",
                        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [
                            {"resource": {"resourceType": "MedicationRequest", "id": "d1", "status": "draft",
                                          "intent": "order", "subject": {"reference": "Patient/p1"},
                                          "medicationCodeableConcept": {"text": medicine}}}]},
                        "selections": ["MedicationRequest/d1"]},
            "prefetch": {"patient": {"resourceType": "Patient", "id": "p1"},
                         "genotypes": {"resourceType": "Bundle", "type": "searchset", "entry": entry}}
        }))
        .expect("serialisable")
    }

    fn request(entries: Vec<Value>) -> Vec<u8> {
        request_for(true, entries)
    }

    fn genes(req: &HookRequest<'_>) -> (Vec<String>, Vec<Option<String>>) {
        let read = req.prefetched_results();
        let Some(Ok((ok, bad))) = &read else {
            panic!("genotypes were prefetched and readable: {read:?}")
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
        // `valueCodeableConcept.text` of the wrong JSON type fails the one-pass reading of the
        // Bundle; the entry-by-entry reading then isolates the fault to that entry.
        for pgx_order in [true, false] {
            let body = request_for(
                pgx_order,
                vec![
                    genotype("a", "CYP2C19", json!({"text": "*2/*2"})),
                    genotype("b", "CYP2D6", json!({"text": 5})),
                ],
            );
            let req = parse_request(ORDER_SELECT, &body).expect("a valid request");
            let (ok, bad) = genes(&req);
            assert_eq!(ok, vec!["CYP2C19".to_owned()], "pgx order: {pgx_order}");
            assert_eq!(bad.len(), 1, "pgx order: {pgx_order}");
        }
    }

    #[test]
    fn genotypes_read_in_the_pass_or_later_give_the_same_results() {
        let entries = || {
            vec![
                genotype("a", "CYP2C19", json!({"text": "*2/*2"})),
                genotype("b", "CYP2D6", json!({"text": "*1/*1"})),
            ]
        };
        let now = request_for(true, entries());
        let later = request_for(false, entries());
        let now = parse_request(ORDER_SELECT, &now).expect("valid");
        let later = parse_request(ORDER_SELECT, &later).expect("valid");
        assert_eq!(genes(&now), genes(&later));
        assert!(now.needs_results());
        assert!(!later.needs_results());
    }

    #[test]
    fn prefetch_before_context_is_still_read() {
        // Key order is the client's choice.
        let mut v: Value = serde_json::from_slice(&request(vec![genotype(
            "a",
            "CYP2C19",
            json!({"text": "*2/*2"}),
        )]))
        .expect("json");
        let obj = v.as_object_mut().expect("object");
        let context = obj.shift_remove("context").expect("context");
        obj.insert("context".into(), context);
        let body = serde_json::to_vec(&v).expect("json");
        let req = parse_request(ORDER_SELECT, &body).expect("valid");
        assert_eq!(genes(&req).0, vec!["CYP2C19".to_owned()]);
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
        assert!(matches!(
            req.prefetched_results(),
            Some(Err(crate::genotype::BundleError::NotBundle))
        ));
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
