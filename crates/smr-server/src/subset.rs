//! `_summary` / `_elements` at the HTTP edge: which subset a request asks for, and stored bodies
//! cut down to it (the rules are `smr_fhir::summary`'s).

use std::borrow::Cow;

use axum::http::StatusCode;
use smr_fhir::IssueCode;
use smr_fhir::summary::{self, Subset};

use crate::error::ApiError;

/// The subset asked for by the query `pairs` of a request on `res_type`; `searching` allows
/// `_summary=count`. A bad value is a 400.
pub(crate) fn requested(
    res_type: &str,
    pairs: &[(String, String)],
    searching: bool,
) -> Result<Option<Subset>, ApiError> {
    summary::requested(res_type, pairs, searching)
        .map_err(|issue| ApiError::issues(StatusCode::BAD_REQUEST, vec![issue]))
}

/// `body` cut down to `subset` (tagged `SUBSETTED`), or as stored when there is none.
pub(crate) fn body<'a>(body: &'a str, subset: Option<&Subset>) -> Result<Cow<'a, str>, ApiError> {
    let Some(subset) = subset else {
        return Ok(Cow::Borrowed(body));
    };
    if body.is_empty() {
        return Ok(Cow::Borrowed(body));
    }
    summary::apply(body, subset).map(Cow::Owned).map_err(|e| {
        // Stored bodies are JSON objects written by the store: this is a defect, not input.
        tracing::error!(error = %e, "cannot subset a stored resource");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            IssueCode::Exception,
            "the stored resource could not be summarised",
        )
    })
}
