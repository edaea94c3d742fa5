//! SNOMED CT identifier checks: 6–18 digits, no leading zero, Verhoeff check digit.

const D: [[u8; 10]; 10] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
];

const P: [[u8; 10]; 8] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
];

/// True when the digit string (including its final check digit) passes Verhoeff.
/// False for an empty string or any non-digit.
pub fn verhoeff_valid(digits: &str) -> bool {
    if digits.is_empty() {
        return false;
    }
    let mut c: u8 = 0;
    for (i, b) in digits.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return false;
        }
        let p = P[i % 8][usize::from(b - b'0')];
        c = D[usize::from(c)][usize::from(p)];
    }
    c == 0
}

/// True when `code` has the form of a SNOMED CT identifier: 6 to 18 digits, no
/// leading zero, a valid Verhoeff check digit and a concept/description/relationship
/// partition identifier. dm+d codes are all concept ids (partition `00` or `10`).
pub fn is_sctid(code: &str) -> bool {
    let len = code.len();
    (6..=18).contains(&len)
        && !code.starts_with('0')
        && code.bytes().all(|b| b.is_ascii_digit())
        && code
            .get(len - 3..len - 1)
            .is_some_and(|partition| partition == "00" || partition == "10")
        && verhoeff_valid(code)
}
