//! DetectedIssues (conflicts found while merging the record, stored PGx and safety alerts)
//! as rows a clinician scans: what, how severe, what to check.

use serde_json::Value;

use crate::json::{concept, items, short_time, text};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueView {
    /// `DetectedIssue/{id}`, for stored ones.
    pub reference: Option<String>,
    pub title: String,
    /// `high`, `moderate`, `low` (R4), or `unknown`.
    pub severity: String,
    pub status: String,
    pub detail: Option<String>,
    pub identified: Option<String>,
    /// The entries it names (`Type/id/_history/n`), to match record lines.
    pub implicated: Vec<String>,
}

impl IssueView {
    pub fn from_resource(issue: &Value) -> Self {
        IssueView {
            reference: text(issue, "/id").map(|id| format!("DetectedIssue/{id}")),
            title: issue
                .get("code")
                .and_then(concept)
                .unwrap_or_else(|| "Detected issue".to_owned()),
            severity: text(issue, "/severity").unwrap_or_else(|| "unknown".to_owned()),
            status: text(issue, "/status").unwrap_or_else(|| "unknown".to_owned()),
            detail: text(issue, "/detail"),
            identified: text(issue, "/identifiedDateTime").map(|t| short_time(&t)),
            implicated: items(issue, "/implicated")
                .iter()
                .filter_map(|r| text(r, "/reference"))
                .collect(),
        }
    }

    /// Still to act on: not withdrawn by a clinician (cancelled, entered in error).
    pub fn is_active(&self) -> bool {
        !matches!(self.status.as_str(), "cancelled" | "entered-in-error")
    }

    /// Sort key: most severe first.
    pub fn rank(&self) -> u8 {
        match self.severity.as_str() {
            "high" => 0,
            "moderate" => 1,
            "low" => 2,
            _ => 3,
        }
    }
}

/// The active issues among `resources`, most severe first.
pub fn active(resources: &[Value]) -> Vec<IssueView> {
    let mut out: Vec<IssueView> = resources
        .iter()
        .map(IssueView::from_resource)
        .filter(IssueView::is_active)
        .collect();
    out.sort_by_key(IssueView::rank);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn withdrawn_issues_are_left_out_and_severe_ones_come_first() {
        let issues = [
            json!({"resourceType": "DetectedIssue", "status": "final", "severity": "low",
                   "code": {"text": "Low one"}}),
            json!({"resourceType": "DetectedIssue", "status": "cancelled", "severity": "high"}),
            json!({"resourceType": "DetectedIssue", "status": "preliminary", "severity": "high",
                   "code": {"coding": [{"display": "High one"}]}, "detail": "check"}),
        ];
        let shown = active(&issues);
        assert_eq!(
            shown.iter().map(|i| i.title.as_str()).collect::<Vec<_>>(),
            ["High one", "Low one"]
        );
    }
}
