//! SMART App Launch scopes (v2 `patient/MedicationRequest.rs`, v1 `user/*.read`).
//!
//! A token's `scope` claim can only narrow what its role allows (see [`crate::policy`]).
//! [`Scopes::parse`] reads the space-separated claim:
//!
//! | Scope text                       | Grants                                             |
//! |----------------------------------|----------------------------------------------------|
//! | `patient/MedicationRequest.rs`   | SMART v2: read and search MedicationRequest        |
//! | `user/*.cruds`                   | SMART v2: everything on every type                 |
//! | `system/Observation.c`           | SMART v2: create Observation                       |
//! | `patient/*.read`                 | SMART v1 `read`: read and search (`rs`)            |
//! | `user/*.write`                   | SMART v1 `write`: create, update, delete (`cud`)   |
//! | `user/*.*`                       | SMART v1 `*`: everything (`cruds`)                 |
//!
//! SMART v2 permission letters are `c r u d s`, in that order, each at most once, any
//! non-empty subset (SMART App Launch 2.x, "Scopes for requesting clinical data").
//!
//! Not resource scopes, and ignored: `openid`, `fhirUser`, `profile`, `launch`,
//! `launch/patient`, `launch/encounter`, `offline_access`, `online_access`. Anything else
//! that is not a resource scope SMR reads is ignored too, but kept in [`Scopes::unknown`] so
//! the caller can log it. A v2 scope with query parameters
//! (`patient/Observation.rs?category=laboratory`) is narrower than SMR can enforce, so it is
//! read conservatively: it grants **nothing** and is recorded as unknown.
//!
//! [`Scopes::unrestricted`] is for a token with no `scope` claim at all: the role alone
//! decides. A token whose `scope` claim names no resource scope grants nothing.
//!
//! The context (`patient/`, `user/`, `system/`) does not change which interactions a scope
//! allows; it says on whose records. [`Scopes::patient_only`] and
//! [`Scopes::patient_only_for`] tell the policy when a token may only touch the patient in
//! its launch context.

use std::fmt;

/// A FHIR interaction as SMART v2 scopes name them (c, r, u, d, s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interaction {
    Create,
    Read,
    Update,
    Delete,
    Search,
}

impl Interaction {
    pub const ALL: [Interaction; 5] = [
        Interaction::Create,
        Interaction::Read,
        Interaction::Update,
        Interaction::Delete,
        Interaction::Search,
    ];

    /// The SMART v2 permission letter (`c`, `r`, `u`, `d`, `s`).
    pub fn letter(self) -> char {
        match self {
            Interaction::Create => 'c',
            Interaction::Read => 'r',
            Interaction::Update => 'u',
            Interaction::Delete => 'd',
            Interaction::Search => 's',
        }
    }

    fn bit(self) -> u8 {
        match self {
            Interaction::Create => 1,
            Interaction::Read => 1 << 1,
            Interaction::Update => 1 << 2,
            Interaction::Delete => 1 << 3,
            Interaction::Search => 1 << 4,
        }
    }
}

/// Whose records a scope is about: the patient in the launch context (`patient/`), whatever
/// the user may see (`user/`), or a back-end system's (`system/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeContext {
    Patient,
    User,
    System,
}

impl ScopeContext {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeContext::Patient => "patient",
            ScopeContext::User => "user",
            ScopeContext::System => "system",
        }
    }

    pub fn parse(text: &str) -> Option<ScopeContext> {
        match text {
            "patient" => Some(ScopeContext::Patient),
            "user" => Some(ScopeContext::User),
            "system" => Some(ScopeContext::System),
            _ => None,
        }
    }
}

/// A set of interactions (the SMART v2 letters a scope grants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions(u8);

impl Permissions {
    pub const NONE: Permissions = Permissions(0);
    /// `cruds`, SMART v1 `*`.
    pub const ALL: Permissions = Permissions(0b1_1111);
    /// `rs`, SMART v1 `read`.
    pub const READ: Permissions = Permissions(0b1_0010);
    /// `cud`, SMART v1 `write`.
    pub const WRITE: Permissions = Permissions(0b0_1101);

    pub fn contains(self, interaction: Interaction) -> bool {
        self.0 & interaction.bit() != 0
    }

    pub fn with(self, interaction: Interaction) -> Permissions {
        Permissions(self.0 | interaction.bit())
    }

    pub fn union(self, other: Permissions) -> Permissions {
        Permissions(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Reads SMART v2 letters: a non-empty subset of `cruds`, in that order, no repeats.
    pub fn parse_v2(text: &str) -> Option<Permissions> {
        let mut perms = Permissions::NONE;
        let mut next = 0; // index in ALL of the first letter still allowed
        for ch in text.chars() {
            let pos = Interaction::ALL[next..]
                .iter()
                .position(|i| i.letter() == ch)?;
            perms = perms.with(Interaction::ALL[next + pos]);
            next += pos + 1;
        }
        (!perms.is_empty()).then_some(perms)
    }

    /// Reads the permission part of a scope: SMART v1 `read`, `write`, `*`, or v2 letters.
    pub fn parse(text: &str) -> Option<Permissions> {
        match text {
            "read" => Some(Permissions::READ),
            "write" => Some(Permissions::WRITE),
            "*" => Some(Permissions::ALL),
            _ => Permissions::parse_v2(text),
        }
    }

    /// The SMART v2 letters, in canonical order (`cruds`).
    pub fn letters(self) -> String {
        Interaction::ALL
            .iter()
            .filter(|i| self.contains(**i))
            .map(|i| i.letter())
            .collect()
    }
}

/// One resource scope: a context, a resource type (`None` for `*`) and what it grants.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScopeGrant {
    pub context: ScopeContext,
    /// The resource type, or `None` for every type (`*`).
    pub resource: Option<String>,
    pub permissions: Permissions,
}

impl ScopeGrant {
    pub fn covers(&self, res_type: &str, interaction: Interaction) -> bool {
        self.permissions.contains(interaction)
            && self.resource.as_deref().is_none_or(|r| r == res_type)
    }

    fn sort_key(&self) -> (ScopeContext, Option<&str>) {
        (self.context, self.resource.as_deref())
    }
}

impl fmt::Display for ScopeGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}.{}",
            self.context.as_str(),
            self.resource.as_deref().unwrap_or("*"),
            self.permissions.letters()
        )
    }
}

/// Scopes that are not about resources; ignored without being reported.
const NON_RESOURCE_SCOPES: &[&str] = &[
    "openid",
    "fhirUser",
    "profile",
    "launch",
    "launch/patient",
    "launch/encounter",
    "offline_access",
    "online_access",
];

/// The scopes a token was granted.
///
/// There is deliberately no `Default`: "no limit" must be asked for by name
/// ([`Scopes::unrestricted`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes {
    /// `None`: no limit (the token carried no scope claim). Otherwise sorted by context and
    /// type, one grant per (context, type), permissions merged.
    grants: Option<Vec<ScopeGrant>>,
    /// Scope strings SMR did not read (neither a resource scope nor a known non-resource
    /// scope), in the order given.
    unknown: Vec<String>,
}

impl Scopes {
    /// No limit below the role (a token without a `scope` claim).
    pub fn unrestricted() -> Self {
        Scopes {
            grants: None,
            unknown: Vec::new(),
        }
    }

    /// No grant at all.
    pub fn none() -> Self {
        Scopes {
            grants: Some(Vec::new()),
            unknown: Vec::new(),
        }
    }

    /// Reads a space-separated `scope` claim. Never fails: what SMR cannot read grants
    /// nothing and is listed in [`Scopes::unknown`].
    pub fn parse(text: &str) -> Scopes {
        let mut grants: Vec<ScopeGrant> = Vec::new();
        let mut unknown = Vec::new();
        for scope in text.split_ascii_whitespace() {
            if NON_RESOURCE_SCOPES.contains(&scope) {
                continue;
            }
            match parse_resource_scope(scope) {
                Some(grant) => grants.push(grant),
                None => unknown.push(scope.to_owned()),
            }
        }
        Scopes {
            grants: Some(normalise(grants)),
            unknown,
        }
    }

    /// Scopes made of these grants (merged and sorted).
    pub fn from_grants(grants: impl IntoIterator<Item = ScopeGrant>) -> Scopes {
        Scopes {
            grants: Some(normalise(grants.into_iter().collect())),
            unknown: Vec::new(),
        }
    }

    pub fn is_unrestricted(&self) -> bool {
        self.grants.is_none()
    }

    /// The resource grants (empty when unrestricted: see [`Scopes::is_unrestricted`]).
    pub fn grants(&self) -> &[ScopeGrant] {
        self.grants.as_deref().unwrap_or(&[])
    }

    /// Scope strings that were neither resource scopes SMR reads nor known non-resource
    /// scopes (for logging).
    pub fn unknown(&self) -> &[String] {
        &self.unknown
    }

    /// Whether some grant covers `interaction` on `res_type` (always, when unrestricted).
    pub fn allows(&self, res_type: &str, interaction: Interaction) -> bool {
        match &self.grants {
            None => true,
            Some(grants) => grants.iter().any(|g| g.covers(res_type, interaction)),
        }
    }

    /// True when every resource grant is in the `patient/` context: such a token may only
    /// touch the patient in its launch context. False when unrestricted. (A token with no
    /// resource grant is vacuously patient-only; it is allowed nothing anyway.)
    pub fn patient_only(&self) -> bool {
        match &self.grants {
            None => false,
            Some(grants) => grants.iter().all(|g| g.context == ScopeContext::Patient),
        }
    }

    /// True when `interaction` on `res_type` is allowed only through `patient/` grants (so
    /// only on the launch patient's records), for tokens mixing contexts. False when not
    /// allowed at all or unrestricted.
    pub fn patient_only_for(&self, res_type: &str, interaction: Interaction) -> bool {
        let Some(grants) = &self.grants else {
            return false;
        };
        let mut covering = grants.iter().filter(|g| g.covers(res_type, interaction));
        let mut any = false;
        let all_patient = covering.all(|g| {
            any = true;
            g.context == ScopeContext::Patient
        });
        any && all_patient
    }

    /// The canonical scope text of the grants: SMART v2 letters, sorted by context then
    /// type (`*` first), space-separated. Unknown scopes are left out. Empty both for no
    /// grant and for unrestricted (which no scope text expresses; see
    /// [`Scopes::is_unrestricted`]).
    pub fn to_scope_string(&self) -> String {
        let mut out = String::new();
        for grant in self.grants() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&grant.to_string());
        }
        out
    }
}

/// The canonical text, or `(unrestricted)` when there is no limit.
impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_unrestricted() {
            f.write_str("(unrestricted)")
        } else {
            f.write_str(&self.to_scope_string())
        }
    }
}

/// `context/Type.permissions`, or `None` when it is not one SMR reads.
fn parse_resource_scope(scope: &str) -> Option<ScopeGrant> {
    if scope.contains('?') {
        // v2 finer-grained scope (query parameters): narrower than SMR can enforce.
        return None;
    }
    let (context, rest) = scope.split_once('/')?;
    let context = ScopeContext::parse(context)?;
    let (resource, permissions) = rest.split_once('.')?;
    let resource = match resource {
        "*" => None,
        name if is_resource_type_name(name) => Some(name.to_owned()),
        _ => return None,
    };
    let permissions = Permissions::parse(permissions)?;
    Some(ScopeGrant {
        context,
        resource,
        permissions,
    })
}

/// FHIR resource type names: an ASCII capital letter, then ASCII letters and digits.
fn is_resource_type_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase()) && chars.all(|c| c.is_ascii_alphanumeric())
}

/// Sorts grants and merges those with the same context and type.
fn normalise(mut grants: Vec<ScopeGrant>) -> Vec<ScopeGrant> {
    grants.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let mut out: Vec<ScopeGrant> = Vec::with_capacity(grants.len());
    for grant in grants {
        match out.last_mut() {
            Some(last) if last.sort_key() == grant.sort_key() => {
                last.permissions = last.permissions.union(grant.permissions);
            }
            _ => out.push(grant),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use Interaction::*;

    #[test]
    fn v2_scopes_grant_their_letters() {
        let s = Scopes::parse("patient/MedicationRequest.rs");
        assert!(s.allows("MedicationRequest", Read));
        assert!(s.allows("MedicationRequest", Search));
        assert!(!s.allows("MedicationRequest", Create));
        assert!(!s.allows("MedicationRequest", Update));
        assert!(!s.allows("MedicationRequest", Delete));
        assert!(!s.allows("Observation", Read));

        let s = Scopes::parse("system/Observation.c");
        assert!(s.allows("Observation", Create));
        assert!(!s.allows("Observation", Read));

        let s = Scopes::parse("user/*.cruds");
        for i in Interaction::ALL {
            assert!(s.allows("Patient", i));
            assert!(s.allows("MedicationDispense", i));
        }
    }

    #[test]
    fn v1_scopes_map_to_v2_letters() {
        let s = Scopes::parse("patient/*.read");
        assert_eq!(s.to_scope_string(), "patient/*.rs");
        assert!(s.allows("Condition", Read) && s.allows("Condition", Search));
        assert!(!s.allows("Condition", Create));

        let s = Scopes::parse("user/*.write");
        assert_eq!(s.to_scope_string(), "user/*.cud");
        assert!(s.allows("Condition", Create) && s.allows("Condition", Update));
        assert!(s.allows("Condition", Delete) && !s.allows("Condition", Read));

        let s = Scopes::parse("user/*.*");
        assert_eq!(s.to_scope_string(), "user/*.cruds");

        let s = Scopes::parse("user/MedicationRequest.read user/MedicationRequest.write");
        assert_eq!(s.to_scope_string(), "user/MedicationRequest.cruds");
    }

    #[test]
    fn letters_must_be_in_order_and_unique() {
        for bad in ["sr", "rr", "x", "", "crudsx", "R", "rsc"] {
            let s = Scopes::parse(&format!("user/Patient.{bad}"));
            assert!(s.grants().is_empty(), "{bad:?} should grant nothing");
            assert!(!s.allows("Patient", Read));
        }
        assert_eq!(
            Permissions::parse_v2("cds"),
            Some(Permissions::NONE.with(Create).with(Delete).with(Search))
        );
    }

    #[test]
    fn non_resource_scopes_are_ignored_and_unknown_ones_recorded() {
        let s = Scopes::parse(
            "openid fhirUser launch launch/patient offline_access online_access \
             patient/Patient.r frobnicate user/Bad-Type.r smart/Patient.r",
        );
        assert_eq!(s.to_scope_string(), "patient/Patient.r");
        assert_eq!(
            s.unknown(),
            ["frobnicate", "user/Bad-Type.r", "smart/Patient.r"]
        );
    }

    #[test]
    fn query_suffixed_scopes_grant_nothing() {
        let s = Scopes::parse("patient/Observation.rs?category=laboratory");
        assert!(!s.allows("Observation", Read));
        assert!(s.grants().is_empty());
        assert_eq!(s.unknown(), ["patient/Observation.rs?category=laboratory"]);
    }

    #[test]
    fn a_scope_claim_without_resource_scopes_grants_nothing() {
        let s = Scopes::parse("openid fhirUser");
        assert!(!s.is_unrestricted());
        for i in Interaction::ALL {
            assert!(!s.allows("MedicationRequest", i));
        }
        let s = Scopes::parse("");
        assert!(!s.allows("Patient", Read));
    }

    #[test]
    fn unrestricted_allows_everything() {
        let s = Scopes::unrestricted();
        assert!(s.is_unrestricted());
        assert!(s.allows("AuditEvent", Delete));
        assert!(!s.patient_only());
        assert_eq!(s.to_string(), "(unrestricted)");
    }

    #[test]
    fn patient_only_follows_contexts() {
        assert!(Scopes::parse("patient/*.rs launch/patient openid").patient_only());
        assert!(!Scopes::parse("patient/*.rs user/Practitioner.r").patient_only());
        assert!(!Scopes::parse("system/*.rs").patient_only());

        let mixed =
            Scopes::parse("patient/MedicationRequest.rs user/Practitioner.r user/Observation.r");
        assert!(mixed.patient_only_for("MedicationRequest", Read));
        assert!(!mixed.patient_only_for("Practitioner", Read));
        assert!(!mixed.patient_only_for("Condition", Read)); // not allowed at all
        let both = Scopes::parse("patient/Observation.rs user/Observation.r");
        assert!(!both.patient_only_for("Observation", Read));
        assert!(both.patient_only_for("Observation", Search));
    }

    #[test]
    fn canonical_text_is_sorted_and_merged() {
        let s = Scopes::parse(
            "user/Observation.s system/*.r patient/MedicationRequest.r user/Observation.r patient/*.s",
        );
        assert_eq!(
            s.to_scope_string(),
            "patient/*.s patient/MedicationRequest.r user/Observation.rs system/*.r"
        );
        assert_eq!(
            Scopes::parse(&s.to_scope_string()),
            Scopes::from_grants(s.grants().to_vec())
        );
        assert_eq!(s.to_string(), s.to_scope_string());
    }

    #[test]
    fn whitespace_of_any_kind_separates() {
        let s = Scopes::parse("  patient/Patient.r\tuser/Observation.s\n");
        assert_eq!(s.to_scope_string(), "patient/Patient.r user/Observation.s");
    }

    fn letters_strategy() -> impl Strategy<Value = String> {
        (1u8..32).prop_map(|bits| {
            Interaction::ALL
                .iter()
                .filter(|i| bits & i.bit() != 0)
                .map(|i| i.letter())
                .collect()
        })
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in any::<String>()) {
            let s = Scopes::parse(&text);
            let _ = s.to_scope_string();
            let _ = s.allows("Patient", Read);
            let _ = s.patient_only();
        }

        #[test]
        fn parse_never_panics_on_scope_like_text(text in "[ a-zA-Z*/.?=&_-]{0,60}") {
            let s = Scopes::parse(&text);
            // Whatever was read re-reads the same.
            let again = Scopes::parse(&s.to_scope_string());
            prop_assert_eq!(again.grants(), s.grants());
        }

        #[test]
        fn v2_letters_round_trip(
            context in prop::sample::select(vec!["patient", "user", "system"]),
            resource in prop_oneof![Just("*".to_owned()), "[A-Z][A-Za-z0-9]{0,24}"],
            letters in letters_strategy(),
        ) {
            let text = format!("{context}/{resource}.{letters}");
            let s = Scopes::parse(&text);
            prop_assert_eq!(s.to_scope_string(), text);
            prop_assert!(s.unknown().is_empty());
            let probe = if resource == "*" { "Anything" } else { resource.as_str() };
            for i in Interaction::ALL {
                prop_assert_eq!(s.allows(probe, i), letters.contains(i.letter()));
            }
        }
    }
}
