//! Table-driven tests of every kind of rule, firing and not firing, through the bundled data
//! and SMR's built-in drug dictionary (so brands, suppliers' products, VMPs and VTMs are
//! resolved the way the server resolves them).

use std::sync::{Arc, OnceLock};

use serde_json::json;
use smr_dmd::{ConceptRef, IngredientStrength, Layered, Level, MedicineInfo, MedicineLookup};

use crate::context::{Allergy, DoseFacts, Medicine, RenalResult, SafetyContext};
use crate::fhir_in::{read_allergy, read_renal};
use crate::knowledge::{Measure, Severity};
use crate::problem::{IssueCode, Problem, ProblemKind};
use crate::rules::{RuleSource, bundled};
use crate::{DAY_MICROS, check_data, check_order, review_record};

const DMD: &str = "https://dmd.nhs.uk";
const SCT: &str = "http://snomed.info/sct";
/// 2026-12-01T00:00:00Z.
const NOW: i64 = 1_796_083_200_000_000;

fn lookup() -> &'static Layered {
    static L: OnceLock<Layered> = OnceLock::new();
    L.get_or_init(Layered::default)
}

fn rules() -> &'static dyn RuleSource {
    bundled().expect("the bundled data loads")
}

/// A current medicine named by a dm+d code (any level) or, failing that, by text.
fn med(key: &str, code_or_text: &str) -> Medicine {
    let info = if code_or_text.chars().all(|c| c.is_ascii_digit()) {
        lookup().resolve(&[(Some(DMD), code_or_text)], None)
    } else {
        lookup().resolve(&[], Some(code_or_text))
    };
    let name = info
        .as_ref()
        .map_or_else(|| code_or_text.to_owned(), |i| i.matched.name.clone());
    Medicine {
        key: key.to_owned(),
        name,
        entries: vec![format!("MedicationRequest/{key}")],
        info: info.map(Arc::new),
        dose: None,
        route: None,
        visible: true,
        setting: Some("gp-practice".into()),
    }
}

/// A medicine with an invented product (for strengths and routes the starter lacks).
fn product(
    key: &str,
    name: &str,
    ingredient: &str,
    strength: Option<&str>,
    route: Option<&str>,
) -> Medicine {
    let info = MedicineInfo {
        level: Level::Vmp,
        matched: ConceptRef {
            code: format!("9{key}"),
            name: name.into(),
        },
        vmp: None,
        vtm: None,
        ingredients: vec![IngredientStrength {
            name: ingredient.into(),
            code: None,
            strength: strength.map(str::to_owned),
        }],
        form: None,
        route: route.map(str::to_owned),
        bnf: None,
        controlled_drug: None,
        source: "test".into(),
    };
    Medicine {
        info: Some(Arc::new(info)),
        name: name.into(),
        ..med(key, "unmapped text that names nothing")
    }
}

fn dosed(mut m: Medicine, value: f64, unit: &str, per_day: f64) -> Medicine {
    m.dose = Some(DoseFacts {
        value,
        unit: unit.into(),
        per_day: Some(per_day),
    });
    m
}

fn hidden(mut m: Medicine) -> Medicine {
    m.visible = false;
    m
}

fn order(code_or_text: &str) -> Medicine {
    let mut m = med("draft", code_or_text);
    m.setting = None;
    m
}

fn allergy(resource: serde_json::Value) -> Allergy {
    read_allergy(&resource, true).expect("an AllergyIntolerance")
}

fn allergy_coded(system: &str, code: &str) -> Allergy {
    allergy(json!({"resourceType": "AllergyIntolerance", "id": "a1",
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "verificationStatus": {"coding": [{"code": "confirmed"}]},
        "code": {"coding": [{"system": system, "code": code}]},
        "patient": {"reference": "Patient/p"}}))
}

fn result(measure: Measure, value: f64, days_ago: i64) -> RenalResult {
    RenalResult {
        measure,
        value,
        value_text: value.to_string(),
        when: NOW - days_ago * DAY_MICROS,
        when_text: format!("{days_ago} days ago"),
        reference: Some(format!("Observation/{measure:?}-{days_ago}")),
        visible: true,
    }
}

fn ctx<'a>(
    meds: &'a [Medicine],
    allergies: &'a [Allergy],
    renal: &'a [RenalResult],
) -> SafetyContext<'a> {
    SafetyContext {
        medicines: meds,
        allergies,
        renal,
        now: NOW,
        lookup: lookup(),
        rules: rules(),
    }
}

fn rule_ids(problems: &[Problem]) -> Vec<String> {
    let mut ids: Vec<String> = problems
        .iter()
        .flat_map(|p| p.citations.iter().map(|c| c.rule.clone()))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

fn of_kind(problems: &[Problem], kind: ProblemKind) -> Vec<&Problem> {
    problems.iter().filter(|p| p.kind == kind).collect()
}

#[test]
fn the_data_loads_and_is_consistent() {
    assert_eq!(check_data(), Ok(()));
    let r = rules();
    let phansalkar = r
        .interactions()
        .iter()
        .filter(|i| i.id.starts_with("phansalkar-"))
        .count();
    assert_eq!(
        phansalkar, 15,
        "the 15 high-priority pairs of Phansalkar et al. 2012"
    );
    assert!(r.interactions().iter().any(|i| i.id.starts_with("mhra-")));
    for i in r.interactions() {
        assert!(
            !i.management.is_empty() && !i.mechanism.is_empty(),
            "{}",
            i.id
        );
    }
}

/// Interaction rules, firing and not: (order, current medicines, expected rule or None).
#[test]
fn interactions_fire_by_ingredient_and_class_whatever_the_product_level() {
    let cases: Vec<(&str, Medicine, Vec<Medicine>, Option<&str>)> = vec![
        // Clopidogrel with esomeprazole: the order by VTM, VMP, a supplier's AMP, and a brand name.
        (
            "clopidogrel VTM",
            order("108979001"),
            vec![med("e", "317334001")],
            Some("mhra-clopidogrel-omeprazole"),
        ),
        (
            "clopidogrel VMP",
            order("319799004"),
            vec![med("e", "317334001")],
            Some("mhra-clopidogrel-omeprazole"),
        ),
        (
            "clopidogrel AMP",
            order("15926111000001104"),
            vec![med("e", "317334001")],
            Some("mhra-clopidogrel-omeprazole"),
        ),
        (
            "clopidogrel brand",
            order("Plavix 75mg tablets"),
            vec![med("e", "317334001")],
            Some("mhra-clopidogrel-omeprazole"),
        ),
        (
            "esomeprazole AMP (Teva 40mg)",
            order("19630711000001106"),
            vec![med("c", "319799004")],
            Some("mhra-clopidogrel-omeprazole"),
        ),
        (
            "clopidogrel with lansoprazole",
            order("319799004"),
            vec![med("l", "108666007")],
            None,
        ),
        // Simvastatin with clarithromycin: every strength.
        (
            "simvastatin 10mg",
            order("319996000"),
            vec![med("c", "83999008")],
            Some("mhra-simvastatin-contraindicated"),
        ),
        (
            "simvastatin 80mg",
            order("320006003"),
            vec![med("c", "83999008")],
            Some("mhra-simvastatin-contraindicated"),
        ),
        (
            "atorvastatin is not listed",
            order("320031002"),
            vec![med("c", "83999008")],
            None,
        ),
        // Opioids with gabapentin and benzodiazepines (co-codamol through its codeine).
        (
            "gabapentin + morphine",
            order("108402001"),
            vec![med("m", "36126511000001106")],
            Some("mhra-gabapentin-opioids"),
        ),
        (
            "gabapentin + paracetamol",
            order("108402001"),
            vec![med("p", "322236009")],
            None,
        ),
        (
            "diazepam + co-codamol",
            order("321196004"),
            vec![med("cc", "322341003")],
            Some("mhra-benzodiazepines-opioids"),
        ),
        (
            "pregabalin + diazepam",
            order("415165003"),
            vec![med("d", "321196004")],
            Some("mhra-pregabalin-opioids"),
        ),
        // QT: citalopram with amiodarone; the published QT pair and the MHRA article merge.
        (
            "citalopram + amiodarone",
            order("321987003"),
            vec![med("a", "69236009")],
            Some("mhra-citalopram-qt"),
        ),
        (
            "anticoagulant + NSAID",
            order("329653008"),
            vec![med("w", "48603004")],
            Some("pincer-anticoagulant-nsaid"),
        ),
        (
            "spironolactone + ramipril",
            order("13929005"),
            vec![med("r", "108564000")],
            Some("mhra-aldosterone-antagonists-ras"),
        ),
        (
            "sertraline + paracetamol",
            order("321959007"),
            vec![med("p", "322236009")],
            None,
        ),
    ];
    for (name, o, meds, expected) in cases {
        let problems = check_order(&o, &ctx(&meds, &[], &[]));
        let interactions = of_kind(&problems, ProblemKind::Interaction);
        match expected {
            Some(rule) => {
                assert!(
                    rule_ids(&problems).iter().any(|r| r == rule),
                    "{name}: expected {rule}, got {problems:#?}"
                );
                assert_eq!(
                    interactions.len(),
                    1,
                    "{name}: one card per pair: {problems:#?}"
                );
                let p = interactions[0];
                assert_eq!(p.code, Some(IssueCode::Drg));
                assert!(
                    p.implicated
                        .contains(&format!("MedicationRequest/{}", meds[0].key)),
                    "{name}"
                );
                assert!(
                    !p.override_reasons.is_empty() && !p.citations.is_empty(),
                    "{name}"
                );
                assert!(p.summary.chars().count() < 140, "{name}");
            }
            None => assert!(interactions.is_empty(), "{name}: {problems:#?}"),
        }
    }
}

#[test]
fn rules_about_one_pair_from_several_sources_merge_into_one_problem() {
    // Simvastatin + clarithromycin: Phansalkar's statin pair and MHRA's contraindication.
    let meds = [med("c", "83999008")];
    let problems = check_order(&order("320000009"), &ctx(&meds, &[], &[]));
    let p = of_kind(&problems, ProblemKind::Interaction);
    assert_eq!(p.len(), 1, "{problems:#?}");
    assert_eq!(p[0].severity, Severity::Contraindicated);
    let rules = rule_ids(&problems);
    assert!(
        rules.contains(&"phansalkar-statins-cyp3a4-inhibitors".into()),
        "{rules:?}"
    );
    assert!(
        rules.contains(&"mhra-simvastatin-contraindicated".into()),
        "{rules:?}"
    );
    // The order is the statin: the source's alternative is offered.
    let s = p[0].suggestion.as_ref().expect("an alternative statin");
    assert!(s.ingredients.contains(&"pravastatin".to_owned()));
}

#[test]
fn an_alternative_is_offered_only_for_the_side_it_replaces() {
    // Clopidogrel ordered on top of esomeprazole: "use another PPI" replaces the PPI, not
    // the clopidogrel, so the card on the clopidogrel order offers nothing to swap.
    let problems = check_order(
        &order("319799004"),
        &ctx(&[med("e", "317334001")], &[], &[]),
    );
    assert!(problems[0].suggestion.is_none(), "{problems:#?}");
    let problems = check_order(
        &order("317334001"),
        &ctx(&[med("c", "319799004")], &[], &[]),
    );
    assert_eq!(
        problems[0]
            .suggestion
            .as_ref()
            .map(|s| s.ingredients.clone()),
        Some(vec!["lansoprazole".to_owned(), "pantoprazole".to_owned()])
    );
}

#[test]
fn simvastatin_dose_limits_apply_above_the_limit_only() {
    let amlodipine = [med("a", "108537001")];
    let simvastatin = |code: &str, tablets: f64| dosed(order(code), tablets, "tablet", 1.0);
    let cases = [
        ("40 mg a day", simvastatin("320000009", 1.0), true),
        ("20 mg a day", simvastatin("319997009", 1.0), false),
        ("2 x 20 mg a day", simvastatin("319997009", 2.0), true),
        ("10 mg a day", simvastatin("319996000", 1.0), false),
        // No dose: the rule applies, saying the dose could not be worked out.
        ("no dose", order("320000009"), true),
        ("VTM only", order("96304005"), true),
    ];
    for (name, o, fires) in cases {
        let problems = check_order(&o, &ctx(&amlodipine, &[], &[]));
        let fired = rule_ids(&problems).contains(&"mhra-simvastatin-20mg".to_owned());
        assert_eq!(fired, fires, "{name}: {problems:#?}");
    }
    let problems = check_order(&order("320000009"), &ctx(&amlodipine, &[], &[]));
    assert!(
        problems[0].detail.contains("could not work out"),
        "{}",
        problems[0].detail
    );
    let problems = check_order(&simvastatin("320000009", 1.0), &ctx(&amlodipine, &[], &[]));
    assert!(
        problems[0].detail.contains("40 mg a day"),
        "{}",
        problems[0].detail
    );
}

#[test]
fn systemic_only_rules_skip_creams_and_eye_drops() {
    let cipro = order("7577004");
    let cases = [
        (
            "oral prednisolone",
            product(
                "s",
                "Prednisolone 5mg tablets",
                "prednisolone",
                Some("5 mg"),
                Some("Oral"),
            ),
            true,
        ),
        (
            "hydrocortisone cream",
            product(
                "s",
                "Hydrocortisone 1% cream",
                "hydrocortisone",
                None,
                Some("Cutaneous"),
            ),
            false,
        ),
        (
            "route unknown",
            product("s", "Prednisolone", "prednisolone", None, None),
            true,
        ),
    ];
    for (name, steroid, fires) in cases {
        let meds = [steroid];
        let problems = check_order(&cipro, &ctx(&meds, &[], &[]));
        assert_eq!(
            rule_ids(&problems).contains(&"mhra-fluoroquinolones-corticosteroids".to_owned()),
            fires,
            "{name}: {problems:#?}"
        );
    }
}

#[test]
fn duplication_same_ingredient_and_same_class_across_settings() {
    let mut naproxen = med("n", "11847009");
    naproxen.setting = Some("hospital".into());
    let cases: Vec<(&str, Medicine, Medicine, Option<Severity>)> = vec![
        (
            "two NSAIDs",
            order("329653008"),
            naproxen.clone(),
            Some(Severity::Serious),
        ),
        (
            "ACE inhibitor + ARB",
            order("108564000"),
            med("l", "96309000"),
            Some(Severity::Serious),
        ),
        (
            "two PPIs",
            order("108666007"),
            med("o", "25673006"),
            Some(Severity::Minor),
        ),
        (
            "paracetamol + co-codamol",
            order("322236009"),
            med("cc", "322341003"),
            Some(Severity::Serious),
        ),
        (
            "ibuprofen again, other strength",
            order("329652003"),
            med("i", "329653008"),
            Some(Severity::Serious),
        ),
        (
            "NSAID + paracetamol",
            order("329653008"),
            med("p", "322236009"),
            None,
        ),
        (
            "statin + ACE inhibitor",
            order("320000009"),
            med("r", "108564000"),
            None,
        ),
    ];
    for (name, o, current, expected) in cases {
        let meds = [current];
        let problems = check_order(&o, &ctx(&meds, &[], &[]));
        let dups = of_kind(&problems, ProblemKind::Duplication);
        match expected {
            Some(sev) => {
                assert_eq!(dups.len(), 1, "{name}: {problems:#?}");
                assert_eq!(dups[0].severity, sev, "{name}");
                assert_eq!(dups[0].code, Some(IssueCode::Dupthpy));
            }
            None => assert!(dups.is_empty(), "{name}: {problems:#?}"),
        }
    }
    // The setting of the current medicine is said.
    let meds = [naproxen];
    let problems = check_order(&order("329653008"), &ctx(&meds, &[], &[]));
    assert!(
        problems[0].detail.contains("hospital"),
        "{}",
        problems[0].detail
    );
}

#[test]
fn allergies_by_substance_code_finding_code_text_and_dictionary() {
    let amoxicillin = order("39732311000001104");
    let allergy_text = |text: &str| {
        allergy(json!({"resourceType": "AllergyIntolerance", "id": "a2",
            "code": {"text": text}, "patient": {"reference": "Patient/p"}}))
    };
    let cases: Vec<(&str, Medicine, Allergy, Option<Severity>)> = vec![
        (
            "penicillin substance code",
            amoxicillin.clone(),
            allergy_coded(SCT, "764146007"),
            Some(Severity::Contraindicated),
        ),
        (
            "allergy-to-penicillin finding code",
            amoxicillin.clone(),
            allergy_coded(SCT, "91936005"),
            Some(Severity::Contraindicated),
        ),
        (
            "penicillin allergy by text",
            amoxicillin.clone(),
            allergy_text("Penicillin allergy"),
            Some(Severity::Contraindicated),
        ),
        (
            "amoxicillin allergy, flucloxacillin ordered (one penicillin is all)",
            order("96067005"),
            allergy_coded(SCT, "372687004"),
            Some(Severity::Contraindicated),
        ),
        (
            "penicillin allergy, cefalexin ordered (cross-reactivity)",
            order("54887004"),
            allergy_coded(SCT, "91936005"),
            Some(Severity::Moderate),
        ),
        (
            "aspirin allergy, ibuprofen ordered (cross-reactivity)",
            order("329653008"),
            allergy_coded(SCT, "293586001"),
            Some(Severity::Serious),
        ),
        (
            "clopidogrel allergy by dm+d VTM",
            order("319799004"),
            allergy_coded(DMD, "108979001"),
            Some(Severity::Contraindicated),
        ),
        (
            "clopidogrel allergy by name",
            order("15926111000001104"),
            allergy_text("Clopidogrel"),
            Some(Severity::Contraindicated),
        ),
        (
            "penicillin allergy, clarithromycin ordered",
            order("83999008"),
            allergy_coded(SCT, "91936005"),
            None,
        ),
        (
            "macrolide allergy, clarithromycin ordered",
            order("83999008"),
            allergy_coded(SCT, "860907004"),
            Some(Severity::Contraindicated),
        ),
    ];
    for (name, o, a, expected) in cases {
        let allergies = [a];
        let problems = check_order(&o, &ctx(&[], &allergies, &[]));
        let found = of_kind(&problems, ProblemKind::Allergy);
        match expected {
            Some(sev) => {
                assert_eq!(found.len(), 1, "{name}: {problems:#?}");
                assert_eq!(found[0].severity, sev, "{name}");
                assert_eq!(found[0].code, Some(IssueCode::Algy));
                assert!(
                    found[0]
                        .implicated
                        .iter()
                        .any(|r| r.starts_with("AllergyIntolerance/")),
                    "{name}"
                );
            }
            None => assert!(found.is_empty(), "{name}: {problems:#?}"),
        }
    }
    // The cross-reactivity card carries the low-risk wording.
    let allergies = [allergy_coded(SCT, "91936005")];
    let problems = check_order(&order("54887004"), &ctx(&[], &allergies, &[]));
    assert!(
        problems[0].detail.contains("low risk"),
        "{}",
        problems[0].detail
    );
}

#[test]
fn refuted_entered_in_error_resolved_and_food_allergies_are_not_checked() {
    let base = json!({"resourceType": "AllergyIntolerance", "id": "a3",
        "code": {"coding": [{"system": SCT, "code": "764146007"}]}, "patient": {"reference": "Patient/p"}});
    let variants = [
        (
            "refuted",
            json!({"verificationStatus": {"coding": [{"code": "refuted"}]}}),
        ),
        (
            "entered in error",
            json!({"verificationStatus": {"coding": [{"code": "entered-in-error"}]}}),
        ),
        (
            "resolved",
            json!({"clinicalStatus": {"coding": [{"code": "resolved"}]}}),
        ),
        (
            "inactive",
            json!({"clinicalStatus": {"coding": [{"code": "inactive"}]}}),
        ),
        ("food only", json!({"category": ["food"]})),
    ];
    for (name, extra) in variants {
        let mut r = base.clone();
        for (k, v) in extra.as_object().into_iter().flatten() {
            r[k] = v.clone();
        }
        let allergies = [allergy(r)];
        let problems = check_order(&order("39732311000001104"), &ctx(&[], &allergies, &[]));
        assert!(problems.is_empty(), "{name}: {problems:#?}");
    }
}

#[test]
fn an_allergy_smr_cannot_read_says_so() {
    let allergies = [allergy(
        json!({"resourceType": "AllergyIntolerance", "id": "a4",
        "code": {"coding": [{"system": SCT, "code": "102263004", "display": "Eggs (edible) (substance)"}]},
        "patient": {"reference": "Patient/p"}}),
    )];
    let problems = check_order(&order("39732311000001104"), &ctx(&[], &allergies, &[]));
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].kind, ProblemKind::CannotCheck);
    assert!(
        problems[0].summary.contains("unknown allergy substance"),
        "{}",
        problems[0].summary
    );
    assert_eq!(problems[0].implicated, ["AllergyIntolerance/a4"]);
}

#[test]
fn renal_bands_missing_and_old_results() {
    let metformin = |tablets_bd: f64| {
        dosed(
            product(
                "m",
                "Metformin 500mg tablets",
                "metformin hydrochloride",
                Some("500 mg"),
                Some("Oral"),
            ),
            tablets_bd,
            "tablet",
            2.0,
        )
    };
    let egfr = |v: f64| vec![result(Measure::Egfr, v, 30)];
    type Case = (
        &'static str,
        Medicine,
        Vec<RenalResult>,
        Option<(Severity, IssueCode)>,
    );
    let cases: Vec<Case> = vec![
        (
            "metformin eGFR 25",
            order("109081006"),
            egfr(25.0),
            Some((Severity::Contraindicated, IssueCode::Lab)),
        ),
        (
            "metformin 1 g a day, eGFR 40",
            metformin(1.0),
            egfr(40.0),
            None,
        ),
        (
            "metformin 2 g a day, eGFR 40",
            metformin(2.0),
            egfr(40.0),
            Some((Severity::Serious, IssueCode::Dosecond)),
        ),
        (
            "metformin, dose unknown, eGFR 40",
            order("109081006"),
            egfr(40.0),
            Some((Severity::Serious, IssueCode::Dosecond)),
        ),
        ("metformin eGFR 75", order("109081006"), egfr(75.0), None),
        (
            "nitrofurantoin eGFR 40",
            order("85343003"),
            egfr(40.0),
            Some((Severity::Serious, IssueCode::Lab)),
        ),
        (
            "nitrofurantoin eGFR 50",
            order("85343003"),
            egfr(50.0),
            None,
        ),
        (
            "ibuprofen eGFR 28",
            order("329653008"),
            egfr(28.0),
            Some((Severity::Contraindicated, IssueCode::Lab)),
        ),
        (
            "apixaban CrCl 12",
            order("703908001"),
            vec![result(Measure::Crcl, 12.0, 10)],
            Some((Severity::Contraindicated, IssueCode::Lab)),
        ),
        (
            "dabigatran CrCl 40",
            order("13532811000001109"),
            vec![result(Measure::Crcl, 40.0, 10)],
            Some((Severity::Moderate, IssueCode::Lab)),
        ),
        (
            "edoxaban 60 mg, CrCl 40",
            dosed(order("29903411000001101"), 1.0, "tablet", 1.0),
            vec![result(Measure::Crcl, 40.0, 10)],
            Some((Severity::Moderate, IssueCode::Dosecond)),
        ),
        (
            "edoxaban 30 mg, CrCl 40",
            dosed(order("29903311000001108"), 1.0, "tablet", 1.0),
            vec![result(Measure::Crcl, 40.0, 10)],
            None,
        ),
        // The latest recent result counts.
        (
            "metformin, old low and recent normal eGFR",
            order("109081006"),
            vec![
                result(Measure::Egfr, 20.0, 200),
                result(Measure::Egfr, 70.0, 5),
            ],
            None,
        ),
    ];
    for (name, o, renal, expected) in cases {
        let problems = check_order(&o, &ctx(&[], &[], &renal));
        let found = of_kind(&problems, ProblemKind::Renal);
        match expected {
            Some((sev, code)) => {
                assert_eq!(found.len(), 1, "{name}: {problems:#?}");
                assert_eq!(
                    (found[0].severity, found[0].code),
                    (sev, Some(code)),
                    "{name}"
                );
                assert!(
                    found[0]
                        .implicated
                        .iter()
                        .any(|r| r.starts_with("Observation/")),
                    "{name}"
                );
            }
            None => assert!(problems.is_empty(), "{name}: {problems:#?}"),
        }
    }
}

#[test]
fn no_recent_renal_result_is_a_note_saying_what_is_missing() {
    for (name, renal) in [
        ("none", vec![]),
        (
            "only older than a year",
            vec![result(Measure::Egfr, 20.0, 400)],
        ),
    ] {
        let problems = check_order(&order("109081006"), &ctx(&[], &[], &renal));
        assert_eq!(problems.len(), 1, "{name}: {problems:#?}");
        assert_eq!(problems[0].kind, ProblemKind::CannotCheck, "{name}");
        let missing = problems[0].missing.as_deref().unwrap_or_default();
        assert!(
            missing.contains("eGFR") && missing.contains("365 days"),
            "{name}: {missing}"
        );
    }
    // A DOAC rule written for creatinine clearance uses a recent eGFR and says so.
    let renal = [result(Measure::Egfr, 20.0, 3)];
    let problems = check_order(&order("703908001"), &ctx(&[], &[], &renal));
    assert_eq!(problems[0].kind, ProblemKind::Renal, "{problems:#?}");
    assert!(
        problems[0].detail.contains("Cockcroft-Gault"),
        "{}",
        problems[0].detail
    );
}

#[test]
fn unmapped_medicines_are_cannot_check_notes_never_silence() {
    // The order itself.
    let problems = check_order(&order("Dr Bloggs' Herbal Tonic"), &ctx(&[], &[], &[]));
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].summary.contains("unmapped medicine"),
        "{}",
        problems[0].summary
    );
    // A visible current medicine the order could not be checked against.
    let meds = [med("x", "Mystery Elixir")];
    let problems = check_order(&order("322236009"), &ctx(&meds, &[], &[]));
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].kind, ProblemKind::CannotCheck);
    assert!(problems[0].summary.contains("Mystery Elixir"));
    // A hidden one gives nothing (and names nothing).
    let meds = [hidden(med("x", "Mystery Elixir"))];
    assert!(check_order(&order("322236009"), &ctx(&meds, &[], &[])).is_empty());
}

#[test]
fn a_hidden_medicine_is_checked_but_never_named() {
    let secret = hidden(med("secret-line", "321987003")); // citalopram 20mg tablets
    let meds = [secret];
    let problems = check_order(&order("69236009"), &ctx(&meds, &[], &[])); // amiodarone
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = &problems[0];
    assert_eq!(p.severity, Severity::Contraindicated);
    assert_eq!(p.hidden, 1);
    assert!(
        p.summary.contains("medicine you cannot see"),
        "{}",
        p.summary
    );
    let text = serde_json::to_string(p).expect("serialisable");
    for secret in [
        "italopram",
        "321987003",
        "secret-line",
        "QT",
        "Drug Safety Update",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[test]
fn the_record_review_checks_every_pair_once_and_sorts_most_severe_first() {
    let meds = [
        med("simva", "320000009"),
        med("clari", "83999008"),
        med("ibu", "329653008"),
        med("napro", "11847009"),
        med("omep", "25673006"),
        med("lanso", "108666007"),
        med("para", "322236009"),
    ];
    let problems = review_record(&ctx(&meds, &[], &[]));
    let severities: Vec<Severity> = problems.iter().map(|p| p.severity).collect();
    let mut sorted = severities.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(severities, sorted, "{problems:#?}");
    assert_eq!(problems[0].severity, Severity::Contraindicated);
    // Simvastatin + clarithromycin, the NSAID duplication and the PPI duplication; then the
    // two NSAIDs' renal checks, which have no eGFR to run on.
    let hazards = problems
        .iter()
        .filter(|p| p.kind != ProblemKind::CannotCheck)
        .count();
    assert_eq!(hazards, 3, "{problems:#?}");
    assert_eq!(
        of_kind(&problems, ProblemKind::CannotCheck).len(),
        2,
        "{problems:#?}"
    );
}

#[test]
fn observations_are_read_as_renal_results_by_loinc_or_snomed() {
    let renal = rules().renal();
    let obs = |system: &str, code: &str, status: &str| {
        json!({"resourceType": "Observation", "id": "o1", "status": status,
            "code": {"coding": [{"system": system, "code": code}]},
            "effectiveDateTime": "2026-11-01",
            "valueQuantity": {"value": 42, "unit": "mL/min/1.73m2"}})
    };
    let r = read_renal(&obs("http://loinc.org", "62238-1", "final"), renal, true).expect("eGFR");
    assert_eq!((r.measure, r.value), (Measure::Egfr, 42.0));
    let r = read_renal(&obs(SCT, "968191000000100", "final"), renal, true).expect("CrCl");
    assert_eq!(r.measure, Measure::Crcl);
    assert!(read_renal(&obs("http://loinc.org", "2160-0", "final"), renal, true).is_none());
    assert!(
        read_renal(
            &obs("http://loinc.org", "62238-1", "entered-in-error"),
            renal,
            true
        )
        .is_none()
    );
    let mut below = obs("http://loinc.org", "33914-3", "final");
    below["valueQuantity"] = json!({"value": 15, "comparator": "<"});
    let r = read_renal(&below, renal, true).expect("eGFR");
    assert!(r.value < 15.0 && r.value_text == "<15");
}
