//! Drug-drug interactions: every rule of the source, both ways round.

use crate::context::SafetyContext;
use crate::dose::daily_mg;
use crate::knowledge::{Interaction, Severity, Side};
use crate::problem::{
    Citation, IssueCode, Problem, ProblemKind, SUMMARY_MAX, override_reasons, truncate,
};

use super::text::{ASK, Names, capitalise, severity_phrase};
use super::{Prepared, implicated, pair_key};

pub(crate) fn between(
    x: &Prepared<'_>,
    y: &Prepared<'_>,
    ctx: &SafetyContext<'_>,
    out: &mut Vec<Problem>,
) {
    // The same active ingredient twice is a duplication, not an interaction with itself
    // (citalopram with citalopram is not "two QT-prolonging medicines").
    if x.shares_ingredient_with(y).is_some() {
        return;
    }
    for rule in ctx.rules.interactions() {
        let (a, b) = if x.matches(&rule.a) && y.matches(&rule.b) {
            (x, y)
        } else if y.matches(&rule.a) && x.matches(&rule.b) {
            (y, x)
        } else {
            continue;
        };
        let dose = match dose_condition(rule, a, b) {
            DoseCheck::Within => continue,
            other => other,
        };
        out.push(problem(rule, a, b, dose, ctx));
    }
}

enum DoseCheck {
    /// No dose condition.
    None,
    /// At or below the limit: the rule does not apply.
    Within,
    Above {
        ingredient: String,
        mg: f64,
        limit: f64,
    },
    Unknown {
        ingredient: String,
        limit: f64,
    },
}

fn dose_condition(rule: &Interaction, a: &Prepared<'_>, b: &Prepared<'_>) -> DoseCheck {
    let Some(c) = &rule.when else {
        return DoseCheck::None;
    };
    let d = &c.dose_above;
    let Some(holder) = [a, b]
        .into_iter()
        .find(|p| p.has_ingredient(std::slice::from_ref(&d.ingredient)))
    else {
        return DoseCheck::None;
    };
    let daily = holder
        .med
        .dose
        .as_ref()
        .and_then(|dose| daily_mg(holder.info, dose, &d.ingredient));
    match daily {
        Some(mg) if mg <= d.mg_per_day + 1e-9 => DoseCheck::Within,
        Some(mg) => DoseCheck::Above {
            ingredient: d.ingredient.clone(),
            mg,
            limit: d.mg_per_day,
        },
        None => DoseCheck::Unknown {
            ingredient: d.ingredient.clone(),
            limit: d.mg_per_day,
        },
    }
}

pub(crate) fn citation(
    rule_id: &str,
    source: &crate::knowledge::SourceRef,
    ctx: &SafetyContext<'_>,
) -> Citation {
    let publication = source
        .reference
        .as_deref()
        .and_then(|r| ctx.rules.publications().iter().find(|p| p.id == r));
    Citation {
        publication: publication
            .map(|p| p.publication.clone())
            .or_else(|| source.publication.clone())
            .unwrap_or_else(|| ctx.rules.label().to_owned()),
        short: publication.map(|p| with_year(&p.short, source.year)),
        year: Some(source.year),
        section: source.section.clone(),
        url: publication.map(|p| p.url.clone()),
        rule: rule_id.to_owned(),
    }
}

/// "MHRA Drug Safety Update" and 2012 → "MHRA Drug Safety Update 2012" (a short form that
/// already holds the year keeps it once).
fn with_year(short: &str, year: u16) -> String {
    if short.contains(&year.to_string()) {
        short.to_owned()
    } else {
        format!("{short} {year}")
    }
}

fn short_source(rule: &Interaction, ctx: &SafetyContext<'_>) -> String {
    let short = rule
        .source
        .reference
        .as_deref()
        .and_then(|r| ctx.rules.publications().iter().find(|p| p.id == r))
        .map_or("source", |p| p.short.as_str());
    with_year(short, rule.source.year)
}

fn fmt_mg(mg: f64) -> String {
    if (mg - mg.round()).abs() < 1e-9 {
        format!("{}", mg.round() as i64)
    } else {
        format!("{mg:.1}")
    }
}

fn problem(
    rule: &Interaction,
    a: &Prepared<'_>,
    b: &Prepared<'_>,
    dose: DoseCheck,
    ctx: &SafetyContext<'_>,
) -> Problem {
    // The order (when one is involved) is named first.
    let (first, second) = if b.is_order { (b, a) } else { (a, b) };
    let (refs, hidden) = implicated(&[first.med, second.med]);
    let key = pair_key(ProblemKind::Interaction, "", &[&a.med.key, &b.med.key]);
    if hidden > 0 {
        return hidden_problem(rule.severity, first, second, refs, hidden, key);
    }
    let summary = format!(
        "{} + {}: {} ({})",
        first.med.name,
        second.med.name,
        severity_phrase(rule.severity),
        short_source(rule, ctx)
    );
    let dose_line = match &dose {
        DoseCheck::Above {
            ingredient,
            mg,
            limit,
        } => format!(
            "\n\n**Dose:** the {ingredient} dose works out at {} mg a day, above the {} mg limit for this combination.",
            fmt_mg(*mg),
            fmt_mg(*limit)
        ),
        DoseCheck::Unknown { ingredient, limit } => format!(
            "\n\n**Dose:** SMR could not work out the daily {ingredient} dose; this applies above {} mg a day.",
            fmt_mg(*limit)
        ),
        DoseCheck::None | DoseCheck::Within => String::new(),
    };
    let detail = format!(
        "**{}** with **{}**: {}.\n\n**Mechanism:** {}\n\n**Management:** {}{dose_line}\n\n**Evidence:** {} \
         (transcription {}: {}).",
        first.med.name,
        second.med.name,
        severity_phrase(rule.severity),
        rule.mechanism,
        rule.management,
        rule.evidence,
        rule.verification.status.as_str(),
        rule.verification.detail,
    );
    Problem {
        kind: ProblemKind::Interaction,
        severity: rule.severity,
        code: Some(IssueCode::Drg),
        summary: truncate(&summary, SUMMARY_MAX),
        detail,
        mechanism: Some(rule.mechanism.clone()),
        management: Some(rule.management.clone()),
        citations: vec![citation(&rule.id, &rule.source, ctx)],
        evidence: Some(rule.evidence.clone()),
        verification: Some(rule.verification.clone()),
        implicated: refs,
        hidden: 0,
        override_reasons: override_reasons(ProblemKind::Interaction),
        // An alternative replaces the order, so only when the order is the side it is for.
        suggestion: rule.suggestion.clone().filter(|s| match s.replaces {
            Some(Side::A) => a.is_order,
            Some(Side::B) => b.is_order,
            None => false,
        }),
        missing: None,
        key,
    }
}

/// An interaction involving something the caller may not see: severity and what to do, but
/// nothing about the rule (its mechanism, classes or source would say what the hidden
/// medicine is).
fn hidden_problem(
    severity: Severity,
    first: &Prepared<'_>,
    second: &Prepared<'_>,
    refs: Vec<String>,
    hidden: usize,
    key: u64,
) -> Problem {
    let summary = match (first.med.visible, second.med.visible) {
        (true, false) if first.is_order => {
            format!(
                "A medicine you cannot see interacts with {}",
                first.med.name
            )
        }
        (true, false) => format!(
            "{} interacts with a medicine you cannot see",
            first.med.name
        ),
        (false, true) => format!(
            "{} interacts with a medicine you cannot see",
            second.med.name
        ),
        _ => "Two medicines you cannot see interact".to_owned(),
    };
    let detail = format!(
        "{} interacts with {} (SMR rates the combination: {}). {ASK}",
        capitalise(&first.med.shown()),
        second.med.shown(),
        severity_phrase(severity)
    );
    Problem {
        kind: ProblemKind::Interaction,
        severity,
        code: Some(IssueCode::Drg),
        summary: truncate(&summary, SUMMARY_MAX),
        detail,
        mechanism: None,
        management: None,
        citations: Vec::new(),
        evidence: None,
        verification: None,
        implicated: refs,
        hidden,
        override_reasons: override_reasons(ProblemKind::Interaction),
        suggestion: None,
        missing: None,
        key,
    }
}
