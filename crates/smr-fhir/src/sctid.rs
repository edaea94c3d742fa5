//! SNOMED CT identifier syntax (https://confluence.ihtsdotools.org/display/DOCRELFMT/6.1+SCTID):
//! 6 to 18 decimal digits, no leading zero, last digit a Verhoeff check digit. dm+d codes are
//! SCTIDs in the UK extension, so the same check applies to `https://dmd.nhs.uk`.

pub const SNOMED_SYSTEM: &str = "http://snomed.info/sct";
pub const DMD_SYSTEM: &str = "https://dmd.nhs.uk";

// Verhoeff tables: the dihedral group D5 multiplication table, the position permutation and
// the inverse (the inverse is not needed to *check*, only to generate).
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

/// True when the digit string (check digit last) passes the Verhoeff check; false for an empty
/// string or any non-digit.
pub fn verhoeff_valid(digits: &str) -> bool {
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && verhoeff_ok(digits.as_bytes())
}

/// True when `code` is a valid SCTID whose partition (the two digits before the check digit)
/// says it identifies a concept (`00` core, `10` extension such as the UK's dm+d) rather than a
/// description or relationship: the only kind a Coding may carry.
pub fn is_concept_id(code: &str) -> bool {
    let len = code.len();
    sctid_problem(code).is_none()
        && code
            .get(len - 3..len - 1)
            .is_some_and(|partition| partition == "00" || partition == "10")
}

/// True when the digits (check digit last) satisfy the Verhoeff check.
fn verhoeff_ok(digits: &[u8]) -> bool {
    let mut c = 0u8;
    for (i, d) in digits.iter().rev().enumerate() {
        let digit = usize::from(d - b'0');
        c = D[usize::from(c)][usize::from(P[i % 8][digit])];
    }
    c == 0
}

/// Why a code is not a syntactically valid SCTID, or `None` when it is.
pub fn sctid_problem(code: &str) -> Option<&'static str> {
    let b = code.as_bytes();
    if !b.iter().all(u8::is_ascii_digit) {
        return Some("must contain only digits");
    }
    if !(6..=18).contains(&b.len()) {
        return Some("must be 6 to 18 digits long");
    }
    if b[0] == b'0' {
        return Some("must not start with 0");
    }
    if !verhoeff_ok(b) {
        return Some("fails the Verhoeff check digit");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_codes_pass() {
        for code in [
            "387517004",         // SNOMED CT: paracetamol (substance)
            "39720311000001101", // dm+d VMP: paracetamol 500mg tablets
            "322236009",         // SNOMED CT: paracetamol 500mg tablet
            "73211009",          // diabetes mellitus
            "38341003",          // hypertensive disorder
            "428673006",         // as coded in the NHS EPS examples
            "732936001",         // tablet (unit of presentation)
            "15517911000001104", // dm+d: methotrexate 10mg/0.2ml pre-filled syringes
            "16254211000001103", // dm+d AMP: Accupro 10mg tablets (PINCER ACEI codelist)
        ] {
            assert_eq!(sctid_problem(code), None, "{code}");
        }
    }

    #[test]
    fn corrupted_codes_fail() {
        // Every single-digit change and every adjacent transposition is caught by Verhoeff.
        let good = "39720311000001101";
        for i in 0..good.len() {
            for d in b'0'..=b'9' {
                let mut b = good.as_bytes().to_vec();
                if b[i] == d {
                    continue;
                }
                b[i] = d;
                let s = String::from_utf8(b).expect("ascii");
                assert!(sctid_problem(&s).is_some(), "{s}");
            }
        }
        for i in 0..good.len() - 1 {
            let mut b = good.as_bytes().to_vec();
            if b[i] != b[i + 1] {
                b.swap(i, i + 1);
                let s = String::from_utf8(b).expect("ascii");
                assert!(sctid_problem(&s).is_some(), "{s}");
            }
        }
        assert_eq!(sctid_problem("12345"), Some("must be 6 to 18 digits long"));
        assert_eq!(
            sctid_problem("1234567890123456789"),
            Some("must be 6 to 18 digits long")
        );
        assert_eq!(sctid_problem("038341003"), Some("must not start with 0"));
        assert_eq!(sctid_problem("3834100A"), Some("must contain only digits"));
    }
}
