//! The message's `MessageHeader`: which event, who sent it, and the id a response names.

use serde_json::Value;

use crate::{MESSAGE_EVENT_SYSTEM, MessageError, ODS_SYSTEM, type_of};

/// The EPS events SMR accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    PrescriptionOrder,
    /// Cancellations of prescription lines.
    PrescriptionOrderUpdate,
    DispenseNotification,
}

impl Event {
    pub fn code(self) -> &'static str {
        match self {
            Event::PrescriptionOrder => "prescription-order",
            Event::PrescriptionOrderUpdate => "prescription-order-update",
            Event::DispenseNotification => "dispense-notification",
        }
    }

    fn from_code(code: &str) -> Option<Event> {
        [
            Event::PrescriptionOrder,
            Event::PrescriptionOrderUpdate,
            Event::DispenseNotification,
        ]
        .into_iter()
        .find(|e| e.code() == code)
    }
}

/// What SMR reads from the `MessageHeader`.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// The id a response names (`response.identifier`): the header's `id`, else the uuid of
    /// its entry's `fullUrl`, else the Bundle's id.
    pub id: String,
    pub event: Event,
    /// `eventCoding` as sent (the response repeats it).
    pub event_coding: Value,
    /// `MessageHeader.sender` as sent (an ODS identifier in EPS).
    pub sender: Option<Value>,
    /// The sender's ODS code, when `sender` names one.
    pub sender_ods: Option<String>,
    /// `MessageHeader.source` as sent (`endpoint`, `name`).
    pub source: Option<Value>,
    /// `Bundle.identifier.value`: the message's own identifier (not unique across senders'
    /// test messages, so never used as a key).
    pub message_identifier: Option<String>,
}

impl Header {
    /// The sender as a display string: name, ODS code or source endpoint.
    pub fn sender_display(&self) -> String {
        let sender = self.sender.as_ref();
        sender
            .and_then(|s| s.get("display"))
            .and_then(Value::as_str)
            .or_else(|| self.source.as_ref()?.get("name")?.as_str())
            .or(self.sender_ods.as_deref())
            .or_else(|| self.source.as_ref()?.get("endpoint")?.as_str())
            .unwrap_or("unnamed sender")
            .to_owned()
    }
}

/// Reads the header of an EPS message Bundle: a Bundle of type `message` whose first entry is
/// a `MessageHeader` with one of the accepted events.
pub fn read_header(bundle: &Value) -> Result<Header, MessageError> {
    let ty = type_of(bundle);
    if ty != "Bundle" {
        return Err(MessageError::NotABundle(ty.to_owned()));
    }
    let kind = bundle
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind != "message" {
        return Err(MessageError::NotAMessage(kind.to_owned()));
    }
    let first = bundle
        .get("entry")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
        .ok_or(MessageError::NoHeader)?;
    let header = first.get("resource").ok_or(MessageError::NoHeader)?;
    if type_of(header) != "MessageHeader" {
        return Err(MessageError::NoHeader);
    }
    let coding = header.get("eventCoding").cloned().unwrap_or(Value::Null);
    let system = coding.get("system").and_then(Value::as_str);
    let code = coding
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let event = Event::from_code(code)
        .filter(|_| system == Some(MESSAGE_EVENT_SYSTEM))
        .ok_or_else(|| {
            MessageError::UnknownEvent(match system {
                Some(s) => format!("{s}|{code}"),
                None => code.to_owned(),
            })
        })?;
    let id = header
        .get("id")
        .and_then(Value::as_str)
        .or_else(|| {
            first
                .get("fullUrl")
                .and_then(Value::as_str)
                .and_then(|u| u.strip_prefix("urn:uuid:"))
        })
        .or_else(|| bundle.get("id").and_then(Value::as_str))
        .filter(|id| is_fhir_id(id))
        .ok_or(MessageError::Entry(
            0,
            "MessageHeader: an id (or a urn:uuid fullUrl) is needed for the response to name"
                .into(),
        ))?
        .to_owned();
    let sender = header.get("sender").cloned();
    let sender_ods = sender
        .as_ref()
        .and_then(|s| s.get("identifier"))
        .filter(|i| i.get("system").and_then(Value::as_str) == Some(ODS_SYSTEM))
        .and_then(|i| i.get("value"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Header {
        id,
        event,
        event_coding: coding,
        sender,
        sender_ods,
        source: header.get("source").cloned(),
        message_identifier: bundle
            .pointer("/identifier/value")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// R4 `id`: `[A-Za-z0-9\-\.]{1,64}`.
fn is_fhir_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}
