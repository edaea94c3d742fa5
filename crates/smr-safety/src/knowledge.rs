//! The data files' shapes. Parsed once per process ([`crate::rules::bundled`]); every
//! reference between files (a rule naming a class, a duplication class naming its member
//! classes) and every listed SNOMED CT code is checked by [`check_data`], which the unit tests
//! run, so a broken file is a failing build, not a silent empty rule set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub(crate) const CLASSES: &str = include_str!("../data/classes.json");
pub(crate) const INTERACTIONS: &str = include_str!("../data/interactions.json");
pub(crate) const DUPLICATES: &str = include_str!("../data/duplicate-classes.json");
pub(crate) const ALLERGY: &str = include_str!("../data/allergy.json");
pub(crate) const RENAL: &str = include_str!("../data/renal.json");

/// A data file is not usable (a build defect, reported by [`check_data`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    #[error("{file}: {message}")]
    Parse { file: &'static str, message: String },
    #[error("{file}: {message}")]
    Inconsistent { file: &'static str, message: String },
}

/// How serious a problem is. Ordered: `Note` (a check that could not run) is the least,
/// `Contraindicated` the most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Not a hazard found but a check that could not be made (missing data, unmapped code).
    Note,
    /// A hazard the source rates low (e.g. two proton pump inhibitors).
    Minor,
    /// Use with caution and the monitoring given.
    Moderate,
    /// Use together only if there is no alternative, with the management given.
    Serious,
    /// Do not use together.
    Contraindicated,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Minor => "minor",
            Severity::Moderate => "moderate",
            Severity::Serious => "serious",
            Severity::Contraindicated => "contraindicated",
        }
    }
}

/// A therapeutic class: ingredient names, and where the membership comes from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Class {
    pub id: String,
    pub name: String,
    pub bnf: String,
    pub source: String,
    /// How much of a publication's own membership list was checked, where one exists.
    #[serde(default)]
    pub membership: Option<String>,
    pub ingredients: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClassFile {
    pub format: u32,
    #[allow(dead_code)] // Documentation in the file; kept so unknown keys stay refused.
    pub title: String,
    pub version: String,
    #[allow(dead_code)]
    pub notes: Vec<String>,
    pub classes: Vec<Class>,
}

/// Routes a rule side can be restricted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteGroup {
    /// Oral and parenteral routes: a cream, an inhaler or eye drops do not match.
    Systemic,
}

/// Which medicines one side of a rule names: ingredients and/or classes, optionally only by
/// some routes.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    #[serde(default)]
    pub ingredients: Vec<String>,
    #[serde(default)]
    pub classes: Vec<String>,
    #[serde(default)]
    pub routes: Vec<RouteGroup>,
}

/// Where a rule comes from: a publication (by reference to the file's `sources`, or written
/// out), its year and the table or section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceRef {
    #[serde(rename = "ref", default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub publication: Option<String>,
    pub year: u16,
    pub section: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerificationStatus {
    Verified,
    PartlyVerified,
    Unverified,
}

impl VerificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationStatus::Verified => "verified",
            VerificationStatus::PartlyVerified => "partly verified",
            VerificationStatus::Unverified => "unverified",
        }
    }
}

/// Whether SMR's transcription of the rule was checked against its source, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    pub status: VerificationStatus,
    pub detail: String,
}

/// A rule that applies only above a daily dose of one ingredient (MHRA simvastatin limits).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoseAbove {
    pub ingredient: String,
    pub mg_per_day: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub dose_above: DoseAbove,
}

/// Which side of a rule a suggestion replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    A,
    B,
}

/// Named alternatives a card may offer in place of the ordered medicine: offered only when
/// the order is the side they replace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuggestionData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<Side>,
    pub label: String,
    pub ingredients: Vec<String>,
}

/// One drug-drug interaction rule: side `a` with side `b`, in either order.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interaction {
    pub id: String,
    pub a: Selector,
    pub b: Selector,
    #[serde(default)]
    pub when: Option<Condition>,
    pub severity: Severity,
    pub mechanism: String,
    pub management: String,
    pub source: SourceRef,
    pub evidence: String,
    pub verification: Verification,
    #[serde(default)]
    pub suggestion: Option<SuggestionData>,
}

/// A publication the rules of a file cite.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publication {
    pub id: String,
    /// How a card names it in one line ("MHRA Drug Safety Update").
    pub short: String,
    pub publication: String,
    pub url: String,
    pub notes: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InteractionFile {
    pub format: u32,
    #[allow(dead_code)]
    pub title: String,
    pub version: String,
    pub sources: Vec<Publication>,
    #[allow(dead_code)]
    pub severity_scale: BTreeMap<String, String>,
    pub interactions: Vec<Interaction>,
}

/// A class where two concurrent members (different ingredients) are a duplication hazard.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DuplicationClassDef {
    pub code: String,
    pub name: String,
    /// `high` | `moderate` | `low`, as the medication record's findings say it.
    pub severity: String,
    pub classes: Vec<String>,
    pub source: String,
}

/// The same active ingredient in two current medicines (e.g. paracetamol alone and in
/// co-codamol): how serious, and the source.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SameIngredient {
    pub severity: Severity,
    pub publication: String,
    pub year: u16,
    pub section: String,
    pub verification: Verification,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DuplicateFile {
    pub format: u32,
    #[allow(dead_code)]
    pub title: String,
    pub version: String,
    #[allow(dead_code)]
    pub notes: Vec<String>,
    pub same_ingredient: SameIngredient,
    pub classes: Vec<DuplicationClassDef>,
}

/// A code listed in a data file, with where its meaning was checked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownCode {
    pub system: String,
    pub code: String,
    pub display: String,
    /// `substance` or `finding`, for allergy codes.
    #[serde(default)]
    pub kind: Option<String>,
    pub checked: String,
}

/// An allergy substance or class: the codes and words that name it, and what it covers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllergySubstance {
    pub id: String,
    pub name: String,
    pub targets: Selector,
    pub codes: Vec<KnownCode>,
    pub terms: Vec<String>,
}

/// Documented cross-reactivity: an allergy to `from` also concerns `to`, with this wording.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossReactivity {
    pub id: String,
    pub from: Selector,
    pub to: Selector,
    pub severity: Severity,
    pub wording: String,
    pub source: SourceRef,
    pub evidence: String,
    pub verification: Verification,
}

/// A class where an allergy to any member is an allergy to all (penicillins).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassWide {
    pub class: String,
    pub source: SourceRef,
    pub verification: Verification,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllergyKnowledge {
    pub format: u32,
    #[allow(dead_code)]
    pub title: String,
    pub version: String,
    #[allow(dead_code)]
    pub notes: Vec<String>,
    pub substances: Vec<AllergySubstance>,
    pub class_wide: Vec<ClassWide>,
    pub cross_reactivity: Vec<CrossReactivity>,
}

/// The renal function measure a rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    /// Estimated GFR, mL/min/1.73m2.
    Egfr,
    /// Creatinine clearance (Cockcroft-Gault), mL/min.
    Crcl,
}

impl Measure {
    pub fn other(self) -> Measure {
        match self {
            Measure::Egfr => Measure::Crcl,
            Measure::Crcl => Measure::Egfr,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recent {
    pub days: i64,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureDef {
    pub name: String,
    pub unit: String,
    pub codes: Vec<KnownCode>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measures {
    pub egfr: MeasureDef,
    pub crcl: MeasureDef,
}

impl Measures {
    pub fn get(&self, m: Measure) -> &MeasureDef {
        match m {
            Measure::Egfr => &self.egfr,
            Measure::Crcl => &self.crcl,
        }
    }
}

/// One band of a renal rule: applies when the result is below `below` (and not below the
/// next lower band).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    pub below: f64,
    pub severity: Severity,
    #[serde(default)]
    pub max_mg_per_day: Option<f64>,
    pub advice: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenalRule {
    pub id: String,
    pub drug: Selector,
    pub measure: Measure,
    /// Ascending by `below` (checked).
    pub bands: Vec<Band>,
    pub source: SourceRef,
    pub evidence: String,
    pub verification: Verification,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenalKnowledge {
    pub format: u32,
    #[allow(dead_code)]
    pub title: String,
    pub version: String,
    #[allow(dead_code)]
    pub notes: Vec<String>,
    pub recent: Recent,
    pub measures: Measures,
    pub rules: Vec<RenalRule>,
}

impl RenalKnowledge {
    /// Which measure an Observation coding names, if any.
    pub fn measure_of(&self, system: &str, code: &str) -> Option<Measure> {
        [Measure::Egfr, Measure::Crcl].into_iter().find(|m| {
            self.measures
                .get(*m)
                .codes
                .iter()
                .any(|c| c.code == code && same_system(&c.system, system))
        })
    }
}

/// Code systems compared without a trailing slash (`http://snomed.info/sct/` is seen).
pub(crate) fn same_system(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim().trim_end_matches('/')
}

fn parse<T: serde::de::DeserializeOwned>(file: &'static str, text: &str) -> Result<T, DataError> {
    serde_json::from_str(text).map_err(|e| DataError::Parse {
        file,
        message: e.to_string(),
    })
}

/// Every data file parsed, not yet cross-checked.
pub(crate) struct Files {
    pub classes: ClassFile,
    pub interactions: InteractionFile,
    pub duplicates: DuplicateFile,
    pub allergy: AllergyKnowledge,
    pub renal: RenalKnowledge,
}

pub(crate) fn parse_files() -> Result<Files, DataError> {
    Ok(Files {
        classes: parse("classes.json", CLASSES)?,
        interactions: parse("interactions.json", INTERACTIONS)?,
        duplicates: parse("duplicate-classes.json", DUPLICATES)?,
        allergy: parse("allergy.json", ALLERGY)?,
        renal: parse("renal.json", RENAL)?,
    })
}

/// Checks the bundled data: every file parses, every class a rule names exists and every
/// class is used, every listed SCTID is a valid concept id (Verhoeff check digit), renal
/// bands ascend, every rule cites a source; and the PINCER definitions (`pincer.json`).
/// `Ok` when the data is usable.
pub fn check_data() -> Result<(), DataError> {
    crate::rules::bundled()?;
    crate::pincer::definitions().map(|_| ())
}

pub(crate) fn validate(f: &Files) -> Result<(), DataError> {
    let bad = |file: &'static str, message: String| DataError::Inconsistent { file, message };
    for (file, format) in [
        ("classes.json", f.classes.format),
        ("interactions.json", f.interactions.format),
        ("allergy.json", f.allergy.format),
        ("renal.json", f.renal.format),
    ] {
        if format != 1 {
            return Err(bad(file, format!("unsupported format {format}")));
        }
    }
    if f.duplicates.format != 2 {
        return Err(bad(
            "duplicate-classes.json",
            format!("unsupported format {}", f.duplicates.format),
        ));
    }
    let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &f.classes.classes {
        if c.ingredients.is_empty() || c.source.trim().is_empty() || c.bnf.trim().is_empty() {
            return Err(bad("classes.json", format!("class {} is incomplete", c.id)));
        }
        if c.ingredients
            .iter()
            .any(|i| i != &i.to_lowercase() || i.trim() != i)
        {
            return Err(bad(
                "classes.json",
                format!(
                    "class {} has a name that is not lower-case and trimmed",
                    c.id
                ),
            ));
        }
        if ids.insert(c.id.as_str(), 0).is_some() {
            return Err(bad("classes.json", format!("class {} twice", c.id)));
        }
    }
    let mut used = |file: &'static str, s: &Selector, what: &str| -> Result<(), DataError> {
        for class in &s.classes {
            match ids.get_mut(class.as_str()) {
                Some(n) => *n += 1,
                None => return Err(bad(file, format!("{what} names unknown class {class}"))),
            }
        }
        if s.classes.is_empty() && s.ingredients.is_empty() {
            return Err(bad(file, format!("{what} names no medicine")));
        }
        Ok(())
    };
    let sources: Vec<&str> = f
        .interactions
        .sources
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    let mut rule_ids = std::collections::BTreeSet::new();
    for r in &f.interactions.interactions {
        used("interactions.json", &r.a, &r.id)?;
        used("interactions.json", &r.b, &r.id)?;
        if !rule_ids.insert(r.id.as_str()) {
            return Err(bad("interactions.json", format!("rule {} twice", r.id)));
        }
        match &r.source.reference {
            Some(s) if sources.contains(&s.as_str()) => {}
            _ => {
                return Err(bad(
                    "interactions.json",
                    format!("rule {} cites no known source", r.id),
                ));
            }
        }
        if r.source.section.trim().is_empty() || r.evidence.trim().is_empty() {
            return Err(bad(
                "interactions.json",
                format!("rule {} lacks its section or evidence", r.id),
            ));
        }
        if r.suggestion.as_ref().is_some_and(|s| s.replaces.is_none()) {
            return Err(bad(
                "interactions.json",
                format!("rule {}'s suggestion says not which side it replaces", r.id),
            ));
        }
        if let Some(c) = &r.when {
            let names = r.a.ingredients.iter().chain(&r.b.ingredients);
            if !names.clone().any(|n| *n == c.dose_above.ingredient) {
                return Err(bad(
                    "interactions.json",
                    format!(
                        "rule {}'s dose condition names an ingredient of neither side",
                        r.id
                    ),
                ));
            }
        }
    }
    for d in &f.duplicates.classes {
        let s = Selector {
            classes: d.classes.clone(),
            ..Selector::default()
        };
        used("duplicate-classes.json", &s, &d.code)?;
        if !matches!(d.severity.as_str(), "high" | "moderate" | "low") {
            return Err(bad(
                "duplicate-classes.json",
                format!("class {} has severity {}", d.code, d.severity),
            ));
        }
    }
    for s in &f.allergy.substances {
        used("allergy.json", &s.targets, &s.id)?;
        for c in &s.codes {
            check_code("allergy.json", c)?;
        }
        if s.terms.iter().any(|t| t != &t.to_lowercase()) {
            return Err(bad(
                "allergy.json",
                format!("{}: terms must be lower-case", s.id),
            ));
        }
    }
    for w in &f.allergy.class_wide {
        let s = Selector {
            classes: vec![w.class.clone()],
            ..Selector::default()
        };
        used("allergy.json", &s, &w.class)?;
    }
    for x in &f.allergy.cross_reactivity {
        used("allergy.json", &x.from, &x.id)?;
        used("allergy.json", &x.to, &x.id)?;
    }
    for m in [&f.renal.measures.egfr, &f.renal.measures.crcl] {
        for c in &m.codes {
            check_code("renal.json", c)?;
        }
    }
    if f.renal.recent.days <= 0 {
        return Err(bad("renal.json", "recent.days must be positive".into()));
    }
    for r in &f.renal.rules {
        used("renal.json", &r.drug, &r.id)?;
        if r.bands.is_empty() || r.bands.windows(2).any(|w| w[0].below >= w[1].below) {
            return Err(bad(
                "renal.json",
                format!("rule {}: bands must ascend", r.id),
            ));
        }
    }
    if let Some((class, _)) = ids.iter().find(|(_, n)| **n == 0) {
        return Err(bad(
            "classes.json",
            format!("class {class} is used by no rule"),
        ));
    }
    Ok(())
}

fn check_code(file: &'static str, c: &KnownCode) -> Result<(), DataError> {
    let problem = if c.checked.trim().is_empty() {
        Some("says nowhere where it was checked")
    } else if same_system(&c.system, smr_fhir::sctid::SNOMED_SYSTEM)
        && !smr_fhir::sctid::is_concept_id(&c.code)
    {
        Some("is not a valid SNOMED CT concept id (check digit or partition)")
    } else {
        None
    };
    match problem {
        Some(p) => Err(DataError::Inconsistent {
            file,
            message: format!("code {} ({}) {p}", c.code, c.display),
        }),
        None => Ok(()),
    }
}
