//! SMR's access policy, as pure functions: no I/O, no clock (callers pass the time).
//!
//! Layout:
//! - [`principal`]: who is asking — [`Principal`], [`Role`], [`CareSetting`], and the
//!   [`RequestContext`] every use case takes (principal, purpose of use, break-glass reason,
//!   request id).
//! - [`scopes`]: SMART App Launch v2 (and v1) scopes, which limit a token below its role.
//! - [`policy`]: what each role may read, write and call; the decision for one request.
//! - [`care`]: care relationships (GP registration, hospital encounters, pharmacy
//!   nominations and dispenses, episodes of care) derived from the resources that show them.
//! - [`consent`]: patients' Consent resources read into restrictions (which sensitivity labels
//!   are withheld from which organisations or care settings; secondary-use opt-out).
//! - [`sensitivity`]: confidentiality labels (HL7 v3 ActCode `HIV`, `PSY`, `ETH`, `STD`,
//!   `SEX`) for medication entries, from their medicine.
//!
//! Invariants: a decision depends only on its inputs; anything not explicitly allowed is
//! denied; a label or restriction SMR cannot read is never treated as "no restriction".

pub mod care;
pub mod consent;
pub mod policy;
pub mod principal;
pub mod scopes;
pub mod sensitivity;

pub use principal::{CareSetting, Principal, PurposeOfUse, RequestContext, Role};
pub use scopes::{Interaction, Scopes};

/// ODS organisation codes (https://digital.nhs.uk/services/organisation-data-service).
pub const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

/// The key SMR uses for an organisation named by its ODS code (care relationships and
/// consent restrictions store organisations in this form or as `Organization/{id}`).
pub fn ods_key(code: &str) -> String {
    format!("ods:{}", code.trim().to_ascii_uppercase())
}
