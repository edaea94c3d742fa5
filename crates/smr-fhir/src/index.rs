//! Index entries: what a resource contributes to search, extracted once per write and stored
//! beside the version in the same transaction.

use serde::{Deserialize, Serialize};

/// The R4 search parameter types (`SearchParameter.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchParamType {
    Number,
    Date,
    String,
    Token,
    Reference,
    Composite,
    Quantity,
    Uri,
    Special,
}

impl SearchParamType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "number" => Self::Number,
            "date" => Self::Date,
            "string" => Self::String,
            "token" => Self::Token,
            "reference" => Self::Reference,
            "composite" => Self::Composite,
            "quantity" => Self::Quantity,
            "uri" => Self::Uri,
            "special" => Self::Special,
            _ => return None,
        })
    }
}

/// One indexed value of one search parameter of one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    /// Search parameter code, e.g. `code`, `patient`, `authoredon`.
    pub param: String,
    pub value: IndexValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum IndexValue {
    /// Coding / Identifier / code / boolean / ContactPoint. `system` is `None` when the
    /// element carries no system (so `|code` can match it); `code` is `None` for a
    /// CodeableConcept with only text (kept so `:missing` and `:text` work).
    Token {
        system: Option<String>,
        code: Option<String>,
        /// Display / text, for the `:text` modifier.
        text: Option<String>,
    },
    /// `normalized` is lower-cased with accents and punctuation folded, for the default
    /// starts-with match; `exact` is the value as written, for `:exact`.
    String {
        normalized: String,
        exact: String,
    },
    /// Half-open range `[low, high)` in microseconds since the Unix epoch (UTC).
    /// A `Period` without an end has `high = i64::MAX`; without a start `low = i64::MIN`.
    Date {
        low: i64,
        high: i64,
    },
    /// A reference to another resource. `target_type`/`target_id` are set when the reference
    /// is a relative or absolute `Type/id` (with `_history` stripped); `url` is the literal
    /// `reference` text, for canonical/absolute matches.
    Reference {
        target_type: Option<String>,
        target_id: Option<String>,
        url: String,
    },
    /// Number, with its text kept so precision-based equality can be implemented.
    Number {
        value: f64,
    },
    Quantity {
        value: f64,
        system: Option<String>,
        code: Option<String>,
        unit: Option<String>,
    },
    Uri {
        value: String,
    },
}
