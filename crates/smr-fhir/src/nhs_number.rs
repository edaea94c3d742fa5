//! NHS number validation (NHS Data Dictionary, "NHS NUMBER": Modulus 11 check digit).
//!
//! Digits 1–9 are weighted 10 down to 2; the check digit is `11 - (sum mod 11)`, where a
//! result of 11 becomes 0 and a result of 10 means the number is invalid (never issued).

pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";

/// True when `value` is ten ASCII digits with a valid Modulus 11 check digit.
/// Spaces are not accepted: the FHIR identifier value is the bare ten digits.
pub fn is_valid(value: &str) -> bool {
    let bytes = value.as_bytes();
    if bytes.len() != 10 || !bytes.iter().all(u8::is_ascii_digit) {
        return false;
    }
    match check_digit(&bytes[..9]) {
        Some(check) => check == bytes[9] - b'0',
        None => false,
    }
}

/// The check digit for nine leading digits (ASCII), or `None` when the number cannot exist.
pub fn check_digit(first_nine: &[u8]) -> Option<u8> {
    let sum: u32 = first_nine
        .iter()
        .zip((2..=10u32).rev())
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    match 11 - (sum % 11) {
        11 => Some(0),
        10 => None,
        c => Some(c as u8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_numbers() {
        // Published test numbers used in NHS EPS examples.
        assert!(is_valid("9449304130"));
        assert!(!is_valid("9449304131"));
        assert!(!is_valid("944930413"));
        assert!(!is_valid("944930413a"));
        assert!(!is_valid("944 930 4130"));
    }

    proptest! {
        #[test]
        fn exactly_one_check_digit_is_valid(n in 0u32..1_000_000_000) {
            let nine = format!("{n:09}");
            let valid: Vec<u8> = (0..10u8)
                .filter(|d| is_valid(&format!("{nine}{d}")))
                .collect();
            match check_digit(nine.as_bytes()) {
                Some(c) => prop_assert_eq!(valid, vec![c]),
                None => prop_assert!(valid.is_empty()),
            }
        }
    }
}
