#!/usr/bin/env bash
# HTTP load test of `smr serve` with wrk, on loopback only, bounded in time.
#
# Starts the release `smr serve` on 127.0.0.1 with a temporary data directory (embedded SQLite)
# or a fresh PostgreSQL database, seeds it (PATIENTS patients x PER_PATIENT MedicationRequests,
# through transaction Bundles), runs wrk for GET reads, GET searches by patient (returning
# PER_PATIENT results) and POST creates, then stops the server and removes its data.
#
# Usage:
#   cargo build --release -p smr-cli -p smr-bench
#   scripts/bench-http.sh [sqlite|postgres]
#
# Environment (defaults in brackets):
#   CARGO_TARGET_DIR [target]  where the release binaries are
#   DURATION [10s]  CONNECTIONS [16]  THREADS [1]  PORT [18080]
#   PATIENTS [1000]  PER_PATIENT [50]
#   PG_ADMIN_URL [postgres://postgres@127.0.0.1:5432/postgres]  (for the postgres engine)
#   SCENARIOS ["read search create"]
#
# Needs wrk (Debian: apt-get install -y wrk) and curl. Prints one RESULT line per scenario.
set -euo pipefail

ENGINE=${1:-sqlite}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
SMR=${SMR_BIN:-$TARGET_DIR/release/smr}
BENCH=${SMR_BENCH_BIN:-$TARGET_DIR/release/smr-bench}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-1}
PORT=${PORT:-18080}
PATIENTS=${PATIENTS:-1000}
PER_PATIENT=${PER_PATIENT:-50}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
SCENARIOS=${SCENARIOS:-read search create}
HOST=127.0.0.1
BASE="http://$HOST:$PORT"

for tool in wrk curl; do
    command -v "$tool" >/dev/null || { echo "bench-http: $tool is missing (apt-get install -y $tool)" >&2; exit 1; }
done
for bin in "$SMR" "$BENCH"; do
    [[ -x $bin ]] || { echo "bench-http: $bin missing; run: cargo build --release -p smr-cli -p smr-bench" >&2; exit 1; }
done

WORK=$(mktemp -d -t smr-bench-http.XXXXXX)
SERVER_PID=
PG_DB=
cleanup() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ -n $PG_DB ]]; then
        psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

SERVE_ARGS=(serve --listen "$HOST:$PORT" --data-dir "$WORK/data")
if [[ $ENGINE == postgres ]]; then
    PG_DB="smr_bench_http_$$"
    psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $PG_DB" >/dev/null
    SERVE_ARGS+=(--database-url "${PG_ADMIN_URL%/*}/$PG_DB")
elif [[ $ENGINE != sqlite ]]; then
    echo "usage: $0 [sqlite|postgres]" >&2
    exit 2
fi

RUST_LOG=warn "$SMR" "${SERVE_ARGS[@]}" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -sf "$BASE/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -sf "$BASE/healthz" >/dev/null || { echo "bench-http: server did not start" >&2; cat "$WORK/server.log" >&2; exit 1; }

echo "== seeding $PATIENTS patients x $PER_PATIENT MedicationRequests ($ENGINE)"
"$BENCH" --write-seed "$WORK/seed" --patients "$PATIENTS" --per-patient "$PER_PATIENT"
start=$(date +%s%N)
for f in "$WORK"/seed/seed-*.json; do
    curl -sf -o /dev/null -H 'Content-Type: application/fhir+json' --data-binary @"$f" "$BASE/fhir" \
        || { echo "bench-http: seeding $f failed" >&2; exit 1; }
done
echo "seeded in $(( ($(date +%s%N) - start) / 1000000 )) ms"
matches=$(curl -sf "$BASE/fhir/MedicationRequest?subject=Patient/bench-p000000&_count=$PER_PATIENT" | grep -o '"mode":"match"' | wc -l)
[[ $matches -eq $PER_PATIENT ]] || { echo "bench-http: search returned $matches, expected $PER_PATIENT" >&2; exit 1; }
echo "create body: $(wc -c <"$WORK/seed/create-template.json") bytes; search response: $(curl -sf "$BASE/fhir/MedicationRequest?subject=Patient/bench-p000000&_count=$PER_PATIENT" | wc -c) bytes"

# Shared Lua: per-thread random seed and a one-line summary (latencies in ms).
cat >"$WORK/common.lua" <<EOF
PATIENTS = $PATIENTS
PER_PATIENT = $PER_PATIENT
local threads = 0
function setup(thread)
    thread:set("thread_id", threads)
    threads = threads + 1
end
function init(args)
    math.randomseed(4242 + thread_id)
end
function done(summary, latency, requests)
    local e = summary.errors
    local errors = e.connect + e.read + e.write + e.status + e.timeout
    local secs = summary.duration / 1e6
    io.write(string.format(
        "RESULT %s requests=%d req/s=%.0f p50=%.3fms p90=%.3fms p99=%.3fms p99.9=%.3fms max=%.3fms errors=%d\n",
        SCENARIO, summary.requests, summary.requests / secs, latency:percentile(50) / 1000,
        latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
        latency.max / 1000, errors))
end
EOF

cat >"$WORK/read.lua" <<EOF
dofile("$WORK/common.lua")
SCENARIO = "read"
request = function()
    local path = string.format("/fhir/MedicationRequest/bench-m%06d-%03d",
        math.random(0, PATIENTS - 1), math.random(0, PER_PATIENT - 1))
    return wrk.format("GET", path, {["Accept"] = "application/fhir+json"})
end
EOF

cat >"$WORK/search.lua" <<EOF
dofile("$WORK/common.lua")
SCENARIO = "search"
request = function()
    local path = string.format("/fhir/MedicationRequest?subject=Patient/bench-p%06d&_count=%d",
        math.random(0, PATIENTS - 1), PER_PATIENT)
    return wrk.format("GET", path, {["Accept"] = "application/fhir+json"})
end
EOF

cat >"$WORK/create.lua" <<EOF
dofile("$WORK/common.lua")
SCENARIO = "create"
local f = assert(io.open("$WORK/seed/create-template.json"))
local template = f:read("*a")
f:close()
local at = template:find("__PATIENT__", 1, true)
local head, tail = template:sub(1, at - 1), template:sub(at + #"__PATIENT__")
local headers = {["Content-Type"] = "application/fhir+json", ["Accept"] = "application/fhir+json"}
request = function()
    local body = head .. string.format("bench-p%06d", math.random(0, PATIENTS - 1)) .. tail
    return wrk.format("POST", "/fhir/MedicationRequest", headers, body)
end
EOF

for scenario in $SCENARIOS; do
    echo "== $scenario: wrk -t$THREADS -c$CONNECTIONS -d$DURATION ($ENGINE)"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/$scenario.lua" "$BASE" | tee "$WORK/$scenario.out" | grep -E '^RESULT|Requests/sec|Non-2xx' || true
done
