//! What a check reads. The caller (the application layer) builds it from the patient's whole
//! current record, marking what the caller may see: a medicine the patient withholds from the
//! caller is still checked (`visible: false`), and is never named in the output.

use std::sync::Arc;

use smr_dmd::{MedicineInfo, MedicineLookup};

use crate::knowledge::Measure;
use crate::rules::RuleSource;

/// A dose as written: an amount in a unit, and how many times a day when the timing is
/// structured.
#[derive(Debug, Clone, PartialEq)]
pub struct DoseFacts {
    pub value: f64,
    /// Lower-case unit or unit code as written (`mg`, `tablet`, `428673006`, `ml`).
    pub unit: String,
    pub per_day: Option<f64>,
}

/// A medicine: a current one from the record, or the order being checked.
#[derive(Debug, Clone)]
pub struct Medicine {
    /// A stable key: the record line (`vtm:…`) or the order's reference. Two medicines with
    /// one key are one medicine. Never output (it can name a hidden medicine's code).
    pub key: String,
    /// How the caller knows it (product name, or the text as written). Never output for a
    /// hidden medicine.
    pub name: String,
    /// References of its entries (`Type/id` or versioned), latest first; output as
    /// `implicated` only when visible.
    pub entries: Vec<String>,
    /// What the dictionary says about it; `None` when SMR cannot map it.
    pub info: Option<Arc<MedicineInfo>>,
    pub dose: Option<DoseFacts>,
    /// The route as written on the entry (used when the dictionary gives none).
    pub route: Option<String>,
    /// Whether the caller may see it (consent).
    pub visible: bool,
    /// The care setting of its latest entry (`gp-practice`, `hospital`, …), when known.
    pub setting: Option<String>,
}

impl Medicine {
    /// The lower-case active ingredient names, from the dictionary.
    pub fn ingredient_names(&self) -> impl Iterator<Item = &str> {
        self.info
            .iter()
            .flat_map(|i| i.ingredients.iter())
            .map(|i| i.name.as_str())
    }

    /// The route: the dictionary's (VMP level), else as written.
    pub fn route(&self) -> Option<&str> {
        self.info
            .as_ref()
            .and_then(|i| i.route.as_deref())
            .or(self.route.as_deref())
    }
}

/// Whether an allergy is to be checked, and why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllergyStatus {
    Active,
    /// Not checked: the reason (`refuted`, `entered-in-error`, `inactive`, `resolved`,
    /// `not a medication allergy`).
    Ignored(&'static str),
}

/// An allergy or intolerance on record.
#[derive(Debug, Clone, PartialEq)]
pub struct Allergy {
    /// `AllergyIntolerance/{id}`.
    pub reference: Option<String>,
    pub visible: bool,
    /// (system, code, display) of `code.coding`.
    pub codings: Vec<(Option<String>, String, Option<String>)>,
    /// `code.text`.
    pub text: Option<String>,
    pub status: AllergyStatus,
    /// `criticality` (`low` | `high` | `unable-to-assess`).
    pub criticality: Option<String>,
    /// `type` is `intolerance`.
    pub intolerance: bool,
}

impl Allergy {
    /// How the allergy names its substance, for messages (text, else the first display).
    pub fn label(&self) -> String {
        self.text
            .clone()
            .or_else(|| self.codings.iter().find_map(|(_, _, d)| d.clone()))
            .or_else(|| self.codings.first().map(|(_, c, _)| format!("code {c}")))
            .unwrap_or_else(|| "an allergy with no substance named".to_owned())
    }
}

/// One eGFR or creatinine clearance result.
#[derive(Debug, Clone, PartialEq)]
pub struct RenalResult {
    pub measure: Measure,
    /// mL/min/1.73m2 (eGFR) or mL/min (creatinine clearance).
    pub value: f64,
    /// The value as reported, with any comparator (`>90`).
    pub value_text: String,
    /// When it was taken (microseconds since the epoch) and as written.
    pub when: i64,
    pub when_text: String,
    /// `Observation/{id}`.
    pub reference: Option<String>,
    pub visible: bool,
}

/// Everything a check reads.
#[derive(Clone, Copy)]
pub struct SafetyContext<'a> {
    /// The patient's current medicines (every setting), each marked visible or not.
    pub medicines: &'a [Medicine],
    pub allergies: &'a [Allergy],
    pub renal: &'a [RenalResult],
    /// Now, microseconds since the epoch (for "recent").
    pub now: i64,
    /// The drug dictionary (to read allergies coded or named as medicines).
    pub lookup: &'a dyn MedicineLookup,
    pub rules: &'a dyn RuleSource,
}

impl std::fmt::Debug for SafetyContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafetyContext")
            .field("medicines", &self.medicines.len())
            .field("allergies", &self.allergies.len())
            .field("renal", &self.renal.len())
            .field("now", &self.now)
            .field("rules", &self.rules.label())
            .finish_non_exhaustive()
    }
}
