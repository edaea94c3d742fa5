//! A search request: the first byte picks the resource type from the served types,
//! the rest is the raw query string, decoded as the server decodes it and parsed under
//! both strict and lenient handling.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smr_fhir::query::{Handling, parse};
use smr_fhir::resource_types::SERVED_TYPES;

fuzz_target!(|data: &[u8]| {
    let Some((&first, query)) = data.split_first() else {
        return;
    };
    if SERVED_TYPES.is_empty() {
        return;
    }
    let res_type = SERVED_TYPES[first as usize % SERVED_TYPES.len()].name;
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let _ = parse(res_type, &pairs, Handling::Strict);
    let _ = parse(res_type, &pairs, Handling::Lenient);
});
