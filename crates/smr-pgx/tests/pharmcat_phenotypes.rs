//! Runs `smr_pgx::compare` against every phenotype file of the PharmCAT data release in
//! `../shared/reference/pgx/pharmcat/phenotypes` (PharmCAT data 2025-11-05, MPL-2.0) and
//! requires no difference: every named allele with the same function, every diplotype
//! row with the same phenotype, activity score, lookup key and spelling. The release is a
//! read-only reference that is not part of the repository, so the test skips with a
//! notice when it is absent (and fails when SMR_REQUIRE_SHARED is set).

use std::fs;

use smr_pgx::Gene;
use smr_pgx::compare::{compare_with_pharmcat, gene_of_release_file};

/// The genes the 2025-11-05 release covers; a file going missing is a failure, not a skip.
const EXPECTED: [Gene; 13] = [
    Gene::Abcg2,
    Gene::Cacna1s,
    Gene::Cyp2c19,
    Gene::Cyp2c9,
    Gene::Cyp3a4,
    Gene::Ifnl3,
    Gene::MtRnr1,
    Gene::Nat2,
    Gene::Nudt15,
    Gene::Slco1b1,
    Gene::Tpmt,
    Gene::Ugt1a1,
    Gene::Vkorc1,
];

#[test]
fn no_difference_from_the_pharmcat_release() {
    let Some(dir) = smr_testdata::shared("reference/pgx/pharmcat/phenotypes") else {
        return;
    };
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    let mut rows = 0usize;
    let mut alleles = 0usize;
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let Some(gene) = gene_of_release_file(stem) else {
            problems.push(format!("{}: not a gene SMR knows", path.display()));
            continue;
        };
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        match compare_with_pharmcat(gene, &text) {
            Ok(c) => {
                seen.push(gene);
                rows += c.diplotypes;
                alleles += c.alleles;
                assert_eq!(c.release.as_deref(), Some("2025-11-05-00-25"), "{gene}");
                problems.extend(c.differences.iter().map(|d| format!("{gene}: {d}")));
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    eprintln!("compared {rows} PharmCAT diplotype rows and {alleles} named alleles");
    for gene in EXPECTED {
        if !seen.contains(&gene) {
            problems.push(format!("{gene}: no phenotype file in {}", dir.display()));
        }
    }
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
    // 6,839 rows in the 2025-11-05 tables; fewer means a table was truncated.
    assert!(
        rows >= 6839,
        "expected the full PharmCAT tables, found {rows} rows"
    );
}
