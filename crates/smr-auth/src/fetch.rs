//! Getting an issuer's keys over HTTP: `{issuer}/.well-known/openid-configuration` →
//! `jwks_uri` → JWK Set.
//!
//! [`JwksFetcher`] is the one I/O seam (tests and embedders can supply their own);
//! [`HttpFetcher`] is the real one: `reqwest` over rustls with the `ring` provider (no
//! aws-lc-rs C build) and the platform's trust store (`rustls-platform-verifier`: on Linux
//! the system CA bundle, so a deployment's internal CAs are trusted the way the rest of the
//! host trusts them). HTTPS only, unless built with [`HttpFetcher::allowing_plain_http`]
//! (development, tests). Responses are limited to [`MAX_BODY`] bytes and 10 s.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::error::ConfigError;

/// Largest discovery document or JWK Set read.
pub const MAX_BODY: usize = 1024 * 1024;

/// A boxed, sendable future (what [`JwksFetcher`] returns).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a document could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url}: {reason}")]
pub struct FetchError {
    pub url: String,
    pub reason: String,
}

impl FetchError {
    pub fn new(url: &str, reason: impl Into<String>) -> FetchError {
        FetchError {
            url: url.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Fetches a document by URL: the body of a 2xx response, as text.
pub trait JwksFetcher: Send + Sync {
    fn get<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<String, FetchError>>;
}

/// The HTTP(S) fetcher: reqwest + rustls (ring) + the platform's trust store.
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    client: reqwest::Client,
}

impl HttpFetcher {
    /// An HTTPS-only fetcher.
    pub fn new() -> Result<HttpFetcher, ConfigError> {
        HttpFetcher::build(true)
    }

    /// A fetcher that also speaks plain HTTP: for development and tests only (keys fetched
    /// over plain HTTP can be replaced by anyone on the path).
    pub fn allowing_plain_http() -> Result<HttpFetcher, ConfigError> {
        HttpFetcher::build(false)
    }

    fn build(https_only: bool) -> Result<HttpFetcher, ConfigError> {
        let tls = client_tls(https_only)?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(https_only)
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("smr-auth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        Ok(HttpFetcher { client })
    }

    async fn fetch(&self, url: &str) -> Result<String, FetchError> {
        let fail = |reason: String| FetchError::new(url, reason);
        let mut response = self
            .client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| fail(describe(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(fail(format!("HTTP {status}")));
        }
        if response
            .content_length()
            .is_some_and(|len| len > MAX_BODY as u64)
        {
            return Err(fail(format!("response larger than {MAX_BODY} bytes")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fail(describe(&e)))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(fail(format!("response larger than {MAX_BODY} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| fail("response is not UTF-8".into()))
    }
}

/// The TLS configuration of SMR's outbound HTTP clients (JWKS fetches, rest-hook
/// notifications): rustls with ring, the platform's trusted CAs. `https_only: false` is for
/// development: without system CA certificates it still builds (refusing every HTTPS server).
pub fn client_tls(https_only: bool) -> Result<rustls::ClientConfig, ConfigError> {
    // rustls 0.23.48 deprecates ring's provider for lacking post-quantum key exchange.
    // Kept on purpose: aws-lc-rs (the PQ provider) needs a long C build, and what is
    // fetched here is public (keys), where TLS matters for authenticity, not secrecy.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
    Ok(match rustls_platform_verifier::Verifier::new(provider) {
        Ok(verifier) => builder
            .dangerous() // rustls' name for "custom verifier"; this one verifies fully
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth(),
        Err(_) if !https_only => builder
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        Err(e) => {
            return Err(ConfigError::HttpClient(format!(
                "no trusted CA certificates ({e}); install the system CA bundle"
            )));
        }
    })
}

/// A reqwest error with its causes (reqwest's own Display is terse).
pub fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl JwksFetcher for HttpFetcher {
    fn get<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<String, FetchError>> {
        Box::pin(self.fetch(url))
    }
}

/// The OpenID Provider Configuration URL of an issuer (OpenID Connect Discovery 1.0 §4:
/// the issuer without a trailing `/`, then `/.well-known/openid-configuration`).
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

#[derive(serde::Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// Fetches an issuer's discovery document, checks it names the same issuer, and fetches
/// its JWK Set. Returns the JWK Set text and its URL.
pub(crate) async fn fetch_issuer_jwks(
    fetcher: &dyn JwksFetcher,
    issuer: &str,
) -> Result<(String, String), FetchError> {
    let url = discovery_url(issuer);
    let text = fetcher.get(&url).await?;
    let doc: Discovery = serde_json::from_str(&text)
        .map_err(|e| FetchError::new(&url, format!("not an OpenID configuration ({e})")))?;
    if doc.issuer != issuer {
        return Err(FetchError::new(
            &url,
            format!(
                "names issuer {:?}, not {issuer:?} (OpenID Connect Discovery §4.3)",
                doc.issuer
            ),
        ));
    }
    let secure_issuer = issuer.starts_with("https://");
    if secure_issuer && !doc.jwks_uri.starts_with("https://") {
        return Err(FetchError::new(&url, "jwks_uri is not https"));
    }
    let jwks = fetcher.get(&doc.jwks_uri).await?;
    Ok((jwks, doc.jwks_uri))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_urls() {
        assert_eq!(
            discovery_url("https://idp.example/realms/nhs/"),
            "https://idp.example/realms/nhs/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://idp.example"),
            "https://idp.example/.well-known/openid-configuration"
        );
    }

    #[test]
    fn the_real_client_builds() {
        HttpFetcher::new().expect("HTTPS client");
        HttpFetcher::allowing_plain_http().expect("HTTP client");
    }
}
