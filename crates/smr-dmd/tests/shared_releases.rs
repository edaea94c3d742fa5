//! The parser on the two successive small releases in `../shared/reference/dmd-xml` (the
//! official NHSBSA format, cut down by openprescribing's `gen_test_dmd_data.py`). Release 2
//! moves the VMP "Diclofenac 2.32% gel" from code 22480211000001104 to 12345 (VPIDPREV the
//! old code), with its AMPs, VMPPs and ingredient rows following.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use smr_dmd::release::{locate, parse_release};
use smr_dmd::{Dictionary, Level, MedicineLookup};

fn load(dir: &Path) -> Dictionary {
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

fn releases() -> Option<(Dictionary, Dictionary)> {
    let root = smr_testdata::shared("reference/dmd-xml")?;
    Some((load(&root.join("release-1")), load(&root.join("release-2"))))
}

const OLD_GEL: &str = "22480211000001104";
const NEW_GEL: &str = "12345";
const DICLOFENAC_VTM: &str = "32889211000001103";

#[test]
fn release_1_counts_and_links() {
    let Some((r1, _)) = releases() else { return };
    assert_eq!(r1.release(), "3010419");
    let c = r1.counts();
    assert_eq!((c.vtm, c.vmp, c.amp, c.vmpp, c.ampp), (2859, 7, 15, 14, 26));
    let gel = r1.lookup(OLD_GEL).expect("the gel VMP");
    assert_eq!(
        (gel.level, gel.name.as_str()),
        (Level::Vmp, "Diclofenac 2.32% gel")
    );
    assert_eq!(
        r1.up_to_vtm(OLD_GEL).map(|v| v.name.as_str()),
        Some("Diclofenac diethylammonium")
    );
    for amp in [
        "22479611000001102",
        "29915211000001103",
        "30926911000001106",
    ] {
        assert_eq!(
            r1.up_to_vmp(amp).map(|v| v.code.as_str()),
            Some(OLD_GEL),
            "{amp}"
        );
        assert_eq!(
            r1.up_to_vtm(amp).map(|v| v.code.as_str()),
            Some(DICLOFENAC_VTM),
            "{amp}"
        );
    }
    let info = r1.info(OLD_GEL).expect("info");
    assert_eq!(info.form.as_deref(), Some("Gel"));
    assert_eq!(info.route.as_deref(), Some("Transdermal"));
    assert_eq!(info.ingredients.len(), 1);
    assert_eq!(
        info.ingredients[0].strength.as_deref(),
        Some("23.2 mg/gram")
    );
    assert_eq!(
        info.controlled_drug, None,
        "CATCD 0000: no controlled drug status"
    );
    // An invalid VTM still resolves by code, flagged.
    assert!(
        r1.lookup("47065008")
            .is_some_and(|v| v.invalid && v.name == "Quinine")
    );
}

#[test]
fn release_2_moves_the_gel_and_the_old_code_still_resolves() {
    let Some((r1, r2)) = releases() else { return };
    assert!(r1.lookup(NEW_GEL).is_none());
    let moved = r2.lookup(OLD_GEL).expect("the previous code resolves");
    assert_eq!((moved.code.as_str(), moved.level), (NEW_GEL, Level::Vmp));
    assert_eq!(moved.previous, vec![OLD_GEL.to_owned()]);
    let info = r2
        .resolve(&[(Some("https://dmd.nhs.uk"), OLD_GEL)], None)
        .expect("resolves");
    assert_eq!(info.matched.code, NEW_GEL);
    assert_eq!(info.vtm.map(|v| v.code), Some(DICLOFENAC_VTM.to_owned()));
    assert_eq!(
        r2.up_to_vmp("29915211000001103").map(|v| v.code.as_str()),
        Some(NEW_GEL),
        "its AMPs follow"
    );
    assert_eq!(r2.counts().previous, r1.counts().previous + 1);
    // US-style text with no dm+d code finds the ingredient's VTM.
    let rx = Some("http://www.nlm.nih.gov/research/umls/rxnorm");
    let by_name = r2
        .resolve(&[(rx, "197361")], Some("Amlodipine 5 MG Oral Tablet"))
        .expect("by name");
    assert_eq!(
        (by_name.level, by_name.matched.name.as_str()),
        (Level::Vtm, "Amlodipine")
    );
    assert!(r2.resolve(&[(rx, "197361")], None).is_none());
}

#[test]
fn a_previous_code_two_concepts_claim_goes_to_the_latest_change() {
    let Some((r1, _)) = releases() else { return };
    // 412096001 is the VTMIDPREV of Co-codaprin (2010-09-30) and Aspirin + Codeine (2012-10-02).
    assert_eq!(
        r1.lookup("412096001").map(|v| v.code.as_str()),
        Some("21300711000001102")
    );
}
