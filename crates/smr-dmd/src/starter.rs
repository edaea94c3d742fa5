//! The built-in starter dictionary (`data/starter-dictionary.json`): the commonest UK
//! medicines at VTM, VMP and AMP level, compiled in so that SMR resolves medicines before any
//! dm+d release is imported. An imported release takes precedence (see `layered`).

use std::sync::OnceLock;

use serde::Deserialize;

use crate::dictionary::{Concept, Dictionary};
use crate::medicine::{IngredientStrength, Level};

const DATA: &str = include_str!("../data/starter-dictionary.json");

/// What `MedicineInfo::source` says for the starter dictionary's answers.
pub const STARTER_SOURCE: &str = "SMR starter dictionary";

#[derive(Debug, Deserialize)]
struct StarterFile {
    format: u32,
    release: String,
    vtms: Vec<StarterVtm>,
    vmps: Vec<StarterVmp>,
    amps: Vec<StarterAmp>,
}

#[derive(Debug, Deserialize)]
struct StarterVtm {
    code: String,
    name: String,
    #[serde(default)]
    previous: Vec<String>,
    bnf: Option<String>,
}

#[derive(Debug, Deserialize)]
struct StarterIngredient {
    name: String,
    strength: Option<String>,
}

#[derive(Debug, Deserialize)]
struct StarterVmp {
    code: String,
    name: String,
    vtm: Option<String>,
    #[serde(default)]
    ingredients: Vec<StarterIngredient>,
    form: Option<String>,
    route: Option<String>,
    bnf: Option<String>,
    controlled_drug: Option<String>,
}

#[derive(Debug, Deserialize)]
struct StarterAmp {
    code: String,
    name: String,
    vmp: Option<String>,
}

/// The starter data file is not usable (a build defect; reported by [`check_starter`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the starter dictionary data file is not valid: {0}")]
pub struct StarterError(String);

/// Builds a dictionary from text in the starter file's format.
pub fn parse_starter(json: &str) -> Result<Dictionary, StarterError> {
    let file: StarterFile = serde_json::from_str(json).map_err(|e| StarterError(e.to_string()))?;
    if file.format != 1 {
        return Err(StarterError(format!("unsupported format {}", file.format)));
    }
    let mut concepts = Vec::new();
    for v in file.vtms {
        let mut c = Concept::new(v.code, Level::Vtm, v.name);
        c.previous = v.previous;
        c.bnf = v.bnf;
        concepts.push(c);
    }
    for v in file.vmps {
        let mut c = Concept::new(v.code, Level::Vmp, v.name);
        c.parent = v.vtm;
        c.ingredients = v
            .ingredients
            .into_iter()
            .map(|i| IngredientStrength {
                name: i.name.trim().to_lowercase(),
                code: None,
                strength: i.strength,
            })
            .collect();
        c.ingredients.sort();
        c.form = v.form;
        c.route = v.route;
        c.bnf = v.bnf;
        c.controlled_drug = v.controlled_drug;
        concepts.push(c);
    }
    for a in file.amps {
        let mut c = Concept::new(a.code, Level::Amp, a.name);
        c.parent = a.vmp;
        concepts.push(c);
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = concepts.iter().find(|c| !seen.insert(c.code.as_str())) {
        return Err(StarterError(format!("code {} is given twice", twice.code)));
    }
    Ok(Dictionary::from_concepts(
        file.release,
        STARTER_SOURCE,
        concepts,
    ))
}

fn built() -> &'static Result<Dictionary, StarterError> {
    static STARTER: OnceLock<Result<Dictionary, StarterError>> = OnceLock::new();
    STARTER.get_or_init(|| parse_starter(DATA))
}

/// The built-in starter dictionary. Empty if its data file is defective (see
/// [`check_starter`], which the tests assert), so lookups degrade rather than panic.
pub fn starter() -> &'static Dictionary {
    static EMPTY: OnceLock<Dictionary> = OnceLock::new();
    match built() {
        Ok(d) => d,
        Err(_) => EMPTY.get_or_init(|| Dictionary::from_concepts("", STARTER_SOURCE, [])),
    }
}

/// Checks the compiled-in starter data; `Ok` means [`starter`] holds it.
pub fn check_starter() -> Result<(), StarterError> {
    built().as_ref().map(|_| ()).map_err(Clone::clone)
}
