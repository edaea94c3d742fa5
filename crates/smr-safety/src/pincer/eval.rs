//! One patient against every indicator at a reference date.
//!
//! What counts as "prescribed" is decided when the record is read ([`super::fhir_in`]):
//! primary-care prescriptions (MedicationRequest, intent order). Here a prescription is a
//! date and the drug groups its medicine belongs to; a clinical event is a date, the code
//! sets its codes are in and, for results, a value.
//!
//! A hidden entry (one the caller may not see because of the patient's consent) is used
//! like any other, but never named: the result counts it in `hidden`, never in `entries`.

use super::{Criterion, Date, GroupMask, Indicator, Pincer, SetMask};

/// A prescription that counts for PINCER.
#[derive(Debug, Clone, PartialEq)]
pub struct Prescription {
    /// `MedicationRequest/{id}`.
    pub reference: String,
    pub date: Date,
    /// The drug groups its medicine belongs to ([`Pincer::groups_of`]).
    pub groups: GroupMask,
    pub visible: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Condition,
    Observation,
    Procedure,
}

/// A coded clinical event: a diagnosis, a test or its result.
#[derive(Debug, Clone, PartialEq)]
pub struct ClinicalEvent {
    /// `Condition/{id}`, `Observation/{id}`, `Procedure/{id}`.
    pub reference: String,
    pub kind: EventKind,
    pub date: Date,
    /// The code sets its codes are in ([`Pincer::sets_of`]).
    pub sets: SetMask,
    /// A numeric result (Observation `valueQuantity`).
    pub value: Option<f64>,
    /// A Condition marked inactive, in remission or resolved.
    pub resolved: bool,
    pub visible: bool,
}

/// Everything the indicators read of one patient.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PatientData {
    pub birth_date: Option<Date>,
    /// Died on or before this date (or `deceasedBoolean` true: `Some` of the earliest date).
    pub deceased: Option<Date>,
    pub prescriptions: Vec<Prescription>,
    pub events: Vec<ClinicalEvent>,
    /// References of prescriptions whose medicine SMR cannot map (visible ones only): the
    /// result may miss what they are.
    pub unmapped: Vec<String>,
    /// References of prescriptions without a date (visible ones only).
    pub undated: Vec<String>,
}

/// One indicator's result for one patient.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Evaluated {
        denominator: bool,
        numerator: bool,
        /// The entries that put the patient in the denominator (and numerator), visible ones
        /// only, in the order found.
        entries: Vec<String>,
        /// How many flagging entries the caller may not see.
        hidden: usize,
    },
    /// The indicator cannot be evaluated: what is missing.
    CannotEvaluate { missing: Vec<String> },
}

impl Outcome {
    /// (in denominator, in numerator); a patient who cannot be evaluated is in neither.
    pub fn flags(&self) -> (bool, bool) {
        match self {
            Outcome::Evaluated {
                denominator,
                numerator,
                ..
            } => (*denominator, *numerator),
            Outcome::CannotEvaluate { .. } => (false, false),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorResult<'a> {
    pub indicator: &'a Indicator,
    pub outcome: Outcome,
}

/// The entries a criterion matched: indexes into prescriptions (`P`) or events (`E`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hit {
    P(usize),
    E(usize),
}

struct Eval<'a> {
    data: &'a PatientData,
    at: Date,
}

impl Eval<'_> {
    fn window(&self, from: u32, to: u32) -> (Date, Date) {
        (self.at.months_before(from), self.at.months_before(to))
    }

    fn prescriptions_in(&self, group: usize, from: u32, to: u32) -> impl Iterator<Item = usize> {
        let (start, end) = self.window(from, to);
        self.data
            .prescriptions
            .iter()
            .enumerate()
            .filter(move |(_, p)| p.groups & (1 << group) != 0 && p.date >= start && p.date <= end)
            .map(|(i, _)| i)
    }

    fn events_in(&self, set: usize, start: Date, end: Date) -> impl Iterator<Item = usize> {
        self.data
            .events
            .iter()
            .enumerate()
            .filter(move |(_, e)| e.sets & (1 << set) != 0 && e.date >= start && e.date <= end)
            .map(|(i, _)| i)
    }

    /// Whether all criteria hold; the hits of those that matched something.
    fn all(&self, criteria: &[Criterion], hits: &mut Vec<Hit>) -> bool {
        criteria.iter().all(|c| self.one(c, hits))
    }

    fn one(&self, c: &Criterion, hits: &mut Vec<Hit>) -> bool {
        let never = Date::from_days(i32::MIN / 2);
        match *c {
            Criterion::Prescribed {
                group,
                from,
                to,
                negate,
            } => {
                // The latest prescription in the window is the one shown.
                let latest = self
                    .prescriptions_in(group, from, to)
                    .max_by_key(|i| self.data.prescriptions[*i].date);
                match (latest, negate) {
                    (Some(i), false) => {
                        hits.push(Hit::P(i));
                        true
                    }
                    (None, true) => true,
                    _ => false,
                }
            }
            Criterion::PrescribedOnOrBefore { group, months } => {
                let end = self.at.months_before(months);
                let first = self
                    .data
                    .prescriptions
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.groups & (1 << group) != 0 && p.date <= end)
                    .min_by_key(|(_, p)| p.date);
                first.map(|(i, _)| hits.push(Hit::P(i))).is_some()
            }
            Criterion::Condition { set, months } => {
                let end = self.at.months_before(months);
                let latest = self
                    .events_in(set, never, end)
                    .max_by_key(|i| self.data.events[*i].date);
                latest.map(|i| hits.push(Hit::E(i))).is_some()
            }
            Criterion::ConditionUnresolved {
                set,
                resolved_by,
                months,
            } => {
                let end = self.at.months_before(months);
                let latest = self
                    .events_in(set, never, end)
                    .filter(|i| !self.data.events[*i].resolved)
                    .max_by_key(|i| self.data.events[*i].date);
                let Some(i) = latest else {
                    return false;
                };
                let since = self.data.events[i].date;
                // Resolved when a resolution is recorded after the latest code (OpenSAFELY:
                // asthma_resolved_date <= asthma_date keeps the patient in).
                let resolved = self.data.events.iter().any(|e| {
                    e.date > since
                        && e.date <= self.at
                        && (e.sets & (1 << resolved_by) != 0
                            || (e.resolved && e.sets & (1 << set) != 0))
                });
                if resolved {
                    return false;
                }
                hits.push(Hit::E(i));
                true
            }
            Criterion::LatestResultBelow { set, value, months } => {
                let (start, end) = self.window(months, 0);
                let latest = self
                    .events_in(set, start, end)
                    .filter(|i| self.data.events[*i].value.is_some())
                    .max_by_key(|i| self.data.events[*i].date);
                match latest {
                    Some(i)
                        if self.data.events[i]
                            .value
                            .is_some_and(|v| v >= 0.0 && v < value) =>
                    {
                        hits.push(Hit::E(i));
                        true
                    }
                    _ => false,
                }
            }
            Criterion::Test {
                set,
                months,
                negate,
            } => {
                let (start, end) = self.window(months, 0);
                let latest = self
                    .events_in(set, start, end)
                    .max_by_key(|i| self.data.events[*i].date);
                match (latest, negate) {
                    (Some(i), false) => {
                        hits.push(Hit::E(i));
                        true
                    }
                    (None, true) => true,
                    _ => false,
                }
            }
            Criterion::CoPrescribed { a, b, months } => {
                // One-month periods, latest first: (1, 0), (2, 1), (3, 2).
                for k in 0..months {
                    let pa = self
                        .prescriptions_in(a, k + 1, k)
                        .max_by_key(|i| self.data.prescriptions[*i].date);
                    let pb = self
                        .prescriptions_in(b, k + 1, k)
                        .filter(|i| Some(*i) != pa)
                        .max_by_key(|i| self.data.prescriptions[*i].date);
                    if let (Some(x), Some(y)) = (pa, pb) {
                        hits.push(Hit::P(x));
                        hits.push(Hit::P(y));
                        return true;
                    }
                }
                false
            }
            Criterion::AnyOf(ref branches) => {
                let mut any = false;
                for branch in branches {
                    let mut branch_hits = Vec::new();
                    if self.all(branch, &mut branch_hits) {
                        hits.extend(branch_hits);
                        any = true;
                    }
                }
                any
            }
        }
    }

    fn reference(&self, hit: Hit) -> (&str, bool) {
        match hit {
            Hit::P(i) => {
                let p = &self.data.prescriptions[i];
                (&p.reference, p.visible)
            }
            Hit::E(i) => {
                let e = &self.data.events[i];
                (&e.reference, e.visible)
            }
        }
    }
}

impl Pincer {
    /// Every indicator for one patient at `at` (the reference date: OpenSAFELY's index date).
    pub fn evaluate(&self, data: &PatientData, at: Date) -> Vec<IndicatorResult<'_>> {
        self.indicators
            .iter()
            .map(|indicator| IndicatorResult {
                indicator,
                outcome: self.evaluate_one(indicator, data, at),
            })
            .collect()
    }

    /// Only the (denominator, numerator) flags, in indicator order, without the entries:
    /// what aggregation needs.
    pub fn flags(&self, data: &PatientData, at: Date) -> Vec<(bool, bool)> {
        self.indicators
            .iter()
            .map(|i| self.evaluate_one(i, data, at).flags())
            .collect()
    }

    pub fn evaluate_one(&self, indicator: &Indicator, data: &PatientData, at: Date) -> Outcome {
        let Some(birth) = data.birth_date else {
            // The study population (aged 18 to 120) and the age conditions need it.
            return Outcome::CannotEvaluate {
                missing: vec!["the patient's birth date (Patient.birthDate)".to_owned()],
            };
        };
        let not_in = Outcome::Evaluated {
            denominator: false,
            numerator: false,
            entries: Vec::new(),
            hidden: 0,
        };
        let age = at.years_since(birth);
        if age < self.population.min_age
            || age > self.population.max_age
            || data.deceased.is_some_and(|d| d <= at)
            || indicator.age.as_ref().is_some_and(|a| age < a.min)
        {
            return not_in;
        }
        let eval = Eval { data, at };
        let mut hits = Vec::new();
        if !eval.all(&indicator.denominator, &mut hits) {
            return not_in;
        }
        // The numerator's entries are shown only when it holds.
        let mut numerator_hits = Vec::new();
        let numerator = eval.all(&indicator.numerator, &mut numerator_hits);
        if numerator {
            hits.extend(numerator_hits);
        }
        let mut entries: Vec<String> = Vec::new();
        let mut hidden = 0;
        let mut seen: Vec<Hit> = Vec::new();
        for hit in hits {
            if seen.contains(&hit) {
                continue;
            }
            seen.push(hit);
            match eval.reference(hit) {
                (r, true) => entries.push(r.to_owned()),
                (_, false) => hidden += 1,
            }
        }
        Outcome::Evaluated {
            denominator: true,
            numerator,
            entries,
            hidden,
        }
    }
}
