use super::*;
use proptest::prelude::*;
use smr_pgx::interpret;
use std::borrow::Cow;

fn g(gene: Gene, diplotype: &str) -> Interpretation {
    interpret(gene, diplotype)
}

/// An outside call given only as a phenotype (as labs report some genes).
fn called(gene: Gene, phenotype: &str) -> Interpretation {
    Interpretation {
        gene,
        diplotype: String::new(),
        phenotype: Phenotype::Called(Cow::Owned(phenotype.to_string())),
        activity_score: None,
        lookup_key: phenotype.to_string(),
    }
}

fn one(drug: &str, genotypes: &[Interpretation]) -> Recommendation {
    let a = recommend(drug, genotypes);
    match a.into_iter().next() {
        Some(Assessment::Recommendation(r)) => r,
        other => panic!("{drug}: expected a recommendation, got {other:?}"),
    }
}

fn is_dose(a: &Action) -> bool {
    matches!(a, Action::DoseChange { .. })
}

#[test]
fn data_file_is_valid_and_every_drug_is_in_the_dictionary() {
    assert_eq!(check_guidelines(), Ok(()));
    for d in drugs() {
        assert!(smr_dmd::ingredient(d).is_some(), "{d} not in smr-dmd");
    }
    let (title, infos) = kb_versions();
    assert!(title.is_some());
    assert!(infos.len() >= 40);
    for i in &infos {
        assert!(i.url.starts_with("https://"), "{}", i.id);
    }
    assert!(!excluded().is_empty());
}

#[test]
fn clopidogrel() {
    let r = one("clopidogrel", &[g(Gene::Cyp2c19, "*2/*2")]);
    assert_eq!(r.action, Action::Alternative);
    assert_eq!(r.classification, Strength::Strong);
    assert_eq!(r.alternatives, ["prasugrel", "ticagrelor"]);
    assert!(r.guideline.name.contains("2022 Update"));
    assert!(r.guideline.table.starts_with("Table 2"));
    // CPIC 2022 Table 2 (ACS/PCI): intermediate metabolizers are graded strong.
    let r = one("clopidogrel", &[g(Gene::Cyp2c19, "*1/*2")]);
    assert_eq!(
        (r.action, r.classification),
        (Action::Alternative, Strength::Strong)
    );
    let r = one("Clopidogrel", &[g(Gene::Cyp2c19, "*1/*1")]);
    assert_eq!(r.action, Action::Standard);
}

#[test]
fn cyp2c19_ssri_ppi_voriconazole() {
    let pm = [g(Gene::Cyp2c19, "*2/*2")];
    for d in ["citalopram", "escitalopram", "sertraline"] {
        assert!(is_dose(&one(d, &pm).action), "{d}");
    }
    for d in [
        "omeprazole",
        "lansoprazole",
        "pantoprazole",
        "dexlansoprazole",
    ] {
        let r = one(d, &[g(Gene::Cyp2c19, "*17/*17")]);
        assert!(
            matches!(
                r.action,
                Action::DoseChange {
                    percent_of_standard: Some(200),
                    ..
                }
            ),
            "{d}"
        );
    }
    let r = one("voriconazole", &pm);
    assert_eq!(r.action, Action::Alternative);
    assert!(r.alternatives.iter().any(|a| a == "isavuconazole"));
}

#[test]
fn amitriptyline_uses_both_genes() {
    let a = recommend(
        "amitriptyline",
        &[g(Gene::Cyp2d6, "*4/*4"), g(Gene::Cyp2c19, "*1/*1")],
    );
    // CPIC's amitriptyline table is one table over both genes (CPIC database): one answer.
    assert_eq!(a.len(), 1, "{a:?}");
    let Assessment::Recommendation(r) = &a[0] else {
        panic!("{a:?}")
    };
    assert_eq!(r.action, Action::Alternative);
    assert_eq!(r.classification, Strength::Strong);
    assert_eq!(r.genotypes.len(), 2, "{r:?}");
    // CYP2C19 poor metabolizer with CYP2D6 normal: an alternative, moderate.
    let r = one(
        "amitriptyline",
        &[g(Gene::Cyp2d6, "*1/*1"), g(Gene::Cyp2c19, "*2/*2")],
    );
    assert_eq!(
        (r.action, r.classification),
        (Action::Alternative, Strength::Moderate)
    );
    // Nortriptyline is a secondary amine: CYP2D6 only.
    assert_eq!(relevant_genes("nortriptyline"), vec![Gene::Cyp2d6]);
    let r = one("nortriptyline", &[g(Gene::Cyp2d6, "*1/*4")]);
    assert!(matches!(
        r.action,
        Action::DoseChange {
            percent_of_standard: Some(75),
            ..
        }
    ));
}

#[test]
fn cyp2d6_drugs() {
    let um = [g(Gene::Cyp2d6, "*1/*1x2")];
    let pm = [g(Gene::Cyp2d6, "*4/*4")];
    assert_eq!(one("codeine", &um).action, Action::Avoid);
    assert_eq!(one("codeine", &pm).action, Action::Avoid);
    assert_eq!(one("tramadol", &um).action, Action::Avoid);
    assert_eq!(one("ondansetron", &um).alternatives, ["granisetron"]);
    assert!(is_dose(&one("atomoxetine", &pm).action));
    assert!(is_dose(&one("paroxetine", &pm).action));
    assert!(is_dose(&one("fluvoxamine", &pm).action));
    assert_eq!(one("tamoxifen", &pm).action, Action::Alternative);
    assert_eq!(
        one("codeine", &[g(Gene::Cyp2d6, "*1/*1")]).action,
        Action::Standard
    );
}

#[test]
fn tamoxifen_by_activity_score() {
    // *1/*4 has activity score 1.0: optional; *4/*10 has 0.25: moderate.
    let r = one("tamoxifen", &[g(Gene::Cyp2d6, "*1/*4")]);
    assert_eq!(r.classification, Strength::Optional);
    let r = one("tamoxifen", &[g(Gene::Cyp2d6, "*4/*10")]);
    assert_eq!(r.classification, Strength::Moderate);
}

#[test]
fn warfarin_multi_gene() {
    let a = recommend(
        "warfarin",
        &[g(Gene::Cyp2c9, "*3/*3"), g(Gene::Vkorc1, "-1639 AG")],
    );
    let Assessment::Recommendation(r) = &a[0] else {
        panic!("{a:?}")
    };
    assert!(is_dose(&r.action));
    assert!(r.recommendation.contains("algorithm"));
    // CYP4F2 not tested: that table says so.
    assert!(
        matches!(&a[1], Assessment::NoGenotype { genes_needed, .. } if genes_needed == &[Gene::Cyp4f2])
    );
    // VKORC1 missing: the algorithm cannot be used.
    let a = recommend("warfarin", &[g(Gene::Cyp2c9, "*1/*1")]);
    assert!(
        matches!(&a[0], Assessment::NoGenotype { genes_needed, .. } if genes_needed == &[Gene::Vkorc1])
    );
    let r = one(
        "warfarin",
        &[g(Gene::Cyp2c9, "*1/*1"), g(Gene::Vkorc1, "-1639 GG")],
    );
    assert_eq!(r.action, Action::Standard);
}

#[test]
fn phenytoin_hla_positive_avoids_regardless_of_cyp2c9() {
    let r = one("phenytoin", &[g(Gene::HlaB, "*15:02 positive")]);
    assert_eq!(r.action, Action::Avoid);
    let r = one(
        "fosphenytoin",
        &[g(Gene::HlaB, "*15:02/*44:03"), g(Gene::Cyp2c9, "*1/*1")],
    );
    assert_eq!(r.action, Action::Avoid);
    let r = one(
        "phenytoin",
        &[g(Gene::HlaB, "*15:02 negative"), g(Gene::Cyp2c9, "*3/*3")],
    );
    // CPIC: the usual loading dose, then maintenance doses reduced (by about 50% here), so no
    // single "percent of the standard dose" figure that a card could misread as the start.
    let Action::DoseChange {
        text,
        percent_of_standard: None,
    } = &r.action
    else {
        panic!("{:?}", r.action)
    };
    assert!(
        text.contains("50%") && text.contains("maintenance"),
        "{text}"
    );
    let r = one(
        "phenytoin",
        &[g(Gene::HlaB, "*07:02/*44:03"), g(Gene::Cyp2c9, "*1/*1")],
    );
    assert_eq!(r.action, Action::Standard);
    // HLA-B negative, CYP2C9 never tested: CPIC's "No Result" row (no adjustment needed).
    let r = one("phenytoin", &[g(Gene::HlaB, "*15:02 negative")]);
    assert_eq!(
        (r.action, r.classification),
        (Action::Standard, Strength::Strong)
    );
    assert_eq!(r.genotypes.len(), 1);
    // CYP2C9 poor metabolizer, HLA-B never tested: the CYP2C9 advice still applies.
    let r = one("phenytoin", &[g(Gene::Cyp2c9, "*3/*3")]);
    assert!(is_dose(&r.action), "{r:?}");
    // But an HLA-B result that is indeterminate is not "not tested".
    let a = recommend(
        "phenytoin",
        &[g(Gene::HlaB, "*99:99 positive"), g(Gene::Cyp2c9, "*1/*1")],
    );
    assert!(
        !matches!(&a[0], Assessment::Recommendation(r) if r.action == Action::Standard),
        "{a:?}"
    );
    // A *57:01-only result says nothing about *15:02.
    let a = recommend(
        "phenytoin",
        &[g(Gene::HlaB, "*57:01 negative"), g(Gene::Cyp2c9, "*1/*1")],
    );
    assert!(
        matches!(
            &a[0],
            Assessment::Indeterminate {
                gene: Gene::HlaB,
                ..
            }
        ),
        "{a:?}"
    );
}

#[test]
fn nsaids_by_activity_score() {
    let as1 = [g(Gene::Cyp2c9, "*1/*3")];
    let pm = [g(Gene::Cyp2c9, "*3/*3")];
    for d in ["celecoxib", "flurbiprofen", "ibuprofen", "lornoxicam"] {
        assert!(is_dose(&one(d, &as1).action), "{d}");
        assert!(is_dose(&one(d, &pm).action), "{d}");
    }
    assert!(matches!(
        one("meloxicam", &as1).action,
        Action::DoseChange {
            percent_of_standard: Some(50),
            ..
        }
    ));
    assert_eq!(one("meloxicam", &pm).action, Action::Alternative);
    for d in ["piroxicam", "tenoxicam"] {
        assert_eq!(one(d, &as1).action, Action::Alternative, "{d}");
    }
    assert_eq!(
        one("ibuprofen", &[g(Gene::Cyp2c9, "*1/*2")]).action,
        Action::Standard
    );
    assert_eq!(
        one("ibuprofen", &[g(Gene::Cyp2c9, "*1/*1")]).action,
        Action::Standard
    );
}

#[test]
fn statins() {
    let dec = [g(Gene::Slco1b1, "*1/*5")];
    let poor = [g(Gene::Slco1b1, "*5/*5")];
    assert_eq!(one("simvastatin", &dec).action, Action::Alternative);
    assert!(is_dose(&one("atorvastatin", &poor).action));
    assert!(is_dose(&one("rosuvastatin", &poor).action));
    assert!(is_dose(&one("pravastatin", &poor).action));
    assert!(is_dose(&one("pitavastatin", &dec).action));
    assert_eq!(one("lovastatin", &poor).action, Action::Alternative);
    assert!(is_dose(&one("fluvastatin", &poor).action));
    // Rosuvastatin and fluvastatin: one CPIC table over both genes.
    let a = recommend(
        "rosuvastatin",
        &[g(Gene::Slco1b1, "*1/*1"), g(Gene::Abcg2, "rs2231142 TT")],
    );
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(
        matches!(&a[0], Assessment::Recommendation(r) if is_dose(&r.action) && r.genotypes.len() == 2),
        "{a:?}"
    );
    let a = recommend(
        "fluvastatin",
        &[g(Gene::Slco1b1, "*1/*1"), g(Gene::Cyp2c9, "*3/*3")],
    );
    assert!(
        matches!(&a[0], Assessment::Recommendation(r) if is_dose(&r.action)),
        "{a:?}"
    );
    assert_eq!(
        one("simvastatin", &[g(Gene::Slco1b1, "*1/*1")]).action,
        Action::Standard
    );
}

#[test]
fn tacrolimus_efavirenz_atazanavir() {
    assert!(is_dose(
        &one("tacrolimus", &[g(Gene::Cyp3a5, "*1/*1")]).action
    ));
    assert_eq!(
        one("tacrolimus", &[g(Gene::Cyp3a5, "*3/*3")]).action,
        Action::Standard
    );
    assert!(is_dose(
        &one("efavirenz", &[g(Gene::Cyp2b6, "*6/*6")]).action
    ));
    assert_eq!(
        one("atazanavir", &[g(Gene::Ugt1a1, "*28/*28")]).action,
        Action::Alternative
    );
}

#[test]
fn dpyd_activity_score_rows() {
    let half = [g(Gene::Dpyd, "c.1905+1G>A (*2A)/Reference")];
    for d in ["fluorouracil", "capecitabine"] {
        let r = one(d, &half);
        assert!(
            matches!(
                r.action,
                Action::DoseChange {
                    percent_of_standard: Some(50),
                    ..
                }
            ),
            "{d}"
        );
    }
    let r = one(
        "capecitabine",
        &[g(Gene::Dpyd, "c.1905+1G>A (*2A)/c.1905+1G>A (*2A)")],
    );
    assert_eq!(r.action, Action::Avoid);
    let r = one("capecitabine", &[g(Gene::Dpyd, "Reference/Reference")]);
    assert_eq!(r.action, Action::Standard);
}

#[test]
fn thiopurines_combined() {
    let tpmt_pm = [g(Gene::Tpmt, "*3A/*3A"), g(Gene::Nudt15, "*1/*1")];
    for d in ["azathioprine", "mercaptopurine"] {
        assert_eq!(one(d, &tpmt_pm).action, Action::Alternative, "{d}");
    }
    // CPIC 2025 update: tioguanine in TPMT poor metabolizers is dosed down, not replaced.
    for d in ["tioguanine", "thioguanine"] {
        let Action::DoseChange { text, .. } = one(d, &tpmt_pm).action else {
            panic!("{d}")
        };
        assert!(text.contains("10-fold"), "{text}");
    }
    let both_im = [g(Gene::Tpmt, "*1/*3A"), g(Gene::Nudt15, "*1/*3")];
    let r = one("azathioprine", &both_im);
    assert!(r.recommendation.contains("both"));
    let r = one(
        "mercaptopurine",
        &[g(Gene::Tpmt, "*1/*3A"), g(Gene::Nudt15, "*1/*1")],
    );
    assert!(is_dose(&r.action));
    // NUDT15 poor decides even without TPMT.
    let r = one("azathioprine", &[g(Gene::Nudt15, "*3/*3")]);
    assert_eq!(r.action, Action::Alternative);
    let r = one(
        "azathioprine",
        &[g(Gene::Tpmt, "*1/*1"), g(Gene::Nudt15, "*1/*1")],
    );
    assert_eq!(r.action, Action::Standard);
    // TPMT normal, NUDT15 never tested: CPIC's "No Result" row, which says so.
    let r = one("azathioprine", &[g(Gene::Tpmt, "*1/*1")]);
    assert_eq!(r.action, Action::Standard);
    assert!(r.recommendation.contains("NUDT15 not tested"), "{r:?}");
    // TPMT intermediate, NUDT15 never tested: the one-gene reduction.
    assert!(is_dose(
        &one("azathioprine", &[g(Gene::Tpmt, "*1/*3A")]).action
    ));
}

#[test]
fn hla_drugs() {
    assert_eq!(
        one("abacavir", &[g(Gene::HlaB, "*57:01 positive")]).action,
        Action::Avoid
    );
    assert_eq!(
        one("abacavir", &[g(Gene::HlaB, "*57:01 negative")]).action,
        Action::Standard
    );
    assert_eq!(
        one("allopurinol", &[g(Gene::HlaB, "*58:01/*07:02")]).action,
        Action::Avoid
    );
    assert_eq!(
        one("carbamazepine", &[g(Gene::HlaB, "*15:02 positive")]).action,
        Action::Avoid
    );
    let r = one(
        "carbamazepine",
        &[
            g(Gene::HlaB, "*15:02 negative"),
            g(Gene::HlaA, "*31:01 positive"),
        ],
    );
    assert_eq!(r.action, Action::Avoid);
    let r = one(
        "carbamazepine",
        &[
            g(Gene::HlaB, "*15:02 negative"),
            g(Gene::HlaA, "*31:01 negative"),
        ],
    );
    assert_eq!(r.action, Action::Standard);
    assert_eq!(
        one("oxcarbazepine", &[g(Gene::HlaB, "*15:02/*15:02")]).action,
        Action::Avoid
    );
}

#[test]
fn g6pd_ryr1_mtrnr1_ifnl3_siponimod() {
    assert_eq!(
        one("rasburicase", &[g(Gene::G6pd, "A-")]).action,
        Action::Avoid
    );
    assert_eq!(
        one("pegloticase", &[called(Gene::G6pd, "Deficient")]).action,
        Action::Avoid
    );
    assert_eq!(
        one("rasburicase", &[called(Gene::G6pd, "Normal")]).action,
        Action::Standard
    );
    for d in [
        "sevoflurane",
        "suxamethonium",
        "succinylcholine",
        "desflurane",
    ] {
        let a = recommend(
            d,
            &[called(Gene::Ryr1, "Malignant Hyperthermia Susceptibility")],
        );
        assert!(
            matches!(&a[0], Assessment::Recommendation(r) if r.action == Action::Avoid),
            "{d}"
        );
    }
    let a = recommend(
        "isoflurane",
        &[called(
            Gene::Cacna1s,
            "Malignant Hyperthermia Susceptibility",
        )],
    );
    assert!(
        matches!(&a[1], Assessment::Recommendation(r) if r.action == Action::Avoid),
        "{a:?}"
    );
    assert_eq!(
        one("gentamicin", &[g(Gene::MtRnr1, "1555A>G")]).action,
        Action::Avoid
    );
    assert_eq!(
        one(
            "amikacin",
            &[called(
                Gene::MtRnr1,
                "normal risk of aminoglycoside-induced hearing loss"
            )]
        )
        .action,
        Action::Standard
    );
    assert!(matches!(
        one(
            "peginterferon alfa-2a",
            &[called(Gene::Ifnl3, "Unfavorable response genotype")]
        )
        .action,
        Action::Monitor { .. }
    ));
    assert_eq!(
        one("siponimod", &[g(Gene::Cyp2c9, "*3/*3")]).action,
        Action::Avoid
    );
    assert!(is_dose(
        &one("siponimod", &[g(Gene::Cyp2c9, "*1/*3")]).action
    ));
    assert_eq!(
        one("siponimod", &[g(Gene::Cyp2c9, "*2/*2")]).action,
        Action::Standard
    );
    // Siponimod needs the diplotype: a phenotype alone is not enough.
    let a = recommend(
        "siponimod",
        &[called(Gene::Cyp2c9, "Intermediate Metabolizer")],
    );
    assert!(matches!(&a[0], Assessment::Indeterminate { .. }), "{a:?}");
}

#[test]
fn indeterminate_is_never_standard() {
    let cases = [
        ("clopidogrel", g(Gene::Cyp2c19, "*1/*999")),
        ("codeine", g(Gene::Cyp2d6, "*1/*xyz")),
        ("capecitabine", g(Gene::Dpyd, "nonsense")),
        ("abacavir", g(Gene::HlaB, "B*57")),
        ("simvastatin", g(Gene::Slco1b1, "")),
    ];
    for (drug, interp) in cases {
        assert!(interp.phenotype.is_indeterminate(), "{drug}: {interp:?}");
        let a = recommend(drug, std::slice::from_ref(&interp));
        assert!(
            a.iter()
                .all(|x| !matches!(x, Assessment::Recommendation(_))),
            "{drug}: {a:?}"
        );
        assert!(
            matches!(&a[0], Assessment::Indeterminate { .. }),
            "{drug}: {a:?}"
        );
    }
    // A phenotype the table does not cover is indeterminate too.
    let a = recommend(
        "tacrolimus",
        &[called(Gene::Cyp3a5, "Possible Intermediate Metabolizer")],
    );
    assert!(matches!(&a[0], Assessment::Indeterminate { .. }), "{a:?}");
    // Activity-score rules with only a phenotype given.
    let a = recommend(
        "capecitabine",
        &[called(Gene::Dpyd, "Intermediate Metabolizer")],
    );
    assert!(matches!(&a[0], Assessment::Indeterminate { .. }), "{a:?}");
}

#[test]
fn no_genotype_and_not_relevant() {
    let a = recommend("clopidogrel", &[g(Gene::Cyp2d6, "*1/*1")]);
    assert!(
        matches!(&a[0], Assessment::NoGenotype { genes_needed, .. } if genes_needed == &[Gene::Cyp2c19])
    );
    assert_eq!(
        recommend("paracetamol", &[]),
        vec![Assessment::NotPgxRelevant {
            drug: "paracetamol".into()
        }]
    );
    assert!(relevant_genes("paracetamol").is_empty());
    assert!(drugs_for_gene(Gene::Cyp2c19).contains(&"clopidogrel"));
    assert!(drugs_for_gene(Gene::Cyp2c9).contains(&"siponimod"));
    assert!(drugs_for_gene(Gene::Nat2).is_empty());
}

#[test]
fn every_drug_has_a_non_standard_rule() {
    // Each pair carries at least one actionable row (the tests above exercise them).
    let f = data().unwrap_or_else(|e| panic!("{e}"));
    for gl in &f.guidelines {
        for t in &gl.tables {
            assert!(
                t.rules.iter().any(|r| r.action != Action::Standard),
                "{} {}",
                gl.id,
                t.table
            );
        }
    }
}

proptest! {
    #[test]
    fn recommend_never_panics(
        drug in "\\PC{0,20}",
        gene_idx in 0usize..22,
        diplotype in "\\PC{0,30}",
        score in proptest::option::of("[≥0-9.]{0,5}"),
    ) {
        let gene = Gene::ALL[gene_idx];
        let mut i = interpret(gene, &diplotype);
        if score.is_some() { i.activity_score = score; }
        let _ = recommend(&drug, std::slice::from_ref(&i));
        for d in drugs() {
            let _ = recommend(d, std::slice::from_ref(&i));
        }
    }
}

#[test]
fn verification_is_parsed_from_the_text_prefix() {
    assert_eq!(
        Verification::parse(Some(
            "verified 2026-11-29 against CPIC clopidogrel 2022 Table 2 (PMC9287492)"
        )),
        Verification::Verified {
            date: "2026-11-29".into(),
            against: "CPIC clopidogrel 2022 Table 2 (PMC9287492)".into(),
        }
    );
    let partly = "PARTLY VERIFIED 2026-11-29: NUDT15 rows only; TPMT rows not read.";
    assert_eq!(
        Verification::parse(Some(partly)),
        Verification::Partly {
            note: partly.into()
        }
    );
    let un = "UNVERIFIED (2026-11-29): transcribed from memory.";
    assert_eq!(
        Verification::parse(Some(un)),
        Verification::Unverified { note: un.into() }
    );
    // Fail safe: absent, empty, "verified" without a source, or anything else is unverified.
    for text in [
        None,
        Some(""),
        Some("   "),
        Some("verified"),
        Some("verified 2026-11-29"),
        Some("verified 2026-11-29 against "),
        Some("not verified against anything"),
        Some("unverified, but verified against X later?"),
        Some("verifiedly against X"),
    ] {
        let v = Verification::parse(text);
        assert!(
            matches!(v, Verification::Unverified { .. }),
            "{text:?} → {v:?}"
        );
        assert!(!v.is_verified());
        assert_eq!(v.label(), "unverified");
    }
    assert_eq!(Verification::default(), Verification::parse(None));
    // Serialized with a status tag, for the CLI and any API consumer.
    assert_eq!(
        serde_json::to_value(Verification::parse(Some(un))).unwrap(),
        serde_json::json!({"status": "unverified", "note": un})
    );
}

#[test]
fn every_citation_carries_its_guidelines_verification() {
    let raw: serde_json::Value = serde_json::from_str(DATA).unwrap();
    let (_, infos) = kb_versions();
    for (g, info) in raw["guidelines"].as_array().unwrap().iter().zip(&infos) {
        assert_eq!(g["id"], info.id);
        let text = g.get("verified").and_then(|v| v.as_str());
        let expected = Verification::parse(text);
        assert_eq!(info.verification, &expected, "{}", info.id);
        // Only the exact "verified <date> against <source>" form counts as verified.
        assert_eq!(
            expected.is_verified(),
            text.is_some_and(|t| t.trim_start().starts_with("verified ") && t.contains(" against ")),
            "{}",
            info.id
        );
    }
    // Every assessment that cites a guideline carries that guideline's verification.
    let none: [Interpretation; 0] = [];
    let all: Vec<Interpretation> = Gene::ALL.iter().map(|g| interpret(*g, "*1/*1")).collect();
    for drug in drugs() {
        for genotypes in [&none[..], &all[..]] {
            for a in recommend(drug, genotypes) {
                let c = match &a {
                    Assessment::Recommendation(r) => &r.guideline,
                    Assessment::Indeterminate { guideline, .. }
                    | Assessment::NoGenotype { guideline, .. } => guideline,
                    Assessment::NotPgxRelevant { .. } => panic!("{drug}: not relevant"),
                };
                let info = infos
                    .iter()
                    .find(|i| i.name == c.name && i.url == c.url && i.drugs.contains(&drug))
                    .unwrap_or_else(|| panic!("{drug}: no guideline {}", c.name));
                assert_eq!(&c.verification, info.verification, "{drug}");
                let json = serde_json::to_value(&a).unwrap();
                assert_eq!(
                    json["guideline"]["verification"]["status"],
                    serde_json::to_value(info.verification).unwrap()["status"],
                    "{drug}"
                );
            }
        }
    }
}
