//! Patients as a search result lists them: name, NHS number, date of birth.

use serde_json::Value;

use crate::json::{items, text};

const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientSummary {
    pub id: String,
    pub name: String,
    /// Spaced 3-3-4 as NHS numbers are written.
    pub nhs_number: Option<String>,
    pub birth_date: Option<String>,
    pub gender: Option<String>,
}

impl PatientSummary {
    /// `None` when the resource has no id (a stored Patient always has one).
    pub fn from_resource(patient: &Value) -> Option<Self> {
        Some(PatientSummary {
            id: text(patient, "/id")?,
            name: display_name(patient),
            nhs_number: items(patient, "/identifier")
                .iter()
                .find(|i| text(i, "/system").as_deref() == Some(NHS_NUMBER_SYSTEM))
                .and_then(|i| text(i, "/value"))
                .map(|n| spaced_nhs_number(&n)),
            birth_date: text(patient, "/birthDate"),
            gender: text(patient, "/gender"),
        })
    }
}

/// "Given Family" from the official name (else the first), or "(no name recorded)".
pub fn display_name(patient: &Value) -> String {
    let names = items(patient, "/name");
    let name = names
        .iter()
        .find(|n| text(n, "/use").as_deref() == Some("official"))
        .or_else(|| names.first());
    let Some(name) = name else {
        return "(no name recorded)".to_owned();
    };
    if let Some(t) = text(name, "/text") {
        return t;
    }
    let mut parts: Vec<String> = items(name, "/given")
        .iter()
        .filter_map(|g| g.as_str().map(str::to_owned))
        .collect();
    parts.extend(text(name, "/family"));
    if parts.is_empty() {
        "(no name recorded)".to_owned()
    } else {
        parts.join(" ")
    }
}

fn spaced_nhs_number(n: &str) -> String {
    if n.len() == 10 && n.bytes().all(|b| b.is_ascii_digit()) {
        format!("{} {} {}", &n[..3], &n[3..6], &n[6..])
    } else {
        n.to_owned()
    }
}

/// How a search box's text is searched: an NHS number (spaces allowed) by identifier,
/// anything else by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatientQuery {
    NhsNumber(String),
    Name(String),
}

impl PatientQuery {
    /// `None` for an empty box.
    pub fn parse(q: &str) -> Option<Self> {
        let q = q.trim();
        if q.is_empty() {
            return None;
        }
        let digits: String = q.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()) {
            Some(PatientQuery::NhsNumber(digits))
        } else {
            Some(PatientQuery::Name(q.to_owned()))
        }
    }

    /// The FHIR search parameters of the query.
    pub fn search_pairs(&self) -> Vec<(String, String)> {
        match self {
            PatientQuery::NhsNumber(n) => {
                vec![("identifier".into(), format!("{NHS_NUMBER_SYSTEM}|{n}"))]
            }
            PatientQuery::Name(name) => vec![("name".into(), name.clone())],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_patient_reads_as_a_row() {
        let p = json!({"resourceType": "Patient", "id": "p1",
            "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": "9990000018"}],
            "name": [{"use": "official", "family": "O'Brien", "given": ["Zoë"]}],
            "birthDate": "1958-03-14"});
        let s = PatientSummary::from_resource(&p).expect("summary");
        assert_eq!(s.name, "Zoë O'Brien");
        assert_eq!(s.nhs_number.as_deref(), Some("999 000 0018"));
    }

    #[test]
    fn queries_are_nhs_numbers_or_names() {
        assert_eq!(
            PatientQuery::parse(" 999 000 0018 "),
            Some(PatientQuery::NhsNumber("9990000018".into()))
        );
        assert_eq!(
            PatientQuery::parse("Smith"),
            Some(PatientQuery::Name("Smith".into()))
        );
        assert_eq!(PatientQuery::parse("  "), None);
    }
}
