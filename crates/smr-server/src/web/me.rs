//! `GET /app/me`: a signed-in patient's own view — their medicines in plain words, their
//! genomic results and what they mean, who opened their record (the audit trail a patient
//! may list, break-glass highlighted) and their consent choices. Each part is the `smr-app`
//! call the FHIR API makes for the same data, so a patient sees here exactly what the API
//! gives them.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use smr_app::WriteKind;
use smr_app::{AppError, RequestContext, Role};
use smr_store::AuditQuery;
use smr_store::WriteOp;
use smr_web::access_log::AccessEntry;
use smr_web::consent::{self, ConsentChoice};
use smr_web::pages::MeContent;

use super::page::{app_error, error_page, form_fields, rendered, viewer};
use super::patients::{load_record, search_bodies};
use crate::app::AppState;
use crate::auth::Ctx;

/// How many access-log records the page lists (newest first).
const ACCESS_LOG_PAGE: usize = 100;

#[derive(Debug, serde::Deserialize)]
pub struct MeParams {
    /// Set after the consent form was saved (post/redirect/get).
    #[serde(default)]
    saved: Option<String>,
}

/// The signed-in patient's own Patient id (`None` for anyone else).
fn own_patient(ctx: &RequestContext) -> Option<String> {
    match (&ctx.principal.role, &ctx.principal.patient) {
        (Role::Patient, Some(id)) => Some(id.clone()),
        _ => None,
    }
}

/// What anyone but a patient gets on the patient's pages.
fn for_patients_only(ctx: &RequestContext) -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        Some(&viewer(ctx)),
        "This page is for patients",
        "“My record” shows a signed-in patient their own record. Clinicians find patients \
         from “Find a patient”.",
    )
}

pub async fn page(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Query(params): Query<MeParams>,
    headers: HeaderMap,
) -> Response {
    let viewer = viewer(&ctx);
    let Some(patient_id) = own_patient(&ctx) else {
        return for_patients_only(&ctx);
    };
    match content(&state, &ctx, &headers, &patient_id, params.saved.is_some()).await {
        Ok(content) => rendered(StatusCode::OK, smr_web::pages::me(&viewer, &content)),
        Err(e) => app_error(&viewer, e),
    }
}

async fn content(
    state: &AppState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    patient_id: &str,
    saved: bool,
) -> Result<MeContent, AppError> {
    let (patient, record, pgx, _alerts) = load_record(state, ctx, headers, patient_id).await?;
    let log = state
        .app
        .audit_events(
            ctx,
            AuditQuery {
                patient: Some(patient_id.to_owned()),
                count: ACCESS_LOG_PAGE,
                ..AuditQuery::default()
            },
        )
        .await?;
    let access = log
        .records
        .iter()
        .filter_map(|(_, body)| serde_json::from_str(body).ok())
        .map(|v| AccessEntry::from_resource(&v))
        // The patient's own visits are not "who looked at my record".
        .filter(|a| a.user.as_deref() != Some(ctx.principal.user.as_str()))
        .collect();
    let stored = consents_of(state, ctx, patient_id).await?;
    let current = stored
        .iter()
        .find(|c| consent::is_web_consent(c))
        .map(consent::web_choices)
        .unwrap_or_default();
    Ok(MeContent {
        patient,
        record,
        pgx,
        access,
        consents: stored
            .iter()
            .map(ConsentChoice::from_resource)
            .filter(ConsentChoice::is_active)
            .collect(),
        consent_options: consent::options(&current),
        saved,
    })
}

/// The patient's Consents, through the Consent search the API runs.
async fn consents_of(
    state: &AppState,
    ctx: &RequestContext,
    patient_id: &str,
) -> Result<Vec<serde_json::Value>, AppError> {
    let pairs = vec![
        ("patient".to_owned(), patient_id.to_owned()),
        ("_count".to_owned(), "100".to_owned()),
    ];
    Ok(search_bodies(state, ctx, "Consent", &pairs)
        .await?
        .iter()
        .filter_map(|b| serde_json::from_str(b).ok())
        .collect())
}

/// `POST /app/me/consent` (`withhold=LABEL:setting`, repeated): saves the patient's choices
/// as their web-app Consent — updated when it exists, created otherwise — through
/// `App::write`, as a FHIR create or update by the patient would be; then back to the page.
pub async fn save_consent(State(state): State<AppState>, Ctx(ctx): Ctx, body: Body) -> Response {
    let viewer = viewer(&ctx);
    let Some(patient_id) = own_patient(&ctx) else {
        return for_patients_only(&ctx);
    };
    let Some(fields) = form_fields(body).await else {
        return error_page(
            StatusCode::BAD_REQUEST,
            Some(&viewer),
            "That request could not be read",
            "The form could not be read.",
        );
    };
    let choices = consent::parse_choices(
        fields
            .iter()
            .filter(|(k, _)| k == "withhold")
            .map(|(_, v)| v.as_str()),
    );
    let existing = match consents_of(&state, &ctx, &patient_id).await {
        Ok(all) => all.into_iter().find(consent::is_web_consent),
        Err(e) => return app_error(&viewer, e),
    };
    let id = existing
        .as_ref()
        .and_then(|c| c.get("id"))
        .and_then(serde_json::Value::as_str);
    let now = smr_fhir::datetime::format_instant(
        (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64,
    );
    let resource = consent::consent_resource(&patient_id, id, &choices, &now);
    let (op, kind) = match id {
        Some(_) => (
            WriteOp::Update {
                resource,
                full_url: None,
                if_match: None,
                patched: false,
                condition: None,
            },
            WriteKind::Update,
        ),
        None => (
            WriteOp::Create {
                resource,
                full_url: None,
                if_none_exist: None,
            },
            WriteKind::Create,
        ),
    };
    match state.app.write(&ctx, vec![op], kind).await {
        Ok(_) => (
            StatusCode::SEE_OTHER,
            [(
                axum::http::header::LOCATION,
                axum::http::HeaderValue::from_static("/app/me?saved=1#my-consent"),
            )],
        )
            .into_response(),
        Err(e) => app_error(&viewer, e),
    }
}
