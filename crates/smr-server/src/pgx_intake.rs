//! Pharmacogenomic results coming in, and what follows from them.
//!
//! - `POST /fhir/Patient/{id}/$pgx-outside-calls`: a PharmCAT outside-call file, stored as one
//!   genotype Observation (LOINC 84413-4) and one phenotype Observation (LOINC 53040-2) per
//!   gene plus one Provenance, in one transaction. The body is either the TSV itself
//!   (`Content-Type: text/tab-separated-values` or `text/plain`; optional `?performer=Organization/{id}`
//!   or `Device/{id}` names the lab) or a FHIR `Parameters` with `outsideCalls` (valueString)
//!   and optional `performer` (valueReference). A bad file is a 400 OperationOutcome with one
//!   issue per bad line, and nothing is stored.
//! - [`after_write`]: when a write stores a genotype/phenotype Observation, the patient's
//!   active MedicationRequests and MedicationStatements are re-checked and one DetectedIssue is
//!   created per affected medicine (conditional create on its identifier, so a repeat creates
//!   nothing). Failures are logged, never returned: the client's write has already succeeded.
//! - [`subscribe`]: every DetectedIssue created is announced on a process-wide broadcast
//!   channel, streamed by `GET /cds-services/events` (Server-Sent Events). It lives here rather
//!   than in `AppState` so the re-check needs nothing from the router's state but the store.

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use smr_cds::genotype::{self, GeneResult, PatientResults};
use smr_fhir::query::{self, Handling};
use smr_fhir::{Issue, IssueCode, datetime};
use smr_pgx::{OutsideCall, interpret};
use smr_store::{Store, StoredResource, WriteOp, WriteOutcome};
use tokio::sync::broadcast;

use crate::app::AppState;
use crate::bundle::{BundleWriter, full_url, now_micros};
use crate::error::ApiError;
use crate::http::{base_url, fhir_json_response};

/// A DetectedIssue SMR created: `DetectedIssue/{id}` and `Patient/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueEvent {
    pub issue: String,
    pub patient: String,
}

/// Slow subscribers lose the oldest events (and are told how many) rather than holding
/// writers back.
static EVENTS: LazyLock<broadcast::Sender<IssueEvent>> =
    LazyLock::new(|| broadcast::channel(1024).0);

pub fn subscribe() -> broadcast::Receiver<IssueEvent> {
    EVENTS.subscribe()
}

fn now() -> String {
    datetime::format_instant(now_micros())
}

/// Every match of a search written as `Type?a=b&c=d`, up to
/// `MAX_COUNT`: a patient with more PGx results or active medicines than that is not expected.
pub(crate) async fn search_all(
    store: &Store,
    search: &str,
) -> Result<Vec<StoredResource>, ApiError> {
    let (res_type, query_text) = search.split_once('?').unwrap_or((search, ""));
    let pairs = crate::http::query_pairs(Some(query_text));
    let mut parsed = query::parse(res_type, &pairs, Handling::Strict)
        .map_err(|issues| ApiError::issues(StatusCode::BAD_REQUEST, issues))?;
    parsed.request.count = query::MAX_COUNT;
    // Only the matches are used: skip the COUNT query an accurate total would cost.
    parsed.request.total = query::TotalMode::None;
    Ok(store.search(&parsed.request).await?.matches)
}

fn parse_body(r: &StoredResource) -> Option<Value> {
    serde_json::from_str(&r.body).ok()
}

/// The patient's usable pharmacogenomic results (one per gene). Results that cannot be read
/// are logged and left out: one bad Observation must not hide the others.
pub(crate) async fn patient_results(
    store: &Store,
    patient_id: &str,
) -> Result<Vec<GeneResult>, ApiError> {
    let found = search_all(store, &smr_cds::hooks::genotype_query(patient_id)).await?;
    let mut results = Vec::new();
    for r in &found {
        match genotype::read_observation_json(&r.body) {
            Ok(Some(g)) => results.push(g),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(observation = %r.reference(), error = %e, "pharmacogenomic result not usable")
            }
        }
    }
    Ok(genotype::select_results(results))
}

/// [`patient_results`] through the state's cache, when the store can say whether it is
/// current (see `results_cache`).
pub(crate) async fn cached_patient_results(
    state: &AppState,
    patient_id: &str,
) -> Result<Arc<PatientResults>, ApiError> {
    let read = |results| Arc::new(PatientResults::new(results));
    // The count is taken before the read: see `smr_store::Store::change_count`.
    let Some(count) = state.store.change_count("Observation") else {
        return Ok(read(patient_results(&state.store, patient_id).await?));
    };
    if let Some(hit) = state.pgx_results.get(patient_id, count) {
        return Ok(hit);
    }
    let results = read(patient_results(&state.store, patient_id).await?);
    state
        .pgx_results
        .put(patient_id, count, Arc::clone(&results));
    Ok(results)
}

fn patient_of_subject(obs: &Value) -> Option<String> {
    let reference = obs.pointer("/subject/reference").and_then(Value::as_str)?;
    let mut parts = reference.rsplit('/');
    let id = parts.next()?;
    (parts.next()? == "Patient").then(|| id.to_owned())
}

/// Re-checks the medicines of every patient whose pharmacogenomic results were just written.
/// Never fails the caller's write: errors are logged.
pub async fn after_write(state: &AppState, outcomes: &[WriteOutcome]) {
    let mut patients = BTreeSet::new();
    for o in outcomes {
        let (WriteOutcome::Created(r) | WriteOutcome::Updated(r)) = o else {
            continue;
        };
        // Cheap test first: most writes are not Observations.
        if r.res_type != "Observation" {
            continue;
        }
        let Some(body) = parse_body(r) else { continue };
        if genotype::is_pgx_observation(&body)
            && let Some(p) = patient_of_subject(&body)
        {
            patients.insert(p);
        }
    }
    for patient in patients {
        if let Err(e) = recheck(&state.store, &patient).await {
            tracing::error!(patient = %patient, issues = ?e.issues, "pharmacogenomic re-check failed");
        }
    }
}

/// Re-checks every patient with a genotype on record: for data that reached the store without
/// passing through the HTTP write path (e.g. the synthetic population `smr serve` loads).
/// Returns how many DetectedIssues were created; failures for one patient are logged and the
/// others still checked.
pub async fn recheck_all(store: &Store) -> Result<usize, String> {
    let pairs = vec![("code".to_owned(), "http://loinc.org|84413-4".to_owned())];
    let mut request = query::parse("Observation", &pairs, Handling::Strict)
        .map_err(|issues| format!("{issues:?}"))?
        .request;
    request.count = query::MAX_COUNT;
    request.total = query::TotalMode::None;
    let mut patients = BTreeSet::new();
    loop {
        let page = store.search(&request).await.map_err(|e| e.to_string())?;
        for r in &page.matches {
            if let Some(p) = parse_body(r).as_ref().and_then(patient_of_subject) {
                patients.insert(p);
            }
        }
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
    }
    let mut created = 0;
    for patient in patients {
        match recheck(store, &patient).await {
            Ok(ids) => created += ids.len(),
            Err(e) => {
                tracing::error!(patient = %patient, issues = ?e.issues, "pharmacogenomic re-check failed")
            }
        }
    }
    Ok(created)
}

/// Creates the DetectedIssues for one patient's current medicines; returns the ids created.
pub(crate) async fn recheck(store: &Store, patient_id: &str) -> Result<Vec<String>, ApiError> {
    let results = patient_results(store, patient_id).await?;
    if results.is_empty() {
        return Ok(Vec::new());
    }
    let mut medicines = search_all(
        store,
        &format!("MedicationRequest?patient={patient_id}&status=active"),
    )
    .await?;
    medicines.extend(
        search_all(
            store,
            &format!("MedicationStatement?patient={patient_id}&status=active"),
        )
        .await?,
    );
    let patient_ref = format!("Patient/{patient_id}");
    let identified = now();
    let mut created = Vec::new();
    for m in &medicines {
        let Some(order) = parse_body(m) else { continue };
        for finding in smr_cds::assess_order(&order, &results) {
            let Some(issue) = smr_cds::issue::detected_issue(&finding, &patient_ref, &identified)
            else {
                continue;
            };
            let Some(value) = smr_cds::issue::identifier_value(&finding) else {
                continue;
            };
            let condition = vec![(
                "identifier".to_owned(),
                format!("{}|{value}", smr_cds::issue::identifier_system()),
            )];
            let if_none_exist = query::parse("DetectedIssue", &condition, Handling::Strict)
                .map_err(|issues| ApiError::issues(StatusCode::INTERNAL_SERVER_ERROR, issues))?
                .request;
            let op = WriteOp::Create {
                resource: issue,
                full_url: None,
                if_none_exist: Some(if_none_exist),
            };
            if let WriteOutcome::Created(r) = store.write_one(op).await? {
                let issue = r.reference();
                // No subscribers is normal; the send error only says so.
                let _ = EVENTS.send(IssueEvent {
                    issue: issue.clone(),
                    patient: patient_ref.clone(),
                });
                created.push(issue);
            }
        }
    }
    Ok(created)
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
        &parts.headers,
        &id,
        &calls,
        performer,
        "PharmCAT outside-call file",
        Vec::new(),
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
        &parts.headers,
        &id,
        &calls,
        performer,
        &label,
        not_stored,
    )
    .await
}

/// Stores calls for a patient as genotype and phenotype Observations plus one Provenance, in
/// one transaction, then runs the re-check. `not_stored` become warnings in the response.
async fn store_calls(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    calls: &[OutsideCall],
    performer: Option<Value>,
    source_label: &str,
    not_stored: Vec<Issue>,
) -> Result<Response, ApiError> {
    // 404 before anything is written if the patient is not there.
    state.store.read("Patient", id).await?;
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
    let ctx = genotype::ResultContext {
        patient_ref: &patient_ref,
        performer: obs_performer,
        issued: &issued,
    };
    for call in calls {
        call_ops(call, ctx, &mut ops, &mut targets);
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
    let outcomes = state.store.transaction(ops).await?;
    after_write(state, &outcomes).await;
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
