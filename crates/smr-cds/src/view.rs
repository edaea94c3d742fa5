//! Typed, borrowing views of the few FHIR elements SMR reads from CDS requests and stored
//! results, deserialized straight from JSON text.
//!
//! Why not `serde_json::Value`: a CDS request carries its prefetch (≈ 14 KB for a dozen
//! genotype Observations), and building a `Value` tree of it (every key and string allocated,
//! objects in insertion-ordered maps) was most of the CPU of an `order-select` call. A view
//! keeps only the elements SMR reads, skips the rest without allocating, and borrows strings
//! from the request body (`Cow` owns only strings with JSON escapes in them).
//!
//! Every field is optional and defaulted, so a view never rejects a resource for what it
//! lacks; it rejects only an element of the wrong JSON type (e.g. `"status": 5`), which is
//! invalid FHIR and reported as such by the caller.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

use serde::Deserialize;
use serde::de::{Deserializer, Visitor};

/// A JSON string borrowed from the input when it has no escapes, owned otherwise.
///
/// Why not `Option<Cow<'a, str>>`: serde borrows into a `Cow` only when the field's type is
/// exactly `Cow<str>`; wrapped in an `Option` it always allocates.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        d.deserialize_str(TextVisitor).map(Text)
    }
}

/// `Coding` (system, code, display).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodingView<'a> {
    #[serde(borrow)]
    pub system: Option<Text<'a>>,
    #[serde(borrow)]
    pub code: Option<Text<'a>>,
    #[serde(borrow)]
    pub display: Option<Text<'a>>,
}

/// `CodeableConcept` (codings and text).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeableConceptView<'a> {
    #[serde(borrow)]
    pub coding: Vec<CodingView<'a>>,
    #[serde(borrow)]
    pub text: Option<Text<'a>>,
}

impl CodeableConceptView<'_> {
    pub fn has_coding(&self, system: &str, code: &str) -> bool {
        self.coding
            .iter()
            .any(|c| c.system.as_deref() == Some(system) && c.code.as_deref() == Some(code))
    }
}

/// `Observation.component`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ComponentView<'a> {
    #[serde(borrow)]
    pub code: Option<CodeableConceptView<'a>>,
    #[serde(borrow, rename = "valueCodeableConcept")]
    pub value_codeable_concept: Option<CodeableConceptView<'a>>,
    #[serde(borrow, rename = "valueString")]
    pub value_string: Option<Text<'a>>,
}

/// `meta` (only `lastUpdated`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MetaView<'a> {
    #[serde(borrow, rename = "lastUpdated")]
    pub last_updated: Option<Text<'a>>,
}

/// The elements of an Observation that a genotype or phenotype result is read from.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ObservationView<'a> {
    #[serde(borrow, rename = "resourceType")]
    pub resource_type: Option<Text<'a>>,
    #[serde(borrow)]
    pub id: Option<Text<'a>>,
    #[serde(borrow)]
    pub meta: Option<MetaView<'a>>,
    #[serde(borrow)]
    pub status: Option<Text<'a>>,
    #[serde(borrow)]
    pub code: Option<CodeableConceptView<'a>>,
    #[serde(borrow)]
    pub issued: Option<Text<'a>>,
    #[serde(borrow, rename = "valueCodeableConcept")]
    pub value_codeable_concept: Option<CodeableConceptView<'a>>,
    #[serde(borrow, rename = "valueString")]
    pub value_string: Option<Text<'a>>,
    #[serde(borrow)]
    pub component: Vec<ComponentView<'a>>,
}

/// A Bundle of Observations read in one pass (the fast path for a well-formed prefetch).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ObservationBundleView<'a> {
    #[serde(borrow, rename = "resourceType")]
    pub resource_type: Option<Text<'a>>,
    #[serde(borrow)]
    pub entry: Vec<ObservationEntryView<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ObservationEntryView<'a> {
    #[serde(borrow)]
    pub resource: Option<ObservationView<'a>>,
}

/// A Bundle whose entries' resources are kept as raw JSON, to be read one by one (so that
/// one unreadable entry does not hide the others).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawBundleView<'a> {
    #[serde(borrow, rename = "resourceType")]
    pub resource_type: Option<Text<'a>>,
    #[serde(borrow)]
    pub entry: Vec<RawEntryView<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawEntryView<'a> {
    #[serde(borrow)]
    pub resource: Option<&'a serde_json::value::RawValue>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_unread_elements_and_borrows_plain_strings() {
        let text = r#"{"resourceType":"Observation","id":"o1","text":{"status":"generated","div":"<div>x</div>"},
            "code":{"coding":[{"system":"http://loinc.org","code":"84413-4"}]},
            "valueCodeableConcept":{"text":"*1/*2"},"extension":[{"url":"u","valueInteger":3}]}"#;
        let v: ObservationView<'_> = serde_json::from_str(text).expect("a valid view");
        assert!(matches!(v.id, Some(Text(Cow::Borrowed("o1")))));
        assert!(
            v.code
                .as_ref()
                .is_some_and(|c| c.has_coding("http://loinc.org", "84413-4"))
        );
        assert_eq!(
            v.value_codeable_concept.and_then(|c| c.text).as_deref(),
            Some("*1/*2")
        );
    }

    #[test]
    fn escaped_strings_are_owned_not_lost() {
        let v: ObservationView<'_> =
            serde_json::from_str(r#"{"valueString":"a\"b"}"#).expect("a valid view");
        assert_eq!(v.value_string.as_deref(), Some("a\"b"));
    }

    #[test]
    fn wrong_json_type_is_an_error() {
        assert!(serde_json::from_str::<ObservationView<'_>>(r#"{"status":5}"#).is_err());
    }

    #[test]
    fn bundle_entries_stay_raw() {
        let b: RawBundleView<'_> = serde_json::from_str(
            r#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Observation"}},{"fullUrl":"x"}]}"#,
        )
        .expect("a valid bundle view");
        assert_eq!(b.entry.len(), 2);
        assert_eq!(
            b.entry[0].resource.map(|r| r.get()),
            Some(r#"{"resourceType":"Observation"}"#)
        );
        assert!(b.entry[1].resource.is_none());
    }
}
