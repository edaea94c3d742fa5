//! The release parser on a tiny inline release in the official shape (element names as in
//! the NHSBSA dm+d XSDs, `vmp_v2_3.xsd` etc.; codes made up where not real).

use std::collections::HashMap;

use super::*;
use crate::medicine::MedicineLookup;

const LOOKUP: &str = r#"<LOOKUP><UNIT_OF_MEASURE><INFO><CD>258684004</CD><DESC>mg</DESC></INFO><INFO><CD>258773002</CD><DESC>ml</DESC></INFO></UNIT_OF_MEASURE><FORM><INFO><CD>385055001</CD><DESC>Tablet</DESC></INFO></FORM><ROUTE><INFO><CD>26643006</CD><DESC>Oral</DESC></INFO></ROUTE><CONTROL_DRUG_CATEGORY><INFO><CD>0000</CD><DESC>No Controlled Drug Status</DESC></INFO><INFO><CD>0001</CD><DESC>Schedule 2 (CD)</DESC></INFO></CONTROL_DRUG_CATEGORY></LOOKUP>"#;
const INGREDIENT: &str = "<INGREDIENT_SUBSTANCES><ING><ISID>387517004</ISID><ISIDPREV>999</ISIDPREV><NM>Paracetamol</NM></ING><ING><ISID>387494007</ISID><NM>Codeine phosphate</NM></ING></INGREDIENT_SUBSTANCES>";
const VTM: &str = "<VIRTUAL_THERAPEUTIC_MOIETIES><VTM><VTMID>10</VTMID><NM>Codeine + Paracetamol</NM></VTM><VTM><VTMID>11</VTMID><VTMIDPREV>12</VTMIDPREV><INVALID>1</INVALID><NM>Paracetamol</NM></VTM></VIRTUAL_THERAPEUTIC_MOIETIES>";
const VMP: &str = "<VIRTUAL_MED_PRODUCTS><VMPS><VMP><VPID>20</VPID><VPIDPREV>21</VPIDPREV><VTMID>10</VTMID><NM>Co-codamol 30mg/500mg tablets</NM></VMP></VMPS>\
<VIRTUAL_PRODUCT_INGREDIENT><VPI><VPID>20</VPID><ISID>999</ISID><STRNT_NMRTR_VAL>500</STRNT_NMRTR_VAL><STRNT_NMRTR_UOMCD>258684004</STRNT_NMRTR_UOMCD></VPI>\
<VPI><VPID>20</VPID><ISID>387494007</ISID><STRNT_NMRTR_VAL>30</STRNT_NMRTR_VAL><STRNT_NMRTR_UOMCD>258684004</STRNT_NMRTR_UOMCD><STRNT_DNMTR_VAL>5</STRNT_DNMTR_VAL><STRNT_DNMTR_UOMCD>258773002</STRNT_DNMTR_UOMCD></VPI></VIRTUAL_PRODUCT_INGREDIENT>\
<DRUG_FORM><DFORM><VPID>20</VPID><FORMCD>385055001</FORMCD></DFORM></DRUG_FORM><DRUG_ROUTE><DROUTE><VPID>20</VPID><ROUTECD>26643006</ROUTECD></DROUTE></DRUG_ROUTE>\
<CONTROL_DRUG_INFO><CONTROL_INFO><VPID>20</VPID><CATCD>0001</CATCD></CONTROL_INFO></CONTROL_DRUG_INFO></VIRTUAL_MED_PRODUCTS>";
const AMP: &str = "<ACTUAL_MEDICINAL_PRODUCTS><AMPS><AMP><APID>30</APID><VPID>20</VPID><NM>Solpadol 30mg/500mg caplets</NM></AMP></AMPS><AP_INGREDIENT><AP_ING><APID>30</APID><ISID>1</ISID></AP_ING></AP_INGREDIENT></ACTUAL_MEDICINAL_PRODUCTS>";
const VMPP: &str = "<VIRTUAL_MED_PRODUCT_PACK><VMPPS><VMPP><VPPID>40</VPPID><NM>Co-codamol 30mg/500mg tablets 100 tablet</NM><VPID>20</VPID></VMPP></VMPPS></VIRTUAL_MED_PRODUCT_PACK>";
const AMPP: &str = "<ACTUAL_MEDICINAL_PROD_PACKS><AMPPS><AMPP><APPID>50</APPID><NM>Solpadol 30mg/500mg caplets 100 tablet</NM><VPPID>40</VPPID><APID>30</APID></AMPP></AMPPS></ACTUAL_MEDICINAL_PROD_PACKS>";
const BNF: &str = "<BNF_DETAILS><VMPS><VMP><VPID>20</VPID><BNF>04070100</BNF><ATC>N02AJ06</ATC></VMP></VMPS></BNF_DETAILS>";

fn files(overrides: &[(&str, &str)]) -> HashMap<String, String> {
    let mut files: HashMap<String, String> = [
        ("f_lookup2_1.xml", LOOKUP),
        ("f_ingredient2_1.xml", INGREDIENT),
        ("f_vtm2_1.xml", VTM),
        ("f_vmp2_1.xml", VMP),
        ("f_amp2_1.xml", AMP),
        ("f_vmpp2_1.xml", VMPP),
        ("f_ampp2_1.xml", AMPP),
        ("f_gtin2_0.xml", "<GTIN_DETAILS/>"),
        ("vmp_v2_3.xsd", "<schema/>"),
    ]
    .into_iter()
    .map(|(n, x)| (n.to_owned(), x.to_owned()))
    .collect();
    for (name, xml) in overrides {
        files.insert((*name).to_owned(), (*xml).to_owned());
    }
    files
}

fn parse(files: &HashMap<String, String>) -> Result<Dictionary, ReleaseError> {
    let names: Vec<&String> = files.keys().collect();
    let layout = locate(&names)?;
    parse_release(&layout, |name| {
        files
            .get(name)
            .map(|x| x.as_bytes())
            .ok_or_else(|| std::io::Error::other("absent"))
    })
}

#[test]
fn a_release_links_every_level_with_strengths_form_route_and_cd() {
    let d = parse(&files(&[])).expect("parses");
    assert_eq!(d.release(), "1");
    let counts = d.counts();
    assert_eq!(
        (counts.vtm, counts.vmp, counts.amp, counts.vmpp, counts.ampp),
        (2, 1, 1, 1, 1)
    );
    assert_eq!(counts.previous, 2, "VTMIDPREV and VPIDPREV");
    let info = d.info("50").expect("the AMPP");
    assert_eq!(info.level, Level::Ampp);
    assert_eq!(info.vmp.as_ref().map(|c| c.code.as_str()), Some("20"));
    assert_eq!(info.vtm.as_ref().map(|c| c.code.as_str()), Some("10"));
    assert_eq!(info.form.as_deref(), Some("Tablet"));
    assert_eq!(info.route.as_deref(), Some("Oral"));
    assert_eq!(info.controlled_drug.as_deref(), Some("Schedule 2 (CD)"));
    assert_eq!(info.bnf, None, "no BNF file");
    assert_eq!(info.source, "dm+d release 1");
    let strengths: Vec<(&str, Option<&str>, Option<&str>)> = info
        .ingredients
        .iter()
        .map(|i| (i.name.as_str(), i.code.as_deref(), i.strength.as_deref()))
        .collect();
    assert_eq!(
        strengths,
        vec![
            ("codeine phosphate", Some("387494007"), Some("30 mg/5 ml")),
            ("paracetamol", Some("387517004"), Some("500 mg")),
        ],
        "an ISIDPREV resolves to the current ingredient"
    );
    assert_eq!(d.lookup("21").map(|c| c.code.as_str()), Some("20"));
    assert_eq!(
        d.lookup("12").map(|c| (c.code.as_str(), c.invalid)),
        Some(("11", true))
    );
}

#[test]
fn the_bnf_file_is_optional_and_used_when_present() {
    let d = parse(&files(&[("f_bnf1_1.xml", BNF)])).expect("parses");
    assert_eq!(
        d.info("30").and_then(|i| i.bnf).as_deref(),
        Some("04070100")
    );
    assert_eq!(
        d.resolve(&[(Some("http://snomed.info/sct"), "21")], None)
            .map(|i| i.matched.code),
        Some("20".to_owned())
    );
}

#[test]
fn missing_mixed_or_doubled_files_are_named() {
    let mut f = files(&[]);
    f.remove("f_amp2_1.xml");
    let e = parse(&f).unwrap_err();
    assert_eq!(e.to_string(), "the dm+d release has no f_amp2_*.xml file");
    let mut f = files(&[]);
    let vtm = f.remove("f_vtm2_1.xml").unwrap_or_default();
    f.insert("f_vtm2_2.xml".into(), vtm);
    assert!(
        matches!(parse(&f), Err(ReleaseError::MixedRelease { file, .. }) if file == "f_vtm2_2.xml")
    );
    let f = files(&[("f_vtm2_1b.xml", VTM)]);
    assert!(matches!(parse(&f), Err(ReleaseError::DuplicateFile { .. })));
}

#[test]
fn malformed_content_names_the_file_and_element() {
    let no_name = VTM.replace("<NM>Paracetamol</NM>", "");
    let e = parse(&files(&[("f_vtm2_1.xml", &no_name)])).unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("f_vtm2_1.xml: <VTM> at byte"), "{text}");
    assert!(text.ends_with("has no <NM>"), "{text}");

    let cut = &VMP[..VMP.len() / 2];
    let e = parse(&files(&[("f_vmp2_1.xml", cut)])).unwrap_err();
    assert!(
        matches!(&e, ReleaseError::Xml { file, .. } if file == "f_vmp2_1.xml"),
        "{e}"
    );

    let dangling = VMP.replace("<DFORM><VPID>20</VPID>", "<DFORM><VPID>77</VPID>");
    let e = parse(&files(&[("f_vmp2_1.xml", &dangling)])).unwrap_err();
    assert!(
        e.to_string().contains("<DFORM>") && e.to_string().contains("VMP 77"),
        "{e}"
    );

    let unknown_unit = VMP.replace("<STRNT_NMRTR_UOMCD>258684004", "<STRNT_NMRTR_UOMCD>1");
    let e = parse(&files(&[("f_vmp2_1.xml", &unknown_unit)])).unwrap_err();
    assert!(e.to_string().contains("UNIT_OF_MEASURE"), "{e}");

    let twice = AMP.replace(
        "</AMPS>",
        "<AMP><APID>20</APID><VPID>20</VPID><NM>x</NM></AMP></AMPS>",
    );
    let e = parse(&files(&[("f_amp2_1.xml", &twice)])).unwrap_err();
    assert!(e.to_string().contains("code 20 is given twice"), "{e}");

    let swapped = files(&[("f_amp2_1.xml", VMPP)]);
    let e = parse(&swapped).unwrap_err();
    assert!(
        matches!(&e, ReleaseError::WrongRoot { file, .. } if file == "f_amp2_1.xml"),
        "{e}"
    );
}
