//! Token lifetimes as people write them: `15m`, `8h`, `30d`, `3600s`, `90` (seconds).

use std::time::Duration;

/// Why a lifetime could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid token lifetime {text:?}: expected a whole number of seconds, or a whole number followed by s, m, h or d (e.g. 90, 15m, 8h, 30d){detail}"
)]
pub struct TtlError {
    text: String,
    detail: &'static str,
}

/// Reads a lifetime: a positive whole number with an optional unit `s`, `m`, `h` or `d`
/// (no unit: seconds). Zero and overflowing values are errors.
pub fn parse_ttl(text: &str) -> Result<Duration, TtlError> {
    let err = |detail| TtlError {
        text: text.chars().take(40).collect(),
        detail,
    };
    let trimmed = text.trim();
    let (digits, unit_secs) = match trimmed.char_indices().last() {
        None => return Err(err("")),
        Some((i, 's')) => (&trimmed[..i], 1),
        Some((i, 'm')) => (&trimmed[..i], 60),
        Some((i, 'h')) => (&trimmed[..i], 3600),
        Some((i, 'd')) => (&trimmed[..i], 86_400),
        Some(_) => (trimmed, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(""));
    }
    let value: u64 = digits.parse().map_err(|_| err(" (too large)"))?;
    let secs = value
        .checked_mul(unit_secs)
        .ok_or_else(|| err(" (too large)"))?;
    if secs == 0 {
        return Err(err(" (must be more than zero)"));
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert_eq!(parse_ttl("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_ttl("3600s"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl(" 2h "), Ok(Duration::from_secs(7200)));
    }

    #[test]
    fn errors_are_clear() {
        for bad in [
            "", "m", "15x", "1.5h", "-5m", "0", "0s", "h15", "15 m", "１５m",
        ] {
            let err = parse_ttl(bad).unwrap_err();
            assert!(err.to_string().contains("15m"), "{bad:?}: {err}");
        }
        assert!(
            parse_ttl("0")
                .unwrap_err()
                .to_string()
                .contains("more than zero")
        );
        assert!(
            parse_ttl("99999999999999999999d")
                .unwrap_err()
                .to_string()
                .contains("too large")
        );
        assert!(
            parse_ttl("999999999999999999d")
                .unwrap_err()
                .to_string()
                .contains("too large")
        );
    }
}
