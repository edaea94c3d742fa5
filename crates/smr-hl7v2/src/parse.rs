//! A strict HL7 v2 ER7 ("pipe and hat") reader and writer.
//!
//! Layout: a [`Message`] is segments; a [`Segment`] is fields numbered as the standard numbers
//! them (`MSH-1` is the field separator itself, `MSH-2` the encoding characters, so
//! `seg.field(n)` is `PID-n` and `MSH-n` alike); a field is repetitions (`~`), a repetition
//! components (`^`), a component subcomponents (`&`), each unescaped (`\F\ \S\ \T\ \R\ \E\`,
//! `\Xhh\`, `\.br\`) into plain text. The separators are read from `MSH-1`/`MSH-2`, never
//! assumed.
//!
//! Strict where a wrong guess would store the wrong thing: the message must start with `MSH`,
//! the five separators must be distinct and not alphanumeric, segment ids are three upper-case
//! letters or digits, an escape must be closed and known. Segments end at `\r`; `\n` and
//! `\r\n` are tolerated (files and test tools use them). Bytes that are not UTF-8 are read as
//! ISO-8859-1 (the usual NHS v2 character set when MSH-18 is empty), which never fails.
//!
//! [`Message::encode`] writes the same structure back, escaping what must be, so
//! `parse(encode(m)) == m` (proptest below).

use std::borrow::Cow;

/// Why a message could not be read (answered with `AR`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// The segment (id and 1-based position among segments) where reading failed, if any.
    pub segment: Option<(String, usize)>,
    pub message: String,
}

fn err(segment: Option<(&str, usize)>, message: impl Into<String>) -> ParseError {
    ParseError {
        segment: segment.map(|(s, i)| (s.to_owned(), i)),
        message: message.into(),
    }
}

/// The separators and escape character (MSH-1 and MSH-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    pub field: char,
    pub component: char,
    pub repetition: char,
    pub escape: char,
    pub subcomponent: char,
}

impl Default for Encoding {
    fn default() -> Self {
        Encoding {
            field: '|',
            component: '^',
            repetition: '~',
            escape: '\\',
            subcomponent: '&',
        }
    }
}

impl Encoding {
    /// MSH-2 as written.
    pub fn msh2(&self) -> String {
        [
            self.component,
            self.repetition,
            self.escape,
            self.subcomponent,
        ]
        .iter()
        .collect()
    }
}

/// One repetition of a field: components of subcomponents.
pub type Repetition = Vec<Vec<String>>;
/// A field: its repetitions (an empty field has none).
pub type Field = Vec<Repetition>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub id: String,
    /// `fields[0]` is field 1. For MSH, field 1 is the field separator and field 2 the
    /// encoding characters, both held as one plain component.
    pub fields: Vec<Field>,
}

impl Segment {
    /// Field `n` (1-based, as the standard numbers them).
    pub fn field(&self, n: usize) -> Option<&Field> {
        self.fields.get(n.checked_sub(1)?)
    }

    /// The repetitions of field `n` (empty when absent).
    pub fn repetitions(&self, n: usize) -> &[Repetition] {
        self.field(n).map_or(&[], Vec::as_slice)
    }

    /// Field `n`, first repetition, component `c` (1-based), first subcomponent; "" when absent.
    pub fn get(&self, n: usize, c: usize) -> &str {
        self.repetitions(n)
            .first()
            .map_or("", |rep| component(rep, c))
    }

    /// Field `n`'s first component: the usual reading of a simple field.
    pub fn value(&self, n: usize) -> &str {
        self.get(n, 1)
    }
}

/// Component `c` (1-based) of a repetition, first subcomponent; "" when absent.
pub fn component(rep: &Repetition, c: usize) -> &str {
    c.checked_sub(1)
        .and_then(|i| rep.get(i))
        .and_then(|sub| sub.first())
        .map_or("", String::as_str)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub encoding: Encoding,
    pub segments: Vec<Segment>,
}

impl Message {
    /// The first segment with this id.
    pub fn segment(&self, id: &str) -> Option<&Segment> {
        self.segments.iter().find(|s| s.id == id)
    }

    /// Every segment with this id, in order.
    pub fn all<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Segment> + 'a {
        self.segments.iter().filter(move |s| s.id == id)
    }

    /// The MSH segment (parsing guarantees it is the first).
    pub fn msh(&self) -> &Segment {
        &self.segments[0]
    }

    /// Reads one message from bytes (no MLLP framing: see `mllp`).
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        let text: Cow<'_, str> = match std::str::from_utf8(bytes) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
        };
        parse_text(&text)
    }

    /// The message as ER7 text, segments ended by `\r`.
    pub fn encode(&self) -> String {
        let e = &self.encoding;
        let mut out = String::new();
        for seg in &self.segments {
            out.push_str(&seg.id);
            let fields: &[Field] = if seg.id == "MSH" {
                out.push(e.field);
                out.push_str(&e.msh2());
                seg.fields.get(2..).unwrap_or(&[])
            } else {
                &seg.fields
            };
            for field in fields {
                out.push(e.field);
                for (r, rep) in field.iter().enumerate() {
                    if r > 0 {
                        out.push(e.repetition);
                    }
                    for (c, comp) in rep.iter().enumerate() {
                        if c > 0 {
                            out.push(e.component);
                        }
                        for (s, sub) in comp.iter().enumerate() {
                            if s > 0 {
                                out.push(e.subcomponent);
                            }
                            escape_into(&mut out, sub, e);
                        }
                    }
                }
            }
            out.push('\r');
        }
        out
    }
}

/// Escapes `text` for use inside a component or subcomponent.
pub fn escape_into(out: &mut String, text: &str, e: &Encoding) {
    for ch in text.chars() {
        let code = if ch == e.field {
            Some('F')
        } else if ch == e.component {
            Some('S')
        } else if ch == e.subcomponent {
            Some('T')
        } else if ch == e.repetition {
            Some('R')
        } else if ch == e.escape {
            Some('E')
        } else {
            None
        };
        match code {
            Some(c) => {
                out.push(e.escape);
                out.push(c);
                out.push(e.escape);
            }
            // A segment terminator inside text would end the segment: written as a line break.
            None if ch == '\r' || ch == '\n' => {
                out.push(e.escape);
                out.push_str(".br");
                out.push(e.escape);
            }
            None => out.push(ch),
        }
    }
}

/// Plain text as one field value (escaped), for building messages by hand.
pub fn escape(text: &str, e: &Encoding) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text, e);
    out
}

fn parse_text(text: &str) -> Result<Message, ParseError> {
    // Segments end at CR; LF and CRLF are tolerated, blank lines skipped.
    let lines: Vec<&str> = text
        .split(['\r', '\n'])
        .filter(|l| !l.trim().is_empty())
        .collect();
    let Some(first) = lines.first() else {
        return Err(err(None, "the message is empty"));
    };
    let encoding = read_encoding(first)?;
    let mut segments = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        segments.push(parse_segment(line, &encoding, i + 1)?);
    }
    Ok(Message { encoding, segments })
}

fn read_encoding(first: &str) -> Result<Encoding, ParseError> {
    let at = Some(("MSH", 1));
    let Some(rest) = first.strip_prefix("MSH") else {
        return Err(err(None, "the message does not start with an MSH segment"));
    };
    let mut chars = rest.chars();
    let (Some(field), Some(component), Some(repetition), Some(escape), Some(subcomponent)) = (
        chars.next(),
        chars.next(),
        chars.next(),
        chars.next(),
        chars.next(),
    ) else {
        return Err(err(
            at,
            "MSH-1/MSH-2: the encoding characters are incomplete",
        ));
    };
    let e = Encoding {
        field,
        component,
        repetition,
        escape,
        subcomponent,
    };
    let all = [field, component, repetition, escape, subcomponent];
    for (i, c) in all.iter().enumerate() {
        if c.is_alphanumeric() || c.is_whitespace() || all[..i].contains(c) {
            return Err(err(
                at,
                "MSH-1/MSH-2: the separators must be five distinct punctuation characters",
            ));
        }
    }
    // MSH-2 is exactly the four characters (an ER7 message may not add more before MSH-3).
    match chars.next() {
        None => {}
        Some(c) if c == field => {}
        Some(_) => {
            return Err(err(
                at,
                "MSH-2: the encoding characters must be followed by the field separator",
            ));
        }
    }
    Ok(e)
}

fn parse_segment(line: &str, e: &Encoding, index: usize) -> Result<Segment, ParseError> {
    let id: String = line.chars().take(3).collect();
    let id_ok = id.len() == 3
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !id_ok {
        return Err(err(
            None,
            format!(
                "segment {index}: '{}' is not a segment id (three capital letters or digits)",
                id.escape_debug()
            ),
        ));
    }
    let at = Some((id.as_str(), index));
    let rest = &line[id.len()..];
    let mut fields: Vec<Field> = Vec::new();
    let body = if id == "MSH" {
        if index != 1 {
            return Err(err(at, "MSH must be the first segment only"));
        }
        fields.push(vec![vec![vec![e.field.to_string()]]]);
        fields.push(vec![vec![vec![e.msh2()]]]);
        // Past the field separator and the four encoding characters.
        let skip: usize = rest.chars().take(5).map(char::len_utf8).sum();
        match rest.get(skip..) {
            Some(tail) => tail.strip_prefix(e.field).unwrap_or(tail),
            None => "",
        }
    } else {
        if rest.is_empty() {
            return Ok(Segment { id, fields });
        }
        match rest.strip_prefix(e.field) {
            Some(body) => body,
            None => {
                return Err(err(
                    at,
                    format!(
                        "segment {index} ({id}): the id must be followed by the field separator"
                    ),
                ));
            }
        }
    };
    if id == "MSH" && body.is_empty() {
        return Ok(Segment { id, fields });
    }
    for (n, field_text) in body.split(e.field).enumerate() {
        let number = n + if id == "MSH" { 3 } else { 1 };
        let mut field: Field = Vec::new();
        if !field_text.is_empty() {
            for rep_text in field_text.split(e.repetition) {
                let mut rep: Repetition = Vec::new();
                for comp_text in rep_text.split(e.component) {
                    let mut comp = Vec::new();
                    for sub_text in comp_text.split(e.subcomponent) {
                        comp.push(
                            unescape(sub_text, e)
                                .map_err(|m| err(at, format!("{id}-{number}: {m}")))?,
                        );
                    }
                    rep.push(comp);
                }
                field.push(rep);
            }
        }
        fields.push(field);
    }
    Ok(Segment { id, fields })
}

/// Replaces escape sequences by what they stand for.
fn unescape(text: &str, e: &Encoding) -> Result<String, String> {
    if !text.contains(e.escape) {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(e.escape) {
        out.push_str(&rest[..start]);
        let after = &rest[start + e.escape.len_utf8()..];
        let Some(end) = after.find(e.escape) else {
            return Err("an escape sequence is not closed".into());
        };
        let seq = &after[..end];
        match seq {
            "F" => out.push(e.field),
            "S" => out.push(e.component),
            "T" => out.push(e.subcomponent),
            "R" => out.push(e.repetition),
            "E" => out.push(e.escape),
            ".br" => out.push('\n'),
            // Formatting hints (highlight on/off, spaces, indents) carry no content.
            "H" | "N" => {}
            _ if seq.starts_with(".sp") || seq.starts_with(".in") || seq.starts_with(".ti") => {
                out.push(' ')
            }
            _ if seq.starts_with('X') && seq.len() > 1 => {
                let hex = &seq[1..];
                if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!("\\{seq}\\ is not a hexadecimal escape"));
                }
                let bytes: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
                    .collect();
                match String::from_utf8(bytes) {
                    Ok(s) => out.push_str(&s),
                    Err(e) => out.extend(e.into_bytes().into_iter().map(char::from)),
                }
            }
            _ => {
                return Err(format!(
                    "unknown escape sequence \\{}\\",
                    seq.escape_debug()
                ));
            }
        }
        rest = &after[end + e.escape.len_utf8()..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ADT: &str = "MSH|^~\\&|PAS|RTH|SMR|SMR|20240101120000||ADT^A01^ADT_A01|MSG1|P|2.4\r\
        PID|1||9449305552^^^NHS^NH~123^^^RTH^MR||SMITH^JOHN^^^MR||19700101|M\r";

    #[test]
    fn reads_fields_components_and_repetitions() {
        let m = Message::parse(ADT.as_bytes()).expect("parses");
        let msh = m.msh();
        assert_eq!(msh.value(1), "|");
        assert_eq!(msh.value(2), "^~\\&");
        assert_eq!(msh.value(4), "RTH");
        assert_eq!(msh.get(9, 2), "A01");
        assert_eq!(msh.value(12), "2.4");
        let pid = m.segment("PID").expect("PID");
        assert_eq!(pid.repetitions(3).len(), 2);
        assert_eq!(component(&pid.repetitions(3)[1], 4), "RTH");
        assert_eq!(pid.get(5, 2), "JOHN");
        assert_eq!(pid.value(99), "");
    }

    #[test]
    fn unescapes_and_tolerates_newlines() {
        let text = "MSH|^~\\&|A|B\nNTE|1||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X41\\\\.br\\g\r\n";
        let m = Message::parse(text.as_bytes()).expect("parses");
        assert_eq!(m.segments[1].value(3), "a|b^c&d~e\\fA\ng");
    }

    #[test]
    fn other_separators_are_read_from_msh() {
        let text = "MSH#*@!%#A#B\rPID#1##9449305552*x@y%z";
        let m = Message::parse(text.as_bytes()).expect("parses");
        let pid = m.segment("PID").expect("PID");
        assert_eq!(pid.get(3, 1), "9449305552");
        assert_eq!(pid.repetitions(3).len(), 2);
        assert_eq!(
            pid.repetitions(3)[1][0],
            vec!["y".to_owned(), "z".to_owned()]
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for bad in [
            "",
            "hello",
            "PID|1",
            "MSH|^~",
            "MSH|^^\\&|A",
            "MSH|^~\\&|A\rpid|1",
            "MSH|^~\\&|A\rPID|a\\Q\\b",
            "MSH|^~\\&|A\rPID|a\\Fb",
            "MSH|^~\\&|A\rMSH|^~\\&|B",
            "MSH|^~\\&|A\rPIDX",
        ] {
            assert!(Message::parse(bad.as_bytes()).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn latin1_bytes_are_read() {
        let mut bytes = b"MSH|^~\\&|A|B\rPID|1||x||O'BRI".to_vec();
        bytes.push(0xC9); // É in ISO-8859-1
        bytes.extend_from_slice(b"N");
        let m = Message::parse(&bytes).expect("parses");
        assert_eq!(m.segments[1].value(5), "O'BRIÉN");
    }

    fn text() -> impl Strategy<Value = String> {
        "[ -~\\n]{0,8}"
    }

    fn segment() -> impl Strategy<Value = Segment> {
        let sub = text();
        let comp = prop::collection::vec(sub, 1..3);
        let rep = prop::collection::vec(comp, 1..3);
        let field = prop::collection::vec(rep, 0..3);
        ("[A-Z][A-Z0-9]{2}", prop::collection::vec(field, 0..5))
            .prop_filter("not MSH", |(id, _)| id != "MSH")
            .prop_map(|(id, fields)| Segment { id, fields })
    }

    /// What the reader makes of a structure: empty trailing pieces are not distinguishable in
    /// ER7 (`a^` and `a` differ, but a field of one empty component is an empty field).
    fn normalised(mut m: Message) -> Message {
        for seg in &mut m.segments {
            for field in &mut seg.fields {
                if field.len() == 1
                    && field[0].len() == 1
                    && field[0][0].len() == 1
                    && field[0][0][0].is_empty()
                {
                    field.clear();
                }
                for rep in field.iter_mut() {
                    for comp in rep.iter_mut() {
                        for sub in comp.iter_mut() {
                            *sub = sub.replace("\r\n", "\n").replace('\r', "\n");
                        }
                    }
                }
            }
            if seg.id != "MSH" && seg.fields.iter().all(Vec::is_empty) {
                seg.fields.clear();
            }
        }
        m
    }

    proptest! {
        #[test]
        fn round_trip(body in prop::collection::vec(segment(), 0..5), app in "[A-Z]{1,5}") {
            let e = Encoding::default();
            let mut segments = vec![Segment {
                id: "MSH".into(),
                fields: vec![
                    vec![vec![vec![e.field.to_string()]]],
                    vec![vec![vec![e.msh2()]]],
                    vec![vec![vec![app]]],
                ],
            }];
            segments.extend(body);
            let m = normalised(Message { encoding: e, segments });
            let again = Message::parse(m.encode().as_bytes()).expect("own output parses");
            prop_assert_eq!(normalised(again), m);
        }

        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = Message::parse(&bytes);
            let mut framed = b"MSH|^~\\&|".to_vec();
            framed.extend_from_slice(&bytes);
            let _ = Message::parse(&framed);
        }
    }
}
