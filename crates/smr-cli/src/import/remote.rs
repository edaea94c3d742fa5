//! `smr import --url`: entries POSTed to a running server as FHIR `batch` Bundles (or one
//! `transaction` Bundle for a transaction), each entry's answer read from the response.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use smr_store::WriteOp;

use super::Answer;
use super::source::Entry;

pub struct Remote {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Remote {
    pub fn new(base: &str, token: &str) -> anyhow::Result<Remote> {
        let client = crate::http_client::http_client("smr-import", Duration::from_secs(300))?;
        Ok(Remote {
            client,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    /// POSTs `entries` as one Bundle (`transaction` when `atomic`, else `batch`) and answers
    /// each entry from the response. A refusal of the whole request (401, 403, 5xx) is fatal.
    pub async fn write(&self, entries: &[Entry], atomic: bool) -> anyhow::Result<Vec<Answer>> {
        let bundle = json!({
            "resourceType": "Bundle",
            "type": if atomic { "transaction" } else { "batch" },
            "entry": entries.iter().map(bundle_entry).collect::<Vec<_>>(),
        });
        let response = self
            .client
            .post(&self.base)
            .bearer_auth(&self.token)
            .header("content-type", "application/fhir+json")
            .header("accept", "application/fhir+json")
            .body(bundle.to_string())
            .send()
            .await
            .with_context(|| format!("POST {}", self.base))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .context("reading the server's answer")?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if atomic && status.is_client_error() && status.as_u16() != 401 && status.as_u16() != 403 {
            let outcome =
                if body.get("resourceType").and_then(Value::as_str) == Some("OperationOutcome") {
                    body
                } else {
                    super::outcome(smr_fhir::IssueCode::Processing, &format!("HTTP {status}"))
                };
            return Ok(entries
                .iter()
                .map(|_| Answer::Rejected(outcome.clone()))
                .collect());
        }
        if !status.is_success() {
            bail!("the server answered {status}: {text}");
        }
        let answers = body
            .get("entry")
            .and_then(Value::as_array)
            .context("the server's answer has no entries")?;
        Ok(answers.iter().map(answer).collect())
    }
}

fn bundle_entry(entry: &Entry) -> Value {
    let mut out = match &entry.op {
        WriteOp::Create { resource, .. } => {
            let ty = resource.get("resourceType").and_then(Value::as_str);
            let mut request = json!({"method": "POST", "url": ty});
            // The reader keeps a conditional create's criteria as `Type?criteria`.
            if let Some((_, criteria)) = entry.key.as_deref().and_then(|k| k.split_once('?')) {
                request["ifNoneExist"] = json!(criteria);
            }
            json!({"resource": resource, "request": request})
        }
        WriteOp::Update { resource, .. } => {
            let url = format!(
                "{}/{}",
                entry.origin.res_type.as_deref().unwrap_or_default(),
                entry.origin.id.as_deref().unwrap_or_default()
            );
            json!({"resource": resource, "request": {"method": "PUT", "url": url}})
        }
        WriteOp::Delete { res_type, id, .. } => {
            json!({"request": {"method": "DELETE", "url": format!("{res_type}/{id}")}})
        }
    };
    if let WriteOp::Create {
        full_url: Some(u), ..
    }
    | WriteOp::Update {
        full_url: Some(u), ..
    } = &entry.op
    {
        out["fullUrl"] = json!(u);
    }
    out
}

/// One response entry: `response.status` 2xx is written; otherwise its outcome.
fn answer(entry: &Value) -> Answer {
    let status = entry
        .pointer("/response/status")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if status.starts_with('2') {
        return Answer::Loaded;
    }
    match entry.pointer("/response/outcome") {
        Some(outcome) => Answer::Rejected(outcome.clone()),
        None => Answer::Rejected(super::outcome(
            smr_fhir::IssueCode::Processing,
            &format!("the server answered {status}"),
        )),
    }
}
