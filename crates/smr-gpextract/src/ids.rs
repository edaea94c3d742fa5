//! Identifiers and ids of what an extract maps to. The GP system's own ids are unique only
//! within its practice, so every identifier system is namespaced by the practice's ODS code:
//! `https://fhir.smr.nhs.uk/Id/gp-extract/{ODS}/authorisation|{id}` (and `/issue`). The
//! resource id is a UUID v5 of that identifier, so a re-run (or a later extract of the same
//! practice) names the same resource, and an issue can name its plan's id in `basedOn`
//! without a lookup.

/// Base of the identifier systems.
pub const IDENTIFIER_BASE: &str = "https://fhir.smr.nhs.uk/Id/gp-extract";

/// Namespace of the derived ids (a fixed UUID v4; changing it renames every resource).
const NAMESPACE: uuid::Uuid = uuid::uuid!("8d3c2a61-4f0b-4c2e-9b7d-6a1e5f2c3b94");

/// What a row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A repeat (or acute) authorisation: MedicationRequest intent `plan`.
    Authorisation,
    /// One issue under an authorisation: intent `order`, `basedOn` the plan.
    Issue,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Authorisation => "authorisation",
            Kind::Issue => "issue",
        }
    }
}

/// The identifier system of a practice's authorisations or issues.
pub fn identifier_system(practice: &str, kind: Kind) -> String {
    format!("{IDENTIFIER_BASE}/{practice}/{}", kind.as_str())
}

/// The resource id of the identifier `(identifier_system(practice, kind), value)`.
pub fn resource_id(practice: &str, kind: Kind, value: &str) -> String {
    let name = format!("{}|{value}", identifier_system(practice, kind));
    uuid::Uuid::new_v5(&NAMESPACE, name.as_bytes()).to_string()
}

/// The practice and kind of an identifier system this crate wrote.
pub fn parse_identifier(system: &str) -> Option<(String, Kind)> {
    let rest = system.strip_prefix(IDENTIFIER_BASE)?.strip_prefix('/')?;
    let (practice, kind) = rest.split_once('/')?;
    let kind = match kind {
        "authorisation" => Kind::Authorisation,
        "issue" => Kind::Issue,
        _ => return None,
    };
    (!practice.is_empty()).then(|| (practice.to_owned(), kind))
}
