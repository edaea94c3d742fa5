use std::collections::HashSet;

use proptest::prelude::*;
use smr_fhir::nhs_number;

use super::*;

fn config(patients: usize, seed: u64) -> SynthConfig {
    SynthConfig {
        patients,
        seed,
        ..SynthConfig::default()
    }
}

fn of_type<'a>(p: &'a Population, ty: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    p.resources().filter(move |r| r["resourceType"] == ty)
}

#[test]
fn same_seed_same_population_other_seed_other_population() {
    let a = generate(&config(60, 42));
    let b = generate(&config(60, 42));
    assert_eq!(a, b);
    let text_a = serde_json::to_string(&a.bundles).unwrap();
    assert_eq!(text_a, serde_json::to_string(&b.bundles).unwrap());
    let c = generate(&config(60, 43));
    assert_ne!(text_a, serde_json::to_string(&c.bundles).unwrap());
}

#[test]
fn nhs_numbers_are_valid_synthetic_and_unique() {
    let p = generate(&config(3000, 7));
    let numbers: Vec<&str> = of_type(&p, "Patient")
        .map(|r| r["identifier"][0]["value"].as_str().unwrap())
        .collect();
    assert_eq!(numbers.len(), 3000);
    assert_eq!(numbers.iter().collect::<HashSet<_>>().len(), numbers.len());
    for n in numbers {
        assert!(nhs_number::is_valid(n), "{n}");
        let v: u64 = n.parse().unwrap();
        assert!((9_990_000_000..=9_999_999_999).contains(&v), "{n}");
    }
}

#[test]
fn every_resource_validates_and_is_marked_as_test_data() {
    let p = generate(&config(400, 3));
    let mut count = 0;
    for r in p.resources() {
        if let Err(issues) = smr_fhir::validate::validate_resource(r) {
            panic!("{} does not validate: {issues:?}\n{r:#}", r["resourceType"]);
        }
        let security = r["meta"]["security"].as_array().expect("meta.security");
        assert!(
            security
                .iter()
                .any(|c| c["system"] == ACT_REASON_SYSTEM && c["code"] == "HTEST")
        );
        count += 1;
    }
    assert_eq!(count, p.resources);
}

#[test]
fn every_dmd_code_is_in_smr_dmd_and_displayed_with_its_term() {
    for drug in clinical::ALL_DRUGS {
        if let Some(code) = drug.code {
            let product = smr_dmd::products().iter().find(|p| p.code == code);
            let product =
                product.unwrap_or_else(|| panic!("{code} ({}) is not in smr-dmd", drug.name));
            assert_eq!(product.term, drug.name, "{code}");
            assert_eq!(product.kind, smr_dmd::ConceptKind::Vmp, "{code}");
        }
    }
    let p = generate(&config(500, 5));
    let mut coded = 0;
    for r in p.resources() {
        for coding in r["medicationCodeableConcept"]["coding"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert_eq!(coding["system"], DMD_SYSTEM);
            let code = coding["code"].as_str().unwrap();
            let product = smr_dmd::products()
                .iter()
                .find(|p| p.code == code)
                .expect("code in smr-dmd");
            assert_eq!(coding["display"], product.term.as_str());
            coded += 1;
        }
    }
    assert!(coded > 50, "only {coded} coded medicines");
}

#[test]
fn snomed_codes_pass_the_verhoeff_check() {
    for c in clinical::Condition::ALL {
        assert!(smr_dmd::is_sctid(c.snomed().0), "{c:?}");
    }
    for code in ["91936005", "39579001"] {
        assert!(smr_dmd::is_sctid(code), "{code}");
    }
}

#[test]
fn bundles_are_transactions_with_resolvable_placeholders() {
    let p = generate(&config(120, 9));
    assert_eq!(p.bundles.len(), 3);
    for b in &p.bundles {
        assert_eq!(b["type"], "transaction");
        let entries = b["entry"].as_array().unwrap();
        let urls: HashSet<&str> = entries
            .iter()
            .map(|e| e["fullUrl"].as_str().unwrap())
            .collect();
        assert_eq!(urls.len(), entries.len(), "fullUrls are distinct");
        for e in entries {
            assert_eq!(e["request"]["method"], "POST");
            assert_eq!(e["request"]["url"], e["resource"]["resourceType"]);
            let mut refs = Vec::new();
            smr_fhir::references::collect(&e["resource"], &mut refs);
            for r in refs {
                assert!(
                    urls.contains(r.as_str()),
                    "{r} is not an entry of its Bundle"
                );
            }
        }
        // The ICB: conditional create, first in every Bundle.
        assert!(
            entries[0]["request"]["ifNoneExist"]
                .as_str()
                .unwrap()
                .starts_with("identifier=")
        );
    }
}

#[test]
fn the_population_looks_like_primary_care() {
    let p = generate(&config(2000, 1));
    let patients: Vec<&Value> = of_type(&p, "Patient").collect();
    let female = patients.iter().filter(|r| r["gender"] == "female").count() as f64 / 2000.0;
    assert!((0.46..0.56).contains(&female), "{female}");
    let with = |ty: &str| {
        of_type(&p, ty)
            .map(|r| {
                let s = r.get("subject").or_else(|| r.get("patient")).unwrap();
                s["reference"].as_str().unwrap().to_owned()
            })
            .collect::<HashSet<_>>()
            .len() as f64
            / 2000.0
    };
    let allergic = with("AllergyIntolerance");
    assert!((0.07..0.13).contains(&allergic), "allergies {allergic}");
    let genotyped = with("Observation");
    // 15% of adults (about 79% of patients are adults).
    assert!((0.09..0.15).contains(&genotyped), "genotyped {genotyped}");
    assert!(with("MedicationStatement") > 0.05);
    let statuses: HashSet<&str> = of_type(&p, "MedicationRequest")
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, HashSet::from(["active", "completed", "stopped"]));
    let categories: HashSet<&str> = of_type(&p, "MedicationRequest")
        .map(|r| r["category"][0]["coding"][0]["code"].as_str().unwrap())
        .collect();
    assert_eq!(categories, HashSet::from(["community", "inpatient"]));

    // Polypharmacy rises with age: mean active repeats for 75+ (about 3.8) far above under-40s.
    let mut active: std::collections::HashMap<&str, usize> = Default::default();
    for r in of_type(&p, "MedicationRequest").filter(|r| r["status"] == "active") {
        *active
            .entry(r["subject"]["reference"].as_str().unwrap())
            .or_default() += 1;
    }
    let fulls: Vec<(&str, i32)> = p
        .bundles
        .iter()
        .flat_map(|b| b["entry"].as_array().unwrap())
        .filter(|e| e["resource"]["resourceType"] == "Patient")
        .map(|e| {
            (
                e["fullUrl"].as_str().unwrap(),
                e["resource"]["birthDate"].as_str().unwrap()[..4]
                    .parse()
                    .unwrap(),
            )
        })
        .collect();
    let mean = |keep: &dyn Fn(i32) -> bool| {
        let group: Vec<_> = fulls.iter().filter(|(_, y)| keep(*y)).collect();
        group
            .iter()
            .map(|(u, _)| active.get(u).copied().unwrap_or(0))
            .sum::<usize>() as f64
            / group.len() as f64
    };
    let old = mean(&|y| y <= 1950);
    let young = mean(&|y| y >= 1987);
    assert!(
        old > 3.0 && young < 1.0 && old > 5.0 * young,
        "75+: {old}, under 40: {young}"
    );
}

#[test]
fn penicillin_allergy_means_no_penicillin() {
    let p = generate(&config(3000, 2));
    let allergic: HashSet<&str> = of_type(&p, "AllergyIntolerance")
        .filter(|r| r["code"]["text"] == "Allergy to penicillin")
        .map(|r| r["patient"]["reference"].as_str().unwrap())
        .collect();
    assert!(!allergic.is_empty());
    for r in of_type(&p, "MedicationRequest") {
        let text = r["medicationCodeableConcept"]["text"].as_str().unwrap();
        if text.contains("cillin") {
            assert!(
                !allergic.contains(r["subject"]["reference"].as_str().unwrap()),
                "{text}"
            );
        }
    }
}

#[test]
fn genotypes_are_read_by_smr_cds() {
    let p = generate(&config(300, 4));
    let mut n = 0;
    for r in of_type(&p, "Observation") {
        let result = smr_cds::genotype::read_observation(r)
            .expect("readable")
            .expect("a genotype");
        let interpretation = result.interpretation();
        assert!(
            matches!(interpretation.phenotype, smr_pgx::Phenotype::Called(_)),
            "{interpretation:?}"
        );
        n += 1;
    }
    assert!(n > 0);
}

#[test]
fn tiny_and_capped_populations() {
    let empty = generate(&config(0, 1));
    assert_eq!(empty.patients, 0);
    assert_eq!(of_type(&empty, "Patient").count(), 0);
    let one = generate(&SynthConfig {
        patients: 1,
        patients_per_practice: 0,
        ..SynthConfig::default()
    });
    assert_eq!(of_type(&one, "Patient").count(), 1);
    assert!(max_patients() > 800_000);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn generation_never_panics(seed in any::<u64>(), patients in 0usize..40, per in 0usize..20) {
        let p = generate(&SynthConfig { patients, seed, patients_per_practice: per, ..SynthConfig::default() });
        prop_assert_eq!(of_type(&p, "Patient").count(), patients);
        for r in p.resources() {
            prop_assert!(smr_fhir::validate::validate_resource(r).is_ok(), "{}", r);
        }
    }
}
