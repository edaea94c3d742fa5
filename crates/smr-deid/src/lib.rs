//! De-identification of FHIR R4 resources for research extracts (Bulk Data `$export` with
//! `deidentify=true`, issue 9). Pure: no I/O, no clock, no randomness — the caller supplies the
//! key, so the same key gives the same output.
//!
//! What one resource becomes ([`Deidentifier::resource`]):
//! - **Ids and references** are keyed pseudonyms: `Type/id` → `Type/<HMAC-SHA256(key, Type/id)>`,
//!   so a patient's MedicationRequests still point at that patient's pseudonymous Patient in
//!   another file, and nothing links to SMR's ids. A reference SMR cannot read as `Type/id`
//!   (a `urn:uuid:`, an external URL of no known type) is dropped; `#contained` ones are kept.
//! - **Identifiers**: an NHS number becomes one identifier in [`PSEUDONYM_SYSTEM`] whose value
//!   is the keyed pseudonym of the number; ODS organisation codes stay (organisations are not
//!   people); every other identifier of a resource is dropped (hospital numbers,
//!   prescription ids, GMC numbers all link back); a Reference's logical identifier (a
//!   Provenance agent named by user id) keeps its system with a keyed pseudonym as value.
//! - **Direct identifiers** dropped wherever they occur: `name` as a HumanName (organisation
//!   names are plain strings and stay), `telecom`, `photo`, `contact`, signatures, and
//!   addresses reduced to `use`, `type`, `country` and the postcode's outward code.
//! - **Dates**: `birthDate` and `deceasedDateTime` cut to year and month; other dates stay
//!   (prescribing dates are what research needs).
//! - **Free text** dropped: the narrative (`text.div`), `note`, string `text` (dosage text,
//!   CodeableConcept text), `comment`, `description`, `detail`, `patientInstruction`,
//!   `valueString`/`valueMarkdown`, a Reference's `display`, primitive extensions (`_x`),
//!   `meta.source`.
//! - **Belt and braces**: any remaining string that carries ten digits with a valid NHS number
//!   check digit (alone, or as `3 3 4` groups) is dropped, codes and URLs aside.
//! - Empty objects and arrays, and extensions left with no value, are removed (FHIR forbids
//!   them).
//!
//! Pseudonyms are written in the letters `a`–`p` (one per half-byte), never digits, so no
//! pseudonym can look like an NHS number or be mistaken for SMR's own ids.
//!
//! A de-identified resource may lack an element R4 requires when that element only held
//! identifying text (an Annotation's author, a Provenance agent named by display only): the
//! extract is for analysis, not for loading back as the record.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;
use smr_fhir::nhs_number::{self, NHS_NUMBER_SYSTEM};
use smr_fhir::resource_types::is_r4_resource_type;

/// The identifier system of the pseudonymous NHS number in a research extract.
pub const PSEUDONYM_SYSTEM: &str = "https://fhir.smr.nhs.uk/Id/research-pseudonym";
/// ODS organisation codes: kept (an organisation is not a person).
const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

/// Keys whose value is dropped whatever it holds: people's contact details and free text
/// structures.
const ALWAYS_DROP: &[&str] = &[
    "note",
    "telecom",
    "photo",
    "contact",
    "signature",
    "valueHumanName",
    "valueContactPoint",
    "valueAttachment",
    "valueSignature",
    "valueAnnotation",
];

/// Keys whose value is dropped when it is text (a string, or an array of strings).
const TEXT_DROP: &[&str] = &[
    "text",
    "comment",
    "description",
    "detail",
    "patientInstruction",
    "valueString",
    "valueMarkdown",
    "lotNumber",
    "alias",
];

/// Dates cut to year and month.
const COARSE_DATES: &[&str] = &["birthDate", "deceasedDateTime"];

/// Keys whose string values are codes or URLs, never free text: the NHS-number scrub leaves
/// them alone (a 10-digit SNOMED CT code may pass the Modulus 11 check by chance).
const CODE_KEYS: &[&str] = &["code", "system", "url", "version", "resourceType", "id"];

type HmacSha256 = Hmac<Sha256>;

/// De-identifies resources under one key. Build one per export.
#[derive(Clone)]
pub struct Deidentifier {
    key: [u8; 32],
}

impl std::fmt::Debug for Deidentifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key: with it, pseudonyms can be tested against guessed NHS numbers.
        f.debug_struct("Deidentifier").finish_non_exhaustive()
    }
}

impl Deidentifier {
    pub fn new(key: [u8; 32]) -> Self {
        Deidentifier { key }
    }

    /// The keyed pseudonym of `domain` + `value`: 128 bits of HMAC-SHA256 in the letters a–p.
    fn pseudonym(&self, domain: &str, value: &str) -> String {
        let Ok(mut mac) = HmacSha256::new_from_slice(&self.key) else {
            // HMAC takes keys of any length; this cannot happen with 32 bytes.
            unreachable!("HMAC accepts a 32-byte key")
        };
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(32);
        for byte in &digest[..16] {
            out.push(char::from(b'a' + (byte >> 4)));
            out.push(char::from(b'a' + (byte & 0x0f)));
        }
        out
    }

    /// The pseudonymous id of `res_type/id` (what every reference to it becomes).
    pub fn id(&self, res_type: &str, id: &str) -> String {
        self.pseudonym("id", &format!("{res_type}/{id}"))
    }

    /// The pseudonym of an NHS number.
    pub fn nhs_number(&self, nhs: &str) -> String {
        self.pseudonym("nhs-number", nhs)
    }

    /// `resource` de-identified (see the module documentation).
    pub fn resource(&self, resource: &Value) -> Value {
        let mut out = resource.clone();
        let res_type = out
            .get("resourceType")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(obj) = out.as_object_mut() {
            // The narrative is free text whatever its element type.
            obj.remove("text");
            if let (Some(ty), Some(Value::String(id))) = (&res_type, obj.get("id")) {
                let pseudo = self.id(ty, id);
                obj.insert("id".into(), Value::String(pseudo));
            }
            if let Some(Value::Object(meta)) = obj.get_mut("meta") {
                meta.remove("source");
            }
        }
        self.walk(&mut out);
        prune(&mut out);
        out
    }

    fn walk(&self, value: &mut Value) {
        match value {
            Value::Object(obj) => self.walk_object(obj),
            Value::Array(items) => items.iter_mut().for_each(|v| self.walk(v)),
            _ => {}
        }
    }

    fn walk_object(&self, obj: &mut Map<String, Value>) {
        let coding_like = obj.contains_key("system") || obj.contains_key("code");
        let keys: Vec<String> = obj.keys().cloned().collect();
        for key in keys {
            let drop = key.starts_with('_')
                || ALWAYS_DROP.contains(&key.as_str())
                || (TEXT_DROP.contains(&key.as_str()) && is_text(&obj[&key]))
                // A Coding's display is the code system's; a Reference's names a person.
                || (key == "display" && !coding_like)
                // HumanNames (Patient.name, Practitioner.name); an organisation's name is a string.
                || (key == "name" && !obj[&key].is_string());
            if drop {
                obj.remove(&key);
                continue;
            }
            let Some(value) = obj.get_mut(&key) else {
                continue;
            };
            match key.as_str() {
                "reference" => match value.as_str().and_then(|r| self.reference(r)) {
                    Some(r) => *value = Value::String(r),
                    None => {
                        obj.remove(&key);
                    }
                },
                "identifier" => self.identifiers(value),
                "address" | "valueAddress" => addresses(value),
                k if COARSE_DATES.contains(&k) => match value.as_str().and_then(year_month) {
                    Some(d) => *value = Value::String(d),
                    None => {
                        obj.remove(&key);
                    }
                },
                // A code or URL as text; `code` as a CodeableConcept is walked like anything else.
                k if CODE_KEYS.contains(&k) && value.is_string() => {}
                _ => {
                    if value.as_str().is_some_and(carries_nhs_number)
                        || value
                            .as_number()
                            .is_some_and(|n| carries_nhs_number(&n.to_string()))
                    {
                        obj.remove(&key);
                    } else {
                        self.walk(value);
                    }
                }
            }
        }
    }

    /// A reference rewritten to its pseudonymous target, or `None` to drop it.
    fn reference(&self, reference: &str) -> Option<String> {
        if reference.starts_with('#') {
            return Some(reference.to_owned());
        }
        let parts: Vec<&str> = reference.split('/').collect();
        let n = parts.len();
        let (ty, id) = if n >= 4 && parts[n - 2] == "_history" {
            (parts[n - 4], parts[n - 3])
        } else if n >= 2 {
            (parts[n - 2], parts[n - 1])
        } else {
            return None;
        };
        (is_r4_resource_type(ty) && !id.is_empty()).then(|| format!("{ty}/{}", self.id(ty, id)))
    }

    /// Identifiers (one object, or an array): NHS numbers pseudonymised, ODS codes kept,
    /// others dropped.
    fn identifiers(&self, value: &mut Value) {
        match value {
            Value::Array(items) => {
                let kept: Vec<Value> = items.iter().filter_map(|i| self.identifier(i)).collect();
                *items = kept;
            }
            // A Reference's logical identifier (a Provenance agent, a user named by SMR's
            // user system): pseudonymised in its own system rather than dropped, since the
            // reference may be the element's only content and R4 requires it.
            Value::Object(_) => {
                *value = self
                    .identifier(value)
                    .or_else(|| self.pseudonymous_identifier(value))
                    .unwrap_or(Value::Null);
            }
            _ => *value = Value::Null,
        }
    }

    fn identifier(&self, identifier: &Value) -> Option<Value> {
        let system = identifier.get("system").and_then(Value::as_str)?;
        let value = identifier.get("value").and_then(Value::as_str)?;
        match system {
            NHS_NUMBER_SYSTEM => Some(serde_json::json!({
                "system": PSEUDONYM_SYSTEM,
                "value": self.nhs_number(value.trim()),
            })),
            ODS_SYSTEM => Some(serde_json::json!({"system": ODS_SYSTEM, "value": value})),
            _ => None,
        }
    }
}

impl Deidentifier {
    /// `{system, value}` with the value replaced by its keyed pseudonym (system kept).
    fn pseudonymous_identifier(&self, identifier: &Value) -> Option<Value> {
        let system = identifier.get("system").and_then(Value::as_str)?;
        let value = identifier.get("value").and_then(Value::as_str)?;
        Some(serde_json::json!({
            "system": system,
            "value": self.pseudonym("identifier", &format!("{system}|{value}")),
        }))
    }
}

fn is_text(value: &Value) -> bool {
    match value {
        Value::String(_) => true,
        Value::Array(items) => items.iter().all(Value::is_string),
        _ => false,
    }
}

/// Addresses (one, or an array) reduced to use, type, country and the outward code.
fn addresses(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(address),
        other => address(other),
    }
}

fn address(value: &mut Value) {
    let Some(obj) = value.as_object_mut() else {
        *value = Value::Null;
        return;
    };
    let outward = obj
        .get("postalCode")
        .and_then(Value::as_str)
        .and_then(outward_code);
    obj.retain(|k, _| matches!(k.as_str(), "use" | "type" | "country"));
    if let Some(code) = outward {
        obj.insert("postalCode".into(), Value::String(code));
    }
}

/// The outward code of a UK postcode (`OX1 2JD` → `OX1`, `SW1A2AA` → `SW1A`): the postcode
/// without its three-character inward code. `None` when it does not look like a postcode.
pub fn outward_code(postcode: &str) -> Option<String> {
    let compact: String = postcode
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if !(5..=7).contains(&compact.len()) || !compact.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    let inward_ok = inward.starts_with(|c: char| c.is_ascii_digit())
        && inward[1..].chars().all(|c| c.is_ascii_alphabetic());
    let outward_ok = outward.starts_with(|c: char| c.is_ascii_alphabetic());
    (inward_ok && outward_ok).then(|| outward.to_owned())
}

/// A FHIR date or dateTime cut to `YYYY-MM` (or `YYYY` when that is all it says).
pub fn year_month(date: &str) -> Option<String> {
    let b = date.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    if !digits(0..4) {
        return None;
    }
    if b.len() >= 7 && b[4] == b'-' && digits(5..7) {
        Some(date[..7].to_owned())
    } else if b.len() == 4 {
        Some(date.to_owned())
    } else {
        None
    }
}

/// Whether `text` holds an NHS number: ten digits with a valid check digit, written together
/// or as groups separated by single spaces or hyphens (`943 476 5919`), not part of a longer
/// run of digits.
pub fn carries_nhs_number(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // One group: digits, possibly joined by single separators.
        let mut digits = Vec::new();
        while i < b.len() {
            if b[i].is_ascii_digit() {
                digits.push(b[i]);
                i += 1;
            } else if matches!(b[i], b' ' | b'-')
                && i + 1 < b.len()
                && b[i + 1].is_ascii_digit()
                && digits.len() < 10
            {
                i += 1;
            } else {
                break;
            }
        }
        if digits.len() == 10 && std::str::from_utf8(&digits).is_ok_and(nhs_number::is_valid) {
            return true;
        }
    }
    false
}

/// Removes nulls, empty strings, objects and arrays, and extensions left without a value.
fn prune(value: &mut Value) {
    match value {
        Value::Object(obj) => {
            obj.values_mut().for_each(prune);
            obj.retain(|_, v| !is_empty(v));
        }
        Value::Array(items) => {
            items.iter_mut().for_each(prune);
            items.retain(|v| !is_empty(v) && !is_bare_extension(v));
        }
        _ => {}
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// An extension whose value was dropped: only its `url` (and id) left.
fn is_bare_extension(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|o| o.contains_key("url") && o.keys().all(|k| k == "url" || k == "id"))
}

#[cfg(test)]
mod tests;
