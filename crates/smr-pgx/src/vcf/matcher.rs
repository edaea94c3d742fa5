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

use super::combination::{self, Site, Style};
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
    /// The diplotypes name combinations of named alleles or partial (HGVS-named)
    /// variants (PharmCAT's research combination mode, see [`CallOptions`]): CPIC
    /// assigns no phenotype to them. Never set for DPYD, whose variant-wise calls
    /// the interpreter scores.
    pub combination: bool,
    pub notes: Vec<String>,
}

/// How far matching goes beyond PharmCAT's default named-allele matching.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// When no pair of named alleles fits, report combination and partial
    /// haplotypes (`*1/[*6 + *80]`, `*6/[*6 + g.233760973C>T]`) instead of a no-call,
    /// as PharmCAT does with `-research combinations`. Off by default, like
    /// PharmCAT: such calls have no CPIC phenotype. When off, the no-call note
    /// still says what combination mode would report.
    pub combinations: bool,
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
        if self.combination {
            // A combination or partial haplotype is not a CPIC allele, even when the
            // interpreter could read its parts: the function of the whole is unknown.
            first.phenotype = crate::Phenotype::Indeterminate {
                reason: format!(
                    "{} {top} names a combination of alleles or an undocumented variant, which CPIC assigns no phenotype",
                    self.gene
                ),
            };
            first.lookup_key = "Indeterminate".to_string();
            return Some(first);
        }
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
pub(crate) fn accepts(cell: &str, observed: &str) -> bool {
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

/// Match one gene for one sample with PharmCAT's default settings. `observed` is
/// aligned with `def.positions`.
pub fn call_gene(
    def: &GeneDefinition,
    observed: &[Option<Observed>],
    reader_notes: &[String],
) -> GeneCall {
    call_gene_with(def, observed, reader_notes, &CallOptions::default())
}

/// [`call_gene`] with explicit [`CallOptions`].
pub fn call_gene_with(
    def: &GeneDefinition,
    observed: &[Option<Observed>],
    reader_notes: &[String],
    options: &CallOptions,
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
        combination: false,
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

    let (sites, units) = orientation_sites(&available);
    if def.gene == Gene::Dpyd && !haploid && units > 1 {
        // PharmCAT's DPYD rule: without phase, list the variants found; CPIC then
        // scores the two lowest-function ones (the interpreter's `A;B;C` form).
        dpyd_variant_list(def, &sites, units, &mut call);
    } else if let Some(best) = pairs.iter().map(|p| p.0).max() {
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
    } else {
        no_pair(def, &available, &sites, units, haploid, options, &mut call);
    }
    if call.partial && !call.is_no_call() {
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

type AvailableSite<'a> = (usize, &'a str, &'a str, Option<&'a Observed>);

/// Orientation units for combination matching: the same grouping as the exact
/// matcher (one unit per phase set, one per unphased heterozygous site).
fn orientation_sites<'a>(available: &[AvailableSite<'a>]) -> (Vec<Site<'a>>, usize) {
    let mut sets: BTreeMap<&str, usize> = BTreeMap::new();
    let mut units = 0;
    let mut sites = Vec::with_capacity(available.len());
    for &(p, a, b, o) in available {
        let unit = if a == b {
            None
        } else if let Some(o) = o.filter(|o| o.phased) {
            let key = o.phase_set.as_deref().unwrap_or("");
            Some(*sets.entry(key).or_insert_with(|| {
                units += 1;
                units - 1
            }))
        } else {
            units += 1;
            Some(units - 1)
        };
        sites.push(Site { p, a, b, unit });
    }
    (sites, units)
}

/// No pair of named alleles fits: combination/partial haplotypes when asked for
/// (always for DPYD, as PharmCAT), otherwise an explicit no-call saying what
/// combination mode would have reported.
fn no_pair(
    def: &GeneDefinition,
    available: &[AvailableSite],
    sites: &[Site],
    units: usize,
    haploid: bool,
    options: &CallOptions,
    call: &mut GeneCall,
) {
    let variant_positions: Vec<String> = available
        .iter()
        .filter(|(p, a, b, _)| {
            let r = &def.positions[*p].reference;
            !a.eq_ignore_ascii_case(r) || !b.eq_ignore_ascii_case(r)
        })
        .map(|(p, a, b, _)| format!("{} {a}/{b}", def.positions[*p].label()))
        .collect();
    let reason = format!(
        "no call: no pair of named {} alleles explains the genotypes (non-reference genotypes: {})",
        def.gene,
        if variant_positions.is_empty() {
            "none".to_string()
        } else {
            variant_positions.join(", ")
        }
    );
    if haploid {
        call.notes.push(reason);
        return;
    }
    let dpyd = def.gene == Gene::Dpyd;
    let style = if dpyd {
        Style::PlusJoined
    } else {
        Style::Bracketed
    };
    match combination::best_diplotypes(def, sites, units, style) {
        Ok((names, _)) if dpyd || options.combinations => {
            call.ambiguous = names.len() > 1;
            call.combination = !dpyd;
            call.notes.push(if dpyd {
                "DPYD: no exact diplotype; each haplotype is the named variants it carries, undocumented variation read as reference (PharmCAT's DPYD rule)".to_string()
            } else {
                format!(
                    "combination call: no pair of named {} alleles fits, so haplotypes are combinations of named alleles and/or undocumented variants (PharmCAT research combination mode); no CPIC phenotype",
                    def.gene
                )
            });
            call.diplotypes = names;
        }
        Ok((names, _)) => call.notes.push(format!(
            "{reason}; combination mode (CallOptions::combinations) would report {}",
            names.join(" or ")
        )),
        Err(why) => call
            .notes
            .push(format!("{reason}; no combination call either: {why}")),
    }
}

/// DPYD without phase: every named variant carried, once per copy.
fn dpyd_variant_list(def: &GeneDefinition, sites: &[Site], units: usize, call: &mut GeneCall) {
    let mut site_of = vec![None; def.positions.len()];
    for s in sites {
        site_of[s.p] = Some(s);
    }
    let mut found: Vec<&str> = Vec::new();
    for allele in def.alleles.iter().filter(|a| !a.is_reference) {
        let mut copies = 2u8;
        let mut names_variant = false;
        for (p, cell) in allele.alleles.iter().enumerate() {
            let Some(cell) = cell.as_deref() else {
                continue;
            };
            let Some(s) = site_of[p] else {
                copies = 0;
                break;
            };
            names_variant |= !cell.eq_ignore_ascii_case(&def.positions[p].reference);
            copies = copies.min(u8::from(accepts(cell, s.a)) + u8::from(accepts(cell, s.b)));
        }
        if names_variant {
            for _ in 0..copies {
                found.push(&allele.name);
            }
        }
    }
    found.sort_by(|a, b| natural_cmp(a, b));
    let reference = &def.reference_allele().name;
    call.diplotypes = vec![match found.as_slice() {
        [] => format!("{reference}/{reference}"),
        [one] => format!("{reference}/{one}"),
        many => many.join(";"),
    }];
    call.notes.push(format!(
        "DPYD: {units} heterozygous positions without phase, so the variants are listed rather than paired; CPIC scores the two lowest-function ones{}",
        if call.notes.iter().any(|n| n.contains("is not in any allele definition")) {
            "; undocumented variation read as reference (PharmCAT's DPYD rule)"
        } else {
            ""
        }
    ));
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
