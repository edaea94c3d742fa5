//! SMR's own issuer, for development, tests and small single-server set-ups.
//!
//! - The key: an ES256 (P-256) private key in `dir/jwt-signing-key.pem` (PKCS#8 PEM),
//!   created on first use with mode 0600 (written to a temporary file and linked into
//!   place, so two processes starting at once end up with the same key). A key file that
//!   group or others may read is refused, as `ssh` does.
//! - The key id: the RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key, so it
//!   is stable for a key and changes with it.
//! - The issuer: `urn:smr:local:<kid>` ([`LocalIssuer::ISSUER_PREFIX`]): a name no real
//!   identity provider uses, tied to the key.
//! - Tokens: [`LocalIssuer::issue`] signs a [`TokenRequest`] (what `smr token --role ROLE
//!   --org ODS --user ID [--patient ID] [--scope S] [--ttl DURATION]` passes) for the
//!   audience [`crate::DEFAULT_AUDIENCE`] unless [`LocalIssuer::with_audience`] says
//!   otherwise. A request whose token SMR would refuse (no org for a clinician, no patient
//!   for a patient) is refused here too.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use p256::elliptic_curve::Generate as _;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use sha2::{Digest as _, Sha256};
use smr_access::{CareSetting, Role};

use crate::claims::{Claims, NumericDate, StringOrList, principal_from_claims};
use crate::error::{ConfigError, IssueError};
use crate::jwks::VerificationKey;
use crate::{DEFAULT_AUDIENCE, unix_now};

/// What a token issued by [`LocalIssuer::issue`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// `sub`.
    pub user: String,
    pub role: Role,
    /// ODS code (`org`): required for every role but `patient`.
    pub org: Option<String>,
    /// Patient id (`patient`): required for role `patient`.
    pub patient: Option<String>,
    /// SMART scopes (`scope`); `None` leaves the claim out (no limit below the role).
    pub scope: Option<String>,
    /// Lifetime: `exp = iat + ttl`.
    pub ttl: Duration,
    /// Display name (`name`).
    pub name: Option<String>,
    /// `care_setting`; `None` leaves it to the role's default.
    pub setting: Option<CareSetting>,
}

impl TokenRequest {
    /// A request for `user` in `role`, valid for an hour, with nothing else.
    pub fn new(user: impl Into<String>, role: Role) -> TokenRequest {
        TokenRequest {
            user: user.into(),
            role,
            org: None,
            patient: None,
            scope: None,
            ttl: Duration::from_secs(3600),
            name: None,
            setting: None,
        }
    }
}

/// SMR's own ES256 signing key and the tokens it signs.
pub struct LocalIssuer {
    issuer: String,
    kid: String,
    audience: String,
    signing_key: EncodingKey,
    /// Public key coordinates, base64url.
    x: String,
    y: String,
    public: VerificationKey,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for LocalIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalIssuer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .field("audience", &self.audience)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LocalIssuer {
    /// The key file's name inside the directory given to [`LocalIssuer::load_or_create`].
    pub const KEY_FILE: &'static str = "jwt-signing-key.pem";
    /// Every local issuer is `urn:smr:local:<kid>`.
    pub const ISSUER_PREFIX: &'static str = "urn:smr:local:";
    /// Longest lifetime [`LocalIssuer::issue`] signs.
    pub const MAX_TTL: Duration = Duration::from_secs(366 * 86_400);

    /// Loads `dir/jwt-signing-key.pem`, creating the directory and a new key (mode 0600)
    /// when absent.
    pub fn load_or_create(dir: &Path) -> Result<LocalIssuer, ConfigError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ConfigError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(Self::KEY_FILE);
        match fs::symlink_metadata(&path) {
            Ok(_) => return LocalIssuer::load(&path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&path)(e)),
        }

        let secret = p256::SecretKey::try_generate()
            .map_err(|e| ConfigError::InvalidKey(format!("no system randomness: {e}")))?;
        let pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| ConfigError::InvalidKey(e.to_string()))?;

        let tmp = dir.join(format!(
            ".{}.{}.{}.tmp",
            Self::KEY_FILE,
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        write_private_file(&tmp, pem.as_bytes()).map_err(io(&tmp))?;
        // Link rather than rename: linking fails when the key appeared meanwhile (another
        // process won the race), where a rename would replace it.
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                let mut issuer = LocalIssuer::from_pkcs8_pem(&pem)?;
                issuer.path = Some(path);
                Ok(issuer)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => LocalIssuer::load(&path),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Loads a PKCS#8 PEM P-256 private key file (refused if group or others may read it).
    pub fn load(path: &Path) -> Result<LocalIssuer, ConfigError> {
        let io = |source| ConfigError::Io {
            path: path.to_owned(),
            source,
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(path).map_err(io)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(ConfigError::KeyFilePermissions {
                    path: path.to_owned(),
                });
            }
        }
        let pem = zeroize_string(fs::read_to_string(path).map_err(io)?);
        let mut issuer = LocalIssuer::from_pkcs8_pem(&pem).map_err(|e| match e {
            ConfigError::InvalidKey(reason) => {
                ConfigError::InvalidKey(format!("{}: {reason}", path.display()))
            }
            other => other,
        })?;
        issuer.path = Some(path.to_owned());
        Ok(issuer)
    }

    /// A new key held in memory only (tests).
    pub fn generate() -> Result<LocalIssuer, ConfigError> {
        let secret = p256::SecretKey::try_generate()
            .map_err(|e| ConfigError::InvalidKey(format!("no system randomness: {e}")))?;
        let pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| ConfigError::InvalidKey(e.to_string()))?;
        LocalIssuer::from_pkcs8_pem(&pem)
    }

    /// From a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) P-256 private key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<LocalIssuer, ConfigError> {
        let secret = p256::SecretKey::from_pkcs8_pem(pem).map_err(|_| {
            ConfigError::InvalidKey("not a PKCS#8 PEM P-256 (ES256) private key".into())
        })?;
        let point = secret.public_key().to_sec1_bytes();
        if point.len() != 65 || point[0] != 0x04 {
            return Err(ConfigError::InvalidKey(
                "unexpected public key encoding".into(),
            ));
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..]);
        // RFC 7638 §3.2: the required members, in lexicographic order, no whitespace.
        let thumbprint_input = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint_input.as_bytes()));
        let signing_key = EncodingKey::from_ec_pem(pem.as_bytes())
            .map_err(|e| ConfigError::InvalidKey(e.to_string()))?;
        let public = VerificationKey {
            kid: Some(kid.clone()),
            alg: Algorithm::ES256,
            key: DecodingKey::from_ec_der(&point),
            material: point.to_vec(),
        };
        Ok(LocalIssuer {
            issuer: format!("{}{kid}", Self::ISSUER_PREFIX),
            kid,
            audience: DEFAULT_AUDIENCE.to_owned(),
            signing_key,
            x,
            y,
            public,
            path: None,
        })
    }

    /// Tokens for another audience than [`DEFAULT_AUDIENCE`].
    pub fn with_audience(mut self, audience: impl Into<String>) -> LocalIssuer {
        self.audience = audience.into();
        self
    }

    /// `urn:smr:local:<kid>`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The key file, when loaded from or created in one.
    pub fn key_path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub(crate) fn verification_key(&self) -> VerificationKey {
        self.public.clone()
    }

    /// The public JWK Set, in SMR's form (with the `issuer` member, which other readers
    /// ignore): write it to a file for `--jwks FILE` on another SMR.
    pub fn jwks(&self) -> String {
        serde_json::json!({
            "issuer": self.issuer,
            "keys": [{
                "kty": "EC",
                "crv": "P-256",
                "x": self.x,
                "y": self.y,
                "kid": self.kid,
                "use": "sig",
                "alg": "ES256",
            }],
        })
        .to_string()
    }

    /// Signs a token for `request`, valid from now for `request.ttl`.
    pub fn issue(&self, request: &TokenRequest) -> Result<String, IssueError> {
        self.issue_at(request, unix_now())
    }

    /// [`LocalIssuer::issue`] as if the time were `now` (Unix seconds; tests).
    pub fn issue_at(&self, request: &TokenRequest, now: i64) -> Result<String, IssueError> {
        let max_days = Self::MAX_TTL.as_secs() / 86_400;
        let ttl = request.ttl.as_secs();
        if ttl == 0 || request.ttl > Self::MAX_TTL {
            return Err(IssueError::Ttl { max_days });
        }
        let ttl = i64::try_from(ttl).map_err(|_| IssueError::Ttl { max_days })?;
        let claims = Claims {
            iss: Some(self.issuer.clone()),
            sub: Some(request.user.clone()),
            aud: Some(StringOrList::one(self.audience.clone())),
            exp: Some(NumericDate(now.saturating_add(ttl))),
            nbf: Some(NumericDate(now)),
            iat: Some(NumericDate(now)),
            jti: Some(uuid::Uuid::new_v4().to_string()),
            smr_role: Some(StringOrList::one(request.role.as_str())),
            org: request.org.clone(),
            patient: request.patient.clone(),
            scope: request.scope.clone().map(StringOrList::one),
            name: request.name.clone(),
            care_setting: request.setting.map(|s| s.as_str().to_owned()),
            ..Claims::default()
        };
        principal_from_claims(&claims)?;
        self.sign(&claims)
    }

    /// Signs exactly `claims`, unchecked (tests build wrong tokens with it).
    pub fn sign<T: serde::Serialize>(&self, claims: &T) -> Result<String, IssueError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.signing_key)
            .map_err(|e| IssueError::Signing(e.to_string()))
    }
}

/// Creates `path` (it must not exist) readable by its owner only, with `bytes`, on disk.
fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The PEM text, zeroed when dropped.
fn zeroize_string(text: String) -> p256::elliptic_curve::zeroize::Zeroizing<String> {
    p256::elliptic_curve::zeroize::Zeroizing::new(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_the_key_file_with_mode_0600_and_reloads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let first = LocalIssuer::load_or_create(&keys).unwrap();
        let path = keys.join(LocalIssuer::KEY_FILE);
        assert_eq!(first.key_path(), Some(path.as_path()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"));

        let again = LocalIssuer::load_or_create(&keys).unwrap();
        assert_eq!(again.kid(), first.kid());
        assert_eq!(again.issuer(), first.issuer());
        assert_eq!(again.jwks(), first.jwks());
        assert!(first.issuer().starts_with("urn:smr:local:"));
        // No temporary files left behind.
        assert_eq!(fs::read_dir(&keys).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let issuer = LocalIssuer::load_or_create(dir.path()).unwrap();
        let path = issuer.key_path().unwrap().to_owned();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = LocalIssuer::load_or_create(dir.path()).unwrap_err();
        assert!(
            matches!(err, ConfigError::KeyFilePermissions { .. }),
            "{err}"
        );
    }

    #[test]
    fn a_broken_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LocalIssuer::KEY_FILE);
        write_private_file(&path, b"not a key").unwrap();
        let err = LocalIssuer::load_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("PKCS#8"), "{err}");
    }

    #[test]
    fn kid_is_the_rfc7638_thumbprint() {
        // RFC 7638 has no EC example; check the shape and stability instead.
        let issuer = LocalIssuer::generate().unwrap();
        assert_eq!(issuer.kid().len(), 43);
        let jwks: serde_json::Value = serde_json::from_str(&issuer.jwks()).unwrap();
        assert_eq!(jwks["keys"][0]["kid"].as_str(), Some(issuer.kid()));
        assert_eq!(jwks["issuer"].as_str(), Some(issuer.issuer()));
    }

    #[test]
    fn requests_smr_would_refuse_are_not_signed() {
        let issuer = LocalIssuer::generate().unwrap();
        let gp = TokenRequest::new("u1", Role::Gp);
        assert!(matches!(issuer.issue(&gp), Err(IssueError::Claims(_))));
        let patient = TokenRequest::new("p1", Role::Patient);
        assert!(matches!(issuer.issue(&patient), Err(IssueError::Claims(_))));
        let mut ok = TokenRequest::new("u1", Role::Gp);
        ok.org = Some("A81001".into());
        assert!(issuer.issue(&ok).is_ok());
        ok.ttl = Duration::ZERO;
        assert!(matches!(issuer.issue(&ok), Err(IssueError::Ttl { .. })));
        ok.ttl = LocalIssuer::MAX_TTL + Duration::from_secs(1);
        assert!(matches!(issuer.issue(&ok), Err(IssueError::Ttl { .. })));
    }
}
