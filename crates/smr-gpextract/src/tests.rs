use proptest::prelude::*;

use super::*;

const HEADER: &str = "nhs_number,record_type,authorisation_id,issue_id,dmd_code,medication_name,dose_text,quantity,quantity_unit,start_date,end_date,issue_date,status,stop_reason,prescriber,practice_ods";

fn read_rows(text: &str, practice: Option<&str>) -> Vec<Result<Row, RowError>> {
    let mut extract = Extract::new(text.as_bytes(), practice).expect("header");
    let mut out = Vec::new();
    while let Some(r) = extract.next_row() {
        out.push(r.expect("no I/O error"));
    }
    out
}

#[test]
fn an_authorisation_is_a_plan_and_an_issue_an_order_under_it() {
    let text = format!(
        "{HEADER}\n\
         9434765919,authorisation,A1,,318902004,Ramipril 5mg capsules,\"One daily, with water\",28,capsule,2026-01-05,,,active,,Dr A Smith,a81001\n\
         9434765919,issue,A1,I1,318902004,Ramipril 5mg capsules,One daily,28,capsule,,,2026-01-05,,,Dr A Smith,A81001\n"
    );
    let rows = read_rows(&text, None);
    let [Ok(plan), Ok(issue)] = &rows[..] else {
        panic!("{rows:?}")
    };
    assert_eq!(plan.line, 2);
    assert_eq!(issue.line, 3);
    assert_eq!(plan.practice, "A81001");
    let p = &plan.resource;
    assert_eq!(p["intent"], "plan");
    assert_eq!(p["status"], "active");
    assert_eq!(
        p["identifier"][0]["system"],
        "https://fhir.smr.nhs.uk/Id/gp-extract/A81001/authorisation"
    );
    assert_eq!(p["identifier"][0]["value"], "A1");
    assert_eq!(
        p["medicationCodeableConcept"]["coding"][0],
        json!({"system": SNOMED, "code": "318902004", "display": "Ramipril 5mg capsules"})
    );
    assert_eq!(p["dosageInstruction"][0]["text"], "One daily, with water");
    assert_eq!(p["dispenseRequest"]["quantity"]["value"].to_string(), "28");
    assert_eq!(p["dispenseRequest"]["quantity"]["unit"], "capsule");
    assert_eq!(p["authoredOn"], "2026-01-05");
    assert_eq!(
        p["subject"]["reference"],
        "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919"
    );
    let i = &issue.resource;
    assert_eq!(i["intent"], "order");
    assert_eq!(i["status"], "completed");
    assert_eq!(
        i["basedOn"][0]["reference"],
        format!("MedicationRequest/{}", plan.id())
    );
    assert_eq!(issue.plan_id(), plan.id());
    assert_eq!(i["requester"]["display"], "Dr A Smith");
}

#[test]
fn a_stopped_authorisation_keeps_its_reason() {
    let text = format!(
        "{HEADER}\n9434765919,authorisation,A2,,320000009,Simvastatin 40mg tablets,One at night,,,2025-01-01,2026-02-01,,stopped,Myalgia,,A81001\n"
    );
    let rows = read_rows(&text, None);
    let [Ok(row)] = &rows[..] else {
        panic!("{rows:?}")
    };
    assert_eq!(row.resource["status"], "stopped");
    assert_eq!(row.resource["statusReason"]["text"], "Myalgia");
    assert_eq!(
        row.resource["dispenseRequest"]["validityPeriod"],
        json!({"start": "2025-01-01", "end": "2026-02-01"})
    );
    assert!(row.resource["dispenseRequest"].get("quantity").is_none());
}

#[test]
fn bad_rows_name_their_line_and_column() {
    let text = format!(
        "{HEADER}\n\
         9434765910,authorisation,A1,,318902004,Ramipril,,,,2026-01-05,,,active,,,A81001\n\
         9434765919,authorisation,A1,,,Ramipril,,,,2026-01-05,,,active,,,A81001\n\
         9434765919,authorisation,A1,,318902004,Ramipril,,,,2026-02-30,,,active,,,A81001\n\
         9434765919,issue,A1,,318902004,Ramipril,,,,,,2026-01-05,,,,A81001\n\
         9434765919,authorisation,A1,,318902004,Ramipril,,,,2026-01-05,,,active,Gone,,A81001\n\
         9434765919,repeat,A1,,318902004,Ramipril,,,,2026-01-05,,,active,,,A81001\n\
         9434765919,authorisation,A1,,318902004,Ramipril,,-1,,2026-01-05,,,active,,,A81001\n\
         9434765919,authorisation\n"
    );
    let got: Vec<(u64, Option<&str>)> = read_rows(&text, None)
        .into_iter()
        .map(|r| {
            let e = r.expect_err("every row is bad");
            (e.line, e.column)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (2, Some("nhs_number")),
            (3, Some("dmd_code")),
            (4, Some("start_date")),
            (5, Some("issue_id")),
            (6, Some("stop_reason")),
            (7, Some("record_type")),
            (8, Some("quantity")),
            (9, None),
        ]
    );
}

#[test]
fn the_header_decides_the_columns_and_the_practice() {
    let without_practice = HEADER.replace(",practice_ods", "");
    assert!(Extract::new(without_practice.as_bytes(), None).is_err());
    let text = format!(
        "{without_practice}\n9434765919,authorisation,A1,,318902004,Ramipril,,,,2026-01-05,,,active,,\n"
    );
    let rows = read_rows(&text, Some("b82002"));
    assert_eq!(rows[0].as_ref().map(|r| r.practice.as_str()), Ok("B82002"));
    assert!(Extract::new("nhs_number,record_type\n".as_bytes(), Some("A81001")).is_err());
    assert!(Extract::new("".as_bytes(), Some("A81001")).is_err());
    // Columns in another order, with a byte order mark and an extra column.
    let reordered = format!(
        "\u{feff}record_type,nhs_number,extra,{}\nauthorisation,9434765919,x,A1,,318902004,Ramipril,,,,2026-01-05,,,active,,,A81001\n",
        HEADER.split(',').skip(2).collect::<Vec<_>>().join(",")
    );
    let rows = read_rows(&reordered, None);
    assert!(rows[0].is_ok(), "{rows:?}");
}

#[test]
fn identifiers_round_trip() {
    let system = identifier_system("A81001", Kind::Issue);
    assert_eq!(
        parse_identifier(&system),
        Some(("A81001".to_owned(), Kind::Issue))
    );
    assert_eq!(parse_identifier("https://example.org/x"), None);
    assert_ne!(
        resource_id("A81001", Kind::Issue, "1"),
        resource_id("A81001", Kind::Authorisation, "1")
    );
    assert_ne!(
        resource_id("A81001", Kind::Issue, "1"),
        resource_id("B82002", Kind::Issue, "1")
    );
}

#[test]
fn dates_are_calendar_dates() {
    assert!(is_date("2024-02-29"));
    assert!(!is_date("2023-02-29"));
    assert!(!is_date("2024-13-01"));
    assert!(!is_date("2024-1-01"));
    assert!(!is_date("2024-01-01T00:00"));
    assert!(is_positive_decimal("0.5"));
    assert!(!is_positive_decimal("0"));
    assert!(!is_positive_decimal("01"));
    assert!(!is_positive_decimal("1."));
}

proptest! {
    /// Whatever the bytes, reading never panics: every row is a row or a row error.
    #[test]
    fn reading_never_panics(body in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut text = format!("{HEADER}\n").into_bytes();
        text.extend(body);
        if let Ok(mut extract) = Extract::new(&text[..], None) {
            let mut n = 0;
            while let Some(r) = extract.next_row() {
                n += 1;
                prop_assert!(n < 10_000);
                if let Ok(Err(e)) = r {
                    prop_assert!(e.line >= 2 || e.line == 0);
                }
            }
        }
    }

    /// Fields of any text never panic the mapping.
    #[test]
    fn mapping_never_panics(fields in proptest::collection::vec(".{0,12}", 16)) {
        let names: Vec<&str> = HEADER.split(',').collect();
        let header = Header::read(&names, false).expect("header");
        let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
        let _ = map_row(&header, &refs, 2, None);
    }

    /// Any valid row's identifier names the practice, kind and id it came from, its id is the
    /// one derived from them, and an issue's basedOn is its authorisation's id.
    #[test]
    fn ids_round_trip(
        practice in "[A-Z][0-9A-Z]{2,9}",
        auth in "[A-Za-z0-9 ,\"|/.-]{1,40}",
        issue in "[A-Za-z0-9 ,\"|/.-]{1,40}",
    ) {
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let text = format!(
            "{HEADER}\n\
             9434765919,authorisation,{a},,318902004,Ramipril,,,,2026-01-05,,,active,,,{practice}\n\
             9434765919,issue,{a},{i},318902004,Ramipril,,,,,,2026-01-06,,,,{practice}\n",
            a = quote(&auth),
            i = quote(&issue),
        );
        let rows = read_rows(&text, None);
        prop_assume!(rows.iter().all(Result::is_ok));
        let plan = rows[0].as_ref().expect("plan");
        let order = rows[1].as_ref().expect("issue");
        for (row, kind, value) in [(plan, Kind::Authorisation, &auth), (order, Kind::Issue, &issue)] {
            let identifier = &row.resource["identifier"][0];
            let system = identifier["system"].as_str().unwrap_or_default();
            prop_assert_eq!(parse_identifier(system), Some((practice.clone(), kind)));
            prop_assert_eq!(identifier["value"].as_str(), Some(value.trim()));
            prop_assert_eq!(row.id(), resource_id(&practice, kind, value.trim()));
        }
        prop_assert_eq!(
            order.resource["basedOn"][0]["reference"].as_str().map(str::to_owned),
            Some(format!("MedicationRequest/{}", plan.id()))
        );
    }
}
