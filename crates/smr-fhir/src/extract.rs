//! Resource → index entries, driven by the search-parameter definitions.
//!
//! For each indexed parameter of the resource's type the (pre-parsed) FHIRPath expression is
//! evaluated and every resulting element is turned into entries following the R4 search rules
//! (http://hl7.org/fhir/R4/search.html): what a token, string, date, reference, number,
//! quantity or uri parameter indexes depends on the element's type, read from the choice suffix
//! where FHIRPath knows it and from the JSON shape otherwise. Values that cannot be read (an
//! unparsable date, a reference without a type) are skipped silently: validation reports them,
//! extraction only indexes what it can.
//!
//! `contained` resources are never entered: every expression starts at the resource root and
//! none names `contained`. `_id` and `_lastUpdated` come from stored columns; composite and
//! special parameters are not indexed. String values are folded by [`crate::text::normalize`],
//! the same function search values go through.

use serde_json::{Map, Value};

use crate::datetime;
use crate::fhirpath::{self, Element, Item};
use crate::index::SearchParamType;
use crate::search_params::{self, BASE_TYPE, SearchParamDef};
use crate::{IndexEntry, IndexValue};

/// Every index entry of `resource` (typed by its `resourceType`), for every search parameter
/// defined for that type. Unknown types give no entries. Entries of one parameter are unique.
pub fn extract(resource: &Value) -> Vec<IndexEntry> {
    let Some(rt) = resource.get("resourceType").and_then(Value::as_str) else {
        return Vec::new();
    };
    if rt == BASE_TYPE {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut values = Vec::new();
    for def in search_params::iter_params(rt) {
        if !def.is_indexed() {
            continue;
        }
        let Some(expr) = def.compiled() else { continue };
        values.clear();
        for item in expr.evaluate(resource) {
            index_item(def.kind, &item, &mut values);
        }
        push_unique(def, &mut values, &mut out);
    }
    out
}

/// Moves `values` into `out` as entries of `def`, dropping duplicates. Per-parameter value
/// lists are short, so a linear scan beats hashing (and `f64` fields rule out `Eq`/`Hash`).
fn push_unique(def: &SearchParamDef, values: &mut Vec<IndexValue>, out: &mut Vec<IndexEntry>) {
    let start = out.len();
    for value in values.drain(..) {
        if out[start..].iter().any(|e| e.value == value) {
            continue;
        }
        out.push(IndexEntry {
            param: def.code.clone(),
            value,
        });
    }
}

fn index_item(kind: SearchParamType, item: &Item<'_>, out: &mut Vec<IndexValue>) {
    match item {
        Item::Node(el) => match kind {
            SearchParamType::Token => token(el, out),
            SearchParamType::String => string(el.value, out),
            SearchParamType::Date => date(el.value, out),
            SearchParamType::Reference => reference(el.value, out),
            SearchParamType::Number => number(el.value, out),
            SearchParamType::Quantity => quantity(el.value, out),
            SearchParamType::Uri => {
                if let Some(s) = non_empty(el.value) {
                    out.push(IndexValue::Uri {
                        value: s.to_owned(),
                    });
                }
            }
            SearchParamType::Composite | SearchParamType::Special => {}
        },
        // Computed booleans: `Patient.deceased.exists() and Patient.deceased != false`.
        Item::Bool(b) if kind == SearchParamType::Token => out.push(code_only(bool_text(*b))),
        Item::Str(s) => {
            let text = Value::String((*s).to_owned());
            index_item(
                kind,
                &Item::Node(Element {
                    value: &text,
                    fhir_type: None,
                    name: "",
                }),
                out,
            );
        }
        Item::Bool(_) => {}
    }
}

fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

fn code_only(code: &str) -> IndexValue {
    IndexValue::Token {
        system: None,
        code: Some(code.to_owned()),
        text: None,
    }
}

/// A non-empty JSON string.
fn non_empty(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.is_empty())
}

fn str_field(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(non_empty).map(str::to_owned)
}

// ---------------------------------------------------------------------------------------------
// token

fn token(el: &Element<'_>, out: &mut Vec<IndexValue>) {
    let map = match el.value {
        Value::String(s) if !s.is_empty() => return out.push(code_only(s)),
        Value::Bool(b) => return out.push(code_only(bool_text(*b))),
        Value::Number(n) => return out.push(code_only(&n.to_string())),
        Value::Object(map) => map,
        _ => return,
    };
    let t = el.fhir_type;
    if t == Some("ContactPoint") || el.name == "telecom" {
        // ContactPoint: the value, system left out (R4: `ContactPoint.value`).
        if let Some(v) = str_field(map, "value") {
            out.push(IndexValue::Token {
                system: None,
                code: Some(v),
                text: None,
            });
        }
    } else if t == Some("CodeableConcept") || map.contains_key("coding") {
        codeable_concept(map, out);
    } else if t == Some("Identifier")
        || (t.is_none() && map.get("value").is_some_and(Value::is_string))
    {
        let text = map
            .get("type")
            .and_then(Value::as_object)
            .and_then(|ty| str_field(ty, "text"));
        let code = str_field(map, "value");
        if code.is_some() || text.is_some() {
            out.push(IndexValue::Token {
                system: str_field(map, "system"),
                code,
                text,
            });
        }
    } else if t == Some("Coding") || map.contains_key("code") || map.contains_key("system") {
        coding(map, None, out);
    } else if let Some(text) = str_field(map, "text") {
        // A CodeableConcept with only text.
        out.push(IndexValue::Token {
            system: None,
            code: None,
            text: Some(text),
        });
    }
}

fn codeable_concept(map: &Map<String, Value>, out: &mut Vec<IndexValue>) {
    let text = str_field(map, "text");
    let start = out.len();
    if let Some(Value::Array(codings)) = map.get("coding") {
        for c in codings.iter().filter_map(Value::as_object) {
            coding(c, text.as_deref(), out);
        }
    }
    // Keep the concept's own text findable by `:text` when no coding entry carries it.
    if let Some(text) = text {
        let covered = out[start..]
            .iter()
            .any(|v| matches!(v, IndexValue::Token { text: Some(t), .. } if *t == text));
        if !covered {
            out.push(IndexValue::Token {
                system: None,
                code: None,
                text: Some(text),
            });
        }
    }
}

/// One Coding; `text` is its display, else the enclosing concept's text.
fn coding(map: &Map<String, Value>, concept_text: Option<&str>, out: &mut Vec<IndexValue>) {
    let system = str_field(map, "system");
    let code = str_field(map, "code");
    if system.is_none() && code.is_none() {
        return;
    }
    let text = str_field(map, "display").or_else(|| concept_text.map(str::to_owned));
    out.push(IndexValue::Token { system, code, text });
}

// ---------------------------------------------------------------------------------------------
// string

/// The string parts of HumanName and Address (R4 search: each part is indexed on its own).
const STRING_PARTS: &[&str] = &[
    "family",
    "given",
    "prefix",
    "suffix",
    "text",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
];

fn string(v: &Value, out: &mut Vec<IndexValue>) {
    match v {
        Value::String(s) => push_string(s, out),
        Value::Object(map) => {
            for part in STRING_PARTS {
                match map.get(*part) {
                    Some(Value::String(s)) => push_string(s, out),
                    Some(Value::Array(items)) => items
                        .iter()
                        .filter_map(Value::as_str)
                        .for_each(|s| push_string(s, out)),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

fn push_string(s: &str, out: &mut Vec<IndexValue>) {
    if s.trim().is_empty() {
        return;
    }
    out.push(IndexValue::String {
        normalized: crate::text::normalize(s),
        exact: s.to_owned(),
    });
}

// ---------------------------------------------------------------------------------------------
// date

fn date(v: &Value, out: &mut Vec<IndexValue>) {
    let range = match v {
        Value::String(s) => datetime::parse_range(s).ok(),
        Value::Object(map) if map.contains_key("start") || map.contains_key("end") => period(map),
        Value::Object(map) => timing(map),
        _ => None,
    };
    if let Some((low, high)) = range {
        out.push(IndexValue::Date { low, high });
    }
}

/// `[start.low, end.high)`, open ends unbounded. `None` when a bound present cannot be read or
/// the period runs backwards.
fn period(map: &Map<String, Value>) -> Option<(i64, i64)> {
    let bound = |key: &str| -> Option<Option<(i64, i64)>> {
        match map.get(key) {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(s)) => datetime::parse_range(s).ok().map(Some),
            Some(_) => None,
        }
    };
    let start = bound("start")?;
    let end = bound("end")?;
    if start.is_none() && end.is_none() {
        return None;
    }
    let low = start.map_or(i64::MIN, |r| r.0);
    let high = end.map_or(i64::MAX, |r| r.1);
    (low < high).then_some((low, high))
}

/// Timing: from the earliest to the latest `event`; without events, `repeat.boundsPeriod`.
fn timing(map: &Map<String, Value>) -> Option<(i64, i64)> {
    if let Some(Value::Array(events)) = map.get("event") {
        let mut span: Option<(i64, i64)> = None;
        for (lo, hi) in events
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|s| datetime::parse_range(s).ok())
        {
            span = Some(span.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
        }
        if span.is_some() {
            return span;
        }
    }
    let bounds = map.get("repeat")?.get("boundsPeriod")?.as_object()?;
    period(bounds)
}

// ---------------------------------------------------------------------------------------------
// reference

fn reference(v: &Value, out: &mut Vec<IndexValue>) {
    let url = match v {
        // canonical / uri elements.
        Value::String(s) => s.as_str(),
        // Reference.identifier and display are not indexed as references (R4).
        Value::Object(map) => match map.get("reference").and_then(non_empty) {
            Some(r) => r,
            None => return,
        },
        _ => return,
    };
    // A contained reference (`#id`) points inside this resource, which is not indexed.
    if url.starts_with('#') {
        return;
    }
    let (target_type, target_id) = match fhirpath::parse_reference(url) {
        Some((t, id)) => (Some(t.to_owned()), Some(id.to_owned())),
        None => (None, None),
    };
    out.push(IndexValue::Reference {
        target_type,
        target_id,
        url: url.to_owned(),
    });
}

// ---------------------------------------------------------------------------------------------
// number, quantity

fn as_finite(v: &Value) -> Option<f64> {
    v.as_f64().filter(|f| f.is_finite())
}

fn number(v: &Value, out: &mut Vec<IndexValue>) {
    if let Some(value) = as_finite(v) {
        out.push(IndexValue::Number { value });
    }
}

/// Quantity and its profiles (Age, Duration, ...). Range and SampledData have no single value
/// and are not indexed.
fn quantity(v: &Value, out: &mut Vec<IndexValue>) {
    let Value::Object(map) = v else { return };
    let Some(value) = map.get("value").and_then(as_finite) else {
        return;
    };
    out.push(IndexValue::Quantity {
        value,
        system: str_field(map, "system"),
        code: str_field(map, "code"),
        unit: str_field(map, "unit"),
    });
}

#[cfg(test)]
mod tests;
