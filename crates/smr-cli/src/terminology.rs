//! `smr terminology`: importing an NHSBSA dm+d XML release into the store, and looking a
//! code up in the dictionary SMR answers from.

use std::fs::File;
use std::io::{BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use smr_dmd::release::{FileKind, locate, parse_release};
use smr_dmd::{Counts, Dictionary, MedicineLookup};
use smr_store::Store;

#[derive(Debug, clap::Args)]
pub struct TerminologyArgs {
    #[command(subcommand)]
    command: TerminologyCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TerminologyCommand {
    /// Load an NHSBSA dm+d XML release folder (f_vtm2_*.xml … f_lookup2_*.xml) into the
    /// store, replacing any earlier release in one transaction.
    ImportDmd(ImportArgs),
    /// Show a dm+d code (any level, current or previous): its name, level, VMP and VTM.
    Lookup(LookupArgs),
}

#[derive(Debug, clap::Args)]
struct StoreArgs {
    /// Directory of the embedded store.
    #[arg(long, default_value = "./smr-data", env = "SMR_DATA_DIR")]
    data_dir: PathBuf,
    /// A PostgreSQL store instead, e.g. postgres://user@host/smr.
    #[arg(long, env = "SMR_DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// The release folder.
    dir: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, clap::Args)]
struct LookupArgs {
    code: String,
    /// Print JSON (the concept and what the dictionary says about it).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(args: TerminologyArgs) -> anyhow::Result<()> {
    match args.command {
        TerminologyCommand::ImportDmd(args) => import(args).await,
        TerminologyCommand::Lookup(args) => lookup(args).await,
    }
}

async fn open_store(args: &StoreArgs, create: bool) -> anyhow::Result<Option<Store>> {
    let url = match &args.database_url {
        Some(url) => url.clone(),
        None => {
            let file = args.data_dir.join("smr.db");
            if !file.exists() && !create {
                return Ok(None);
            }
            std::fs::create_dir_all(&args.data_dir)
                .with_context(|| format!("creating data directory {}", args.data_dir.display()))?;
            format!("sqlite://{}", file.display())
        }
    };
    let store = Store::open(&url)
        .await
        .with_context(|| format!("opening store {}", crate::redact(&url)))?;
    Ok(Some(store))
}

/// Parses the release in `dir`, showing progress over the bytes of its files.
pub fn read_release(dir: &Path, progress: &ProgressBar) -> anyhow::Result<Dictionary> {
    let names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("reading dm+d release folder {}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let layout = locate(&names)?;
    let total: u64 = FileKind::REQUIRED
        .iter()
        .chain([&FileKind::Bnf])
        .filter_map(|k| layout.file(*k))
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    progress.set_length(total);
    let dictionary = parse_release(&layout, |name| {
        progress.set_message(name.to_owned());
        File::open(dir.join(name)).map(|f| BufReader::new(progress.wrap_read(f)))
    })?;
    Ok(dictionary)
}

fn progress_bar() -> ProgressBar {
    // On a terminal only: piped output and CI logs get the summary line alone.
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(0), target);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} {msg:24} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn describe(counts: &Counts) -> String {
    format!(
        "{} VTM, {} VMP, {} AMP, {} VMPP, {} AMPP, {} previous codes",
        counts.vtm, counts.vmp, counts.amp, counts.vmpp, counts.ampp, counts.previous
    )
}

async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let bar = progress_bar();
    let dictionary = read_release(&args.dir, &bar);
    bar.finish_and_clear();
    let dictionary = dictionary.with_context(|| {
        format!(
            "the dm+d release in {} was not imported",
            args.dir.display()
        )
    })?;
    let parsed = started.elapsed();
    let Some(store) = open_store(&args.store, true).await? else {
        anyhow::bail!("no store");
    };
    let app = smr_app::App::new(store.clone());
    let ctx = smr_app::pgx::system_context(format!("import-dmd-{}", std::process::id()));
    let release = dictionary.release().to_owned();
    let result = app.import_dmd(&ctx, dictionary).await;
    store.close().await;
    let counts = result.context("storing the dm+d release")?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "imported dm+d release {release}: {} in {seconds:.2} s (parsed in {:.2} s; {:.0} concepts/s)",
        describe(&counts),
        parsed.as_secs_f64(),
        counts.concepts() as f64 / seconds.max(1e-9)
    );
    Ok(())
}

async fn lookup(args: LookupArgs) -> anyhow::Result<()> {
    // With no store yet, the built-in dictionaries still answer.
    let layered = match open_store(&args.store, false).await? {
        Some(store) => {
            let app = smr_app::App::new(store.clone());
            let loaded = app.load_terminology().await;
            store.close().await;
            loaded?;
            app.dictionary()
        }
        None => std::sync::Arc::new(smr_dmd::Layered::default()),
    };
    let code = args.code.trim();
    let layers = layered
        .imported
        .as_deref()
        .into_iter()
        .chain([layered.starter]);
    let found = layers.filter_map(|d| Some((d, d.lookup(code)?))).next();
    let system = Some(smr_dmd::DMD_SYSTEMS[0]);
    let info = layered.resolve(&[(system, code)], None);
    let Some(info) = info else {
        anyhow::bail!("no dm+d concept with code {code} in the dictionary");
    };
    if args.json {
        let out = serde_json::json!({
            "query": code,
            "concept": found.map(|(_, c)| c),
            "info": info,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let (name, invalid) = found.map_or((info.matched.name.as_str(), false), |(_, c)| {
        (c.name.as_str(), c.invalid)
    });
    println!(
        "{} {} ({}){}",
        info.level.as_str().to_uppercase(),
        info.matched.code,
        name,
        if invalid { " [invalid]" } else { "" }
    );
    if info.matched.code != code {
        println!("  {code} is a previous code of {}", info.matched.code);
    }
    if let Some(vmp) = &info.vmp {
        println!("  VMP {} ({})", vmp.code, vmp.name);
    }
    if let Some(vtm) = &info.vtm {
        println!("  VTM {} ({})", vtm.code, vtm.name);
    }
    for i in &info.ingredients {
        match &i.strength {
            Some(s) => println!("  ingredient {} {s}", i.name),
            None => println!("  ingredient {}", i.name),
        }
    }
    for (label, value) in [
        ("form", &info.form),
        ("route", &info.route),
        ("BNF", &info.bnf),
        ("controlled drug", &info.controlled_drug),
    ] {
        if let Some(v) = value {
            println!("  {label}: {v}");
        }
    }
    println!("  source: {}", info.source);
    Ok(())
}
