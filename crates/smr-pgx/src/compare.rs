//! Compares SMR's tables with a PharmCAT phenotype file (`phenotypes/GENE.json` of a
//! PharmCAT data release) and lists every difference: alleles added or missing, allele
//! functions changed, diplotypes whose phenotype, activity score or lookup key differ.
//!
//! This is the check a maintainer runs before bringing a table to a new release
//! (docs/pgx-knowledge-update.md): it says what would change, so nothing is changed
//! blind. Pure: the caller reads the file and passes its text.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::gene::Gene;
use crate::interpret::{allele_function, allele_names, interpret};

/// One way SMR's table differs from the supplied release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Difference {
    /// The release names an allele SMR does not know.
    AlleleAdded { allele: String, function: String },
    /// SMR knows an allele the release no longer names.
    AlleleMissing { allele: String, function: String },
    /// Both name the allele with a different function.
    FunctionChanged {
        allele: String,
        smr: String,
        release: String,
    },
    /// SMR's result for one of the release's diplotype rows differs.
    DiplotypeChanged {
        diplotype: String,
        smr: String,
        release: String,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::AlleleAdded { allele, function } => {
                write!(f, "allele added: {allele} ({function})")
            }
            Difference::AlleleMissing { allele, function } => {
                write!(f, "allele not in the release: {allele} (SMR: {function})")
            }
            Difference::FunctionChanged {
                allele,
                smr,
                release,
            } => write!(
                f,
                "function changed: {allele}: SMR {smr}, release {release}"
            ),
            Difference::DiplotypeChanged {
                diplotype,
                smr,
                release,
            } => write!(f, "diplotype {diplotype}: SMR {smr}; release {release}"),
        }
    }
}

/// The result of comparing one gene.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comparison {
    pub gene: Gene,
    /// The `version` field of the release file (PharmCAT writes e.g. "2025-11-05-00-25").
    pub release: Option<String>,
    /// Named alleles and diplotype rows read from the release file.
    pub alleles: usize,
    pub diplotypes: usize,
    pub differences: Vec<Difference>,
}

/// The release file could not be read as a PharmCAT phenotype file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{gene}: not a PharmCAT phenotype file: {message}")]
pub struct CompareError {
    pub gene: Gene,
    pub message: String,
}

#[derive(Deserialize)]
struct ReleaseFile {
    #[serde(default)]
    version: Option<String>,
    #[serde(default, rename = "namedAlleles")]
    named_alleles: Vec<NamedAllele>,
    #[serde(default)]
    diplotypes: Vec<DiplotypeRow>,
}

#[derive(Deserialize)]
struct NamedAllele {
    name: String,
    #[serde(rename = "functionValue")]
    function_value: Option<String>,
}

#[derive(Deserialize)]
struct DiplotypeRow {
    diplotype: String,
    phenotype: Option<String>,
    #[serde(rename = "activityScore")]
    activity_score: Option<String>,
    lookupkey: Option<String>,
}

/// The gene a PharmCAT phenotype file is for, from its file stem ("MT_RNR1" → MT-RNR1).
pub fn gene_of_release_file(stem: &str) -> Option<Gene> {
    stem.replace('_', "-").parse().ok()
}

/// Compares SMR's table for `gene` with the text of a PharmCAT `phenotypes/GENE.json`.
pub fn compare_with_pharmcat(gene: Gene, text: &str) -> Result<Comparison, CompareError> {
    let file: ReleaseFile = serde_json::from_str(text).map_err(|e| CompareError {
        gene,
        message: e.to_string(),
    })?;
    let mut differences = Vec::new();

    for a in &file.named_alleles {
        let want = a.function_value.as_deref().unwrap_or("(none)");
        match allele_function(gene, &a.name) {
            None => differences.push(Difference::AlleleAdded {
                allele: a.name.clone(),
                function: want.to_string(),
            }),
            Some(got) if got != want => differences.push(Difference::FunctionChanged {
                allele: a.name.clone(),
                smr: got.to_string(),
                release: want.to_string(),
            }),
            Some(_) => {}
        }
    }
    // HLA-style genes have no named-allele table on either side; only look for alleles
    // SMR has and the release dropped when the release lists alleles at all.
    if !file.named_alleles.is_empty() {
        for name in allele_names(gene) {
            if !file.named_alleles.iter().any(|a| a.name == name) {
                differences.push(Difference::AlleleMissing {
                    allele: name.to_string(),
                    function: allele_function(gene, name).unwrap_or("(none)").to_string(),
                });
            }
        }
    }

    for row in &file.diplotypes {
        let got = interpret(gene, &row.diplotype);
        let same = Some(got.phenotype.as_str()) == row.phenotype.as_deref()
            && got.activity_score == row.activity_score
            && Some(got.lookup_key.as_str()) == row.lookupkey.as_deref()
            && got.diplotype == row.diplotype;
        if !same {
            differences.push(Difference::DiplotypeChanged {
                diplotype: row.diplotype.clone(),
                smr: describe(
                    Some(got.phenotype.as_str()),
                    got.activity_score.as_deref(),
                    Some(&got.lookup_key),
                    &got.diplotype,
                ),
                release: describe(
                    row.phenotype.as_deref(),
                    row.activity_score.as_deref(),
                    row.lookupkey.as_deref(),
                    &row.diplotype,
                ),
            });
        }
    }

    Ok(Comparison {
        gene,
        release: file.version,
        alleles: file.named_alleles.len(),
        diplotypes: file.diplotypes.len(),
        differences,
    })
}

fn describe(phenotype: Option<&str>, score: Option<&str>, key: Option<&str>, dip: &str) -> String {
    format!(
        "{} (score {}, key {}, written {dip})",
        phenotype.unwrap_or("(none)"),
        score.unwrap_or("-"),
        key.unwrap_or("(none)")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_each_kind_of_difference() {
        // A made-up release: *2 reclassified, *99 added, *3C dropped, one row changed.
        let text = r#"{"version":"test-1","namedAlleles":[
            {"name":"*1","functionValue":"Normal function"},
            {"name":"*2","functionValue":"Normal function"},
            {"name":"*99","functionValue":"No function"}],
          "diplotypes":[
            {"diplotype":"*1/*1","phenotype":"Normal Metabolizer","activityScore":null,"lookupkey":"Normal Metabolizer"},
            {"diplotype":"*1/*2","phenotype":"Normal Metabolizer","activityScore":null,"lookupkey":"Normal Metabolizer"}]}"#;
        let c = compare_with_pharmcat(Gene::Tpmt, text).expect("parses");
        assert_eq!(c.release.as_deref(), Some("test-1"));
        let d = &c.differences;
        assert!(d.contains(&Difference::AlleleAdded {
            allele: "*99".into(),
            function: "No function".into()
        }));
        assert!(d.contains(&Difference::FunctionChanged {
            allele: "*2".into(),
            smr: "No function".into(),
            release: "Normal function".into()
        }));
        assert!(
            d.iter()
                .any(|x| matches!(x, Difference::AlleleMissing { allele, .. } if allele == "*3C"))
        );
        assert!(d.iter().any(
            |x| matches!(x, Difference::DiplotypeChanged { diplotype, .. } if diplotype == "*1/*2")
        ));
        assert!(!d.iter().any(
            |x| matches!(x, Difference::DiplotypeChanged { diplotype, .. } if diplotype == "*1/*1")
        ));
    }

    #[test]
    fn file_stems_name_genes() {
        assert_eq!(gene_of_release_file("MT_RNR1"), Some(Gene::MtRnr1));
        assert_eq!(gene_of_release_file("CYP2B6"), Some(Gene::Cyp2b6));
        assert_eq!(gene_of_release_file("CFTR"), None);
        assert!(compare_with_pharmcat(Gene::Tpmt, "[").is_err());
    }
}
