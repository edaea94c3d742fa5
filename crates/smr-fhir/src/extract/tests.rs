use super::*;
use crate::datetime::parse_range;
use proptest::prelude::*;
use serde_json::json;
use std::path::PathBuf;

fn fixture(name: &str) -> Value {
    let text = match name {
        "medicationrequest-eps" => include_str!("../../tests/fixtures/medicationrequest-eps.json"),
        "patient-accented" => include_str!("../../tests/fixtures/patient-accented.json"),
        "observation-vitals" => include_str!("../../tests/fixtures/observation-vitals.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).unwrap()
}

fn of<'a>(entries: &'a [IndexEntry], param: &str) -> Vec<&'a IndexValue> {
    entries
        .iter()
        .filter(|e| e.param == param)
        .map(|e| &e.value)
        .collect()
}

fn tok(system: Option<&str>, code: Option<&str>, text: Option<&str>) -> IndexValue {
    IndexValue::Token {
        system: system.map(Into::into),
        code: code.map(Into::into),
        text: text.map(Into::into),
    }
}

fn reference(t: Option<&str>, id: Option<&str>, url: &str) -> IndexValue {
    IndexValue::Reference {
        target_type: t.map(Into::into),
        target_id: id.map(Into::into),
        url: url.into(),
    }
}

fn range(text: &str) -> (i64, i64) {
    parse_range(text).unwrap()
}

#[test]
fn medication_request() {
    let e = extract(&fixture("medicationrequest-eps"));
    assert_eq!(
        of(&e, "code"),
        [&tok(
            Some("http://snomed.info/sct"),
            Some("322237000"),
            Some("Paracetamol 500mg soluble tablets")
        )],
        "text equal to the display is not repeated"
    );
    assert_eq!(of(&e, "status"), [&tok(None, Some("active"), None)]);
    assert_eq!(of(&e, "intent"), [&tok(None, Some("order"), None)]);
    assert_eq!(
        of(&e, "category"),
        [&tok(
            Some("http://terminology.hl7.org/CodeSystem/medicationrequest-category"),
            Some("community"),
            Some("Community")
        )]
    );
    assert_eq!(
        of(&e, "identifier"),
        [&tok(
            Some("https://fhir.nhs.uk/Id/prescription-order-item-number"),
            Some("299c610b-f4f1-4eac-a7d7-4fb6b0556e11"),
            None
        )]
    );
    let subject = reference(Some("Patient"), Some("9990548609"), "Patient/9990548609");
    assert_eq!(of(&e, "subject"), [&subject]);
    assert_eq!(of(&e, "patient"), [&subject]);
    let url = "https://smr.example.org/fhir/PractitionerRole/56166769/_history/2";
    assert_eq!(
        of(&e, "requester"),
        [&reference(Some("PractitionerRole"), Some("56166769"), url)]
    );
    let urn = "urn:uuid:3b4b03a5-52ba-4ba6-9b82-70350aa109d8";
    assert_eq!(of(&e, "intended-performer"), [&reference(None, None, urn)]);
    assert!(
        of(&e, "intended-dispenser").is_empty(),
        "identifier-only reference is not indexed"
    );
    assert!(
        of(&e, "medication").is_empty(),
        "medication is a CodeableConcept here"
    );
    let (low, high) = range("2024-04-30T09:15:00+01:00");
    assert_eq!(of(&e, "authoredon"), [&IndexValue::Date { low, high }]);
    // `date` is `dosageInstruction.timing.event`: each event on its own at its precision,
    // unparsable events skipped, the repeated day kept once.
    let (day_lo, day_hi) = range("2024-05-02");
    let (sec_lo, sec_hi) = range("2024-05-01T08:00:00Z");
    assert_eq!(
        of(&e, "date"),
        [
            &IndexValue::Date {
                low: day_lo,
                high: day_hi
            },
            &IndexValue::Date {
                low: sec_lo,
                high: sec_hi
            }
        ]
    );
    assert_eq!(
        of(&e, "_tag"),
        [&tok(
            Some("https://example.org/tags"),
            Some("imported"),
            None
        )]
    );
    assert_eq!(
        of(&e, "_profile"),
        [&IndexValue::Uri {
            value: "https://fhir.hl7.org.uk/StructureDefinition/UKCore-MedicationRequest".into()
        }]
    );
    assert_eq!(
        of(&e, "_source"),
        [&IndexValue::Uri {
            value: "urn:nhs:eps".into()
        }]
    );
    assert!(of(&e, "_id").is_empty() && of(&e, "_lastUpdated").is_empty());
    // The contained Patient contributes nothing; `#other` references are not indexed.
    assert!(
        e.iter().all(
            |x| !format!("{x:?}").contains("Contained") && !format!("{x:?}").contains("#other")
        )
    );
}

#[test]
fn patient_strings_tokens_dates() {
    let e = extract(&fixture("patient-accented"));
    let family = of(&e, "family");
    assert_eq!(
        family,
        [&IndexValue::String {
            normalized: "bronte ohara".into(),
            exact: "Brontë-O'Hara".into()
        }]
    );
    let given: Vec<_> = of(&e, "given")
        .into_iter()
        .map(|v| match v {
            IndexValue::String { normalized, .. } => normalized.as_str(),
            _ => "",
        })
        .collect();
    assert_eq!(given, ["zoe", "ann"]);
    // `name` indexes every part of every HumanName, each once.
    let name: Vec<_> = of(&e, "name")
        .into_iter()
        .map(|v| match v {
            IndexValue::String { exact, .. } => exact.as_str(),
            _ => "",
        })
        .collect();
    assert_eq!(name, ["Brontë-O'Hara", "Zoë", "Ann", "Ms.", "Zoe Bronte"]);
    assert_eq!(of(&e, "address-city").len(), 1);
    assert_eq!(
        of(&e, "address").len(),
        5,
        "2 lines, city, postalCode, country"
    );
    assert_eq!(of(&e, "address-use"), [&tok(None, Some("home"), None)]);
    assert_eq!(
        of(&e, "identifier"),
        [&tok(
            Some("https://fhir.nhs.uk/Id/nhs-number"),
            Some("9990548609"),
            Some("NHS number")
        )]
    );
    assert_eq!(of(&e, "email"), [&tok(None, Some("zoe@example.org"), None)]);
    assert_eq!(of(&e, "phone"), [&tok(None, Some("0113 496 0000"), None)]);
    assert_eq!(of(&e, "telecom").len(), 2);
    assert_eq!(of(&e, "gender"), [&tok(None, Some("female"), None)]);
    assert_eq!(of(&e, "active"), [&tok(None, Some("true"), None)]);
    assert_eq!(of(&e, "deceased"), [&tok(None, Some("true"), None)]);
    assert_eq!(
        of(&e, "language"),
        [&tok(None, None, Some("Welsh"))],
        "text-only CodeableConcept"
    );
    let (low, high) = range("1974-12-25");
    assert_eq!(of(&e, "birthdate"), [&IndexValue::Date { low, high }]);
    let (low, high) = range("2020-02-29T13:00:00Z");
    assert_eq!(of(&e, "death-date"), [&IndexValue::Date { low, high }]);
    assert_eq!(
        of(&e, "organization"),
        [&reference(
            Some("Organization"),
            Some("A83008"),
            "Organization/A83008"
        )]
    );
    assert!(of(&e, "general-practitioner").is_empty());
    assert_eq!(
        of(&e, "link"),
        [&reference(Some("Patient"), Some("old-1"), "Patient/old-1")]
    );

    // No deceased element: `deceased=false`.
    let alive = extract(&json!({"resourceType": "Patient", "deceasedBoolean": false}));
    assert_eq!(of(&alive, "deceased"), [&tok(None, Some("false"), None)]);
}

#[test]
fn observation_quantity_period_dedup() {
    let e = extract(&fixture("observation-vitals"));
    assert_eq!(
        of(&e, "value-quantity"),
        [&IndexValue::Quantity {
            value: 72.5,
            system: Some("http://unitsofmeasure.org".into()),
            code: Some("kg".into()),
            unit: Some("kg".into())
        }]
    );
    assert_eq!(
        of(&e, "date"),
        [&IndexValue::Date {
            low: range("2024-01-01T10:00:00Z").0,
            high: i64::MAX
        }]
    );
    assert_eq!(
        of(&e, "code"),
        [
            &tok(
                Some("http://loinc.org"),
                Some("29463-7"),
                Some("Body Weight")
            ),
            &tok(None, None, Some("Weight"))
        ]
    );
    assert_eq!(of(&e, "performer").len(), 1, "duplicates removed");
    assert_eq!(of(&e, "subject").len(), 1);
    assert!(
        of(&e, "patient").is_empty(),
        "an untyped urn:uuid cannot be known to be a Patient"
    );
    assert!(of(&e, "value-concept").is_empty());
    assert!(
        of(&e, "code-value-quantity").is_empty(),
        "composites are not indexed"
    );
}

#[test]
fn timing_period_and_choice_dates() {
    let o = json!({"resourceType": "Observation", "effectiveTiming": {"event": ["2024-05-02", "2024-05-01T08:00:00Z", "bad"]}});
    let e = extract(&o);
    assert_eq!(
        of(&e, "date"),
        [&IndexValue::Date {
            low: range("2024-05-01T08:00:00Z").0,
            high: range("2024-05-02").1
        }]
    );
    let o = json!({"resourceType": "Observation", "effectiveTiming": {"repeat": {"boundsPeriod": {"end": "2024"}}}});
    assert_eq!(
        of(&extract(&o), "date"),
        [&IndexValue::Date {
            low: i64::MIN,
            high: range("2024").1
        }]
    );
    let o = json!({"resourceType": "Observation", "effectivePeriod": {"start": "2024-02", "end": "2023"}});
    assert!(
        of(&extract(&o), "date").is_empty(),
        "a backwards period is not indexed"
    );
    let o = json!({"resourceType": "Observation", "effectivePeriod": {"start": "2024-02", "end": "nope"}});
    assert!(of(&extract(&o), "date").is_empty());
    let c = json!({"resourceType": "Condition", "onsetPeriod": {"start": "2020"}, "abatementString": "in remission",
        "recordedDate": "2021-06-01"});
    let e = extract(&c);
    assert_eq!(
        of(&e, "onset-date"),
        [&IndexValue::Date {
            low: range("2020").0,
            high: i64::MAX
        }]
    );
    assert!(of(&e, "onset-age").is_empty());
    let aged = json!({"resourceType": "Condition", "onsetAge": {"value": 3, "code": "a", "system": "http://unitsofmeasure.org"}});
    assert_eq!(
        of(&extract(&aged), "onset-age").len(),
        1,
        "Age is a Quantity"
    );
    assert!(of(&extract(&aged), "onset-date").is_empty());
    assert_eq!(of(&e, "abatement-string").len(), 1);
    assert_eq!(of(&e, "recorded-date").len(), 1);
    let o = json!({"resourceType": "Observation", "valueCodeableConcept": {"text": "Positive"}, "valueString": "x"});
    let e = extract(&o);
    assert_eq!(
        of(&e, "value-concept"),
        [&tok(None, None, Some("Positive"))]
    );
    assert_eq!(
        of(&e, "value-string").len(),
        2,
        "valueString and the concept's text"
    );
}

#[test]
fn unknown_or_malformed_resources_give_nothing() {
    assert!(extract(&json!({})).is_empty());
    assert!(extract(&json!({"resourceType": "Bundle", "id": "x"})).is_empty());
    assert!(
        extract(&json!({"resourceType": "Resource", "meta": {"tag": [{"code": "x"}]}})).is_empty()
    );
    assert!(extract(&json!([1, 2])).is_empty());
    let odd = json!({"resourceType": "MedicationRequest", "status": 3, "subject": "Patient/1",
        "authoredOn": "yesterday", "identifier": {"value": ""}, "category": [null, {"coding": "x"}]});
    let e = extract(&odd);
    assert_eq!(of(&e, "status"), [&tok(None, Some("3"), None)]);
    assert!(of(&e, "authoredon").is_empty());
}

/// Every search parameter defined for the resource's own type (not the `Resource` ones) that
/// is indexed extracts at least one entry from `resource`, which must also be valid: the
/// sample exercises every expression of the type.
fn assert_every_own_param_extracts(resource: &Value) {
    let rt = resource["resourceType"].as_str().unwrap();
    assert_eq!(
        crate::validate::validate_resource(resource),
        Ok(()),
        "{rt} sample is invalid"
    );
    let e = extract(resource);
    let mut checked = 0;
    for def in search_params::iter_params(rt) {
        if def.resource_type != rt || !def.is_indexed() {
            continue;
        }
        assert!(
            !of(&e, &def.code).is_empty(),
            "{rt}.{} ({}) extracted nothing",
            def.code,
            def.expression
        );
        checked += 1;
    }
    assert!(checked > 0, "{rt} has no own indexed parameters");
}

#[test]
fn episode_of_care() {
    let eoc = json!({
        "resourceType": "EpisodeOfCare",
        "status": "active",
        "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/episodeofcare-type",
                              "code": "hacc", "display": "Home and Community Care"}]}],
        "patient": {"reference": "Patient/p1"},
        "managingOrganization": {"reference": "Organization/x"},
        "period": {"start": "2024-03-01"}
    });
    let e = extract(&eoc);
    assert_eq!(
        of(&e, "patient"),
        [&reference(Some("Patient"), Some("p1"), "Patient/p1")]
    );
    assert_eq!(
        of(&e, "organization"),
        [&reference(
            Some("Organization"),
            Some("x"),
            "Organization/x"
        )]
    );
    assert_eq!(of(&e, "status"), [&tok(None, Some("active"), None)]);
    assert_eq!(
        of(&e, "date"),
        [&IndexValue::Date {
            low: range("2024-03-01").0,
            high: i64::MAX
        }],
        "an open-ended period runs to the end of time"
    );
    assert_eq!(
        of(&e, "type"),
        [&tok(
            Some("http://terminology.hl7.org/CodeSystem/episodeofcare-type"),
            Some("hacc"),
            Some("Home and Community Care")
        )]
    );

    let mut full = eoc.clone();
    full["identifier"] = json!([{"system": "https://example.org/episodes", "value": "123"}]);
    full["diagnosis"] = json!([{"condition": {"reference": "Condition/stroke"}, "rank": 1}]);
    full["referralRequest"] = json!([{"reference": "ServiceRequest/r1"}]);
    full["careManager"] = json!({"reference": "Practitioner/14"});
    assert_every_own_param_extracts(&full);
    let e = extract(&full);
    assert_eq!(
        of(&e, "care-manager"),
        [&reference(
            Some("Practitioner"),
            Some("14"),
            "Practitioner/14"
        )]
    );
    // `care-manager` is `careManager.where(resolve() is Practitioner)`.
    full["careManager"] = json!({"reference": "PractitionerRole/14"});
    assert!(of(&extract(&full), "care-manager").is_empty());
}

#[test]
fn immunization() {
    // The shape of the R4 example (http://hl7.org/fhir/R4/immunization-example.html) with a
    // SNOMED CT vaccine.
    let imm = json!({
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": {"coding": [{"system": "http://snomed.info/sct", "code": "1119349007",
                                    "display": "SARS-CoV-2 mRNA vaccine"}]},
        "patient": {"reference": "Patient/p1"},
        "occurrenceDateTime": "2021-01-10T10:30:00Z",
        "primarySource": true,
        "lotNumber": "AAJN11K",
        "performer": [{"function": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0443", "code": "AP"}]},
                       "actor": {"reference": "Practitioner/pr1"}}]
    });
    let e = extract(&imm);
    assert_eq!(
        of(&e, "patient"),
        [&reference(Some("Patient"), Some("p1"), "Patient/p1")]
    );
    assert_eq!(
        of(&e, "vaccine-code"),
        [&tok(
            Some("http://snomed.info/sct"),
            Some("1119349007"),
            Some("SARS-CoV-2 mRNA vaccine")
        )]
    );
    let (low, high) = range("2021-01-10T10:30:00Z");
    assert_eq!(of(&e, "date"), [&IndexValue::Date { low, high }]);
    assert_eq!(of(&e, "status"), [&tok(None, Some("completed"), None)]);
    assert_eq!(
        of(&e, "lot-number"),
        [&IndexValue::String {
            normalized: crate::text::normalize("AAJN11K"),
            exact: "AAJN11K".into()
        }]
    );
    assert_eq!(
        of(&e, "performer"),
        [&reference(
            Some("Practitioner"),
            Some("pr1"),
            "Practitioner/pr1"
        )]
    );
    // `occurrenceString` is a legal occurrence[x] but has no date to index.
    let mut as_text = imm.clone();
    as_text
        .as_object_mut()
        .unwrap()
        .remove("occurrenceDateTime");
    as_text["occurrenceString"] = json!("last winter");
    assert!(of(&extract(&as_text), "date").is_empty());

    let mut full = imm.clone();
    full["identifier"] = json!([{"system": "urn:ietf:rfc:3986", "value": "urn:oid:1.3.6.1.4.1.21367.2005.3.7.1234"}]);
    full["statusReason"] = json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "IMMUNE"}]});
    full["location"] = json!({"reference": "Location/1"});
    full["manufacturer"] = json!({"reference": "Organization/hl7"});
    full["reasonCode"] =
        json!([{"coding": [{"system": "http://snomed.info/sct", "code": "429060002"}]}]);
    full["reasonReference"] = json!([{"reference": "Condition/c1"}]);
    full["reaction"] = json!([{"date": "2021-01-11", "detail": {"reference": "Observation/o1"}}]);
    full["protocolApplied"] = json!([{"series": "Primary course", "doseNumberPositiveInt": 1,
        "targetDisease": [{"coding": [{"system": "http://snomed.info/sct", "code": "840539006"}]}]}]);
    assert_every_own_param_extracts(&full);
}

fn shared(rel: &str) -> Option<PathBuf> {
    smr_testdata::shared(&format!("reference/fhir/{rel}"))
}

fn read(p: &PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn r4_examples() {
    let Some(mr) = shared("r4-examples/medicationrequest0301.json") else {
        return;
    };
    let e = extract(&read(&mr));
    assert!(!of(&e, "status").is_empty());
    assert!(!of(&e, "patient").is_empty(), "{e:#?}");
    assert!(!of(&e, "authoredon").is_empty());
    assert!(!of(&e, "identifier").is_empty());
    if let Some(p) = shared("r4-examples/patient-example.json") {
        let e = extract(&read(&p));
        for param in [
            "name",
            "family",
            "given",
            "birthdate",
            "identifier",
            "gender",
            "telecom",
            "address",
        ] {
            assert!(!of(&e, param).is_empty(), "patient {param}");
        }
    }
    if let Some(p) = shared("r4-examples/observation-example.json") {
        let e = extract(&read(&p));
        for param in [
            "code",
            "value-quantity",
            "date",
            "subject",
            "patient",
            "status",
        ] {
            assert!(!of(&e, param).is_empty(), "observation {param}");
        }
    }
    if let Some(p) = shared("r4-examples/episodeofcare-example.json") {
        let e = extract(&read(&p));
        for param in [
            "patient",
            "organization",
            "status",
            "date",
            "type",
            "identifier",
            "condition",
            "care-manager",
        ] {
            assert!(!of(&e, param).is_empty(), "episodeofcare {param}");
        }
    }
    if let Some(p) = shared("r4-examples/immunization-example.json") {
        let e = extract(&read(&p));
        for param in [
            "patient",
            "vaccine-code",
            "date",
            "status",
            "lot-number",
            "performer",
            "location",
            "manufacturer",
            "reason-code",
            "identifier",
        ] {
            assert!(!of(&e, param).is_empty(), "immunization {param}");
        }
    }
    // Every example of a served type extracts without panicking.
    let Some(dir) = shared("r4-examples") else {
        return;
    };
    let mut n = 0;
    for f in std::fs::read_dir(dir).unwrap() {
        let path = f.unwrap().path();
        if path.extension().is_some_and(|x| x == "json")
            && let Ok(v) = serde_json::from_str::<Value>(&std::fs::read_to_string(&path).unwrap())
        {
            let _ = extract(&v);
            n += 1;
        }
    }
    assert!(n > 0);
}

#[test]
fn eps_bundles() {
    let Some(dir) = shared("nhs-eps-examples") else {
        return;
    };
    let mut requests = 0;
    for f in std::fs::read_dir(dir).unwrap() {
        let path = f.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let bundle = read(&path);
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            let r = &entry["resource"];
            let e = extract(r);
            if r["resourceType"] == "MedicationRequest" {
                requests += 1;
                if r.get("medicationReference").is_some() {
                    assert!(!of(&e, "medication").is_empty(), "{}", path.display());
                    continue;
                }
                assert!(
                    of(&e, "code").iter().any(|v| matches!(v,
                        IndexValue::Token { system: Some(s), code: Some(_), .. } if s == "http://snomed.info/sct")),
                    "{}: {e:#?}",
                    path.display()
                );
                assert!(!of(&e, "subject").is_empty());
                assert!(!of(&e, "intent").is_empty());
            }
        }
    }
    assert!(requests > 0);
}

/// Arbitrary JSON leaning on the element names the expressions use, so deep paths are hit.
fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop::sample::select(vec![
        "code",
        "coding",
        "system",
        "value",
        "display",
        "text",
        "status",
        "subject",
        "reference",
        "type",
        "valueQuantity",
        "valueCodeableConcept",
        "valueDateTime",
        "valuePeriod",
        "effectivePeriod",
        "effectiveDateTime",
        "start",
        "end",
        "event",
        "repeat",
        "boundsPeriod",
        "name",
        "given",
        "family",
        "telecom",
        "identifier",
        "meta",
        "tag",
        "profile",
        "authoredOn",
        "medicationCodeableConcept",
        "medicationReference",
        "deceasedBoolean",
        "deceasedDateTime",
        "timing",
        "dosageInstruction",
        "contained",
        "id",
        "resourceType",
        "unit",
        "address",
        "line",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "Patient/1",
            "urn:uuid:x",
            "#c",
            "2020-02-30",
            "2020-01-01T10:00:00Z",
            "Patient",
            ""
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(5, 96, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6).prop_map(|kv| Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

proptest! {
    #[test]
    fn extraction_never_panics(
        body in arb_json(),
        rt in prop::sample::select(crate::resource_types::SERVED_TYPES.iter().map(|t| t.name).collect::<Vec<_>>()),
    ) {
        let mut resource = match body {
            Value::Object(map) => Value::Object(map),
            other => json!({ "value": other }),
        };
        resource["resourceType"] = json!(rt);
        let entries = extract(&resource);
        for e in &entries {
            if let IndexValue::Date { low, high } = e.value {
                prop_assert!(low < high);
            }
        }
    }
}
