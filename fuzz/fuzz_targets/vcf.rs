//! Text as an uploaded VCF: genotype collection against the builtin PharmCAT-style
//! allele definitions, then gene calling (`smr_pgx::vcf::call_vcf`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use smr_pgx::vcf::{DefinitionSet, call_vcf};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The builtin definitions are compiled in; if they failed to parse the unit tests
    // would already fail, so there is nothing to fuzz here.
    let Ok(definitions) = DefinitionSet::builtin() else {
        return;
    };
    let _ = call_vcf(&text, definitions);
});
