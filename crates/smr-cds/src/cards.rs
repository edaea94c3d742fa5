//! From an order and the patient's results to findings, and from findings to CDS Hooks 2.0
//! cards (https://cds-hooks.hl7.org/2.0/#card-attributes).
//!
//! # Guidelines whose transcription is not verified
//!
//! Each guideline in `smr-pgx-guidelines` records whether SMR's transcription of it was
//! checked against the published source ([`Verification`]). A card resting on a guideline that
//! is not [`Verification::Verified`] says so: its `detail` opens with [`UNVERIFIED_CAVEAT`],
//! a recommendation card's `summary` ends "(CPIC, transcription unverified)" (or "partly
//! verified") so the caveat is seen even where only the summary is shown, and the prescriber
//! can override with "the published guideline differs from SMR's transcription".
//!
//! The indicator is deliberately **not** lowered: a card is `critical` when the guideline as
//! transcribed implies it (strong advice to avoid or use an alternative), verified or not.
//! Guidelines not fully verified can hold contraindications whose harm is severe and
//! irreversible (when the 2026-11-29 review ended: the thiopurines, where a TPMT or NUDT15
//! poor metabolizer risks fatal myelosuppression), so downgrading would trade a possible
//! over-alert for a likely under-alert. The card is therefore never critical
//! *on the transcription alone*: it carries the caveat and the link to the published table, and
//! the prescriber is told to confirm there before acting. When a guideline's transcription is
//! verified the caveat disappears with no code change.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use smr_dmd::Identified;
use smr_pgx::{Gene, Interpretation};
use smr_pgx_guidelines::{
    Action, Assessment, Citation, Recommendation, SourceBody, Strength, Verification, recommend,
};

use crate::genotype::GeneResult;
use crate::uk_guidance::{Applicability, PatientContext, UkGuidance, missing_tests};

/// Code system for SMR's own codes (override reasons, card topics, identifiers). A
/// placeholder canonical until SMR publishes its terminology.
pub const SMR_SYSTEM_BASE: &str = "https://fhir.smr.nhs.uk";

/// CDS Hooks limits `summary` to 140 characters; SMR stays strictly below.
pub const SUMMARY_MAX: usize = 139;

/// Said on every card (and DetectedIssue) resting on a guideline whose transcription is not
/// verified against the published source.
pub const UNVERIFIED_CAVEAT: &str = "SMR's transcription of this guideline table has not yet been checked against the \
     published source: confirm with the linked guideline before acting.";

/// The caveat paragraph for a guideline that is not verified (`None` when it is).
pub fn verification_caveat(c: &Citation) -> Option<String> {
    match &c.verification {
        Verification::Verified { .. } => None,
        v => Some(format!(
            "**Transcription {}:** {UNVERIFIED_CAVEAT} (Verification record: {})",
            v.label(),
            v.detail()
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Indicator {
    Info,
    Warning,
    Critical,
}

/// A CDS Hooks Coding (`code`, `system`, `display`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coding {
    pub code: String,
    pub system: String,
    pub display: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub topic: Option<Coding>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuggestionAction {
    #[serde(rename = "type")]
    pub kind: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resource: Option<Value>,
    /// CDS Hooks 2.0 Action: a relative reference (`Type/id`) to the resource a `delete`
    /// removes, a single string (not an array).
    #[serde(
        rename = "resourceId",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub resource_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    pub label: String,
    pub uuid: String,
    #[serde(
        rename = "isRecommended",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub is_recommended: Option<bool>,
    pub actions: Vec<SuggestionAction>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Card {
    pub uuid: String,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
    pub indicator: Indicator,
    pub source: Source,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub suggestions: Vec<Suggestion>,
    #[serde(
        rename = "selectionBehavior",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub selection_behavior: Option<String>,
    #[serde(
        rename = "overrideReasons",
        skip_serializing_if = "Vec::is_empty",
        default
    )]
    pub override_reasons: Vec<Coding>,
}

/// Pairs where a guideline (rather than UK guidance, which is data in
/// `data/uk-testing-guidance.json`, see [`crate::uk_guidance`]) recommends testing before the
/// first prescription, so a missing result is itself worth telling the prescriber (other missing results give no card: SMR cannot know
/// whether a test is warranted, and cards on every order for every untested gene would train
/// prescribers to ignore the real ones).
struct PreTest {
    gene: Gene,
    drugs: &'static [&'static str],
    advice: &'static str,
    source: &'static str,
    url: &'static str,
}

const PRE_TEST: &[PreTest] = &[PreTest {
    gene: Gene::HlaB,
    drugs: &["abacavir"],
    advice: "Screen for HLA-B*57:01 before starting abacavir: carriers are at high risk of abacavir \
                 hypersensitivity and must not receive it.",
    source: "CPIC Guidelines for HLA-B Genotype and Abacavir Dosing (2012; literature review 2014, \
                 recommendations unchanged); abacavir SmPC (screening required before initiation)",
    url: "https://cpicpgx.org/guidelines/guideline-for-abacavir-and-hla-b/",
}];

/// What SMR found about one ingredient of one order.
#[derive(Debug, Clone, PartialEq)]
pub enum FindingKind {
    /// A guideline recommends something other than standard dosing.
    Recommendation(Box<Recommendation>),
    /// A relevant gene's result cannot be used.
    Indeterminate {
        gene: Gene,
        reason: String,
        guideline: Citation,
    },
    /// No result for a gene that should be tested before this drug.
    TestFirst { gene: Gene, guideline: Citation },
    /// UK guidance asks for a test before this drug and the patient has no result.
    UkTestMissing {
        gene: Gene,
        guidance: &'static UkGuidance,
        applicability: Applicability,
    },
    /// The medicine could not be identified, so no check was possible.
    Unidentified { reason: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub kind: FindingKind,
    pub indicator: Indicator,
    /// Ingredient name (dm+d), when identified.
    pub drug: Option<String>,
    /// The medicine as the order names it.
    pub medicine: String,
    /// `MedicationRequest/{id}` (or MedicationStatement), when the order has an id.
    pub order_ref: Option<String>,
    /// How the order was identified, for the evidence statement.
    pub identified_by: String,
    /// `Observation/{id}` of the results used.
    pub evidence: Vec<String>,
}

/// The codings and text of an order's medicine (`medicationCodeableConcept`, or a contained
/// Medication's `code`).
pub fn order_medicine(order: &Value) -> (Vec<(Option<String>, String)>, Option<String>) {
    let cc = order.get("medicationCodeableConcept").cloned().or_else(|| {
        let reference = order
            .pointer("/medicationReference/reference")
            .and_then(Value::as_str)?;
        let local = reference.strip_prefix('#')?;
        order
            .get("contained")
            .and_then(Value::as_array)?
            .iter()
            .find(|c| c.get("id").and_then(Value::as_str) == Some(local))
            .and_then(|m| m.get("code").cloned())
    });
    let display = order
        .pointer("/medicationReference/display")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let Some(cc) = cc else {
        return (Vec::new(), display);
    };
    let codings: Vec<(Option<String>, String)> = cc
        .get("coding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let code = c.get("code").and_then(Value::as_str)?;
            Some((
                c.get("system").and_then(Value::as_str).map(str::to_owned),
                code.to_owned(),
            ))
        })
        .collect();
    let text = cc
        .get("text")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            cc.get("coding")
                .and_then(Value::as_array)?
                .iter()
                .find_map(|c| c.get("display").and_then(Value::as_str))
                .map(str::to_owned)
        });
    (codings, text.or(display))
}

fn order_ref(order: &Value) -> Option<String> {
    let ty = order.get("resourceType").and_then(Value::as_str)?;
    let id = order.get("id").and_then(Value::as_str)?;
    Some(format!("{ty}/{id}"))
}

/// Every finding for one order (MedicationRequest or MedicationStatement).
/// The medicine an order names, from its codings and text (see [`order_medicine`]).
fn identify_medicine(codings: &[(Option<String>, String)], text: Option<&str>) -> Identified {
    let pairs: Vec<(Option<&str>, &str)> = codings
        .iter()
        .map(|(s, c)| (s.as_deref(), c.as_str()))
        .collect();
    smr_dmd::identify(&pairs, text)
}

/// Whether the order names a medicine that some guideline gives pharmacogenomic advice for
/// (an order that cannot be identified needs no results: its card says so).
pub fn has_pgx_guidance(order: &Value) -> bool {
    let (codings, text) = order_medicine(order);
    identify_medicine(&codings, text.as_deref())
        .ingredient_names()
        .iter()
        .any(|drug| !smr_pgx_guidelines::relevant_genes(drug).is_empty())
}

pub fn assess_order(order: &Value, results: &[GeneResult]) -> Vec<Finding> {
    let interpretations: Vec<_> = results.iter().map(GeneResult::interpretation).collect();
    assess_order_interpreted(order, results, &interpretations)
}

/// [`assess_order`] with the results already interpreted (`interpretations[i]` is
/// `results[i].interpretation()`), as [`crate::genotype::PatientResults`] holds them.
pub fn assess_order_interpreted(
    order: &Value,
    results: &[GeneResult],
    interpretations: &[Interpretation],
) -> Vec<Finding> {
    assess_order_in_context(order, results, interpretations, &PatientContext::default())
}

/// [`assess_order_interpreted`] knowing more about the patient (conditions, age), which
/// decides whether UK testing guidance for a population applies (see [`crate::uk_guidance`]).
pub fn assess_order_in_context(
    order: &Value,
    results: &[GeneResult],
    interpretations: &[Interpretation],
    ctx: &PatientContext,
) -> Vec<Finding> {
    let (codings, text) = order_medicine(order);
    let identified = identify_medicine(&codings, text.as_deref());
    let medicine = text
        .clone()
        .or_else(|| codings.first().map(|(_, c)| format!("code {c}")))
        .unwrap_or_else(|| "(unnamed medicine)".into());
    let order_ref = order_ref(order);
    let identified_by = match &identified {
        Identified::ByCode { code, term, .. } => format!("dm+d code {code} ({term})"),
        Identified::ByText { matched, .. } => format!("its text ('{}')", matched.join("', '")),
        Identified::Unknown { reason } => {
            return vec![Finding {
                kind: FindingKind::Unidentified {
                    reason: reason.clone(),
                },
                indicator: Indicator::Info,
                drug: None,
                medicine,
                order_ref,
                identified_by: String::new(),
                evidence: Vec::new(),
            }];
        }
    };
    let mut out = Vec::new();
    for drug in identified.ingredient_names() {
        for assessment in recommend(drug, interpretations) {
            let (kind, indicator, genes): (FindingKind, Indicator, Vec<Gene>) = match assessment {
                Assessment::Recommendation(r) => {
                    let Some(indicator) = indicator_for(&r.action, r.classification) else {
                        continue;
                    };
                    let genes = r.genotypes.iter().map(|g| g.gene).collect();
                    (FindingKind::Recommendation(Box::new(r)), indicator, genes)
                }
                Assessment::Indeterminate {
                    gene,
                    reason,
                    guideline,
                    ..
                } => (
                    FindingKind::Indeterminate {
                        gene,
                        reason,
                        guideline,
                    },
                    Indicator::Info,
                    vec![gene],
                ),
                Assessment::NoGenotype {
                    genes_needed,
                    guideline,
                    ..
                } => {
                    let Some(p) = PRE_TEST
                        .iter()
                        .find(|p| genes_needed.contains(&p.gene) && p.drugs.contains(&drug))
                    else {
                        continue;
                    };
                    (
                        FindingKind::TestFirst {
                            gene: p.gene,
                            guideline,
                        },
                        Indicator::Info,
                        Vec::new(),
                    )
                }
                Assessment::NotPgxRelevant { .. } => continue,
            };
            let evidence = results
                .iter()
                .filter(|r| genes.contains(&r.gene))
                .filter_map(|r| r.reference.clone())
                .collect();
            out.push(Finding {
                kind,
                indicator,
                drug: Some(drug.to_owned()),
                medicine: medicine.clone(),
                order_ref: order_ref.clone(),
                identified_by: identified_by.clone(),
                evidence,
            });
        }
        for m in missing_tests(drug, results, ctx) {
            // The Conditions that put the patient in the guidance's population are evidence.
            let evidence = match &m.applicability {
                Applicability::ConditionOnRecord(c) => c.clone(),
                _ => Vec::new(),
            };
            out.push(Finding {
                kind: FindingKind::UkTestMissing {
                    gene: m.guidance.gene,
                    guidance: m.guidance,
                    applicability: m.applicability,
                },
                indicator: m.guidance.indicator,
                drug: Some(drug.to_owned()),
                medicine: medicine.clone(),
                order_ref: order_ref.clone(),
                identified_by: identified_by.clone(),
                evidence,
            });
        }
    }
    out
}

/// Card urgency from the guideline's action and strength. `None` for standard dosing, which
/// gets no card (a card that says "carry on" on every order is noise). The guideline's
/// verification does not change it; an unverified one adds a caveat to the card instead (see
/// the module documentation for why).
pub fn indicator_for(action: &Action, strength: Strength) -> Option<Indicator> {
    Some(match action {
        Action::Standard => return None,
        Action::Avoid | Action::Alternative if strength == Strength::Strong => Indicator::Critical,
        Action::Avoid | Action::Alternative | Action::DoseChange { .. } => Indicator::Warning,
        Action::Monitor { .. } => Indicator::Info,
    })
}

/// Cuts text to at most `max` characters on a character boundary, marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

fn body(c: &Citation) -> &'static str {
    match c.source_body {
        SourceBody::Cpic => "CPIC",
        SourceBody::Dpwg => "DPWG",
    }
}

fn strength_text(s: Strength, c: &Citation) -> String {
    match s {
        Strength::Strong => "strong".into(),
        Strength::Moderate => "moderate".into(),
        Strength::Optional => "optional".into(),
        Strength::NoRecommendation => "no recommendation".into(),
        Strength::Ungraded => format!("not graded ({})", body(c)),
    }
}

fn action_phrase(r: &Recommendation) -> String {
    match &r.action {
        Action::Avoid => "avoid".into(),
        Action::Alternative if !r.alternatives.is_empty() => "use an alternative".into(),
        Action::Alternative => "consider an alternative".into(),
        Action::DoseChange {
            percent_of_standard: Some(p),
            ..
        } => format!("start at {p}% of standard dose"),
        Action::DoseChange { .. } => "adjust the dose".into(),
        Action::Monitor { .. } => "monitor".into(),
        Action::Standard => "standard dosing".into(),
    }
}

fn override_reasons(kind: &FindingKind) -> Vec<Coding> {
    let system = format!("{SMR_SYSTEM_BASE}/CodeSystem/pgx-override-reason");
    let c = |code: &str, display: &str| Coding {
        code: code.into(),
        system: system.clone(),
        display: display.into(),
    };
    match kind {
        FindingKind::Recommendation(r) => {
            let mut out = vec![
                c(
                    "previously-tolerated",
                    "Patient has previously tolerated this medicine",
                ),
                c(
                    "benefit-outweighs-risk",
                    "Clinical benefit outweighs the pharmacogenomic risk",
                ),
                c(
                    "genotype-disputed",
                    "Genotype result disputed or awaiting confirmation",
                ),
                c(
                    "will-monitor",
                    "Will monitor response or drug levels closely",
                ),
            ];
            if !r.guideline.verification.is_verified() {
                out.push(c(
                    "transcription-differs",
                    "The published guideline differs from SMR's transcription",
                ));
            }
            out
        }
        FindingKind::TestFirst { .. } | FindingKind::UkTestMissing { .. } => vec![
            c("test-requested", "Genotype test already requested"),
            c("result-elsewhere", "Result is recorded in another system"),
            c("treatment-urgent", "Treatment cannot wait for the result"),
        ],
        FindingKind::Indeterminate { .. } | FindingKind::Unidentified { .. } => Vec::new(),
    }
}

fn topic(code: &str, display: &str) -> Option<Coding> {
    Some(Coding {
        code: code.into(),
        system: format!("{SMR_SYSTEM_BASE}/CodeSystem/pgx-card-topic"),
        display: display.into(),
    })
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn results_markdown(r: &Recommendation, evidence: &[String]) -> String {
    let mut lines = Vec::new();
    for g in &r.genotypes {
        let mut line = format!("- **{} {}**", g.gene, g.phenotype);
        if !g.diplotype.is_empty() {
            line.push_str(&format!(", diplotype `{}`", g.diplotype));
        }
        if let Some(a) = &g.activity_score {
            line.push_str(&format!(", activity score {a}"));
        }
        lines.push(line);
    }
    if !evidence.is_empty() {
        lines.push(format!("- Result on record: {}", evidence.join(", ")));
    }
    lines.join("\n")
}

fn citation_markdown(c: &Citation) -> String {
    format!(
        "[{}]({}) — {} {}, {}.",
        c.name,
        c.url,
        body(c),
        c.version,
        c.table
    )
}

/// The card for one finding.
pub fn card(f: &Finding, order: Option<&Value>) -> Card {
    let drug = f.drug.as_deref().map(capitalise).unwrap_or_default();
    let reasons = override_reasons(&f.kind);
    let (summary, detail, source, suggestions) = match &f.kind {
        FindingKind::Recommendation(r) => {
            let genes: Vec<String> = r
                .genotypes
                .iter()
                .map(|g| format!("{} {}", g.gene, g.phenotype))
                .collect();
            // The source (and any verification caveat) survives truncation; the results
            // are cut instead.
            let tail = match &r.guideline.verification {
                Verification::Verified { .. } => format!(" ({})", body(&r.guideline)),
                v => format!(" ({}, transcription {})", body(&r.guideline), v.label()),
            };
            let summary = format!(
                "{}{tail}",
                truncate(
                    &format!("{drug}: {} — {}", action_phrase(r), genes.join(", ")),
                    SUMMARY_MAX.saturating_sub(tail.chars().count())
                )
            );
            let mut detail = verification_caveat(&r.guideline)
                .map(|c| format!("{c}\n\n"))
                .unwrap_or_default();
            detail.push_str(&format!(
                "**Pharmacogenomic result**\n\n{}\n\n**Implication:** {}\n\n**Recommendation** (classification: {}): {}\n",
                results_markdown(r, &f.evidence),
                r.implication,
                strength_text(r.classification, &r.guideline),
                r.recommendation
            ));
            if !r.alternatives.is_empty() {
                detail.push_str(&format!(
                    "\n**Alternatives named by the guideline:** {}\n",
                    r.alternatives.join(", ")
                ));
            }
            detail.push_str(&format!(
                "\n**Source:** {}\n",
                citation_markdown(&r.guideline)
            ));
            detail.push_str(&format!(
                "\n**Evidence:** the order was identified as {} by {}; the genotype was interpreted by SMR with the CPIC \
                 allele function and phenotype tables and matched to the guideline table above.\n",
                f.drug.as_deref().unwrap_or_default(),
                f.identified_by
            ));
            for n in &r.notes {
                detail.push_str(&format!("\n> {n}\n"));
            }
            let source = Source {
                label: format!(
                    "{} {} ({})",
                    body(&r.guideline),
                    r.guideline.version,
                    r.guideline.table
                ),
                url: Some(r.guideline.url.clone()),
                topic: topic(
                    "pgx-recommendation",
                    "Pharmacogenomic prescribing recommendation",
                ),
            };
            (
                summary,
                detail,
                source,
                order.map(|o| suggestions_for(r, o)).unwrap_or_default(),
            )
        }
        FindingKind::Indeterminate {
            gene,
            reason,
            guideline,
        } => {
            let summary =
                format!("{drug}: {gene} result indeterminate — PGx guidance could not be applied");
            let mut detail = verification_caveat(guideline)
                .map(|c| format!("{c}\n\n"))
                .unwrap_or_default();
            detail.push_str(&format!(
                "SMR holds a {gene} result for this patient, but it cannot be used for {}: {reason}.\n\n\
                 Consider confirmatory testing or specialist advice before relying on genotype-guided dosing.\n\n\
                 **Result on record:** {}\n\n**Source:** {}\n\n**Evidence:** the order was identified by {}.\n",
                f.drug.as_deref().unwrap_or_default(),
                if f.evidence.is_empty() {
                    "(no reference)".to_owned()
                } else {
                    f.evidence.join(", ")
                },
                citation_markdown(guideline),
                f.identified_by
            ));
            let source = Source {
                label: format!(
                    "{} {} ({})",
                    body(guideline),
                    guideline.version,
                    guideline.table
                ),
                url: Some(guideline.url.clone()),
                topic: topic("pgx-indeterminate", "Pharmacogenomic result indeterminate"),
            };
            (summary, detail, source, Vec::new())
        }
        FindingKind::TestFirst { gene, guideline } => {
            let pre = PRE_TEST.iter().find(|p| p.gene == *gene);
            let summary = format!(
                "{drug}: no {gene} result on record — testing before prescribing is recommended"
            );
            let mut detail = format!(
                "SMR has no {gene} result for this patient.\n\n{}\n\n**Basis:** {}.\n\n**Guideline table applied once a result is \
                 available:** {}\n\n",
                pre.map_or("", |p| p.advice),
                pre.map_or("", |p| p.source),
                citation_markdown(guideline),
            );
            if let Some(c) = verification_caveat(guideline) {
                detail.push_str(&format!("{c}\n\n"));
            }
            detail.push_str(&format!(
                "**Evidence:** the order was identified by {}; no {gene} genotype or phenotype Observation is \
                 on record in SMR.\n",
                f.identified_by
            ));
            let source = Source {
                label: format!(
                    "{} {} / pre-treatment testing",
                    body(guideline),
                    guideline.version
                ),
                url: Some(pre.map_or_else(|| guideline.url.clone(), |p| p.url.to_owned())),
                topic: topic(
                    "pgx-test-before-prescribing",
                    "Pharmacogenomic test recommended before prescribing",
                ),
            };
            (summary, detail, source, Vec::new())
        }
        FindingKind::UkTestMissing {
            gene,
            guidance,
            applicability,
        } => {
            let summary = format!(
                "{drug}: no {gene} result on record — {} asks for a test before prescribing",
                guidance.body
            );
            let who = match applicability {
                Applicability::Everyone => format!(
                    "The guidance applies to {}.",
                    guidance.applies_to.description
                ),
                Applicability::ConditionOnRecord(c) => format!(
                    "The guidance applies to {}; the patient's record shows {}.",
                    guidance.applies_to.description,
                    c.join(", ")
                ),
                Applicability::ConditionsNotSupplied => format!(
                    "The guidance applies to {}: the request carried no conditions, so SMR could not \
                     check whether this patient is one of them.",
                    guidance.applies_to.description
                ),
                Applicability::AgeOnRecord(days) => format!(
                    "The guidance applies to {}; the patient is {days} days old.",
                    guidance.applies_to.description
                ),
                Applicability::AgeNotSupplied => format!(
                    "The guidance applies to {}: the request gave no age, so SMR could not check \
                     whether this patient is one of them.",
                    guidance.applies_to.description
                ),
            };
            let detail = format!(
                "SMR has no {gene} result for this patient.\n\n{}\n\n{who}\n\n**Source:** [{}]({}) — {}.\n\n\
                 **Evidence:** the order was identified as {} by {}; no {gene} genotype or phenotype \
                 Observation is on record in SMR{}.\n",
                guidance.advice,
                guidance.name,
                guidance.url,
                guidance.reference,
                f.drug.as_deref().unwrap_or_default(),
                f.identified_by,
                if f.evidence.is_empty() {
                    String::new()
                } else {
                    format!("; conditions on record: {}", f.evidence.join(", "))
                }
            );
            let source = Source {
                label: truncate(&guidance.reference, 100),
                url: Some(guidance.url.clone()),
                topic: topic(
                    "pgx-uk-test-required",
                    "UK guidance asks for a pharmacogenomic test before prescribing",
                ),
            };
            (summary, detail, source, Vec::new())
        }
        FindingKind::Unidentified { reason } => {
            let summary = format!(
                "No PGx check: SMR could not identify '{}'",
                truncate(&f.medicine, 60)
            );
            let detail = format!(
                "SMR could not identify the medicine in this order, so no pharmacogenomic check was possible: {reason}.\n\n\
                 SMR's drug dictionary holds the dm+d medicines that have CPIC/DPWG pharmacogenomic guidance. If this \
                 medicine has none, no action is needed; otherwise code the order with its dm+d code.\n"
            );
            let source = Source {
                label: "SMR pharmacogenomic decision support".into(),
                url: None,
                topic: topic("pgx-not-checked", "Pharmacogenomic check not possible"),
            };
            (summary, detail, source, Vec::new())
        }
    };
    let selection_behavior = (!suggestions.is_empty()).then(|| "at-most-one".to_owned());
    Card {
        uuid: new_uuid(),
        summary: truncate(&summary, SUMMARY_MAX),
        detail: Some(detail),
        indicator: f.indicator,
        source,
        suggestions,
        selection_behavior,
        override_reasons: reasons,
    }
}

fn delete_action(order: &Value, drug: &str) -> Option<SuggestionAction> {
    Some(SuggestionAction {
        kind: "delete".into(),
        description: format!("Remove the draft {drug} order"),
        resource: None,
        resource_id: Some(order_ref(order)?),
    })
}

/// A new draft order for `alternative`, copying who and for whom from the original but not the
/// dose: the alternative's dose is the prescriber's to set.
fn replacement(order: &Value, alternative: &smr_dmd::Ingredient, note: &str) -> Value {
    let mut med = json!({"text": alternative.name});
    if let Some(vtm) = &alternative.vtm {
        med["coding"] =
            json!([{"system": smr_dmd::DMD_SYSTEMS[0], "code": vtm, "display": alternative.name}]);
    }
    let mut mr = json!({
        "resourceType": order.get("resourceType").and_then(Value::as_str).unwrap_or("MedicationRequest"),
        "status": "draft",
        "intent": order.get("intent").and_then(Value::as_str).unwrap_or("proposal"),
        "medicationCodeableConcept": med,
        "note": [{"text": note}],
    });
    for key in ["subject", "encounter", "requester"] {
        if let Some(v) = order.get(key) {
            mr[key] = v.clone();
        }
    }
    mr
}

fn suggestions_for(r: &Recommendation, order: &Value) -> Vec<Suggestion> {
    let cite = format!(
        "{} {} {}",
        body(&r.guideline),
        r.guideline.version,
        r.guideline.table
    );
    match &r.action {
        Action::Avoid | Action::Alternative => {
            // Only named medicines become orders; class descriptions ("non-opioid analgesic")
            // stay in the card text.
            let mut out: Vec<Suggestion> = r
                .alternatives
                .iter()
                .filter_map(|a| smr_dmd::ingredient(a))
                .filter_map(|alt| {
                    let note = format!("Suggested by SMR in place of {} ({cite}).", r.drug);
                    let mut actions: Vec<SuggestionAction> =
                        delete_action(order, &r.drug).into_iter().collect();
                    actions.push(SuggestionAction {
                        kind: "create".into(),
                        description: format!("Order {} instead (set the dose)", alt.name),
                        resource: Some(replacement(order, alt, &note)),
                        resource_id: None,
                    });
                    (actions.len() == 2).then(|| Suggestion {
                        label: format!("Replace {} with {}", r.drug, alt.name),
                        uuid: new_uuid(),
                        is_recommended: None,
                        actions,
                    })
                })
                .collect();
            if out.is_empty()
                && let Some(del) = delete_action(order, &r.drug)
            {
                out.push(Suggestion {
                    label: format!("Remove {}", r.drug),
                    uuid: new_uuid(),
                    is_recommended: None,
                    actions: vec![del],
                });
            }
            out
        }
        Action::DoseChange { text, .. } => {
            if order.get("id").is_none() {
                return Vec::new();
            }
            let mut updated = order.clone();
            let note = json!({"text": format!("Pharmacogenomic dose adjustment ({cite}): {text}")});
            match updated.get_mut("note").and_then(Value::as_array_mut) {
                Some(notes) => notes.push(note),
                None => updated["note"] = json!([note]),
            }
            vec![Suggestion {
                label: format!("Adjust the {} dose", r.drug),
                uuid: new_uuid(),
                is_recommended: Some(true),
                actions: vec![SuggestionAction {
                    kind: "update".into(),
                    description: format!("Add the dose adjustment to the order: {text}"),
                    resource: Some(updated),
                    resource_id: None,
                }],
            }]
        }
        Action::Monitor { .. } | Action::Standard => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genotype::{GeneResult, ResultKind};

    fn result(gene: Gene, diplotype: &str) -> GeneResult {
        GeneResult {
            gene,
            kind: ResultKind::Genotype {
                diplotype: diplotype.into(),
            },
            reference: Some(format!("Observation/{gene}")),
            recorded: None,
        }
    }

    fn order(text: &str) -> Value {
        json!({"resourceType": "MedicationRequest", "id": "draft-1", "status": "draft",
               "intent": "order", "medicationCodeableConcept": {"text": text}})
    }

    /// The clopidogrel finding for a CYP2C19 poor metabolizer, with its guideline's
    /// verification replaced by `v` (the data file's status may change; the card logic may not).
    fn clopidogrel(v: Verification) -> Finding {
        let mut f = assess_order(
            &order("Clopidogrel 75mg tablets"),
            &[result(Gene::Cyp2c19, "*2/*2")],
        );
        assert_eq!(f.len(), 1, "{f:?}");
        let mut f = f.remove(0);
        let FindingKind::Recommendation(r) = &mut f.kind else {
            panic!("{f:?}")
        };
        r.guideline.verification = v;
        f
    }

    fn unverified() -> Verification {
        Verification::parse(Some("UNVERIFIED (2026-11-29): transcribed from memory."))
    }

    #[test]
    fn unverified_guideline_cards_carry_the_caveat_and_keep_the_indicator() {
        let verified = Verification::parse(Some("verified 2026-11-29 against CPIC Table 2"));
        let partly = Verification::parse(Some("PARTLY VERIFIED 2026-11-29: some rows only."));
        for (v, caveat) in [(verified, false), (partly, true), (unverified(), true)] {
            let f = clopidogrel(v.clone());
            // Strong "use an alternative": critical whether or not the transcription is verified.
            assert_eq!(f.indicator, Indicator::Critical, "{v:?}");
            let c = card(&f, Some(&order("Clopidogrel 75mg tablets")));
            assert_eq!(c.indicator, Indicator::Critical);
            let detail = c.detail.as_deref().unwrap();
            assert_eq!(detail.contains(UNVERIFIED_CAVEAT), caveat, "{detail}");
            assert!(c.summary.chars().count() < 140, "{}", c.summary);
            assert_eq!(c.summary.contains("transcription"), caveat, "{}", c.summary);
            assert_eq!(
                c.override_reasons
                    .iter()
                    .any(|r| r.code == "transcription-differs"),
                caveat
            );
            if caveat {
                // First thing in the detail, with the verification record.
                assert!(detail.starts_with("**Transcription"), "{detail}");
                assert!(detail.contains(&v.detail()), "{detail}");
                assert!(
                    c.summary
                        .ends_with(&format!("(CPIC, transcription {})", v.label()))
                );
            }
            // A DetectedIssue (and so the patient-view card built from it) keeps the caveat.
            let issue = crate::issue::detected_issue(&f, "Patient/p", "2026-01-01").unwrap();
            assert_eq!(
                issue["detail"]
                    .as_str()
                    .unwrap()
                    .contains(UNVERIFIED_CAVEAT),
                caveat
            );
            assert_eq!(issue["severity"], "high");
            let shown = crate::issue::card_from_issue(&issue);
            assert_eq!(shown.detail.unwrap().contains(UNVERIFIED_CAVEAT), caveat);
        }
    }

    #[test]
    fn summary_keeps_the_caveat_when_cut() {
        let mut f = clopidogrel(unverified());
        let FindingKind::Recommendation(r) = &mut f.kind else {
            panic!()
        };
        let g = r.genotypes[0].clone();
        r.genotypes = (0..10)
            .map(|_| smr_pgx_guidelines::GenotypeUsed {
                phenotype: "Likely Intermediate Metabolizer (very long phenotype)".into(),
                ..g.clone()
            })
            .collect();
        let c = card(&f, None);
        assert!(c.summary.chars().count() <= SUMMARY_MAX, "{}", c.summary);
        assert!(
            c.summary.ends_with("(CPIC, transcription unverified)"),
            "{}",
            c.summary
        );
        assert!(c.summary.contains('…'), "{}", c.summary);
    }

    #[test]
    fn indeterminate_and_test_first_cards_carry_the_caveat() {
        let mut f = assess_order(
            &order("Clopidogrel 75mg tablets"),
            &[result(Gene::Cyp2c19, "*1/*999")],
        );
        assert_eq!(f.len(), 1, "{f:?}");
        let FindingKind::Indeterminate { guideline, .. } = &mut f[0].kind else {
            panic!("{f:?}")
        };
        guideline.verification = unverified();
        let c = card(&f[0], None);
        assert!(c.detail.unwrap().contains(UNVERIFIED_CAVEAT));
        assert!(c.summary.chars().count() < 140);

        let mut f = assess_order(&order("Abacavir 300mg tablets"), &[]);
        assert_eq!(f.len(), 1, "{f:?}");
        let FindingKind::TestFirst { guideline, .. } = &mut f[0].kind else {
            panic!("{f:?}")
        };
        guideline.verification = unverified();
        let detail = card(&f[0], None).detail.unwrap();
        assert!(detail.contains(UNVERIFIED_CAVEAT), "{detail}");
        // The abacavir guideline: the 2012 guideline as updated in 2014 (Martin et al.).
        assert!(detail.contains("2014 update"), "{detail}");
    }
}
