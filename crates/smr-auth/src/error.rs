//! Errors. [`AuthError`] and [`ClaimsError`] describe a rejected request and are safe to show
//! the client (they never contain the token); [`ConfigError`] and [`IssueError`] are for the
//! operator.

use std::path::PathBuf;

use smr_access::Role;

/// Why a bearer token was not accepted. Every variant is a 401 but
/// [`AuthError::KeysUnavailable`] (503: SMR could not get the issuer's keys).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token was presented")]
    MissingToken,
    #[error("the bearer token is malformed: {0}")]
    Malformed(&'static str),
    #[error("the token's signature is not valid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is not meant for this server (aud)")]
    WrongAudience,
    #[error("the token's issuer is not trusted")]
    UnknownIssuer,
    #[error("the token's signing key (kid) is not one its issuer has published")]
    UnknownKeyId,
    #[error("the token's signing algorithm is not accepted (RS256 and ES256 are)")]
    UnsupportedAlgorithm,
    #[error("the token's claims are not acceptable: {0}")]
    Claims(#[from] ClaimsError),
    #[error("the token's issuer's signing keys could not be obtained; try again later")]
    KeysUnavailable,
}

impl AuthError {
    /// The RFC 6750 `error` code for `WWW-Authenticate`: none when no token was presented,
    /// `invalid_token` otherwise.
    pub fn rfc6750_code(&self) -> Option<&'static str> {
        match self {
            AuthError::MissingToken => None,
            _ => Some("invalid_token"),
        }
    }

    /// True when the failure is on SMR's side, not the token's (answer 503, not 401).
    pub fn is_temporary(&self) -> bool {
        matches!(self, AuthError::KeysUnavailable)
    }
}

/// Why a genuine token's claims do not make a principal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("the `{0}` claim is missing")]
    Missing(&'static str),
    #[error("the `{0}` claim is not valid")]
    Invalid(&'static str),
    #[error("no role claim (`smr_role`, `role` or `nhsid_nrbac_roles`)")]
    MissingRole,
    #[error("role `{0}` is not an SMR role nor a mapped NHS RBAC role code")]
    UnknownRole(String),
    #[error("NHS RBAC role {code} has no SMR role in care setting `{setting}`")]
    UnmappedRbacRole { code: String, setting: String },
    #[error("role `{0}` needs an organisation (`org` or `odsCode` claim)")]
    MissingOrganisation(Role),
    #[error("role `patient` needs a `patient` claim (the user's own Patient id)")]
    MissingPatient,
}

/// A problem with SMR's authentication set-up: keys, JWK Sets, key files, issuers.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid JWK Set: {0}")]
    InvalidJwks(String),
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("{path}: the signing key file must not be readable by group or others (chmod 600)")]
    KeyFilePermissions { path: PathBuf },
    #[error("issuer: {0}")]
    Issuer(String),
    #[error("fetching keys: {0}")]
    Fetch(#[from] crate::fetch::FetchError),
    #[error("HTTP client: {0}")]
    HttpClient(String),
}

/// Why [`crate::LocalIssuer::issue`] refused to sign.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("the token would not be accepted: {0}")]
    Claims(#[from] ClaimsError),
    #[error("the token lifetime must be between 1 second and {max_days} days")]
    Ttl { max_days: u64 },
    #[error("signing failed: {0}")]
    Signing(String),
}
