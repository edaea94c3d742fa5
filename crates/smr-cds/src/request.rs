//! Reading a CDS Hooks request, in one pass over the body where possible.
//!
//! A request's bytes are mostly its genotypes prefetch (≈ 14 KB for a dozen Observations),
//! and most orders are for medicines without pharmacogenomic guidance, which need no results
//! at all. So the reader works in the body's own order (`hook`, `hookInstance`, `context`,
//! `prefetch`, as clients send them):
//!
//! - `context` becomes a `serde_json::Value` (it is small, and orders are read from it);
//! - on reaching `prefetch.genotypes` with the context already read, it knows whether any
//!   draft order has PGx guidance: if so the Bundle is read straight into
//!   [`ObservationView`]s (one pass, nothing but the read elements allocated); if not, or if
//!   the context comes later, it is only delimited and kept as raw text;
//! - every other element is skipped unread.
//!
//! If the one-pass reading fails because some element has the wrong JSON type, the body is
//! read again keeping each prefetch item raw, so that the fault is reported against the one
//! Observation that has it (see [`genotype::results_from_bundle_json`]) and the others are
//! still used.
//!
//! [`ObservationView`]: crate::view::ObservationView

use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::genotype::{self, BundleError, GeneResult, UnreadableResults};
use crate::hooks::{Hook, RequestError, Service, orders_need_results, orders_to_check};
use crate::view::{ObservationBundleView, Text};

/// The genotypes prefetch, read: usable results and the entries that could not be read.
pub type PrefetchedResults = Result<(Vec<GeneResult>, UnreadableResults), BundleError>;

/// `prefetch.genotypes` as read.
#[derive(Debug)]
enum Genotypes<'a> {
    /// Delimited only; read on demand.
    Raw(&'a RawValue),
    /// Read in the one pass (an order needed it).
    Read(ObservationBundleView<'a>),
}

/// The parts of a request SMR uses.
#[derive(Debug)]
pub struct HookRequest<'a> {
    pub patient_id: String,
    pub context: Value,
    /// `prefetch.genotypes`, when supplied (`null` means the client could not fetch it).
    genotypes: Option<Genotypes<'a>>,
    /// `prefetch.issues` as JSON text, when supplied.
    pub issues: Option<&'a RawValue>,
    /// Whether any order to check has PGx guidance (see [`HookRequest::needs_results`]).
    needs_results: bool,
}

impl HookRequest<'_> {
    /// Whether any draft order to check names a medicine with pharmacogenomic guidance, so
    /// that the patient's results are needed at all (never for `patient-view`).
    pub fn needs_results(&self) -> bool {
        self.needs_results
    }

    /// Whether the client sent the genotypes prefetch.
    pub fn has_prefetched_results(&self) -> bool {
        self.genotypes.is_some()
    }

    /// The genotypes prefetch read into results, when supplied.
    pub fn prefetched_results(&self) -> Option<PrefetchedResults> {
        Some(match self.genotypes.as_ref()? {
            Genotypes::Raw(raw) => genotype::results_from_bundle_json(raw.get()),
            Genotypes::Read(bundle) => genotype::results_from_bundle_view(bundle),
        })
    }
}

/// The request's elements, as read by [`RequestSeed`] or [`RawRequestDoc`].
#[derive(Default)]
struct RequestParts<'a> {
    hook: Option<Text<'a>>,
    hook_instance: Option<Text<'a>>,
    context: Option<Value>,
    genotypes: Option<Genotypes<'a>>,
    issues: Option<&'a RawValue>,
    /// Worked out when the prefetch was met after the context.
    needs_results: Option<bool>,
}

/// The one-pass reader: knows the hook, so it can tell from the context whether the
/// genotypes will be needed before it reaches them.
struct RequestSeed {
    hook: Hook,
}

impl RequestSeed {
    fn needs_results(&self, context: &Value) -> bool {
        self.hook != Hook::PatientView && orders_need_results(&orders_to_check(self.hook, context))
    }
}

impl<'de> DeserializeSeed<'de> for RequestSeed {
    type Value = RequestParts<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RequestSeed {
    type Value = RequestParts<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a CDS Hooks request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut parts = RequestParts::default();
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match &*key {
                "hook" => parts.hook = map.next_value()?,
                "hookInstance" => parts.hook_instance = map.next_value()?,
                "context" => parts.context = map.next_value()?,
                "prefetch" => {
                    let read = parts.context.as_ref().map(|c| self.needs_results(c));
                    parts.needs_results = read;
                    let read = read.unwrap_or(false);
                    if let Some(p) = map.next_value_seed(PrefetchSeed { read })? {
                        parts.genotypes = p.genotypes;
                        parts.issues = p.issues;
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(parts)
    }
}

/// `prefetch` (an object or `null`); `read`: read the genotypes now rather than keep them raw.
struct PrefetchSeed {
    read: bool,
}

struct Prefetch<'a> {
    genotypes: Option<Genotypes<'a>>,
    issues: Option<&'a RawValue>,
}

impl<'de> DeserializeSeed<'de> for PrefetchSeed {
    type Value = Option<Prefetch<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for PrefetchSeed {
    type Value = Option<Prefetch<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a prefetch object or null")
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut p = Prefetch {
            genotypes: None,
            issues: None,
        };
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match &*key {
                "genotypes" if self.read => {
                    p.genotypes = map
                        .next_value::<Option<ObservationBundleView<'de>>>()?
                        .map(Genotypes::Read);
                }
                "genotypes" => p.genotypes = not_null(map.next_value()?).map(Genotypes::Raw),
                "issues" => p.issues = not_null(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(p))
    }
}

fn not_null(v: Option<&RawValue>) -> Option<&RawValue> {
    v.filter(|v| v.get() != "null")
}

/// The second reading, for bodies the one-pass reader rejected: every prefetch item raw.
#[derive(Deserialize)]
struct RawRequestDoc<'a> {
    #[serde(borrow, default)]
    hook: Option<Text<'a>>,
    #[serde(borrow, default, rename = "hookInstance")]
    hook_instance: Option<Text<'a>>,
    #[serde(default)]
    context: Option<Value>,
    #[serde(borrow, default)]
    prefetch: Option<RawPrefetchDoc<'a>>,
}

#[derive(Deserialize)]
struct RawPrefetchDoc<'a> {
    #[serde(borrow, default)]
    genotypes: Option<&'a RawValue>,
    #[serde(borrow, default)]
    issues: Option<&'a RawValue>,
}

fn json_error(body: &[u8], e: serde_json::Error) -> RequestError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => RequestError::Json(e.to_string()),
        Category::Data if !body.trim_ascii_start().starts_with(b"{") => RequestError::NotObject,
        Category::Data => {
            RequestError::Invalid(format!("request does not match CDS Hooks 2.0: {e}"))
        }
    }
}

/// Reads a hook request from the body as sent.
pub fn parse_request<'a>(
    service: &Service,
    body: &'a [u8],
) -> Result<HookRequest<'a>, RequestError> {
    // UTF-8 is checked once for the whole body, so the parser need not check every string.
    let text = std::str::from_utf8(body)
        .map_err(|e| RequestError::Json(format!("the body is not UTF-8: {e}")))?;
    let seed = RequestSeed { hook: service.hook };
    let mut de = serde_json::Deserializer::from_str(text);
    let one_pass = RequestSeed { hook: service.hook }
        .deserialize(&mut de)
        .and_then(|parts| de.end().map(|()| parts));
    let parts = match one_pass {
        Ok(parts) => parts,
        Err(_) => {
            let doc: RawRequestDoc<'a> =
                serde_json::from_str(text).map_err(|e| json_error(body, e))?;
            let (genotypes, issues) = doc
                .prefetch
                .map(|p| (not_null(p.genotypes), not_null(p.issues)))
                .unwrap_or_default();
            RequestParts {
                hook: doc.hook,
                hook_instance: doc.hook_instance,
                context: doc.context,
                genotypes: genotypes.map(Genotypes::Raw),
                issues,
                needs_results: None,
            }
        }
    };
    let (patient_id, context) =
        check_request(service, parts.hook, parts.hook_instance, parts.context)?;
    let needs_results = parts
        .needs_results
        .unwrap_or_else(|| seed.needs_results(&context));
    Ok(HookRequest {
        patient_id,
        context,
        genotypes: parts.genotypes,
        issues: parts.issues,
        needs_results,
    })
}

/// The checks every request passes, whichever way it was read: the hook, its instance, and
/// a context with a patient id (and draft orders, for the order hooks).
fn check_request(
    service: &Service,
    hook: Option<Text<'_>>,
    hook_instance: Option<Text<'_>>,
    context: Option<Value>,
) -> Result<(String, Value), RequestError> {
    let hook = hook.ok_or(RequestError::Missing("hook"))?;
    if &*hook != service.hook.name() {
        return Err(RequestError::WrongHook {
            expected: service.hook.name(),
            got: hook.0.into_owned(),
        });
    }
    hook_instance.ok_or(RequestError::Missing("hookInstance"))?;
    let context = context
        .filter(Value::is_object)
        .ok_or(RequestError::Missing("context"))?;
    let patient_id = context
        .get("patientId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(RequestError::Missing("context.patientId"))?;
    // A patient id goes into searches; keep it to FHIR id syntax.
    if patient_id.len() > 64
        || !patient_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(RequestError::Invalid(format!(
            "context.patientId '{patient_id}' is not a FHIR id"
        )));
    }
    let patient_id = patient_id.to_owned();
    if service.hook != Hook::PatientView {
        let orders = context
            .get("draftOrders")
            .ok_or(RequestError::Missing("context.draftOrders"))?;
        if orders.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
            return Err(RequestError::Invalid(
                "context.draftOrders must be a FHIR Bundle".into(),
            ));
        }
    }
    Ok((patient_id, context))
}
