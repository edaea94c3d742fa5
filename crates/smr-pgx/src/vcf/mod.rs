//! GRCh38 VCF → diplotype calling for the SNV/indel-defined pharmacogenes.
//!
//! - [`definitions`]: SMR's allele definition format, built-in definitions for the
//!   15 genes PharmCAT defines by position (ABCG2, CACNA1S, CYP2B6, CYP2C19,
//!   CYP2C9, CYP3A4, CYP3A5, CYP4F2, DPYD, IFNL3, NUDT15, SLCO1B1, TPMT, UGT1A1,
//!   VKORC1), generated from PharmCAT's allele definitions (MPL-2.0).
//! - [`reader`]: streaming VCF reader keeping only genotypes at defining positions.
//! - [`matcher`]: named-allele matching (PharmCAT NamedAlleleMatcher semantics).
//!
//! Pure like the rest of the crate: text in, calls out. The caller reads files.
//!
//! ```
//! use smr_pgx::vcf::{DefinitionSet, call_vcf};
//! use smr_pgx::Gene;
//! let vcf = "##fileformat=VCFv4.2\n\
//! #CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n\
//! chr16\t31096368\trs9923231\tC\tT\t.\tPASS\t.\tGT\t0/1\n";
//! let defs = DefinitionSet::builtin().expect("built-in definitions");
//! let calls = call_vcf(vcf, defs).expect("valid VCF");
//! let vkorc1 = calls[0].gene(Gene::Vkorc1).expect("VKORC1 called");
//! assert_eq!(vkorc1.diplotypes, ["rs9923231 reference (C)/rs9923231 variant (T)"]);
//! ```

pub mod definitions;
pub mod matcher;
pub mod reader;

use serde::Serialize;

pub use definitions::{
    BUILTIN_DEFINITION_FILES, DefinedPosition, DefinitionError, DefinitionSet, GeneDefinition,
    NamedAllele, parse_definitions,
};
pub use matcher::{GeneCall, MissingPosition, call_gene};
pub use reader::{CollectedGenotypes, GenotypeCollector, Observed, VcfError};

use crate::Gene;

/// All gene calls for one VCF sample, genes in definition-set order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SampleCalls {
    pub sample: String,
    pub genes: Vec<GeneCall>,
}

impl SampleCalls {
    pub fn gene(&self, gene: Gene) -> Option<&GeneCall> {
        self.genes.iter().find(|c| c.gene == gene)
    }
}

/// Call every gene of `definitions` for every sample of a VCF given as text.
pub fn call_vcf(vcf: &str, definitions: &DefinitionSet) -> Result<Vec<SampleCalls>, VcfError> {
    let mut collector = GenotypeCollector::new(definitions);
    for line in vcf.lines() {
        collector.push_line(line)?;
    }
    Ok(call_collected(&collector.finish()?, definitions))
}

/// Match genotypes gathered with a [`GenotypeCollector`] (for callers that stream
/// a large VCF line by line instead of holding it in memory).
pub fn call_collected(
    collected: &CollectedGenotypes,
    definitions: &DefinitionSet,
) -> Vec<SampleCalls> {
    collected
        .samples
        .iter()
        .enumerate()
        .map(|(s, sample)| SampleCalls {
            sample: sample.clone(),
            genes: definitions
                .genes()
                .iter()
                .enumerate()
                .map(|(g, def)| call_gene(def, &collected.observed[s][g], &collected.notes[s][g]))
                .collect(),
        })
        .collect()
}
