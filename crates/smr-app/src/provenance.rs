//! Who made a write, as the [`ProvenanceTemplate`] the store completes into one `Provenance`
//! per patient-record entry written (issue 8: every entry says where it came from).

use serde_json::json;
use smr_access::consent::CARE_SETTING_SYSTEM;
use smr_access::{ODS_SYSTEM, RequestContext};
use smr_store::ProvenanceTemplate;

use crate::audit::{ROLE_SYSTEM, USER_SYSTEM};

const PARTICIPANT_TYPE_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/provenance-participant-type";

/// The template for writes by `ctx`: one `author` agent, the user (`who`, by SMR's user
/// identifier, as AuditEvents name them) acting for their organisation (`onBehalfOf`: the
/// `Organization/{id}` SMR holds with the caller's ODS code when there is one, always with the
/// ODS identifier), in their care setting and role (`agent.role`). `org_reference` is that
/// Organization, from the caller's organisation keys.
pub(crate) fn template(ctx: &RequestContext, org_reference: Option<&str>) -> ProvenanceTemplate {
    let p = &ctx.principal;
    let mut who = json!({"identifier": {"system": USER_SYSTEM, "value": p.user}});
    if let Some(name) = &p.name {
        who["display"] = json!(name);
    }
    let mut agent = json!({
        "type": {"coding": [{"system": PARTICIPANT_TYPE_SYSTEM, "code": "author", "display": "Author"}]},
        "role": [
            {"coding": [{"system": CARE_SETTING_SYSTEM, "code": p.setting.as_str()}],
             "text": p.setting.as_str()},
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
