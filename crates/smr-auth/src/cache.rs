//! The verified-token cache.
//!
//! Checking a signature costs tens of microseconds (ES256 and RS256 with the RustCrypto
//! backend); a client sends the same token with every request until it expires. The cache
//! keeps the principal of each verified token, keyed by the SHA-256 of the token text, so
//! a repeated token costs a hash and a map lookup.
//!
//! - Keyed by a SHA-256 digest, not the text: the cache never holds a usable credential,
//!   and a different token cannot collide with a cached one.
//! - An entry is served only while `now <= exp + LEEWAY`, the same bound the full check
//!   applies; a stale entry is dropped on sight.
//! - Bounded: [`TokenCache::DEFAULT_CAPACITY`] entries over 16 shards (each behind its own
//!   `Mutex`, so concurrent requests rarely wait on each other). A full shard first drops
//!   its expired entries, then the entry expiring soonest.
//! - Only successes are cached: a bad token is checked in full every time.
//! - The verifier clears the cache when an issuer's key set loses a key (rotation or
//!   revocation), so a token signed by a withdrawn key stops being accepted at once.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use sha2::{Digest, Sha256};
use smr_access::Principal;

use crate::LEEWAY;

/// SHA-256 of a token's text.
pub type TokenDigest = [u8; 32];

const SHARDS: usize = 16;

#[derive(Debug)]
struct Entry {
    principal: Principal,
    /// The token's `exp` (Unix seconds).
    exp: i64,
}

impl Entry {
    fn usable_at(&self, now: i64) -> bool {
        now <= self.exp.saturating_add(LEEWAY.as_secs() as i64)
    }
}

/// A bounded map from token digests to verified principals.
#[derive(Debug)]
pub struct TokenCache {
    shards: Vec<Mutex<HashMap<TokenDigest, Entry>>>,
    per_shard: usize,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache::new(TokenCache::DEFAULT_CAPACITY)
    }
}

impl TokenCache {
    pub const DEFAULT_CAPACITY: usize = 10_000;

    /// A cache of about `capacity` entries (rounded up to a multiple of the shard count; 0
    /// disables caching).
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS),
        }
    }

    pub fn digest(token: &str) -> TokenDigest {
        Sha256::digest(token.as_bytes()).into()
    }

    fn shard(&self, digest: &TokenDigest) -> MutexGuard<'_, HashMap<TokenDigest, Entry>> {
        let shard = &self.shards[usize::from(digest[0]) % SHARDS];
        // A panic while holding the lock cannot leave a HashMap half-updated in a way that
        // matters here (each entry is self-contained), so a poisoned lock is still usable.
        shard
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The principal of a verified token, if cached and still within `exp + LEEWAY` at `now`.
    pub fn get(&self, digest: &TokenDigest, now: i64) -> Option<Principal> {
        let mut shard = self.shard(digest);
        match shard.get(digest) {
            Some(entry) if entry.usable_at(now) => Some(entry.principal.clone()),
            Some(_) => {
                shard.remove(digest);
                None
            }
            None => None,
        }
    }

    /// Remembers a verified token until its `exp` (plus the leeway).
    pub fn insert(&self, digest: TokenDigest, principal: Principal, exp: i64, now: i64) {
        if self.per_shard == 0 {
            return;
        }
        let entry = Entry { principal, exp };
        if !entry.usable_at(now) {
            return;
        }
        let mut shard = self.shard(&digest);
        if shard.len() >= self.per_shard && !shard.contains_key(&digest) {
            shard.retain(|_, e| e.usable_at(now));
            if shard.len() >= self.per_shard {
                let soonest = shard
                    .iter()
                    .min_by_key(|(_, e)| e.exp)
                    .map(|(digest, _)| *digest);
                if let Some(victim) = soonest {
                    shard.remove(&victim);
                }
            }
        }
        shard.insert(digest, entry);
    }

    /// Forgets every entry.
    pub fn clear(&self) {
        for shard in &self.shards {
            shard
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clear();
        }
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smr_access::{CareSetting, Role, Scopes};

    fn principal(user: &str) -> Principal {
        Principal {
            user: user.into(),
            role: Role::Gp,
            organisation: Some("A1".into()),
            setting: CareSetting::GpPractice,
            setting_claimed: false,
            patient: None,
            scopes: Scopes::unrestricted(),
            name: None,
            issuer: "i".into(),
        }
    }

    #[test]
    fn serves_until_exp_plus_leeway_only() {
        let cache = TokenCache::default();
        let d = TokenCache::digest("token");
        cache.insert(d, principal("u"), 1000, 900);
        assert_eq!(cache.get(&d, 1000).map(|p| p.user), Some("u".into()));
        assert!(cache.get(&d, 1060).is_some());
        assert!(cache.get(&d, 1061).is_none());
        // Dropped on sight.
        assert!(cache.is_empty());
        // Not stored when already unusable.
        cache.insert(d, principal("u"), 1000, 2000);
        assert!(cache.is_empty());
    }

    #[test]
    fn bounded_with_soonest_expiry_evicted() {
        let cache = TokenCache::new(SHARDS * 2);
        for i in 0..1000 {
            let d = TokenCache::digest(&format!("t{i}"));
            cache.insert(d, principal(&format!("u{i}")), 10_000 + i, 0);
        }
        assert!(cache.len() <= SHARDS * 2);
        // The latest-expiring tokens survive.
        let last = TokenCache::digest("t999");
        assert!(cache.get(&last, 0).is_some());
        let first = TokenCache::digest("t0");
        assert!(cache.get(&first, 0).is_none());
    }

    #[test]
    fn zero_capacity_disables() {
        let cache = TokenCache::new(0);
        let d = TokenCache::digest("t");
        cache.insert(d, principal("u"), 10, 0);
        assert!(cache.get(&d, 0).is_none());
    }
}
