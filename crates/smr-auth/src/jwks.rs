//! JWK Sets: the issuers' public keys.
//!
//! Two file forms are read ([`parse_jwks`]):
//! - a standard JWK Set (RFC 7517 §5), `{"keys": [...]}`: the caller names the issuer;
//! - SMR's own form, a JWK Set with an `issuer` member, `{"issuer": "...", "keys": [...]}`,
//!   which is what [`crate::LocalIssuer::jwks`] writes. (Other JWK Set readers ignore the
//!   extra member, as RFC 7517 allows.)
//!
//! Keys SMR uses: `kty: EC` on `crv: P-256` (ES256) and `kty: RSA` with a modulus of 2048
//! to 4096 bits (RS256); `alg`, when given, must be `ES256` or `RS256`; `use`, when
//! given, must be `sig`; `key_ops`, when given, must contain `verify`. Other keys (other
//! curves and algorithms, encryption keys, symmetric `oct` keys) are skipped and listed in
//! [`KeySet::skipped`]. A set with no usable key, or with private key material, is refused.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use crate::error::{AuthError, ConfigError};

/// One verification key of an issuer.
#[derive(Clone)]
pub(crate) struct VerificationKey {
    pub kid: Option<String>,
    pub alg: Algorithm,
    pub key: DecodingKey,
    /// The public key's bytes (SEC1 point, or RSA modulus and exponent): to notice a key
    /// replaced under the same `kid`.
    pub material: Vec<u8>,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The usable keys of one JWK Set.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    pub(crate) keys: Vec<VerificationKey>,
    skipped: Vec<String>,
}

impl KeySet {
    pub(crate) fn from_keys(keys: Vec<VerificationKey>) -> KeySet {
        KeySet {
            keys,
            skipped: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids (keys without `kid` are left out).
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().filter_map(|k| k.kid.as_deref())
    }

    /// Why keys of the set were skipped (for the operator's log).
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// The key for a token's `kid` and `alg`. Without `kid`, the issuer's only key for
    /// `alg`. A key found under `kid` for another algorithm is
    /// [`AuthError::UnsupportedAlgorithm`] (no algorithm confusion).
    pub(crate) fn find(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<&VerificationKey, AuthError> {
        match kid {
            Some(kid) => {
                let mut found = self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid));
                let first = found.next().ok_or(AuthError::UnknownKeyId)?;
                if first.alg == alg {
                    return Ok(first);
                }
                found
                    .find(|k| k.alg == alg)
                    .ok_or(AuthError::UnsupportedAlgorithm)
            }
            None => {
                let mut same_alg = self.keys.iter().filter(|k| k.alg == alg);
                match (same_alg.next(), same_alg.next()) {
                    (Some(only), None) => Ok(only),
                    _ => Err(AuthError::UnknownKeyId),
                }
            }
        }
    }

    /// True when some key of `self` (by `kid` and key material) is not in `newer`: tokens
    /// verified with it must not be served from the cache any more.
    pub(crate) fn loses_keys_in(&self, newer: &KeySet) -> bool {
        self.keys.iter().any(|old| {
            !newer
                .keys
                .iter()
                .any(|new| new.kid == old.kid && new.alg == old.alg && new.material == old.material)
        })
    }
}

/// A parsed JWK Set file: its keys, and its `issuer` member when it has one (SMR's form).
#[derive(Debug, Clone)]
pub struct JwksDocument {
    pub issuer: Option<String>,
    pub keys: KeySet,
}

#[derive(Deserialize)]
struct RawSet {
    #[serde(default)]
    issuer: Option<String>,
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    key_ops: Option<Vec<String>>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    d: Option<serde::de::IgnoredAny>,
}

/// Reads a JWK Set (plain, or SMR's form with `issuer`).
pub fn parse_jwks(text: &str) -> Result<JwksDocument, ConfigError> {
    let raw: RawSet = serde_json::from_str(text)
        .map_err(|e| ConfigError::InvalidJwks(format!("not a JWK Set ({e})")))?;
    let issuer = match raw.issuer {
        Some(i) if i.trim().is_empty() => {
            return Err(ConfigError::InvalidJwks("empty `issuer`".into()));
        }
        other => other,
    };
    let mut set = KeySet::default();
    for (index, value) in raw.keys.iter().enumerate() {
        let jwk = RawJwk::deserialize(value)
            .map_err(|e| ConfigError::InvalidJwks(format!("key {index}: {e}")))?;
        let name = jwk
            .kid
            .as_deref()
            .map_or_else(|| format!("key {index}"), |kid| format!("key {kid:?}"));
        if jwk.d.is_some() {
            return Err(ConfigError::InvalidJwks(format!(
                "{name} contains private key material (`d`): publish public keys only"
            )));
        }
        match read_key(&jwk) {
            Ok(Some(key)) => {
                if set
                    .keys
                    .iter()
                    .any(|k| k.kid.is_some() && k.kid == key.kid && k.alg == key.alg)
                {
                    set.skipped.push(format!("{name}: duplicate kid"));
                } else {
                    set.keys.push(key);
                }
            }
            Ok(None) => set
                .skipped
                .push(format!("{name}: not an RS256/ES256 signing key")),
            Err(reason) => {
                return Err(ConfigError::InvalidJwks(format!("{name}: {reason}")));
            }
        }
    }
    if set.keys.is_empty() {
        return Err(ConfigError::InvalidJwks(
            "no usable RS256 or ES256 signing key".into(),
        ));
    }
    Ok(JwksDocument { issuer, keys: set })
}

/// `Ok(None)`: a key SMR does not use. `Err`: a key of a kind SMR uses, but broken.
fn read_key(jwk: &RawJwk) -> Result<Option<VerificationKey>, String> {
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    if jwk
        .key_ops
        .as_ref()
        .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
    {
        return Ok(None);
    }
    match jwk.kty.as_str() {
        "EC" => {
            if jwk.crv.as_deref() != Some("P-256") || !alg_is(jwk, "ES256") {
                return Ok(None);
            }
            let x = decode_coordinate(jwk.x.as_deref(), "x")?;
            let y = decode_coordinate(jwk.y.as_deref(), "y")?;
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            p256::PublicKey::from_sec1_bytes(&point)
                .map_err(|_| "x, y is not a point on P-256".to_owned())?;
            let key = DecodingKey::from_ec_der(&point);
            Ok(Some(VerificationKey {
                kid: jwk.kid.clone(),
                alg: Algorithm::ES256,
                key,
                material: point,
            }))
        }
        "RSA" => {
            if !alg_is(jwk, "RS256") {
                return Ok(None);
            }
            let n = decode_b64(jwk.n.as_deref(), "n")?;
            let e = decode_b64(jwk.e.as_deref(), "e")?;
            let n_bits = significant_bits(&n);
            if n_bits < 2048 {
                return Err(format!(
                    "RSA modulus of {n_bits} bits (at least 2048 needed)"
                ));
            }
            if n_bits > 4096 {
                // The RustCrypto `rsa` crate verifies with moduli up to 4096 bits.
                return Err(format!("RSA modulus of {n_bits} bits (at most 4096)"));
            }
            let e_bits = significant_bits(&e);
            if !(2..=64).contains(&e_bits) || e.last().is_none_or(|b| b % 2 == 0) {
                return Err("RSA exponent is not a small odd number".into());
            }
            let key = DecodingKey::from_rsa_raw_components(&n, &e);
            let mut material = n;
            material.extend_from_slice(&e);
            Ok(Some(VerificationKey {
                kid: jwk.kid.clone(),
                alg: Algorithm::RS256,
                key,
                material,
            }))
        }
        _ => Ok(None),
    }
}

fn alg_is(jwk: &RawJwk, wanted: &str) -> bool {
    jwk.alg.as_deref().is_none_or(|a| a == wanted)
}

fn decode_b64(value: Option<&str>, member: &str) -> Result<Vec<u8>, String> {
    let text = value.ok_or_else(|| format!("`{member}` is missing"))?;
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| format!("`{member}` is not base64url"))
}

fn decode_coordinate(value: Option<&str>, member: &str) -> Result<Vec<u8>, String> {
    let bytes = decode_b64(value, member)?;
    if bytes.len() != 32 {
        return Err(format!("`{member}` is not 32 bytes"));
    }
    Ok(bytes)
}

fn significant_bits(big_endian: &[u8]) -> usize {
    match big_endian.iter().position(|b| *b != 0) {
        None => 0,
        Some(i) => (big_endian.len() - i) * 8 - big_endian[i].leading_zeros() as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A P-256 public key (the RFC 7515 appendix A.3 example key).
    const EC_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const EC_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    fn ec_jwk(extra: &str) -> String {
        format!(r#"{{"kty":"EC","crv":"P-256","x":"{EC_X}","y":"{EC_Y}"{extra}}}"#)
    }

    #[test]
    fn plain_and_wrapped_sets() {
        let doc = parse_jwks(&format!(r#"{{"keys":[{}]}}"#, ec_jwk(r#","kid":"k1""#))).unwrap();
        assert_eq!(doc.issuer, None);
        assert_eq!(doc.keys.key_ids().collect::<Vec<_>>(), ["k1"]);

        let doc = parse_jwks(&format!(
            r#"{{"issuer":"https://idp.example","keys":[{}]}}"#,
            ec_jwk(r#","kid":"k1","alg":"ES256","use":"sig""#)
        ))
        .unwrap();
        assert_eq!(doc.issuer.as_deref(), Some("https://idp.example"));
        assert_eq!(doc.keys.len(), 1);
    }

    #[test]
    fn unusable_keys_are_skipped_and_broken_ones_refused() {
        let doc = parse_jwks(&format!(
            r#"{{"keys":[{},{},{},{{"kty":"oct","k":"c2VjcmV0"}},{}]}}"#,
            ec_jwk(r#","kid":"enc","use":"enc""#),
            ec_jwk(r#","kid":"es384","alg":"ES384""#),
            ec_jwk(r#","kid":"ops","key_ops":["sign"]"#),
            ec_jwk(r#","kid":"good""#),
        ))
        .unwrap();
        assert_eq!(doc.keys.key_ids().collect::<Vec<_>>(), ["good"]);
        assert_eq!(doc.keys.skipped().len(), 4);

        let bad_point =
            format!(r#"{{"keys":[{{"kty":"EC","crv":"P-256","x":"{EC_X}","y":"{EC_X}"}}]}}"#);
        assert!(matches!(
            parse_jwks(&bad_point),
            Err(ConfigError::InvalidJwks(_))
        ));
        let private = format!(r#"{{"keys":[{}]}}"#, ec_jwk(r#","d":"secret""#));
        let err = parse_jwks(&private).unwrap_err().to_string();
        assert!(err.contains("private"), "{err}");
        let short_rsa = r#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#;
        assert!(
            parse_jwks(short_rsa)
                .unwrap_err()
                .to_string()
                .contains("2048")
        );
        assert!(parse_jwks(r#"{"keys":[]}"#).is_err());
        assert!(parse_jwks("not json").is_err());
        assert!(parse_jwks(r#"{"issuer":" ","keys":[]}"#).is_err());
    }

    #[test]
    fn key_lookup() {
        let doc = parse_jwks(&format!(
            r#"{{"keys":[{},{}]}}"#,
            ec_jwk(r#","kid":"a""#),
            ec_jwk(r#","kid":"b""#)
        ))
        .unwrap();
        let keys = &doc.keys;
        assert!(keys.find(Some("a"), Algorithm::ES256).is_ok());
        assert_eq!(
            keys.find(Some("zz"), Algorithm::ES256).unwrap_err(),
            AuthError::UnknownKeyId
        );
        assert_eq!(
            keys.find(Some("a"), Algorithm::RS256).unwrap_err(),
            AuthError::UnsupportedAlgorithm
        );
        // No kid and two candidate keys: ambiguous.
        assert_eq!(
            keys.find(None, Algorithm::ES256).unwrap_err(),
            AuthError::UnknownKeyId
        );
        let one = parse_jwks(&format!(r#"{{"keys":[{}]}}"#, ec_jwk(""))).unwrap();
        assert!(one.keys.find(None, Algorithm::ES256).is_ok());
    }

    #[test]
    fn bit_counting() {
        assert_eq!(significant_bits(&[0, 0, 1]), 1);
        assert_eq!(significant_bits(&[0x80, 0]), 16);
        assert_eq!(significant_bits(&[]), 0);
    }
}
