//! Text as an `Authorization` header / bearer token: header parsing, JWT verification
//! against a trusted local issuer, and SMART scope parsing.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use smr_auth::{LocalIssuer, Verifier, bearer_token};

/// One verifier trusting one freshly generated local issuer, made once per process.
/// `None` if key generation fails (then only the verifier-independent parts run).
static VERIFIER: LazyLock<Option<Verifier>> = LazyLock::new(|| {
    let issuer = LocalIssuer::generate().ok()?;
    let verifier = Verifier::new("smr");
    verifier.trust_local(&issuer);
    Some(verifier)
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = smr_access::Scopes::parse(text);
    if let Some(verifier) = VERIFIER.as_ref() {
        // The raw text as a token, and the token taken from it as a header value.
        let _ = verifier.verify(text);
        if let Ok(token) = bearer_token(text) {
            let _ = verifier.verify(token);
        }
    } else {
        let _ = bearer_token(text);
    }
});
