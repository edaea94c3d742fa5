//! Every failure leaves as an `OperationOutcome` with the HTTP status FHIR prescribes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use smr_fhir::outcome::operation_outcome;
use smr_fhir::{Issue, IssueCode};
use smr_store::{EntryError, StoreError};

use crate::http::fhir_json_response;

/// The whole of what a client learns about an internal failure (plus the request id).
pub const INTERNAL_MESSAGE: &str = "internal server error";

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub issues: Vec<Issue>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: IssueCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            issues: vec![Issue::error(code, message)],
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, IssueCode::Invalid, message)
    }

    /// A 500 that says nothing of its cause (logged where it happened).
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            IssueCode::Exception,
            INTERNAL_MESSAGE,
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, IssueCode::NotFound, message)
    }

    pub fn issues(status: StatusCode, issues: Vec<Issue>) -> Self {
        ApiError { status, issues }
    }

    /// Prefixes every issue's expression, e.g. with `Bundle.entry[3].resource`.
    pub fn within(mut self, prefix: &str) -> Self {
        for issue in &mut self.issues {
            issue.expression = Some(match issue.expression.take() {
                Some(e) => format!(
                    "{prefix}.{}",
                    e.split_once('.').map_or(e.as_str(), |(_, rest)| rest)
                ),
                None => prefix.to_owned(),
            });
        }
        self
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let (status, code) = match &error {
            StoreError::Invalid(issues) => {
                return ApiError::issues(StatusCode::UNPROCESSABLE_ENTITY, issues.clone());
            }
            StoreError::NotFound { .. } => (StatusCode::NOT_FOUND, IssueCode::NotFound),
            StoreError::Gone { .. } => (StatusCode::GONE, IssueCode::Deleted),
            StoreError::PreconditionFailed(_) => {
                (StatusCode::PRECONDITION_FAILED, IssueCode::Conflict)
            }
            StoreError::Conflict(_) => (StatusCode::CONFLICT, IssueCode::Duplicate),
            StoreError::BadRequest(_) => (StatusCode::BAD_REQUEST, IssueCode::Invalid),
            StoreError::TooCostly(_) => (StatusCode::BAD_REQUEST, IssueCode::TooCostly),
            StoreError::Unavailable(_) => {
                tracing::warn!(%error, "statement cancelled by the database");
                (StatusCode::SERVICE_UNAVAILABLE, IssueCode::Timeout)
            }
            StoreError::Database(_) | StoreError::Migrate(_) | StoreError::Internal(_) => {
                // The database's text (SQL, table names, values) stays in the log; the client
                // gets a generic message, and `hardening::security_headers` adds the request id.
                tracing::error!(%error, "storage failure");
                return ApiError::internal();
            }
        };
        ApiError::new(status, code, error.to_string())
    }
}

impl From<EntryError> for ApiError {
    fn from(error: EntryError) -> Self {
        let entry = error.entry;
        let mut api = ApiError::from(error.error);
        for issue in &mut api.issues {
            issue.diagnostics = format!("Bundle.entry[{entry}]: {}", issue.diagnostics);
        }
        api.within(&format!("Bundle.entry[{entry}].resource"))
    }
}

impl From<smr_app::AppError> for ApiError {
    fn from(error: smr_app::AppError) -> Self {
        match error {
            smr_app::AppError::Forbidden(message) => {
                ApiError::new(StatusCode::FORBIDDEN, IssueCode::Forbidden, message)
            }
            smr_app::AppError::BadRequest(message) => ApiError::bad_request(message),
            smr_app::AppError::Store(e) => e.into(),
            smr_app::AppError::Entry(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = operation_outcome(&self.issues).to_string();
        fhir_json_response(self.status, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_limits_are_client_errors_and_timeouts_unavailable() {
        let costly = ApiError::from(StoreError::TooCostly("x".into()));
        assert_eq!(costly.status, StatusCode::BAD_REQUEST);
        assert_eq!(costly.issues[0].code, IssueCode::TooCostly);
        let timeout = ApiError::from(StoreError::Unavailable("x".into()));
        assert_eq!(timeout.status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn internal_failures_say_nothing_of_their_cause() {
        for error in [
            StoreError::Internal("the write could not be committed: disk I/O".into()),
            StoreError::Database(sqlx::Error::Protocol(
                "SELECT body FROM resource_versions".into(),
            )),
        ] {
            let api = ApiError::from(error);
            assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(api.issues.len(), 1);
            assert_eq!(api.issues[0].diagnostics, INTERNAL_MESSAGE);
        }
    }
}
