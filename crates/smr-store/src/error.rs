use smr_fhir::Issue;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The resource failed validation; nothing was written.
    #[error("invalid resource: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Issue>),
    #[error("{res_type}/{id} not found")]
    NotFound { res_type: String, id: String },
    #[error("{res_type}/{id} was deleted")]
    Gone {
        res_type: String,
        id: String,
        version: i64,
    },
    /// `If-Match` named a version that is no longer current, or a conditional create matched
    /// more than one resource.
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// A write collides with existing data (e.g. an NHS number already held by another patient).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The store could not complete the operation (e.g. a commit failed); not the client's fault.
    #[error("internal storage error: {0}")]
    Internal(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}
