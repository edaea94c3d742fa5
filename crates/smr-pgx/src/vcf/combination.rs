//! Combination and partial haplotypes: what PharmCAT's research "combination
//! mode" reports when no pair of named alleles explains the genotypes.
//!
//! Each way of phasing the heterozygous sites gives two haplotype sequences. A
//! haplotype is explained by the named alleles whose *defining* positions all
//! carry the allele's base (no reference is assumed elsewhere, unlike exact
//! matching), largest definitions first and without overlap; variant positions no
//! chosen allele accounts for become partials named by HGVS (`g.233760973C>T`).
//! A haplotype with no variant is the reference allele, which names every
//! available position and therefore scores highest, so the data is explained
//! with as few non-reference haplotypes as possible (PharmCAT's expected
//! `*1/[*6 + *27 + *28 + *80]` for four unphased heterozygous sites).

use std::cmp::Ordering;

use super::definitions::{DefinedPosition, GeneDefinition};
use super::matcher::{accepts, natural_cmp};

/// At most 2^(MAX_UNITS-1) phasings are tried; beyond that the call is refused
/// rather than slowing a whole-genome batch down.
pub(crate) const MAX_UNITS: usize = 14;

/// A defining position with a usable genotype.
pub(crate) struct Site<'a> {
    /// Index into `GeneDefinition::positions`.
    pub p: usize,
    pub a: &'a str,
    pub b: &'a str,
    /// Orientation unit: `None` = homozygous; heterozygous sites in one phase set
    /// share a unit, every unphased heterozygous site is a unit of its own.
    pub unit: Option<usize>,
}

/// How a haplotype made of several parts is written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// PharmCAT: `[*6 + *28 + g.233760973C>T]`, partials kept.
    Bracketed,
    /// SMR's interpreter for DPYD: `c.1627A>G (*5)+c.85T>C (*9A)`; undocumented
    /// variation is read as reference, as PharmCAT does for DPYD.
    PlusJoined,
}

struct Explanation {
    name: String,
    score: i64,
}

/// Best-scoring diplotypes over every phasing; `Err` says why none can be given.
pub(crate) fn best_diplotypes(
    def: &GeneDefinition,
    sites: &[Site],
    units: usize,
    style: Style,
) -> Result<(Vec<String>, i64), String> {
    if units > MAX_UNITS {
        return Err(format!(
            "{units} independently phased heterozygous units exceed the combination search limit of {MAX_UNITS}"
        ));
    }
    let mut site_of = vec![None; def.positions.len()];
    for (j, s) in sites.iter().enumerate() {
        site_of[s.p] = Some(j);
    }
    let phasings: u64 = 1 << units.saturating_sub(1);
    let mut best: Option<i64> = None;
    let mut names: Vec<String> = Vec::new();
    for mask in 0..phasings {
        // Unit 0 keeps its orientation: flipping every unit gives the same pair.
        let flipped = |u: usize| u > 0 && mask & (1 << (u - 1)) != 0;
        let (h1, h2): (Vec<&str>, Vec<&str>) = sites
            .iter()
            .map(|s| match s.unit {
                Some(u) if flipped(u) => (s.b, s.a),
                _ => (s.a, s.b),
            })
            .unzip();
        for x in explain(def, sites, &site_of, &h1, style) {
            for y in explain(def, sites, &site_of, &h2, style) {
                let score = x.score + y.score;
                let (p, q) = match natural_cmp(&x.name, &y.name) {
                    Ordering::Greater => (&y.name, &x.name),
                    _ => (&x.name, &y.name),
                };
                let name = format!("{p}/{q}");
                match best.map(|b| score.cmp(&b)) {
                    Some(Ordering::Less) => {}
                    Some(Ordering::Equal) => names.push(name),
                    _ => {
                        best = Some(score);
                        names = vec![name];
                    }
                }
            }
        }
    }
    names.sort_by(|a, b| natural_cmp(a, b));
    names.dedup();
    match best {
        Some(b) if !names.is_empty() => Ok((names, b)),
        _ => Err("no haplotype could be formed".into()),
    }
}

/// The alternative explanations of one haplotype sequence (`hap` aligned with `sites`).
fn explain(
    def: &GeneDefinition,
    sites: &[Site],
    site_of: &[Option<usize>],
    hap: &[&str],
    style: Style,
) -> Vec<Explanation> {
    let reference = def.reference_allele();
    let is_variant = |j: usize| !hap[j].eq_ignore_ascii_case(&def.positions[sites[j].p].reference);
    let variants: Vec<usize> = (0..sites.len()).filter(|&j| is_variant(j)).collect();
    if variants.is_empty() {
        return vec![Explanation {
            name: reference.name.clone(),
            score: sites.len() as i64,
        }];
    }
    // Alleles carried in full: every defining position present and matching, and
    // at least one of them a variant here (sites as indices into `sites`).
    let mut covered: Vec<(&str, Vec<usize>)> = def
        .alleles
        .iter()
        .filter(|a| !a.is_reference)
        .filter_map(|a| {
            let mut core = Vec::new();
            for (p, cell) in a.alleles.iter().enumerate() {
                // Missing positions are dropped from every definition, as in exact
                // matching; an allele with none left cannot be seen at all.
                let (Some(cell), Some(j)) = (cell, site_of[p]) else {
                    continue;
                };
                if !accepts(cell, hap[j]) {
                    return None;
                }
                core.push(j);
            }
            core.iter()
                .any(|&j| is_variant(j))
                .then_some((a.name.as_str(), core))
        })
        .collect();
    covered.sort_by(|x, y| y.1.len().cmp(&x.1.len()).then(natural_cmp(x.0, y.0)));

    // Largest definitions first; a smaller allele inside a chosen larger one is
    // part of it, while an equal-sized overlap is a genuine alternative.
    let overlaps = |k: usize, core: &[usize]| covered[k].1.iter().any(|j| core.contains(j));
    let mut combos: Vec<Vec<usize>> = Vec::new();
    for (i, (_, core)) in covered.iter().enumerate() {
        let mut placed = false;
        let mut inside_larger = false;
        // The first combination where `i` clashes with an equal-sized allele (two
        // alleles told apart only at a missing position): the alternative keeps
        // that combination's other members.
        let mut alternative: Option<Vec<usize>> = None;
        for combo in &mut combos {
            match combo.iter().find(|&&k| overlaps(k, core)) {
                None => {
                    combo.push(i);
                    placed = true;
                }
                Some(&k) if covered[k].1.len() != core.len() => inside_larger = true,
                Some(_) => {
                    if alternative.is_none() {
                        let mut alt: Vec<usize> = combo
                            .iter()
                            .copied()
                            .filter(|&k| !overlaps(k, core))
                            .collect();
                        alt.push(i);
                        alternative = Some(alt);
                    }
                }
            }
        }
        if !placed && !inside_larger {
            combos.push(alternative.unwrap_or_else(|| vec![i]));
        }
    }
    if combos.is_empty() {
        combos.push(Vec::new());
    }

    combos
        .into_iter()
        .map(|combo| {
            let mut parts: Vec<&str> = combo.iter().map(|&k| covered[k].0).collect();
            parts.sort_by(|a, b| natural_cmp(a, b));
            let named: usize = combo.iter().map(|&k| covered[k].1.len()).sum();
            let partials: Vec<String> = variants
                .iter()
                .filter(|j| !combo.iter().any(|&k| covered[k].1.contains(j)))
                .map(|&j| hgvs(&def.positions[sites[j].p], hap[j]))
                .collect();
            let mut pieces: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
            if style == Style::Bracketed {
                pieces.extend(partials.iter().cloned());
            }
            let name = match (pieces.len(), style) {
                (0, _) => reference.name.clone(),
                (1, _) => pieces.remove(0),
                (_, Style::Bracketed) => format!("[{}]", pieces.join(" + ")),
                (_, Style::PlusJoined) => pieces.join("+"),
            };
            // Prefer explaining more positions, fewer unexplained variants and
            // fewer pieces (PharmCAT's "longest" combination wins).
            let pieces_penalty = if parts.len() > 1 { parts.len() } else { 0 };
            Explanation {
                name,
                score: named as i64 - partials.len() as i64 - pieces_penalty as i64,
            }
        })
        .collect()
}

/// HGVS genomic name of a variant no named allele accounts for.
pub(crate) fn hgvs(pos: &DefinedPosition, alt: &str) -> String {
    let (p, r) = (pos.position, pos.reference.as_str());
    let len = |s: &str| s.len() as u64;
    if r.len() == 1 && alt.len() == 1 {
        format!("g.{p}{r}>{alt}")
    } else if !alt.is_empty() && r.len() > alt.len() && r.starts_with(alt) {
        let (start, end) = (p + len(alt), p + len(r) - 1);
        let gone = &r[alt.len()..];
        if start == end {
            format!("g.{start}del{gone}")
        } else {
            format!("g.{start}_{end}del{gone}")
        }
    } else if !r.is_empty() && alt.len() > r.len() && alt.starts_with(r) {
        let at = p + len(r) - 1;
        format!("g.{at}_{}ins{}", at + 1, &alt[r.len()..])
    } else {
        format!("g.{p}_{}delins{alt}", p + len(r).max(1) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(position: u64, reference: &str) -> DefinedPosition {
        DefinedPosition {
            chromosome: "chr2".into(),
            position,
            rsid: None,
            reference: reference.into(),
            alts: Vec::new(),
        }
    }

    #[test]
    fn hgvs_names() {
        assert_eq!(hgvs(&pos(233760973, "C"), "T"), "g.233760973C>T");
        assert_eq!(hgvs(&pos(100, "CAT"), "C"), "g.101_102delAT");
        assert_eq!(hgvs(&pos(100, "CA"), "C"), "g.101delA");
        assert_eq!(hgvs(&pos(100, "C"), "CTA"), "g.100_101insTA");
        assert_eq!(hgvs(&pos(100, "CA"), "GT"), "g.100_101delinsGT");
    }
}
