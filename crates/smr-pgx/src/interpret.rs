//! Diplotype → phenotype, the way CPIC does it.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::gene::Gene;
use crate::kb::{Cis, GeneKb, Model, gene_kb};
use crate::score::format_hundredths;

/// A CPIC phenotype, or an explicit statement that none can be assigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phenotype {
    /// The phenotype exactly as CPIC writes it ("Intermediate Metabolizer",
    /// "Decreased Function", "-1639 AG", "*57:01 positive", "Variable", ...).
    Called(Cow<'static, str>),
    /// No phenotype can be given: unknown or uncertain-function allele, notation
    /// that cannot be read, or a combination CPIC does not define. Never a silent
    /// normal.
    Indeterminate { reason: String },
}

impl Phenotype {
    /// The phenotype text; `"Indeterminate"` when none could be assigned.
    pub fn as_str(&self) -> &str {
        match self {
            Phenotype::Called(p) => p,
            Phenotype::Indeterminate { .. } => "Indeterminate",
        }
    }

    pub fn is_indeterminate(&self) -> bool {
        matches!(self, Phenotype::Indeterminate { .. })
    }
}

impl fmt::Display for Phenotype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of interpreting one gene's diplotype.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interpretation {
    pub gene: Gene,
    /// The diplotype in canonical spelling and CPIC order ("*1/*17", "*1/*1x2",
    /// "c.1905+1G>A (*2A)/Reference" → "Reference/c.1905+1G>A (*2A)"). When the text
    /// could not be read at all it is returned trimmed but otherwise unchanged.
    pub diplotype: String,
    pub phenotype: Phenotype,
    /// For activity-score genes (CYP2C9, CYP2D6, DPYD) the score as CPIC writes it:
    /// "1.0", "1.25", "≥4.0" when a copy number is open-ended (`xN`, `x≥3`), and
    /// "n/a" when an allele has no activity value or the diplotype cannot be read.
    /// `None` for genes that do not use activity scores.
    pub activity_score: Option<String>,
    /// What CPIC recommendation tables are keyed by: the activity score for
    /// activity-score genes, otherwise the phenotype text ("Indeterminate" when none).
    pub lookup_key: String,
}

impl Interpretation {
    /// For HLA results: `Some(true)` if `allele` (e.g. "*57:01") is reported
    /// positive, `Some(false)` if negative, `None` if the result says nothing about it.
    pub fn hla_carrier(&self, allele: &str) -> Option<bool> {
        let Phenotype::Called(text) = &self.phenotype else {
            return None;
        };
        text.split("; ").find_map(|part| {
            let (name, status) = part.rsplit_once(' ')?;
            (name == allele).then_some(status == "positive")
        })
    }
}

/// Interprets `diplotype` for `gene`. Never panics; anything that cannot be
/// interpreted with certainty gives [`Phenotype::Indeterminate`] with a reason.
///
/// Accepted notation, besides CPIC/PharmCAT allele names:
/// - an optional gene prefix on each allele ("CYP2C19*1/CYP2C19*2");
/// - ASCII case differences ("*3a");
/// - CYP2D6 copy numbers (`*1x2`, `*2xN`, `*1x≥3`) and tandems (`*36+*10`);
/// - DPYD variants by legacy name or rsID, phased (`A+B/C`) or unphased (`A;B;C`);
/// - SNP genotypes for VKORC1, ABCG2 and IFNL3 ("-1639 AG", "rs12979860 CT");
/// - HLA carrier results ("*57:01 positive") or two-field typings ("*15:02/*44:03");
/// - G6PD hemizygous ("A-", "A-/Y") or female ("B/A-") genotypes;
/// - MT-RNR1 variants with or without "m." ("1555A>G").
pub fn interpret(gene: Gene, diplotype: &str) -> Interpretation {
    let text = diplotype.trim();
    let kb = match gene_kb(gene) {
        Ok(kb) => kb,
        Err(e) => {
            return Interpretation {
                gene,
                diplotype: text.to_string(),
                phenotype: Phenotype::Indeterminate {
                    reason: format!("the {gene} knowledge base is unavailable: {e}"),
                },
                activity_score: None,
                lookup_key: "Indeterminate".to_string(),
            };
        }
    };
    if text.is_empty() {
        return indeterminate(kb, String::new(), format!("no {gene} diplotype given"));
    }
    match kb.model {
        Model::FunctionPair => function_pair(kb, text),
        Model::ActivityScore => activity_score(kb, text),
        Model::Hla => hla(kb, text),
        Model::XLinked => x_linked(kb, text),
        Model::Haploid => haploid(kb, text),
    }
}

/// Names of the alleles in a gene's table, in CPIC order (empty for HLA, which is
/// read by nomenclature rules rather than a table).
pub fn allele_names(gene: Gene) -> Vec<&'static str> {
    gene_kb(gene)
        .map(|kb| kb.alleles.iter().map(|a| a.name.as_str()).collect())
        .unwrap_or_default()
}

/// The CPIC function of an allele given by name or accepted alias, e.g.
/// `allele_function(Gene::Cyp2c19, "*17") == Some("Increased function")`.
pub fn allele_function(gene: Gene, allele: &str) -> Option<&'static str> {
    let kb = gene_kb(gene).ok()?;
    let i = kb.find(strip_gene_prefix(gene, allele.trim()))?;
    let f = kb.alleles.get(i)?.function;
    kb.functions.get(f).map(String::as_str)
}

fn indeterminate(kb: &GeneKb, diplotype: String, reason: String) -> Interpretation {
    let scored = kb.model == Model::ActivityScore;
    Interpretation {
        gene: kb.gene,
        diplotype,
        phenotype: Phenotype::Indeterminate { reason },
        activity_score: scored.then(|| "n/a".to_string()),
        lookup_key: if scored { "n/a" } else { "Indeterminate" }.to_string(),
    }
}

fn called(kb: &GeneKb, diplotype: String, phenotype: Cow<'static, str>) -> Interpretation {
    Interpretation {
        gene: kb.gene,
        diplotype,
        lookup_key: phenotype.to_string(),
        phenotype: Phenotype::Called(phenotype),
        activity_score: None,
    }
}

// ---------------------------------------------------------------------------
// Reading allele names

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Copies {
    Exact(u32),
    /// `xN` / `x≥3`: at least this many copies.
    AtLeast(u32),
}

#[derive(Debug, Clone, Copy)]
struct Part {
    allele: usize,
    copies: Copies,
}

/// One haplotype: a single allele (possibly duplicated) or several in cis.
#[derive(Debug, Clone)]
enum Side {
    One(Part),
    Cis(Vec<Part>),
}

impl Side {
    fn parts(&self) -> &[Part] {
        match self {
            Side::One(p) => std::slice::from_ref(p),
            Side::Cis(v) => v,
        }
    }

    fn label(&self, kb: &GeneKb) -> String {
        let mut out = String::new();
        for (i, p) in self.parts().iter().enumerate() {
            if i > 0 {
                out.push('+');
            }
            out.push_str(kb.alleles.get(p.allele).map_or("?", |a| a.name.as_str()));
            match p.copies {
                Copies::Exact(1) => {}
                Copies::Exact(n) => {
                    out.push('x');
                    out.push_str(&n.to_string());
                }
                Copies::AtLeast(n) => {
                    out.push_str("x≥");
                    out.push_str(&n.to_string());
                }
            }
        }
        out
    }

    fn sort_key(&self) -> (usize, Copies, usize) {
        let first = self
            .parts()
            .first()
            .map_or((usize::MAX, Copies::Exact(1)), |p| (p.allele, p.copies));
        (first.0, first.1, self.parts().len())
    }
}

fn strip_gene_prefix(gene: Gene, s: &str) -> &str {
    let sym = gene.symbol().as_bytes();
    let b = s.as_bytes();
    if b.len() > sym.len()
        && b.iter()
            .zip(sym)
            .all(|(x, y)| x.eq_ignore_ascii_case(y) || (*y == b'-' && *x == b'_'))
        && s.is_char_boundary(sym.len())
    {
        let rest = s[sym.len()..].trim_start();
        if !rest.is_empty() {
            return rest;
        }
    }
    s
}

fn unknown_allele(kb: &GeneKb, text: &str) -> String {
    format!(
        "{} allele '{}' is not in the CPIC allele table",
        kb.gene, text
    )
}

/// `*1x2` → (`*1`, Exact(2)); `*2xN`, `*1x≥3`, `*1x>=3` → AtLeast(3).
fn split_copies(t: &str) -> Option<(&str, Copies)> {
    let pos = t.rfind(['x', 'X', '×'])?;
    let marker_len = t[pos..].chars().next().map_or(1, char::len_utf8);
    let base = t[..pos].trim_end();
    let suffix = t[pos + marker_len..].trim();
    if base.is_empty() {
        return None;
    }
    let copies = if suffix.eq_ignore_ascii_case("n") {
        Copies::AtLeast(3)
    } else if let Some(n) = suffix
        .strip_prefix('≥')
        .or_else(|| suffix.strip_prefix(">="))
    {
        let n: u32 = n.trim().parse().ok()?;
        if !(2..=20).contains(&n) {
            return None;
        }
        Copies::AtLeast(n)
    } else {
        if suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u32 = suffix.parse().ok()?;
        // More than 20 copies of CYP2D6 has never been described; treat as a typo.
        if !(1..=20).contains(&n) {
            return None;
        }
        Copies::Exact(n)
    };
    Some((base, copies))
}

fn resolve_part(kb: &GeneKb, text: &str) -> Option<Part> {
    let t = strip_gene_prefix(kb.gene, text.trim());
    if let Some(allele) = kb.find(t) {
        return Some(Part {
            allele,
            copies: Copies::Exact(1),
        });
    }
    if kb.copy_number {
        let (base, copies) = split_copies(t)?;
        let allele = kb.find(base)?;
        return Some(Part { allele, copies });
    }
    None
}

/// Reads "A+B+C" where '+' may also occur inside names (DPYD "c.1905+1G>A",
/// UGT1A1 "*80+*28"): greedily takes the longest run of '+'-separated pieces that
/// names an allele, then continues after it.
fn resolve_cis(kb: &GeneKb, t: &str) -> Option<Vec<Part>> {
    let mut starts = vec![0];
    let mut ends = Vec::new();
    for (i, _) in t.match_indices('+') {
        ends.push(i);
        starts.push(i + 1);
    }
    ends.push(t.len());
    let mut parts = Vec::new();
    let mut i = 0;
    while i < starts.len() {
        let (j, part) = (i..starts.len())
            .rev()
            .find_map(|j| resolve_part(kb, t.get(starts[i]..ends[j])?).map(|p| (j, p)))?;
        parts.push(part);
        i = j + 1;
    }
    (parts.len() >= 2).then_some(parts)
}

fn resolve_side(kb: &GeneKb, raw: &str) -> Result<Side, String> {
    let t = strip_gene_prefix(kb.gene, raw.trim());
    if t.is_empty() {
        return Err(format!("empty {} allele", kb.gene));
    }
    if let Some(p) = resolve_part(kb, t) {
        return Ok(Side::One(p));
    }
    if kb.cis.is_some()
        && t.contains('+')
        && let Some(parts) = resolve_cis(kb, t)
    {
        return Ok(Side::Cis(parts));
    }
    Err(unknown_allele(kb, t))
}

/// Splits "A/B". Allele names may themselves contain '/' (G6PD "Telti/Kobe"), so
/// every '/' is tried and the first split whose halves both resolve wins.
fn split_two(kb: &GeneKb, text: &str) -> Result<(Side, Side), String> {
    let slashes = text.matches('/').count();
    if slashes == 0 {
        return Err(format!("expected two {} alleles written 'A/B'", kb.gene));
    }
    if slashes > 1 && !kb.slash_names {
        return Err(format!(
            "expected two {} alleles, found {}",
            kb.gene,
            slashes + 1
        ));
    }
    let mut first_error = None;
    for (i, _) in text.match_indices('/') {
        let (left, right) = (&text[..i], &text[i + 1..]);
        match (resolve_side(kb, left), resolve_side(kb, right)) {
            (Ok(a), Ok(b)) => return Ok((a, b)),
            (Err(e), _) | (_, Err(e)) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| unknown_allele(kb, text)))
}

/// "rs9923231 CT", "-1639 GG", "GT": a two-letter SNP genotype after an optional locus name.
fn split_genotype(kb: &GeneKb, text: &str) -> Option<(Side, Side)> {
    if kb.genotype_prefixes.is_empty() {
        return None;
    }
    let (prefix, token) = match text.rsplit_once(char::is_whitespace) {
        Some((p, t)) => (p.trim(), t),
        None => ("", text),
    };
    let prefix = strip_gene_prefix(kb.gene, prefix);
    let known_prefix = prefix.is_empty()
        || kb
            .genotype_prefixes
            .iter()
            .any(|p| p.eq_ignore_ascii_case(prefix))
        || kb
            .genotype_prefixes
            .iter()
            .any(|p| p.eq_ignore_ascii_case(prefix.trim_end_matches(':')));
    let b = token.as_bytes();
    // Nucleotides are written in capitals; "Ga" is an unknown allele name, not G/A.
    if !known_prefix || b.len() != 2 || !b.iter().all(u8::is_ascii_uppercase) {
        return None;
    }
    // Both letters from one strand's alphabet (and the prefix's, when it names one): "AC"
    // for VKORC1 mixes -1639 G/A with rs9923231 C/T and is not a genotype.
    if !kb.genotype_alphabets.is_empty() {
        let fits = |a: &crate::kb::GenotypeAlphabet| {
            b.iter().all(|c| a.letters.as_bytes().contains(c))
                && (prefix.is_empty()
                    || a.prefixes.iter().any(|p| {
                        p.eq_ignore_ascii_case(prefix)
                            || p.eq_ignore_ascii_case(prefix.trim_end_matches(':'))
                    }))
        };
        if !kb.genotype_alphabets.iter().any(fits) {
            return None;
        }
    }
    let one = |s: &str| {
        kb.find(s).map(|allele| {
            Side::One(Part {
                allele,
                copies: Copies::Exact(1),
            })
        })
    };
    Some((one(&token[..1])?, one(&token[1..])?))
}

/// Two haplotypes from "A/B" or a SNP genotype; a lone allele is an error because
/// a diploid gene needs both.
fn two_sides(kb: &GeneKb, text: &str) -> Result<(Side, Side), String> {
    if text.contains('/') {
        if let Ok(pair) = split_two(kb, text) {
            return Ok(pair);
        }
        if kb.find(text).is_none() {
            return split_two(kb, text);
        }
    }
    if let Some(pair) = split_genotype(kb, text) {
        return Ok(pair);
    }
    match resolve_side(kb, text) {
        Ok(_) => Err(format!(
            "{} is diploid: expected two alleles written 'A/B', got one ('{}')",
            kb.gene, text
        )),
        Err(e) => Err(e),
    }
}

fn ordered(a: Side, b: Side) -> (Side, Side) {
    if b.sort_key() < a.sort_key() {
        (b, a)
    } else {
        (a, b)
    }
}

fn pair_label(kb: &GeneKb, a: &Side, b: &Side) -> String {
    let mut s = a.label(kb);
    s.push('/');
    s.push_str(&b.label(kb));
    s
}

fn plain(side: &Side) -> Option<usize> {
    match side {
        Side::One(Part {
            allele,
            copies: Copies::Exact(1),
        }) => Some(*allele),
        _ => None,
    }
}

fn describe(kb: &GeneKb, allele: usize) -> String {
    match kb.alleles.get(allele) {
        Some(a) => format!(
            "{} ({})",
            a.name,
            kb.functions
                .get(a.function)
                .map_or("unknown function", String::as_str)
        ),
        None => "an unknown allele".to_string(),
    }
}

fn function_of(kb: &GeneKb, allele: usize) -> usize {
    kb.alleles.get(allele).map_or(usize::MAX, |a| a.function)
}

// ---------------------------------------------------------------------------
// Models

fn function_pair(kb: &'static GeneKb, text: &str) -> Interpretation {
    let (a, b) = match two_sides(kb, text) {
        Ok(pair) => ordered(pair.0, pair.1),
        Err(reason) => return indeterminate(kb, text.to_string(), reason),
    };
    let diplotype = pair_label(kb, &a, &b);
    let (Some(x), Some(y)) = (plain(&a), plain(&b)) else {
        let reason = format!(
            "{} phenotypes are defined for single alleles, not copy numbers or alleles in cis",
            kb.gene
        );
        return indeterminate(kb, diplotype, reason);
    };
    match kb.pair_phenotype(function_of(kb, x), function_of(kb, y)) {
        Some(p) => called(kb, diplotype, Cow::Borrowed(p)),
        None => {
            let reason = format!(
                "CPIC assigns no {} phenotype to {} with {}",
                kb.gene,
                describe(kb, x),
                describe(kb, y)
            );
            indeterminate(kb, diplotype, reason)
        }
    }
}

/// Activity in hundredths: `lo` is certain, `hi` is the upper bound (`None` when
/// an open-ended copy number makes it unbounded).
#[derive(Debug, Clone, Copy)]
struct Activity {
    lo: u32,
    hi: Option<u32>,
}

fn part_activity(kb: &GeneKb, p: &Part) -> Result<Activity, String> {
    let Some(allele) = kb.alleles.get(p.allele) else {
        return Err("an unknown allele".to_string());
    };
    let Some(value) = allele.activity else {
        return Err(format!(
            "CPIC gives {} no activity value",
            describe(kb, p.allele)
        ));
    };
    Ok(match p.copies {
        Copies::Exact(n) => Activity {
            lo: value * n,
            hi: Some(value * n),
        },
        // Extra copies of a no-function allele still add nothing.
        Copies::AtLeast(n) => Activity {
            lo: value * n,
            hi: (value == 0).then_some(0),
        },
    })
}

fn side_activity(kb: &GeneKb, side: &Side) -> Result<Activity, String> {
    let mut parts = side.parts().iter();
    let first = parts
        .next()
        .ok_or_else(|| "an empty haplotype".to_string())?;
    let mut acc = part_activity(kb, first)?;
    for p in parts {
        let next = part_activity(kb, p)?;
        acc = match kb.cis {
            Some(Cis::Min) => Activity {
                lo: acc.lo.min(next.lo),
                hi: match (acc.hi, next.hi) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (Some(a), None) | (None, Some(a)) => Some(a),
                    (None, None) => None,
                },
            },
            // Tandem arrangements (CYP2D6 *36+*10) add their parts' activity.
            Some(Cis::Sum) | None => Activity {
                lo: acc.lo + next.lo,
                hi: acc.hi.zip(next.hi).map(|(a, b)| a + b),
            },
        };
    }
    Ok(acc)
}

fn activity_score(kb: &'static GeneKb, text: &str) -> Interpretation {
    // DPYD unphased result: a ';'-separated variant list, scored by the two lowest.
    if kb.cis == Some(Cis::Min) && text.contains(';') && !text.contains('/') {
        return unphased_variants(kb, text);
    }
    let (a, b) = match two_sides(kb, text) {
        Ok(pair) => ordered(pair.0, pair.1),
        Err(reason) => return indeterminate(kb, text.to_string(), reason),
    };
    let diplotype = pair_label(kb, &a, &b);
    let total = side_activity(kb, &a).and_then(|x| {
        let y = side_activity(kb, &b)?;
        Ok(Activity {
            lo: x.lo + y.lo,
            hi: x.hi.zip(y.hi).map(|(p, q)| p + q),
        })
    });
    match total {
        Ok(total) => scored(kb, diplotype, total),
        Err(reason) => indeterminate(kb, diplotype, reason),
    }
}

/// CPIC DPYD 2017: with unknown phase, the gene activity score is the sum of the two
/// lowest variant activity values (assuming they lie on different haplotypes).
fn unphased_variants(kb: &'static GeneKb, text: &str) -> Interpretation {
    let mut parts = Vec::new();
    for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        match resolve_part(kb, item) {
            Some(p) => parts.push(p),
            None => return indeterminate(kb, text.to_string(), unknown_allele(kb, item)),
        }
    }
    parts.sort_by_key(|p| p.allele);
    let diplotype = parts
        .iter()
        .map(|p| Side::One(*p).label(kb))
        .collect::<Vec<_>>()
        .join(";");
    let mut values = Vec::with_capacity(parts.len() + 2);
    for p in &parts {
        match part_activity(kb, p) {
            Ok(a) => values.push(a.lo),
            Err(reason) => return indeterminate(kb, diplotype, reason),
        }
    }
    let reference = kb
        .find("Reference")
        .and_then(|i| kb.alleles.get(i)?.activity)
        .unwrap_or(100);
    while values.len() < 2 {
        values.push(reference);
    }
    values.sort_unstable();
    let lo = values[0] + values[1];
    scored(kb, diplotype, Activity { lo, hi: Some(lo) })
}

fn scored(kb: &'static GeneKb, diplotype: String, total: Activity) -> Interpretation {
    let exact = total.hi == Some(total.lo);
    let score = if exact {
        format_hundredths(total.lo)
    } else {
        format!("≥{}", format_hundredths(total.lo))
    };
    let band = kb.band_for(total.lo);
    // An open-ended score is only certain when every larger value stays in the band.
    let certain = band.is_some_and(|b| match (b.max, total.hi) {
        (None, _) => true,
        (Some(max), Some(hi)) => hi <= max,
        (Some(_), None) => false,
    });
    let phenotype = match band {
        Some(b) if certain => Phenotype::Called(Cow::Borrowed(b.phenotype.as_str())),
        Some(_) => Phenotype::Indeterminate {
            reason: format!(
                "{} activity score {score} spans more than one phenotype; the exact copy number is needed",
                kb.gene
            ),
        },
        None => Phenotype::Indeterminate {
            reason: format!(
                "{} activity score {score} is outside CPIC's phenotype ranges",
                kb.gene
            ),
        },
    };
    Interpretation {
        gene: kb.gene,
        diplotype,
        phenotype,
        lookup_key: score.clone(),
        activity_score: Some(score),
    }
}

// HLA -----------------------------------------------------------------------

/// A typed HLA allele at ≥2-field resolution.
struct HlaAllele<'a> {
    first: &'a str,
    second: &'a str,
    text: &'a str,
}

impl HlaAllele<'_> {
    fn two_field(&self) -> String {
        format!("*{}:{}", self.first, self.second)
    }
}

fn parse_hla<'a>(gene: Gene, raw: &'a str) -> Result<HlaAllele<'a>, String> {
    let t = strip_gene_prefix(gene, raw.trim());
    let body = t.strip_prefix('*').unwrap_or(t);
    let (fields_text, suffix) = match body.as_bytes().last() {
        Some(c) if c.is_ascii_alphabetic() => {
            (&body[..body.len() - 1], Some(c.to_ascii_uppercase()))
        }
        _ => (body, None),
    };
    let fields: Vec<&str> = fields_text.split(':').collect();
    let well_formed = (1..=4).contains(&fields.len())
        && fields
            .iter()
            .all(|f| (2..=4).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()))
        && suffix.is_none_or(|s| b"NLSCAQGP".contains(&s));
    if !well_formed {
        return Err(format!(
            "'{t}' is not a {gene} allele name (expected e.g. *57:01)"
        ));
    }
    if fields.len() < 2 {
        return Err(format!(
            "{gene}*{} is a one-field (serological) type; two-field resolution is needed",
            fields[0]
        ));
    }
    if suffix == Some(b'N') {
        return Err(format!(
            "{gene}{t} is a null (non-expressed) allele; carrier status cannot be read from it"
        ));
    }
    Ok(HlaAllele {
        first: fields[0],
        second: fields[1],
        text: body,
    })
}

fn hla_status_word(word: &str) -> Option<bool> {
    const POSITIVE: [&str; 5] = ["positive", "pos", "present", "detected", "carrier"];
    const NEGATIVE: [&str; 5] = ["negative", "neg", "absent", "not detected", "non-carrier"];
    if POSITIVE.iter().any(|w| w.eq_ignore_ascii_case(word)) {
        Some(true)
    } else if NEGATIVE.iter().any(|w| w.eq_ignore_ascii_case(word)) {
        Some(false)
    } else {
        None
    }
}

fn hla(kb: &'static GeneKb, text: &str) -> Interpretation {
    let t = strip_gene_prefix(kb.gene, text);
    // "*57:01 positive" / "*57:01 not detected"
    let status = t
        .strip_suffix_ci("not detected")
        .map(|rest| (rest, Some(false)))
        .or_else(|| {
            t.rsplit_once(char::is_whitespace)
                .map(|(rest, w)| (rest, hla_status_word(w)))
        });
    if let Some((allele_text, Some(positive))) = status
        && !allele_text.contains('/')
    {
        let allele = match parse_hla(kb.gene, allele_text) {
            Ok(a) => a,
            Err(reason) => return indeterminate(kb, text.to_string(), reason),
        };
        let name = allele.two_field();
        let word = if positive { "positive" } else { "negative" };
        let result = format!("{name} {word}");
        if !kb.alleles_of_interest.contains(&name) {
            let reason = format!(
                "CPIC gives no {} guidance on {name}; alleles of interest are {}",
                kb.gene,
                kb.alleles_of_interest.join(", ")
            );
            return indeterminate(kb, result, reason);
        }
        return called(kb, result.clone(), Cow::Owned(result));
    }
    let Some((left, right)) = t.split_once('/') else {
        let reason = format!(
            "expected a {} typing 'A/B' (e.g. *15:02/*44:03) or a carrier result (e.g. '{} positive')",
            kb.gene,
            kb.alleles_of_interest
                .first()
                .map_or("*57:01", String::as_str)
        );
        return indeterminate(kb, text.to_string(), reason);
    };
    let (a, b) = match (parse_hla(kb.gene, left), parse_hla(kb.gene, right)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(reason), _) | (_, Err(reason)) => return indeterminate(kb, text.to_string(), reason),
    };
    let (a_two, b_two) = (a.two_field(), b.two_field());
    let mut sides = [(a_two.clone(), a.text), (b_two.clone(), b.text)];
    sides.sort();
    let diplotype = format!("*{}/*{}", sides[0].1, sides[1].1);
    let phenotype = kb
        .alleles_of_interest
        .iter()
        .map(|aoi| {
            let positive = *aoi == a_two || *aoi == b_two;
            format!("{aoi} {}", if positive { "positive" } else { "negative" })
        })
        .collect::<Vec<_>>()
        .join("; ");
    called(kb, diplotype, Cow::Owned(phenotype))
}

trait StripSuffixCi {
    fn strip_suffix_ci(&self, suffix: &str) -> Option<&str>;
}

impl StripSuffixCi for str {
    fn strip_suffix_ci(&self, suffix: &str) -> Option<&str> {
        let cut = self.len().checked_sub(suffix.len())?;
        let tail = self.get(cut..)?;
        tail.eq_ignore_ascii_case(suffix)
            .then(|| self[..cut].trim_end())
    }
}

// X-linked and haploid ------------------------------------------------------------

fn single_allele(kb: &'static GeneKb, side: &Side, context: &str) -> Interpretation {
    let label = side.label(kb);
    let Some(allele) = plain(side) else {
        return indeterminate(
            kb,
            label,
            format!("{} alleles cannot be combined or duplicated", kb.gene),
        );
    };
    match kb.single_phenotype(function_of(kb, allele)) {
        Some(p) => called(kb, label, Cow::Borrowed(p)),
        None => {
            let reason = format!(
                "CPIC assigns no {context} {} phenotype to {}",
                kb.gene,
                describe(kb, allele)
            );
            indeterminate(kb, label, reason)
        }
    }
}

fn x_linked(kb: &'static GeneKb, text: &str) -> Interpretation {
    // "A-/Y" or "A-/-": hemizygous written with the Y chromosome.
    let hemizygous = text
        .strip_suffix_ci("/Y")
        .or_else(|| text.strip_suffix("/-"))
        .map(str::trim_end);
    if let Some(allele) = hemizygous {
        return match resolve_side(kb, allele) {
            Ok(side) => single_allele(kb, &side, "hemizygous"),
            Err(reason) => indeterminate(kb, text.to_string(), reason),
        };
    }
    // A whole-string allele name is a hemizygous male (checked first because some
    // G6PD names contain '/').
    if let Ok(side) = resolve_side(kb, text) {
        return single_allele(kb, &side, "hemizygous");
    }
    function_pair(kb, text)
}

fn haploid(kb: &'static GeneKb, text: &str) -> Interpretation {
    if let Ok(side) = resolve_side(kb, text) {
        return single_allele(kb, &side, "");
    }
    // "m.1555A>G/m.1555A>G": the same variant written twice is still one genome.
    if let Ok((a, b)) = split_two(kb, text) {
        if plain(&a).is_some() && plain(&a) == plain(&b) {
            return single_allele(kb, &a, "");
        }
        let reason = format!(
            "{} is mitochondrial (one allele per person); got two different alleles",
            kb.gene
        );
        return indeterminate(kb, pair_label(kb, &a, &b), reason);
    }
    let reason = resolve_side(kb, text)
        .err()
        .unwrap_or_else(|| unknown_allele(kb, text));
    indeterminate(kb, text.to_string(), reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_suffixes() {
        assert_eq!(split_copies("*1x2"), Some(("*1", Copies::Exact(2))));
        assert_eq!(split_copies("*2xN"), Some(("*2", Copies::AtLeast(3))));
        assert_eq!(split_copies("*1x≥3"), Some(("*1", Copies::AtLeast(3))));
        assert_eq!(split_copies("*1×>=3"), Some(("*1", Copies::AtLeast(3))));
        assert_eq!(split_copies("*1x0"), None);
        assert_eq!(split_copies("*1x"), None);
        assert_eq!(split_copies("x2"), None);
    }

    #[test]
    fn gene_prefix_is_stripped() {
        assert_eq!(strip_gene_prefix(Gene::Cyp2c19, "CYP2C19*2"), "*2");
        assert_eq!(strip_gene_prefix(Gene::HlaB, "HLA_B*57:01"), "*57:01");
        assert_eq!(strip_gene_prefix(Gene::Cyp2c19, "CYP2C19"), "CYP2C19");
        assert_eq!(strip_gene_prefix(Gene::Cyp2c19, "*2"), "*2");
    }
}
