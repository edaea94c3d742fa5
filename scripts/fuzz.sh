#!/usr/bin/env bash
# Bounded fuzzing of SMR's untrusted-input parsers with cargo-fuzz (libFuzzer).
#
# Usage: scripts/fuzz.sh [TARGET...]        (default: every target in fuzz/fuzz_targets)
#   FUZZ_SECONDS   seconds per target (default 60), passed as -max_total_time
#   FUZZ_TIMEOUT   seconds one input may take before libFuzzer reports a hang (default 10)
#   CARGO_TARGET_DIR  where to build (default fuzz/target)
#
# Corpora live in fuzz/corpus/<target>/ (seeded below with small real inputs when empty);
# crashing inputs are written to fuzz/artifacts/<target>/. Exits non-zero if any target
# found a crash. See docs/fuzzing.md.
set -euo pipefail

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
FUZZ_TIMEOUT="${FUZZ_TIMEOUT:-10}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz="$root/fuzz"

# `--sanitizer none` needs no nightly-only -Z flag, so this builds on stable Rust.
# (With a sanitizer, cargo-fuzz passes `-Zsanitizer=...`, which needs nightly.)
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# Seed a corpus directory with small real inputs, only when it is empty.
seed() {
    local target="$1" dir="$fuzz/corpus/$1"
    mkdir -p "$dir"
    if [ -n "$(ls -A "$dir")" ]; then
        return
    fi
    case "$target" in
        fhir_validate)
            cp "$root/crates/smr-server/tests/fixtures/patient.json" "$dir/seed-patient.json"
            cp "$root/crates/smr-server/tests/fixtures/medication-request.json" "$dir/seed-medication-request.json"
            ;;
        search_query)
            # First byte picks the type (index into SERVED_TYPES, modulo its length).
            printf '\x0dpatient=123&status=active' >"$dir/seed-medreq"
            printf '\x11name:exact=Smith&birthdate=ge1970-01-01&_count=10&_sort=-_lastUpdated' >"$dir/seed-patient"
            printf '\x0fcode=http://loinc.org|1234-5&value-quantity=lt5.4|http://unitsofmeasure.org|mg&_include=Observation:subject' >"$dir/seed-observation"
            ;;
        jwt)
            printf 'Bearer eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4In0.c2ln' >"$dir/seed-bearer"
            printf 'patient/*.read user/MedicationRequest.cruds launch openid' >"$dir/seed-scopes"
            ;;
        vcf)
            cp "$root/crates/smr-pgx/tests/fixtures/vcf/cyp2c19_s2_s17.vcf" "$dir/seed-cyp2c19.vcf"
            cp "$root/crates/smr-pgx/tests/fixtures/vcf/cyp2c19_missing.vcf" "$dir/seed-cyp2c19-missing.vcf"
            ;;
        outside_call)
            printf 'CYP2C19\t*1/*2\n' >"$dir/seed-line.tsv"
            cp "$root/crates/smr-server/tests/fixtures/cds/outside-calls-cyp2c19-pm.tsv" "$dir/seed-pm.tsv"
            ;;
    esac
}

cd "$fuzz"
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

failed=()
for target in "${targets[@]}"; do
    seed "$target"
    echo "== fuzz.sh: $target for ${FUZZ_SECONDS}s" >&2
    if ! cargo fuzz run --sanitizer none "$target" "corpus/$target" -- \
        -max_total_time="$FUZZ_SECONDS" -timeout="$FUZZ_TIMEOUT" -print_final_stats=1; then
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz.sh: crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz.sh: no crashes in ${targets[*]}" >&2
