//! TLS for `smr serve`: a certificate chain and its private key, read from PEM files, made into
//! the rustls configuration the accept loop (`serve`) terminates TLS with.
//!
//! rustls with the ring provider (as `smr-auth` uses; no aws-lc-rs and its C build), TLS 1.2
//! and 1.3 only, ALPN `http/1.1` (SMR serves HTTP/1 only, so a client that offers only `h2`
//! is refused at the handshake rather than misunderstood after it). Every way the files can be
//! wrong is found at start-up and named with the file, never at the first connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{Error as RustlsError, InconsistentKeys, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// Why the certificate or key cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not valid PEM: {source}", path.display())]
    Pem { path: PathBuf, source: pem::Error },
    #[error("{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display())]
    NoCertificate { path: PathBuf },
    #[error(
        "{} holds no PEM private key (PKCS#8 PRIVATE KEY, PKCS#1 RSA PRIVATE KEY or SEC1 EC PRIVATE KEY)",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error("the private key in {} cannot be used: {source}", path.display())]
    UnusableKey { path: PathBuf, source: RustlsError },
    #[error("the first certificate in {} cannot be used: {source}", path.display())]
    UnusableCertificate { path: PathBuf, source: RustlsError },
    #[error(
        "the private key in {} does not belong to the certificate in {} (the first certificate must be the server's own)",
        key.display(),
        cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
}

/// A TLS server configuration, ready for the accept loop. Cloning is cheap (shared).
#[derive(Clone)]
pub struct TlsConfig {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Reads a PEM certificate chain (the server's certificate first, then intermediates) and
    /// a PEM private key (PKCS#8, PKCS#1 or SEC1) that must belong to that certificate.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                path: path.to_owned(),
                source,
            })
        };
        Self::from_pem(&read(cert)?, cert, &read(key)?, key)
    }

    /// As [`TlsConfig::from_pem_files`], from the files' contents (`cert_path` and
    /// `key_path` only name them in errors).
    pub fn from_pem(
        cert_pem: &[u8],
        cert_path: &Path,
        key_pem: &[u8],
        key_path: &Path,
    ) -> Result<Self, TlsError> {
        let chain = read_chain(cert_pem, cert_path)?;
        let key = read_key(key_pem, key_path)?;
        // rustls 0.23.48 deprecates ring's provider for lacking post-quantum key exchange
        // (X25519MLKEM768). Kept on purpose, as in smr-auth: aws-lc-rs (the PQ provider) needs
        // a long C build. Classical ECDHE (X25519, P-256, P-384) still protects the traffic;
        // a deployment that wants PQ terminates TLS at a proxy that offers it.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let signing_key = provider
            .key_provider
            .load_private_key(key)
            .map_err(|source| TlsError::UnusableKey {
                path: key_path.to_owned(),
                source,
            })?;
        let certified = CertifiedKey::new(chain, signing_key);
        match certified.keys_match() {
            // `Unknown`: a key type whose public half the provider cannot derive; rustls
            // itself accepts it (the handshake would fail, not start-up). Ring derives it
            // for every key type it loads.
            Ok(()) | Err(RustlsError::InconsistentKeys(InconsistentKeys::Unknown)) => {}
            Err(RustlsError::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
                return Err(TlsError::KeyMismatch {
                    cert: cert_path.to_owned(),
                    key: key_path.to_owned(),
                });
            }
            Err(source) => {
                return Err(TlsError::UnusableCertificate {
                    path: cert_path.to_owned(),
                    source,
                });
            }
        }
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            // Only fails when the provider offers none of the versions; ring offers both.
            .map_err(|source| TlsError::UnusableCertificate {
                path: cert_path.to_owned(),
                source,
            })?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

/// Every certificate of the file, in order; at least one.
fn read_chain(pem_text: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem_text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: path.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

/// The file's first private key of any of the three encodings.
fn read_key(pem_text: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem_text).map_err(|source| match source {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_owned(),
        },
        source => TlsError::Pem {
            path: path.to_owned(),
            source,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Pair {
        cert: String,
        key: String,
    }

    fn self_signed(name: &str) -> Pair {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("certificate");
        Pair {
            cert: cert.pem(),
            key: signing_key.serialize_pem(),
        }
    }

    fn load(cert: &str, key: &str) -> Result<TlsConfig, TlsError> {
        TlsConfig::from_pem(
            cert.as_bytes(),
            Path::new("cert.pem"),
            key.as_bytes(),
            Path::new("key.pem"),
        )
    }

    #[test]
    fn a_certificate_and_its_key_load() {
        let pair = self_signed("smr.test");
        assert!(load(&pair.cert, &pair.key).is_ok());
        // A PEM file may hold both; each is taken from its own section.
        let both = format!("{}{}", pair.cert, pair.key);
        assert!(load(&both, &both).is_ok());
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_naming_both_files() {
        let ours = self_signed("smr.test");
        let theirs = self_signed("other.test");
        let err = load(&ours.cert, &theirs.key).expect_err("mismatched key accepted");
        assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("key.pem") && text.contains("cert.pem"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_key_is_refused_naming_the_key_file() {
        let pair = self_signed("smr.test");
        // The certificate file given as the key too: a PEM file, but no key in it.
        let err = load(&pair.cert, &pair.cert).expect_err("no key accepted");
        assert!(matches!(err, TlsError::NoKey { .. }), "{err:?}");
        assert!(err.to_string().contains("key.pem"), "{err}");
        // An empty key file.
        let err = load(&pair.cert, "").expect_err("empty key accepted");
        assert!(matches!(err, TlsError::NoKey { .. }), "{err:?}");
    }

    #[test]
    fn a_file_without_a_certificate_is_refused_naming_it() {
        let pair = self_signed("smr.test");
        let err = load(&pair.key, &pair.key).expect_err("no certificate accepted");
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err:?}");
        assert!(err.to_string().contains("cert.pem"), "{err}");
    }

    #[test]
    fn garbage_is_refused_naming_the_file() {
        let pair = self_signed("smr.test");
        // Not PEM at all: nothing found.
        let err = load("this is not a certificate\n", &pair.key).expect_err("text accepted");
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err:?}");
        // A PEM section whose content is not base64.
        let broken =
            "-----BEGIN CERTIFICATE-----\n!!!! not base64 !!!!\n-----END CERTIFICATE-----\n";
        let err = load(broken, &pair.key).expect_err("broken PEM accepted");
        assert!(matches!(err, TlsError::Pem { .. }), "{err:?}");
        assert!(err.to_string().contains("cert.pem"), "{err}");
        // Well-formed PEM around bytes that are not a private key.
        let not_a_key =
            "-----BEGIN PRIVATE KEY-----\nAAECAwQFBgcICQ==\n-----END PRIVATE KEY-----\n";
        let err = load(&pair.cert, not_a_key).expect_err("garbage key accepted");
        assert!(matches!(err, TlsError::UnusableKey { .. }), "{err:?}");
        assert!(err.to_string().contains("key.pem"), "{err}");
        // Well-formed PEM around bytes that are not a certificate.
        let not_a_cert =
            "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n";
        let err = load(not_a_cert, &pair.key).expect_err("garbage certificate accepted");
        assert!(
            matches!(err, TlsError::UnusableCertificate { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("cert.pem"), "{err}");
    }

    #[test]
    fn an_unreadable_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("absent-cert.pem");
        let err = TlsConfig::from_pem_files(&missing, &dir.path().join("absent-key.pem"))
            .expect_err("missing file accepted");
        assert!(matches!(err, TlsError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("absent-cert.pem"), "{err}");
    }
}
