//! Benchmark data: the integration tests' fixtures (a UK Core-like MedicationRequest with a
//! dm+d code, a Patient with an NHS number), made unique per resource.

use serde_json::{Value, json};
use smr_fhir::nhs_number;

const MEDICATION_REQUEST: &str =
    include_str!("../../smr-server/tests/fixtures/medication-request.json");
const PATIENT: &str = include_str!("../../smr-server/tests/fixtures/patient.json");

/// The MedicationRequest fixture for `subject` (`Patient/…` or a `urn:uuid:` placeholder), with
/// a fresh prescription order item number.
pub fn medication_request(subject: &str) -> Value {
    let mut mr: Value = serde_json::from_str(MEDICATION_REQUEST).expect("fixture is JSON");
    mr["subject"]["reference"] = json!(subject);
    mr["identifier"][0]["value"] = json!(uuid::Uuid::new_v4().to_string());
    mr
}

/// The Patient fixture with the given NHS number.
pub fn patient(nhs_number: &str) -> Value {
    let mut p: Value = serde_json::from_str(PATIENT).expect("fixture is JSON");
    p["identifier"][0]["value"] = json!(nhs_number);
    p
}

/// Valid, distinct NHS numbers (Modulus 11), from the 999 test range.
pub struct NhsNumbers {
    next: u32,
}

impl NhsNumbers {
    pub fn new() -> Self {
        NhsNumbers { next: 999_000_000 }
    }

    pub fn next_number(&mut self) -> String {
        loop {
            let nine = format!("{:09}", self.next);
            self.next += 1;
            if let Some(check) = nhs_number::check_digit(nine.as_bytes()) {
                return format!("{nine}{check}");
            }
        }
    }
}

/// A transaction Bundle: one new Patient (`urn:uuid:` fullUrl) and `size - 1`
/// MedicationRequests referring to it, as a GP system sending a new record would.
pub fn transaction_bundle(size: usize, nhs_number: &str) -> Value {
    let patient_url = format!("urn:uuid:{}", uuid::Uuid::new_v4());
    let mut entries = vec![json!({
        "fullUrl": patient_url,
        "resource": patient(nhs_number),
        "request": {"method": "POST", "url": "Patient"},
    })];
    for _ in 1..size.max(1) {
        entries.push(json!({
            "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            "resource": medication_request(&patient_url),
            "request": {"method": "POST", "url": "MedicationRequest"},
        }));
    }
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

/// A cheap deterministic pseudo-random index (SplitMix64), so runs pick the same keys.
pub fn pick(i: usize, n: usize) -> usize {
    let mut z = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % n.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nhs_numbers_are_valid_and_distinct() {
        let mut numbers_gen = NhsNumbers::new();
        let numbers: Vec<String> = (0..100).map(|_| numbers_gen.next_number()).collect();
        assert!(numbers.iter().all(|n| nhs_number::is_valid(n)));
        let distinct: std::collections::HashSet<_> = numbers.iter().collect();
        assert_eq!(distinct.len(), numbers.len());
    }

    #[test]
    fn fixtures_validate() {
        assert!(smr_fhir::validate::validate_resource(&medication_request("Patient/p1")).is_ok());
        assert!(smr_fhir::validate::validate_resource(&patient("9990000018")).is_ok());
    }

    #[test]
    fn bundle_has_the_requested_size() {
        let b = transaction_bundle(100, "9990000018");
        assert_eq!(b["entry"].as_array().map(Vec::len), Some(100));
    }

    #[test]
    fn pick_stays_in_range() {
        assert!((0..1000).all(|i| pick(i, 7) < 7));
    }
}
