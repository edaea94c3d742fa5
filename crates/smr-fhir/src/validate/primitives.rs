//! Lexical checks for FHIR R4 primitive values (http://hl7.org/fhir/R4/datatypes.html),
//! written by hand after the regular expressions of the R4 JSON Schema so no regex engine is
//! needed and nothing is compiled per call.

use super::tables::Prim;
use serde_json::Value;

/// Why a primitive value is wrong.
pub(super) enum PrimError {
    /// Wrong JSON type (e.g. a string where a number is required): `structure`.
    Type(&'static str),
    /// Right JSON type, bad content: `value`.
    Format(String),
}

/// R4: "strings SHALL NOT exceed 1MB in size".
const MAX_STRING_BYTES: usize = 1024 * 1024;

pub(super) fn check(prim: Prim, v: &Value) -> Result<(), PrimError> {
    match prim {
        Prim::Boolean => match v {
            Value::Bool(_) => Ok(()),
            _ => Err(PrimError::Type("a JSON boolean")),
        },
        Prim::Integer | Prim::PositiveInt | Prim::UnsignedInt => {
            let Value::Number(n) = v else {
                return Err(PrimError::Type("a JSON number"));
            };
            check_integer(prim, n.as_str())
        }
        Prim::Decimal => match v {
            // JSON's number grammar is exactly the R4 decimal regex; arbitrary_precision keeps
            // the text, so precision is preserved and nothing more needs checking.
            Value::Number(_) => Ok(()),
            _ => Err(PrimError::Type("a JSON number")),
        },
        _ => {
            let Value::String(s) = v else {
                return Err(PrimError::Type("a JSON string"));
            };
            check_text(prim, s)
        }
    }
}

fn check_integer(prim: Prim, text: &str) -> Result<(), PrimError> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let plain = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    // R4 integer is a signed 32-bit value; positiveInt and unsignedInt share its upper bound.
    let value = if plain {
        text.parse::<i64>().ok()
    } else {
        None
    };
    let ok = match (prim, value) {
        (_, None) => false,
        (Prim::PositiveInt, Some(n)) => (1..=i64::from(i32::MAX)).contains(&n),
        (Prim::UnsignedInt, Some(n)) => (0..=i64::from(i32::MAX)).contains(&n),
        (_, Some(n)) => (i64::from(i32::MIN)..=i64::from(i32::MAX)).contains(&n),
    };
    if ok {
        Ok(())
    } else {
        let range = match prim {
            Prim::PositiveInt => "a whole number from 1 to 2147483647",
            Prim::UnsignedInt => "a whole number from 0 to 2147483647",
            _ => "a whole number from -2147483648 to 2147483647",
        };
        Err(PrimError::Format(format!(
            "'{text}' is not a valid {}: must be {range}",
            prim.name()
        )))
    }
}

fn check_text(prim: Prim, s: &str) -> Result<(), PrimError> {
    if s.is_empty() {
        return Err(PrimError::Format(format!(
            "empty string is not a valid {} (FHIR JSON forbids empty values)",
            prim.name()
        )));
    }
    let ok = match prim {
        Prim::String | Prim::Markdown => {
            if s.len() > MAX_STRING_BYTES {
                return Err(PrimError::Format(format!(
                    "{} exceeds the R4 limit of 1MB",
                    prim.name()
                )));
            }
            // Control characters other than tab, CR and LF are not allowed.
            !s.chars()
                .any(|c| (c as u32) < 0x20 && !matches!(c, '\t' | '\r' | '\n'))
        }
        Prim::Code => is_code(s),
        Prim::Id => is_id(s),
        Prim::Uri | Prim::Url | Prim::Canonical => !s.chars().any(char::is_whitespace),
        Prim::Oid => is_oid(s),
        Prim::Uuid => s
            .strip_prefix("urn:uuid:")
            .is_some_and(|u| is_uuid(u, false)),
        Prim::Date => is_date(s),
        Prim::DateTime => is_datetime(s),
        Prim::Instant => is_instant(s),
        Prim::Time => is_time(s.as_bytes()),
        Prim::Base64Binary => is_base64(s),
        Prim::Boolean | Prim::Integer | Prim::PositiveInt | Prim::UnsignedInt | Prim::Decimal => {
            false
        }
    };
    if ok {
        Ok(())
    } else {
        Err(PrimError::Format(format!(
            "'{}' is not a valid {}{}",
            truncate(s),
            prim.name(),
            hint(prim)
        )))
    }
}

fn hint(prim: Prim) -> &'static str {
    match prim {
        Prim::Code => ": no leading, trailing or repeated whitespace",
        Prim::Id => ": 1-64 of A-Z, a-z, 0-9, '-' and '.'",
        Prim::Date => ": YYYY, YYYY-MM or YYYY-MM-DD, a real calendar date",
        Prim::DateTime => {
            ": YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss(.sss)+zone (Z or +hh:mm)"
        }
        Prim::Instant => ": YYYY-MM-DDThh:mm:ss(.sss) with a zone (Z or +hh:mm)",
        Prim::Time => ": hh:mm:ss(.sss)",
        Prim::Oid => ": urn:oid:<dotted digits>",
        Prim::Uuid => ": urn:uuid:<lower-case 8-4-4-4-12 hex>",
        Prim::Uri | Prim::Url | Prim::Canonical => ": no whitespace allowed",
        Prim::String | Prim::Markdown => ": control characters other than tab, CR, LF",
        _ => "",
    }
}

/// Keeps diagnostics readable when a huge value is rejected.
fn truncate(s: &str) -> &str {
    match s.char_indices().nth(80) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `[^\s]+(\s[^\s]+)*` with single spaces as the only allowed separators.
pub(super) fn is_code(s: &str) -> bool {
    let mut prev_space = true; // forbids a leading space
    for c in s.chars() {
        if c == ' ' {
            if prev_space {
                return false;
            }
            prev_space = true;
        } else if c.is_whitespace() {
            return false;
        } else {
            prev_space = false;
        }
    }
    !prev_space
}

/// `[A-Za-z0-9\-\.]{1,64}`.
pub(super) fn is_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `urn:oid:[0-2](\.(0|[1-9][0-9]*))+`.
pub(super) fn is_oid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("urn:oid:") else {
        return false;
    };
    let mut arcs = rest.split('.');
    let first_ok = matches!(arcs.next(), Some("0" | "1" | "2"));
    let mut count = 0;
    for arc in arcs {
        count += 1;
        let ok = !arc.is_empty()
            && arc.bytes().all(|b| b.is_ascii_digit())
            && (arc == "0" || !arc.starts_with('0'));
        if !ok {
            return false;
        }
    }
    first_ok && count >= 1
}

/// `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`: the R4 `uuid` type is lower
/// case; `allow_upper` accepts either case (RFC 4122 input rule, used for references).
pub(super) fn is_uuid(s: &str, allow_upper: bool) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => {
                c.is_ascii_digit()
                    || (b'a'..=b'f').contains(&c)
                    || (allow_upper && (b'A'..=b'F').contains(&c))
            }
        })
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Returns how many bytes of a `YYYY(-MM(-DD)?)?` prefix are valid and whether a full date
/// (with day) was read, or `None` when the date part is malformed. Years 0001-9999.
fn date_part(b: &[u8]) -> Option<(usize, bool)> {
    let year = digits(b.get(0..4)?)?;
    if year == 0 {
        return None;
    }
    if b.len() == 4 || b.get(4) != Some(&b'-') {
        return Some((4, false));
    }
    let month = digits(b.get(5..7)?)?;
    if !(1..=12).contains(&month) {
        return None;
    }
    if b.len() == 7 || b.get(7) != Some(&b'-') {
        return Some((7, false));
    }
    let day = digits(b.get(8..10)?)?;
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some((10, true))
}

pub(super) fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    matches!(date_part(b), Some((n, _)) if n == b.len())
}

/// `hh:mm:ss(.f+)?` with hh 00-23, mm 00-59, ss 00-60 (leap second, as R4 allows).
fn is_time(b: &[u8]) -> bool {
    time_len(b) == Some(b.len())
}

fn time_len(b: &[u8]) -> Option<usize> {
    let hh = digits(b.get(0..2)?)?;
    let mm = digits(b.get(3..5)?)?;
    let ss = digits(b.get(6..8)?)?;
    if b[2] != b':' || b[5] != b':' || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let mut n = 8;
    if b.get(8) == Some(&b'.') {
        let frac = b[9..].iter().take_while(|c| c.is_ascii_digit()).count();
        if frac == 0 {
            return None;
        }
        n = 9 + frac;
    }
    Some(n)
}

/// `Z` or `(+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)`.
fn is_zone(b: &[u8]) -> bool {
    if b == b"Z" {
        return true;
    }
    if b.len() != 6 || !matches!(b[0], b'+' | b'-') || b[3] != b':' {
        return false;
    }
    match (digits(&b[1..3]), digits(&b[4..6])) {
        (Some(h), Some(m)) => (h <= 13 && m <= 59) || (h == 14 && m == 0),
        _ => false,
    }
}

/// Full date, `T`, time with seconds, zone.
fn is_full_datetime(b: &[u8]) -> bool {
    let Some((10, true)) = date_part(b) else {
        return false;
    };
    if b.get(10) != Some(&b'T') {
        return false;
    }
    let rest = &b[11..];
    match time_len(rest) {
        Some(n) => is_zone(&rest[n..]),
        None => false,
    }
}

pub(super) fn is_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    match date_part(b) {
        Some((n, _)) if n == b.len() => true,
        Some((10, true)) => is_full_datetime(b),
        _ => false,
    }
}

pub(super) fn is_instant(s: &str) -> bool {
    is_full_datetime(s.as_bytes())
}

/// Base64 as the R4 schema's `(\s*([0-9a-zA-Z\+/=]){4}\s*)+`, also requiring `=` only as
/// trailing padding.
fn is_base64(s: &str) -> bool {
    let mut count = 0usize;
    let mut padding = 0usize;
    for b in s.bytes() {
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            b'=' => padding += 1,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' if padding == 0 => {}
            _ => return false,
        }
        count += 1;
    }
    count > 0 && count.is_multiple_of(4) && padding <= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        for ok in ["2024", "2024-02", "2024-02-29", "2000-02-29", "0001-01-01"] {
            assert!(is_date(ok), "{ok}");
            assert!(is_datetime(ok), "{ok}");
        }
        for bad in [
            "0000",
            "2023-02-29",
            "1900-02-29",
            "2024-13",
            "2024-1-01",
            "24",
            "2024-04-31",
            "2024-01-01T",
        ] {
            assert!(!is_date(bad), "{bad}");
        }
    }

    #[test]
    fn datetimes_and_instants() {
        for ok in [
            "2015-02-07T13:28:17-05:00",
            "2017-01-01T00:00:00Z",
            "2017-01-01T00:00:00.123456789+14:00",
            "2016-12-31T23:59:60Z",
        ] {
            assert!(is_datetime(ok), "{ok}");
            assert!(is_instant(ok), "{ok}");
        }
        for bad in [
            "2017-01-01T00:00Z",
            "2017-01-01T00:00:00",
            "2017-01-01T24:00:00Z",
            "2017-01-01T00:00:00+14:30",
            "2017-01-01T00:00:00.Z",
            "2017-01-01 00:00:00Z",
            "2017-01-01T00:00:00z",
        ] {
            assert!(!is_datetime(bad), "{bad}");
        }
        assert!(!is_instant("2017-01-01"));
        assert!(is_time(b"23:59:59.5") && !is_time(b"23:59") && !is_time(b"24:00:00"));
    }

    #[test]
    fn codes_ids_oids_uuids() {
        assert!(is_code("active") && is_code("a b") && is_code("<="));
        assert!(!is_code(" a") && !is_code("a ") && !is_code("a  b") && !is_code("a\tb"));
        assert!(is_id("med0301") && is_id("a.b-C") && !is_id("a_b") && !is_id(&"x".repeat(65)));
        assert!(is_oid("urn:oid:1.2.840.10008") && !is_oid("urn:oid:3.1") && !is_oid("urn:oid:1"));
        assert!(!is_oid("urn:oid:1.02"));
        assert!(is_uuid("a11a6118-634e-4e7e-a01b-cc2addb1b993", false));
        assert!(!is_uuid("A11A6118-634E-4E7E-A01B-CC2ADDB1B993", false));
        assert!(is_uuid("A11A6118-634E-4E7E-A01B-CC2ADDB1B993", true));
        assert!(!is_uuid("g11a6118-634e-4e7e-a01b-cc2addb1b993", true));
    }

    #[test]
    fn integers_by_text() {
        let int = |t: &str| check_integer(Prim::Integer, t).is_ok();
        assert!(int("0") && int("-2147483648") && int("2147483647"));
        assert!(!int("2147483648") && !int("1.0") && !int("1e2"));
        assert!(check_integer(Prim::PositiveInt, "0").is_err());
        assert!(check_integer(Prim::UnsignedInt, "0").is_ok());
        assert!(check_integer(Prim::UnsignedInt, "-1").is_err());
    }

    #[test]
    fn base64() {
        assert!(
            is_base64("aGVsbG8=")
                && is_base64("aGVs\nbG8h")
                && !is_base64("aGVsbG8")
                && !is_base64("a=bc")
        );
    }
}
