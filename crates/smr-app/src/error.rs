use smr_store::{EntryError, StoreError};

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The caller may not do this (role, scope, relationship or consent); nothing was done.
    #[error("{0}")]
    Forbidden(String),
    /// The request cannot be acted on as given.
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A transaction entry failed; nothing of the transaction was written.
    #[error(transparent)]
    Entry(#[from] EntryError),
}

impl AppError {
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        AppError::Forbidden(message.into())
    }
}
