//! What a check finds. A [`Problem`] carries everything a CDS card or a DetectedIssue needs:
//! severity, what it is about (in words that never name a hidden medicine), management, the
//! source it rests on, override reasons and an alternative where the source names one.

use serde::Serialize;

use crate::SMR_SYSTEM_BASE;
use crate::knowledge::{Severity, SuggestionData, Verification};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    Interaction,
    Duplication,
    Allergy,
    Renal,
    /// A check that could not be made: which data is missing.
    CannotCheck,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Interaction => "interaction",
            ProblemKind::Duplication => "duplication",
            ProblemKind::Allergy => "allergy",
            ProblemKind::Renal => "renal",
            ProblemKind::CannotCheck => "cannot-check",
        }
    }
}

/// The v3 ActCode a DetectedIssue gets (http://terminology.hl7.org/CodeSystem/v3-ActCode,
/// DetectedIssue category codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum IssueCode {
    /// `DRG` Drug Interaction Alert.
    Drg,
    /// `DUPTHPY` Duplicate Therapy Alert.
    Dupthpy,
    /// `ALGY` Allergy Alert.
    Algy,
    /// `DOSECOND` dosage-condition alert: a dose limit for the patient's renal function.
    Dosecond,
    /// `LAB` Lab Alert: inappropriate or contraindicated because of a recent lab result.
    Lab,
}

impl IssueCode {
    pub fn code(self) -> &'static str {
        match self {
            IssueCode::Drg => "DRG",
            IssueCode::Dupthpy => "DUPTHPY",
            IssueCode::Algy => "ALGY",
            IssueCode::Dosecond => "DOSECOND",
            IssueCode::Lab => "LAB",
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            IssueCode::Drg => "Drug Interaction Alert",
            IssueCode::Dupthpy => "Duplicate Therapy Alert",
            IssueCode::Algy => "Allergy Alert",
            IssueCode::Dosecond => "dosage-condition alert",
            IssueCode::Lab => "Lab Alert",
        }
    }
}

/// A source a problem rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Citation {
    /// The publication (journal article, bulletin, SmPC, guideline).
    pub publication: String,
    /// How a card names it in a few words ("Phansalkar et al. 2012"), where the source has a
    /// short form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub short: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub year: Option<u16>,
    /// Table, section or article title.
    pub section: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The data entry (`interactions.json` id …) the problem comes from.
    pub rule: String,
}

/// A reason the prescriber may give for going ahead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverrideReason {
    pub code: &'static str,
    pub system: String,
    pub display: &'static str,
}

/// An alternative the source names, in place of the medicine ordered.
pub type Suggestion = SuggestionData;

/// One problem found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub severity: Severity,
    /// `None` for a check that could not be made.
    pub code: Option<IssueCode>,
    /// One line, at most 139 characters (a CDS card's summary).
    pub summary: String,
    /// Markdown: what was found, why it matters, what to do.
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub management: Option<String>,
    /// The sources (several when rules from different sources found the same problem).
    pub citations: Vec<Citation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// References of the visible entries concerned: the order (when it has an id) first,
    /// then current medicines, allergies and results. Never a hidden one.
    pub implicated: Vec<String>,
    /// How many of the things concerned the caller may not see.
    pub hidden: usize,
    pub override_reasons: Vec<OverrideReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<Suggestion>,
    /// For a check that could not be made: the data that is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
    /// A stable digest of what the problem is about (rule kind and the medicines, allergy or
    /// results concerned), for de-duplication and DetectedIssue identifiers. A hash, so that
    /// it names nothing.
    pub key: u64,
}

/// FNV-1a: a short stable digest.
pub(crate) fn fnv64(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub(crate) fn override_reasons(kind: ProblemKind) -> Vec<OverrideReason> {
    let system = format!("{SMR_SYSTEM_BASE}/CodeSystem/safety-override-reason");
    let r = |code: &'static str, display: &'static str| OverrideReason {
        code,
        system: system.clone(),
        display,
    };
    match kind {
        ProblemKind::Interaction => vec![
            r(
                "benefit-outweighs-risk",
                "Clinical benefit outweighs the risk; will monitor as advised",
            ),
            r(
                "previously-tolerated",
                "Patient has taken this combination before without harm",
            ),
            r(
                "other-medicine-stopped",
                "The other medicine has been stopped or is being stopped",
            ),
        ],
        ProblemKind::Duplication => vec![
            r("intended", "Both are intended (e.g. a planned switch-over)"),
            r("replaces", "This order replaces the current medicine"),
            r(
                "other-medicine-stopped",
                "The other medicine has been stopped or is being stopped",
            ),
        ],
        ProblemKind::Allergy => vec![
            r(
                "allergy-disputed",
                "The allergy is disputed or the patient has tolerated this medicine since",
            ),
            r(
                "benefit-outweighs-risk",
                "Clinical benefit outweighs the risk; will monitor as advised",
            ),
        ],
        ProblemKind::Renal => vec![
            r(
                "dose-adjusted",
                "The dose is already adjusted for renal function",
            ),
            r(
                "renal-function-changed",
                "Renal function has changed since the result shown",
            ),
            r(
                "benefit-outweighs-risk",
                "Clinical benefit outweighs the risk; will monitor as advised",
            ),
        ],
        ProblemKind::CannotCheck => Vec::new(),
    }
}

/// Cuts text to at most `max` characters on a character boundary, marking the cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// CDS Hooks limits a card's summary to 140 characters; SMR stays below.
pub const SUMMARY_MAX: usize = 139;

/// Merges problems about the same thing (same kind and key): the most severe is kept, and
/// the others' sources and references are added to it. Then sorts most severe first, then by
/// kind and summary, so the output does not depend on the order rules ran in.
pub fn dedupe_and_sort(problems: Vec<Problem>) -> Vec<Problem> {
    let mut out: Vec<Problem> = Vec::with_capacity(problems.len());
    let mut sorted = problems;
    // Most severe first, so the one kept is the most severe of its group.
    sorted.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.kind.cmp(&b.kind))
            .then_with(|| a.summary.cmp(&b.summary))
    });
    for p in sorted {
        match out.iter_mut().find(|q| q.kind == p.kind && q.key == p.key) {
            Some(kept) => {
                for c in p.citations {
                    if !kept.citations.contains(&c) {
                        kept.citations.push(c);
                    }
                }
                for r in p.implicated {
                    if !kept.implicated.contains(&r) {
                        kept.implicated.push(r);
                    }
                }
                if kept.suggestion.is_none() {
                    kept.suggestion = p.suggestion;
                }
            }
            None => out.push(p),
        }
    }
    out
}
