//! The access decision made for every request once the token is verified: role table,
//! SMART scopes, which patients, which consent actors. (The relationship itself is a join in
//! the request's own SQL; its cost is in the read/search figures of docs/benchmarks.md.)
//!
//! `cargo bench -p smr-access --bench decision`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use smr_access::policy::{consent_actors, patient_access, role_allows};
use smr_access::{CareSetting, Interaction, Principal, RequestContext, Role, Scopes};

fn decision(c: &mut Criterion) {
    let ctx = RequestContext::new(
        Principal {
            user: "dr-a".into(),
            role: Role::Gp,
            organisation: Some("A81001".into()),
            setting: CareSetting::GpPractice,
            setting_claimed: false,
            patient: None,
            scopes: Scopes::parse("openid fhirUser user/MedicationRequest.rs user/Patient.rs"),
            name: None,
            issuer: "urn:smr:local:x".into(),
        },
        None,
        "r1".into(),
    );
    let keys = vec!["ods:A81001".to_owned(), "Organization/0190".to_owned()];
    c.bench_function(
        "access decision (role, scopes, patients, consent actors)",
        |b| {
            b.iter(|| {
                let p = &black_box(&ctx).principal;
                let allowed = role_allows(p.role, "MedicationRequest", Interaction::Search)
                    && p.scopes.allows("MedicationRequest", Interaction::Search);
                let patients = patient_access(&ctx, black_box(&keys));
                let actors = consent_actors(&ctx, &keys);
                black_box((allowed, patients, actors))
            })
        },
    );
}

criterion_group!(benches, decision);
criterion_main!(benches);
