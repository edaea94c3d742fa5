//! Reading a CDS Hooks request.
//!
//! A request's bytes are mostly its genotypes prefetch (≈ 14 KB for a dozen Observations), and
//! most orders are for medicines without pharmacogenomic guidance, which need no results at
//! all. So only `context` (small; the orders are read from it) becomes a `serde_json::Value`;
//! each prefetch item SMR reads is only delimited and kept as raw JSON text, read later if an
//! order needs it (into [`ObservationView`]s, see [`crate::view`] for why), and everything else
//! is skipped unread. Keeping the genotypes as text also lets the server memoise their reading
//! by content: an EHR sends the same prefetch with every order-select for a patient.
//!
//! [`ObservationView`]: crate::view::ObservationView

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::genotype::{self, BundleError, GeneResult, UnreadableResults};
use crate::hooks::{Hook, RequestError, Service, orders_need_results, orders_to_check};
use crate::view::Text;

/// The genotypes prefetch, read: usable results and the entries that could not be read.
pub type PrefetchedResults = Result<(Vec<GeneResult>, UnreadableResults), BundleError>;

/// The parts of a request SMR uses.
#[derive(Debug)]
pub struct HookRequest<'a> {
    pub patient_id: String,
    pub context: Value,
    /// `prefetch.genotypes` as JSON text, when supplied (`null` means the client could not
    /// fetch it).
    pub genotypes: Option<&'a RawValue>,
    /// `prefetch.issues` as JSON text, when supplied.
    pub issues: Option<&'a RawValue>,
    /// `prefetch.conditions` (the patient's active Conditions) as JSON text, when supplied.
    pub conditions: Option<&'a RawValue>,
    /// `prefetch.patient` as JSON text, when supplied.
    pub patient: Option<&'a RawValue>,
    /// Whether any order to check has PGx guidance (see [`HookRequest::needs_results`]).
    needs_results: bool,
}

impl HookRequest<'_> {
    /// Whether any draft order to check names a medicine with pharmacogenomic guidance, so
    /// that the patient's results are needed at all (never for `patient-view`).
    pub fn needs_results(&self) -> bool {
        self.needs_results
    }

    /// What the prefetch says about the patient beyond genotypes (conditions, age on
    /// `today`), for UK testing guidance that applies to a population. Read only when an
    /// order needs it; an unreadable item counts as not supplied.
    pub fn patient_context(&self, today: &str) -> crate::uk_guidance::PatientContext {
        let read =
            |raw: Option<&RawValue>| raw.and_then(|r| serde_json::from_str::<Value>(r.get()).ok());
        crate::uk_guidance::PatientContext::from_prefetch(
            read(self.conditions).as_ref(),
            read(self.patient).as_ref(),
            today,
        )
    }

    /// The genotypes prefetch read into results, when supplied.
    pub fn prefetched_results(&self) -> Option<PrefetchedResults> {
        self.genotypes
            .map(|raw| genotype::results_from_bundle_json(raw.get()))
    }
}

#[derive(Deserialize)]
struct RequestDoc<'a> {
    #[serde(borrow, default)]
    hook: Option<Text<'a>>,
    #[serde(borrow, default, rename = "hookInstance")]
    hook_instance: Option<Text<'a>>,
    #[serde(default)]
    context: Option<Value>,
    #[serde(borrow, default)]
    prefetch: Option<PrefetchDoc<'a>>,
}

/// The prefetch items SMR's services read; others (e.g. `patient`) are skipped unread.
#[derive(Deserialize)]
struct PrefetchDoc<'a> {
    #[serde(borrow, default)]
    genotypes: Option<&'a RawValue>,
    #[serde(borrow, default)]
    issues: Option<&'a RawValue>,
    #[serde(borrow, default)]
    conditions: Option<&'a RawValue>,
    #[serde(borrow, default)]
    patient: Option<&'a RawValue>,
}

fn not_null(v: Option<&RawValue>) -> Option<&RawValue> {
    v.filter(|v| v.get() != "null")
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
    let doc: RequestDoc<'a> = serde_json::from_str(text).map_err(|e| json_error(body, e))?;
    let (patient_id, context) = check_request(service, doc.hook, doc.hook_instance, doc.context)?;
    let (genotypes, issues, conditions, patient) = doc
        .prefetch
        .map(|p| {
            (
                not_null(p.genotypes),
                not_null(p.issues),
                not_null(p.conditions),
                not_null(p.patient),
            )
        })
        .unwrap_or_default();
    let needs_results = service.hook != Hook::PatientView
        && orders_need_results(&orders_to_check(service.hook, &context));
    Ok(HookRequest {
        patient_id,
        context,
        genotypes,
        issues,
        conditions,
        patient,
        needs_results,
    })
}

/// The checks every request passes: the hook, its instance, and
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
