//! Problems found while merging, each a [`Finding`] that names the entries concerned:
//!
//! - `dose-mismatch`: the same medicine current in two settings at a different strength or
//!   form (different VMPs), route, dose (same unit) or frequency;
//! - `stopped-but-continued`: a medicine stopped in one setting (and not continued there) but
//!   still prescribed there elsewhere, or dispensed or administered elsewhere after the stop;
//! - `duplicate-ingredient`: two current therapies of one setting for the same moiety under
//!   different products (brand and generic, two strengths);
//! - `duplicate-class`: two different moieties of one class where duplication is a hazard
//!   (`smr-safety`'s `data/duplicate-classes.json`, cited), both current, in any settings.
//!
//! Each kind is looked for on its own terms, so one situation raises one kind.

use std::collections::BTreeMap;

use smr_access::CareSetting;
use smr_safety::rules::DuplicationClass;

use crate::merge::{DAY_MICROS, EVENT_CURRENCY_DAYS, Entry, Line, LineStatus, stop_date};
use crate::source::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    DoseMismatch,
    StoppedButContinued,
    DuplicateIngredient,
    DuplicateClass,
}

impl FindingKind {
    pub fn code(self) -> &'static str {
        match self {
            FindingKind::DoseMismatch => "dose-mismatch",
            FindingKind::StoppedButContinued => "stopped-but-continued",
            FindingKind::DuplicateIngredient => "duplicate-ingredient",
            FindingKind::DuplicateClass => "duplicate-class",
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            FindingKind::DoseMismatch => {
                "Same medicine in two care settings at a different dose, strength or route"
            }
            FindingKind::StoppedButContinued => {
                "Medicine stopped in one care setting but continued in another"
            }
            FindingKind::DuplicateIngredient => {
                "Same medicine prescribed twice as different products"
            }
            FindingKind::DuplicateClass => "Two medicines of the same therapeutic class",
        }
    }
}

/// One problem: its kind, severity (`high` | `moderate` | `low`), the entries it implicates
/// (versioned references, in date order), what it is about and what it rests on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: &'static str,
    pub implicated: Vec<String>,
    pub detail: String,
    /// The line(s) concerned, by key.
    pub lines: Vec<String>,
    /// The evidence: a source for class rules, SMR's merge rule otherwise.
    pub evidence: String,
}

const MERGE_RULE: &str = "SMR medication record merge rule (docs/medication-record.md)";

pub fn find(lines: &[Line], entries: &[Entry], now: i64) -> Vec<Finding> {
    let mut findings = Vec::new();
    for line in lines {
        if line.is_unmapped() {
            continue;
        }
        dose_mismatch(line, entries, now, &mut findings);
        stopped_but_continued(line, entries, &mut findings);
        duplicate_ingredient(line, entries, &mut findings);
    }
    duplicate_class(lines, entries, &mut findings);
    findings.sort();
    findings
}

/// The entry that says what a setting gives now: its latest current therapy, else its latest
/// recent event after any stop in that setting.
fn current_in_setting<'a>(
    line: &Line,
    entries: &'a [Entry],
    setting: CareSetting,
    now: i64,
) -> Option<&'a Entry> {
    let in_setting: Vec<&Entry> = line
        .entries
        .iter()
        .map(|&i| &entries[i])
        .filter(|e| e.origin.setting == setting)
        .collect();
    if let Some(therapy) = in_setting
        .iter()
        .rev()
        .find(|e| e.source.is_current_therapy())
    {
        return Some(therapy);
    }
    let last_stop = in_setting
        .iter()
        .filter(|e| e.source.role == Role::Therapy)
        .filter_map(|e| stop_date(&e.source))
        .map(|(t, _)| t)
        .max();
    in_setting.iter().rev().copied().find(|e| {
        e.source.role == Role::Event
            && e.source.when().is_some_and(|t| {
                t >= now - EVENT_CURRENCY_DAYS * DAY_MICROS && last_stop.is_none_or(|s| t > s)
            })
    })
}

fn dose_mismatch(line: &Line, entries: &[Entry], now: i64, out: &mut Vec<Finding>) {
    let current: Vec<&Entry> = line
        .settings
        .iter()
        .filter(|s| s.setting != CareSetting::Unspecified)
        .filter_map(|s| current_in_setting(line, entries, s.setting, now))
        .collect();
    for (i, a) in current.iter().enumerate() {
        for b in &current[i + 1..] {
            let differences = differences(a, b);
            if differences.is_empty() {
                continue;
            }
            out.push(Finding {
                kind: FindingKind::DoseMismatch,
                severity: "moderate",
                implicated: ordered(&[a, b]),
                detail: format!(
                    "{}: {} ({}) and {} ({}) differ in {}. Confirm which is intended and update the other setting.",
                    line.display(),
                    a.origin.setting.as_str(),
                    describe(a),
                    b.origin.setting.as_str(),
                    describe(b),
                    differences.join(", ")
                ),
                lines: vec![line.key.clone()],
                evidence: MERGE_RULE.to_owned(),
            });
        }
    }
}

fn differences(a: &Entry, b: &Entry) -> Vec<&'static str> {
    let mut out = Vec::new();
    let vmp = |e: &Entry| {
        e.info
            .as_ref()
            .and_then(|i| i.vmp.as_ref())
            .map(|v| v.code.clone())
    };
    if let (Some(x), Some(y)) = (vmp(a), vmp(b))
        && x != y
    {
        out.push("strength or form");
    }
    let route_key = |e: &Entry| e.source.route.as_ref().and_then(|r| r.key.clone());
    if let (Some(x), Some(y)) = (route_key(a), route_key(b))
        && x != y
    {
        out.push("route");
    }
    if let (Some(x), Some(y)) = (&a.source.dose, &b.source.dose)
        && x.unit == y.unit
        && (x.value - y.value).abs() > 1e-9
    {
        out.push("dose");
    }
    if let (Some(x), Some(y)) = (a.source.per_day, b.source.per_day)
        && (x.0 - y.0).abs() > 1e-6
    {
        out.push("frequency");
    }
    out
}

fn describe(e: &Entry) -> String {
    let product = e
        .info
        .as_ref()
        .map(|i| i.matched.name.clone())
        .or_else(|| e.source.text.clone())
        .unwrap_or_else(|| "medicine".to_owned());
    let dose = e
        .source
        .dosage_text
        .as_ref()
        .map(|t| format!(", {t}"))
        .unwrap_or_default();
    format!("{product}{dose}; {}", e.source.reference)
}

fn stopped_but_continued(line: &Line, entries: &[Entry], out: &mut Vec<Finding>) {
    let members: Vec<&Entry> = line.entries.iter().map(|&i| &entries[i]).collect();
    for stopped in members.iter().filter(|e| {
        e.source.role == Role::Therapy && e.source.status == crate::source::TherapyStatus::Stopped
    }) {
        let setting = stopped.origin.setting;
        // Continued (restarted, or changed to another product) in the same setting: the stop
        // was not a decision to stop the medicine.
        if members
            .iter()
            .any(|e| e.origin.setting == setting && e.source.is_current_therapy())
        {
            continue;
        }
        let Some((stop, stop_text)) = stop_date(&stopped.source) else {
            continue;
        };
        let continued: Vec<&&Entry> = members
            .iter()
            .filter(|e| e.origin.setting != setting)
            .filter(|e| {
                e.source.is_current_therapy()
                    || (e.source.role == Role::Event && e.source.when().is_some_and(|t| t > stop))
            })
            .collect();
        if continued.is_empty() {
            continue;
        }
        let mut implicated = vec![stopped.source.versioned_reference()];
        implicated.extend(continued.iter().map(|e| e.source.versioned_reference()));
        let elsewhere: Vec<String> = continued
            .iter()
            .map(|e| {
                format!(
                    "{} {} ({})",
                    e.origin.setting.as_str(),
                    verb(e),
                    e.source
                        .activity
                        .as_ref()
                        .map_or("undated", |(_, t)| t.as_str())
                )
            })
            .collect();
        out.push(Finding {
            kind: FindingKind::StoppedButContinued,
            severity: "high",
            implicated,
            detail: format!(
                "{} was stopped by {} on {} but is still {}. Check whether the patient should still receive it.",
                line.display(),
                setting.as_str(),
                stop_text,
                elsewhere.join("; ")
            ),
            lines: vec![line.key.clone()],
            evidence: MERGE_RULE.to_owned(),
        });
    }
}

fn verb(e: &Entry) -> &'static str {
    use crate::source::SourceKind::*;
    match (e.source.kind, e.source.role) {
        (Dispense, _) => "dispensed",
        (Administration, _) => "administered",
        (Request, Role::Event) => "issued",
        (Request, _) => "prescribed",
        (Statement, _) => "recorded as taken",
    }
}

fn duplicate_ingredient(line: &Line, entries: &[Entry], out: &mut Vec<Finding>) {
    let mut by_setting: BTreeMap<&'static str, Vec<&Entry>> = BTreeMap::new();
    for &i in &line.entries {
        let e = &entries[i];
        if e.source.is_current_therapy() && e.origin.setting != CareSetting::Unspecified {
            by_setting
                .entry(e.origin.setting.as_str())
                .or_default()
                .push(e);
        }
    }
    for (setting, therapies) in by_setting {
        let mut products: BTreeMap<String, &Entry> = BTreeMap::new();
        for e in &therapies {
            if let Some(info) = &e.info {
                products.entry(info.matched.code.clone()).or_insert(e);
            }
        }
        if products.len() < 2 {
            continue;
        }
        let chosen: Vec<&Entry> = products.values().copied().collect();
        let names: Vec<String> = chosen
            .iter()
            .filter_map(|e| e.info.as_ref().map(|i| i.matched.name.clone()))
            .collect();
        out.push(Finding {
            kind: FindingKind::DuplicateIngredient,
            severity: "moderate",
            implicated: ordered(&chosen),
            detail: format!(
                "{} is prescribed {} times in {} as different products ({}). Check that only one is intended.",
                line.display(),
                chosen.len(),
                setting,
                names.join("; ")
            ),
            lines: vec![line.key.clone()],
            evidence: MERGE_RULE.to_owned(),
        });
    }
}

/// The duplication classes, from the safety rules' data (`smr-safety`'s
/// `data/duplicate-classes.json`, each class citing its BNF section and source), so the merge
/// and the safety checks share one list.
pub(crate) fn classes() -> &'static [DuplicationClass] {
    smr_safety::rules::duplication_classes()
}

fn class_member(ingredient: &str, member: &str) -> bool {
    smr_safety::classes::name_matches(&ingredient.to_lowercase(), member)
}

fn duplicate_class(lines: &[Line], entries: &[Entry], out: &mut Vec<Finding>) {
    for class in classes() {
        // (line, matching ingredient, latest current entry) for each current line in the class.
        let members: Vec<(&Line, String, &Entry)> = lines
            .iter()
            .filter(|l| l.status == LineStatus::Active && !l.is_unmapped())
            .filter_map(|l| {
                let latest = l.entries.iter().rev().map(|&i| &entries[i]).find(|e| {
                    e.info.is_some()
                        && (e.source.is_current_therapy() || e.source.role == Role::Event)
                })?;
                let info = latest.info.as_ref()?;
                let ingredient = info
                    .ingredients
                    .iter()
                    .find(|i| class.ingredients.iter().any(|m| class_member(&i.name, m)))?;
                Some((l, ingredient.name.to_lowercase(), latest))
            })
            .collect();
        for (i, (a_line, a_name, a)) in members.iter().enumerate() {
            for (b_line, b_name, b) in &members[i + 1..] {
                if a_name == b_name {
                    continue;
                }
                out.push(Finding {
                    kind: FindingKind::DuplicateClass,
                    severity: match class.severity.as_str() {
                        "high" => "high",
                        "low" => "low",
                        _ => "moderate",
                    },
                    implicated: ordered(&[a, b]),
                    detail: format!(
                        "{} and {} are both {} and both current ({} and {}). Check that both are intended.",
                        a_line.display(),
                        b_line.display(),
                        class.name,
                        a.origin.setting.as_str(),
                        b.origin.setting.as_str()
                    ),
                    lines: vec![a_line.key.clone(), b_line.key.clone()],
                    evidence: class.source.clone(),
                });
            }
        }
    }
}

fn ordered(entries: &[&Entry]) -> Vec<String> {
    let mut sorted: Vec<&Entry> = entries.to_vec();
    sorted.sort_by(|a, b| {
        a.source
            .when()
            .cmp(&b.source.when())
            .then_with(|| a.source.reference.cmp(&b.source.reference))
    });
    sorted
        .iter()
        .map(|e| e.source.versioned_reference())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_class_file_parses_and_every_class_cites_a_source() {
        assert!(classes().len() >= 5);
        for c in classes() {
            assert!(
                !c.source.is_empty() && !c.ingredients.is_empty(),
                "{}",
                c.code
            );
        }
    }

    #[test]
    fn salts_match_their_base_ingredient_but_prefixes_do_not() {
        assert!(class_member(
            "atorvastatin calcium trihydrate",
            "atorvastatin"
        ));
        assert!(class_member("Naproxen", "naproxen"));
        assert!(!class_member("naproxenate", "naproxen"));
    }
}
