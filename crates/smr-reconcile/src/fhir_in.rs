//! The `$reconcile` request: a FHIR `Parameters` with `source` (optional) and `target`, each a
//! `List` or a `Bundle`, read into medication lines. Everything wrong with it is an
//! [`InputError`] naming what and where; nothing is guessed.
//!
//! A List's entries name their resources by `item.reference`: `#id` for a resource contained
//! in the List, or a reference to an entry of the Bundle the List came in (by `fullUrl` or
//! `Type/id`). A Bundle without a List is read as a list of every medication entry it holds.

use std::collections::HashMap;

use serde_json::Value;
use smr_dmd::MedicineLookup;

use crate::line::{self, MedLine};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Not the shape asked for (a 400).
    #[error("{0}")]
    Structure(String),
    /// Readable but not acceptable (a 422): wrong patient, dangling reference, …
    #[error("{0}")]
    Unprocessable(String),
}

/// One list of a request, read.
#[derive(Debug, Clone, Default)]
pub struct InputList {
    pub lines: Vec<MedLine>,
    /// Entries that are not medication entries (ignored, counted for the answer's note).
    pub ignored: usize,
    /// The List's `emptyReason` text, when it states one.
    pub empty_reason: Option<String>,
}

/// The request's lists: `source` is `None` when the caller left it out (the SMR record is
/// then the source).
#[derive(Debug, Clone)]
pub struct Request {
    pub source: Option<InputList>,
    pub target: InputList,
}

fn unprocessable(m: impl Into<String>) -> InputError {
    InputError::Unprocessable(m.into())
}

/// Reads a `$reconcile` Parameters for `patient`.
pub fn read_request(
    parameters: &Value,
    patient: &str,
    lookup: &dyn MedicineLookup,
) -> Result<Request, InputError> {
    if parameters.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(InputError::Structure(
            "$reconcile takes a Parameters resource with a 'target' (and optionally a \
             'source') parameter, each a List or a Bundle"
                .into(),
        ));
    }
    let params = parameters
        .get("parameter")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut source = None;
    let mut target = None;
    for (i, p) in params.iter().enumerate() {
        let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
        let slot = match name {
            "source" => &mut source,
            "target" => &mut target,
            other => {
                return Err(InputError::Structure(format!(
                    "parameter {i}: unknown parameter '{other}' (expected 'source' or 'target')"
                )));
            }
        };
        if slot.is_some() {
            return Err(InputError::Structure(format!(
                "parameter '{name}' is given more than once"
            )));
        }
        let resource = p.get("resource").ok_or_else(|| {
            InputError::Structure(format!(
                "parameter '{name}' must carry a List or a Bundle in 'resource'"
            ))
        })?;
        *slot = Some(read_list(resource, name, patient, lookup)?);
    }
    let target = target.ok_or_else(|| {
        InputError::Structure(
            "the 'target' parameter is missing: give the list to reconcile (a List or a Bundle)"
                .into(),
        )
    })?;
    Ok(Request { source, target })
}

/// `Patient/{id}` of a reference, when it names a patient.
fn patient_of(reference: &str) -> Option<&str> {
    let r = reference.split("/_history/").next().unwrap_or(reference);
    let mut parts = r.rsplitn(3, '/');
    let id = parts.next()?;
    (parts.next()? == "Patient").then_some(id)
}

/// Refuses a resource naming another patient (subject or patient).
fn check_patient(resource: &Value, patient: &str, what: &str) -> Result<(), InputError> {
    for key in ["subject", "patient"] {
        if let Some(reference) = resource
            .pointer(&format!("/{key}/reference"))
            .and_then(Value::as_str)
        {
            match patient_of(reference) {
                Some(id) if id == patient => {}
                _ => {
                    return Err(unprocessable(format!(
                        "{what} is about {reference}, not Patient/{patient}"
                    )));
                }
            }
        }
    }
    Ok(())
}

fn is_medication_entry(resource: &Value) -> bool {
    resource
        .get("resourceType")
        .and_then(Value::as_str)
        .is_some_and(|t| smr_record::SOURCE_TYPES.contains(&t))
}

/// Reads one list parameter (`name` is `source` or `target`, for messages).
pub fn read_list(
    resource: &Value,
    name: &str,
    patient: &str,
    lookup: &dyn MedicineLookup,
) -> Result<InputList, InputError> {
    match resource.get("resourceType").and_then(Value::as_str) {
        Some("List") => read_list_resource(resource, &HashMap::new(), name, patient, lookup),
        Some("Bundle") => read_bundle(resource, name, patient, lookup),
        Some(other) => Err(InputError::Structure(format!(
            "'{name}' is a {other}; it must be a List or a Bundle"
        ))),
        None => Err(InputError::Structure(format!(
            "'{name}' has no resourceType; it must be a List or a Bundle"
        ))),
    }
}

fn read_bundle(
    bundle: &Value,
    name: &str,
    patient: &str,
    lookup: &dyn MedicineLookup,
) -> Result<InputList, InputError> {
    let entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    // Every way a List entry may name a Bundle entry: its fullUrl and Type/id.
    let mut by_reference: HashMap<String, &Value> = HashMap::new();
    let mut lists = Vec::new();
    for e in entries {
        let Some(r) = e.get("resource") else { continue };
        if let Some(url) = e.get("fullUrl").and_then(Value::as_str) {
            by_reference.insert(url.to_owned(), r);
        }
        if let (Some(t), Some(id)) = (
            r.get("resourceType").and_then(Value::as_str),
            r.get("id").and_then(Value::as_str),
        ) {
            by_reference.insert(format!("{t}/{id}"), r);
        }
        if r.get("resourceType").and_then(Value::as_str) == Some("List") {
            lists.push(r);
        }
    }
    match lists.as_slice() {
        [list] => read_list_resource(list, &by_reference, name, patient, lookup),
        [] => {
            let medications = medications_of(entries.iter().filter_map(|e| e.get("resource")));
            let mut out = InputList::default();
            for (i, e) in entries.iter().enumerate() {
                let Some(r) = e.get("resource") else { continue };
                if !is_medication_entry(r) {
                    out.ignored += 1;
                    continue;
                }
                check_patient(r, patient, &format!("'{name}' Bundle entry {i}"))?;
                match line::read(
                    r,
                    None,
                    i,
                    &|reference| medications.get(reference).cloned(),
                    lookup,
                ) {
                    Some(l) => out.lines.push(l),
                    None => out.ignored += 1,
                }
            }
            Ok(out)
        }
        _ => Err(unprocessable(format!(
            "'{name}' Bundle holds {} Lists; give one List (with its resources) or none",
            lists.len()
        ))),
    }
}

fn medications_of<'a>(resources: impl Iterator<Item = &'a Value>) -> HashMap<String, Value> {
    resources
        .filter(|r| r.get("resourceType").and_then(Value::as_str) == Some("Medication"))
        .filter_map(|m| Some((format!("Medication/{}", m.get("id")?.as_str()?), m.clone())))
        .collect()
}

fn read_list_resource(
    list: &Value,
    bundle: &HashMap<String, &Value>,
    name: &str,
    patient: &str,
    lookup: &dyn MedicineLookup,
) -> Result<InputList, InputError> {
    check_patient(list, patient, &format!("the '{name}' List"))?;
    let contained: HashMap<String, &Value> = list
        .get("contained")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c.get("id")?.as_str()?.to_owned(), c)))
        .collect();
    let mut medications = medications_of(contained.values().copied());
    medications.extend(medications_of(bundle.values().copied()));
    let mut out = InputList {
        empty_reason: list.get("emptyReason").and_then(|r| {
            r.get("text")
                .and_then(Value::as_str)
                .or_else(|| r.pointer("/coding/0/display").and_then(Value::as_str))
                .or_else(|| r.pointer("/coding/0/code").and_then(Value::as_str))
                .map(str::to_owned)
        }),
        ..InputList::default()
    };
    let entries = list
        .get("entry")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, entry) in entries.iter().enumerate() {
        let reference = entry
            .pointer("/item/reference")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                unprocessable(format!(
                    "'{name}' List entry {i} has no item.reference: every line must name its \
                     medication entry"
                ))
            })?;
        let resource = match reference.strip_prefix('#') {
            Some(local) => contained.get(local).copied(),
            None => bundle
                .get(reference)
                .or_else(|| bundle.get(&smr_record::source::strip_history(reference)))
                .copied(),
        }
        .ok_or_else(|| {
            unprocessable(format!(
                "'{name}' List entry {i} refers to {reference}, which is neither contained in \
                 the List nor in the Bundle it came in"
            ))
        })?;
        if !is_medication_entry(resource) {
            out.ignored += 1;
            continue;
        }
        check_patient(
            resource,
            patient,
            &format!("'{name}' List entry {i} ({reference})"),
        )?;
        let medication = |r: &str| {
            medications.get(r).cloned().or_else(|| {
                r.strip_prefix('#')
                    .and_then(|l| contained.get(l).map(|v| (*v).clone()))
            })
        };
        match line::read(resource, Some(entry), i, &medication, lookup) {
            Some(mut l) => {
                if reference.starts_with('#') || l.reference.starts_with("entry ") {
                    l.reference = format!("{name} List entry {i} ({reference})");
                }
                out.lines.push(l);
            }
            // Entered in error, or no id: an entered-in-error entry is nobody's medicine.
            None => out.ignored += 1,
        }
    }
    Ok(out)
}
