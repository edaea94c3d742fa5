//! Who to sign in as, and whom to open, in a demo of a generated population.
//!
//! SMR lets a clinician open a record only when their organisation cares for the patient
//! (registered practice, hospital with a current or recent stay, nominated or dispensing
//! pharmacy, community team with an active episode). So that every demo sign-in has someone to
//! see, the generator makes one patient of the first practice the *demo patient*: the first
//! adult there with an active medicine that has pharmacogenomic guidance (else the first adult
//! with any active medicine, else the first patient), and gives them, besides what they drew,
//! a genotype panel (adults), a stay in progress at the locality hospital (and an earlier one
//! that ended six to twelve weeks ago), the locality pharmacy nominated on their community
//! prescriptions with active repeats issued within the last eight weeks and some dispensed,
//! an active episode with the community nursing team, and the scenario medicines of
//! `scenarios` (each conflict between settings, and a clean multi-setting medicine).
//! Everyone else is drawn as usual.
//!
//! Both functions are cheap for any population size: they draw only the first practice's
//! patients' records, and generate nothing.

use crate::care;
use crate::clinical::{Setting, Status};
use crate::rng::Rng;
use crate::{ICBS, SALT_PATIENT, SynthConfig, draw, medication, practice_code, shape};

/// ODS codes of organisations that, in the population generated from the same config, have
/// patients with a current care relationship; each has one with the demo patient
/// ([`demo_patient_nhs_number`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOrganisations {
    /// The first GP practice (`Y90000`): the demo patient is registered there.
    pub gp_practice: String,
    /// The practice's locality hospital trust: the demo patient is in hospital there now
    /// (Encounter `in-progress`, open-ended, so it does not lapse with the clock).
    pub hospital: String,
    /// The locality community pharmacy the demo patient (and most of the practice's patients
    /// with prescriptions) nominated; it also dispensed one of the demo patient's medicines.
    pub pharmacy: String,
    /// The locality community nursing team: the demo patient has an active EpisodeOfCare
    /// with it.
    pub community_team: String,
    /// The ICB the practice, hospital and pharmacy are part of (no care relationship of its
    /// own: for commissioner roles).
    pub icb: String,
}

/// The organisations demo users sign in as, for `config` (see [`DemoOrganisations`]).
/// They are the first practice and its locality's organisations, so today the same for every
/// config (every config generates the first practice, with its demo patient when it has any
/// patient); taking the config keeps callers right should that change.
///
/// The 30- and 90-day windows of hospital discharges and pharmacy nominations count from
/// `config.today`; the demo patient's stay, registration and episode of care are open-ended,
/// and their repeats were issued at most 56 days before `config.today`.
pub fn demo_organisations(config: &SynthConfig) -> DemoOrganisations {
    let _ = config; // the first practice is the same in every population
    let locality = care::locality_of(0, ICBS.len());
    DemoOrganisations {
        gp_practice: practice_code(0),
        hospital: care::hospital_code(locality),
        pharmacy: care::pharmacy_code(locality),
        community_team: care::team_code(locality),
        icb: ICBS[0].0.to_owned(),
    }
}

/// The NHS number of the demo patient of the population generated from `config`: registered
/// at the demo practice, in hospital now at the demo hospital, with the demo pharmacy
/// nominated on their prescriptions and an active episode with the demo nursing team; when
/// the first practice has one, an adult with active medicines (preferably one with
/// pharmacogenomic guidance) and a genotype panel. Deterministic for the config; empty when
/// the config generates no patients.
pub fn demo_patient_nhs_number(config: &SynthConfig) -> String {
    demo_index(config)
        .and_then(|i| crate::people::NhsNumbers::new(config.seed).nth(i))
        .unwrap_or_default()
}

/// The demo patient's index in the population (they are in the first practice).
pub(crate) fn demo_index(config: &SynthConfig) -> Option<usize> {
    let (patients, practices) = shape(config);
    // The first practice's share, as `generate` splits them.
    let first = patients / practices;
    let mut best: Option<(u8, usize)> = None;
    for i in 0..first {
        let mut rng = Rng::stream(config.seed, SALT_PATIENT, i as u64);
        let (age, _, record) = draw(&mut rng);
        let active = || {
            record
                .prescriptions
                .iter()
                .filter(|rx| rx.status == Status::Active && rx.setting == Setting::Community)
        };
        let tier = if age < 18 || active().next().is_none() {
            0
        } else if active().any(|rx| {
            smr_cds::cards::has_pgx_guidance(
                &serde_json::json!({"medicationCodeableConcept": medication(rx.drug)}),
            )
        }) {
            2
        } else {
            1
        };
        if tier == 2 {
            return Some(i);
        }
        if best.is_none_or(|(t, _)| tier > t) {
            best = Some((tier, i));
        }
    }
    best.map(|(_, i)| i)
}
