//! Renal dose checks against the latest recent eGFR or creatinine clearance. A rule names its
//! measure; when that has no recent result but the other has, the other is used and the
//! problem says so; when neither has, a note says which data is missing.

use crate::DAY_MICROS;
use crate::context::{RenalResult, SafetyContext};
use crate::dose::daily_mg;
use crate::knowledge::{Band, Measure, RenalRule};
use crate::problem::{
    Citation, IssueCode, Problem, ProblemKind, SUMMARY_MAX, fnv64, override_reasons, truncate,
};

use super::Prepared;
use super::text::{self, ASK, severity_phrase};

/// The latest result of `measure` taken in the window (not after now: a result dated in the
/// future is a data error, not the latest).
fn latest<'a>(ctx: &SafetyContext<'a>, measure: Measure, since: i64) -> Option<&'a RenalResult> {
    ctx.renal
        .iter()
        .filter(|r| r.measure == measure && r.when >= since && r.when <= ctx.now + DAY_MICROS)
        .max_by_key(|r| r.when)
}

fn band(rule: &RenalRule, value: f64) -> Option<&Band> {
    rule.bands.iter().find(|b| value < b.below)
}

pub(crate) fn check(p: &Prepared<'_>, ctx: &SafetyContext<'_>, out: &mut Vec<Problem>) {
    let renal = ctx.rules.renal();
    let days = renal.recent.days;
    let since = ctx.now - days * DAY_MICROS;
    for rule in &renal.rules {
        if !p.matches(&rule.drug) {
            continue;
        }
        let preferred = rule.measure;
        let (result, substituted) = match latest(ctx, preferred, since) {
            Some(r) => (r, false),
            None => match latest(ctx, preferred.other(), since) {
                Some(r) => (r, true),
                None => {
                    // A hidden medicine's missing result is not noted: see the module docs of
                    // `check`.
                    if p.med.visible {
                        out.push(text::renal_missing(
                            p.med,
                            &rule.id,
                            days,
                            &renal.measures.get(preferred).name,
                            &renal.measures.get(preferred.other()).name,
                        ));
                    }
                    continue;
                }
            },
        };
        let Some(band) = band(rule, result.value) else {
            continue;
        };
        // A dose-limit band applies only above the limit (or when the dose is unknown).
        let ingredient = rule
            .drug
            .ingredients
            .iter()
            .find(|i| p.has_ingredient(std::slice::from_ref(i)))
            .cloned()
            .or_else(|| p.names.first().map(|n| (*n).to_owned()));
        let daily = match (band.max_mg_per_day, &p.med.dose, &ingredient) {
            (Some(_), Some(dose), Some(i)) => daily_mg(p.info, dose, i),
            _ => None,
        };
        if let (Some(max), Some(d)) = (band.max_mg_per_day, daily)
            && d <= max + 1e-9
        {
            continue;
        }
        out.push(problem(p, rule, band, result, substituted, daily, ctx));
    }
}

fn problem(
    p: &Prepared<'_>,
    rule: &RenalRule,
    band: &Band,
    result: &RenalResult,
    substituted: bool,
    daily: Option<f64>,
    ctx: &SafetyContext<'_>,
) -> Problem {
    let renal = ctx.rules.renal();
    let measure = renal.measures.get(result.measure);
    let code = if band.max_mg_per_day.is_some() {
        IssueCode::Dosecond
    } else {
        IssueCode::Lab
    };
    let (implicated, hidden) = super::implicated_parts([
        (p.med.visible, p.med.entries.first()),
        (result.visible, result.reference.as_ref()),
    ]);
    let key = fnv64(&format!("renal|{}|{}", rule.id, p.med.key));
    if hidden > 0 {
        let summary = if p.med.visible {
            format!(
                "{}: {} for renal function (a result you cannot see)",
                p.med.name,
                severity_phrase(band.severity)
            )
        } else {
            "A medicine you cannot see needs a renal dose review".to_owned()
        };
        return Problem {
            kind: ProblemKind::Renal,
            severity: band.severity,
            code: Some(code),
            summary: truncate(&summary, SUMMARY_MAX),
            detail: format!(
                "{} is {} for the patient's renal function, by a result or medicine you cannot see. {ASK}",
                if p.med.visible {
                    p.med.name.clone()
                } else {
                    "A medicine you cannot see".to_owned()
                },
                severity_phrase(band.severity)
            ),
            mechanism: None,
            management: None,
            citations: Vec::new(),
            evidence: None,
            verification: None,
            implicated,
            hidden,
            override_reasons: override_reasons(ProblemKind::Renal),
            suggestion: None,
            missing: None,
            key,
        };
    }
    let reading = format!(
        "{} {} {} ({})",
        measure.name, result.value_text, measure.unit, result.when_text
    );
    let summary = format!(
        "{}: {} with {reading}",
        p.med.name,
        severity_phrase(band.severity)
    );
    let mut detail = format!("**{}** with {reading}: {}", p.med.name, band.advice);
    if let (Some(max), Some(d)) = (band.max_mg_per_day, daily) {
        detail.push_str(&format!(
            "\n\n**Dose:** the current dose works out at {d:.0} mg a day, above the {max:.0} mg limit."
        ));
    } else if let Some(max) = band.max_mg_per_day {
        detail.push_str(&format!(
            "\n\n**Dose:** SMR could not work out the daily dose; keep it at or below {max:.0} mg a day."
        ));
    }
    if substituted {
        detail.push_str(&format!(
            "\n\n**Note:** the rule is written for {} and none from the last {} days is on record; the {} \
             above was used instead. Calculate {} (Cockcroft-Gault uses weight) before relying on it.",
            renal.measures.get(rule.measure).name,
            renal.recent.days,
            measure.name,
            renal.measures.get(rule.measure).name,
        ));
    }
    detail.push_str(&format!(
        "\n\n**Evidence:** {} (transcription {}: {}).",
        rule.evidence,
        rule.verification.status.as_str(),
        rule.verification.detail
    ));
    Problem {
        kind: ProblemKind::Renal,
        severity: band.severity,
        code: Some(code),
        summary: truncate(&summary, SUMMARY_MAX),
        detail,
        mechanism: None,
        management: Some(band.advice.clone()),
        citations: vec![Citation {
            short: None,
            publication: rule
                .source
                .publication
                .clone()
                .unwrap_or_else(|| ctx.rules.label().to_owned()),
            year: Some(rule.source.year),
            section: rule.source.section.clone(),
            url: None,
            rule: format!("renal.json#{}", rule.id),
        }],
        evidence: Some(rule.evidence.clone()),
        verification: Some(rule.verification.clone()),
        implicated,
        hidden: 0,
        override_reasons: override_reasons(ProblemKind::Renal),
        suggestion: None,
        missing: None,
        key,
    }
}
