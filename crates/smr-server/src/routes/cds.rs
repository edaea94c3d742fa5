//! CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/) under `/cds-services`.
//!
//! - `GET /cds-services`: discovery (`{"services": [...]}`): `smr-pgx-order-select`
//!   (order-select), `smr-pgx-order-sign` (order-sign), `smr-pgx-patient-view` (patient-view).
//! - `POST /cds-services/{id}`: a hook request → `{"cards": [...]}`. Prefetched items are used
//!   when the client sends them (`null` or absent → SMR searches its own store). The order
//!   hooks add medicines safety cards (`smr-cds::safety`): the draft orders checked against the
//!   patient's whole record as SMR holds it (never a prefetch: consent decides what each card
//!   may name). Malformed requests → 400 `{"error": "..."}`; unknown service → 404.
//! - `POST /cds-services/{id}/feedback`: `{"feedback": [...]}` → one AuditEvent per item, all
//!   in one transaction, → 200 `{"stored": ["AuditEvent/…"]}`. AuditEvent because feedback is
//!   a record of what a user did with an alert (accepted/overridden, when, why), which is what
//!   AuditEvent is for, SMR serves and validates it, and it does not touch the clinical record
//!   (a DetectedIssue mitigation would assert something clinical, and order-select cards have no
//!   DetectedIssue to mitigate).
//! - `GET /cds-services/events[?patient={id}]`: Server-Sent Events, one `detected-issue` event
//!   (`data: {"issue":"DetectedIssue/…","patient":"Patient/…"}`) per DetectedIssue the
//!   re-check creates.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Path, Query, State};
use axum::http::{Request, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde_json::{Value, json};
use smr_app::cds::{CdsCall, CdsPatient};
use smr_app::{AppError, RequestContext};
use smr_cds::hooks::{self, Hook, RequestError};
use smr_cds::{Card, PatientResults, genotype};
use tokio::sync::broadcast::error::RecvError;

use crate::app::AppState;
use crate::auth::Ctx;
use crate::error::ApiError;

/// A CDS Hooks error: a JSON object, not an OperationOutcome (CDS clients are not FHIR clients).
pub struct CdsError {
    status: StatusCode,
    message: String,
}

impl CdsError {
    fn bad(message: impl Into<String>) -> Self {
        CdsError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl From<RequestError> for CdsError {
    fn from(e: RequestError) -> Self {
        CdsError::bad(e.to_string())
    }
}

impl From<ApiError> for CdsError {
    fn from(e: ApiError) -> Self {
        let message = e
            .issues
            .iter()
            .map(|i| i.diagnostics.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        // Store-side validation of what the client sent is the client's error.
        let status = if e.status == StatusCode::UNPROCESSABLE_ENTITY {
            StatusCode::BAD_REQUEST
        } else {
            e.status
        };
        CdsError { status, message }
    }
}

impl From<AppError> for CdsError {
    fn from(e: AppError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<smr_store::StoreError> for CdsError {
    fn from(e: smr_store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for CdsError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": self.message}))).into_response()
    }
}

pub async fn discovery() -> Json<Value> {
    Json(hooks::discovery())
}

async fn read_body(state: &AppState, request: Request<Body>) -> Result<Bytes, CdsError> {
    let limit = state.config.max_body_bytes;
    to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| CdsError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("request body exceeds the limit of {limit} bytes"),
        })
}

async fn read_json(state: &AppState, request: Request<Body>) -> Result<Value, CdsError> {
    let bytes = read_body(state, request).await?;
    Ok(crate::http::parse_json(&bytes)?)
}

fn service(id: &str) -> Result<&'static hooks::Service, CdsError> {
    hooks::service(id).ok_or_else(|| CdsError {
        status: StatusCode::NOT_FOUND,
        message: format!("no CDS service '{id}'"),
    })
}

/// The genotypes prefetch read into results, or the reading of the same text kept from an
/// earlier call (see `results_cache::PrefetchMemo`).
fn prefetched_results(state: &AppState, text: &str) -> Result<Arc<PatientResults>, CdsError> {
    if let Some(hit) = state.prefetch_memo.get(text) {
        return Ok(hit);
    }
    let (ok, bad) = genotype::results_from_bundle_json(text)
        .map_err(|e| CdsError::bad(format!("prefetch.genotypes: {e}")))?;
    for (r, e) in bad {
        tracing::warn!(observation = ?r, error = %e, "prefetched pharmacogenomic result not usable");
    }
    let results = Arc::new(PatientResults::new(ok));
    state.prefetch_memo.put(text, Arc::clone(&results));
    Ok(results)
}

/// The hook response, serialized straight from the cards.
#[derive(serde::Serialize)]
pub struct CardsResponse {
    cards: Vec<Card>,
}

/// A card saying SMR could make no check, and why: a prescriber must be able to tell
/// "checked, nothing to report" from "not checked".
fn no_check_card(summary: String, detail: String) -> Card {
    Card {
        uuid: uuid::Uuid::new_v4().to_string(),
        summary,
        detail: Some(detail),
        indicator: smr_cds::Indicator::Info,
        source: smr_cds::cards::Source {
            label: "SMR (Single Medication Record)".into(),
            url: None,
            topic: None,
        },
        suggestions: Vec::new(),
        selection_behavior: None,
        override_reasons: Vec::new(),
    }
}

pub async fn invoke(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    request: Request<Body>,
) -> Result<Response, CdsError> {
    let service = service(&id)?;
    let body = read_body(&state, request).await?;
    // The strict JSON rules (duplicate keys, numbers, depth) for the whole request, prefetch
    // included, before it is read as borrowed raw parts.
    crate::http::check_json(&body)?;
    let req = hooks::parse_request(service, &body)?;
    let call = state
        .app
        .cds_call(&ctx, service.id, &req.patient_id)
        .await?;
    let patient = call.patient;
    let orders_hook = service.hook != Hook::PatientView;
    if patient == CdsPatient::Unknown && req.genotypes.is_none() && req.issues.is_none() {
        let checks = if orders_hook {
            "no pharmacogenomic or medicines safety check was made"
        } else {
            "no pharmacogenomic check was made"
        };
        let cards = vec![no_check_card(
            format!("SMR holds no record for this patient: {checks}"),
            format!(
                "Patient `{}` is not on the Single Medication Record, and the request sent no \
                 prefetched results, so SMR could not check this order against genomic results{}. \
                 This is not a sign that none exist.",
                req.patient_id,
                if orders_hook {
                    " nor against the patient's medicines, allergies and renal function"
                } else {
                    ""
                }
            ),
        )];
        return cards_response(cards);
    }
    let mut cards = hook_cards(&state, &ctx, service, &req, &call).await?;
    if orders_hook {
        cards.extend(safety_cards(&state, &ctx, service, &req, &call).await?);
        // PGx and safety cards together, most urgent first (a stable sort keeps each
        // list's own order within an indicator).
        cards.sort_by_key(|c| std::cmp::Reverse(c.indicator));
    }
    if patient == CdsPatient::Known {
        // So the cards' feedback reaches this patient's audit trail and the alert measures.
        let uuids: Vec<&str> = cards.iter().map(|c| c.uuid.as_str()).collect();
        state.app.cards_issued(&req.patient_id, &uuids);
    }
    cards_response(cards)
}

/// Medicines safety cards for the draft orders: checked against the patient's whole current
/// record as SMR holds it, each entry marked visible or not to the caller (consent).
async fn safety_cards(
    state: &AppState,
    ctx: &RequestContext,
    service: &hooks::Service,
    req: &smr_cds::HookRequest<'_>,
    call: &CdsCall,
) -> Result<Vec<Card>, CdsError> {
    let patient = call.patient;
    let orders = hooks::orders_to_check(service.hook, &req.context);
    if orders.is_empty() {
        return Ok(Vec::new());
    }
    if patient == CdsPatient::Unknown {
        return Ok(vec![no_check_card(
            "SMR holds no record for this patient: no medicines safety check was made".into(),
            format!(
                "Patient `{}` is not on the Single Medication Record, so SMR could not check this \
                 order against the patient's medicines, allergies and renal function.",
                req.patient_id
            ),
        )]);
    }
    let rules = match smr_safety::bundled() {
        Ok(rules) => rules,
        Err(e) => {
            tracing::error!(error = %e, "medicines safety rules unusable");
            return Ok(vec![no_check_card(
                "No medicines safety check was made: SMR's safety rules are unavailable".into(),
                "SMR could not load its medicines safety rules, so this order was not checked for \
                 interactions, duplication, allergies or renal dosing. Check by hand."
                    .into(),
            )]);
        }
    };
    let inputs = state
        .app
        .cds_call_safety_inputs(ctx, &req.patient_id, call)
        .await?;
    let all_drafts = hooks::orders_to_check(Hook::OrderSign, &req.context);
    let lookup = state.app.medicine_lookup();
    Ok(smr_cds::safety::order_cards(
        &orders,
        &all_drafts,
        smr_cds::safety::RecordForChecks {
            medicines: &inputs.medicines,
            allergies: &inputs.allergies,
            renal: &inputs.renal,
            now: inputs.now,
        },
        lookup.as_ref(),
        rules,
    ))
}

async fn hook_cards(
    state: &AppState,
    ctx: &RequestContext,
    service: &hooks::Service,
    req: &smr_cds::HookRequest<'_>,
    call: &CdsCall,
) -> Result<Vec<Card>, CdsError> {
    let cards: Vec<Card> = match service.hook {
        Hook::OrderSelect | Hook::OrderSign => {
            let orders = hooks::orders_to_check(service.hook, &req.context);
            // Most orders are for medicines without PGx guidance: then neither the prefetch
            // nor the store is read.
            let results = if !req.needs_results() {
                Arc::new(PatientResults::default())
            } else {
                match req.genotypes {
                    Some(raw) => prefetched_results(state, raw.get())?,
                    None => {
                        state
                            .app
                            .cds_pgx_results(ctx, &req.patient_id, call)
                            .await?
                    }
                }
            };
            // Conditions and age decide whether UK testing guidance for a population applies
            // (read from the prefetch only; when absent the card says who it applies to).
            let today = smr_fhir::datetime::format_instant(crate::bundle::now_micros());
            hooks::order_cards_in_context(&orders, &results, &req.patient_context(&today))
        }
        Hook::PatientView => {
            let (issues, withheld): (Vec<Value>, usize) = match req.issues {
                Some(raw) => {
                    let bundle: Value = serde_json::from_str(raw.get())
                        .map_err(|e| CdsError::bad(format!("prefetch.issues: {e}")))?;
                    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
                        return Err(CdsError::bad("prefetch.issues must be a FHIR Bundle"));
                    }
                    let issues = bundle
                        .get("entry")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|e| e.get("resource").cloned())
                        .collect();
                    (issues, 0)
                }
                None => {
                    let found = state.app.pgx_issues(ctx, &req.patient_id).await?;
                    (found.visible, found.withheld)
                }
            };
            let mut cards: Vec<Card> = issues
                .iter()
                .filter(|i| i.get("resourceType").and_then(Value::as_str) == Some("DetectedIssue"))
                .filter(|i| smr_cds::issue::is_open_pgx_issue(i))
                .map(smr_cds::issue::card_from_issue)
                .collect();
            if withheld > 0 {
                // Said without naming the medicine: the patient withholds it from this caller.
                let mut card = no_check_card(
                    "A medicine you cannot see is affected by a pharmacogenomic result".into(),
                    format!(
                        "{withheld} open pharmacogenomic issue(s) concern a medicine the patient \
                         has chosen to withhold from your organisation or care setting. Ask the \
                         patient or their GP before prescribing."
                    ),
                );
                card.indicator = smr_cds::Indicator::Warning;
                cards.push(card);
            }
            cards.sort_by_key(|c| std::cmp::Reverse(c.indicator));
            cards
        }
    };
    Ok(cards)
}

fn cards_response(cards: Vec<Card>) -> Result<Response, CdsError> {
    // Written into a buffer sized for a typical answer (one card with two suggested orders is
    // ≈ 4 KB), rather than one that starts small and is copied as it grows.
    let mut body = Vec::with_capacity(8 * 1024);
    serde_json::to_writer(&mut body, &CardsResponse { cards }).map_err(|e| CdsError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("could not write the cards: {e}"),
    })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

pub async fn feedback(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    request: Request<Body>,
) -> Result<Json<Value>, CdsError> {
    let service = service(&id)?;
    let body = read_json(&state, request).await?;
    let items = body
        .get("feedback")
        .and_then(Value::as_array)
        .filter(|f| !f.is_empty())
        .ok_or_else(|| CdsError::bad("'feedback' must be a non-empty array"))?;
    let now = smr_fhir::datetime::format_instant(crate::bundle::now_micros());
    let events = items
        .iter()
        .map(|item| Ok(hooks::feedback_audit_event(service.id, item, &now)?))
        .collect::<Result<Vec<_>, CdsError>>()?;
    let stored = state
        .app
        .record_cds_feedback(&ctx, service.id, events)
        .await?;
    Ok(Json(json!({"stored": stored})))
}

#[derive(serde::Deserialize)]
pub struct EventsQuery {
    patient: Option<String>,
}

pub async fn events(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, CdsError> {
    let patient = q
        .patient
        .map(|p| p.strip_prefix("Patient/").unwrap_or(&p).to_owned());
    // Subscribed before the checks so nothing created meanwhile is missed; every event is
    // then passed through the caller's filter (relationship and consent).
    let rx = state.app.issue_events();
    let filter = Arc::new(state.app.event_filter(&ctx, patient.as_deref()).await?);
    let app = state.app.clone();
    let stream =
        futures_util::stream::unfold((rx, filter, app), |(mut rx, filter, app)| async move {
            loop {
                match rx.recv().await {
                    Ok(e) => {
                        if !filter.allows(&app, &e).await {
                            continue;
                        }
                        let data =
                            json!({"issue": e.issue, "patient": format!("Patient/{}", e.patient)})
                                .to_string();
                        return Some((
                            Ok(Event::default().event("detected-issue").data(data)),
                            (rx, filter, app),
                        ));
                    }
                    // A lagging subscriber is told how many events it missed, then carries on.
                    Err(RecvError::Lagged(n)) => {
                        return Some((
                            Ok(Event::default().event("lagged").data(n.to_string())),
                            (rx, filter, app),
                        ));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
