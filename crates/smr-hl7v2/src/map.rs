//! HL7 v2 messages → what SMR stores, as FHIR R4 JSON (a [`Plan`]); the store lookups (is
//! this patient known, which resource has this identifier) are the application layer's.
//!
//! Messages (NHS ITK ADT profile; v2.4 and v2.5 pharmacy messages):
//! - `ADT^A01` admit, `ADT^A03` discharge, `ADT^A08` update: a Patient from PID (NHS number
//!   in PID-3, assigning authority `NHS` or identifier type `NH`) and an Encounter from PV1
//!   (its visit number PV1-19 as identifier; A01 `in-progress`, A03 `finished`, A08 finished
//!   when PV1-45 holds a discharge time).
//! - `RDE^O11` pharmacy order: a MedicationRequest per ORC/RXE group (placer order number
//!   ORC-2 as identifier; ORC-1 sets the status).
//! - `RDS^O13` dispense: a MedicationDispense per ORC/RXD group.
//! - `RAS^O17` administration: a MedicationAdministration per ORC/RXA group.
//!
//! Identifiers are namespaced by the sender (`…/hl7v2/{ODS}/placer-order-number`), so two
//! trusts' order numbers never collide and a message sent twice finds what it wrote.
//! Medicines are coded by dm+d or SNOMED CT (`DMD`, `SCT`, `SNOMED`): dm+d codes are SCTIDs,
//! so both become `http://snomed.info/sct`. Times without an offset are UK local time.
//! Every refusal names the segment, its occurrence and the field (ERR-2).

use serde_json::{Map, Value, json};
use smr_fhir::nhs_number::NHS_NUMBER_SYSTEM;
use smr_fhir::sctid::SNOMED_SYSTEM;

use crate::ack::{Condition, Hl7Error, Location};
use crate::parse::{Message, Repetition, Segment, component};

const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
/// Base of the identifier systems SMR gives what a sender numbers.
pub const ID_BASE: &str = "https://fhir.smr.nhs.uk/Id/hl7v2";

/// The identifier system for what `sender` numbers of `kind` (`placer-order-number`, …).
pub fn id_system(sender: &str, kind: &str) -> String {
    format!("{ID_BASE}/{}/{kind}", sender.to_ascii_uppercase())
}

/// What MSH says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// MSH-4, first component: the sending facility's ODS code.
    pub sender: String,
    /// MSH-10.
    pub control_id: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Admit,
    Discharge,
    Update,
    Order,
    Dispense,
    Administration,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Admit => "ADT^A01",
            Kind::Discharge => "ADT^A03",
            Kind::Update => "ADT^A08",
            Kind::Order => "RDE^O11",
            Kind::Dispense => "RDS^O13",
            Kind::Administration => "RAS^O17",
        }
    }
}

/// What a message asks SMR to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub header: Header,
    /// The patient by NHS number, and where it was read (for "unknown patient").
    pub nhs_number: String,
    pub patient_location: Location,
    /// ADT: the Patient as PID describes it (created when unknown; its demographics merged into
    /// a known one by [`merge_demographics`]). `None` for pharmacy messages, whose patient
    /// must already be known.
    pub patient: Option<Value>,
    /// The other resources, each written by its identifier (created, or updated when changed).
    pub items: Vec<Item>,
}

/// One resource to write by identifier; the application sets its `subject`.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub resource: Value,
    pub system: String,
    pub value: String,
    /// Where the identifier was read (errors about this resource name it).
    pub location: Location,
    /// The order must already exist (a cancellation or change of an order SMR never had).
    pub must_exist: bool,
    /// Only the status changes (a cancellation, discontinuation or hold): the stored order
    /// keeps everything else, whatever the message repeats of it.
    pub status_only: bool,
    /// A MedicationRequest to link to, when SMR holds it: (element, identifier system, value).
    pub link: Option<(&'static str, String, String)>,
}

/// Reads MSH: sender, control id, message type. Every failure here is an `AR`.
pub fn header(m: &Message) -> Result<Header, Hl7Error> {
    let msh = m.msh();
    let at = |field| Some(Location::new("MSH", 1, field));
    let sender = msh.get(4, 1).trim().to_owned();
    if sender.is_empty() {
        return Err(Hl7Error::reject(
            at(4),
            Condition::RequiredFieldMissing,
            "MSH-4 (sending facility) is empty: the sender cannot be identified",
        ));
    }
    let control_id = msh.value(10).trim().to_owned();
    if control_id.is_empty() {
        return Err(Hl7Error::reject(
            at(10),
            Condition::RequiredFieldMissing,
            "MSH-10 (message control id) is empty",
        ));
    }
    let version = msh.value(12).trim();
    if !matches!(version, "2.4" | "2.5" | "2.5.1") {
        return Err(Hl7Error::reject(
            at(12),
            Condition::UnsupportedVersion,
            format!("MSH-12: version '{version}' is not supported (2.4, 2.5, 2.5.1)"),
        ));
    }
    let (code, trigger) = (msh.get(9, 1).trim(), msh.get(9, 2).trim());
    let kind = match (code, trigger) {
        ("ADT", "A01") => Kind::Admit,
        ("ADT", "A03") => Kind::Discharge,
        ("ADT", "A08") => Kind::Update,
        ("RDE", "O11") => Kind::Order,
        ("RDS", "O13") => Kind::Dispense,
        ("RAS", "O17") => Kind::Administration,
        ("ADT" | "RDE" | "RDS" | "RAS", _) => {
            return Err(Hl7Error::reject(
                at(9),
                Condition::UnsupportedEventCode,
                format!(
                    "MSH-9: event {code}^{trigger} is not supported (ADT^A01/A03/A08, RDE^O11, RDS^O13, RAS^O17)"
                ),
            ));
        }
        _ => {
            return Err(Hl7Error::reject(
                at(9),
                Condition::UnsupportedMessageType,
                format!("MSH-9: message type '{code}' is not supported (ADT, RDE, RDS, RAS)"),
            ));
        }
    };
    Ok(Header {
        sender,
        control_id,
        kind,
    })
}

/// The whole plan of a message whose header has been read.
pub fn plan(m: &Message, header: Header) -> Result<Plan, Hl7Error> {
    let (pid_seq, pid) = occurrence(m, "PID").ok_or_else(|| {
        Hl7Error::content(
            Location::new("PID", 1, 3),
            Condition::SegmentSequence,
            "the message has no PID segment: the patient cannot be identified",
        )
    })?;
    let patient_location = Location::new("PID", pid_seq, 3);
    let nhs_number = nhs_number(pid, &patient_location)?;
    let sender = header.sender.clone();
    let mut plan = Plan {
        header,
        nhs_number: nhs_number.clone(),
        patient_location,
        patient: None,
        items: Vec::new(),
    };
    match plan.header.kind {
        Kind::Admit | Kind::Discharge | Kind::Update => {
            plan.patient = Some(patient(pid, pid_seq, &nhs_number)?);
            let pv1 = occurrence(m, "PV1");
            match (pv1, plan.header.kind) {
                (Some((seq, pv1)), kind) if kind != Kind::Update || !pv1.value(19).is_empty() => {
                    plan.items.push(encounter(pv1, seq, kind, &sender)?);
                }
                (None, Kind::Admit | Kind::Discharge) => {
                    return Err(Hl7Error::content(
                        Location::new("PV1", 1, 19),
                        Condition::SegmentSequence,
                        "an admission or discharge needs a PV1 segment with the visit number",
                    ));
                }
                // An A08 without a visit updates the patient only.
                _ => {}
            }
        }
        Kind::Order | Kind::Dispense | Kind::Administration => {
            for group in groups(m) {
                plan.items.push(match plan.header.kind {
                    Kind::Order => order(&group, &sender)?,
                    Kind::Dispense => dispense(&group, &sender)?,
                    _ => administration(&group, &sender)?,
                });
            }
            if plan.items.is_empty() {
                let (seg, what) = match plan.header.kind {
                    Kind::Order => ("RXE", "an order (ORC with RXE)"),
                    Kind::Dispense => ("RXD", "a dispense (ORC with RXD)"),
                    _ => ("RXA", "an administration (ORC with RXA)"),
                };
                return Err(Hl7Error::content(
                    Location::new(seg, 1, 1),
                    Condition::SegmentSequence,
                    format!("the message holds no {what}"),
                ));
            }
        }
    }
    Ok(plan)
}

/// The first segment `id` and its occurrence number (1).
fn occurrence<'a>(m: &'a Message, id: &str) -> Option<(usize, &'a Segment)> {
    m.segment(id).map(|s| (1, s))
}

/// PID-3's NHS number: the repetition whose assigning authority (CX-4) is `NHS` or whose
/// identifier type (CX-5) is `NH`, with a valid check digit.
fn nhs_number(pid: &Segment, at: &Location) -> Result<String, Hl7Error> {
    let found = pid.repetitions(3).iter().find(|rep| {
        component(rep, 4).eq_ignore_ascii_case("NHS")
            || component(rep, 5).eq_ignore_ascii_case("NH")
    });
    let Some(rep) = found else {
        return Err(Hl7Error::content(
            at.clone(),
            Condition::RequiredFieldMissing,
            "PID-3 holds no NHS number (an identifier with assigning authority NHS or type NH)",
        ));
    };
    let value: String = component(rep, 1)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if !smr_fhir::nhs_number::is_valid(&value) {
        return Err(Hl7Error::content(
            at.clone(),
            Condition::DataTypeError,
            format!(
                "PID-3: '{value}' is not a valid NHS number (10 digits, modulus 11 check digit)"
            ),
        ));
    }
    Ok(value)
}

fn patient(pid: &Segment, seq: usize, nhs: &str) -> Result<Value, Hl7Error> {
    let mut p = json!({
        "resourceType": "Patient",
        "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": nhs}],
    });
    let names: Vec<Value> = pid.repetitions(5).iter().filter_map(name).collect();
    if !names.is_empty() {
        p["name"] = Value::Array(names);
    }
    let gender = match pid.value(8).trim() {
        "" => None,
        "M" => Some("male"),
        "F" => Some("female"),
        "O" | "A" => Some("other"),
        _ => Some("unknown"),
    };
    if let Some(g) = gender {
        p["gender"] = json!(g);
    }
    let birth = pid.value(7).trim();
    if !birth.is_empty() {
        let date = birth.get(..8).filter(|_| birth.len() >= 8).unwrap_or(birth);
        let text = hl7_date(date).ok_or_else(|| {
            Hl7Error::content(
                Location::new("PID", seq, 7),
                Condition::DataTypeError,
                format!("PID-7: '{birth}' is not a date (YYYYMMDD)"),
            )
        })?;
        p["birthDate"] = json!(text);
    }
    let addresses: Vec<Value> = pid.repetitions(11).iter().filter_map(address).collect();
    if !addresses.is_empty() {
        p["address"] = Value::Array(addresses);
    }
    Ok(p)
}

/// XPN: family^given^middle^suffix^prefix^degree^type.
fn name(rep: &Repetition) -> Option<Value> {
    let mut n = Map::new();
    let family = component(rep, 1).trim();
    let given: Vec<&str> = [component(rep, 2), component(rep, 3)]
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if family.is_empty() && given.is_empty() {
        return None;
    }
    let usage = match component(rep, 7) {
        "L" | "" => "official",
        "D" => "usual",
        "M" => "maiden",
        "N" | "A" => "nickname",
        _ => "official",
    };
    n.insert("use".into(), json!(usage));
    if !family.is_empty() {
        n.insert("family".into(), json!(family));
    }
    if !given.is_empty() {
        n.insert("given".into(), json!(given));
    }
    let prefix = component(rep, 5).trim();
    if !prefix.is_empty() {
        n.insert("prefix".into(), json!([prefix]));
    }
    let suffix = component(rep, 4).trim();
    if !suffix.is_empty() {
        n.insert("suffix".into(), json!([suffix]));
    }
    Some(Value::Object(n))
}

/// XAD: street^other^city^state^zip^country.
fn address(rep: &Repetition) -> Option<Value> {
    let mut a = Map::new();
    let lines: Vec<&str> = [component(rep, 1), component(rep, 2)]
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if !lines.is_empty() {
        a.insert("line".into(), json!(lines));
    }
    for (c, key) in [
        (3, "city"),
        (4, "district"),
        (5, "postalCode"),
        (6, "country"),
    ] {
        let v = component(rep, c).trim();
        if !v.is_empty() {
            a.insert(key.into(), json!(v));
        }
    }
    (!a.is_empty()).then_some(Value::Object(a))
}

/// A known Patient with PID's demographics (name, gender, birth date, address) put over its
/// own; everything else SMR holds (GP, links, extensions) is kept.
pub fn merge_demographics(existing: &Value, from_pid: &Value) -> Value {
    let mut merged = existing.clone();
    if let (Some(target), Some(source)) = (merged.as_object_mut(), from_pid.as_object()) {
        for key in ["name", "gender", "birthDate", "address"] {
            if let Some(v) = source.get(key) {
                target.insert(key.into(), v.clone());
            }
        }
    }
    merged
}

fn encounter(pv1: &Segment, seq: usize, kind: Kind, sender: &str) -> Result<Item, Hl7Error> {
    let at = |field| Location::new("PV1", seq, field);
    let visit = pv1.value(19).trim().to_owned();
    if visit.is_empty() {
        return Err(Hl7Error::content(
            at(19),
            Condition::RequiredFieldMissing,
            "PV1-19 (visit number) is empty: the encounter cannot be identified",
        ));
    }
    let (class, display) = match pv1.value(2).trim() {
        "I" | "" => ("IMP", "inpatient encounter"),
        "O" => ("AMB", "ambulatory"),
        "E" => ("EMER", "emergency"),
        "P" => ("PRENC", "pre-admission"),
        "R" | "B" | "C" | "N" | "U" => ("IMP", "inpatient encounter"),
        other => {
            return Err(Hl7Error::content(
                at(2),
                Condition::TableValueNotFound,
                format!("PV1-2: patient class '{other}' is not one of I, O, E, P"),
            ));
        }
    };
    let start = optional_time(pv1, seq, "PV1", 44)?;
    let end = optional_time(pv1, seq, "PV1", 45)?;
    let status = match kind {
        Kind::Admit => "in-progress",
        Kind::Discharge => "finished",
        _ if end.is_some() => "finished",
        _ => "in-progress",
    };
    let system = id_system(sender, "visit-number");
    let mut e = json!({
        "resourceType": "Encounter",
        "identifier": [{"system": system, "value": visit}],
        "status": status,
        "class": {"system": ACT_CODE, "code": class, "display": display},
        "serviceProvider": {"identifier": {"system": ODS_SYSTEM, "value": sender}},
    });
    let mut period = Map::new();
    if let Some(s) = start {
        period.insert("start".into(), json!(s));
    }
    if let Some(s) = end {
        period.insert("end".into(), json!(s));
    }
    if !period.is_empty() {
        e["period"] = Value::Object(period);
    }
    let ward: Vec<&str> = (1..=3)
        .map(|c| pv1.get(3, c).trim())
        .filter(|s| !s.is_empty())
        .collect();
    if !ward.is_empty() {
        e["location"] = json!([{"location": {"display": ward.join(" ")}}]);
    }
    Ok(Item {
        resource: e,
        system,
        value: visit,
        location: at(19),
        must_exist: false,
        status_only: false,
        link: None,
    })
}

/// An ORC and the segments after it up to the next ORC, with their occurrence numbers.
struct Group<'a> {
    orc: (usize, &'a Segment),
    rest: Vec<(usize, &'a Segment)>,
}

impl<'a> Group<'a> {
    fn get(&self, id: &str) -> Option<(usize, &'a Segment)> {
        self.rest.iter().find(|(_, s)| s.id == id).copied()
    }
}

fn groups(m: &Message) -> Vec<Group<'_>> {
    let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut out: Vec<Group<'_>> = Vec::new();
    for seg in &m.segments {
        let n = counts.entry(seg.id.as_str()).or_default();
        *n += 1;
        if seg.id == "ORC" {
            out.push(Group {
                orc: (*n, seg),
                rest: Vec::new(),
            });
        } else if let Some(g) = out.last_mut() {
            g.rest.push((*n, seg));
        }
    }
    out
}

/// The group's order number (ORC-2, else ORC-3) and where it was read.
fn order_number(g: &Group<'_>) -> Result<(String, Location, bool), Hl7Error> {
    let (seq, orc) = g.orc;
    let placer = orc.get(2, 1).trim();
    if !placer.is_empty() {
        return Ok((placer.to_owned(), Location::new("ORC", seq, 2), true));
    }
    let filler = orc.get(3, 1).trim();
    if !filler.is_empty() {
        return Ok((filler.to_owned(), Location::new("ORC", seq, 3), false));
    }
    Err(Hl7Error::content(
        Location::new("ORC", seq, 2),
        Condition::RequiredFieldMissing,
        "ORC-2 (placer order number) and ORC-3 (filler order number) are both empty",
    ))
}

/// The identifier system of the order a dispense or administration follows: the placer's
/// namespace, named by ORC-2's universal id (EI-3, an ODS code) when another organisation
/// placed the order (a hospital's order dispensed by a community pharmacy), else the sender's.
fn placer_system(g: &Group<'_>, sender: &str) -> String {
    let placer_org = g.orc.1.get(2, 3).trim();
    let org = if placer_org.is_empty() {
        sender
    } else {
        placer_org
    };
    id_system(org, "placer-order-number")
}

fn required<'a>(g: &Group<'a>, id: &str, what: &str) -> Result<(usize, &'a Segment), Hl7Error> {
    g.get(id).ok_or_else(|| {
        Hl7Error::content(
            Location::new(id, g.orc.0, 1),
            Condition::SegmentSequence,
            format!("ORC {} is not followed by {id} ({what})", g.orc.0),
        )
    })
}

fn order(g: &Group<'_>, sender: &str) -> Result<Item, Hl7Error> {
    let (orc_seq, orc) = g.orc;
    let (rxe_seq, rxe) = required(g, "RXE", "the pharmacy order")?;
    let placer = orc.get(2, 1).trim().to_owned();
    if placer.is_empty() {
        return Err(Hl7Error::content(
            Location::new("ORC", orc_seq, 2),
            Condition::RequiredFieldMissing,
            "ORC-2 (placer order number) is empty: the order cannot be identified",
        ));
    }
    let control = orc.value(1).trim();
    let (status, must_exist) = match control {
        "NW" | "SN" | "RP" | "RL" | "RE" | "OK" | "SC" => ("active", false),
        "XO" | "XX" => ("active", true),
        "CA" | "OC" | "CR" => ("cancelled", true),
        "DC" | "OD" | "DR" => ("stopped", true),
        "HD" | "OH" | "HR" => ("on-hold", true),
        "" => {
            return Err(Hl7Error::content(
                Location::new("ORC", orc_seq, 1),
                Condition::RequiredFieldMissing,
                "ORC-1 (order control) is empty",
            ));
        }
        other => {
            return Err(Hl7Error::content(
                Location::new("ORC", orc_seq, 1),
                Condition::TableValueNotFound,
                format!(
                    "ORC-1: order control '{other}' is not supported (NW, XO, CA, DC, HD, RL, …)"
                ),
            ));
        }
    };
    // A completed order (ORC-5 CM) is over, whatever the control code.
    let status = if orc.value(5).trim() == "CM" {
        "completed"
    } else {
        status
    };
    let medicine = medicine(rxe, "RXE", rxe_seq, 2)?;
    let system = id_system(sender, "placer-order-number");
    let mut mr = json!({
        "resourceType": "MedicationRequest",
        "identifier": [{"system": system, "value": placer}],
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": medicine,
    });
    if let Some(t) = optional_time(orc, orc_seq, "ORC", 9)? {
        mr["authoredOn"] = json!(t);
    }
    if let Some(who) = person(orc, 12) {
        mr["requester"] = json!({"display": who});
    }
    let dose = quantity(rxe, "RXE", rxe_seq, 3, 5)?;
    let route = g
        .get("RXR")
        .map(|(_, r)| coded_text(r, 1))
        .filter(|s| !s.is_empty());
    let frequency = rxe.get(1, 2).trim().to_owned();
    let instructions = coded_text(rxe, 7);
    let mut dosage = Map::new();
    let text: Vec<String> = [
        dose.as_ref()
            .map(|(v, u)| format!("{v} {u}").trim().to_owned()),
        route.clone(),
        (!frequency.is_empty()).then(|| frequency.clone()),
        (!instructions.is_empty()).then(|| instructions.clone()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !text.is_empty() {
        dosage.insert("text".into(), json!(text.join(" ")));
    }
    if let Some(r) = route {
        dosage.insert("route".into(), json!({"text": r}));
    }
    if let Some((value, unit)) = dose {
        dosage.insert(
            "doseAndRate".into(),
            json!([{"doseQuantity": simple_quantity(value, &unit)}]),
        );
    }
    if !dosage.is_empty() {
        mr["dosageInstruction"] = json!([Value::Object(dosage)]);
    }
    Ok(Item {
        resource: mr,
        system,
        value: placer,
        location: Location::new("ORC", orc_seq, 2),
        must_exist,
        status_only: must_exist && status != "active",
        link: None,
    })
}

fn dispense(g: &Group<'_>, sender: &str) -> Result<Item, Hl7Error> {
    let (rxd_seq, rxd) = required(g, "RXD", "the dispense")?;
    let (number, location, is_placer) = order_number(g)?;
    let counter = match rxd.value(1).trim() {
        "" => "1",
        c => c,
    };
    let system = id_system(sender, "dispense");
    let value = format!("{number}-{counter}");
    let medicine = medicine(rxd, "RXD", rxd_seq, 2)?;
    let when = optional_time(rxd, rxd_seq, "RXD", 3)?.ok_or_else(|| {
        Hl7Error::content(
            Location::new("RXD", rxd_seq, 3),
            Condition::RequiredFieldMissing,
            "RXD-3 (date/time dispensed) is empty",
        )
    })?;
    let mut md = json!({
        "resourceType": "MedicationDispense",
        "identifier": [{"system": system, "value": value}],
        "status": "completed",
        "medicationCodeableConcept": medicine,
        "performer": [{"actor": {"identifier": {"system": ODS_SYSTEM, "value": sender}}}],
        "whenHandedOver": when,
    });
    if let Some((v, u)) = quantity(rxd, "RXD", rxd_seq, 4, 5)? {
        md["quantity"] = simple_quantity(v, &u);
    }
    Ok(Item {
        resource: md,
        system,
        value,
        location,
        must_exist: false,
        status_only: false,
        link: is_placer.then(|| ("authorizingPrescription", placer_system(g, sender), number)),
    })
}

fn administration(g: &Group<'_>, sender: &str) -> Result<Item, Hl7Error> {
    let (rxa_seq, rxa) = required(g, "RXA", "the administration")?;
    let (number, location, is_placer) = order_number(g)?;
    let give = match rxa.value(1).trim() {
        "" => "0",
        c => c,
    };
    let admin = match rxa.value(2).trim() {
        "" => "1",
        c => c,
    };
    let system = id_system(sender, "administration");
    let value = format!("{number}-{give}-{admin}");
    let at = |f| Location::new("RXA", rxa_seq, f);
    let start = optional_time(rxa, rxa_seq, "RXA", 3)?.ok_or_else(|| {
        Hl7Error::content(
            at(3),
            Condition::RequiredFieldMissing,
            "RXA-3 (start of administration) is empty",
        )
    })?;
    let end = optional_time(rxa, rxa_seq, "RXA", 4)?;
    let medicine = medicine(rxa, "RXA", rxa_seq, 5)?;
    let (status, reason) = match rxa.value(20).trim() {
        "" | "CP" | "PA" => ("completed", None),
        "RE" => ("not-done", Some("refused")),
        "NA" => ("not-done", Some("not administered")),
        other => {
            return Err(Hl7Error::content(
                at(20),
                Condition::TableValueNotFound,
                format!("RXA-20: completion status '{other}' is not one of CP, RE, NA, PA"),
            ));
        }
    };
    let mut ma = json!({
        "resourceType": "MedicationAdministration",
        "identifier": [{"system": system, "value": value}],
        "status": status,
        "medicationCodeableConcept": medicine,
    });
    match end.filter(|e| *e != start) {
        Some(end) => ma["effectivePeriod"] = json!({"start": start, "end": end}),
        None => ma["effectiveDateTime"] = json!(start),
    }
    if let Some(r) = reason {
        ma["statusReason"] = json!([{"text": r}]);
    }
    let mut dosage = Map::new();
    if let Some(route) = g
        .get("RXR")
        .map(|(_, r)| coded_text(r, 1))
        .filter(|s| !s.is_empty())
    {
        dosage.insert("route".into(), json!({"text": route}));
    }
    if let Some((v, u)) = quantity(rxa, "RXA", rxa_seq, 6, 7)? {
        dosage.insert("dose".into(), simple_quantity(v, &u));
    }
    if !dosage.is_empty() {
        ma["dosage"] = Value::Object(dosage);
    }
    if let Some(who) = person(rxa, 10) {
        ma["performer"] = json!([{"actor": {"display": who}}]);
    }
    Ok(Item {
        resource: ma,
        system,
        value,
        location,
        must_exist: false,
        status_only: false,
        link: is_placer.then(|| ("request", placer_system(g, sender), number)),
    })
}

/// A CE/CWE medicine code (code^text^system^alt code^alt text^alt system) as a
/// CodeableConcept: dm+d or SNOMED CT, in the first triplet or the alternate one.
fn medicine(seg: &Segment, id: &str, seq: usize, field: usize) -> Result<Value, Hl7Error> {
    let at = Location::new(id, seq, field);
    let Some(rep) = seg.repetitions(field).first() else {
        return Err(Hl7Error::content(
            at,
            Condition::RequiredFieldMissing,
            format!("{id}-{field} (the medicine's code) is empty"),
        ));
    };
    let known = |s: &str| {
        let s = s.trim().to_ascii_uppercase();
        matches!(
            s.as_str(),
            "DMD" | "SCT" | "SNOMED" | "SNOMEDCT" | "SNOMED-CT"
        )
    };
    let triplets = [(1, 2, 3), (4, 5, 6)];
    let chosen = triplets
        .iter()
        .find(|(c, _, s)| !component(rep, *c).trim().is_empty() && known(component(rep, *s)));
    let Some(&(c, t, _)) = chosen else {
        let code = component(rep, 1).trim();
        let system = component(rep, 3).trim();
        let (condition, text) = if code.is_empty() {
            (
                Condition::RequiredFieldMissing,
                format!("{id}-{field}: the medicine has no code"),
            )
        } else if system.is_empty() {
            (
                Condition::RequiredFieldMissing,
                format!(
                    "{id}-{field}: code '{code}' has no coding system (DMD for dm+d, SCT or SNOMED for SNOMED CT)"
                ),
            )
        } else {
            (
                Condition::TableValueNotFound,
                format!(
                    "{id}-{field}: coding system '{system}' is not known (DMD for dm+d, SCT or SNOMED for SNOMED CT)"
                ),
            )
        };
        return Err(Hl7Error::content(at, condition, text));
    };
    let code = component(rep, c).trim();
    if let Some(problem) = smr_fhir::sctid::sctid_problem(code) {
        return Err(Hl7Error::content(
            at,
            Condition::DataTypeError,
            format!("{id}-{field}: '{code}' is not a SNOMED CT identifier: it {problem}"),
        ));
    }
    let display = component(rep, t).trim();
    let mut coding = json!({"system": SNOMED_SYSTEM, "code": code});
    let mut concept = Map::new();
    if !display.is_empty() {
        coding["display"] = json!(display);
        concept.insert("coding".into(), json!([coding]));
        concept.insert("text".into(), json!(display));
    } else {
        concept.insert("coding".into(), json!([coding]));
    }
    Ok(Value::Object(concept))
}

/// A CE field's text (component 2), else its code.
fn coded_text(seg: &Segment, field: usize) -> String {
    let text = seg.get(field, 2).trim();
    if text.is_empty() {
        seg.get(field, 1).trim().to_owned()
    } else {
        text.to_owned()
    }
}

/// An XCN person (id^family^given^…^prefix) as display text.
fn person(seg: &Segment, field: usize) -> Option<String> {
    let parts: Vec<&str> = [seg.get(field, 6), seg.get(field, 3), seg.get(field, 2)]
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() {
        let id = seg.get(field, 1).trim();
        return (!id.is_empty()).then(|| id.to_owned());
    }
    Some(parts.join(" "))
}

/// An amount (NM field) and its units (CE field), if the amount is given.
fn quantity(
    seg: &Segment,
    id: &str,
    seq: usize,
    amount: usize,
    units: usize,
) -> Result<Option<(serde_json::Number, String)>, Hl7Error> {
    let text = seg.value(amount).trim();
    if text.is_empty() {
        return Ok(None);
    }
    let number = decimal(text).ok_or_else(|| {
        Hl7Error::content(
            Location::new(id, seq, amount),
            Condition::DataTypeError,
            format!("{id}-{amount}: '{text}' is not a number"),
        )
    })?;
    Ok(Some((number, coded_text(seg, units))))
}

fn simple_quantity(value: serde_json::Number, unit: &str) -> Value {
    let mut q = json!({"value": value});
    if !unit.is_empty() {
        q["unit"] = json!(unit);
    }
    q
}

/// An HL7 NM (`+1.5`, `.5`, `2`) as a FHIR decimal, its digits kept.
fn decimal(text: &str) -> Option<serde_json::Number> {
    let (sign, digits) = match text.as_bytes().first()? {
        b'-' => ("-", &text[1..]),
        b'+' => ("", &text[1..]),
        _ => ("", text),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int)
        || !frac.is_none_or(all_digits)
        || (int.is_empty() && frac.is_none_or(str::is_empty))
    {
        return None;
    }
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let text = match frac {
        Some(f) if !f.is_empty() => format!("{sign}{int}.{f}"),
        _ => format!("{sign}{int}"),
    };
    serde_json::from_str(&text).ok()
}

fn optional_time(
    seg: &Segment,
    seq: usize,
    id: &str,
    field: usize,
) -> Result<Option<String>, Hl7Error> {
    let text = seg.get(field, 1).trim();
    if text.is_empty() {
        return Ok(None);
    }
    hl7_datetime(text).map(Some).ok_or_else(|| {
        Hl7Error::content(
            Location::new(id, seq, field),
            Condition::DataTypeError,
            format!("{id}-{field}: '{text}' is not a date/time (YYYYMMDD[HHMM[SS]][+ZZZZ])"),
        )
    })
}

/// `YYYY[MM[DD]]` → FHIR date.
fn hl7_date(text: &str) -> Option<String> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r).and_then(|s| s.parse::<u16>().ok());
    match text.len() {
        4 => Some(text.to_owned()),
        6 => {
            let m = num(4..6)?;
            (1..=12)
                .contains(&m)
                .then(|| format!("{}-{}", &text[..4], &text[4..6]))
        }
        8 => {
            let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
            time::Date::from_calendar_date(
                i32::from(num(0..4)?),
                month,
                u8::try_from(num(6..8)?).ok()?,
            )
            .ok()?;
            Some(format!("{}-{}-{}", &text[..4], &text[4..6], &text[6..8]))
        }
        _ => None,
    }
}

/// HL7 TS/DTM (`YYYY[MM[DD[HH[MM[SS[.S…]]]]]][+/-ZZZZ]`) → FHIR dateTime. A time without an
/// offset is UK local time (GMT, or BST from the last Sunday of March to the last Sunday of
/// October at 01:00 UTC).
pub fn hl7_datetime(text: &str) -> Option<String> {
    let (body, zone) = match text.find(['+', '-']) {
        Some(i) => (&text[..i], Some(&text[i..])),
        None => (text, None),
    };
    let (main, fraction) = match body.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (body, None),
    };
    if main.len() <= 8 {
        return if zone.is_none() && fraction.is_none() {
            hl7_date(main)
        } else {
            None
        };
    }
    if !main.bytes().all(|b| b.is_ascii_digit()) || !matches!(main.len(), 10 | 12 | 14) {
        return None;
    }
    let date = hl7_date(&main[..8])?;
    let part = |r: std::ops::Range<usize>| main.get(r).map_or(Some(0), |s| s.parse::<u8>().ok());
    let (h, mi, s) = (part(8..10)?, part(10..12)?, part(12..14)?);
    if h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let frac = match fraction {
        Some(f)
            if !f.is_empty()
                && f.len() <= 4
                && f.bytes().all(|b| b.is_ascii_digit())
                && main.len() == 14 =>
        {
            format!(".{f}")
        }
        None => String::new(),
        _ => return None,
    };
    let offset = match zone {
        Some(z) => {
            let digits = &z[1..];
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let (zh, zm) = (
                digits[..2].parse::<u8>().ok()?,
                digits[2..].parse::<u8>().ok()?,
            );
            if zh > 14 || zm > 59 {
                return None;
            }
            format!("{}{:02}:{:02}", &z[..1], zh, zm)
        }
        None => uk_offset(&date, h)?.to_owned(),
    };
    Some(format!("{date}T{h:02}:{mi:02}:{s:02}{frac}{offset}"))
}

/// The UK's UTC offset on a local date and hour (the hour of the change itself is read as the
/// new time: a one-hour ambiguity twice a year that HL7 without an offset cannot resolve).
fn uk_offset(date: &str, hour: u8) -> Option<&'static str> {
    let year: i32 = date.get(..4)?.parse().ok()?;
    let month: u8 = date.get(5..7)?.parse().ok()?;
    let day: u8 = date.get(8..10)?.parse().ok()?;
    let last_sunday = |m: time::Month| -> Option<u8> {
        // March and October have 31 days: the last Sunday is one of the last seven.
        (25..=31).rev().find(|d| {
            time::Date::from_calendar_date(year, m, *d)
                .is_ok_and(|x| x.weekday() == time::Weekday::Sunday)
        })
    };
    let march = last_sunday(time::Month::March)?;
    let october = last_sunday(time::Month::October)?;
    let key = (month, day, hour);
    let summer = key >= (3, march, 1) && key < (10, october, 1);
    Some(if summer { "+01:00" } else { "+00:00" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> Message {
        Message::parse(text.replace('\n', "\r").as_bytes()).expect("parses")
    }

    fn run(text: &str) -> Result<Plan, Hl7Error> {
        let m = msg(text);
        plan(&m, header(&m)?)
    }

    const MSH: &str = "MSH|^~\\&|EPMA|RTH|SMR|SMR|20240605101500||";

    #[test]
    fn admission_gives_patient_and_encounter() {
        let p = run(&format!(
            "{MSH}ADT^A01^ADT_A01|M1|P|2.4\n\
             EVN|A01|20240605101500\n\
             PID|1||12345^^^RTH^MR~9449305552^^^NHS^NH||JONES^MARY^ANN^^MRS||19650412|F|||1 HIGH ST^^OXFORD^^OX1 1AA\n\
             PV1|1|I|WARD7^BAY2^BED3||||||||||||||||V0001|||||||||||||||||||||||||20240605101000"
        ))
        .expect("plan");
        assert_eq!(p.nhs_number, "9449305552");
        let patient = p.patient.expect("patient");
        assert_eq!(patient["name"][0]["family"], "JONES");
        assert_eq!(patient["name"][0]["given"], json!(["MARY", "ANN"]));
        assert_eq!(patient["birthDate"], "1965-04-12");
        assert_eq!(patient["gender"], "female");
        assert_eq!(patient["address"][0]["postalCode"], "OX1 1AA");
        let e = &p.items[0];
        assert_eq!(e.value, "V0001");
        assert_eq!(e.resource["status"], "in-progress");
        assert_eq!(e.resource["period"]["start"], "2024-06-05T10:10:00+01:00");
        assert_eq!(
            e.resource["location"][0]["location"]["display"],
            "WARD7 BAY2 BED3"
        );
    }

    #[test]
    fn order_with_unknown_code_system_names_rxe_2() {
        let err = run(&format!(
            "{MSH}RDE^O11^RDE_O11|M2|P|2.5\n\
             PID|1||9449305552^^^NHS^NH\n\
             ORC|NW|ORD1\n\
             RXE|^BID|123456^Thing^LOCAL|1||tablet"
        ))
        .expect_err("refused");
        assert_eq!(err.location, Some(Location::new("RXE", 1, 2)));
        assert_eq!(err.condition, Condition::TableValueNotFound);
        assert!(err.text.contains("LOCAL"), "{}", err.text);
    }

    #[test]
    fn order_maps_code_dose_and_identifier() {
        let p = run(&format!(
            "{MSH}RDE^O11^RDE_O11|M3|P|2.5\n\
             PID|1||9449305552^^^NHS^NH\n\
             ORC|NW|ORD1^EPMA|||||||20240605100000|||^WHO^ALICE^^^DR\n\
             RXE|^BD|322236009^Paracetamol 500mg tablets^DMD|1000||mg\n\
             RXR|PO^Oral"
        ))
        .expect("plan");
        let mr = &p.items[0].resource;
        assert_eq!(
            p.items[0].system,
            "https://fhir.smr.nhs.uk/Id/hl7v2/RTH/placer-order-number"
        );
        assert_eq!(
            mr["medicationCodeableConcept"]["coding"][0]["system"],
            SNOMED_SYSTEM
        );
        assert_eq!(
            mr["medicationCodeableConcept"]["coding"][0]["code"],
            "322236009"
        );
        assert_eq!(mr["status"], "active");
        assert_eq!(mr["authoredOn"], "2024-06-05T10:00:00+01:00");
        assert_eq!(mr["requester"]["display"], "DR ALICE WHO");
        assert_eq!(mr["dosageInstruction"][0]["text"], "1000 mg Oral BD");
        assert_eq!(
            mr["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"],
            json!(1000)
        );
    }

    #[test]
    fn wrong_content_is_located() {
        let base = |rest: &str| format!("{MSH}RAS^O17^RAS_O17|M4|P|2.5\n{rest}");
        for (text, loc) in [
            (
                base("PID|1||123^^^RTH^MR\nORC|NW|O1\nRXA|0|1|20240101"),
                ("PID", 3),
            ),
            (base("PID|1||9449305553^^^NHS^NH\nORC|NW|O1"), ("PID", 3)),
            (
                base("PID|1||9449305552^^^NHS^NH\nORC|NW|O1\nRXA|0|1||"),
                ("RXA", 3),
            ),
            (
                base("PID|1||9449305552^^^NHS^NH\nORC|NW|O1\nRXA|0|1|2024|2024|322236009^x^SCT|x"),
                ("RXA", 6),
            ),
            (
                base("PID|1||9449305552^^^NHS^NH\nORC|NW|O1\nRXA|0|1|20241301|"),
                ("RXA", 3),
            ),
            (
                base("PID|1||9449305552^^^NHS^NH\nORC|NW|O1\nRXA|0|1|2024||322236008^x^SCT"),
                ("RXA", 5),
            ),
            (
                base("PID|1||9449305552^^^NHS^NH\nORC|NW\nRXA|0|1|2024||322236009^x^SCT"),
                ("ORC", 2),
            ),
        ] {
            let e = run(&text).expect_err(&text);
            let l = e.location.expect("location");
            assert_eq!((l.segment.as_str(), l.field), loc, "{text}: {}", e.text);
        }
    }

    #[test]
    fn unsupported_or_unnamed_messages_are_rejected() {
        for text in [
            "MSH|^~\\&|A||SMR|SMR|2024||ADT^A01|1|P|2.4",
            "MSH|^~\\&|A|RTH|SMR|SMR|2024||ADT^A01||P|2.4",
            "MSH|^~\\&|A|RTH|SMR|SMR|2024||ADT^A01|1|P|2.3",
            "MSH|^~\\&|A|RTH|SMR|SMR|2024||ORU^R01|1|P|2.4",
            "MSH|^~\\&|A|RTH|SMR|SMR|2024||ADT^A40|1|P|2.4",
        ] {
            let e = header(&msg(text)).expect_err(text);
            assert_eq!(e.code, crate::ack::AckCode::Reject, "{text}");
        }
    }

    #[test]
    fn times_and_numbers() {
        assert_eq!(
            hl7_datetime("20240115083000").as_deref(),
            Some("2024-01-15T08:30:00+00:00")
        );
        assert_eq!(
            hl7_datetime("202407150830").as_deref(),
            Some("2024-07-15T08:30:00+01:00")
        );
        assert_eq!(
            hl7_datetime("20240715083000.25-0500").as_deref(),
            Some("2024-07-15T08:30:00.25-05:00")
        );
        assert_eq!(hl7_datetime("20240715").as_deref(), Some("2024-07-15"));
        assert_eq!(
            hl7_datetime("2024071508"),
            Some("2024-07-15T08:00:00+01:00".into())
        );
        for bad in ["2024071", "20240230", "20240715253000", "x", "20240715+01"] {
            assert_eq!(hl7_datetime(bad), None, "{bad}");
        }
        assert_eq!(decimal(".5").map(|n| n.to_string()), Some("0.5".into()));
        assert_eq!(
            decimal("+007.50").map(|n| n.to_string()),
            Some("7.50".into())
        );
        assert_eq!(decimal("1e3"), None);
        assert_eq!(decimal("."), None);
    }

    #[test]
    fn demographics_merge_keeps_the_rest() {
        let existing = json!({"resourceType": "Patient", "id": "p", "gender": "male",
            "generalPractitioner": [{"reference": "Organization/g"}]});
        let pid = json!({"resourceType": "Patient", "gender": "female", "birthDate": "1970-01-01"});
        let merged = merge_demographics(&existing, &pid);
        assert_eq!(merged["gender"], "female");
        assert_eq!(merged["birthDate"], "1970-01-01");
        assert_eq!(
            merged["generalPractitioner"][0]["reference"],
            "Organization/g"
        );
        assert_eq!(merged["id"], "p");
    }
}
