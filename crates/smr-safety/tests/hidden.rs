//! Property: whatever the record, the output of a check never names, codes or references a
//! medicine, allergy or result the caller may not see, while problems involving it are still
//! reported (as "a medicine you cannot see").

use std::sync::{Arc, OnceLock};

use proptest::prelude::*;
use serde_json::json;
use smr_dmd::{Layered, MedicineLookup};
use smr_safety::fhir_in::read_allergy;
use smr_safety::fhir_out::{detected_issue, note_issue};
use smr_safety::{
    Allergy, Measure, Medicine, Problem, RenalResult, SafetyContext, bundled, check_order,
    review_record,
};

const DMD: &str = "https://dmd.nhs.uk";
const NOW: i64 = 1_796_083_200_000_000;
const DAY: i64 = 86_400_000_000;

/// Medicines that take part in many rules (interactions, duplication, allergy, renal).
const POOL: &[&str] = &[
    "321987003",         // citalopram 20mg tablets
    "69236009",          // amiodarone
    "83999008",          // clarithromycin
    "320000009",         // simvastatin 40mg tablets
    "108537001",         // amlodipine
    "319799004",         // clopidogrel 75mg tablets
    "317334001",         // esomeprazole 40mg tablets
    "329653008",         // ibuprofen 400mg tablets
    "11847009",          // naproxen
    "48603004",          // warfarin
    "322341003",         // co-codamol 30/500 tablets
    "322236009",         // paracetamol 500mg tablets
    "321196004",         // diazepam 2mg tablets
    "108402001",         // gabapentin
    "109081006",         // metformin
    "703908001",         // apixaban 5mg tablets
    "39732311000001104", // amoxicillin 250mg capsules
    "54887004",          // cefalexin
    "108564000",         // ramipril
    "96309000",          // losartan
    "13929005",          // spironolactone
];

const ALLERGY_CODES: &[(&str, &str)] = &[
    ("http://snomed.info/sct", "764146007"),
    ("http://snomed.info/sct", "91936005"),
    ("http://snomed.info/sct", "293586001"),
    ("https://dmd.nhs.uk", "108979001"),
    ("http://snomed.info/sct", "102263004"),
];

fn lookup() -> &'static Layered {
    static L: OnceLock<Layered> = OnceLock::new();
    L.get_or_init(Layered::default)
}

fn medicine(i: usize, pool: usize, visible: bool, tag: u32) -> Medicine {
    let code = POOL[pool % POOL.len()];
    let info = lookup().resolve(&[(Some(DMD), code)], None);
    // Hidden medicines get names, keys and ids no rule text could contain by chance.
    let (name, key, entry) = if visible {
        (
            info.as_ref()
                .map_or(code.to_owned(), |i| i.matched.name.clone()),
            format!("line-{i}"),
            format!("MedicationRequest/m{i}"),
        )
    } else {
        (
            format!("Secretname{tag}x{i}"),
            format!("secretkey{tag}x{i}"),
            format!("MedicationRequest/secretentry{tag}x{i}"),
        )
    };
    Medicine {
        key,
        name,
        entries: vec![entry],
        info: info.map(Arc::new),
        dose: None,
        route: None,
        visible,
        setting: Some("gp-practice".into()),
    }
}

fn allergy(i: usize, which: usize, visible: bool, tag: u32) -> Allergy {
    let (system, code) = ALLERGY_CODES[which % ALLERGY_CODES.len()];
    let id = if visible {
        format!("a{i}")
    } else {
        format!("secretallergy{tag}x{i}")
    };
    let r = json!({"resourceType": "AllergyIntolerance", "id": id,
        "code": {"coding": [{"system": system, "code": code}]}, "patient": {"reference": "Patient/p"}});
    read_allergy(&r, visible).expect("an allergy")
}

fn output(problems: &[Problem]) -> String {
    let mut text = serde_json::to_string(problems).expect("serialisable");
    for p in problems {
        if let Some(issue) = detected_issue(p, "Patient/p", "2026-12-01T00:00:00Z") {
            text.push_str(&issue.to_string());
        }
        if let Some(note) = note_issue(p) {
            text.push_str(&note.to_string());
        }
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_output_never_names_a_hidden_medicine(
        meds in prop::collection::vec((0..POOL.len(), any::<bool>()), 0..12),
        allergies in prop::collection::vec((0..ALLERGY_CODES.len(), any::<bool>()), 0..3),
        egfr in prop::option::of((5.0f64..120.0, any::<bool>())),
        order in 0..POOL.len(),
        tag in any::<u32>(),
    ) {
        let meds: Vec<Medicine> = meds
            .iter()
            .enumerate()
            .map(|(i, (p, v))| medicine(i, *p, *v, tag))
            .collect();
        let allergies: Vec<Allergy> = allergies
            .iter()
            .enumerate()
            .map(|(i, (w, v))| allergy(i, *w, *v, tag))
            .collect();
        let renal: Vec<RenalResult> = egfr
            .iter()
            .map(|(value, visible)| RenalResult {
                measure: Measure::Egfr,
                value: *value,
                value_text: format!("{value}"),
                when: NOW - 10 * DAY,
                when_text: "2026-11-21".into(),
                reference: Some(if *visible { "Observation/e".into() } else { format!("Observation/secretresult{tag}") }),
                visible: *visible,
            })
            .collect();
        let rules = bundled().expect("rules");
        let ctx = SafetyContext {
            medicines: &meds,
            allergies: &allergies,
            renal: &renal,
            now: NOW,
            lookup: lookup(),
            rules,
        };
        let mut order = medicine(99, order, true, tag);
        order.key = "order".into();
        order.entries = vec!["MedicationRequest/draft".into()];
        let text = format!(
            "{}{}",
            output(&check_order(&order, &ctx)),
            output(&review_record(&ctx))
        );
        prop_assert!(!text.contains("Secretname"), "a hidden name leaked: {}", text);
        prop_assert!(!text.contains("secretkey"), "a hidden key leaked: {}", text);
        prop_assert!(!text.contains("secretentry"), "a hidden entry leaked: {}", text);
        prop_assert!(!text.contains("secretallergy"), "a hidden allergy leaked: {}", text);
        prop_assert!(!text.contains("secretresult"), "a hidden result leaked: {}", text);
        // A hidden medicine's dm+d code appears only if something visible carries it.
        let visible_codes: Vec<String> = meds
            .iter()
            .filter(|m| m.visible)
            .chain(std::iter::once(&order))
            .filter_map(|m| m.info.as_ref().map(|i| i.matched.code.clone()))
            .chain(allergies.iter().filter(|a| a.visible).flat_map(|a| a.codings.iter().map(|c| c.1.clone())))
            .collect();
        for m in meds.iter().filter(|m| !m.visible) {
            if let Some(info) = &m.info
                && !visible_codes.contains(&info.matched.code)
            {
                prop_assert!(!text.contains(&info.matched.code), "hidden code {} leaked: {}", info.matched.code, text);
            }
        }
    }
}

#[test]
fn a_hidden_interacting_medicine_still_gives_a_problem() {
    let meds = vec![medicine(0, 0, false, 7)]; // citalopram, hidden
    let rules = bundled().expect("rules");
    let ctx = SafetyContext {
        medicines: &meds,
        allergies: &[],
        renal: &[],
        now: NOW,
        lookup: lookup(),
        rules,
    };
    let order = medicine(1, 1, true, 7); // amiodarone
    let problems = check_order(&order, &ctx);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0].hidden, 1);
    assert!(problems[0].summary.contains("cannot see"));
}
