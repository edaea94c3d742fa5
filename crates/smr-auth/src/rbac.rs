//! NHS national RBAC role codes → SMR roles.
//!
//! Source: NHS England, National RBAC Database (the "Job Roles", `R` codes, assigned to NHS
//! smartcard and CIS2 users; see "National role-based access control (RBAC) for developers",
//! <https://digital.nhs.uk/services/care-identity-service/applications-and-services/cis2-authentication/integrate/design-and-build/national-rbac-for-developers>,
//! and the rationalised role codes published as the code system
//! `https://fhir.nhs.uk/Id/sds-role-code`, from NHS RBAC codes v27.2). CIS2 sends codes as
//! `S…:G…:R…` triples (`S8000:G8000:R8000`); only the `R` job role code is read.
//!
//! | Code    | National RBAC name                     | SMR role                                   |
//! |---------|----------------------------------------|--------------------------------------------|
//! | `R8000` | Clinical Practitioner Access Role      | `gp` (setting `gp-practice` or none), `hospital-prescriber` (`hospital`), `community-pharmacist` (`community-pharmacy`); other settings: no mapping |
//! | `R8001` | Nurse Access Role                      | `nurse`                                    |
//! | `R8003` | Health Professional Access Role        | `nurse` (see below)                        |
//! | `R8008` | Admin/Clinical Support Access Role     | `care-worker`                              |
//! | `R8013` | Health Service Management Access Role  | `admin`                                    |
//!
//! Choices, and why:
//! - `R8000` covers "all doctors and staff undertaking similar activities" in every setting,
//!   so SMR needs the care setting to pick a prescribing role. Pharmacists in community
//!   pharmacy are commonly given `R8000`, hence `community-pharmacist` there. A hospital
//!   pharmacist cannot be told apart from a hospital doctor by the code alone: such a token
//!   must carry `smr_role: hospital-pharmacist`. In `community` or `care-home` settings the
//!   code is not mapped (an error), rather than guessing a prescribing role.
//! - `R8003` (allied and other health professionals) becomes `nurse`: the SMR role that
//!   reads the record and records administrations without prescribing — the nearest fit,
//!   and never more than the professional could do.
//! - `R8008` becomes `care-worker`: the medicines-round view, the narrowest clinical role.
//! - `R8013` becomes `admin`: service management, no clinical record access.
//! - Every other code (students `R8004`, medical secretaries `R8006`, receptionists
//!   `R8009`, …) is unmapped: [`crate::ClaimsError::UnmappedRbacRole`] (401), not a guess.
//!
//! `R8000`–`R8003` and `R8008` were checked against the published code lists above; `R8013`
//! is as given in SMR's design brief (not re-checked against a published copy).

use smr_access::{CareSetting, Role};

/// The national RBAC job role codes SMR maps (see the module table).
pub const MAPPED_CODES: [&str; 5] = ["R8000", "R8001", "R8003", "R8008", "R8013"];

/// The `R` job role code in `text`: `R8000` itself, or the `R…` part of a CIS2
/// `S8000:G8000:R8000` triple. `None` when there is none.
pub fn job_role_code(text: &str) -> Option<&str> {
    text.split(':').map(str::trim).find(|part| {
        part.len() == 5 && part.starts_with('R') && part[1..].bytes().all(|b| b.is_ascii_digit())
    })
}

/// Whether `text` looks like a national RBAC role code (so an unmapped one is reported as
/// such rather than as an unknown role name).
pub fn is_rbac_code(text: &str) -> bool {
    job_role_code(text).is_some()
}

/// The SMR role for a national RBAC job role code in a care setting (`None`: the token did
/// not say). `None` when the code is not mapped there.
pub fn map_rbac_role(code: &str, setting: Option<CareSetting>) -> Option<Role> {
    let code = job_role_code(code)?;
    match (code, setting) {
        ("R8000", None | Some(CareSetting::GpPractice)) => Some(Role::Gp),
        ("R8000", Some(CareSetting::Hospital)) => Some(Role::HospitalPrescriber),
        ("R8000", Some(CareSetting::CommunityPharmacy)) => Some(Role::CommunityPharmacist),
        ("R8001" | "R8003", _) => Some(Role::Nurse),
        ("R8008", _) => Some(Role::CareWorker),
        ("R8013", _) => Some(Role::Admin),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clinical_practitioner_depends_on_setting() {
        assert_eq!(map_rbac_role("R8000", None), Some(Role::Gp));
        assert_eq!(
            map_rbac_role("R8000", Some(CareSetting::GpPractice)),
            Some(Role::Gp)
        );
        assert_eq!(
            map_rbac_role("R8000", Some(CareSetting::Hospital)),
            Some(Role::HospitalPrescriber)
        );
        assert_eq!(
            map_rbac_role("R8000", Some(CareSetting::CommunityPharmacy)),
            Some(Role::CommunityPharmacist)
        );
        assert_eq!(map_rbac_role("R8000", Some(CareSetting::CareHome)), None);
        assert_eq!(map_rbac_role("R8000", Some(CareSetting::Community)), None);
    }

    #[test]
    fn other_codes() {
        assert_eq!(map_rbac_role("R8001", None), Some(Role::Nurse));
        assert_eq!(
            map_rbac_role("R8003", Some(CareSetting::Hospital)),
            Some(Role::Nurse)
        );
        assert_eq!(map_rbac_role("R8008", None), Some(Role::CareWorker));
        assert_eq!(map_rbac_role("R8013", None), Some(Role::Admin));
        assert_eq!(map_rbac_role("R8004", None), None);
        assert_eq!(map_rbac_role("R0260", None), None);
        assert_eq!(map_rbac_role("gp", None), None);
        for code in MAPPED_CODES {
            assert!(map_rbac_role(code, None).is_some());
        }
    }

    #[test]
    fn cis2_triples_are_read_by_their_job_role() {
        assert_eq!(job_role_code("S8000:G8000:R8001"), Some("R8001"));
        assert_eq!(map_rbac_role("S8000:G8000:R8001", None), Some(Role::Nurse));
        assert_eq!(job_role_code("R80"), None);
        assert_eq!(job_role_code("Rabcd"), None);
        assert_eq!(job_role_code("R800é"), None);
        assert!(!is_rbac_code("nurse"));
    }
}
