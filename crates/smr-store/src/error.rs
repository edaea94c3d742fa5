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
    /// The query is too large for the database to plan or bind (SQLite's expression-depth or
    /// variable limits, PostgreSQL's program limits): the client's request, not a fault.
    #[error("the search is too costly: {0}")]
    TooCostly(String),
    /// The database cancelled the statement (PostgreSQL `statement_timeout`, SQLSTATE 57014).
    #[error("the database did not answer in time: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// SQLite's texts for a statement over its compile-time limits (sqlite3.c): the request was
/// too large, which is the client's doing.
const SQLITE_TOO_COSTLY: &[&str] = &[
    "Expression tree is too large",
    "too many SQL variables",
    "too many terms in compound SELECT",
    "too many arguments on function",
    "parser stack overflow",
    "LIKE or GLOB pattern too complex",
    "too many FROM clause terms",
];

/// PostgreSQL SQLSTATEs of class 54 (program limit exceeded: statement too complex, too many
/// columns or arguments).
const POSTGRES_TOO_COSTLY: &[&str] = &["54000", "54001", "54011", "54023"];

/// PostgreSQL `query_canceled`: `statement_timeout` expired (or the statement was cancelled).
const POSTGRES_QUERY_CANCELED: &str = "57014";

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) => {
                let code = db.code();
                let code = code.as_deref();
                if code == Some(POSTGRES_QUERY_CANCELED) {
                    return StoreError::Unavailable(
                        "the statement ran longer than the database allows".into(),
                    );
                }
                if code.is_some_and(|c| POSTGRES_TOO_COSTLY.contains(&c))
                    || SQLITE_TOO_COSTLY.iter().any(|m| db.message().contains(m))
                {
                    return StoreError::TooCostly(
                        "the query is larger than the database can run".into(),
                    );
                }
            }
            // sqlx refuses more bind arguments than PostgreSQL's protocol can carry.
            sqlx::Error::Protocol(message) if message.contains("too many arguments") => {
                return StoreError::TooCostly("the query has too many values".into());
            }
            _ => {}
        }
        StoreError::Database(error)
    }
}
