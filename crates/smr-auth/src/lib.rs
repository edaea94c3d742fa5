//! Authentication of bearer JWTs for SMR: who is calling, as an [`smr_access::Principal`].
//!
//! What the access policy then allows that principal is `smr-access`'s business; this crate
//! only answers "is this token genuine, current, for us, and whose is it?".
//!
//! # Pieces
//!
//! - [`Verifier`]: trusts a set of issuers, each with the keys of a JWK Set (given as text
//!   with [`Verifier::add_jwks`], or fetched from the issuer's OpenID discovery document
//!   with [`Verifier::add_issuer_url`]). [`Verifier::verify`] checks a token and maps its
//!   claims to a principal; [`Verifier::authenticate`] does the same and, when a token names
//!   a key id its issuer has not published yet, refetches that issuer's keys first (at most
//!   once a minute per issuer). Verified principals are cached by a SHA-256 of the token
//!   text until the token's `exp` (plus the leeway).
//! - [`LocalIssuer`]: SMR's own ES256 signing key for development and tests
//!   (`dir/jwt-signing-key.pem`), which [`Verifier::trust_local`] trusts and
//!   [`LocalIssuer::issue`] signs [`TokenRequest`]s with (`smr token`).
//! - [`claims`]: the claims SMR reads and their mapping to a principal, including the NHS
//!   national RBAC role codes ([`rbac`]).
//! - [`parse_ttl`]: `15m`, `8h`, `30d`, `3600s`, `90` (seconds).
//!
//! # Checks
//!
//! A token is accepted when all of these hold (the first that fails is the error):
//! 1. it is a compact JWS of three base64url segments, at most [`MAX_TOKEN_LEN`] bytes;
//! 2. its header `alg` is `RS256` or `ES256` (`none`, `HS*` and everything else are
//!    refused), and it has no `crit` header;
//! 3. its `iss` is a trusted issuer, and its `kid` names one of that issuer's keys (a token
//!    without `kid` is accepted only when the issuer has exactly one key for the algorithm),
//!    whose algorithm is the header's;
//! 4. the signature verifies;
//! 5. `exp` is present and `now <= exp + 60 s`; `nbf`, when present, is `<= now + 60 s`
//!    ([`LEEWAY`]: clock skew between SMR and the issuer);
//! 6. `aud` (a string or an array) contains the verifier's audience ([`DEFAULT_AUDIENCE`]
//!    unless configured);
//! 7. the claims map to a principal ([`claims::principal_from_claims`]).
//!
//! # Claims SMR reads
//!
//! | Claim                         | Use                                                                 |
//! |-------------------------------|---------------------------------------------------------------------|
//! | `iss`                         | Required: a trusted issuer; becomes `Principal.issuer`.              |
//! | `sub`                         | Required: the user (or a back-end system's client id).              |
//! | `aud`                         | Required: must contain the audience (`smr` by default).             |
//! | `exp`                         | Required: expiry (NumericDate), checked with 60 s leeway.           |
//! | `nbf`                         | Optional: not before, checked with 60 s leeway.                     |
//! | `iat`, `jti`                  | Read, not checked (for audit).                                      |
//! | `smr_role`, else `role`       | An SMR role name (`gp`, `nurse`, …) or an NHS national RBAC role code (`R8000`, `S8000:G8000:R8000`); a string or an array (the first recognised entry wins). `smr_role` wins over `role`. |
//! | `nhsid_nrbac_roles`           | NHS CIS2 style: an array of `{role_code, org_code, person_roleid}`; used when neither `smr_role` nor `role` is present. With `selected_roleid`, the entry whose `person_roleid` matches; else the first entry whose code maps. Its `org_code` is the organisation unless `org`/`odsCode` says otherwise. |
//! | `org`, else `odsCode`         | ODS code of the organisation; required for every role but `patient`. |
//! | `patient`                     | Patient id: required for role `patient` (their own record); for other roles, the SMART launch patient. |
//! | `scope`                       | SMART scopes, space separated (an array of strings is joined); absent → [`smr_access::Scopes::unrestricted`]. |
//! | `name`                        | Display name for audit records.                                     |
//! | `care_setting`                | Optional: an [`smr_access::CareSetting`] name; when absent or not a known name, the role's default setting. |
//!
//! Unknown claims are ignored. A known claim of the wrong JSON type makes the token
//! malformed.
//!
//! # Errors
//!
//! [`AuthError`]'s messages are safe to show to the client: they never contain the token.
//! Configuration problems (bad JWK Sets, key files, fetch failures) are [`ConfigError`]s.

pub mod cache;
pub mod claims;
mod error;
pub mod fetch;
mod jwks;
mod local;
pub mod rbac;
mod ttl;
mod verifier;

use std::time::Duration;

pub use claims::{Claims, principal_from_claims};
pub use error::{AuthError, ClaimsError, ConfigError, IssueError};
pub use fetch::{FetchError, HttpFetcher, JwksFetcher, client_tls};
pub use jwks::{JwksDocument, parse_jwks};
pub use local::{LocalIssuer, TokenRequest};
pub use ttl::{TtlError, parse_ttl};
pub use verifier::{MIN_REFETCH_INTERVAL, REFRESH_INTERVAL, Verifier, bearer_token};

/// The audience SMR expects in `aud` unless configured otherwise.
pub const DEFAULT_AUDIENCE: &str = "smr";

/// Clock skew allowed on `exp` and `nbf`.
pub const LEEWAY: Duration = Duration::from_secs(60);

/// Longest token text accepted (a JWT with a long scope list is a few kilobytes).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Current time as Unix seconds.
pub(crate) fn unix_now() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        // A clock before 1970 is broken; every token then looks not yet valid.
        Err(_) => 0,
    }
}
