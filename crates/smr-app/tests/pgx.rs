//! Pharmacogenomics and CDS Hooks use cases of the application layer, on a fresh SQLite
//! store: who may import and read results, the re-check (DetectedIssues, events, labels),
//! CDS call checks and audit records, feedback into the audit chain.

use std::sync::Arc;

use serde_json::{Value, json};
use smr_access::consent::CARE_SETTING_SYSTEM;
use smr_access::{CareSetting, ODS_SYSTEM, Principal, RequestContext, Role, Scopes};
use smr_app::cds::CdsPatient;
use smr_app::pgx::IssueEvent;
use smr_app::{App, AppError, WriteKind};
use smr_cds::genotype::{self, ResultContext};
use smr_pgx::Gene;
use smr_store::{AuditQuery, Store, StoreError, WriteOp, WriteOutcome};
use tempfile::TempDir;

const PRACTICE: &str = "A81001";
const OTHER_PRACTICE: &str = "B82002";

async fn open() -> (TempDir, App) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/smr.db", dir.path().display());
    let store = Store::open(&url).await.expect("store");
    (dir, App::new(store))
}

fn ctx(user: &str, role: Role, org: Option<&str>) -> RequestContext {
    RequestContext::new(
        Principal {
            user: user.into(),
            role,
            organisation: org.map(str::to_owned),
            setting: role.default_setting(),
            setting_claimed: false,
            patient: None,
            scopes: Scopes::unrestricted(),
            name: None,
            issuer: "test".into(),
        },
        None,
        "t1".into(),
    )
}

fn gp() -> RequestContext {
    ctx("u-gp", Role::Gp, Some(PRACTICE))
}

fn other_gp() -> RequestContext {
    ctx("u-other", Role::Gp, Some(OTHER_PRACTICE))
}

fn system() -> RequestContext {
    ctx("loader", Role::System, None)
}

fn create(resource: Value) -> WriteOp {
    WriteOp::Create {
        resource,
        full_url: None,
        if_none_exist: None,
    }
}

fn created_id(outcomes: &[WriteOutcome]) -> String {
    outcomes
        .iter()
        .find_map(|o| o.resource())
        .map(|r| r.id.clone())
        .expect("a resource written")
}

/// A Patient registered with [`PRACTICE`].
async fn new_patient(app: &App) -> String {
    let patient = json!({"resourceType": "Patient", "name": [{"family": "Test"}],
        "generalPractitioner": [{"identifier": {"system": ODS_SYSTEM, "value": PRACTICE}}]});
    let out = app
        .write(&system(), vec![create(patient)], WriteKind::Create)
        .await
        .expect("patient");
    created_id(&out)
}

async fn new_order(app: &App, patient: &str, medicine: &str) -> String {
    let order = json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"text": medicine},
        "subject": {"reference": format!("Patient/{patient}")},
        "authoredOn": "2026-11-01T09:00:00+00:00"});
    let out = app
        .write(&gp(), vec![create(order)], WriteKind::Create)
        .await
        .expect("order");
    created_id(&out)
}

/// A CYP2D6 ultrarapid metabolizer genotype (`*1/*1x2`): codeine and paroxetine are to be
/// avoided.
fn cyp2d6_um(patient: &str) -> Vec<WriteOp> {
    let patient_ref = format!("Patient/{patient}");
    let rc = ResultContext {
        patient_ref: &patient_ref,
        performer: None,
        issued: "2026-11-03T10:00:00Z",
    };
    vec![create(genotype::genotype_observation(
        rc,
        Gene::Cyp2d6,
        "*1/*1x2",
    ))]
}

async fn audit_bodies(app: &App, patient: &str) -> Vec<Value> {
    let page = app
        .audit_events(
            &system(),
            AuditQuery {
                patient: Some(patient.into()),
                count: 100,
                ..AuditQuery::default()
            },
        )
        .await
        .expect("audit events");
    page.records
        .iter()
        .map(|(_, body)| serde_json::from_str(body).expect("audit JSON"))
        .collect()
}

fn subtypes(event: &Value) -> Vec<&str> {
    event["subtype"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["code"].as_str())
        .collect()
}

fn refused(events: &[Value], subtype: &str) -> usize {
    events
        .iter()
        .filter(|e| e["outcome"] == "4" && subtypes(e).contains(&subtype))
        .count()
}

#[tokio::test]
async fn the_practice_imports_and_the_recheck_raises_an_issue() {
    let (_dir, app) = open().await;
    let patient = new_patient(&app).await;
    let order = new_order(&app, &patient, "Codeine phosphate 30mg tablets").await;
    let mut events = app.issue_events();
    let feed = app.start_feed_consumers();
    let out = app
        .import_pgx(&gp(), &patient, cyp2d6_um(&patient), "$pgx-outside-calls")
        .await
        .expect("import");
    assert_eq!(out.len(), 1);

    // The change feed's consumers re-check after the commit: one DetectedIssue, announced.
    let event: IssueEvent = tokio::time::timeout(std::time::Duration::from_secs(30), events.recv())
        .await
        .expect("the feed announces the issue")
        .expect("an issue event");
    assert_eq!(event.patient, patient);
    assert!(event.issue.starts_with("DetectedIssue/"), "{event:?}");
    app.drain_feed().await.expect("feed drained");
    drop(feed);
    assert!(events.try_recv().is_err(), "one issue only");

    let issues = app.pgx_issues(&gp(), &patient).await.expect("issues");
    assert_eq!(issues.withheld, 0);
    assert_eq!(issues.visible.len(), 1);
    let issue = &issues.visible[0];
    assert_eq!(
        issue["implicated"][0]["reference"],
        format!("MedicationRequest/{order}")
    );
    assert!(smr_cds::issue::is_open_pgx_issue(issue));

    // The re-check's write is audited with SMR as the agent.
    let audit = audit_bodies(&app, &patient).await;
    let recheck = audit
        .iter()
        .find(|e| subtypes(e).contains(&"pgx-recheck"))
        .expect("re-check audited");
    assert_eq!(recheck["agent"][0]["who"]["identifier"]["value"], "smr");
    assert_eq!(recheck["outcome"], "0");
    assert!(
        audit
            .iter()
            .any(|e| subtypes(e).contains(&"$pgx-outside-calls") && e["outcome"] == "0"),
        "the import is audited"
    );

    // Results for a CDS call, through the cache while no Observation changes.
    let results = app.pgx_results(&gp(), &patient).await.expect("results");
    assert_eq!(results.results.len(), 1);
    let again = app.pgx_results(&gp(), &patient).await.expect("results");
    assert!(Arc::ptr_eq(&results, &again), "served from the cache");
    app.write(&gp(), cyp2d6_um(&patient), WriteKind::Create)
        .await
        .expect("same result again");
    let fresh = app.pgx_results(&gp(), &patient).await.expect("results");
    assert!(!Arc::ptr_eq(&results, &fresh), "a write retires the entry");
    // The same result again raised nothing new: the re-check is idempotent.
    app.drain_feed().await.expect("feed drained");
    assert_eq!(
        app.pgx_issues(&gp(), &patient)
            .await
            .expect("issues")
            .visible
            .len(),
        1
    );

    assert_eq!(
        app.cds_authorize(&gp(), "smr-pgx-order-select", &patient)
            .await
            .expect("cds call"),
        CdsPatient::Known
    );
    assert_eq!(
        app.cds_authorize(&gp(), "smr-pgx-patient-view", "nobody")
            .await
            .expect("cds call"),
        CdsPatient::Unknown
    );
}

#[tokio::test]
async fn another_practice_is_refused_and_the_refusals_are_audited() {
    let (_dir, app) = open().await;
    let patient = new_patient(&app).await;
    let other = other_gp();
    assert!(matches!(
        app.pgx_results(&other, &patient).await,
        Err(AppError::Forbidden(_))
    ));
    assert!(matches!(
        app.pgx_issues(&other, &patient).await,
        Err(AppError::Forbidden(_))
    ));
    assert!(matches!(
        app.import_pgx(&other, &patient, cyp2d6_um(&patient), "$pgx-outside-calls")
            .await,
        Err(AppError::Forbidden(_))
    ));
    assert!(matches!(
        app.cds_authorize(&other, "smr-pgx-order-select", &patient)
            .await,
        Err(AppError::Forbidden(_))
    ));
    assert!(matches!(
        app.event_filter(&other, Some(&patient)).await,
        Err(AppError::Forbidden(_))
    ));
    // Nothing was stored.
    let results = app.pgx_results(&gp(), &patient).await.expect("results");
    assert!(results.results.is_empty());

    let audit = audit_bodies(&app, &patient).await;
    assert_eq!(refused(&audit, "$pgx-outside-calls"), 1, "{audit:#?}");
    assert_eq!(refused(&audit, "cds-smr-pgx-order-select"), 1);
    assert_eq!(refused(&audit, "cds-events"), 1);
    let cds = audit
        .iter()
        .find(|e| subtypes(e).contains(&"cds-smr-pgx-order-select"))
        .expect("cds refusal");
    assert_eq!(
        cds["agent"][1]["who"]["identifier"]["value"],
        OTHER_PRACTICE
    );
}

#[tokio::test]
async fn roles_without_the_operation_are_refused() {
    let (_dir, app) = open().await;
    let patient = new_patient(&app).await;
    let nurse = ctx("u-nurse", Role::Nurse, Some(PRACTICE));
    let carer = ctx("u-carer", Role::CareWorker, Some(PRACTICE));
    // A nurse may call CDS services but not import results.
    assert!(matches!(
        app.import_pgx(&nurse, &patient, cyp2d6_um(&patient), "$pgx-vcf")
            .await,
        Err(AppError::Forbidden(_))
    ));
    assert!(
        app.cds_authorize(&nurse, "smr-pgx-order-sign", &patient)
            .await
            .is_ok()
    );
    // A care worker does neither.
    assert!(matches!(
        app.cds_authorize(&carer, "smr-pgx-patient-view", &patient)
            .await,
        Err(AppError::Forbidden(_))
    ));
    assert!(matches!(
        app.record_cds_feedback(&carer, "smr-pgx-order-select", vec![json!({})])
            .await,
        Err(AppError::Forbidden(_))
    ));
    assert!(matches!(
        app.event_filter(&carer, None).await,
        Err(AppError::Forbidden(_))
    ));
    // An unknown patient is a 404 for an import, before anything else.
    assert!(matches!(
        app.import_pgx(&gp(), "nobody", cyp2d6_um("nobody"), "$pgx-outside-calls")
            .await,
        Err(AppError::Store(StoreError::NotFound { .. }))
    ));
    // Ids are ids, not query text.
    assert!(matches!(
        app.pgx_results(&gp(), &format!("{patient}&code=x")).await,
        Err(AppError::BadRequest(_))
    ));
}

#[tokio::test]
async fn an_issue_about_a_withheld_medicine_is_withheld_too() {
    let (_dir, app) = open().await;
    let patient = new_patient(&app).await;
    new_order(&app, &patient, "Codeine phosphate 30mg tablets").await;
    let paroxetine = new_order(&app, &patient, "Paroxetine 20mg tablets").await;
    // The patient withholds psychiatric medicines from GP practices.
    let consent = json!({"resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{patient}")},
        "provision": {"type": "permit", "provision": [{"type": "deny",
            "actor": [{"role": {"text": "GP practice"}, "reference": {"identifier": {
                "system": CARE_SETTING_SYSTEM, "value": CareSetting::GpPractice.as_str()}}}],
            "securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}]}]}});
    app.write(&system(), vec![create(consent)], WriteKind::Create)
        .await
        .expect("consent");
    let mut events = app.issue_events();
    let _feed = app.start_feed_consumers();
    app.import_pgx(&gp(), &patient, cyp2d6_um(&patient), "$pgx-outside-calls")
        .await
        .expect("import");
    let mut raised = Vec::new();
    while raised.len() < 2 {
        match tokio::time::timeout(std::time::Duration::from_secs(30), events.recv()).await {
            Ok(Ok(e)) => raised.push(e),
            other => panic!("the feed announced {raised:?}, then {other:?}"),
        }
    }
    app.drain_feed().await.expect("feed drained");
    assert!(
        events.try_recv().is_err(),
        "codeine and paroxetine only: {raised:?}"
    );

    // The back-end system sees both; the paroxetine one carries the medicine's label.
    let all = app.pgx_issues(&system(), &patient).await.expect("issues");
    assert_eq!(all.visible.len(), 2);
    assert_eq!(all.withheld, 0);
    let about_paroxetine = all
        .visible
        .iter()
        .find(|i| i["implicated"][0]["reference"] == format!("MedicationRequest/{paroxetine}"))
        .expect("paroxetine issue");
    assert!(
        about_paroxetine["meta"]["security"]
            .to_string()
            .contains("\"PSY\""),
        "{about_paroxetine}"
    );
    let hidden_ref = format!(
        "DetectedIssue/{}",
        about_paroxetine["id"].as_str().unwrap_or_default()
    );

    // The GP is told one issue exists that they cannot see, not which.
    let seen = app.pgx_issues(&gp(), &patient).await.expect("issues");
    assert_eq!(seen.visible.len(), 1);
    assert_eq!(seen.withheld, 1);
    assert!(!seen.visible[0].to_string().contains(&paroxetine));

    // Nor does their event stream carry it.
    let filter = app.event_filter(&gp(), None).await.expect("stream");
    for e in &raised {
        assert_eq!(filter.allows(&app, e).await, e.issue != hidden_ref, "{e:?}");
    }
    let other = app.event_filter(&other_gp(), None).await.expect("stream");
    for e in &raised {
        assert!(!other.allows(&app, e).await, "not their patient");
    }
    assert!(app.may_follow_patient(&gp(), &patient).await);
    assert!(!app.may_follow_patient(&other_gp(), &patient).await);
}

#[tokio::test]
async fn feedback_goes_to_the_audit_chain() {
    let (_dir, app) = open().await;
    let item = json!({"card": "9b0f1a6e-8d0c-4c43-b9f3-0d2c0a3d7e11", "outcome": "overridden",
        "outcomeTimestamp": "2026-11-05T10:00:00Z",
        "overrideReason": {"reason": {"system": "http://example.org/reasons", "code": "patient-aware"},
                           "userComment": "discussed with the patient"}});
    let event =
        smr_cds::hooks::feedback_audit_event("smr-pgx-order-select", &item, "2026-11-05T10:00:01Z")
            .expect("feedback event");
    let stored = app
        .record_cds_feedback(&gp(), "smr-pgx-order-select", vec![event])
        .await
        .expect("stored");
    assert_eq!(stored.len(), 1);
    let id = stored[0].strip_prefix("AuditEvent/").expect("reference");
    let body: Value = serde_json::from_str(
        &app.audit_event(&system(), id)
            .await
            .expect("audit event by id"),
    )
    .expect("JSON");
    assert_eq!(body["id"], id);
    assert_eq!(body["recorded"], "2026-11-05T10:00:00Z");
    assert_eq!(body["agent"][0]["who"]["identifier"]["value"], "u-gp");
    assert_eq!(body["agent"][1]["who"]["identifier"]["value"], PRACTICE);
    assert_eq!(body["type"]["code"], "cds-hooks-feedback");
    assert!(matches!(
        app.verify_audit().await,
        Ok(smr_store::AuditVerification::Intact { .. })
    ));
    // Not a valid AuditEvent: nothing stored.
    assert!(matches!(
        app.record_cds_feedback(
            &gp(),
            "smr-pgx-order-select",
            vec![json!({"resourceType": "AuditEvent", "bogus": 1})]
        )
        .await,
        Err(AppError::BadRequest(_))
    ));
}
