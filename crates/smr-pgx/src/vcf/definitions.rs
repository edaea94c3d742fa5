//! SMR's allele definition format: which GRCh38 positions define each named allele.
//!
//! One text file per gene (see `data/allele-definitions/README.md`), generated from
//! PharmCAT's translation files by `data/allele-definitions/generate.py`. Lines are
//! tab-separated `key<TAB>values…`; `#` starts a comment:
//!
//! ```text
//! gene        CYP2C19
//! chromosome  chr10
//! build       GRCh38.p14
//! version     2025-11-05-00-25
//! position    94761900  94762706  …
//! rsid        rs12248560 rs28399504 … ('.' when none)
//! ref         C         A         …
//! alts        T         G         … (comma-separated)
//! reference   *38       C         A  …   (exactly one: the reference haplotype)
//! allele      *2        .         .  …   ('.' = reference base expected)
//! ```

use std::collections::HashSet;
use std::sync::LazyLock;

use crate::Gene;

/// A defining position of a gene, in GRCh38 VCF coordinates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinedPosition {
    /// Chromosome as written in the definition file (`chr10`).
    pub chromosome: String,
    /// 1-based VCF position.
    pub position: u64,
    pub rsid: Option<String>,
    /// VCF REF allele the definition expects.
    pub reference: String,
    /// Alternate alleles known at this position.
    pub alts: Vec<String>,
}

impl DefinedPosition {
    /// `chr10:94761900 (rs12248560)` — how positions are named in notes.
    pub fn label(&self) -> String {
        match &self.rsid {
            Some(rs) => format!("{}:{} ({rs})", self.chromosome, self.position),
            None => format!("{}:{}", self.chromosome, self.position),
        }
    }
}

/// One named allele (haplotype) and the allele it requires at every defining position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedAllele {
    pub name: String,
    /// The gene's reference haplotype (CYP2C19 `*38`, `*1` for most genes).
    pub is_reference: bool,
    /// Aligned with [`GeneDefinition::positions`]; `None` = not part of the
    /// definition, matched as the reference base (PharmCAT's default).
    pub alleles: Vec<Option<String>>,
}

impl NamedAllele {
    /// PharmCAT's specificity score: the number of positions the definition names.
    pub fn score(&self) -> usize {
        self.alleles.iter().filter(|a| a.is_some()).count()
    }
}

/// Everything needed to call one gene from a VCF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneDefinition {
    pub gene: Gene,
    pub chromosome: String,
    pub build: String,
    /// Version of the source data (PharmCAT release date stamp).
    pub version: String,
    pub positions: Vec<DefinedPosition>,
    /// The reference haplotype first, then the others in file order.
    pub alleles: Vec<NamedAllele>,
}

impl GeneDefinition {
    /// The reference haplotype.
    pub fn reference_allele(&self) -> &NamedAllele {
        // parse_definitions guarantees exactly one, stored first.
        &self.alleles[0]
    }
}

/// A definition file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionError {
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("missing '{0}' line")]
    MissingKey(&'static str),
    #[error("no reference allele (exactly one 'reference' line is required)")]
    NoReference,
    #[error("more than one reference allele ('{0}' and '{1}')")]
    TwoReferences(String, String),
    #[error("the same gene is defined twice: {0}")]
    DuplicateGene(Gene),
    #[error("{gene}: {source}")]
    InGene {
        gene: String,
        #[source]
        source: Box<DefinitionError>,
    },
}

fn line_err(line: usize, message: impl Into<String>) -> DefinitionError {
    DefinitionError::Line {
        line,
        message: message.into(),
    }
}

/// Parse one gene's definition file in SMR's format (see the module docs).
pub fn parse_definitions(gene_file_contents: &str) -> Result<GeneDefinition, DefinitionError> {
    let mut gene = None;
    let mut chromosome = None;
    let mut build = String::new();
    let mut version = String::new();
    let mut positions: Option<Vec<u64>> = None;
    let mut rsids: Option<Vec<Option<String>>> = None;
    let mut refs: Option<Vec<String>> = None;
    let mut alts: Option<Vec<Vec<String>>> = None;
    // (line number, is_reference, name, cells) kept until the position count is known.
    let mut rows: Vec<(usize, bool, String, Vec<Option<String>>)> = Vec::new();

    for (i, raw) in gene_file_contents.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split('\t');
        let key = fields.next().unwrap_or_default();
        let values: Vec<&str> = fields.collect();
        let single = || -> Result<String, DefinitionError> {
            match values.as_slice() {
                [v] if !v.is_empty() => Ok((*v).to_string()),
                _ => Err(line_err(n, format!("'{key}' takes exactly one value"))),
            }
        };
        match key {
            "gene" => {
                let symbol = single()?;
                gene = Some(
                    symbol
                        .parse::<Gene>()
                        .map_err(|e| line_err(n, e.to_string()))?,
                );
            }
            "chromosome" => chromosome = Some(single()?),
            "build" => build = single()?,
            "version" => version = single()?,
            "position" => {
                let parsed = values
                    .iter()
                    .map(|v| {
                        v.parse::<u64>()
                            .map_err(|_| line_err(n, format!("bad position '{v}'")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                positions = Some(parsed);
            }
            "rsid" => {
                rsids = Some(
                    values
                        .iter()
                        .map(|v| (*v != ".").then(|| (*v).to_string()))
                        .collect(),
                )
            }
            "ref" => refs = Some(values.iter().map(|v| (*v).to_string()).collect()),
            "alts" => {
                alts = Some(
                    values
                        .iter()
                        .map(|v| {
                            if *v == "." {
                                Vec::new()
                            } else {
                                v.split(',').map(str::to_string).collect()
                            }
                        })
                        .collect(),
                )
            }
            "reference" | "allele" => {
                let Some((name, cells)) = values.split_first() else {
                    return Err(line_err(n, "allele line without a name"));
                };
                if name.trim().is_empty() {
                    return Err(line_err(n, "allele line without a name"));
                }
                let cells = cells
                    .iter()
                    .map(|c| (*c != "." && !c.is_empty()).then(|| (*c).to_string()))
                    .collect();
                rows.push((n, key == "reference", (*name).to_string(), cells));
            }
            other => return Err(line_err(n, format!("unknown key '{other}'"))),
        }
    }

    let gene = gene.ok_or(DefinitionError::MissingKey("gene"))?;
    let wrap = |e: DefinitionError| DefinitionError::InGene {
        gene: gene.symbol().to_string(),
        source: Box::new(e),
    };
    let chromosome = chromosome
        .ok_or(DefinitionError::MissingKey("chromosome"))
        .map_err(wrap)?;
    let positions = positions
        .ok_or(DefinitionError::MissingKey("position"))
        .map_err(wrap)?;
    let refs = refs
        .ok_or(DefinitionError::MissingKey("ref"))
        .map_err(wrap)?;
    let count = positions.len();
    let rsids = rsids.unwrap_or_else(|| vec![None; count]);
    let alts = alts.unwrap_or_else(|| vec![Vec::new(); count]);
    if refs.len() != count || rsids.len() != count || alts.len() != count {
        return Err(wrap(line_err(
            0,
            format!("'ref', 'rsid' and 'alts' must each have {count} values, one per position"),
        )));
    }
    let mut seen = HashSet::new();
    for p in &positions {
        if !seen.insert(*p) {
            // Two columns for one position would make a sample genotype count twice.
            return Err(wrap(line_err(0, format!("position {p} listed twice"))));
        }
    }
    let positions: Vec<DefinedPosition> = positions
        .into_iter()
        .zip(rsids)
        .zip(refs)
        .zip(alts)
        .map(|(((position, rsid), reference), alts)| DefinedPosition {
            chromosome: chromosome.clone(),
            position,
            rsid,
            reference,
            alts,
        })
        .collect();

    let mut reference: Option<NamedAllele> = None;
    let mut alleles = Vec::new();
    let mut names = HashSet::new();
    for (n, is_reference, name, cells) in rows {
        if cells.len() != count {
            return Err(wrap(line_err(
                n,
                format!(
                    "allele '{name}' has {} cells for {count} positions",
                    cells.len()
                ),
            )));
        }
        if !names.insert(name.clone()) {
            return Err(wrap(line_err(n, format!("allele '{name}' defined twice"))));
        }
        let allele = NamedAllele {
            name,
            is_reference,
            alleles: cells,
        };
        if is_reference {
            if let Some(first) = &reference {
                return Err(wrap(DefinitionError::TwoReferences(
                    first.name.clone(),
                    allele.name,
                )));
            }
            if allele.alleles.iter().any(Option::is_none) {
                // The reference is what '.' cells default to, so it must name every base.
                return Err(wrap(line_err(
                    n,
                    format!(
                        "reference allele '{}' must give a base at every position",
                        allele.name
                    ),
                )));
            }
            reference = Some(allele);
        } else {
            alleles.push(allele);
        }
    }
    let reference = reference
        .ok_or(DefinitionError::NoReference)
        .map_err(wrap)?;
    alleles.insert(0, reference);
    Ok(GeneDefinition {
        gene,
        chromosome,
        build,
        version,
        positions,
        alleles,
    })
}

/// Built-in definition files (generated from PharmCAT 2025-11-05), one per gene.
pub const BUILTIN_DEFINITION_FILES: [(&str, &str); 15] = [
    (
        "ABCG2",
        include_str!("../../data/allele-definitions/ABCG2.tsv"),
    ),
    (
        "CACNA1S",
        include_str!("../../data/allele-definitions/CACNA1S.tsv"),
    ),
    (
        "CYP2B6",
        include_str!("../../data/allele-definitions/CYP2B6.tsv"),
    ),
    (
        "CYP2C19",
        include_str!("../../data/allele-definitions/CYP2C19.tsv"),
    ),
    (
        "CYP2C9",
        include_str!("../../data/allele-definitions/CYP2C9.tsv"),
    ),
    (
        "CYP3A4",
        include_str!("../../data/allele-definitions/CYP3A4.tsv"),
    ),
    (
        "CYP3A5",
        include_str!("../../data/allele-definitions/CYP3A5.tsv"),
    ),
    (
        "CYP4F2",
        include_str!("../../data/allele-definitions/CYP4F2.tsv"),
    ),
    (
        "DPYD",
        include_str!("../../data/allele-definitions/DPYD.tsv"),
    ),
    (
        "IFNL3",
        include_str!("../../data/allele-definitions/IFNL3.tsv"),
    ),
    (
        "NUDT15",
        include_str!("../../data/allele-definitions/NUDT15.tsv"),
    ),
    (
        "SLCO1B1",
        include_str!("../../data/allele-definitions/SLCO1B1.tsv"),
    ),
    (
        "TPMT",
        include_str!("../../data/allele-definitions/TPMT.tsv"),
    ),
    (
        "UGT1A1",
        include_str!("../../data/allele-definitions/UGT1A1.tsv"),
    ),
    (
        "VKORC1",
        include_str!("../../data/allele-definitions/VKORC1.tsv"),
    ),
];

/// The definitions to call against; built-in or supplied by the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionSet {
    genes: Vec<GeneDefinition>,
}

impl DefinitionSet {
    /// Refuses two definitions of one gene: which would win is not obvious.
    pub fn new(genes: Vec<GeneDefinition>) -> Result<Self, DefinitionError> {
        let mut seen = HashSet::new();
        for g in &genes {
            if !seen.insert(g.gene) {
                return Err(DefinitionError::DuplicateGene(g.gene));
            }
        }
        Ok(DefinitionSet { genes })
    }

    /// Parse several files' contents (e.g. every file of a `--definitions DIR`).
    pub fn parse<'a>(files: impl IntoIterator<Item = &'a str>) -> Result<Self, DefinitionError> {
        let genes = files
            .into_iter()
            .map(parse_definitions)
            .collect::<Result<Vec<_>, _>>()?;
        DefinitionSet::new(genes)
    }

    /// The built-in definitions, parsed once. A parse failure here is a build
    /// defect, caught by the crate's tests; it is returned rather than panicking.
    pub fn builtin() -> Result<&'static DefinitionSet, DefinitionError> {
        static BUILTIN: LazyLock<Result<DefinitionSet, DefinitionError>> =
            LazyLock::new(|| DefinitionSet::parse(BUILTIN_DEFINITION_FILES.iter().map(|f| f.1)));
        BUILTIN.as_ref().map_err(Clone::clone)
    }

    pub fn genes(&self) -> &[GeneDefinition] {
        &self.genes
    }

    pub fn get(&self, gene: Gene) -> Option<&GeneDefinition> {
        self.genes.iter().find(|g| g.gene == gene)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_definitions_parse() {
        let set = DefinitionSet::builtin();
        assert!(set.is_ok(), "{set:?}");
        let Ok(set) = set else { return };
        assert_eq!(set.genes().len(), 15);
        let Some(c19) = set.get(Gene::Cyp2c19) else {
            panic!("no CYP2C19")
        };
        assert_eq!(c19.reference_allele().name, "*38");
        assert_eq!(c19.chromosome, "chr10");
        assert!(c19.alleles.iter().any(|a| a.name == "*17"));
        for (symbol, _) in BUILTIN_DEFINITION_FILES {
            assert!(set.genes().iter().any(|g| g.gene.symbol() == symbol));
        }
    }

    #[test]
    fn rejects_bad_files() {
        let good = "gene\tVKORC1\nchromosome\tchr16\nposition\t1\t2\nref\tA\tC\nreference\tR\tA\tC\nallele\tX\tG\t.\n";
        assert!(parse_definitions(good).is_ok());
        let short = good.replace("allele\tX\tG\t.", "allele\tX\tG");
        assert!(matches!(
            parse_definitions(&short),
            Err(DefinitionError::InGene { .. })
        ));
        let no_ref = good.replace("reference\tR\tA\tC\n", "");
        assert!(parse_definitions(&no_ref).is_err());
        let bad_gene = good.replace("VKORC1", "NOTAGENE");
        assert!(matches!(
            parse_definitions(&bad_gene),
            Err(DefinitionError::Line { line: 1, .. })
        ));
        let twice = DefinitionSet::parse([good, good]);
        assert_eq!(twice, Err(DefinitionError::DuplicateGene(Gene::Vkorc1)));
    }
}
