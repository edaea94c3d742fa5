//! `smr pgx call` on real VCFs, through the real binary.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn smr_call(vcf: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_smr"))
        .args(["pgx", "call", "--format", "json", "--vcf"])
        .arg(vcf)
        .output()
        .expect("run smr");
    assert!(
        out.status.success(),
        "smr pgx call failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

fn gene<'a>(out: &'a Value, symbol: &str) -> &'a Value {
    out["samples"][0]["genes"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["gene"] == symbol))
        .unwrap_or_else(|| panic!("{symbol} not called: {out}"))
}

#[test]
fn calls_cyp2c19_star2_star17_with_its_phenotype() {
    let vcf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../smr-pgx/tests/fixtures/vcf/cyp2c19_s2_s17.vcf");
    let out = smr_call(&vcf);
    let call = gene(&out, "CYP2C19");
    assert_eq!(call["diplotypes"][0], "*2/*17");
    assert_eq!(call["phenotype"], "Intermediate Metabolizer");
}

#[test]
fn missing_positions_are_reported_not_hidden() {
    let vcf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../smr-pgx/tests/fixtures/vcf/cyp2c19_missing.vcf");
    let out = smr_call(&vcf);
    let call = gene(&out, "CYP2C19");
    assert_eq!(call["partial"], true);
    assert!(
        call["missing_positions"]
            .as_array()
            .is_some_and(|m| !m.is_empty())
    );
}

#[test]
fn pharmcat_example_vcf_is_called_for_every_defined_gene() {
    let Some(vcf) = smr_testdata::shared("reference/pgx/pharmcat/example/pharmcat.example.vcf")
    else {
        return;
    };
    let out = smr_call(&vcf);
    let genes = out["samples"][0]["genes"].as_array().expect("genes");
    assert_eq!(genes.len(), 15);
    assert_eq!(gene(&out, "CYP2C19")["diplotypes"][0], "*38/*38");
}

#[test]
fn a_malformed_vcf_fails_with_a_message() {
    let dir = std::env::temp_dir().join(format!("smr-bad-vcf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad = dir.join("bad.vcf");
    std::fs::write(&bad, "chr10\t94762706\trs1\tA\tG\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_smr"))
        .args(["pgx", "call", "--vcf"])
        .arg(&bad)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(!out.stderr.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// PharmCAT's UGT1A1 test sample with *6 and *80 on one haplotype: no named-allele pair fits.
/// By default that is a no-call whose reason names the combination; with `--combinations`
/// the combination is the call, and its phenotype is indeterminate (CPIC has none for it).
#[test]
fn combinations_are_opt_in_and_never_get_a_phenotype() {
    let Some(vcf) =
        smr_testdata::shared("reference/pgx/pharmcat/test-vcfs/UGT1A1/s1s60s80s6phased.vcf")
    else {
        return;
    };
    let default = smr_call(&vcf);
    let call = gene(&default, "UGT1A1");
    assert!(
        call["diplotypes"].as_array().is_none_or(|d| d.is_empty()),
        "{call}"
    );
    assert!(call.to_string().contains("*6 + *80"), "{call}");

    let out = Command::new(env!("CARGO_BIN_EXE_smr"))
        .args(["pgx", "call", "--combinations", "--format", "json", "--vcf"])
        .arg(&vcf)
        .output()
        .expect("run smr");
    assert!(out.status.success());
    let out: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    let call = gene(&out, "UGT1A1");
    assert_eq!(call["diplotypes"][0], "*1/[*6 + *80]", "{call}");
    assert_eq!(call["combination"], true, "{call}");
    assert!(call["phenotype"].is_null(), "{call}");
    assert!(
        call["indeterminate_reason"]
            .as_str()
            .is_some_and(|r| r.contains("no phenotype")),
        "{call}"
    );
}
