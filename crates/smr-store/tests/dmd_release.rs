//! The imported dm+d release on both engines: release 1 then release 2 of
//! `../shared/reference/dmd-xml` (release 2 moves VMP 22480211000001104 to 12345), and an
//! import that fails part-way leaving the previous release whole.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use smr_dmd::release::{locate, parse_release};
use smr_dmd::{ConceptRow, Dictionary};
use smr_store::{DmdRelease, DmdRow, Store};

const OLD_GEL: &str = "22480211000001104";
const NEW_GEL: &str = "12345";

mod support;

use support::{postgres, sqlite};

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

fn stored(d: &Dictionary) -> DmdRelease {
    DmdRelease {
        release: d.release().to_owned(),
        imported_at: String::new(),
        counts: format!("{{\"concepts\":{}}}", d.counts().concepts()),
        rows: d
            .to_rows()
            .into_iter()
            .map(|r| DmdRow {
                code: r.code,
                level: r.level,
                name: r.name,
                body: r.body,
                current_code: r.current_code,
            })
            .collect(),
    }
}

async fn loaded(store: &Store) -> Option<Dictionary> {
    let release = store.load_dmd().await.expect("load")?;
    let rows = release.rows.into_iter().map(|r| ConceptRow {
        code: r.code,
        level: r.level,
        name: r.name,
        body: r.body,
        current_code: r.current_code,
    });
    Some(Dictionary::from_rows(&release.release, "test", rows).expect("readable"))
}

async fn release_2_replaces_release_1(store: &Store) {
    let Some(root) = smr_testdata::shared("reference/dmd-xml") else {
        return;
    };
    let (r1, r2) = (
        parse(&root.join("release-1")),
        parse(&root.join("release-2")),
    );
    assert!(loaded(store).await.is_none(), "nothing imported yet");
    store
        .replace_dmd_release(&stored(&r1), None)
        .await
        .expect("release 1");
    let back = loaded(store).await.expect("release 1 stored");
    assert_eq!(back.counts(), r1.counts());
    assert_eq!(back.lookup(OLD_GEL).map(|c| c.code.as_str()), Some(OLD_GEL));

    store
        .replace_dmd_release(&stored(&r2), None)
        .await
        .expect("release 2");
    let back = loaded(store).await.expect("release 2 stored");
    assert_eq!(back.counts(), r2.counts());
    assert_eq!(
        back.lookup(OLD_GEL).map(|c| c.code.as_str()),
        Some(NEW_GEL),
        "the retired code resolves to its successor"
    );
    let raw = store.load_dmd().await.expect("load").expect("stored");
    let old_row = raw.rows.iter().find(|r| r.code == OLD_GEL).expect("row");
    assert_eq!(
        (old_row.body.as_deref(), old_row.current_code.as_str()),
        (None, NEW_GEL)
    );
    assert!(!raw.imported_at.is_empty());

    // An import that fails part-way (a duplicate code in a later batch) leaves release 2.
    let mut broken = stored(&r1);
    let dup = broken.rows[0].clone();
    broken.rows.extend(std::iter::repeat_n(dup, 1));
    broken.release = "broken".into();
    assert!(store.replace_dmd_release(&broken, None).await.is_err());
    let after = loaded(store).await.expect("still stored");
    assert_eq!(after.release(), r2.release());
    assert_eq!(after.counts(), r2.counts());
    assert_eq!(
        after.lookup(OLD_GEL).map(|c| c.code.as_str()),
        Some(NEW_GEL)
    );
}

#[tokio::test]
async fn release_2_replaces_release_1_on_sqlite() {
    let fresh = sqlite().await;
    release_2_replaces_release_1(&fresh.store).await;
    fresh.finish().await;
}

#[tokio::test]
async fn release_2_replaces_release_1_on_postgres() {
    let Some(fresh) = postgres().await else {
        return;
    };
    release_2_replaces_release_1(&fresh.store).await;
    fresh.finish().await;
}
