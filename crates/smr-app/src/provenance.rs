//! Who made a write, as the [`ProvenanceTemplate`] the store completes into one `Provenance`
//! per patient-record entry written (issue 8: every entry says where it came from).

use serde_json::{Value, json};
use smr_access::consent::CARE_SETTING_SYSTEM;
use smr_access::{CareSetting, ODS_SYSTEM, RequestContext};
use smr_store::ProvenanceTemplate;

use crate::AppError;
use crate::audit::{ROLE_SYSTEM, USER_SYSTEM};

const PARTICIPANT_TYPE_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/provenance-participant-type";

/// The template for writes by `ctx`: one `author` agent, the user (`who`, by SMR's user
/// identifier, as AuditEvents name them) acting for their organisation (`onBehalfOf`: the
/// `Organization/{id}` SMR holds with the caller's ODS code when there is one, always with the
/// ODS identifier), in `setting` (see `App::writer_setting`) and their role (`agent.role`). `org_reference` is that
/// Organization, from the caller's organisation keys.
pub(crate) fn template(
    ctx: &RequestContext,
    setting: CareSetting,
    org_reference: Option<&str>,
) -> ProvenanceTemplate {
    let p = &ctx.principal;
    let mut who = json!({"identifier": {"system": USER_SYSTEM, "value": p.user}});
    if let Some(name) = &p.name {
        who["display"] = json!(name);
    }
    let mut agent = json!({
        "type": {"coding": [{"system": PARTICIPANT_TYPE_SYSTEM, "code": "author", "display": "Author"}]},
        "role": [
            {"coding": [{"system": CARE_SETTING_SYSTEM, "code": setting.as_str()}],
             "text": setting.as_str()},
            {"coding": [{"system": ROLE_SYSTEM, "code": p.role.as_str()}]},
        ],
        "who": who,
    });
    if let Some(code) = &p.organisation {
        let mut org = json!({"identifier": {"system": ODS_SYSTEM, "value": code}});
        if let Some(reference) = org_reference {
            org["reference"] = json!(reference);
        }
        agent["onBehalfOf"] = org;
    }
    ProvenanceTemplate {
        base: json!({"resourceType": "Provenance", "agent": [agent]}),
    }
}

/// The first `Organization/{id}` among organisation keys (`ods:CODE` and references).
pub(crate) fn org_reference(keys: &[String]) -> Option<&str> {
    keys.iter()
        .map(String::as_str)
        .find(|k| k.starts_with("Organization/"))
}

/// The client's `X-Provenance` (FHIR R4 http.html), read by SMR's strict JSON reader: it must
/// be a Provenance; its `target` (which SMR fills in) is ignored. `None` when not sent.
pub(crate) fn from_client(ctx: &RequestContext) -> Result<Option<Value>, AppError> {
    let Some(text) = ctx.x_provenance.as_deref() else {
        return Ok(None);
    };
    let value = smr_fhir::json::parse_str(text)
        .map_err(|e| AppError::BadRequest(format!("X-Provenance is not valid JSON: {e}")))?;
    if value.get("resourceType").and_then(Value::as_str) != Some("Provenance") {
        return Err(AppError::BadRequest(
            "X-Provenance must be a Provenance resource".into(),
        ));
    }
    if value.get("agent").is_some_and(|a| !a.is_array()) {
        return Err(AppError::BadRequest(
            "X-Provenance: Provenance.agent must be an array".into(),
        ));
    }
    Ok(Some(value))
}

/// Adds what the client said to SMR's template: its agents after the caller's own (the
/// authenticated author is always SMR's to state), and every other element it sent
/// (`reason`, `policy`, `entity`, …). The store still decides target, recorded and activity.
pub(crate) fn merge_client(template: &mut ProvenanceTemplate, client: Value) {
    let Value::Object(mut client) = client else {
        return;
    };
    let mut agents = template
        .base
        .get("agent")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(Value::Array(theirs)) = client.shift_remove("agent") {
        agents.extend(theirs);
    }
    client.insert("agent".into(), Value::Array(agents));
    template.base = Value::Object(client);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_agents_follow_the_author() {
        let mut t = ProvenanceTemplate {
            base: json!({"resourceType": "Provenance", "agent": [{"who": {"display": "me"}}]}),
        };
        merge_client(
            &mut t,
            json!({"resourceType": "Provenance", "reason": [{"text": "x"}],
                   "agent": [{"who": {"display": "device"}}]}),
        );
        assert_eq!(t.base["agent"][0]["who"]["display"], "me");
        assert_eq!(t.base["agent"][1]["who"]["display"], "device");
        assert_eq!(t.base["reason"][0]["text"], "x");
    }
}
