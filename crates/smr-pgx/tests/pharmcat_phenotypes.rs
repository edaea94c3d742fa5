//! Checks the rules against every diplotype row of PharmCAT's phenotype tables
//! (PharmCAT data 2025-11-05, MPL-2.0). The tables are a read-only reference that is
//! not part of the repository, so the test skips with a notice when they are absent.

use std::fs;

use serde_json::Value;
use smr_pgx::{Gene, interpret};

const FILES: [(&str, Gene); 13] = [
    ("ABCG2.json", Gene::Abcg2),
    ("CACNA1S.json", Gene::Cacna1s),
    ("CYP2C19.json", Gene::Cyp2c19),
    ("CYP2C9.json", Gene::Cyp2c9),
    ("CYP3A4.json", Gene::Cyp3a4),
    ("IFNL3.json", Gene::Ifnl3),
    ("MT_RNR1.json", Gene::MtRnr1),
    ("NAT2.json", Gene::Nat2),
    ("NUDT15.json", Gene::Nudt15),
    ("SLCO1B1.json", Gene::Slco1b1),
    ("TPMT.json", Gene::Tpmt),
    ("UGT1A1.json", Gene::Ugt1a1),
    ("VKORC1.json", Gene::Vkorc1),
];

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

#[test]
fn reproduces_every_pharmcat_diplotype_row() {
    let Some(dir) = smr_testdata::shared("reference/pgx/pharmcat/phenotypes") else {
        return;
    };
    let mut mismatches = Vec::new();
    let mut rows = 0usize;
    let mut allele_rows = 0usize;
    for (file, gene) in FILES {
        let path = dir.join(file);
        let raw = match fs::read_to_string(&path) {
            Ok(r) => r,
            Err(e) => {
                mismatches.push(format!("{file}: cannot read: {e}"));
                continue;
            }
        };
        let doc: Value = match serde_json::from_str(&raw) {
            Ok(d) => d,
            Err(e) => {
                mismatches.push(format!("{file}: not JSON: {e}"));
                continue;
            }
        };

        // Allele table: every PharmCAT named allele must be known with the same function.
        for allele in doc["namedAlleles"].as_array().into_iter().flatten() {
            allele_rows += 1;
            let name = allele["name"].as_str().unwrap_or_default();
            let want = allele["functionValue"].as_str();
            let got = smr_pgx::allele_function(gene, name);
            if got != want {
                mismatches.push(format!(
                    "{gene} allele {name}: function {got:?}, PharmCAT {want:?}"
                ));
            }
        }

        for row in doc["diplotypes"].as_array().into_iter().flatten() {
            rows += 1;
            let diplotype = row["diplotype"].as_str().unwrap_or_default();
            let want_phenotype = text(&row["phenotype"]);
            let want_score = text(&row["activityScore"]);
            let want_key = text(&row["lookupkey"]);
            let got = interpret(gene, diplotype);
            let mut problems = Vec::new();
            if Some(got.phenotype.as_str()) != want_phenotype.as_deref() {
                problems.push(format!(
                    "phenotype {:?} ({:?})",
                    got.phenotype.as_str(),
                    got.phenotype
                ));
            }
            if got.activity_score != want_score {
                problems.push(format!("activity score {:?}", got.activity_score));
            }
            if Some(got.lookup_key.as_str()) != want_key.as_deref() {
                problems.push(format!("lookup key {:?}", got.lookup_key));
            }
            if got.diplotype != diplotype {
                problems.push(format!("normalised diplotype {:?}", got.diplotype));
            }
            if !problems.is_empty() {
                mismatches.push(format!(
                    "{gene} {diplotype}: got {}; PharmCAT phenotype {want_phenotype:?}, score {want_score:?}, key {want_key:?}",
                    problems.join(", ")
                ));
            }
        }
    }
    eprintln!("checked {rows} PharmCAT diplotype rows and {allele_rows} named alleles");
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // 6,839 rows in the 2025-11-05 tables; fewer means a table was truncated.
    assert!(
        rows >= 6839,
        "expected the full PharmCAT tables, found {rows} rows"
    );
}
