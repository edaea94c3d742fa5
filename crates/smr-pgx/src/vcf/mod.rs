//! GRCh38 VCF → diplotype calling for the SNV/indel-defined pharmacogenes.
//!
//! - [`definitions`]: SMR's allele definition format, built-in definitions for the
//!   15 genes PharmCAT defines by position (ABCG2, CACNA1S, CYP2B6, CYP2C19,
//!   CYP2C9, CYP3A4, CYP3A5, CYP4F2, DPYD, IFNL3, NUDT15, SLCO1B1, TPMT, UGT1A1,
//!   VKORC1), generated from PharmCAT's allele definitions (MPL-2.0).
//! - [`reader`]: streaming VCF reader keeping only genotypes at defining positions.
//! - [`matcher`]: named-allele matching (PharmCAT NamedAlleleMatcher semantics).
//!   DPYD follows PharmCAT's DPYD rule: with two or more unphased heterozygous
//!   positions the named variants are listed (`A;B;C`, scored by the two
//!   lowest-function ones), and a phased DPYD haplotype may carry several variants
//!   (`A+B/Reference`).
//! - [`combination`]: PharmCAT's research combination mode, opt-in through
//!   [`CallOptions::combinations`]: when no pair of named alleles fits, haplotypes
//!   made of several named alleles and/or undocumented variants
//!   (`*1/[*6 + *80]`, `*6/[*6 + g.233760973C>T]`), flagged
//!   [`GeneCall::combination`] and never given a CPIC phenotype. Without it such
//!   samples stay an explicit no-call whose note names what the mode would report.
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

pub mod combination;
pub mod definitions;
pub mod matcher;
pub mod reader;

use serde::Serialize;

pub use definitions::{
    BUILTIN_DEFINITION_FILES, DefinedPosition, DefinitionError, DefinitionSet, GeneDefinition,
    NamedAllele, parse_definitions,
};
pub use matcher::{CallOptions, GeneCall, MissingPosition, call_gene, call_gene_with};
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
    call_vcf_with(vcf, definitions, &CallOptions::default())
}

/// [`call_vcf`] with explicit [`CallOptions`] (e.g. PharmCAT's combination mode).
pub fn call_vcf_with(
    vcf: &str,
    definitions: &DefinitionSet,
    options: &CallOptions,
) -> Result<Vec<SampleCalls>, VcfError> {
    let mut collector = GenotypeCollector::new(definitions);
    for line in vcf.lines() {
        collector.push_line(line)?;
    }
    Ok(call_collected_with(
        &collector.finish()?,
        definitions,
        options,
    ))
}

/// Match genotypes gathered with a [`GenotypeCollector`] (for callers that stream
/// a large VCF line by line instead of holding it in memory).
pub fn call_collected(
    collected: &CollectedGenotypes,
    definitions: &DefinitionSet,
) -> Vec<SampleCalls> {
    call_collected_with(collected, definitions, &CallOptions::default())
}

/// [`call_collected`] with explicit [`CallOptions`].
pub fn call_collected_with(
    collected: &CollectedGenotypes,
    definitions: &DefinitionSet,
    options: &CallOptions,
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
                .map(|(g, def)| {
                    call_gene_with(
                        def,
                        &collected.observed[s][g],
                        &collected.notes[s][g],
                        options,
                    )
                })
                .collect(),
        })
        .collect()
}
