//! `--scenario dmd-import`: the dm+d import rate. Parsing an NHSBSA XML release folder
//! (`--dmd-release`, e.g. ../shared/reference/dmd-xml/release-1), then storing it with
//! `Store::replace_dmd_release` (one transaction, batched inserts) on a fresh database.
//! `--dmd-scale K` stores K copies of the release's rows (codes suffixed) to approach a full
//! release's size (~1 M rows) from the small test release.

use std::fs::File;
use std::io::BufReader;
use std::time::Instant;

use anyhow::Context;
use smr_dmd::Dictionary;
use smr_dmd::release::{FileKind, locate, parse_release};
use smr_store::{DmdRelease, DmdRow, Store};

use crate::Args;
use crate::target::FreshDb;

fn parse(dir: &std::path::Path) -> anyhow::Result<(Dictionary, u64)> {
    let names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let layout = locate(&names)?;
    let bytes = FileKind::REQUIRED
        .iter()
        .filter_map(|k| layout.file(*k))
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    let d = parse_release(&layout, |n| File::open(dir.join(n)).map(BufReader::new))?;
    Ok((d, bytes))
}

pub(crate) async fn dmd_import(args: &Args) -> anyhow::Result<()> {
    let dir = args
        .dmd_release
        .as_ref()
        .context("--scenario dmd-import needs --dmd-release DIR")?;
    let rounds = 20;
    let started = Instant::now();
    let mut parsed = None;
    for _ in 0..rounds {
        parsed = Some(parse(dir)?);
    }
    let parse_time = started.elapsed().as_secs_f64() / f64::from(rounds);
    let (dictionary, bytes) = parsed.context("parsed")?;
    let concepts = dictionary.counts().concepts();
    println!(
        "dmd-import parse: {concepts} concepts, {:.1} MB in {:.1} ms: {:.0} concepts/s, {:.1} MB/s",
        bytes as f64 / 1e6,
        parse_time * 1e3,
        concepts as f64 / parse_time,
        bytes as f64 / 1e6 / parse_time
    );

    let base = dictionary.to_rows();
    let mut rows = Vec::with_capacity(base.len() * args.dmd_scale);
    for k in 0..args.dmd_scale {
        rows.extend(base.iter().map(|r| DmdRow {
            code: format!("{}{k:04}", r.code),
            level: r.level.clone(),
            name: r.name.clone(),
            body: r.body.clone(),
            current_code: format!("{}{k:04}", r.current_code),
        }));
    }
    let release = DmdRelease {
        release: dictionary.release().to_owned(),
        imported_at: String::new(),
        counts: "{}".into(),
        rows,
    };
    let db = FreshDb::create(args.engine, &args.database_url).await?;
    let store = Store::open(&db.url).await?;
    for round in 0..3 {
        let started = Instant::now();
        store.replace_dmd_release(&release, None).await?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "dmd-import store ({}, round {round}{}): {} rows in {:.2} s: {:.0} rows/s",
            args.engine.name(),
            if round == 0 {
                ", empty tables"
            } else {
                ", replacing"
            },
            release.rows.len(),
            secs,
            release.rows.len() as f64 / secs
        );
    }
    let started = Instant::now();
    let loaded = store.load_dmd().await?.context("stored")?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "dmd-import load ({}): {} rows in {:.2} s: {:.0} rows/s",
        args.engine.name(),
        loaded.rows.len(),
        secs,
        loaded.rows.len() as f64 / secs
    );
    store.close().await;
    db.drop_db().await?;
    Ok(())
}
