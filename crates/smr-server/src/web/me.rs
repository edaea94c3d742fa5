//! `GET /app/me`: a signed-in patient's own view — their medicines in plain words, their
//! genomic results and what they mean, who opened their record (the audit trail a patient
//! may list, break-glass highlighted) and their consent choices. Each part is the `smr-app`
//! call the FHIR API makes for the same data, so a patient sees here exactly what the API
//! gives them.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use smr_app::{AppError, RequestContext, Role};
use smr_store::AuditQuery;
use smr_web::access_log::AccessEntry;
use smr_web::consent::ConsentChoice;
use smr_web::pages::MeContent;

use super::page::{app_error, error_page, rendered, viewer};
use super::patients::{load_record, search_bodies};
use crate::app::AppState;
use crate::auth::Ctx;

/// How many access-log records the page lists (newest first).
const ACCESS_LOG_PAGE: usize = 100;

pub async fn page(State(state): State<AppState>, Ctx(ctx): Ctx, headers: HeaderMap) -> Response {
    let viewer = viewer(&ctx);
    let patient_id = match (&ctx.principal.role, &ctx.principal.patient) {
        (Role::Patient, Some(id)) => id.clone(),
        _ => {
            return error_page(
                StatusCode::FORBIDDEN,
                Some(&viewer),
                "This page is for patients",
                "“My record” shows a signed-in patient their own record. Clinicians find patients \
                 from “Find a patient”.",
            );
        }
    };
    match content(&state, &ctx, &headers, &patient_id).await {
        Ok(content) => rendered(StatusCode::OK, smr_web::pages::me(&viewer, &content)),
        Err(e) => app_error(&viewer, e),
    }
}

async fn content(
    state: &AppState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    patient_id: &str,
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
    let consent_pairs = vec![("patient".to_owned(), patient_id.to_owned())];
    let consents = search_bodies(state, ctx, "Consent", &consent_pairs)
        .await?
        .iter()
        .filter_map(|b| serde_json::from_str(b).ok())
        .map(|v| ConsentChoice::from_resource(&v))
        .collect();
    Ok(MeContent {
        patient,
        record,
        pgx,
        access,
        consents,
    })
}
