//! `smr-bench-pincer`: all 13 PINCER indicators (14 measures) over N synthetic patients, pure
//! and in memory (`smr_safety::pincer`, no store), then counted per practice with ranks and
//! deciles. Reports the time to evaluate, patients per second, and the process's peak
//! resident memory (`VmHWM`), which includes the generated population.
//!
//! The population is deterministic (a seeded xorshift): ages 18–100, 0–8 prescriptions dated
//! in the 18 months before the reference date drawn from real dm+d codes of every PINCER drug
//! group (resolved once through SMR's starter dictionary, brands included), and 0–4 coded
//! events (conditions, tests, eGFR results) from the PINCER code sets. 1 in 10,000 patients
//! has no birth date (cannot be evaluated).
//!
//! `cargo run --release -p smr-bench --bin smr-bench-pincer -- --patients 1000000`

use std::time::Instant;

use anyhow::{Context, bail};
use smr_dmd::MedicineLookup;
use smr_safety::pincer::aggregate::{self, Level, PatientRow};
use smr_safety::pincer::{ClinicalEvent, Date, EventKind, PatientData, Prescription};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DMD: &str = "https://dmd.nhs.uk";
const SCT: &str = "http://snomed.info/sct";

/// Real dm+d codes, one or more per drug group (VMPs and a few AMPs).
const CODES: [&str; 18] = [
    "329653008",         // ibuprofen 400mg tablets
    "11177511000001107", // ibuprofen 400mg tablets (Zentiva)
    "329807003",         // naproxen 500mg tablets
    "317291008",         // omeprazole 20mg capsules
    "317249006",         // ranitidine 150mg tablets
    "319733000",         // warfarin 1mg tablets
    "703908001",         // apixaban 5mg tablets
    "319773006",         // aspirin 75mg dispersible tablets
    "319799004",         // clopidogrel 75mg tablets
    "318353009",         // propranolol 40mg tablets
    "330734009",         // dorzolamide/timolol eye drops
    "318902004",         // ramipril 5mg capsules
    "317972000",         // furosemide 40mg tablets
    "326874007",         // methotrexate 2.5mg tablets
    "13177001000001108", // lithium carbonate 400mg m/r tablets
    "318187007",         // amiodarone 200mg tablets
    "318956006",         // losartan 50mg tablets (in no PINCER group)
    "318056008",         // spironolactone 25mg tablets (in no PINCER group)
];

/// SNOMED CT codes: peptic ulcer, GI bleed, asthma, asthma resolved, heart failure, eGFR,
/// FBC, LFT, creatinine, U&E, lithium level, T3.
const EVENT_CODES: [&str; 12] = [
    "13200003",
    "37372002",
    "195967001",
    "162660004",
    "84114007",
    "1011481000000105",
    "26604007",
    "26958001",
    "1000731000000107",
    "1000971000000107",
    "1006681000000100",
    "1010501000000106",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn main() -> anyhow::Result<()> {
    let mut patients: usize = 1_000_000;
    let mut practices: usize = 6_500;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--patients" => patients = args.next().context("--patients N")?.parse()?,
            "--practices" => practices = args.next().context("--practices N")?.parse()?,
            other => bail!("unknown argument {other} (--patients N, --practices N)"),
        }
    }
    let pincer = smr_safety::pincer::definitions()?;
    let at = Date::from_ymd(2026, 6, 1).context("reference date")?;
    let lookup = smr_dmd::starter();
    let masks: Vec<u32> = CODES
        .iter()
        .map(|c| {
            lookup
                .resolve(&[(Some(DMD), c)], None)
                .map(|info| pincer.groups_of(&info))
                .with_context(|| format!("{c} is not in the starter dictionary"))
        })
        .collect::<anyhow::Result<_>>()?;
    let sets: Vec<u32> = EVENT_CODES
        .iter()
        .map(|c| pincer.sets_of([(SCT, *c)]))
        .collect();

    let started = Instant::now();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut population = Vec::with_capacity(patients);
    let mut units = Vec::with_capacity(patients);
    for i in 0..patients {
        let age = 18 + rng.below(83) as i32;
        let birth = Date::from_days(at.days() - age * 365 - rng.below(365) as i32);
        let mut data = PatientData {
            birth_date: (rng.below(10_000) != 0).then_some(birth),
            ..PatientData::default()
        };
        for k in 0..rng.below(9) {
            data.prescriptions.push(Prescription {
                reference: format!("MedicationRequest/{i}-{k}"),
                date: Date::from_days(at.days() - rng.below(550) as i32),
                groups: masks[rng.below(masks.len() as u64) as usize],
                visible: true,
            });
        }
        for k in 0..rng.below(5) {
            let e = rng.below(sets.len() as u64) as usize;
            data.events.push(ClinicalEvent {
                reference: format!("Observation/{i}-{k}"),
                kind: EventKind::Observation,
                date: Date::from_days(at.days() - rng.below(3_000) as i32),
                sets: sets[e],
                value: (e == 5).then(|| 20.0 + rng.below(80) as f64),
                resolved: false,
                visible: true,
            });
        }
        population.push(data);
        units.push(rng.below(practices as u64));
    }
    let generated = started.elapsed();

    let started = Instant::now();
    let mut rows = Vec::with_capacity(patients);
    let mut flagged = 0u64;
    for (data, unit) in population.iter().zip(&units) {
        let flags = pincer.flags(data, at);
        flagged += flags.iter().filter(|f| f.1).count() as u64;
        rows.push(PatientRow {
            practice: Some(format!("P{unit:05}")),
            sub_icb: None,
            icb: Some(format!("I{:02}", unit % 42)),
            flags,
        });
    }
    let evaluated = started.elapsed();
    let started = Instant::now();
    let counts = aggregate::count(&rows, Level::Practice, pincer.indicators.len());
    let mut deciles = 0;
    for units in &counts.per_indicator {
        let rates: Vec<Option<f64>> = units
            .iter()
            .map(|u| aggregate::rate(Some(u.numerator), Some(u.denominator)))
            .collect();
        let _ranks = aggregate::percentile_ranks(&rates);
        deciles += usize::from(aggregate::deciles(&rates).is_some());
    }
    let aggregated = started.elapsed();

    println!(
        "PINCER: {} indicators (measures) over {patients} synthetic patients, {practices} practices",
        pincer.indicators.len()
    );
    println!(
        "  generate population   {:>10.3} s",
        generated.as_secs_f64()
    );
    println!(
        "  evaluate all          {:>10.3} s  ({:.0} patients/s, {:.2} µs/patient)",
        evaluated.as_secs_f64(),
        patients as f64 / evaluated.as_secs_f64(),
        evaluated.as_secs_f64() * 1e6 / patients as f64
    );
    println!(
        "  aggregate + rank      {:>10.3} s  ({deciles} indicators with deciles)",
        aggregated.as_secs_f64()
    );
    println!("  numerator flags       {flagged:>10}");
    match peak_rss_kib() {
        Some(kib) => println!(
            "  peak resident memory  {:>10.1} MiB (VmHWM)",
            kib as f64 / 1024.0
        ),
        None => println!("  peak resident memory  unknown (no /proc/self/status)"),
    }
    Ok(())
}
