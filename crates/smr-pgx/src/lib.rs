//! Pharmacogenomic knowledge base for SMR: genotype → phenotype.
//!
//! For every CPIC level A gene (plus CYP3A4 and NAT2) the crate carries the CPIC
//! allele function table as a versioned data file citing its source
//! (`data/GENE.json`), and turns a diplotype into a phenotype by CPIC's rules:
//!
//! - **activity score** — CYP2C9, CYP2D6 (with copy numbers and tandems), DPYD
//!   (lowest variant per haplotype; two-lowest-variant rule when unphased);
//! - **function pair** — CYP2C19, CYP2B6, CYP3A4, CYP3A5, CYP4F2, NAT2, TPMT, NUDT15,
//!   SLCO1B1, ABCG2, UGT1A1, VKORC1, IFNL3, RYR1, CACNA1S;
//! - **carrier status** — HLA-A*31:01, HLA-B*15:02, *57:01, *58:01;
//! - **X-linked** — G6PD (hemizygous males; females Normal / Variable / Deficient);
//! - **haploid** — MT-RNR1.
//!
//! Anything not in a table or not readable gives [`Phenotype::Indeterminate`] with a
//! reason, never a silent normal. The crate is pure: no I/O beyond its own data
//! files compiled in with `include_str!`.
//! [`vcf`] calls diplotypes from GRCh38 VCF text (allele definitions in `data/allele-definitions/`).
//!
//! ```
//! use smr_pgx::{interpret, Gene};
//! let r = interpret(Gene::Cyp2d6, "*1/*4");
//! assert_eq!(r.phenotype.as_str(), "Intermediate Metabolizer");
//! assert_eq!(r.activity_score.as_deref(), Some("1.0"));
//! ```

pub mod compare;
mod gene;
mod interpret;
mod kb;
mod outside_call;
mod score;
pub mod vcf;

pub use compare::{Comparison, Difference, compare_with_pharmcat};
pub use gene::{Gene, UnknownGene};
pub use interpret::{Interpretation, Phenotype, allele_function, allele_names, interpret};
pub use kb::{KbEntry, KbError, check_knowledge_base, kb_versions};
pub use outside_call::{LineError, OutsideCall, ParseError, parse_outside_calls};
