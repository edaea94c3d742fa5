//! Runs the real `smr` binary: `smr pgx interpret` and `smr pgx kb`.

use std::process::{Command, Output};

use serde_json::Value;

fn smr(args: &[&str]) -> Output {
    match Command::new(env!("CARGO_BIN_EXE_smr")).args(args).output() {
        Ok(o) => o,
        Err(e) => panic!("running smr: {e}"),
    }
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "smr failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(e) => panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)),
    }
}

fn drug<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["drugs"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["drug"] == name))
        .unwrap_or_else(|| panic!("no entry for {name}: {v}"))
}

#[test]
fn interpret_fixture_as_json() {
    let path = fixture("outside-calls.tsv");
    let v = json_of(&smr(&[
        "pgx",
        "interpret",
        "--outside-calls",
        &path,
        "--drug",
        "clopidogrel",
        "--drug",
        "Co-codamol 30mg/500mg tablets",
        "--drug",
        "capecitabine",
        "--drug",
        "notadrug",
        "--format",
        "json",
    ]));
    assert_eq!(
        v["genes"][0],
        serde_json::json!({"gene":"CYP2C19","diplotype":"*2/*2","phenotype":"Poor Metabolizer","activity_score":null})
    );
    assert_eq!(v["genes"][1]["phenotype"], "Ultrarapid Metabolizer");
    assert_eq!(v["genes"][1]["activity_score"], "3.0");
    assert_eq!(v["genes"][3]["diplotype"], Value::Null);
    assert_eq!(v["genes"][3]["phenotype"], "Poor Function");

    let clop = &drug(&v, "clopidogrel")["recommendations"][0];
    assert_eq!(clop["status"], "recommendation");
    assert_eq!(clop["action"]["kind"], "alternative");
    assert_eq!(clop["classification"], "strong");
    assert_eq!(
        clop["alternatives"],
        serde_json::json!(["prasugrel", "ticagrelor"])
    );
    assert!(
        clop["guideline"]["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://cpicpgx.org/"))
    );

    // Co-codamol → codeine (CYP2D6 UM: avoid) and paracetamol (no PGx guidance).
    let codeine = drug(&v, "codeine");
    assert_eq!(codeine["input"], "Co-codamol 30mg/500mg tablets");
    assert_eq!(codeine["recommendations"][0]["action"]["kind"], "avoid");
    assert_eq!(
        drug(&v, "paracetamol")["recommendations"][0]["status"],
        "not_pgx_relevant"
    );

    // DPYD given only as an activity score.
    let cape = &drug(&v, "capecitabine")["recommendations"][0];
    assert_eq!(cape["action"]["percent_of_standard"], 50);

    // Every assessment citing a guideline says whether its transcription was verified.
    assert!(
        ["verified", "partly", "unverified"]
            .contains(&clop["verification"]["status"].as_str().unwrap_or("")),
        "{clop}"
    );
    assert_eq!(clop["verification"], clop["guideline"]["verification"]);
    for d in v["drugs"].as_array().into_iter().flatten() {
        for a in d["recommendations"].as_array().into_iter().flatten() {
            assert_eq!(
                a.get("guideline").is_some(),
                a.get("verification").is_some(),
                "{a}"
            );
        }
    }

    let unknown = drug(&v, "notadrug");
    assert_eq!(unknown["identified"], false);
    assert!(unknown["reason"].as_str().is_some_and(|r| !r.is_empty()));
}

#[test]
fn interpret_without_drugs_covers_tested_genes_and_text_format() {
    let path = fixture("outside-calls.tsv");
    let v = json_of(&smr(&[
        "pgx",
        "interpret",
        "--outside-calls",
        &path,
        "--format",
        "json",
    ]));
    let abacavir = drug(&v, "abacavir");
    assert_eq!(abacavir["recommendations"][0]["action"]["kind"], "avoid");
    assert_eq!(
        drug(&v, "simvastatin")["recommendations"][0]["action"]["kind"],
        "alternative"
    );

    let out = smr(&[
        "pgx",
        "interpret",
        "--outside-calls",
        &path,
        "--drug",
        "clopidogrel",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("USE ALTERNATIVE"), "{text}");
    assert!(text.contains("CPIC Guideline for CYP2C19"), "{text}");

    // Text output: one caveat line per recommendation or indeterminate result from a
    // guideline whose transcription is not verified (the data file says which).
    let out = smr(&["pgx", "interpret", "--outside-calls", &path]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let unverified = v["drugs"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| d["recommendations"].as_array().into_iter().flatten())
        .filter(|a| {
            matches!(
                a["status"].as_str(),
                Some("recommendation" | "indeterminate")
            )
        })
        .filter(|a| a["verification"]["status"] != "verified")
        .count();
    assert_eq!(
        text.matches("CAUTION: guideline transcription").count(),
        unverified,
        "{text}"
    );
    assert_eq!(
        text.contains("has not yet been checked against the published source"),
        unverified > 0,
        "{text}"
    );
}

#[test]
fn malformed_file_fails_with_line_number() {
    let out = smr(&[
        "pgx",
        "interpret",
        "--outside-calls",
        &fixture("outside-calls-bad.tsv"),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("NOTAGENE"), "{err}");
}

#[test]
fn kb_lists_genes_guidelines_and_dictionary() {
    let out = smr(&["pgx", "kb"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "CYP2C19",
        "CPIC Guideline for CYP2C19 Genotype and Clopidogrel Therapy",
        "Drug dictionary",
        "not covered",
        "transcription checked against the published source",
        "verification: ",
        "— release ",
        "UK testing guidance",
        "DG59",
        "HTE6",
        "read from: https://",
    ] {
        assert!(text.contains(needle), "missing {needle}: {text}");
    }
    // Every gene says which release it is and which file it was read from.
    assert_eq!(
        text.matches("\n           read from: https://").count(),
        smr_pgx::Gene::ALL.len(),
        "{text}"
    );
    // A verification column on every guideline line.
    let guidelines = smr_pgx_guidelines_count(&text);
    assert!(guidelines > 0);
    assert_eq!(
        text.matches("\n      verification: ").count(),
        guidelines,
        "{text}"
    );
}

#[test]
fn pharmcat_example_outside_calls_if_present() {
    let Some(path) =
        smr_testdata::shared("reference/pgx/pharmcat/example/pharmcat.example.outsideCall.tsv")
    else {
        return;
    };
    let path = path.to_str().expect("UTF-8 path");
    let v = json_of(&smr(&[
        "pgx",
        "interpret",
        "--outside-calls",
        path,
        "--drug",
        "abacavir",
        "--drug",
        "gentamicin",
        "--drug",
        "codeine",
        "--format",
        "json",
    ]));
    let genes = v["genes"].as_array().map_or(0, Vec::len);
    assert!(genes >= 3, "{v}");
    assert_eq!(
        drug(&v, "abacavir")["recommendations"][0]["action"]["kind"],
        "avoid"
    );
    assert_eq!(
        drug(&v, "gentamicin")["recommendations"][0]["action"]["kind"],
        "avoid"
    );
    // CYP2D6 *1/*3: activity score 1.0, intermediate metabolizer.
    assert_eq!(
        drug(&v, "codeine")["recommendations"][0]["classification"],
        "moderate"
    );
}

/// Guideline lines in `smr pgx kb` output ("  [Cpic] VERIFIED …", "  [Dpwg] UNVERIFIED …").
fn smr_pgx_guidelines_count(text: &str) -> usize {
    text.lines()
        .filter(|l| l.starts_with("  [Cpic] ") || l.starts_with("  [Dpwg] "))
        .inspect(|l| {
            let status = l[9..].trim_start();
            assert!(
                ["VERIFIED ", "PARTLY VERIFIED ", "UNVERIFIED "]
                    .iter()
                    .any(|p| status.starts_with(p)),
                "{l}"
            );
        })
        .count()
}

#[test]
fn compare_lists_differences_and_fails() {
    // A one-gene release in which TPMT*2 has been reclassified.
    let dir = std::env::temp_dir().join(format!("smr-pgx-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("TPMT.json");
    std::fs::write(
        &file,
        r#"{"version":"test","namedAlleles":[{"name":"*2","functionValue":"Normal function"}],"diplotypes":[]}"#,
    )
    .expect("write");
    let out = smr(&["pgx", "compare", "--pharmcat", file.to_str().unwrap_or("")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("function changed: *2: SMR No function, release Normal function"),
        "{text}"
    );
    assert!(text.contains("allele not in the release: *3A"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compare_with_the_shared_pharmcat_release_finds_nothing() {
    let Some(dir) = smr_testdata::shared("reference/pgx/pharmcat") else {
        return;
    };
    let out = smr(&["pgx", "compare", "--pharmcat", dir.to_str().unwrap_or("")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches(": no differences").count(), 13, "{text}");
}
