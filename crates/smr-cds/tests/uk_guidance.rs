//! UK testing guidance: for each guidance a case where its card fires (the medicine is
//! ordered, the patient is in the guidance's population and has no result for the gene) and
//! cases where it does not (a result is on record, or the request shows the patient is
//! outside the population).

use serde_json::{Value, json};
use smr_cds::genotype::{GeneResult, ResultKind};
use smr_cds::uk_guidance::{ConditionFact, PatientContext};
use smr_cds::{Finding, FindingKind, Indicator, assess_order_in_context, card};
use smr_pgx::Gene;

fn order(text: &str) -> Value {
    json!({"resourceType": "MedicationRequest", "id": "draft-1", "status": "draft",
           "intent": "order", "medicationCodeableConcept": {"text": text}})
}

fn result(gene: Gene, diplotype: &str) -> GeneResult {
    GeneResult {
        gene,
        kind: ResultKind::Genotype {
            diplotype: diplotype.into(),
        },
        reference: Some(format!("Observation/{gene}")),
        recorded: None,
    }
}

fn assess(text: &str, results: &[GeneResult], ctx: &PatientContext) -> Vec<Finding> {
    let interps: Vec<_> = results.iter().map(GeneResult::interpretation).collect();
    assess_order_in_context(&order(text), results, &interps, ctx)
}

/// The UK-guidance finding for `gene`, if any.
fn uk(findings: &[Finding], gene: Gene) -> Option<&Finding> {
    findings
        .iter()
        .find(|f| matches!(&f.kind, FindingKind::UkTestMissing { gene: g, .. } if *g == gene))
}

fn stroke() -> ConditionFact {
    ConditionFact::from_resource(&json!({"resourceType": "Condition", "id": "stroke-1",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "422504002",
                             "display": "Ischemic stroke"}]}}))
    .expect("a condition")
}

fn asthma() -> ConditionFact {
    ConditionFact::from_resource(&json!({"resourceType": "Condition", "id": "asthma-1",
        "code": {"text": "Asthma"}}))
    .expect("a condition")
}

#[test]
fn dg59_fires_for_clopidogrel_after_stroke_with_no_cyp2c19_result() {
    let ctx = PatientContext {
        conditions: Some(vec![asthma(), stroke()]),
        age_days: None,
    };
    let findings = assess("Clopidogrel 75mg tablets", &[], &ctx);
    let f = uk(&findings, Gene::Cyp2c19).expect("a DG59 finding");
    assert_eq!(f.indicator, Indicator::Info);
    assert_eq!(f.evidence, ["Condition/stroke-1 (Ischemic stroke)"]);
    let c = card(f, None);
    assert!(c.summary.contains("no CYP2C19 result"), "{}", c.summary);
    let detail = c.detail.unwrap_or_default();
    assert!(detail.contains("DG59"), "{detail}");
    assert!(detail.contains("Condition/stroke-1"), "{detail}");
    assert!(
        c.source.url.as_deref().is_some_and(|u| u.contains("dg59")),
        "{:?}",
        c.source
    );
}

#[test]
fn dg59_without_conditions_in_the_request_says_it_applies_after_stroke() {
    let findings = assess("Clopidogrel 75mg tablets", &[], &PatientContext::default());
    let f = uk(&findings, Gene::Cyp2c19).expect("a DG59 finding");
    let detail = card(f, None).detail.unwrap_or_default();
    assert!(
        detail.contains("ischaemic stroke or transient ischaemic attack")
            && detail.contains("carried no conditions"),
        "{detail}"
    );
}

#[test]
fn dg59_does_not_fire_without_stroke_or_with_a_result() {
    let no_stroke = PatientContext {
        conditions: Some(vec![asthma()]),
        age_days: None,
    };
    assert!(
        uk(
            &assess("Clopidogrel 75mg tablets", &[], &no_stroke),
            Gene::Cyp2c19
        )
        .is_none()
    );
    let after_stroke = PatientContext {
        conditions: Some(vec![stroke()]),
        age_days: None,
    };
    let results = [result(Gene::Cyp2c19, "*1/*1")];
    assert!(
        uk(
            &assess("Clopidogrel 75mg tablets", &results, &after_stroke),
            Gene::Cyp2c19
        )
        .is_none()
    );
}

#[test]
fn dpyd_fires_for_capecitabine_and_fluorouracil_with_no_result() {
    for text in [
        "Capecitabine 500mg tablets",
        "Fluorouracil 2.5g/100ml infusion",
    ] {
        let findings = assess(text, &[], &PatientContext::default());
        let f = uk(&findings, Gene::Dpyd).unwrap_or_else(|| panic!("{text}: {findings:?}"));
        let c = card(f, None);
        assert!(c.summary.contains("no DPYD result"), "{}", c.summary);
        let detail = c.detail.unwrap_or_default();
        assert!(
            detail.contains("MHRA")
                && detail.contains("before starting")
                && detail.contains("CPIC"),
            "{detail}"
        );
        // One card for the missing test, not one from the guideline as well.
        assert_eq!(findings.len(), 1, "{findings:?}");
    }
}

#[test]
fn dpyd_does_not_fire_with_a_result() {
    let results = [result(Gene::Dpyd, "Reference/Reference")];
    let findings = assess(
        "Capecitabine 500mg tablets",
        &results,
        &PatientContext::default(),
    );
    assert!(uk(&findings, Gene::Dpyd).is_none(), "{findings:?}");
}

#[test]
fn mt_rnr1_fires_for_gentamicin_in_a_newborn_with_no_result() {
    let newborn = PatientContext {
        conditions: None,
        age_days: Some(3),
    };
    let findings = assess("Gentamicin 10mg/ml injection", &[], &newborn);
    let f = uk(&findings, Gene::MtRnr1).expect("an HTE6 finding");
    let detail = card(f, None).detail.unwrap_or_default();
    assert!(
        detail.contains("HTE6") && detail.contains("3 days old"),
        "{detail}"
    );
    // Age unknown: still fires, saying who the guidance is for.
    let findings = assess(
        "Gentamicin 10mg/ml injection",
        &[],
        &PatientContext::default(),
    );
    let f = uk(&findings, Gene::MtRnr1).expect("an HTE6 finding");
    let detail = card(f, None).detail.unwrap_or_default();
    assert!(
        detail.contains("newborn babies") && detail.contains("gave no age"),
        "{detail}"
    );
}

#[test]
fn mt_rnr1_does_not_fire_for_an_adult_or_with_a_result() {
    let adult = PatientContext {
        conditions: None,
        age_days: Some(40 * 365),
    };
    assert!(
        uk(
            &assess("Gentamicin 10mg/ml injection", &[], &adult),
            Gene::MtRnr1
        )
        .is_none()
    );
    let newborn = PatientContext {
        conditions: None,
        age_days: Some(3),
    };
    let results = [result(Gene::MtRnr1, "m.1555A>G")];
    let findings = assess("Gentamicin 10mg/ml injection", &results, &newborn);
    assert!(uk(&findings, Gene::MtRnr1).is_none(), "{findings:?}");
}

#[test]
fn a_medicine_without_uk_testing_guidance_gets_no_such_card() {
    let findings = assess("Simvastatin 40mg tablets", &[], &PatientContext::default());
    assert!(
        !findings
            .iter()
            .any(|f| matches!(f.kind, FindingKind::UkTestMissing { .. })),
        "{findings:?}"
    );
}
