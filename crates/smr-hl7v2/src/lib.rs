//! HL7 v2 for SMR (issue 9): hospital ePMA, pharmacy and PAS systems send ADT and pharmacy
//! messages over MLLP; this crate reads them and says what to store. Pure: no I/O, no async.
//!
//! Layout:
//! - `parse`: a strict ER7 reader and writer ([`Message`]); separators from MSH-1/MSH-2.
//! - `mllp`: MLLP frames out of a byte stream ([`mllp::Deframer`]) and out of files.
//! - `senders`: the senders file: sending facility (MSH-4) → organisation and care setting.
//! - `map`: a message → a [`map::Plan`] of FHIR R4 resources keyed by identifier.
//! - `ack`: the ACK (`AA`/`AE`/`AR`, with an `ERR` segment naming segment and field).
//!
//! [`read`] is the front door: bytes and the senders → the plan and the sender, or the
//! refusal to acknowledge. The application layer (`smr-app/src/hl7v2.rs`) does the lookups
//! and the write; the listener (`smr-server/src/mllp.rs`) and `smr import` only move bytes.
//!
//! Why not a crate from crates.io (checked with `cargo info`): `hl7-parser` 0.3 (Apache-2.0)
//! says it parses the structure without validating it, and `rust-hl7` 0.5 (MIT/Apache-2.0)
//! calls itself experimental. SMR must refuse what it cannot read exactly (unknown escapes,
//! separators that are not distinct) and locate every refusal to a field for ERR-2; a small
//! strict reader with proptests (`parse`) is less to own than a wrapper over either.

pub mod ack;
pub mod map;
pub mod mllp;
pub mod parse;
pub mod senders;

pub use ack::{AckCode, Condition, Hl7Error, Location};
pub use map::{Header, Item, Kind, Plan};
pub use parse::{Message, ParseError};
pub use senders::{Sender, Senders, SendersError};

/// A message read and allowed: what it asks, and who sent it.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub message: Message,
    pub plan: Plan,
    pub sender: Sender,
}

/// A message not taken: the ACK answers it (with the original when it could be read).
#[derive(Debug, Clone)]
pub struct Refused {
    pub message: Option<Message>,
    pub error: Hl7Error,
}

/// Reads `bytes` (one message, unframed) from a sender in `senders`.
///
/// Order matters: an unreadable message or an unknown sender is `AR` before anything about
/// the content is said (an unknown sender learns nothing about what SMR holds).
pub fn read(bytes: &[u8], senders: &Senders) -> Result<Accepted, Box<Refused>> {
    let message = Message::parse(bytes).map_err(|e| {
        Box::new(Refused {
            message: None,
            // The reason names the segment; ERR-2 locates fields, and no field is meant.
            error: Hl7Error::reject(
                None,
                Condition::SegmentSequence,
                format!("the message cannot be read: {e}"),
            ),
        })
    })?;
    let refuse = |message: &Message, error: Hl7Error| {
        Box::new(Refused {
            message: Some(message.clone()),
            error,
        })
    };
    let header = map::header(&message).map_err(|e| refuse(&message, e))?;
    let Some(sender) = senders.get(&header.sender).cloned() else {
        let text = format!(
            "sending facility '{}' (MSH-4) is not an allowed sender",
            header.sender
        );
        return Err(refuse(
            &message,
            Hl7Error::reject(
                Some(Location::new("MSH", 1, 4)),
                Condition::NotAuthorised,
                text,
            ),
        ));
    };
    let plan = map::plan(&message, header).map_err(|e| refuse(&message, e))?;
    Ok(Accepted {
        message,
        plan,
        sender,
    })
}
