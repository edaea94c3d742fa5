//! Synthetic [`PatientFacts`] in memory, deterministic from a seed: for the 1-million-patient
//! benchmark and for tests. Not clinical data and not the FHIR population (smr-synth is).

use smr_pgx::Gene;
use time::Date;

use crate::facts::{
    AgeBand, Alert, EthnicGroup, Feedback, GenotypeResult, ImdQuintile, Month, PatientFacts,
    PrescribingChange, Prescription, Sex,
};

/// SplitMix64: small, fast and good enough to spread synthetic attributes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const DRUGS: [(&str, Gene); 5] = [
    ("clopidogrel", Gene::Cyp2c19),
    ("codeine", Gene::Cyp2d6),
    ("simvastatin", Gene::Slco1b1),
    ("citalopram", Gene::Cyp2c19),
    ("warfarin", Gene::Cyp2c9),
];

const REASONS: [&str; 3] = [
    "https://fhir.smr.nhs.uk/CodeSystem/override-reason|patient-tolerating",
    "https://fhir.smr.nhs.uk/CodeSystem/override-reason|no-alternative",
    "https://fhir.smr.nhs.uk/CodeSystem/override-reason|specialist-advice",
];

fn day(month: Month, rng: &mut Rng) -> Option<Date> {
    let m = time::Month::try_from(month.month).ok()?;
    Date::from_calendar_date(month.year, m, 1 + rng.below(28) as u8).ok()
}

/// `n` patients across 2 ICBs, 6 sub-ICBs and about one practice per 7,000 patients (at least
/// 6), with events in `month` and the month before.
pub fn population(n: usize, seed: u64, month: Month) -> Vec<PatientFacts> {
    let mut rng = Rng(seed);
    let practices = (n / 7000).max(6);
    let months = [month, month.previous()];
    (0..n)
        .map(|i| {
            let practice = i % practices;
            let sub_icb = practice % 6;
            let icb = sub_icb / 3;
            let mut p = PatientFacts {
                practice: format!("Y9{:04}", practice),
                sub_icb: format!("99X{sub_icb}"),
                icb: format!("Q9{}", ["X", "Y"][icb]),
                age_band: AgeBand::ALL[rng.below(5) as usize],
                sex: Sex::ALL[(rng.below(100) >= 49) as usize],
                ethnicity: EthnicGroup::ALL[rng.below(6) as usize],
                imd_quintile: ImdQuintile::new(1 + rng.below(5) as u8),
                opted_out: rng.chance(3),
                prescriptions: Vec::new(),
                genotypes: Vec::new(),
                alerts: Vec::new(),
                changes: Vec::new(),
                admissions: Vec::new(),
            };
            if !rng.chance(12) {
                return p;
            }
            let (drug, gene) = DRUGS[rng.below(DRUGS.len() as u64) as usize];
            for m in months {
                if let Some(d) = day(m, &mut rng) {
                    p.prescriptions.push(Prescription {
                        date: d,
                        drug: drug.to_string(),
                    });
                }
            }
            // Deprivation lowers the synthetic testing rate so equity gaps exist to be seen.
            let q = p.imd_quintile.map_or(3, ImdQuintile::get) as u64;
            if rng.chance(15 + 5 * q) {
                let actionable = rng.chance(40);
                if let Some(d) = day(months[1], &mut rng) {
                    p.genotypes.push(GenotypeResult {
                        date: d,
                        gene,
                        actionable_for: if actionable {
                            vec![drug.to_string()]
                        } else {
                            vec![]
                        },
                    });
                }
                for m in months {
                    if rng.chance(50)
                        && let Some(d) = day(m, &mut rng)
                    {
                        let feedback = match rng.below(3) {
                            0 => None,
                            1 => Some(Feedback::Accepted),
                            _ => Some(Feedback::Overridden {
                                reason: Some(REASONS[rng.below(3) as usize].to_string()),
                            }),
                        };
                        p.alerts.push(Alert { date: d, feedback });
                    }
                }
                if actionable
                    && rng.chance(60)
                    && let Some(d) = day(months[rng.below(2) as usize], &mut rng)
                {
                    p.changes.push(PrescribingChange {
                        date: d,
                        drug: drug.to_string(),
                    });
                }
                if rng.chance(8)
                    && let Some(d) = day(month, &mut rng)
                {
                    p.admissions.push(d);
                }
            }
            p
        })
        .collect()
}
