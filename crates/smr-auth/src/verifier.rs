//! [`Verifier`]: the trusted issuers, their keys, and the check of one token.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use smr_access::Principal;

use crate::cache::TokenCache;
use crate::claims::{Claims, principal_from_claims};
use crate::error::{AuthError, ConfigError};
use crate::fetch::{HttpFetcher, JwksFetcher, fetch_issuer_jwks};
use crate::jwks::{KeySet, parse_jwks};
use crate::local::LocalIssuer;
use crate::{DEFAULT_AUDIENCE, LEEWAY, MAX_TOKEN_LEN, unix_now};

/// Shortest time between two fetches of a URL issuer's keys prompted by unknown key ids.
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// How often [`Verifier::spawn_refresh`] refetches URL issuers' keys by default.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(3600);

/// Checks bearer tokens against a set of trusted issuers. Share one per process (behind an
/// `Arc`): every method takes `&self`, and the token cache lives inside.
pub struct Verifier {
    audience: String,
    issuers: RwLock<HashMap<String, Arc<Issuer>>>,
    cache: TokenCache,
    fetcher: OnceLock<Arc<dyn JwksFetcher>>,
}

struct Issuer {
    name: String,
    keys: RwLock<Arc<KeySet>>,
    /// Set for issuers whose keys come from their discovery document.
    remote: Option<Remote>,
}

struct Remote {
    /// Held while fetching (so concurrent requests fetch once); when the last fetch began.
    last_fetch: tokio::sync::Mutex<Option<tokio::time::Instant>>,
}

impl Issuer {
    fn keys(&self) -> Arc<KeySet> {
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// A failed check, with the issuer when it was known (to refetch its keys).
struct Failure {
    error: AuthError,
    issuer: Option<Arc<Issuer>>,
}

impl From<AuthError> for Failure {
    fn from(error: AuthError) -> Failure {
        Failure {
            error,
            issuer: None,
        }
    }
}

#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// Any critical extension is one SMR does not understand (RFC 7515 §4.1.11).
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier::new(DEFAULT_AUDIENCE)
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("audience", &self.audience)
            .field("issuers", &self.issuers())
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier trusting no issuer yet, for tokens whose `aud` contains `audience`.
    pub fn new(audience: impl Into<String>) -> Verifier {
        Verifier::with_cache_capacity(audience, TokenCache::DEFAULT_CAPACITY)
    }

    /// Same, with another token cache size (0 disables the cache).
    pub fn with_cache_capacity(audience: impl Into<String>, capacity: usize) -> Verifier {
        Verifier {
            audience: audience.into(),
            issuers: RwLock::new(HashMap::new()),
            cache: TokenCache::new(capacity),
            fetcher: OnceLock::new(),
        }
    }

    /// Use `fetcher` for URL issuers instead of the default [`HttpFetcher`]. Must be called
    /// before the first [`Verifier::add_issuer_url`]; later calls are ignored.
    pub fn with_fetcher(self, fetcher: Arc<dyn JwksFetcher>) -> Verifier {
        let _ = self.fetcher.set(fetcher);
        self
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The trusted issuers, sorted.
    pub fn issuers(&self) -> Vec<String> {
        let mut names: Vec<String> = self.read_issuers().keys().cloned().collect();
        names.sort();
        names
    }

    /// How many verified tokens are cached.
    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }

    /// Forgets every cached token (each is checked in full next time).
    pub fn clear_cache(&self) {
        self.cache.clear();
    }

    fn read_issuers(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Issuer>>> {
        self.issuers
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn issuer(&self, name: &str) -> Option<Arc<Issuer>> {
        self.read_issuers().get(name).cloned()
    }

    /// Trusts SMR's own local issuer.
    pub fn trust_local(&self, local: &LocalIssuer) {
        let keys = KeySet::from_keys(vec![local.verification_key()]);
        // A local issuer's name is derived from its key: it is never a URL issuer.
        let _ = self.install_static(local.issuer(), keys);
    }

    /// Trusts the keys of a JWK Set (text). The issuer is `issuer`, or the set's own
    /// `issuer` member (SMR's form); when both are given they must agree. Replaces the keys
    /// of an issuer already trusted by JWK Set. Returns the issuer.
    pub fn add_jwks(&self, issuer: Option<&str>, jwks_json: &str) -> Result<String, ConfigError> {
        let doc = parse_jwks(jwks_json)?;
        let name = match (issuer, doc.issuer.as_deref()) {
            (Some(given), Some(inside)) if given != inside => {
                return Err(ConfigError::Issuer(format!(
                    "the JWK Set names issuer {inside:?}, not {given:?}"
                )));
            }
            (Some(given), _) => given.to_owned(),
            (None, Some(inside)) => inside.to_owned(),
            (None, None) => {
                return Err(ConfigError::Issuer(
                    "the JWK Set has no `issuer` member: name its issuer".into(),
                ));
            }
        };
        check_issuer_name(&name)?;
        for skipped in doc.keys.skipped() {
            tracing::info!(issuer = %name, "JWK Set key skipped: {skipped}");
        }
        self.install_static(&name, doc.keys)?;
        Ok(name)
    }

    /// [`Verifier::add_jwks`] from a file (`--jwks FILE`).
    pub fn add_jwks_file(&self, issuer: Option<&str>, path: &Path) -> Result<String, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        self.add_jwks(issuer, &text).map_err(|e| match e {
            ConfigError::InvalidJwks(reason) => {
                ConfigError::InvalidJwks(format!("{}: {reason}", path.display()))
            }
            other => other,
        })
    }

    fn install_static(&self, name: &str, keys: KeySet) -> Result<(), ConfigError> {
        let mut issuers = self
            .issuers
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match issuers.get(name) {
            Some(existing) if existing.remote.is_some() => Err(ConfigError::Issuer(format!(
                "{name:?} is already trusted by its URL"
            ))),
            Some(existing) => {
                self.replace_keys(existing, keys);
                Ok(())
            }
            None => {
                issuers.insert(
                    name.to_owned(),
                    Arc::new(Issuer {
                        name: name.to_owned(),
                        keys: RwLock::new(Arc::new(keys)),
                        remote: None,
                    }),
                );
                Ok(())
            }
        }
    }

    fn replace_keys(&self, issuer: &Issuer, keys: KeySet) {
        let mut slot = issuer
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let lost = slot.loses_keys_in(&keys);
        *slot = Arc::new(keys);
        drop(slot);
        if lost {
            // Tokens signed with a withdrawn key must not be served from the cache.
            self.cache.clear();
        }
    }

    /// Trusts an issuer by URL: fetches `{issuer}/.well-known/openid-configuration`, checks
    /// it names this issuer, and fetches its `jwks_uri`. Returns the number of usable keys.
    ///
    /// The issuer stays registered even when the fetch fails (the error is returned): its
    /// keys are fetched again when a token for it arrives (at most once a
    /// [`MIN_REFETCH_INTERVAL`]) and by [`Verifier::spawn_refresh`]; meanwhile its tokens
    /// get [`AuthError::KeysUnavailable`]. Calling it again for the same issuer refetches.
    pub async fn add_issuer_url(&self, issuer: &str) -> Result<usize, ConfigError> {
        check_issuer_name(issuer)?;
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(ConfigError::Issuer(format!(
                "{issuer:?} is not an http(s) URL"
            )));
        }
        let entry = {
            let mut issuers = self
                .issuers
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match issuers.get(issuer) {
                Some(existing) if existing.remote.is_none() => {
                    return Err(ConfigError::Issuer(format!(
                        "{issuer:?} is already trusted by JWK Set"
                    )));
                }
                Some(existing) => existing.clone(),
                None => {
                    let entry = Arc::new(Issuer {
                        name: issuer.to_owned(),
                        keys: RwLock::new(Arc::new(KeySet::default())),
                        remote: Some(Remote {
                            last_fetch: tokio::sync::Mutex::new(None),
                        }),
                    });
                    issuers.insert(issuer.to_owned(), entry.clone());
                    entry
                }
            }
        };
        self.refresh_issuer(&entry, true).await?;
        Ok(entry.keys().len())
    }

    fn fetcher(&self) -> Result<Arc<dyn JwksFetcher>, ConfigError> {
        if let Some(fetcher) = self.fetcher.get() {
            return Ok(fetcher.clone());
        }
        let made: Arc<dyn JwksFetcher> = Arc::new(HttpFetcher::new()?);
        let _ = self.fetcher.set(made);
        self.fetcher
            .get()
            .cloned()
            .ok_or_else(|| ConfigError::HttpClient("no fetcher".into()))
    }

    /// Refetches a URL issuer's keys; unless `force`, not within [`MIN_REFETCH_INTERVAL`]
    /// of the last fetch. `Ok(false)`: not due (or not a URL issuer).
    async fn refresh_issuer(&self, issuer: &Issuer, force: bool) -> Result<bool, ConfigError> {
        let Some(remote) = &issuer.remote else {
            return Ok(false);
        };
        let mut last = remote.last_fetch.lock().await;
        if !force && last.is_some_and(|t| t.elapsed() < MIN_REFETCH_INTERVAL) {
            return Ok(false);
        }
        *last = Some(tokio::time::Instant::now());
        let fetcher = self.fetcher()?;
        let (text, jwks_uri) = fetch_issuer_jwks(fetcher.as_ref(), &issuer.name).await?;
        let doc = parse_jwks(&text).map_err(|e| match e {
            ConfigError::InvalidJwks(reason) => {
                ConfigError::InvalidJwks(format!("{jwks_uri}: {reason}"))
            }
            other => other,
        })?;
        if let Some(inside) = &doc.issuer
            && inside != &issuer.name
        {
            return Err(ConfigError::Issuer(format!(
                "{jwks_uri} names issuer {inside:?}, not {:?}",
                issuer.name
            )));
        }
        tracing::debug!(issuer = %issuer.name, keys = doc.keys.len(), "fetched signing keys");
        self.replace_keys(issuer, doc.keys);
        Ok(true)
    }

    /// Refetches the keys of every URL issuer now (failures are logged; old keys are
    /// kept).
    pub async fn refresh_all(&self) {
        let remote: Vec<Arc<Issuer>> = self
            .read_issuers()
            .values()
            .filter(|i| i.remote.is_some())
            .cloned()
            .collect();
        for issuer in remote {
            if let Err(e) = self.refresh_issuer(&issuer, true).await {
                tracing::warn!(issuer = %issuer.name, "refreshing signing keys failed: {e}");
            }
        }
    }

    /// Refetches URL issuers' keys every `every` ([`REFRESH_INTERVAL`] is the usual
    /// choice) in a background task, which ends when the verifier is dropped. Needs a
    /// Tokio runtime.
    pub fn spawn_refresh(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await; // the first tick is immediate
            loop {
                ticks.tick().await;
                let Some(verifier) = weak.upgrade() else {
                    break;
                };
                verifier.refresh_all().await;
            }
        })
    }

    /// Checks a token with the keys at hand (no fetching) at the current time.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        self.verify_at(token, unix_now())
    }

    /// [`Verifier::verify`] as if the time were `now` (Unix seconds).
    pub fn verify_at(&self, token: &str, now: i64) -> Result<Principal, AuthError> {
        self.check(token, now).map_err(|f| f.error)
    }

    /// Checks a token; when it names a key its URL issuer has not published (or the
    /// issuer's keys could not be fetched yet), refetches that issuer's keys first (at
    /// most once a [`MIN_REFETCH_INTERVAL`]) and checks again.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, AuthError> {
        match self.check(token, unix_now()) {
            Ok(principal) => Ok(principal),
            Err(Failure {
                error: AuthError::UnknownKeyId | AuthError::KeysUnavailable,
                issuer: Some(issuer),
            }) if issuer.remote.is_some() => {
                if let Err(e) = self.refresh_issuer(&issuer, false).await {
                    tracing::warn!(issuer = %issuer.name, "fetching signing keys failed: {e}");
                }
                self.check(token, unix_now()).map_err(|f| f.error)
            }
            Err(failure) => Err(failure.error),
        }
    }

    fn check(&self, token: &str, now: i64) -> Result<Principal, Failure> {
        if token.is_empty() {
            return Err(AuthError::MissingToken.into());
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed("the token is too long").into());
        }
        let digest = TokenCache::digest(token);
        if let Some(principal) = self.cache.get(&digest, now) {
            return Ok(principal);
        }

        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed("a JWT has three dot-separated parts").into());
        };
        let header: JoseHeader = decode_part(header_b64).ok_or(AuthError::Malformed(
            "the header is not base64url-encoded JSON",
        ))?;
        let alg = match header.alg.as_str() {
            "ES256" => Algorithm::ES256,
            "RS256" => Algorithm::RS256,
            _ => return Err(AuthError::UnsupportedAlgorithm.into()),
        };
        if header.crit.is_some() {
            return Err(
                AuthError::Malformed("critical header extensions are not supported").into(),
            );
        }
        let claims: Claims = decode_part(payload_b64).ok_or(AuthError::Malformed(
            "the payload is not base64url-encoded JSON claims",
        ))?;

        let issuer = claims
            .iss
            .as_deref()
            .and_then(|iss| self.issuer(iss))
            .ok_or(AuthError::UnknownIssuer)?;
        let keys = issuer.keys();
        let fail = |error| Failure {
            error,
            issuer: Some(issuer.clone()),
        };
        if keys.is_empty() {
            return Err(fail(AuthError::KeysUnavailable));
        }
        let key = keys.find(header.kid.as_deref(), alg).map_err(fail)?;

        // The signed message is the header and payload text as sent.
        let message = &token[..header_b64.len() + 1 + payload_b64.len()];
        match jsonwebtoken::crypto::verify(signature_b64, message.as_bytes(), &key.key, alg) {
            Ok(true) => {}
            _ => return Err(fail(AuthError::BadSignature)),
        }

        let leeway = LEEWAY.as_secs() as i64;
        let exp = claims
            .exp
            .ok_or(AuthError::Claims(crate::ClaimsError::Missing("exp")))?
            .0;
        if now > exp.saturating_add(leeway) {
            return Err(AuthError::Expired.into());
        }
        if let Some(nbf) = claims.nbf
            && nbf.0 > now.saturating_add(leeway)
        {
            return Err(AuthError::NotYetValid.into());
        }
        if !claims.has_audience(&self.audience) {
            return Err(AuthError::WrongAudience.into());
        }
        let principal = principal_from_claims(&claims).map_err(AuthError::from)?;
        if !principal.scopes.unknown().is_empty() {
            tracing::debug!(
                issuer = %principal.issuer,
                user = %principal.user,
                unknown = ?principal.scopes.unknown(),
                "token scopes SMR does not read (ignored)"
            );
        }
        self.cache.insert(digest, principal.clone(), exp, now);
        Ok(principal)
    }
}

/// A base64url JWS segment decoded as JSON, or `None`.
fn decode_part<T: serde::de::DeserializeOwned>(segment: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn check_issuer_name(name: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::Issuer(format!(
            "{name:?} is not a valid issuer identifier"
        )));
    }
    Ok(())
}

/// The token in an `Authorization` header value: `Bearer <token>` (scheme in any case).
/// Another scheme is [`AuthError::MissingToken`] (no bearer token was presented).
pub fn bearer_token(authorization: &str) -> Result<&str, AuthError> {
    let value = authorization.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::MissingToken);
    }
    let token = rest.trim();
    if token.is_empty() {
        return Err(AuthError::Malformed("the bearer token is empty"));
    }
    if token.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(AuthError::Malformed("the bearer token contains spaces"));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_values() {
        assert_eq!(bearer_token("Bearer abc.def.ghi"), Ok("abc.def.ghi"));
        assert_eq!(bearer_token("bearer   abc"), Ok("abc"));
        assert_eq!(
            bearer_token("Basic dXNlcjpwdw=="),
            Err(AuthError::MissingToken)
        );
        assert!(matches!(
            bearer_token("Bearer "),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            bearer_token("Bearer a b"),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn issuer_names() {
        assert!(check_issuer_name("https://idp.example").is_ok());
        assert!(check_issuer_name("").is_err());
        assert!(check_issuer_name("a b").is_err());
    }
}
