//! Care outside the GP practice: the hospital, community pharmacy and community nursing team
//! each practice's patients use, and the records that show those relationships (the ones
//! `smr-access` derives care relationships from).
//!
//! # Localities
//!
//! Practices are grouped into localities: up to [`PRACTICES_PER_LOCALITY`] practices of the
//! same ICB share one acute hospital trust (with one admitting clinician), one community
//! pharmacy, one community nursing team and one care home. Their Organizations are conditional creates (`ifNoneExist` on the ODS code) in every
//! Bundle of the locality, like the ICB, so each Bundle still loads on its own and the store
//! ends with one Organization per code.
//!
//! # ODS codes
//!
//! `Y9Hnnn` (hospital trust), `Y9Pnnn` (pharmacy), `Y9Cnnn` (nursing team), `Y9Knnn` (care
//! home), `nnn` the
//! locality's number: why these forms cannot be real is in the crate documentation. There are
//! at most [`MAX_PRACTICES`] / [`PRACTICES_PER_LOCALITY`] = 1000 localities. The hospital and
//! pharmacy are `partOf` the ICB (the same model as the practices: the ICB commissions them),
//! the nursing team `partOf` the hospital trust (acute trusts commonly run community
//! services).
//!
//! # Shares
//!
//! - About 15% of patients have had an inpatient stay (more the older they are): 30% of those
//!   are in hospital now (`in-progress`), 45% left within the last four weeks, 25% long ago.
//! - About 85% of patients with a community prescription have nominated the locality pharmacy
//!   (`dispenseRequest.performer` on their community MedicationRequests; active repeats are
//!   the latest issue, most authored within 12 weeks); 60% of their active prescriptions have
//!   a completed MedicationDispense handed over 1–4 days after authoring.
//! - About 5% (mostly the very old) have an active EpisodeOfCare with the nursing team.
//! - About 4% of the over-65s (a sixth of the over-85s) live in the locality care home, whose
//!   administration records show it (see `care_home`).
//!
//! [`MAX_PRACTICES`]: crate::MAX_PRACTICES

use serde_json::{Value, json};
use time::Date;

use crate::clinical::{Drug, Rx};
use crate::provenance::CareSetting;
use crate::rng::Rng;
use crate::{BundleBuilder, GMC_SYSTEM, ODS_SYSTEM, OrgRef, date, date_time, days_before, people};

/// Practices of one ICB sharing a hospital, a pharmacy and a nursing team.
pub const PRACTICES_PER_LOCALITY: usize = 10;

const _: () = assert!(crate::MAX_PRACTICES.div_ceil(PRACTICES_PER_LOCALITY) <= 1000);

const ORG_TYPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/organization-type";
const ACT_CODE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

/// The locality of practice `practice` (practices alternate between the ICBs; each ICB's
/// practices are grouped in runs of [`PRACTICES_PER_LOCALITY`]). A locality's ICB is
/// `locality % icbs`, the same as its practices'.
pub fn locality_of(practice: usize, icbs: usize) -> usize {
    let icb = practice % icbs;
    let nth = practice / icbs;
    (nth / PRACTICES_PER_LOCALITY) * icbs + icb
}

pub fn hospital_code(locality: usize) -> String {
    format!("Y9H{locality:03}")
}

pub fn pharmacy_code(locality: usize) -> String {
    format!("Y9P{locality:03}")
}

pub fn team_code(locality: usize) -> String {
    format!("Y9C{locality:03}")
}

pub fn care_home_code(locality: usize) -> String {
    format!("Y9K{locality:03}")
}

/// The GMC-shaped number of a locality's hospital clinician: `996nnnn`, above every
/// practice GP's (`99nnnnn` up to `9939999`).
pub fn hospital_clinician_number(locality: usize) -> String {
    format!("996{locality:04}")
}

/// The organisations of one locality, as referenced from its Bundles.
#[derive(Debug, Clone)]
pub struct Locality {
    pub hospital: OrgRef,
    pub pharmacy: OrgRef,
    pub team: OrgRef,
    pub care_home: OrgRef,
    /// The hospital's admitting clinician, a Reference to their Practitioner.
    pub clinician: Value,
}

/// Adds the locality's Organizations to the Bundle (conditional creates). Names and addresses
/// come from the locality's own stream, so every Bundle of the locality writes them the same.
pub fn add_locality(
    g: &mut BundleBuilder,
    mut rng: Rng,
    locality: usize,
    icb: &OrgRef,
) -> Locality {
    let town = rng.below(people::TOWNS.len() as u64) as usize;
    let town_name = people::TOWNS[town].0;
    let org = |g: &mut BundleBuilder,
               rng: &mut Rng,
               code: String,
               name: String,
               kind: (&str, &str, &str, CareSetting),
               part_of: &OrgRef| {
        let addr = people::address(rng, town);
        let (type_code, type_display, type_text, setting) = kind;
        let url = g.add(
            json!({
                "resourceType": "Organization",
                "identifier": [{"system": ODS_SYSTEM, "value": code}],
                "active": true,
                "type": [{
                    "coding": [{"system": ORG_TYPE_SYSTEM, "code": type_code, "display": type_display}, setting.coding()],
                    "text": type_text,
                }],
                "name": name,
                "telecom": [{"system": "phone", "value": format!("01632 960{:03}", rng.below(1000)), "use": "work"}],
                "address": [{"use": "work", "line": [addr.line], "city": addr.city, "postalCode": addr.postcode}],
                "partOf": {"reference": part_of.url, "display": part_of.name},
            }),
            Some(format!("identifier={ODS_SYSTEM}|{code}")),
        );
        OrgRef { url, code, name }
    };
    let hospital = org(
        g,
        &mut rng,
        hospital_code(locality),
        format!("{town_name} and District Hospitals NHS Trust (synthetic)"),
        (
            "prov",
            "Healthcare Provider",
            "NHS trust (acute hospital)",
            CareSetting::Hospital,
        ),
        icb,
    );
    let street = *rng.pick(people::STREETS);
    let pharmacy = org(
        g,
        &mut rng,
        pharmacy_code(locality),
        format!("{street} Pharmacy (synthetic)"),
        (
            "prov",
            "Healthcare Provider",
            "Community pharmacy",
            CareSetting::CommunityPharmacy,
        ),
        icb,
    );
    let team = org(
        g,
        &mut rng,
        team_code(locality),
        format!("{town_name} Community Nursing Team (synthetic)"),
        (
            "team",
            "Organizational team",
            "Community nursing team",
            CareSetting::Community,
        ),
        &hospital,
    );
    let street = *rng.pick(people::STREETS);
    let care_home = org(
        g,
        &mut rng,
        care_home_code(locality),
        format!("{street} Care Home (synthetic)"),
        (
            "prov",
            "Healthcare Provider",
            "Care home",
            CareSetting::CareHome,
        ),
        icb,
    );
    // The admitting clinician: one per locality, a conditional create like its hospital.
    let (n, female) = people::clinician_name(&mut rng);
    let number = hospital_clinician_number(locality);
    let clinician_url = g.add(
        json!({
            "resourceType": "Practitioner",
            "identifier": [{"system": GMC_SYSTEM, "value": number}],
            "active": true,
            "name": [{"use": "official", "family": n.family, "given": n.given, "prefix": ["Dr"]}],
            "gender": if female { "female" } else { "male" },
        }),
        Some(format!("identifier={GMC_SYSTEM}|{number}")),
    );
    let clinician = json!({
        "reference": clinician_url,
        "identifier": {"system": GMC_SYSTEM, "value": number},
        "display": format!("Dr {} {}", n.given[0], n.family),
    });
    Locality {
        hospital,
        pharmacy,
        team,
        care_home,
        clinician,
    }
}

/// Share of patients with a community prescription who have nominated a pharmacy.
pub const NOMINATION_SHARE: f64 = 0.85;
/// Share of a nominating patient's active prescriptions with a dispense on record.
pub const DISPENSE_SHARE: f64 = 0.6;

/// An inpatient stay, relative to the generator's today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stay {
    /// In hospital now: admitted `admitted` days ago.
    Current { admitted: i64 },
    /// Discharged `discharged` days ago after `length` days.
    Finished { discharged: i64, length: i64 },
}

/// The patient's inpatient stays on record, oldest first. About 15% of patients have one,
/// rising with age; `demo` has two: one finished six to twelve weeks ago (its discharge list
/// changed a dose) and one in progress.
pub fn stays(rng: &mut Rng, age: u8, demo: bool) -> Vec<Stay> {
    if demo {
        return vec![
            Stay::Finished {
                discharged: rng.range(60, 80),
                length: rng.range(2, 6),
            },
            Stay::Current {
                admitted: rng.range(1, 6),
            },
        ];
    }
    stay(rng, age).into_iter().collect()
}

/// One stay or none, for anyone but the demo patient.
fn stay(rng: &mut Rng, age: u8) -> Option<Stay> {
    let p = match age {
        0..=17 => 0.07,
        18..=39 => 0.10,
        40..=64 => 0.15,
        65..=79 => 0.27,
        _ => 0.40,
    };
    if !rng.chance(p) {
        return None;
    }
    let x = rng.unit();
    Some(if x < 0.30 {
        Stay::Current {
            admitted: rng.range(0, 10),
        }
    } else if x < 0.75 {
        // Discharged within the 30 days the hospital keeps access.
        Stay::Finished {
            discharged: rng.range(1, 28),
            length: rng.range(1, 10),
        }
    } else {
        Stay::Finished {
            discharged: rng.range(60, 1500),
            length: rng.range(1, 14),
        }
    })
}

/// The Encounter of a stay: inpatient (`IMP`), the hospital as `serviceProvider`.
pub fn encounter(
    rng: &mut Rng,
    stay: Stay,
    subject: &Value,
    hospital: &OrgRef,
    today: Date,
) -> Value {
    let (status, period) = match stay {
        Stay::Current { admitted } => (
            "in-progress",
            json!({"start": date_time(rng, days_before(today, admitted))}),
        ),
        Stay::Finished { discharged, length } => (
            "finished",
            json!({
                "start": date_time(rng, days_before(today, discharged + length)),
                "end": date_time(rng, days_before(today, discharged)),
            }),
        ),
    };
    json!({
        "resourceType": "Encounter",
        "status": status,
        "class": {"system": ACT_CODE_SYSTEM, "code": "IMP", "display": "inpatient encounter"},
        "subject": subject,
        "period": period,
        "serviceProvider": hospital.reference(),
    })
}

/// A completed dispense of `rx` by `pharmacy`, handed over on `handed`.
pub fn dispense(
    rng: &mut Rng,
    rx: &Rx,
    medication: Value,
    subject: &Value,
    prescription: &str,
    pharmacy: &OrgRef,
    handed: Date,
) -> Value {
    let (value, unit) = supply(rx.drug, rx.dose);
    json!({
        "resourceType": "MedicationDispense",
        "status": "completed",
        "medicationCodeableConcept": medication,
        "subject": subject,
        "performer": [{"actor": pharmacy.reference()}],
        "authorizingPrescription": [{"reference": prescription}],
        "quantity": {"value": value, "unit": unit},
        "whenHandedOver": date_time(rng, handed),
        "dosageInstruction": [crate::dosage::dosage(rx.drug, rx.dose)],
    })
}

/// Roughly 28 days' supply of a drug at the dose written (by the product's form; "when
/// required" doses get the same as regular ones).
pub fn supply(drug: Drug, dose: &str) -> (u32, &'static str) {
    let name = drug.name;
    if name.contains("inhaler") {
        return (1, "inhaler");
    }
    if name.contains("sachets") {
        return (30, "sachet");
    }
    if name.contains("oral suspension") {
        return (100, "ml");
    }
    let per_day = if dose.contains("once a week") {
        return (4, "tablet");
    } else if dose.contains("four times") {
        4
    } else if dose.contains("three times") {
        3
    } else if dose.contains("twice") {
        2
    } else {
        1
    };
    let unit = if name.contains("capsules") {
        "capsule"
    } else {
        "tablet"
    };
    (28 * per_day, unit)
}

/// Whether the patient lives in the locality care home (about 4% of people over 65, a
/// sixth of those over 85; never the demo patient, whose address is their own).
pub fn in_care_home(rng: &mut Rng, age: u8, demo: bool) -> bool {
    let p = match age {
        0..=64 => 0.0,
        65..=79 => 0.015,
        80..=84 => 0.06,
        _ => 0.16,
    };
    !demo && rng.chance(p)
}

/// Share of patients, by age, on a community nursing caseload (about 5% overall).
pub fn community_nursing(rng: &mut Rng, age: u8, demo: bool) -> bool {
    let p = match age {
        0..=17 => 0.01,
        18..=64 => 0.025,
        65..=79 => 0.10,
        _ => 0.35,
    };
    demo || rng.chance(p)
}

/// An active EpisodeOfCare with the community nursing team.
pub fn episode(rng: &mut Rng, subject: &Value, team: &OrgRef, today: Date) -> Value {
    let start = days_before(today, rng.range(14, 1500));
    json!({
        "resourceType": "EpisodeOfCare",
        "status": "active",
        "type": [{"text": "District nursing"}],
        "patient": subject,
        "managingOrganization": team.reference(),
        "period": {"start": date(start)},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localities_group_practices_of_one_icb() {
        // Practices 0, 2, 4, … are in ICB 0; the first ten of them share locality 0.
        assert_eq!(locality_of(0, 2), 0);
        assert_eq!(locality_of(18, 2), 0);
        assert_eq!(locality_of(20, 2), 2);
        assert_eq!(locality_of(1, 2), 1);
        assert_eq!(locality_of(19, 2), 1);
        assert_eq!(locality_of(21, 2), 3);
        for p in 0..crate::MAX_PRACTICES {
            let l = locality_of(p, 2);
            assert_eq!(l % 2, p % 2, "same ICB");
            assert!(l < 1000);
        }
        assert_eq!(hospital_code(7), "Y9H007");
        assert_eq!(pharmacy_code(999), "Y9P999");
        assert_eq!(team_code(0), "Y9C000");
    }

    #[test]
    fn supplies() {
        use crate::clinical::*;
        assert_eq!(
            supply(METFORMIN_500MG, "One tablet twice a day with meals"),
            (56, "tablet")
        );
        assert_eq!(
            supply(OMEPRAZOLE_20MG, "One capsule once a day"),
            (28, "capsule")
        );
        assert_eq!(
            supply(SALBUTAMOL_INHALER, "Two puffs when required"),
            (1, "inhaler")
        );
        assert_eq!(
            supply(ALENDRONIC_ACID_70MG, "One tablet once a week"),
            (4, "tablet")
        );
    }
}
