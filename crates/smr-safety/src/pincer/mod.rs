//! PINCER prescribing-safety indicators (issue 11), without I/O.
//!
//! The 13 PINCER indicators as OpenSAFELY reports them (14 measures: the methotrexate
//! indicator has two numerators) are data: `data/pincer.json` holds each indicator's
//! denominator and numerator criteria, windows and age condition with its source, the drug
//! groups (written against smr-safety's classes and dm+d ingredient names, so brands, generics
//! and every strength match) and the clinical and test code sets (SNOMED CT, transcribed from
//! the OpenSAFELY PINCER codelists, each citing its codelist id and version). Where the
//! OpenSAFELY code differs from the publication, the data follows the publication and says how
//! OpenSAFELY differs (`opensafely_difference`, `codelist_differences`).
//!
//! Layout:
//! - this file: the data file's shapes, parsed and checked once ([`definitions`]), and the
//!   compiled form the evaluation reads ([`Pincer`]: group and code-set bit masks);
//! - [`date`]: calendar dates and month arithmetic;
//! - [`eval`]: one patient evaluated against every indicator at a reference date;
//! - [`fhir_in`]: FHIR resources (Patient, MedicationRequest, Condition, Observation,
//!   Procedure) read into what [`eval`] reads;
//! - [`aggregate`]: per-patient results counted per practice, sub-ICB or ICB, rates,
//!   OpenPrescribing-style percentile ranks and deciles.

pub mod aggregate;
pub mod date;
pub mod eval;
pub mod fhir_in;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;
use smr_dmd::MedicineInfo;

use crate::classes::name_matches;
use crate::knowledge::{ClassFile, DataError};

pub use date::Date;
pub use eval::{ClinicalEvent, EventKind, IndicatorResult, Outcome, PatientData, Prescription};

pub(crate) const PINCER: &str = include_str!("../../data/pincer.json");
const FILE: &str = "pincer.json";

/// An OpenCodelists codelist a group or code set comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodelistRef {
    pub id: String,
    pub url: String,
    pub downloaded: String,
}

/// What an OpenSAFELY codelist holds that a group deliberately leaves out.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodelistDifference {
    /// Ingredients of codelist products the group leaves out.
    #[serde(default)]
    pub ingredients: Vec<String>,
    /// `not oral`: codelist products by another route.
    #[serde(default)]
    pub route: Option<String>,
    pub reason: String,
}

/// A drug group as written in the data file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrugGroupDef {
    pub id: String,
    pub name: String,
    /// smr-safety classes (`data/classes.json`) whose members belong.
    #[serde(default)]
    pub classes: Vec<String>,
    /// Further ingredient names (lower-case dm+d names; salts match their base).
    #[serde(default)]
    pub ingredients: Vec<String>,
    /// Route words (`oral`); empty = any route.
    #[serde(default)]
    pub routes: Vec<String>,
    pub codelist: CodelistRef,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub codelist_differences: Vec<CodelistDifference>,
}

/// A code outside the codelist's own system (LOINC eGFR codes for hospital results).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraCode {
    pub system: String,
    pub code: String,
    pub source: String,
}

/// A clinical or test code set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeSetDef {
    pub id: String,
    pub name: String,
    pub codelist: CodelistRef,
    pub system: String,
    pub codes: Vec<String>,
    #[serde(default)]
    pub extra: Vec<ExtraCode>,
}

/// A criterion as written: exactly one of the kinds is given.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCriterion {
    #[serde(default)]
    prescribed: Option<String>,
    #[serde(default)]
    prescribed_on_or_before: Option<String>,
    #[serde(default)]
    condition: Option<String>,
    #[serde(default)]
    condition_unresolved: Option<String>,
    #[serde(default)]
    resolved_by: Option<String>,
    #[serde(default)]
    latest_result_below: Option<String>,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    test: Option<String>,
    #[serde(default)]
    co_prescribed: Option<Vec<String>>,
    #[serde(default)]
    any_of: Option<Vec<Vec<RawCriterion>>>,
    #[serde(default)]
    months: Option<serde_json::Value>,
    #[serde(default)]
    recorded_months_before: Option<u32>,
    #[serde(default)]
    not: bool,
}

/// One criterion of a denominator or numerator, with groups and code sets by index.
#[derive(Debug, Clone, PartialEq)]
pub enum Criterion {
    /// A prescription of `group` dated from `from` months to `to` months before the reference
    /// date (both ends included); with `negate`, none.
    Prescribed {
        group: usize,
        from: u32,
        to: u32,
        negate: bool,
    },
    /// A prescription of `group` dated on or before `months` months before the reference date
    /// (long-term treatment: first prescribed that long ago).
    PrescribedOnOrBefore { group: usize, months: u32 },
    /// A code of `set` recorded on or before `months` months before the reference date.
    Condition { set: usize, months: u32 },
    /// The latest code of `set` recorded on or before `months` months before the reference
    /// date, with no resolution (a code of `resolved_by`, or the condition marked resolved)
    /// recorded after it up to the reference date.
    ConditionUnresolved {
        set: usize,
        resolved_by: usize,
        months: u32,
    },
    /// The latest result of `set` in the last `months` months is below `value`.
    LatestResultBelow { set: usize, value: f64, months: u32 },
    /// A test of `set` in the last `months` months; with `negate`, none.
    Test {
        set: usize,
        months: u32,
        negate: bool,
    },
    /// Prescriptions of both groups in one of the `months` one-month periods before the
    /// reference date.
    CoPrescribed { a: usize, b: usize, months: u32 },
    /// Any of the conjunctions holds.
    AnyOf(Vec<Vec<Criterion>>),
}

/// A publication the indicators cite.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PincerSource {
    pub id: String,
    pub short: String,
    pub publication: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorSource {
    #[serde(rename = "ref")]
    pub reference: String,
    pub year: u16,
    pub section: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Described {
    pub denominator: String,
    pub numerator: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgeCondition {
    pub min: i32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIndicator {
    id: String,
    code: String,
    title: String,
    group: String,
    #[serde(default)]
    age: Option<AgeCondition>,
    denominator: Vec<RawCriterion>,
    numerator: Vec<RawCriterion>,
    description: Described,
    #[serde(default)]
    opensafely_difference: Option<String>,
    source: IndicatorSource,
    verification: crate::knowledge::Verification,
}

/// One indicator, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct Indicator {
    /// OpenSAFELY's id (`a` … `k`, `ac`, `me_no_fbc`, `me_no_lft`, `li`, `am`).
    pub id: String,
    /// The PINCER programme's code (`GI_P3A`, `MO_P13`, …).
    pub code: String,
    pub title: String,
    /// `gi-bleed`, `other` or `monitoring` (OpenSAFELY's composite groups).
    pub group: String,
    pub age: Option<AgeCondition>,
    pub denominator: Vec<Criterion>,
    /// Besides the denominator's.
    pub numerator: Vec<Criterion>,
    pub description: Described,
    pub opensafely_difference: Option<String>,
    pub source: IndicatorSource,
    pub verification: crate::knowledge::Verification,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Population {
    pub min_age: i32,
    pub max_age: i32,
    pub source: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    format: u32,
    #[allow(dead_code)] // Documentation in the file; kept so unknown keys stay refused.
    title: String,
    version: String,
    #[allow(dead_code)]
    licence: String,
    #[allow(dead_code)]
    notes: Vec<String>,
    population: Population,
    sources: Vec<PincerSource>,
    drug_groups: Vec<DrugGroupDef>,
    code_sets: Vec<CodeSetDef>,
    indicators: Vec<RawIndicator>,
}

/// Bit set of drug groups (at most 32) a prescription belongs to.
pub type GroupMask = u32;
/// Bit set of code sets (at most 32) an event's codes belong to.
pub type SetMask = u32;

/// The PINCER definitions, compiled for evaluation.
#[derive(Debug, Clone)]
pub struct Pincer {
    pub version: String,
    pub population: Population,
    pub sources: Vec<PincerSource>,
    pub groups: Vec<DrugGroupDef>,
    pub code_sets: Vec<CodeSetDef>,
    pub indicators: Vec<Indicator>,
    /// Per group, its member ingredient names (classes expanded).
    members: Vec<Vec<String>>,
    /// First word of a member name → (member, group index).
    by_first_word: HashMap<String, Vec<(String, usize)>>,
    /// `system|code` → the code sets it is in.
    codes: HashMap<String, SetMask>,
}

/// The bundled definitions, parsed and checked once.
pub fn definitions() -> Result<&'static Pincer, DataError> {
    static PINCER_DEFS: OnceLock<Result<Pincer, DataError>> = OnceLock::new();
    PINCER_DEFS
        .get_or_init(|| Pincer::parse(PINCER, crate::knowledge::CLASSES))
        .as_ref()
        .map_err(Clone::clone)
}

fn inconsistent(message: String) -> DataError {
    DataError::Inconsistent {
        file: FILE,
        message,
    }
}

impl Pincer {
    /// Parses and checks the data file against the class file.
    pub fn parse(pincer: &str, classes: &str) -> Result<Pincer, DataError> {
        let raw: RawFile = serde_json::from_str(pincer).map_err(|e| DataError::Parse {
            file: FILE,
            message: e.to_string(),
        })?;
        let classes: ClassFile = serde_json::from_str(classes).map_err(|e| DataError::Parse {
            file: "classes.json",
            message: e.to_string(),
        })?;
        if raw.format != 1 {
            return Err(inconsistent(format!("unknown format {}", raw.format)));
        }
        if raw.drug_groups.len() > 32 || raw.code_sets.len() > 32 {
            return Err(inconsistent("more than 32 drug groups or code sets".into()));
        }
        let mut members = Vec::new();
        let mut by_first_word: HashMap<String, Vec<(String, usize)>> = HashMap::new();
        for (i, g) in raw.drug_groups.iter().enumerate() {
            let mut names: Vec<String> = g.ingredients.clone();
            for c in &g.classes {
                let class = classes.classes.iter().find(|k| &k.id == c).ok_or_else(|| {
                    inconsistent(format!("group {} names unknown class {c}", g.id))
                })?;
                names.extend(class.ingredients.iter().cloned());
            }
            if names.is_empty() {
                return Err(inconsistent(format!("group {} has no members", g.id)));
            }
            names.sort();
            names.dedup();
            for n in &names {
                if n != &n.to_lowercase() {
                    return Err(inconsistent(format!(
                        "group {}: '{n}' is not lower-case",
                        g.id
                    )));
                }
                let first = n.split(' ').next().unwrap_or(n).to_owned();
                by_first_word.entry(first).or_default().push((n.clone(), i));
            }
            members.push(names);
        }
        let mut codes: HashMap<String, SetMask> = HashMap::new();
        for (i, s) in raw.code_sets.iter().enumerate() {
            if s.codes.is_empty() {
                return Err(inconsistent(format!("code set {} is empty", s.id)));
            }
            for c in &s.codes {
                if s.system == "http://snomed.info/sct" && !smr_dmd::is_sctid(c) {
                    return Err(inconsistent(format!(
                        "code set {}: {c} is not a valid SCTID",
                        s.id
                    )));
                }
                *codes.entry(format!("{}|{c}", s.system)).or_default() |= 1 << i;
            }
            for e in &s.extra {
                *codes.entry(format!("{}|{}", e.system, e.code)).or_default() |= 1 << i;
            }
        }
        let group_index = |id: &str| {
            raw.drug_groups
                .iter()
                .position(|g| g.id == id)
                .ok_or_else(|| inconsistent(format!("unknown drug group {id}")))
        };
        let set_index = |id: &str| {
            raw.code_sets
                .iter()
                .position(|s| s.id == id)
                .ok_or_else(|| inconsistent(format!("unknown code set {id}")))
        };
        let compile = |list: &[RawCriterion]| -> Result<Vec<Criterion>, DataError> {
            list.iter()
                .map(|c| compile_criterion(c, &group_index, &set_index))
                .collect()
        };
        let mut indicators = Vec::new();
        for r in raw.indicators {
            if !raw.sources.iter().any(|s| s.id == r.source.reference) {
                return Err(inconsistent(format!(
                    "{}: unknown source {}",
                    r.id, r.source.reference
                )));
            }
            if indicators.iter().any(|i: &Indicator| i.id == r.id) {
                return Err(inconsistent(format!("indicator {} twice", r.id)));
            }
            indicators.push(Indicator {
                denominator: compile(&r.denominator)
                    .map_err(|e| inconsistent(format!("{}: {e}", r.id)))?,
                numerator: compile(&r.numerator)
                    .map_err(|e| inconsistent(format!("{}: {e}", r.id)))?,
                id: r.id,
                code: r.code,
                title: r.title,
                group: r.group,
                age: r.age,
                description: r.description,
                opensafely_difference: r.opensafely_difference,
                source: r.source,
                verification: r.verification,
            });
        }
        Ok(Pincer {
            version: raw.version,
            population: raw.population,
            sources: raw.sources,
            groups: raw.drug_groups,
            code_sets: raw.code_sets,
            indicators,
            members,
            by_first_word,
            codes,
        })
    }

    /// The index of a drug group by id.
    pub fn group(&self, id: &str) -> Option<usize> {
        self.groups.iter().position(|g| g.id == id)
    }

    /// The index of a code set by id.
    pub fn code_set(&self, id: &str) -> Option<usize> {
        self.code_sets.iter().position(|s| s.id == id)
    }

    /// The member ingredient names of group `i` (classes expanded).
    pub fn members(&self, i: usize) -> &[String] {
        &self.members[i]
    }

    /// The drug groups a medicine belongs to: one of its ingredients is a member (a salt
    /// matches its base) and, for a group restricted by route, its dictionary route is one of
    /// them or unknown (a VTM-level code says no route).
    pub fn groups_of(&self, info: &MedicineInfo) -> GroupMask {
        let route = info.route.as_deref().map(str::to_lowercase);
        let mut mask = 0;
        for ing in &info.ingredients {
            let name = ing.name.to_lowercase();
            let first = name.split(' ').next().unwrap_or(&name);
            for (member, g) in self.by_first_word.get(first).into_iter().flatten() {
                if mask & (1 << g) != 0 || !name_matches(&name, member) {
                    continue;
                }
                let routes = &self.groups[*g].routes;
                let route_ok = routes.is_empty()
                    || route
                        .as_deref()
                        .is_none_or(|r| routes.iter().any(|w| r.contains(w.as_str())));
                if route_ok {
                    mask |= 1 << g;
                }
            }
        }
        mask
    }

    /// The code sets any of `codings` (system, code) is in.
    pub fn sets_of<'a>(&self, codings: impl IntoIterator<Item = (&'a str, &'a str)>) -> SetMask {
        codings
            .into_iter()
            .filter_map(|(system, code)| self.codes.get(&format!("{system}|{code}")))
            .fold(0, |a, m| a | m)
    }
}

fn months_pair(v: &Option<serde_json::Value>) -> Result<(u32, u32), String> {
    match v {
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .map(|n| (n as u32, 0))
            .ok_or_else(|| "months must be a whole number".to_owned()),
        Some(serde_json::Value::Array(a)) if a.len() == 2 => {
            let from = a[0].as_u64().ok_or("months[0] must be a whole number")? as u32;
            let to = a[1].as_u64().ok_or("months[1] must be a whole number")? as u32;
            if from <= to {
                return Err(format!("window [{from}, {to}] is empty"));
            }
            Ok((from, to))
        }
        _ => Err("months missing or not a number or [from, to]".to_owned()),
    }
}

fn compile_criterion(
    c: &RawCriterion,
    group: &dyn Fn(&str) -> Result<usize, DataError>,
    set: &dyn Fn(&str) -> Result<usize, DataError>,
) -> Result<Criterion, DataError> {
    let err = |m: String| inconsistent(m);
    let kinds = [
        c.prescribed.is_some(),
        c.prescribed_on_or_before.is_some(),
        c.condition.is_some(),
        c.condition_unresolved.is_some(),
        c.latest_result_below.is_some(),
        c.test.is_some(),
        c.co_prescribed.is_some(),
        c.any_of.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err(err(format!("a criterion must be exactly one kind: {c:?}")));
    }
    if c.not && c.prescribed.is_none() && c.test.is_none() {
        return Err(err(
            "'not' applies to prescribed and test criteria only".into()
        ));
    }
    if let Some(g) = &c.prescribed {
        let (from, to) = months_pair(&c.months).map_err(err)?;
        return Ok(Criterion::Prescribed {
            group: group(g)?,
            from,
            to,
            negate: c.not,
        });
    }
    if let Some(g) = &c.prescribed_on_or_before {
        let (months, _) = months_pair(&c.months).map_err(err)?;
        return Ok(Criterion::PrescribedOnOrBefore {
            group: group(g)?,
            months,
        });
    }
    if let Some(s) = &c.condition {
        return Ok(Criterion::Condition {
            set: set(s)?,
            months: c.recorded_months_before.unwrap_or(0),
        });
    }
    if let Some(s) = &c.condition_unresolved {
        let resolved = c
            .resolved_by
            .as_deref()
            .ok_or_else(|| err("condition_unresolved needs resolved_by".into()))?;
        return Ok(Criterion::ConditionUnresolved {
            set: set(s)?,
            resolved_by: set(resolved)?,
            months: c.recorded_months_before.unwrap_or(0),
        });
    }
    if let Some(s) = &c.latest_result_below {
        let (months, _) = months_pair(&c.months).map_err(err)?;
        let value = c
            .value
            .ok_or_else(|| err("latest_result_below needs value".into()))?;
        return Ok(Criterion::LatestResultBelow {
            set: set(s)?,
            value,
            months,
        });
    }
    if let Some(s) = &c.test {
        let (months, _) = months_pair(&c.months).map_err(err)?;
        return Ok(Criterion::Test {
            set: set(s)?,
            months,
            negate: c.not,
        });
    }
    if let Some(pair) = &c.co_prescribed {
        let [a, b] = pair.as_slice() else {
            return Err(err("co_prescribed names two groups".into()));
        };
        let (months, _) = months_pair(&c.months).map_err(err)?;
        return Ok(Criterion::CoPrescribed {
            a: group(a)?,
            b: group(b)?,
            months,
        });
    }
    let branches = c.any_of.as_deref().unwrap_or_default();
    if branches.len() < 2 {
        return Err(err("any_of needs two branches or more".into()));
    }
    Ok(Criterion::AnyOf(
        branches
            .iter()
            .map(|b| {
                b.iter()
                    .map(|c| compile_criterion(c, group, set))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?,
    ))
}
