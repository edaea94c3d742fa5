//! Genotype and phenotype Observations in the HL7 Genomics Reporting IG shape: reading them
//! into [`smr_pgx::Interpretation`]s, and building them from outside calls.
//!
//! - Genotype: `Observation.code` LOINC 84413-4 "Genotype display name", a `gene-studied`
//!   component (LOINC 48018-6, HGNC coding `http://www.genenames.org/geneId`), the diplotype in
//!   `valueCodeableConcept.text` (Genomics Reporting IG `genotype` profile,
//!   http://hl7.org/fhir/uv/genomics-reporting/STU2/StructureDefinition-genotype.html).
//! - Phenotype: `Observation.code` LOINC 53040-2 "Genetic variation's effect on drug
//!   metabolism", the code the IG's therapeutic-implication examples use for the metabolizer
//!   status (e.g. http://hl7.org/fhir/uv/genomics-reporting/STU2/Observation-TxImp01.html),
//!   with the same gene component and `derivedFrom` the genotype. SMR stores one per gene
//!   rather than per drug, because the drug-level implication is computed at prescribing time
//!   from the current guideline tables.

use serde::Deserialize;
use serde_json::{Value, json};
use smr_pgx::{Gene, Interpretation, Phenotype, interpret};

use crate::view::{ObservationBundleView, ObservationView, RawBundleView};

pub const LOINC: &str = "http://loinc.org";
pub const LOINC_GENOTYPE: &str = "84413-4";
pub const LOINC_GENE_STUDIED: &str = "48018-6";
pub const LOINC_PHENOTYPE: &str = "53040-2";
pub const HGNC_SYSTEM: &str = "http://www.genenames.org/geneId";
const GENOTYPE_PROFILE: &str =
    "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/genotype";

/// HGNC ids, only for genes whose id was confirmed against published gene tables; the others
/// are written by symbol alone, because a wrong gene code is worse than none.
const HGNC_IDS: &[(Gene, &str)] = &[
    (Gene::Cyp2b6, "HGNC:2615"),
    (Gene::Cyp2c19, "HGNC:2621"),
    (Gene::Cyp2c9, "HGNC:2623"),
    (Gene::Cyp2d6, "HGNC:2625"),
    (Gene::Cyp3a4, "HGNC:2637"),
    (Gene::Cyp3a5, "HGNC:2638"),
    (Gene::Dpyd, "HGNC:3012"),
    (Gene::HlaB, "HGNC:4932"),
    (Gene::Nat2, "HGNC:7646"),
    (Gene::Nudt15, "HGNC:23063"),
    (Gene::Slco1b1, "HGNC:10959"),
    (Gene::Tpmt, "HGNC:12014"),
    (Gene::Ugt1a1, "HGNC:12530"),
    (Gene::Vkorc1, "HGNC:23663"),
];

pub fn hgnc_id(gene: Gene) -> Option<&'static str> {
    HGNC_IDS.iter().find(|(g, _)| *g == gene).map(|(_, id)| *id)
}

fn gene_by_hgnc(id: &str) -> Option<Gene> {
    let id = id.trim();
    let id = id.strip_prefix("HGNC:").unwrap_or(id);
    HGNC_IDS
        .iter()
        .find(|(_, h)| h.strip_prefix("HGNC:") == Some(id))
        .map(|(g, _)| *g)
}

/// What an Observation says about one gene.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultKind {
    /// A genotype (diplotype text), interpreted by SMR.
    Genotype { diplotype: String },
    /// A phenotype reported without a usable genotype (e.g. a lab's metabolizer status).
    Phenotype {
        phenotype: String,
        activity_score: Option<String>,
    },
}

/// One pharmacogenomic result on record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneResult {
    pub gene: Gene,
    pub kind: ResultKind,
    /// `Observation/{id}` when the Observation has an id.
    pub reference: Option<String>,
    /// `meta.lastUpdated` or `issued`, to prefer the newest result for a gene.
    pub recorded: Option<String>,
}

/// Why an Observation with a genotype/phenotype code could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenotypeError {
    #[error(
        "the Observation does not name a gene SMR knows (component 48018-6 with an HGNC code or symbol)"
    )]
    NoGene,
    #[error(
        "the Observation names gene '{0}', which is not in SMR's pharmacogenomic knowledge base"
    )]
    UnknownGene(String),
    #[error(
        "the {0} Observation has no result text (valueCodeableConcept.text, valueString or a coding display)"
    )]
    NoValue(Gene),
    #[error("the Observation is not valid FHIR JSON: {0}")]
    Malformed(String),
}

/// Whether an Observation is a genotype or phenotype result SMR reads (by code alone).
pub fn is_pgx_observation(obs: &Value) -> bool {
    obs.get("resourceType").and_then(Value::as_str) == Some("Observation")
        && obs.get("code").is_some_and(|c| {
            c.get("coding").and_then(Value::as_array).is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.get("system").and_then(Value::as_str) == Some(LOINC)
                        && matches!(
                            c.get("code").and_then(Value::as_str),
                            Some(LOINC_GENOTYPE | LOINC_PHENOTYPE)
                        )
                })
            })
        })
}

fn is_pgx_view(obs: &ObservationView<'_>) -> bool {
    obs.resource_type.as_deref() == Some("Observation")
        && obs.code.as_ref().is_some_and(|c| {
            c.has_coding(LOINC, LOINC_GENOTYPE) || c.has_coding(LOINC, LOINC_PHENOTYPE)
        })
}

/// Reads a genotype/phenotype Observation. `Ok(None)` when it is not one, or when its status
/// says it must not be used (entered-in-error, cancelled).
pub fn read_observation(obs: &Value) -> Result<Option<GeneResult>, GenotypeError> {
    let view =
        ObservationView::deserialize(obs).map_err(|e| GenotypeError::Malformed(e.to_string()))?;
    read_view(&view)
}

/// [`read_observation`] from JSON text, without building a `serde_json::Value`.
pub fn read_observation_json(text: &str) -> Result<Option<GeneResult>, GenotypeError> {
    let view: ObservationView<'_> =
        serde_json::from_str(text).map_err(|e| GenotypeError::Malformed(e.to_string()))?;
    read_view(&view)
}

fn read_view(obs: &ObservationView<'_>) -> Result<Option<GeneResult>, GenotypeError> {
    if !is_pgx_view(obs) {
        return Ok(None);
    }
    if matches!(
        obs.status.as_deref(),
        Some("entered-in-error" | "cancelled")
    ) {
        return Ok(None);
    }
    let Some(code) = obs.code.as_ref() else {
        return Ok(None);
    };
    let value_text = value_text(obs);
    let gene = match gene_of(obs)? {
        Some(g) => g,
        // The IG examples write the diplotype with its gene ("CYP2C19*2/*2"); use that prefix.
        None => value_text
            .as_deref()
            .and_then(|t| t.split_once('*'))
            .and_then(|(g, _)| g.trim().parse::<Gene>().ok())
            .ok_or(GenotypeError::NoGene)?,
    };
    let text = value_text.ok_or(GenotypeError::NoValue(gene))?;
    let kind = if code.has_coding(LOINC, LOINC_GENOTYPE) {
        ResultKind::Genotype { diplotype: text }
    } else {
        ResultKind::Phenotype {
            phenotype: text,
            activity_score: activity_score_of(obs),
        }
    };
    let reference = match (obs.id.as_deref(), obs.resource_type.as_deref()) {
        (Some(id), Some(ty)) => Some(format!("{ty}/{id}")),
        _ => None,
    };
    let recorded = obs
        .meta
        .as_ref()
        .and_then(|m| m.last_updated.as_deref())
        .or(obs.issued.as_deref())
        .map(str::to_owned);
    Ok(Some(GeneResult {
        gene,
        kind,
        reference,
        recorded,
    }))
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn value_text(obs: &ObservationView<'_>) -> Option<String> {
    if let Some(cc) = &obs.value_codeable_concept {
        if let Some(t) = non_empty(cc.text.as_deref()) {
            return Some(t);
        }
        if let Some(t) = cc
            .coding
            .iter()
            .find_map(|c| non_empty(c.display.as_deref()))
        {
            return Some(t);
        }
    }
    non_empty(obs.value_string.as_deref())
}

/// The component SMR writes for a reported activity score. No LOINC code for a CPIC activity
/// score is known to SMR, so the component is identified by its text.
const ACTIVITY_SCORE_TEXT: &str = "CPIC activity score";

fn activity_score_of(obs: &ObservationView<'_>) -> Option<String> {
    obs.component.iter().find_map(|c| {
        (c.code.as_ref().and_then(|c| c.text.as_deref()) == Some(ACTIVITY_SCORE_TEXT))
            .then(|| c.value_string.as_deref().map(str::to_owned))
            .flatten()
    })
}

fn gene_of(obs: &ObservationView<'_>) -> Result<Option<Gene>, GenotypeError> {
    for comp in &obs.component {
        if !comp
            .code
            .as_ref()
            .is_some_and(|c| c.has_coding(LOINC, LOINC_GENE_STUDIED))
        {
            continue;
        }
        let Some(cc) = &comp.value_codeable_concept else {
            continue;
        };
        for c in &cc.coding {
            let system = c.system.as_deref().unwrap_or_default();
            // Both the IG's `geneId` system and the bare genenames.org one are in use.
            if let Some(code) = c.code.as_deref()
                && system.starts_with("http://www.genenames.org")
                && let Some(g) = gene_by_hgnc(code)
            {
                return Ok(Some(g));
            }
        }
        let names = cc
            .coding
            .iter()
            .filter_map(|c| c.display.as_deref())
            .chain(cc.text.as_deref());
        let mut last = None;
        for n in names {
            match n.parse::<Gene>() {
                Ok(g) => return Ok(Some(g)),
                Err(_) => last = Some(n.to_owned()),
            }
        }
        if let Some(n) = last {
            return Err(GenotypeError::UnknownGene(n));
        }
    }
    Ok(None)
}

impl GeneResult {
    /// The interpretation the guidelines are applied to: SMR's own reading of a genotype, or
    /// the reported phenotype taken as called.
    pub fn interpretation(&self) -> Interpretation {
        match &self.kind {
            ResultKind::Genotype { diplotype } => interpret(self.gene, diplotype),
            ResultKind::Phenotype {
                phenotype,
                activity_score,
            } => {
                let called = !phenotype.eq_ignore_ascii_case("indeterminate");
                Interpretation {
                    gene: self.gene,
                    diplotype: String::new(),
                    phenotype: if called {
                        Phenotype::Called(phenotype.clone().into())
                    } else {
                        Phenotype::Indeterminate {
                            reason: format!(
                                "the {} phenotype was reported as indeterminate",
                                self.gene
                            ),
                        }
                    },
                    activity_score: activity_score.clone(),
                    lookup_key: activity_score.clone().unwrap_or_else(|| phenotype.clone()),
                }
            }
        }
    }
}

/// A patient's results as cards are built from them: one per gene (see [`select_results`]),
/// each with SMR's interpretation, worked out once — a cached reading serves many calls.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PatientResults {
    pub results: Vec<GeneResult>,
    /// `results[i].interpretation()`, in the same order.
    pub interpretations: Vec<Interpretation>,
}

impl PatientResults {
    /// Selects the results to use (see [`select_results`]) and interprets them.
    pub fn new(results: Vec<GeneResult>) -> Self {
        let results = select_results(results);
        let interpretations = results.iter().map(GeneResult::interpretation).collect();
        PatientResults {
            results,
            interpretations,
        }
    }
}

/// The results to use: one per gene, a genotype preferred over a bare phenotype (SMR
/// re-interprets it with the current tables), and the newest of each kind.
pub fn select_results(mut results: Vec<GeneResult>) -> Vec<GeneResult> {
    let rank = |r: &GeneResult| matches!(r.kind, ResultKind::Genotype { .. });
    results.sort_by(|a, b| {
        a.gene
            .cmp(&b.gene)
            .then_with(|| rank(b).cmp(&rank(a)))
            .then_with(|| b.recorded.cmp(&a.recorded))
    });
    results.dedup_by(|later, first| later.gene == first.gene);
    results
}

/// Entries of a Bundle that are not results are skipped; those that cannot be read are
/// returned with the reason, by `Observation/{id}` where they have one.
pub type UnreadableResults = Vec<(Option<String>, GenotypeError)>;

/// Genotype/phenotype results from a FHIR Bundle (`Value`), e.g. one built in memory.
pub fn results_from_bundle(bundle: &Value) -> (Vec<GeneResult>, UnreadableResults) {
    let resources = bundle
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.get("resource"));
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for r in resources {
        match read_observation(r) {
            Ok(Some(g)) => ok.push(g),
            Ok(None) => {}
            Err(e) => bad.push((
                r.get("id")
                    .and_then(Value::as_str)
                    .map(|id| format!("Observation/{id}")),
                e,
            )),
        }
    }
    (ok, bad)
}

/// Why a prefetched Bundle could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("not a FHIR Bundle")]
    NotBundle,
    #[error("not a readable FHIR Bundle: {0}")]
    Malformed(String),
}

/// Results from a Bundle read in one pass.
fn results_from_bundle_view(
    bundle: &ObservationBundleView<'_>,
) -> Result<(Vec<GeneResult>, UnreadableResults), BundleError> {
    if bundle.resource_type.as_deref() != Some("Bundle") {
        return Err(BundleError::NotBundle);
    }
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for view in bundle.entry.iter().filter_map(|e| e.resource.as_ref()) {
        match read_view(view) {
            Ok(Some(g)) => ok.push(g),
            Ok(None) => {}
            Err(e) => bad.push((view.id.as_deref().map(|id| format!("Observation/{id}")), e)),
        }
    }
    Ok((ok, bad))
}

/// [`results_from_bundle`] from JSON text (a CDS prefetch), without building a `Value`:
/// each entry's resource is read through [`ObservationView`].
pub fn results_from_bundle_json(
    text: &str,
) -> Result<(Vec<GeneResult>, UnreadableResults), BundleError> {
    // One pass when every entry reads; otherwise entry by entry, so that one unreadable
    // entry is reported on its own and does not hide the others.
    if let Ok(bundle) = serde_json::from_str::<ObservationBundleView<'_>>(text) {
        return results_from_bundle_view(&bundle);
    }
    let bundle: RawBundleView<'_> =
        serde_json::from_str(text).map_err(|e| BundleError::Malformed(e.to_string()))?;
    if bundle.resource_type.as_deref() != Some("Bundle") {
        return Err(BundleError::NotBundle);
    }
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for raw in bundle.entry.iter().filter_map(|e| e.resource) {
        match serde_json::from_str::<ObservationView<'_>>(raw.get()) {
            Ok(view) => match read_view(&view) {
                Ok(Some(g)) => ok.push(g),
                Ok(None) => {}
                Err(e) => bad.push((view.id.map(|id| format!("Observation/{}", &*id)), e)),
            },
            Err(e) => bad.push((None, GenotypeError::Malformed(e.to_string()))),
        }
    }
    Ok((ok, bad))
}

fn gene_component(gene: Gene) -> Value {
    let mut cc = json!({"text": gene.symbol()});
    if let Some(id) = hgnc_id(gene) {
        cc["coding"] = json!([{"system": HGNC_SYSTEM, "code": id, "display": gene.symbol()}]);
    }
    json!({
        "code": {"coding": [{"system": LOINC, "code": LOINC_GENE_STUDIED, "display": "Gene studied [ID]"}]},
        "valueCodeableConcept": cc,
    })
}

fn lab_category() -> Value {
    json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}])
}

/// A genotype Observation (IG `genotype` shape) for one gene.
/// Who a result is about, who reported it, and when: shared by the Observations of one import.
#[derive(Debug, Clone, Copy)]
pub struct ResultContext<'a> {
    /// `Patient/{id}`.
    pub patient_ref: &'a str,
    /// `Observation.performer` (an Organization reference), when known.
    pub performer: Option<&'a Value>,
    /// `Observation.issued` (FHIR instant).
    pub issued: &'a str,
}

/// How a phenotype Observation came about.
#[derive(Debug, Clone, Copy)]
pub struct PhenotypeSource<'a> {
    pub activity_score: Option<&'a str>,
    /// Reference (or `urn:uuid:` placeholder) of the genotype it was derived from.
    pub derived_from: Option<&'a str>,
    /// Where the phenotype came from, for `Observation.note`.
    pub note: &'a str,
}

pub fn genotype_observation(ctx: ResultContext<'_>, gene: Gene, diplotype: &str) -> Value {
    let ResultContext {
        patient_ref,
        performer,
        issued,
    } = ctx;
    let mut obs = json!({
        "resourceType": "Observation",
        "meta": {"profile": [GENOTYPE_PROFILE]},
        "status": "final",
        "category": lab_category(),
        "code": {"coding": [{"system": LOINC, "code": LOINC_GENOTYPE, "display": "Genotype display name"}], "text": format!("{gene} genotype")},
        "subject": {"reference": patient_ref},
        "issued": issued,
        "valueCodeableConcept": {"text": diplotype},
        "component": [gene_component(gene)],
    });
    if let Some(p) = performer {
        obs["performer"] = json!([p]);
    }
    obs
}

/// A phenotype Observation (LOINC 53040-2) for one gene, `derivedFrom` the genotype when
/// there is one. `note` explains where the phenotype came from.
pub fn phenotype_observation(
    ctx: ResultContext<'_>,
    gene: Gene,
    phenotype: &str,
    source: PhenotypeSource<'_>,
) -> Value {
    let ResultContext {
        patient_ref,
        performer,
        issued,
    } = ctx;
    let PhenotypeSource {
        activity_score,
        derived_from,
        note,
    } = source;
    let mut obs = json!({
        "resourceType": "Observation",
        "status": "final",
        "category": lab_category(),
        "code": {"coding": [{"system": LOINC, "code": LOINC_PHENOTYPE, "display": "Genetic variation's effect on drug metabolism"}], "text": format!("{gene} phenotype")},
        "subject": {"reference": patient_ref},
        "issued": issued,
        "valueCodeableConcept": {"text": phenotype},
        "note": [{"text": note}],
        "component": [gene_component(gene)],
    });
    if let (Some(score), Some(cs)) = (
        activity_score,
        obs.get_mut("component").and_then(Value::as_array_mut),
    ) {
        cs.push(json!({"code": {"text": ACTIVITY_SCORE_TEXT}, "valueString": score}));
    }
    if let Some(d) = derived_from {
        obs["derivedFrom"] = json!([{"reference": d}]);
    }
    if let Some(p) = performer {
        obs["performer"] = json!([p]);
    }
    obs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(component_gene: Value, value: Value) -> Value {
        json!({
            "resourceType": "Observation", "id": "g1", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": LOINC_GENOTYPE}]},
            "component": [{"code": {"coding": [{"system": LOINC, "code": LOINC_GENE_STUDIED}]}, "valueCodeableConcept": component_gene}],
            "valueCodeableConcept": value,
        })
    }

    #[test]
    fn reads_hgnc_coded_gene_and_diplotype_text() {
        let o = obs(
            json!({"coding": [{"system": HGNC_SYSTEM, "code": "HGNC:2625"}]}),
            json!({"text": "*1/*2"}),
        );
        let r = read_observation(&o).ok().flatten();
        let r = r.as_ref();
        assert_eq!(r.map(|r| r.gene), Some(Gene::Cyp2d6));
        assert_eq!(
            r.map(|r| r.kind.clone()),
            Some(ResultKind::Genotype {
                diplotype: "*1/*2".into()
            })
        );
        assert_eq!(
            r.and_then(|r| r.reference.clone()).as_deref(),
            Some("Observation/g1")
        );
    }

    #[test]
    fn reads_symbol_and_hla_and_hgvs_notation() {
        let o = obs(json!({"text": "HLA-B"}), json!({"text": "*57:01 positive"}));
        let r = read_observation(&o).ok().flatten();
        assert_eq!(r.as_ref().map(|r| r.gene), Some(Gene::HlaB));
        let o = obs(
            json!({"coding": [{"display": "DPYD"}]}),
            json!({"coding": [{"display": "c.1905+1G>A/Reference"}]}),
        );
        let r = read_observation(&o).ok().flatten();
        assert_eq!(r.map(|r| r.interpretation().gene), Some(Gene::Dpyd));
    }

    #[test]
    fn gene_from_prefix_and_errors() {
        let mut o = obs(json!({"text": "CYP2C19"}), json!({"text": "CYP2C19*2/*2"}));
        o.as_object_mut().map(|m| m.shift_remove("component"));
        let r = read_observation(&o).ok().flatten();
        assert_eq!(
            r.map(|r| r.interpretation().phenotype.as_str().to_owned())
                .as_deref(),
            Some("Poor Metabolizer")
        );
        let o = obs(json!({"text": "BRCA1"}), json!({"text": "x"}));
        assert_eq!(
            read_observation(&o),
            Err(GenotypeError::UnknownGene("BRCA1".into()))
        );
        let o = obs(json!({"text": "TPMT"}), json!({"coding": [{"code": "x"}]}));
        assert_eq!(
            read_observation(&o),
            Err(GenotypeError::NoValue(Gene::Tpmt))
        );
        let mut o = obs(json!({"text": "TPMT"}), json!({"text": "*1/*1"}));
        o["status"] = json!("entered-in-error");
        assert_eq!(read_observation(&o), Ok(None));
    }

    #[test]
    fn genotype_preferred_then_newest() {
        let mk = |kind, recorded: &str| GeneResult {
            gene: Gene::Cyp2d6,
            kind,
            reference: None,
            recorded: Some(recorded.into()),
        };
        let sel = select_results(vec![
            mk(
                ResultKind::Phenotype {
                    phenotype: "Poor Metabolizer".into(),
                    activity_score: None,
                },
                "2026-03-01",
            ),
            mk(
                ResultKind::Genotype {
                    diplotype: "*1/*1".into(),
                },
                "2026-01-01",
            ),
            mk(
                ResultKind::Genotype {
                    diplotype: "*1/*1x2".into(),
                },
                "2026-02-01",
            ),
        ]);
        assert_eq!(sel.len(), 1);
        assert_eq!(
            sel[0].kind,
            ResultKind::Genotype {
                diplotype: "*1/*1x2".into()
            }
        );
    }

    #[test]
    fn built_observations_read_back() {
        let ctx = ResultContext {
            patient_ref: "Patient/p",
            performer: None,
            issued: "2026-01-01T00:00:00Z",
        };
        let g = genotype_observation(ctx, Gene::Cyp2c19, "*2/*2");
        let r = read_observation(&g).ok().flatten();
        assert_eq!(r.map(|r| r.gene), Some(Gene::Cyp2c19));
        let source = PhenotypeSource {
            activity_score: Some("0.5"),
            derived_from: None,
            note: "n",
        };
        let p = phenotype_observation(ctx, Gene::Cyp4f2, "Poor Metabolizer", source);
        let r = read_observation(&p).ok().flatten();
        assert_eq!(
            r.map(|r| r.kind),
            Some(ResultKind::Phenotype {
                phenotype: "Poor Metabolizer".into(),
                activity_score: Some("0.5".into())
            })
        );
    }

    #[test]
    fn patient_results_interpret_each_selected_result_once() {
        let o = obs(
            json!({"coding": [{"system": HGNC_SYSTEM, "code": "HGNC:2621"}]}),
            json!({"text": "*2/*2"}),
        );
        let r = read_observation(&o).ok().flatten().expect("a result");
        // Two copies of one gene's result: one is selected, and interpreted.
        let p = PatientResults::new(vec![r.clone(), r.clone()]);
        assert_eq!(p.results.len(), 1);
        assert_eq!(p.interpretations, vec![r.interpretation()]);
    }
}
