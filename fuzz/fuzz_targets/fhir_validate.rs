//! Arbitrary bytes as a FHIR resource body: JSON parse, then validation and
//! search-parameter extraction (what every create/update runs on client input).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = smr_fhir::validate::validate_resource(&value);
    let _ = smr_fhir::extract::extract(&value);
});
