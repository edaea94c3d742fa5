//! The drug dictionary in the application: who may import a dm+d release, its audit record,
//! the in-memory swap, and reloading from the store (on a fresh SQLite store; the store's
//! own tests cover both engines).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use smr_access::{Principal, RequestContext, Role, Scopes};
use smr_app::{App, AppError};
use smr_dmd::release::{locate, parse_release};
use smr_dmd::{Dictionary, Level};
use smr_store::{AuditQuery, Store};

const DMD: Option<&str> = Some("https://dmd.nhs.uk");
const OLD_GEL: &str = "22480211000001104";

fn ctx(role: Role) -> RequestContext {
    RequestContext::new(
        Principal {
            user: "u1".into(),
            role,
            organisation: Some("A81001".into()),
            setting: role.default_setting(),
            setting_claimed: false,
            patient: None,
            scopes: Scopes::unrestricted(),
            name: None,
            issuer: "test".into(),
        },
        None,
        "t1".into(),
    )
}

fn parse(dir: &Path) -> Dictionary {
    let names: Vec<String> = std::fs::read_dir(dir)
        .expect("release folder")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let layout = locate(&names).expect("a complete release");
    parse_release(&layout, |name| {
        File::open(dir.join(name)).map(BufReader::new)
    })
    .expect("parses")
}

async fn audit_bodies(store: &Store) -> Vec<String> {
    let page = store
        .audit_events(&AuditQuery {
            count: 50,
            ..AuditQuery::default()
        })
        .await
        .expect("audit");
    page.records.into_iter().map(|(_, body)| body).collect()
}

#[tokio::test]
async fn an_admin_imports_a_release_others_may_not_and_a_restart_reloads_it() {
    let Some(root) = smr_testdata::shared("reference/dmd-xml") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/smr.db", dir.path().display());
    let store = Store::open(&url).await.expect("store");
    let app = App::new(store.clone());
    assert_eq!(app.load_terminology().await.expect("load"), None);
    assert!(
        app.medicine_lookup()
            .resolve(&[(DMD, OLD_GEL)], None)
            .is_none(),
        "the gel is not in the built-in dictionaries"
    );

    let refused = app
        .import_dmd(&ctx(Role::Gp), parse(&root.join("release-1")))
        .await
        .expect_err("a GP may not import");
    assert!(matches!(refused, AppError::Forbidden(_)));
    assert_eq!(app.load_terminology().await.expect("load"), None);

    let counts = app
        .import_dmd(&ctx(Role::Admin), parse(&root.join("release-2")))
        .await
        .expect("an admin may");
    assert_eq!(counts.vmp, 7);
    let info = app
        .medicine_lookup()
        .resolve(&[(DMD, OLD_GEL)], None)
        .expect("the previous code resolves after the swap");
    assert_eq!(
        (info.level, info.matched.code.as_str()),
        (Level::Vmp, "12345")
    );
    assert_eq!(info.source, "dm+d release 3010419");

    let bodies = audit_bodies(&store).await;
    assert!(
        bodies
            .iter()
            .any(|b| b.contains("import-dmd") && b.contains("\"outcome\":\"0\""))
    );
    assert!(
        bodies
            .iter()
            .any(|b| b.contains("import-dmd") && b.contains("\"outcome\":\"4\""))
    );

    // A new App over the same store (a restart) answers from the imported release.
    let restarted = App::new(store.clone());
    assert_eq!(
        restarted.load_terminology().await.expect("load").as_deref(),
        Some("3010419")
    );
    let imported = restarted.dictionary().imported.clone().expect("imported");
    assert_eq!(
        imported
            .up_to_vmp("29915211000001103")
            .map(|c| c.code.as_str()),
        Some("12345")
    );
    // The built-in layers are still under it.
    assert!(
        restarted
            .medicine_lookup()
            .resolve(&[(DMD, "320000009")], None)
            .is_some()
    );
    store.close().await;
}
