//! Cost of checking a bearer token: a first verification (full check, signature included)
//! for ES256 and RS256, and a repeated token served from the cache.
//!
//! Run: `cargo bench -p smr-auth --bench token_check`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use common::{RSA_ISSUER, RsaSigner, gp_claims, now};
use criterion::{Criterion, criterion_group, criterion_main};
use smr_auth::{DEFAULT_AUDIENCE, LocalIssuer, Verifier};

fn token_check(c: &mut Criterion) {
    let local = LocalIssuer::generate().expect("local issuer");
    let rsa = RsaSigner::new("bench-rsa");
    let t = now();
    let es256 = local
        .sign(&gp_claims(local.issuer(), t, t + 3600))
        .expect("ES256 token");
    let rs256 = rsa.sign(&gp_claims(RSA_ISSUER, t, t + 3600));

    // No cache: every check is a first verification.
    let uncached = Verifier::with_cache_capacity(DEFAULT_AUDIENCE, 0);
    uncached.trust_local(&local);
    uncached
        .add_jwks(Some(RSA_ISSUER), &rsa.jwks())
        .expect("RSA JWK Set");
    let cached = Verifier::default();
    cached.trust_local(&local);
    cached.verify(&es256).expect("warm the cache");

    let mut group = c.benchmark_group("token_check");
    group.bench_function("es256_first_verification", |b| {
        b.iter(|| uncached.verify(black_box(&es256)).expect("valid"))
    });
    group.bench_function("rs256_first_verification", |b| {
        b.iter(|| uncached.verify(black_box(&rs256)).expect("valid"))
    });
    group.bench_function("cached_check", |b| {
        b.iter(|| cached.verify(black_box(&es256)).expect("valid"))
    });
    group.finish();
}

criterion_group!(benches, token_check);
criterion_main!(benches);
