//! Per-patient results counted per organisation unit (practice, sub-ICB, ICB) and month,
//! with OpenPrescribing-style percentile ranks and deciles.
//!
//! Pure: the caller supplies each patient's flags and units, and applies statistical
//! disclosure control between [`count`] and [`rank`], so that ranks and deciles are computed
//! from the published figures, never from counts that were withheld.

use std::collections::BTreeMap;

/// The level units are counted at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Practice,
    SubIcb,
    Icb,
}

impl Level {
    pub fn parse(text: &str) -> Option<Level> {
        match text {
            "practice" => Some(Level::Practice),
            "sub-icb" => Some(Level::SubIcb),
            "icb" => Some(Level::Icb),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Practice => "practice",
            Level::SubIcb => "sub-icb",
            Level::Icb => "icb",
        }
    }
}

/// One patient: where they are registered and their (denominator, numerator) flags in
/// indicator order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientRow {
    pub practice: Option<String>,
    pub sub_icb: Option<String>,
    pub icb: Option<String>,
    pub flags: Vec<(bool, bool)>,
}

impl PatientRow {
    fn unit(&self, level: Level) -> Option<&str> {
        match level {
            Level::Practice => self.practice.as_deref(),
            Level::SubIcb => self.sub_icb.as_deref(),
            Level::Icb => self.icb.as_deref(),
        }
    }
}

/// Raw counts of one unit for one indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitCount {
    pub unit: String,
    pub numerator: u64,
    pub denominator: u64,
}

/// The counts per indicator (outer, indicator order) and unit (inner, by unit code), and how
/// many patients had no unit at this level (not counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    pub per_indicator: Vec<Vec<UnitCount>>,
    pub without_unit: u64,
}

/// Counts the rows at `level` for `indicators` indicators. Every unit with a patient appears
/// for every indicator (a denominator of 0 included).
pub fn count(rows: &[PatientRow], level: Level, indicators: usize) -> Counts {
    let mut units: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
    let mut without_unit = 0;
    for row in rows {
        let Some(unit) = row.unit(level) else {
            without_unit += 1;
            continue;
        };
        let entry = units
            .entry(unit)
            .or_insert_with(|| vec![(0, 0); indicators]);
        for (i, (den, num)) in row.flags.iter().take(indicators).enumerate() {
            entry[i].0 += u64::from(*num && *den);
            entry[i].1 += u64::from(*den);
        }
    }
    let per_indicator = (0..indicators)
        .map(|i| {
            units
                .iter()
                .map(|(unit, c)| UnitCount {
                    unit: (*unit).to_owned(),
                    numerator: c[i].0,
                    denominator: c[i].1,
                })
                .collect()
        })
        .collect();
    Counts {
        per_indicator,
        without_unit,
    }
}

/// numerator / denominator, when both are known and the denominator is not 0.
pub fn rate(numerator: Option<u64>, denominator: Option<u64>) -> Option<f64> {
    match (numerator, denominator) {
        (Some(n), Some(d)) if d > 0 => Some(n as f64 / d as f64),
        _ => None,
    }
}

/// Percentile rank (0–100) of each rate among the known rates, as OpenPrescribing ranks
/// practices: SQL `PERCENT_RANK()` — (number of units with a lower rate) / (units − 1) × 100;
/// ties share the lowest rank; a single unit ranks 0. `None` rates get no rank.
pub fn percentile_ranks(rates: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut known: Vec<f64> = rates.iter().flatten().copied().collect();
    known.sort_by(f64::total_cmp);
    let n = known.len();
    rates
        .iter()
        .map(|r| {
            r.map(|r| {
                if n <= 1 {
                    return 0.0;
                }
                let below = known.partition_point(|k| *k < r);
                below as f64 / (n - 1) as f64 * 100.0
            })
        })
        .collect()
}

/// The 10th, 20th, … 90th percentiles of the known rates, by linear interpolation between
/// closest ranks (numpy's default, which OpenPrescribing's deciles use). `None` when no rate
/// is known.
pub fn deciles(rates: &[Option<f64>]) -> Option<[f64; 9]> {
    let mut known: Vec<f64> = rates.iter().flatten().copied().collect();
    if known.is_empty() {
        return None;
    }
    known.sort_by(f64::total_cmp);
    let mut out = [0.0; 9];
    for (k, slot) in out.iter_mut().enumerate() {
        let pos = (k + 1) as f64 / 10.0 * (known.len() - 1) as f64;
        let lo = pos.floor() as usize;
        let hi = pos.ceil() as usize;
        *slot = known[lo] + (known[hi] - known[lo]) * (pos - lo as f64);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(practice: &str, icb: &str, flags: &[(bool, bool)]) -> PatientRow {
        PatientRow {
            practice: Some(practice.into()),
            sub_icb: None,
            icb: Some(icb.into()),
            flags: flags.to_vec(),
        }
    }

    #[test]
    fn counts_per_unit_and_level() {
        let rows = vec![
            row("P1", "I1", &[(true, true), (false, false)]),
            row("P1", "I1", &[(true, false), (true, false)]),
            row("P2", "I1", &[(false, false), (true, true)]),
            // A numerator flag without the denominator is not counted.
            row("P2", "I1", &[(false, true), (false, false)]),
        ];
        let c = count(&rows, Level::Practice, 2);
        assert_eq!(
            c.per_indicator[0][0],
            UnitCount {
                unit: "P1".into(),
                numerator: 1,
                denominator: 2
            }
        );
        assert_eq!(
            c.per_indicator[0][1],
            UnitCount {
                unit: "P2".into(),
                numerator: 0,
                denominator: 0
            }
        );
        assert_eq!(
            c.per_indicator[1][1],
            UnitCount {
                unit: "P2".into(),
                numerator: 1,
                denominator: 1
            }
        );
        let icb = count(&rows, Level::Icb, 2);
        assert_eq!(
            icb.per_indicator[1][0],
            UnitCount {
                unit: "I1".into(),
                numerator: 1,
                denominator: 2
            }
        );
        let sub = count(&rows, Level::SubIcb, 2);
        assert_eq!(sub.without_unit, 4);
        assert!(sub.per_indicator[0].is_empty());
    }

    #[test]
    fn percentile_ranks_follow_percent_rank_with_ties() {
        let ranks =
            percentile_ranks(&[Some(0.1), None, Some(0.3), Some(0.2), Some(0.3), Some(0.0)]);
        assert_eq!(
            ranks,
            vec![
                Some(25.0),
                None,
                Some(75.0),
                Some(50.0),
                Some(75.0),
                Some(0.0)
            ]
        );
        assert_eq!(percentile_ranks(&[Some(0.5)]), vec![Some(0.0)]);
    }

    #[test]
    fn deciles_interpolate_linearly() {
        let rates: Vec<Option<f64>> = (0..=10).map(|i| Some(i as f64 / 10.0)).collect();
        let d = deciles(&rates).unwrap_or_default();
        for (k, v) in d.iter().enumerate() {
            assert!((v - (k + 1) as f64 / 10.0).abs() < 1e-12, "{d:?}");
        }
        let two = deciles(&[Some(0.0), Some(1.0), None]).unwrap_or_default();
        assert!((two[0] - 0.1).abs() < 1e-12 && (two[8] - 0.9).abs() < 1e-12);
        assert!(deciles(&[None]).is_none());
        assert_eq!(rate(Some(1), Some(0)), None);
        assert_eq!(rate(None, Some(4)), None);
        assert_eq!(rate(Some(1), Some(4)), Some(0.25));
    }
}
