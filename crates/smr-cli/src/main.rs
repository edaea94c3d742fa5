//! `smr`: the Single Medication Record command line.
//!
//! - `smr serve`: the FHIR API on the embedded store (default) or PostgreSQL.
//! - `smr pgx …`: pharmacogenomic knowledge base, interpretation and VCF calling (`pgx.rs`).
//! - `smr terminology …`: dm+d release import and code lookup (`terminology.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;

mod audit;
mod db;
mod demo;
mod http_client;
mod import;
mod loadgen;
mod mllp;
mod pgx;
mod subscription_key;
mod synth;
mod terminology;
mod token;

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

// Parsed once per run: the size of its largest variant costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the FHIR R4 API (base path /fhir).
    Serve(ServeArgs),
    /// Pharmacogenomics: knowledge base, interpretation of genotypes, VCF calling.
    Pgx(pgx::PgxArgs),
    /// Write a synthetic population (NHS numbers 999…) as NDJSON transaction Bundles.
    Synth(synth::SynthArgs),
    /// Print a bearer token signed by the data directory's local key (for local use and tests).
    Token(token::TokenArgs),
    /// The audit trail: `smr audit verify` checks its hash chain.
    Audit(audit::AuditArgs),
    /// The drug dictionary: import an NHSBSA dm+d release, look a code up.
    Terminology(terminology::TerminologyArgs),
    /// Bulk import of FHIR NDJSON and Bundles (gzip accepted); exit 2 when entries were
    /// rejected (see the rejects file).
    Import(import::ImportArgs),
    /// Database layout: `smr db partition` splits a PostgreSQL store by patient (as on Citus).
    Db(db::DbArgs),
    /// Load generator: a national mix of operations against running nodes at a target rate,
    /// with percentiles per operation; `--verify` reads acknowledged writes back.
    Loadgen(loadgen::LoadgenArgs),
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
    /// Public base URL of the FHIR endpoint, used in links (default: http://ADDRESS/fhir of
    /// --listen, with localhost for an unspecified address).
    #[arg(long, env = "SMR_BASE_URL")]
    base_url: Option<String>,
    /// Without --base-url, take links' scheme and host from X-Forwarded-Proto,
    /// X-Forwarded-Host and Host. Only behind a reverse proxy that sets them.
    #[arg(long)]
    trust_forwarded_headers: bool,
    /// Synthetic patients to load on start, only into a store with no Patient (0 disables).
    /// Default: 200 on the embedded store; none with --database-url unless given explicitly.
    /// All NHS numbers are in the never-issued 999 range and resources are marked HTEST.
    #[arg(long, env = "SMR_SYNTHETIC_PATIENTS")]
    synthetic_patients: Option<usize>,
    /// Trust tokens signed by the keys in this JWK Set file: SMR's form
    /// `{"issuer": "...", "keys": [...]}`, or `ISSUER=FILE` for a plain JWK Set. Repeatable.
    #[arg(long = "jwks", value_name = "[ISSUER=]FILE")]
    jwks: Vec<String>,
    /// Trust tokens of this OpenID issuer (keys from its discovery document's jwks_uri,
    /// cached and refreshed). Repeatable.
    #[arg(long = "issuer", value_name = "URL")]
    issuers: Vec<String>,
    /// The audience (`aud`) tokens must name.
    #[arg(long, default_value = smr_auth::DEFAULT_AUDIENCE)]
    audience: String,
    /// Requests per second per user (429 with Retry-After beyond it); 0 disables. Back-end
    /// systems (role system) are exempt.
    #[arg(long, default_value_t = 50, env = "SMR_RATE_LIMIT")]
    rate_limit: u32,
    /// Longest a request may take before it is answered with 503 (e.g. 30s, 2m).
    #[arg(long, default_value = "30s")]
    request_timeout: String,
    /// Longest a client may take to send a request's headers, counted from the connection's
    /// start or the end of the previous response (so it also closes idle keep-alive
    /// connections); e.g. 30s.
    #[arg(long, default_value = "30s")]
    header_timeout: String,
    /// A connection on which nothing is received or sent for this long is closed (a stalled
    /// body, a client that stopped reading); e.g. 60s, 2m.
    #[arg(long, default_value = "60s")]
    idle_timeout: String,
    /// Serve HTTPS with this PEM certificate chain (the server's certificate first, then any
    /// intermediates). Needs --tls-key.
    #[arg(long, value_name = "FILE", env = "SMR_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert. Needs --tls-cert.
    #[arg(long, value_name = "FILE", env = "SMR_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// URL prefixes rest-hook Subscriptions may call, comma-separated (e.g.
    /// https://hooks.example.nhs.uk/smr/). None by default: SMR calls no host it was not told.
    #[arg(
        long,
        value_name = "URL,…",
        env = "SMR_SUBSCRIPTION_ENDPOINTS",
        value_delimiter = ','
    )]
    subscription_endpoints: Vec<String>,
    /// The key rest-hook notifications are signed with (every node of a deployment needs the
    /// same). Default: a random key kept in the data directory (subscription-signing.key).
    #[arg(long, env = "SMR_SUBSCRIPTION_KEY", hide_env_values = true)]
    subscription_key: Option<String>,
    /// Publish every change (identifiers only) to NATS JetStream at this URL (e.g.
    /// nats://127.0.0.1:4222) and run Subscriptions from the stream, so that every node of a
    /// deployment notifies its clients of every node's writes (docs/subscriptions.md).
    #[arg(long, value_name = "URL", env = "SMR_NATS_URL")]
    nats_url: Option<String>,
    /// Listen for HL7 v2 messages over MLLP on this address (e.g. 0.0.0.0:2575); needs
    /// --mllp-senders (MLLP has no authentication: only listed senders are accepted).
    #[arg(long, value_name = "ADDR", env = "SMR_MLLP", requires = "mllp_senders")]
    mllp: Option<SocketAddr>,
    /// The HL7 v2 senders file: CSV `ods_code,setting,name` (see docs/hl7v2.md).
    #[arg(long, value_name = "FILE", env = "SMR_MLLP_SENDERS")]
    mllp_senders: Option<PathBuf>,
    /// Do not print the demo sign-ins at start (they are printed on the embedded store only).
    #[arg(long)]
    no_demo_tokens: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to standard error (standard output carries data: `smr token`, `smr synth`),
    // in colour only on a terminal.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Pgx(args) => pgx::run(args),
        Command::Synth(args) => synth::run(args),
        Command::Token(args) => token::run(args),
        Command::Terminology(args) => terminology::run(args).await,
        Command::Import(args) => {
            let code = import::run(args).await?;
            if code != std::process::ExitCode::SUCCESS {
                std::process::exit(2);
            }
            Ok(())
        }
        Command::Db(args) => db::run(args).await,
        Command::Loadgen(args) => {
            let code = loadgen::run(args).await?;
            if code != std::process::ExitCode::SUCCESS {
                std::process::exit(2);
            }
            Ok(())
        }
        Command::Audit(args) => {
            let code = audit::run(args).await?;
            if code != std::process::ExitCode::SUCCESS {
                std::process::exit(2);
            }
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Before anything is opened or loaded: a wrong certificate or key stops the start at once.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(smr_server::TlsConfig::from_pem_files(cert, key).context("--tls-cert/--tls-key")?)
        }
        (None, None) => None,
        // clap already refuses one without the other; kept so the rule holds whatever the parser.
        _ => anyhow::bail!("--tls-cert and --tls-key go together: give both or neither"),
    };
    let mllp_senders = match (&args.mllp, &args.mllp_senders) {
        (Some(_), Some(file)) => Some(mllp::load_senders(file)?),
        (Some(_), None) => anyhow::bail!(
            "--mllp needs --mllp-senders FILE: MLLP has no authentication, so SMR accepts only the senders listed there"
        ),
        (None, _) => None,
    };
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data directory {}", args.data_dir.display()))?;
    restrict_permissions(&args.data_dir, args.database_url.is_none());
    let url = match &args.database_url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", args.data_dir.join("smr.db").display()),
    };
    let store = Store::open(&url)
        .await
        .with_context(|| format!("opening store {}", redact(&url)))?;
    tracing::info!(store = %redact(&url), engine = ?store.engine(), "store ready");
    // Bulk Data export files (in-memory jobs; files under the data directory, same permissions).
    let app = smr_app::App::new(store.clone()).with_export_dir(args.data_dir.join("exports"));
    match app.load_terminology().await {
        Ok(release) => tracing::info!(dmd_release = ?release, "drug dictionary ready"),
        Err(e) => {
            tracing::warn!(error = %e, "the imported dm+d release could not be loaded; built-in dictionaries only")
        }
    }
    let synthetic = synth::serve_patients(args.synthetic_patients, args.database_url.is_some());
    // The load goes straight to the store; what follows its commits (the PGx re-check of
    // the synthetic patients' genotypes) is the change feed's, as for any write.
    synth::load_if_empty(&store, synthetic, synth::SERVE_SEED).await?;
    let verifier = std::sync::Arc::new(smr_auth::Verifier::new(args.audience.clone()));
    let local = smr_auth::LocalIssuer::load_or_create(&args.data_dir)
        .with_context(|| format!("signing key in {}", args.data_dir.display()))?
        .with_audience(args.audience.clone());
    verifier.trust_local(&local);
    for spec in &args.jwks {
        let (issuer, file) = match spec.split_once('=') {
            Some((issuer, file)) if !issuer.contains('/') || issuer.contains("://") => {
                (Some(issuer), file)
            }
            _ => (None, spec.as_str()),
        };
        let trusted = verifier
            .add_jwks_file(issuer, std::path::Path::new(file))
            .with_context(|| format!("--jwks {spec}"))?;
        tracing::info!(issuer = %trusted, "trusting tokens of issuer (JWKS file)");
    }
    for issuer in &args.issuers {
        let keys = verifier
            .add_issuer_url(issuer)
            .await
            .with_context(|| format!("--issuer {issuer}"))?;
        tracing::info!(issuer = %issuer, keys, "trusting tokens of issuer (discovery)");
    }
    if !args.issuers.is_empty() {
        verifier.spawn_refresh(std::time::Duration::from_secs(3600));
    }
    let demo_sign_ins = if args.database_url.is_none() && !args.no_demo_tokens {
        demo::print_sign_ins(&app, &local, synthetic).await
    } else {
        Vec::new()
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let bound = listener.local_addr()?;
    let base_url = match (args.base_url, args.trust_forwarded_headers) {
        (Some(base), _) => Some(base),
        (None, true) => None,
        (None, false) => Some(listen_base_url(bound, tls.is_some())),
    };
    let config = ServerConfig {
        max_body_bytes: args.max_body_bytes,
        base_url,
        trust_forwarded_headers: args.trust_forwarded_headers,
        rate_limit: std::num::NonZeroU32::new(args.rate_limit),
        request_timeout: smr_auth::parse_ttl(&args.request_timeout)
            .with_context(|| format!("--request-timeout {}", args.request_timeout))?,
        tls: tls.is_some(),
        subscriptions: smr_app::subscriptions::SubscriptionPolicy {
            allowed_endpoints: args.subscription_endpoints.clone(),
            signing_key: subscription_key::load(args.subscription_key.as_deref(), &args.data_dir)?,
            ..Default::default()
        },
    };
    let timeouts = smr_server::ConnectionTimeouts {
        header: smr_auth::parse_ttl(&args.header_timeout)
            .with_context(|| format!("--header-timeout {}", args.header_timeout))?,
        idle: smr_auth::parse_ttl(&args.idle_timeout)
            .with_context(|| format!("--idle-timeout {}", args.idle_timeout))?,
    };
    let _bus = match &args.nats_url {
        Some(url) => {
            let bus = smr_bus::start(app.clone(), smr_bus::BusConfig::new(url.clone()))
                .await
                .with_context(|| format!("--nats-url {url}"))?;
            tracing::info!(nats = %url, "change feed published to NATS JetStream; Subscriptions run from it");
            Some(bus)
        }
        None => None,
    };
    // One shutdown signal for both listeners.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let mllp_task = match (args.mllp, mllp_senders) {
        (Some(addr), Some(senders)) => {
            Some(mllp::start(addr, senders, app.clone(), until_stopped()).await?)
        }
        _ => None,
    };
    let router =
        smr_server::router(AppState::new(app, verifier, config).with_demo_sign_ins(demo_sign_ins));
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("SMR FHIR API on {scheme}://{bound}/fhir");
    // SMR's own accept loop: header and idle timeouts (slow or silent clients are dropped),
    // TCP_NODELAY, graceful shutdown; the TLS handshake in each connection's task.
    match tls {
        Some(tls) => {
            smr_server::serve_tls(listener, router, timeouts, tls, until_stopped()).await?;
        }
        None => smr_server::serve(listener, router, timeouts, until_stopped()).await?,
    }
    if let Some(task) = mllp_task {
        task.await.context("the MLLP listener failed")??;
    }
    store.close().await;
    Ok(())
}

/// The base URL links use when none is configured: the address SMR listens on, with
/// `localhost` for an unspecified one (0.0.0.0 is not an address a client can use), `https`
/// when SMR serves TLS itself.
fn listen_base_url(bound: SocketAddr, tls: bool) -> String {
    let host = if bound.ip().is_unspecified() {
        "localhost".to_owned()
    } else {
        match bound.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            std::net::IpAddr::V4(ip) => ip.to_string(),
        }
    };
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{host}:{}/fhir", bound.port())
}

/// The data directory holds the record and the signing key: owner only. The database file is
/// created owner-only before SQLite opens it (SQLite would create it with the umask's mode,
/// usually world-readable), and an existing one is restricted; SQLite gives its `-wal` and
/// `-shm` files the database file's mode, so they follow.
fn restrict_permissions(dir: &std::path::Path, embedded_store: bool) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
            tracing::warn!(error = %e, dir = %dir.display(), "could not restrict the data directory to its owner");
        }
        if !embedded_store {
            return;
        }
        let db = dir.join("smr.db");
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&db);
        if let Err(e) = created {
            tracing::warn!(error = %e, file = %db.display(), "could not create the database file owner-only");
        }
        for name in ["smr.db", "smr.db-wal", "smr.db-shm"] {
            let file = dir.join(name);
            if file.exists()
                && let Err(e) =
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
            {
                tracing::warn!(error = %e, file = %file.display(), "could not restrict a database file to its owner");
            }
        }
    }
}

/// Hides a password in a database URL before it reaches a log.
pub(crate) fn redact(url: &str) -> String {
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

/// Ctrl-C or SIGTERM (what container platforms send): stop accepting, finish what is in
/// flight, close the store.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_default_to_https_when_smr_serves_tls() {
        let bound: SocketAddr = "0.0.0.0:8443".parse().expect("address");
        assert_eq!(listen_base_url(bound, true), "https://localhost:8443/fhir");
        assert_eq!(listen_base_url(bound, false), "http://localhost:8443/fhir");
        let v6: SocketAddr = "[::1]:8443".parse().expect("address");
        assert_eq!(listen_base_url(v6, true), "https://[::1]:8443/fhir");
    }

    #[test]
    fn tls_certificate_and_key_go_together() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["smr", "serve"][..], args].concat());
        for one in [["--tls-cert", "cert.pem"], ["--tls-key", "key.pem"]] {
            let err = parse(&one).expect_err("one TLS file without the other accepted");
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::MissingRequiredArgument,
                "{err}"
            );
        }
        assert!(parse(&["--tls-cert", "cert.pem", "--tls-key", "key.pem"]).is_ok());
        assert!(parse(&[]).is_ok());
    }

    #[test]
    fn mllp_needs_a_senders_file() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["smr", "serve"][..], args].concat());
        let err = parse(&["--mllp", "127.0.0.1:2575"]).expect_err("--mllp alone accepted");
        assert_eq!(
            err.kind(),
            clap::error::ErrorKind::MissingRequiredArgument,
            "{err}"
        );
        assert!(err.to_string().contains("--mllp-senders"), "{err}");
        assert!(parse(&["--mllp", "127.0.0.1:2575", "--mllp-senders", "s.csv"]).is_ok());
    }
}
