//! `smr token`: a bearer token for local use and tests, signed by the key `smr serve` keeps
//! in its data directory (created here if it does not exist yet, so the order of the two
//! commands does not matter).

use std::path::PathBuf;

use anyhow::Context;
use smr_access::{CareSetting, Role};
use smr_auth::{LocalIssuer, TokenRequest, parse_ttl};

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// Data directory of the `smr serve` that must trust the token.
    #[arg(long, default_value = "./smr-data", env = "SMR_DATA_DIR")]
    data_dir: PathBuf,
    /// Role: gp, hospital-prescriber, hospital-pharmacist, community-pharmacist, nurse,
    /// care-worker, patient, analyst, admin or system.
    #[arg(long)]
    role: String,
    /// ODS code of the organisation the user acts for (every role but patient).
    #[arg(long)]
    org: Option<String>,
    /// The user's id (token `sub`).
    #[arg(long)]
    user: String,
    /// For role patient: their Patient id.
    #[arg(long)]
    patient: Option<String>,
    /// SMART scopes, space separated (e.g. "patient/MedicationRequest.rs"); none: the role's
    /// own limits only.
    #[arg(long)]
    scope: Option<String>,
    /// Lifetime, e.g. 15m, 8h, 30d.
    #[arg(long, default_value = "1h")]
    ttl: String,
    /// Display name, recorded in audit records.
    #[arg(long)]
    name: Option<String>,
    /// Care setting when it is not the role's usual one (e.g. community for a nurse).
    #[arg(long)]
    setting: Option<String>,
}

/// Prints the token as the last line of standard output.
pub fn run(args: TokenArgs) -> anyhow::Result<()> {
    let role = Role::parse(&args.role).with_context(|| {
        let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("unknown role '{}': one of {}", args.role, names.join(", "))
    })?;
    let setting = args
        .setting
        .as_deref()
        .map(|s| CareSetting::parse(s).with_context(|| format!("unknown care setting '{s}'")))
        .transpose()?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let issuer = LocalIssuer::load_or_create(&args.data_dir)
        .with_context(|| format!("signing key in {}", args.data_dir.display()))?;
    let request = TokenRequest {
        user: args.user,
        role,
        org: args.org,
        patient: args.patient,
        scope: args.scope,
        ttl: parse_ttl(&args.ttl)?,
        name: args.name,
        setting,
    };
    let token = issuer.issue(&request)?;
    println!("{token}");
    Ok(())
}
