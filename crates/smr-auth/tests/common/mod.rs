//! Helpers shared by the integration tests and the bench: an RS256 signer over the test-only
//! fixture key, and claim sets.

#![allow(dead_code)]

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// Test-only RSA key (see `tests/fixtures/README.md`).
pub const RS256_PEM: &str = include_str!("../fixtures/rs256-test-key.pem");

pub const RSA_ISSUER: &str = "https://idp.test.example";

/// Signs RS256 tokens with the fixture key.
pub struct RsaSigner {
    key: EncodingKey,
    pub kid: String,
}

impl RsaSigner {
    pub fn new(kid: &str) -> RsaSigner {
        RsaSigner {
            key: EncodingKey::from_rsa_pem(RS256_PEM.as_bytes()).expect("fixture key"),
            kid: kid.to_owned(),
        }
    }

    /// The public JWK Set (plain form, no issuer member).
    pub fn jwks(&self) -> String {
        let mut jwk = Jwk::from_encoding_key(&self.key, Algorithm::RS256).expect("public JWK");
        jwk.common.key_id = Some(self.kid.clone());
        serde_json::to_string(&JwkSet { keys: vec![jwk] }).expect("JWK Set JSON")
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).expect("RS256 signing")
    }
}

/// A GP's claims from `issuer`, issued at `now`, expiring at `exp`.
pub fn gp_claims(issuer: &str, now: i64, exp: i64) -> Value {
    json!({
        "iss": issuer,
        "sub": "user-1",
        "aud": "smr",
        "iat": now,
        "exp": exp,
        "jti": "j-1",
        "smr_role": "gp",
        "org": "A81001",
        "name": "Dr Test",
        "scope": "openid user/*.cruds",
    })
}

/// Current Unix time.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}
