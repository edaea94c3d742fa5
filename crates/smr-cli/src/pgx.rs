//! `smr pgx …`: pharmacogenomics from the command line. OWNER: pgx helper.

/// Pharmacogenomics: knowledge base, interpretation, VCF calling.
#[derive(Debug, clap::Args)]
pub struct PgxArgs {
    #[command(subcommand)]
    pub command: PgxCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum PgxCommand {
    /// Print what the knowledge base holds and the versions of its sources.
    Kb,
}

pub fn run(args: PgxArgs) -> anyhow::Result<()> {
    match args.command {
        PgxCommand::Kb => {
            for entry in smr_pgx::kb_versions() {
                println!("{entry:?}");
            }
            Ok(())
        }
    }
}
