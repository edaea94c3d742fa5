//! What the dictionary says about the medicine a record entry names: the shape the medication
//! record's merge (`smr-record`) consumes, whatever dictionary answered (the built-in starter
//! dictionary, an imported NHSBSA release, or the PGx subset by name).

use serde::{Deserialize, Serialize};

/// The dm+d concept levels, from the ingredient down to a supplier's pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Virtual therapeutic moiety: the ingredient(s), no strength or form.
    Vtm,
    /// Virtual medicinal product: ingredients, strengths and form.
    Vmp,
    /// Actual medicinal product: one supplier's (or brand's) VMP.
    Amp,
    /// Virtual medicinal product pack.
    Vmpp,
    /// Actual medicinal product pack.
    Ampp,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Vtm => "vtm",
            Level::Vmp => "vmp",
            Level::Amp => "amp",
            Level::Vmpp => "vmpp",
            Level::Ampp => "ampp",
        }
    }
}

/// A concept by its current dm+d code and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConceptRef {
    pub code: String,
    pub name: String,
}

/// One active ingredient of a product, with its strength where the level carries one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IngredientStrength {
    /// Lower-case ingredient name (dm+d ingredient substance name, British INN).
    pub name: String,
    /// dm+d ingredient substance code, where known.
    pub code: Option<String>,
    /// Strength as dm+d states it, e.g. `"500 mg"` or `"20 mg/5 ml"`; `None` at VTM level.
    pub strength: Option<String>,
}

/// What a dictionary knows about a coded (or named) medicine: the concept matched, and the
/// same medicine at VMP and VTM level, so entries from different settings (a GP's VMP, a
/// pharmacy's AMP pack, a ward's VTM) meet at a common level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MedicineInfo {
    /// The level of the concept the entry's code named (`Vtm` when matched by name).
    pub level: Level,
    /// The concept matched, by its current code (a previous code resolves to the current one).
    pub matched: ConceptRef,
    /// The VMP this concept is, or belongs to (`None` for a VTM or a name match).
    pub vmp: Option<ConceptRef>,
    /// The VTM (`None` when dm+d has none, e.g. some combination products, or when matched
    /// by a name the dictionary holds without a VTM code).
    pub vtm: Option<ConceptRef>,
    /// Active ingredients, sorted by name; never empty for a resolved medicine.
    pub ingredients: Vec<IngredientStrength>,
    /// dm+d dose form (e.g. `"Tablet"`), at VMP level and below.
    pub form: Option<String>,
    /// dm+d route (e.g. `"Oral"`), at VMP level and below (first route when several).
    pub route: Option<String>,
    /// BNF code (as precise as known: chapter, section, paragraph or presentation).
    pub bnf: Option<String>,
    /// Controlled drug category as dm+d names it (e.g. `"Schedule 2 (CD)"`).
    pub controlled_drug: Option<String>,
    /// Which dictionary answered (e.g. `"dm+d release 3010419"`, `"SMR starter dictionary"`).
    pub source: String,
}

impl MedicineInfo {
    /// A stable key for "the same medicine whatever the product": the VTM code, or the
    /// sorted ingredient names when there is no VTM.
    pub fn moiety_key(&self) -> String {
        match &self.vtm {
            Some(vtm) => format!("vtm:{}", vtm.code),
            None => {
                let mut names: Vec<&str> =
                    self.ingredients.iter().map(|i| i.name.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                format!("ingredients:{}", names.join("+"))
            }
        }
    }
}

/// A dictionary that can say what a medicine entry names. Implemented by the built-in
/// dictionaries and by an imported release layered over them.
pub trait MedicineLookup {
    /// The medicine named by any of `codings` (system, code), or failing that by `text`
    /// (ingredient names, brands). `None` when neither is known: the caller says "unmapped".
    fn resolve(&self, codings: &[(Option<&str>, &str)], text: Option<&str>)
    -> Option<MedicineInfo>;
}

/// The compiled PGx subset as a [`MedicineLookup`]: products by code (VMP or AMP, no link
/// from an AMP to its VMP), ingredients by VTM code or name.
#[derive(Debug, Clone, Copy, Default)]
pub struct SubsetLookup;

impl MedicineLookup for SubsetLookup {
    fn resolve(
        &self,
        codings: &[(Option<&str>, &str)],
        text: Option<&str>,
    ) -> Option<MedicineInfo> {
        use crate::{ConceptKind, Identified};
        let identified = crate::identify(codings, text);
        let (ingredients, level, matched) = match &identified {
            Identified::ByCode {
                ingredients,
                concept,
                code,
                term,
                ..
            } => {
                let level = match concept {
                    ConceptKind::Vtm => Level::Vtm,
                    ConceptKind::Vmp => Level::Vmp,
                    ConceptKind::Amp => Level::Amp,
                };
                let matched = ConceptRef {
                    code: code.clone(),
                    name: term.clone(),
                };
                (ingredients, level, matched)
            }
            Identified::ByText { ingredients, .. } => {
                let name = ingredients
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" + ");
                let code = ingredients
                    .first()
                    .filter(|_| ingredients.len() == 1)
                    .and_then(|i| i.vtm.clone())
                    .unwrap_or_else(|| name.clone());
                (ingredients, Level::Vtm, ConceptRef { code, name })
            }
            Identified::Unknown { .. } => return None,
        };
        if ingredients.is_empty() {
            return None;
        }
        let vtm = match ingredients.as_slice() {
            [single] => single.vtm.clone().map(|code| ConceptRef {
                code,
                name: single.name.clone(),
            }),
            _ => None,
        };
        let mut ingredient_list: Vec<IngredientStrength> = ingredients
            .iter()
            .map(|i| IngredientStrength {
                name: i.name.clone(),
                code: None,
                strength: None,
            })
            .collect();
        ingredient_list.sort();
        Some(MedicineInfo {
            vmp: (level == Level::Vmp).then(|| matched.clone()),
            level,
            matched,
            vtm,
            ingredients: ingredient_list,
            form: None,
            route: None,
            bnf: None,
            controlled_drug: None,
            source: "SMR PGx dm+d subset".to_owned(),
        })
    }
}
