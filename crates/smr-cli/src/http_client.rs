//! The HTTP client of the commands that talk to a running node (`smr import --url`,
//! `smr loadgen`): rustls with ring, as smr-auth uses (see its fetch.rs for why ring), the
//! platform's trust store, no OpenSSL.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

/// A client identifying itself as `agent`, giving up on a request after `timeout`.
pub fn http_client(agent: &str, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS configuration")?;
    let tls = match rustls_platform_verifier::Verifier::new(provider) {
        Ok(verifier) => builder
            .dangerous() // rustls' name for a custom verifier; this one verifies fully
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth(),
        // No CA certificates on this machine: plain HTTP still works, HTTPS is refused.
        Err(_) => builder
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_secs(10))
        .timeout(timeout)
        .user_agent(format!("{agent}/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")
}
