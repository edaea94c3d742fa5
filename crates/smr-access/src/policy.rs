//! What each role may do, and the access decision for one request.
//!
//! Three checks, all of which must pass (anything not allowed is denied):
//! 1. the role may perform the interaction on the resource type ([`role_allows`], the table
//!    documented in `docs/access.md`);
//! 2. the token's SMART scopes allow it ([`crate::Scopes::allows`]);
//! 3. the patient is one the caller may see ([`patient_access`]): their own record for a
//!    patient, patients their organisation cares for for a clinician, any patient for a
//!    back-end system or under break-glass, none for an administrator or analyst.
//!
//! Consent is applied on top: entries labelled with a label the patient withholds from the
//! caller's organisation or care setting are left out ([`consent_actors`]).

use crate::consent::ANY_ACTOR;
use crate::principal::{RequestContext, Role};
use crate::scopes::Interaction;

/// Types outside the patient compartment: directory and dictionary entries any signed-in
/// user (but an analyst) may read.
pub const SHARED_TYPES: &[&str] = &[
    "Location",
    "Medication",
    "Organization",
    "Practitioner",
    "PractitionerRole",
];

/// The clinical record types (the patient compartment), readable by clinical roles within a
/// care relationship.
pub const RECORD_TYPES: &[&str] = &[
    "AllergyIntolerance",
    // Stored collection/document Bundles: discharge summaries, medication lists.
    "Bundle",
    "Condition",
    "Consent",
    "DetectedIssue",
    "Encounter",
    "EpisodeOfCare",
    "Immunization",
    "List",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "Patient",
    "Provenance",
];

/// What a care worker reads: the medicines round, allergies and the patient.
const CARE_WORKER_READS: &[&str] = &[
    "AllergyIntolerance",
    "DetectedIssue",
    "List",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationRequest",
    "MedicationStatement",
    "Patient",
];

/// What each role may write (create, update, delete), beyond nothing.
fn writes(role: Role) -> &'static [&'static str] {
    match role {
        Role::Gp => &[
            "AllergyIntolerance",
            "Bundle",
            "Condition",
            "Consent",
            "DetectedIssue",
            "Encounter",
            "EpisodeOfCare",
            "Immunization",
            "List",
            "Medication",
            "MedicationRequest",
            "MedicationStatement",
            "Observation",
            "Patient",
            // The provenance of results they import ($pgx-outside-calls, $pgx-vcf).
            "Provenance",
        ],
        Role::HospitalPrescriber => &[
            "AllergyIntolerance",
            "Bundle",
            "Condition",
            "DetectedIssue",
            "Encounter",
            "Immunization",
            "List",
            "Medication",
            "MedicationAdministration",
            "MedicationRequest",
            "MedicationStatement",
            "Observation",
            "Patient",
            "Provenance",
        ],
        Role::HospitalPharmacist => &[
            "AllergyIntolerance",
            "Bundle",
            "DetectedIssue",
            "List",
            "Medication",
            "MedicationDispense",
            "MedicationStatement",
        ],
        Role::CommunityPharmacist => &[
            "AllergyIntolerance",
            "DetectedIssue",
            "Immunization",
            "Medication",
            "MedicationDispense",
            "MedicationStatement",
        ],
        Role::Nurse => &[
            "AllergyIntolerance",
            "EpisodeOfCare",
            "Immunization",
            "Medication",
            "MedicationAdministration",
            "MedicationStatement",
            "Observation",
        ],
        Role::CareWorker => &["MedicationAdministration"],
        // What they take (patient-reported) and their consent choices, in their own record.
        Role::Patient => &["Consent", "MedicationStatement"],
        Role::Analyst => &[],
        // The directory the service runs on; never clinical entries.
        Role::Admin => &[
            "Location",
            "Organization",
            "Practitioner",
            "PractitionerRole",
        ],
        Role::System => &[
            "AllergyIntolerance",
            "Bundle",
            "Condition",
            "Consent",
            "DetectedIssue",
            "Encounter",
            "EpisodeOfCare",
            // Cohorts for Bulk Data `Group/{id}/$export`.
            "Group",
            "Immunization",
            "List",
            "Location",
            "Medication",
            "MedicationAdministration",
            "MedicationDispense",
            "MedicationRequest",
            "MedicationStatement",
            "Observation",
            "Organization",
            "Patient",
            "Practitioner",
            "PractitionerRole",
            "Provenance",
        ],
    }
}

/// Whether `role` may read (read, vread, history, search) resources of `res_type`.
fn reads(role: Role, res_type: &str) -> bool {
    let shared = SHARED_TYPES.contains(&res_type);
    let record = RECORD_TYPES.contains(&res_type);
    match role {
        Role::Analyst => false,
        Role::CareWorker => shared || CARE_WORKER_READS.contains(&res_type),
        // AuditEvents: a patient reads their own access log; an administrator their
        // organisation's (break-glass review); back-end systems for audit repositories.
        _ if res_type == "AuditEvent" => {
            matches!(role, Role::Patient | Role::Admin | Role::System)
        }
        // A Group lists patients across care relationships (a Bulk Data export cohort): only
        // the back-end systems that run exports manage them.
        _ if res_type == "Group" => role == Role::System,
        // An administrator reads clinical types only under break-glass, which
        // `patient_access` decides; the type itself is not barred.
        _ => shared || record,
    }
}

/// Whether `role` may perform `interaction` on `res_type` at all (before scopes and the
/// patient check). AuditEvents are never written, changed or deleted through the API.
pub fn role_allows(role: Role, res_type: &str, interaction: Interaction) -> bool {
    if res_type == "Subscription" {
        return subscribes(role);
    }
    match interaction {
        Interaction::Read | Interaction::Search => reads(role, res_type),
        Interaction::Create | Interaction::Update | Interaction::Delete => {
            res_type != "AuditEvent" && writes(role).contains(&res_type)
        }
    }
}

/// Who may hold Subscriptions (every interaction): whoever reads patients' records and may
/// be told of changes to them. Which patient is then decided like a read of that patient's
/// record (`smr-app`'s `subscriptions`); a care worker reads too little of the record to be
/// told of changes to it, administrators and analysts no record at all.
fn subscribes(role: Role) -> bool {
    !matches!(role, Role::Analyst | Role::Admin | Role::CareWorker)
}

/// Operations beyond the REST interactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST Patient/{id}/$pgx-outside-calls` and `$pgx-vcf`: pharmacogenomic results in.
    PgxIntake,
    /// CDS Hooks service calls and feedback.
    CdsCall,
    /// The DetectedIssue event stream (`/cds-services/events`).
    CdsEvents,
    /// `smr audit verify` and reading the whole audit chain.
    AuditReview,
}

pub fn operation_allowed(role: Role, op: Operation) -> bool {
    match op {
        Operation::PgxIntake => matches!(role, Role::Gp | Role::HospitalPrescriber | Role::System),
        Operation::CdsCall | Operation::CdsEvents => {
            role.is_clinical() && role != Role::CareWorker || role == Role::System
        }
        Operation::AuditReview => matches!(role, Role::Admin | Role::System),
    }
}

/// Bulk Data export (`$export`, issue 9): a back-end system (identified or de-identified);
/// an analyst, a de-identified research extract only (`deidentify=true`). Clinicians and
/// patients read records one patient at a time; administrators run the service.
pub fn may_export(role: Role, deidentified: bool) -> bool {
    match role {
        Role::System => true,
        Role::Analyst => deidentified,
        _ => false,
    }
}

/// Which patients' records a request may touch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PatientAccess {
    /// Any patient: back-end systems, and break-glass.
    Any,
    /// One patient: a patient's own record.
    Only(String),
    /// Patients one of these organisations (keys as in `care`) has a current care
    /// relationship with.
    CaredFor(Vec<String>),
    /// No patient's record.
    Nobody,
}

/// The patients `ctx` may touch, given the keys of the caller's organisation
/// (`ods:{CODE}` and each `Organization/{id}` with that ODS code).
pub fn patient_access(ctx: &RequestContext, org_keys: &[String]) -> PatientAccess {
    let p = &ctx.principal;
    match p.role {
        Role::Patient => match &p.patient {
            Some(id) => PatientAccess::Only(id.clone()),
            None => PatientAccess::Nobody,
        },
        Role::System => PatientAccess::Any,
        Role::Analyst => PatientAccess::Nobody,
        _ if ctx.is_break_glass() => PatientAccess::Any,
        Role::Admin => PatientAccess::Nobody,
        _ if org_keys.is_empty() => PatientAccess::Nobody,
        _ => PatientAccess::CaredFor(org_keys.to_vec()),
    }
}

/// The consent-restriction actors the caller counts as (`*`, their organisation's keys,
/// their care setting), or `None` when consent restrictions do not apply: a patient's own
/// record is never hidden from them.
pub fn consent_actors(ctx: &RequestContext, org_keys: &[String]) -> Option<Vec<String>> {
    if ctx.principal.role == Role::Patient {
        return None;
    }
    let mut actors = vec![ANY_ACTOR.to_owned(), ctx.principal.setting.consent_key()];
    actors.extend(org_keys.iter().cloned());
    Some(actors)
}

/// Whether `role` may use break-glass at all: an analyst never sees a person, a patient
/// has their own record only; a back-end system already acts for any patient, and its
/// header is simply recorded.
pub fn may_break_glass(role: Role) -> bool {
    !matches!(role, Role::Analyst | Role::Patient)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::{CareSetting, Principal};
    use crate::scopes::Scopes;

    fn ctx(role: Role, break_glass: bool) -> RequestContext {
        RequestContext::new(
            Principal {
                user: "u".into(),
                role,
                organisation: Some("A81001".into()),
                setting: role.default_setting(),
                setting_claimed: false,
                patient: (role == Role::Patient).then(|| "p1".into()),
                scopes: Scopes::unrestricted(),
                name: None,
                issuer: "test".into(),
            },
            break_glass.then(|| "unconscious in ED".into()),
            "r1".into(),
        )
    }

    #[test]
    fn every_role_reads_only_what_its_table_says() {
        assert!(role_allows(
            Role::Gp,
            "MedicationRequest",
            Interaction::Search
        ));
        assert!(!role_allows(Role::Analyst, "Patient", Interaction::Read));
        assert!(!role_allows(Role::Analyst, "Medication", Interaction::Read));
        assert!(!role_allows(
            Role::CareWorker,
            "Condition",
            Interaction::Read
        ));
        assert!(role_allows(
            Role::Patient,
            "AuditEvent",
            Interaction::Search
        ));
        assert!(!role_allows(Role::Gp, "AuditEvent", Interaction::Read));
    }

    #[test]
    fn writes_follow_the_setting() {
        assert!(role_allows(
            Role::Gp,
            "MedicationRequest",
            Interaction::Create
        ));
        assert!(!role_allows(
            Role::CommunityPharmacist,
            "MedicationRequest",
            Interaction::Create
        ));
        assert!(role_allows(
            Role::CommunityPharmacist,
            "MedicationDispense",
            Interaction::Create
        ));
        assert!(role_allows(
            Role::Patient,
            "MedicationStatement",
            Interaction::Create
        ));
        assert!(!role_allows(
            Role::Admin,
            "MedicationRequest",
            Interaction::Update
        ));
        for role in Role::ALL {
            for i in [
                Interaction::Create,
                Interaction::Update,
                Interaction::Delete,
            ] {
                assert!(!role_allows(role, "AuditEvent", i), "{role} {i:?}");
            }
        }
    }

    #[test]
    fn patient_access_per_role() {
        let keys = vec!["ods:A81001".to_owned()];
        assert_eq!(
            patient_access(&ctx(Role::Gp, false), &keys),
            PatientAccess::CaredFor(keys.clone())
        );
        assert_eq!(
            patient_access(&ctx(Role::Gp, true), &keys),
            PatientAccess::Any
        );
        assert_eq!(
            patient_access(&ctx(Role::Patient, true), &keys),
            PatientAccess::Only("p1".into())
        );
        assert_eq!(
            patient_access(&ctx(Role::Admin, false), &keys),
            PatientAccess::Nobody
        );
        assert_eq!(
            patient_access(&ctx(Role::Admin, true), &keys),
            PatientAccess::Any
        );
        assert_eq!(
            patient_access(&ctx(Role::Analyst, true), &keys),
            PatientAccess::Nobody
        );
        assert_eq!(
            patient_access(&ctx(Role::System, false), &keys),
            PatientAccess::Any
        );
    }

    #[test]
    fn consent_applies_to_everyone_but_the_patient() {
        let keys = vec!["ods:A81001".to_owned()];
        assert_eq!(consent_actors(&ctx(Role::Patient, false), &keys), None);
        let actors =
            consent_actors(&ctx(Role::CommunityPharmacist, false), &keys).unwrap_or_default();
        assert!(actors.contains(&"*".to_owned()));
        assert!(actors.contains(&CareSetting::CommunityPharmacy.consent_key()));
        assert!(actors.contains(&"ods:A81001".to_owned()));
    }
}
