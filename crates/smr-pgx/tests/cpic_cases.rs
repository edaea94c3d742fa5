//! Hand-written cases from the CPIC guidelines for genes PharmCAT's phenotype
//! tables do not cover (CYP2D6, DPYD, CYP2B6, CYP3A5, CYP4F2, HLA, G6PD, RYR1), and
//! for the notations the crate accepts beyond PharmCAT's own.

use smr_pgx::{Gene, Phenotype, interpret, parse_outside_calls};

/// Asserts phenotype (and activity score when given).
#[track_caller]
fn check(gene: Gene, diplotype: &str, phenotype: &str, score: Option<&str>) {
    let r = interpret(gene, diplotype);
    assert_eq!(
        r.phenotype.as_str(),
        phenotype,
        "{gene} {diplotype}: {:?}",
        r.phenotype
    );
    if let Some(score) = score {
        assert_eq!(
            r.activity_score.as_deref(),
            Some(score),
            "{gene} {diplotype}"
        );
        assert_eq!(r.lookup_key, score, "{gene} {diplotype}");
    }
}

#[track_caller]
fn indeterminate(gene: Gene, diplotype: &str) -> String {
    match interpret(gene, diplotype).phenotype {
        Phenotype::Indeterminate { reason } => reason,
        other => panic!("{gene} {diplotype}: expected Indeterminate, got {other:?}"),
    }
}

const IM: &str = "Intermediate Metabolizer";
const NM: &str = "Normal Metabolizer";
const PM: &str = "Poor Metabolizer";
const UM: &str = "Ultrarapid Metabolizer";

#[test]
fn cyp2d6_activity_scores_per_cpic_dpwg_consensus() {
    // Caudle et al. 2020 (consensus 2019): AS 1.0 is an Intermediate Metabolizer.
    check(Gene::Cyp2d6, "*1/*4", IM, Some("1.0"));
    check(Gene::Cyp2d6, "*1/*1x2", UM, Some("3.0"));
    check(Gene::Cyp2d6, "*4/*4", PM, Some("0.0"));
    check(Gene::Cyp2d6, "*5/*5", PM, Some("0.0"));
    check(Gene::Cyp2d6, "*10/*10", IM, Some("0.5"));
    check(Gene::Cyp2d6, "*1/*10", NM, Some("1.25"));
    check(Gene::Cyp2d6, "*1/*1", NM, Some("2.0"));
    check(Gene::Cyp2d6, "*1/*17", NM, Some("1.5"));
    check(Gene::Cyp2d6, "*41/*41", IM, Some("0.5"));
    check(Gene::Cyp2d6, "*1x2/*4", NM, Some("2.0"));
    check(Gene::Cyp2d6, "*1x2/*41", NM, Some("2.25"));
    check(Gene::Cyp2d6, "*4/*41x3", IM, Some("0.75"));
    check(Gene::Cyp2d6, "*2/*2x2", UM, Some("3.0"));
}

#[test]
fn cyp2d6_open_copy_numbers() {
    // CPIC writes *1/*1x≥3 as activity score ≥4.0, Ultrarapid; xN is read as ≥3 copies.
    check(Gene::Cyp2d6, "*1/*1x≥3", UM, Some("≥4.0"));
    check(Gene::Cyp2d6, "*1/*2xN", UM, Some("≥4.0"));
    check(Gene::Cyp2d6, "*4/*1xN", UM, Some("≥3.0"));
    assert_eq!(interpret(Gene::Cyp2d6, "*2xN/*1").diplotype, "*1/*2x≥3");
    // Extra copies of a no-function allele add nothing: CPIC *1/*4x≥3 = 1.0.
    check(Gene::Cyp2d6, "*1/*4x≥3", IM, Some("1.0"));
    check(Gene::Cyp2d6, "*4xN/*10", IM, Some("0.25"));
    // ≥0.75 could be 0.75 (IM) or ≥1.25 (NM) depending on the real copy number.
    let reason = indeterminate(Gene::Cyp2d6, "*10xN/*4");
    assert!(reason.contains("copy number"), "{reason}");
    assert_eq!(
        interpret(Gene::Cyp2d6, "*10xN/*4")
            .activity_score
            .as_deref(),
        Some("≥0.75")
    );
}

#[test]
fn cyp2d6_tandems_and_unknowns() {
    // *36+*10 tandem: 0 + 0.25.
    check(Gene::Cyp2d6, "*1/*36+*10", NM, Some("1.25"));
    check(Gene::Cyp2d6, "*36+*10/*36+*10", IM, Some("0.5"));
    check(Gene::Cyp2d6, "CYP2D6*1/CYP2D6*4", IM, Some("1.0"));
    // *22 has no CPIC activity value.
    indeterminate(Gene::Cyp2d6, "*1/*22");
    assert_eq!(
        interpret(Gene::Cyp2d6, "*1/*22").activity_score.as_deref(),
        Some("n/a")
    );
    indeterminate(Gene::Cyp2d6, "*1/*999");
    indeterminate(Gene::Cyp2d6, "*1/*36+*999");
    indeterminate(Gene::Cyp2d6, "*1x0/*1");
    indeterminate(Gene::Cyp2d6, "*1");
    indeterminate(Gene::Cyp2d6, "*1/*1/*1");
}

#[test]
fn dpyd_activity_scores_per_cpic_2017() {
    check(Gene::Dpyd, "c.1905+1G>A/Reference", IM, Some("1.0"));
    assert_eq!(
        interpret(Gene::Dpyd, "c.1905+1G>A/Reference").diplotype,
        "Reference/c.1905+1G>A (*2A)"
    );
    check(Gene::Dpyd, "c.1905+1G>A/c.1905+1G>A", PM, Some("0.0"));
    check(Gene::Dpyd, "c.1129-5923C>G/Reference", IM, Some("1.5"));
    check(Gene::Dpyd, "HapB3/Reference", IM, Some("1.5"));
    check(Gene::Dpyd, "Reference/Reference", NM, Some("2.0"));
    check(Gene::Dpyd, "*1/*1", NM, Some("2.0"));
    check(Gene::Dpyd, "c.2846A>T/c.2846A>T", IM, Some("1.0"));
    check(Gene::Dpyd, "c.1905+1G>A/c.2846A>T", PM, Some("0.5"));
    check(Gene::Dpyd, "*2A/*13", PM, Some("0.0"));
    check(Gene::Dpyd, "rs3918290/Reference", IM, Some("1.0"));
    check(Gene::Dpyd, "Reference/c.85T>C (*9A)", NM, Some("2.0"));
}

#[test]
fn dpyd_two_lowest_variant_rule() {
    // Phase unknown: the two lowest-activity variants are assumed to be in trans.
    check(
        Gene::Dpyd,
        "c.1905+1G>A;c.2846A>T;c.1236G>A",
        PM,
        Some("0.5"),
    );
    check(Gene::Dpyd, "c.2846A>T;c.1236G>A", IM, Some("1.0"));
    // A lone variant is padded with a Reference (1.0) allele.
    check(Gene::Dpyd, "c.2846A>T;", IM, Some("1.5"));
    // Phased: variants in cis make one haplotype as good as its worst variant.
    check(
        Gene::Dpyd,
        "c.1905+1G>A+c.2846A>T/Reference",
        IM,
        Some("1.0"),
    );
    check(
        Gene::Dpyd,
        "c.1905+1G>A + c.2846A>T/c.1236G>A",
        PM,
        Some("0.5"),
    );
    indeterminate(Gene::Dpyd, "c.1905+1G>A;c.9999A>T");
    indeterminate(Gene::Dpyd, "Reference/c.9999A>T");
}

#[test]
fn cyp2c9_notation() {
    check(Gene::Cyp2c9, "*1/*3", IM, Some("1.0"));
    check(Gene::Cyp2c9, "*2/*3", PM, Some("0.5"));
    check(Gene::Cyp2c9, "*3/*3", PM, Some("0.0"));
    // No copy-number notation for CYP2C9.
    indeterminate(Gene::Cyp2c9, "*1x2/*1");
}

#[test]
fn cyp3a5_per_cpic_tacrolimus() {
    check(Gene::Cyp3a5, "*1/*1", NM, None);
    check(Gene::Cyp3a5, "*1/*3", IM, None);
    check(Gene::Cyp3a5, "*3/*3", PM, None);
    check(Gene::Cyp3a5, "*3/*7", PM, None);
    check(
        Gene::Cyp3a5,
        "*1/*8",
        "Possible Intermediate Metabolizer",
        None,
    );
    indeterminate(Gene::Cyp3a5, "*3/*8");
}

#[test]
fn cyp2b6_per_cpic_efavirenz() {
    check(Gene::Cyp2b6, "*6/*6", PM, None);
    check(Gene::Cyp2b6, "*1/*6", IM, None);
    check(Gene::Cyp2b6, "*1/*4", "Rapid Metabolizer", None);
    check(Gene::Cyp2b6, "*4/*4", UM, None);
    check(Gene::Cyp2b6, "*1/*1", NM, None);
    check(Gene::Cyp2b6, "*6/*18", PM, None);
    check(Gene::Cyp2b6, "*4/*6", IM, None);
    indeterminate(Gene::Cyp2b6, "*1/*3");
}

/// CYP2B6 at PharmCAT data 2025-11-05 (CPIC allele functionality as of that release):
/// expected rows read from PharmCAT's `phenotype/CYP2B6.json` at commit 0c6d59e0.
#[test]
fn cyp2b6_alleles_added_since_2023_get_cpic_phenotypes() {
    for allele in ["*39", "*40", "*41", "*42", "*43"] {
        assert_eq!(
            smr_pgx::allele_function(Gene::Cyp2b6, allele),
            Some("Decreased function"),
            "{allele}"
        );
        check(Gene::Cyp2b6, &format!("*1/{allele}"), IM, None);
        check(Gene::Cyp2b6, &format!("*4/{allele}"), IM, None);
        check(Gene::Cyp2b6, &format!("{allele}/{allele}"), PM, None);
    }
    for allele in ["*44", "*45", "*46", "*47", "*48", "*49"] {
        assert_eq!(
            smr_pgx::allele_function(Gene::Cyp2b6, allele),
            Some("Uncertain function"),
            "{allele}"
        );
        // Known to CPIC with an uncertain function: Indeterminate, but not "unknown allele".
        let reason = indeterminate(Gene::Cyp2b6, &format!("*1/{allele}"));
        assert!(
            !reason.to_lowercase().contains("unknown allele"),
            "{reason}"
        );
    }
}

#[test]
fn cyp2b6_reclassified_alleles_give_cpics_current_answer() {
    // *22 was Increased function (so *1/*22 was a confident Rapid Metabolizer); CPIC now
    // gives it Uncertain function and PharmCAT's row is Indeterminate.
    assert_eq!(
        smr_pgx::allele_function(Gene::Cyp2b6, "*22"),
        Some("Uncertain function")
    );
    indeterminate(Gene::Cyp2b6, "*1/*22");
    indeterminate(Gene::Cyp2b6, "*4/*22");
    // *24 and *35: No function -> Uncertain function (a confident IM becomes Indeterminate).
    indeterminate(Gene::Cyp2b6, "*1/*24");
    indeterminate(Gene::Cyp2b6, "*4/*35");
    // *37: No function -> Decreased function.
    assert_eq!(
        smr_pgx::allele_function(Gene::Cyp2b6, "*37"),
        Some("Decreased function")
    );
    check(Gene::Cyp2b6, "*1/*37", IM, None);
    check(Gene::Cyp2b6, "*4/*37", IM, None);
    check(Gene::Cyp2b6, "*6/*37", PM, None);
}

#[test]
fn cyp4f2_star3_carrier() {
    check(Gene::Cyp4f2, "*1/*3", "Decreased Function", None);
    check(Gene::Cyp4f2, "*3/*3", "Decreased Function", None);
    check(Gene::Cyp4f2, "*1/*1", "Normal Function", None);
    indeterminate(Gene::Cyp4f2, "*1/*2");
}

#[test]
fn hla_carrier_status() {
    check(Gene::HlaB, "*57:01 positive", "*57:01 positive", None);
    check(Gene::HlaB, "HLA-B*57:01 negative", "*57:01 negative", None);
    check(Gene::HlaB, "*58:01:01 Positive", "*58:01 positive", None);
    let r = interpret(Gene::HlaB, "*15:02/*44:03");
    assert_eq!(
        r.phenotype.as_str(),
        "*15:02 positive; *57:01 negative; *58:01 negative"
    );
    assert_eq!(r.hla_carrier("*15:02"), Some(true));
    assert_eq!(r.hla_carrier("*57:01"), Some(false));
    assert_eq!(r.hla_carrier("*31:01"), None);
    assert_eq!(r.diplotype, "*15:02/*44:03");
    let r = interpret(Gene::HlaB, "HLA-B*57:01:01/HLA-B*08:01");
    assert_eq!(r.diplotype, "*08:01/*57:01:01");
    assert_eq!(r.hla_carrier("*57:01"), Some(true));
    // A single-allele result says nothing about the other alleles of interest.
    assert_eq!(
        interpret(Gene::HlaB, "*57:01 positive").hla_carrier("*58:01"),
        None
    );

    check(Gene::HlaA, "*31:01 positive", "*31:01 positive", None);
    check(Gene::HlaA, "*02:01/*31:01", "*31:01 positive", None);
    check(Gene::HlaA, "*02:01/*24:02", "*31:01 negative", None);

    indeterminate(Gene::HlaB, "*57/*08:01"); // serological, one field
    indeterminate(Gene::HlaB, "*57:01N/*08:01"); // null allele
    indeterminate(Gene::HlaB, "*44:03 positive"); // not an allele of interest
    indeterminate(Gene::HlaB, "*57:01"); // neither a typing nor a result
    indeterminate(Gene::HlaB, "*57:01 maybe");
    indeterminate(Gene::HlaB, "B57/B08");
}

#[test]
fn g6pd_x_linked() {
    check(Gene::G6pd, "B", "Normal", None);
    check(Gene::G6pd, "A-", "Deficient", None);
    check(Gene::G6pd, "A-/Y", "Deficient", None);
    check(Gene::G6pd, "Mediterranean", "Deficient", None);
    check(Gene::G6pd, "Bangkok", "Deficient with CNSHA", None);
    check(Gene::G6pd, "Telti/Kobe", "Deficient with CNSHA", None);
    check(Gene::G6pd, "B/B", "Normal", None);
    check(Gene::G6pd, "B/A-", "Variable", None);
    check(Gene::G6pd, "A/Mediterranean", "Variable", None);
    check(Gene::G6pd, "A-/A-", "Deficient", None);
    check(Gene::G6pd, "A-/Mediterranean", "Deficient", None);
    check(Gene::G6pd, "Anadia/Telti/Kobe", "Deficient", None);
    check(Gene::G6pd, "Bangkok/Bangkok", "Deficient with CNSHA", None);
    assert_eq!(
        interpret(Gene::G6pd, "A-/B").diplotype,
        "A- 202A_376G/B (reference)"
    );
    indeterminate(Gene::G6pd, "Dagua");
    indeterminate(Gene::G6pd, "B/Dagua");
    indeterminate(Gene::G6pd, "Atlantis");
}

#[test]
fn ryr1_cacna1s_malignant_hyperthermia() {
    check(
        Gene::Ryr1,
        "Reference/Reference",
        "Uncertain Susceptibility",
        None,
    );
    check(
        Gene::Ryr1,
        "Reference/c.7300G>A",
        "Malignant Hyperthermia Susceptibility",
        None,
    );
    check(
        Gene::Ryr1,
        "c.1840C>T/Reference",
        "Malignant Hyperthermia Susceptibility",
        None,
    );
    check(
        Gene::Ryr1,
        "Reference/c.1598G>A",
        "Uncertain Susceptibility",
        None,
    );
    check(
        Gene::Ryr1,
        "c.1598G>A/c.7300G>A",
        "Malignant Hyperthermia Susceptibility",
        None,
    );
    indeterminate(Gene::Ryr1, "Reference/c.99999A>G");
    check(
        Gene::Cacna1s,
        "Reference/c.520C>T",
        "Malignant Hyperthermia Susceptibility",
        None,
    );
}

#[test]
fn mt_rnr1_haploid() {
    let increased = "increased risk of aminoglycoside-induced hearing loss";
    check(Gene::MtRnr1, "1555A>G", increased, None);
    check(Gene::MtRnr1, "m.1555A>G", increased, None);
    check(Gene::MtRnr1, "MT-RNR1 m.1555A>G", increased, None);
    check(Gene::MtRnr1, "m.1555A>G/m.1555A>G", increased, None);
    check(
        Gene::MtRnr1,
        "Reference",
        "normal risk of aminoglycoside-induced hearing loss",
        None,
    );
    assert_eq!(interpret(Gene::MtRnr1, "1555A>G").diplotype, "m.1555A>G");
    indeterminate(Gene::MtRnr1, "m.1555A>G/m.1494C>T");
    // "Uncertain risk" is itself a CPIC phenotype, not Indeterminate.
    check(
        Gene::MtRnr1,
        "m.1556C>T",
        "uncertain risk of aminoglycoside-induced hearing loss",
        None,
    );
    indeterminate(Gene::MtRnr1, "m.1556C>A");
}

#[test]
fn snp_genotype_genes() {
    check(
        Gene::Ifnl3,
        "rs12979860 CC",
        "Favorable response genotype",
        None,
    );
    check(
        Gene::Ifnl3,
        "rs12979860 CT",
        "Unfavorable response genotype",
        None,
    );
    check(Gene::Ifnl3, "T/T", "Unfavorable response genotype", None);
    check(Gene::Vkorc1, "-1639 AG", "-1639 AG", None);
    check(Gene::Vkorc1, "rs9923231 CT", "-1639 AG", None);
    check(Gene::Vkorc1, "A/A", "-1639 AA", None);
    check(Gene::Vkorc1, "GG", "-1639 GG", None);
    check(Gene::Abcg2, "rs2231142 GT", "Decreased Function", None);
    check(Gene::Abcg2, "rs2231142 TT", "Poor Function", None);
    indeterminate(Gene::Vkorc1, "foo GG");
    indeterminate(Gene::Vkorc1, "-1639 XY");
    indeterminate(Gene::Abcg2, "rs2231142 AC");
    // One strand's letters per genotype: -1639 G/A or rs9923231 C/T, never mixed, and
    // nucleotides in capitals.
    check(Gene::Vkorc1, "CT", "-1639 AG", None);
    check(Gene::Vkorc1, "-1639 GA", "-1639 AG", None);
    indeterminate(Gene::Vkorc1, "AC");
    indeterminate(Gene::Vkorc1, "GT");
    indeterminate(Gene::Vkorc1, "rs9923231 GA");
    indeterminate(Gene::Vkorc1, "-1639 CT");
    indeterminate(Gene::Vkorc1, "Ga");
}

#[test]
fn star_allele_notation_variants() {
    check(
        Gene::Cyp2c19,
        "CYP2C19*1/CYP2C19*17",
        "Rapid Metabolizer",
        None,
    );
    assert_eq!(interpret(Gene::Cyp2c19, " *17 / *1 ").diplotype, "*1/*17");
    check(Gene::Tpmt, "*1/*3a", IM, None);
    check(Gene::Ugt1a1, "*28/*80+*28", PM, None);
    indeterminate(Gene::Ugt1a1, "*1/*80");
    indeterminate(Gene::Cyp2c19, "*1/*2/*3");
    indeterminate(Gene::Cyp2c19, "*1");
    indeterminate(Gene::Cyp2c19, "");
    indeterminate(Gene::Cyp2c19, "*1/*99");
    indeterminate(Gene::Cyp2c19, "*1x2/*1");
    indeterminate(Gene::Cyp2c19, "*1/*12");
    let reason = indeterminate(Gene::Cyp2c19, "*1/*12");
    assert!(reason.contains("*12 (Uncertain function)"), "{reason}");
}

#[test]
fn pharmcat_outside_call_example() {
    let tsv = include_str!("data/outside_call_example.tsv");
    let calls = parse_outside_calls(tsv);
    let Ok(calls) = calls else {
        panic!("{calls:?}")
    };
    let got: Vec<(String, String)> = calls
        .iter()
        .map(|c| {
            let r = interpret(c.gene, c.diplotype.as_deref().unwrap_or_default());
            (c.gene.to_string(), r.phenotype.as_str().to_string())
        })
        .collect();
    assert_eq!(
        got,
        [
            ("CYP2D6".to_string(), IM.to_string()),
            (
                "HLA-B".to_string(),
                "*15:02 positive; *57:01 positive; *58:01 negative".to_string()
            ),
            (
                "MT-RNR1".to_string(),
                "increased risk of aminoglycoside-induced hearing loss".to_string()
            ),
        ]
    );
}

/// Every row of PharmCAT's CYP3A5 phenotype file of data release 2025-11-05 (commit
/// 0c6d59e0): the whole table is small enough to hold here.
#[test]
fn cyp3a5_every_row_of_the_2025_11_05_release() {
    let alleles = ["*1", "*3", "*6", "*7", "*8", "*9"];
    let function = |a: &str| match a {
        "*1" => 'N',
        "*3" | "*6" | "*7" => '0',
        _ => 'U',
    };
    for (i, a) in alleles.iter().enumerate() {
        for b in &alleles[i..] {
            let d = format!("{a}/{b}");
            match (function(a), function(b)) {
                ('N', 'N') => check(Gene::Cyp3a5, &d, NM, None),
                ('N', '0') => check(Gene::Cyp3a5, &d, IM, None),
                ('N', 'U') => check(Gene::Cyp3a5, &d, "Possible Intermediate Metabolizer", None),
                ('0', '0') => check(Gene::Cyp3a5, &d, PM, None),
                _ => {
                    indeterminate(Gene::Cyp3a5, &d);
                }
            }
        }
    }
}

/// DPYD at PharmCAT data 2025-11-05 (commit 0c6d59e0): c.1129-5923C>G is a named allele of
/// its own (Decreased function, activity 0.5), and PharmCAT's row Reference/c.1129-5923C>G is
/// an Intermediate Metabolizer with score 1.5.
#[test]
fn dpyd_c1129_5923_is_its_own_allele() {
    assert_eq!(
        smr_pgx::allele_function(Gene::Dpyd, "c.1129-5923C>G"),
        Some("Decreased function")
    );
    let r = interpret(Gene::Dpyd, "Reference/c.1129-5923C>G");
    assert_eq!(r.diplotype, "Reference/c.1129-5923C>G");
    assert_eq!(r.phenotype.as_str(), IM);
    assert_eq!(r.activity_score.as_deref(), Some("1.5"));
    // HapB3 itself is unchanged.
    check(Gene::Dpyd, "Reference/HapB3", IM, Some("1.5"));
}
