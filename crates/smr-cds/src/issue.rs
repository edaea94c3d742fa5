//! DetectedIssues for pharmacogenomic findings on medicines a patient is already taking, and
//! cards back from them (`patient-view`).

use serde_json::{Value, json};

use crate::cards::{
    Card, Coding, Finding, FindingKind, Indicator, SMR_SYSTEM_BASE, SUMMARY_MAX, Source, card,
    truncate, verification_caveat,
};

/// v3 ActCode `GEN` "Genetic Alert": proposed therapy may be inappropriate or contraindicated
/// due to patient genetic indicators (a DetectedIssueCategory code, the binding suggested for
/// `DetectedIssue.code`; http://terminology.hl7.org/CodeSystem/v3-ActCode).
pub const ACT_CODE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
pub const GENETIC_ALERT: &str = "GEN";

/// The identifier system that makes re-checks idempotent (`If-None-Exist` on it).
pub fn identifier_system() -> String {
    format!("{SMR_SYSTEM_BASE}/Id/pgx-detected-issue")
}

fn severity(indicator: Indicator) -> &'static str {
    match indicator {
        Indicator::Critical => "high",
        Indicator::Warning => "moderate",
        Indicator::Info => "low",
    }
}

/// FNV-1a, for a short stable identifier from the facts an issue rests on.
fn fnv64(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The identifier value: the same order, drug, guideline table and results give the same
/// value, so re-posting a result (even as a new Observation) creates no second issue.
pub fn identifier_value(f: &Finding) -> Option<String> {
    let order = f.order_ref.as_deref()?;
    let key = match &f.kind {
        FindingKind::Recommendation(r) => {
            let results: Vec<String> = r
                .genotypes
                .iter()
                .map(|g| format!("{}={}={}", g.gene, g.diplotype, g.phenotype))
                .collect();
            format!(
                "{order}|{}|{}|{}|{}",
                r.drug,
                r.guideline.name,
                r.guideline.table,
                results.join(";")
            )
        }
        FindingKind::Indeterminate {
            gene,
            reason,
            guideline,
        } => {
            format!(
                "{order}|{}|{}|{gene}|{reason}",
                f.drug.as_deref().unwrap_or_default(),
                guideline.table
            )
        }
        FindingKind::TestFirst { .. }
        | FindingKind::UkTestMissing { .. }
        | FindingKind::Unidentified { .. } => return None,
    };
    Some(format!("{}-{:016x}", order.replace('/', "-"), fnv64(&key)))
}

/// The DetectedIssue for a finding on an existing medicine, or `None` when the finding is not
/// one to record (no order id; missing test or unidentified medicine, which are not issues
/// with a result).
pub fn detected_issue(f: &Finding, patient_ref: &str, identified: &str) -> Option<Value> {
    let order = f.order_ref.clone()?;
    let value = identifier_value(f)?;
    let c = card(f, None);
    // The patient-view card is built from the stored issue, so an unverified guideline's
    // caveat is stored with it.
    let (mut detail, reference, caveat) = match &f.kind {
        FindingKind::Recommendation(r) => (
            format!(
                "{} {} Recommendation ({}): {}",
                r.drug, r.implication, c.source.label, r.recommendation
            ),
            r.guideline.url.clone(),
            verification_caveat(&r.guideline),
        ),
        FindingKind::Indeterminate {
            gene,
            reason,
            guideline,
        } => (
            format!(
                "{gene} result cannot be used for {}: {reason}",
                f.drug.as_deref().unwrap_or_default()
            ),
            guideline.url.clone(),
            verification_caveat(guideline),
        ),
        FindingKind::TestFirst { .. }
        | FindingKind::UkTestMissing { .. }
        | FindingKind::Unidentified { .. } => return None,
    };
    if let Some(caveat) = caveat {
        detail.push_str(&format!("\n\n{caveat}"));
    }
    let mut implicated = vec![json!({"reference": order})];
    implicated.extend(f.evidence.iter().map(|e| json!({"reference": e})));
    let mut issue = json!({
        "resourceType": "DetectedIssue",
        "identifier": [{"system": identifier_system(), "value": value}],
        "status": "final",
        "code": {
            "coding": [{"system": ACT_CODE_SYSTEM, "code": GENETIC_ALERT, "display": "Genetic Alert"}],
            "text": c.summary,
        },
        "severity": severity(f.indicator),
        "patient": {"reference": patient_ref},
        "identifiedDateTime": identified,
        "author": {"display": "SMR pharmacogenomic decision support"},
        "implicated": implicated,
        "detail": detail,
        "reference": reference,
    });
    if !f.evidence.is_empty() {
        issue["evidence"] = json!([{"detail": f.evidence.iter().map(|e| json!({"reference": e})).collect::<Vec<_>>()}]);
    }
    Some(issue)
}

/// Whether a DetectedIssue is an open pharmacogenomic one SMR raised: a genetic alert, not
/// withdrawn, and not yet mitigated.
pub fn is_open_pgx_issue(issue: &Value) -> bool {
    let code_ok = issue
        .pointer("/code/coding")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("system").and_then(Value::as_str) == Some(ACT_CODE_SYSTEM)
                    && c.get("code").and_then(Value::as_str) == Some(GENETIC_ALERT)
            })
        });
    let status_ok = matches!(
        issue.get("status").and_then(Value::as_str),
        Some("preliminary" | "final" | "amended" | "corrected")
    );
    let mitigated = issue
        .get("mitigation")
        .and_then(Value::as_array)
        .is_some_and(|m| !m.is_empty());
    code_ok && status_ok && !mitigated
}

/// A `patient-view` card for a stored DetectedIssue.
pub fn card_from_issue(issue: &Value) -> Card {
    let s = |p: &str| {
        issue
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let indicator = match s("/severity").as_str() {
        "high" => Indicator::Critical,
        "moderate" => Indicator::Warning,
        _ => Indicator::Info,
    };
    let summary = match s("/code/text") {
        t if t.is_empty() => "Pharmacogenomic issue with a current medicine".to_owned(),
        t => t,
    };
    let implicated: Vec<String> = issue
        .get("implicated")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            r.get("reference")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    let id = s("/id");
    let reference = s("/reference");
    let detail = format!(
        "{}\n\n**Concerns:** {}\n\n**Guideline:** {}\n\n**Evidence:** DetectedIssue/{id}, raised by SMR when the genotype \
         result was recorded while this medicine was active (identified {}).\n",
        s("/detail"),
        implicated.join(", "),
        if reference.is_empty() {
            "(none given)".to_owned()
        } else {
            format!("<{reference}>")
        },
        s("/identifiedDateTime"),
    );
    let system = format!("{SMR_SYSTEM_BASE}/CodeSystem/pgx-card-topic");
    Card {
        uuid: uuid::Uuid::new_v4().to_string(),
        summary: truncate(&summary, SUMMARY_MAX),
        detail: Some(detail),
        indicator,
        source: Source {
            label: "SMR pharmacogenomic re-check".into(),
            url: (!reference.is_empty()).then_some(reference),
            topic: Some(Coding {
                code: "pgx-detected-issue".into(),
                system,
                display: "Open pharmacogenomic issue".into(),
            }),
        },
        suggestions: Vec::new(),
        selection_behavior: None,
        override_reasons: Vec::new(),
    }
}
