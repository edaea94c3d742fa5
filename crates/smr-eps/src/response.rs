//! The response message (R4 messaging: a `message` Bundle whose MessageHeader's `response`
//! names the request's header), with an OperationOutcome saying what was stored or why not.

use serde_json::{Value, json};

use crate::Header;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseCode {
    Ok,
    FatalError,
}

impl ResponseCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseCode::Ok => "ok",
            ResponseCode::FatalError => "fatal-error",
        }
    }
}

/// The response to the message `request`: `ids` are the response Bundle's, its
/// MessageHeader's and its OperationOutcome's (fresh per response), `endpoint` SMR's own
/// `$process-message` URL, `timestamp` an R4 instant.
pub fn response(
    request: &Header,
    ids: [&str; 3],
    endpoint: &str,
    timestamp: &str,
    code: ResponseCode,
    outcome: Value,
) -> Value {
    let [bundle_id, header_id, outcome_id] = ids;
    let outcome_url = format!("urn:uuid:{outcome_id}");
    let mut header = json!({
        "resourceType": "MessageHeader",
        "id": header_id,
        "eventCoding": request.event_coding,
        "source": {"name": "SMR", "endpoint": endpoint},
        "response": {
            "identifier": request.id,
            "code": code.as_str(),
            "details": {"reference": outcome_url},
        },
    });
    if let Some(endpoint) = request
        .source
        .as_ref()
        .and_then(|s| s.get("endpoint"))
        .and_then(Value::as_str)
    {
        let mut destination = json!({"endpoint": endpoint});
        if let Some(sender) = &request.sender {
            destination["receiver"] = sender.clone();
        }
        header["destination"] = json!([destination]);
    }
    let mut outcome = outcome;
    outcome["id"] = json!(outcome_id);
    json!({
        "resourceType": "Bundle",
        "id": bundle_id,
        "type": "message",
        "timestamp": timestamp,
        "entry": [
            {"fullUrl": format!("urn:uuid:{header_id}"), "resource": header},
            {"fullUrl": outcome_url, "resource": outcome},
        ],
    })
}
