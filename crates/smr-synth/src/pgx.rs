//! Pharmacogenomic genotypes: a four-gene panel (CYP2C19, CYP2D6, CYP2C9, VKORC1) with allele
//! frequencies of European-ancestry populations, written as HL7 Genomics Reporting IG genotype
//! Observations by `smr_cds::genotype` (the same shape SMR's decision support reads).
//!
//! Frequencies (approximate, from the CPIC allele frequency tables, European): CYP2C19 *2 15%,
//! *17 21%, *3 0.5%; CYP2D6 *4 18.5%, *41 9%, *5 (deletion) 3%, *10 3%, *9 2%, *3 1.5%,
//! *6 1%, duplications about 2%; CYP2C9 *2 13%, *3 7%; VKORC1 -1639A 39%.

use smr_pgx::Gene;

use crate::rng::Rng;

/// HGNC ids of the panel's genes (checked against genenames.org records as cited in the
/// Genomics Reporting IG examples: CYP2C19 HGNC:2621, CYP2D6 HGNC:2625, CYP2C9 HGNC:2623,
/// VKORC1 HGNC:23663); `smr_cds::genotype::hgnc_id` writes the same ids.
pub const PANEL: [(Gene, &str); 4] = [
    (Gene::Cyp2c19, "HGNC:2621"),
    (Gene::Cyp2d6, "HGNC:2625"),
    (Gene::Cyp2c9, "HGNC:2623"),
    (Gene::Vkorc1, "HGNC:23663"),
];

const CYP2C19: &[(&str, f64)] = &[("*1", 0.635), ("*2", 0.15), ("*3", 0.005), ("*17", 0.21)];
const CYP2D6: &[(&str, f64)] = &[
    ("*1", 0.32),
    ("*2", 0.26),
    ("*3", 0.015),
    ("*4", 0.185),
    ("*5", 0.03),
    ("*6", 0.01),
    ("*9", 0.02),
    ("*10", 0.03),
    ("*35", 0.02),
    ("*41", 0.09),
    ("*1x2", 0.008),
    ("*2x2", 0.012),
];
const CYP2C9: &[(&str, f64)] = &[("*1", 0.80), ("*2", 0.13), ("*3", 0.07)];
/// VKORC1 -1639G>A (rs9923231), in gene orientation.
const VKORC1: &[(&str, f64)] = &[("G", 0.61), ("A", 0.39)];

fn star_number(allele: &str) -> u32 {
    allele
        .trim_start_matches('*')
        .split('x')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
}

/// A diplotype drawn from the population frequencies, written as CPIC does (`*1/*17`,
/// `-1639 AG`).
pub fn diplotype(rng: &mut Rng, gene: Gene) -> String {
    let table = match gene {
        Gene::Cyp2c19 => CYP2C19,
        Gene::Cyp2d6 => CYP2D6,
        Gene::Cyp2c9 => CYP2C9,
        _ => VKORC1,
    };
    let a = *rng.weighted(table);
    let b = *rng.weighted(table);
    if gene == Gene::Vkorc1 {
        // "-1639 AG": A before G, as smr-pgx writes it.
        let (x, y) = if a <= b { (a, b) } else { (b, a) };
        return format!("-1639 {x}{y}");
    }
    // CPIC order: by allele number, the single copy before its duplication.
    let key = |s: &str| (star_number(s), s.len());
    let (x, y) = if key(a) <= key(b) { (a, b) } else { (b, a) };
    format!("{x}/{y}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use smr_pgx::{Phenotype, interpret};

    #[test]
    fn every_possible_diplotype_is_interpreted() {
        let mut rng = Rng::new(11);
        for (gene, hgnc) in PANEL {
            assert_eq!(smr_cds::genotype::hgnc_id(gene), Some(hgnc));
            for _ in 0..2000 {
                let d = diplotype(&mut rng, gene);
                let i = interpret(gene, &d);
                assert!(
                    matches!(i.phenotype, Phenotype::Called(_)),
                    "{gene} {d}: {:?}",
                    i.phenotype
                );
                if gene != Gene::Vkorc1 {
                    assert_eq!(i.diplotype, d, "{gene}: written in canonical form");
                }
            }
        }
    }

    #[test]
    fn cyp2c19_star2_frequency_is_european() {
        let mut rng = Rng::new(12);
        let n = 20_000;
        let star2 = (0..n)
            .map(|_| diplotype(&mut rng, Gene::Cyp2c19))
            .map(|d| d.matches("*2").count())
            .sum::<usize>() as f64
            / (2 * n) as f64;
        assert!((0.13..0.17).contains(&star2), "{star2}");
    }
}
