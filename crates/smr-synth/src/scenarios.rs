//! The disagreements between settings a medication record has to show, put into drawn
//! records: for a share of patients each, and all of them (with a clean multi-setting
//! medicine) for the demo patient.
//!
//! - *Dose changed in hospital*: a finished stay's discharge list has a GP repeat at another
//!   strength (or twice the tablets), while the GP plan, issued again after the discharge,
//!   still has the old dose.
//! - *Stopped but dispensed*: a GP repeat stopped recently whose last issue, written before
//!   the stop, the pharmacy handed over after it.
//! - *Duplicate brand*: two active GP plans of one ingredient: the VMP and a brand (AMP) of
//!   it, or two strengths.

use crate::care::Stay;
use crate::clinical::{
    AMITRIPTYLINE_10MG, AMITRIPTYLINE_25MG, Drug, DrugClass, IBUPROFEN_400MG, LANSOPRAZOLE_15MG,
    LANSOPRAZOLE_30MG, NAPROXEN_500MG, OMEPRAZOLE_20MG, Record, Rx, SIMVASTATIN_10MG,
    SIMVASTATIN_40MG, Setting, Status, brand_of, ingredient_key, other_strength,
};
use crate::dosage;
use crate::hospital::{Change, admission_list};
use crate::rng::Rng;

/// Share of patients with a finished stay whose discharge changed a dose.
const DOSE_CHANGE_SHARE: f64 = 0.9;
/// Share of nominating patients with a repeat stopped but still dispensed.
const STOPPED_DISPENSED_SHARE: f64 = 0.15;
/// Share of patients with a coded repeat that has a brand or another strength who have both.
const DUPLICATE_SHARE: f64 = 0.6;

/// Why a stop, for the stopped-but-dispensed repeats.
const STOP_REASONS: &[&str] = &[
    "Stopped: side effects",
    "Stopped: no longer needed",
    "Stopped on medication review",
];

fn regular(rx: &Rx) -> bool {
    rx.status == Status::Active
        && rx.setting == Setting::Community
        && rx.repeat
        && !rx.dose.contains("when required")
        && dosage::dose(&dosage::dosage(rx.drug, rx.dose)).is_some()
}

/// The new dose of a changed medicine: another strength at the same dose, else twice the
/// tablets.
fn changed(rx: &Rx) -> Option<(Drug, String)> {
    other_strength(rx.drug)
        .map(|d| (d, rx.dose.to_owned()))
        .or_else(|| dosage::doubled(rx.dose).map(|d| (rx.drug, d)))
}

fn duplicate(drug: Drug) -> Option<Drug> {
    brand_of(drug).or_else(|| other_strength(drug))
}

/// Puts the scenarios into `r` (drawn for a patient with `stays`, nominating a pharmacy or
/// not); returns the dose change for the finished stay, if any.
pub fn apply(
    rng: &mut Rng,
    r: &mut Record,
    stays: &[Stay],
    nominated: bool,
    demo: bool,
) -> Option<Change> {
    if demo {
        add_demo_medicines(rng, r);
    }
    // Stopped but dispensed.
    if nominated && (demo || rng.chance(STOPPED_DISPENSED_SHARE)) {
        let pick = if demo {
            r.prescriptions
                .iter()
                .position(|rx| rx.extra.dispensed_after_stop)
        } else {
            let candidates: Vec<usize> = (0..r.prescriptions.len())
                .filter(|&i| regular(&r.prescriptions[i]))
                .collect();
            (!candidates.is_empty()).then(|| *rng.pick(&candidates))
        };
        if let Some(i) = pick {
            let rx = &mut r.prescriptions[i];
            rx.status = Status::Stopped;
            rx.status_reason = Some(*rng.pick(STOP_REASONS));
            rx.days_ago = rng.range(10, 40);
            rx.extra.dispensed_after_stop = true;
        }
    }
    // Duplicate brand (or strength).
    if !demo && rng.chance(DUPLICATE_SHARE) {
        let candidates: Vec<usize> = (0..r.prescriptions.len())
            .filter(|&i| regular(&r.prescriptions[i]))
            .filter(|&i| duplicate(r.prescriptions[i].drug).is_some())
            .collect();
        if !candidates.is_empty() {
            let i = *rng.pick(&candidates);
            let mut dup = r.prescriptions[i].clone();
            dup.drug = duplicate(dup.drug).unwrap_or(dup.drug);
            dup.days_ago = rng.range(3, 84);
            dup.reason = None;
            r.prescriptions.push(dup);
        }
    }
    // Dose changed in hospital: on the latest finished stay's discharge list.
    let discharged = stays.iter().find_map(|s| match s {
        Stay::Finished { discharged, .. } => Some(*discharged),
        Stay::Current { .. } => None,
    })?;
    if !(demo || rng.chance(DOSE_CHANGE_SHARE)) {
        return None;
    }
    let listed = admission_list(&r.prescriptions, None);
    let i = if demo {
        r.prescriptions
            .iter()
            .position(|rx| rx.extra.changed_in_hospital)?
    } else {
        let candidates: Vec<usize> = listed
            .into_iter()
            .filter(|&i| regular(&r.prescriptions[i]) && changed(&r.prescriptions[i]).is_some())
            .collect();
        if candidates.is_empty() {
            return None;
        }
        *rng.pick(&candidates)
    };
    let rx = &mut r.prescriptions[i];
    let (drug, dose) = changed(rx)?;
    // The GP issued it again, at the old dose, after the discharge.
    if rx.days_ago >= discharged {
        rx.days_ago = rng.range(0, discharged - 1);
    }
    Some(Change { rx: i, drug, dose })
}

/// The demo patient's scenario medicines, of ingredients they do not already take: a clean
/// one (dispensed as a brand where there is one, given on the ward), one the hospital changes,
/// one stopped but dispensed, and a duplicated one.
fn add_demo_medicines(rng: &mut Rng, r: &mut Record) {
    let nsaid_ok = !r.allergic_to(DrugClass::Nsaid);
    let mut taken: Vec<String> = r
        .prescriptions
        .iter()
        .map(|rx| ingredient_key(rx.drug))
        .collect();
    let mut add = |r: &mut Record, rng: &mut Rng, choices: &[(Drug, &'static str)]| {
        let &(drug, dose) = choices.iter().find(|(d, _)| {
            !taken.contains(&ingredient_key(*d)) && (nsaid_ok || d.class != DrugClass::Nsaid)
        })?;
        taken.push(ingredient_key(drug));
        r.repeat(rng, drug, dose, None);
        r.prescriptions.iter().rposition(|rx| rx.drug == drug)
    };
    let once = "One capsule once a day";
    let night = "One tablet at night";
    if let Some(i) = add(
        r,
        rng,
        &[
            (OMEPRAZOLE_20MG, once),
            (IBUPROFEN_400MG, "One tablet three times a day with food"),
            (LANSOPRAZOLE_15MG, once),
        ],
    ) {
        r.prescriptions[i].extra.everywhere = true;
        r.prescriptions[i].extra.brand_dispense = true;
    }
    if let Some(i) = add(
        r,
        rng,
        &[
            (AMITRIPTYLINE_10MG, night),
            (LANSOPRAZOLE_15MG, once),
            (SIMVASTATIN_10MG, night),
        ],
    ) {
        r.prescriptions[i].extra.changed_in_hospital = true;
    }
    if let Some(i) = add(
        r,
        rng,
        &[
            (NAPROXEN_500MG, "One tablet twice a day with food"),
            (AMITRIPTYLINE_25MG, night),
            (LANSOPRAZOLE_30MG, once),
            (SIMVASTATIN_40MG, night),
        ],
    ) {
        r.prescriptions[i].extra.dispensed_after_stop = true;
    }
    if let Some(i) = add(
        r,
        rng,
        &[
            (SIMVASTATIN_40MG, night),
            (AMITRIPTYLINE_10MG, night),
            (OMEPRAZOLE_20MG, once),
            (LANSOPRAZOLE_30MG, once),
        ],
    ) {
        let mut dup = r.prescriptions[i].clone();
        dup.drug = duplicate(dup.drug).unwrap_or(dup.drug);
        r.prescriptions.push(dup);
    }
}
