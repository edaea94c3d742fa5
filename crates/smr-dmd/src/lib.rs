//! Drug dictionary for SMR: the part of dm+d (the NHS Dictionary of Medicines and
//! Devices) that the pharmacogenomic knowledge base needs, and identification of a
//! medication order's ingredients from its codes and/or text.
//!
//! The data (`data/dmd-pgx-subset.json`) is compiled in and cites its sources. It
//! holds every ingredient with CPIC/DPWG guidance (plus the alternatives those
//! guidelines name and the partners in combination products), each with its dm+d
//! VTM code where one has been confirmed, and dm+d VMP/AMP codes of common UK
//! products. Codes are SNOMED CT identifiers; only codes confirmed in a cited
//! source are included, because a wrong code is worse than a missing one.
//!
//! ```
//! use smr_dmd::{identify, Identified};
//! let by_code = identify(&[(Some("https://dmd.nhs.uk"), "319799004")], None);
//! assert!(matches!(&by_code, Identified::ByCode { ingredients, .. } if ingredients[0].name == "clopidogrel"));
//! let by_text = identify(&[], Some("Co-codamol 30mg/500mg tablets"));
//! assert_eq!(by_text.ingredient_names(), vec!["codeine", "paracetamol"]);
//! ```
//!
//! The crate is pure: no I/O beyond its data file, included with `include_str!`.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

pub mod dictionary;
pub mod layered;
pub mod medicine;
pub mod release;
mod rows;
pub mod starter;
mod verhoeff;

pub use dictionary::{Concept, Counts, Dictionary};
pub use layered::Layered;
pub use medicine::{
    ConceptRef, IngredientStrength, Level, MedicineInfo, MedicineLookup, SubsetLookup,
};
pub use rows::{ConceptRow, RowError};
pub use starter::{STARTER_SOURCE, check_starter, starter};
pub use verhoeff::{is_sctid, verhoeff_valid};

/// Code systems whose codes are dm+d / SNOMED CT identifiers. dm+d concepts are
/// SNOMED CT concepts, so a code means the same under either system.
pub const DMD_SYSTEMS: [&str; 2] = ["https://dmd.nhs.uk", "http://snomed.info/sct"];

/// One active ingredient, named by its lower-case (British) INN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ingredient {
    pub name: String,
    /// dm+d VTM code, where one has been confirmed.
    pub vtm: Option<String>,
    /// Other names for the same ingredient (USAN, former BAN, salt names).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// UK brand names of single-ingredient products.
    #[serde(default)]
    pub brands: Vec<String>,
}

/// The dm+d concept class of a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConceptKind {
    /// Virtual therapeutic moiety: the ingredient(s).
    Vtm,
    /// Virtual medicinal product: ingredient, strength and form.
    Vmp,
    /// Actual medicinal product: a supplier's VMP.
    Amp,
}

/// A product (VMP or AMP) in the subset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub code: String,
    pub kind: ConceptKind,
    pub term: String,
    /// Ingredient names (keys into the ingredient list).
    pub ingredients: Vec<String>,
    /// Where the code was confirmed.
    pub source: String,
}

/// A non-proprietary combination name ("Co-codamol") or combination brand
/// ("Kivexa") and the ingredients it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CombinationName {
    pub name: String,
    pub ingredients: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct DataFile {
    format: u32,
    title: String,
    release: String,
    systems: Vec<String>,
    notes: Vec<String>,
    ingredients: Vec<Ingredient>,
    combination_names: Vec<CombinationName>,
    products: Vec<Product>,
}

/// What the dictionary holds, for `smr pgx kb` and provenance in reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DictionaryInfo {
    pub title: &'static str,
    pub release: &'static str,
    pub notes: Vec<&'static str>,
    pub ingredients: usize,
    pub ingredients_with_vtm: usize,
    pub vmps: usize,
    pub amps: usize,
}

/// The data file could not be loaded (a build defect, reported rather than panicking).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DictionaryError {
    #[error("dm+d subset data file is not valid: {0}")]
    Parse(String),
    #[error("dm+d subset data file is inconsistent: {0}")]
    Inconsistent(String),
}

struct Subset {
    file: DataFile,
    by_name: HashMap<String, usize>,
    by_code: HashMap<String, CodeTarget>,
    /// (tokens of a name, ingredient indices) for text matching, longest first.
    phrases: Vec<(Vec<String>, Vec<usize>)>,
    /// First token of a phrase → indices into `phrases` (ascending), so that matching looks
    /// only at phrases that can start at a word of the text.
    phrases_by_first_word: HashMap<String, Vec<usize>>,
}

#[derive(Debug, Clone, Copy)]
enum CodeTarget {
    Vtm(usize),
    Product(usize),
}

const DATA: &str = include_str!("../data/dmd-pgx-subset.json");

fn dictionary() -> Result<&'static Subset, DictionaryError> {
    static DICT: OnceLock<Result<Subset, DictionaryError>> = OnceLock::new();
    DICT.get_or_init(build).as_ref().map_err(Clone::clone)
}

fn build() -> Result<Subset, DictionaryError> {
    let file: DataFile =
        serde_json::from_str(DATA).map_err(|e| DictionaryError::Parse(e.to_string()))?;
    if file.format != 1 {
        return Err(DictionaryError::Parse(format!(
            "unsupported format {}",
            file.format
        )));
    }
    if file
        .systems
        .iter()
        .any(|s| !DMD_SYSTEMS.contains(&s.as_str()))
    {
        return Err(DictionaryError::Inconsistent(
            "unexpected code system".into(),
        ));
    }
    let mut by_name = HashMap::new();
    let mut by_code = HashMap::new();
    let mut phrases: Vec<(Vec<String>, Vec<usize>)> = Vec::new();
    for (i, ing) in file.ingredients.iter().enumerate() {
        if ing.name != ing.name.to_lowercase() {
            return Err(DictionaryError::Inconsistent(format!(
                "ingredient '{}' is not lower case",
                ing.name
            )));
        }
        for n in std::iter::once(&ing.name).chain(&ing.aliases) {
            if by_name.insert(n.to_lowercase(), i).is_some() {
                return Err(DictionaryError::Inconsistent(format!(
                    "name '{n}' given twice"
                )));
            }
        }
        for n in std::iter::once(&ing.name)
            .chain(&ing.aliases)
            .chain(&ing.brands)
        {
            phrases.push((tokens(n), vec![i]));
        }
        if let Some(vtm) = &ing.vtm {
            insert_code(&mut by_code, vtm, CodeTarget::Vtm(i))?;
        }
    }
    let resolve = |names: &[String], what: &str| -> Result<Vec<usize>, DictionaryError> {
        names
            .iter()
            .map(|n| {
                by_name.get(n).copied().ok_or_else(|| {
                    DictionaryError::Inconsistent(format!("{what} names unknown ingredient '{n}'"))
                })
            })
            .collect()
    };
    for c in &file.combination_names {
        phrases.push((tokens(&c.name), resolve(&c.ingredients, &c.name)?));
    }
    for (i, p) in file.products.iter().enumerate() {
        resolve(&p.ingredients, &p.code)?;
        if p.kind == ConceptKind::Vtm {
            return Err(DictionaryError::Inconsistent(format!(
                "product {} is a VTM",
                p.code
            )));
        }
        insert_code(&mut by_code, &p.code, CodeTarget::Product(i))?;
    }
    // Longest phrases first, so "peginterferon alfa-2a" wins over a shorter overlap.
    phrases.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
    let mut phrases_by_first_word: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, (words, _)) in phrases.iter().enumerate() {
        if let Some(first) = words.first() {
            phrases_by_first_word
                .entry(first.clone())
                .or_default()
                .push(i);
        }
    }
    Ok(Subset {
        file,
        by_name,
        by_code,
        phrases,
        phrases_by_first_word,
    })
}

fn insert_code(
    map: &mut HashMap<String, CodeTarget>,
    code: &str,
    target: CodeTarget,
) -> Result<(), DictionaryError> {
    if !is_sctid(code) {
        return Err(DictionaryError::Inconsistent(format!(
            "'{code}' is not a valid SNOMED CT identifier"
        )));
    }
    if map.insert(code.to_string(), target).is_some() {
        return Err(DictionaryError::Inconsistent(format!(
            "code {code} given twice"
        )));
    }
    Ok(())
}

/// Lower-case alphanumeric words: "Co-codamol 30mg/500mg" → co, codamol, 30mg, 500mg.
fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Checks the compiled-in data file; `Ok` means every lookup will work.
pub fn check_dictionary() -> Result<(), DictionaryError> {
    dictionary().map(|_| ())
}

/// Summary of the dictionary and its provenance. `None` only if the data file is
/// defective (see [`check_dictionary`]).
pub fn info() -> Option<DictionaryInfo> {
    let d = dictionary().ok()?;
    let f = &d.file;
    Some(DictionaryInfo {
        title: f.title.as_str(),
        release: f.release.as_str(),
        notes: f.notes.iter().map(String::as_str).collect(),
        ingredients: f.ingredients.len(),
        ingredients_with_vtm: f.ingredients.iter().filter(|i| i.vtm.is_some()).count(),
        vmps: f
            .products
            .iter()
            .filter(|p| p.kind == ConceptKind::Vmp)
            .count(),
        amps: f
            .products
            .iter()
            .filter(|p| p.kind == ConceptKind::Amp)
            .count(),
    })
}

/// Every ingredient in the dictionary.
pub fn ingredients() -> &'static [Ingredient] {
    dictionary().map_or(&[], |d| d.file.ingredients.as_slice())
}

/// Every product (VMP/AMP) in the dictionary.
pub fn products() -> &'static [Product] {
    dictionary().map_or(&[], |d| d.file.products.as_slice())
}

/// The ingredient called `name` (INN or alias, case-insensitive, surrounding
/// space ignored): `ingredient("Succinylcholine")` is suxamethonium.
pub fn ingredient(name: &str) -> Option<&'static Ingredient> {
    let d = dictionary().ok()?;
    let i = *d.by_name.get(&name.trim().to_lowercase())?;
    d.file.ingredients.get(i)
}

/// The outcome of identifying an order's medicine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Identified {
    /// A dm+d code in the subset named the medicine.
    ByCode {
        ingredients: Vec<&'static Ingredient>,
        concept: ConceptKind,
        code: String,
        term: String,
        /// Things the caller may want to show: a text naming other ingredients,
        /// codes that were ignored.
        warnings: Vec<String>,
    },
    /// No usable code; ingredient names (or brands) were found in the text.
    ByText {
        ingredients: Vec<&'static Ingredient>,
        /// The words of the text that matched, as written in the dictionary.
        matched: Vec<String>,
        warnings: Vec<String>,
    },
    /// Neither codes nor text identify the medicine.
    Unknown { reason: String },
}

impl Identified {
    /// Ingredient names, in dictionary order; empty when unknown.
    pub fn ingredient_names(&self) -> Vec<&'static str> {
        match self {
            Identified::ByCode { ingredients, .. } | Identified::ByText { ingredients, .. } => {
                ingredients.iter().map(|i| i.name.as_str()).collect()
            }
            Identified::Unknown { .. } => Vec::new(),
        }
    }
}

/// Identifies the medicine of an order from its codings (`(system, code)`) and/or
/// its text.
///
/// - A code under `https://dmd.nhs.uk` or `http://snomed.info/sct` that is in the
///   subset identifies the ingredients (a VTM directly, a VMP/AMP through its
///   ingredients). The first such code wins.
/// - Codes in any other (or no) system are not guessed at: they are ignored with a
///   warning, and identification falls back to the text.
/// - Text is matched on whole words against ingredient names, aliases, brands and
///   combination names, case-insensitively; a combination gives several ingredients.
/// - Otherwise [`Identified::Unknown`] with the reason.
///
/// Never panics.
pub fn identify(codings: &[(Option<&str>, &str)], text: Option<&str>) -> Identified {
    let d = match dictionary() {
        Ok(d) => d,
        Err(e) => {
            return Identified::Unknown {
                reason: e.to_string(),
            };
        }
    };
    let mut warnings = Vec::new();
    let mut dmd_codes_seen = Vec::new();
    for (system, code) in codings {
        let code = code.trim();
        let system_ok = system.is_some_and(|s| DMD_SYSTEMS.contains(&s.trim_end_matches('/')));
        if !system_ok {
            warnings.push(format!(
                "code '{code}' in system '{}' was not used: only dm+d / SNOMED CT codes are recognised",
                system.unwrap_or("(none)")
            ));
            continue;
        }
        if !is_sctid(code) {
            warnings.push(format!(
                "'{code}' is not a valid SNOMED CT identifier (check digit or format)"
            ));
            continue;
        }
        dmd_codes_seen.push(code.to_string());
        let Some(target) = d.by_code.get(code) else {
            continue;
        };
        let (concept, term, idx): (ConceptKind, String, Vec<usize>) = match *target {
            CodeTarget::Vtm(i) => {
                let name = d.file.ingredients.get(i).map_or("", |x| x.name.as_str());
                (ConceptKind::Vtm, name.to_string(), vec![i])
            }
            CodeTarget::Product(p) => {
                let Some(prod) = d.file.products.get(p) else {
                    continue;
                };
                let idx = prod
                    .ingredients
                    .iter()
                    .filter_map(|n| d.by_name.get(n).copied())
                    .collect();
                (prod.kind, prod.term.clone(), idx)
            }
        };
        let ingredients: Vec<&'static Ingredient> = sorted_unique(idx)
            .into_iter()
            .filter_map(|i| d.file.ingredients.get(i))
            .collect();
        if let Some(t) = text {
            let (from_text, _) = match_text(d, t);
            let coded: Vec<usize> = ingredients
                .iter()
                .filter_map(|i| d.by_name.get(&i.name).copied())
                .collect();
            if !from_text.is_empty() && from_text.iter().any(|i| !coded.contains(i)) {
                warnings.push(format!(
                    "the text '{t}' names ingredients that code {code} ({term}) does not contain; the code was used"
                ));
            }
        }
        return Identified::ByCode {
            ingredients,
            concept,
            code: code.to_string(),
            term,
            warnings,
        };
    }
    if !dmd_codes_seen.is_empty() {
        warnings.push(format!(
            "dm+d code(s) {} are not in the pharmacogenomic subset",
            dmd_codes_seen.join(", ")
        ));
    }
    let Some(t) = text.filter(|t| !t.trim().is_empty()) else {
        let reason = if warnings.is_empty() {
            "the order has neither a code nor text".to_string()
        } else {
            format!("{}; no text to fall back on", warnings.join("; "))
        };
        return Identified::Unknown { reason };
    };
    let (idx, matched) = match_text(d, t);
    if idx.is_empty() {
        let mut reason =
            format!("no ingredient in the pharmacogenomic dictionary was found in the text '{t}'");
        if !warnings.is_empty() {
            reason.push_str("; ");
            reason.push_str(&warnings.join("; "));
        }
        return Identified::Unknown { reason };
    }
    Identified::ByText {
        ingredients: idx
            .into_iter()
            .filter_map(|i| d.file.ingredients.get(i))
            .collect(),
        matched,
        warnings,
    }
}

fn sorted_unique(mut v: Vec<usize>) -> Vec<usize> {
    v.sort_unstable();
    v.dedup();
    v
}

/// Ingredient indices named in `text` (whole-word phrase matches; each word is used
/// by at most one phrase, longest phrases first) and the phrases matched.
fn match_text(d: &Subset, text: &str) -> (Vec<usize>, Vec<String>) {
    let words = tokens(text);
    // Every (phrase, start) whose first word is at `start`, tried in phrase order (longest
    // first), exactly as if every phrase were tried at every position.
    let mut candidates: Vec<(usize, usize)> = words
        .iter()
        .enumerate()
        .filter_map(|(start, w)| d.phrases_by_first_word.get(w).map(|ps| (start, ps)))
        .flat_map(|(start, ps)| ps.iter().map(move |&p| (p, start)))
        .collect();
    candidates.sort_unstable();
    let mut used = vec![false; words.len()];
    let mut found = Vec::new();
    let mut matched = Vec::new();
    for (p, start) in candidates {
        let Some((phrase, ingredients)) = d.phrases.get(p) else {
            continue;
        };
        let span = start..start + phrase.len();
        let free = used.get(span.clone()).is_some_and(|u| u.iter().all(|x| !x));
        if free
            && words
                .get(span.clone())
                .is_some_and(|w| w == phrase.as_slice())
        {
            used[span].iter_mut().for_each(|u| *u = true);
            found.extend(ingredients.iter().copied());
            let label = phrase.join(" ");
            if !matched.contains(&label) {
                matched.push(label);
            }
        }
    }
    (sorted_unique(found), matched)
}

#[cfg(test)]
mod tests;
