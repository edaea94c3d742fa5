//! A synthetic NHS primary-care population for SMR, as FHIR R4 transaction Bundles.
//!
//! [`generate`] turns a [`SynthConfig`] into a [`Population`]: GP practices (ODS-shaped codes
//! `Y9nnnn`, part of a synthetic sub-ICB location `Y9Snnn`, part of a synthetic ICB
//! `Q9X`/`Q9Y`), their GPs (GMC-shaped numbers `99nnnnn`,
//! far above any the GMC has issued), and patients with
//!
//! - NHS numbers from the never-issued `999` block with valid Modulus 11 check digits,
//!   distinct within a population (`999 000 xxxx` is left for hand-written examples);
//! - age and sex like England's, common UK names, addresses in real postcode districts with
//!   made-up streets, Ofcom drama mobile numbers, the registered practice in
//!   `generalPractitioner`;
//! - an ethnic category (UK Core extension, Census 2021 shares) and, on the home address, a
//!   synthetic LSOA with its IMD 2019 decile and quintile (see `demographics`);
//! - long-term conditions (SNOMED CT) by age, and the medicines a GP would prescribe for them
//!   (dm+d VMP codes from smr-dmd where the subset has one, text otherwise; more medicines the
//!   older and iller the patient), drug allergies for about 10%, and for about 15% a
//!   pharmacogenomic panel (CYP2C19, CYP2D6, CYP2C9, VKORC1 genotype Observations);
//! - their medicines as each care setting records them (below), with the conflicts between
//!   settings a medication record has to show;
//! - care beyond the practice, from which SMR derives who may open a record (see
//!   `smr_access::care`): inpatient Encounters at a synthetic acute hospital trust for about
//!   15% (in progress, finished within the last 30 days, or long ago), a nominated community
//!   pharmacy on the community prescriptions of about 85% of those who have one with
//!   MedicationDispenses, an active EpisodeOfCare with a community nursing team for about 5%
//!   (mostly the very old), and residence in a care home for about 4% of the over-65s.
//!
//! # Medicines by setting
//!
//! | setting | resources | shape |
//! |---|---|---|
//! | GP practice | MedicationRequest | GP Connect: the authorisation `intent: plan` (`courseOfTherapyType` continuous or acute, `dosageInstruction` text *and* `doseAndRate.doseQuantity` (or `doseRange`), `timing.repeat` frequency/period, route; `dispenseRequest` validity, quantity, 28-day supply, nominated pharmacy), category `community`; its issues `intent: order`, `status: completed`, `basedOn` the plan (the last 1–3 monthly issues of a repeat, the one issue of an acute course). A stopped plan: `status: stopped`, `statusReason.text`, stop date = `dispenseRequest.validityPeriod.end`. |
//! | community pharmacy | MedicationDispense | `status: completed`, `whenHandedOver`, `authorizingPrescription` = the issue, `performer.actor` = the pharmacy, quantity, structured `dosageInstruction`; about 30% of dispenses of a VMP the subset has a brand (AMP) for are of the brand. |
//! | hospital | Encounter (class `IMP`), MedicationStatement, MedicationRequest, MedicationAdministration | per stay: the admission medication history (MedicationStatement, category `inpatient`, `informationSource` the admitting clinician, `context` the Encounter), inpatient orders (`intent: order`, category `inpatient`, `encounter`) for up to two of them, each with a ward administration (category `inpatient`, `context` the Encounter, `request` the order, `dosage.dose` and `dosage.route`), and for a finished stay the discharge medicines (`intent: order`, category `discharge`, `status: active`). An MI's loading dose is an older inpatient order. |
//! | care home | MedicationAdministration | category `community`, `request` the GP issue it was supplied from, two days of up to three of the resident's repeats. |
//! | patient-reported | MedicationStatement | `status: active`, category `patientspecified`, `informationSource` the Patient: ibuprofen 200 mg (coded), paracetamol and colecalciferol (text only: not in the subset, so they take the by-name path). |
//!
//! Every medication entry is the target of exactly one Provenance of its Bundle: one per
//! setting per patient (one per stay for the hospital), `target` the entries' `urn:uuid:`
//! fullUrls, `recorded` the newest entry's time, `activity` CREATE (v3-DataOperation), and
//! `agent[0]` of type `author` with `role` the setting in
//! `https://fhir.smr.nhs.uk/CodeSystem/care-setting` (`gp-practice`, `hospital`,
//! `community-pharmacy`, `care-home`, `patient-reported`), `who` the clinician (the GP or the
//! hospital's admitting doctor as a Practitioner reference; the pharmacist and the care-home
//! carer by display; the Patient for patient-reported) and `onBehalfOf` the Organization
//! (reference and ODS identifier; for patient-reported, the practice where it was told). The
//! store keeps each in the record of its first target's patient and writes no second
//! Provenance for the entries it names. Organizations carry the same setting as a second
//! `type` coding (`community` for the nursing team).
//!
//! # Conflicts
//!
//! See `scenarios`: a dose changed in hospital (discharge list at another strength or twice
//! the tablets, GP plan issued again at the old dose after the discharge; about 4% of
//! patients), a stopped medicine still dispensed (plan stopped 10–40 days ago, its last issue
//! handed over after the stop; about 5%), a duplicate brand or strength (two active plans of
//! one ingredient; about 6%). The demo patient has all three and a clean multi-setting
//! medicine: a GP repeat (VMP), dispensed as its brand where the subset has one, given on the
//! ward at the same dose and route.
//!
//! Up to [`PRACTICES_PER_LOCALITY`] practices of an ICB form a locality sharing one hospital
//! (and its admitting clinician, a Practitioner with GMC-shaped number `996nnnn`), one
//! pharmacy, one nursing team and one care home, numbered by locality `nnn` (at most 1000):
//!
//! | organisation | ODS code | `type` |
//! |---|---|---|
//! | acute hospital trust | `Y9Hnnn` | `prov`, "NHS trust (acute hospital)"; `partOf` the ICB |
//! | community pharmacy | `Y9Pnnn` | `prov`, "Community pharmacy"; `partOf` the ICB |
//! | community nursing team | `Y9Cnnn` | `team`, "Community nursing team"; `partOf` the trust |
//! | care home | `Y9Knnn` | `prov`, "Care home"; `partOf` the ICB |
//!
//! Real codes look different (trusts `R` + 2 characters, their sites 5 characters,
//! pharmacies `F` + 4, ICBs `Q` + 2, practices a letter and 5 digits, other `Y` codes `Y` and 5
//! digits); these keep the synthetic practices' `Y9` prefix with a letter in third place, so
//! they can be neither a synthetic practice nor a real code of those forms. Every name ends
//! "(synthetic)". References to them carry the ODS code beside the `urn:uuid:` placeholder.
//!
//! [`demo_organisations`] and [`demo_patient_nhs_number`] name, for a config, the
//! organisations demo users sign in as and one patient all of them care for now.
//!
//! Every resource carries `meta.security` HTEST ("test health data",
//! `http://terminology.hl7.org/CodeSystem/v3-ActReason`) and passes
//! `smr_fhir::validate::validate_resource`. References are `urn:uuid:` placeholders inside
//! one transaction Bundle per practice (the ICB, the locality's organisations and its hospital
//! clinician are conditional creates, `ifNoneExist` on the ODS code, in every Bundle that
//! needs them), so each Bundle loads on its own through `Store::transaction` or `POST /fhir`. The crate is pure: no I/O, and the same config always gives the same output.

mod care;
mod care_home;
mod clinical;
mod demo;
mod demographics;
mod dosage;
mod gp;
mod hospital;
mod people;
mod pgx;
mod provenance;
mod rng;
mod scenarios;

use serde_json::{Map, Value, json};
use smr_fhir::nhs_number::NHS_NUMBER_SYSTEM;
use time::{Date, Duration, Month};

use care::Locality;
use clinical::{Allergy, Drug, Record, Setting, Status};
use provenance::{CareSetting, Pending};
use rng::Rng;

pub use care::PRACTICES_PER_LOCALITY;
pub use demo::{DemoOrganisations, demo_organisations, demo_patient_nhs_number};
pub use demographics::{
    ETHNIC_CATEGORIES, ETHNIC_CATEGORY_SYSTEM, ETHNIC_CATEGORY_URL, IMD_URL, LSOA_URL,
    SUB_ICBS_PER_ICB, sub_icb_code,
};
pub use provenance::CARE_SETTING_SYSTEM;

pub const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
pub const GMC_SYSTEM: &str = "https://fhir.hl7.org.uk/Id/gmc-number";
pub const DMD_SYSTEM: &str = "https://dmd.nhs.uk";
pub const SNOMED_SYSTEM: &str = "http://snomed.info/sct";
pub const ACT_REASON_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
const PRESCRIPTION_ITEM_SYSTEM: &str = "https://fhir.nhs.uk/Id/prescription-order-item-number";

/// At most this many practices (`Y90000`–`Y99999`); beyond it practices just get bigger.
pub const MAX_PRACTICES: usize = 10_000;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthConfig {
    pub patients: usize,
    pub seed: u64,
    /// Patients per GP practice (and so per Bundle); at least 1.
    pub patients_per_practice: usize,
    /// "Today" for the population: ages and prescription dates are relative to it, so output
    /// does not change with the clock. The windows of care relationships (a hospital for 30
    /// days after discharge, a pharmacy for 90 days after a prescription or dispense) count
    /// from it too: to load a population whose recent relationships are current, set it to
    /// the load date. (In-progress stays, registrations and active episodes of care do not
    /// lapse.)
    pub today: Date,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            patients: 200,
            seed: 1,
            patients_per_practice: 50,
            today: Date::from_calendar_date(2026, Month::November, 1).expect("valid date"),
        }
    }
}

/// The generated population: transaction Bundles, one per practice.
#[derive(Debug, Clone, PartialEq)]
pub struct Population {
    pub bundles: Vec<Value>,
    /// Patients generated (the request, capped at [`max_patients`]).
    pub patients: usize,
    /// Resources across all Bundles (the ICB and locality organisations, conditional creates,
    /// counted once per Bundle).
    pub resources: usize,
}

impl Population {
    /// Every resource of every Bundle, in order.
    pub fn resources(&self) -> impl Iterator<Item = &Value> {
        self.bundles
            .iter()
            .flat_map(|b| b["entry"].as_array().into_iter().flatten())
            .map(|e| &e["resource"])
    }
}

/// The largest population the synthetic NHS-number range can hold distinctly.
pub fn max_patients() -> usize {
    static CAP: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CAP.get_or_init(people::nhs_capacity)
}

// Stream salts: each kind of entity draws from its own stream.
const SALT_PRACTICE: u64 = 1;
const SALT_PATIENT: u64 = 2;
const SALT_LOCALITY: u64 = 3;
// Ethnicity and deprivation: their own stream, so adding them changed no other draw.
const SALT_DEMOGRAPHICS: u64 = 4;

const ICBS: [(&str, &str); 2] = [
    ("Q9X", "NHS Synthetic North Integrated Care Board"),
    ("Q9Y", "NHS Synthetic South Integrated Care Board"),
];

/// Generates the population. Patients beyond [`max_patients`] are not generated (the
/// synthetic NHS-number range would run out).
pub fn generate(config: &SynthConfig) -> Population {
    let (patients, practices) = shape(config);
    let demo = demo::demo_index(config);
    let mut nhs_numbers = people::NhsNumbers::new(config.seed);
    let mut bundles = Vec::with_capacity(practices);
    let mut resources = 0;
    let mut next_patient = 0;
    for p in 0..practices {
        // Contiguous, near-equal shares of the patients.
        let end = patients * (p + 1) / practices;
        let mut g = BundleBuilder::new(Rng::stream(config.seed, SALT_PRACTICE, p as u64));
        let practice = practice(&mut g, config.seed, p);
        while next_patient < end {
            let nhs = nhs_numbers
                .next()
                .expect("patients capped at the NHS-number capacity");
            let mut rng = Rng::stream(config.seed, SALT_PATIENT, next_patient as u64);
            let is_demo = demo == Some(next_patient);
            let mut equity = Rng::stream(config.seed, SALT_DEMOGRAPHICS, next_patient as u64);
            patient(
                &mut g,
                (&mut rng, &mut equity),
                &practice,
                &nhs,
                config.today,
                is_demo,
            );
            next_patient += 1;
        }
        resources += g.entries.len();
        bundles.push(g.finish());
    }
    Population {
        bundles,
        patients,
        resources,
    }
}

/// Patients generated and practices (Bundles) for a config.
fn shape(config: &SynthConfig) -> (usize, usize) {
    let patients = config.patients.min(max_patients());
    let per = config.patients_per_practice.max(1);
    (patients, patients.div_ceil(per).clamp(1, MAX_PRACTICES))
}

/// Collects the entries of one transaction Bundle.
struct BundleBuilder {
    rng: Rng,
    entries: Vec<Value>,
}

impl BundleBuilder {
    fn new(rng: Rng) -> Self {
        BundleBuilder {
            rng,
            entries: Vec::new(),
        }
    }

    /// Adds `resource` (marked as test data) and returns its `urn:uuid:` fullUrl.
    fn add(&mut self, mut resource: Value, if_none_exist: Option<String>) -> String {
        let url = format!("urn:uuid:{}", self.rng.uuid());
        mark_synthetic(&mut resource);
        let ty = resource["resourceType"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut request = json!({"method": "POST", "url": ty});
        if let Some(q) = if_none_exist {
            request["ifNoneExist"] = Value::String(q);
        }
        self.entries
            .push(json!({"fullUrl": url, "resource": resource, "request": request}));
        url
    }

    fn finish(self) -> Value {
        json!({
            "resourceType": "Bundle",
            "meta": {"security": [htest()]},
            "type": "transaction",
            "entry": self.entries,
        })
    }
}

fn htest() -> Value {
    json!({"system": ACT_REASON_SYSTEM, "code": "HTEST", "display": "test health data"})
}

fn mark_synthetic(resource: &mut Value) {
    let Some(obj) = resource.as_object_mut() else {
        return;
    };
    let meta = obj
        .entry("meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(meta) = meta.as_object_mut() {
        let security = meta
            .entry("security")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(list) = security.as_array_mut() {
            list.push(htest());
        }
    }
    // `meta` first, after `resourceType`, as FHIR JSON examples order it.
    if let Some(meta) = obj.shift_remove("meta") {
        obj.shift_insert(1, "meta".to_owned(), meta);
    }
}

/// An Organization of the Bundle being built, for references to it.
#[derive(Debug, Clone)]
struct OrgRef {
    /// The entry's `urn:uuid:` fullUrl.
    url: String,
    /// ODS code.
    code: String,
    name: String,
}

impl OrgRef {
    /// A Reference by the entry's fullUrl (rewritten to `Organization/{id}` on load) that also
    /// carries the ODS code, so the organisation is known by its code even where the
    /// conditional create matched an existing Organization.
    fn reference(&self) -> Value {
        json!({
            "reference": self.url,
            "identifier": {"system": ODS_SYSTEM, "value": self.code},
            "display": self.name,
        })
    }
}

fn practice_code(index: usize) -> String {
    format!("Y9{index:04}")
}

struct Practice {
    url: String,
    code: String,
    name: String,
    town: usize,
    gps: Vec<(String, String)>,
    locality: Locality,
}

fn practice(g: &mut BundleBuilder, seed: u64, index: usize) -> Practice {
    let (icb_code, icb_name) = ICBS[index % ICBS.len()];
    let icb_url = g.add(
        json!({
            "resourceType": "Organization",
            "identifier": [{"system": ODS_SYSTEM, "value": icb_code}],
            "active": true,
            "type": [{"text": "Integrated care board"}],
            "name": icb_name,
        }),
        Some(format!("identifier={ODS_SYSTEM}|{icb_code}")),
    );
    let icb = OrgRef {
        url: icb_url,
        code: icb_code.to_owned(),
        name: icb_name.to_owned(),
    };
    // The sub-ICB location between the ICB and the practice (a conditional create, like the
    // ICB, in every Bundle of its practices).
    let sub_icb_code = demographics::sub_icb_code(demographics::sub_icb_index(index, ICBS.len()));
    let sub_icb_name = format!("{icb_name} - {sub_icb_code} Sub-ICB Location (synthetic)");
    let sub_icb_url = g.add(
        json!({
            "resourceType": "Organization",
            "identifier": [{"system": ODS_SYSTEM, "value": sub_icb_code}],
            "active": true,
            "type": [{"text": "Sub-ICB location"}],
            "name": sub_icb_name,
            "partOf": {"reference": icb.url, "display": icb_name},
        }),
        Some(format!("identifier={ODS_SYSTEM}|{sub_icb_code}")),
    );
    let locality_index = care::locality_of(index, ICBS.len());
    let locality = care::add_locality(
        g,
        Rng::stream(seed, SALT_LOCALITY, locality_index as u64),
        locality_index,
        &icb,
    );
    let mut rng = g.rng.clone();
    let town = rng.below(people::TOWNS.len() as u64) as usize;
    let addr = people::address(&mut rng, town);
    let street = addr
        .line
        .split_once(' ')
        .map_or(addr.line.as_str(), |(_, s)| s);
    let name = format!("{street} Surgery (synthetic)");
    let url = g.add(
        json!({
            "resourceType": "Organization",
            "identifier": [{"system": ODS_SYSTEM, "value": practice_code(index)}],
            "active": true,
            "type": [{
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov", "display": "Healthcare Provider"},
                    CareSetting::GpPractice.coding(),
                ],
                "text": "GP practice",
            }],
            "name": name,
            "telecom": [{"system": "phone", "value": format!("01632 960{:03}", rng.below(1000)), "use": "work"}],
            "address": [{"use": "work", "line": [addr.line], "city": addr.city, "postalCode": addr.postcode}],
            "partOf": {"reference": sub_icb_url, "display": sub_icb_name},
        }),
        None,
    );
    let mut gps = Vec::new();
    for k in 0..rng.range(2, 4) {
        let (n, female) = people::clinician_name(&mut rng);
        let display = format!("Dr {} {}", n.given[0], n.family);
        let gp = g.add(
            json!({
                "resourceType": "Practitioner",
                "identifier": [{"system": GMC_SYSTEM, "value": format!("99{:05}", index * 4 + k as usize)}],
                "active": true,
                "name": [{"use": "official", "family": n.family, "given": n.given, "prefix": ["Dr"]}],
                "gender": if female { "female" } else { "male" },
            }),
            None,
        );
        gps.push((gp, display));
    }
    g.rng = rng;
    Practice {
        url,
        code: practice_code(index),
        name,
        town,
        gps,
        locality,
    }
}

fn date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// A dateTime at a plausible surgery time on `d`.
fn date_time(rng: &mut Rng, d: Date) -> String {
    format!(
        "{}T{:02}:{:02}:00+00:00",
        date(d),
        rng.range(8, 17),
        rng.range(0, 59)
    )
}

/// A dateTime between `lo` and `hi` days before `today`.
fn date_time_ago(rng: &mut Rng, today: Date, lo: i64, hi: i64) -> String {
    let days = rng.range(lo, hi.max(lo));
    date_time(rng, days_before(today, days))
}

fn days_before(today: Date, days: i64) -> Date {
    today.checked_sub(Duration::days(days)).unwrap_or(today)
}

/// The first draws of a patient's stream: age, sex and clinical record (drawn first so the demo
/// patient can be chosen without generating anyone).
fn draw(rng: &mut Rng) -> (u8, bool, Record) {
    let age = people::age(rng);
    let female = people::is_female(rng, age);
    let record = clinical::record(rng, age, female);
    (age, female, record)
}

/// Latest issue of the demo patient's active repeats: well inside the pharmacy's 90 days.
const DEMO_MAX_ISSUE_DAYS: i64 = 56;

fn patient(
    g: &mut BundleBuilder,
    (rng, equity): (&mut Rng, &mut Rng),
    practice: &Practice,
    nhs: &str,
    today: Date,
    demo: bool,
) {
    let (age, female, mut record) = draw(rng);
    let stays = care::stays(rng, age, demo);
    // Most people with prescriptions from the practice have nominated a community pharmacy.
    let nominated = record
        .prescriptions
        .iter()
        .any(|rx| rx.setting == Setting::Community)
        && (demo || rng.chance(care::NOMINATION_SHARE));
    let change = scenarios::apply(rng, &mut record, &stays, nominated, demo);
    if demo {
        for rx in &mut record.prescriptions {
            if rx.status == Status::Active {
                rx.days_ago = rx.days_ago.min(DEMO_MAX_ISSUE_DAYS);
            }
        }
    }
    let birth = days_before(
        today,
        i64::from(age) * 365 + rng.range(0, 364) + i64::from(age / 4),
    );
    let name = people::name(rng, female, birth.year());
    let addr = people::address(rng, practice.town);
    let mut human_name = json!({"use": "official", "family": name.family, "given": name.given});
    if age >= 18 {
        let prefix = if !female {
            "Mr"
        } else {
            *rng.pick(&["Mrs", "Ms", "Miss"])
        };
        human_name["prefix"] = json!([prefix]);
    }
    let mut resource = json!({
        "resourceType": "Patient",
        "extension": [demographics::ethnicity(equity)],
        "identifier": [{
            "extension": [{
                "url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus",
                "valueCodeableConcept": {"coding": [{
                    "system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland",
                    "code": "01",
                    "display": "Number present and verified",
                }]},
            }],
            "system": NHS_NUMBER_SYSTEM,
            "value": nhs,
        }],
        "name": [human_name],
        "gender": if female { "female" } else { "male" },
        "birthDate": date(birth),
        "address": [{
            "extension": demographics::deprivation(equity),
            "use": "home", "line": [addr.line], "city": addr.city, "postalCode": addr.postcode,
        }],
        "generalPractitioner": [{"reference": practice.url, "display": practice.name}],
        "managingOrganization": {"reference": practice.url, "display": practice.name},
    });
    if age >= 16 {
        resource["telecom"] =
            json!([{"system": "phone", "value": people::mobile(rng), "use": "mobile"}]);
    }
    let patient_url = g.add(resource, None);
    let subject = json!({"reference": patient_url});
    let (gp_url, gp_name) = rng.pick(&practice.gps).clone();
    let gp = json!({"reference": gp_url, "display": gp_name});
    let local = &practice.locality;

    let mut condition_urls = Vec::new();
    for &(c, onset_days) in &record.conditions {
        let (code, display) = c.snomed();
        let onset = days_before(today, onset_days);
        let url = g.add(
            json!({
                "resourceType": "Condition",
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item", "display": "Problem List Item"}]}],
                "code": {"coding": [{"system": SNOMED_SYSTEM, "code": code, "display": display}], "text": display},
                "subject": subject,
                "onsetDateTime": date(onset),
                "recordedDate": date_time(rng, onset),
                "recorder": gp,
            }),
            None,
        );
        condition_urls.push((c, url));
    }
    for allergy in &record.allergies {
        g.add(allergy_resource(rng, *allergy, &subject, &gp, today), None);
    }
    let practice_org = OrgRef {
        url: practice.url.clone(),
        code: practice.code.clone(),
        name: practice.name.clone(),
    };
    let at = gp::Gp {
        subject: &subject,
        gp: &gp,
        hospital: &local.hospital,
        pharmacy: nominated.then_some(&local.pharmacy),
        today,
    };
    let conditions: Vec<_> = condition_urls.clone();
    let meds = gp::write(g, rng, &at, &record.prescriptions, &conditions, demo);
    let pharmacist = json!({"display": format!("Pharmacist, {}", local.pharmacy.name)});
    let mut provenances = vec![
        meds.gp
            .finish(CareSetting::GpPractice, gp.clone(), &practice_org),
        meds.pharmacy
            .finish(CareSetting::CommunityPharmacy, pharmacist, &local.pharmacy),
        meds.hospital.finish(
            CareSetting::Hospital,
            local.clinician.clone(),
            &local.hospital,
        ),
    ];
    let mut reported = Pending::default();
    for s in &record.reported {
        let since = days_before(today, s.days_ago);
        let asserted = date_time_ago(rng, today, 0, s.days_ago.min(365));
        let url = g.add(
            json!({
                "resourceType": "MedicationStatement",
                "status": "active",
                "category": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medication-statement-category", "code": "patientspecified", "display": "Patient Specified"}]},
                "medicationCodeableConcept": medication(s.drug),
                "subject": subject,
                "effectivePeriod": {"start": date(since)},
                "dateAsserted": asserted,
                "informationSource": subject,
                "dosage": [dosage::dosage(s.drug, s.dose)],
            }),
            None,
        );
        reported.push(url, &asserted);
    }
    // Told to the practice by the patient: the patient is the author, the practice where it
    // was recorded.
    provenances.push(reported.finish(CareSetting::PatientReported, subject.clone(), &practice_org));
    if age >= 18 && (demo || rng.chance(0.15)) {
        let issued = date_time_ago(rng, today, 30, 1500);
        let lab = json!({"display": "Synthetic Genomic Laboratory Hub"});
        for (gene, _) in pgx::PANEL {
            let diplotype = pgx::diplotype(rng, gene);
            let ctx = smr_cds::genotype::ResultContext {
                patient_ref: &patient_url,
                performer: Some(&lab),
                issued: &issued,
            };
            let obs = smr_cds::genotype::genotype_observation(ctx, gene, &diplotype);
            g.add(obs, None);
        }
    }
    let ward = hospital::Ward {
        subject: &subject,
        hospital: &local.hospital,
        clinician: &local.clinician,
        today,
    };
    for &stay in &stays {
        let changed_here = matches!(stay, care::Stay::Finished { .. });
        let change = change.as_ref().filter(|_| changed_here);
        provenances.push(hospital::stay(
            g,
            rng,
            &ward,
            stay,
            &record.prescriptions,
            change,
        ));
    }
    if care::in_care_home(rng, age, demo) {
        provenances.push(care_home::administrations(
            g,
            rng,
            &subject,
            &local.care_home,
            &record.prescriptions,
            &meds.written,
            today,
        ));
    }
    for p in provenances.into_iter().flatten() {
        g.add(p, None);
    }
    if care::community_nursing(rng, age, demo) {
        g.add(care::episode(rng, &subject, &local.team, today), None);
    }
}

/// `medicationCodeableConcept`: the dm+d VMP code and smr-dmd's term when the subset has the
/// code, text alone otherwise.
fn medication(drug: Drug) -> Value {
    let product = drug
        .code
        .and_then(|code| smr_dmd::products().iter().find(|p| p.code == code));
    match product {
        Some(p) => {
            json!({"coding": [{"system": DMD_SYSTEM, "code": p.code, "display": p.term}], "text": p.term})
        }
        None => json!({"text": drug.name}),
    }
}

fn allergy_resource(
    rng: &mut Rng,
    allergy: Allergy,
    subject: &Value,
    gp: &Value,
    today: Date,
) -> Value {
    let (code, text) = allergy.code();
    let mut cc = json!({"text": text});
    if let Some(code) = code {
        cc["coding"] = json!([{"system": SNOMED_SYSTEM, "code": code, "display": text}]);
    }
    let (kind, manifestation, severity) = match allergy {
        Allergy::Penicillin if rng.chance(0.05) => (
            "allergy",
            json!({"coding": [{"system": SNOMED_SYSTEM, "code": "39579001", "display": "Anaphylaxis"}], "text": "Anaphylaxis"}),
            "severe",
        ),
        Allergy::Penicillin => ("allergy", json!({"text": "Rash"}), "mild"),
        Allergy::Nsaid => ("allergy", json!({"text": "Wheeze"}), "moderate"),
        Allergy::Codeine => (
            "intolerance",
            json!({"text": "Nausea and vomiting"}),
            "mild",
        ),
    };
    json!({
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "code": "confirmed"}]},
        "type": kind,
        "category": ["medication"],
        "criticality": if severity == "severe" { "high" } else { "low" },
        "code": cc,
        "patient": subject,
        "recordedDate": date_time_ago(rng, today, 100, 7000),
        "recorder": gp,
        "reaction": [{"manifestation": [manifestation], "severity": severity}],
    })
}

#[cfg(test)]
mod tests;
