//! The knowledge base: per-gene allele tables and phenotype rules, loaded once
//! from the JSON data files compiled into the crate.
//!
//! Everything an interpretation needs is precomputed here (name lookup maps, a
//! function × function phenotype matrix, parsed activity values), so
//! [`crate::interpret`] does no JSON work and few allocations.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use serde::Deserialize;

use crate::gene::Gene;
use crate::score::parse_hundredths;

/// How a gene's diplotype becomes a phenotype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// Two alleles; the pair of allele functions decides the phenotype.
    FunctionPair,
    /// Two alleles with activity values; their sum (the activity score) decides.
    ActivityScore,
    /// Carrier status of specific HLA alleles.
    Hla,
    /// X-linked: one allele (hemizygous male) or two (female).
    XLinked,
    /// Mitochondrial: one allele.
    Haploid,
}

impl Model {
    pub fn as_str(self) -> &'static str {
        match self {
            Model::FunctionPair => "function pair",
            Model::ActivityScore => "activity score",
            Model::Hla => "HLA carrier status",
            Model::XLinked => "X-linked",
            Model::Haploid => "haploid (mitochondrial)",
        }
    }
}

/// How several alleles written in cis with `+` combine on one haplotype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cis {
    /// CYP2D6 tandems (*36+*10): activity values add.
    Sum,
    /// DPYD: the haplotype is as good as its worst variant.
    Min,
}

/// A data file or rule table that does not make sense. Only the crate's own data
/// files are loaded, so this signals a packaging bug, reported rather than panicking.
/// Every message starts with the data file (`data/GENE.json`) and names the entry, so a
/// failing test points at the line to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KbError {
    #[error("data/{gene}.json: data file is not valid: {message}")]
    Json { gene: Gene, message: String },
    #[error("data/{gene}.json: data file is for gene '{found}'")]
    WrongGene { gene: Gene, found: String },
    #[error("data/{gene}.json: allele '{allele}' listed twice")]
    DuplicateAllele { gene: Gene, allele: String },
    #[error(
        "data/{gene}.json: allele '{allele}' has activity value '{value}', expected a number or \"n/a\""
    )]
    BadActivity {
        gene: Gene,
        allele: String,
        value: String,
    },
    #[error("data/{gene}.json: alias '{alias}' points at unknown allele '{target}'")]
    AliasTarget {
        gene: Gene,
        alias: String,
        target: String,
    },
    #[error("data/{gene}.json: rule mentions function '{function}', which no allele has")]
    RuleFunction { gene: Gene, function: String },
    #[error("data/{gene}.json: activity range '{value}' is not a number")]
    BadRange { gene: Gene, value: String },
    #[error("data/{gene}.json: allele group {alleles:?} has unknown function label '{function}'")]
    UnknownFunction {
        gene: Gene,
        function: String,
        alleles: Vec<String>,
    },
    #[error("data/{gene}.json: '{field}' is missing or empty{detail}")]
    Provenance {
        gene: Gene,
        field: &'static str,
        detail: &'static str,
    },
    #[error(
        "data/{gene}.json: alleles_of_interest names '{allele}', which is not in the allele table"
    )]
    InterestAllele { gene: Gene, allele: String },
}

/// The function labels CPIC (and, for G6PD, the WHO class) use in allele functionality
/// tables. A label outside this list is almost always a typo, which would otherwise
/// make every pair with that allele Indeterminate without anyone noticing.
const FUNCTION_LABELS: &[&str] = &[
    "Normal function",
    "Increased function",
    "Decreased function",
    "No function",
    "Uncertain function",
    "Unknown function",
    "Uncertain or unknown function (no CPIC activity value)",
    "Favorable response allele",
    "Unfavorable response allele",
    "Normal coumarin sensitivity",
    "Higher coumarin sensitivity",
    "I/Deficient with CNSHA",
    "II/Deficient",
    "III/Deficient",
    "IV/Normal",
    "Increased risk of aminoglycoside-induced hearing loss",
    "Normal risk of aminoglycoside-induced hearing loss",
    "Uncertain risk of aminoglycoside-induced hearing loss",
    "Malignant Hyperthermia associated",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GeneFile {
    gene: String,
    model: Model,
    /// Which guideline and table the data come from.
    #[serde(default)]
    source: String,
    /// The CPIC/ClinPGx or PharmCAT data release the table was read from (date or version).
    #[serde(default)]
    release: String,
    /// The file the table was read from, with its URL (and commit where known).
    #[serde(default)]
    source_file: String,
    #[serde(default)]
    notes: Vec<String>,
    #[serde(default)]
    copy_number: bool,
    #[serde(default)]
    cis: Option<Cis>,
    #[serde(default)]
    split_synonyms: bool,
    #[serde(default)]
    allele_groups: Vec<AlleleGroup>,
    #[serde(default)]
    aliases: BTreeMap<String, String>,
    #[serde(default)]
    pair_rules: Vec<PairRule>,
    #[serde(default)]
    single_rules: Vec<SingleRule>,
    #[serde(default)]
    activity_phenotypes: Vec<ActivityRange>,
    #[serde(default)]
    alleles_of_interest: Vec<String>,
    #[serde(default)]
    genotype_prefixes: Vec<String>,
    #[serde(default)]
    genotype_alphabets: Vec<GenotypeAlphabet>,
}

/// The letters a two-letter SNP genotype may be written with, and the locus names that
/// imply them (a locus written on two strands has one alphabet per strand).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenotypeAlphabet {
    pub letters: String,
    /// Prefixes (from `genotype_prefixes`) written in these letters; a genotype with one of
    /// them must use these letters, one without a prefix any single alphabet.
    pub prefixes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlleleGroup {
    function: String,
    #[serde(default)]
    activity_value: Option<String>,
    alleles: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PairRule {
    pair: [String; 2],
    phenotype: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SingleRule {
    function: String,
    phenotype: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivityRange {
    min: String,
    #[serde(default)]
    max: Option<String>,
    phenotype: String,
}

/// One named allele.
#[derive(Debug, Clone)]
pub(crate) struct Allele {
    pub name: String,
    /// Index into [`GeneKb::functions`].
    pub function: usize,
    /// Activity value in hundredths; `None` when CPIC gives none ("n/a") or the
    /// gene does not use activity values.
    pub activity: Option<u32>,
}

/// A phenotype band of an activity-score gene, in hundredths; `max: None` is open-ended.
#[derive(Debug, Clone)]
pub(crate) struct ScoreBand {
    pub min: u32,
    pub max: Option<u32>,
    pub phenotype: String,
}

/// Everything known about one gene.
#[derive(Debug)]
pub(crate) struct GeneKb {
    pub gene: Gene,
    pub model: Model,
    pub source: String,
    pub release: String,
    pub source_file: String,
    pub notes: Vec<String>,
    pub copy_number: bool,
    pub cis: Option<Cis>,
    /// Sorted in CPIC's natural order (Reference, *1, *2, *3A, ..., c.520, c.3257), so
    /// index order is the order alleles are written in a normalised diplotype.
    pub alleles: Vec<Allele>,
    pub functions: Vec<String>,
    /// `pair[f1 * functions.len() + f2]`: the phenotype for that function pair.
    pair: Vec<Option<String>>,
    /// Phenotype for a lone allele of that function (haploid / hemizygous).
    single: Vec<Option<String>>,
    pub bands: Vec<ScoreBand>,
    pub alleles_of_interest: Vec<String>,
    /// Locus names that may precede a two-letter SNP genotype ("rs9923231 CT", "-1639 GG").
    pub genotype_prefixes: Vec<String>,
    /// When a locus is written on two strands (VKORC1: -1639 G/A, rs9923231 C/T), the letters
    /// of each; empty when any allele letters may be combined.
    pub genotype_alphabets: Vec<GenotypeAlphabet>,
    /// Whether some allele name contains '/', so a diplotype may need more than one split try.
    pub slash_names: bool,
    exact: HashMap<String, usize>,
    folded: HashMap<String, usize>,
}

impl GeneKb {
    fn load(gene: Gene, text: &str) -> Result<GeneKb, KbError> {
        let file: GeneFile = serde_json::from_str(text).map_err(|e| KbError::Json {
            gene,
            message: e.to_string(),
        })?;
        if file.gene.parse::<Gene>().ok() != Some(gene) {
            return Err(KbError::WrongGene {
                gene,
                found: file.gene,
            });
        }
        // Provenance is part of the data: a table that cannot say which release it is
        // cannot be compared with the next one.
        for (field, value, detail) in [
            ("source", &file.source, ""),
            ("release", &file.release, ""),
            ("source_file", &file.source_file, ""),
        ] {
            if value.trim().is_empty() {
                return Err(KbError::Provenance {
                    gene,
                    field,
                    detail,
                });
            }
        }
        if !file.source_file.contains("https://") {
            return Err(KbError::Provenance {
                gene,
                field: "source_file",
                detail: " (no https:// URL)",
            });
        }
        for group in &file.allele_groups {
            if !FUNCTION_LABELS.contains(&group.function.as_str()) {
                return Err(KbError::UnknownFunction {
                    gene,
                    function: group.function.clone(),
                    alleles: group.alleles.clone(),
                });
            }
        }

        let mut functions: Vec<String> = Vec::new();
        let mut alleles = Vec::new();
        for group in &file.allele_groups {
            let function = intern(&mut functions, &group.function);
            for name in &group.alleles {
                let activity = match group.activity_value.as_deref() {
                    None | Some("n/a") => None,
                    Some(v) => Some(parse_hundredths(v).ok_or_else(|| KbError::BadActivity {
                        gene,
                        allele: name.clone(),
                        value: v.to_string(),
                    })?),
                };
                alleles.push(Allele {
                    name: name.clone(),
                    function,
                    activity,
                });
            }
        }
        alleles.sort_by(|a, b| natural_cmp(&a.name, &b.name));
        for w in alleles.windows(2) {
            if w[0].name == w[1].name {
                return Err(KbError::DuplicateAllele {
                    gene,
                    allele: w[0].name.clone(),
                });
            }
        }

        let (exact, folded) = build_lookup(gene, &alleles, &file)?;
        if !alleles.is_empty() {
            for name in &file.alleles_of_interest {
                if !alleles.iter().any(|a| &a.name == name) {
                    return Err(KbError::InterestAllele {
                        gene,
                        allele: name.clone(),
                    });
                }
            }
        }
        let slash_names = alleles.iter().any(|a| a.name.contains('/'));

        let n = functions.len();
        let function_index = |f: &str| -> Result<Option<usize>, KbError> {
            if f == "*" {
                return Ok(None);
            }
            functions
                .iter()
                .position(|x| x == f)
                .map(Some)
                .ok_or_else(|| KbError::RuleFunction {
                    gene,
                    function: f.to_string(),
                })
        };
        // Expand the rule list (first match wins, "*" matches any function) into a
        // full matrix so interpretation is one index operation.
        let mut pair: Vec<Option<String>> = vec![None; n * n];
        for rule in &file.pair_rules {
            let a = function_index(&rule.pair[0])?;
            let b = function_index(&rule.pair[1])?;
            for i in 0..n {
                for j in 0..n {
                    let hit = (a.is_none_or(|a| a == i) && b.is_none_or(|b| b == j))
                        || (a.is_none_or(|a| a == j) && b.is_none_or(|b| b == i));
                    if hit && pair[i * n + j].is_none() {
                        pair[i * n + j] = Some(rule.phenotype.clone());
                    }
                }
            }
        }
        let mut single: Vec<Option<String>> = vec![None; n];
        for rule in &file.single_rules {
            if let Some(i) = function_index(&rule.function)?
                && single[i].is_none()
            {
                single[i] = Some(rule.phenotype.clone());
            }
        }
        let mut bands = Vec::new();
        for band in &file.activity_phenotypes {
            let parse = |v: &str| {
                parse_hundredths(v).ok_or_else(|| KbError::BadRange {
                    gene,
                    value: v.to_string(),
                })
            };
            bands.push(ScoreBand {
                min: parse(&band.min)?,
                max: band.max.as_deref().map(parse).transpose()?,
                phenotype: band.phenotype.clone(),
            });
        }

        Ok(GeneKb {
            gene,
            model: file.model,
            source: file.source,
            release: file.release,
            source_file: file.source_file,
            notes: file.notes,
            copy_number: file.copy_number,
            cis: file.cis,
            alleles,
            functions,
            pair,
            single,
            bands,
            alleles_of_interest: file.alleles_of_interest,
            genotype_prefixes: file.genotype_prefixes,
            genotype_alphabets: file.genotype_alphabets,
            slash_names,
            exact,
            folded,
        })
    }

    /// Looks an allele up by name or alias; exact spelling first, then ignoring
    /// ASCII case (labs write "*3a", "HAPB3").
    pub fn find(&self, name: &str) -> Option<usize> {
        if let Some(&i) = self.exact.get(name) {
            return Some(i);
        }
        self.folded.get(&name.to_ascii_lowercase()).copied()
    }

    pub fn pair_phenotype(&self, f1: usize, f2: usize) -> Option<&str> {
        let n = self.functions.len();
        self.pair.get(f1 * n + f2).and_then(|p| p.as_deref())
    }

    pub fn single_phenotype(&self, f: usize) -> Option<&str> {
        self.single.get(f).and_then(|p| p.as_deref())
    }

    pub fn band_for(&self, score: u32) -> Option<&ScoreBand> {
        self.bands
            .iter()
            .find(|b| score >= b.min && b.max.is_none_or(|m| score <= m))
    }
}

/// Allele name or alias → index into [`GeneKb::alleles`].
type NameIndex = HashMap<String, usize>;

fn intern(list: &mut Vec<String>, value: &str) -> usize {
    match list.iter().position(|x| x == value) {
        Some(i) => i,
        None => {
            list.push(value.to_string());
            list.len() - 1
        }
    }
}

/// Builds the name → allele maps. Derived aliases (a name without its "m." prefix,
/// the parts of "c.1905+1G>A (*2A)", the synonyms of a G6PD name) are dropped when
/// two alleles would claim the same one: an ambiguous name must not pick a function.
fn build_lookup(
    gene: Gene,
    alleles: &[Allele],
    file: &GeneFile,
) -> Result<(NameIndex, NameIndex), KbError> {
    let mut derived: HashMap<String, Option<usize>> = HashMap::new();
    let mut offer = |alias: &str, i: usize| {
        let alias = alias.trim();
        if alias.is_empty() {
            return;
        }
        derived
            .entry(alias.to_string())
            .and_modify(|e| {
                if *e != Some(i) {
                    *e = None;
                }
            })
            .or_insert(Some(i));
    };
    for (i, a) in alleles.iter().enumerate() {
        let name = a.name.as_str();
        if let Some(rest) = name.strip_prefix("m.") {
            offer(rest, i);
        }
        if let Some((outer, inner)) = name.strip_suffix(')').and_then(|n| n.split_once(" (")) {
            offer(outer, i);
            offer(inner, i);
        }
        if file.split_synonyms && name.contains(',') {
            for part in name.split(',') {
                offer(part, i);
            }
        }
    }

    let mut exact: HashMap<String, usize> = HashMap::new();
    for (alias, target) in derived {
        if let Some(i) = target {
            exact.insert(alias, i);
        }
    }
    for (alias, target) in &file.aliases {
        let i = alleles
            .iter()
            .position(|a| &a.name == target)
            .ok_or_else(|| KbError::AliasTarget {
                gene,
                alias: alias.clone(),
                target: target.clone(),
            })?;
        exact.insert(alias.clone(), i);
    }
    // Canonical names last so that they always win over an alias.
    for (i, a) in alleles.iter().enumerate() {
        exact.insert(a.name.clone(), i);
    }

    let mut folded: HashMap<String, Option<usize>> = HashMap::new();
    for (name, &i) in &exact {
        folded
            .entry(name.to_ascii_lowercase())
            .and_modify(|e| {
                if *e != Some(i) {
                    *e = None;
                }
            })
            .or_insert(Some(i));
    }
    let folded = folded
        .into_iter()
        .filter_map(|(k, v)| v.map(|i| (k, i)))
        .collect();
    Ok((exact, folded))
}

/// CPIC's natural allele order: "Reference" first, then star alleles by number
/// (*2 < *3A < *3B < *10 < *80 < *80+*28), then HGVS names by position, then the rest
/// alphabetically.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    sort_key(a).cmp(&sort_key(b))
}

fn sort_key(name: &str) -> (u8, u64, &str) {
    fn leading_number(s: &str) -> (u64, &str) {
        let end = s
            .bytes()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(s.len());
        let n = s[..end].parse().unwrap_or(u64::MAX);
        (n, &s[end..])
    }
    if name == "Reference" {
        return (0, 0, "");
    }
    if let Some(rest) = name.strip_prefix('*') {
        let (n, tail) = leading_number(rest);
        return (1, n, tail);
    }
    if let Some(rest) = name.strip_prefix("c.").or_else(|| name.strip_prefix("m.")) {
        let (n, tail) = leading_number(rest);
        return (2, n, tail);
    }
    (3, 0, name)
}

macro_rules! data_files {
    ($($gene:ident => $file:literal),* $(,)?) => {
        [$((Gene::$gene, include_str!(concat!("../data/", $file)))),*]
    };
}

const DATA: [(Gene, &str); 22] = data_files! {
    Abcg2 => "ABCG2.json",
    Cacna1s => "CACNA1S.json",
    Cyp2b6 => "CYP2B6.json",
    Cyp2c19 => "CYP2C19.json",
    Cyp2c9 => "CYP2C9.json",
    Cyp2d6 => "CYP2D6.json",
    Cyp3a4 => "CYP3A4.json",
    Cyp3a5 => "CYP3A5.json",
    Cyp4f2 => "CYP4F2.json",
    Dpyd => "DPYD.json",
    G6pd => "G6PD.json",
    HlaA => "HLA-A.json",
    HlaB => "HLA-B.json",
    Ifnl3 => "IFNL3.json",
    MtRnr1 => "MT-RNR1.json",
    Nat2 => "NAT2.json",
    Nudt15 => "NUDT15.json",
    Ryr1 => "RYR1.json",
    Slco1b1 => "SLCO1B1.json",
    Tpmt => "TPMT.json",
    Ugt1a1 => "UGT1A1.json",
    Vkorc1 => "VKORC1.json",
};

static KB: LazyLock<Vec<Result<GeneKb, KbError>>> = LazyLock::new(|| {
    Gene::ALL
        .into_iter()
        .map(|gene| {
            let text = DATA
                .iter()
                .find(|(g, _)| *g == gene)
                .map(|(_, t)| *t)
                .unwrap_or("");
            GeneKb::load(gene, text)
        })
        .collect()
});

/// The loaded table for `gene`, or why it could not be loaded.
pub(crate) fn gene_kb(gene: Gene) -> Result<&'static GeneKb, &'static KbError> {
    match KB.get(gene.index()) {
        Some(Ok(kb)) => Ok(kb),
        Some(Err(e)) => Err(e),
        // KB is built from Gene::ALL, so every index exists; keep a total function anyway.
        None => Err(&MISSING),
    }
}

static MISSING: KbError = KbError::WrongGene {
    gene: Gene::Abcg2,
    found: String::new(),
};

/// One gene's knowledge-base provenance, for `smr pgx kb`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KbEntry {
    pub gene: Gene,
    /// How the phenotype is derived ("function pair", "activity score", ...).
    pub model: &'static str,
    /// Guideline and table the data come from.
    pub source: &'static str,
    /// CPIC/ClinPGx or PharmCAT data release of the table.
    pub release: &'static str,
    /// The file the table was read from (URL, commit where known).
    pub source_file: &'static str,
    /// Number of named alleles in the table (0 for HLA, which uses nomenclature rules).
    pub alleles: usize,
    /// Interpretation caveats recorded with the data.
    pub notes: Vec<&'static str>,
}

/// Provenance of every gene's table, in [`Gene::ALL`] order. Genes whose data
/// failed to load are left out; [`check_knowledge_base`] says why.
pub fn kb_versions() -> Vec<KbEntry> {
    Gene::ALL
        .into_iter()
        .filter_map(|g| gene_kb(g).ok())
        .map(|kb| KbEntry {
            gene: kb.gene,
            model: kb.model.as_str(),
            source: &kb.source,
            release: &kb.release,
            source_file: &kb.source_file,
            alleles: kb.alleles.len(),
            notes: kb.notes.iter().map(String::as_str).collect(),
        })
        .collect()
}

/// Confirms every data file loaded; meant for start-up checks and tests.
pub fn check_knowledge_base() -> Result<(), KbError> {
    for gene in Gene::ALL {
        gene_kb(gene).map_err(Clone::clone)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_data_files_load() {
        assert_eq!(check_knowledge_base(), Ok(()));
        assert_eq!(kb_versions().len(), Gene::ALL.len());
        for e in kb_versions() {
            assert!(
                !e.source.is_empty() && !e.release.is_empty() && !e.source_file.is_empty(),
                "{} lacks provenance",
                e.gene
            );
        }
    }

    #[test]
    fn natural_order_matches_cpic() {
        let mut v = vec![
            "*10",
            "*3B",
            "*2",
            "*80+*28",
            "*80",
            "*3A",
            "*1",
            "Reference",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            [
                "Reference",
                "*1",
                "*2",
                "*3A",
                "*3B",
                "*10",
                "*80",
                "*80+*28"
            ]
        );
        let mut c = vec!["c.3257G>A", "c.520C>T", "Reference"];
        c.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(c, ["Reference", "c.520C>T", "c.3257G>A"]);
    }

    #[test]
    fn derived_aliases() {
        let Ok(dpyd) = gene_kb(Gene::Dpyd) else {
            panic!("DPYD failed to load")
        };
        assert_eq!(dpyd.find("*2A"), dpyd.find("c.1905+1G>A (*2A)"));
        assert_eq!(dpyd.find("c.1905+1G>A"), dpyd.find("c.1905+1G>A (*2A)"));
        assert!(dpyd.find("*2A").is_some());
        assert_eq!(dpyd.find("hapb3"), dpyd.find("HapB3"));
        let Ok(mt) = gene_kb(Gene::MtRnr1) else {
            panic!("MT-RNR1 failed to load")
        };
        assert!(mt.find("1555A>G").is_some());
        let Ok(g6pd) = gene_kb(Gene::G6pd) else {
            panic!("G6PD failed to load")
        };
        assert!(g6pd.find("Taiwan-Hakka").is_some());
        assert_eq!(g6pd.find("Mediterranean"), g6pd.find("Dallas"));
    }

    #[test]
    fn bad_files_are_errors_not_panics() {
        assert!(matches!(
            GeneKb::load(Gene::Tpmt, "{"),
            Err(KbError::Json { .. })
        ));
        let wrong = r#"{"gene":"NUDT15","model":"function_pair","source":"s","release":"v","source_file":"https://x"}"#;
        assert!(matches!(
            GeneKb::load(Gene::Tpmt, wrong),
            Err(KbError::WrongGene { .. })
        ));
        let bad_rule = r#"{"gene":"TPMT","model":"function_pair","source":"s","release":"v","source_file":"https://x",
            "allele_groups":[{"function":"Normal function","alleles":["*1"]}],
            "pair_rules":[{"pair":["Normal function","Typo function"],"phenotype":"x"}]}"#;
        assert!(matches!(
            GeneKb::load(Gene::Tpmt, bad_rule),
            Err(KbError::RuleFunction { .. })
        ));
    }

    const HEAD: &str = r#""gene":"TPMT","model":"function_pair","source":"s","release":"v","source_file":"https://x""#;

    fn load_err(body: &str) -> String {
        match GeneKb::load(Gene::Tpmt, &format!("{{{HEAD},{body}}}")) {
            Ok(_) => panic!("expected an error for {body}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bad_entries_name_the_file_and_the_entry() {
        let e = load_err(r#""allele_groups":[{"function":"Normal fuction","alleles":["*1"]}]"#);
        assert!(
            e.starts_with("data/TPMT.json:") && e.contains("'Normal fuction'"),
            "{e}"
        );
        let e = load_err(
            r#""allele_groups":[{"function":"Normal function","alleles":["*1"]},
                {"function":"No function","alleles":["*3A","*1"]}]"#,
        );
        assert!(
            e.starts_with("data/TPMT.json:") && e.contains("'*1' listed twice"),
            "{e}"
        );
        let e = load_err(
            r#""allele_groups":[{"function":"Normal function","alleles":["*1"]}],
                "aliases":{"*3":"*3A"}"#,
        );
        assert!(e.contains("unknown allele '*3A'"), "{e}");
        let e = load_err(
            r#""allele_groups":[{"function":"Normal function","alleles":["*1"]}],
                "alleles_of_interest":["*2"]"#,
        );
        assert!(e.contains("names '*2'"), "{e}");
        let e = load_err(
            r#""allele_groups":[{"function":"Normal function","alleles":["*1"]}],
                "pair_rules":[{"pair":["Normal function","No function"],"phenotype":"x"}]"#,
        );
        assert!(e.contains("function 'No function'"), "{e}");
    }

    #[test]
    fn missing_provenance_names_the_field() {
        for (text, field) in [
            (
                r#"{"gene":"TPMT","model":"function_pair","source":"s","source_file":"https://x"}"#,
                "'release'",
            ),
            (
                r#"{"gene":"TPMT","model":"function_pair","release":"v","source_file":"https://x"}"#,
                "'source'",
            ),
            (
                r#"{"gene":"TPMT","model":"function_pair","source":"s","release":"v"}"#,
                "'source_file'",
            ),
            (
                r#"{"gene":"TPMT","model":"function_pair","source":"s","release":" ","source_file":"https://x"}"#,
                "'release'",
            ),
            (
                r#"{"gene":"TPMT","model":"function_pair","source":"s","release":"v","source_file":"a file"}"#,
                "no https:// URL",
            ),
        ] {
            let e = match GeneKb::load(Gene::Tpmt, text) {
                Ok(_) => panic!("expected an error for {text}"),
                Err(e) => e.to_string(),
            };
            assert!(e.starts_with("data/TPMT.json:") && e.contains(field), "{e}");
        }
    }
}
