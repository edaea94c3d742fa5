//! Throughput of `interpret` over a realistic mix of genes and notations.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smr_pgx::{Gene, interpret};

const PANEL: [(Gene, &str); 16] = [
    (Gene::Cyp2c19, "*1/*17"),
    (Gene::Cyp2c19, "*2/*3"),
    (Gene::Cyp2c9, "*1/*3"),
    (Gene::Cyp2d6, "*1/*4"),
    (Gene::Cyp2d6, "*1x2/*10"),
    (Gene::Cyp2d6, "*2xN/*41"),
    (Gene::Dpyd, "Reference/c.1905+1G>A (*2A)"),
    (Gene::Tpmt, "*1/*3A"),
    (Gene::Nudt15, "*1/*3"),
    (Gene::Slco1b1, "*1/*5"),
    (Gene::Ugt1a1, "*28/*80+*28"),
    (Gene::Vkorc1, "-1639 AG"),
    (Gene::HlaB, "*15:02/*44:03"),
    (Gene::G6pd, "B/A-"),
    (Gene::MtRnr1, "m.1555A>G"),
    (Gene::Cyp3a5, "*3/*3"),
];

fn bench(c: &mut Criterion) {
    // Build the knowledge base outside the measurement.
    black_box(interpret(Gene::Cyp2c19, "*1/*1"));
    let mut group = c.benchmark_group("interpret");
    group.throughput(Throughput::Elements(PANEL.len() as u64));
    group.bench_function("panel_of_16", |b| {
        b.iter(|| {
            for (gene, diplotype) in PANEL {
                black_box(interpret(black_box(gene), black_box(diplotype)));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
