//! Activity values and scores as exact hundredths.
//!
//! CPIC activity values are multiples of 0.25, so integer hundredths keep sums
//! exact and let scores be printed the way CPIC writes them ("1.0", "1.25").

/// Parses "1", "1.0", "0.25", "0.5" into hundredths. `None` for anything else,
/// including "n/a" (the caller decides what a missing value means).
pub(crate) fn parse_hundredths(text: &str) -> Option<u32> {
    let text = text.trim();
    let (int_part, frac_part) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text, ""),
    };
    if int_part.is_empty() || !int_part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac_part.bytes().all(|b| b.is_ascii_digit())
        || (text.contains('.') && frac_part.is_empty())
    {
        return None;
    }
    // Digits beyond the second decimal must be zeros, or the value is not representable.
    let (kept, rest) = frac_part.split_at(frac_part.len().min(2));
    if !rest.bytes().all(|b| b == b'0') {
        return None;
    }
    let whole: u32 = int_part.parse().ok()?;
    let mut frac: u32 = if kept.is_empty() {
        0
    } else {
        kept.parse().ok()?
    };
    if kept.len() == 1 {
        frac *= 10;
    }
    whole.checked_mul(100)?.checked_add(frac)
}

/// Formats hundredths the way CPIC writes activity scores: at least one decimal,
/// two only when needed ("0.0", "1.5", "1.25").
pub(crate) fn format_hundredths(value: u32) -> String {
    let whole = value / 100;
    let frac = value % 100;
    if frac.is_multiple_of(10) {
        format!("{whole}.{}", frac / 10)
    } else {
        format!("{whole}.{frac:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpic_values() {
        assert_eq!(parse_hundredths("1.0"), Some(100));
        assert_eq!(parse_hundredths("0.25"), Some(25));
        assert_eq!(parse_hundredths("0.5"), Some(50));
        assert_eq!(parse_hundredths("2"), Some(200));
        assert_eq!(parse_hundredths("2.250"), Some(225));
        assert_eq!(parse_hundredths("n/a"), None);
        assert_eq!(parse_hundredths("0.125"), None);
        assert_eq!(parse_hundredths("1."), None);
        assert_eq!(parse_hundredths(".5"), None);
        assert_eq!(parse_hundredths("-1"), None);
    }

    #[test]
    fn formats_like_cpic() {
        assert_eq!(format_hundredths(0), "0.0");
        assert_eq!(format_hundredths(100), "1.0");
        assert_eq!(format_hundredths(125), "1.25");
        assert_eq!(format_hundredths(150), "1.5");
        assert_eq!(format_hundredths(75), "0.75");
        assert_eq!(format_hundredths(400), "4.0");
    }
}
