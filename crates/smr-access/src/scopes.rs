//! SMART App Launch scopes (v2 `patient/MedicationRequest.rs`, v1 `user/*.read`).
//! Placeholder: filled in by the smr-auth work.

/// A FHIR interaction as SMART v2 scopes name them (c, r, u, d, s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interaction {
    Create,
    Read,
    Update,
    Delete,
    Search,
}

/// The scopes a token was granted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes {
    _private: (),
}

impl Scopes {
    /// No limit below the role.
    pub fn unrestricted() -> Self {
        Scopes::default()
    }

    pub fn allows(&self, _res_type: &str, _interaction: Interaction) -> bool {
        true
    }
}
