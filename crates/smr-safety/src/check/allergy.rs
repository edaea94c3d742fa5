//! Allergy and intolerance conflicts. An allergy's substance is read from (1) a code listed in
//! `allergy.json` (SNOMED CT substance codes and the "Allergy to …" findings UK GP systems
//! record), (2) a dm+d or SNOMED CT medicinal code the drug dictionary knows, (3) its text (the
//! terms in `allergy.json`, then a dictionary name). A medicine conflicts when it contains the
//! substance or is in its class (an allergy to one penicillin covers all, as `class_wide`
//! says), and may cross-react as `cross_reactivity` documents (penicillin → cephalosporins,
//! with the low-risk wording). Refuted, entered-in-error, inactive and resolved allergies
//! were marked ignored when read ([`crate::fhir_in`]) and are skipped here.

use crate::classes::{name_matches, same_ingredient};
use crate::context::{Allergy, AllergyStatus, SafetyContext};
use crate::knowledge::{AllergySubstance, Selector, Severity, same_system};
use crate::problem::{
    Citation, IssueCode, Problem, ProblemKind, SUMMARY_MAX, fnv64, override_reasons, truncate,
};

use super::Prepared;
use super::text::{self, ASK, Names};

/// An allergy as SMR read it.
pub(crate) struct Read<'a> {
    pub allergy: &'a Allergy,
    pub reading: Reading,
}

pub(crate) enum Reading {
    /// Not to be checked (refuted, resolved, not a medication allergy…).
    Ignored,
    /// No code or name SMR knows.
    Unknown,
    Known(Known),
}

pub(crate) struct Known {
    /// What it is an allergy to, in words ("penicillins", "Amoxicillin").
    substance: String,
    /// What the code SMR read says ("Allergy to penicillin (finding)"), for an allergy that
    /// carries no text of its own.
    label: Option<String>,
    /// Ingredient names it covers (salts match).
    names: Vec<String>,
    /// Classes it covers: named by the table, or a class-wide allergy's class containing one
    /// of `names`.
    classes: Vec<String>,
    /// Every class one of `names` belongs to (for cross-reactivity).
    related: Vec<String>,
    citations: Vec<Citation>,
}

/// What an allergy was read as: substance, its label, ingredients, classes, and the source.
type Found = (String, Option<String>, Vec<String>, Vec<String>, Citation);

fn from_substance(s: &AllergySubstance, label: Option<String>, how: String) -> Found {
    (
        s.name.clone(),
        label,
        s.targets.ingredients.clone(),
        s.targets.classes.clone(),
        Citation {
            publication: "SMR allergy substance table (allergy.json)".to_owned(),
            short: Some("SMR allergy table".to_owned()),
            year: None,
            section: format!("substance '{}': {how}", s.id),
            url: None,
            rule: format!("allergy.json#{}", s.id),
        },
    )
}

/// Words of lower-case text, separated by anything but letters, digits and hyphens.
fn words(text: &str) -> String {
    let cleaned: String = text
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' {
                c
            } else {
                ' '
            }
        })
        .collect();
    format!(
        " {} ",
        cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
    )
}

fn read_one<'a>(a: &'a Allergy, ctx: &SafetyContext<'_>) -> Read<'a> {
    if a.status != AllergyStatus::Active {
        return Read {
            allergy: a,
            reading: Reading::Ignored,
        };
    }
    let knowledge = ctx.rules.allergy();
    let mut found: Option<Found> = None;
    // (1) A code listed in the table.
    'codes: for (system, code, _) in &a.codings {
        for s in &knowledge.substances {
            if let Some(c) = s.codes.iter().find(|c| {
                c.code == code.trim()
                    && system
                        .as_deref()
                        .is_some_and(|sys| same_system(&c.system, sys))
            }) {
                found = Some(from_substance(
                    s,
                    Some(c.display.clone()),
                    format!("code {} {} (checked: {})", c.code, c.display, c.checked),
                ));
                break 'codes;
            }
        }
    }
    // (2) A medicinal code the drug dictionary knows.
    if found.is_none() {
        let pairs: Vec<(Option<&str>, &str)> = a
            .codings
            .iter()
            .map(|(s, c, _)| (s.as_deref(), c.as_str()))
            .collect();
        if !pairs.is_empty()
            && let Some(info) = ctx.lookup.resolve(&pairs, None)
        {
            found = Some(from_dictionary(&info));
        }
    }
    // (3) Its text, or a coding's display: the table's terms, then a dictionary name.
    if found.is_none() {
        let texts: Vec<&str> = a
            .text
            .iter()
            .map(String::as_str)
            .chain(a.codings.iter().filter_map(|(_, _, d)| d.as_deref()))
            .collect();
        'texts: for text in texts.iter().copied() {
            let w = words(text);
            for s in &knowledge.substances {
                if let Some(term) = s.terms.iter().find(|t| w.contains(&format!(" {t} "))) {
                    found = Some(from_substance(
                        s,
                        None,
                        format!("named '{term}' in the allergy's text"),
                    ));
                    break 'texts;
                }
            }
        }
        if found.is_none() {
            for text in texts.iter().copied() {
                if let Some(info) = ctx.lookup.resolve(&[], Some(text)) {
                    found = Some(from_dictionary(&info));
                    break;
                }
            }
        }
    }
    let Some((substance, label, names, mut classes, citation)) = found else {
        return Read {
            allergy: a,
            reading: Reading::Unknown,
        };
    };
    let index = ctx.rules.classes();
    let mut related: Vec<String> = names
        .iter()
        .flat_map(|n| index.classes_of(n).map(str::to_owned).collect::<Vec<_>>())
        .chain(classes.iter().cloned())
        .collect();
    related.sort();
    related.dedup();
    let mut citations = vec![citation];
    for w in &knowledge.class_wide {
        if related.contains(&w.class) && !classes.contains(&w.class) {
            classes.push(w.class.clone());
            citations.push(Citation {
                short: None,
                publication: w
                    .source
                    .publication
                    .clone()
                    .unwrap_or_else(|| ctx.rules.label().to_owned()),
                year: Some(w.source.year),
                section: w.source.section.clone(),
                url: None,
                rule: format!("allergy.json#class_wide:{}", w.class),
            });
        }
    }
    Read {
        allergy: a,
        reading: Reading::Known(Known {
            substance,
            label,
            names,
            classes,
            related,
            citations,
        }),
    }
}

fn from_dictionary(info: &smr_dmd::MedicineInfo) -> Found {
    (
        info.matched.name.clone(),
        Some(info.matched.name.clone()),
        info.ingredients.iter().map(|i| i.name.clone()).collect(),
        Vec::new(),
        Citation {
            publication: format!("SMR drug dictionary ({})", info.source),
            short: Some("SMR drug dictionary".to_owned()),
            year: None,
            section: format!(
                "the allergy's substance read as dm+d {} {} ({})",
                info.level.as_str().to_uppercase(),
                info.matched.code,
                info.matched.name
            ),
            url: None,
            rule: "drug-dictionary".to_owned(),
        },
    )
}

pub(crate) fn read_all<'a>(ctx: &SafetyContext<'a>) -> Vec<Read<'a>> {
    ctx.allergies.iter().map(|a| read_one(a, ctx)).collect()
}

/// "Cannot check" notes for the visible allergies SMR could not read.
pub(crate) fn unknown_notes(read: &[Read<'_>], out: &mut Vec<Problem>) {
    for r in read {
        if matches!(r.reading, Reading::Unknown) && r.allergy.visible {
            out.push(text::unknown_allergy(
                &r.allergy.label(),
                r.allergy.reference.as_ref(),
            ));
        }
    }
}

fn matches_from(k: &Known, from: &Selector) -> bool {
    from.ingredients
        .iter()
        .any(|i| k.names.iter().any(|n| name_matches(n, i)))
        || from
            .classes
            .iter()
            .any(|c| k.related.contains(c) || k.classes.contains(c))
}

pub(crate) fn check(
    p: &Prepared<'_>,
    read: &[Read<'_>],
    ctx: &SafetyContext<'_>,
    out: &mut Vec<Problem>,
) {
    for r in read {
        let Reading::Known(k) = &r.reading else {
            continue;
        };
        let shared = p
            .names
            .iter()
            .find(|n| k.names.iter().any(|a| same_ingredient(n, a)))
            .map(|n| (*n).to_owned())
            .or_else(|| {
                k.classes
                    .iter()
                    .find(|c| p.classes.contains(&c.as_str()))
                    .and_then(|c| ctx.rules.classes().get(c))
                    .map(|c| c.name.clone())
            });
        if let Some(what) = shared {
            let severity =
                if r.allergy.intolerance || r.allergy.criticality.as_deref() == Some("low") {
                    Severity::Serious
                } else {
                    Severity::Contraindicated
                };
            out.push(problem(p, r, k, severity, Conflict::Direct { what }, ctx));
            continue;
        }
        for x in &ctx.rules.allergy().cross_reactivity {
            if matches_from(k, &x.from) && p.matches(&x.to) {
                out.push(problem(
                    p,
                    r,
                    k,
                    x.severity,
                    Conflict::Cross {
                        wording: x.wording.clone(),
                        citation: crate::check::interaction::citation(
                            &format!("allergy.json#cross:{}", x.id),
                            &x.source,
                            ctx,
                        ),
                        verification: x.verification.clone(),
                        evidence: x.evidence.clone(),
                    },
                    ctx,
                ));
                break;
            }
        }
    }
}

enum Conflict {
    /// The medicine contains the substance, or is in its class (`what` names which).
    Direct { what: String },
    Cross {
        wording: String,
        citation: Citation,
        verification: crate::knowledge::Verification,
        evidence: String,
    },
}

fn problem(
    p: &Prepared<'_>,
    r: &Read<'_>,
    k: &Known,
    severity: Severity,
    conflict: Conflict,
    _ctx: &SafetyContext<'_>,
) -> Problem {
    let a = r.allergy;
    let (implicated, hidden) = super::implicated_parts([
        (p.med.visible, p.med.entries.first()),
        (a.visible, a.reference.as_ref()),
    ]);
    let key = fnv64(&format!(
        "allergy|{}|{}",
        p.med.key,
        a.reference.clone().unwrap_or_else(|| a.label())
    ));
    let kind_word = if a.intolerance {
        "intolerance"
    } else {
        "allergy"
    };
    // The allergy as recorded: its own text or display, else what its code was read as.
    let recorded = a
        .text
        .clone()
        .or_else(|| a.codings.iter().find_map(|(_, _, d)| d.clone()))
        .or_else(|| k.label.clone())
        .unwrap_or_else(|| a.label());
    if hidden > 0 {
        let summary = match (p.med.visible, a.visible) {
            (true, false) => format!(
                "{}: an allergy you cannot see concerns this medicine",
                p.med.name
            ),
            (false, true) => {
                "A medicine you cannot see conflicts with a recorded allergy".to_owned()
            }
            _ => "A medicine you cannot see conflicts with an allergy you cannot see".to_owned(),
        };
        let detail = if p.med.visible {
            format!(
                "The record holds an allergy or intolerance you cannot see that concerns {}. {ASK}",
                p.med.name
            )
        } else {
            format!(
                "{} conflicts with one of the patient's recorded allergies. {ASK}",
                text::capitalise(&p.med.shown())
            )
        };
        return Problem {
            kind: ProblemKind::Allergy,
            severity,
            code: Some(IssueCode::Algy),
            summary: truncate(&summary, SUMMARY_MAX),
            detail,
            mechanism: None,
            management: None,
            citations: Vec::new(),
            evidence: None,
            verification: None,
            implicated,
            hidden,
            override_reasons: override_reasons(ProblemKind::Allergy),
            suggestion: None,
            missing: None,
            key,
        };
    }
    let criticality = a
        .criticality
        .as_deref()
        .map(|c| format!(", criticality {c}"))
        .unwrap_or_default();
    let (summary, detail, mut citations, verification, evidence) = match conflict {
        Conflict::Direct { what } => (
            format!("{}: recorded {kind_word} to {}", p.med.name, k.substance),
            format!(
                "The record holds an {kind_word} to **{}** ({}{criticality}); **{}** is or contains {what}. \
                 Do not give it unless the {kind_word} has been disproved.",
                recorded, k.substance, p.med.name
            ),
            Vec::new(),
            None,
            Some(format!("AllergyIntolerance on record ({recorded})")),
        ),
        Conflict::Cross {
            wording,
            citation,
            verification,
            evidence,
        } => (
            format!(
                "{}: possible cross-reactivity with recorded {} {kind_word}",
                p.med.name, k.substance
            ),
            format!(
                "The record holds an {kind_word} to **{}** ({}{criticality}). {wording}",
                recorded, k.substance
            ),
            vec![citation],
            Some(verification),
            Some(evidence),
        ),
    };
    citations.extend(k.citations.iter().cloned());
    Problem {
        kind: ProblemKind::Allergy,
        severity,
        code: Some(IssueCode::Algy),
        summary: truncate(&summary, SUMMARY_MAX),
        detail,
        mechanism: None,
        management: Some(format!(
            "Check the {kind_word} record and the reaction before giving it."
        )),
        citations,
        evidence,
        verification,
        implicated,
        hidden: 0,
        override_reasons: override_reasons(ProblemKind::Allergy),
        suggestion: None,
        missing: None,
        key,
    }
}
