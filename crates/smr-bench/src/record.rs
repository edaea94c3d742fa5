//! `medication-record`: the server time of `GET Patient/{id}/$medication-record` for one
//! patient whose record holds `--sizes` source entries (issue 8 targets: p99 ≤ 5 ms at 50,
//! ≤ 20 ms at 1,000). Each size gets a fresh database holding that patient beside 100 patients
//! of 50 MedicationRequests each. The patient's entries are spread over 12 medicines as a
//! multi-setting record is: GP plans with monthly issues, pharmacy dispenses, ward
//! administrations and medication-history statements, with one client-written Provenance
//! (naming the care setting) per ten entries.

use std::time::Instant;

use anyhow::{Context, bail};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use smr_store::WriteOp;

use crate::data::{self, NhsNumbers};
use crate::growth::get_op;
use crate::load::Report;
use crate::target::Target;
use crate::{Args, call, created_id, measure, report, seed_records};

/// dm+d VMPs of the built-in starter dictionary.
const MEDICINES: [&str; 12] = [
    "319733000", // Warfarin 1mg tablets
    "329653008", // Ibuprofen 400mg tablets
    "329807003", // Naproxen 500mg tablets
    "320030001", // Atorvastatin 20mg tablets
    "320000009", // Simvastatin 40mg tablets
    "317291008", // Omeprazole 20mg gastro-resistant capsules
    "319799004", // Clopidogrel 75mg tablets
    "319734006", // Warfarin 3mg tablets
    "320031002", // Atorvastatin 40mg tablets
    "319997009", // Simvastatin 20mg tablets
    "317295004", // Omeprazole 40mg gastro-resistant capsules
    "329652003", // Ibuprofen 200mg tablets
];
const SETTINGS: [&str; 4] = [
    "gp-practice",
    "community-pharmacy",
    "hospital",
    "patient-reported",
];

pub async fn medication_record(args: &Args) -> anyhow::Result<Vec<Report>> {
    let mut reports = Vec::new();
    for &size in &args.sizes {
        let target = Target::open(args.engine, &args.database_url).await?;
        let mut nhs = NhsNumbers::new();
        seed_records(&target.store, 100, 50, &mut nhs).await?;
        let patient = seed_record(&target, size, &mut nhs).await?;
        let uri = format!("/fhir/Patient/{patient}/$medication-record");
        let body = call(
            target.router.clone(),
            Method::GET,
            uri.clone(),
            None,
            StatusCode::OK,
        )
        .await?;
        let bundle: Value = serde_json::from_slice(&body)?;
        let count = |ty: &str| {
            bundle["entry"].as_array().map_or(0, |e| {
                e.iter()
                    .filter(|e| e["resource"]["resourceType"] == ty)
                    .count()
            })
        };
        let lines = count("MedicationStatement");
        if lines == 0 {
            bail!("record of {size} entries has no lines");
        }
        eprintln!(
            "medication-record: {size} entries → {lines} lines, {} DetectedIssues, {} bytes",
            count("DetectedIssue"),
            body.len()
        );
        let measured = measure(args, args.ops, args.warmup, get_op(&target, uri)).await?;
        reports.push(report(
            args,
            &format!("$medication-record of {size} entries"),
            "router",
            args.ops,
            lines,
            measured,
        ));
        target.close().await?;
    }
    Ok(reports)
}

/// One patient with `size` medication entries (and their Provenance), in one transaction.
async fn seed_record(target: &Target, size: usize, nhs: &mut NhsNumbers) -> anyhow::Result<String> {
    let started = Instant::now();
    let outcome = target
        .store
        .transaction(vec![WriteOp::Create {
            resource: data::patient(&nhs.next_number()),
            full_url: None,
            if_none_exist: None,
        }])
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_iter()
        .next()
        .context("no patient outcome")?;
    let patient = created_id(outcome)?;
    let subject = json!({"reference": format!("Patient/{patient}")});
    let mut ops = Vec::with_capacity(size + size / 10 + 1);
    let mut batch_targets = Vec::new();
    for i in 0..size {
        let code = MEDICINES[i % MEDICINES.len()];
        let days_ago = (size - i) as i64 % 300;
        let when = format!(
            "2026-{:02}-{:02}",
            12 - (days_ago / 31).min(11),
            1 + days_ago % 28
        );
        let medicine = json!({"coding": [{"system": "https://dmd.nhs.uk", "code": code}]});
        let dosage = json!([{"text": "1 tablet once a day",
            "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}]}]);
        let resource = match (i / MEDICINES.len()) % 5 {
            0 => json!({"resourceType": "MedicationRequest", "status": "active", "intent": "plan",
                "medicationCodeableConcept": medicine, "subject": subject, "authoredOn": when, "dosageInstruction": dosage}),
            1 => {
                json!({"resourceType": "MedicationRequest", "status": "completed", "intent": "order",
                "medicationCodeableConcept": medicine, "subject": subject, "authoredOn": when, "dosageInstruction": dosage})
            }
            2 => json!({"resourceType": "MedicationDispense", "status": "completed",
                "medicationCodeableConcept": medicine, "subject": subject, "whenHandedOver": when, "dosageInstruction": dosage}),
            3 => json!({"resourceType": "MedicationAdministration", "status": "completed",
                "medicationCodeableConcept": medicine, "subject": subject, "effectiveDateTime": when,
                "dosage": {"dose": {"value": 1, "unit": "tablet"}}}),
            _ => json!({"resourceType": "MedicationStatement", "status": "active",
                "medicationCodeableConcept": medicine, "subject": subject, "effectiveDateTime": when, "dosage": dosage}),
        };
        let full_url = format!("urn:uuid:{}", uuid::Uuid::new_v4());
        batch_targets.push(json!({"reference": full_url}));
        ops.push(WriteOp::Create {
            resource,
            full_url: Some(full_url),
            if_none_exist: None,
        });
        if batch_targets.len() == 10 || i + 1 == size {
            let setting = SETTINGS[(i / 10) % SETTINGS.len()];
            ops.push(WriteOp::Create {
                resource: json!({"resourceType": "Provenance", "recorded": "2026-12-01T09:00:00Z",
                    "target": std::mem::take(&mut batch_targets),
                    "agent": [{"role": [{"coding": [{"system": "https://fhir.smr.nhs.uk/CodeSystem/care-setting", "code": setting}]}],
                        "who": {"display": "bench"}}]}),
                full_url: None,
                if_none_exist: None,
            });
        }
    }
    target
        .store
        .transaction(ops)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!(
        "seeded one patient with {size} medication entries in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(patient)
}
