//! `page-growth`: what the first page of a search by patient costs as the patient's record
//! grows. For each size in `--sizes`, a fresh database holds one patient with that many
//! MedicationRequests (beside 100 patients of 50 each, so the patient is not the whole table),
//! and the measured request is `GET /fhir/MedicationRequest?subject=Patient/{id}&_count=50`:
//! the same 50 entries whatever the size. A page that walks an index in its sort order and
//! stops at the page size costs the same at every size; one that counts or sorts every match
//! grows with the record.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use axum::http::{Method, StatusCode};
use serde_json::Value;
use smr_store::WriteOp;

use crate::data::{self, NhsNumbers};
use crate::load::{Op, OpFuture, Report};
use crate::target::Target;
use crate::{Args, call, created_id, measure, report, seed_records};

/// Entries written per transaction while seeding a large record.
const SEED_BATCH: usize = 1_000;
/// The page size the measured search asks for.
pub const PAGE: usize = 50;

pub async fn page_growth(args: &Args) -> anyhow::Result<Vec<Report>> {
    let mut reports = Vec::new();
    for &size in &args.sizes {
        let target = Target::open(args.engine, &args.database_url).await?;
        let mut nhs = NhsNumbers::new();
        seed_records(&target.store, 100, 50, &mut nhs).await?;
        let patient = seed_patient_record(&target, size, &mut nhs).await?;
        let uri = format!("/fhir/MedicationRequest?subject=Patient/{patient}&_count={PAGE}");
        // Checked once, outside the timed loop: a full page, and a next link iff more exist.
        let body = call(
            target.router.clone(),
            Method::GET,
            uri.clone(),
            None,
            StatusCode::OK,
        )
        .await?;
        let bundle: Value = serde_json::from_slice(&body)?;
        let entries = bundle["entry"].as_array().map_or(0, Vec::len);
        let has_next = bundle["link"]
            .as_array()
            .is_some_and(|l| l.iter().any(|l| l["relation"] == "next"));
        if entries != size.min(PAGE) || has_next != (size > PAGE) {
            bail!("page of {size}: {entries} entries, next link {has_next}");
        }
        eprintln!(
            "page-growth: {size} entries, first page {entries} entries, {} bytes, total {}",
            body.len(),
            bundle
                .get("total")
                .map_or("absent".into(), Value::to_string)
        );
        let measured = measure(args, args.ops, args.warmup, get_op(&target, uri)).await?;
        reports.push(report(
            args,
            &format!("search page ({PAGE}) of {size} for one patient"),
            "router",
            args.ops,
            size.min(PAGE),
            measured,
        ));
        target.close().await?;
    }
    Ok(reports)
}

/// One patient with `size` MedicationRequests, written in transactions of [`SEED_BATCH`].
async fn seed_patient_record(
    target: &Target,
    size: usize,
    nhs: &mut NhsNumbers,
) -> anyhow::Result<String> {
    let started = Instant::now();
    let ops = vec![WriteOp::Create {
        resource: data::patient(&nhs.next_number()),
        full_url: None,
        if_none_exist: None,
    }];
    let outcome = target
        .store
        .transaction(ops)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_iter()
        .next()
        .context("no patient outcome")?;
    let patient = created_id(outcome)?;
    let subject = format!("Patient/{patient}");
    let mut left = size;
    while left > 0 {
        let batch = left.min(SEED_BATCH);
        left -= batch;
        let ops = (0..batch)
            .map(|_| WriteOp::Create {
                resource: data::medication_request(&subject),
                full_url: None,
                if_none_exist: None,
            })
            .collect();
        target
            .store
            .transaction(ops)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    eprintln!(
        "seeded one patient with {size} MedicationRequests in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(patient)
}

/// The operation "GET `uri` through the router, expecting 200".
pub fn get_op(target: &Target, uri: String) -> Op {
    let router = target.router.clone();
    let uri = Arc::new(uri);
    Arc::new(move |_| -> OpFuture {
        let (router, uri) = (router.clone(), uri.clone());
        Box::pin(async move {
            call(router, Method::GET, uri.to_string(), None, StatusCode::OK).await?;
            Ok(())
        })
    })
}
