//! NHS Electronic Prescription Service (EPS) FHIR messages, read into what SMR writes (pure:
//! no I/O, no async).
//!
//! An EPS message is a `message` Bundle whose first entry is a `MessageHeader` naming the event
//! (`https://fhir.nhs.uk/CodeSystem/message-event`): `prescription-order`,
//! `prescription-order-update` (cancellations) or `dispense-notification`. [`plan`] reads one
//! into a [`Plan`]: the one patient it is about (by NHS number), the resources to store with
//! the search that finds an earlier copy (so re-sending a message adds nothing), the
//! cancellations, and the dispenses with the order line each was made against. `smr-app`
//! (`eps.rs`) resolves what needs the store — the patient, the orders cancelled or dispensed
//! against — and writes the plan as one transaction; [`response`] builds the answer.
//!
//! Layout:
//! - this file: the plan's types, [`plan`], the identifier systems;
//! - `header`: the `MessageHeader` ([`Header`], [`read_header`]);
//! - `contain`: entries SMR does not store on their own, copied into the resources that
//!   refer to them;
//! - `response`: the response message.
//!
//! Invariants: a plan never refers to a `urn:uuid:` of an entry it does not write, contain or
//! name as the patient; the same message gives the same plan (keys derive from content only).

mod contain;
mod header;
mod response;

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};
use smr_fhir::nhs_number::NHS_NUMBER_SYSTEM;
use smr_fhir::references;

pub use header::{Event, Header, read_header};
pub use response::{ResponseCode, response};

/// EPS message events.
pub const MESSAGE_EVENT_SYSTEM: &str = "https://fhir.nhs.uk/CodeSystem/message-event";
/// The prescription's short-form id (`MedicationRequest.groupIdentifier`).
pub const PRESCRIPTION_ORDER_NUMBER: &str = "https://fhir.nhs.uk/Id/prescription-order-number";
/// One line item of a prescription (`MedicationRequest.identifier`).
pub const ORDER_ITEM_NUMBER: &str = "https://fhir.nhs.uk/Id/prescription-order-item-number";
/// One line item of a dispense (`MedicationDispense.identifier`); several dispenses of one
/// line (a split supply) share it, so it does not identify a dispense.
pub const DISPENSE_ITEM_NUMBER: &str = "https://fhir.nhs.uk/Id/prescription-dispense-item-number";
pub const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
pub const SDS_USER_ID: &str = "https://fhir.nhs.uk/Id/sds-user-id";
pub const SDS_ROLE_PROFILE_ID: &str = "https://fhir.nhs.uk/Id/sds-role-profile-id";
/// The system of the identifier SMR gives a dispense: `urn:uuid:` of its content, so the same
/// dispense sent again is found, and two different dispenses never are (RFC 3986 URI).
pub const URI_SYSTEM: &str = "urn:ietf:rfc:3986";

/// Types an EPS message carries that SMR can keep in its shared directory, matched by an
/// identifier. Whether the caller may write them is decided by the caller of [`plan`].
pub const DIRECTORY_TYPES: &[&str] = &["Organization", "Practitioner", "PractitionerRole"];

/// Why a Bundle cannot be read as an EPS message (a client error: 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("$process-message takes a Bundle, got '{0}'")]
    NotABundle(String),
    #[error("Bundle.type must be 'message', got '{0}'")]
    NotAMessage(String),
    #[error("the first entry of a message Bundle must be a MessageHeader")]
    NoHeader,
    #[error(
        "MessageHeader.eventCoding must be prescription-order, prescription-order-update or \
         dispense-notification of https://fhir.nhs.uk/CodeSystem/message-event, got '{0}'"
    )]
    UnknownEvent(String),
    #[error("Bundle.entry[{0}]: {1}")]
    Entry(usize, String),
    #[error("the message names no patient by NHS number")]
    NoPatient,
    #[error("the message names more than one patient: NHS numbers {0} and {1}")]
    ManyPatients(String, String),
}

/// One prescription line: the prescription's short-form id and the line item's id. Line item
/// ids are reused across prescriptions, so only the pair (within one patient) names a line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LineItem {
    pub prescription: String,
    pub item: String,
}

impl LineItem {
    /// The search criteria (before the patient is added) of the stored MedicationRequest.
    pub fn criteria(&self) -> Vec<(String, String)> {
        vec![
            (
                "identifier".into(),
                format!("{PRESCRIPTION_ORDER_NUMBER}|{}", self.prescription),
            ),
            (
                "identifier".into(),
                format!("{ORDER_ITEM_NUMBER}|{}", self.item),
            ),
        ]
    }

    /// The line a MedicationRequest is: its `groupIdentifier` and order item identifier.
    pub fn of_request(mr: &Value) -> Option<LineItem> {
        let prescription = mr.pointer("/groupIdentifier/value")?.as_str()?;
        let item = identifier_value(mr, ORDER_ITEM_NUMBER)?;
        Some(LineItem {
            prescription: prescription.to_owned(),
            item: item.to_owned(),
        })
    }
}

/// What one write is, beyond its resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// A directory resource (Organization, Practitioner, PractitionerRole).
    Directory,
    /// A prescription line (`prescription-order`).
    Order(LineItem),
    /// A cancelled line (`prescription-order-update`): the stored order is cancelled with
    /// `status_reason`; when SMR holds no such order the cancelled request is stored as sent, so
    /// an order arriving after its cancellation finds it and stays cancelled.
    Cancellation {
        line: LineItem,
        status_reason: Option<Value>,
    },
    /// A dispense, with the order line it was made against (when the message names one) and
    /// the `#id` of the contained MedicationRequest standing for it.
    Dispense {
        prescription: Option<(LineItem, String)>,
    },
}

/// A resource to write: created unless `criteria` find an earlier copy (a conditional
/// create), so that a message sent twice is stored once.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// The entry's `fullUrl`, which other entries' references use until ids are known.
    pub full_url: Option<String>,
    pub resource: Value,
    pub criteria: Vec<(String, String)>,
    pub role: Role,
}

impl Write {
    pub fn resource_type(&self) -> &str {
        self.resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// What a message asks SMR to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub header: Header,
    /// The NHS number of the patient the message is about.
    pub nhs_number: String,
    /// The references (`urn:uuid:` of the Patient entries) that stand for that patient.
    pub patient_urls: Vec<String>,
    pub writes: Vec<Write>,
}

/// Reads `bundle` into a plan. `store_directory(type)` says whether a directory resource of
/// that type is written on its own (the caller may create it); when not, it is copied into
/// the resources that refer to it (`contained`), as is anything else they refer to.
pub fn plan(bundle: &Value, store_directory: &dyn Fn(&str) -> bool) -> Result<Plan, MessageError> {
    let header = read_header(bundle)?;
    let entries: Vec<(usize, Option<&str>, &Value)> = bundle
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .skip(1)
        .map(|(i, e)| {
            let resource = e.get("resource").unwrap_or(&Value::Null);
            (i, e.get("fullUrl").and_then(Value::as_str), resource)
        })
        .collect();
    let mut nhs_numbers: Vec<String> = Vec::new();
    let mut patient_urls = Vec::new();
    let mut by_url: HashMap<String, &Value> = HashMap::new();
    for &(i, url, resource) in &entries {
        if !resource.is_object() {
            return Err(MessageError::Entry(i, "an entry needs a resource".into()));
        }
        if let Some(url) = url {
            by_url.insert(url.to_owned(), resource);
        }
        if type_of(resource) == "Patient" {
            let nhs = identifier_value(resource, NHS_NUMBER_SYSTEM).ok_or_else(|| {
                MessageError::Entry(i, "a Patient in an EPS message needs its NHS number".into())
            })?;
            nhs_numbers.push(nhs.to_owned());
            patient_urls.extend(url.map(str::to_owned));
        }
    }

    let mut writes = Vec::new();
    for &(i, url, resource) in &entries {
        let ty = type_of(resource);
        let entry_error = |m: &str| MessageError::Entry(i, format!("{ty}: {m}"));
        let mut resource = resource.clone();
        // The server gives ids; a message's own ids are its sender's.
        if let Some(obj) = resource.as_object_mut() {
            obj.shift_remove("id");
            obj.shift_remove("meta");
        }
        let write = match ty {
            "MedicationRequest" => {
                nhs_numbers.extend(subject_nhs_number(&resource));
                let line = LineItem::of_request(&resource).ok_or_else(|| {
                    entry_error(
                        "an EPS MedicationRequest needs groupIdentifier.value and an \
                         identifier of system prescription-order-item-number",
                    )
                })?;
                add_identifier(&mut resource, PRESCRIPTION_ORDER_NUMBER, &line.prescription);
                let role = match header.event {
                    Event::PrescriptionOrder => Role::Order(line.clone()),
                    Event::PrescriptionOrderUpdate => {
                        if resource.get("status").and_then(Value::as_str) != Some("cancelled") {
                            return Err(entry_error(
                                "a prescription-order-update carries cancellations: \
                                 MedicationRequest.status must be 'cancelled'",
                            ));
                        }
                        Role::Cancellation {
                            line: line.clone(),
                            status_reason: resource.get("statusReason").cloned(),
                        }
                    }
                    Event::DispenseNotification => {
                        return Err(entry_error(
                            "a dispense-notification carries MedicationDispenses, not orders",
                        ));
                    }
                };
                Write {
                    full_url: url.map(str::to_owned),
                    resource,
                    criteria: line.criteria(),
                    role,
                }
            }
            "MedicationDispense" => {
                if header.event != Event::DispenseNotification {
                    return Err(entry_error(
                        "MedicationDispenses come in dispense-notification messages",
                    ));
                }
                nhs_numbers.extend(subject_nhs_number(&resource));
                let key = content_key(&resource);
                add_identifier(&mut resource, URI_SYSTEM, &key);
                Write {
                    full_url: url.map(str::to_owned),
                    criteria: vec![("identifier".into(), format!("{URI_SYSTEM}|{key}"))],
                    role: Role::Dispense {
                        prescription: dispensed_line(&resource),
                    },
                    resource,
                }
            }
            _ if DIRECTORY_TYPES.contains(&ty) && store_directory(ty) => {
                let Some(criteria) = directory_criteria(&resource) else {
                    // Nothing to find an earlier copy by: kept inside what refers to it.
                    continue;
                };
                Write {
                    full_url: url.map(str::to_owned),
                    resource,
                    criteria: vec![("identifier".into(), criteria)],
                    role: Role::Directory,
                }
            }
            // The Patient is SMR's own (found by NHS number); everything else is contained
            // where it is referred to, or left out (the sender's signature Provenance, a
            // CommunicationRequest or List nothing stored refers to).
            _ => continue,
        };
        writes.push(write);
    }

    let nhs_number = one_patient(nhs_numbers)?;
    let written: HashSet<String> = writes.iter().filter_map(|w| w.full_url.clone()).collect();
    let patients: HashSet<&str> = patient_urls.iter().map(String::as_str).collect();
    for write in &mut writes {
        contain::contain_referenced(&mut write.resource, &by_url, &written, &patients);
    }
    Ok(Plan {
        header,
        nhs_number,
        patient_urls,
        writes,
    })
}

impl Plan {
    /// Points every reference to the message's patient at `Patient/{patient_id}` (also a
    /// dispense's `subject` that names the patient by identifier alone) and limits every
    /// prescription line's search to that patient's record.
    pub fn bind_patient(&mut self, patient_id: &str) {
        let target = format!("Patient/{patient_id}");
        let map: HashMap<String, String> = self
            .patient_urls
            .iter()
            .map(|u| (u.clone(), target.clone()))
            .collect();
        for write in &mut self.writes {
            references::rewrite(&mut write.resource, &map);
            let ty = write.resource_type().to_owned();
            if ty == "MedicationRequest" || ty == "MedicationDispense" {
                set_subject(&mut write.resource, &target);
                if let Some(Value::Array(contained)) = write.resource.get_mut("contained") {
                    for inner in contained.iter_mut().filter(|c| {
                        matches!(type_of(c), "MedicationRequest" | "MedicationDispense")
                    }) {
                        set_subject(inner, &target);
                    }
                }
            }
            if ty == "MedicationRequest" {
                write.criteria.push(("subject".into(), target.clone()));
            }
        }
    }
}

/// The criteria that find the stored order of `line` in the record of `patient_id`.
pub fn order_criteria(line: &LineItem, patient_id: &str) -> Vec<(String, String)> {
    let mut c = line.criteria();
    c.push(("subject".into(), format!("Patient/{patient_id}")));
    c
}

/// Links a dispense to the stored order `reference` (`MedicationRequest/{id}`) in place of
/// the contained copy `#local` the message carried; the copy goes when nothing else refers
/// to it.
pub fn link_dispense(dispense: &mut Value, local: &str, reference: &str) {
    let local_ref = format!("#{local}");
    let map = HashMap::from([(local_ref.clone(), reference.to_owned())]);
    if let Some(auth) = dispense.get_mut("authorizingPrescription") {
        references::rewrite(auth, &map);
    }
    let mut left = Vec::new();
    references::collect(dispense, &mut left);
    if !left.contains(&local_ref)
        && let Some(obj) = dispense.as_object_mut()
    {
        if let Some(Value::Array(contained)) = obj.get_mut("contained") {
            contained.retain(|c| c.get("id").and_then(Value::as_str) != Some(local));
        }
        if obj
            .get("contained")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
        {
            obj.shift_remove("contained");
        }
    }
}

/// Stops a stored order: `status` cancelled, with the message's `statusReason` (kept as it
/// was when the message gives none). Returns whether anything changed, so a cancellation sent
/// again writes nothing.
pub fn cancel(stored: &mut Value, status_reason: Option<&Value>) -> bool {
    let before = stored.clone();
    if let Some(obj) = stored.as_object_mut() {
        obj.insert("status".into(), json!("cancelled"));
        if let Some(reason) = status_reason {
            obj.insert("statusReason".into(), reason.clone());
        }
    }
    *stored != before
}

fn one_patient(mut nhs_numbers: Vec<String>) -> Result<String, MessageError> {
    nhs_numbers.sort();
    nhs_numbers.dedup();
    match nhs_numbers.as_slice() {
        [] => Err(MessageError::NoPatient),
        [one] => Ok(one.clone()),
        [a, b, ..] => Err(MessageError::ManyPatients(a.clone(), b.clone())),
    }
}

/// The NHS number a `subject` names by identifier (dispenses name the patient that way).
fn subject_nhs_number(resource: &Value) -> Option<String> {
    let id = resource.pointer("/subject/identifier")?;
    (id.get("system").and_then(Value::as_str) == Some(NHS_NUMBER_SYSTEM))
        .then(|| id.get("value").and_then(Value::as_str).map(str::to_owned))
        .flatten()
}

fn set_subject(resource: &mut Value, target: &str) {
    let Some(obj) = resource.as_object_mut() else {
        return;
    };
    match obj.get_mut("subject").and_then(Value::as_object_mut) {
        Some(subject) => {
            subject.insert("reference".into(), json!(target));
        }
        None => {
            obj.insert("subject".into(), json!({"reference": target}));
        }
    }
}

/// The order line a dispense names: its `authorizingPrescription` pointing at a contained
/// MedicationRequest (EPS sends the order as the dispenser saw it), read for its line.
fn dispensed_line(dispense: &Value) -> Option<(LineItem, String)> {
    let contained = dispense.get("contained").and_then(Value::as_array)?;
    dispense
        .get("authorizingPrescription")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("reference")?.as_str()?.strip_prefix('#'))
        .find_map(|local| {
            let mr = contained.iter().find(|c| {
                type_of(c) == "MedicationRequest"
                    && c.get("id").and_then(Value::as_str) == Some(local)
            })?;
            Some((LineItem::of_request(mr)?, local.to_owned()))
        })
}

/// `identifier=system|value` for a directory resource: ODS code for an Organization, SDS ids
/// for people and roles, else the first identifier with both a system and a value.
fn directory_criteria(resource: &Value) -> Option<String> {
    let preferred = match type_of(resource) {
        "Organization" => ODS_SYSTEM,
        "Practitioner" => SDS_USER_ID,
        _ => SDS_ROLE_PROFILE_ID,
    };
    let value = identifier_value(resource, preferred)
        .map(|v| (preferred, v))
        .or_else(|| {
            resource
                .get("identifier")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find_map(|i| {
                    Some((
                        i.get("system")?.as_str()?,
                        i.get("value")?.as_str().filter(|v| !v.is_empty())?,
                    ))
                })
        })?;
    // Search syntax: `|`, `,` and `$` in a value would change the criteria's meaning.
    if value.0.contains(['|', ',', '$', '\\']) || value.1.contains(['|', ',', '$', '\\']) {
        return None;
    }
    Some(format!("{}|{}", value.0, value.1))
}

fn add_identifier(resource: &mut Value, system: &str, value: &str) {
    if identifier_value(resource, system) == Some(value) {
        return;
    }
    let Some(obj) = resource.as_object_mut() else {
        return;
    };
    let ids = obj.entry("identifier").or_insert_with(|| json!([]));
    if let Value::Array(ids) = ids {
        ids.push(json!({"system": system, "value": value}));
    }
}

/// A name-based UUID of the resource as the message carried it: the same dispense sent
/// again has the same key; any difference makes another.
fn content_key(resource: &Value) -> String {
    let text = resource.to_string();
    format!(
        "urn:uuid:{}",
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, text.as_bytes())
    )
}

pub(crate) fn identifier_value<'a>(resource: &'a Value, system: &str) -> Option<&'a str> {
    resource
        .get("identifier")
        .and_then(Value::as_array)?
        .iter()
        .find(|i| i.get("system").and_then(Value::as_str) == Some(system))?
        .get("value")?
        .as_str()
}

pub(crate) fn type_of(resource: &Value) -> &str {
    resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
