//! Where the rules come from: the [`RuleSource`] interface, and [`Bundled`], SMR's cited data
//! files. A deployment with a licensed interaction database implements [`RuleSource`] (for
//! example wrapping [`Bundled`] and returning its own interactions) and passes it in the
//! [`crate::SafetyContext`]; no proprietary database is bundled.

use std::sync::OnceLock;

use crate::classes::ClassIndex;
use crate::knowledge::{
    AllergyKnowledge, DataError, DuplicationClassDef, Interaction, Publication, RenalKnowledge,
    SameIngredient, parse_files, validate,
};

/// The knowledge the checks read. Every method returns data entries, never decisions: the
/// checks in [`crate::check`] apply them the same way whatever the source.
pub trait RuleSource: Send + Sync {
    /// What the source is, as problems cite it (e.g. "SMR bundled safety rules 2026-12-01").
    fn label(&self) -> &str;
    /// Therapeutic classes rules may name.
    fn classes(&self) -> &ClassIndex;
    /// Drug-drug interactions.
    fn interactions(&self) -> &[Interaction];
    /// The publications interactions cite by `source.ref`.
    fn publications(&self) -> &[Publication];
    /// Classes where two concurrent members are a duplication hazard.
    fn duplication_classes(&self) -> &[DuplicationClassDef];
    /// The same active ingredient in two current medicines.
    fn same_ingredient(&self) -> &SameIngredient;
    /// Allergy substances, codes and cross-reactivity.
    fn allergy(&self) -> &AllergyKnowledge;
    /// Renal dose rules and the codes of eGFR and creatinine clearance results.
    fn renal(&self) -> &RenalKnowledge;
}

/// SMR's bundled, cited rules (`data/`).
#[derive(Debug, Clone)]
pub struct Bundled {
    label: String,
    classes: ClassIndex,
    interactions: Vec<Interaction>,
    publications: Vec<Publication>,
    duplication: Vec<DuplicationClassDef>,
    same_ingredient: SameIngredient,
    allergy: AllergyKnowledge,
    renal: RenalKnowledge,
}

impl RuleSource for Bundled {
    fn label(&self) -> &str {
        &self.label
    }
    fn classes(&self) -> &ClassIndex {
        &self.classes
    }
    fn interactions(&self) -> &[Interaction] {
        &self.interactions
    }
    fn publications(&self) -> &[Publication] {
        &self.publications
    }
    fn duplication_classes(&self) -> &[DuplicationClassDef] {
        &self.duplication
    }
    fn same_ingredient(&self) -> &SameIngredient {
        &self.same_ingredient
    }
    fn allergy(&self) -> &AllergyKnowledge {
        &self.allergy
    }
    fn renal(&self) -> &RenalKnowledge {
        &self.renal
    }
}

impl Bundled {
    fn load() -> Result<Bundled, DataError> {
        let files = parse_files()?;
        validate(&files)?;
        Ok(Bundled {
            label: format!(
                "SMR medicines safety rules (classes {}, interactions {}, duplication {}, allergy {}, renal {})",
                files.classes.version,
                files.interactions.version,
                files.duplicates.version,
                files.allergy.version,
                files.renal.version
            ),
            classes: ClassIndex::new(files.classes.classes),
            interactions: files.interactions.interactions,
            publications: files.interactions.sources,
            duplication: files.duplicates.classes,
            same_ingredient: files.duplicates.same_ingredient,
            allergy: files.allergy,
            renal: files.renal,
        })
    }
}

/// The bundled rules, parsed and checked once per process. An `Err` is a build defect that
/// [`crate::check_data`] (run by the unit tests) reports; callers answer it as "no safety
/// check could be made", never as "nothing found".
pub fn bundled() -> Result<&'static Bundled, DataError> {
    static BUNDLED: OnceLock<Result<Bundled, DataError>> = OnceLock::new();
    BUNDLED
        .get_or_init(Bundled::load)
        .as_ref()
        .map_err(Clone::clone)
}

/// A duplication class with its member ingredients resolved from the classes it names, as
/// `smr-record`'s merge reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicationClass {
    pub code: String,
    pub name: String,
    /// `high` | `moderate` | `low`.
    pub severity: String,
    pub source: String,
    pub ingredients: Vec<String>,
}

/// The bundled duplication classes with their members (empty only if the data is broken,
/// which [`crate::check_data`] reports).
pub fn duplication_classes() -> &'static [DuplicationClass] {
    static RESOLVED: OnceLock<Vec<DuplicationClass>> = OnceLock::new();
    RESOLVED.get_or_init(|| {
        let Ok(rules) = bundled() else {
            return Vec::new();
        };
        rules
            .duplication
            .iter()
            .map(|d| {
                let mut ingredients: Vec<String> = d
                    .classes
                    .iter()
                    .filter_map(|c| rules.classes.get(c))
                    .flat_map(|c| c.ingredients.iter().cloned())
                    .collect();
                ingredients.sort();
                ingredients.dedup();
                DuplicationClass {
                    code: d.code.clone(),
                    name: d.name.clone(),
                    severity: d.severity.clone(),
                    source: d.source.clone(),
                    ingredients,
                }
            })
            .collect()
    })
}
