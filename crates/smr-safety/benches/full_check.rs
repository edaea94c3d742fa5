//! `full safety check of a 20-medicine patient`: the CPU work of `$safety-check` once the
//! record is read — every pair of 20 current medicines against every interaction and
//! duplication rule, each against 2 allergies and the renal rules with an eGFR on record —
//! and of one order checked against the same record (what a CDS order-select adds).
//! Target (issue 11): at most 1 ms of CPU for the full review.
//!
//! `cargo bench -p smr-safety --bench full_check`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use smr_dmd::{Layered, MedicineLookup};
use smr_safety::fhir_in::read_allergy;
use smr_safety::{
    DoseFacts, Measure, Medicine, RenalResult, SafetyContext, bundled, check_order, review_record,
};

const NOW: i64 = 1_796_083_200_000_000;

/// 20 medicines typical of an older patient on many medicines, several of which interact,
/// duplicate or have renal rules.
const RECORD: &[&str] = &[
    "320000009",         // simvastatin 40mg tablets
    "108537001",         // amlodipine
    "108564000",         // ramipril
    "13929005",          // spironolactone
    "109081006",         // metformin
    "319799004",         // clopidogrel 75mg tablets
    "25673006",          // omeprazole
    "703908001",         // apixaban 5mg tablets
    "329653008",         // ibuprofen 400mg tablets
    "322341003",         // co-codamol 30/500 tablets
    "322236009",         // paracetamol 500mg tablets
    "108402001",         // gabapentin
    "321196004",         // diazepam 2mg tablets
    "321987003",         // citalopram 20mg tablets
    "69236009",          // amiodarone
    "83999008",          // clarithromycin
    "96309000",          // losartan
    "7577004",           // ciprofloxacin
    "325427002",         // prednisolone 5mg tablets
    "39732311000001104", // amoxicillin 250mg capsules
];

fn bench(c: &mut Criterion) {
    let lookup = Layered::default();
    let medicines: Vec<Medicine> = RECORD
        .iter()
        .enumerate()
        .map(|(i, code)| {
            let info = lookup
                .resolve(&[(Some("https://dmd.nhs.uk"), code)], None)
                .expect("in the starter dictionary");
            Medicine {
                key: format!("line-{i}"),
                name: info.matched.name.clone(),
                entries: vec![format!("MedicationRequest/m{i}")],
                info: Some(Arc::new(info)),
                dose: Some(DoseFacts {
                    value: 1.0,
                    unit: "tablet".into(),
                    per_day: Some(1.0),
                }),
                route: Some("Oral".into()),
                visible: i % 7 != 3,
                setting: Some("gp-practice".into()),
            }
        })
        .collect();
    assert_eq!(medicines.len(), 20);
    let allergies = vec![
        read_allergy(
            &json!({"resourceType": "AllergyIntolerance", "id": "a1",
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91936005"}]}}),
            true,
        )
        .expect("allergy"),
        read_allergy(
            &json!({"resourceType": "AllergyIntolerance", "id": "a2", "code": {"text": "Aspirin"}}),
            true,
        )
        .expect("allergy"),
    ];
    let renal = vec![RenalResult {
        measure: Measure::Egfr,
        value: 38.0,
        value_text: "38".into(),
        when: NOW - 30 * 86_400_000_000,
        when_text: "2026-11-01".into(),
        reference: Some("Observation/egfr".into()),
        visible: true,
    }];
    let rules = bundled().expect("rules");
    let ctx = SafetyContext {
        medicines: &medicines,
        allergies: &allergies,
        renal: &renal,
        now: NOW,
        lookup: &lookup,
        rules,
    };
    let found = review_record(&ctx);
    assert!(
        found.len() > 10,
        "the record is meant to be full of problems"
    );
    c.bench_function("full safety check of a 20-medicine patient", |b| {
        b.iter(|| black_box(review_record(black_box(&ctx))))
    });
    let mut order = medicines[8].clone();
    order.key = "order".into();
    c.bench_function("one order checked against a 20-medicine patient", |b| {
        b.iter(|| black_box(check_order(black_box(&order), black_box(&ctx))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
