//! The per-patient input: what the store gathers for one patient, nothing more.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use smr_pgx::Gene;
use time::Date;

/// A calendar month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "String")]
pub struct Month {
    pub year: i32,
    /// 1–12.
    pub month: u8,
}

impl Month {
    pub fn of(date: Date) -> Month {
        Month {
            year: date.year(),
            month: date.month() as u8,
        }
    }

    pub fn previous(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// The first day of the following month: events before it happened by the month's end.
    pub fn end_exclusive(self) -> Option<Date> {
        let (y, m) = if self.month == 12 {
            (self.year + 1, 1)
        } else {
            (self.year, self.month + 1)
        };
        let month = time::Month::try_from(m).ok()?;
        Date::from_calendar_date(y, month, 1).ok()
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl From<Month> for String {
    fn from(m: Month) -> String {
        m.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a month: expected YYYY-MM")]
pub struct BadMonth(pub String);

impl FromStr for Month {
    type Err = BadMonth;
    fn from_str(s: &str) -> Result<Month, BadMonth> {
        let bad = || BadMonth(s.to_string());
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u8 = m.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(Month { year, month })
    }
}

/// Age bands as NHS England's health-inequalities reporting groups them coarsely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum AgeBand {
    #[serde(rename = "0-17")]
    Under18,
    #[serde(rename = "18-39")]
    From18To39,
    #[serde(rename = "40-64")]
    From40To64,
    #[serde(rename = "65-79")]
    From65To79,
    #[serde(rename = "80+")]
    From80,
}

impl AgeBand {
    pub const ALL: [AgeBand; 5] = [
        AgeBand::Under18,
        AgeBand::From18To39,
        AgeBand::From40To64,
        AgeBand::From65To79,
        AgeBand::From80,
    ];
    pub fn of_age(years: u32) -> AgeBand {
        match years {
            0..=17 => AgeBand::Under18,
            18..=39 => AgeBand::From18To39,
            40..=64 => AgeBand::From40To64,
            65..=79 => AgeBand::From65To79,
            _ => AgeBand::From80,
        }
    }
    pub fn label(self) -> &'static str {
        ["0-17", "18-39", "40-64", "65-79", "80+"][self as usize]
    }
}

/// FHIR administrative gender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    Female,
    Male,
    Other,
    Unknown,
}

impl Sex {
    pub const ALL: [Sex; 4] = [Sex::Female, Sex::Male, Sex::Other, Sex::Unknown];
    pub fn label(self) -> &'static str {
        ["female", "male", "other", "unknown"][self as usize]
    }
    pub fn from_fhir(code: &str) -> Sex {
        match code {
            "female" => Sex::Female,
            "male" => Sex::Male,
            "other" => Sex::Other,
            _ => Sex::Unknown,
        }
    }
}

/// The five high-level ethnic groups of the ONS 2021 Census (England and Wales) that the NHS
/// Data Dictionary's ethnic category codes roll up to, and "not stated".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum EthnicGroup {
    Asian,
    Black,
    Mixed,
    White,
    Other,
    NotStated,
}

impl EthnicGroup {
    pub const ALL: [EthnicGroup; 6] = [
        EthnicGroup::Asian,
        EthnicGroup::Black,
        EthnicGroup::Mixed,
        EthnicGroup::White,
        EthnicGroup::Other,
        EthnicGroup::NotStated,
    ];
    pub fn label(self) -> &'static str {
        [
            "Asian or Asian British",
            "Black or Black British",
            "Mixed",
            "White",
            "Other ethnic group",
            "Not stated",
        ][self as usize]
    }
    /// From an NHS Data Dictionary ethnic category code (A–S, Z not stated; 99 not known).
    pub fn from_nhs_code(code: &str) -> EthnicGroup {
        match code {
            "A" | "B" | "C" => EthnicGroup::White,
            "D" | "E" | "F" | "G" => EthnicGroup::Mixed,
            "H" | "J" | "K" | "L" => EthnicGroup::Asian,
            "M" | "N" | "P" => EthnicGroup::Black,
            "R" | "S" => EthnicGroup::Other,
            _ => EthnicGroup::NotStated,
        }
    }
}

/// IMD 2019 quintile of the patient's LSOA: 1 = most deprived 20%.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ImdQuintile(u8);

impl ImdQuintile {
    pub fn new(q: u8) -> Option<ImdQuintile> {
        (1..=5).contains(&q).then_some(ImdQuintile(q))
    }
    /// From an IMD decile (1 = most deprived 10%).
    pub fn from_decile(d: u8) -> Option<ImdQuintile> {
        (1..=10).contains(&d).then(|| ImdQuintile(d.div_ceil(2)))
    }
    pub fn get(self) -> u8 {
        self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prescription {
    pub date: Date,
    /// Ingredient name (dm+d VTM name, lower case), as smr-pgx-guidelines names drugs.
    pub drug: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenotypeResult {
    /// When the result was recorded (effective or issued).
    pub date: Date,
    pub gene: Gene,
    /// Drugs whose guideline recommendation for this result is not standard prescribing (the
    /// gatherer decides with `smr_pgx_guidelines::recommend`).
    pub actionable_for: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feedback {
    Accepted,
    /// With the override reason's `system|code` when one was given.
    Overridden {
        reason: Option<String>,
    },
}

/// A PGx CDS card shown to a prescriber, with its feedback if any came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub date: Date,
    pub feedback: Option<Feedback>,
}

/// A change of a prescribed drug (stopped, dose changed, switched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrescribingChange {
    pub date: Date,
    pub drug: String,
}

/// Everything analytics needs about one patient. Organisation codes are ODS-style codes;
/// nothing here identifies the patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientFacts {
    pub practice: String,
    pub sub_icb: String,
    pub icb: String,
    pub age_band: AgeBand,
    pub sex: Sex,
    pub ethnicity: EthnicGroup,
    pub imd_quintile: Option<ImdQuintile>,
    /// Opted out of secondary use (national data opt-out or a research opt-out Consent):
    /// never counted.
    pub opted_out: bool,
    pub prescriptions: Vec<Prescription>,
    pub genotypes: Vec<GenotypeResult>,
    pub alerts: Vec<Alert>,
    pub changes: Vec<PrescribingChange>,
    /// Hospital admission dates (inpatient Encounters' starts).
    pub admissions: Vec<Date>,
}
