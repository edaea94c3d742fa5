//! Problems as FHIR: a DetectedIssue per problem found (code from v3 ActCode), and the checks
//! that could not be made as OperationOutcome issues (information, `incomplete`), so a reader
//! can tell "checked, nothing found" from "not checked".

use serde_json::{Value, json};

use crate::SMR_SYSTEM_BASE;
use crate::knowledge::Severity;
use crate::problem::{Citation, Problem, ProblemKind};

/// The code system of DetectedIssue.code.
pub const ACT_CODE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

/// The identifier system of safety DetectedIssues (value: the problem's key, so the same
/// problem found again has the same identifier, for keeping issues current later).
pub fn identifier_system() -> String {
    format!("{SMR_SYSTEM_BASE}/Id/safety-detected-issue")
}

/// DetectedIssue.severity: high | moderate | low.
pub fn issue_severity(s: Severity) -> &'static str {
    match s {
        Severity::Contraindicated | Severity::Serious => "high",
        Severity::Moderate => "moderate",
        Severity::Minor | Severity::Note => "low",
    }
}

/// One line naming a source, for text.
pub fn citation_text(c: &Citation) -> String {
    let mut s = c.publication.clone();
    if let Some(y) = c.year
        && !s.contains(&y.to_string())
        && !c.section.contains(&y.to_string())
    {
        s.push_str(&format!(" ({y})"));
    }
    if !c.section.is_empty() {
        s.push_str(&format!(", {}", c.section));
    }
    s
}

/// The DetectedIssue for a problem found (`None` for a check that could not be made).
/// `implicated` lists visible entries only (the problem never holds a hidden one).
pub fn detected_issue(p: &Problem, patient_ref: &str, identified: &str) -> Option<Value> {
    let code = p.code?;
    let mut detail = p.detail.clone();
    if !p.citations.is_empty() {
        detail.push_str("\n\n**Sources:**\n");
        for c in &p.citations {
            detail.push_str(&format!("- {}\n", citation_text(c)));
        }
    }
    let mut issue = json!({
        "resourceType": "DetectedIssue",
        "identifier": [{"system": identifier_system(), "value": format!("{}-{:016x}", p.kind.as_str(), p.key)}],
        "status": "final",
        "code": {
            "coding": [{"system": ACT_CODE_SYSTEM, "code": code.code(), "display": code.display()}],
            "text": p.summary,
        },
        "severity": issue_severity(p.severity),
        "patient": {"reference": patient_ref},
        "identifiedDateTime": identified,
        "author": {"display": "SMR medicines safety rules"},
        "detail": detail,
    });
    if !p.implicated.is_empty() {
        issue["implicated"] = Value::Array(
            p.implicated
                .iter()
                .map(|r| json!({"reference": r}))
                .collect(),
        );
    }
    if let Some(url) = p.citations.iter().find_map(|c| c.url.clone()) {
        issue["reference"] = json!(url);
    }
    // Evidence: what the problem rests on, as references where there are visible ones, and
    // the rule as text.
    let mut evidence = Vec::new();
    if let Some(e) = &p.evidence {
        evidence.push(json!({"code": [{"text": e}]}));
    }
    for c in &p.citations {
        evidence.push(json!({"code": [{"text": format!("{} [{}]", citation_text(c), c.rule)}]}));
    }
    if !evidence.is_empty() {
        issue["evidence"] = Value::Array(evidence);
    }
    // The management advice stays in `detail`: `mitigation` records actions taken, which
    // only a prescriber's response (an override, a change) can supply.
    Some(issue)
}

/// The OperationOutcome issue for a check that could not be made.
pub fn note_issue(p: &Problem) -> Option<Value> {
    (p.kind == ProblemKind::CannotCheck).then(|| {
        let about = if p.implicated.is_empty() {
            String::new()
        } else {
            format!(" ({})", p.implicated.join(", "))
        };
        json!({
            "severity": "information",
            "code": "incomplete",
            "diagnostics": format!(
                "{}{about}. Missing: {}.",
                p.summary,
                p.missing.as_deref().unwrap_or("data")
            ),
        })
    })
}
