//! Structural validation of incoming resources, run on every write.
//!
//! One pass over the JSON, driven by element tables generated from the official R4 JSON Schema
//! plus a hand-written file of minimum cardinalities and required bindings (see
//! [`tables`]). It checks, for the served resource types and every datatype and backbone
//! element they use:
//!
//! - element names (unknown → `structure`), JSON shapes (array vs single, object vs primitive →
//!   `structure`), no empty objects/arrays/strings and no stray `null`s;
//! - at most one variant of each choice element (`value[x]`);
//! - `_x` primitive-extension siblings only where the primitive `x` exists;
//! - primitive formats (`value`), minimum cardinality (`required`), REQUIRED value-set bindings
//!   (`code-invalid`);
//! - `Reference.reference` syntax and `#local` resolution against `contained`;
//! - narrative XHTML (`text.div`, also in contained resources): well-formed, XHTML namespace,
//!   only the elements and attributes R4 allows, no active content ([`narrative`]);
//! - NHS numbers (Modulus 11) and SNOMED CT / dm+d codes (SCTID syntax with Verhoeff check).
//!
//! Every issue carries a FHIRPath `expression` to the offending element. The walk never clones
//! the resource and keeps one path buffer; tables are built once on first use.

pub mod narrative;
mod primitives;
mod tables;

use crate::nhs_number;
use crate::resource_types;
use crate::{Issue, IssueCode};
use primitives::PrimError;
use serde_json::{Map, Value};
use std::fmt::Write as _;
use tables::{CcBinding, Definition, Element, Special, TABLES, Tables, Ty};

/// Validates a resource of a served type. `Err` carries every issue found, each with an
/// `expression` pointing at the bad element.
pub fn validate_resource(resource: &Value) -> Result<(), Vec<Issue>> {
    let mut v = Validator {
        t: &TABLES,
        issues: Vec::new(),
        path: String::with_capacity(128),
        contained_ids: Vec::new(),
    };
    v.root(resource);
    if v.issues.is_empty() {
        Ok(())
    } else {
        Err(v.issues)
    }
}

/// An element as FHIRPath Patch writes it: its JSON key and whether it repeats (a JSON array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementKey {
    pub key: String,
    pub repeats: bool,
}

/// The element `name` of the element reached from a `res_type` resource through `parents`
/// (JSON keys, e.g. `["dosageInstruction", "timing"]`). A choice (`medication` for
/// `medication[x]`) needs the value's type (`CodeableConcept`) to pick its variant. `None` when
/// the tables do not know the element (the write's validation then names it).
pub fn element_key(
    res_type: &str,
    parents: &[&str],
    name: &str,
    value_type: Option<&str>,
) -> Option<ElementKey> {
    let t: &Tables = &TABLES;
    let mut def = t.def(res_type).filter(|d| d.is_resource)?;
    for p in parents {
        match def.element(p)?.ty {
            Ty::Complex(d) => def = &t.defs[d],
            _ => return None,
        }
    }
    if let Some(el) = def.element(name) {
        return Some(ElementKey {
            key: el.name.clone(),
            repeats: el.array,
        });
    }
    let ty = value_type?;
    let mut chars = ty.chars();
    let first = chars.next()?;
    let variant = format!("{name}{}{}", first.to_ascii_uppercase(), chars.as_str());
    let choice = def.choices.iter().find(|c| c.base == name)?;
    choice
        .members
        .iter()
        .map(|&m| &def.elements[m])
        .find(|el| el.name == variant)
        .map(|el| ElementKey {
            key: el.name.clone(),
            repeats: el.array,
        })
}

struct Validator<'t> {
    t: &'t Tables,
    issues: Vec<Issue>,
    /// FHIRPath of the element being checked; segments are pushed and truncated in place.
    path: String,
    /// Ids of the root resource's `contained` resources, for `#id` references.
    /// Owned: a Bundle entry's resource swaps in its own while it is checked.
    contained_ids: Vec<String>,
}

impl<'t> Validator<'t> {
    fn issue(&mut self, code: IssueCode, diagnostics: String) {
        self.issues
            .push(Issue::error(code, diagnostics).at(self.path.clone()));
    }

    /// Reports at `self.path` + `.child` without disturbing the path.
    fn issue_at_child(&mut self, child: &str, code: IssueCode, diagnostics: String) {
        let len = self.path.len();
        self.path.push('.');
        self.path.push_str(child);
        self.issue(code, diagnostics);
        self.path.truncate(len);
    }

    fn root(&mut self, resource: &Value) {
        let Value::Object(obj) = resource else {
            self.issues.push(Issue::error(
                IssueCode::Structure,
                "a resource must be a JSON object",
            ));
            return;
        };
        let Some(rt) = obj.get("resourceType") else {
            self.issues
                .push(Issue::error(IssueCode::Required, "resourceType is missing"));
            return;
        };
        let Some(rt) = rt.as_str() else {
            self.issues.push(
                Issue::error(IssueCode::Structure, "resourceType must be a JSON string")
                    .at("resourceType"),
            );
            return;
        };
        let def = match self.t.def(rt) {
            // Composition has tables (checked inside stored documents) but is not served.
            Some(d) if d.is_resource && resource_types::is_served(rt) => d,
            _ => {
                let why = if resource_types::is_r4_resource_type(rt) {
                    format!("resource type '{rt}' is not served by this server")
                } else {
                    format!("'{rt}' is not an R4 resource type")
                };
                self.issues
                    .push(Issue::error(IssueCode::NotSupported, why).at("resourceType"));
                return;
            }
        };
        if let Some(Value::Array(contained)) = obj.get("contained") {
            self.contained_ids = contained
                .iter()
                .filter_map(|c| c.get("id").and_then(Value::as_str))
                .map(str::to_owned)
                .collect();
        }
        self.path.push_str(rt);
        self.object(obj, def);
        if rt == "Bundle" {
            self.issues.extend(crate::stored_bundle::check(resource));
        }
    }

    fn object(&mut self, obj: &Map<String, Value>, def: &'t Definition) {
        if obj.is_empty() {
            self.issue(
                IssueCode::Structure,
                "empty object: FHIR JSON does not allow elements without content".into(),
            );
            return;
        }
        // One bit per choice group of this definition (the loader caps groups at 64).
        let mut choices_seen: u64 = 0;
        for (key, value) in obj {
            if def.is_resource && key == "resourceType" {
                continue; // selected `def`; contained resources are checked by `contained`
            }
            let (is_ext, name) = match key.strip_prefix('_') {
                Some(n) => (true, n),
                None => (false, key.as_str()),
            };
            let el = match def.element(name) {
                Some(el) if !is_ext || matches!(el.ty, Ty::Prim(_)) => el,
                _ => {
                    self.issue_at_child(
                        key,
                        IssueCode::Structure,
                        format!("unknown element '{key}': not part of {}", def.name),
                    );
                    continue;
                }
            };
            if let Some(ci) = el.choice {
                // `valueString` with `_valueString` is one variant, not two.
                if !is_ext || !obj.contains_key(name) {
                    let bit = 1u64 << ci;
                    if choices_seen & bit != 0 {
                        let base = &def.choices[ci].base;
                        self.issue_at_child(
                            key,
                            IssueCode::Structure,
                            format!(
                                "only one variant of {base}[x] is allowed, but '{key}' is a second one"
                            ),
                        );
                    }
                    choices_seen |= bit;
                }
            }
            let len = self.path.len();
            self.path.push('.');
            self.path.push_str(key);
            if is_ext {
                self.primitive_extension(el, value, obj);
            } else {
                self.value(el, value, obj);
            }
            self.path.truncate(len);
        }

        for &i in &def.required {
            let el = &def.elements[i];
            let present = obj.contains_key(&el.name)
                || (matches!(el.ty, Ty::Prim(_)) && obj.contains_key(&el.ext_name));
            if !present {
                self.issue_at_child(
                    &el.name,
                    IssueCode::Required,
                    format!(
                        "missing required element '{}' (minimum cardinality 1)",
                        el.name
                    ),
                );
            }
        }
        for (ci, c) in def.choices.iter().enumerate() {
            if c.min1 && choices_seen & (1u64 << ci) == 0 {
                self.issue_at_child(
                    &c.base,
                    IssueCode::Required,
                    format!(
                        "missing required element '{}[x]' (minimum cardinality 1)",
                        c.base
                    ),
                );
            }
        }

        match def.special {
            Special::None => {}
            Special::Reference => self.reference(obj),
            Special::Identifier => self.identifier(obj),
            Special::Coding => self.coding(obj),
        }
    }

    /// An element's JSON value: an array of items or a single item, per the table.
    fn value(&mut self, el: &'t Element, value: &Value, parent: &Map<String, Value>) {
        if value.is_null() {
            self.issue(
                IssueCode::Structure,
                "null is not allowed: omit the element".into(),
            );
            return;
        }
        if !el.array {
            if value.is_array() {
                self.issue(
                    IssueCode::Structure,
                    format!("'{}' takes a single value, but an array was given", el.name),
                );
            } else {
                self.single(el, value);
            }
            return;
        }
        let Value::Array(items) = value else {
            self.issue(
                IssueCode::Structure,
                format!("'{}' repeats and must be a JSON array", el.name),
            );
            return;
        };
        if items.is_empty() {
            self.issue(
                IssueCode::Structure,
                "empty array: omit the element instead".into(),
            );
            return;
        }
        let is_prim = matches!(el.ty, Ty::Prim(_));
        for (i, item) in items.iter().enumerate() {
            let len = self.path.len();
            let _ = write!(self.path, "[{i}]");
            if item.is_null() {
                // A null keeps primitive and `_x` arrays aligned when only the extension exists.
                if !(is_prim && has_item(parent, &el.ext_name, i)) {
                    self.issue(
                        IssueCode::Structure,
                        "null is only allowed in a primitive array aligned with a non-null `_` extension"
                            .into(),
                    );
                }
            } else {
                self.single(el, item);
            }
            self.path.truncate(len);
        }
    }

    fn single(&mut self, el: &'t Element, value: &Value) {
        match el.ty {
            Ty::Prim(p) => match primitives::check(p, value) {
                Err(PrimError::Type(expected)) => self.issue(
                    IssueCode::Structure,
                    format!("'{}' is a {} and must be {expected}", el.name, p.name()),
                ),
                Err(PrimError::Format(msg)) => self.issue(IssueCode::Value, msg),
                Ok(()) => {
                    if let (Some((codes, vs)), Some(code)) = (&el.codes, value.as_str())
                        && !codes.iter().any(|c| c == code)
                    {
                        self.issue(
                            IssueCode::CodeInvalid,
                            format!(
                                "'{code}' is not in the required value set {vs} ({})",
                                codes.join(" | ")
                            ),
                        );
                    }
                }
            },
            Ty::Complex(d) => {
                let Value::Object(m) = value else {
                    let def = &self.t.defs[d];
                    self.issue(
                        IssueCode::Structure,
                        format!("'{}' is a {} and must be a JSON object", el.name, def.name),
                    );
                    return;
                };
                self.object(m, &self.t.defs[d]);
                if let Some(b) = &el.cc_binding {
                    self.cc_binding(m, b);
                }
            }
            Ty::Xhtml => match value {
                Value::String(s) if s.trim().is_empty() => {
                    self.issue(IssueCode::Value, "narrative div must not be empty".into())
                }
                Value::String(s) => self.narrative(s),
                _ => self.issue(IssueCode::Structure, "xhtml must be a JSON string".into()),
            },
            Ty::Resource if el.name == "resource" => self.entry_resource(value),
            Ty::Resource => self.contained(value),
        }
    }

    /// `_x`: an `Element` (id, extension) or, for repeating primitives, an array of them with
    /// `null` where only the primitive has a value.
    fn primitive_extension(&mut self, el: &'t Element, value: &Value, parent: &Map<String, Value>) {
        let element_def = &self.t.defs[self.t.element_def];
        if !el.array {
            match value {
                Value::Object(m) => self.object(m, element_def),
                _ => self.issue(
                    IssueCode::Structure,
                    format!("'_{}' must be a JSON object (id, extension)", el.name),
                ),
            }
            return;
        }
        let Value::Array(items) = value else {
            self.issue(
                IssueCode::Structure,
                format!("'_{}' must be a JSON array", el.name),
            );
            return;
        };
        if items.is_empty() {
            self.issue(
                IssueCode::Structure,
                "empty array: omit the element instead".into(),
            );
            return;
        }
        if let Some(Value::Array(values)) = parent.get(&el.name)
            && values.len() != items.len()
        {
            self.issue(
                IssueCode::Structure,
                format!("'_{0}' must have as many items as '{0}'", el.name),
            );
        }
        for (i, item) in items.iter().enumerate() {
            let len = self.path.len();
            let _ = write!(self.path, "[{i}]");
            match item {
                Value::Null if has_item(parent, &el.name, i) => {}
                Value::Object(m) => self.object(m, element_def),
                _ => self.issue(
                    IssueCode::Structure,
                    "must be an object (id, extension), or null where the primitive has a value"
                        .into(),
                ),
            }
            self.path.truncate(len);
        }
    }

    /// A `contained` entry: full validation for served types, otherwise only its envelope.
    fn contained(&mut self, value: &Value) {
        let Value::Object(m) = value else {
            self.issue(
                IssueCode::Structure,
                "a contained resource must be a JSON object".into(),
            );
            return;
        };
        let Some(rt) = m.get("resourceType").and_then(Value::as_str) else {
            self.issue(
                IssueCode::Required,
                "a contained resource needs a resourceType string".into(),
            );
            return;
        };
        if !resource_types::is_r4_resource_type(rt) {
            self.issue_at_child(
                "resourceType",
                IssueCode::Invalid,
                format!("'{rt}' is not an R4 resource type"),
            );
            return;
        }
        if let Some(def) = self.t.def(rt).filter(|d| d.is_resource) {
            if m.contains_key("contained") {
                self.issue_at_child(
                    "contained",
                    IssueCode::Invariant,
                    "dom-2: a contained resource must not contain resources".into(),
                );
            }
            self.object(m, def);
        } else if let Some(Value::String(div)) = m.get("text").and_then(|t| t.get("div")) {
            // Only the envelope of an unserved type is checked, but its narrative is served
            // back inside the container and rendered like any other.
            let len = self.path.len();
            self.path.push_str(".text.div");
            self.narrative(div);
            self.path.truncate(len);
        }
    }

    /// `Bundle.entry.resource`: a resource in its own right, checked as a root resource of its
    /// type would be (its own `contained` for `#id` references); unserved types only by
    /// envelope and narrative, as contained ones.
    fn entry_resource(&mut self, value: &Value) {
        let def = value
            .get("resourceType")
            .and_then(Value::as_str)
            .and_then(|rt| self.t.def(rt))
            .filter(|d| d.is_resource);
        let (Some(def), Value::Object(m)) = (def, value) else {
            self.contained(value);
            return;
        };
        let outer = std::mem::take(&mut self.contained_ids);
        if let Some(Value::Array(contained)) = m.get("contained") {
            self.contained_ids = contained
                .iter()
                .filter_map(|c| c.get("id").and_then(Value::as_str))
                .map(str::to_owned)
                .collect();
        }
        self.object(m, def);
        self.contained_ids = outer;
    }

    /// `Narrative.div`: XHTML per R4's txt-1/txt-2 (see [`narrative`]).
    fn narrative(&mut self, div: &str) {
        if let Err(problem) = narrative::check(div) {
            let code = if problem.malformed {
                IssueCode::Structure
            } else {
                IssueCode::Invalid
            };
            self.issue(code, problem.message);
        }
    }

    fn reference(&mut self, obj: &Map<String, Value>) {
        let Some(Value::String(r)) = obj.get("reference") else {
            return;
        };
        if r.is_empty() {
            return; // already reported as an empty string
        }
        if let Err(why) = check_reference(r, &self.contained_ids) {
            self.issue_at_child("reference", IssueCode::Invalid, why);
        }
    }

    fn identifier(&mut self, obj: &Map<String, Value>) {
        let system = obj.get("system").and_then(Value::as_str);
        if system != Some(nhs_number::NHS_NUMBER_SYSTEM) {
            return;
        }
        if let Some(value) = obj.get("value").and_then(Value::as_str)
            && !nhs_number::is_valid(value)
        {
            self.issue_at_child(
                "value",
                IssueCode::Value,
                format!(
                    "'{value}' is not a valid NHS number: it must be 10 digits whose last digit \
                     is the Modulus 11 check digit"
                ),
            );
        }
    }

    fn coding(&mut self, obj: &Map<String, Value>) {
        let system = match obj.get("system").and_then(Value::as_str) {
            Some(s @ (crate::sctid::SNOMED_SYSTEM | crate::sctid::DMD_SYSTEM)) => s,
            _ => return,
        };
        let Some(code) = obj.get("code").and_then(Value::as_str) else {
            return;
        };
        if code.is_empty() {
            return; // already reported as an empty string
        }
        if let Some(problem) = crate::sctid::sctid_problem(code) {
            self.issue_at_child(
                "code",
                IssueCode::CodeInvalid,
                format!("'{code}' is not a valid SNOMED CT identifier for {system}: {problem}"),
            );
        }
    }

    fn cc_binding(&mut self, obj: &Map<String, Value>, b: &'t CcBinding) {
        let Some(Value::Array(codings)) = obj.get("coding") else {
            return;
        };
        for (i, coding) in codings.iter().enumerate() {
            if coding.get("system").and_then(Value::as_str) != Some(b.system.as_str()) {
                continue;
            }
            let Some(code) = coding.get("code").and_then(Value::as_str) else {
                continue;
            };
            if !b.codes.iter().any(|c| c == code) {
                let len = self.path.len();
                let _ = write!(self.path, ".coding[{i}].code");
                self.issue(
                    IssueCode::CodeInvalid,
                    format!(
                        "'{code}' is not in the required value set {} ({})",
                        b.value_set,
                        b.codes.join(" | ")
                    ),
                );
                self.path.truncate(len);
            }
        }
    }
}

/// True when `parent[key]` is an array with a non-null item at `i`.
fn has_item(parent: &Map<String, Value>, key: &str, i: usize) -> bool {
    matches!(parent.get(key), Some(Value::Array(a)) if a.get(i).is_some_and(|v| !v.is_null()))
}

/// `Reference.reference` forms SMR accepts (http://hl7.org/fhir/R4/references.html#literal):
/// relative `Type/id(/_history/vid)`, `#id` naming a contained resource (`#` alone is the
/// container), and absolute URIs. R4: "the reference may be ... an absolute URL" and, outside
/// a Bundle, "a literal reference may also be ... any absolute URI" (`urn:uuid:`/`urn:oid:` need
/// only resolve inside a Bundle), so `urn:foobar:patient:1` is a valid reference. `urn:uuid:`
/// and `urn:oid:` must be well formed, a URN needs a namespace and a name (RFC 8141), and an
/// http(s) URL something after its scheme. Whether a reference may name a record's patient is
/// the store's question (only `Patient/<id>` can).
fn check_reference(r: &str, contained_ids: &[String]) -> Result<(), String> {
    if r.chars().any(char::is_whitespace) {
        return Err(format!("reference '{r}' must not contain whitespace"));
    }
    if let Some(local) = r.strip_prefix('#') {
        return if local.is_empty() || contained_ids.iter().any(|c| c == local) {
            Ok(())
        } else {
            Err(format!(
                "reference '{r}' does not match the id of any contained resource"
            ))
        };
    }
    if let Some(uuid) = r.strip_prefix("urn:uuid:") {
        // RFC 4122: hex digits are case-insensitive on input.
        return if primitives::is_uuid(uuid, true) {
            Ok(())
        } else {
            Err(format!("reference '{r}' is not a valid urn:uuid"))
        };
    }
    if r.starts_with("urn:oid:") {
        return if primitives::is_oid(r) {
            Ok(())
        } else {
            Err(format!("reference '{r}' is not a valid urn:oid"))
        };
    }
    for scheme in ["http://", "https://"] {
        if let Some(rest) = r.strip_prefix(scheme) {
            return if rest.is_empty() {
                Err(format!("reference '{r}' is not a complete URL"))
            } else {
                Ok(())
            };
        }
    }
    if let Some((scheme, rest)) = absolute_uri(r) {
        return if rest.is_empty() {
            Err(format!(
                "reference '{r}' has nothing after its scheme '{scheme}:'"
            ))
        } else if scheme.eq_ignore_ascii_case("urn")
            && !rest
                .split_once(':')
                .is_some_and(|(nid, nss)| !nid.is_empty() && !nss.is_empty())
        {
            Err(format!(
                "reference '{r}' is not a URN: it must be urn:<namespace>:<name> (RFC 8141)"
            ))
        } else {
            Ok(())
        };
    }
    if r.contains('?') {
        return Err(format!(
            "reference '{r}' is a conditional reference: these are only allowed inside a \
             transaction Bundle and must be resolved to Type/id before the resource is stored"
        ));
    }
    let mut parts = r.split('/');
    let ok = match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some(ty), Some(id), None, None, None) => {
            resource_types::is_r4_resource_type(ty) && primitives::is_id(id)
        }
        (Some(ty), Some(id), Some("_history"), Some(vid), None) => {
            resource_types::is_r4_resource_type(ty)
                && primitives::is_id(id)
                && primitives::is_id(vid)
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "reference '{r}' must be Type/id with an R4 resource type (optionally \
             /_history/version), an absolute URI (such as an http(s) URL or a URN) or \
             #contained-id"
        ))
    }
}

/// `scheme:rest` when `r` starts with an RFC 3986 scheme (§3.1: a letter, then letters,
/// digits, `+`, `-`, `.`). A relative reference never does: `Type/id` has no colon before its
/// first slash, and a conditional reference has `?` before any colon.
fn absolute_uri(r: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = r.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn issues(v: &Value) -> Vec<(IssueCode, String)> {
        match validate_resource(v) {
            Ok(()) => Vec::new(),
            Err(is) => is
                .into_iter()
                .map(|i| (i.code, i.expression.unwrap_or_default()))
                .collect(),
        }
    }

    fn mr() -> Value {
        json!({
            "resourceType": "MedicationRequest",
            "id": "mr1",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "322236009"}]},
            "subject": {"reference": "Patient/p1"}
        })
    }

    #[test]
    fn minimal_medication_request_is_valid() {
        assert_eq!(issues(&mr()), vec![]);
    }

    #[test]
    fn references() {
        let ids = ["med1".to_owned()];
        for ok in [
            "Patient/p1",
            "Group/g.1",
            "Patient/p1/_history/2",
            "https://example.org/fhir/Patient/1",
            "urn:uuid:a11a6118-634e-4e7e-a01b-cc2addb1b993",
            "urn:oid:2.16.840.1.113883.2.1.4.1",
            "#med1",
            "#",
            "urn:foobar:patient:1",
            "urn:ietf:rfc:3986",
            "URN:ISBN:0451450523",
            "ftp://example.org/x",
            "tag:example.org,2026:patient-1",
        ] {
            assert_eq!(check_reference(ok, &ids), Ok(()), "{ok}");
        }
        for bad in [
            "Patient",
            "patient/p1",
            "Patient/p_1",
            "Patient/p1/_history",
            "Patient?identifier=x|1",
            "#med2",
            "urn:uuid:nope",
            "Patient/ p1",
            "https://",
            "urn:",
            "urn:foobar",
            "urn::x",
            "urn:foobar:",
            "mailto:",
            ":x",
            "1abc:x",
            "urn:foobar:patient 1",
            "",
        ] {
            assert!(check_reference(bad, &ids).is_err(), "{bad}");
        }
    }

    #[test]
    fn primitive_extensions_and_aligned_nulls() {
        let mut r = mr();
        r["_status"] = json!({"extension": [{"url": "http://example.org/x", "valueString": "y"}]});
        r["dosageInstruction"] = json!([{"text": "one daily", "_text": {"id": "t1"}}]);
        assert_eq!(issues(&r), vec![]);

        let p = json!({
            "resourceType": "Patient",
            "name": [{"given": ["Ann", null], "_given": [null, {"extension": [{"url": "http://example.org/x", "valueCode": "a"}]}]}]
        });
        assert_eq!(issues(&p), vec![]);
        let bad = json!({"resourceType": "Patient", "name": [{"given": ["Ann", null]}]});
        assert_eq!(
            issues(&bad),
            vec![(IssueCode::Structure, "Patient.name[0].given[1]".into())]
        );
        // `_subject` is not allowed: subject is not a primitive.
        let mut r = mr();
        r["_subject"] = json!({"id": "x"});
        assert_eq!(
            issues(&r),
            vec![(IssueCode::Structure, "MedicationRequest._subject".into())]
        );
    }

    #[test]
    fn status_only_as_extension_satisfies_min_cardinality() {
        let mut r = mr();
        let obj = r.as_object_mut().expect("object");
        obj.shift_remove("status");
        obj.insert(
            "_status".into(),
            json!({"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}),
        );
        assert_eq!(issues(&r), vec![]);
    }

    #[test]
    fn codeable_concept_required_binding() {
        let c = json!({
            "resourceType": "Condition",
            "subject": {"reference": "Patient/p1"},
            "clinicalStatus": {"coding": [
                {"system": "http://example.org/other", "code": "whatever"},
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "done"}
            ]}
        });
        assert_eq!(
            issues(&c),
            vec![(
                IssueCode::CodeInvalid,
                "Condition.clinicalStatus.coding[1].code".into()
            )]
        );
    }

    #[test]
    fn bundle_entries_are_checked_as_resources_of_their_own() {
        let mut bad = mr();
        bad["status"] = json!("bogus");
        let mut with_contained = mr();
        with_contained["contained"] = json!([{"resourceType": "Medication", "id": "m1"}]);
        with_contained["medicationReference"] = json!({"reference": "#m1"});
        with_contained
            .as_object_mut()
            .map(|o| o.remove("medicationCodeableConcept"));
        let mut dangling = mr();
        dangling["note"] = json!([{"authorReference": {"reference": "#m1"}, "text": "x"}]);
        let b = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": mr()}, {"resource": bad}, {"resource": with_contained},
            {"resource": dangling}]});
        assert_eq!(
            issues(&b),
            vec![
                (
                    IssueCode::CodeInvalid,
                    "Bundle.entry[1].resource.status".into()
                ),
                // `#m1` names a resource contained by entry 2, not by entry 3.
                (
                    IssueCode::Invalid,
                    "Bundle.entry[3].resource.note[0].authorReference.reference".into()
                ),
            ]
        );
    }

    #[test]
    fn contained_resources() {
        let mut r = mr();
        r["contained"] = json!([
            {"resourceType": "Medication", "id": "med1", "status": "bogus"},
            {"resourceType": "Binary", "id": "b1", "anything": "goes"},
            {"id": "x"}
        ]);
        r["medicationReference"] = json!({"reference": "#med1"});
        r.as_object_mut()
            .expect("object")
            .shift_remove("medicationCodeableConcept");
        assert_eq!(
            issues(&r),
            vec![
                (
                    IssueCode::CodeInvalid,
                    "MedicationRequest.contained[0].status".into()
                ),
                (IssueCode::Required, "MedicationRequest.contained[2]".into()),
            ]
        );
    }

    #[test]
    fn narrative_is_checked_in_resources_and_contained_resources() {
        let ns = narrative::XHTML_NS;
        let mut r = mr();
        r["text"] = json!({"status": "generated", "div": format!("<div xmlns=\"{ns}\"><script>x</script></div>")});
        r["contained"] = json!([
            {"resourceType": "Medication", "id": "med1", "text": {"status": "generated",
                "div": format!("<div xmlns=\"{ns}\"><img src=\"x\" onerror=\"alert(1)\"/></div>")}},
            {"resourceType": "Substance", "id": "s1", "text": {"status": "generated",
                "div": "<div>no namespace</div>"}},
            {"resourceType": "Medication", "id": "med2", "text": {"status": "generated",
                "div": format!("<div xmlns=\"{ns}\"><p>unclosed</div>")}}
        ]);
        assert_eq!(
            issues(&r),
            vec![
                (IssueCode::Invalid, "MedicationRequest.text.div".into()),
                (
                    IssueCode::Invalid,
                    "MedicationRequest.contained[0].text.div".into()
                ),
                (
                    IssueCode::Invalid,
                    "MedicationRequest.contained[1].text.div".into()
                ),
                (
                    IssueCode::Structure,
                    "MedicationRequest.contained[2].text.div".into()
                ),
            ]
        );
        let mut ok = mr();
        ok["text"] = json!({"status": "generated", "div": format!(
            "<div xmlns=\"{ns}\"><table><tr><td><a href=\"https://example.org\">x</a></td></tr></table><img src=\"#p\"/></div>"
        )});
        assert_eq!(issues(&ok), vec![]);
    }

    #[test]
    fn non_resources_and_unserved_types() {
        assert_eq!(
            issues(&json!([1])),
            vec![(IssueCode::Structure, String::new())]
        );
        assert_eq!(
            issues(&json!({"id": "x"})),
            vec![(IssueCode::Required, String::new())]
        );
        assert_eq!(
            issues(&json!({"resourceType": "Composition"})),
            vec![(IssueCode::NotSupported, "resourceType".into())]
        );
    }

    #[test]
    fn wrong_json_types() {
        let mut r = mr();
        r["doNotPerform"] = json!("true");
        r["dispenseRequest"] = json!({"numberOfRepeatsAllowed": -1, "quantity": {"value": "5"}});
        r["note"] = json!({"text": "x"});
        r["subject"] = json!("Patient/p1");
        assert_eq!(
            issues(&r),
            vec![
                (IssueCode::Structure, "MedicationRequest.subject".into()),
                (
                    IssueCode::Structure,
                    "MedicationRequest.doNotPerform".into()
                ),
                (
                    IssueCode::Value,
                    "MedicationRequest.dispenseRequest.numberOfRepeatsAllowed".into()
                ),
                (
                    IssueCode::Structure,
                    "MedicationRequest.dispenseRequest.quantity.value".into()
                ),
                (IssueCode::Structure, "MedicationRequest.note".into()),
            ]
        );
    }
}
