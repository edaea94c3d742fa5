//! The CPU work of one CDS `order-select` call, without HTTP: reading the request (with a
//! genotypes prefetch of 12 Observations, as `scripts/bench-cds.sh` sends), and assessing the
//! draft order into cards, then serialising the response.
//!
//! `cargo bench -p smr-cds --bench order_select`

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use smr_cds::genotype::{
    PhenotypeSource, ResultContext, genotype_observation, phenotype_observation,
};
use smr_cds::hooks::{self, SERVICES};
use smr_cds::{PatientResults, genotype};
use smr_pgx::{Gene, interpret};

const CALLS: &[(Gene, &str)] = &[
    (Gene::Cyp2c19, "*2/*2"),
    (Gene::Cyp2d6, "*1/*1"),
    (Gene::Cyp2c9, "*1/*1"),
    (Gene::Cyp3a5, "*3/*3"),
    (Gene::Tpmt, "*1/*1"),
    (Gene::Slco1b1, "*1/*1"),
];

fn request(medication: Value) -> Vec<u8> {
    let ctx = ResultContext {
        patient_ref: "Patient/p1",
        performer: None,
        issued: "2026-11-29T10:00:00Z",
    };
    let mut entries = Vec::new();
    for (i, (gene, diplotype)) in CALLS.iter().enumerate() {
        let mut g = genotype_observation(ctx, *gene, diplotype);
        g["id"] = json!(format!("g{i}"));
        g["meta"]["versionId"] = json!("1");
        g["meta"]["lastUpdated"] = json!("2026-11-29T10:00:00.000001Z");
        let interpretation = interpret(*gene, diplotype);
        let mut p = phenotype_observation(
            ctx,
            *gene,
            interpretation.phenotype.as_str(),
            PhenotypeSource {
                activity_score: interpretation.activity_score.as_deref(),
                derived_from: Some(&format!("Observation/g{i}")),
                note: "Interpreted by SMR from the reported diplotype with the CPIC tables.",
            },
        );
        p["id"] = json!(format!("p{i}"));
        entries.push(json!({"fullUrl": format!("http://localhost/fhir/Observation/g{i}"), "resource": g, "search": {"mode": "match"}}));
        entries.push(json!({"fullUrl": format!("http://localhost/fhir/Observation/p{i}"), "resource": p, "search": {"mode": "match"}}));
    }
    let body = json!({
        "hook": "order-select",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {
            "userId": "Practitioner/example",
            "patientId": "p1",
            "selections": ["MedicationRequest/draft-1"],
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
                "resourceType": "MedicationRequest", "id": "draft-1", "status": "draft", "intent": "order",
                "subject": {"reference": "Patient/p1"},
                "medicationCodeableConcept": medication,
                "dosageInstruction": [{"text": "75 mg once daily"}]
            }}]}
        },
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "p1"},
            "genotypes": {"resourceType": "Bundle", "type": "searchset", "total": entries.len(), "entry": entries}
        }
    });
    serde_json::to_vec(&body).expect("serialisable")
}

/// What the server does with a request, minus HTTP and the store.
fn order_select(body: &[u8]) -> Vec<u8> {
    let service = &SERVICES[0];
    let req = hooks::parse_request(service, body).expect("a valid request");
    let orders = hooks::orders_to_check(service.hook, &req.context);
    let results = if req.needs_results() {
        let (ok, _bad) = req
            .prefetched_results()
            .expect("prefetched")
            .expect("a readable Bundle");
        PatientResults::new(ok)
    } else {
        PatientResults::default()
    };
    let cards = hooks::order_cards(&orders, &results);
    serde_json::to_vec(&json!({ "cards": cards })).expect("serialisable")
}

fn bench(c: &mut Criterion) {
    let clopidogrel = request(
        json!({"coding": [{"system": "https://dmd.nhs.uk", "code": "319799004", "display": "Clopidogrel 75mg tablets"}]}),
    );
    let paracetamol = request(json!({"text": "Paracetamol 500mg tablets"}));
    assert!(!order_select(&clopidogrel).is_empty());
    let mut g = c.benchmark_group("order_select");
    g.throughput(criterion::Throughput::Bytes(clopidogrel.len() as u64));
    g.bench_function("clopidogrel_prefetch", |b| {
        b.iter(|| order_select(&clopidogrel))
    });
    g.bench_function("paracetamol_prefetch", |b| {
        b.iter(|| order_select(&paracetamol))
    });
    g.bench_function("parse_only", |b| {
        b.iter(|| {
            let req = hooks::parse_request(&SERVICES[0], &clopidogrel).expect("valid");
            req.prefetched_results().map(|r| r.map(|(ok, _)| ok.len()))
        })
    });
    g.bench_function("value_parse_for_comparison", |b| {
        b.iter(|| {
            let v: Value = serde_json::from_slice(&clopidogrel).expect("json");
            genotype::results_from_bundle(&v["prefetch"]["genotypes"])
                .0
                .len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
