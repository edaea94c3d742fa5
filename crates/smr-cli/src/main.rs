//! `smr`: the Single Medication Record command line.
//!
//! - `smr serve`: the FHIR API on the embedded store (default) or PostgreSQL.
//! - `smr pgx …`: pharmacogenomic knowledge base, interpretation and VCF calling (`pgx.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;

mod pgx;
mod synth;

use anyhow::Context;
use clap::{Parser, Subcommand};
use smr_server::{AppState, ServerConfig};
use smr_store::Store;

/// See Cargo.toml for why.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "smr",
    version,
    about = "SMR: a Single Medication Record (FHIR R4)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the FHIR R4 API (base path /fhir).
    Serve(ServeArgs),
    /// Pharmacogenomics: knowledge base, interpretation of genotypes, VCF calling.
    Pgx(pgx::PgxArgs),
    /// Write a synthetic population (NHS numbers 999…) as NDJSON transaction Bundles.
    Synth(synth::SynthArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Directory of the embedded SQLite store (created if missing).
    #[arg(long, default_value = "./smr-data", env = "SMR_DATA_DIR")]
    data_dir: PathBuf,
    /// Use this database instead of the embedded store, e.g. postgres://user@host/smr.
    #[arg(long, env = "SMR_DATABASE_URL")]
    database_url: Option<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "SMR_LISTEN")]
    listen: SocketAddr,
    /// Largest accepted request body in bytes (larger gets 413).
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    max_body_bytes: usize,
    /// Public base URL of the FHIR endpoint, used in links (default: from the Host header).
    #[arg(long)]
    base_url: Option<String>,
    /// Synthetic patients to load on start, only into a store with no Patient (0 disables).
    /// Default: 200 on the embedded store; none with --database-url unless given explicitly.
    /// All NHS numbers are in the never-issued 999 range and resources are marked HTEST.
    #[arg(long, env = "SMR_SYNTHETIC_PATIENTS")]
    synthetic_patients: Option<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Pgx(args) => pgx::run(args),
        Command::Synth(args) => synth::run(args),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let url = match &args.database_url {
        Some(url) => url.clone(),
        None => {
            std::fs::create_dir_all(&args.data_dir)
                .with_context(|| format!("creating data directory {}", args.data_dir.display()))?;
            format!("sqlite://{}", args.data_dir.join("smr.db").display())
        }
    };
    let store = Store::open(&url)
        .await
        .with_context(|| format!("opening store {}", redact(&url)))?;
    tracing::info!(store = %redact(&url), engine = ?store.engine(), "store ready");
    let synthetic = synth::serve_patients(args.synthetic_patients, args.database_url.is_some());
    if synth::load_if_empty(&store, synthetic, synth::SERVE_SEED)
        .await?
        .is_some()
    {
        // The load wrote straight to the store, past the HTTP write path that re-checks
        // medicines when genotypes arrive: run that check once now, so patient-view shows the
        // synthetic patients' pharmacogenomic issues from the first request.
        match smr_server::recheck_all(&store).await {
            Ok(n) => tracing::info!(
                detected_issues = n,
                "pharmacogenomic re-check of the synthetic population"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "pharmacogenomic re-check of the synthetic population failed")
            }
        }
    }
    let config = ServerConfig {
        max_body_bytes: args.max_body_bytes,
        base_url: args.base_url,
    };
    let app = smr_server::router(AppState::new(store.clone(), config));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!("SMR FHIR API on http://{}/fhir", listener.local_addr()?);
    // Request/response traffic: send each response at once rather than let Nagle's
    // algorithm hold back a last partial segment (the usual setting for HTTP APIs).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    store.close().await;
    Ok(())
}

/// Hides a password in a database URL before it reaches a log.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
}
