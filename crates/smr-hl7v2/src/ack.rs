//! Acknowledgements (original acknowledgement mode): `MSH`, `MSA`, and an `ERR` segment for
//! `AE`/`AR`.
//!
//! `MSA-1` is the code, `MSA-2` the control id of the message acknowledged (MSH-10), `MSA-3`
//! the reason in words (deprecated in v2.5 but still what many engines log). `ERR` follows
//! v2.5: `ERR-2` the location (`PID^1^3`: segment, its occurrence, field, and component when
//! one is meant), `ERR-3` the HL7 table 0357 code, `ERR-4` severity `E`, `ERR-8` the reason.

use time::OffsetDateTime;

use crate::parse::{Encoding, Message, escape};

/// MSA-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCode {
    /// Application accept: stored.
    Accept,
    /// Application error: the content is wrong; nothing stored.
    Error,
    /// Application reject: unreadable, unsupported or from a sender not allowed; nothing stored.
    Reject,
}

impl AckCode {
    pub fn as_str(self) -> &'static str {
        match self {
            AckCode::Accept => "AA",
            AckCode::Error => "AE",
            AckCode::Reject => "AR",
        }
    }
}

/// Where in a message an error is (ERR-2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub segment: String,
    /// Which occurrence of the segment (1-based).
    pub sequence: usize,
    pub field: usize,
    pub component: Option<usize>,
}

impl Location {
    pub fn new(segment: &str, sequence: usize, field: usize) -> Self {
        Location {
            segment: segment.to_owned(),
            sequence,
            field,
            component: None,
        }
    }

    /// The ERR-2 text (`PID^1^3`), components separated by `e`'s component separator.
    pub fn er7(&self, e: &Encoding) -> String {
        let c = e.component;
        let mut s = format!("{}{c}{}{c}{}", self.segment, self.sequence, self.field);
        if let Some(comp) = self.component {
            s.push(c);
            s.push_str(&comp.to_string());
        }
        s
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.segment, self.field)?;
        if let Some(c) = self.component {
            write!(f, ".{c}")?;
        }
        Ok(())
    }
}

/// HL7 table 0357 (message error condition codes) as SMR uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    RequiredFieldMissing,
    DataTypeError,
    TableValueNotFound,
    UnsupportedMessageType,
    UnsupportedEventCode,
    UnsupportedVersion,
    UnknownKey,
    InternalError,
    SegmentSequence,
    /// A sender not in the senders file.
    NotAuthorised,
}

impl Condition {
    pub fn code(self) -> (&'static str, &'static str) {
        match self {
            Condition::SegmentSequence => ("100", "Segment sequence error"),
            Condition::RequiredFieldMissing => ("101", "Required field missing"),
            Condition::DataTypeError => ("102", "Data type error"),
            Condition::TableValueNotFound => ("103", "Table value not found"),
            Condition::UnsupportedMessageType => ("200", "Unsupported message type"),
            Condition::UnsupportedEventCode => ("201", "Unsupported event code"),
            Condition::UnsupportedVersion => ("203", "Unsupported version id"),
            Condition::UnknownKey => ("204", "Unknown key identifier"),
            Condition::InternalError => ("207", "Application internal error"),
            // v2.5 0357 lists no code for an unauthorised sender; 207 with the reason in ERR-8
            // is what receivers commonly log.
            Condition::NotAuthorised => ("207", "Application internal error"),
        }
    }
}

/// Why a message was not stored: its ACK code, where, which condition, and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
/// Displayed as its text, which names the field itself.
#[error("{text}")]
pub struct Hl7Error {
    pub code: AckCode,
    pub location: Option<Location>,
    pub condition: Condition,
    pub text: String,
}

impl Hl7Error {
    /// An `AE`: the content is wrong at `location`.
    pub fn content(location: Location, condition: Condition, text: impl Into<String>) -> Self {
        Hl7Error {
            code: AckCode::Error,
            location: Some(location),
            condition,
            text: text.into(),
        }
    }

    /// An `AR`: the message cannot be taken at all.
    pub fn reject(
        location: Option<Location>,
        condition: Condition,
        text: impl Into<String>,
    ) -> Self {
        Hl7Error {
            code: AckCode::Reject,
            location,
            condition,
            text: text.into(),
        }
    }
}

/// Builds the ACK of `original` (`None` when it could not be read at all). `control_id` is the
/// ACK's own MSH-10; `now` its MSH-7.
pub fn build(
    original: Option<&Message>,
    code: AckCode,
    error: Option<&Hl7Error>,
    control_id: &str,
    now: OffsetDateTime,
) -> String {
    let e = Encoding::default();
    let msh = original.map(Message::msh);
    let get = |n: usize| msh.map_or(String::new(), |m| escape_field(m, n, &e));
    let version = msh
        .map(|m| m.value(12).to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "2.4".into());
    let trigger = msh.map_or("", |m| m.get(9, 2));
    let processing = msh
        .map(|m| m.value(11).to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "P".into());
    let original_id = msh.map_or(String::new(), |m| escape(m.value(10), &e));
    let stamp = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}+0000",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let mut out = format!(
        "MSH|^~\\&|SMR|SMR|{}|{}|{stamp}||ACK^{}^ACK|{}|{}|{}\r",
        get(3),
        get(4),
        escape(trigger, &e),
        escape(control_id, &e),
        escape(&processing, &e),
        escape(&version, &e),
    );
    let text = error.map_or(String::new(), |err| escape(&err.text, &e));
    out.push_str(&format!("MSA|{}|{original_id}|{text}\r", code.as_str()));
    if let Some(err) = error {
        let (number, name) = err.condition.code();
        let location = err.location.as_ref().map_or(String::new(), |l| l.er7(&e));
        out.push_str(&format!(
            "ERR||{location}|{number}^{name}^HL70357|E||||{text}\r"
        ));
    }
    out
}

/// A field of the original re-encoded with the ACK's separators (components kept).
fn escape_field(msh: &crate::parse::Segment, n: usize, e: &Encoding) -> String {
    msh.repetitions(n)
        .first()
        .map(|rep| {
            rep.iter()
                .map(|comp| {
                    comp.iter()
                        .map(|s| escape(s, e))
                        .collect::<Vec<_>>()
                        .join(&e.subcomponent.to_string())
                })
                .collect::<Vec<_>>()
                .join(&e.component.to_string())
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_echoes_the_header_and_names_the_error() {
        let m = Message::parse(
            b"MSH|^~\\&|EPMA|RTH^x|SMR|SMR|20240101||RDE^O11^RDE_O11|ABC|P|2.5\rPID|1",
        )
        .expect("parses");
        let err = Hl7Error::content(
            Location::new("RXE", 1, 2),
            Condition::TableValueNotFound,
            "coding system 'XX|Y' is not known",
        );
        let now = OffsetDateTime::UNIX_EPOCH;
        let ack = build(Some(&m), AckCode::Error, Some(&err), "ACK1", now);
        let parsed = Message::parse(ack.as_bytes()).expect("ACK parses");
        assert_eq!(parsed.msh().get(9, 1), "ACK");
        assert_eq!(parsed.msh().get(9, 2), "O11");
        assert_eq!(parsed.msh().value(5), "EPMA");
        assert_eq!(parsed.msh().get(6, 2), "x");
        assert_eq!(parsed.msh().value(12), "2.5");
        let msa = parsed.segment("MSA").expect("MSA");
        assert_eq!(msa.value(1), "AE");
        assert_eq!(msa.value(2), "ABC");
        let errs = parsed.segment("ERR").expect("ERR");
        assert_eq!(errs.get(2, 1), "RXE");
        assert_eq!(errs.get(2, 3), "2");
        assert_eq!(errs.get(3, 1), "103");
        assert_eq!(errs.value(8), "coding system 'XX|Y' is not known");
        let ok = build(None, AckCode::Reject, None, "ACK2", now);
        assert!(ok.contains("MSA|AR||"), "{ok}");
    }
}
