//! `GET /fhir/CodeSystem/$lookup?system=https://dmd.nhs.uk&code=X`: what SMR's drug
//! dictionary knows of a dm+d code (any level, current or previous), as a FHIR `Parameters`
//! resource: name, version, display, and properties `level`, `inactive`, `vmp`, `vtm`.
//!
//! Any signed-in caller may ask: it is reference data, about no patient, so it is not
//! audited.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};
use smr_dmd::{ConceptRef, DMD_SYSTEMS, MedicineLookup};

use crate::app::AppState;
use crate::auth::Ctx;
use crate::error::ApiError;
use crate::http::{check_accept, fhir_json_response, query_pairs};

fn property(code: &str, value: Value) -> Value {
    let mut part = vec![json!({"name": "code", "valueCode": code})];
    let mut value_part = json!({"name": "value"});
    if let (Some(obj), Some(v)) = (value_part.as_object_mut(), value.as_object()) {
        obj.extend(v.clone());
    }
    part.push(value_part);
    json!({"name": "property", "part": part})
}

fn coding(system: &str, concept: &ConceptRef) -> Value {
    json!({"valueCoding": {"system": system, "code": concept.code, "display": concept.name}})
}

pub async fn lookup(
    State(state): State<AppState>,
    Ctx(_ctx): Ctx,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_accept(&headers, None)?;
    let pairs = query_pairs(uri.query());
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let system = get("system").ok_or_else(|| ApiError::bad_request("$lookup needs system"))?;
    let code = get("code").ok_or_else(|| ApiError::bad_request("$lookup needs code"))?;
    let system = system.trim_end_matches('/').to_owned();
    if !DMD_SYSTEMS.contains(&system.as_str()) {
        return Err(ApiError::bad_request(format!(
            "SMR looks up codes of {} only, not '{system}'",
            DMD_SYSTEMS.join(" and ")
        )));
    }
    let layered = state.app.dictionary();
    let info = layered
        .resolve(&[(Some(system.as_str()), code.as_str())], None)
        .ok_or_else(|| ApiError::not_found(format!("no dm+d concept with code {code}")))?;
    let found = layered
        .imported
        .as_deref()
        .into_iter()
        .chain([layered.starter])
        .find_map(|d| Some((d, d.lookup(&code)?)));
    let version = found.map_or("PGx subset", |(d, _)| d.release());
    let inactive = found.is_some_and(|(_, c)| c.invalid);
    let mut parameter = vec![
        json!({"name": "name", "valueString": "dm+d"}),
        json!({"name": "version", "valueString": version}),
        json!({"name": "display", "valueString": info.matched.name}),
        property("level", json!({"valueCode": info.level.as_str()})),
        property("inactive", json!({"valueBoolean": inactive})),
    ];
    if info.matched.code != code {
        // A previous code: say which concept carries it now.
        parameter.push(property("current", coding(&system, &info.matched)));
    }
    if let Some(vmp) = &info.vmp {
        parameter.push(property("vmp", coding(&system, vmp)));
    }
    if let Some(vtm) = &info.vtm {
        parameter.push(property("vtm", coding(&system, vtm)));
    }
    let body = json!({"resourceType": "Parameters", "parameter": parameter});
    Ok(fhir_json_response(StatusCode::OK, body.to_string()))
}
