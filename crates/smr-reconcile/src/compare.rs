//! The comparison: source lines and target lines grouped by medicine (the moiety key the
//! dictionary gives, so a VMP, its brands and its VTM are one medicine), each group classified
//! with the discrepancy taxonomy and an intent.
//!
//! Taxonomy (the categories commonly used in medication reconciliation studies: omission,
//! commission, dose, frequency, route, formulation, duplication, stopped): a group has one
//! primary classification, chosen in the order of [`Discrepancy::PRIORITY`], and every
//! difference found listed beside it.
//!
//! Intent: a documented reason on the target side (statusReason, a note, the list entry's
//! flag or note) makes a discrepancy *intentional*; a change the target records as an act
//! without a reason (a stop, an entry replacing a prior prescription) is *undocumented
//! intentional*; anything else — the system cannot see that anyone meant it — is
//! *unintentional* and flagged for review. Unchanged lines have no intent.

use std::collections::BTreeMap;

use smr_safety::DoseFacts;

use crate::line::{MedLine, State};

/// The discrepancy taxonomy, plus "unmapped" for a line the dictionary cannot place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Discrepancy {
    Unchanged,
    /// In the source, current, and missing from the target.
    Omission,
    /// In the target, current, and not current in the source (added).
    Commission,
    Dose,
    Frequency,
    Route,
    Formulation,
    /// The target lists the same medicine more than once as current.
    Duplication,
    /// Current in the source, stopped (or withheld) in the target.
    Stopped,
    /// No dictionary knows the medicine and nothing on the other side names it the same way:
    /// it cannot be compared, so it is shown for review.
    Unmapped,
}

impl Discrepancy {
    pub const ALL: [Discrepancy; 10] = [
        Discrepancy::Unchanged,
        Discrepancy::Omission,
        Discrepancy::Commission,
        Discrepancy::Dose,
        Discrepancy::Frequency,
        Discrepancy::Route,
        Discrepancy::Formulation,
        Discrepancy::Duplication,
        Discrepancy::Stopped,
        Discrepancy::Unmapped,
    ];

    /// Which classification a line with several differences is shown under: the one that
    /// changes most what the patient takes.
    pub const PRIORITY: [Discrepancy; 9] = [
        Discrepancy::Unmapped,
        Discrepancy::Duplication,
        Discrepancy::Omission,
        Discrepancy::Stopped,
        Discrepancy::Commission,
        Discrepancy::Formulation,
        Discrepancy::Route,
        Discrepancy::Dose,
        Discrepancy::Frequency,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Discrepancy::Unchanged => "unchanged",
            Discrepancy::Omission => "omission",
            Discrepancy::Commission => "commission",
            Discrepancy::Dose => "dose",
            Discrepancy::Frequency => "frequency",
            Discrepancy::Route => "route",
            Discrepancy::Formulation => "formulation",
            Discrepancy::Duplication => "duplication",
            Discrepancy::Stopped => "stopped",
            Discrepancy::Unmapped => "unmapped",
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            Discrepancy::Unchanged => "Unchanged",
            Discrepancy::Omission => "Omission",
            Discrepancy::Commission => "Commission (added)",
            Discrepancy::Dose => "Dose changed",
            Discrepancy::Frequency => "Frequency changed",
            Discrepancy::Route => "Route changed",
            Discrepancy::Formulation => "Formulation changed",
            Discrepancy::Duplication => "Duplication",
            Discrepancy::Stopped => "Stopped",
            Discrepancy::Unmapped => "Unmapped: not compared",
        }
    }

    pub fn from_code(code: &str) -> Option<Discrepancy> {
        Discrepancy::ALL.into_iter().find(|d| d.code() == code)
    }
}

/// Whether a discrepancy was meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Intent {
    /// The target documents a reason.
    Intentional,
    /// The target records the change as an act (a stop, a replacement) but gives no reason.
    UndocumentedIntentional,
    /// Nothing shows it was meant: flagged for review.
    Unintentional,
}

impl Intent {
    pub const ALL: [Intent; 3] = [
        Intent::Intentional,
        Intent::UndocumentedIntentional,
        Intent::Unintentional,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Intent::Intentional => "intentional",
            Intent::UndocumentedIntentional => "undocumented-intentional",
            Intent::Unintentional => "unintentional",
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            Intent::Intentional => "Intentional (documented reason)",
            Intent::UndocumentedIntentional => "Undocumented intentional",
            Intent::Unintentional => "Unintentional: flagged for review",
        }
    }

    pub fn from_code(code: &str) -> Option<Intent> {
        Intent::ALL.into_iter().find(|i| i.code() == code)
    }
}

/// One medicine of the reconciliation.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The medicine's key (moiety or unmapped).
    pub key: String,
    pub display: String,
    pub classification: Discrepancy,
    /// Every difference found (the classification first); empty when unchanged.
    pub differences: Vec<Discrepancy>,
    pub intent: Option<Intent>,
    /// No dictionary knows the medicine.
    pub unmapped: bool,
    /// Indices of the source and target lines this medicine covers.
    pub source: Vec<usize>,
    pub target: Vec<usize>,
    /// What differs, in words ("dose 40 mg → 20 mg").
    pub details: Vec<String>,
    /// The documented reason, when the target gives one.
    pub reason: Option<String>,
    /// The line whose medicine the reconciled list proposes (`Target(i)` or `Source(i)`).
    pub proposal: Side,
    /// Whether the proposed medicine is current (taken) after reconciliation.
    pub proposed_current: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source(usize),
    Target(usize),
}

/// Which list is empty, so that the answer can say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Empty {
    Neither,
    Source,
    Target,
    Both,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reconciliation {
    pub lines: Vec<Outcome>,
    pub empty: Empty,
}

impl Reconciliation {
    /// Lines needing a clinician's attention (unintentional discrepancies).
    pub fn flagged(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| l.intent == Some(Intent::Unintentional))
            .count()
    }
}

/// Compares `source` with `target`. Every input line is in exactly one outcome.
pub fn compare(source: &[MedLine], target: &[MedLine]) -> Reconciliation {
    let mut groups: BTreeMap<&str, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    for (i, l) in source.iter().enumerate() {
        groups.entry(l.key.as_str()).or_default().0.push(i);
    }
    for (i, l) in target.iter().enumerate() {
        groups.entry(l.key.as_str()).or_default().1.push(i);
    }
    let mut lines: Vec<Outcome> = groups
        .into_iter()
        .map(|(key, (s, t))| classify(key, s, t, source, target))
        .collect();
    lines.sort_by(|a, b| {
        a.display
            .to_lowercase()
            .cmp(&b.display.to_lowercase())
            .then_with(|| a.key.cmp(&b.key))
    });
    let empty = match (source.is_empty(), target.is_empty()) {
        (true, true) => Empty::Both,
        (true, false) => Empty::Source,
        (false, true) => Empty::Target,
        (false, false) => Empty::Neither,
    };
    Reconciliation { lines, empty }
}

fn classify(
    key: &str,
    s: Vec<usize>,
    t: Vec<usize>,
    source: &[MedLine],
    target: &[MedLine],
) -> Outcome {
    let s_current: Vec<usize> = s
        .iter()
        .copied()
        .filter(|&i| source[i].state == State::Current)
        .collect();
    let t_current: Vec<usize> = t
        .iter()
        .copied()
        .filter(|&i| target[i].state == State::Current)
        .collect();
    let unmapped = key.starts_with("unmapped:");
    let reason = {
        let reasons: Vec<&str> = t
            .iter()
            .filter_map(|&i| target[i].reason.as_deref())
            .collect();
        (!reasons.is_empty()).then(|| reasons.join("; "))
    };
    let display = t
        .first()
        .map(|&i| &target[i])
        .or_else(|| s.first().map(|&i| &source[i]))
        .map(|l| l.display.clone())
        .unwrap_or_default();

    let mut differences: Vec<Discrepancy> = Vec::new();
    let mut details: Vec<String> = Vec::new();
    let proposal: Side;
    let proposed_current: bool;
    if t.is_empty() {
        // Only in the source.
        proposal = Side::Source(s_current.first().copied().unwrap_or(s[0]));
        if !s_current.is_empty() {
            proposed_current = true;
            if unmapped {
                differences.push(Discrepancy::Unmapped);
                details.push(
                    "no dictionary knows this medicine and the target names nothing the same \
                     way: check whether the target lists it under another name"
                        .to_owned(),
                );
            } else {
                differences.push(Discrepancy::Omission);
                details.push("current in the source, missing from the target".to_owned());
            }
        } else {
            proposed_current = false;
            details.push("not current in the source and not in the target".to_owned());
        }
    } else if s.is_empty() {
        // Only in the target.
        proposal = Side::Target(t_current.first().copied().unwrap_or(t[0]));
        proposed_current = !t_current.is_empty();
        if t_current.is_empty() {
            details.push("listed as not current in the target; not in the source".to_owned());
        } else if unmapped {
            differences.push(Discrepancy::Unmapped);
            details.push(
                "no dictionary knows this medicine and the source names nothing the same way: \
                 check whether the source lists it under another name"
                    .to_owned(),
            );
        } else {
            differences.push(Discrepancy::Commission);
            details.push("in the target, not in the source".to_owned());
        }
        if t_current.len() > 1 {
            differences.push(Discrepancy::Duplication);
            details.push(format!(
                "the target lists this medicine {} times as current",
                t_current.len()
            ));
        }
    } else {
        match (s_current.first(), t_current.first()) {
            (Some(_), None) => {
                proposal = Side::Target(t[0]);
                proposed_current = false;
                differences.push(Discrepancy::Stopped);
                details.push(format!(
                    "current in the source, {} in the target",
                    target[t[0]].status_text
                ));
            }
            (None, Some(&ti)) => {
                proposal = Side::Target(ti);
                proposed_current = true;
                differences.push(Discrepancy::Commission);
                details.push("not current in the source, current in the target".to_owned());
            }
            (None, None) => {
                proposal = Side::Target(t[0]);
                proposed_current = false;
                details.push("not current in either list".to_owned());
            }
            (Some(&si), Some(&ti)) => {
                proposal = Side::Target(ti);
                proposed_current = true;
                compare_pair(&source[si], &target[ti], &mut differences, &mut details);
            }
        }
        if t_current.len() > 1 {
            differences.push(Discrepancy::Duplication);
            details.push(format!(
                "the target lists this medicine {} times as current",
                t_current.len()
            ));
        }
    }
    differences.sort_by_key(|d| {
        Discrepancy::PRIORITY
            .iter()
            .position(|p| p == d)
            .unwrap_or(usize::MAX)
    });
    differences.dedup();
    let classification = differences
        .first()
        .copied()
        .unwrap_or(Discrepancy::Unchanged);
    let intent = (classification != Discrepancy::Unchanged)
        .then(|| intent_of(classification, reason.is_some(), &t, target));
    Outcome {
        key: key.to_owned(),
        display,
        classification,
        differences,
        intent,
        unmapped,
        source: s,
        target: t,
        details,
        reason,
        proposal,
        proposed_current,
    }
}

fn intent_of(
    classification: Discrepancy,
    documented: bool,
    t: &[usize],
    target: &[MedLine],
) -> Intent {
    if documented {
        return Intent::Intentional;
    }
    let deliberate = match classification {
        // A stop is an act the target records.
        Discrepancy::Stopped => true,
        Discrepancy::Dose
        | Discrepancy::Frequency
        | Discrepancy::Route
        | Discrepancy::Formulation => t.iter().any(|&i| target[i].replaces_prior),
        // Nothing in a list shows an omission, an addition, a duplicate or an unknown
        // medicine was meant.
        _ => false,
    };
    if deliberate {
        Intent::UndocumentedIntentional
    } else {
        Intent::Unintentional
    }
}

fn lower(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn route_text(l: &MedLine) -> Option<(Option<String>, String)> {
    if let Some(r) = &l.route {
        let display = r
            .display
            .clone()
            .or_else(|| r.key.clone())
            .unwrap_or_default();
        return Some((r.key.clone(), display));
    }
    // The product's own route (dm+d) when the dosage does not say.
    l.info
        .as_ref()
        .and_then(|i| i.route.clone())
        .map(|r| (None, r))
}

/// mg of the only ingredient per dose, when strength and dose combine.
fn mg_per_dose(l: &MedLine) -> Option<f64> {
    let info = l.info.as_ref()?;
    let dose = l.dose.as_ref()?;
    let ingredient = info.ingredients.first()?;
    if info.ingredients.len() != 1 {
        return None;
    }
    smr_safety::dose::daily_mg(
        info,
        &DoseFacts {
            value: dose.value,
            unit: dose.unit.clone(),
            per_day: Some(1.0),
        },
        &ingredient.name,
    )
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn fmt(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn compare_pair(s: &MedLine, t: &MedLine, out: &mut Vec<Discrepancy>, details: &mut Vec<String>) {
    // Formulation: the dm+d dose forms of the products named.
    if let (Some(a), Some(b)) = (&s.form, &t.form)
        && lower(a) != lower(b)
    {
        out.push(Discrepancy::Formulation);
        details.push(format!("formulation {a} → {b}"));
    }
    // Route: coded routes by code, else by text; the product's route when the dosage
    // names none.
    if let (Some((ka, da)), Some((kb, db))) = (route_text(s), route_text(t)) {
        let differ = match (&ka, &kb) {
            (Some(x), Some(y)) => x != y,
            _ => lower(&da) != lower(&db),
        };
        if differ {
            out.push(Discrepancy::Route);
            details.push(format!("route {da} → {db}"));
        }
    }
    // Dose: the same unit compared as written; other units through the product strength
    // (mg a dose); without structured doses, the dosage texts; different products of one
    // moiety with no dose stated compared by strength.
    let mut dose_compared = false;
    match (&s.dose, &t.dose) {
        (Some(a), Some(b)) => {
            dose_compared = true;
            if a.unit == b.unit {
                if !close(a.value, b.value) {
                    out.push(Discrepancy::Dose);
                    details.push(format!(
                        "dose {} {} → {} {}",
                        fmt(a.value),
                        a.unit,
                        fmt(b.value),
                        b.unit
                    ));
                }
            } else {
                match (mg_per_dose(s), mg_per_dose(t)) {
                    (Some(x), Some(y)) => {
                        if !close(x, y) {
                            out.push(Discrepancy::Dose);
                            details.push(format!("dose {} mg → {} mg", fmt(x), fmt(y)));
                        }
                    }
                    _ => {
                        out.push(Discrepancy::Dose);
                        details.push(format!(
                            "dose {} {} → {} {} (units not comparable: check)",
                            fmt(a.value),
                            a.unit,
                            fmt(b.value),
                            b.unit
                        ));
                    }
                }
            }
        }
        (None, None) => {
            if let (Some(a), Some(b)) = (&s.dosage_text, &t.dosage_text) {
                dose_compared = true;
                if lower(a) != lower(b) && (s.per_day.is_none() || t.per_day.is_none()) {
                    out.push(Discrepancy::Dose);
                    details.push(format!("dosage instructions \"{a}\" → \"{b}\""));
                }
            }
        }
        _ => details.push("the dose is stated on one side only: not compared".to_owned()),
    }
    if !dose_compared
        && !out.contains(&Discrepancy::Formulation)
        && let (Some(a), Some(b)) = (&s.info, &t.info)
        && a.vmp.is_some()
        && b.vmp.is_some()
        && a.vmp != b.vmp
    {
        let strengths = |i: &smr_dmd::MedicineInfo| {
            i.ingredients
                .iter()
                .map(|x| x.strength.clone().unwrap_or_default())
                .collect::<Vec<_>>()
        };
        if strengths(a) != strengths(b) {
            out.push(Discrepancy::Dose);
            details.push(format!(
                "strength {} → {}",
                strengths(a).join(" + "),
                strengths(b).join(" + ")
            ));
        }
    }
    // Frequency: administrations a day, when both timings are structured.
    if let (Some(a), Some(b)) = (s.per_day, t.per_day)
        && !close(a, b)
    {
        out.push(Discrepancy::Frequency);
        details.push(format!("{} a day → {} a day", fmt(a), fmt(b)));
    }
}
