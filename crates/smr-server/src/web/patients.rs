//! The clinician's pages: find a patient, open their record, and break-glass when there is
//! no care relationship. Each page makes the `smr-app` calls the FHIR API makes for the same
//! data (Patient search, `$medication-record`, Patient read, the genotype Observation search,
//! DetectedIssue search), so each is authorised and audited as the API call would be.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use smr_app::medication_record::RecordQuery;
use smr_app::{AppError, RequestContext};
use smr_fhir::query::{self, Handling};
use smr_web::pages::RecordContent;
use smr_web::patients::{PatientQuery, PatientSummary};
use smr_web::pgx::PgxPanel;
use smr_web::record::RecordView;

use super::page::{app_error, error_page, field, form_fields, is_fhir_id, rendered, viewer};
use crate::app::AppState;
use crate::auth::Ctx;
use crate::http::base_url;

/// Longest break-glass reason kept, as for the `X-Break-Glass-Reason` header.
const MAX_REASON_CHARS: usize = 1024;
/// Most patients a search page lists.
const SEARCH_PAGE: &str = "50";

#[derive(Debug, Deserialize)]
pub struct SearchParams {
    #[serde(default)]
    q: String,
}

/// `GET /app/patients?q=`: by NHS number or name, only patients the caller may see (the
/// FHIR Patient search, so care relationships and consent apply as there).
pub async fn search(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Query(params): Query<SearchParams>,
) -> Response {
    let viewer = viewer(&ctx);
    let Some(q) = PatientQuery::parse(&params.q) else {
        return rendered(
            StatusCode::OK,
            smr_web::pages::patients(&viewer, "", false, &[], None),
        );
    };
    let results = match find_patients(&state, &ctx, &q).await {
        Ok(found) => found,
        Err(e) => return app_error(&viewer, e),
    };
    let nhs = match &q {
        // Break-glass is offered only to roles that may use it.
        PatientQuery::NhsNumber(n) if smr_access::policy::may_break_glass(ctx.principal.role) => {
            Some(n.as_str())
        }
        _ => None,
    };
    rendered(
        StatusCode::OK,
        smr_web::pages::patients(&viewer, params.q.trim(), true, &results, nhs),
    )
}

async fn find_patients(
    state: &AppState,
    ctx: &RequestContext,
    q: &PatientQuery,
) -> Result<Vec<PatientSummary>, AppError> {
    let mut pairs = q.search_pairs();
    pairs.push(("_count".into(), SEARCH_PAGE.into()));
    let bodies = search_bodies(state, ctx, "Patient", &pairs).await?;
    Ok(bodies
        .iter()
        .filter_map(|b| serde_json::from_str(b).ok())
        .filter_map(|v| PatientSummary::from_resource(&v))
        .collect())
}

/// The matches of a FHIR search as the caller may see them (one page), through
/// `App::search` as the search route calls it.
pub(crate) async fn search_bodies(
    state: &AppState,
    ctx: &RequestContext,
    res_type: &str,
    pairs: &[(String, String)],
) -> Result<Vec<String>, AppError> {
    let parsed = query::parse(res_type, pairs, Handling::Strict).map_err(|issues| {
        AppError::BadRequest(
            issues
                .into_iter()
                .map(|i| i.diagnostics)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let query_text: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let page = state.app.search(ctx, &parsed.request, &query_text).await?;
    Ok(page.matches.into_iter().map(|r| r.body).collect())
}

/// A search whose refusal means "not shown to you" (a role that may not read genotypes, say):
/// the page leaves the panel out, as the API would refuse it.
fn optional(result: Result<Vec<String>, AppError>) -> Result<Vec<String>, AppError> {
    match result {
        Err(AppError::Forbidden(_)) => Ok(Vec::new()),
        other => other,
    }
}

/// Everything the record page shows, each part by its own audited `smr-app` call.
pub(crate) async fn load_record(
    state: &AppState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    patient_id: &str,
) -> Result<
    (
        Option<PatientSummary>,
        RecordView,
        PgxPanel,
        Vec<serde_json::Value>,
    ),
    AppError,
> {
    // First: it authorises the relationship (404 for an unknown patient, 403 without one).
    let bundle = state
        .app
        .medication_record(
            ctx,
            patient_id,
            &RecordQuery::default(),
            &base_url(state, headers),
        )
        .await?;
    let record = RecordView::from_bundle(&bundle);
    let patient = state
        .app
        .read(ctx, "Patient", patient_id)
        .await
        .ok()
        .and_then(|r| serde_json::from_str(&r.body).ok())
        .and_then(|v| PatientSummary::from_resource(&v));
    let genotype_search = smr_cds::hooks::genotype_query(patient_id);
    let (_, genotype_query) = genotype_search.split_once('?').unwrap_or_default();
    let pairs: Vec<(String, String)> = form_urlencoded::parse(genotype_query.as_bytes())
        .into_owned()
        .chain([("_count".to_owned(), "100".to_owned())])
        .collect();
    let observations = optional(search_bodies(state, ctx, "Observation", &pairs).await)?;
    let pgx = PgxPanel::build(&observations, &record.current_names());
    let issue_pairs = vec![
        ("patient".to_owned(), patient_id.to_owned()),
        ("_count".to_owned(), "100".to_owned()),
    ];
    let issues = optional(search_bodies(state, ctx, "DetectedIssue", &issue_pairs).await)?
        .iter()
        .filter_map(|b| serde_json::from_str(b).ok())
        .collect();
    Ok((patient, record, pgx, issues))
}

async fn record_page(
    state: &AppState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    patient_id: &str,
) -> Response {
    let viewer = viewer(ctx);
    match load_record(state, ctx, headers, patient_id).await {
        Ok((patient, record, pgx, issues)) => rendered(
            StatusCode::OK,
            smr_web::pages::record(
                &viewer,
                &RecordContent {
                    patient_id: patient_id.to_owned(),
                    patient,
                    record,
                    pgx,
                    alerts: smr_web::issues::active(&issues),
                    break_glass: ctx.break_glass.clone(),
                },
            ),
        ),
        // No care relationship: the prompt, none of the record.
        Err(AppError::Forbidden(reason))
            if !ctx.is_break_glass() && smr_access::policy::may_break_glass(ctx.principal.role) =>
        {
            rendered(
                StatusCode::FORBIDDEN,
                smr_web::pages::break_glass(&viewer, patient_id, &reason),
            )
        }
        Err(e) => app_error(&viewer, e),
    }
}

#[derive(Debug, Deserialize)]
pub struct TimelineParams {
    #[serde(default)]
    medicine: String,
}

/// `GET /app/patients/{id}/timeline?medicine=CODE|SYSTEM|CODE`: one medicine's entries across
/// settings (`$medication-record?medicine=`, authorised and audited as that call).
pub async fn timeline(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    Query(params): Query<TimelineParams>,
    headers: HeaderMap,
) -> Response {
    if !is_fhir_id(&id) {
        return not_a_patient(&ctx);
    }
    let viewer = viewer(&ctx);
    let medicine = params.medicine.trim();
    if medicine.is_empty() || medicine.ends_with('|') {
        return error_page(
            StatusCode::BAD_REQUEST,
            Some(&viewer),
            "Which medicine?",
            "A timeline needs the medicine's code (open it from the record).",
        );
    }
    let query = RecordQuery {
        medicine: Some(medicine.to_owned()),
        ..RecordQuery::default()
    };
    match state
        .app
        .medication_record(&ctx, &id, &query, &base_url(&state, &headers))
        .await
    {
        Ok(bundle) => rendered(
            StatusCode::OK,
            smr_web::timeline::page(&viewer, &id, &smr_web::timeline::from_bundle(&bundle)),
        ),
        Err(AppError::Forbidden(reason))
            if !ctx.is_break_glass() && smr_access::policy::may_break_glass(ctx.principal.role) =>
        {
            rendered(
                StatusCode::FORBIDDEN,
                smr_web::pages::break_glass(&viewer, &id, &reason),
            )
        }
        Err(e) => app_error(&viewer, e),
    }
}

fn not_a_patient(ctx: &RequestContext) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        Some(&viewer(ctx)),
        "Not found",
        "That is not a patient's address.",
    )
}

/// `GET /app/patients/{id}`: the record, or the break-glass prompt.
pub async fn record(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !is_fhir_id(&id) {
        return not_a_patient(&ctx);
    }
    record_page(&state, &ctx, &headers, &id).await
}

/// The caller's context for this one request with a break-glass reason, as the API's
/// `X-Break-Glass-Reason` header makes it; `None` without a reason.
fn break_glass_context(ctx: &RequestContext, reason: Option<&str>) -> Option<RequestContext> {
    let reason: String = reason?.chars().take(MAX_REASON_CHARS).collect();
    Some(RequestContext::new(
        ctx.principal.clone(),
        Some(reason),
        ctx.request_id.clone(),
    ))
}

/// `POST /app/patients/{id}/break-glass` (`reason=…`): the record, opened by break-glass for
/// this request only (audited as such; the patient sees it in their access log).
pub async fn break_glass_record(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !is_fhir_id(&id) {
        return not_a_patient(&ctx);
    }
    let fields = form_fields(body).await.unwrap_or_default();
    match break_glass_context(&ctx, field(&fields, "reason")) {
        Some(bg) => record_page(&state, &bg, &headers, &id).await,
        None => rendered(
            StatusCode::BAD_REQUEST,
            smr_web::pages::break_glass(
                &viewer(&ctx),
                &id,
                "Emergency access needs a reason: why must you open this record?",
            ),
        ),
    }
}

/// `POST /app/patients/break-glass` (`nhs=…&reason=…`): finds the patient by NHS number and
/// opens their record, both by break-glass.
pub async fn break_glass_search(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let viewer = viewer(&ctx);
    let fields = form_fields(body).await.unwrap_or_default();
    let Some(PatientQuery::NhsNumber(nhs)) = field(&fields, "nhs").and_then(PatientQuery::parse)
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            Some(&viewer),
            "That request could not be read",
            "Emergency access by NHS number needs a 10-digit NHS number.",
        );
    };
    let Some(bg) = break_glass_context(&ctx, field(&fields, "reason")) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            Some(&viewer),
            "A reason is needed",
            "Emergency access needs a reason: why must you open this record?",
        );
    };
    let found = match find_patients(&state, &bg, &PatientQuery::NhsNumber(nhs)).await {
        Ok(found) => found,
        Err(e) => return app_error(&viewer, e),
    };
    match found.as_slice() {
        [one] => record_page(&state, &bg, &headers, &one.id).await,
        _ => error_page(
            StatusCode::NOT_FOUND,
            Some(&viewer),
            "No such patient",
            "SMR holds no patient with that NHS number.",
        ),
    }
}
