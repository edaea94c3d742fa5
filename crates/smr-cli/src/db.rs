//! `smr db partition`: lays a PostgreSQL store out partitioned by patient (the layout that
//! distributes on Citus; see `smr_store::layout` and docs/scale.md).

use anyhow::Context;
use smr_store::Store;
use smr_store::layout::{DEFAULT_PARTITIONS, NOT_BY_PATIENT};

#[derive(Debug, clap::Args)]
pub struct DbArgs {
    #[command(subcommand)]
    command: DbCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DbCommand {
    /// Hash-partition every patient-keyed table of a PostgreSQL store by `patient_key`,
    /// keeping its rows (one transaction; tables already partitioned are left alone).
    Partition(PartitionArgs),
}

#[derive(Debug, clap::Args)]
struct PartitionArgs {
    /// The PostgreSQL store, e.g. postgres://user@host/smr (created and migrated if new).
    #[arg(long, env = "SMR_DATABASE_URL")]
    database_url: String,
    /// Partitions per table (2 to 1024).
    #[arg(long, default_value_t = DEFAULT_PARTITIONS)]
    partitions: u32,
}

pub async fn run(args: DbArgs) -> anyhow::Result<()> {
    let DbCommand::Partition(args) = args.command;
    let url = &args.database_url;
    let store = Store::open(url)
        .await
        .with_context(|| format!("opening store {}", crate::redact(url)))?;
    store
        .partition_by_patient(args.partitions)
        .await
        .context("partitioning by patient")?;
    for (table, parts) in store.patient_table_partitions().await? {
        println!("{table}: {parts} partitions by patient_key");
    }
    for (table, why) in NOT_BY_PATIENT {
        println!("{table}: whole ({why})");
    }
    store.close().await;
    Ok(())
}
