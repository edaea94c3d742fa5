//! Reading import files into write units, streaming: NDJSON line by line (a Bulk Data export,
//! or `smr synth` output whose lines are transaction Bundles), a `.json` file as one Bundle or
//! resource; `.gz` decompressed on the fly. Memory holds one line (or one Bundle file) at a
//! time.
//!
//! Idempotency rules (so a re-run of a killed import writes nothing twice):
//! - a resource with an `id` is `PUT Type/id`;
//! - without an id but with an `identifier` (system and value): a conditional create on
//!   `identifier=system|value` (`If-None-Exist`);
//! - with neither: `PUT` with an id derived from (file name, line, entry) by UUID v5, so a
//!   re-run names the same id. A transaction or batch `POST` without `ifNoneExist` gets such
//!   an id too.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use smr_fhir::query::{self, Handling};
use smr_fhir::{Issue, IssueCode};
use smr_store::WriteOp;

/// Namespace of the ids SMR derives for imported resources that carry none (a fixed UUID v4).
const ID_NAMESPACE: uuid::Uuid = uuid::uuid!("5f0b4c8e-3a57-4f0e-9a7c-2f7e1d6b9c41");

/// An entry refused while reading, and why (boxed: the error path of every entry's reading).
type Refused = Box<(Origin, Issue)>;

/// Where an entry came from.
#[derive(Debug, Clone)]
pub struct Origin {
    pub file: Arc<str>,
    pub line: usize,
    /// Index in `Bundle.entry`, for an entry of a Bundle.
    pub entry: Option<usize>,
    pub res_type: Option<String>,
    pub id: Option<String>,
}

/// One write and where it came from.
#[derive(Debug)]
pub struct Entry {
    pub origin: Origin,
    pub op: WriteOp,
    /// What a batch must not hold twice (`Type/id`, or a conditional create's criteria):
    /// two writes of one target in one transaction would fail or duplicate.
    pub key: Option<String>,
}

/// What the writer receives, in file order. Not boxed: units are moved (in chunks) to the
/// writer, and an entry is most of them.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Unit {
    /// An entry that stands alone (NDJSON line, batch or collection entry).
    Single(Entry),
    /// A transaction Bundle: all or nothing.
    Transaction(Vec<Entry>),
    /// Refused while reading: nothing to write.
    Reject(Origin, Vec<Issue>),
}

/// Which files are NDJSON (one resource, or Bundle, per line); the others are one JSON
/// document each.
fn is_ndjson(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(name);
    name.ends_with(".ndjson") || name.ends_with(".jsonl")
}

/// A reader that counts the (compressed) bytes read from the file, for the progress bar.
struct Counting<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Reads `path`, handing each unit to `emit` (which blocks while the writer is behind: that
/// is what keeps memory flat). `bytes` counts the file's bytes read. An I/O error is fatal;
/// bad content is a [`Unit::Reject`].
pub fn read_file(
    path: &Path,
    bytes: Arc<AtomicU64>,
    mut emit: impl FnMut(Unit) -> bool,
) -> std::io::Result<()> {
    let file = File::open(path)?;
    let counted = Counting { inner: file, bytes };
    let gz = path.extension().is_some_and(|e| e == "gz");
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(counted))
    } else {
        Box::new(counted)
    };
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let name: Arc<str> = path
        .file_name()
        .map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        )
        .into();
    if !is_ndjson(path) {
        let mut text = String::new();
        let origin = origin(&name, 1, None);
        if let Err(e) = reader.read_to_string(&mut text) {
            if e.kind() != std::io::ErrorKind::InvalidData {
                return Err(e);
            }
            emit(Unit::Reject(
                origin,
                vec![structure("the file is not UTF-8 text")],
            ));
            return Ok(());
        }
        for unit in units_of(&text, &name, 1) {
            if !emit(unit) {
                break;
            }
        }
        return Ok(());
    }
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        let units = match std::str::from_utf8(&line) {
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => units_of(text, &name, number),
            Err(_) => vec![Unit::Reject(
                origin(&name, number, None),
                vec![structure("the line is not UTF-8 text")],
            )],
        };
        for unit in units {
            if !emit(unit) {
                return Ok(());
            }
        }
    }
    Ok(())
}

fn origin(file: &Arc<str>, line: usize, entry: Option<usize>) -> Origin {
    Origin {
        file: file.clone(),
        line,
        entry,
        res_type: None,
        id: None,
    }
}

fn structure(message: impl Into<String>) -> Issue {
    Issue::error(IssueCode::Structure, message)
}

fn not_supported(message: impl Into<String>) -> Issue {
    Issue::error(IssueCode::NotSupported, message)
}

/// The units of one JSON text (a line, or a whole file) at `line`.
pub fn units_of(text: &str, file: &Arc<str>, line: usize) -> Vec<Unit> {
    let value = match smr_fhir::json::parse_str(text.trim_end()) {
        Ok(v) => v,
        Err(e) => {
            return vec![Unit::Reject(
                origin(file, line, None),
                vec![structure(e.to_string())],
            )];
        }
    };
    let bundle_type = match (
        value.get("resourceType").and_then(Value::as_str),
        value.get("type").and_then(Value::as_str),
    ) {
        (Some("Bundle"), Some(t @ ("transaction" | "batch" | "collection"))) => Some(t.to_owned()),
        _ => None,
    };
    match bundle_type {
        Some(t) => bundle_units(value, &t, file, line),
        None => vec![single(value, origin(file, line, None))],
    }
}

/// A standalone resource as a unit, by the idempotency rules of the module.
fn single(resource: Value, mut origin: Origin) -> Unit {
    let Some(ty) = resource.get("resourceType").and_then(Value::as_str) else {
        return Unit::Reject(
            origin,
            vec![structure("not a FHIR resource: no resourceType")],
        );
    };
    origin.res_type = Some(ty.to_owned());
    match standalone_op(resource, &origin, None) {
        Ok(entry) => Unit::Single(entry),
        Err(issue) => Unit::Reject(origin, vec![issue]),
    }
}

/// The write of a resource that says nothing about how to write it.
fn standalone_op(
    mut resource: Value,
    origin: &Origin,
    full_url: Option<String>,
) -> Result<Entry, Issue> {
    let ty = origin.res_type.clone().unwrap_or_default();
    let mut origin = origin.clone();
    if let Some(id) = resource.get("id").and_then(Value::as_str) {
        origin.id = Some(id.to_owned());
        return Ok(put(resource, origin, full_url));
    }
    if let Some((criteria, search)) = identifier_search(&ty, &resource) {
        return Ok(Entry {
            key: Some(format!("{ty}?{criteria}")),
            origin,
            op: WriteOp::Create {
                resource,
                full_url,
                if_none_exist: Some(search),
            },
        });
    }
    let id = derived_id(&origin);
    resource["id"] = json!(id);
    origin.id = Some(id);
    Ok(put(resource, origin, full_url))
}

fn put(resource: Value, origin: Origin, full_url: Option<String>) -> Entry {
    let key = origin
        .id
        .as_ref()
        .map(|id| format!("{}/{id}", origin.res_type.as_deref().unwrap_or_default()));
    Entry {
        key,
        origin,
        op: WriteOp::Update {
            resource,
            full_url,
            if_match: None,
            patched: false,
            condition: None,
        },
    }
}

/// The id of a resource that came without one: a name-based UUID of where it came from.
fn derived_id(origin: &Origin) -> String {
    let name = format!(
        "{}:{}:{}",
        origin.file,
        origin.line,
        origin.entry.map_or_else(String::new, |e| e.to_string())
    );
    uuid::Uuid::new_v5(&ID_NAMESPACE, name.as_bytes()).to_string()
}

/// `identifier=system|value` of the resource's first identifier with both, as a search the
/// store can run (`None` when the type has no identifier search parameter).
fn identifier_search(ty: &str, resource: &Value) -> Option<(String, query::SearchRequest)> {
    let identifiers = match resource.get("identifier")? {
        Value::Array(list) => list.iter().collect::<Vec<_>>(),
        one @ Value::Object(_) => vec![one],
        _ => return None,
    };
    let (system, value) = identifiers
        .into_iter()
        .find_map(|i| Some((i.get("system")?.as_str()?, i.get("value")?.as_str()?)))?;
    let criteria = format!("{}|{}", escape(system), escape(value));
    let pairs = vec![("identifier".to_owned(), criteria.clone())];
    let parsed = query::parse(ty, &pairs, Handling::Strict).ok()?;
    Some((format!("identifier={criteria}"), parsed.request))
}

/// FHIR search escaping of a token part (`\`, `|`, `,`, `$`).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '|' | ',' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The units of a transaction, batch or collection Bundle at `line`.
fn bundle_units(bundle: Value, kind: &str, file: &Arc<str>, line: usize) -> Vec<Unit> {
    let Value::Object(mut bundle) = bundle else {
        return Vec::new();
    };
    let entries = match bundle.remove("entry") {
        Some(Value::Array(entries)) => entries,
        None => Vec::new(),
        Some(_) => {
            return vec![Unit::Reject(
                origin(file, line, None),
                vec![structure("Bundle.entry must be an array")],
            )];
        }
    };
    let mut parsed: Vec<Result<Entry, Refused>> = entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| bundle_entry(entry, kind, origin(file, line, Some(i))))
        .collect();
    rewrite_full_urls(&mut parsed);
    if kind != "transaction" {
        return parsed
            .into_iter()
            .map(|p| match p {
                Ok(entry) => Unit::Single(entry),
                Err(refused) => {
                    let (origin, issue) = *refused;
                    Unit::Reject(origin, vec![issue])
                }
            })
            .collect();
    }
    // A transaction is all or nothing: one bad entry refuses all of them.
    let failed = parsed.iter().position(Result::is_err);
    match failed {
        None => vec![Unit::Transaction(parsed.into_iter().flatten().collect())],
        Some(k) => parsed
            .into_iter()
            .map(|p| match p {
                Err(refused) => {
                    let (origin, issue) = *refused;
                    Unit::Reject(origin, vec![issue])
                }
                Ok(entry) => Unit::Reject(
                    entry.origin,
                    vec![Issue::error(
                        IssueCode::Processing,
                        format!("not written: the transaction's entry {k} was refused"),
                    )],
                ),
            })
            .collect(),
    }
}

/// References to other entries' `fullUrl` become `Type/id` where the id is known now (ids
/// kept or derived), so what is stored, and compared on a re-run, is the same each time.
/// References to conditional creates are left for the store to rewrite.
fn rewrite_full_urls(entries: &mut [Result<Entry, Refused>]) {
    let mut map = HashMap::new();
    for e in entries.iter().flatten() {
        if let WriteOp::Update {
            full_url: Some(url),
            ..
        } = &e.op
            && let (Some(ty), Some(id)) = (&e.origin.res_type, &e.origin.id)
        {
            map.insert(url.clone(), format!("{ty}/{id}"));
        }
    }
    if map.is_empty() {
        return;
    }
    for e in entries.iter_mut().flatten() {
        if let WriteOp::Create { resource, .. } | WriteOp::Update { resource, .. } = &mut e.op {
            smr_fhir::references::rewrite(resource, &map);
        }
    }
}

/// One Bundle entry as a write: by its request in a transaction or batch, like an NDJSON
/// line in a collection.
fn bundle_entry(entry: Value, kind: &str, mut origin: Origin) -> Result<Entry, Refused> {
    let full_url = entry
        .get("fullUrl")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let request = entry.get("request");
    let resource = entry.get("resource").cloned();
    origin.res_type = resource
        .as_ref()
        .and_then(|r| r.get("resourceType"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if kind == "collection" {
        let Some(resource) = resource else {
            return Err(Box::new((
                origin,
                structure("a collection entry must hold a resource"),
            )));
        };
        if origin.res_type.is_none() {
            return Err(Box::new((
                origin,
                structure("not a FHIR resource: no resourceType"),
            )));
        }
        return standalone_op(resource, &origin, full_url).map_err(|i| Box::new((origin, i)));
    }
    let method = request
        .and_then(|r| r.get("method"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let url = request
        .and_then(|r| r.get("url"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let fail = |origin: Origin, issue: Issue| Err(Box::new((origin, issue)));
    match method {
        "POST" => {
            let Some(mut resource) = resource else {
                return fail(origin, structure("a POST entry must hold a resource"));
            };
            let Some(ty) = origin.res_type.clone() else {
                return fail(origin, structure("not a FHIR resource: no resourceType"));
            };
            match request
                .and_then(|r| r.get("ifNoneExist"))
                .and_then(Value::as_str)
            {
                Some(q) => {
                    let pairs: Vec<(String, String)> =
                        form_urlencoded::parse(q.as_bytes()).into_owned().collect();
                    match query::parse(&ty, &pairs, Handling::Strict) {
                        Ok(parsed) => Ok(Entry {
                            key: Some(format!("{ty}?{q}")),
                            origin,
                            op: WriteOp::Create {
                                resource,
                                full_url,
                                if_none_exist: Some(parsed.request),
                            },
                        }),
                        Err(issues) => {
                            let issue = issues.into_iter().next().unwrap_or_else(|| {
                                structure(format!("ifNoneExist '{q}' cannot be read"))
                            });
                            fail(origin, issue)
                        }
                    }
                }
                None => {
                    // A create by the server would create again on a re-run: the entry gets
                    // the id its place in the file names.
                    let id = derived_id(&origin);
                    resource["id"] = json!(id);
                    origin.id = Some(id);
                    Ok(put(resource, origin, full_url))
                }
            }
        }
        "PUT" => {
            let Some(mut resource) = resource else {
                return fail(origin, structure("a PUT entry must hold a resource"));
            };
            let Some((ty, id)) = url
                .split_once('/')
                .filter(|(_, id)| !id.contains(['/', '?']))
            else {
                return fail(
                    origin,
                    not_supported(format!(
                        "PUT '{url}': only PUT Type/id is imported (not conditional updates)"
                    )),
                );
            };
            if origin.res_type.as_deref() != Some(ty) {
                return fail(origin, structure(format!("PUT '{url}' holds another type")));
            }
            match resource.get("id").and_then(Value::as_str) {
                Some(own) if own != id => {
                    return fail(origin, structure(format!("PUT '{url}' holds id '{own}'")));
                }
                Some(_) => {}
                None => resource["id"] = json!(id),
            }
            origin.id = Some(id.to_owned());
            Ok(put(resource, origin, full_url))
        }
        "DELETE" => {
            let Some((ty, id)) = url
                .split_once('/')
                .filter(|(_, id)| !id.contains(['/', '?']))
            else {
                return fail(
                    origin,
                    not_supported(format!("DELETE '{url}': only DELETE Type/id is imported")),
                );
            };
            origin.res_type = Some(ty.to_owned());
            origin.id = Some(id.to_owned());
            Ok(Entry {
                key: Some(format!("{ty}/{id}")),
                op: WriteOp::Delete {
                    res_type: ty.to_owned(),
                    id: id.to_owned(),
                    if_match: None,
                },
                origin,
            })
        }
        "" => fail(
            origin,
            structure("a transaction or batch entry needs request.method"),
        ),
        other => fail(
            origin,
            not_supported(format!(
                "request.method {other} is not imported (writes only)"
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> Arc<str> {
        "f.ndjson".into()
    }

    #[test]
    fn ids_identifiers_and_neither() {
        let u = units_of(r#"{"resourceType":"Patient","id":"p1"}"#, &name(), 1);
        assert!(matches!(
            &u[..],
            [Unit::Single(Entry {
                op: WriteOp::Update { .. },
                ..
            })]
        ));
        let u = units_of(
            r#"{"resourceType":"Patient","identifier":[{"system":"s","value":"a|b"}]}"#,
            &name(),
            2,
        );
        match &u[..] {
            [Unit::Single(e)] => {
                assert!(matches!(
                    e.op,
                    WriteOp::Create {
                        if_none_exist: Some(_),
                        ..
                    }
                ));
                assert_eq!(e.key.as_deref(), Some(r"Patient?identifier=s|a\|b"));
            }
            other => panic!("{other:?}"),
        }
        let a = units_of(r#"{"resourceType":"Medication"}"#, &name(), 3);
        let b = units_of(r#"{"resourceType":"Medication"}"#, &name(), 3);
        let id = |u: &[Unit]| match u {
            [Unit::Single(e)] => e.origin.id.clone(),
            _ => None,
        };
        assert!(id(&a).is_some());
        assert_eq!(id(&a), id(&b), "the derived id is the same on a re-run");
    }

    #[test]
    fn malformed_lines_are_rejects() {
        let u = units_of("{not json", &name(), 7);
        assert!(matches!(&u[..], [Unit::Reject(o, _)] if o.line == 7));
        let u = units_of(r#"{"id":"x"}"#, &name(), 8);
        assert!(matches!(&u[..], [Unit::Reject(o, _)] if o.line == 8));
    }

    #[test]
    fn transaction_references_to_new_entries_name_their_ids() {
        let text = r#"{"resourceType":"Bundle","type":"transaction","entry":[
            {"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient"},
             "request":{"method":"POST","url":"Patient"}},
            {"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},
             "subject":{"reference":"urn:uuid:1"}},"request":{"method":"POST","url":"Observation"}}]}"#;
        let u = units_of(&text.replace('\n', " "), &name(), 1);
        let [Unit::Transaction(entries)] = &u[..] else {
            panic!("{u:?}")
        };
        let patient = entries[0].origin.id.clone().unwrap_or_default();
        let WriteOp::Update { resource, .. } = &entries[1].op else {
            panic!()
        };
        assert_eq!(
            resource["subject"]["reference"],
            format!("Patient/{patient}")
        );
    }

    #[test]
    fn a_bad_transaction_entry_refuses_the_transaction() {
        let text = r#"{"resourceType":"Bundle","type":"transaction","entry":[
            {"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},
            {"request":{"method":"GET","url":"Patient"}}]}"#;
        let u = units_of(&text.replace('\n', " "), &name(), 1);
        assert_eq!(u.len(), 2);
        assert!(u.iter().all(|u| matches!(u, Unit::Reject(..))));
    }
}
