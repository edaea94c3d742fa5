//! `GET /fhir/metadata`: a CapabilityStatement that claims only what SMR really does. It is
//! generated from the same tables the server runs on (served types, search definitions), so it
//! cannot drift from the implementation.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use smr_fhir::index::SearchParamType;
use smr_fhir::resource_types::SERVED_TYPES;
use smr_fhir::search_params;

use crate::app::AppState;
use crate::bundle::now_micros;
use crate::error::ApiError;
use crate::http::{base_url, check_accept, fhir_json_response};

const DOCUMENTATION: &str = "SMR, the Single Medication Record. Search handling is **strict** by \
default: an unknown or unsupported search parameter is an error (400), because silently ignoring \
a filter could show the wrong medicines; send `Prefer: handling=lenient` to have such parameters \
ignored and reported in an OperationOutcome entry. Paging is by cursor (`next` links stay valid \
while writes happen). Search supports `_count`, `_sort`, `_include`, `_revinclude`, \
`_total` (an exact total only with `_total=accurate`; by default only when the first page holds \
every match), chained parameters (one level) and `_has`. `_summary` (true, text, data, count, \
false) and `_elements` work on search, read, vread and history, and mark what they cut down \
`SUBSETTED`. One search takes at most 32 parameters, 100 values per parameter, 16 includes and 8 \
sort keys. Writes are validated; NHS numbers must pass the Modulus 11 check and an NHS number \
can be held by one Patient only. Conditional create and conditional update are race-free.";

const PROVENANCE_DOCUMENTATION: &str = "SMR writes a Provenance for every entry of a patient's \
record it creates, updates or deletes, in the same transaction: `target` the new version \
(`Type/id/_history/n`; `target=Type/id` finds every version's), `activity` CREATE / UPDATE / \
DELETE (v3-DataOperation), an `author` agent naming the user, their care setting and role, \
`onBehalfOf` their organisation (ODS code), and the written resource's `meta.source` as a \
`source` entity. A client may send a Provenance in the `X-Provenance` header \
(http://hl7.org/fhir/R4/http.html#provenance): its agents follow the author's, its other elements \
are kept, and SMR fills in the target.";

const SAFETY_CHECK_DOCUMENTATION: &str = "Medicines safety review of the patient's whole current \
record (GET, no parameters): a collection Bundle of DetectedIssues, most severe first, for drug-drug \
interactions (code DRG; the 15 high-priority interactions of Phansalkar et al., JAMIA 2012, and MHRA Drug \
Safety Update advice), therapeutic duplication (DUPTHPY), allergy and cross-reactivity conflicts (ALGY) and \
renal dosing against the latest eGFR or creatinine clearance of the last 365 days (LAB, DOSECOND), each \
citing its source; `implicated` references only entries the caller may see, and a medicine the patient \
withholds from the caller is reported as 'a medicine you cannot see'. Checks that could not be made \
(unmapped medicine, unknown allergy substance, no recent renal result) are listed in an OperationOutcome \
entry (information, incomplete). See docs/safety.md.";

const SUBSCRIPTION_DOCUMENTATION: &str = "Subscriptions on one patient's record: `criteria` is a \
search on a patient-compartment type naming exactly one patient (e.g. `MedicationRequest?patient=123`, \
`DetectedIssue?patient=Patient/123`), and reading, changing or deleting a Subscription is allowed to whoever \
may read that patient (searching them to back-end systems). Channels: `rest-hook` (a POST to `endpoint`, \
which must be under the server's allow-list or the create is 422; no body, or the resource when `payload` is \
application/fhir+json; headers X-SMR-Subscription, X-SMR-Event (unique per change, for de-duplication: \
delivery is at least once), X-SMR-Resource and X-SMR-Signature `sha256=` + hex HMAC-SHA256 of the body \
under the key `$secret` gives; retried with backoff, then `status` error with the reason) and `websocket` \
(the URL in this statement's websocket extension: send `bind {id}`, receive `bound {id}`, then `ping {id}` \
per notification). SMR sets a `requested` Subscription `active`.";

/// `ws://…/fhir/websocket` (or `wss://`) beside the FHIR base.
fn websocket_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    format!("{ws}/websocket")
}
const PROCESS_MESSAGE_DOCUMENTATION: &str = "NHS Electronic Prescription Service FHIR messages \
(POST a `message` Bundle; MessageHeader.eventCoding of https://fhir.nhs.uk/CodeSystem/message-event: \
prescription-order, prescription-order-update (cancellations), dispense-notification). The \
patient must already be held (by NHS number: otherwise 422, nothing stored); orders, dispenses, \
Organizations (by ODS code), Practitioners and PractitionerRoles are stored in one transaction \
with a Provenance naming the sender; a cancellation stops the order it names; sending a message \
again adds nothing. The answer is a response message (MessageHeader.response: ok or fatal-error \
with an OperationOutcome). See docs/eps.md.";

pub async fn capability_statement(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_accept(&headers, None)?;
    let base = base_url(&state, &headers);
    Ok(fhir_json_response(
        StatusCode::OK,
        statement(&base).to_string(),
    ))
}

/// FHIR Bulk Data export (routes/export.rs).
const BULK_EXPORT_DOCUMENTATION: &str = "FHIR Bulk Data Access 2.0.0 export: `Prefer: respond-async` required; `_outputFormat` (application/fhir+ndjson, application/ndjson, ndjson), `_type`, `_since`, and `deidentify=true` for a research extract (keyed pseudonyms, birth dates to year-month, postcodes to outward code, free text dropped, patients who opted out of secondary use left out). Roles: system; analyst for de-identified extracts only. Jobs do not survive a restart. See docs/bulk-export.md.";

const INTERACTIONS: &[&str] = &[
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
];

fn statement(base: &str) -> Value {
    let resources: Vec<Value> = SERVED_TYPES
        .iter()
        .map(|t| {
            let mut search: Vec<Value> = vec![
                json!({"name": "_id", "type": "token"}),
                json!({"name": "_lastUpdated", "type": "date"}),
            ];
            for def in search_params::params_for(t.name) {
                let answered_by_columns = def.code == "_id" || def.code == "_lastUpdated";
                // Not searchable here (Bundle.composition/message: entries are not indexed).
                let unsupported = !answered_by_columns && def.compiled().is_none();
                if answered_by_columns || unsupported || matches!(def.kind, SearchParamType::Composite | SearchParamType::Special) {
                    continue;
                }
                let mut param = json!({
                    "name": def.code,
                    "definition": format!("http://hl7.org/fhir/SearchParameter/{}-{}", t.name, def.code),
                    "type": serde_json::to_value(def.kind).unwrap_or(Value::Null),
                });
                if def.kind == SearchParamType::Reference {
                    param["documentation"] = json!(chain_documentation(def));
                }
                search.push(param);
            }
            search.push(json!({
                "name": "_has",
                "type": "special",
                "documentation": "Reverse chaining, one level: `_has:Type:reference:parameter=value` \
                    (e.g. `Patient?_has:MedicationRequest:subject:status=active`).",
            }));
            let references: Vec<&str> = search_params::params_for(t.name)
                .iter()
                .filter(|d| d.kind == SearchParamType::Reference && d.compiled().is_some())
                .map(|d| d.code.as_str())
                .collect();
            let interactions: Vec<Value> = INTERACTIONS.iter().map(|c| json!({"code": c})).collect();
            let mut resource = json!({
                "type": t.name,
                "profile": format!("http://hl7.org/fhir/StructureDefinition/{}", t.name),
                "interaction": interactions,
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalRead": "not-supported",
                "conditionalUpdate": true,
                "conditionalDelete": "not-supported",
                "searchInclude": references.iter().map(|p| format!("{}:{p}", t.name)).collect::<Vec<_>>(),
                "searchParam": search,
            });
            if t.name == "Patient" {
                resource["operation"] = json!([{
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"
                }, {
                    "name": "medication-record",
                    "definition": "https://fhir.smr.nhs.uk/OperationDefinition/Patient-medication-record",
                    "documentation": "The single medication record: a collection Bundle whose first entry is a List (mode working) of one MedicationStatement per medicine, merged from every care setting's entries, with DetectedIssues for conflicts. Parameters: stopped-within (days; default 90), medicine (CODE or system|CODE: one medicine's timeline with Provenance)."
                }, {
                    "name": "safety-check",
                    "definition": "https://fhir.smr.nhs.uk/OperationDefinition/Patient-safety-check",
                    "documentation": SAFETY_CHECK_DOCUMENTATION
                }, {
                    "name": "reconcile",
                    "definition": "https://fhir.smr.nhs.uk/OperationDefinition/Patient-reconcile",
                    "documentation": "Medicines reconciliation (POST): a Parameters with `target` (a List or Bundle, e.g. an admission medication history or a discharge summary) and optional `source` (default: the patient's SMR record); answers a List (mode changes) classifying each medicine: unchanged, omission, commission, dose, frequency, route, formulation, duplication, stopped, unmapped; intentional, undocumented intentional or unintentional. Stores nothing (see docs/reconciliation.md)."
                }, {
                    "name": "reconcile-confirm",
                    "definition": "https://fhir.smr.nhs.uk/OperationDefinition/Patient-reconcile-confirm",
                    "documentation": "Confirms a reconciliation (POST): the List from $reconcile with a decision per line (accept, change, reject); writes the reconciled MedicationStatements and the reconciliation List in one transaction, with Provenance and an AuditEvent."
                }, {
                    "name": "reconcile-timeliness",
                    "definition": "https://fhir.smr.nhs.uk/OperationDefinition/Patient-reconcile-timeliness",
                    "documentation": "The patient's admissions and discharges against NICE QS120: reconciled within 24 hours of admission (statement 4), and by the GP within 7 days of the discharge information arriving (statement 5)."
                }, {
                    "name": "export",
                    "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
                    "documentation": BULK_EXPORT_DOCUMENTATION
                }]);
            }
            if t.name == "Group" {
                resource["operation"] = json!([{
                    "name": "export",
                    "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
                    "documentation": BULK_EXPORT_DOCUMENTATION
                }]);
            }
            if t.name == "Provenance" {
                resource["documentation"] = json!(PROVENANCE_DOCUMENTATION);
            }
            if t.name == "Subscription" {
                resource["documentation"] = json!(SUBSCRIPTION_DOCUMENTATION);
                resource["operation"] = json!([{
                    "name": "secret",
                    "definition": "https://fhir.smr.nhs.uk/OperationDefinition/Subscription-secret",
                    "documentation": "GET: the key (hex) of the subscription's X-SMR-Signature, for a caller who may change it."
                }]);
            }
            resource
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": smr_fhir::datetime::format_instant(now_micros()),
        "publisher": "SMR",
        "kind": "instance",
        "instantiates": ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"],
        "software": {"name": "SMR", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "SMR Single Medication Record FHIR server", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        // JSON Patch, and FHIRPath Patch (a Parameters resource) as FHIR JSON.
        "patchFormat": ["application/json-patch+json", "application/fhir+json"],
        "rest": [{
            "mode": "server",
            // R4's way of saying where the websocket binding of Subscriptions is.
            "extension": [{
                "url": "http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket",
                "valueUri": websocket_url(base),
            }],
            "documentation": DOCUMENTATION,
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}],
            "operation": [{
                "name": "process-message",
                "definition": "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message",
                "documentation": PROCESS_MESSAGE_DOCUMENTATION
            }, {
                "name": "export",
                "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                "documentation": BULK_EXPORT_DOCUMENTATION
            }],
            "searchParam": [
                {"name": "_summary", "type": "token", "documentation": "true | text | data | count | false (http://hl7.org/fhir/R4/search.html#summary); also on read, vread and history"},
                {"name": "_elements", "type": "string", "documentation": "top-level elements to return (http://hl7.org/fhir/R4/search.html#elements); also on read, vread and history"},
            ],
        }],
    })
}

/// How a reference parameter chains (R4 search, "Chained parameters"): one level, into the
/// served types it may refer to.
fn chain_documentation(def: &search_params::SearchParamDef) -> String {
    let served = smr_fhir::query::chain_targets(def);
    let code = &def.code;
    match served.as_slice() {
        [] => "Not chainable: it refers to no type SMR serves.".to_owned(),
        [one] => format!("Chainable one level: `{code}.parameter` or `{code}:{one}.parameter`."),
        many => format!(
            "Chainable one level with the type named (`{code}:Type.parameter`), Type one of {}.",
            many.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_served_type_with_its_search_parameters() {
        let cs = statement("http://localhost/fhir");
        let resources = cs["rest"][0]["resource"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(resources.len(), SERVED_TYPES.len());
        let mr = resources
            .iter()
            .find(|r| r["type"] == "MedicationRequest")
            .cloned()
            .unwrap_or_default();
        let names: Vec<&str> = mr["searchParam"]
            .as_array()
            .map(|a| a.iter().filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default();
        for expected in [
            "_id",
            "_lastUpdated",
            "patient",
            "subject",
            "code",
            "status",
            "intent",
            "authoredon",
            "requester",
            "medication",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
    }

    #[test]
    fn states_chaining_and_reverse_chaining() {
        let cs = statement("http://localhost/fhir");
        let resources = cs["rest"][0]["resource"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let param = |ty: &str, name: &str| {
            resources
                .iter()
                .find(|r| r["type"] == ty)
                .and_then(|r| r["searchParam"].as_array())
                .and_then(|ps| ps.iter().find(|p| p["name"] == name))
                .cloned()
                .unwrap_or_default()
        };
        let doc = |ty: &str, name: &str| {
            param(ty, name)["documentation"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        assert!(doc("MedicationRequest", "patient").contains("`patient:Patient.parameter`"));
        assert!(doc("MedicationRequest", "subject").contains("`subject.parameter`"));
        assert!(doc("MedicationRequest", "requester").contains("with the type named"));
        assert_eq!(param("Patient", "_has")["type"], "special");
    }
}
