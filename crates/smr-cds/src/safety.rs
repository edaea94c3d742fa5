//! Medicines safety cards for `order-select` and `order-sign`, beside the pharmacogenomic
//! ones: each draft order checked by `smr-safety` against the patient's whole current record
//! (and the other draft orders, which are about to join it), one card per problem,
//! de-duplicated across orders, most severe first.
//!
//! A problem involving a medicine the caller may not see becomes a card that says so without
//! naming it ("a medicine you cannot see interacts with this order; ask the patient or their
//! GP"): `smr-safety` writes those problems with no name, code, reference or rule.

use std::borrow::Cow;

use serde_json::{Value, json};
use smr_dmd::{Level, MedicineLookup};
use smr_safety::fhir_out::citation_text;
use smr_safety::{
    Allergy, Medicine, Problem, ProblemKind, RenalResult, RuleSource, SafetyContext, Severity,
    check_order,
};

use crate::cards::{
    Card, Coding, Indicator, SMR_SYSTEM_BASE, Source, Suggestion, SuggestionAction, truncate,
};

/// What of the patient's record the checks read (visibility already marked).
#[derive(Debug, Clone, Copy)]
pub struct RecordForChecks<'a> {
    pub medicines: &'a [Medicine],
    pub allergies: &'a [Allergy],
    pub renal: &'a [RenalResult],
    /// Microseconds since the epoch.
    pub now: i64,
}

/// The CDS indicator of a problem's severity.
pub fn indicator(s: Severity) -> Indicator {
    match s {
        Severity::Contraindicated => Indicator::Critical,
        Severity::Serious | Severity::Moderate => Indicator::Warning,
        Severity::Minor | Severity::Note => Indicator::Info,
    }
}

fn topic(kind: ProblemKind) -> Coding {
    let display = match kind {
        ProblemKind::Interaction => "Drug-drug interaction",
        ProblemKind::Duplication => "Therapeutic duplication",
        ProblemKind::Allergy => "Allergy or intolerance conflict",
        ProblemKind::Renal => "Renal dose check",
        ProblemKind::CannotCheck => "Safety check not made",
    };
    Coding {
        code: format!("safety-{}", kind.as_str()),
        system: format!("{SMR_SYSTEM_BASE}/CodeSystem/safety-card-topic"),
        display: display.into(),
    }
}

/// A draft order for `alternative` in place of `order`, copying who and for whom but not the
/// dose (the prescriber's to set). Coded with the VTM when the built-in dictionary knows the
/// name.
fn replacement(order: &Value, alternative: &str, note: &str) -> Value {
    let vtm = smr_dmd::starter()
        .by_name(alternative)
        .into_iter()
        .find(|c| c.level == Level::Vtm && !c.invalid)
        .map(|c| (c.code.clone(), c.name.clone()));
    let mut med = json!({"text": vtm.as_ref().map_or(alternative, |(_, n)| n.as_str())});
    if let Some((code, name)) = &vtm {
        med["coding"] = json!([{"system": smr_dmd::DMD_SYSTEMS[0], "code": code, "display": name}]);
    }
    let mut mr = json!({
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": order.get("intent").and_then(Value::as_str).unwrap_or("proposal"),
        "medicationCodeableConcept": med,
        "note": [{"text": note}],
    });
    for key in ["subject", "encounter", "requester"] {
        if let Some(v) = order.get(key) {
            mr[key] = v.clone();
        }
    }
    mr
}

fn order_ref(order: &Value) -> Option<String> {
    Some(format!(
        "{}/{}",
        order.get("resourceType")?.as_str()?,
        order.get("id")?.as_str()?
    ))
}

fn suggestions(p: &Problem, order: &Value, ordered: &str) -> Vec<Suggestion> {
    let Some(s) = &p.suggestion else {
        return Vec::new();
    };
    let cite = p.citations.first().map(citation_text).unwrap_or_default();
    s.ingredients
        .iter()
        .map(|alternative| {
            let mut actions = Vec::new();
            if let Some(id) = order_ref(order) {
                actions.push(SuggestionAction {
                    kind: "delete".into(),
                    description: format!("Remove the draft {ordered} order"),
                    resource: None,
                    resource_id: Some(id),
                });
            }
            actions.push(SuggestionAction {
                kind: "create".into(),
                description: format!("Order {alternative} instead (set the dose)"),
                resource: Some(replacement(
                    order,
                    alternative,
                    &format!(
                        "Suggested by SMR in place of {ordered}: {} ({cite}).",
                        s.label
                    ),
                )),
                resource_id: None,
            });
            Suggestion {
                label: truncate(&format!("{}: {alternative}", s.label), 80),
                uuid: uuid::Uuid::new_v4().to_string(),
                is_recommended: None,
                actions,
            }
        })
        .collect()
}

/// The card for one problem; `order` (the draft it was found for) enables suggestions.
pub fn card(p: &Problem, order: Option<(&Value, &str)>) -> Card {
    let mut detail = p.detail.clone();
    if !p.citations.is_empty() {
        detail.push_str("\n\n**Sources:**\n");
        for c in &p.citations {
            match &c.url {
                Some(url) => detail.push_str(&format!("- [{}]({url})\n", citation_text(c))),
                None => detail.push_str(&format!("- {}\n", citation_text(c))),
            }
        }
    }
    let source = match p.citations.first() {
        Some(c) => Source {
            label: truncate(
                &c.short
                    .as_ref()
                    .map_or_else(|| citation_text(c), |s| format!("{s}, {}", c.section)),
                120,
            ),
            url: c.url.clone(),
            topic: Some(topic(p.kind)),
        },
        None => Source {
            label: "SMR medicines safety rules".into(),
            url: None,
            topic: Some(topic(p.kind)),
        },
    };
    let suggestions = order
        .map(|(o, name)| suggestions(p, o, name))
        .unwrap_or_default();
    Card {
        uuid: uuid::Uuid::new_v4().to_string(),
        summary: truncate(&p.summary, crate::cards::SUMMARY_MAX),
        detail: Some(detail),
        indicator: indicator(p.severity),
        source,
        // CDS Hooks requires it with suggestions: the alternatives are one-or-none choices.
        selection_behavior: (!suggestions.is_empty()).then(|| "at-most-one".to_owned()),
        suggestions,
        override_reasons: p
            .override_reasons
            .iter()
            .map(|r| Coding {
                code: r.code.into(),
                system: r.system.clone(),
                display: r.display.into(),
            })
            .collect(),
    }
}

/// Safety cards for the draft `orders` to check; `all_drafts` are every draft order of the
/// request (the ones not being checked still count as about to be taken).
pub fn order_cards(
    orders: &[&Value],
    all_drafts: &[&Value],
    record: RecordForChecks<'_>,
    lookup: &dyn MedicineLookup,
    rules: &dyn RuleSource,
) -> Vec<Card> {
    let read = |o: &&Value| smr_record::current::order_medicine(o, lookup);
    let drafts: Vec<(&Value, Medicine)> = all_drafts
        .iter()
        .filter_map(|o| Some((*o, read(o)?)))
        .collect();
    let mut found: Vec<(Problem, &Value, String)> = Vec::new();
    for order in orders {
        let Some(medicine) = read(order) else {
            continue;
        };
        // The other drafts join the record for this check; most requests have one order, and
        // then the record is used as it is.
        let others: Vec<&Medicine> = drafts
            .iter()
            .filter(|(o, _)| !std::ptr::eq(*o, *order))
            .map(|(_, m)| m)
            .collect();
        let medicines: Cow<'_, [Medicine]> = if others.is_empty() {
            Cow::Borrowed(record.medicines)
        } else {
            let mut all = record.medicines.to_vec();
            all.extend(others.into_iter().cloned());
            Cow::Owned(all)
        };
        let ctx = SafetyContext {
            medicines: &medicines,
            allergies: record.allergies,
            renal: record.renal,
            now: record.now,
            lookup,
            rules,
        };
        for p in check_order(&medicine, &ctx) {
            // Two drafts that interact are found from both sides: one card.
            if !found
                .iter()
                .any(|(q, _, _)| q.kind == p.kind && q.key == p.key)
            {
                found.push((p, *order, medicine.name.clone()));
            }
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0.severity));
    found
        .iter()
        .map(|(p, order, name)| card(p, Some((*order, name.as_str()))))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use smr_dmd::Layered;

    use super::*;

    fn current(key: &str, code: &str, visible: bool) -> Medicine {
        let lookup = Layered::default();
        let info = lookup
            .resolve(&[(Some("https://dmd.nhs.uk"), code)], None)
            .expect("known");
        Medicine {
            key: key.into(),
            name: info.matched.name.clone(),
            entries: vec![format!("MedicationRequest/{key}")],
            info: Some(Arc::new(info)),
            dose: None,
            route: None,
            visible,
            setting: Some("gp-practice".into()),
        }
    }

    fn draft(id: &str, code: &str) -> Value {
        json!({"resourceType": "MedicationRequest", "id": id, "status": "draft", "intent": "order",
            "subject": {"reference": "Patient/p"},
            "medicationCodeableConcept": {"coding": [{"system": "https://dmd.nhs.uk", "code": code}]}})
    }

    fn cards_for(orders: &[&Value], all: &[&Value], meds: &[Medicine]) -> Vec<Card> {
        let lookup = Layered::default();
        let rules = smr_safety::bundled().expect("rules");
        order_cards(
            orders,
            all,
            RecordForChecks {
                medicines: meds,
                allergies: &[],
                renal: &[],
                now: 1_796_083_200_000_000,
            },
            &lookup,
            rules,
        )
    }

    #[test]
    fn an_alternative_becomes_a_delete_and_create_suggestion() {
        // Esomeprazole ordered for a patient on clopidogrel: MHRA names other PPIs.
        let order = draft("d1", "317334001");
        let meds = [current("c", "319799004", true)];
        let cards = cards_for(&[&order], &[&order], &meds);
        assert_eq!(cards.len(), 1, "{cards:?}");
        let c = &cards[0];
        assert_eq!(c.indicator, Indicator::Warning);
        assert_eq!(c.selection_behavior.as_deref(), Some("at-most-one"));
        assert_eq!(c.suggestions.len(), 2);
        let actions = &c.suggestions[0].actions;
        assert_eq!(actions[0].kind, "delete");
        assert_eq!(
            actions[0].resource_id.as_deref(),
            Some("MedicationRequest/d1")
        );
        let created = actions[1].resource.as_ref().expect("a new draft");
        assert_eq!(created["subject"]["reference"], "Patient/p");
        assert!(created["medicationCodeableConcept"]["coding"][0]["code"].is_string());
        assert!(!c.override_reasons.is_empty());
        assert!(
            c.source.label.contains("Drug Safety Update"),
            "{}",
            c.source.label
        );
    }

    #[test]
    fn a_hidden_medicine_gives_a_critical_card_without_its_name_or_a_suggestion() {
        let order = draft("d1", "69236009"); // amiodarone
        let meds = [current("secret", "321987003", false)]; // citalopram
        let cards = cards_for(&[&order], &[&order], &meds);
        assert_eq!(cards.len(), 1, "{cards:?}");
        assert_eq!(cards[0].indicator, Indicator::Critical);
        assert!(cards[0].suggestions.is_empty());
        let text = serde_json::to_string(&cards[0]).expect("json");
        assert!(
            !text.contains("italopram") && !text.contains("secret"),
            "{text}"
        );
        assert_eq!(cards[0].source.label, "SMR medicines safety rules");
    }

    #[test]
    fn two_drafts_that_interact_give_one_card() {
        let a = draft("s1", "320000009"); // simvastatin 40mg
        let b = draft("s2", "83999008"); // clarithromycin
        let cards = cards_for(&[&a, &b], &[&a, &b], &[]);
        assert_eq!(cards.len(), 1, "{cards:?}");
        // order-select of one of them still sees the other draft.
        assert_eq!(cards_for(&[&a], &[&a, &b], &[]).len(), 1);
        assert!(cards_for(&[&a], &[&a], &[]).is_empty());
    }
}
