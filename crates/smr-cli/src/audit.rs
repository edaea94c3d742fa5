//! `smr audit verify`: checks the audit trail's hash chain and names the first record that
//! was altered, removed or reordered.

use std::path::PathBuf;

use anyhow::Context;
use smr_store::{AuditVerification, Store};

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// Verify the hash chain; exits non-zero naming the first broken record.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// Directory of the embedded store.
    #[arg(long, default_value = "./smr-data", env = "SMR_DATA_DIR")]
    data_dir: PathBuf,
    /// A PostgreSQL store instead, e.g. postgres://user@host/smr.
    #[arg(long, env = "SMR_DATABASE_URL")]
    database_url: Option<String>,
}

pub async fn run(args: AuditArgs) -> anyhow::Result<std::process::ExitCode> {
    let AuditCommand::Verify(args) = args.command;
    let url = match &args.database_url {
        Some(url) => url.clone(),
        None => {
            let file = args.data_dir.join("smr.db");
            anyhow::ensure!(file.exists(), "no store at {}", file.display());
            format!("sqlite://{}", file.display())
        }
    };
    let store = Store::open(&url)
        .await
        .with_context(|| format!("opening store {}", crate::redact(&url)))?;
    let verdict = store.verify_audit().await?;
    store.close().await;
    Ok(match verdict {
        AuditVerification::Intact { records } => {
            println!("audit chain intact: {records} records");
            std::process::ExitCode::SUCCESS
        }
        AuditVerification::Broken { seq, problem } => {
            println!("audit chain broken: record {seq} {problem}");
            eprintln!(
                "the audit trail has been tampered with at record {seq} ({problem}); \
                 keep the database as it is and report it"
            );
            std::process::ExitCode::from(2)
        }
    })
}
