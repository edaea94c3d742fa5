//! Equity attributes and the commissioning layer the ICB analytics split by.
//!
//! - **Ethnicity**: UK Core's `Extension-UKCore-EthnicCategory` on the Patient, coded in
//!   `UKCore-EthnicCategoryEngland` (the NHS Data Dictionary ethnic category codes, 2001
//!   Census classification). Shares follow the ONS Census 2021 ("Ethnic group, England and
//!   Wales: Census 2021", ONS statistical bulletin, 29 November 2022, table TS021): White
//!   81.7% (English, Welsh, Scottish, Northern Irish or British 74.4%, Other White 6.2%), Asian
//!   9.3% (Indian 3.1%), Black 4.0%, Mixed 2.9%, Other 2.1%. The group totals and the three
//!   largest categories were checked against the bulletin; the smaller categories' shares are
//!   transcribed from TS021. 2021 categories without a 2001-based code go to the nearest "any
//!   other" code: Gypsy or Irish Traveller and Roma → C, Arab → S.
//! - **Deprivation**: a synthetic LSOA code on the home address (`E0199nnnn`: the E01 prefix of
//!   English LSOAs, numbered above any LSOA issued — the 2011 LSOAs end at E01033768, the
//!   2021 ones below E01036000) and its IMD 2019 decile and quintile. Deciles are drawn
//!   uniformly because that is what a decile is: each holds 10% of England's LSOAs (Ministry of
//!   Housing, Communities and Local Government, "The English Indices of Deprivation 2019",
//!   File 1 "Index of Multiple Deprivation", 26 September 2019; decile 1 = most deprived).
//!   Recorded as the SMR extension [`IMD_URL`] on the address (see docs/analytics.md).
//! - **Sub-ICB locations**: every practice is `partOf` a sub-ICB location Organization
//!   (`Y9Snnn`, [`SUB_ICBS_PER_ICB`] per ICB, each holding whole localities), itself `partOf`
//!   the ICB. Real sub-ICB location codes are three characters (e.g. `00L`); these keep the
//!   crate's `Y9` + letter style, which no real code has.
//!
//! Draws come from the patient's own stream for demographics, so adding them left every
//! other draw of the population unchanged.

use serde_json::{Value, json};

use crate::rng::Rng;

pub const ETHNIC_CATEGORY_URL: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory";
pub const ETHNIC_CATEGORY_SYSTEM: &str =
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland";
/// On `Patient.address`: the address's LSOA (2011 boundaries, as IMD 2019 uses).
pub const LSOA_URL: &str = "https://fhir.smr.nhs.uk/StructureDefinition/lsoa";
/// On `Patient.address`: IMD 2019 of the LSOA, with `decile` and `quintile` (valueInteger,
/// 1 = most deprived).
pub const IMD_URL: &str = "https://fhir.smr.nhs.uk/StructureDefinition/imd-2019";

/// Sub-ICB locations per ICB.
pub const SUB_ICBS_PER_ICB: usize = 3;

/// NHS Data Dictionary ethnic category code, its UK Core display, and its share per 1000 of
/// the population (ONS Census 2021, England and Wales; see the module comment).
pub const ETHNIC_CATEGORIES: [(&str, &str, u32); 16] = [
    ("A", "White - British", 744),
    ("B", "White - Irish", 9),
    // Other White 6.2% + Gypsy or Irish Traveller 0.1% + Roma 0.2%.
    ("C", "White - Any other White background", 65),
    ("D", "Mixed - White and Black Caribbean", 8),
    ("E", "Mixed - White and Black African", 4),
    ("F", "Mixed - White and Asian", 8),
    ("G", "Mixed - Any other mixed background", 8),
    ("H", "Asian or Asian British - Indian", 31),
    ("J", "Asian or Asian British - Pakistani", 27),
    ("K", "Asian or Asian British - Bangladeshi", 11),
    (
        "L",
        "Asian or Asian British - Any other Asian background",
        16,
    ),
    ("M", "Black or Black British - Caribbean", 10),
    ("N", "Black or Black British - African", 25),
    (
        "P",
        "Black or Black British - Any other Black background",
        5,
    ),
    ("R", "Other Ethnic Groups - Chinese", 7),
    // Arab 0.6% + any other ethnic group 1.6%.
    ("S", "Other Ethnic Groups - Any other ethnic group", 22),
];

/// The Patient extension for a drawn ethnic category.
pub fn ethnicity(rng: &mut Rng) -> Value {
    let total: u32 = ETHNIC_CATEGORIES.iter().map(|c| c.2).sum();
    let mut draw = rng.below(u64::from(total)) as u32;
    let mut chosen = ETHNIC_CATEGORIES[0];
    for c in ETHNIC_CATEGORIES {
        if draw < c.2 {
            chosen = c;
            break;
        }
        draw -= c.2;
    }
    json!({
        "url": ETHNIC_CATEGORY_URL,
        "valueCodeableConcept": {"coding": [{
            "system": ETHNIC_CATEGORY_SYSTEM,
            "code": chosen.0,
            "display": chosen.1,
        }]},
    })
}

/// The address extensions for a drawn LSOA: its code and its IMD 2019 decile and quintile.
pub fn deprivation(rng: &mut Rng) -> Vec<Value> {
    let decile = 1 + rng.below(10) as i64;
    let quintile = (decile + 1) / 2;
    // Four digits after E0199: the decile is the leading digit, so an LSOA's code and decile
    // always agree.
    let lsoa = format!("E0199{}{:03}", decile - 1, rng.below(1000));
    vec![
        json!({"url": LSOA_URL, "valueString": lsoa}),
        json!({
            "url": IMD_URL,
            "extension": [
                {"url": "decile", "valueInteger": decile},
                {"url": "quintile", "valueInteger": quintile},
            ],
        }),
    ]
}

/// The sub-ICB location of a practice: localities of the same ICB in turn, so each sub-ICB
/// holds whole localities (and so shares their hospital).
pub fn sub_icb_index(practice: usize, icbs: usize) -> usize {
    let icb = practice % icbs;
    let locality_in_icb = crate::care::locality_of(practice, icbs) / icbs;
    (locality_in_icb % SUB_ICBS_PER_ICB) * icbs + icb
}

pub fn sub_icb_code(index: usize) -> String {
    format!("Y9S{index:03}")
}
