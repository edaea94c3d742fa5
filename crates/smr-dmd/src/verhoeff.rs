//! SNOMED CT identifier checks, shared with validation: one implementation, in
//! [`smr_fhir::sctid`], so the dictionary and the validator can never disagree on a code.

pub use smr_fhir::sctid::verhoeff_valid;

/// True when `code` has the form of a SNOMED CT concept identifier: 6 to 18 digits, no
/// leading zero, a valid Verhoeff check digit and a concept partition (`00` or `10`).
/// dm+d codes are all concept ids.
pub fn is_sctid(code: &str) -> bool {
    smr_fhir::sctid::is_concept_id(code)
}
