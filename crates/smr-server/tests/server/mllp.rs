//! Issue 9, HL7 v2 over MLLP: a real TCP client sends the fixture messages
//! (`tests/fixtures/hl7v2/`) to the listener on 127.0.0.1:0, reads each ACK, and the FHIR API
//! shows what was stored and the Provenance naming the sender's setting. Wrong content is
//! `AE` with ERR naming segment and field, unreadable messages and unknown senders `AR`,
//! and nothing of them is stored; a message sent again changes nothing. SQLite and, when
//! configured, PostgreSQL.

use crate::support;

use std::sync::Arc;

use serde_json::Value;
use smr_hl7v2::Message;
use smr_hl7v2::mllp::{Deframer, Frame, frame};
use smr_server::mllp::{MllpConfig, serve_mllp};
use support::{TestApp, match_ids};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

backend_tests! {
    each_message_type_is_acknowledged_and_stored_as_its_sender => each_type;
    an_order_for_an_unknown_patient_is_ae_and_stores_nothing => unknown_patient;
    an_unknown_code_system_is_ae_naming_rxe_2 => unknown_code_system;
    unknown_senders_and_garbage_are_ar_and_store_nothing => rejected;
    messages_sent_again_do_not_duplicate => resent;
    a_cancellation_stops_the_order_it_names => cancellation;
    an_oversized_message_is_ar_and_the_connection_goes_on => oversized;
}

const NHS: &str = "9449305552";
const MAX: usize = 64 * 1024;

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hl7v2")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(name: &str) -> String {
    String::from_utf8(fixture(name)).expect("fixture is UTF-8")
}

struct Listener {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn listen(app: &TestApp) -> Listener {
    let senders = smr_hl7v2::Senders::parse(&text("senders.csv")).expect("senders file");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = MllpConfig {
        max_message_bytes: MAX,
        ..MllpConfig::default()
    };
    let task = tokio::spawn(serve_mllp(
        listener,
        smr_app::App::new(app.store.clone()),
        Arc::new(senders),
        config,
        async {
            let _ = stopped.await;
        },
    ));
    Listener { addr, stop, task }
}

impl Listener {
    async fn client(&self) -> Client {
        Client {
            stream: TcpStream::connect(self.addr).await.expect("connect"),
            deframer: Deframer::new(1 << 20),
        }
    }

    /// Stops the listener and waits for its connections to finish.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("listener task").expect("listener");
    }
}

struct Client {
    stream: TcpStream,
    deframer: Deframer,
}

impl Client {
    /// Sends `bytes` in an MLLP frame and reads the ACK.
    async fn send(&mut self, bytes: &[u8]) -> Message {
        self.stream.write_all(&frame(bytes)).await.expect("send");
        self.ack().await
    }

    async fn ack(&mut self) -> Message {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(Frame::Message(m)) = self.deframer.next_frame() {
                return Message::parse(&m).expect("the ACK is HL7 v2");
            }
            // A bound so a broken listener fails the test instead of hanging it.
            let read = tokio::time::timeout(
                std::time::Duration::from_secs(60),
                self.stream.read(&mut buf),
            )
            .await
            .expect("an ACK within 60 s")
            .expect("read");
            assert!(
                read > 0,
                "the listener closed the connection without an ACK"
            );
            self.deframer.push(&buf[..read]);
        }
    }
}

/// MSA-1, MSA-2 and ERR-2 (as `SEG^n^field`) of an ACK.
fn summary(ack: &Message) -> (String, String, String) {
    let msa = ack.segment("MSA").expect("MSA");
    let err = ack.segment("ERR").map_or(String::new(), |e| {
        let loc = &e.repetitions(2);
        loc.first().map_or(String::new(), |r| {
            r.iter()
                .map(|c| c.first().cloned().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("^")
        })
    });
    (msa.value(1).to_owned(), msa.value(2).to_owned(), err)
}

#[track_caller]
fn expect_aa(ack: &Message) {
    let msa = ack.segment("MSA").expect("MSA");
    assert_eq!(msa.value(1), "AA", "ACK: {}", ack.encode());
}

async fn search(app: &TestApp, query: &str) -> Value {
    app.get(&format!("/fhir/{query}"))
        .await
        .expect(axum::http::StatusCode::OK)
        .json()
}

async fn patient_id(app: &TestApp) -> Option<String> {
    let bundle = search(
        app,
        &format!("Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C{NHS}"),
    )
    .await;
    match_ids(&bundle).into_iter().next()
}

/// The resources of `ty` for the patient.
async fn of_patient(app: &TestApp, ty: &str, patient: &str) -> Vec<Value> {
    let bundle = search(app, &format!("{ty}?patient=Patient/{patient}")).await;
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"].clone())
        .collect()
}

/// Every resource of `ty` in the store.
async fn all(app: &TestApp, ty: &str) -> Vec<String> {
    match_ids(&search(app, &format!("{ty}?_count=100")).await)
}

/// The care setting and ODS code the Provenance of `target` names.
async fn provenance_of(app: &TestApp, target: &str) -> (String, String) {
    let bundle = search(app, &format!("Provenance?target={target}")).await;
    let entries = bundle["entry"].as_array().cloned().unwrap_or_default();
    assert!(!entries.is_empty(), "no Provenance for {target}");
    let agent = &entries[0]["resource"]["agent"][0];
    let setting = agent["role"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["coding"].as_array().cloned().unwrap_or_default())
        .find(|c| c["system"] == "https://fhir.smr.nhs.uk/CodeSystem/care-setting")
        .and_then(|c| c["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let ods = agent["onBehalfOf"]["identifier"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (setting, ods)
}

fn reference(resource: &Value) -> String {
    format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap_or_default(),
        resource["id"].as_str().unwrap_or_default()
    )
}

async fn each_type(app: &TestApp) {
    let listener = listen(app).await;
    let mut client = listener.client().await;

    let ack = client.send(&fixture("adt-a01.hl7")).await;
    assert_eq!(
        summary(&ack),
        ("AA".into(), "RTH-ADT-0001".into(), String::new())
    );
    assert_eq!(ack.msh().get(9, 1), "ACK");
    assert_eq!(
        ack.msh().value(5),
        "PAS",
        "the ACK goes back to the sending application"
    );
    let patient = patient_id(app).await.expect("A01 created the patient");
    let p = app.get(&format!("/fhir/Patient/{patient}")).await.json();
    assert_eq!(p["name"][0]["family"], "JONES");
    assert_eq!(p["birthDate"], "1965-04-12");
    let encounters = of_patient(app, "Encounter", &patient).await;
    assert_eq!(encounters.len(), 1);
    assert_eq!(encounters[0]["status"], "in-progress");
    assert_eq!(
        encounters[0]["period"]["start"],
        "2024-06-05T10:10:00+01:00"
    );
    assert_eq!(
        provenance_of(app, &reference(&encounters[0])).await,
        ("hospital".into(), "RTH".into())
    );

    expect_aa(&client.send(&fixture("adt-a08.hl7")).await);
    let p = app.get(&format!("/fhir/Patient/{patient}")).await.json();
    assert_eq!(
        p["name"][0]["family"], "JONES-SMITH",
        "A08 updates the demographics"
    );
    let encounters = of_patient(app, "Encounter", &patient).await;
    assert_eq!(encounters.len(), 1, "A08 updates the same encounter");
    assert_eq!(
        encounters[0]["location"][0]["location"]["display"],
        "JR-WARD5 BAY1 BED1"
    );

    expect_aa(&client.send(&fixture("rde-o11.hl7")).await);
    let orders = of_patient(app, "MedicationRequest", &patient).await;
    assert_eq!(orders.len(), 1);
    let order = &orders[0];
    assert_eq!(order["status"], "active");
    assert_eq!(
        order["medicationCodeableConcept"]["coding"][0],
        serde_json::json!({"system": "http://snomed.info/sct", "code": "322236009",
                           "display": "Paracetamol 500mg tablets"})
    );
    assert_eq!(order["identifier"][0]["value"], "EPMA-ORD-5001");
    assert_eq!(
        provenance_of(app, &reference(order)).await,
        ("hospital".into(), "RTH".into())
    );

    // The community pharmacy's dispense of the hospital's order.
    expect_aa(&client.send(&fixture("rds-o13.hl7")).await);
    let dispenses = of_patient(app, "MedicationDispense", &patient).await;
    assert_eq!(dispenses.len(), 1);
    assert_eq!(
        dispenses[0]["authorizingPrescription"][0]["reference"],
        reference(order).as_str()
    );
    assert_eq!(dispenses[0]["quantity"]["value"], serde_json::json!(32));
    assert_eq!(
        provenance_of(app, &reference(&dispenses[0])).await,
        ("community-pharmacy".into(), "FH542".into())
    );

    expect_aa(&client.send(&fixture("ras-o17.hl7")).await);
    let given = of_patient(app, "MedicationAdministration", &patient).await;
    assert_eq!(given.len(), 1);
    assert_eq!(given[0]["status"], "completed");
    assert_eq!(given[0]["request"]["reference"], reference(order).as_str());
    assert_eq!(
        provenance_of(app, &reference(&given[0])).await,
        ("hospital".into(), "RTH".into())
    );

    expect_aa(&client.send(&fixture("adt-a03.hl7")).await);
    let encounters = of_patient(app, "Encounter", &patient).await;
    assert_eq!(encounters.len(), 1);
    assert_eq!(encounters[0]["status"], "finished");
    assert_eq!(encounters[0]["period"]["end"], "2024-06-10T11:30:00+01:00");
    assert_eq!(all(app, "Patient").await.len(), 1);
    drop(client);
    listener.stop().await;
}

async fn unknown_patient(app: &TestApp) {
    let listener = listen(app).await;
    let mut client = listener.client().await;
    let ack = client.send(&fixture("rde-unknown-patient.hl7")).await;
    assert_eq!(
        summary(&ack),
        ("AE".into(), "RTH-RDE-0099".into(), "PID^1^3".into())
    );
    let err = ack.segment("ERR").expect("ERR");
    assert!(err.value(8).contains("9449310475"), "{}", err.value(8));
    assert!(all(app, "MedicationRequest").await.is_empty());
    assert!(
        all(app, "Patient").await.is_empty(),
        "an order does not create a patient"
    );
    drop(client);
    listener.stop().await;
}

async fn unknown_code_system(app: &TestApp) {
    let listener = listen(app).await;
    let mut client = listener.client().await;
    expect_aa(&client.send(&fixture("adt-a01.hl7")).await);
    let ack = client.send(&fixture("rde-unknown-code-system.hl7")).await;
    assert_eq!(
        summary(&ack),
        ("AE".into(), "RTH-RDE-0098".into(), "RXE^1^2".into())
    );
    let err = ack.segment("ERR").expect("ERR");
    assert!(err.value(8).contains("LOCALFORMULARY"), "{}", err.value(8));
    assert_eq!(err.get(3, 1), "103");
    assert!(all(app, "MedicationRequest").await.is_empty());
    drop(client);
    listener.stop().await;
}

async fn rejected(app: &TestApp) {
    let listener = listen(app).await;
    let mut client = listener.client().await;
    let ack = client.send(&fixture("unknown-sender.hl7")).await;
    assert_eq!(
        summary(&ack),
        ("AR".into(), "RXX-RDE-0001".into(), "MSH^1^4".into())
    );
    // Garbage, then a message of a type SMR does not take, then one missing its control id.
    for bytes in [
        b"this is not HL7 at all".to_vec(),
        b"MSH|^~\\&|LAB|RTH|SMR|SMR|20240101||ORU^R01|L1|P|2.4\rPID|1".to_vec(),
        b"MSH|^~\\&|PAS|RTH|SMR|SMR|20240101||ADT^A01|||2.4\rPID|1".to_vec(),
    ] {
        let ack = client.send(&bytes).await;
        let (code, _, _) = summary(&ack);
        assert_eq!(code, "AR", "{}", String::from_utf8_lossy(&bytes));
        assert!(ack.segment("ERR").is_some_and(|e| !e.value(8).is_empty()));
    }
    // The connection is still usable, and nothing was stored.
    expect_aa(&client.send(&fixture("adt-a01.hl7")).await);
    assert!(all(app, "MedicationRequest").await.is_empty());
    assert_eq!(all(app, "Patient").await.len(), 1);
    drop(client);
    listener.stop().await;
}

async fn resent(app: &TestApp) {
    let listener = listen(app).await;
    let mut client = listener.client().await;
    for name in ["adt-a01.hl7", "rde-o11.hl7", "rds-o13.hl7", "ras-o17.hl7"] {
        expect_aa(&client.send(&fixture(name)).await);
        expect_aa(&client.send(&fixture(name)).await);
    }
    // The same order again under a new control id: still the one order.
    let again = text("rde-o11.hl7").replace("RTH-RDE-0001", "RTH-RDE-0002");
    expect_aa(&client.send(again.as_bytes()).await);
    let patient = patient_id(app).await.expect("patient");
    for ty in [
        "Encounter",
        "MedicationRequest",
        "MedicationDispense",
        "MedicationAdministration",
    ] {
        let found = of_patient(app, ty, &patient).await;
        assert_eq!(found.len(), 1, "{ty}: {found:?}");
        assert_eq!(found[0]["meta"]["versionId"], "1", "{ty} was written again");
    }
    let p = app.get(&format!("/fhir/Patient/{patient}")).await.json();
    assert_eq!(p["meta"]["versionId"], "1", "the patient was written again");
    assert_eq!(all(app, "Patient").await.len(), 1);
    drop(client);
    listener.stop().await;
}

async fn cancellation(app: &TestApp) {
    let listener = listen(app).await;
    let mut client = listener.client().await;
    expect_aa(&client.send(&fixture("adt-a01.hl7")).await);
    // A cancellation of an order SMR never had is an error, not a new order.
    let cancel = text("rde-o11.hl7")
        .replace("RTH-RDE-0001", "RTH-RDE-0003")
        .replace("ORC|NW|", "ORC|CA|");
    let ack = client.send(cancel.as_bytes()).await;
    assert_eq!(summary(&ack).2, "ORC^1^2");
    assert!(all(app, "MedicationRequest").await.is_empty());
    expect_aa(&client.send(&fixture("rde-o11.hl7")).await);
    expect_aa(&client.send(cancel.as_bytes()).await);
    let patient = patient_id(app).await.expect("patient");
    let orders = of_patient(app, "MedicationRequest", &patient).await;
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["status"], "cancelled");
    assert_eq!(orders[0]["meta"]["versionId"], "2");
    drop(client);
    listener.stop().await;
}

async fn oversized(app: &TestApp) {
    let listener = listen(app).await;
    let mut client = listener.client().await;
    let mut big = text("adt-a01.hl7");
    big.push_str("NTE|1||");
    big.push_str(&"x".repeat(MAX));
    let ack = client.send(big.as_bytes()).await;
    let (code, _, _) = summary(&ack);
    assert_eq!(code, "AR");
    assert!(all(app, "Patient").await.is_empty());
    expect_aa(&client.send(&fixture("adt-a01.hl7")).await);
    drop(client);
    listener.stop().await;
}
