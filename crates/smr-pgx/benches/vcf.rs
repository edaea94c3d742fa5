//! VCF → diplotype calling throughput. Uses PharmCAT's example VCF when the
//! reference data is present, otherwise a synthetic VCF with the same shape (every
//! defining position of every built-in gene), replicated to 100 samples.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smr_pgx::vcf::{DefinitionSet, call_vcf};

const EXAMPLE: &str = "/work/shared/reference/pgx/pharmcat/example/pharmcat.example.vcf";
const SAMPLES: usize = 100;

/// Widen a single-sample VCF to `n` identical samples.
fn widen(vcf: &str, n: usize) -> String {
    let mut out = String::with_capacity(vcf.len() * 4);
    for line in vcf.lines() {
        if line.starts_with("##") {
            out.push_str(line);
        } else if line.starts_with('#') {
            let fixed: Vec<&str> = line.split('\t').take(9).collect();
            out.push_str(&fixed.join("\t"));
            for i in 0..n {
                out.push_str(&format!("\tS{i}"));
            }
        } else {
            let cols: Vec<&str> = line.split('\t').collect();
            out.push_str(&cols[..9.min(cols.len())].join("\t"));
            let gt = cols.get(9).copied().unwrap_or("0/0");
            for _ in 0..n {
                out.push('\t');
                out.push_str(gt);
            }
        }
        out.push('\n');
    }
    out
}

fn synthetic(defs: &DefinitionSet) -> String {
    let mut v = String::from(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS\n",
    );
    for g in defs.genes() {
        for (i, p) in g.positions.iter().enumerate() {
            let alt = p.alts.first().map_or(".", String::as_str);
            let gt = if i == 0 && alt != "." { "0/1" } else { "0/0" };
            v.push_str(&format!(
                "{}\t{}\t.\t{}\t{alt}\t.\tPASS\t.\tGT\t{gt}\n",
                p.chromosome, p.position, p.reference
            ));
        }
    }
    v
}

fn bench(c: &mut Criterion) {
    let Ok(defs) = DefinitionSet::builtin() else {
        eprintln!("built-in definitions do not parse; nothing to benchmark");
        return;
    };
    let one = std::fs::read_to_string(EXAMPLE).unwrap_or_else(|_| {
        eprintln!("NOTICE: {EXAMPLE} absent; benchmarking a synthetic VCF");
        synthetic(defs)
    });
    let mut g = c.benchmark_group("vcf");
    g.throughput(Throughput::Elements(1));
    g.bench_function("call_example_1_sample", |b| b.iter(|| call_vcf(&one, defs)));
    let wide = widen(&one, SAMPLES);
    g.throughput(Throughput::Elements(SAMPLES as u64));
    g.bench_function("call_example_100_samples", |b| {
        b.iter(|| call_vcf(&wide, defs))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
