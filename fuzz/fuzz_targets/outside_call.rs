//! Text as an outside-call TSV (gene, diplotype, phenotype, activity score).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = smr_pgx::parse_outside_calls(&text);
});
