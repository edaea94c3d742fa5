//! Small readers of FHIR JSON shared by the view models: text at a JSON pointer, the display
//! of a CodeableConcept. Missing or oddly typed elements read as `None`, never a panic: the
//! pages show what is there.

use serde_json::Value;

/// The string at `pointer`, when there is one.
pub fn text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The items of the array at `pointer` (none when absent).
pub fn items<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// What a person reads for a CodeableConcept: its text, else the first coding's display,
/// else its first code.
pub fn concept(c: &Value) -> Option<String> {
    text(c, "/text")
        .or_else(|| {
            items(c, "/coding")
                .iter()
                .find_map(|coding| text(coding, "/display"))
        })
        .or_else(|| {
            items(c, "/coding")
                .iter()
                .find_map(|coding| text(coding, "/code"))
        })
}

/// The date part (`YYYY-MM-DD`) of a FHIR date or dateTime, and the time to the minute
/// when there is one (`YYYY-MM-DD HH:MM`): enough to read, no seconds or offsets.
pub fn short_time(value: &str) -> String {
    let date = value.get(..10).unwrap_or(value);
    match value.get(11..16) {
        Some(time) if value.as_bytes().get(10) == Some(&b'T') => format!("{date} {time}"),
        _ => date.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn concepts_and_times_read_what_is_there() {
        assert_eq!(
            concept(&json!({"coding": [{"code": "x", "display": "Ex"}]})).as_deref(),
            Some("Ex")
        );
        assert_eq!(
            concept(&json!({"coding": [{"code": "x"}]})).as_deref(),
            Some("x")
        );
        assert_eq!(concept(&json!({})), None);
        assert_eq!(short_time("2026-12-07T11:25:03.1Z"), "2026-12-07 11:25");
        assert_eq!(short_time("2026-12"), "2026-12");
    }
}
