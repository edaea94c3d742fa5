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
    }
}
