//! The reconciliation workflow (`/app/patients/{id}/reconcile`): paste a target list, compare
//! it with the record (`App::reconcile`, as `$reconcile`), decide per line, confirm
//! (`App::reconcile_confirm`, as `$reconcile-confirm`: one transaction, audited). Who may is
//! exactly who may call those operations.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::page::{
    app_error, error_page, field, form_fields_up_to, is_fhir_id, rendered, status_page, viewer,
};
use crate::app::AppState;
use crate::auth::Ctx;

/// A pasted list, or a comparison carried to the confirmation, is at most this large.
const MAX_LIST_FORM_BYTES: usize = 2 * 1024 * 1024;

fn not_a_patient(viewer: &smr_web::Viewer) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        Some(viewer),
        "Not found",
        "That is not a patient's address.",
    )
}

/// `GET /app/patients/{id}/reconcile`: the paste box.
pub async fn form(Ctx(ctx): Ctx, Path(id): Path<String>) -> Response {
    let viewer = viewer(&ctx);
    if !is_fhir_id(&id) {
        return not_a_patient(&viewer);
    }
    rendered(
        StatusCode::OK,
        smr_web::reconcile::page(&viewer, &id, "", None, None),
    )
}

/// `POST /app/patients/{id}/reconcile` (`target=` a List or Bundle as JSON): the comparison.
pub async fn compare(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let viewer = viewer(&ctx);
    if !is_fhir_id(&id) {
        return not_a_patient(&viewer);
    }
    let fields = form_fields_up_to(body, MAX_LIST_FORM_BYTES)
        .await
        .unwrap_or_default();
    let text = field(&fields, "target").unwrap_or_default();
    let again = |status, message: &str| {
        rendered(
            status,
            smr_web::reconcile::page(&viewer, &id, text, Some(message), None),
        )
    };
    // The same strict reader every FHIR request body goes through.
    let target = match smr_fhir::json::parse_str(text) {
        Ok(v) => v,
        Err(e) => {
            return again(
                StatusCode::BAD_REQUEST,
                &format!("The list is not valid JSON: {e}"),
            );
        }
    };
    let parameters = smr_web::reconcile::compare_parameters(target);
    match state.app.reconcile(&ctx, &id, &parameters).await {
        Ok(list) => {
            let comparison = smr_web::reconcile::Comparison::from_list(&list);
            let answer = list.to_string();
            rendered(
                StatusCode::OK,
                smr_web::reconcile::page(&viewer, &id, text, None, Some((&comparison, &answer))),
            )
        }
        // A list SMR cannot read: say why beside the box, keeping what was pasted.
        Err(e) => {
            let message = e.to_string();
            let status = crate::error::ApiError::from(e).status;
            if matches!(
                status,
                StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
            ) {
                again(status, &message)
            } else {
                status_page(&viewer, status, &message)
            }
        }
    }
}

/// `POST /app/patients/{id}/reconcile/confirm` (`reconciliation=` the answer,
/// `decision-line-N=accept|reject`): writes the reconciled list.
pub async fn confirm(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let viewer = viewer(&ctx);
    if !is_fhir_id(&id) {
        return not_a_patient(&viewer);
    }
    let fields = form_fields_up_to(body, MAX_LIST_FORM_BYTES)
        .await
        .unwrap_or_default();
    let Some(reconciliation) =
        field(&fields, "reconciliation").and_then(|t| smr_fhir::json::parse_str(t).ok())
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            Some(&viewer),
            "That request could not be read",
            "The comparison did not come back with the form. Compare the lists again.",
        );
    };
    let decisions: Vec<(String, String)> = fields
        .iter()
        .filter_map(|(k, v)| {
            let line = k.strip_prefix("decision-")?;
            matches!(v.as_str(), "accept" | "reject").then(|| (line.to_owned(), v.clone()))
        })
        .collect();
    let parameters = smr_web::reconcile::confirm_parameters(reconciliation, &decisions);
    match state.app.reconcile_confirm(&ctx, &id, &parameters).await {
        Ok(done) => rendered(
            StatusCode::CREATED,
            smr_web::reconcile::confirmed(&viewer, &id, done.written.len()),
        ),
        Err(e) => app_error(&viewer, e),
    }
}
