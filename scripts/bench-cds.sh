#!/usr/bin/env bash
# HTTP load test of the CDS Hooks order-select service (smr-pgx-order-select) with wrk, on
# loopback only, bounded in time.
#
# Starts the release `smr serve` on 127.0.0.1 with a temporary data directory (embedded SQLite,
# no synthetic population), creates one Patient, imports a PharmCAT outside-call file for it
# (POST /fhir/Patient/{id}/$pgx-outside-calls: CYP2C19 *2/*2 poor metabolizer, CYP2D6 *1/*1,
# ...), checks the cards of each request once with curl, then runs wrk for each scenario:
#
#   clopidogrel-prefetch  Clopidogrel 75mg tablets (dm+d 319799004), prefetch supplied
#                         (patient + genotypes searchset Bundle): no store access
#   clopidogrel-store     the same order without prefetch: SMR searches its store for the
#                         patient's genotype/phenotype Observations
#   paracetamol-prefetch  Paracetamol 500mg tablets (dm+d 39720311000001101), no PGx relevance,
#                         prefetch supplied
#   paracetamol-store     the same without prefetch
#   healthz               GET /healthz: the HTTP + wrk floor on this machine (no CDS work)
#
# MEDICINES [20] current medicines are written for the patient first (a GP's repeat list: 14 by
# dm+d code, 6 by text), so every order-select also runs the medicines safety checks
# (interactions, duplication, allergy, renal) over a 20-medicine record, as in practice;
# MEDICINES=0 gives the PGx-only figures of the earlier runs.
#
# Requests carry a GP's bearer token (made with `smr token` from the server's data directory);
# the patient is registered with that GP's practice, so the GP has a care relationship.
#
# then stops the server (trap) and removes its data.
#
# Usage:
#   CARGO_TARGET_DIR=/work/target-bench cargo build --release -p smr-cli
#   CARGO_TARGET_DIR=/work/target-bench scripts/bench-cds.sh
#
# Environment (defaults in brackets):
#   CARGO_TARGET_DIR [target]  where the release binary is (or SMR_BIN)
#   DURATION [20s]  CONNECTIONS [200]  THREADS [2]  PORT [18090]  WARMUP [3s]
#   SCENARIOS ["clopidogrel-prefetch clopidogrel-store paracetamol-prefetch paracetamol-store"]
#   PROFILE [0]  1: `perf record -g` the server for PROFILE_SECONDS [5] during the
#                PROFILE_SCENARIO [clopidogrel-store] run and print the top symbols;
#                PERF_DATA [unset]: also keep the perf.data file there;
#                PERF_RECORD_OPTS ["-F 999 -g"], e.g. "-F 499 --call-graph dwarf"
#
# Needs wrk (Debian: apt-get install -y wrk), curl and jq (perf for PROFILE=1). Prints one
# RESULT line per scenario, the server's CPU time per request, and `uptime` before and after.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SMR=${SMR_BIN:-$TARGET_DIR/release/smr}
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-200}
THREADS=${THREADS:-2}
PORT=${PORT:-18090}
WARMUP=${WARMUP:-3s}
SCENARIOS=${SCENARIOS:-clopidogrel-prefetch clopidogrel-store paracetamol-prefetch paracetamol-store healthz}
PROFILE=${PROFILE:-0}
MEDICINES=${MEDICINES:-20}
PROFILE_SCENARIO=${PROFILE_SCENARIO:-clopidogrel-store}
PROFILE_SECONDS=${PROFILE_SECONDS:-5}
HOST=127.0.0.1
BASE="http://$HOST:$PORT"
SERVICE_PATH=/cds-services/smr-pgx-order-select
LUA="$HERE/bench-cds.lua"
FIXTURE="$ROOT/crates/smr-server/tests/fixtures/cds/order-select.json"

die() { echo "bench-cds: $*" >&2; exit 1; }
for tool in wrk curl jq; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install -y $tool)"
done
[[ $PROFILE == 1 ]] && { command -v perf >/dev/null || die "perf is missing (PROFILE=1)"; }
[[ -x $SMR ]] || die "$SMR missing; run: cargo build --release -p smr-cli"
[[ -f $LUA && -f $FIXTURE ]] || die "$LUA or $FIXTURE missing"

WORK=$(mktemp -d -t smr-bench-cds.XXXXXX)
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== machine: $(nproc) CPUs, $(uname -r); wrk $(wrk --version 2>&1 | head -1 | awk '{print $2}')"
echo "== uptime before: $(uptime)"

# --rate-limit 0: the load comes from one test user standing for many prescribers, and the
# per-user limit (50/s by default) would turn nearly every request into a 429.
RUST_LOG=warn "$SMR" serve --data-dir "$WORK/data" --listen "$HOST:$PORT" --synthetic-patients 0 \
    --rate-limit 0 >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do # at most ~10 s
    curl -sf -m 1 "$BASE/healthz" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
curl -sf -m 1 "$BASE/healthz" >/dev/null || { cat "$WORK/server.log" >&2; die "server did not start"; }
echo "== server pid $SERVER_PID on $BASE (data in $WORK/data)"

# Tokens: a back-end system for the setup, a GP of the patient's practice for the CDS calls.
PRACTICE=Y90001
SYSTEM_TOKEN=$("$SMR" token --data-dir "$WORK/data" --role system --org Y90000 --user bench-loader --ttl 2h | tail -1)
GP_TOKEN=$("$SMR" token --data-dir "$WORK/data" --role gp --org "$PRACTICE" --user bench-gp --ttl 2h | tail -1)
export BENCH_CDS_TOKEN=$GP_TOKEN
AUTH=(-H "Authorization: Bearer $SYSTEM_TOKEN")

# One Patient, registered with the GP's practice.
PATIENT=$(curl -sf -m 10 "${AUTH[@]}" -H 'Content-Type: application/fhir+json' --data-binary \
    '{"resourceType":"Patient","name":[{"family":"Bench","given":["Cds"]}],"gender":"female","birthDate":"1948-03-14","generalPractitioner":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"'"$PRACTICE"'"}}]}' \
    "$BASE/fhir/Patient" | jq -r .id)
[[ -n $PATIENT && $PATIENT != null ]] || die "creating the Patient failed"

# PharmCAT outside-call file: gene, diplotype (phenotype and activity score columns omitted:
# SMR interprets the diplotype with the CPIC tables).
printf '# PharmCAT outside calls (bench-cds)\nCYP2C19\t*2/*2\nCYP2D6\t*1/*1\nCYP2C9\t*1/*1\nCYP3A5\t*3/*3\nTPMT\t*1/*1\nSLCO1B1\t*1/*1\n' \
    >"$WORK/calls.tsv"
GENES=$(grep -vc '^#' "$WORK/calls.tsv")
imported=$(curl -sf -m 30 "${AUTH[@]}" -H 'Content-Type: text/tab-separated-values' --data-binary @"$WORK/calls.tsv" \
    "$BASE/fhir/Patient/$PATIENT/\$pgx-outside-calls" | jq '.entry | length') \
    || die "importing the outside calls failed"
echo "== Patient/$PATIENT: $GENES outside calls imported -> $imported resources (Observations + Provenance)"

# The genotypes prefetch exactly as the discovery template asks for it.
curl -sf -m 10 "${AUTH[@]}" -G "$BASE/fhir/Observation" --data-urlencode "patient=$PATIENT" \
    --data-urlencode 'code=http://loinc.org|84413-4,http://loinc.org|53040-2' >"$WORK/genotypes.json" \
    || die "genotype search failed"
total=$(jq .total "$WORK/genotypes.json")
[[ $total -eq $((2 * GENES)) ]] || die "genotype search returned $total, expected $((2 * GENES))"
echo "== genotypes prefetch Bundle: $total Observations, $(wc -c <"$WORK/genotypes.json") bytes"

# The current medicines: one transaction of active GP MedicationRequests.
if [[ $MEDICINES -gt 0 ]]; then
    MEDS='[{"c":"39733011000001106"},{"c":"317291008"},{"c":"318902004"},{"c":"317972000"},{"c":"319773006"},
      {"c":"322236009"},{"c":"39704111000001102"},{"c":"318956006"},{"c":"321745007"},{"c":"325427002"},
      {"c":"39113611000001102"},{"c":"317309001"},{"c":"39720311000001101"},{"c":"320000009"},
      {"t":"Amlodipine 5mg tablets"},{"t":"Metformin 500mg tablets"},{"t":"Levothyroxine sodium 50microgram tablets"},
      {"t":"Bisoprolol 2.5mg tablets"},{"t":"Gliclazide 80mg tablets"},{"t":"Allopurinol 100mg tablets"}]'
    jq -n --argjson meds "$MEDS" --arg p "$PATIENT" --argjson n "$MEDICINES" '{resourceType: "Bundle", type: "transaction",
        entry: [$meds[:$n][] | {request: {method: "POST", url: "MedicationRequest"}, resource: {
            resourceType: "MedicationRequest", status: "active", intent: "order",
            subject: {reference: ("Patient/" + $p)}, authoredOn: "2026-11-01",
            medicationCodeableConcept: (if .c then {coding: [{system: "https://dmd.nhs.uk", code: .c}]} else {text: .t} end),
            dosageInstruction: [{text: "one daily"}]}}]}' >"$WORK/medicines.json"
    written=$(curl -sf -m 30 "${AUTH[@]}" -H 'Content-Type: application/fhir+json' --data-binary @"$WORK/medicines.json" \
        "$BASE/fhir" | jq '[.entry[] | select(.response.status | startswith("201"))] | length') \
        || die "writing the current medicines failed"
    [[ $written -eq $MEDICINES ]] || die "wrote $written of $MEDICINES medicines"
    echo "== Patient/$PATIENT: $MEDICINES current medicines written (the safety checks read them on every call)"
fi

CLOPIDOGREL='{"coding":[{"system":"https://dmd.nhs.uk","code":"319799004","display":"Clopidogrel 75mg tablets"}]}'
PARACETAMOL='{"coding":[{"system":"https://dmd.nhs.uk","code":"39720311000001101","display":"Paracetamol 500mg tablets"}],"text":"Paracetamol 500mg tablets"}'
make_body() { # medication, with-prefetch (0/1)
    sed "s/PATIENT_ID/$PATIENT/g" "$FIXTURE" | jq -c --argjson med "$1" --argjson pf "$2" \
        --slurpfile g "$WORK/genotypes.json" --arg p "$PATIENT" '
        .context.draftOrders.entry[0].resource.medicationCodeableConcept = $med
        | if $pf == 1 then .prefetch = {patient: {resourceType: "Patient", id: $p}, genotypes: $g[0]} else . end'
}
make_body "$CLOPIDOGREL" 1 >"$WORK/clopidogrel-prefetch.json"
make_body "$CLOPIDOGREL" 0 >"$WORK/clopidogrel-store.json"
make_body "$PARACETAMOL" 1 >"$WORK/paracetamol-prefetch.json"
make_body "$PARACETAMOL" 0 >"$WORK/paracetamol-store.json"

# Check each scenario's answer once before timing it.
for scenario in $SCENARIOS; do
    [[ $scenario == healthz ]] && continue
    [[ -f $WORK/$scenario.json ]] || die "unknown scenario '$scenario'"
    reply=$(curl -sf -m 10 -H "Authorization: Bearer $GP_TOKEN" -H 'Content-Type: application/json' --data-binary @"$WORK/$scenario.json" \
        "$BASE$SERVICE_PATH") || die "$scenario: request failed"
    summary=$(jq -c '[.cards[] | {indicator, summary}]' <<<"$reply")
    case $scenario in
        clopidogrel-*) jq -e '[.cards[] | select(.indicator == "critical" and (.summary | test("CYP2C19")))] | length == 1' <<<"$reply" >/dev/null \
            || die "$scenario: expected the critical CYP2C19 card, got $summary" ;;
        paracetamol-*) jq -e '[.cards[] | select(.summary | test("CYP"))] | length == 0' <<<"$reply" >/dev/null \
            || die "$scenario: expected no PGx card, got $summary" ;;
    esac
    echo "== $scenario: request $(wc -c <"$WORK/$scenario.json") bytes, response $(wc -c <<<"$reply") bytes, cards $summary"
done

# CPU ticks (user + system) of the server, and busy/total ticks of the whole machine.
server_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
machine_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
HZ=$(getconf CLK_TCK)

run_wrk() { # scenario duration
    local body="$WORK/$1.json" path=$SERVICE_PATH
    [[ $1 == healthz ]] && body= && path=/healthz
    BENCH_CDS_BODY=$body BENCH_CDS_PATH=$path BENCH_CDS_SCENARIO=$1 \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$2" --latency -s "$LUA" "$BASE"
}

if [[ $WARMUP != 0 ]]; then
    first=${SCENARIOS%% *}
    echo "== warm-up: $first for $WARMUP (not reported)"
    run_wrk "$first" "$WARMUP" >/dev/null
fi

for scenario in $SCENARIOS; do
    echo
    if [[ $scenario == healthz ]]; then what="GET /healthz"; else what="POST $SERVICE_PATH, body $scenario.json"; fi
    echo "== $scenario ($what): wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -s scripts/bench-cds.lua $BASE"
    echo "   uptime before: $(uptime)"
    s0=$(server_ticks); read -r b0 t0 < <(machine_ticks)
    PERF_PID=
    if [[ $PROFILE == 1 && $scenario == "$PROFILE_SCENARIO" ]]; then
        (sleep 5; perf record ${PERF_RECORD_OPTS:--F 999 -g} -p "$SERVER_PID" -o "$WORK/perf.data" -- sleep "$PROFILE_SECONDS") \
            >"$WORK/perf.log" 2>&1 &
        PERF_PID=$!
    fi
    run_wrk "$scenario" "$DURATION" | tee "$WORK/$scenario.out" | grep -E '^RESULT|Requests/sec|Non-2xx|Socket errors' || true
    [[ -n $PERF_PID ]] && wait "$PERF_PID"
    s1=$(server_ticks); read -r b1 t1 < <(machine_ticks)
    requests=$(sed -n 's/^RESULT .* requests=\([0-9]*\) .*/\1/p' "$WORK/$scenario.out")
    if [[ -n $requests && $requests -gt 0 ]]; then
        awk -v s=$((s1 - s0)) -v hz="$HZ" -v n="$requests" -v b=$((b1 - b0)) -v t=$((t1 - t0)) -v cpus="$(nproc)" \
            'BEGIN { printf "   server CPU: %.1f s = %.0f us per request (%.2f of %d cores); whole machine busy %.0f%%\n",
                     s / hz, s / hz / n * 1e6, s / hz / (t / cpus / hz), cpus, 100 * b / t }'
    fi
    echo "   uptime after: $(uptime)"
    if [[ -n $PERF_PID ]]; then
        echo "   perf record ${PERF_RECORD_OPTS:--F 999 -g} -p $SERVER_PID for ${PROFILE_SECONDS}s; top symbols (self):"
        trim() { grep -E '^ +[0-9.]+%' | sed -E 's/^/   /; s/[[:space:]]+-[[:space:]]+-[[:space:]]*$//' | cut -c1-150; }
        perf report -i "$WORK/perf.data" --no-children --sort symbol --stdio >"$WORK/perf-self.txt" 2>/dev/null || true
        perf report -i "$WORK/perf.data" --children --sort symbol --stdio -g none >"$WORK/perf-children.txt" 2>/dev/null || true
        trim <"$WORK/perf-self.txt" | sed -n 1,30p
        echo "   top symbols (children, i.e. inclusive):"
        trim <"$WORK/perf-children.txt" | sed -n 1,50p
        if [[ -n ${PERF_DATA:-} ]]; then
            cp "$WORK/perf.data" "$PERF_DATA" && echo "   perf data kept in $PERF_DATA"
        fi
    fi
done

grep -iE 'error|panic' "$WORK/server.log" | head -5 | sed 's/^/server log: /' || true
echo
echo "== uptime after: $(uptime)"
