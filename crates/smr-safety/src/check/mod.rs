//! The checks: an order against the whole current record ([`check_order`]), or the whole
//! record against itself ([`review_record`]). Each kind of rule has its module; this one
//! prepares the medicines (ingredients, classes, route) once and collects the problems.
//!
//! What is never silent: an unmapped medicine, an allergy whose substance SMR does not know,
//! and a renal rule with no recent result each give a `CannotCheck` problem naming the missing
//! data. Those notes are given for what the caller may see; a hidden medicine that cannot be
//! mapped gives no note (the caller could do nothing with "something you cannot see could not
//! be checked"), but a hidden medicine that *can* be checked is checked like any other.

mod allergy;
mod duplication;
mod interaction;
mod renal;
mod text;

use smr_dmd::MedicineInfo;

use crate::context::{Medicine, SafetyContext};
use crate::knowledge::{RouteGroup, Selector};
use crate::problem::{Problem, ProblemKind, dedupe_and_sort};
use crate::rules::RuleSource;

/// A medicine with what the rules read from it, worked out once per check.
#[derive(Debug)]
pub(crate) struct Prepared<'a> {
    pub med: &'a Medicine,
    pub info: &'a MedicineInfo,
    /// Lower-case ingredient names.
    pub names: Vec<&'a str>,
    /// Ids of the classes its ingredients belong to (sorted, no repeats).
    pub classes: Vec<&'a str>,
    /// Whether its route is systemic: `None` when no route is known.
    pub systemic: Option<bool>,
    /// Whether this is the order being checked (rather than a current medicine).
    pub is_order: bool,
}

/// Route words that mean the medicine reaches the whole body (dm+d route names and common
/// free text). Anything else known (cutaneous, ocular, inhalation, nasal, rectal, vaginal…)
/// is local.
const SYSTEMIC_ROUTES: &[&str] = &[
    "oral",
    "by mouth",
    "intravenous",
    "intramuscular",
    "subcutaneous",
    "sublingual",
    "buccal",
    "gastroenteral",
    "enteral",
    "nasogastric",
    "gastrostomy",
    "jejunostomy",
    "intraosseous",
];

fn is_systemic(route: &str) -> bool {
    let route = route.to_lowercase();
    SYSTEMIC_ROUTES.iter().any(|r| route.contains(r))
}

pub(crate) fn prepare<'a>(
    med: &'a Medicine,
    rules: &'a dyn RuleSource,
    is_order: bool,
) -> Option<Prepared<'a>> {
    let info = med.info.as_deref()?;
    let names: Vec<&str> = info.ingredients.iter().map(|i| i.name.as_str()).collect();
    let mut classes: Vec<&str> = names
        .iter()
        .flat_map(|n| rules.classes().classes_of(n))
        .collect();
    classes.sort_unstable();
    classes.dedup();
    Some(Prepared {
        med,
        info,
        names,
        classes,
        systemic: med.route().map(is_systemic),
        is_order,
    })
}

impl Prepared<'_> {
    /// Whether the medicine is one a rule side names.
    pub fn matches(&self, s: &Selector) -> bool {
        let route_ok = s.routes.iter().all(|g| match g {
            // An unknown route matches: better a card that says "if given systemically" than
            // silence about a tablet entered without one.
            RouteGroup::Systemic => self.systemic != Some(false),
        });
        route_ok && (self.has_ingredient(&s.ingredients) || self.in_class(&s.classes))
    }

    pub fn has_ingredient(&self, listed: &[String]) -> bool {
        listed.iter().any(|l| {
            self.names
                .iter()
                .any(|n| crate::classes::name_matches(n, l))
        })
    }

    pub fn in_class(&self, classes: &[String]) -> bool {
        classes.iter().any(|c| self.classes.contains(&c.as_str()))
    }

    /// Whether the two share an active ingredient (a salt matches its base).
    pub fn shares_ingredient_with(&self, other: &Prepared<'_>) -> Option<&str> {
        self.names
            .iter()
            .find(|a| {
                other
                    .names
                    .iter()
                    .any(|b| crate::classes::same_ingredient(a, b))
            })
            .copied()
    }
}

/// Checks `order` (a medicine about to be prescribed) against the patient's current
/// medicines, allergies and renal function. Problems are de-duplicated and sorted most severe
/// first.
pub fn check_order(order: &Medicine, ctx: &SafetyContext<'_>) -> Vec<Problem> {
    let mut out = Vec::new();
    let Some(o) = prepare(order, ctx.rules, true) else {
        out.push(text::unmapped(order));
        return out;
    };
    for m in ctx.medicines.iter().filter(|m| m.key != order.key) {
        match prepare(m, ctx.rules, false) {
            Some(p) => {
                interaction::between(&o, &p, ctx, &mut out);
                duplication::between(&o, &p, ctx, &mut out);
            }
            None if m.visible => out.push(text::unmapped_other(m, order)),
            None => {}
        }
    }
    let allergies = allergy::read_all(ctx);
    allergy::check(&o, &allergies, ctx, &mut out);
    allergy::unknown_notes(&allergies, &mut out);
    renal::check(&o, ctx, &mut out);
    dedupe_and_sort(out)
}

/// Reviews the whole current record: every pair of current medicines, each against the
/// allergies and renal function. Problems are de-duplicated and sorted most severe first.
pub fn review_record(ctx: &SafetyContext<'_>) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut prepared = Vec::with_capacity(ctx.medicines.len());
    for m in ctx.medicines {
        match prepare(m, ctx.rules, false) {
            Some(p) => prepared.push(p),
            None if m.visible => out.push(text::unmapped(m)),
            None => {}
        }
    }
    for (i, a) in prepared.iter().enumerate() {
        for b in &prepared[i + 1..] {
            if a.med.key == b.med.key {
                continue;
            }
            interaction::between(a, b, ctx, &mut out);
            duplication::between(a, b, ctx, &mut out);
        }
    }
    let allergies = allergy::read_all(ctx);
    for p in &prepared {
        allergy::check(p, &allergies, ctx, &mut out);
        renal::check(p, ctx, &mut out);
    }
    allergy::unknown_notes(&allergies, &mut out);
    dedupe_and_sort(out)
}

/// The visible references of the medicines concerned (the latest entry of each; the order's
/// own reference first), and how many of them are hidden.
pub(crate) fn implicated(meds: &[&Medicine]) -> (Vec<String>, usize) {
    let mut refs = Vec::new();
    let mut hidden = 0;
    for m in meds {
        if m.visible {
            if let Some(first) = m.entries.first()
                && !refs.contains(first)
            {
                refs.push(first.clone());
            }
        } else {
            hidden += 1;
        }
    }
    (refs, hidden)
}

/// Sorted keys, joined: the identity of "these medicines together".
pub(crate) fn pair_key(kind: ProblemKind, rule: &str, keys: &[&str]) -> u64 {
    let mut keys: Vec<&str> = keys.to_vec();
    keys.sort_unstable();
    crate::problem::fnv64(&format!("{}|{rule}|{}", kind.as_str(), keys.join("|")))
}

/// The references a problem may name (of what the caller can see) and how many of its parts
/// are hidden from them: a hidden part is counted, never referenced.
pub(crate) fn implicated_parts<'a>(
    parts: impl IntoIterator<Item = (bool, Option<&'a String>)>,
) -> (Vec<String>, usize) {
    let mut implicated = Vec::new();
    let mut hidden = 0;
    for (visible, reference) in parts {
        match (visible, reference) {
            (true, Some(r)) => implicated.push(r.clone()),
            (true, None) => {}
            (false, _) => hidden += 1,
        }
    }
    (implicated, hidden)
}
