//! Who is asking, on whose behalf, and why.

use std::fmt;

use crate::scopes::Scopes;

/// SMR's roles. A token's role decides what its holder may do at all; SMART scopes can only
/// narrow that (see `policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Gp,
    HospitalPrescriber,
    HospitalPharmacist,
    CommunityPharmacist,
    Nurse,
    CareWorker,
    Patient,
    Analyst,
    Admin,
    /// Back-end integrations (SMART Backend Services): an interface engine, the EPS feed, a
    /// bulk loader. Acts for its organisation on any patient, limited by its scopes.
    System,
}

impl Role {
    pub const ALL: [Role; 10] = [
        Role::Gp,
        Role::HospitalPrescriber,
        Role::HospitalPharmacist,
        Role::CommunityPharmacist,
        Role::Nurse,
        Role::CareWorker,
        Role::Patient,
        Role::Analyst,
        Role::Admin,
        Role::System,
    ];

    /// The role's name in tokens, the CLI and the documentation.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Gp => "gp",
            Role::HospitalPrescriber => "hospital-prescriber",
            Role::HospitalPharmacist => "hospital-pharmacist",
            Role::CommunityPharmacist => "community-pharmacist",
            Role::Nurse => "nurse",
            Role::CareWorker => "care-worker",
            Role::Patient => "patient",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
            Role::System => "system",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Clinical roles read and write patients' records, within a care relationship.
    pub fn is_clinical(self) -> bool {
        matches!(
            self,
            Role::Gp
                | Role::HospitalPrescriber
                | Role::HospitalPharmacist
                | Role::CommunityPharmacist
                | Role::Nurse
                | Role::CareWorker
        )
    }

    /// The care setting a role works in when the token does not say.
    pub fn default_setting(self) -> CareSetting {
        match self {
            Role::Gp => CareSetting::GpPractice,
            Role::HospitalPrescriber | Role::HospitalPharmacist => CareSetting::Hospital,
            Role::CommunityPharmacist => CareSetting::CommunityPharmacy,
            Role::Nurse => CareSetting::Community,
            Role::CareWorker => CareSetting::CareHome,
            Role::Patient => CareSetting::PatientReported,
            Role::Analyst | Role::Admin | Role::System => CareSetting::Unspecified,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where care is given: the setting a write is made in, and what a patient's consent may
/// withhold medicines from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CareSetting {
    GpPractice,
    Hospital,
    CommunityPharmacy,
    Community,
    CareHome,
    PatientReported,
    Unspecified,
}

impl CareSetting {
    pub const ALL: [CareSetting; 7] = [
        CareSetting::GpPractice,
        CareSetting::Hospital,
        CareSetting::CommunityPharmacy,
        CareSetting::Community,
        CareSetting::CareHome,
        CareSetting::PatientReported,
        CareSetting::Unspecified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CareSetting::GpPractice => "gp-practice",
            CareSetting::Hospital => "hospital",
            CareSetting::CommunityPharmacy => "community-pharmacy",
            CareSetting::Community => "community",
            CareSetting::CareHome => "care-home",
            CareSetting::PatientReported => "patient-reported",
            CareSetting::Unspecified => "unspecified",
        }
    }

    /// Accepts SMR's names and the short forms used by the MLLP sender list (`gp`,
    /// `pharmacy`).
    pub fn parse(text: &str) -> Option<CareSetting> {
        match text {
            "gp" => Some(CareSetting::GpPractice),
            "pharmacy" => Some(CareSetting::CommunityPharmacy),
            _ => CareSetting::ALL.into_iter().find(|s| s.as_str() == text),
        }
    }

    /// The key a consent restriction uses for "everyone in this setting".
    pub fn consent_key(self) -> String {
        format!("setting:{}", self.as_str())
    }
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user (token `sub`), or the client id of a back-end system.
    pub user: String,
    pub role: Role,
    /// ODS code of the organisation the user acts for.
    pub organisation: Option<String>,
    /// The care setting the caller acts in: the token's claim, else their role's usual one.
    pub setting: CareSetting,
    /// Whether the token stated the setting. When it did not, the setting SMR records on
    /// writes is the caller's organisation's (its `Organization.type`), where SMR holds it.
    pub setting_claimed: bool,
    /// For patient users: their own Patient id.
    pub patient: Option<String>,
    pub scopes: Scopes,
    /// Display name, when the token carries one (for audit records).
    pub name: Option<String>,
    /// The token's issuer.
    pub issuer: String,
}

/// Why the caller is acting (HL7 v3 PurposeOfUse, as IHE BALP records it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PurposeOfUse {
    /// Treatment (`TREAT`): the ordinary purpose of a clinician or back-end system.
    Treatment,
    /// Break-the-glass (`BTG`): emergency access outside a care relationship.
    BreakGlass,
    /// The patient looking at their own record (`PATRQT`).
    PatientRequest,
    /// Running the service (`HOPERAT`): administrators.
    Operations,
    /// Analytics (`HRESCH`): disclosure-controlled aggregates only.
    Research,
}

impl PurposeOfUse {
    pub fn code(self) -> &'static str {
        match self {
            PurposeOfUse::Treatment => "TREAT",
            PurposeOfUse::BreakGlass => "BTG",
            PurposeOfUse::PatientRequest => "PATRQT",
            PurposeOfUse::Operations => "HOPERAT",
            PurposeOfUse::Research => "HRESCH",
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            PurposeOfUse::Treatment => "treatment",
            PurposeOfUse::BreakGlass => "break the glass",
            PurposeOfUse::PatientRequest => "patient requested",
            PurposeOfUse::Operations => "healthcare operations",
            PurposeOfUse::Research => "healthcare research",
        }
    }

    /// The purpose a role acts for by default.
    pub fn default_for(role: Role) -> PurposeOfUse {
        match role {
            Role::Patient => PurposeOfUse::PatientRequest,
            Role::Admin => PurposeOfUse::Operations,
            Role::Analyst => PurposeOfUse::Research,
            _ => PurposeOfUse::Treatment,
        }
    }
}

/// What every use case of the application layer takes: who, for what, and which request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub principal: Principal,
    pub purpose: PurposeOfUse,
    /// The reason given in `X-Break-Glass-Reason`; `Some` exactly when `purpose` is
    /// [`PurposeOfUse::BreakGlass`].
    pub break_glass: Option<String>,
    /// Correlates the request's log lines and audit record.
    pub request_id: String,
    /// The `X-Provenance` header as sent (FHIR R4 http.html): a Provenance the client asks
    /// to be recorded with its write; SMR fills in the target and names the caller.
    pub x_provenance: Option<String>,
}

impl RequestContext {
    /// A context for `principal` with its role's default purpose; with `break_glass`, the
    /// purpose is break-the-glass.
    pub fn new(principal: Principal, break_glass: Option<String>, request_id: String) -> Self {
        let purpose = if break_glass.is_some() {
            PurposeOfUse::BreakGlass
        } else {
            PurposeOfUse::default_for(principal.role)
        };
        RequestContext {
            principal,
            purpose,
            break_glass,
            request_id,
            x_provenance: None,
        }
    }

    pub fn is_break_glass(&self) -> bool {
        self.break_glass.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("doctor"), None);
    }

    #[test]
    fn setting_names_round_trip_and_short_forms_parse() {
        for s in CareSetting::ALL {
            assert_eq!(CareSetting::parse(s.as_str()), Some(s));
        }
        assert_eq!(CareSetting::parse("gp"), Some(CareSetting::GpPractice));
        assert_eq!(
            CareSetting::parse("pharmacy"),
            Some(CareSetting::CommunityPharmacy)
        );
    }
}
