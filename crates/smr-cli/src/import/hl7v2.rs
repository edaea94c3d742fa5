//! `smr import FILE.hl7`: HL7 v2 messages from files, each stored as the HL7 v2 listener
//! stores it (`App::hl7v2_message`: one transaction per message, as its sender, idempotent).
//!
//! A file holds MLLP frames, or messages separated by blank lines or starting at each `MSH`
//! (`smr_hl7v2::mllp::split_file`). The sending facility (MSH-4) is resolved through the
//! senders file (`--mllp-senders`) or the one sender given with `--sender ODS,SETTING[,NAME]`;
//! a message refused (`AE`/`AR`) is reported on standard error with its ACK's reason and the
//! rest go on.

use std::path::{Path, PathBuf};

use anyhow::Context;
use smr_app::App;
use smr_hl7v2::{AckCode, Senders};

/// Whether `path` is an HL7 v2 file (by its extension).
pub fn is_hl7(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("hl7"))
}

/// The senders from `--mllp-senders FILE` or `--sender ODS,SETTING[,NAME]`.
pub fn senders(file: Option<&Path>, sender: Option<&str>) -> anyhow::Result<Senders> {
    match (file, sender) {
        (Some(file), None) => crate::mllp::load_senders(file),
        (None, Some(spec)) => {
            let line = match spec.matches(',').count() {
                1 => format!("{spec},"),
                _ => spec.to_owned(),
            };
            Senders::parse(&format!("ods_code,setting,name\n{line}"))
                .map_err(|e| anyhow::anyhow!("--sender {spec}: {}", e.message))
        }
        (Some(_), Some(_)) => anyhow::bail!("give --sender or --mllp-senders, not both"),
        (None, None) => anyhow::bail!(
            "HL7 v2 files need their senders: --mllp-senders FILE (ods_code,setting,name) or --sender ODS,SETTING"
        ),
    }
}

/// Counts of one run.
#[derive(Debug, Default)]
pub struct Counts {
    pub stored: u64,
    pub refused: u64,
}

/// Stores every message of `files`; refusals are reported and counted, never fatal.
pub async fn import(app: &App, senders: &Senders, files: &[PathBuf]) -> anyhow::Result<Counts> {
    let mut counts = Counts::default();
    for file in files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        for (n, message) in smr_hl7v2::mllp::split_file(&bytes).iter().enumerate() {
            let channel = format!("{}#{}", file.display(), n + 1);
            let reply = app.hl7v2_message(senders, message, &channel).await;
            match (reply.code, &reply.error) {
                (AckCode::Accept, _) => counts.stored += 1,
                (code, error) => {
                    counts.refused += 1;
                    let reason = error.as_ref().map(ToString::to_string).unwrap_or_default();
                    eprintln!("{channel}: {}: {reason}", code.as_str());
                }
            }
        }
    }
    Ok(counts)
}
