//! `smr terminology import-dmd` and `smr terminology lookup`, driving the real binary on a
//! temporary data directory with release 1 then release 2 of `../shared/reference/dmd-xml`
//! (release 2 moves VMP 22480211000001104 to 12345).

use std::path::Path;
use std::process::{Command, Output};

fn smr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smr"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("SMR_DATABASE_URL")
        .output()
        .expect("run smr")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn import_release_1_then_2_and_look_codes_up() {
    let Some(root) = smr_testdata::shared("reference/dmd-xml") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let data = path(&data);

    // Before any import: the built-in dictionary answers, the gel is unknown.
    let o = smr(&["terminology", "lookup", "320000009", "--data-dir", data]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("Simvastatin 40mg tablets"),
        "{}",
        text(&o)
    );
    let o = smr(&[
        "terminology",
        "lookup",
        "22480211000001104",
        "--data-dir",
        data,
    ]);
    assert!(!o.status.success(), "{}", text(&o));

    let r1 = root.join("release-1");
    let o = smr(&["terminology", "import-dmd", path(&r1), "--data-dir", data]);
    assert!(o.status.success(), "{}", text(&o));
    let summary = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        summary.starts_with(
            "imported dm+d release 3010419: 2859 VTM, 7 VMP, 15 AMP, 14 VMPP, 26 AMPP"
        ),
        "{summary}"
    );
    let o = smr(&[
        "terminology",
        "lookup",
        "29915211000001103",
        "--data-dir",
        data,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.starts_with("AMP 29915211000001103 (Diclofenac 2.32% gel)"),
        "{out}"
    );
    assert!(
        out.contains("VMP 22480211000001104 (Diclofenac 2.32% gel)"),
        "{out}"
    );
    assert!(
        out.contains("VTM 32889211000001103 (Diclofenac diethylammonium)"),
        "{out}"
    );

    let r2 = root.join("release-2");
    let o = smr(&["terminology", "import-dmd", path(&r2), "--data-dir", data]);
    assert!(o.status.success(), "{}", text(&o));
    let o = smr(&[
        "terminology",
        "lookup",
        "22480211000001104",
        "--json",
        "--data-dir",
        data,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(json["concept"]["code"], "12345");
    assert_eq!(json["info"]["level"], "vmp");
    assert_eq!(json["info"]["vtm"]["code"], "32889211000001103");
    assert_eq!(json["info"]["source"], "dm+d release 3010419");

    // A release with a file missing: a clear error naming it, and release 2 still in place.
    let bad = tmp.path().join("bad");
    std::fs::create_dir(&bad).expect("mkdir");
    for entry in std::fs::read_dir(&r1).expect("release 1") {
        let entry = entry.expect("entry");
        let name = entry.file_name().into_string().expect("name");
        if name.starts_with("f_") && !name.starts_with("f_vmpp2_") {
            std::fs::copy(entry.path(), bad.join(&name)).expect("copy");
        }
    }
    let o = smr(&["terminology", "import-dmd", path(&bad), "--data-dir", data]);
    assert!(!o.status.success());
    assert!(text(&o).contains("no f_vmpp2_*.xml file"), "{}", text(&o));
    // …and a malformed one: named with its element, nothing replaced.
    let vmp = std::fs::read_to_string(r1.join("f_vmp2_3010419.xml")).expect("vmp");
    std::fs::copy(
        r1.join("f_vmpp2_3010419.xml"),
        bad.join("f_vmpp2_3010419.xml"),
    )
    .expect("copy");
    std::fs::write(
        bad.join("f_vmp2_3010419.xml"),
        vmp.replacen("<NM>Diclofenac 2.32% gel</NM>", "", 1),
    )
    .expect("write");
    let o = smr(&["terminology", "import-dmd", path(&bad), "--data-dir", data]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("f_vmp2_3010419.xml: <VMP> at byte"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("has no <NM>"), "{}", text(&o));
    let o = smr(&["terminology", "lookup", "12345", "--data-dir", data]);
    assert!(o.status.success(), "release 2 is intact: {}", text(&o));

    let o = smr(&["audit", "verify", "--data-dir", data]);
    assert!(o.status.success(), "{}", text(&o));
}
