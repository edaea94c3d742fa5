//! The demo sign-ins `smr serve` prints on the embedded store: a ready token for a GP, a
//! hospital prescriber, a community pharmacist, a patient, an analyst and an administrator
//! of the synthetic population, so a newcomer can try SMR at once. They are signed by the
//! data directory's local key, which no other SMR trusts.

use std::io::Write;
use std::time::Duration;

use smr_access::{Principal, RequestContext, Role, Scopes};
use smr_auth::{LocalIssuer, TokenRequest};
use smr_fhir::query::{self, Handling};
use smr_synth::SynthConfig;

/// How long demo tokens last: a working day.
const DEMO_TTL: Duration = Duration::from_secs(12 * 3600);

struct DemoUser {
    label: &'static str,
    env: &'static str,
    request: TokenRequest,
}

pub async fn print_sign_ins(
    app: &smr_app::App,
    local: &LocalIssuer,
    synthetic_patients: usize,
) -> Vec<smr_server::web::DemoSignIn> {
    let config = SynthConfig {
        patients: synthetic_patients.max(1),
        seed: crate::synth::SERVE_SEED,
        ..SynthConfig::default()
    };
    let orgs = smr_synth::demo_organisations(&config);
    let patient = demo_patient_id(app, &smr_synth::demo_patient_nhs_number(&config)).await;
    let user = |user: &str, role: Role, org: &str, name: &str| TokenRequest {
        org: Some(org.to_owned()),
        name: Some(name.to_owned()),
        ttl: DEMO_TTL,
        ..TokenRequest::new(user, role)
    };
    let mut users = vec![
        DemoUser {
            label: "GP",
            env: "SMR_TOKEN_GP",
            request: user("demo-gp", Role::Gp, &orgs.gp_practice, "Dr Demo GP"),
        },
        DemoUser {
            label: "hospital prescriber",
            env: "SMR_TOKEN_HOSPITAL",
            request: user(
                "demo-hospital",
                Role::HospitalPrescriber,
                &orgs.hospital,
                "Dr Demo Registrar",
            ),
        },
        DemoUser {
            label: "community pharmacist",
            env: "SMR_TOKEN_PHARMACIST",
            request: user(
                "demo-pharmacist",
                Role::CommunityPharmacist,
                &orgs.pharmacy,
                "Demo Pharmacist",
            ),
        },
        DemoUser {
            label: "analyst",
            env: "SMR_TOKEN_ANALYST",
            request: user("demo-analyst", Role::Analyst, &orgs.icb, "Demo ICB Analyst"),
        },
        DemoUser {
            label: "admin",
            env: "SMR_TOKEN_ADMIN",
            request: user(
                "demo-admin",
                Role::Admin,
                &orgs.gp_practice,
                "Demo Practice Manager",
            ),
        },
    ];
    if let Some(id) = &patient {
        users.insert(
            3,
            DemoUser {
                label: "patient",
                env: "SMR_TOKEN_PATIENT",
                request: TokenRequest {
                    patient: Some(id.clone()),
                    name: Some("Demo Patient".into()),
                    ttl: DEMO_TTL,
                    ..TokenRequest::new(format!("patient-{id}"), Role::Patient)
                },
            },
        );
    }
    let mut out = String::from(
        "\nDemo sign-ins (synthetic data only; valid 12 h; paste a line into your shell):\n",
    );
    // The same tokens, one click away on the web app's sign-in page (kept server-side).
    let mut sign_ins = Vec::new();
    for u in &users {
        match local.issue(&u.request) {
            Ok(token) => {
                let org = u.request.org.as_deref().unwrap_or("-");
                out.push_str(&format!(
                    "# {} ({org})\nexport {}={token}\n",
                    u.label, u.env
                ));
                sign_ins.push(smr_server::web::DemoSignIn {
                    label: u.label.to_owned(),
                    organisation: u.request.org.clone(),
                    token,
                });
            }
            Err(e) => tracing::warn!(user = u.label, error = %e, "demo token not issued"),
        }
    }
    if let Some(id) = &patient {
        out.push_str(&format!(
            "# the demo patient (a GP repeat, a pharmacy and a hospital stay; a dose changed in \
             hospital, a stopped medicine still dispensed, a duplicate brand):\n\
             export SMR_DEMO_PATIENT={id}\n\
             # then, for example, their single medication record:\n\
             curl -s -H \"Authorization: Bearer $SMR_TOKEN_GP\" \
             \"http://127.0.0.1:8080/fhir/Patient/$SMR_DEMO_PATIENT/\\$medication-record\"\n"
        ));
    }
    out.push_str("# or sign in on the web app with one click: http://127.0.0.1:8080/app\n");
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    sign_ins
}

/// The demo patient's id in this store (SMR assigns ids when the population is loaded).
async fn demo_patient_id(app: &smr_app::App, nhs_number: &str) -> Option<String> {
    let ctx = RequestContext::new(
        Principal {
            user: "smr-demo-setup".into(),
            role: Role::System,
            organisation: None,
            setting: smr_access::CareSetting::Unspecified,
            setting_claimed: false,
            patient: None,
            scopes: Scopes::unrestricted(),
            name: Some("SMR start-up".into()),
            issuer: "smr".into(),
        },
        None,
        "demo-setup".into(),
    );
    let pairs = vec![(
        "identifier".to_owned(),
        format!("{}|{nhs_number}", smr_fhir::nhs_number::NHS_NUMBER_SYSTEM),
    )];
    let request = query::parse("Patient", &pairs, Handling::Strict)
        .ok()?
        .request;
    let page = app.search(&ctx, &request, "identifier").await.ok()?;
    page.matches.first().map(|r| r.id.clone())
}
