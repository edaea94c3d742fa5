//! One pass over the patients: raw counts per unit, month and equity group. Raw counts never
//! leave the crate; `publish` turns them into disclosure-controlled tables.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use time::Date;

use crate::facts::{AgeBand, EthnicGroup, Feedback, Month, PatientFacts, Sex};
use crate::knowledge::CpicDrugs;

/// Organisational level of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    Icb,
    SubIcb,
    Practice,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Icb, Level::SubIcb, Level::Practice];
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "icb" => Some(Level::Icb),
            "sub-icb" => Some(Level::SubIcb),
            "practice" => Some(Level::Practice),
            _ => None,
        }
    }
    pub fn slug(self) -> &'static str {
        ["icb", "sub-icb", "practice"][self as usize]
    }
}

/// A proportion measure: patients in the denominator, and those of them in the numerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Measure {
    /// Patients prescribed a CPIC level A drug in the month who have a genotype on record for
    /// a gene relevant to it.
    PgxAdoption,
    /// Of those, patients whose result is actionable for a drug they were prescribed.
    ActionableResults,
    /// Patients shown a PGx alert in the month who accepted one.
    AlertAcceptance,
    /// Patients shown a PGx alert in the month who overrode one.
    AlertOverride,
}

impl Measure {
    pub const ALL: [Measure; 4] = [
        Measure::PgxAdoption,
        Measure::ActionableResults,
        Measure::AlertAcceptance,
        Measure::AlertOverride,
    ];
    pub fn parse(s: &str) -> Option<Measure> {
        Measure::ALL.into_iter().find(|m| m.slug() == s)
    }
    pub fn slug(self) -> &'static str {
        [
            "pgx-adoption",
            "actionable-results",
            "alert-acceptance",
            "alert-override",
        ][self as usize]
    }
    pub fn title(self) -> &'static str {
        [
            "PGx adoption: patients on a CPIC level A drug with a relevant genotype on record",
            "Actionable results: genotyped patients whose result changes a current prescription",
            "Alert acceptance: patients shown a PGx alert who accepted one",
            "Alert override: patients shown a PGx alert who overrode one",
        ][self as usize]
    }
    /// Column labels: numerator, and the rest of the denominator.
    pub fn columns(self) -> [&'static str; 2] {
        [
            ["with genotype", "without genotype"],
            ["actionable", "not actionable"],
            ["accepted", "not accepted"],
            ["overridden", "not overridden"],
        ][self as usize]
    }
    /// Whether a higher rate is better (for naming the best and worst group).
    pub fn higher_is_better(self) -> Option<bool> {
        match self {
            Measure::PgxAdoption | Measure::AlertAcceptance => Some(true),
            Measure::AlertOverride => Some(false),
            Measure::ActionableResults => None,
        }
    }
}

/// An equity dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dimension {
    Imd,
    Ethnicity,
    AgeBand,
    Sex,
}

impl Dimension {
    pub const ALL: [Dimension; 4] = [
        Dimension::Imd,
        Dimension::Ethnicity,
        Dimension::AgeBand,
        Dimension::Sex,
    ];
    pub fn parse(s: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.slug() == s)
    }
    pub fn slug(self) -> &'static str {
        ["imd", "ethnicity", "age-band", "sex"][self as usize]
    }
    pub fn groups(self) -> Vec<&'static str> {
        match self {
            Dimension::Imd => vec![
                "IMD Q1 (most deprived)",
                "IMD Q2",
                "IMD Q3",
                "IMD Q4",
                "IMD Q5 (least deprived)",
                "IMD unknown",
            ],
            Dimension::Ethnicity => EthnicGroup::ALL.iter().map(|e| e.label()).collect(),
            Dimension::AgeBand => AgeBand::ALL.iter().map(|a| a.label()).collect(),
            Dimension::Sex => Sex::ALL.iter().map(|s| s.label()).collect(),
        }
    }
    /// The patient's group, as an index into [`Dimension::groups`].
    pub fn group_of(self, p: &PatientFacts) -> usize {
        self.index(p)
    }
    fn index(self, p: &PatientFacts) -> usize {
        match self {
            Dimension::Imd => p.imd_quintile.map_or(5, |q| usize::from(q.get()) - 1),
            Dimension::Ethnicity => p.ethnicity as usize,
            Dimension::AgeBand => p.age_band as usize,
            Dimension::Sex => p.sex as usize,
        }
    }
}

/// Numerator and denominator of a proportion (raw: never public).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Prop {
    pub(crate) numerator: u64,
    pub(crate) denominator: u64,
}

impl Prop {
    fn add(&mut self, in_denominator: bool, in_numerator: bool) {
        if in_denominator {
            self.denominator += 1;
            if in_numerator {
                self.numerator += 1;
            }
        }
    }
}

/// Raw counts for one unit and one month (crate-private: raw counts leave only through
/// `publish`).
#[derive(Debug, Clone, Default)]
pub struct Period {
    /// Indexed by `Measure as usize`.
    pub(crate) measures: [Prop; 4],
    /// `[measure][dimension][group]`.
    pub(crate) groups: [[Vec<Prop>; 4]; 4],
    /// Days from an actionable result to the first change of the affected drug, one per
    /// patient whose change fell in the month.
    pub(crate) delays: Vec<u32>,
    /// `[dimension][group]` → delays.
    pub(crate) delays_by_group: [Vec<Vec<u32>>; 4],
    /// Override reason → patients who gave it in the month.
    pub(crate) override_reasons: BTreeMap<String, u64>,
    /// Patients prescribed a CPIC level A drug with an actionable result for it (the value
    /// model's population), and their admissions in the month.
    pub(crate) guided: u64,
    pub(crate) guided_admissions: u64,
}

impl Period {
    fn new() -> Period {
        let groups = |d: Dimension| vec![Prop::default(); d.groups().len()];
        let dims = || Dimension::ALL.map(groups);
        Period {
            groups: [dims(), dims(), dims(), dims()],
            delays_by_group: Dimension::ALL.map(|d| vec![Vec::new(); d.groups().len()]),
            ..Period::default()
        }
    }
}

/// Raw counts for every unit at every level, for a month and the month before (for trends).
/// Opaque: the counts leave only through the `publish` functions and `estimate_value`.
#[derive(Debug, Clone)]
pub struct Aggregate {
    pub month: Month,
    /// Per level (`Level as usize`): unit code → `[current, previous]`.
    pub(crate) units: [BTreeMap<String, [Period; 2]>; 3],
    /// Patients left out because they opted out of secondary use.
    pub(crate) opted_out: u64,
}

impl Aggregate {
    /// The codes of the units of `level` with anyone counted, sorted.
    pub fn unit_codes(&self, level: Level) -> impl Iterator<Item = &str> {
        self.units[level as usize].keys().map(String::as_str)
    }

    /// Patients left out because they opted out, disclosure-controlled like any count.
    pub fn opted_out(&self) -> smr_sdc::Cell {
        smr_sdc::publish_count(self.opted_out)
    }

    pub(crate) fn units(&self, level: Level) -> impl Iterator<Item = (&str, &[Period; 2])> {
        self.units[level as usize]
            .iter()
            .map(|(code, p)| (code.as_str(), p))
    }

    pub(crate) fn unit(&self, level: Level, code: &str) -> Option<&[Period; 2]> {
        self.units[level as usize].get(code)
    }
}

/// What one patient contributes in one month.
#[derive(Debug, Default)]
struct Flags {
    prescribed: bool,
    genotyped: bool,
    actionable: bool,
    shown: bool,
    accepted: bool,
    overridden: bool,
    reasons: BTreeSet<String>,
    delay: Option<u32>,
    admissions: u64,
}

fn in_month(d: Date, start: Date, end: Date) -> bool {
    d >= start && d < end
}

fn flags(p: &PatientFacts, month: Month, drugs: &CpicDrugs) -> Option<Flags> {
    let end = month.end_exclusive()?;
    let start =
        time::Date::from_calendar_date(month.year, time::Month::try_from(month.month).ok()?, 1)
            .ok()?;
    let mut f = Flags::default();
    // CPIC level A drugs prescribed this month.
    let prescribed: BTreeSet<&str> = p
        .prescriptions
        .iter()
        .filter(|rx| in_month(rx.date, start, end))
        .filter(|rx| drugs.genes(&rx.drug).is_some())
        .map(|rx| rx.drug.as_str())
        .collect();
    f.prescribed = !prescribed.is_empty();
    for drug in &prescribed {
        let genes = drugs.genes(drug).unwrap_or(&[]);
        for g in p.genotypes.iter().filter(|g| g.date < end) {
            if genes.contains(&g.gene) {
                f.genotyped = true;
                if g.actionable_for
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(drug))
                {
                    f.actionable = true;
                }
            }
        }
    }
    for a in p.alerts.iter().filter(|a| in_month(a.date, start, end)) {
        f.shown = true;
        match &a.feedback {
            Some(Feedback::Accepted) => f.accepted = true,
            Some(Feedback::Overridden { reason }) => {
                f.overridden = true;
                f.reasons
                    .insert(reason.clone().unwrap_or_else(|| "no reason given".into()));
            }
            None => {}
        }
    }
    // Result → change: the first change of an affected drug on or after an actionable
    // result; counted in the month the change happened (first such change per patient).
    let mut delays: Vec<(Date, u32)> = Vec::new();
    for g in &p.genotypes {
        for drug in &g.actionable_for {
            if let Some(c) = p
                .changes
                .iter()
                .filter(|c| c.date >= g.date && c.drug.eq_ignore_ascii_case(drug))
                .min_by_key(|c| c.date)
                && in_month(c.date, start, end)
            {
                let days = (c.date - g.date).whole_days();
                delays.push((c.date, u32::try_from(days).unwrap_or(0)));
            }
        }
    }
    f.delay = delays.into_iter().min().map(|(_, d)| d);
    if f.actionable {
        f.admissions = p
            .admissions
            .iter()
            .filter(|d| in_month(**d, start, end))
            .count() as u64;
    }
    Some(f)
}

fn add(period: &mut Period, p: &PatientFacts, f: &Flags) {
    let member = [
        (f.prescribed, f.genotyped),
        (f.prescribed && f.genotyped, f.actionable),
        (f.shown, f.accepted),
        (f.shown, f.overridden),
    ];
    for (m, &(den, num)) in member.iter().enumerate() {
        period.measures[m].add(den, num);
        if den {
            for (d, dim) in Dimension::ALL.iter().enumerate() {
                period.groups[m][d][dim.index(p)].add(den, num);
            }
        }
    }
    if let Some(days) = f.delay {
        period.delays.push(days);
        for (d, dim) in Dimension::ALL.iter().enumerate() {
            period.delays_by_group[d][dim.index(p)].push(days);
        }
    }
    for r in &f.reasons {
        *period.override_reasons.entry(r.clone()).or_default() += 1;
    }
    if f.prescribed && f.actionable {
        period.guided += 1;
        period.guided_admissions += f.admissions;
    }
}

/// Count everything for `month` (and the month before, for trends) over `patients`, leaving
/// out those who opted out before anything is counted.
pub fn aggregate(patients: &[PatientFacts], month: Month, drugs: &CpicDrugs) -> Aggregate {
    let months = [month, month.previous()];
    let mut units: [BTreeMap<String, [Period; 2]>; 3] = Default::default();
    let mut opted_out = 0;
    for p in patients {
        if p.opted_out {
            opted_out += 1;
            continue;
        }
        for (k, m) in months.iter().enumerate() {
            let Some(f) = flags(p, *m, drugs) else {
                continue;
            };
            for (level, code) in [
                (Level::Icb, &p.icb),
                (Level::SubIcb, &p.sub_icb),
                (Level::Practice, &p.practice),
            ] {
                let map = &mut units[level as usize];
                // Look up by &str first: the key's String is built only for a unit's first
                // patient.
                if !map.contains_key(code.as_str()) {
                    map.insert(code.clone(), [Period::new(), Period::new()]);
                }
                let Some(periods) = map.get_mut(code.as_str()) else {
                    continue;
                };
                add(&mut periods[k], p, &f);
            }
        }
    }
    Aggregate {
        month,
        units,
        opted_out,
    }
}
