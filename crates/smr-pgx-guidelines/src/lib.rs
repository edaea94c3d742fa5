//! Pharmacogenomic prescribing recommendations for SMR.
//!
//! Given a drug (an ingredient name from [`smr_dmd`]) and the patient's
//! interpreted genotypes ([`smr_pgx::Interpretation`]), [`recommend`] returns one
//! [`Assessment`] per guideline table that applies: the matching CPIC (or, where
//! CPIC has none, DPWG) recommendation with its strength, action, alternatives and
//! citation; or an explicit statement that the genotype is indeterminate, that a
//! needed gene was not tested, or that the drug has no pharmacogenomic guidance.
//!
//! The tables are data (`data/guidelines.json`), versioned and citing guideline,
//! version and table for every rule; the same file lists the CPIC level A pairs that
//! are deliberately not covered, with the reason. Rules are evaluated in order and
//! the first rule that cannot be ruled out decides: an indeterminate or missing
//! genotype never falls through to "standard dosing".
//!
//! Every [`Citation`] (so every [`Assessment`] that cites a guideline) carries the
//! guideline's [`Verification`]: whether SMR's transcription was checked against the
//! published source. Only [`Verification::Verified`] may be shown without a caveat.
//!
//! ```
//! use smr_pgx::{interpret, Gene};
//! use smr_pgx_guidelines::{recommend, Action, Assessment};
//! let g = [interpret(Gene::Cyp2c19, "*2/*2")];
//! let a = recommend("clopidogrel", &g);
//! let Assessment::Recommendation(r) = &a[0] else { panic!() };
//! assert_eq!(r.action, Action::Alternative);
//! assert_eq!(r.alternatives, ["prasugrel", "ticagrelor"]);
//! ```
//!
//! Pure: no I/O beyond the data file compiled in with `include_str!`.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use smr_pgx::{Gene, Interpretation, Phenotype};

/// CPIC strength of recommendation (DPWG and drug labels are not graded this way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strength {
    Strong,
    Moderate,
    Optional,
    NoRecommendation,
    /// The source does not grade its advice (DPWG, a product licence).
    Ungraded,
}

/// What the prescriber is advised to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Do not use (contraindicated or avoid).
    Avoid,
    /// Prefer another drug (named in `alternatives` where the guideline names one).
    Alternative,
    /// Change the dose. `percent_of_standard` is the starting dose as a percentage
    /// of the usual one, when the guideline gives a single figure (50 = halve).
    DoseChange {
        text: String,
        #[serde(default)]
        percent_of_standard: Option<u32>,
    },
    /// Usual dosing.
    Standard,
    /// No dose change, but a specific check (enzyme test, TDM, counselling).
    Monitor { text: String },
}

/// Who issued the guideline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceBody {
    #[serde(rename = "CPIC")]
    Cpic,
    #[serde(rename = "DPWG")]
    Dpwg,
}

/// Where a recommendation comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Citation {
    pub source_body: SourceBody,
    pub name: String,
    pub version: String,
    pub table: String,
    pub url: String,
    /// Whether SMR's transcription of this guideline was checked against the published
    /// source. Anything but [`Verification::Verified`] must be shown to clinicians as such.
    pub verification: Verification,
}

/// Whether SMR's transcription of a guideline's tables has been checked against the
/// published source, read from the guideline's `verified` field in the data file:
///
/// - `"verified <date> against <source>"` → [`Verification::Verified`];
/// - `"PARTLY VERIFIED …"` → [`Verification::Partly`];
/// - `"UNVERIFIED …"`, a missing or empty field, or any text not in one of these forms →
///   [`Verification::Unverified`] (nothing counts as verified unless it says so, naming
///   the source it was checked against).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Verification {
    /// Every rule was checked against `against` (on `date`, as the data file gives it).
    Verified { date: String, against: String },
    /// Some rules or details were checked; `note` (the whole field) says which.
    Partly { note: String },
    /// Not checked against a source; `note` is the field's text, or why it is missing.
    Unverified { note: String },
}

impl Verification {
    /// Parses the data file's `verified` text (`None` when the field is absent).
    pub fn parse(text: Option<&str>) -> Verification {
        let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
            return Verification::Unverified {
                note: "the guideline has no verification record".into(),
            };
        };
        // ASCII case folding keeps byte offsets, so they index `text` too.
        let starts = |prefix: &str| {
            text.get(..prefix.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
        };
        let unverified = || Verification::Unverified {
            note: text.to_owned(),
        };
        if starts("partly verified") {
            return Verification::Partly {
                note: text.to_owned(),
            };
        }
        // "verified <date> against <source>"; "verified" alone, or without a source, is
        // not a verification record.
        if !starts("verified ") {
            return unverified();
        }
        let rest = text["verified ".len()..].trim_start();
        let Some(at) = rest.to_ascii_lowercase().find(" against ") else {
            return unverified();
        };
        let date = rest[..at].trim();
        let against = rest[at + " against ".len()..].trim();
        if date.is_empty() || against.is_empty() {
            return unverified();
        }
        Verification::Verified {
            date: date.to_owned(),
            against: against.to_owned(),
        }
    }

    pub fn is_verified(&self) -> bool {
        matches!(self, Verification::Verified { .. })
    }

    /// A short label: "verified", "partly verified" or "unverified".
    pub fn label(&self) -> &'static str {
        match self {
            Verification::Verified { .. } => "verified",
            Verification::Partly { .. } => "partly verified",
            Verification::Unverified { .. } => "unverified",
        }
    }

    /// What was checked, in a sentence: the source for a verified guideline, otherwise
    /// the note.
    pub fn detail(&self) -> String {
        match self {
            Verification::Verified { date, against } => {
                format!("verified {date} against {against}")
            }
            Verification::Partly { note } | Verification::Unverified { note } => note.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for Verification {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        Ok(Verification::parse(text.as_deref()))
    }
}

impl Default for Verification {
    fn default() -> Self {
        Verification::parse(None)
    }
}

/// One gene's result as used by a recommendation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GenotypeUsed {
    pub gene: Gene,
    pub diplotype: String,
    pub phenotype: String,
    pub activity_score: Option<String>,
}

/// A guideline recommendation that matches the patient's genotype.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recommendation {
    pub drug: String,
    pub genes: Vec<Gene>,
    /// The results the rule was matched on.
    pub genotypes: Vec<GenotypeUsed>,
    pub classification: Strength,
    pub action: Action,
    pub alternatives: Vec<String>,
    pub implication: String,
    pub recommendation: String,
    pub guideline: Citation,
    /// Caveats from the guideline that apply to every rule of it.
    pub notes: Vec<String>,
}

/// The outcome for one drug and one guideline table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Assessment {
    Recommendation(Recommendation),
    /// A relevant gene was tested but the result cannot be used (indeterminate
    /// phenotype, or a phenotype the guideline does not cover).
    Indeterminate {
        drug: String,
        gene: Gene,
        reason: String,
        guideline: Citation,
    },
    /// Genes the guideline needs were not tested.
    NoGenotype {
        drug: String,
        genes_needed: Vec<Gene>,
        guideline: Citation,
    },
    /// No guideline in the knowledge base covers this drug.
    NotPgxRelevant {
        drug: String,
    },
}

// ---------------------------------------------------------------------------
// Data file

#[derive(Debug, Deserialize)]
struct DataFile {
    format: u32,
    title: String,
    version: String,
    notes: Vec<String>,
    guidelines: Vec<Guideline>,
    excluded: Vec<Excluded>,
}

#[derive(Debug, Deserialize)]
struct Guideline {
    id: String,
    body: SourceBody,
    name: String,
    version: String,
    url: String,
    drugs: Vec<String>,
    tables: Vec<Table>,
    #[serde(default)]
    notes: Vec<String>,
    /// Absent = unverified.
    #[serde(default, rename = "verified")]
    verification: Verification,
}

#[derive(Debug, Deserialize)]
struct Table {
    genes: Vec<Gene>,
    table: String,
    /// The drugs of the guideline this table applies to (all when absent).
    drugs: Option<Vec<String>>,
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
struct Rule {
    when: Vec<(Gene, Condition)>,
    strength: Strength,
    action: Action,
    alternatives: Vec<String>,
    implication: String,
    recommendation: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Condition {
    /// Phenotype text, compared case-insensitively.
    Phenotype(Vec<String>),
    /// Activity score in `[min, max]` (max absent = open-ended).
    Activity { min: String, max: Option<String> },
    /// HLA carrier status for one allele.
    Hla { allele: String, positive: bool },
    /// Exact diplotypes (canonical spelling), for rules keyed by genotype.
    Diplotype(Vec<String>),
    /// Any called (non-indeterminate) result for the gene.
    Any,
    /// No result at all for the gene (CPIC's "No Result" rows: advice on the other gene of a
    /// two-gene table when this one was never tested). Rules with it come first in a table,
    /// because they are the only rules that can match while the gene is missing.
    NotTested,
}

/// A gene–drug pair left out of the data, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excluded {
    pub drugs: Vec<String>,
    pub genes: Vec<String>,
    pub reason: String,
}

/// The data file is defective (a build problem, reported rather than panicking).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("guideline data file is not valid: {0}")]
pub struct GuidelineDataError(pub String);

const DATA: &str = include_str!("../data/guidelines.json");

fn data() -> Result<&'static DataFile, GuidelineDataError> {
    static DATA_FILE: OnceLock<Result<DataFile, GuidelineDataError>> = OnceLock::new();
    DATA_FILE.get_or_init(load).as_ref().map_err(Clone::clone)
}

fn load() -> Result<DataFile, GuidelineDataError> {
    // `when` is a JSON object (gene → condition); read it as a map, keep order.
    let raw: serde_json::Value =
        serde_json::from_str(DATA).map_err(|e| GuidelineDataError(e.to_string()))?;
    let mut raw = raw;
    if let Some(gs) = raw.get_mut("guidelines").and_then(|g| g.as_array_mut()) {
        for g in gs {
            let Some(tables) = g.get_mut("tables").and_then(|t| t.as_array_mut()) else {
                continue;
            };
            for t in tables {
                let Some(rules) = t.get_mut("rules").and_then(|r| r.as_array_mut()) else {
                    continue;
                };
                for r in rules {
                    if let Some(serde_json::Value::Object(m)) = r.get("when").cloned() {
                        let pairs: Vec<serde_json::Value> = m
                            .into_iter()
                            .map(|(k, v)| serde_json::Value::Array(vec![k.into(), v]))
                            .collect();
                        r["when"] = serde_json::Value::Array(pairs);
                    }
                }
            }
        }
    }
    let file: DataFile =
        serde_json::from_value(raw).map_err(|e| GuidelineDataError(e.to_string()))?;
    if file.format != 1 {
        return Err(GuidelineDataError(format!(
            "unsupported format {}",
            file.format
        )));
    }
    for g in &file.guidelines {
        for t in &g.tables {
            if t.genes.is_empty() {
                return Err(GuidelineDataError(format!("{}: table without genes", g.id)));
            }
            if let Some(ds) = &t.drugs
                && let Some(d) = ds.iter().find(|d| !g.drugs.contains(d))
            {
                return Err(GuidelineDataError(format!(
                    "{}: table drug '{d}' is not a guideline drug",
                    g.id
                )));
            }
            for r in &t.rules {
                if r.when.is_empty() {
                    return Err(GuidelineDataError(format!(
                        "{}: rule without condition",
                        g.id
                    )));
                }
                if let Some((gene, _)) = r.when.iter().find(|(gene, _)| !t.genes.contains(gene)) {
                    return Err(GuidelineDataError(format!(
                        "{}: rule uses {gene}, which is not a gene of table '{}'",
                        g.id, t.table
                    )));
                }
                for (_, c) in &r.when {
                    if let Condition::Activity { min, max } = c
                        && (parse_score(min).is_none()
                            || max.as_deref().is_some_and(|m| parse_score(m).is_none()))
                    {
                        return Err(GuidelineDataError(format!("{}: bad activity range", g.id)));
                    }
                }
            }
        }
    }
    Ok(file)
}

/// Checks the compiled-in data file.
pub fn check_guidelines() -> Result<(), GuidelineDataError> {
    data().map(|_| ())
}

// ---------------------------------------------------------------------------
// Public lookups

/// A guideline as loaded, for `smr pgx kb`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuidelineInfo {
    pub id: &'static str,
    pub source_body: SourceBody,
    pub name: &'static str,
    pub version: &'static str,
    pub url: &'static str,
    pub drugs: Vec<&'static str>,
    pub genes: Vec<Gene>,
    pub verification: &'static Verification,
}

/// Title, version and notes of the guideline data, every guideline loaded, and the
/// pairs left out. Empty when the data file is defective (see [`check_guidelines`]).
pub fn kb_versions() -> (Option<(&'static str, &'static str)>, Vec<GuidelineInfo>) {
    let Ok(f) = data() else {
        return (None, Vec::new());
    };
    let infos = f
        .guidelines
        .iter()
        .map(|g| GuidelineInfo {
            id: &g.id,
            source_body: g.body,
            name: &g.name,
            version: &g.version,
            url: &g.url,
            drugs: g.drugs.iter().map(String::as_str).collect(),
            genes: genes_of(g.tables.iter()),
            verification: &g.verification,
        })
        .collect();
    (Some((f.title.as_str(), f.version.as_str())), infos)
}

/// Notes on the guideline data as a whole (sources, verification status).
pub fn data_notes() -> Vec<&'static str> {
    data().map_or_else(
        |_| Vec::new(),
        |f| f.notes.iter().map(String::as_str).collect(),
    )
}

/// CPIC level A pairs deliberately not covered, with the reason.
pub fn excluded() -> &'static [Excluded] {
    data().map_or(&[], |f| f.excluded.as_slice())
}

fn genes_of<'a>(tables: impl Iterator<Item = &'a Table>) -> Vec<Gene> {
    let mut genes: Vec<Gene> = tables.flat_map(|t| t.genes.iter().copied()).collect();
    genes.sort();
    genes.dedup();
    genes
}

/// The canonical ingredient name: dm+d dictionary name for known names and aliases
/// ("succinylcholine" → "suxamethonium"), otherwise trimmed lower case.
fn canonical(drug: &str) -> String {
    smr_dmd::ingredient(drug).map_or_else(|| drug.trim().to_lowercase(), |i| i.name.clone())
}

fn tables_for<'a>(
    f: &'a DataFile,
    drug: &'a str,
) -> impl Iterator<Item = (&'a Guideline, &'a Table)> {
    f.guidelines
        .iter()
        .filter(move |g| g.drugs.iter().any(|d| d == drug))
        .flat_map(move |g| {
            g.tables
                .iter()
                .filter(move |t| {
                    t.drugs
                        .as_ref()
                        .is_none_or(|ds| ds.iter().any(|d| d == drug))
                })
                .map(move |t| (g, t))
        })
}

/// Genes whose results change the recommendation for `drug` (empty when none).
pub fn relevant_genes(drug: &str) -> Vec<Gene> {
    let Ok(f) = data() else {
        return Vec::new();
    };
    let drug = canonical(drug);
    genes_of(tables_for(f, &drug).map(|(_, t)| t))
}

/// Drugs with guidance that depends on `gene`.
pub fn drugs_for_gene(gene: Gene) -> Vec<&'static str> {
    let Ok(f) = data() else {
        return Vec::new();
    };
    let mut out: Vec<&'static str> = f
        .guidelines
        .iter()
        .flat_map(|g| {
            g.tables
                .iter()
                .filter(|t| t.genes.contains(&gene))
                .flat_map(move |t| {
                    g.drugs
                        .iter()
                        .filter(move |d| t.drugs.as_ref().is_none_or(|ds| ds.contains(d)))
                        .map(String::as_str)
                })
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Every drug with guidance, sorted.
pub fn drugs() -> Vec<&'static str> {
    let Ok(f) = data() else {
        return Vec::new();
    };
    let mut out: Vec<&'static str> = f
        .guidelines
        .iter()
        .flat_map(|g| g.drugs.iter().map(String::as_str))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

// ---------------------------------------------------------------------------
// Evaluation

/// The outcome of testing one condition.
enum Test {
    Yes,
    No,
    Missing,
    /// Cannot be decided from the result given (the reason says why).
    Undecided(String),
}

/// Recommendations for `drug` given the patient's interpreted genotypes. One
/// [`Assessment`] per applicable guideline table; `[NotPgxRelevant]` when no
/// guideline covers the drug. If a gene appears more than once the first
/// interpretation is used. Never panics.
pub fn recommend(drug: &str, genotypes: &[Interpretation]) -> Vec<Assessment> {
    let name = canonical(drug);
    let Ok(f) = data() else {
        return vec![Assessment::NotPgxRelevant { drug: name }];
    };
    let out: Vec<Assessment> = tables_for(f, &name)
        .map(|(g, t)| assess(&name, g, t, genotypes))
        .collect();
    if out.is_empty() {
        vec![Assessment::NotPgxRelevant { drug: name }]
    } else {
        out
    }
}

fn citation(g: &Guideline, t: &Table) -> Citation {
    Citation {
        source_body: g.body,
        name: g.name.clone(),
        version: g.version.clone(),
        table: t.table.clone(),
        url: g.url.clone(),
        verification: g.verification.clone(),
    }
}

fn find(genotypes: &[Interpretation], gene: Gene) -> Option<&Interpretation> {
    genotypes.iter().find(|i| i.gene == gene)
}

/// How restrictive an action is, so a rule that could not be ruled out is only
/// passed over for one at least as restrictive.
fn severity(a: &Action) -> u8 {
    match a {
        Action::Avoid => 4,
        Action::Alternative => 3,
        Action::DoseChange { .. } => 2,
        Action::Monitor { .. } => 1,
        Action::Standard => 0,
    }
}

fn assess(drug: &str, g: &Guideline, t: &Table, genotypes: &[Interpretation]) -> Assessment {
    // The first rule that could not be ruled out (missing or undecided gene), and the
    // most restrictive action among such rules.
    let mut blocked: Option<Assessment> = None;
    let mut blocked_severity = 0;
    let mut skipped_genes: Vec<Gene> = Vec::new();
    'rules: for rule in &t.rules {
        for (gene, cond) in &rule.when {
            let outcome = match test(find(genotypes, *gene), *gene, cond) {
                Test::Yes => continue,
                Test::No => continue 'rules,
                Test::Missing => Assessment::NoGenotype {
                    drug: drug.to_string(),
                    genes_needed: t
                        .genes
                        .iter()
                        .copied()
                        .filter(|g| find(genotypes, *g).is_none())
                        .collect(),
                    guideline: citation(g, t),
                },
                Test::Undecided(reason) => Assessment::Indeterminate {
                    drug: drug.to_string(),
                    gene: *gene,
                    reason,
                    guideline: citation(g, t),
                },
            };
            blocked_severity = blocked_severity.max(severity(&rule.action));
            if !skipped_genes.contains(gene) {
                skipped_genes.push(*gene);
            }
            blocked.get_or_insert(outcome);
            continue 'rules;
        }
        // Every condition holds. If an earlier rule could not be ruled out, this one
        // is only safe to report when it is at least as restrictive (e.g. NUDT15 poor
        // metabolizer → alternative, whatever TPMT is).
        if blocked.is_some() && severity(&rule.action) < blocked_severity {
            break;
        }
        let genotypes_used = rule
            .when
            .iter()
            .filter_map(|(gene, _)| find(genotypes, *gene))
            .map(|i| GenotypeUsed {
                gene: i.gene,
                diplotype: i.diplotype.clone(),
                phenotype: i.phenotype.as_str().to_string(),
                activity_score: i.activity_score.clone(),
            })
            .collect();
        let mut notes = g.notes.clone();
        if !skipped_genes.is_empty() {
            let names: Vec<&str> = skipped_genes.iter().map(|g| g.symbol()).collect();
            notes.push(format!(
                "{} not tested or not interpretable; this recommendation applies whatever that result is",
                names.join(", ")
            ));
        }
        return Assessment::Recommendation(Recommendation {
            drug: drug.to_string(),
            genes: t.genes.clone(),
            genotypes: genotypes_used,
            classification: rule.strength,
            action: rule.action.clone(),
            alternatives: rule.alternatives.clone(),
            implication: rule.implication.clone(),
            recommendation: rule.recommendation.clone(),
            guideline: citation(g, t),
            notes,
        });
    }
    if let Some(b) = blocked {
        return b;
    }
    // Every rule was ruled out: the result is outside the table.
    let missing: Vec<Gene> = t
        .genes
        .iter()
        .copied()
        .filter(|g| find(genotypes, *g).is_none())
        .collect();
    if !missing.is_empty() {
        return Assessment::NoGenotype {
            drug: drug.to_string(),
            genes_needed: missing,
            guideline: citation(g, t),
        };
    }
    // Tables always name at least one gene (checked on load).
    let gene = t.genes.first().copied().unwrap_or(Gene::Cyp2d6);
    let described = t
        .genes
        .iter()
        .filter_map(|g| find(genotypes, *g))
        .map(|i| format!("{} {} ({})", i.gene, i.phenotype.as_str(), i.diplotype))
        .collect::<Vec<_>>()
        .join(", ");
    Assessment::Indeterminate {
        drug: drug.to_string(),
        gene,
        reason: format!("{} gives no recommendation for {described}", g.body_name()),
        guideline: citation(g, t),
    }
}

impl Guideline {
    fn body_name(&self) -> &'static str {
        match self.body {
            SourceBody::Cpic => "CPIC",
            SourceBody::Dpwg => "DPWG",
        }
    }
}

fn test(interp: Option<&Interpretation>, gene: Gene, cond: &Condition) -> Test {
    if let Condition::NotTested = cond {
        return yes_no(interp.is_none());
    }
    let Some(i) = interp else {
        return Test::Missing;
    };
    let indeterminate = match &i.phenotype {
        Phenotype::Indeterminate { reason } => Some(reason.as_str()),
        Phenotype::Called(_) => None,
    };
    match cond {
        Condition::Any => match indeterminate {
            Some(r) => Test::Undecided(format!("{gene} result is indeterminate: {r}")),
            None => Test::Yes,
        },
        Condition::Phenotype(list) => match indeterminate {
            Some(r) => Test::Undecided(format!("{gene} result is indeterminate: {r}")),
            None => yes_no(
                list.iter()
                    .any(|p| p.eq_ignore_ascii_case(i.phenotype.as_str().trim())),
            ),
        },
        Condition::Diplotype(list) => match indeterminate {
            Some(r) => Test::Undecided(format!("{gene} result is indeterminate: {r}")),
            None if i.diplotype.trim().is_empty() => Test::Undecided(format!(
                "this {gene} recommendation depends on the diplotype, which was not given"
            )),
            None => yes_no(list.contains(&i.diplotype)),
        },
        Condition::Activity { min, max } => {
            let score = i.activity_score.as_deref().map(str::trim);
            let parsed = score.and_then(|s| match s.strip_prefix('≥') {
                Some(rest) => parse_score(rest).map(|v| (v, true)),
                None => parse_score(s).map(|v| (v, false)),
            });
            let (Some(lo), Some((value, open))) = (parse_score(min), parsed) else {
                return Test::Undecided(match indeterminate {
                    Some(r) => format!("{gene} result is indeterminate: {r}"),
                    None => format!(
                        "this {gene} recommendation depends on the activity score, which was not given or not readable"
                    ),
                });
            };
            let hi = max.as_deref().and_then(parse_score);
            if open {
                // "≥x": certain only if the whole open range lies inside [lo, hi].
                return match hi {
                    None if value >= lo => Test::Yes,
                    _ if hi.is_some_and(|h| value > h) => Test::No,
                    None => Test::Undecided(format!(
                        "{gene} activity score {} spans more than one recommendation",
                        score.unwrap_or_default()
                    )),
                    Some(_) => Test::Undecided(format!(
                        "{gene} activity score {} spans more than one recommendation",
                        score.unwrap_or_default()
                    )),
                };
            }
            yes_no(value >= lo && hi.is_none_or(|h| value <= h))
        }
        Condition::Hla { allele, positive } => match indeterminate {
            Some(r) => Test::Undecided(format!("{gene} result is indeterminate: {r}")),
            None => match i.hla_carrier(allele) {
                Some(p) => yes_no(p == *positive),
                None => Test::Undecided(format!(
                    "the {gene} result does not say whether {gene}{allele} is present"
                )),
            },
        },
        // Answered above, before a result is required.
        Condition::NotTested => Test::No,
    }
}

fn yes_no(b: bool) -> Test {
    if b { Test::Yes } else { Test::No }
}

/// Activity score text ("1.0", "0.25") as hundredths.
fn parse_score(text: &str) -> Option<u32> {
    let text = text.trim();
    let (int_part, frac) = text.split_once('.').unwrap_or((text, ""));
    if int_part.is_empty()
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 2
        || (text.contains('.') && frac.is_empty())
    {
        return None;
    }
    let whole: u32 = int_part.parse().ok()?;
    let hundredths: u32 = match frac.len() {
        0 => 0,
        1 => frac.parse::<u32>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    whole.checked_mul(100)?.checked_add(hundredths)
}

#[cfg(test)]
mod tests;
