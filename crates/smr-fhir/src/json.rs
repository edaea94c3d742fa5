//! Strict reading of JSON request bodies.
//!
//! SMR stores the JSON it receives (plus `id` and `meta`) and serves it back as stored, so what
//! it accepts must be JSON every client reads the same way. serde_json alone accepts three
//! things that break that:
//!
//! - duplicate object keys (`{"a":1,"a":2}`): RFC 8259 §4 says names SHOULD be unique and
//!   parsers disagree on which one wins, so two clients could read two different records;
//! - numbers outside the range of an IEEE 754 double (`1e999`): RFC 8259 §6 warns that these
//!   do not interoperate, and JavaScript clients read them back as `Infinity`;
//! - the exact decimal text: with `arbitrary_precision` serde_json still rewrites exponents
//!   (`1E-22` → `1e-22`, `1e5` → `1e+5`), breaking SMR's invariant that stored JSON keeps what
//!   was received (FHIR decimals carry their precision in their text).
//!
//! [`parse`] reads UTF-8 JSON (RFC 8259) into a [`Value`] and rejects duplicate keys, numbers
//! that are not finite doubles and nesting deeper than [`MAX_DEPTH`], keeping every number's
//! text exactly as sent. [`check`] applies the same rules without building a value, for bodies
//! that are read another way afterwards (CDS Hooks requests keep their prefetch as raw text).
//! Errors name the offending key or path.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde_json::{Map, Number, Value};

/// Deepest nesting of arrays and objects accepted. FHIR resources, Bundles of them and CDS
/// Hooks requests nest a few dozen levels at most; the limit keeps the recursive reader (and
/// every recursive walk after it) far from the stack's end.
pub const MAX_DEPTH: usize = 100;

/// Why a body is not acceptable JSON, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}{}", at(.path))]
pub struct JsonError {
    pub kind: JsonErrorKind,
    /// Where in the document: `entry[2].resource.valueQuantity` (empty at the top level).
    pub path: String,
    /// Byte offset in the input.
    pub offset: usize,
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" (at {path})")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonErrorKind {
    /// Not JSON at all: what was expected and the byte offset.
    Syntax(String),
    /// An object names this key twice.
    DuplicateKey(String),
    /// A number (its text) that is not a finite IEEE 754 double.
    NumberOutOfRange(String),
    /// Arrays and objects nest deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl fmt::Display for JsonErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonErrorKind::Syntax(msg) => write!(f, "body is not valid JSON: {msg}"),
            JsonErrorKind::DuplicateKey(key) => write!(
                f,
                "duplicate key '{key}': a JSON object must not name a key twice, as readers \
                 disagree on which value counts"
            ),
            JsonErrorKind::NumberOutOfRange(text) => write!(
                f,
                "number '{text}' is outside the range of a 64-bit floating-point number \
                 (clients would read it as Infinity)"
            ),
            JsonErrorKind::TooDeep => {
                write!(
                    f,
                    "JSON nests arrays and objects deeper than {MAX_DEPTH} levels"
                )
            }
        }
    }
}

/// Reads a JSON document strictly (see the module documentation).
pub fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    let text = utf8(bytes)?;
    Reader::<true>::new(text).document()
}

/// [`parse`] for text already known to be UTF-8.
pub fn parse_str(text: &str) -> Result<Value, JsonError> {
    Reader::<true>::new(text).document()
}

/// Applies [`parse`]'s rules without building a value.
pub fn check(bytes: &[u8]) -> Result<(), JsonError> {
    let text = utf8(bytes)?;
    Reader::<false>::new(text).document().map(|_| ())
}

fn utf8(bytes: &[u8]) -> Result<&str, JsonError> {
    std::str::from_utf8(bytes).map_err(|e| JsonError {
        kind: JsonErrorKind::Syntax(format!(
            "invalid UTF-8 at byte {} (RFC 8259 §8.1 requires UTF-8)",
            e.valid_up_to()
        )),
        path: String::new(),
        offset: e.valid_up_to(),
    })
}

/// One step of the path to an error, collected while the error unwinds (so a successful read
/// never pays for path bookkeeping).
enum Step {
    Key(String),
    Index(usize),
}

struct Failure {
    kind: JsonErrorKind,
    offset: usize,
    /// Innermost step first.
    steps: Vec<Step>,
}

impl Failure {
    fn within(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    fn into_error(self) -> JsonError {
        let mut path = String::new();
        for step in self.steps.iter().rev() {
            match step {
                Step::Key(k) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                }
                Step::Index(i) => {
                    path.push('[');
                    path.push_str(&i.to_string());
                    path.push(']');
                }
            }
        }
        JsonError {
            kind: self.kind,
            path,
            offset: self.offset,
        }
    }
}

type Res<T> = Result<T, Failure>;

/// A recursive-descent reader over UTF-8 text. `BUILD` selects whether values are built
/// ([`parse`]) or only checked ([`check`]: every value is `Null`, arrays are not collected).
struct Reader<'a, const BUILD: bool> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

/// Objects with more keys than this check duplicates through a hash set instead of a scan.
const LINEAR_KEYS: usize = 16;

impl<'a, const BUILD: bool> Reader<'a, BUILD> {
    fn new(text: &'a str) -> Self {
        Reader {
            text,
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    fn document(mut self) -> Result<Value, JsonError> {
        let run = |r: &mut Self| -> Res<Value> {
            r.skip_ws();
            let v = r.value(0)?;
            r.skip_ws();
            if r.pos < r.bytes.len() {
                return Err(r.syntax("unexpected content after the JSON value"));
            }
            Ok(v)
        };
        run(&mut self).map_err(Failure::into_error)
    }

    fn fail(&self, kind: JsonErrorKind) -> Failure {
        Failure {
            kind,
            offset: self.pos,
            steps: Vec::new(),
        }
    }

    fn syntax(&self, msg: &str) -> Failure {
        let what = match self
            .text
            .get(self.pos..)
            .and_then(|rest| rest.chars().next())
        {
            Some(c) if !c.is_control() => format!("'{c}'"),
            Some(c) => format!("U+{:04X}", u32::from(c)),
            None => "the end of the input".to_owned(),
        };
        self.fail(JsonErrorKind::Syntax(format!(
            "{msg}, found {what} at byte {}",
            self.pos
        )))
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn value(&mut self, depth: usize) -> Res<Value> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => {
                let s = self.string()?;
                Ok(if BUILD {
                    Value::String(s.into_owned())
                } else {
                    Value::Null
                })
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            _ => Err(self.syntax("expected a JSON value")),
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Res<Value> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.syntax(&format!("expected '{word}'")))
        }
    }

    fn object(&mut self, depth: usize) -> Res<Value> {
        if depth > MAX_DEPTH {
            return Err(self.fail(JsonErrorKind::TooDeep));
        }
        self.pos += 1; // '{'
        let mut map = Map::new();
        // Check mode keeps only the keys, for the duplicate check.
        let mut keys: Vec<Cow<'a, str>> = Vec::new();
        let mut key_set: HashSet<Cow<'a, str>> = HashSet::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(if BUILD {
                Value::Object(map)
            } else {
                Value::Null
            });
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.syntax("expected a string key"));
            }
            let key_at = self.pos;
            let key = self.string()?;
            let duplicate = if BUILD {
                map.contains_key(key.as_ref())
            } else if keys.len() < LINEAR_KEYS && key_set.is_empty() {
                let dup = keys.contains(&key);
                keys.push(key.clone());
                dup
            } else {
                if key_set.is_empty() {
                    key_set.extend(keys.drain(..));
                }
                !key_set.insert(key.clone())
            };
            if duplicate {
                return Err(Failure {
                    kind: JsonErrorKind::DuplicateKey(key.into_owned()),
                    offset: key_at,
                    steps: Vec::new(),
                });
            }
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.syntax("expected ':' after an object key"));
            }
            self.pos += 1;
            self.skip_ws();
            let v = match self.value(depth) {
                Ok(v) => v,
                Err(f) => return Err(f.within(Step::Key(key.into_owned()))),
            };
            if BUILD {
                map.insert(key.into_owned(), v);
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(if BUILD {
                        Value::Object(map)
                    } else {
                        Value::Null
                    });
                }
                _ => return Err(self.syntax("expected ',' or '}' in an object")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Res<Value> {
        if depth > MAX_DEPTH {
            return Err(self.fail(JsonErrorKind::TooDeep));
        }
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(if BUILD {
                Value::Array(items)
            } else {
                Value::Null
            });
        }
        let mut i = 0;
        loop {
            self.skip_ws();
            let v = self.value(depth).map_err(|f| f.within(Step::Index(i)))?;
            if BUILD {
                items.push(v);
            }
            i += 1;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(if BUILD {
                        Value::Array(items)
                    } else {
                        Value::Null
                    });
                }
                _ => return Err(self.syntax("expected ',' or ']' in an array")),
            }
        }
    }

    /// RFC 8259 §6 number grammar; the text is kept as sent.
    fn number(&mut self) -> Res<Value> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.syntax("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.syntax("expected a digit after the decimal point"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.syntax("expected a digit in the exponent"));
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(self.syntax("a number must not have leading zeros"));
        }
        let text = &self.text[start..self.pos];
        // Underflow (1e-999) reads as 0, a finite double: only overflow cannot round-trip.
        if !text.parse::<f64>().is_ok_and(f64::is_finite) {
            return Err(Failure {
                kind: JsonErrorKind::NumberOutOfRange(text.to_owned()),
                offset: start,
                steps: Vec::new(),
            });
        }
        if !BUILD {
            return Ok(Value::Null);
        }
        // The text exactly as received. serde_json's own readers (and `Number::from_str`)
        // rewrite exponents; `from_string_unchecked` is how serde_json itself builds an
        // `arbitrary_precision` number from scanned text. The text was checked against the
        // JSON number grammar above, which is all that constructor requires; the unit test
        // `numbers_keep_their_text` pins the behaviour should serde_json ever change it.
        Ok(Value::Number(Number::from_string_unchecked(
            text.to_owned(),
        )))
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    /// A string starting at the opening quote; borrowed when it has no escapes.
    fn string(&mut self) -> Res<Cow<'a, str>> {
        self.pos += 1; // '"'
        let start = self.pos;
        // Fast path: no escapes.
        loop {
            match self.peek() {
                None => return Err(self.syntax("unterminated string")),
                Some(b'"') => {
                    let s = &self.text[start..self.pos];
                    self.pos += 1;
                    return Ok(Cow::Borrowed(s));
                }
                Some(b'\\') => break,
                Some(b) if b < 0x20 => {
                    return Err(self.syntax("control characters in strings must be escaped"));
                }
                Some(_) => self.pos += 1,
            }
        }
        let mut out = String::from(&self.text[start..self.pos]);
        loop {
            match self.peek() {
                None => return Err(self.syntax("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            let c = self.unicode_escape()?;
                            out.push(c);
                            continue;
                        }
                        _ => return Err(self.syntax("invalid escape")),
                    };
                    self.pos += 1;
                    out.push(c);
                }
                Some(b) if b < 0x20 => {
                    return Err(self.syntax("control characters in strings must be escaped"));
                }
                Some(_) => {
                    // Copy the run up to the next quote, backslash or control character.
                    let run_start = self.pos;
                    while let Some(b) = self.peek() {
                        if b == b'"' || b == b'\\' || b < 0x20 {
                            break;
                        }
                        self.pos += 1;
                    }
                    out.push_str(&self.text[run_start..self.pos]);
                }
            }
        }
    }

    /// After `\u`: four hex digits, and a low surrogate escape after a high one. A lone
    /// surrogate is not a Unicode scalar value and cannot be held in a string.
    fn unicode_escape(&mut self) -> Res<char> {
        let hi = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&hi) {
            if !self.text[self.pos..].starts_with("\\u") {
                return Err(self.syntax("a high surrogate escape must be followed by a low one"));
            }
            self.pos += 2;
            let lo = self.hex4()?;
            if !(0xDC00..0xE000).contains(&lo) {
                return Err(self.syntax("a high surrogate escape must be followed by a low one"));
            }
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else {
            hi
        };
        char::from_u32(code).ok_or_else(|| self.syntax("lone surrogate in a \\u escape"))
    }

    fn hex4(&mut self) -> Res<u32> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.syntax("expected four hex digits after \\u"))?;
        let v = u32::from_str_radix(digits, 16)
            .map_err(|_| self.syntax("expected four hex digits after \\u"))?;
        self.pos += 4;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn err(text: &str) -> JsonError {
        match parse(text.as_bytes()) {
            Ok(v) => panic!("{text} was accepted as {v}"),
            Err(e) => {
                assert_eq!(check(text.as_bytes()), Err(e.clone()), "check agrees");
                e
            }
        }
    }

    #[test]
    fn numbers_keep_their_text() {
        for text in [
            "1E-22",
            "1e5",
            "-0.000",
            "1.50",
            "0e0",
            "12345678901234567890123",
            "-1E+2",
        ] {
            let v = parse(text.as_bytes()).expect(text);
            assert_eq!(v.to_string(), text);
            let doc = format!("{{\"value\":{text}}}");
            assert_eq!(parse(doc.as_bytes()).expect(text).to_string(), doc);
        }
        assert_eq!(parse(b"1E-22").expect("number").as_f64(), Some(1e-22));
    }

    #[test]
    fn numbers_that_are_not_finite_doubles_are_rejected() {
        let e = err(r#"{"valueQuantity":{"value":1e999}}"#);
        assert_eq!(e.kind, JsonErrorKind::NumberOutOfRange("1e999".into()));
        assert_eq!(e.path, "valueQuantity.value");
        assert!(e.to_string().contains("1e999"), "{e}");
        err("-1E400");
        // Underflow reads as 0: finite, accepted.
        assert!(parse(b"1e-999").is_ok());
    }

    #[test]
    fn duplicate_keys_are_rejected_with_their_path() {
        let e = err(r#"{"a":1,"a":2}"#);
        assert_eq!(e.kind, JsonErrorKind::DuplicateKey("a".into()));
        assert_eq!(e.path, "");
        let e = err(r#"{"entry":[{"x":1},{"resource":{"id":"1","b":2,"id":"2"}}]}"#);
        assert_eq!(e.kind, JsonErrorKind::DuplicateKey("id".into()));
        assert_eq!(e.path, "entry[1].resource");
        // The same key spelled with an escape is the same key.
        err(r#"{"a":1,"\u0061":2}"#);
        // Many keys: the hash-set path.
        let mut many: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
        many.push("\"k7\":0".into());
        let e = err(&format!("{{{}}}", many.join(",")));
        assert_eq!(e.kind, JsonErrorKind::DuplicateKey("k7".into()));
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(err(&deep).kind, JsonErrorKind::TooDeep);
        // Far deeper than any stack would allow is still an error, not a crash.
        let abyss = "[".repeat(1_000_000);
        assert_eq!(err(&abyss).kind, JsonErrorKind::TooDeep);
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            ".5",
            "+1",
            "1e",
            "\"a",
            "\"\\x\"",
            "\"\u{1}\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "nul",
            "{} x",
            "{'a':1}",
            "NaN",
            "Infinity",
            "\u{feff}{}",
        ] {
            assert!(
                matches!(err(bad).kind, JsonErrorKind::Syntax(_)),
                "{bad:?} should be a syntax error"
            );
        }
        assert!(matches!(
            parse(b"{\"a\":\"\xff\"}").map_err(|e| e.kind),
            Err(JsonErrorKind::Syntax(_))
        ));
    }

    #[test]
    fn strings_and_structure() {
        let text = r#" { "s" : "a\"b\\c\/d\n\u00e9\ud83d\ude00" , "t" : [ true , false , null , { } , [ ] ] } "#;
        assert_eq!(
            parse(text.as_bytes()).expect("valid"),
            json!({"s": "a\"b\\c/d\né😀", "t": [true, false, null, {}, []]})
        );
        // Element order is kept (preserve_order).
        let v = parse(br#"{"z":1,"a":2}"#).expect("valid");
        assert_eq!(v.to_string(), r#"{"z":1,"a":2}"#);
        assert_eq!(check(text.as_bytes()), Ok(()));
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec((any::<String>(), inner), 0..8)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever serde_json writes, the strict reader reads back equal (and `check` accepts).
        #[test]
        fn serde_json_output_round_trips(v in arb_json()) {
            let text = serde_json::to_string(&v).expect("serialise");
            prop_assert_eq!(parse(text.as_bytes()).expect("parse back"), v.clone());
            prop_assert_eq!(check(text.as_bytes()), Ok(()));
            let pretty = serde_json::to_string_pretty(&v).expect("serialise");
            prop_assert_eq!(parse(pretty.as_bytes()).expect("parse back"), v);
        }
    }
}
