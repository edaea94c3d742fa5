//! The pharmacogenomics panel: the patient's genotype/phenotype results (read by `smr-cds`
//! exactly as CDS reads them, one per gene, newest first) with SMR's interpretation, and for
//! each drug whose guidance depends on a tested gene, what the guideline advises for this
//! patient (`smr-pgx-guidelines::recommend`), the guideline cited. Drugs on the patient's
//! current record are marked and listed first.

use smr_cds::genotype::{read_observation_json, select_results};
use smr_pgx::{Interpretation, Phenotype};
use smr_pgx_guidelines::{Action, Assessment, Citation, SourceBody, Verification};

/// One gene's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneRow {
    pub gene: String,
    /// Empty when the lab reported a phenotype only.
    pub diplotype: String,
    pub phenotype: String,
    pub activity_score: Option<String>,
    /// Why no phenotype could be given (an unknown allele, …): never a silent normal.
    pub indeterminate: Option<String>,
    pub observation: Option<String>,
}

impl GeneRow {
    /// What the phenotype means, for a patient (metaboliser and function phenotypes; other
    /// results, such as HLA carrier status, are left to the clinician to explain).
    pub fn plain_meaning(&self) -> Option<&'static str> {
        let p = self.phenotype.to_ascii_lowercase();
        Some(if self.indeterminate.is_some() {
            "This result could not be interpreted, so it is not used to guide your medicines."
        } else if p.contains("ultrarapid") {
            "Your body processes some medicines much faster than most people's."
        } else if p.contains("rapid") {
            "Your body processes some medicines faster than most people's."
        } else if p.contains("poor") || p.contains("deficient") {
            "Your body processes some medicines much more slowly than most people's."
        } else if p.contains("intermediate") || p.contains("decreased") {
            "Your body processes some medicines more slowly than most people's."
        } else if p.contains("normal") {
            "Your body processes these medicines the way most people's does."
        } else {
            return None;
        })
    }
}

/// What a guideline advises for one drug, given this patient's results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrugAdvice {
    pub drug: String,
    /// The drug is one of the patient's current medicines.
    pub on_record: bool,
    /// Short words for the action: "Avoid", "Use an alternative", "Change the dose", …
    pub action: String,
    /// Needs attention (anything but standard dosing).
    pub actionable: bool,
    pub recommendation: String,
    pub implication: String,
    pub alternatives: Vec<String>,
    /// "CPIC Guideline for … (version), table …".
    pub guideline: String,
    pub url: String,
    /// Shown when SMR's transcription was not checked against the published source.
    pub caveat: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PgxPanel {
    pub results: Vec<GeneRow>,
    pub advice: Vec<DrugAdvice>,
    /// Results on record SMR could not read (left out; a clinician should know).
    pub unreadable: usize,
}

impl DrugAdvice {
    /// The advice as a patient reads it: what their prescriber may do.
    pub fn plain_action(&self) -> &'static str {
        match self.action.as_str() {
            "Avoid" => "This medicine may not suit you: your prescriber may choose another.",
            "Use an alternative" => "Your prescriber may choose a different medicine.",
            "Change the dose" => "Your prescriber may use a different dose.",
            "Monitor" => "Your prescriber may check more closely how it works for you.",
            "Standard dosing" => "The usual dose is fine for you.",
            _ => "Your result cannot guide this medicine; your prescriber will decide.",
        }
    }
}

impl PgxPanel {
    /// From the Observation bodies of the genotype search and the names of the patient's
    /// current medicines.
    pub fn build(observations: &[String], current_medicines: &[String]) -> Self {
        let mut read = Vec::new();
        let mut unreadable = 0;
        for body in observations {
            match read_observation_json(body) {
                Ok(Some(result)) => read.push(result),
                Ok(None) => {}
                Err(_) => unreadable += 1,
            }
        }
        let results = select_results(read);
        let interpretations: Vec<(Interpretation, Option<String>)> = results
            .iter()
            .map(|r| (r.interpretation(), r.reference.clone()))
            .collect();
        let rows = interpretations
            .iter()
            .map(|(i, reference)| GeneRow {
                gene: i.gene.to_string(),
                diplotype: i.diplotype.clone(),
                phenotype: i.phenotype.as_str().to_owned(),
                activity_score: i.activity_score.clone(),
                indeterminate: match &i.phenotype {
                    Phenotype::Indeterminate { reason } => Some(reason.clone()),
                    Phenotype::Called(_) => None,
                },
                observation: reference.clone(),
            })
            .collect();
        let plain: Vec<Interpretation> = interpretations.into_iter().map(|(i, _)| i).collect();
        PgxPanel {
            results: rows,
            advice: advice(&plain, current_medicines),
            unreadable,
        }
    }

    pub fn actionable(&self) -> impl Iterator<Item = &DrugAdvice> {
        self.advice.iter().filter(|a| a.actionable)
    }

    /// Advice about medicines on the patient's record.
    pub fn on_record(&self) -> Vec<&DrugAdvice> {
        self.advice.iter().filter(|a| a.on_record).collect()
    }

    /// Names of other medicines the results matter for (not on the record).
    pub fn others(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .advice
            .iter()
            .filter(|a| !a.on_record && a.actionable)
            .map(|a| a.drug.as_str())
            .collect();
        names.dedup();
        names
    }
}

fn advice(results: &[Interpretation], current: &[String]) -> Vec<DrugAdvice> {
    let mut drugs: Vec<&'static str> = results
        .iter()
        .flat_map(|i| smr_pgx_guidelines::drugs_for_gene(i.gene))
        .collect();
    drugs.sort_unstable();
    drugs.dedup();
    let current_lower: Vec<String> = current.iter().map(|m| m.to_lowercase()).collect();
    let mut out = Vec::new();
    for drug in drugs {
        let on_record = current_lower
            .iter()
            .any(|m| m.contains(&drug.to_lowercase()));
        for assessment in smr_pgx_guidelines::recommend(drug, results) {
            let advice = match assessment {
                Assessment::Recommendation(r) => {
                    let actionable = r.action != Action::Standard;
                    DrugAdvice {
                        drug: r.drug,
                        on_record,
                        action: action_words(&r.action).to_owned(),
                        actionable,
                        recommendation: r.recommendation,
                        implication: r.implication,
                        alternatives: r.alternatives,
                        guideline: cite(&r.guideline),
                        url: r.guideline.url.clone(),
                        caveat: caveat(&r.guideline),
                    }
                }
                Assessment::Indeterminate {
                    drug,
                    gene,
                    reason,
                    guideline,
                } => DrugAdvice {
                    drug,
                    on_record,
                    action: "Result cannot be used".to_owned(),
                    actionable: true,
                    recommendation: format!("The {gene} result cannot guide dosing: {reason}"),
                    implication: String::new(),
                    alternatives: Vec::new(),
                    guideline: cite(&guideline),
                    url: guideline.url.clone(),
                    caveat: caveat(&guideline),
                },
                // A gene this drug's guideline needs was not tested, or no guideline: the
                // panel is about the results on record, so these are not listed.
                Assessment::NoGenotype { .. } | Assessment::NotPgxRelevant { .. } => continue,
            };
            // Standard dosing is worth saying only for a medicine the patient takes.
            if advice.actionable || advice.on_record {
                out.push(advice);
            }
        }
    }
    // Current medicines first, then what needs attention, then by name.
    out.sort_by(|a, b| {
        (!a.on_record, !a.actionable, &a.drug).cmp(&(!b.on_record, !b.actionable, &b.drug))
    });
    out
}

fn action_words(action: &Action) -> &'static str {
    match action {
        Action::Avoid => "Avoid",
        Action::Alternative => "Use an alternative",
        Action::DoseChange { .. } => "Change the dose",
        Action::Standard => "Standard dosing",
        Action::Monitor { .. } => "Monitor",
    }
}

fn cite(c: &Citation) -> String {
    let body = match c.source_body {
        SourceBody::Cpic => "CPIC",
        SourceBody::Dpwg => "DPWG",
    };
    format!("{body}: {} ({}), {}", c.name, c.version, c.table)
}

fn caveat(c: &Citation) -> Option<String> {
    match &c.verification {
        Verification::Verified { .. } => None,
        other => Some(format!(
            "SMR's copy of this guideline is {}: {}",
            other.label(),
            other.detail()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observation(gene: &str, hgnc: &str, diplotype: &str) -> String {
        serde_json::json!({
            "resourceType": "Observation", "id": format!("g-{gene}"), "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "84413-4"}]},
            "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "48018-6"}]},
                "valueCodeableConcept": {"coding": [{"system": "http://www.genenames.org/geneId",
                    "code": hgnc, "display": gene}]}}],
            "valueCodeableConcept": {"text": diplotype}
        })
        .to_string()
    }

    #[test]
    fn a_poor_metaboliser_on_clopidogrel_gets_the_cited_advice_first() {
        let panel = PgxPanel::build(
            &[observation("CYP2C19", "HGNC:2621", "*2/*2"), "{".to_owned()],
            &["Clopidogrel 75mg tablets".to_owned()],
        );
        assert_eq!(panel.unreadable, 1);
        assert_eq!(panel.results.len(), 1);
        assert_eq!(panel.results[0].gene, "CYP2C19");
        assert!(
            panel.results[0].phenotype.contains("Poor"),
            "{:?}",
            panel.results
        );
        let first = &panel.advice[0];
        assert_eq!(first.drug, "clopidogrel");
        assert!(first.on_record && first.actionable, "{first:?}");
        assert!(first.guideline.starts_with("CPIC"), "{first:?}");
        assert_eq!(
            first.plain_action(),
            "Your prescriber may choose a different medicine."
        );
        assert!(
            panel.results[0]
                .plain_meaning()
                .is_some_and(|m| m.contains("more slowly"))
        );
        assert!(!panel.others().contains(&"clopidogrel"));
    }
}
