//! FHIRPath Patch (http://hl7.org/fhir/R4/fhirpatch.html): a `Parameters` resource whose
//! `operation` parameters each say what to change, applied in order to a resource's JSON.
//!
//! Each operation has parts `type` (`add` | `insert` | `delete` | `replace` | `move`), `path`,
//! and as its type requires `name`, `value` (a `value[x]`, or parts for an anonymous type such
//! as a backbone element), `index`, `source`, `destination`:
//!
//! - `add`: adds `name` with `value` to the one element `path` selects (appended when the
//!   element repeats; an error when it does not repeat and already exists);
//! - `insert`: inserts `value` into the list `path` names, at `index` (0 ≤ index ≤ length);
//! - `delete`: deletes the element `path` selects, if any (at most one);
//! - `replace`: replaces the one element `path` selects with `value`;
//! - `move`: moves the item at `source` of the list `path` names to `destination`.
//!
//! Paths: the subset of FHIRPath that names elements, which is what patch clients send:
//! `Type.element(.element)*` with optional `[n]` indexers, e.g. `MedicationRequest.status`,
//! `MedicationRequest.dosageInstruction[0].text`, `Patient.name[1]`. A choice element is named
//! by its base (`MedicationRequest.medication`). Functions (`where(…)`, `first()`, …) and
//! operators are refused as [`PatchError::UnsupportedPath`], naming the path.
//!
//! Whether an element repeats (so `add` makes a JSON array) comes from the validator's R4
//! tables ([`crate::validate::element_key`]). The patched resource is validated like any other
//! write afterwards.

use serde_json::{Map, Value};

use crate::validate::element_key;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The `Parameters` document is not a FHIRPath Patch (400).
    #[error("{0}")]
    Invalid(String),
    /// A path outside the supported subset (400).
    #[error(
        "FHIRPath Patch path '{0}' is not supported: SMR supports element paths with [n] \
         indexers, such as MedicationRequest.dosageInstruction[0].text"
    )]
    UnsupportedPath(String),
    /// The patch is well formed but cannot be applied to this resource (422).
    #[error("{0}")]
    NotApplicable(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Add,
    Insert,
    Delete,
    Replace,
    Move,
}

/// A value to write: a JSON value with the FHIR type its `value[x]` named, or an anonymous
/// type given as parts.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchValue {
    Typed { ty: String, value: Value },
    Parts(Vec<(String, PatchValue)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub kind: Kind,
    pub path: String,
    segments: Vec<Segment>,
    pub name: Option<String>,
    pub value: Option<PatchValue>,
    pub index: Option<usize>,
    pub source: Option<usize>,
    pub destination: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    name: String,
    index: Option<usize>,
}

/// True when `body` is a `Parameters` resource (the FHIRPath Patch format).
pub fn is_fhirpath_patch(body: &Value) -> bool {
    body.get("resourceType").and_then(Value::as_str) == Some("Parameters")
}

/// Reads the operations of a FHIRPath Patch for a resource of type `res_type`.
pub fn parse(res_type: &str, parameters: &Value) -> Result<Vec<Operation>, PatchError> {
    if !is_fhirpath_patch(parameters) {
        return Err(PatchError::Invalid(
            "a FHIRPath Patch is a Parameters resource".into(),
        ));
    }
    let params = parameters
        .get("parameter")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            PatchError::Invalid("a FHIRPath Patch needs at least one 'operation' parameter".into())
        })?;
    params
        .iter()
        .enumerate()
        .map(|(i, p)| operation(res_type, i, p))
        .collect()
}

fn operation(res_type: &str, i: usize, p: &Value) -> Result<Operation, PatchError> {
    let at = |msg: String| PatchError::Invalid(format!("Parameters.parameter[{i}]: {msg}"));
    if p.get("name").and_then(Value::as_str) != Some("operation") {
        return Err(at(
            "every parameter of a FHIRPath Patch must be named 'operation'".into(),
        ));
    }
    let parts = p
        .get("part")
        .and_then(Value::as_array)
        .ok_or_else(|| at("an operation needs parts (type, path, …)".into()))?;
    let mut kind = None;
    let mut path = None;
    let mut name = None;
    let mut value = None;
    let (mut index, mut source, mut destination) = (None, None, None);
    for part in parts {
        let pname = part.get("name").and_then(Value::as_str).unwrap_or_default();
        match pname {
            "type" => {
                let code = primitive(part, "valueCode")
                    .ok_or_else(|| at("'type' must be a valueCode".into()))?;
                kind = Some(match code {
                    "add" => Kind::Add,
                    "insert" => Kind::Insert,
                    "delete" => Kind::Delete,
                    "replace" => Kind::Replace,
                    "move" => Kind::Move,
                    other => {
                        return Err(at(format!(
                            "unknown operation type '{other}' (add | insert | delete | replace | \
                             move)"
                        )));
                    }
                });
            }
            "path" => {
                path = Some(
                    primitive(part, "valueString")
                        .ok_or_else(|| at("'path' must be a valueString".into()))?
                        .to_owned(),
                );
            }
            "name" => {
                name = Some(
                    primitive(part, "valueString")
                        .ok_or_else(|| at("'name' must be a valueString".into()))?
                        .to_owned(),
                );
            }
            "value" => value = Some(patch_value(part).map_err(at)?),
            "index" => index = Some(integer(part).map_err(|m| at(format!("'index' {m}")))?),
            "source" => source = Some(integer(part).map_err(|m| at(format!("'source' {m}")))?),
            "destination" => {
                destination = Some(integer(part).map_err(|m| at(format!("'destination' {m}")))?)
            }
            other => return Err(at(format!("unknown operation part '{other}'"))),
        }
    }
    let kind = kind.ok_or_else(|| at("an operation needs a 'type'".into()))?;
    let path = path.ok_or_else(|| at("an operation needs a 'path'".into()))?;
    let segments = parse_path(res_type, &path)?;
    let missing = |what: &str| at(format!("a {kind:?} operation needs '{what}'").to_lowercase());
    match kind {
        Kind::Add if name.is_none() => return Err(missing("name")),
        Kind::Add | Kind::Insert | Kind::Replace if value.is_none() => {
            return Err(missing("value"));
        }
        Kind::Insert if index.is_none() => return Err(missing("index")),
        Kind::Move if source.is_none() || destination.is_none() => {
            return Err(missing("source and destination"));
        }
        _ => {}
    }
    if let Some(n) = &name
        && !is_element_name(n)
    {
        return Err(at(format!("'{n}' is not an element name")));
    }
    if matches!(kind, Kind::Insert | Kind::Move)
        && segments.last().is_some_and(|s| s.index.is_some())
    {
        return Err(at(format!(
            "the path of an {kind:?} names a list, without an indexer: '{path}'"
        )
        .to_lowercase()));
    }
    if matches!(kind, Kind::Insert | Kind::Move) && segments.is_empty() {
        return Err(PatchError::UnsupportedPath(path));
    }
    Ok(Operation {
        kind,
        path,
        segments,
        name,
        value,
        index,
        source,
        destination,
    })
}

fn primitive<'a>(part: &'a Value, key: &str) -> Option<&'a str> {
    part.get(key).and_then(Value::as_str)
}

fn integer(part: &Value) -> Result<usize, String> {
    part.get("valueInteger")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| "must be a non-negative valueInteger".to_owned())
}

/// A `value` part: one `value[x]`, or parts naming the children of an anonymous type.
fn patch_value(part: &Value) -> Result<PatchValue, String> {
    let Some(obj) = part.as_object() else {
        return Err("a part must be a JSON object".into());
    };
    let typed: Vec<(&String, &Value)> = obj
        .iter()
        .filter(|(k, _)| k.len() > 5 && k.starts_with("value") && !k.starts_with('_'))
        .collect();
    match (typed.as_slice(), obj.get("part")) {
        ([(key, value)], None) => Ok(PatchValue::Typed {
            ty: key["value".len()..].to_owned(),
            value: (*value).clone(),
        }),
        ([], Some(Value::Array(children))) => {
            let mut out = Vec::with_capacity(children.len());
            for child in children {
                let cname = child
                    .get("name")
                    .and_then(Value::as_str)
                    .filter(|n| is_element_name(n))
                    .ok_or_else(|| "each part of a value names an element".to_owned())?;
                out.push((cname.to_owned(), patch_value(child)?));
            }
            Ok(PatchValue::Parts(out))
        }
        _ => Err("'value' must have exactly one value[x], or parts".into()),
    }
}

fn is_element_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `Type.a.b[2].c` → segments after the type. The type may be omitted (`status`), as FHIRPath
/// evaluates against the resource either way.
fn parse_path(res_type: &str, path: &str) -> Result<Vec<Segment>, PatchError> {
    let unsupported = || PatchError::UnsupportedPath(path.to_owned());
    let mut segments = Vec::new();
    for (i, raw) in path.split('.').enumerate() {
        let (name, index) = match raw.split_once('[') {
            Some((name, rest)) => {
                let digits = rest.strip_suffix(']').ok_or_else(unsupported)?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(unsupported());
                }
                (
                    name,
                    Some(digits.parse::<usize>().map_err(|_| unsupported())?),
                )
            }
            None => (raw, None),
        };
        if !is_element_name(name) {
            return Err(unsupported());
        }
        if i == 0 && name.starts_with(|c: char| c.is_ascii_uppercase()) {
            // Element names start lower-case; an upper-case start is the resource type.
            if name != res_type {
                return Err(PatchError::NotApplicable(format!(
                    "path '{path}' is for a {name}, but the resource is a {res_type}"
                )));
            }
            if index.is_some() {
                return Err(unsupported());
            }
            continue;
        }
        segments.push(Segment {
            name: name.to_owned(),
            index,
        });
    }
    Ok(segments)
}

/// Where a selected element sits: JSON keys and array indices from the resource root.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Item(usize),
}

type Location = Vec<Step>;

/// Applies the operations in order. On error the resource may be partly patched: callers
/// apply to a copy (the store writes nothing unless every operation succeeded).
pub fn apply(resource: &mut Value, operations: &[Operation]) -> Result<(), PatchError> {
    let res_type = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    for op in operations {
        apply_one(&res_type, resource, op)?;
    }
    Ok(())
}

fn apply_one(res_type: &str, resource: &mut Value, op: &Operation) -> Result<(), PatchError> {
    let path = &op.path;
    match op.kind {
        Kind::Replace => {
            let loc = single(resource, &op.segments, path)?;
            let parents = element_keys(&loc);
            let Some(Step::Key(key)) = loc.iter().rev().find(|s| matches!(s, Step::Key(_))) else {
                return Err(PatchError::NotApplicable(format!(
                    "path '{path}' selects the resource itself; replace an element instead"
                )));
            };
            let grand = &parents[..parents.len() - 1];
            let value = build(res_type, grand, key, op.value.as_ref())?;
            // A choice replaced by a value of another type changes its key
            // (`medicationCodeableConcept` → `medicationReference`).
            let named = op
                .segments
                .last()
                .map(|s| s.name.as_str())
                .unwrap_or_default();
            let renamed = match (loc.last(), value_type(op.value.as_ref())) {
                (Some(Step::Key(_)), Some(ty)) if named != key.as_str() => {
                    let refs: Vec<&str> = grand.iter().map(String::as_str).collect();
                    element_key(res_type, &refs, named, Some(&ty))
                        .map(|e| e.key)
                        .filter(|k| k != key)
                }
                _ => None,
            };
            match renamed {
                Some(new_key) => {
                    let old_key = key.clone();
                    let parent_loc = loc[..loc.len() - 1].to_vec();
                    if let Value::Object(obj) = at_mut(resource, &parent_loc)? {
                        obj.shift_remove(&old_key);
                        obj.shift_remove(&format!("_{old_key}"));
                        obj.insert(new_key, value);
                    }
                }
                None => *at_mut(resource, &loc)? = value,
            }
        }
        Kind::Delete => {
            let found = select(resource, &op.segments);
            match found.len() {
                0 => {} // "delete: if found"
                1 => {
                    if found[0].is_empty() {
                        return Err(PatchError::NotApplicable(
                            "a patch cannot delete the resource itself".into(),
                        ));
                    }
                    delete(resource, &found[0]);
                }
                n => {
                    return Err(PatchError::NotApplicable(format!(
                        "path '{path}' selects {n} elements; delete removes one"
                    )));
                }
            }
        }
        Kind::Add => {
            let loc = single(resource, &op.segments, path)?;
            let name = op.name.as_deref().unwrap_or_default();
            let parents = element_keys(&loc);
            let parent_refs: Vec<&str> = parents.iter().map(String::as_str).collect();
            let ty = value_type(op.value.as_ref());
            let ek = element_key(res_type, &parent_refs, name, ty.as_deref());
            let key = ek.as_ref().map_or(name, |e| e.key.as_str()).to_owned();
            let value = build(res_type, &parents, &key, op.value.as_ref())?;
            let Value::Object(obj) = at_mut(resource, &loc)? else {
                return Err(PatchError::NotApplicable(format!(
                    "path '{path}' selects a primitive value; add needs an element with children"
                )));
            };
            let repeats = ek.is_some_and(|e| e.repeats);
            if !put_element(obj, &key, value, repeats) {
                return Err(PatchError::NotApplicable(format!(
                    "'{key}' already exists at '{path}' and does not repeat; use replace"
                )));
            }
        }
        Kind::Insert | Kind::Move => {
            let (parent_segments, last) = op.segments.split_at(op.segments.len() - 1);
            let key_name = &last[0].name;
            let parent = single(resource, parent_segments, path)?;
            let parents = element_keys(&parent);
            let parent_refs: Vec<&str> = parents.iter().map(String::as_str).collect();
            let ek = element_key(res_type, &parent_refs, key_name, None);
            if ek.as_ref().is_some_and(|e| !e.repeats) {
                return Err(PatchError::NotApplicable(format!(
                    "'{path}' does not repeat: {:?} needs a list",
                    op.kind
                )));
            }
            let key = ek.map_or_else(|| key_name.clone(), |e| e.key);
            let value = if op.kind == Kind::Insert {
                Some(build(res_type, &parents, &key, op.value.as_ref())?)
            } else {
                None
            };
            let Value::Object(obj) = at_mut(resource, &parent)? else {
                return Err(PatchError::NotApplicable(format!(
                    "'{path}' is not inside an element with children"
                )));
            };
            list_edit(obj, &key, op, value)?;
        }
    }
    Ok(())
}

fn list_edit(
    obj: &mut Map<String, Value>,
    key: &str,
    op: &Operation,
    value: Option<Value>,
) -> Result<(), PatchError> {
    let path = &op.path;
    let len = match obj.get(key) {
        Some(Value::Array(items)) => items.len(),
        Some(_) => {
            return Err(PatchError::NotApplicable(format!("'{path}' is not a list")));
        }
        None => 0,
    };
    match (op.kind, value) {
        (Kind::Insert, Some(value)) => {
            let index = op.index.unwrap_or_default();
            if index > len {
                return Err(PatchError::NotApplicable(format!(
                    "insert index {index} is past the end of '{path}' ({len} items)"
                )));
            }
            let items = obj
                .entry(key.to_owned())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = items {
                items.insert(index, value);
            }
        }
        _ => {
            let (from, to) = (
                op.source.unwrap_or_default(),
                op.destination.unwrap_or_default(),
            );
            if from >= len || to >= len {
                return Err(PatchError::NotApplicable(format!(
                    "move from {from} to {to} is outside '{path}' ({len} items)"
                )));
            }
            if let Some(Value::Array(items)) = obj.get_mut(key) {
                let item = items.remove(from);
                items.insert(to, item);
            }
        }
    }
    Ok(())
}

/// The one location `segments` selects; none or several is an error.
fn single(resource: &Value, segments: &[Segment], path: &str) -> Result<Location, PatchError> {
    let mut found = select(resource, segments);
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(PatchError::NotApplicable(format!(
            "path '{path}' selects nothing in this resource"
        ))),
        n => Err(PatchError::NotApplicable(format!(
            "path '{path}' selects {n} elements; this operation needs exactly one"
        ))),
    }
}

/// FHIRPath navigation: each segment maps every selected element to its children of that name
/// (array items flattened), then an indexer picks one item of the whole collection.
fn select(resource: &Value, segments: &[Segment]) -> Vec<Location> {
    let mut current: Vec<Location> = vec![Vec::new()];
    for seg in segments {
        let mut next = Vec::new();
        for loc in &current {
            let Some(Value::Object(obj)) = at(resource, loc) else {
                continue;
            };
            let Some(key) = child_key(obj, &seg.name) else {
                continue;
            };
            let mut base = loc.clone();
            base.push(Step::Key(key.clone()));
            match &obj[&key] {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if !item.is_null() {
                            let mut l = base.clone();
                            l.push(Step::Item(i));
                            next.push(l);
                        }
                    }
                }
                Value::Null => {}
                _ => next.push(base),
            }
        }
        if let Some(i) = seg.index {
            next = next.into_iter().nth(i).into_iter().collect();
        }
        current = next;
    }
    current
}

/// The JSON key for element `name`: itself, or the one variant present of a choice
/// (`medication` → `medicationCodeableConcept`).
fn child_key(obj: &Map<String, Value>, name: &str) -> Option<String> {
    if obj.contains_key(name) {
        return Some(name.to_owned());
    }
    obj.keys()
        .find(|k| {
            k.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
        })
        .cloned()
}

/// The element keys along a location (array indices dropped): what the R4 tables are walked by.
fn element_keys(loc: &Location) -> Vec<String> {
    loc.iter()
        .filter_map(|s| match s {
            Step::Key(k) => Some(k.clone()),
            Step::Item(_) => None,
        })
        .collect()
}

fn at<'v>(root: &'v Value, loc: &Location) -> Option<&'v Value> {
    let mut v = root;
    for step in loc {
        v = match (step, v) {
            (Step::Key(k), Value::Object(o)) => o.get(k)?,
            (Step::Item(i), Value::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

fn at_mut<'v>(root: &'v mut Value, loc: &Location) -> Result<&'v mut Value, PatchError> {
    let mut v = root;
    for step in loc {
        v = match (step, v) {
            (Step::Key(k), Value::Object(o)) => o.get_mut(k),
            (Step::Item(i), Value::Array(a)) => a.get_mut(*i),
            _ => None,
        }
        .ok_or_else(|| PatchError::NotApplicable("the selected element moved".into()))?;
    }
    Ok(v)
}

/// Deletes the element at `loc` with its `_x` primitive extension, then any object or array
/// the deletion left empty (FHIR JSON has no empty elements).
fn delete(resource: &mut Value, loc: &Location) {
    let Some((last, parent_loc)) = loc.split_last() else {
        return;
    };
    let parent_loc = parent_loc.to_vec();
    let Ok(parent) = at_mut(resource, &parent_loc) else {
        return;
    };
    match (last, parent) {
        (Step::Key(k), Value::Object(obj)) => {
            obj.shift_remove(k);
            obj.shift_remove(&format!("_{k}"));
        }
        (Step::Item(i), Value::Array(items)) => {
            if *i < items.len() {
                items.remove(*i);
            }
            // The aligned `_x` array of a primitive list loses the same item.
            if let Some((Step::Key(k), grand_loc)) = parent_loc.split_last()
                && let Ok(Value::Object(grand)) = at_mut(resource, &grand_loc.to_vec())
                && let Some(Value::Array(ext)) = grand.get_mut(&format!("_{k}"))
                && *i < ext.len()
            {
                ext.remove(*i);
            }
        }
        _ => return,
    }
    let now_empty = match at(resource, &parent_loc) {
        Some(Value::Object(o)) => o.is_empty() && !parent_loc.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    };
    if now_empty {
        delete(resource, &parent_loc);
    }
}

fn value_type(value: Option<&PatchValue>) -> Option<String> {
    match value {
        Some(PatchValue::Typed { ty, .. }) => Some(ty.clone()),
        _ => None,
    }
}

/// The JSON of a patch value for element `key` under `parents`: a typed value as is; parts as
/// an object, each child an array when the R4 tables say it repeats.
fn build(
    res_type: &str,
    parents: &[String],
    key: &str,
    value: Option<&PatchValue>,
) -> Result<Value, PatchError> {
    match value {
        None => Err(PatchError::Invalid("the operation has no value".into())),
        Some(PatchValue::Typed { value, .. }) => Ok(value.clone()),
        Some(PatchValue::Parts(children)) => {
            let mut path: Vec<String> = parents.to_vec();
            path.push(key.to_owned());
            let refs: Vec<&str> = path.iter().map(String::as_str).collect();
            let mut obj = Map::new();
            for (name, child) in children {
                let ty = value_type(Some(child));
                let ek = element_key(res_type, &refs, name, ty.as_deref());
                let ckey = ek
                    .as_ref()
                    .map_or(name.as_str(), |e| e.key.as_str())
                    .to_owned();
                let v = build(res_type, &path, &ckey, Some(child))?;
                let repeats = ek.is_some_and(|e| e.repeats);
                if !put_element(&mut obj, &ckey, v, repeats) {
                    return Err(PatchError::Invalid(format!(
                        "part '{name}' is given twice but does not repeat"
                    )));
                }
            }
            Ok(Value::Object(obj))
        }
    }
}

/// Adds `value` as element `key` of `obj`: appended when the element repeats (an array),
/// set when it is absent; `false` when a non-repeating element is already there.
fn put_element(obj: &mut Map<String, Value>, key: &str, value: Value, repeats: bool) -> bool {
    match obj.get_mut(key) {
        Some(Value::Array(items)) if repeats => items.push(value),
        Some(_) => return false,
        None if repeats => {
            obj.insert(key.to_owned(), Value::Array(vec![value]));
        }
        None => {
            obj.insert(key.to_owned(), value);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mr() -> Value {
        json!({
            "resourceType": "MedicationRequest",
            "id": "mr1",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {"text": "Paracetamol"},
            "subject": {"reference": "Patient/p1"},
            "dosageInstruction": [{"text": "one daily"}, {"text": "two at night"}]
        })
    }

    fn op(parts: Value) -> Value {
        json!({"name": "operation", "part": parts})
    }

    fn patch(ops: Vec<Value>) -> Value {
        json!({"resourceType": "Parameters", "parameter": ops})
    }

    fn run(resource: &mut Value, ops: Vec<Value>) -> Result<(), PatchError> {
        let parsed = parse("MedicationRequest", &patch(ops))?;
        apply(resource, &parsed)
    }

    #[test]
    fn replace_add_delete() {
        let mut r = mr();
        run(
            &mut r,
            vec![
                op(json!([
                    {"name": "type", "valueCode": "replace"},
                    {"name": "path", "valueString": "MedicationRequest.status"},
                    {"name": "value", "valueCode": "completed"}
                ])),
                op(json!([
                    {"name": "type", "valueCode": "add"},
                    {"name": "path", "valueString": "MedicationRequest"},
                    {"name": "name", "valueString": "note"},
                    {"name": "value", "valueAnnotation": {"text": "stopped by GP"}}
                ])),
                op(json!([
                    {"name": "type", "valueCode": "replace"},
                    {"name": "path", "valueString": "MedicationRequest.dosageInstruction[1].text"},
                    {"name": "value", "valueString": "two"}
                ])),
                op(json!([
                    {"name": "type", "valueCode": "delete"},
                    {"name": "path", "valueString": "MedicationRequest.dosageInstruction[0]"}
                ])),
            ],
        )
        .expect("patch applies");
        assert_eq!(r["status"], "completed");
        assert_eq!(r["note"], json!([{"text": "stopped by GP"}]));
        assert_eq!(r["dosageInstruction"], json!([{"text": "two"}]));

        // Deleting the last item removes the list; deleting what is absent does nothing.
        run(
            &mut r,
            vec![
                op(json!([
                    {"name": "type", "valueCode": "delete"},
                    {"name": "path", "valueString": "MedicationRequest.dosageInstruction[0].text"}
                ])),
                op(json!([
                    {"name": "type", "valueCode": "delete"},
                    {"name": "path", "valueString": "MedicationRequest.reasonCode"}
                ])),
            ],
        )
        .expect("patch applies");
        assert!(r.get("dosageInstruction").is_none(), "{r}");
    }

    #[test]
    fn choices_backbones_insert_and_move() {
        let mut r = mr();
        run(
            &mut r,
            vec![
                op(json!([
                    {"name": "type", "valueCode": "replace"},
                    {"name": "path", "valueString": "MedicationRequest.medication"},
                    {"name": "value", "valueCodeableConcept": {"text": "Ibuprofen"}}
                ])),
                op(json!([
                    {"name": "type", "valueCode": "add"},
                    {"name": "path", "valueString": "MedicationRequest"},
                    {"name": "name", "valueString": "dispenseRequest"},
                    {"name": "value", "part": [
                        {"name": "numberOfRepeatsAllowed", "valueUnsignedInt": 2},
                        {"name": "quantity", "valueQuantity": {"value": 1E2, "unit": "tablet"}}
                    ]}
                ])),
                op(json!([
                    {"name": "type", "valueCode": "insert"},
                    {"name": "path", "valueString": "MedicationRequest.dosageInstruction"},
                    {"name": "index", "valueInteger": 0},
                    {"name": "value", "valueDosage": {"text": "first"}}
                ])),
                op(json!([
                    {"name": "type", "valueCode": "move"},
                    {"name": "path", "valueString": "MedicationRequest.dosageInstruction"},
                    {"name": "source", "valueInteger": 0},
                    {"name": "destination", "valueInteger": 2}
                ])),
            ],
        )
        .expect("patch applies");
        assert_eq!(r["medicationCodeableConcept"], json!({"text": "Ibuprofen"}));
        assert_eq!(r["dispenseRequest"]["numberOfRepeatsAllowed"], 2);
        assert_eq!(
            r["dosageInstruction"],
            json!([{"text": "one daily"}, {"text": "two at night"}, {"text": "first"}])
        );
        // Adding a choice by its base name picks the variant from the value's type.
        let mut r = mr();
        r.as_object_mut()
            .expect("object")
            .shift_remove("medicationCodeableConcept");
        run(
            &mut r,
            vec![op(json!([
                {"name": "type", "valueCode": "add"},
                {"name": "path", "valueString": "MedicationRequest"},
                {"name": "name", "valueString": "medication"},
                {"name": "value", "valueReference": {"reference": "Medication/m1"}}
            ]))],
        )
        .expect("patch applies");
        assert_eq!(r["medicationReference"]["reference"], "Medication/m1");
        run(
            &mut r,
            vec![op(json!([
                {"name": "type", "valueCode": "replace"},
                {"name": "path", "valueString": "MedicationRequest.medication"},
                {"name": "value", "valueCodeableConcept": {"text": "Ibuprofen"}}
            ]))],
        )
        .expect("patch applies");
        assert!(r.get("medicationReference").is_none(), "{r}");
        assert_eq!(r["medicationCodeableConcept"]["text"], "Ibuprofen");
    }

    #[test]
    fn errors() {
        let unsupported = |path: &str| {
            let mut r = mr();
            let e = run(
                &mut r,
                vec![op(json!([
                    {"name": "type", "valueCode": "delete"},
                    {"name": "path", "valueString": path}
                ]))],
            )
            .expect_err(path);
            assert_eq!(e, PatchError::UnsupportedPath(path.into()), "{path}");
        };
        for path in [
            "MedicationRequest.dosageInstruction.where(text = 'x')",
            "MedicationRequest.note.first()",
            "MedicationRequest.dosageInstruction[x]",
            "MedicationRequest.status | MedicationRequest.intent",
            "MedicationRequest[0]",
            "",
        ] {
            unsupported(path);
        }
        let mut r = mr();
        // Several matches for a one-element operation.
        let e = run(
            &mut r,
            vec![op(json!([
                {"name": "type", "valueCode": "replace"},
                {"name": "path", "valueString": "MedicationRequest.dosageInstruction.text"},
                {"name": "value", "valueString": "x"}
            ]))],
        )
        .expect_err("two matches");
        assert!(matches!(e, PatchError::NotApplicable(_)), "{e}");
        // Adding a second value to an element that does not repeat.
        let e = run(
            &mut r,
            vec![op(json!([
                {"name": "type", "valueCode": "add"},
                {"name": "path", "valueString": "MedicationRequest"},
                {"name": "name", "valueString": "status"},
                {"name": "value", "valueCode": "stopped"}
            ]))],
        )
        .expect_err("exists");
        assert!(e.to_string().contains("replace"), "{e}");
        // Not a patch at all.
        assert!(matches!(
            parse("MedicationRequest", &json!({"resourceType": "Parameters"})),
            Err(PatchError::Invalid(_))
        ));
        assert!(matches!(
            parse(
                "MedicationRequest",
                &patch(vec![op(json!([{"name": "type", "valueCode": "upsert"}]))])
            ),
            Err(PatchError::Invalid(_))
        ));
        assert!(matches!(
            parse(
                "MedicationRequest",
                &patch(vec![op(json!([
                    {"name": "type", "valueCode": "replace"},
                    {"name": "path", "valueString": "Patient.gender"},
                    {"name": "value", "valueCode": "male"}
                ]))])
            ),
            Err(PatchError::NotApplicable(_))
        ));
        // Insert past the end.
        let e = run(
            &mut r,
            vec![op(json!([
                {"name": "type", "valueCode": "insert"},
                {"name": "path", "valueString": "MedicationRequest.dosageInstruction"},
                {"name": "index", "valueInteger": 5},
                {"name": "value", "valueDosage": {"text": "x"}}
            ]))],
        )
        .expect_err("past the end");
        assert!(e.to_string().contains("past the end"), "{e}");
    }
}
