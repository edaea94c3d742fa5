//! Provenance of medication entries: which care setting wrote them, who, for which
//! organisation, and when. SMR's medication-record merge reads the setting from
//! `agent[0].role` (see the crate documentation for the contract).

use serde_json::{Value, json};

use crate::OrgRef;

/// The care settings a medication entry can come from.
pub const CARE_SETTING_SYSTEM: &str = "https://fhir.smr.nhs.uk/CodeSystem/care-setting";
const DATA_OPERATION: &str = "http://terminology.hl7.org/CodeSystem/v3-DataOperation";
const PARTICIPANT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/provenance-participant-type";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CareSetting {
    GpPractice,
    Hospital,
    CommunityPharmacy,
    Community,
    CareHome,
    PatientReported,
}

impl CareSetting {
    pub fn code(self) -> &'static str {
        match self {
            CareSetting::GpPractice => "gp-practice",
            CareSetting::Hospital => "hospital",
            CareSetting::CommunityPharmacy => "community-pharmacy",
            CareSetting::Community => "community",
            CareSetting::CareHome => "care-home",
            CareSetting::PatientReported => "patient-reported",
        }
    }

    fn display(self) -> &'static str {
        match self {
            CareSetting::GpPractice => "GP practice",
            CareSetting::Hospital => "Hospital",
            CareSetting::CommunityPharmacy => "Community pharmacy",
            CareSetting::Community => "Community services",
            CareSetting::CareHome => "Care home",
            CareSetting::PatientReported => "Patient reported",
        }
    }

    /// The coding of this setting (in Provenance roles and Organization types).
    pub fn coding(self) -> Value {
        json!({"system": CARE_SETTING_SYSTEM, "code": self.code(), "display": self.display()})
    }
}

/// A Provenance of the entries `targets` (`urn:uuid:` fullUrls, rewritten on load), written
/// at `recorded` in `setting` by `who` on behalf of `org`.
pub fn provenance(
    targets: &[String],
    recorded: &str,
    setting: CareSetting,
    who: Value,
    org: &OrgRef,
) -> Value {
    let target: Vec<Value> = targets.iter().map(|t| json!({"reference": t})).collect();
    json!({
        "resourceType": "Provenance",
        "target": target,
        "recorded": recorded,
        "activity": {"coding": [{"system": DATA_OPERATION, "code": "CREATE", "display": "create"}]},
        "agent": [{
            "type": {"coding": [{"system": PARTICIPANT_TYPE, "code": "author", "display": "Author"}]},
            "role": [{"coding": [setting.coding()]}],
            "who": who,
            "onBehalfOf": org.reference(),
        }],
    })
}

/// Entries written in one setting, waiting for their Provenance: the latest time among
/// them becomes `recorded`.
#[derive(Debug, Default)]
pub struct Pending {
    pub targets: Vec<String>,
    latest: String,
}

impl Pending {
    /// Adds an entry written at `when` (a FHIR dateTime of the form this crate writes, so
    /// they order as text).
    pub fn push(&mut self, url: String, when: &str) {
        self.targets.push(url);
        if when > self.latest.as_str() {
            self.latest = when.to_owned();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The Provenance, or `None` when nothing was written.
    pub fn finish(self, setting: CareSetting, who: Value, org: &OrgRef) -> Option<Value> {
        (!self.is_empty()).then(|| provenance(&self.targets, &self.latest, setting, who, org))
    }
}
