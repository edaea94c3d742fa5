//! The claims SMR reads from a token (see the table in the crate documentation), and their
//! mapping to an [`smr_access::Principal`].

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use smr_access::{CareSetting, Principal, Role, Scopes};

use crate::error::ClaimsError;
use crate::rbac;

/// A JWT claims set, as far as SMR reads it. Unknown claims are ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<StringOrList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<NumericDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<NumericDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<NumericDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// SMR's own role claim; wins over `role`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smr_role: Option<StringOrList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<StringOrList>,
    /// NHS CIS2 national RBAC roles (used when there is neither `smr_role` nor `role`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nhsid_nrbac_roles: Option<Vec<NrbacRole>>,
    /// NHS CIS2: the `person_roleid` of the role the user selected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_roleid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    #[serde(default, rename = "odsCode", skip_serializing_if = "Option::is_none")]
    pub ods_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<StringOrList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub care_setting: Option<String>,
}

impl Claims {
    /// Whether `aud` contains `audience`.
    pub fn has_audience(&self, audience: &str) -> bool {
        self.aud
            .as_ref()
            .is_some_and(|aud| aud.0.iter().any(|a| a == audience))
    }

    /// The principal these claims describe; see [`principal_from_claims`].
    pub fn to_principal(&self) -> Result<Principal, ClaimsError> {
        principal_from_claims(self)
    }
}

/// One entry of CIS2's `nhsid_nrbac_roles`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NrbacRole {
    /// `S…:G…:R…` (or a bare `R…` code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_code: Option<String>,
    /// ODS code of the organisation the role is held in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_roleid: Option<String>,
}

/// A JWT NumericDate: seconds since 1970 (fractions are dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NumericDate(pub i64);

impl Serialize for NumericDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Read as f64 (integers and decimals both arrive this way, also with serde_json's
        // arbitrary_precision); NumericDate may be non-integer (RFC 7519 §2).
        let value = f64::deserialize(d)?;
        if !value.is_finite() {
            return Err(de::Error::custom("a NumericDate must be a finite number"));
        }
        // `as` saturates at the i64 range.
        Ok(NumericDate(value.floor() as i64))
    }
}

/// A claim that is a string or an array of strings (`aud`, roles, `scope`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StringOrList(pub Vec<String>);

impl StringOrList {
    pub fn one(text: impl Into<String>) -> Self {
        StringOrList(vec![text.into()])
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl Serialize for StringOrList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for StringOrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringOrList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringOrList, E> {
                Ok(StringOrList::one(v))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<StringOrList, E> {
                Ok(StringOrList(vec![v]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StringOrList, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(16));
                while let Some(item) = seq.next_element::<String>()? {
                    out.push(item);
                }
                Ok(StringOrList(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Maps verified claims to a principal.
///
/// - `iss` and `sub` are required.
/// - The role comes from `smr_role`, else `role` (a string or an array: the first entry that
///   is an SMR role name or a mapped NHS RBAC code wins), else `nhsid_nrbac_roles` (the entry
///   named by `selected_roleid`, else the first that maps). See [`crate::rbac`].
/// - The care setting is `care_setting` when it is a known [`CareSetting`] name, else the
///   role's default setting.
/// - The organisation is `org`, else `odsCode`, else the chosen CIS2 role's `org_code`; it is
///   required for every role but `patient`, which needs a `patient` claim instead.
/// - `scope` absent gives [`Scopes::unrestricted`]; present, [`Scopes::parse`].
pub fn principal_from_claims(claims: &Claims) -> Result<Principal, ClaimsError> {
    let issuer = non_empty(claims.iss.as_deref()).ok_or(ClaimsError::Missing("iss"))?;
    let user = non_empty(claims.sub.as_deref()).ok_or(ClaimsError::Missing("sub"))?;
    let setting_claim = claims
        .care_setting
        .as_deref()
        .and_then(|s| CareSetting::parse(s.trim()));

    let (role, role_org) = role_from_claims(claims, setting_claim)?;

    let organisation = match non_empty(claims.org.as_deref())
        .or_else(|| non_empty(claims.ods_code.as_deref()))
        .or(role_org.as_deref())
    {
        Some(org) if org.chars().any(char::is_control) => {
            return Err(ClaimsError::Invalid("org"));
        }
        Some(org) => Some(org.to_owned()),
        None => None,
    };

    let patient = match non_empty(claims.patient.as_deref()) {
        Some(id) if !is_fhir_id(id) => return Err(ClaimsError::Invalid("patient")),
        Some(id) => Some(id.to_owned()),
        None => None,
    };

    if role == Role::Patient {
        if patient.is_none() {
            return Err(ClaimsError::MissingPatient);
        }
    } else if organisation.is_none() {
        return Err(ClaimsError::MissingOrganisation(role));
    }

    let scopes = match &claims.scope {
        None => Scopes::unrestricted(),
        Some(list) => Scopes::parse(&list.0.join(" ")),
    };

    Ok(Principal {
        user: user.to_owned(),
        role,
        organisation,
        setting: setting_claim.unwrap_or_else(|| role.default_setting()),
        setting_claimed: setting_claim.is_some(),
        patient,
        scopes,
        name: non_empty(claims.name.as_deref()).map(str::to_owned),
        issuer: issuer.to_owned(),
    })
}

/// The role, and the organisation of the CIS2 role entry it came from (if any).
fn role_from_claims(
    claims: &Claims,
    setting: Option<CareSetting>,
) -> Result<(Role, Option<String>), ClaimsError> {
    if let Some(values) = claims.smr_role.as_ref().or(claims.role.as_ref()) {
        let mut first_error = None;
        for value in values.iter().map(str::trim) {
            match role_from_text(value, setting) {
                Ok(role) => return Ok((role, None)),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        return Err(first_error.unwrap_or(ClaimsError::MissingRole));
    }

    let Some(entries) = &claims.nhsid_nrbac_roles else {
        return Err(ClaimsError::MissingRole);
    };
    let map_entry = |entry: &NrbacRole| -> Result<(Role, Option<String>), ClaimsError> {
        let code = entry.role_code.as_deref().map(str::trim).unwrap_or("");
        let role = role_from_text(code, setting)?;
        Ok((role, entry.org_code.as_ref().map(|o| o.trim().to_owned())))
    };
    if let Some(selected) = non_empty(claims.selected_roleid.as_deref()) {
        let entry = entries
            .iter()
            .find(|e| e.person_roleid.as_deref().map(str::trim) == Some(selected))
            .ok_or(ClaimsError::Invalid("selected_roleid"))?;
        return map_entry(entry);
    }
    let mut first_error = None;
    for entry in entries {
        match map_entry(entry) {
            Ok(found) => return Ok(found),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(ClaimsError::MissingRole))
}

/// An SMR role name, or a national RBAC code mapped in `setting`.
fn role_from_text(text: &str, setting: Option<CareSetting>) -> Result<Role, ClaimsError> {
    if let Some(role) = Role::parse(text) {
        return Ok(role);
    }
    if let Some(code) = rbac::job_role_code(text) {
        return rbac::map_rbac_role(code, setting).ok_or_else(|| ClaimsError::UnmappedRbacRole {
            code: code.to_owned(),
            setting: setting.map_or("none", CareSetting::as_str).to_owned(),
        });
    }
    Err(ClaimsError::UnknownRole(printable(text, 40)))
}

fn non_empty(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|t| !t.is_empty())
}

/// A FHIR id: 1 to 64 of `A-Z a-z 0-9 - .`.
fn is_fhir_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Claim text safe to put in an error message: printable ASCII, at most `max` characters.
fn printable(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use smr_access::Interaction;

    fn claims(json: &str) -> Claims {
        serde_json::from_str(json).expect("test claims parse")
    }

    fn base(extra: &str) -> Claims {
        claims(&format!(
            r#"{{"iss":"https://idp.example","sub":"u1","aud":"smr","exp":2000000000{extra}}}"#
        ))
    }

    #[test]
    fn smr_role_names_map_directly() {
        let p = principal_from_claims(&base(r#","smr_role":"gp","org":"A81001""#)).unwrap();
        assert_eq!(p.role, Role::Gp);
        assert_eq!(p.organisation.as_deref(), Some("A81001"));
        assert_eq!(p.setting, CareSetting::GpPractice);
        assert_eq!(p.user, "u1");
        assert_eq!(p.issuer, "https://idp.example");
        assert!(p.scopes.is_unrestricted());
    }

    #[test]
    fn smr_role_wins_over_role_and_arrays_take_the_first_recognised() {
        let p = principal_from_claims(&base(
            r#","smr_role":"hospital-pharmacist","role":"R8000","org":"RBA""#,
        ))
        .unwrap();
        assert_eq!(p.role, Role::HospitalPharmacist);

        let p =
            principal_from_claims(&base(r#","role":["reader","R8001"],"odsCode":"RBA""#)).unwrap();
        assert_eq!(p.role, Role::Nurse);
        assert_eq!(p.organisation.as_deref(), Some("RBA"));
        assert_eq!(p.setting, CareSetting::Community);
    }

    #[test]
    fn rbac_codes_use_the_care_setting() {
        let p = principal_from_claims(&base(
            r#","role":"R8000","org":"RBA","care_setting":"hospital""#,
        ))
        .unwrap();
        assert_eq!(p.role, Role::HospitalPrescriber);
        assert_eq!(p.setting, CareSetting::Hospital);

        let p = principal_from_claims(&base(
            r#","role":"R8000","org":"FA123","care_setting":"community-pharmacy""#,
        ))
        .unwrap();
        assert_eq!(p.role, Role::CommunityPharmacist);

        let p = principal_from_claims(&base(r#","role":"R8000","org":"A81001""#)).unwrap();
        assert_eq!(p.role, Role::Gp);

        let err = principal_from_claims(&base(
            r#","role":"R8000","org":"X1","care_setting":"care-home""#,
        ))
        .unwrap_err();
        assert_eq!(
            err,
            ClaimsError::UnmappedRbacRole {
                code: "R8000".into(),
                setting: "care-home".into()
            }
        );
        assert!(err.to_string().contains("R8000"));
    }

    #[test]
    fn unknown_and_unmapped_roles_are_clear_errors() {
        let err = principal_from_claims(&base(r#","role":"doctor","org":"X1""#)).unwrap_err();
        assert_eq!(err, ClaimsError::UnknownRole("doctor".into()));
        let err = principal_from_claims(&base(r#","role":"R8004","org":"X1""#)).unwrap_err();
        assert!(matches!(err, ClaimsError::UnmappedRbacRole { .. }));
        let err = principal_from_claims(&base(r#","org":"X1""#)).unwrap_err();
        assert_eq!(err, ClaimsError::MissingRole);
        let err = principal_from_claims(&base(r#","role":[],"org":"X1""#)).unwrap_err();
        assert_eq!(err, ClaimsError::MissingRole);
        // Long or odd role text is shortened and made printable in the message.
        let long = "x".repeat(500);
        let err =
            principal_from_claims(&base(&format!(r#","role":"{long}\n","org":"X1""#))).unwrap_err();
        assert!(err.to_string().len() < 120);
    }

    #[test]
    fn organisation_and_patient_requirements() {
        for role in Role::ALL {
            if role == Role::Patient {
                continue;
            }
            let err =
                principal_from_claims(&base(&format!(r#","smr_role":"{role}""#))).unwrap_err();
            assert_eq!(err, ClaimsError::MissingOrganisation(role));
        }
        let err = principal_from_claims(&base(r#","smr_role":"patient""#)).unwrap_err();
        assert_eq!(err, ClaimsError::MissingPatient);
        let p = principal_from_claims(&base(r#","smr_role":"patient","patient":"pat-1""#)).unwrap();
        assert_eq!(p.patient.as_deref(), Some("pat-1"));
        assert_eq!(p.setting, CareSetting::PatientReported);
        assert_eq!(p.organisation, None);
        let err =
            principal_from_claims(&base(r#","smr_role":"patient","patient":"a/b""#)).unwrap_err();
        assert_eq!(err, ClaimsError::Invalid("patient"));
        let err = principal_from_claims(&base(r#","smr_role":"gp","org":"  ""#)).unwrap_err();
        assert_eq!(err, ClaimsError::MissingOrganisation(Role::Gp));
    }

    #[test]
    fn required_iss_and_sub() {
        let c = claims(r#"{"smr_role":"admin","org":"X1","sub":"u"}"#);
        assert_eq!(principal_from_claims(&c), Err(ClaimsError::Missing("iss")));
        let c = claims(r#"{"smr_role":"admin","org":"X1","iss":"i","sub":" "}"#);
        assert_eq!(principal_from_claims(&c), Err(ClaimsError::Missing("sub")));
    }

    #[test]
    fn care_setting_claim_overrides_default_and_unknown_falls_back() {
        let p = principal_from_claims(&base(
            r#","smr_role":"nurse","org":"RBA","care_setting":"hospital""#,
        ))
        .unwrap();
        assert_eq!(p.setting, CareSetting::Hospital);
        let p = principal_from_claims(&base(
            r#","smr_role":"nurse","org":"RBA","care_setting":"spaceship""#,
        ))
        .unwrap();
        assert_eq!(p.setting, CareSetting::Community);
    }

    #[test]
    fn scope_claim_is_read() {
        let p = principal_from_claims(&base(
            r#","smr_role":"gp","org":"A1","scope":"openid patient/MedicationRequest.rs""#,
        ))
        .unwrap();
        assert!(p.scopes.allows("MedicationRequest", Interaction::Read));
        assert!(!p.scopes.allows("MedicationRequest", Interaction::Create));
        let p = principal_from_claims(&base(
            r#","smr_role":"gp","org":"A1","scope":["user/Patient.r","user/Observation.s"]"#,
        ))
        .unwrap();
        assert_eq!(
            p.scopes.to_scope_string(),
            "user/Observation.s user/Patient.r"
        );
        let p = principal_from_claims(&base(r#","smr_role":"gp","org":"A1","scope":"""#)).unwrap();
        assert!(!p.scopes.allows("Patient", Interaction::Read));
    }

    #[test]
    fn cis2_nrbac_roles() {
        let roles = r#","nhsid_nrbac_roles":[
            {"person_orgid":"1","person_roleid":"555","org_code":"RBA","role_name":"x","role_code":"S8000:G8000:R8004","activity_codes":["B0428"]},
            {"person_roleid":"556","org_code":"A81001","role_code":"S8000:G8000:R8000"},
            {"person_roleid":"557","org_code":"RXX","role_code":"S8000:G8000:R8001"}]"#;
        let p = principal_from_claims(&base(roles)).unwrap();
        assert_eq!(p.role, Role::Gp);
        assert_eq!(p.organisation.as_deref(), Some("A81001"));

        let p =
            principal_from_claims(&base(&format!(r#"{roles},"selected_roleid":"557""#))).unwrap();
        assert_eq!(p.role, Role::Nurse);
        assert_eq!(p.organisation.as_deref(), Some("RXX"));

        let err = principal_from_claims(&base(&format!(r#"{roles},"selected_roleid":"555""#)))
            .unwrap_err();
        assert!(matches!(err, ClaimsError::UnmappedRbacRole { .. }));
        let err = principal_from_claims(&base(&format!(r#"{roles},"selected_roleid":"999""#)))
            .unwrap_err();
        assert_eq!(err, ClaimsError::Invalid("selected_roleid"));

        // An explicit org claim wins over the CIS2 entry's.
        let p = principal_from_claims(&base(&format!(r#"{roles},"org":"Y99""#))).unwrap();
        assert_eq!(p.organisation.as_deref(), Some("Y99"));
    }

    #[test]
    fn numeric_dates_accept_decimals_and_reject_strings() {
        let c = claims(r#"{"exp":1700000000.9,"nbf":-5}"#);
        assert_eq!(c.exp, Some(NumericDate(1_700_000_000)));
        assert_eq!(c.nbf, Some(NumericDate(-5)));
        assert!(serde_json::from_str::<Claims>(r#"{"exp":"1700000000"}"#).is_err());
        assert!(serde_json::from_str::<Claims>(r#"{"aud":[1]}"#).is_err());
        assert!(serde_json::from_str::<Claims>(r#"{"iss":"a","iss":"b"}"#).is_err());
    }

    #[test]
    fn claims_round_trip_through_json() {
        let c = Claims {
            iss: Some("i".into()),
            sub: Some("s".into()),
            aud: Some(StringOrList(vec!["smr".into(), "x".into()])),
            exp: Some(NumericDate(5)),
            smr_role: Some(StringOrList::one("gp")),
            ..Claims::default()
        };
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(
            text,
            r#"{"iss":"i","sub":"s","aud":["smr","x"],"exp":5,"smr_role":"gp"}"#
        );
        assert_eq!(serde_json::from_str::<Claims>(&text).unwrap(), c);
        assert!(c.has_audience("x") && !c.has_audience("y"));
    }
}
