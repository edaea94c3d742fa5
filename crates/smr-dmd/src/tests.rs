use super::*;
use proptest::prelude::*;

#[test]
fn data_file_loads_and_every_code_passes_verhoeff() {
    assert_eq!(check_dictionary(), Ok(()));
    let mut n = 0;
    for p in products() {
        assert!(is_sctid(&p.code), "{} {}", p.code, p.term);
        n += 1;
    }
    for i in ingredients() {
        if let Some(v) = &i.vtm {
            assert!(is_sctid(v), "{} {v}", i.name);
            n += 1;
        }
    }
    assert!(n > 200, "expected the full subset, found {n} codes");
}

#[test]
fn verhoeff_known_values() {
    // Clopidogrel 75mg tablets (VMP) and a UK-extension AMP from the PINCER codelists.
    assert!(verhoeff_valid("319799004"));
    assert!(is_sctid("923011000001105"));
    // One digit changed, and two adjacent digits swapped, both fail.
    assert!(!verhoeff_valid("319799005"));
    assert!(!verhoeff_valid("317999004"));
    assert!(!is_sctid("12345"));
    assert!(!is_sctid("0319799004"));
    assert!(!is_sctid("31979900a"));
    assert!(!verhoeff_valid(""));
}

#[test]
fn vmp_code_under_either_system() {
    for system in DMD_SYSTEMS {
        let r = identify(&[(Some(system), "319799004")], None);
        let Identified::ByCode {
            ingredients,
            concept,
            term,
            ..
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(ingredients[0].name, "clopidogrel");
        assert_eq!(concept, ConceptKind::Vmp);
        assert_eq!(term, "Clopidogrel 75mg tablets");
    }
}

#[test]
fn vtm_and_amp_codes() {
    let r = identify(&[(Some("http://snomed.info/sct"), "108979001")], None);
    assert!(matches!(
        &r,
        Identified::ByCode {
            concept: ConceptKind::Vtm,
            ..
        }
    ));
    assert_eq!(r.ingredient_names(), vec!["clopidogrel"]);
    let r = identify(&[(Some("https://dmd.nhs.uk"), "923011000001105")], None);
    assert!(matches!(
        &r,
        Identified::ByCode {
            concept: ConceptKind::Amp,
            ..
        }
    ));
    assert_eq!(r.ingredient_names(), vec!["omeprazole"]);
}

#[test]
fn combination_product_by_code_gives_both_ingredients() {
    // Ibuprofen 200mg / Codeine 12.8mg tablets
    let r = identify(&[(Some("https://dmd.nhs.uk"), "329683004")], None);
    assert_eq!(r.ingredient_names(), vec!["codeine", "ibuprofen"]);
}

#[test]
fn text_matching_is_word_based_and_case_insensitive() {
    assert_eq!(
        identify(&[], Some("CLOPIDOGREL 75mg tablets")).ingredient_names(),
        vec!["clopidogrel"]
    );
    assert_eq!(
        identify(&[], Some("Escitalopram 10mg tablets")).ingredient_names(),
        vec!["escitalopram"]
    );
    assert_eq!(
        identify(&[], Some("esomeprazole 20mg")).ingredient_names(),
        vec!["esomeprazole"]
    );
    assert_eq!(
        identify(&[], Some("Fosphenytoin 750mg/10ml")).ingredient_names(),
        vec!["fosphenytoin"]
    );
    assert_eq!(
        identify(&[], Some("Amitriptyline 10mg / Perphenazine 2mg tablets")).ingredient_names(),
        vec!["amitriptyline", "perphenazine"]
    );
    assert_eq!(
        identify(&[], Some("Kivexa tablets")).ingredient_names(),
        vec!["abacavir", "lamivudine"]
    );
    assert_eq!(
        identify(&[], Some("succinylcholine 100mg/2ml")).ingredient_names(),
        vec!["suxamethonium"]
    );
    assert_eq!(
        identify(&[], Some("Peginterferon alfa-2a 180microgram")).ingredient_names(),
        vec!["peginterferon alfa-2a"]
    );
    assert_eq!(
        identify(&[], Some("Plavix")).ingredient_names(),
        vec!["clopidogrel"]
    );
    // A word containing an ingredient name is not a match.
    assert!(matches!(
        identify(&[], Some("notwarfarinish")),
        Identified::Unknown { .. }
    ));
}

#[test]
fn unrecognised_system_is_not_guessed() {
    let r = identify(
        &[(
            Some("http://www.nlm.nih.gov/research/umls/rxnorm"),
            "319799004",
        )],
        None,
    );
    let Identified::Unknown { reason } = r else {
        panic!("{r:?}")
    };
    assert!(reason.contains("rxnorm"), "{reason}");
    let r = identify(&[(None, "319799004")], None);
    assert!(matches!(r, Identified::Unknown { .. }));
    // With text, the text is used and the ignored code is reported.
    let r = identify(
        &[(Some("urn:oid:1.2.3"), "999")],
        Some("Warfarin 3mg tablets"),
    );
    let Identified::ByText { warnings, .. } = &r else {
        panic!("{r:?}")
    };
    assert_eq!(r.ingredient_names(), vec!["warfarin"]);
    assert_eq!(warnings.len(), 1);
}

#[test]
fn code_outside_subset_falls_back_to_text_or_unknown() {
    // Verhoeff-valid code for a medicine outside the subset (verapamil 160mg, dm+d fixture).
    let r = identify(&[(Some("https://dmd.nhs.uk"), "318248001")], None);
    let Identified::Unknown { reason } = r else {
        panic!("{r:?}")
    };
    assert!(
        reason.contains("not in the pharmacogenomic subset"),
        "{reason}"
    );
    let r = identify(
        &[(Some("https://dmd.nhs.uk"), "318248001")],
        Some("Simvastatin 40mg tablets"),
    );
    assert_eq!(r.ingredient_names(), vec!["simvastatin"]);
    let r = identify(&[(Some("https://dmd.nhs.uk"), "319799005")], None);
    let Identified::Unknown { reason } = r else {
        panic!("{r:?}")
    };
    assert!(
        reason.contains("not a valid SNOMED CT identifier"),
        "{reason}"
    );
}

#[test]
fn conflicting_text_is_reported_but_code_wins() {
    let r = identify(
        &[(Some("https://dmd.nhs.uk"), "319799004")],
        Some("warfarin"),
    );
    let Identified::ByCode { warnings, .. } = &r else {
        panic!("{r:?}")
    };
    assert_eq!(r.ingredient_names(), vec!["clopidogrel"]);
    assert!(warnings.iter().any(|w| w.contains("does not contain")));
}

#[test]
fn unknown_text_and_empty_order() {
    assert!(matches!(
        identify(&[], Some("Metformin 500mg tablets")),
        Identified::Unknown { .. }
    ));
    assert!(matches!(identify(&[], None), Identified::Unknown { .. }));
    assert!(matches!(
        identify(&[], Some("   ")),
        Identified::Unknown { .. }
    ));
}

#[test]
fn ingredient_lookup_by_alias() {
    assert_eq!(
        ingredient(" Thioguanine ").map(|i| i.name.as_str()),
        Some("tioguanine")
    );
    assert_eq!(
        ingredient("clopidogrel").and_then(|i| i.vtm.as_deref()),
        Some("108979001")
    );
    assert!(ingredient("metformin").is_none());
    let info = info();
    assert!(info.is_some_and(|i| i.vmps > 200 && i.amps >= 1));
}

proptest! {
    #[test]
    fn identify_never_panics(
        system in proptest::option::of("\\PC{0,30}"),
        code in "\\PC{0,20}",
        text in proptest::option::of("\\PC{0,80}"),
    ) {
        let _ = identify(&[(system.as_deref(), code.as_str())], text.as_deref());
    }

    #[test]
    fn digit_codes_never_panic(code in "[0-9]{0,20}") {
        let _ = is_sctid(&code);
        let _ = identify(&[(Some("https://dmd.nhs.uk"), code.as_str())], None);
    }
}

#[test]
fn pgx_products_added_in_the_2026_review_are_known_by_code() {
    // Azathioprine 50mg tablets (OpenCodelists and GM-SDE), Co-codamol 30mg/500mg tablets
    // (EPS examples, GM-SDE, OpenCodelists), Citalopram 20mg tablets: the original code and
    // the one dm+d replaced it with.
    for (code, expected) in [
        ("327070006", vec!["azathioprine"]),
        ("322341003", vec!["codeine", "paracetamol"]),
        ("321987003", vec!["citalopram"]),
        ("42269411000001107", vec!["citalopram"]),
    ] {
        let r = identify(&[(Some("http://snomed.info/sct"), code)], None);
        assert_eq!(r.ingredient_names(), expected, "{code}");
    }
}

/// The matching before the first-word index: every phrase (longest first) at every position.
fn match_text_every_phrase(d: &Subset, text: &str) -> (Vec<usize>, Vec<String>) {
    let words = tokens(text);
    let mut used = vec![false; words.len()];
    let mut found = Vec::new();
    let mut matched = Vec::new();
    for (phrase, ingredients) in &d.phrases {
        if phrase.is_empty() || phrase.len() > words.len() {
            continue;
        }
        for start in 0..=(words.len() - phrase.len()) {
            let span = start..start + phrase.len();
            let free = used[span.clone()].iter().all(|x| !x);
            if free && words[span.clone()] == phrase[..] {
                used[span].iter_mut().for_each(|u| *u = true);
                found.extend(ingredients.iter().copied());
                let label = phrase.join(" ");
                if !matched.contains(&label) {
                    matched.push(label);
                }
            }
        }
    }
    (sorted_unique(found), matched)
}

proptest! {
    /// The indexed matcher finds exactly what trying every phrase everywhere finds, on texts
    /// built from the dictionary's own words (so that overlaps and multi-word names occur).
    #[test]
    fn indexed_text_matching_equals_trying_every_phrase(
        picks in proptest::collection::vec(0usize..10_000, 0..8)
    ) {
        let d = dictionary().expect("dictionary");
        let vocabulary: Vec<&str> = d
            .phrases
            .iter()
            .flat_map(|(p, _)| p.iter().map(String::as_str))
            .chain(["tablets", "mg", "and", "with", "alfa", "2a"])
            .collect();
        let text = picks
            .iter()
            .map(|i| vocabulary[i % vocabulary.len()])
            .collect::<Vec<_>>()
            .join(" ");
        prop_assert_eq!(match_text(d, &text), match_text_every_phrase(d, &text));
    }
}
