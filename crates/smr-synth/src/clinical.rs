//! What synthetic patients have and take: long-term conditions by age, the medicines a UK GP
//! would prescribe for them, acute courses, over-the-counter medicines and drug allergies.
//!
//! Medicines with a code in smr-dmd (the dm+d subset SMR carries) are coded under
//! `https://dmd.nhs.uk` with the subset's VMP term as display; the others (amlodipine,
//! metformin, citalopram, …) are written as text only, exactly as many GP records hold them,
//! and smr-dmd still identifies their ingredients by name. No code is made up.

use crate::rng::Rng;

/// A medicine: a dm+d VMP code from smr-dmd with its term, or text alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drug {
    /// dm+d VMP code; `None` for medicines outside the smr-dmd subset.
    pub code: Option<&'static str>,
    /// The VMP term (for coded drugs exactly smr-dmd's term) or the product as written.
    pub name: &'static str,
    pub class: DrugClass,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrugClass {
    Nsaid,
    Penicillin,
    Other,
}

const fn coded(code: &'static str, name: &'static str, class: DrugClass) -> Drug {
    Drug {
        code: Some(code),
        name,
        class,
    }
}

const fn text(name: &'static str, class: DrugClass) -> Drug {
    Drug {
        code: None,
        name,
        class,
    }
}

use DrugClass::{Nsaid, Other, Penicillin};

// Coded: every one of these is a VMP in smr-dmd's data (checked by a test).
pub const WARFARIN_1MG: Drug = coded("319733000", "Warfarin 1mg tablets", Other);
pub const WARFARIN_3MG: Drug = coded("319734006", "Warfarin 3mg tablets", Other);
pub const WARFARIN_5MG: Drug = coded("319735007", "Warfarin 5mg tablets", Other);
pub const CLOPIDOGREL_75MG: Drug = coded("319799004", "Clopidogrel 75mg tablets", Other);
pub const CLOPIDOGREL_300MG: Drug = coded("429540001", "Clopidogrel 300mg tablets", Other);
pub const TICAGRELOR_90MG: Drug = coded("704465002", "Ticagrelor 90mg tablets", Other);
pub const SIMVASTATIN_10MG: Drug = coded("319996000", "Simvastatin 10mg tablets", Other);
pub const SIMVASTATIN_40MG: Drug = coded("320000009", "Simvastatin 40mg tablets", Other);
pub const SIMVASTATIN_80MG: Drug = coded("320006003", "Simvastatin 80mg tablets", Other);
pub const PRAVASTATIN_40MG: Drug = coded("320014009", "Pravastatin 40mg tablets", Other);
pub const ROSUVASTATIN_20MG: Drug = coded("408037007", "Rosuvastatin 20mg tablets", Other);
pub const AMITRIPTYLINE_10MG: Drug = coded("321745007", "Amitriptyline 10mg tablets", Other);
pub const AMITRIPTYLINE_25MG: Drug = coded("321746008", "Amitriptyline 25mg tablets", Other);
pub const OMEPRAZOLE_20MG: Drug = coded(
    "317291008",
    "Omeprazole 20mg gastro-resistant capsules",
    Other,
);
pub const LANSOPRAZOLE_15MG: Drug = coded(
    "317310006",
    "Lansoprazole 15mg gastro-resistant capsules",
    Other,
);
pub const LANSOPRAZOLE_30MG: Drug = coded(
    "317309001",
    "Lansoprazole 30mg gastro-resistant capsules",
    Other,
);
pub const NAPROXEN_250MG: Drug = coded("329806007", "Naproxen 250mg tablets", Nsaid);
pub const NAPROXEN_500MG: Drug = coded("329807003", "Naproxen 500mg tablets", Nsaid);
pub const IBUPROFEN_200MG: Drug = coded("329652003", "Ibuprofen 200mg tablets", Nsaid);
pub const IBUPROFEN_400MG: Drug = coded("329653008", "Ibuprofen 400mg tablets", Nsaid);
pub const OMEPRAZOLE_40MG: Drug = coded(
    "317295004",
    "Omeprazole 40mg gastro-resistant capsules",
    Other,
);

// Branded (AMP) products of VMPs above: every one is an AMP in smr-dmd's data (checked by a
// test), with the VMP it is a brand of.
pub const LOSEC_20MG: Drug = coded(
    "923011000001105",
    "Losec 20mg gastro-resistant capsules (AstraZeneca UK Ltd)",
    Other,
);
pub const BRUFEN_400MG: Drug = coded("263211000001109", "Brufen 400mg tablets (Mylan)", Nsaid);
pub const BRANDS: &[(Drug, Drug)] = &[
    (OMEPRAZOLE_20MG, LOSEC_20MG),
    (IBUPROFEN_400MG, BRUFEN_400MG),
];

/// A supplier's brand (AMP) of `vmp`, where the subset has one.
pub fn brand_of(vmp: Drug) -> Option<Drug> {
    BRANDS.iter().find(|(v, _)| *v == vmp).map(|(_, a)| *a)
}

/// Lower and higher strengths of one product (same form), both VMPs in the subset.
const STRENGTHS: &[(Drug, Drug)] = &[
    (LANSOPRAZOLE_15MG, LANSOPRAZOLE_30MG),
    (OMEPRAZOLE_20MG, OMEPRAZOLE_40MG),
    (AMITRIPTYLINE_10MG, AMITRIPTYLINE_25MG),
    (SIMVASTATIN_10MG, SIMVASTATIN_40MG),
    (NAPROXEN_250MG, NAPROXEN_500MG),
    (WARFARIN_1MG, WARFARIN_3MG),
];

/// Another strength of the same product, where the subset has one (the higher when there is
/// one, else the lower).
pub fn other_strength(drug: Drug) -> Option<Drug> {
    STRENGTHS.iter().find_map(|&(low, high)| {
        if drug == low {
            Some(high)
        } else if drug == high {
            Some(low)
        } else {
            None
        }
    })
}

/// The active ingredient's name as the product's name starts (enough to tell products of
/// one ingredient apart from others in this crate's lists).
pub fn ingredient_key(drug: Drug) -> String {
    let first = drug.name.split_whitespace().next().unwrap_or_default();
    match first {
        "Losec" => "omeprazole".to_owned(),
        "Brufen" => "ibuprofen".to_owned(),
        other => other.to_ascii_lowercase(),
    }
}

// Text only: not in the smr-dmd subset.
pub const AMLODIPINE_5MG: Drug = text("Amlodipine 5mg tablets", Other);
pub const RAMIPRIL_5MG: Drug = text("Ramipril 5mg capsules", Other);
pub const INDAPAMIDE_2_5MG: Drug = text("Indapamide 2.5mg tablets", Other);
pub const BISOPROLOL_2_5MG: Drug = text("Bisoprolol fumarate 2.5mg tablets", Other);
pub const ATORVASTATIN_20MG: Drug = text("Atorvastatin 20mg tablets", Other);
pub const ATORVASTATIN_80MG: Drug = text("Atorvastatin 80mg tablets", Other);
pub const METFORMIN_500MG: Drug = text("Metformin 500mg tablets", Other);
pub const GLICLAZIDE_80MG: Drug = text("Gliclazide 80mg tablets", Other);
pub const SALBUTAMOL_INHALER: Drug = text("Salbutamol 100micrograms/dose inhaler CFC free", Other);
pub const BECLOMETASONE_INHALER: Drug =
    text("Beclometasone 100micrograms/dose inhaler CFC free", Other);
pub const PREDNISOLONE_5MG: Drug = text("Prednisolone 5mg tablets", Other);
pub const APIXABAN_5MG: Drug = text("Apixaban 5mg tablets", Other);
pub const EDOXABAN_60MG: Drug = text("Edoxaban 60mg tablets", Other);
pub const ASPIRIN_75MG: Drug = text("Aspirin 75mg dispersible tablets", Other);
pub const CITALOPRAM_20MG: Drug = text("Citalopram 20mg tablets", Other);
pub const SERTRALINE_50MG: Drug = text("Sertraline 50mg tablets", Other);
pub const MIRTAZAPINE_15MG: Drug = text("Mirtazapine 15mg tablets", Other);
pub const CO_CODAMOL_30_500: Drug = text("Co-codamol 30mg/500mg tablets", Other);
pub const CODEINE_30MG: Drug = text("Codeine phosphate 30mg tablets", Other);
pub const TRAMADOL_50MG: Drug = text("Tramadol 50mg capsules", Other);
pub const PARACETAMOL_500MG: Drug = text("Paracetamol 500mg tablets", Other);
pub const LEVOTHYROXINE_100MCG: Drug = text("Levothyroxine sodium 100microgram tablets", Other);
pub const AMOXICILLIN_500MG: Drug = text("Amoxicillin 500mg capsules", Penicillin);
pub const AMOXICILLIN_SUSPENSION: Drug = text("Amoxicillin 250mg/5ml oral suspension", Penicillin);
pub const PHENOXYMETHYLPENICILLIN_250MG: Drug =
    text("Phenoxymethylpenicillin 250mg tablets", Penicillin);
pub const CLARITHROMYCIN_500MG: Drug = text("Clarithromycin 500mg tablets", Other);
pub const CLARITHROMYCIN_SUSPENSION: Drug = text("Clarithromycin 125mg/5ml oral suspension", Other);
pub const NITROFURANTOIN_100MG: Drug =
    text("Nitrofurantoin 100mg modified-release capsules", Other);
pub const COLECALCIFEROL_1000: Drug = text("Colecalciferol 1,000unit capsules", Other);
pub const ALENDRONIC_ACID_70MG: Drug = text("Alendronic acid 70mg tablets", Other);
pub const CALCIUM_VITAMIN_D: Drug = text(
    "Calcium carbonate 1.5g / Colecalciferol 10micrograms chewable tablets",
    Other,
);
pub const FUROSEMIDE_40MG: Drug = text("Furosemide 40mg tablets", Other);
pub const MACROGOL_SACHETS: Drug = text(
    "Macrogol compound oral powder sachets NPF sugar free",
    Other,
);

/// Every drug above, for tests.
#[cfg(test)]
pub const ALL_DRUGS: &[Drug] = &[
    WARFARIN_1MG,
    WARFARIN_3MG,
    WARFARIN_5MG,
    CLOPIDOGREL_75MG,
    CLOPIDOGREL_300MG,
    TICAGRELOR_90MG,
    SIMVASTATIN_10MG,
    SIMVASTATIN_40MG,
    SIMVASTATIN_80MG,
    PRAVASTATIN_40MG,
    ROSUVASTATIN_20MG,
    AMITRIPTYLINE_10MG,
    AMITRIPTYLINE_25MG,
    OMEPRAZOLE_20MG,
    LANSOPRAZOLE_15MG,
    LANSOPRAZOLE_30MG,
    NAPROXEN_250MG,
    NAPROXEN_500MG,
    IBUPROFEN_200MG,
    IBUPROFEN_400MG,
    OMEPRAZOLE_40MG,
    AMLODIPINE_5MG,
    RAMIPRIL_5MG,
    INDAPAMIDE_2_5MG,
    BISOPROLOL_2_5MG,
    ATORVASTATIN_20MG,
    ATORVASTATIN_80MG,
    METFORMIN_500MG,
    GLICLAZIDE_80MG,
    SALBUTAMOL_INHALER,
    BECLOMETASONE_INHALER,
    PREDNISOLONE_5MG,
    APIXABAN_5MG,
    EDOXABAN_60MG,
    ASPIRIN_75MG,
    CITALOPRAM_20MG,
    SERTRALINE_50MG,
    MIRTAZAPINE_15MG,
    CO_CODAMOL_30_500,
    CODEINE_30MG,
    TRAMADOL_50MG,
    PARACETAMOL_500MG,
    LEVOTHYROXINE_100MCG,
    AMOXICILLIN_500MG,
    AMOXICILLIN_SUSPENSION,
    PHENOXYMETHYLPENICILLIN_250MG,
    CLARITHROMYCIN_500MG,
    CLARITHROMYCIN_SUSPENSION,
    NITROFURANTOIN_100MG,
    COLECALCIFEROL_1000,
    ALENDRONIC_ACID_70MG,
    CALCIUM_VITAMIN_D,
    FUROSEMIDE_40MG,
    MACROGOL_SACHETS,
];

/// A long-term condition, SNOMED CT coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Condition {
    Hypertension,
    Type2Diabetes,
    Asthma,
    AtrialFibrillation,
    Depression,
    Hypercholesterolaemia,
    MyocardialInfarction,
    Osteoarthritis,
    Gord,
    Hypothyroidism,
    HeartFailure,
    Osteoporosis,
}

impl Condition {
    pub const ALL: [Condition; 12] = [
        Condition::Hypertension,
        Condition::Type2Diabetes,
        Condition::Asthma,
        Condition::AtrialFibrillation,
        Condition::Depression,
        Condition::Hypercholesterolaemia,
        Condition::MyocardialInfarction,
        Condition::Osteoarthritis,
        Condition::Gord,
        Condition::Hypothyroidism,
        Condition::HeartFailure,
        Condition::Osteoporosis,
    ];

    /// SNOMED CT concept id and preferred term.
    pub fn snomed(self) -> (&'static str, &'static str) {
        match self {
            Condition::Hypertension => ("38341003", "Hypertension"),
            Condition::Type2Diabetes => ("44054006", "Type 2 diabetes mellitus"),
            Condition::Asthma => ("195967001", "Asthma"),
            Condition::AtrialFibrillation => ("49436004", "Atrial fibrillation"),
            Condition::Depression => ("35489007", "Depressive disorder"),
            Condition::Hypercholesterolaemia => ("13644009", "Hypercholesterolaemia"),
            Condition::MyocardialInfarction => ("22298006", "Myocardial infarction"),
            Condition::Osteoarthritis => ("396275006", "Osteoarthritis"),
            Condition::Gord => ("235595009", "Gastro-oesophageal reflux disease"),
            Condition::Hypothyroidism => ("40930008", "Hypothyroidism"),
            Condition::HeartFailure => ("84114007", "Heart failure"),
            Condition::Osteoporosis => ("64859006", "Osteoporosis"),
        }
    }

    /// Rough prevalence by age (QOF-register-like orders of magnitude for England).
    fn prevalence(self, age: u8) -> f64 {
        let band = |young: f64, mid: f64, old: f64, oldest: f64| match age {
            0..=39 => young,
            40..=59 => mid,
            60..=79 => old,
            _ => oldest,
        };
        match self {
            Condition::Hypertension => band(0.02, 0.16, 0.45, 0.60),
            Condition::Type2Diabetes => band(0.01, 0.07, 0.15, 0.16),
            Condition::Asthma if age < 5 => 0.0,
            Condition::Asthma => 0.065,
            Condition::AtrialFibrillation => band(0.001, 0.01, 0.05, 0.12),
            Condition::Depression if age < 18 => 0.01,
            Condition::Depression => 0.13,
            Condition::Hypercholesterolaemia => band(0.01, 0.10, 0.18, 0.15),
            Condition::MyocardialInfarction => band(0.0, 0.015, 0.05, 0.08),
            Condition::Osteoarthritis => band(0.005, 0.06, 0.25, 0.35),
            Condition::Gord => band(0.02, 0.05, 0.10, 0.12),
            Condition::Hypothyroidism => band(0.005, 0.025, 0.045, 0.06),
            Condition::HeartFailure => band(0.0, 0.003, 0.02, 0.07),
            Condition::Osteoporosis => band(0.0, 0.01, 0.05, 0.12),
        }
    }
}

/// Drug allergy or intolerance on record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allergy {
    Penicillin,
    Nsaid,
    Codeine,
}

impl Allergy {
    /// SNOMED CT code (only where certain) and text.
    pub fn code(self) -> (Option<&'static str>, &'static str) {
        match self {
            Allergy::Penicillin => (Some("91936005"), "Allergy to penicillin"),
            Allergy::Nsaid => (None, "Non-steroidal anti-inflammatory drug allergy"),
            Allergy::Codeine => (None, "Codeine intolerance"),
        }
    }
}

/// How a medicine is on the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Completed,
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    Community,
    Inpatient,
}

/// One prescription to write as a MedicationRequest.
#[derive(Debug, Clone)]
pub struct Rx {
    pub drug: Drug,
    pub dose: &'static str,
    pub status: Status,
    pub setting: Setting,
    /// Repeat (continuous) or acute course.
    pub repeat: bool,
    /// Days before the reference date it was authored.
    pub days_ago: i64,
    pub reason: Option<Condition>,
    pub status_reason: Option<&'static str>,
    /// What else happens to it beyond the GP record (set after the record is drawn).
    pub extra: Extra,
}

/// How a prescription shows in other settings; all off for most.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extra {
    /// The pharmacy dispensed the latest issue as the branded product (AMP) of its VMP.
    pub brand_dispense: bool,
    /// Stopped, and its last issue (written before the stop) was dispensed after the stop.
    pub dispensed_after_stop: bool,
    /// Always dispensed at the pharmacy and given on the ward (the demo's clean medicine).
    pub everywhere: bool,
    /// The demo's medicine whose dose the hospital changes.
    pub changed_in_hospital: bool,
}

/// A medicine the patient reports taking (MedicationStatement), typically bought over the
/// counter.
#[derive(Debug, Clone)]
pub struct Reported {
    pub drug: Drug,
    pub dose: &'static str,
    pub days_ago: i64,
}

/// A patient's clinical picture.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// Conditions with the number of days since onset.
    pub conditions: Vec<(Condition, i64)>,
    pub allergies: Vec<Allergy>,
    pub prescriptions: Vec<Rx>,
    pub reported: Vec<Reported>,
}

impl Record {
    pub fn has(&self, c: Condition) -> bool {
        self.conditions.iter().any(|(x, _)| *x == c)
    }

    pub fn allergic_to(&self, class: DrugClass) -> bool {
        self.allergies.iter().any(|a| {
            matches!(
                (a, class),
                (Allergy::Penicillin, DrugClass::Penicillin) | (Allergy::Nsaid, DrugClass::Nsaid)
            )
        })
    }

    fn onset(&self, c: Condition) -> i64 {
        self.conditions
            .iter()
            .find(|(x, _)| *x == c)
            .map_or(365, |(_, d)| *d)
    }

    pub fn repeat(
        &mut self,
        rng: &mut Rng,
        drug: Drug,
        dose: &'static str,
        reason: impl Into<Option<Condition>>,
    ) {
        if self
            .prescriptions
            .iter()
            .any(|p| p.drug == drug && p.status == Status::Active)
        {
            return;
        }
        self.prescriptions.push(Rx {
            drug,
            dose,
            status: Status::Active,
            setting: Setting::Community,
            repeat: true,
            // An active repeat's MedicationRequest is its latest issue (an EPS prescription):
            // most people reorder every four to eight weeks, some have not for months.
            days_ago: if rng.chance(0.85) {
                rng.range(3, 84)
            } else {
                rng.range(90, 330)
            },
            reason: reason.into(),
            status_reason: None,
            extra: Extra::default(),
        });
    }

    /// A repeat that was stopped, `why`, some time between onset and the last year.
    fn stopped(
        &mut self,
        rng: &mut Rng,
        drug: Drug,
        dose: &'static str,
        reason: Condition,
        why: &'static str,
    ) {
        let onset = self.onset(reason).max(400);
        self.prescriptions.push(Rx {
            drug,
            dose,
            status: Status::Stopped,
            setting: Setting::Community,
            repeat: true,
            days_ago: rng.range(365, onset),
            reason: Some(reason),
            status_reason: Some(why),
            extra: Extra::default(),
        });
    }

    fn acute(&mut self, rng: &mut Rng, drug: Drug, dose: &'static str, within_days: i64) {
        self.prescriptions.push(Rx {
            drug,
            dose,
            status: Status::Completed,
            setting: Setting::Community,
            repeat: false,
            days_ago: rng.range(10, within_days.max(11)),
            reason: None,
            status_reason: None,
            extra: Extra::default(),
        });
    }
}

/// Draws a patient's conditions, allergies and medicines.
pub fn record(rng: &mut Rng, age: u8, female: bool) -> Record {
    let mut r = Record::default();
    let max_onset = (i64::from(age) * 365).max(60);
    for c in Condition::ALL {
        if rng.chance(c.prevalence(age)) {
            r.conditions
                .push((c, rng.range(60, max_onset.min(25 * 365))));
        }
    }
    // Hypercholesterolaemia and diabetes cluster with heart disease.
    if r.has(Condition::MyocardialInfarction)
        && !r.has(Condition::Hypercholesterolaemia)
        && rng.chance(0.5)
    {
        let onset = r.onset(Condition::MyocardialInfarction);
        r.conditions.push((Condition::Hypercholesterolaemia, onset));
    }
    // About one in ten people has a drug allergy recorded (penicillin by far the most common).
    if rng.chance(0.10) {
        let a = *rng.weighted(&[
            (Allergy::Penicillin, 0.7),
            (Allergy::Nsaid, 0.2),
            (Allergy::Codeine, 0.1),
        ]);
        r.allergies.push(a);
    }
    prescribe(rng, &mut r, age, female);
    r
}

fn prescribe(rng: &mut Rng, r: &mut Record, age: u8, female: bool) {
    use Condition::*;
    let conditions: Vec<Condition> = r.conditions.iter().map(|(c, _)| *c).collect();
    let mut on_antiplatelet_or_anticoagulant = false;
    let mut on_statin = false;
    for c in conditions {
        match c {
            Hypertension => {
                // NICE NG136: ACE inhibitor under 55 (or diabetes), calcium-channel blocker over.
                if age < 55 || r.has(Type2Diabetes) {
                    r.repeat(rng, RAMIPRIL_5MG, "One capsule once a day", c);
                    if rng.chance(0.4) {
                        r.repeat(rng, AMLODIPINE_5MG, "One tablet once a day", c);
                    }
                } else {
                    r.repeat(rng, AMLODIPINE_5MG, "One tablet once a day", c);
                    if rng.chance(if age >= 70 { 0.6 } else { 0.45 }) {
                        r.repeat(rng, RAMIPRIL_5MG, "One capsule once a day", c);
                    }
                    if rng.chance(if age >= 70 { 0.35 } else { 0.2 }) {
                        r.repeat(rng, INDAPAMIDE_2_5MG, "One tablet each morning", c);
                    }
                }
            }
            Type2Diabetes => {
                r.repeat(rng, METFORMIN_500MG, "One tablet twice a day with meals", c);
                if rng.chance(0.25) {
                    r.repeat(rng, GLICLAZIDE_80MG, "One tablet twice a day with meals", c);
                }
            }
            Asthma => {
                r.repeat(
                    rng,
                    SALBUTAMOL_INHALER,
                    "Two puffs when required for breathlessness",
                    c,
                );
                if rng.chance(0.6) {
                    r.repeat(rng, BECLOMETASONE_INHALER, "Two puffs twice a day", c);
                }
                if rng.chance(0.2) {
                    r.acute(
                        rng,
                        PREDNISOLONE_5MG,
                        "Eight tablets (40 mg) once a day for five days",
                        1500,
                    );
                }
            }
            AtrialFibrillation => {
                on_antiplatelet_or_anticoagulant = true;
                r.repeat(rng, BISOPROLOL_2_5MG, "One tablet once a day", c);
                // Most people with AF now take a DOAC; a minority stay on warfarin.
                if rng.chance(0.35) {
                    let tablets = *rng.pick(&[WARFARIN_1MG, WARFARIN_3MG, WARFARIN_5MG]);
                    r.repeat(
                        rng,
                        tablets,
                        "Take as directed by the anticoagulant clinic according to INR",
                        c,
                    );
                } else if rng.chance(0.8) {
                    r.repeat(rng, APIXABAN_5MG, "One tablet twice a day", c);
                } else {
                    r.repeat(rng, EDOXABAN_60MG, "One tablet once a day", c);
                }
            }
            MyocardialInfarction => {
                // Loading dose in hospital, then dual antiplatelet therapy and secondary prevention.
                let onset = r.onset(c);
                r.prescriptions.push(Rx {
                    drug: CLOPIDOGREL_300MG,
                    dose: "300 mg loading dose, once",
                    status: Status::Completed,
                    setting: Setting::Inpatient,
                    repeat: false,
                    days_ago: onset,
                    reason: Some(c),
                    status_reason: None,
                    extra: Extra::default(),
                });
                if !r.has(AtrialFibrillation) {
                    on_antiplatelet_or_anticoagulant = true;
                    let ticagrelor = rng.chance(0.35);
                    if onset < 365 {
                        // Dual antiplatelet therapy for the first year.
                        r.repeat(rng, ASPIRIN_75MG, "One tablet once a day", c);
                        if ticagrelor {
                            r.repeat(rng, TICAGRELOR_90MG, "One tablet twice a day", c);
                        } else {
                            r.repeat(rng, CLOPIDOGREL_75MG, "One tablet once a day", c);
                        }
                    } else {
                        if ticagrelor {
                            r.stopped(
                                rng,
                                TICAGRELOR_90MG,
                                "One tablet twice a day",
                                c,
                                "Twelve months of dual antiplatelet therapy completed",
                            );
                        }
                        r.repeat(rng, CLOPIDOGREL_75MG, "One tablet once a day", c);
                    }
                }
                if !r.has(Hypertension) {
                    r.repeat(rng, RAMIPRIL_5MG, "One capsule once a day", c);
                }
                r.repeat(rng, BISOPROLOL_2_5MG, "One tablet once a day", c);
                if !on_statin {
                    on_statin = true;
                    statin(rng, r, true, c);
                }
            }
            Hypercholesterolaemia => {
                if !on_statin {
                    on_statin = true;
                    statin(rng, r, false, c);
                }
            }
            Depression => {
                if rng.chance(0.7) {
                    let (drug, dose) = *rng.weighted(&[
                        ((CITALOPRAM_20MG, "One tablet once a day"), 0.4),
                        ((SERTRALINE_50MG, "One tablet once a day"), 0.45),
                        ((MIRTAZAPINE_15MG, "One tablet at night"), 0.15),
                    ]);
                    r.repeat(rng, drug, dose, c);
                }
            }
            Osteoarthritis => pain(rng, r, c, age, on_antiplatelet_or_anticoagulant),
            Gord => {
                let (drug, dose) = *rng.pick(&[
                    (OMEPRAZOLE_20MG, "One capsule once a day"),
                    (LANSOPRAZOLE_30MG, "One capsule once a day before breakfast"),
                    (LANSOPRAZOLE_15MG, "One capsule once a day"),
                ]);
                r.repeat(rng, drug, dose, c);
            }
            Hypothyroidism => r.repeat(rng, LEVOTHYROXINE_100MCG, "One tablet each morning", c),
            HeartFailure => {
                r.repeat(rng, FUROSEMIDE_40MG, "One tablet each morning", c);
                r.repeat(rng, RAMIPRIL_5MG, "One capsule once a day", c);
                r.repeat(rng, BISOPROLOL_2_5MG, "One tablet once a day", c);
            }
            Osteoporosis => {
                r.repeat(rng, ALENDRONIC_ACID_70MG, "One tablet once a week, 30 minutes before breakfast, swallowed whole with water while upright", c);
                r.repeat(rng, CALCIUM_VITAMIN_D, "One tablet twice a day", c);
            }
        }
    }
    // Statins for primary prevention (NICE NG238 offers atorvastatin 20 mg from a QRISK
    // threshold that most people over 65 with risk factors pass).
    if !on_statin
        && age >= 60
        && (r.has(Hypertension) || r.has(Type2Diabetes) || rng.chance(0.2))
        && rng.chance(0.6)
    {
        r.repeat(rng, ATORVASTATIN_20MG, "One tablet at night", None);
    }
    // Gastroprotection for older people on antiplatelets or anticoagulants.
    if on_antiplatelet_or_anticoagulant && age >= 65 && !r.has(Gord) && rng.chance(0.5) {
        r.repeat(
            rng,
            LANSOPRAZOLE_15MG,
            "One capsule once a day (gastroprotection)",
            None,
        );
    }
    acute_courses(rng, r, age, female);
    reported(rng, r, age);
}

fn statin(rng: &mut Rng, r: &mut Record, high_intensity: bool, reason: Condition) {
    if high_intensity {
        // NICE NG238: atorvastatin 80 mg after MI; some remain on older regimens.
        match rng.below(4) {
            0 | 1 => r.repeat(rng, ATORVASTATIN_80MG, "One tablet at night", reason),
            2 => {
                r.stopped(
                    rng,
                    SIMVASTATIN_80MG,
                    "One tablet at night",
                    reason,
                    "Switched: MHRA advice on myopathy risk with simvastatin 80 mg",
                );
                r.repeat(rng, ATORVASTATIN_80MG, "One tablet at night", reason);
            }
            _ => r.repeat(rng, ROSUVASTATIN_20MG, "One tablet at night", reason),
        }
    } else {
        match rng.below(6) {
            0 | 1 => r.repeat(rng, ATORVASTATIN_20MG, "One tablet at night", reason),
            2 => r.repeat(rng, SIMVASTATIN_40MG, "One tablet at night", reason),
            3 => {
                r.stopped(
                    rng,
                    SIMVASTATIN_40MG,
                    "One tablet at night",
                    reason,
                    "Muscle aches",
                );
                r.repeat(rng, PRAVASTATIN_40MG, "One tablet at night", reason);
            }
            4 => r.repeat(rng, SIMVASTATIN_10MG, "One tablet at night", reason),
            _ => r.repeat(rng, ROSUVASTATIN_20MG, "One tablet at night", reason),
        }
    }
}

fn pain(rng: &mut Rng, r: &mut Record, c: Condition, age: u8, bleeding_risk: bool) {
    r.repeat(
        rng,
        PARACETAMOL_500MG,
        "Two tablets up to four times a day when required",
        c,
    );
    let nsaid_ok = !r.allergic_to(DrugClass::Nsaid) && !bleeding_risk && age < 75;
    if nsaid_ok && rng.chance(0.35) {
        // An NSAID with a PPI, as NICE NG226 advises; earlier ibuprofen stopped.
        if rng.chance(0.5) {
            r.stopped(
                rng,
                IBUPROFEN_400MG,
                "One tablet three times a day with food",
                c,
                "Not effective",
            );
        }
        let (drug, dose) = *rng.pick(&[
            (NAPROXEN_500MG, "One tablet twice a day with food"),
            (NAPROXEN_250MG, "One tablet three times a day with food"),
        ]);
        r.repeat(rng, drug, dose, c);
        r.repeat(rng, OMEPRAZOLE_20MG, "One capsule once a day", c);
    }
    let codeine_ok = !r.allergies.contains(&Allergy::Codeine);
    if rng.chance(if age >= 65 { 0.45 } else { 0.35 }) {
        let (drug, dose) = if codeine_ok {
            *rng.weighted(&[
                (
                    (
                        CO_CODAMOL_30_500,
                        "One or two tablets up to four times a day when required",
                    ),
                    0.5,
                ),
                (
                    (
                        CODEINE_30MG,
                        "One tablet up to four times a day when required",
                    ),
                    0.2,
                ),
                (
                    (
                        TRAMADOL_50MG,
                        "One or two capsules up to four times a day when required",
                    ),
                    0.3,
                ),
            ])
        } else {
            (
                TRAMADOL_50MG,
                "One capsule up to four times a day when required",
            )
        };
        r.repeat(rng, drug, dose, c);
        // A laxative with a regular opioid, especially in older people.
        if rng.chance(if age >= 65 { 0.6 } else { 0.3 }) {
            r.repeat(
                rng,
                MACROGOL_SACHETS,
                "One sachet once or twice a day in water",
                c,
            );
        }
    }
    if rng.chance(0.15) {
        let (drug, dose) = *rng.pick(&[
            (AMITRIPTYLINE_10MG, "One tablet at night"),
            (AMITRIPTYLINE_25MG, "One tablet at night"),
        ]);
        r.repeat(rng, drug, dose, c);
    }
}

fn acute_courses(rng: &mut Rng, r: &mut Record, age: u8, female: bool) {
    let penicillin_ok = !r.allergic_to(DrugClass::Penicillin);
    let courses = rng.below(3);
    for _ in 0..courses {
        if age < 12 {
            let (drug, dose) = if penicillin_ok {
                (
                    AMOXICILLIN_SUSPENSION,
                    "5 ml three times a day for five days",
                )
            } else {
                (
                    CLARITHROMYCIN_SUSPENSION,
                    "Dose by weight twice a day for five days",
                )
            };
            r.acute(rng, drug, dose, 2000);
            continue;
        }
        match rng.below(4) {
            0 if penicillin_ok => r.acute(
                rng,
                AMOXICILLIN_500MG,
                "One capsule three times a day for five days",
                2500,
            ),
            1 if penicillin_ok => r.acute(
                rng,
                PHENOXYMETHYLPENICILLIN_250MG,
                "Two tablets four times a day for five days",
                2500,
            ),
            2 if female && age >= 16 => r.acute(
                rng,
                NITROFURANTOIN_100MG,
                "One capsule twice a day for three days",
                2500,
            ),
            3 if !r.allergic_to(DrugClass::Nsaid) && age >= 16 => r.acute(
                rng,
                IBUPROFEN_400MG,
                "One tablet three times a day with food for up to seven days",
                2500,
            ),
            _ => r.acute(
                rng,
                CLARITHROMYCIN_500MG,
                "One tablet twice a day for five days",
                2500,
            ),
        }
    }
}

fn reported(rng: &mut Rng, r: &mut Record, age: u8) {
    if age < 16 || !rng.chance(0.2) {
        return;
    }
    let (drug, dose) = if !r.allergic_to(DrugClass::Nsaid) && rng.chance(0.4) {
        (
            IBUPROFEN_200MG,
            "One or two tablets up to three times a day when required (bought over the counter)",
        )
    } else if rng.chance(0.5) {
        (
            COLECALCIFEROL_1000,
            "One capsule once a day (bought over the counter)",
        )
    } else {
        (
            PARACETAMOL_500MG,
            "Two tablets up to four times a day when required (bought over the counter)",
        )
    };
    r.reported.push(Reported {
        drug,
        dose,
        days_ago: rng.range(14, 720),
    });
}
