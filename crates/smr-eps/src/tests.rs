//! Fixture tests over every NHS EPS example in `../shared` (skipped when absent) and
//! properties of the plan.

use super::*;
use proptest::prelude::*;

const EXAMPLES: &str = "reference/fhir/nhs-eps-examples";

fn examples() -> Vec<(String, Value)> {
    let Some(dir) = smr_testdata::shared(EXAMPLES) else {
        return Vec::new();
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("example");
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (
                name,
                smr_fhir::json::parse_str(&text).expect("example JSON"),
            )
        })
        .collect()
}

fn example(suffix: &str) -> Option<Value> {
    examples()
        .into_iter()
        .find(|(name, _)| name.ends_with(suffix))
        .map(|(_, v)| v)
}

fn entry_urls(bundle: &Value) -> HashSet<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["fullUrl"].as_str().map(str::to_owned))
        .collect()
}

fn all(_: &str) -> bool {
    true
}

fn none(_: &str) -> bool {
    false
}

/// Every reference a write keeps to one of the message's entries is to an entry written in
/// the same plan; after binding, none is to the patient's placeholder.
fn check_plan(name: &str, bundle: &Value, plan: &mut Plan) {
    let urls = entry_urls(bundle);
    let written: HashSet<String> = plan
        .writes
        .iter()
        .filter_map(|w| w.full_url.clone())
        .collect();
    plan.bind_patient("p1");
    for w in &plan.writes {
        let mut refs = Vec::new();
        references::collect(&w.resource, &mut refs);
        for r in refs {
            assert!(
                !urls.contains(&r) || written.contains(&r),
                "{name}: {} refers to {r}, which is neither written nor contained",
                w.resource_type()
            );
            if let Some(local) = r.strip_prefix('#') {
                let ids: Vec<&str> = w.resource["contained"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["id"].as_str())
                    .collect();
                assert!(ids.contains(&local), "{name}: #{local} is not contained");
            }
        }
        assert!(!w.criteria.is_empty(), "{name}: a write without criteria");
        if matches!(
            w.resource_type(),
            "MedicationRequest" | "MedicationDispense"
        ) {
            assert_eq!(w.resource["subject"]["reference"], "Patient/p1", "{name}");
        }
        assert!(
            w.resource.get("id").is_none(),
            "{name}: the message's id is kept"
        );
    }
}

#[test]
fn every_example_is_planned() {
    let all_examples = examples();
    for (name, bundle) in &all_examples {
        for store in [all as fn(&str) -> bool, none] {
            let mut plan = plan(bundle, &store).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!plan.writes.is_empty(), "{name}: nothing to write");
            check_plan(name, bundle, &mut plan);
        }
        let p = plan(bundle, &all).expect("plan");
        let expected = bundle["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| {
                matches!(
                    e["resource"]["resourceType"].as_str(),
                    Some("MedicationRequest" | "MedicationDispense")
                )
            })
            .count();
        let medication = p
            .writes
            .iter()
            .filter(|w| !matches!(w.role, Role::Directory))
            .count();
        assert_eq!(
            medication, expected,
            "{name}: every order and dispense is written"
        );
    }
}

#[test]
fn cancellation_names_its_line_and_reason() {
    let Some(bundle) = example("cancellations_2-Process-Request-Cancel-200_OK.json") else {
        return;
    };
    let p = plan(&bundle, &all).expect("plan");
    assert_eq!(p.header.event, Event::PrescriptionOrderUpdate);
    assert_eq!(p.nhs_number, "9449304130");
    let cancels: Vec<_> = p
        .writes
        .iter()
        .filter_map(|w| match &w.role {
            Role::Cancellation {
                line,
                status_reason,
            } => Some((line.clone(), status_reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(cancels.len(), 1);
    assert_eq!(
        cancels[0].0,
        LineItem {
            prescription: "24F5DA-A83008-7EFE6Z".into(),
            item: "5cb17f5a-11ac-4e18-825f-6470467238b3".into()
        }
    );
    assert_eq!(
        cancels[0].1.as_ref().expect("reason")["coding"][0]["code"],
        "0002"
    );
}

#[test]
fn dispense_names_its_order_line_and_links_to_the_stored_order() {
    let Some(bundle) = example("single-medication-request_1-Process-Request-Dispense-200_OK.json")
    else {
        return;
    };
    let mut p = plan(&bundle, &all).expect("plan");
    p.bind_patient("p1");
    let w = p
        .writes
        .iter_mut()
        .find(|w| w.resource_type() == "MedicationDispense")
        .expect("a dispense");
    let Role::Dispense {
        prescription: Some((line, local)),
    } = w.role.clone()
    else {
        panic!("no line: {:?}", w.role);
    };
    assert_eq!(line.item, "a54219b8-f741-4c47-b662-e4f8dfa49ab6");
    link_dispense(&mut w.resource, &local, "MedicationRequest/mr1");
    assert_eq!(
        w.resource["authorizingPrescription"][0]["reference"],
        "MedicationRequest/mr1"
    );
    let contained = w.resource["contained"].as_array().expect("performer kept");
    assert!(
        contained
            .iter()
            .all(|c| c["resourceType"] != "MedicationRequest")
    );
}

#[test]
fn cancelling_twice_changes_nothing_the_second_time() {
    let mut mr = json!({"resourceType": "MedicationRequest", "status": "active"});
    let reason = json!({"coding": [{"code": "0002"}]});
    assert!(cancel(&mut mr, Some(&reason)));
    assert_eq!(mr["status"], "cancelled");
    assert!(!cancel(&mut mr, Some(&reason)));
}

#[test]
fn bad_messages_are_named() {
    let header = json!({"resourceType": "MessageHeader", "id": "h1",
        "eventCoding": {"system": MESSAGE_EVENT_SYSTEM, "code": "prescription-order"},
        "source": {"endpoint": "x"}});
    assert_eq!(
        plan(&json!({"resourceType": "Patient"}), &all).err(),
        Some(MessageError::NotABundle("Patient".into()))
    );
    assert_eq!(
        plan(
            &json!({"resourceType": "Bundle", "type": "transaction"}),
            &all
        )
        .err(),
        Some(MessageError::NotAMessage("transaction".into()))
    );
    assert_eq!(
        plan(
            &json!({"resourceType": "Bundle", "type": "message",
                    "entry": [{"resource": {"resourceType": "Patient"}}]}),
            &all
        )
        .err(),
        Some(MessageError::NoHeader)
    );
    let mut unknown = header.clone();
    unknown["eventCoding"]["code"] = json!("prescription-release");
    assert!(matches!(
        plan(
            &json!({"resourceType": "Bundle", "type": "message",
                     "entry": [{"resource": unknown}]}),
            &all
        ),
        Err(MessageError::UnknownEvent(_))
    ));
    assert_eq!(
        plan(
            &json!({"resourceType": "Bundle", "type": "message",
                     "entry": [{"resource": header}]}),
            &all
        )
        .err(),
        Some(MessageError::NoPatient)
    );
}

#[test]
fn response_names_the_request() {
    let header = read_header(&json!({"resourceType": "Bundle", "type": "message",
        "entry": [{"fullUrl": "urn:uuid:0b2c", "resource": {"resourceType": "MessageHeader",
            "eventCoding": {"system": MESSAGE_EVENT_SYSTEM, "code": "dispense-notification"},
            "source": {"endpoint": "https://sender.example"}}}]}))
    .expect("header");
    assert_eq!(header.id, "0b2c");
    let r = response(
        &header,
        ["b", "h", "o"],
        "https://smr.example/fhir/$process-message",
        "2026-01-01T00:00:00Z",
        ResponseCode::FatalError,
        json!({"resourceType": "OperationOutcome", "issue": []}),
    );
    let mh = &r["entry"][0]["resource"];
    assert_eq!(mh["response"]["identifier"], "0b2c");
    assert_eq!(mh["response"]["code"], "fatal-error");
    assert_eq!(
        mh["response"]["details"]["reference"],
        r["entry"][1]["fullUrl"]
    );
    assert_eq!(mh["destination"][0]["endpoint"], "https://sender.example");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// What a message stores does not depend on the order of its entries after the header.
    #[test]
    fn entry_order_does_not_change_the_plan(which in 0usize..64, seed in any::<u64>()) {
        let all_examples = examples();
        if all_examples.is_empty() {
            return Ok(());
        }
        let (name, bundle) = &all_examples[which % all_examples.len()];
        let mut shuffled = bundle.clone();
        if let Some(entries) = shuffled["entry"].as_array_mut() {
            let tail = &mut entries[1..];
            // A seeded Fisher–Yates shuffle (no RNG crate needed).
            let mut state = seed | 1;
            for i in (1..tail.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                tail.swap(i, (state % (i as u64 + 1)) as usize);
            }
        }
        let key = |p: Plan| {
            let mut w: Vec<String> = p
                .writes
                .into_iter()
                .map(|w| format!("{:?}|{}|{:?}", w.criteria, w.resource, w.role))
                .collect();
            w.sort();
            (p.nhs_number, w)
        };
        let a = key(plan(bundle, &all).expect("plan"));
        let b = key(plan(&shuffled, &all).expect("plan"));
        prop_assert_eq!(a, b, "{}", name);
    }
}
