//! Handlers, one module per kind of interaction.

pub mod analytics;
mod audit;
pub mod bundle;
pub mod cds;
pub mod eps;
pub mod everything;
pub mod export;
pub mod history;
pub mod instance;
pub mod medication_record;
pub mod metadata;
pub mod pincer;
pub mod reconcile;
pub mod safety;
pub mod search;
pub mod subscription;
pub mod terminology;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use smr_fhir::{IssueCode, resource_types};

use crate::app::AppState;
use crate::error::ApiError;

/// The query string's parameters, decoded, in order.
pub(crate) fn query_params(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The one value of parameter `name` (`None` when absent); 400 when it is given twice.
pub(crate) fn one_param<'a>(
    params: &'a [(String, String)],
    name: &str,
) -> Result<Option<&'a str>, ApiError> {
    let mut values = params
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str());
    let first = values.next();
    if values.next().is_some() {
        return Err(ApiError::bad_request(format!(
            "{name} given more than once"
        )));
    }
    Ok(first)
}

/// `ok` when the database answers; 503 with an OperationOutcome when it does not (a load
/// balancer then stops sending traffic to a node whose reads would fail).
pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.app.health().await {
        Ok(()) => "ok".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                IssueCode::Transient,
                "the database is not answering",
            )
            .into_response()
        }
    }
}

pub async fn not_found(uri: Uri) -> Response {
    ApiError::not_found(format!("no FHIR endpoint at {}", uri.path())).into_response()
}

/// 404 for a resource type SMR does not serve, so clients learn it from the status alone.
pub fn served_type(res_type: &str) -> Result<(), ApiError> {
    if resource_types::is_served(res_type) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            IssueCode::NotSupported,
            format!("resource type '{res_type}' is not served by SMR"),
        ))
    }
}
