//! `smr serve --mllp ADDR --mllp-senders FILE`: starting the HL7 v2 MLLP listener beside the
//! HTTP one (the listener itself is `smr_server::mllp`).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

/// Reads the senders file (`ods_code,setting,name`); errors name the file and line.
pub fn load_senders(path: &Path) -> anyhow::Result<smr_hl7v2::Senders> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--mllp-senders: reading {}", path.display()))?;
    let senders = smr_hl7v2::Senders::parse(&text)
        .with_context(|| format!("--mllp-senders {}", path.display()))?;
    if senders.is_empty() {
        tracing::warn!(file = %path.display(), "the MLLP senders file lists no sender: every message will be refused (AR)");
    }
    Ok(senders)
}

/// Binds `addr` and serves MLLP until `shutdown`; the task ends after the connections finish.
pub async fn start(
    addr: SocketAddr,
    senders: smr_hl7v2::Senders,
    app: smr_app::App,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding --mllp {addr}"))?;
    let bound = listener.local_addr()?;
    tracing::info!(senders = senders.len(), "SMR HL7 v2 (MLLP) on {bound}");
    Ok(tokio::spawn(smr_server::mllp::serve_mllp(
        listener,
        app,
        Arc::new(senders),
        smr_server::mllp::MllpConfig::default(),
        shutdown,
    )))
}
