//! Pharmacogenomic results coming in, and what follows from them.
//!
//! - `POST /fhir/Patient/{id}/$pgx-outside-calls`: a PharmCAT outside-call file, stored as one
//!   genotype Observation (LOINC 84413-4) and one phenotype Observation (LOINC 53040-2) per
//!   gene plus one Provenance, in one transaction. The body is either the TSV itself
//!   (`Content-Type: text/tab-separated-values` or `text/plain`; optional `?performer=Organization/{id}`
//!   or `Device/{id}` names the lab) or a FHIR `Parameters` with `outsideCalls` (valueString)
//!   and optional `performer` (valueReference). A bad file is a 400 OperationOutcome with one
//!   issue per bad line, and nothing is stored.
//! - `POST /fhir/Patient/{id}/$pgx-vcf`: a VCF, called and stored the same way.
//!
//! This module reads the bodies into write operations; storing them (with the caller's
//! authorisation and audit) and the re-check of the patient's medicines that follows are
//! the application layer's (`smr_app::App::import_pgx`).

use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use smr_cds::genotype;
use smr_fhir::{Issue, IssueCode, datetime};
use smr_pgx::{OutsideCall, interpret};
use smr_store::WriteOp;

use crate::app::AppState;
use crate::auth::Ctx;
use crate::bundle::{BundleWriter, full_url, now_micros};
use crate::error::ApiError;
use crate::http::{base_url, fhir_json_response};

fn now() -> String {
    datetime::format_instant(now_micros())
}

// ---------------------------------------------------------------------------
// $pgx-outside-calls

/// The body, up to the configured limit (413 beyond it).
async fn read_limited(state: &AppState, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let limit = state.config.max_body_bytes;
    to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            IssueCode::TooLong,
            format!("request body exceeds the limit of {limit} bytes"),
        )
    })
}

fn bad_request_json(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

/// The TSV and the performer reference from the request body.
fn read_request(
    headers: &HeaderMap,
    query: Option<&str>,
    bytes: &[u8],
) -> Result<(String, Option<Value>), ApiError> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_else(|| "text/plain".into());
    match media.as_str() {
        "text/tab-separated-values" | "text/plain" => {
            let text = String::from_utf8(bytes.to_vec())
                .map_err(|_| bad_request_json("the outside-call file is not UTF-8 text"))?;
            let performer = crate::http::query_pairs(query)
                .into_iter()
                .find(|(k, _)| k == "performer")
                .map(|(_, v)| performer_reference(&v))
                .transpose()?;
            Ok((text, performer))
        }
        "application/fhir+json" | "application/json" => {
            let body = crate::http::parse_json(bytes)?;
            if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
                return Err(bad_request_json(
                    "a JSON body must be a Parameters resource",
                ));
            }
            let params = body
                .get("parameter")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let find = |name: &str| {
                params
                    .iter()
                    .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
                    .cloned()
            };
            let text = find("outsideCalls")
                .and_then(|p| {
                    p.get("valueString")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .ok_or_else(|| {
                    bad_request_json(
                        "Parameters needs an 'outsideCalls' parameter with a valueString",
                    )
                })?;
            let performer = match find("performer").and_then(|p| p.get("valueReference").cloned()) {
                Some(r) => Some(performer_reference(
                    r.get("reference")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                )?),
                None => None,
            };
            Ok((text, performer))
        }
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IssueCode::NotSupported,
            format!(
                "Content-Type '{other}' is not supported here; send text/tab-separated-values, text/plain or a FHIR Parameters"
            ),
        )),
    }
}

/// The lab, as `Organization/{id}` or `Device/{id}` (the types Provenance.agent.who allows
/// for a lab or an analyser).
fn performer_reference(text: &str) -> Result<Value, ApiError> {
    let ok = text.split_once('/').is_some_and(|(ty, id)| {
        matches!(ty, "Organization" | "Device")
            && !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    });
    if ok {
        Ok(json!({"reference": text}))
    } else {
        Err(bad_request_json(format!(
            "performer must be Organization/{{id}} or Device/{{id}}, got '{text}'"
        )))
    }
}

fn urn() -> String {
    format!("urn:uuid:{}", uuid::Uuid::new_v4())
}

fn create(resource: Value, full_url: &str) -> WriteOp {
    WriteOp::Create {
        resource,
        full_url: Some(full_url.to_owned()),
        if_none_exist: None,
    }
}

/// The genotype and phenotype Observations for one call, with their placeholders.
fn call_ops(
    call: &OutsideCall,
    ctx: genotype::ResultContext<'_>,
    ops: &mut Vec<WriteOp>,
    targets: &mut Vec<String>,
) {
    let gene = call.gene;
    let mut genotype_url = None;
    let (phenotype, score, note) = match &call.diplotype {
        Some(diplotype) => {
            let url = urn();
            ops.push(create(
                genotype::genotype_observation(ctx, gene, diplotype),
                &url,
            ));
            targets.push(url.clone());
            genotype_url = Some(url);
            let interp = interpret(gene, diplotype);
            let mut note = match &interp.phenotype {
                smr_pgx::Phenotype::Called(_) => format!(
                    "Phenotype assigned by SMR from the diplotype {} with the CPIC tables.",
                    interp.diplotype
                ),
                smr_pgx::Phenotype::Indeterminate { reason } => {
                    format!("No phenotype could be assigned: {reason}.")
                }
            };
            if let Some(lab) = call
                .phenotype
                .as_deref()
                .filter(|p| !p.eq_ignore_ascii_case(interp.phenotype.as_str()))
            {
                note.push_str(&format!(" The outside call reported '{lab}'; SMR's interpretation of the diplotype is used."));
            }
            (
                interp.phenotype.as_str().to_owned(),
                interp.activity_score.clone(),
                note,
            )
        }
        None => {
            let phenotype = call.phenotype.clone().unwrap_or_else(|| {
                format!(
                    "{gene} activity score {}",
                    call.activity_score.as_deref().unwrap_or("?")
                )
            });
            (
                phenotype,
                call.activity_score.clone(),
                "Phenotype as reported in the outside call (no diplotype given).".to_owned(),
            )
        }
    };
    let url = urn();
    let source = genotype::PhenotypeSource {
        activity_score: score.as_deref(),
        derived_from: genotype_url.as_deref(),
        note: &note,
    };
    let obs = genotype::phenotype_observation(ctx, gene, &phenotype, source);
    ops.push(create(obs, &url));
    targets.push(url);
}

pub async fn outside_calls(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    request: Request<Body>,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let bytes = read_limited(&state, body).await?;
    let (tsv, performer) = read_request(&parts.headers, parts.uri.query(), &bytes)?;
    let calls = smr_pgx::parse_outside_calls(&tsv).map_err(|e| {
        let issues = e
            .errors
            .iter()
            .map(|l| Issue::error(IssueCode::Invalid, l.to_string()))
            .collect();
        ApiError::issues(StatusCode::BAD_REQUEST, issues)
    })?;
    if calls.is_empty() {
        return Err(bad_request_json("the outside-call file has no calls"));
    }
    store_calls(
        &state,
        &ctx,
        &parts.headers,
        &id,
        &calls,
        performer,
        "PharmCAT outside-call file",
        Vec::new(),
        "$pgx-outside-calls",
    )
    .await
}

/// `POST /fhir/Patient/{id}/$pgx-vcf`: a single-sample GRCh38 VCF (`text/x-vcf`, `text/plain`
/// or `text/vcf`; optional `?performer=`), called with SMR's built-in allele definitions and
/// stored like outside calls. Only complete, unambiguous calls are stored: a gene with missing
/// defining positions, several equally good diplotypes, or no call is not guessed at — it is
/// reported in an OperationOutcome entry of the response, with the reason, and nothing is
/// stored for it.
pub async fn vcf(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    request: Request<Body>,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let bytes = read_limited(&state, body).await?;
    let media = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_else(|| "text/plain".into());
    if !matches!(media.as_str(), "text/x-vcf" | "text/vcf" | "text/plain") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IssueCode::NotSupported,
            format!("Content-Type '{media}' is not supported here; send text/x-vcf"),
        ));
    }
    let text =
        std::str::from_utf8(&bytes).map_err(|_| bad_request_json("the VCF is not UTF-8 text"))?;
    let performer = match parts.uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "performer")
            .map(|(_, v)| v.into_owned())
    }) {
        Some(p) => Some(performer_reference(&p)?),
        None => None,
    };
    let definitions = smr_pgx::vcf::DefinitionSet::builtin().map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            IssueCode::Exception,
            e.to_string(),
        )
    })?;
    let samples = smr_pgx::vcf::call_vcf(text, definitions)
        .map_err(|e| bad_request_json(format!("the VCF cannot be read: {e}")))?;
    let [sample] = samples.as_slice() else {
        return Err(bad_request_json(format!(
            "the VCF has {} samples; $pgx-vcf takes one patient's VCF (one sample)",
            samples.len()
        )));
    };
    let mut calls = Vec::new();
    let mut not_stored = Vec::new();
    for call in &sample.genes {
        let reason = if call.is_no_call() {
            Some(format!("no call ({})", call.notes.join("; ")))
        } else if call.ambiguous {
            Some(format!(
                "several diplotypes fit equally well: {}",
                call.diplotypes.join(", ")
            ))
        } else if call.partial {
            let missing: Vec<String> = call
                .missing_positions
                .iter()
                .map(|m| format!("{}:{}", m.chromosome, m.position))
                .collect();
            Some(format!(
                "defining positions missing from the VCF: {}",
                missing.join(", ")
            ))
        } else {
            None
        };
        match reason {
            Some(reason) => not_stored.push(
                Issue::error(
                    IssueCode::Informational,
                    format!("{}: not stored — {reason}", call.gene),
                )
                .at(format!("{}", call.gene)),
            ),
            None => calls.push(OutsideCall {
                line: 0,
                gene: call.gene,
                diplotype: call.diplotypes.first().cloned(),
                phenotype: None,
                activity_score: None,
            }),
        }
    }
    if calls.is_empty() {
        let mut error = ApiError::issues(StatusCode::UNPROCESSABLE_ENTITY, not_stored);
        error.issues.insert(
            0,
            Issue::error(
                IssueCode::Processing,
                "no gene could be called completely from this VCF; nothing stored",
            ),
        );
        return Err(error);
    }
    let label = format!(
        "GRCh38 VCF sample {} called by SMR (PharmCAT allele definitions)",
        sample.sample
    );
    store_calls(
        &state,
        &ctx,
        &parts.headers,
        &id,
        &calls,
        performer,
        &label,
        not_stored,
        "$pgx-vcf",
    )
    .await
}

/// Stores calls for a patient as genotype and phenotype Observations plus one Provenance, in
/// one transaction, then runs the re-check. `not_stored` become warnings in the response.
#[allow(clippy::too_many_arguments)]
async fn store_calls(
    state: &AppState,
    ctx: &smr_app::RequestContext,
    headers: &HeaderMap,
    id: &str,
    calls: &[OutsideCall],
    performer: Option<Value>,
    source_label: &str,
    not_stored: Vec<Issue>,
    operation: &'static str,
) -> Result<Response, ApiError> {
    let patient_ref = format!("Patient/{id}");
    let issued = now();
    let mut ops = Vec::new();
    let mut targets = Vec::new();
    // Observation.performer may name an Organization but not a Device; a Device lab stays on
    // the Provenance only.
    let obs_performer = performer.as_ref().filter(|p| {
        p.get("reference")
            .and_then(Value::as_str)
            .is_some_and(|r| r.starts_with("Organization/"))
    });
    let result_ctx = genotype::ResultContext {
        patient_ref: &patient_ref,
        performer: obs_performer,
        issued: &issued,
    };
    for call in calls {
        call_ops(call, result_ctx, &mut ops, &mut targets);
    }
    let who = performer
        .clone()
        .unwrap_or_else(|| json!({"display": "SMR import"}));
    ops.push(create(
        json!({
            "resourceType": "Provenance",
            "target": targets.iter().map(|t| json!({"reference": t})).collect::<Vec<_>>(),
            "recorded": issued,
            "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "CREATE", "display": "create"}]},
            "agent": [{
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "performer", "display": "Performer"}]},
                "who": who,
            }],
            "entity": [{"role": "source", "what": {"display": source_label}}],
        }),
        &urn(),
    ));
    let outcomes = state.app.import_pgx(ctx, id, ops, operation).await?;
    let base = base_url(state, headers);
    let mut bundle = BundleWriter::new("transaction-response", None, &[]);
    for o in &outcomes {
        if let Some(r) = o.resource() {
            let location = format!("{}/{}/_history/{}", r.res_type, r.id, r.version);
            bundle.entry(json!({"fullUrl": full_url(&base, r), "response": {"status": "201 Created", "location": location, "etag": r.etag()}}), Some(&r.body));
        }
    }
    if !not_stored.is_empty() {
        let warnings: Vec<Issue> = not_stored
            .into_iter()
            .map(|i| Issue {
                severity: smr_fhir::Severity::Warning,
                ..i
            })
            .collect();
        let outcome = smr_fhir::outcome::operation_outcome(&warnings).to_string();
        bundle.entry(json!({"response": {"status": "200 OK", "outcome": serde_json::from_str::<Value>(&outcome).unwrap_or_default()}}), None);
    }
    Ok(fhir_json_response(StatusCode::OK, bundle.finish()))
}
