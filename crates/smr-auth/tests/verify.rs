//! Token verification end to end: ES256 (local issuer) and RS256 (fixture key) tokens, and
//! each way a token is refused.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{RSA_ISSUER, RsaSigner, gp_claims, now};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use smr_access::{CareSetting, Interaction, Role};
use smr_auth::fetch::BoxFuture;
use smr_auth::{
    AuthError, ClaimsError, ConfigError, FetchError, JwksFetcher, LocalIssuer, TokenRequest,
    Verifier,
};

fn local_setup() -> (LocalIssuer, Verifier) {
    let issuer = LocalIssuer::generate().unwrap();
    let verifier = Verifier::default();
    verifier.trust_local(&issuer);
    (issuer, verifier)
}

fn rsa_setup() -> (RsaSigner, Verifier) {
    let signer = RsaSigner::new("rsa-1");
    let verifier = Verifier::default();
    let name = verifier.add_jwks(Some(RSA_ISSUER), &signer.jwks()).unwrap();
    assert_eq!(name, RSA_ISSUER);
    (signer, verifier)
}

fn gp_request() -> TokenRequest {
    let mut request = TokenRequest::new("user-1", Role::Gp);
    request.org = Some("A81001".into());
    request.name = Some("Dr Test".into());
    request.scope = Some("patient/MedicationRequest.rs launch/patient".into());
    request.patient = Some("pat-9".into());
    request
}

#[test]
fn es256_tokens_from_the_local_issuer_verify() {
    let (issuer, verifier) = local_setup();
    let token = issuer.issue(&gp_request()).unwrap();
    let p = verifier.verify(&token).unwrap();
    assert_eq!(p.user, "user-1");
    assert_eq!(p.role, Role::Gp);
    assert_eq!(p.organisation.as_deref(), Some("A81001"));
    assert_eq!(p.setting, CareSetting::GpPractice);
    assert_eq!(p.patient.as_deref(), Some("pat-9"));
    assert_eq!(p.name.as_deref(), Some("Dr Test"));
    assert_eq!(p.issuer, issuer.issuer());
    assert!(p.scopes.allows("MedicationRequest", Interaction::Search));
    assert!(!p.scopes.allows("MedicationRequest", Interaction::Create));
    assert!(p.scopes.patient_only());
}

#[test]
fn rs256_tokens_verify() {
    let (signer, verifier) = rsa_setup();
    let t = now();
    let token = signer.sign(&gp_claims(RSA_ISSUER, t, t + 600));
    let p = verifier.verify_at(&token, t).unwrap();
    assert_eq!(p.role, Role::Gp);
    assert_eq!(p.issuer, RSA_ISSUER);
    assert!(p.scopes.allows("Observation", Interaction::Delete));
}

#[test]
fn expiry_is_checked_with_60_seconds_leeway() {
    let (signer, verifier) = rsa_setup();
    let t = now();
    let recent = signer.sign(&gp_claims(RSA_ISSUER, t - 600, t - 30));
    assert!(
        verifier.verify_at(&recent, t).is_ok(),
        "30 s past exp is within leeway"
    );
    let old = signer.sign(&gp_claims(RSA_ISSUER, t - 600, t - 61));
    assert_eq!(verifier.verify_at(&old, t), Err(AuthError::Expired));

    let (issuer, verifier) = local_setup();
    let token = issuer.issue_at(&gp_request(), t - 3600 - 61).unwrap(); // 1 h TTL
    assert_eq!(verifier.verify_at(&token, t), Err(AuthError::Expired));
}

#[test]
fn missing_exp_is_refused() {
    let (issuer, verifier) = local_setup();
    let mut claims = gp_claims(issuer.issuer(), now(), 0);
    claims.as_object_mut().unwrap().remove("exp");
    let token = issuer.sign(&claims).unwrap();
    assert_eq!(
        verifier.verify(&token),
        Err(AuthError::Claims(ClaimsError::Missing("exp")))
    );
}

#[test]
fn nbf_in_the_future_is_refused() {
    let (issuer, verifier) = local_setup();
    let t = now();
    let mut claims = gp_claims(issuer.issuer(), t, t + 3600);
    claims["nbf"] = json!(t + 120);
    let token = issuer.sign(&claims).unwrap();
    assert_eq!(verifier.verify_at(&token, t), Err(AuthError::NotYetValid));
    claims["nbf"] = json!(t + 30);
    let token = issuer.sign(&claims).unwrap();
    assert!(
        verifier.verify_at(&token, t).is_ok(),
        "30 s skew is within leeway"
    );
}

#[test]
fn wrong_or_missing_audience_is_refused() {
    let (issuer, verifier) = local_setup();
    let t = now();
    let mut claims = gp_claims(issuer.issuer(), t, t + 600);
    claims["aud"] = json!("another-api");
    let token = issuer.sign(&claims).unwrap();
    assert_eq!(verifier.verify_at(&token, t), Err(AuthError::WrongAudience));
    claims["aud"] = json!(["another-api", "smr"]);
    let token = issuer.sign(&claims).unwrap();
    assert!(verifier.verify_at(&token, t).is_ok());
    claims.as_object_mut().unwrap().remove("aud");
    let token = issuer.sign(&claims).unwrap();
    assert_eq!(verifier.verify_at(&token, t), Err(AuthError::WrongAudience));

    let other_audience = Verifier::new("smr-test");
    other_audience.trust_local(&issuer);
    let token = issuer.issue(&gp_request()).unwrap();
    assert_eq!(other_audience.verify(&token), Err(AuthError::WrongAudience));
    let issuer = issuer.with_audience("smr-test");
    let token = issuer.issue(&gp_request()).unwrap();
    assert!(other_audience.verify(&token).is_ok());
}

#[test]
fn unknown_issuer_is_refused() {
    let (issuer, _) = local_setup();
    let verifier = Verifier::default(); // trusts nobody
    let token = issuer.issue(&gp_request()).unwrap();
    assert_eq!(verifier.verify(&token), Err(AuthError::UnknownIssuer));

    // A trusted issuer's name on a token signed by someone else's key: unknown kid.
    let (trusted, verifier) = local_setup();
    let t = now();
    let forged = issuer
        .sign(&gp_claims(trusted.issuer(), t, t + 600))
        .unwrap();
    assert_eq!(verifier.verify_at(&forged, t), Err(AuthError::UnknownKeyId));
}

#[test]
fn unknown_kid_is_refused() {
    let (signer, verifier) = rsa_setup();
    let other = RsaSigner::new("rsa-2");
    let t = now();
    let token = other.sign(&gp_claims(RSA_ISSUER, t, t + 600));
    assert_eq!(verifier.verify_at(&token, t), Err(AuthError::UnknownKeyId));
    let _ = signer;
}

#[test]
fn tampered_payload_is_refused() {
    let (issuer, verifier) = local_setup();
    let token = issuer.issue(&gp_request()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["smr_role"] = json!("admin");
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let tampered = format!("{}.{}.{}", parts[0], payload, parts[2]);
    assert_eq!(verifier.verify(&tampered), Err(AuthError::BadSignature));

    // A flipped signature byte too.
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 1;
    let bad_sig = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(&sig));
    assert_eq!(verifier.verify(&bad_sig), Err(AuthError::BadSignature));

    // An RS256 token with its signature swapped for another token's.
    let (signer, verifier) = rsa_setup();
    let t = now();
    let a = signer.sign(&gp_claims(RSA_ISSUER, t, t + 600));
    let b = signer.sign(&gp_claims(RSA_ISSUER, t, t + 601));
    let (a_msg, _) = a.rsplit_once('.').unwrap();
    let (_, b_sig) = b.rsplit_once('.').unwrap();
    assert_eq!(
        verifier.verify_at(&format!("{a_msg}.{b_sig}"), t),
        Err(AuthError::BadSignature)
    );
}

fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

#[test]
fn alg_none_is_refused() {
    let (issuer, verifier) = local_setup();
    let t = now();
    let payload = b64_json(&gp_claims(issuer.issuer(), t, t + 600));
    for header in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "None", "kid": issuer.kid()}),
    ] {
        let token = format!("{}.{payload}.", b64_json(&header));
        assert_eq!(
            verifier.verify(&token),
            Err(AuthError::UnsupportedAlgorithm)
        );
    }
}

#[test]
fn hs256_is_refused_even_with_the_public_key_as_secret() {
    let (issuer, verifier) = local_setup();
    let t = now();
    let claims = gp_claims(issuer.issuer(), t, t + 600);
    // The classic algorithm-confusion attack: HMAC keyed with the published public key.
    let secret = issuer.jwks();
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let mut header = Header::new(alg);
        header.kid = Some(issuer.kid().to_owned());
        let token = jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
        )
        .unwrap();
        assert_eq!(
            verifier.verify(&token),
            Err(AuthError::UnsupportedAlgorithm)
        );
    }
}

#[test]
fn algorithm_must_match_the_key() {
    // An RS256 header naming the ES256 key's kid.
    let (issuer, verifier) = local_setup();
    let signer = RsaSigner::new(issuer.kid());
    let t = now();
    let token = signer.sign(&gp_claims(issuer.issuer(), t, t + 600));
    assert_eq!(
        verifier.verify_at(&token, t),
        Err(AuthError::UnsupportedAlgorithm)
    );
}

#[test]
fn malformed_tokens() {
    let (issuer, verifier) = local_setup();
    assert_eq!(verifier.verify(""), Err(AuthError::MissingToken));
    for bad in ["abc", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.e30.e30.e30"] {
        assert!(
            matches!(verifier.verify(bad), Err(AuthError::Malformed(_))),
            "{bad}"
        );
    }
    let long = "a".repeat(smr_auth::MAX_TOKEN_LEN + 1);
    assert!(matches!(
        verifier.verify(&long),
        Err(AuthError::Malformed(_))
    ));
    // Critical header extensions are refused.
    let t = now();
    let payload = b64_json(&gp_claims(issuer.issuer(), t, t + 600));
    let header = b64_json(&json!({"alg": "ES256", "kid": issuer.kid(), "crit": ["exp"]}));
    assert!(matches!(
        verifier.verify(&format!("{header}.{payload}.AAAA")),
        Err(AuthError::Malformed(_))
    ));
    // A known claim of the wrong type makes the payload malformed.
    let mut claims = gp_claims(issuer.issuer(), t, t + 600);
    claims["exp"] = json!("tomorrow");
    let token = issuer.sign(&claims).unwrap();
    assert!(matches!(
        verifier.verify(&token),
        Err(AuthError::Malformed(_))
    ));
}

#[test]
fn error_messages_never_echo_the_token() {
    let (issuer, verifier) = local_setup();
    let t = now();
    let mut claims = gp_claims(issuer.issuer(), t, t + 600);
    claims["smr_role"] = json!("SECRET-ROLE-TEXT-THAT-IS-VERY-LONG-AND-SHOULD-BE-CUT-OFF-HERE");
    let token = issuer.sign(&claims).unwrap();
    let err = verifier.verify(&token).unwrap_err();
    assert!(matches!(
        err,
        AuthError::Claims(ClaimsError::UnknownRole(_))
    ));
    let text = err.to_string();
    assert!(!text.contains(&token));
    assert!(!text.contains("CUT-OFF-HERE"), "{text}");
    for part in token.split('.') {
        assert!(!text.contains(part), "{text}");
    }
}

#[test]
fn claims_errors_surface_clearly() {
    let (issuer, verifier) = local_setup();
    let t = now();
    let mut claims = gp_claims(issuer.issuer(), t, t + 600);
    claims.as_object_mut().unwrap().remove("org");
    let token = issuer.sign(&claims).unwrap();
    let err = verifier.verify_at(&token, t).unwrap_err();
    assert_eq!(
        err,
        AuthError::Claims(ClaimsError::MissingOrganisation(Role::Gp))
    );
    assert!(err.to_string().contains("organisation"));

    claims["smr_role"] = json!("patient");
    let token = issuer.sign(&claims).unwrap();
    assert_eq!(
        verifier.verify_at(&token, t),
        Err(AuthError::Claims(ClaimsError::MissingPatient))
    );

    claims["smr_role"] = json!("R8004");
    claims["org"] = json!("RBA");
    let token = issuer.sign(&claims).unwrap();
    let err = verifier.verify_at(&token, t).unwrap_err();
    assert!(err.to_string().contains("R8004"), "{err}");
}

#[test]
fn repeated_tokens_are_served_from_the_cache_until_exp() {
    let (issuer, verifier) = local_setup();
    let t = now();
    let token = issuer.sign(&gp_claims(issuer.issuer(), t, t + 10)).unwrap();
    let first = verifier.verify_at(&token, t).unwrap();
    assert_eq!(verifier.cached_tokens(), 1);
    assert_eq!(verifier.verify_at(&token, t + 5).unwrap(), first);
    assert_eq!(
        verifier.verify_at(&token, t + 70).unwrap(),
        first,
        "within leeway"
    );
    // Past exp + leeway the cached entry must not be used: the full check says expired.
    assert_eq!(verifier.verify_at(&token, t + 71), Err(AuthError::Expired));
    assert_eq!(verifier.cached_tokens(), 0);
}

#[test]
fn failures_are_not_cached() {
    let (issuer, verifier) = local_setup();
    let t = now();
    let mut claims = gp_claims(issuer.issuer(), t, t + 600);
    claims["aud"] = json!("x");
    let token = issuer.sign(&claims).unwrap();
    assert!(verifier.verify_at(&token, t).is_err());
    assert_eq!(verifier.cached_tokens(), 0);
}

#[test]
fn withdrawn_keys_stop_cached_tokens() {
    let (signer, verifier) = rsa_setup();
    let t = now();
    let token = signer.sign(&gp_claims(RSA_ISSUER, t, t + 600));
    assert!(verifier.verify_at(&token, t).is_ok());
    assert_eq!(verifier.cached_tokens(), 1);
    // The issuer rotates to a new key and withdraws the old one.
    let (replacement, _) = local_setup();
    let replacement_jwks = replacement.jwks().replace(replacement.issuer(), RSA_ISSUER);
    verifier.add_jwks(None, &replacement_jwks).unwrap();
    assert_eq!(verifier.cached_tokens(), 0);
    assert_eq!(verifier.verify_at(&token, t), Err(AuthError::UnknownKeyId));
}

#[test]
fn jwks_files_in_both_forms() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalIssuer::generate().unwrap();
    let smr_form = dir.path().join("local.jwks.json");
    std::fs::write(&smr_form, local.jwks()).unwrap();
    let signer = RsaSigner::new("rsa-1");
    let plain = dir.path().join("idp.jwks.json");
    std::fs::write(&plain, signer.jwks()).unwrap();

    let verifier = Verifier::default();
    assert_eq!(
        verifier.add_jwks_file(None, &smr_form).unwrap(),
        local.issuer()
    );
    assert!(matches!(
        verifier.add_jwks_file(None, &plain),
        Err(ConfigError::Issuer(_))
    ));
    assert_eq!(
        verifier.add_jwks_file(Some(RSA_ISSUER), &plain).unwrap(),
        RSA_ISSUER
    );
    assert!(matches!(
        verifier.add_jwks_file(Some("https://someone.else"), &smr_form),
        Err(ConfigError::Issuer(_))
    ));
    let mut issuers = vec![local.issuer().to_owned(), RSA_ISSUER.to_owned()];
    issuers.sort();
    assert_eq!(verifier.issuers(), issuers);

    let t = now();
    assert!(
        verifier
            .verify_at(&local.issue(&gp_request()).unwrap(), t)
            .is_ok()
    );
    assert!(
        verifier
            .verify_at(&signer.sign(&gp_claims(RSA_ISSUER, t, t + 60)), t)
            .is_ok()
    );
    let missing = verifier.add_jwks_file(None, &dir.path().join("nope.json"));
    assert!(matches!(missing, Err(ConfigError::Io { .. })));
}

#[test]
fn cis2_style_tokens() {
    let signer = RsaSigner::new("cis2");
    let verifier = Verifier::new("smr-cis2-client");
    verifier.add_jwks(Some(RSA_ISSUER), &signer.jwks()).unwrap();
    let t = now();
    let token = signer.sign(&json!({
        "iss": RSA_ISSUER,
        "sub": "910000000001",
        "aud": "smr-cis2-client",
        "exp": t + 600,
        "iat": t,
        "care_setting": "hospital",
        "selected_roleid": "5550001",
        "nhsid_nrbac_roles": [
            {"person_roleid": "5550000", "org_code": "A81001", "role_code": "S8000:G8000:R8000"},
            {"person_roleid": "5550001", "org_code": "RBA", "role_code": "S8000:G8000:R8000",
             "activity_codes": ["B0428", "B0360"], "role_name": "\"Clinical\":\"Clinical Provision\""}
        ]
    }));
    let p = verifier.verify_at(&token, t).unwrap();
    assert_eq!(p.role, Role::HospitalPrescriber);
    assert_eq!(p.organisation.as_deref(), Some("RBA"));
    assert_eq!(p.setting, CareSetting::Hospital);
    assert!(p.scopes.is_unrestricted());
}

// ---- URL issuers ----------------------------------------------------------------------

/// Serves documents from a map and counts requests per URL.
#[derive(Default)]
struct MapFetcher {
    docs: Mutex<HashMap<String, String>>,
    hits: Mutex<HashMap<String, usize>>,
}

impl MapFetcher {
    fn set(&self, url: &str, body: String) {
        self.docs.lock().unwrap().insert(url.to_owned(), body);
    }
    fn hits(&self, url: &str) -> usize {
        self.hits.lock().unwrap().get(url).copied().unwrap_or(0)
    }
}

impl JwksFetcher for MapFetcher {
    fn get<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<String, FetchError>> {
        *self.hits.lock().unwrap().entry(url.to_owned()).or_default() += 1;
        let found = self.docs.lock().unwrap().get(url).cloned();
        Box::pin(async move { found.ok_or_else(|| FetchError::new(url, "HTTP 404")) })
    }
}

const DISCOVERY: &str = "https://idp.test.example/.well-known/openid-configuration";
const JWKS_URI: &str = "https://idp.test.example/keys";

fn discovery(issuer: &str, jwks_uri: &str) -> String {
    json!({"issuer": issuer, "jwks_uri": jwks_uri, "authorization_endpoint": "x"}).to_string()
}

#[tokio::test(start_paused = true)]
async fn url_issuers_fetch_keys_and_refetch_for_unknown_kids_at_most_once_a_minute() {
    let fetcher = Arc::new(MapFetcher::default());
    fetcher.set(DISCOVERY, discovery(RSA_ISSUER, JWKS_URI));
    let old = RsaSigner::new("old");
    fetcher.set(JWKS_URI, old.jwks());
    let verifier = Verifier::default().with_fetcher(fetcher.clone());
    assert_eq!(verifier.add_issuer_url(RSA_ISSUER).await.unwrap(), 1);
    assert_eq!(fetcher.hits(JWKS_URI), 1);

    let t = now();
    let token = old.sign(&gp_claims(RSA_ISSUER, t, t + 3600));
    assert!(verifier.authenticate(&token).await.is_ok());

    // The issuer rotates: a token with a new kid prompts one refetch.
    let new = RsaSigner::new("new");
    fetcher.set(JWKS_URI, new.jwks());
    tokio::time::advance(Duration::from_secs(61)).await;
    let token = new.sign(&gp_claims(RSA_ISSUER, t, t + 3600));
    assert!(verifier.authenticate(&token).await.is_ok());
    assert_eq!(fetcher.hits(JWKS_URI), 2);

    // Unknown kids within the minute do not refetch.
    let stranger = RsaSigner::new("stranger");
    let token = stranger.sign(&gp_claims(RSA_ISSUER, t, t + 3600));
    assert_eq!(
        verifier.authenticate(&token).await,
        Err(AuthError::UnknownKeyId)
    );
    assert_eq!(
        verifier.authenticate(&token).await,
        Err(AuthError::UnknownKeyId)
    );
    assert_eq!(fetcher.hits(JWKS_URI), 2);
    // After the minute, one more try.
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(
        verifier.authenticate(&token).await,
        Err(AuthError::UnknownKeyId)
    );
    assert_eq!(fetcher.hits(JWKS_URI), 3);

    // The synchronous check never fetches.
    assert_eq!(verifier.verify(&token), Err(AuthError::UnknownKeyId));
    assert_eq!(fetcher.hits(JWKS_URI), 3);
}

#[tokio::test(start_paused = true)]
async fn background_refresh_runs_every_interval() {
    let fetcher = Arc::new(MapFetcher::default());
    fetcher.set(DISCOVERY, discovery(RSA_ISSUER, JWKS_URI));
    fetcher.set(JWKS_URI, RsaSigner::new("k").jwks());
    let verifier = Arc::new(Verifier::default().with_fetcher(fetcher.clone()));
    verifier.add_issuer_url(RSA_ISSUER).await.unwrap();
    let task = verifier.spawn_refresh(smr_auth::REFRESH_INTERVAL);
    for expected in 2..=4 {
        tokio::time::sleep(smr_auth::REFRESH_INTERVAL + Duration::from_secs(1)).await;
        assert_eq!(fetcher.hits(JWKS_URI), expected);
    }
    drop(verifier);
    tokio::time::sleep(smr_auth::REFRESH_INTERVAL * 2).await;
    assert!(task.is_finished());
}

#[tokio::test(start_paused = true)]
async fn an_issuer_whose_keys_cannot_be_fetched_is_temporarily_unavailable() {
    let fetcher = Arc::new(MapFetcher::default());
    let verifier = Verifier::default().with_fetcher(fetcher.clone());
    let err = verifier.add_issuer_url(RSA_ISSUER).await.unwrap_err();
    assert!(matches!(err, ConfigError::Fetch(_)), "{err}");
    assert_eq!(verifier.issuers(), [RSA_ISSUER]);

    let signer = RsaSigner::new("k");
    let t = now();
    let token = signer.sign(&gp_claims(RSA_ISSUER, t, t + 3600));
    let err = verifier.authenticate(&token).await.unwrap_err();
    assert_eq!(err, AuthError::KeysUnavailable);
    assert!(err.is_temporary());

    // The IdP comes back: the next token after the minute fetches and succeeds.
    fetcher.set(DISCOVERY, discovery(RSA_ISSUER, JWKS_URI));
    fetcher.set(JWKS_URI, signer.jwks());
    tokio::time::advance(Duration::from_secs(61)).await;
    assert!(verifier.authenticate(&token).await.is_ok());
}

#[tokio::test]
async fn discovery_must_name_the_same_issuer_and_an_https_jwks_uri() {
    let fetcher = Arc::new(MapFetcher::default());
    fetcher.set(DISCOVERY, discovery("https://evil.example", JWKS_URI));
    fetcher.set(JWKS_URI, RsaSigner::new("k").jwks());
    let verifier = Verifier::default().with_fetcher(fetcher.clone());
    let err = verifier.add_issuer_url(RSA_ISSUER).await.unwrap_err();
    assert!(err.to_string().contains("evil.example"), "{err}");

    fetcher.set(
        DISCOVERY,
        discovery(RSA_ISSUER, "http://idp.test.example/keys"),
    );
    let err = verifier.add_issuer_url(RSA_ISSUER).await.unwrap_err();
    assert!(err.to_string().contains("https"), "{err}");

    assert!(verifier.add_issuer_url("ftp://x").await.is_err());
}

/// The real HTTP fetcher against a tiny local HTTP server (plain HTTP: development mode).
#[tokio::test]
async fn http_fetcher_end_to_end() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let signer = RsaSigner::new("http-key");
    let discovery_doc = discovery(&base, &format!("{base}/jwks"));
    let jwks = signer.jwks();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                break;
            };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request);
            let path = text.split_whitespace().nth(1).unwrap_or("").to_owned();
            let (status, body) = match path.as_str() {
                "/.well-known/openid-configuration" => ("200 OK", discovery_doc.clone()),
                "/jwks" => ("200 OK", jwks.clone()),
                _ => ("404 Not Found", String::new()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });

    let verifier = Verifier::default().with_fetcher(Arc::new(
        smr_auth::HttpFetcher::allowing_plain_http().unwrap(),
    ));
    assert_eq!(verifier.add_issuer_url(&base).await.unwrap(), 1);
    let t = now();
    let token = signer.sign(&gp_claims(&base, t, t + 600));
    assert!(verifier.authenticate(&token).await.is_ok());

    // The HTTPS-only fetcher refuses plain HTTP.
    let https_only = smr_auth::HttpFetcher::new().unwrap();
    let err = https_only.get(&format!("{base}/jwks")).await.unwrap_err();
    assert!(err.url.ends_with("/jwks"));
}
