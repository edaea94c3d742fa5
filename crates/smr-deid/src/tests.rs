use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

const NHS: &str = "9434765919";

fn deid() -> Deidentifier {
    Deidentifier::new([7; 32])
}

fn patient() -> Value {
    json!({
        "resourceType": "Patient", "id": "p1",
        "meta": {"versionId": "1", "source": "https://gp.example/emis",
                 "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}]},
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Jane Smith 943 476 5919</div>"},
        "identifier": [
            {"system": NHS_NUMBER_SYSTEM, "value": NHS},
            {"system": "https://hospital.example/mrn", "value": "MRN123"}],
        "name": [{"family": "Smith", "given": ["Jane"]}],
        "telecom": [{"system": "phone", "value": "01865 000000"}],
        "gender": "female",
        "birthDate": "1980-05-17",
        "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1980-05-17T10:00:00Z"}]},
        "address": [{"use": "home", "line": ["1 High Street"], "city": "Oxford", "postalCode": "OX1 2JD", "country": "GB"}],
        "generalPractitioner": [{"reference": "Organization/gp1", "display": "Dr Jones' surgery"}],
        "extension": [{"url": "https://example/nickname", "valueString": "Janey"}]
    })
}

#[test]
fn a_patient_keeps_nothing_that_names_them() {
    let d = deid();
    let out = d.resource(&patient());
    let text = out.to_string();
    for gone in [
        NHS,
        "Smith",
        "Jane",
        "MRN123",
        "01865",
        "High Street",
        "Oxford",
        "2JD",
        "emis",
        "Janey",
        "Jones",
        "p1",
    ] {
        assert!(!text.contains(gone), "{gone} left in {text}");
    }
    assert_eq!(out["id"], json!(d.id("Patient", "p1")));
    assert_eq!(out["birthDate"], "1980-05");
    assert_eq!(
        out["address"],
        json!([{"use": "home", "country": "GB", "postalCode": "OX1"}])
    );
    assert_eq!(
        out["identifier"],
        json!([{"system": PSEUDONYM_SYSTEM, "value": d.nhs_number(NHS)}])
    );
    assert_eq!(
        out["generalPractitioner"],
        json!([{"reference": format!("Organization/{}", d.id("Organization", "gp1"))}])
    );
    assert_eq!(out["gender"], "female");
    assert_eq!(out["meta"]["security"][0]["code"], "PSY");
    assert!(
        out.get("extension").is_none(),
        "a bare extension is removed"
    );
    assert!(out.get("text").is_none());
}

#[test]
fn references_are_rewritten_consistently_and_coded_data_stays() {
    let d = deid();
    let mr = json!({
        "resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
        "identifier": [{"system": "https://eps.example/prescription-id", "value": "ABC-123"}],
        "medicationCodeableConcept": {"coding": [{"system": "http://snomed.info/sct",
            "code": "1234567891", "display": "Paracetamol 500mg tablets"}], "text": "paracetamol for Jane"},
        "subject": {"reference": "http://smr.example/fhir/Patient/p1/_history/3", "display": "Jane Smith"},
        "requester": {"reference": "urn:uuid:0b5e-1"},
        "authoredOn": "2024-03-01",
        "dosageInstruction": [{"text": "one at night, Jane", "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}],
        "note": [{"text": "discussed with daughter"}]
    });
    let out = d.resource(&mr);
    let patient = d.resource(&patient());
    assert_eq!(
        out["subject"]["reference"],
        json!(format!("Patient/{}", patient["id"].as_str().unwrap_or("")))
    );
    assert!(
        out.get("requester").is_none(),
        "an unreadable reference is dropped"
    );
    assert!(out.get("identifier").is_none());
    assert!(out.get("note").is_none());
    assert_eq!(
        out["medicationCodeableConcept"]["coding"][0]["code"], "1234567891",
        "codes stay"
    );
    assert_eq!(
        out["medicationCodeableConcept"]["coding"][0]["display"],
        "Paracetamol 500mg tablets"
    );
    assert!(out["medicationCodeableConcept"].get("text").is_none());
    assert_eq!(
        out["dosageInstruction"][0]["timing"]["repeat"]["frequency"],
        1
    );
    assert!(out["dosageInstruction"][0].get("text").is_none());
    assert_eq!(out["authoredOn"], "2024-03-01");
    assert!(!out.to_string().contains("Jane"));
}

#[test]
fn a_logical_reference_keeps_its_system_with_a_pseudonymous_value() {
    let d = deid();
    let prov = json!({"resourceType": "Provenance", "id": "v1",
        "agent": [{"who": {"identifier": {"system": "https://fhir.smr.nhs.uk/Id/user", "value": "dr.jones"}, "display": "Dr Jones"}}]});
    let out = d.resource(&prov);
    let who = &out["agent"][0]["who"];
    assert_eq!(
        who["identifier"]["system"],
        "https://fhir.smr.nhs.uk/Id/user"
    );
    assert!(
        who["identifier"]["value"]
            .as_str()
            .is_some_and(|v| v.len() == 32 && !v.contains("jones"))
    );
    assert!(who.get("display").is_none());
}

#[test]
fn keys_give_unlinkable_pseudonyms() {
    let a = Deidentifier::new([1; 32]);
    let b = Deidentifier::new([2; 32]);
    assert_eq!(a.nhs_number(NHS), a.nhs_number(NHS));
    assert_ne!(a.nhs_number(NHS), b.nhs_number(NHS));
    assert_ne!(a.id("Patient", "p1"), a.id("Patient", "p2"));
    let p = a.id("Patient", "p1");
    assert_eq!(p.len(), 32);
    assert!(p.bytes().all(|c| (b'a'..=b'p').contains(&c)));
}

#[test]
fn postcodes_and_dates() {
    assert_eq!(outward_code("OX1 2JD").as_deref(), Some("OX1"));
    assert_eq!(outward_code("sw1a2aa").as_deref(), Some("SW1A"));
    assert_eq!(outward_code("M1 1AE").as_deref(), Some("M1"));
    assert_eq!(outward_code("not a postcode"), None);
    assert_eq!(outward_code("12345"), None);
    assert_eq!(year_month("1980-05-17").as_deref(), Some("1980-05"));
    assert_eq!(
        year_month("1980-05-17T10:00:00Z").as_deref(),
        Some("1980-05")
    );
    assert_eq!(year_month("1980").as_deref(), Some("1980"));
    assert_eq!(year_month("May 1980"), None);
}

#[test]
fn nhs_numbers_are_found_in_text() {
    assert!(carries_nhs_number("NHS 9434765919."));
    assert!(carries_nhs_number("nhs no 943 476 5919"));
    assert!(carries_nhs_number("943-476-5919"));
    assert!(!carries_nhs_number("9434765918"), "wrong check digit");
    assert!(
        !carries_nhs_number("19434765919"),
        "part of a longer number"
    );
    assert!(!carries_nhs_number("2024-03-01T10:00:00Z"));
}

/// Valid NHS numbers: nine digits and their check digit (skipping the impossible ones).
fn nhs_numbers() -> impl Strategy<Value = String> {
    proptest::collection::vec(0u8..10, 9).prop_filter_map("no check digit", |d| {
        let digits: Vec<u8> = d.iter().map(|x| b'0' + x).collect();
        let check = nhs_number::check_digit(&digits)?;
        let mut s = String::from_utf8(digits).ok()?;
        s.push(char::from(b'0' + check));
        Some(s)
    })
}

fn spaced(nhs: &str) -> String {
    format!("{} {} {}", &nhs[..3], &nhs[3..6], &nhs[6..])
}

proptest! {
    /// Wherever an NHS number sits in the input (identifier, reference identifier, display,
    /// free text, extension, notes, narrative, a contained resource), it is not in the output.
    #[test]
    fn no_input_nhs_number_reaches_the_output(
        nhs in nhs_numbers(),
        other in nhs_numbers(),
        key in proptest::array::uniform32(any::<u8>()),
        words in "[a-zA-Z ]{0,12}",
        where_ in 0usize..8,
    ) {
        let d = Deidentifier::new(key);
        let free = if where_ % 2 == 0 { format!("{words}{nhs}") } else { format!("{words} {} ", spaced(&nhs)) };
        let mut r = json!({
            "resourceType": "Patient", "id": other.clone(),
            "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": nhs.clone()},
                           {"system": "urn:oid:2.16.840.1.113883.2.1.4.1", "value": other.clone()}],
            "text": {"status": "generated", "div": format!("<div>{free}</div>")},
            "link": [{"other": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": other.clone()}, "display": free.clone()}, "type": "seealso"}],
            "extension": [{"url": "https://x", "valueString": free.clone()}],
            "contained": [{"resourceType": "Observation", "id": "c1", "status": "final",
                "code": {"text": free.clone()}, "valueQuantity": {"value": 1, "unit": free.clone()}}],
            "managingOrganization": {"reference": format!("Organization/{nhs}")}
        });
        r["communication"] = json!([{"language": {"text": free.clone()}}]);
        let out = d.resource(&r).to_string();
        prop_assert!(!out.contains(&nhs), "{} in {}", nhs, out);
        prop_assert!(!out.contains(&spaced(&nhs)));
        prop_assert!(!out.contains(&other), "{} in {}", other, out);
    }

    /// The same patient gets the same pseudonym under one key, in its id and in references.
    #[test]
    fn pseudonyms_are_stable_under_one_key(id in "[A-Za-z0-9-]{1,40}", key in proptest::array::uniform32(any::<u8>())) {
        let d = Deidentifier::new(key);
        let p = d.resource(&json!({"resourceType": "Patient", "id": id.clone()}));
        let r = d.resource(&json!({"resourceType": "Condition", "id": "c", "subject": {"reference": format!("Patient/{id}")}}));
        prop_assert_eq!(format!("Patient/{}", p["id"].as_str().unwrap_or("")), r["subject"]["reference"].as_str().unwrap_or("").to_owned());
    }
}
