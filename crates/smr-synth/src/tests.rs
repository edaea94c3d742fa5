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
    let types: HashSet<&str> = p
        .resources()
        .map(|r| r["resourceType"].as_str().unwrap())
        .collect();
    for ty in [
        "Encounter",
        "MedicationDispense",
        "EpisodeOfCare",
        "Organization",
    ] {
        assert!(types.contains(ty), "no {ty} was checked");
    }
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
    for (vmp, amp) in clinical::BRANDS {
        let product = smr_dmd::products()
            .iter()
            .find(|p| Some(p.code.as_str()) == amp.code)
            .expect("brand in smr-dmd");
        assert_eq!(product.kind, smr_dmd::ConceptKind::Amp, "{}", amp.name);
        assert_eq!(product.term, amp.name);
        let generic = smr_dmd::products()
            .iter()
            .find(|p| Some(p.code.as_str()) == vmp.code)
            .expect("VMP in smr-dmd");
        // A brand of the VMP: same ingredients, and the strength the VMP's term names.
        assert_eq!(product.ingredients, generic.ingredients);
        let strength = vmp.name.split_whitespace().nth(1).unwrap();
        assert!(amp.name.contains(strength), "{} / {}", amp.name, vmp.name);
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
    for code in ["91936005", "39579001"].into_iter().chain(dosage::CODES) {
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
    assert_eq!(
        categories,
        HashSet::from(["community", "inpatient", "discharge"])
    );
    let intents: HashSet<&str> = of_type(&p, "MedicationRequest")
        .map(|r| r["intent"].as_str().unwrap())
        .collect();
    assert_eq!(intents, HashSet::from(["plan", "order"]));

    // Polypharmacy rises with age: mean active GP plans for 75+ (about 4) far above under-40s.
    let mut active: std::collections::HashMap<&str, usize> = Default::default();
    for r in of_type(&p, "MedicationRequest")
        .filter(|r| r["status"] == "active" && r["intent"] == "plan")
    {
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

// Care beyond the practice, and the demo sign-ins.

const DAY: i64 = 86_400 * 1_000_000;

/// Start of the generator's today, in microseconds: "now" for care-relationship windows.
fn now(config: &SynthConfig) -> i64 {
    smr_fhir::datetime::parse_range(&date(config.today))
        .unwrap()
        .0
}

fn range(text: &Value) -> (i64, i64) {
    smr_fhir::datetime::parse_range(text.as_str().expect("a date")).expect("a FHIR date")
}

/// One Bundle's resources by fullUrl.
fn by_url(bundle: &Value) -> std::collections::HashMap<&str, &Value> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["fullUrl"].as_str().unwrap(), &e["resource"]))
        .collect()
}

fn ods(org: &Value) -> &str {
    org["identifier"][0]["value"].as_str().unwrap()
}

/// The ODS code of the Organization a reference names (checked against the code the
/// reference carries, when it carries one).
fn org_code<'a>(urls: &std::collections::HashMap<&str, &'a Value>, reference: &Value) -> &'a str {
    let org = urls[reference["reference"].as_str().unwrap()];
    assert_eq!(org["resourceType"], "Organization");
    let code = ods(org);
    if let Some(id) = reference.get("identifier") {
        assert_eq!(id["system"], ODS_SYSTEM);
        assert_eq!(id["value"], code);
    }
    code
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Link {
    Gp,
    Encounter,
    Nomination,
    Dispense,
    Episode,
}

/// Each patient's (by NHS number) current care relationships at the generator's today, read
/// from the resources with the windows of `smr_access::care` (30 days after a stay ends, 90
/// days after a prescription is authored or a dispense handed over).
fn current_links(p: &Population, config: &SynthConfig) -> HashMap<String, HashSet<(Link, String)>> {
    let now = now(config);
    let mut out: HashMap<String, HashSet<(Link, String)>> = HashMap::new();
    for b in &p.bundles {
        let urls = by_url(b);
        let nhs = |subject: &Value| {
            let patient = urls[subject["reference"].as_str().unwrap()];
            patient["identifier"][0]["value"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        for r in urls.values() {
            let (who, link, org) = match r["resourceType"].as_str().unwrap() {
                "Patient" => {
                    let gp = &r["generalPractitioner"][0];
                    (
                        r["identifier"][0]["value"].as_str().unwrap().to_owned(),
                        Link::Gp,
                        gp,
                    )
                }
                "Encounter" => {
                    let current = r["status"] == "in-progress"
                        || (r["status"] == "finished"
                            && range(&r["period"]["end"]).1 + 30 * DAY > now);
                    if !current {
                        continue;
                    }
                    (nhs(&r["subject"]), Link::Encounter, &r["serviceProvider"])
                }
                "MedicationRequest" => {
                    let Some(performer) = r.pointer("/dispenseRequest/performer") else {
                        continue;
                    };
                    if range(&r["authoredOn"]).0 + 90 * DAY <= now {
                        continue;
                    }
                    (nhs(&r["subject"]), Link::Nomination, performer)
                }
                "MedicationDispense" => {
                    if range(&r["whenHandedOver"]).1 + 90 * DAY <= now {
                        continue;
                    }
                    (
                        nhs(&r["subject"]),
                        Link::Dispense,
                        &r["performer"][0]["actor"],
                    )
                }
                "EpisodeOfCare" => {
                    assert_eq!(r["status"], "active");
                    (
                        nhs(&r["patient"]),
                        Link::Episode,
                        &r["managingOrganization"],
                    )
                }
                _ => continue,
            };
            let code = org_code(&urls, org).to_owned();
            out.entry(who).or_default().insert((link, code));
        }
    }
    out
}

use std::collections::HashMap;

#[test]
fn locality_organisations_are_synthetic_shared_and_conditional() {
    // 4000 patients, 50 a practice: 80 practices, 40 per ICB, so 4 localities per ICB.
    let p = generate(&config(4000, 8));
    let mut seen: HashMap<String, Value> = HashMap::new();
    for (index, b) in p.bundles.iter().enumerate() {
        let urls = by_url(b);
        let locality = care::locality_of(index, ICBS.len());
        let mut codes = Vec::new();
        for e in b["entry"].as_array().unwrap() {
            let r = &e["resource"];
            if r["resourceType"] != "Organization" {
                continue;
            }
            let code = ods(r);
            let (prefix, digits) = code.split_at(3);
            let (org_type, text, setting) = match prefix {
                "Y9H" => ("prov", "NHS trust (acute hospital)", "hospital"),
                "Y9P" => ("prov", "Community pharmacy", "community-pharmacy"),
                "Y9C" => ("team", "Community nursing team", "community"),
                "Y9K" => ("prov", "Care home", "care-home"),
                _ => continue,
            };
            codes.push(code.to_owned());
            assert_eq!(digits, format!("{locality:03}"), "{code} in Bundle {index}");
            assert_eq!(r["type"][0]["text"], text);
            assert_eq!(r["type"][0]["coding"][0]["code"], org_type);
            assert_eq!(r["type"][0]["coding"][1]["system"], CARE_SETTING_SYSTEM);
            assert_eq!(r["type"][0]["coding"][1]["code"], setting);
            assert!(r["name"].as_str().unwrap().ends_with(" (synthetic)"));
            assert_eq!(
                e["request"]["ifNoneExist"],
                format!("identifier={ODS_SYSTEM}|{code}").as_str()
            );
            let parent = urls[r["partOf"]["reference"].as_str().unwrap()];
            let expected_parent = if prefix == "Y9C" {
                care::hospital_code(locality)
            } else {
                ICBS[index % ICBS.len()].0.to_owned()
            };
            assert_eq!(ods(parent), expected_parent);
            // The same Organization in every Bundle of the locality (but for the placeholder
            // of its parent, which is per Bundle).
            let mut same = r.clone();
            same["partOf"]["reference"] = Value::Null;
            if let Some(first) = seen.insert(code.to_owned(), same.clone()) {
                assert_eq!(first, same, "{code}");
            }
        }
        assert_eq!(codes.len(), 4, "Bundle {index}");
    }
    assert_eq!(seen.len(), 4 * 8);
}

#[test]
fn care_beyond_the_practice_has_realistic_shares() {
    let cfg = config(3000, 6);
    let p = generate(&cfg);
    let now = now(&cfg);
    let n = 3000.0;

    // Inpatient stays: about 15% of patients, current, recent and old.
    let encounters: Vec<&Value> = of_type(&p, "Encounter").collect();
    let admitted: HashSet<&str> = encounters
        .iter()
        .map(|r| r["subject"]["reference"].as_str().unwrap())
        .collect();
    let share = admitted.len() as f64 / n;
    assert!((0.11..0.19).contains(&share), "admitted {share}");
    let (mut current, mut recent, mut old) = (0, 0, 0);
    for r in &encounters {
        assert_eq!(r["class"]["code"], "IMP");
        assert_eq!(
            r["class"]["system"],
            "http://terminology.hl7.org/CodeSystem/v3-ActCode"
        );
        let start = range(&r["period"]["start"]).0;
        assert!(start < now + DAY);
        match r["status"].as_str().unwrap() {
            "in-progress" => {
                assert!(r["period"].get("end").is_none());
                current += 1;
            }
            "finished" => {
                let end = range(&r["period"]["end"]);
                assert!(start < end.0 && end.1 <= now);
                if end.1 + 30 * DAY > now {
                    recent += 1;
                } else {
                    old += 1;
                }
            }
            other => panic!("status {other}"),
        }
    }
    let total = encounters.len() as f64;
    assert!((0.2..0.4).contains(&(current as f64 / total)), "{current}");
    assert!((0.35..0.55).contains(&(recent as f64 / total)), "{recent}");
    assert!((0.15..0.35).contains(&(old as f64 / total)), "{old}");

    // Pharmacy nominations: most patients with active GP plans; the latest issues of active
    // plans mostly within 90 days.
    let active: Vec<&Value> = of_type(&p, "MedicationRequest")
        .filter(|r| r["status"] == "active" && r["intent"] == "plan")
        .collect();
    let with_active: HashSet<&str> = active
        .iter()
        .map(|r| r["subject"]["reference"].as_str().unwrap())
        .collect();
    let nominating: HashSet<&str> = active
        .iter()
        .filter(|r| r.pointer("/dispenseRequest/performer").is_some())
        .map(|r| r["subject"]["reference"].as_str().unwrap())
        .collect();
    let share = nominating.len() as f64 / with_active.len() as f64;
    assert!((0.78..0.92).contains(&share), "nominating {share}");
    let mut latest_issues: HashMap<String, &Value> = HashMap::new();
    for b in &p.bundles {
        let urls = by_url(b);
        for r in urls.values().filter(|r| r["intent"] == "order") {
            let Some(plan) = r["basedOn"][0]["reference"].as_str() else {
                continue;
            };
            assert_eq!(urls[plan]["intent"], "plan");
            if urls[plan]["status"] != "active" {
                continue;
            }
            let key = format!("{}{plan}", b["entry"][0]["fullUrl"]);
            let newer = latest_issues
                .get(&key)
                .is_none_or(|old| old["authoredOn"].as_str() < r["authoredOn"].as_str());
            if newer {
                latest_issues.insert(key, r);
            }
        }
    }
    let nominated: Vec<&Value> = latest_issues
        .values()
        .copied()
        .filter(|r| r.pointer("/dispenseRequest/performer").is_some())
        .collect();
    let in_window = nominated
        .iter()
        .filter(|r| range(&r["authoredOn"]).0 + 90 * DAY > now)
        .count() as f64
        / nominated.len() as f64;
    assert!((0.75..0.95).contains(&in_window), "in 90 days {in_window}");
    for r in of_type(&p, "MedicationRequest") {
        if r["category"][0]["coding"][0]["code"] == "inpatient" {
            assert!(r.get("dispenseRequest").is_none());
        }
    }

    // Dispenses: completed, of the issue they name (its product, or a brand of it), by the
    // nominated pharmacy, after it was issued and not after today; of active plans, but for
    // the stopped ones dispensed after the stop.
    let mut dispenses = 0;
    let mut branded = 0;
    for b in &p.bundles {
        let urls = by_url(b);
        for r in urls
            .values()
            .filter(|r| r["resourceType"] == "MedicationDispense")
        {
            let rx = urls[r["authorizingPrescription"][0]["reference"]
                .as_str()
                .unwrap()];
            assert_eq!(rx["resourceType"], "MedicationRequest");
            assert_eq!(rx["intent"], "order");
            let plan = urls[rx["basedOn"][0]["reference"].as_str().unwrap()];
            assert_eq!(r["status"], "completed");
            if r["medicationCodeableConcept"] != rx["medicationCodeableConcept"] {
                let vmp = rx["medicationCodeableConcept"]["coding"][0]["code"].as_str();
                let amp = r["medicationCodeableConcept"]["coding"][0]["code"].as_str();
                assert!(
                    clinical::BRANDS
                        .iter()
                        .any(|(v, a)| v.code == vmp && a.code == amp),
                    "{r}"
                );
                branded += 1;
            }
            assert_eq!(r["subject"], rx["subject"]);
            assert_eq!(
                r["performer"][0]["actor"],
                rx["dispenseRequest"]["performer"]
            );
            assert!(r["quantity"]["value"].as_u64().unwrap() > 0);
            let handed = range(&r["whenHandedOver"]);
            assert!(handed.0 > range(&rx["authoredOn"]).1, "{r}");
            assert!(handed.1 <= now + DAY);
            match plan["status"].as_str().unwrap() {
                "active" => dispenses += 1,
                "stopped" => {
                    let stop = range(&plan["dispenseRequest"]["validityPeriod"]["end"]);
                    assert!(handed.0 >= stop.1, "dispensed after the stop: {r}");
                }
                other => panic!("dispense of a {other} plan"),
            }
        }
    }
    let share = dispenses as f64 / nominated.len() as f64;
    assert!((0.5..0.7).contains(&share), "dispensed {share}");
    assert!(branded > 0, "no dispense of a brand");

    // Community nursing: about 5%, active, with the locality team.
    let episodes: HashSet<&str> = of_type(&p, "EpisodeOfCare")
        .map(|r| r["patient"]["reference"].as_str().unwrap())
        .collect();
    let share = episodes.len() as f64 / n;
    assert!((0.03..0.07).contains(&share), "episodes {share}");

    // Every patient is registered; hospitals, pharmacies and teams each have current links.
    let links = current_links(&p, &cfg);
    assert_eq!(links.len(), 3000);
    for kind in [
        Link::Encounter,
        Link::Nomination,
        Link::Dispense,
        Link::Episode,
    ] {
        let patients = links.values().filter(|l| l.iter().any(|(k, _)| *k == kind));
        assert!(patients.count() > 50, "{kind:?}");
    }
}

/// Configs the demo claims are checked on: the default `smr serve` population and others.
fn demo_configs() -> Vec<SynthConfig> {
    let mut configs = vec![SynthConfig::default()];
    for seed in 2..8 {
        configs.push(config(200, seed));
    }
    configs.push(SynthConfig {
        patients: 90,
        seed: 11,
        patients_per_practice: 7,
        ..SynthConfig::default()
    });
    configs.push(config(1500, 12));
    configs
}

#[test]
fn the_demo_patient_is_cared_for_by_every_demo_organisation() {
    for cfg in demo_configs() {
        let p = generate(&cfg);
        let demo = demo_organisations(&cfg);
        let nhs = demo_patient_nhs_number(&cfg);
        let links = current_links(&p, &cfg);
        let mine = &links[&nhs];
        for expected in [
            (Link::Gp, &demo.gp_practice),
            (Link::Encounter, &demo.hospital),
            (Link::Nomination, &demo.pharmacy),
            (Link::Dispense, &demo.pharmacy),
            (Link::Episode, &demo.community_team),
        ] {
            assert!(
                mine.contains(&(expected.0, expected.1.clone())),
                "seed {}: {expected:?} not in {mine:?}",
                cfg.seed
            );
        }
        // The demo patient is in the first Bundle, which holds the practice and its ICB, is in
        // hospital now, and shows the most: active medicines (one with PGx guidance) and a
        // genotype panel.
        let b = &p.bundles[0];
        let urls = by_url(b);
        let (patient_url, _) = urls
            .iter()
            .find(|(_, r)| {
                r["resourceType"] == "Patient" && r["identifier"][0]["value"] == nhs.as_str()
            })
            .expect("the demo patient is in the first practice's Bundle");
        let practice = urls[b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["fullUrl"] == *patient_url)
            .unwrap()["resource"]["generalPractitioner"][0]["reference"]
            .as_str()
            .unwrap()];
        assert_eq!(ods(practice), demo.gp_practice);
        let sub_icb = urls[practice["partOf"]["reference"].as_str().unwrap()];
        assert!(ods(sub_icb).starts_with("Y9S"));
        assert_eq!(
            ods(urls[sub_icb["partOf"]["reference"].as_str().unwrap()]),
            demo.icb
        );
        let of_patient = |ty: &'static str| {
            urls.values().filter(move |r| {
                r["resourceType"] == ty
                    && [&r["subject"], &r["patient"]]
                        .iter()
                        .any(|s| s["reference"] == *patient_url)
            })
        };
        assert!(of_patient("Encounter").any(|r| r["status"] == "in-progress"
            && org_code(&urls, &r["serviceProvider"]) == demo.hospital));
        assert_eq!(of_patient("Observation").count(), 4, "a genotype panel");
        assert!(
            of_patient("MedicationRequest")
                .filter(|r| r["status"] == "active")
                .any(|r| smr_cds::cards::has_pgx_guidance(r)),
            "seed {}",
            cfg.seed
        );
        // Demo sign-ins see more than the demo patient.
        for (kind, code) in [
            (Link::Gp, &demo.gp_practice),
            (Link::Encounter, &demo.hospital),
            (Link::Nomination, &demo.pharmacy),
        ] {
            let others = links
                .iter()
                .filter(|(n, l)| **n != nhs && l.contains(&(kind, code.clone())))
                .count();
            assert!(others > 0, "seed {}: nobody else for {kind:?}", cfg.seed);
        }
    }
}

#[test]
fn demo_sign_ins_are_deterministic_and_cheap_to_ask() {
    let cfg = SynthConfig::default();
    assert_eq!(
        demo_organisations(&cfg),
        DemoOrganisations {
            gp_practice: "Y90000".into(),
            hospital: "Y9H000".into(),
            pharmacy: "Y9P000".into(),
            community_team: "Y9C000".into(),
            icb: "Q9X".into(),
        }
    );
    let nhs = demo_patient_nhs_number(&cfg);
    assert!(nhs_number::is_valid(&nhs));
    assert_eq!(demo_patient_nhs_number(&cfg), nhs);
    // Asking for a huge population draws only the first practice's records.
    let huge = SynthConfig {
        patients: max_patients(),
        ..cfg.clone()
    };
    assert!(nhs_number::is_valid(&demo_patient_nhs_number(&huge)));
    // No patients, no demo patient; one patient, that one.
    assert_eq!(demo_patient_nhs_number(&config(0, 1)), "");
    let one = config(1, 3);
    let p = generate(&one);
    let only = of_type(&p, "Patient").next().unwrap();
    assert_eq!(
        only["identifier"][0]["value"],
        demo_patient_nhs_number(&one).as_str()
    );
    assert!(
        current_links(&p, &one)[&demo_patient_nhs_number(&one)]
            .contains(&(Link::Encounter, demo_organisations(&one).hospital))
    );
}

// Settings: Provenance of every medication entry, and the conflicts between settings.

const MEDICATION_TYPES: [&str; 4] = [
    "MedicationRequest",
    "MedicationDispense",
    "MedicationAdministration",
    "MedicationStatement",
];

/// The care setting a medication entry's own elements say it came from.
fn setting_of(r: &Value) -> &'static str {
    let category = |r: &Value| {
        let c = &r["category"];
        c[0]["coding"][0]["code"]
            .as_str()
            .or(c["coding"][0]["code"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    match (r["resourceType"].as_str().unwrap(), category(r).as_str()) {
        ("MedicationRequest", "community") => "gp-practice",
        ("MedicationRequest", "inpatient" | "discharge") => "hospital",
        ("MedicationDispense", _) => "community-pharmacy",
        ("MedicationAdministration", "inpatient") => "hospital",
        ("MedicationAdministration", "community") => "care-home",
        ("MedicationStatement", "inpatient") => "hospital",
        ("MedicationStatement", "patientspecified") => "patient-reported",
        (ty, c) => panic!("{ty} with category {c:?}"),
    }
}

#[test]
fn every_medication_entry_has_a_provenance_with_its_care_setting() {
    let p = generate(&config(600, 13));
    let mut settings = HashSet::new();
    for b in &p.bundles {
        let urls = by_url(b);
        let mut covered: HashMap<&str, &str> = HashMap::new();
        for prov in urls.values().filter(|r| r["resourceType"] == "Provenance") {
            assert_eq!(prov["activity"]["coding"][0]["code"], "CREATE");
            assert_eq!(
                prov["activity"]["coding"][0]["system"],
                "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
            );
            smr_fhir::datetime::parse_range(prov["recorded"].as_str().unwrap()).unwrap();
            let agent = &prov["agent"][0];
            assert_eq!(agent["type"]["coding"][0]["code"], "author");
            let role = &agent["role"][0]["coding"][0];
            assert_eq!(role["system"], CARE_SETTING_SYSTEM);
            let setting = role["code"].as_str().unwrap();
            assert!(
                agent["who"].get("display").is_some() || agent["who"].get("reference").is_some()
            );
            org_code(&urls, &agent["onBehalfOf"]);
            assert!(agent["onBehalfOf"].get("identifier").is_some());
            let targets = prov["target"].as_array().unwrap();
            assert!(!targets.is_empty());
            // One patient per Provenance: the store keys it to its first target's.
            let patient = |t: &Value| {
                let r = urls[t["reference"].as_str().unwrap()];
                r["subject"]["reference"].as_str().unwrap().to_owned()
            };
            for t in targets {
                let url = t["reference"].as_str().unwrap();
                assert!(covered.insert(url, setting).is_none(), "{url} twice");
                assert_eq!(patient(t), patient(&targets[0]));
            }
            settings.insert(setting.to_owned());
        }
        for e in b["entry"].as_array().unwrap() {
            let r = &e["resource"];
            let ty = r["resourceType"].as_str().unwrap();
            let url = e["fullUrl"].as_str().unwrap();
            if MEDICATION_TYPES.contains(&ty) {
                let setting = covered
                    .get(url)
                    .unwrap_or_else(|| panic!("no Provenance: {r}"));
                assert_eq!(*setting, setting_of(r), "{r}");
            } else {
                assert!(
                    !covered.contains_key(url),
                    "{ty} has a medication Provenance"
                );
            }
        }
    }
    for s in [
        "gp-practice",
        "hospital",
        "community-pharmacy",
        "care-home",
        "patient-reported",
    ] {
        assert!(settings.contains(s), "no {s} Provenance");
    }
}

/// An ingredient name for a medicine concept (the first word of its text; the two brands
/// this crate uses by their generic name).
fn ingredient(r: &Value) -> String {
    let text = r["medicationCodeableConcept"]["text"].as_str().unwrap();
    let first = text.split_whitespace().next().unwrap().to_ascii_lowercase();
    match first.as_str() {
        "losec" => "omeprazole".into(),
        "brufen" => "ibuprofen".into(),
        _ => first,
    }
}

fn code(r: &Value) -> Option<&str> {
    r["medicationCodeableConcept"]["coding"][0]["code"].as_str()
}

fn time(r: &Value, key: &str) -> i64 {
    range(&r[key]).0
}

/// The conflicts and clean multi-setting medicines of each patient (by fullUrl).
#[derive(Debug, Default, Clone)]
struct Shows {
    dose_changed: bool,
    stopped_dispensed: bool,
    duplicate: bool,
    clean_everywhere: bool,
}

fn shows(b: &Value) -> HashMap<String, Shows> {
    let urls = by_url(b);
    let mut out: HashMap<String, Shows> = HashMap::new();
    let of = |ty: &'static str| urls.values().filter(move |r| r["resourceType"] == ty);
    let patient = |r: &Value| r["subject"]["reference"].as_str().unwrap().to_owned();
    let plans: Vec<&Value> = of("MedicationRequest")
        .filter(|r| r["intent"] == "plan")
        .copied()
        .collect();
    let issues_of = |plan: &Value| -> Vec<&Value> {
        let plan_url = urls
            .iter()
            .find(|(_, r)| std::ptr::eq(**r, plan))
            .map(|(u, _)| *u)
            .unwrap();
        of("MedicationRequest")
            .filter(|r| r["basedOn"][0]["reference"] == plan_url)
            .copied()
            .collect()
    };
    let active: Vec<&Value> = plans
        .iter()
        .filter(|r| r["status"] == "active")
        .copied()
        .collect();
    // (a) A discharge list changed the dose of an active GP plan, issued again since.
    for d in
        of("MedicationRequest").filter(|r| r["category"][0]["coding"][0]["code"] == "discharge")
    {
        for p in active
            .iter()
            .filter(|p| patient(p) == patient(d) && ingredient(p) == ingredient(d))
        {
            let different = code(p) != code(d)
                || p["dosageInstruction"][0]["doseAndRate"]
                    != d["dosageInstruction"][0]["doseAndRate"];
            let issued_since = issues_of(p)
                .iter()
                .any(|i| time(i, "authoredOn") > time(d, "authoredOn"));
            if different && issued_since {
                out.entry(patient(d)).or_default().dose_changed = true;
            }
        }
    }
    // (b) A stopped plan dispensed after its stop date.
    for p in plans.iter().filter(|r| r["status"] == "stopped") {
        let stop = range(&p["dispenseRequest"]["validityPeriod"]["end"]).1;
        for i in issues_of(p) {
            let dispensed_after = of("MedicationDispense").any(|m| {
                urls[m["authorizingPrescription"][0]["reference"]
                    .as_str()
                    .unwrap()]
                    == i
                    && time(m, "whenHandedOver") >= stop
            });
            if dispensed_after {
                out.entry(patient(p)).or_default().stopped_dispensed = true;
            }
        }
    }
    // (c) Two active GP plans of one ingredient, different products.
    for (k, a) in active.iter().enumerate() {
        for b in &active[k + 1..] {
            if patient(a) == patient(b) && ingredient(a) == ingredient(b) && code(a) != code(b) {
                out.entry(patient(a)).or_default().duplicate = true;
            }
        }
    }
    // Clean: an active VMP plan, dispensed (as a brand of it or itself) and given on the ward
    // at the plan's dose and route.
    for p in &active {
        let Some(vmp) = code(p) else { continue };
        let dose = &p["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"];
        let route = &p["dosageInstruction"][0]["route"];
        let dispensed = issues_of(p).iter().any(|i| {
            of("MedicationDispense").any(|m| {
                urls[m["authorizingPrescription"][0]["reference"]
                    .as_str()
                    .unwrap()]
                    == *i
                    && (code(m) == Some(vmp)
                        || clinical::BRANDS
                            .iter()
                            .any(|(v, a)| v.code == Some(vmp) && a.code == code(m)))
            })
        });
        let given = of("MedicationAdministration").any(|a| {
            patient(a) == patient(p)
                && a["category"]["coding"][0]["code"] == "inpatient"
                && code(a) == Some(vmp)
                && a["dosage"]["dose"] == *dose
                && a["dosage"]["route"] == *route
        });
        if dispensed && given && !dose.is_null() {
            out.entry(patient(p)).or_default().clean_everywhere = true;
        }
    }
    out
}

#[test]
fn the_demo_patient_shows_every_conflict_and_a_clean_medicine() {
    for cfg in demo_configs() {
        let p = generate(&cfg);
        let nhs = demo_patient_nhs_number(&cfg);
        let b = &p.bundles[0];
        let urls = by_url(b);
        let (patient_url, _) = urls
            .iter()
            .find(|(_, r)| {
                r["resourceType"] == "Patient" && r["identifier"][0]["value"] == nhs.as_str()
            })
            .unwrap();
        let s = shows(b).remove(*patient_url).unwrap_or_default();
        assert!(s.dose_changed, "seed {}: no dose change", cfg.seed);
        assert!(
            s.stopped_dispensed,
            "seed {}: no stopped dispense",
            cfg.seed
        );
        assert!(s.duplicate, "seed {}: no duplicate", cfg.seed);
        assert!(s.clean_everywhere, "seed {}: no clean medicine", cfg.seed);
        // The clean medicine is dispensed as a brand where the subset has one.
        let demo_dispenses: Vec<_> = urls
            .values()
            .filter(|r| {
                r["resourceType"] == "MedicationDispense"
                    && r["subject"]["reference"] == **patient_url
            })
            .collect();
        assert!(demo_dispenses.iter().any(|m| code(m).is_some_and(|c| {
            smr_dmd::products()
                .iter()
                .any(|p| p.code == c && p.kind == smr_dmd::ConceptKind::Amp)
        })));
    }
}

#[test]
fn conflicts_have_realistic_shares() {
    let p = generate(&config(3000, 14));
    let mut all = Vec::new();
    for b in &p.bundles {
        all.extend(shows(b).into_values());
    }
    let share = |f: fn(&Shows) -> bool| all.iter().filter(|s| f(s)).count() as f64 / 3000.0;
    let dose = share(|s| s.dose_changed);
    let stopped = share(|s| s.stopped_dispensed);
    let duplicate = share(|s| s.duplicate);
    eprintln!("dose {dose} stopped {stopped} duplicate {duplicate}");
    assert!((0.03..0.12).contains(&dose), "dose changed {dose}");
    assert!(
        (0.03..0.12).contains(&stopped),
        "stopped dispensed {stopped}"
    );
    assert!((0.03..0.12).contains(&duplicate), "duplicate {duplicate}");
}

#[test]
fn practices_are_part_of_sub_icb_locations_part_of_their_icb() {
    // 4000 patients, 50 a practice: 80 practices, 40 per ICB, 4 localities per ICB, so the
    // 3 sub-ICBs of an ICB hold 2, 1 and 1 localities.
    let p = generate(&config(4000, 8));
    let mut practices_of: HashMap<String, HashSet<String>> = HashMap::new();
    let mut icb_of: HashMap<String, String> = HashMap::new();
    for (index, b) in p.bundles.iter().enumerate() {
        let urls = by_url(b);
        let practice = urls
            .values()
            .find(|r| r["resourceType"] == "Organization" && ods(r) == practice_code(index))
            .expect("the practice");
        let sub = urls[practice["partOf"]["reference"].as_str().unwrap()];
        let code = ods(sub).to_owned();
        assert!(code.starts_with("Y9S"), "{code}");
        assert_eq!(sub["type"][0]["text"], "Sub-ICB location");
        assert!(sub["name"].as_str().unwrap().ends_with(" (synthetic)"));
        let entry = b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["resource"] == *sub)
            .unwrap();
        assert_eq!(
            entry["request"]["ifNoneExist"],
            format!("identifier={ODS_SYSTEM}|{code}").as_str()
        );
        let icb = ods(urls[sub["partOf"]["reference"].as_str().unwrap()]).to_owned();
        assert_eq!(icb, ICBS[index % ICBS.len()].0);
        if let Some(before) = icb_of.insert(code.clone(), icb.clone()) {
            assert_eq!(before, icb, "a sub-ICB belongs to one ICB");
        }
        practices_of
            .entry(code)
            .or_default()
            .insert(practice_code(index));
    }
    assert_eq!(practices_of.len(), 2 * SUB_ICBS_PER_ICB);
    let mut sizes: Vec<usize> = practices_of.values().map(HashSet::len).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![10, 10, 10, 10, 20, 20]);
}

#[test]
fn patients_have_an_ethnic_category_and_a_deprivation_decile() {
    let p = generate(&config(5000, 11));
    let patients: Vec<&Value> = of_type(&p, "Patient").collect();
    assert_eq!(patients.len(), 5000);
    let codes: HashMap<&str, u32> = ETHNIC_CATEGORIES.iter().map(|c| (c.0, c.2)).collect();
    let mut per_code: HashMap<String, usize> = HashMap::new();
    let mut per_decile = [0usize; 10];
    for r in &patients {
        let ext = r["extension"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["url"] == ETHNIC_CATEGORY_URL)
            .expect("ethnic category");
        let coding = &ext["valueCodeableConcept"]["coding"][0];
        assert_eq!(coding["system"], ETHNIC_CATEGORY_SYSTEM);
        let code = coding["code"].as_str().unwrap();
        assert!(codes.contains_key(code), "{code}");
        *per_code.entry(code.to_owned()).or_default() += 1;

        let address = &r["address"][0]["extension"];
        let lsoa = address
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["url"] == LSOA_URL)
            .unwrap()["valueString"]
            .as_str()
            .unwrap();
        assert!(lsoa.starts_with("E0199") && lsoa.len() == 9, "{lsoa}");
        let imd = address
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["url"] == IMD_URL)
            .unwrap();
        let get = |name: &str| {
            imd["extension"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["url"] == name)
                .unwrap()["valueInteger"]
                .as_i64()
                .unwrap()
        };
        let (decile, quintile) = (get("decile"), get("quintile"));
        assert!((1..=10).contains(&decile));
        assert_eq!(quintile, (decile + 1) / 2);
        assert_eq!(
            lsoa[5..6],
            (decile - 1).to_string(),
            "code and decile agree"
        );
        per_decile[(decile - 1) as usize] += 1;
    }
    // White British about 74%, every decile about 10%.
    let white_british = per_code["A"] as f64 / 5000.0;
    assert!((0.71..0.78).contains(&white_british), "{white_british}");
    for n in per_decile {
        assert!((400..600).contains(&n), "{per_decile:?}");
    }
    // Deterministic.
    assert_eq!(
        generate(&config(50, 11)).bundles,
        generate(&config(50, 11)).bundles
    );
}
