//! FHIR date, dateTime and instant values as half-open ranges of microseconds since the Unix
//! epoch (UTC). OWNER: search helper. Contract below is fixed; implementation to be written.

/// Why a date text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid FHIR date/dateTime '{text}': {reason}")]
pub struct DateError {
    pub text: String,
    pub reason: String,
}

/// Parses `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, `YYYY-MM-DDThh:mm(:ss(.fff…))?(Z|±hh:mm)` into the
/// half-open range `[low, high)` it denotes at its precision. A dateTime without a zone is taken
/// as UTC (FHIR says it SHALL have one when time is given; we are lenient on search input).
pub fn parse_range(_text: &str) -> Result<(i64, i64), DateError> {
    todo!("search helper")
}

/// Formats microseconds since the epoch as a FHIR `instant` (`2024-01-02T03:04:05.678901Z`).
pub fn format_instant(_micros: i64) -> String {
    todo!("search helper")
}
