//! `--scenario analytics`: every analytics measure over N synthetic patients (default 1 million)
//! generated in memory (`smr_analytics::synthetic`), timed in three steps — generating the
//! facts, aggregating them (one pass: every level, both months, every equity group), and
//! publishing (disclosure control of every measure at every level, every equity split of every
//! ICB and sub-ICB, the result-to-change medians and the value model) — with the process's
//! peak resident memory (`VmHWM` from /proc/self/status) after each step.

use std::time::Instant;

use smr_analytics::{
    CpicDrugs, Dimension, Level, Measure, Month, ValueModel, aggregate, estimate_value,
    publish_delay_equity, publish_delays, publish_equity, publish_measure,
    publish_override_reasons, synthetic,
};

/// Peak resident set size so far, in MiB (Linux; `None` elsewhere).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn show(step: &str, started: Instant) {
    let rss = peak_rss_mib().map_or_else(|| "n/a".to_string(), |m| format!("{m:.0} MiB"));
    println!(
        "analytics  {step:<10} {:>9.1} ms   peak RSS {rss}",
        started.elapsed().as_secs_f64() * 1000.0
    );
}

pub(crate) fn analytics(patients: usize) -> anyhow::Result<()> {
    let month = Month {
        year: 2026,
        month: 11,
    };
    println!("analytics over {patients} synthetic patients, month {month}");
    let t = Instant::now();
    let facts = synthetic::population(patients, 42, month);
    show("generate", t);

    let drugs = CpicDrugs::level_a();
    let t = Instant::now();
    let agg = aggregate(&facts, month, drugs);
    show("aggregate", t);

    let t = Instant::now();
    let mut tables = 0usize;
    for level in Level::ALL {
        for m in Measure::ALL {
            publish_measure(&agg, m, level)?;
            tables += 2;
        }
        publish_delays(&agg, level)?;
        tables += 1;
    }
    let params = ValueModel::cited()?.parameters();
    for level in [Level::Icb, Level::SubIcb] {
        let codes: Vec<String> = agg.unit_codes(level).map(str::to_string).collect();
        for code in &codes {
            for d in Dimension::ALL {
                for m in Measure::ALL {
                    publish_equity(&agg, m, level, code, d)?;
                    tables += 2;
                }
                publish_delay_equity(&agg, level, code, d)?;
                tables += 2;
            }
            publish_override_reasons(&agg, level, code)?;
            estimate_value(&agg, level, code, &params)?;
            tables += 1;
        }
    }
    show("publish", t);
    println!(
        "analytics  {tables} disclosure-controlled tables; patients opted out and not counted: {:?}",
        agg.opted_out()
    );
    Ok(())
}
