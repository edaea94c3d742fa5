//! Therapeutic duplication: the same active ingredient in two medicines (an order repeating a
//! current medicine, paracetamol alone and in co-codamol), or two different members of a class
//! where duplication is a hazard (two NSAIDs, two anticoagulants, an ACE inhibitor with an
//! ARB), in whatever care settings they were prescribed.

use crate::context::SafetyContext;
use crate::knowledge::Severity;
use crate::problem::{
    Citation, IssueCode, Problem, ProblemKind, SUMMARY_MAX, override_reasons, truncate,
};

use super::text::{ASK, Names, capitalise};
use super::{Prepared, implicated, pair_key};

fn class_severity(s: &str) -> Severity {
    match s {
        "high" => Severity::Serious,
        "low" => Severity::Minor,
        _ => Severity::Moderate,
    }
}

fn setting(p: &Prepared<'_>) -> String {
    match (&p.med.setting, p.is_order) {
        (_, true) => "this order".to_owned(),
        (Some(s), false) => format!("current, {s}"),
        (None, false) => "current".to_owned(),
    }
}

pub(crate) fn between(
    x: &Prepared<'_>,
    y: &Prepared<'_>,
    ctx: &SafetyContext<'_>,
    out: &mut Vec<Problem>,
) {
    let (first, second) = if y.is_order { (y, x) } else { (x, y) };
    let (refs, hidden) = implicated(&[first.med, second.med]);
    let key = pair_key(ProblemKind::Duplication, "", &[&x.med.key, &y.med.key]);
    if let Some(ingredient) = x.shares_ingredient_with(y) {
        let same = ctx.rules.same_ingredient();
        let citation = Citation {
            publication: same.publication.clone(),
            short: None,
            year: Some(same.year),
            section: same.section.clone(),
            url: None,
            rule: "duplicate-classes.json#same_ingredient".to_owned(),
        };
        out.push(if hidden > 0 {
            hidden_problem(same.severity, first, second, refs, hidden, key)
        } else {
            Problem {
                kind: ProblemKind::Duplication,
                severity: same.severity,
                code: Some(IssueCode::Dupthpy),
                summary: truncate(
                    &format!(
                        "{} duplicates {}: both contain {ingredient}",
                        first.med.name, second.med.name
                    ),
                    SUMMARY_MAX,
                ),
                detail: format!(
                    "**{}** ({}) and **{}** ({}) both contain **{ingredient}**. Check that both are intended and \
                     that the total dose is safe.\n\n**Evidence:** {} (transcription {}: {}).",
                    first.med.name,
                    setting(first),
                    second.med.name,
                    setting(second),
                    same.section,
                    same.verification.status.as_str(),
                    same.verification.detail
                ),
                mechanism: None,
                management: Some("Check that both are intended and that the total dose is safe.".into()),
                citations: vec![citation],
                evidence: Some(same.section.clone()),
                verification: Some(same.verification.clone()),
                implicated: refs,
                hidden: 0,
                override_reasons: override_reasons(ProblemKind::Duplication),
                suggestion: None,
                missing: None,
                key,
            }
        });
        return;
    }
    for d in ctx.rules.duplication_classes() {
        if !(x.in_class(&d.classes) && y.in_class(&d.classes)) {
            continue;
        }
        let severity = class_severity(&d.severity);
        out.push(if hidden > 0 {
            hidden_problem(severity, first, second, refs.clone(), hidden, key)
        } else {
            Problem {
                kind: ProblemKind::Duplication,
                severity,
                code: Some(IssueCode::Dupthpy),
                summary: truncate(
                    &format!(
                        "{} and {} are both {}",
                        first.med.name, second.med.name, d.name
                    ),
                    SUMMARY_MAX,
                ),
                detail: format!(
                    "**{}** ({}) and **{}** ({}) are both {}: taking two at once is a hazard. Check that both are \
                     intended.\n\n**Evidence:** {}.",
                    first.med.name,
                    setting(first),
                    second.med.name,
                    setting(second),
                    d.name,
                    d.source
                ),
                mechanism: None,
                management: Some("Check that both are intended; usually one replaces the other.".into()),
                citations: vec![Citation {
                    publication: d.source.clone(),
                    short: None,
                    year: None,
                    section: format!("duplication class {}", d.code),
                    url: None,
                    rule: format!("duplicate-classes.json#{}", d.code),
                }],
                // The class's source is the citation: no second copy as evidence.
                evidence: None,
                verification: None,
                implicated: refs.clone(),
                hidden: 0,
                override_reasons: override_reasons(ProblemKind::Duplication),
                suggestion: None,
                missing: None,
                key,
            }
        });
    }
}

fn hidden_problem(
    severity: Severity,
    first: &Prepared<'_>,
    second: &Prepared<'_>,
    refs: Vec<String>,
    hidden: usize,
    key: u64,
) -> Problem {
    let summary = match (first.med.visible, second.med.visible) {
        (true, false) => format!("{} may duplicate a medicine you cannot see", first.med.name),
        (false, true) => format!(
            "{} may duplicate a medicine you cannot see",
            second.med.name
        ),
        _ => "Two medicines you cannot see duplicate each other".to_owned(),
    };
    Problem {
        kind: ProblemKind::Duplication,
        severity,
        code: Some(IssueCode::Dupthpy),
        summary: truncate(&summary, SUMMARY_MAX),
        detail: format!(
            "{} duplicates {}. {ASK}",
            capitalise(&first.med.shown()),
            second.med.shown()
        ),
        mechanism: None,
        management: None,
        citations: Vec::new(),
        evidence: None,
        verification: None,
        implicated: refs,
        hidden,
        override_reasons: override_reasons(ProblemKind::Duplication),
        suggestion: None,
        missing: None,
        key,
    }
}
