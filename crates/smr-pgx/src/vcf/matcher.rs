//! Named-allele matching: which pair of named alleles explains a sample's genotypes.
//!
//! The semantics follow PharmCAT's NamedAlleleMatcher with its default settings:
//! a named allele is a full haplotype over the gene's defining positions, cells not
//! part of its definition are expected to carry the reference base, single-letter
//! IUPAC codes match any base they stand for, and a pair is scored by the number of
//! positions the two definitions name (more specific pairs win). Positions missing
//! from the VCF are dropped from every definition; an allele whose whole definition
//! is missing cannot be called and is reported as such.
//!
//! Unphased genotypes are matched position by position (any orientation); phased
//! genotypes must keep one orientation within a phase set. Both are checked with
//! bit sets so that all pairs of up to ~90 alleles cost microseconds.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Serialize;

use super::definitions::GeneDefinition;
use super::reader::Observed;
use crate::{Gene, Interpretation, interpret};

/// A defining position the VCF did not cover (absent, or no-called).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingPosition {
    pub chromosome: String,
    pub position: u64,
    pub rsid: Option<String>,
}

/// One gene's call for one sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GeneCall {
    pub gene: Gene,
    /// Best-scoring diplotypes (haplotype names joined by `/` in natural name
    /// order, `*2/*17`); several when the data cannot tell them apart; empty = no call.
    /// A haploid call has a single name.
    pub diplotypes: Vec<String>,
    /// Score of the calls in `diplotypes` (positions named by the two definitions).
    pub score: Option<usize>,
    /// Every available position was phased (`|`).
    pub phased: bool,
    /// Every available position had a haploid GT (chrX in males, chrM).
    pub haploid: bool,
    /// More than one diplotype fits equally well.
    pub ambiguous: bool,
    /// Called from fewer than all defining positions (see `missing_positions`).
    pub partial: bool,
    pub missing_positions: Vec<MissingPosition>,
    /// Defining positions with a usable genotype.
    pub matched_positions: usize,
    pub total_positions: usize,
    /// Alleles that name a variant at a missing position and fit the rest of the
    /// data (or have no available position at all): the call cannot rule them out.
    pub unassessed_alleles: Vec<String>,
    pub notes: Vec<String>,
}

impl GeneCall {
    pub fn is_no_call(&self) -> bool {
        self.diplotypes.is_empty()
    }

    /// The CPIC interpretation of the top diplotype, `None` when there is no call.
    ///
    /// When several diplotypes tie, the top one is only trusted if every tied
    /// diplotype gives the same phenotype; otherwise the result is Indeterminate,
    /// so an ambiguous call never turns into a confident phenotype.
    pub fn interpret_top(&self) -> Option<Interpretation> {
        let top = self.diplotypes.first()?;
        let mut first = interpret(self.gene, top);
        let all_agree = self.diplotypes[1..].iter().all(|d| {
            let other = interpret(self.gene, d);
            other.phenotype == first.phenotype && other.activity_score == first.activity_score
        });
        if !all_agree {
            first.phenotype = crate::Phenotype::Indeterminate {
                reason: format!(
                    "the VCF fits several {} diplotypes with different phenotypes: {}",
                    self.gene,
                    self.diplotypes.join(", ")
                ),
            };
            first.lookup_key = "Indeterminate".to_string();
        }
        Some(first)
    }
}

/// Fixed-width bit set over the available positions of one gene.
#[derive(Debug, Clone)]
struct Bits(Vec<u64>);

impl Bits {
    fn zeros(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64).max(1)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
}

const IUPAC: [(u8, &str); 11] = [
    (b'R', "AG"),
    (b'Y', "CT"),
    (b'S', "GC"),
    (b'W', "AT"),
    (b'K', "GT"),
    (b'M', "AC"),
    (b'B', "CGT"),
    (b'D', "AGT"),
    (b'H', "ACT"),
    (b'V', "ACG"),
    (b'N', "ACGT"),
];

/// Does a definition cell accept an observed allele?
fn accepts(cell: &str, observed: &str) -> bool {
    if cell.eq_ignore_ascii_case(observed) {
        return true;
    }
    if let ([c], [o]) = (cell.as_bytes(), observed.as_bytes())
        && let Some((_, bases)) = IUPAC
            .iter()
            .find(|(code, _)| code == &c.to_ascii_uppercase())
    {
        return bases.as_bytes().contains(&o.to_ascii_uppercase());
    }
    false
}

/// Natural order for allele names: `*2` < `*10`; digit runs compare as numbers.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let i = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let j = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (&x[..i], &y[..j]);
                let na = trim_zeros(na);
                let nb = trim_zeros(nb);
                let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if ord != Ordering::Equal {
                    return ord;
                }
                x = &x[i..];
                y = &y[j..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let z = digits.iter().take_while(|c| **c == b'0').count();
    &digits[z.min(digits.len().saturating_sub(1))..]
}

/// A candidate allele restricted to the available positions.
struct Candidate<'a> {
    name: &'a str,
    score: usize,
    /// Bit j: accepts the first observed allele at available position j.
    first: Bits,
    /// Bit j: accepts the second observed allele (= the first when haploid).
    second: Bits,
}

/// Match one gene for one sample. `observed` is aligned with `def.positions`.
pub fn call_gene(
    def: &GeneDefinition,
    observed: &[Option<Observed>],
    reader_notes: &[String],
) -> GeneCall {
    let total = def.positions.len();
    let mut notes: Vec<String> = reader_notes.to_vec();
    let mut missing = Vec::new();
    // (definition position index, first allele, second allele, phase group)
    let mut available: Vec<(usize, &str, &str, Option<&Observed>)> = Vec::new();
    let mut any_diploid = false;
    let mut any_haploid = false;
    for (p, pos) in def.positions.iter().enumerate() {
        let obs = observed.get(p).and_then(Option::as_ref);
        let calls: Option<Vec<&str>> =
            obs.and_then(|o| o.alleles.iter().map(|a| a.as_deref()).collect());
        let (Some(o), Some(calls)) = (obs, calls) else {
            if obs.is_some_and(|o| !o.alleles.iter().all(Option::is_none)) {
                // A half call (./1) is not enough to place either haplotype.
                notes.push(format!(
                    "{}: partial genotype treated as missing",
                    pos.label()
                ));
            }
            missing.push(MissingPosition {
                chromosome: pos.chromosome.clone(),
                position: pos.position,
                rsid: pos.rsid.clone(),
            });
            continue;
        };
        if !o.vcf_ref.eq_ignore_ascii_case(&pos.reference) {
            notes.push(format!(
                "{}: VCF REF '{}' differs from the definition's '{}' (different normalisation or build?)",
                pos.label(),
                o.vcf_ref,
                pos.reference
            ));
        }
        if let Some(f) = &o.filter {
            notes.push(format!(
                "{}: FILTER is '{f}', genotype used anyway",
                pos.label()
            ));
        }
        for c in &calls {
            if !c.eq_ignore_ascii_case(&pos.reference)
                && !pos.alts.iter().any(|a| a.eq_ignore_ascii_case(c))
            {
                notes.push(format!(
                    "{}: allele '{c}' is not in any allele definition",
                    pos.label()
                ));
            }
        }
        match calls.as_slice() {
            [a] => {
                any_haploid = true;
                available.push((p, a, a, Some(o)));
            }
            [a, b] => {
                any_diploid = true;
                available.push((p, a, b, Some(o)));
            }
            _ => {
                missing.push(MissingPosition {
                    chromosome: pos.chromosome.clone(),
                    position: pos.position,
                    rsid: pos.rsid.clone(),
                });
            }
        }
    }
    let haploid = any_haploid && !any_diploid;
    if any_haploid && any_diploid {
        notes.push("mix of haploid and diploid genotypes; haploid ones read as homozygous".into());
    }
    let k = available.len();
    let phased = k > 0
        && available
            .iter()
            .all(|(_, a, b, o)| a == b || o.is_some_and(|o| o.phased));

    let mut call = GeneCall {
        gene: def.gene,
        diplotypes: Vec::new(),
        score: None,
        phased,
        haploid,
        ambiguous: false,
        partial: !missing.is_empty(),
        missing_positions: missing,
        matched_positions: k,
        total_positions: total,
        unassessed_alleles: Vec::new(),
        notes,
    };
    if k == 0 {
        call.notes.push(format!(
            "no call: none of the {total} {} defining positions has a genotype in the VCF",
            def.gene
        ));
        return call;
    }

    // Positions must be matched together when phased in one phase set; unphased
    // (and homozygous) positions can be oriented freely.
    let mut free = Bits::zeros(k);
    let mut groups: BTreeMap<&str, Bits> = BTreeMap::new();
    for (j, (_, a, b, o)) in available.iter().enumerate() {
        match o {
            Some(o) if o.phased && a != b => {
                let key = o.phase_set.as_deref().unwrap_or("");
                groups.entry(key).or_insert_with(|| Bits::zeros(k)).set(j);
            }
            _ => free.set(j),
        }
    }
    let groups: Vec<Bits> = groups.into_values().collect();

    let mut candidates = Vec::new();
    for allele in &def.alleles {
        let score = available
            .iter()
            .filter(|(p, ..)| allele.alleles[*p].is_some())
            .count();
        // A variant this allele names lies at a missing position: whether the sample
        // carries it cannot be seen, so a call without it is not proof of absence.
        let hidden = !allele.is_reference
            && def
                .positions
                .iter()
                .zip(&allele.alleles)
                .any(|(pos, cell)| {
                    cell.as_deref()
                        .is_some_and(|c| !c.eq_ignore_ascii_case(&pos.reference))
                        && call
                            .missing_positions
                            .iter()
                            .any(|m| m.position == pos.position)
                });
        if score == 0 {
            if hidden {
                call.unassessed_alleles.push(allele.name.clone());
            }
            continue;
        }
        let mut first = Bits::zeros(k);
        let mut second = Bits::zeros(k);
        let mut viable = true;
        for (j, (p, a, b, _)) in available.iter().enumerate() {
            let cell = allele.alleles[*p]
                .as_deref()
                .unwrap_or(def.positions[*p].reference.as_str());
            let (fa, fb) = (accepts(cell, a), accepts(cell, b));
            if fa {
                first.set(j);
            }
            if fb {
                second.set(j);
            }
            viable &= fa || fb;
        }
        if hidden && viable {
            call.unassessed_alleles.push(allele.name.clone());
        }
        if viable {
            candidates.push(Candidate {
                name: &allele.name,
                score,
                first,
                second,
            });
        }
    }

    let mut pairs: Vec<(usize, usize, usize)> = Vec::new();
    if haploid {
        for (i, c) in candidates.iter().enumerate() {
            if c.first
                .0
                .iter()
                .zip(&free.0)
                .all(|(f, need)| f & need == *need)
            {
                pairs.push((c.score, i, i));
            }
        }
    } else {
        for i in 0..candidates.len() {
            for j in i..candidates.len() {
                if pair_fits(&candidates[i], &candidates[j], &free, &groups) {
                    pairs.push((candidates[i].score + candidates[j].score, i, j));
                }
            }
        }
    }

    let Some(best) = pairs.iter().map(|p| p.0).max() else {
        let variant_positions: Vec<String> = available
            .iter()
            .filter(|(p, a, b, _)| {
                let r = &def.positions[*p].reference;
                !a.eq_ignore_ascii_case(r) || !b.eq_ignore_ascii_case(r)
            })
            .map(|(p, a, b, _)| format!("{} {a}/{b}", def.positions[*p].label()))
            .collect();
        call.notes.push(format!(
            "no call: no pair of named {} alleles explains the genotypes (non-reference genotypes: {})",
            def.gene,
            if variant_positions.is_empty() { "none".to_string() } else { variant_positions.join(", ") }
        ));
        return call;
    };
    let mut top: Vec<String> = pairs
        .iter()
        .filter(|p| p.0 == best)
        .map(|&(_, i, j)| {
            if haploid {
                return candidates[i].name.to_string();
            }
            // Natural name order within the pair, as PharmCAT prints (*17/*38).
            let (mut x, mut y) = (&candidates[i], &candidates[j]);
            if natural_cmp(x.name, y.name) == Ordering::Greater {
                std::mem::swap(&mut x, &mut y);
            }
            format!("{}/{}", x.name, y.name)
        })
        .collect();
    top.sort_by(|a, b| natural_cmp(a, b));
    top.dedup();
    call.ambiguous = top.len() > 1;
    call.diplotypes = top;
    call.score = Some(best);
    if call.partial {
        call.notes.push(format!(
            "partial call: {} of {total} defining positions missing{}",
            call.missing_positions.len(),
            if call.unassessed_alleles.is_empty() {
                String::new()
            } else {
                format!("; cannot rule out {}", call.unassessed_alleles.join(", "))
            }
        ));
    }
    call
}

/// Can candidates `x` (haplotype 1) and `y` (haplotype 2) together produce the
/// observed genotypes, in some orientation per free position and phase set?
fn pair_fits(x: &Candidate, y: &Candidate, free: &Bits, groups: &[Bits]) -> bool {
    // straight: x carries the first GT allele, y the second; crossed: the reverse.
    let words = free.0.len();
    for w in 0..words {
        let straight = x.first.0[w] & y.second.0[w];
        let crossed = x.second.0[w] & y.first.0[w];
        if (straight | crossed) & free.0[w] != free.0[w] {
            return false;
        }
    }
    groups.iter().all(|g| {
        let all = |f: &dyn Fn(usize) -> u64| (0..words).all(|w| f(w) & g.0[w] == g.0[w]);
        all(&|w| x.first.0[w] & y.second.0[w]) || all(&|w| x.second.0[w] & y.first.0[w])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iupac_and_exact() {
        assert!(accepts("Y", "T"));
        assert!(accepts("Y", "C"));
        assert!(!accepts("Y", "A"));
        assert!(accepts("CATAT", "CATAT"));
        assert!(!accepts("CAT", "CATAT"));
    }

    #[test]
    fn natural_order() {
        assert_eq!(natural_cmp("*2", "*10"), Ordering::Less);
        assert_eq!(natural_cmp("*10", "*2"), Ordering::Greater);
        assert_eq!(natural_cmp("*4A", "*4B"), Ordering::Less);
        assert_eq!(natural_cmp("*80", "*80+*28"), Ordering::Less);
    }
}
