//! Synthetic population: `smr synth` writes it as NDJSON transaction Bundles, and `smr serve`
//! loads it into an empty store on first start ([`load_if_empty`]), so the README's one
//! command gives a server with patients, medicines and genotypes to try.
//!
//! Generation is `smr-synth` (pure, deterministic from a seed); this module only does I/O.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use smr_fhir::query::{self, Handling, SearchRequest};
use smr_store::{Store, WriteOp};
use smr_synth::{Population, SynthConfig};

/// The seed `smr serve` uses, so every fresh store gets the same population.
pub const SERVE_SEED: u64 = 1;
/// Patients `smr serve` loads into an empty embedded store unless told otherwise.
pub const SERVE_DEFAULT_PATIENTS: usize = 200;

#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Number of patients.
    #[arg(long, default_value_t = SERVE_DEFAULT_PATIENTS)]
    patients: usize,
    /// Seed: the same seed always gives the same population.
    #[arg(long, default_value_t = SERVE_SEED)]
    seed: u64,
    /// Patients per GP practice (one transaction Bundle per practice).
    #[arg(long, default_value_t = SynthConfig::default().patients_per_practice)]
    patients_per_practice: usize,
    /// Where to write the Bundles, one per line (NDJSON); `-` is standard output.
    #[arg(long, default_value = "-")]
    out: PathBuf,
}

/// `smr synth`: writes the population as NDJSON, one transaction Bundle per line, each ready
/// for `POST /fhir`.
pub fn run(args: SynthArgs) -> anyhow::Result<()> {
    let population = generate(args.patients, args.seed, args.patients_per_practice)?;
    let mut out: Box<dyn Write> = if args.out.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        let file = std::fs::File::create(&args.out)
            .with_context(|| format!("creating {}", args.out.display()))?;
        Box::new(file)
    };
    let mut out = std::io::BufWriter::new(&mut out);
    for bundle in &population.bundles {
        serde_json::to_writer(&mut out, bundle)?;
        out.write_all(b"\n")?;
    }
    // Nothing is logged here: with `--out -` standard output is the data.
    out.flush().context("writing the Bundles")
}

fn generate(
    patients: usize,
    seed: u64,
    patients_per_practice: usize,
) -> anyhow::Result<Population> {
    let max = smr_synth::max_patients();
    if patients > max {
        bail!(
            "at most {max} synthetic patients fit in the never-issued NHS-number range, asked for {patients}"
        );
    }
    Ok(smr_synth::generate(&SynthConfig {
        patients,
        seed,
        patients_per_practice,
        ..SynthConfig::default()
    }))
}

/// How many synthetic patients `smr serve` should load: the `--synthetic-patients` value when
/// given; otherwise [`SERVE_DEFAULT_PATIENTS`] on the embedded store and none on PostgreSQL,
/// where a database is only ever filled with test data on request.
pub fn serve_patients(flag: Option<usize>, database_url_given: bool) -> usize {
    match flag {
        Some(n) => n,
        None if database_url_given => 0,
        None => SERVE_DEFAULT_PATIENTS,
    }
}

/// Loads `patients` synthetic patients (seed `seed`) when the store holds no Patient at all.
/// Returns the number of resources written, or `None` when nothing was loaded (zero asked
/// for, or the store already has patients). Each practice's Bundle is one transaction.
pub async fn load_if_empty(
    store: &Store,
    patients: usize,
    seed: u64,
) -> anyhow::Result<Option<usize>> {
    if patients == 0 {
        return Ok(None);
    }
    let mut count = SearchRequest::new("Patient");
    count.summary_count = true;
    let existing = store
        .search(&count, &smr_store::Access::unrestricted())
        .await
        .context("counting patients")?
        .total
        .unwrap_or(0);
    if existing > 0 {
        tracing::info!(
            patients = existing,
            "store has patients: no synthetic population loaded"
        );
        return Ok(None);
    }
    let started = Instant::now();
    // Dated today, so the care relationships it shows (recent admissions, nominations) are
    // current when it is loaded; the demo patient does not depend on the date.
    let max = smr_synth::max_patients();
    if patients > max {
        bail!("at most {max} synthetic patients fit in the never-issued NHS-number range");
    }
    let population = smr_synth::generate(&SynthConfig {
        patients,
        seed,
        today: time::OffsetDateTime::now_utc().date(),
        ..SynthConfig::default()
    });
    tracing::info!(
        patients = population.patients,
        resources = population.resources,
        bundles = population.bundles.len(),
        seed,
        "loading synthetic population (NHS numbers 999…, marked HTEST) into the empty store"
    );
    let bar = if std::io::stdout().is_terminal() {
        let bar = ProgressBar::with_draw_target(
            Some(population.resources as u64),
            ProgressDrawTarget::stdout(),
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:40}] {pos}/{len} resources ({per_sec}, {eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message("synthetic population");
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut written = 0;
    for (i, bundle) in population.bundles.into_iter().enumerate() {
        let ops = write_ops(bundle).with_context(|| format!("synthetic Bundle {i}"))?;
        let n = ops.len();
        store
            .transaction(ops)
            .await
            .map_err(|e| anyhow::anyhow!("loading synthetic Bundle {i}: {e}"))?;
        written += n;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(
        patients = population.patients,
        resources = written,
        seconds = format!("{secs:.2}"),
        resources_per_second = format!("{:.0}", written as f64 / secs.max(1e-9)),
        "synthetic population loaded"
    );
    Ok(Some(written))
}

/// The entries of a transaction Bundle as store writes. Synthetic Bundles hold only `POST`s,
/// some with `ifNoneExist`.
fn write_ops(bundle: Value) -> anyhow::Result<Vec<WriteOp>> {
    let Value::Object(mut bundle) = bundle else {
        bail!("a Bundle must be a JSON object")
    };
    let Some(Value::Array(entries)) = bundle.remove("entry") else {
        bail!("the Bundle has no entries")
    };
    entries
        .into_iter()
        .enumerate()
        .map(|(i, mut entry)| {
            let request = entry.get("request").cloned().unwrap_or(Value::Null);
            let resource = entry
                .get_mut("resource")
                .map(Value::take)
                .unwrap_or(Value::Null);
            let ty = resource
                .get("resourceType")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if request.get("method").and_then(Value::as_str) != Some("POST")
                || request.get("url").and_then(Value::as_str) != Some(ty.as_str())
            {
                bail!("entry {i}: only POST of the entry's own resource type is expected");
            }
            let if_none_exist = match request.get("ifNoneExist").and_then(Value::as_str) {
                Some(q) => {
                    let pairs: Vec<(String, String)> =
                        form_urlencoded::parse(q.as_bytes()).into_owned().collect();
                    let parsed = query::parse(&ty, &pairs, Handling::Strict).map_err(|issues| {
                        anyhow::anyhow!("entry {i}: ifNoneExist '{q}': {issues:?}")
                    })?;
                    Some(parsed.request)
                }
                None => None,
            };
            let full_url = entry
                .get("fullUrl")
                .and_then(Value::as_str)
                .map(str::to_owned);
            Ok(WriteOp::Create {
                resource,
                full_url,
                if_none_exist,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_loads_by_default_only_on_the_embedded_store() {
        assert_eq!(serve_patients(None, false), 200);
        assert_eq!(serve_patients(None, true), 0);
        assert_eq!(serve_patients(Some(50), true), 50);
        assert_eq!(serve_patients(Some(0), false), 0);
    }

    #[test]
    fn bundles_become_creates() {
        let p = smr_synth::generate(&SynthConfig {
            patients: 3,
            ..SynthConfig::default()
        });
        let ops = write_ops(p.bundles[0].clone()).unwrap();
        assert_eq!(ops.len(), p.resources);
        assert!(
            matches!(&ops[0], WriteOp::Create { if_none_exist: Some(s), .. } if s.resource_type == "Organization")
        );
        // Shared organisations (ICB, hospital, pharmacy, community team, care home) and the
        // locality's hospital clinician are conditional creates so each Bundle loads on its
        // own; everything else is a plain create.
        assert!(ops.iter().all(|op| match op {
            WriteOp::Create {
                if_none_exist: None,
                full_url: Some(_),
                ..
            } => true,
            WriteOp::Create {
                if_none_exist: Some(s),
                ..
            } => matches!(s.resource_type.as_str(), "Organization" | "Practitioner"),
            _ => false,
        }));
    }

    #[tokio::test]
    async fn loads_once_into_an_empty_store() {
        let dir = std::env::temp_dir().join(format!("smr-synth-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.join("smr.db").display()))
            .await
            .unwrap();
        // 120 patients: three practices, two of them in ICB Q9X.
        let first = load_if_empty(&store, 120, 5).await.unwrap();
        assert!(first.is_some_and(|n| n > 120));
        assert_eq!(
            load_if_empty(&store, 120, 5).await.unwrap(),
            None,
            "second start loads nothing"
        );
        let mut count = SearchRequest::new("Patient");
        count.summary_count = true;
        assert_eq!(
            store
                .search(&count, &smr_store::Access::unrestricted())
                .await
                .unwrap()
                .total,
            Some(120)
        );
        // One ICB per ODS code, however many Bundles named it.
        let mut icb = query::parse(
            "Organization",
            &[(
                "identifier".into(),
                format!("{}|Q9X", smr_synth::ODS_SYSTEM),
            )],
            Handling::Strict,
        )
        .unwrap()
        .request;
        icb.summary_count = true;
        assert_eq!(
            store
                .search(&icb, &smr_store::Access::unrestricted())
                .await
                .unwrap()
                .total,
            Some(1)
        );
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The README's demo: the demo patient's single medication record, merged from what the
    /// population's settings wrote, shows several settings on one line and each conflict kind.
    #[tokio::test]
    async fn the_demo_patients_record_shows_settings_and_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.path().join("smr.db").display()))
            .await
            .unwrap();
        load_if_empty(&store, 50, SERVE_SEED).await.unwrap();
        let config = SynthConfig {
            patients: 50,
            seed: SERVE_SEED,
            ..SynthConfig::default()
        };
        let nhs = smr_synth::demo_patient_nhs_number(&config);
        let app = smr_app::App::new(store.clone());
        let ctx = smr_access::RequestContext::new(
            smr_access::Principal {
                user: "test".into(),
                role: smr_access::Role::System,
                organisation: None,
                setting: smr_access::CareSetting::Unspecified,
                setting_claimed: false,
                patient: None,
                scopes: smr_access::Scopes::unrestricted(),
                name: None,
                issuer: "smr".into(),
            },
            None,
            "test".into(),
        );
        let request = query::parse(
            "Patient",
            &[(
                "identifier".into(),
                format!("{}|{nhs}", smr_fhir::nhs_number::NHS_NUMBER_SYSTEM),
            )],
            Handling::Strict,
        )
        .unwrap()
        .request;
        let page = store
            .search(&request, &smr_store::Access::unrestricted())
            .await
            .unwrap();
        let patient = page.matches[0].id.clone();
        let record = app
            .medication_record(&ctx, &patient, &Default::default(), "http://smr.test/fhir")
            .await
            .unwrap();
        let resources: Vec<&Value> = record["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["resource"])
            .collect();
        let most_settings = resources
            .iter()
            .filter(|r| r["resourceType"] == "MedicationStatement")
            .map(|l| {
                l["extension"].as_array().map_or(0, |e| {
                    e.iter()
                        .filter(|x| x["url"] == smr_record::output::SETTING_EXTENSION)
                        .count()
                })
            })
            .max()
            .unwrap_or(0);
        assert!(
            most_settings >= 3,
            "a medicine held by three settings: {record}"
        );
        let kinds: std::collections::BTreeSet<&str> = resources
            .iter()
            .filter(|r| r["resourceType"] == "DetectedIssue")
            .filter_map(|i| i["code"]["coding"][0]["code"].as_str())
            .collect();
        for kind in [
            "dose-mismatch",
            "stopped-but-continued",
            "duplicate-ingredient",
        ] {
            assert!(
                kinds.contains(kind),
                "{kind} missing from {kinds:?}: {record}"
            );
        }
        store.close().await;
    }

    /// Loads a population through the store and checks its Provenances: every one stored,
    /// targets rewritten to `Type/id`, kept in the record of its first target's patient, and
    /// the only Provenance of each entry it names (the store writes no second one).
    async fn provenances_load(url: &str) {
        let store = Store::open(url).await.unwrap();
        let written = load_if_empty(&store, 60, 4).await.unwrap();
        assert!(written.is_some());
        let all = |ty: &str| {
            let mut req = SearchRequest::new(ty);
            req.count = query::MAX_COUNT;
            req
        };
        let page = store
            .search(&all("Provenance"), &smr_store::Access::unrestricted())
            .await
            .unwrap();
        assert!(
            page.matches.len() > 60,
            "{} Provenances",
            page.matches.len()
        );
        let mut settings = std::collections::HashSet::new();
        let mut targeted = std::collections::HashMap::new();
        for prov in &page.matches {
            let body: Value = serde_json::from_str(&prov.body).unwrap();
            let role = &body["agent"][0]["role"][0]["coding"][0];
            assert_eq!(role["system"], smr_synth::CARE_SETTING_SYSTEM);
            settings.insert(role["code"].as_str().unwrap().to_owned());
            assert!(
                body["agent"][0]["onBehalfOf"]["reference"]
                    .as_str()
                    .unwrap()
                    .starts_with("Organization/")
            );
            for (k, t) in body["target"].as_array().unwrap().iter().enumerate() {
                let reference = t["reference"].as_str().unwrap();
                let (ty, id) = reference.split_once('/').expect("Type/id");
                let entry = store.read(ty, id).await.unwrap();
                if k == 0 {
                    assert_eq!(prov.owner, entry.owner, "{reference}");
                }
                *targeted.entry(reference.to_owned()).or_insert(0) += 1;
            }
        }
        assert!(targeted.values().all(|&n| n == 1));
        for s in [
            "gp-practice",
            "hospital",
            "community-pharmacy",
            "patient-reported",
        ] {
            assert!(settings.contains(s), "no {s}");
        }
        // Every medication entry has its Provenance.
        for ty in [
            "MedicationRequest",
            "MedicationDispense",
            "MedicationAdministration",
            "MedicationStatement",
        ] {
            let page = store
                .search(&all(ty), &smr_store::Access::unrestricted())
                .await
                .unwrap();
            assert!(!page.matches.is_empty(), "no {ty}");
            for r in &page.matches {
                assert!(
                    targeted.contains_key(&format!("{ty}/{}", r.id)),
                    "{ty}/{} has no Provenance",
                    r.id
                );
            }
        }
        store.close().await;
    }

    #[tokio::test]
    async fn provenances_load_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        provenances_load(&format!("sqlite://{}", dir.path().join("smr.db").display())).await;
    }

    #[tokio::test]
    async fn provenances_load_on_postgres() {
        use sqlx::Connection;
        let Some(admin) = std::env::var("SMR_TEST_DATABASE_URL")
            .ok()
            .filter(|s| !s.is_empty())
        else {
            eprintln!("SKIP: SMR_TEST_DATABASE_URL is not set");
            return;
        };
        let database = format!("smr_synth_{}", uuid::Uuid::new_v4().simple());
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&mut c)
            .await
            .unwrap();
        let (base, _) = admin.rsplit_once('/').unwrap();
        provenances_load(&format!("{base}/{database}")).await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {database} WITH (FORCE)"
        )))
        .execute(&mut c)
        .await
        .unwrap();
    }
}
