-- wrk script for scripts/bench-cds.sh: POSTs one fixed CDS Hooks request body over and over
-- and prints one RESULT line (latencies in ms) at the end.
--
-- Environment (set by bench-cds.sh):
--   BENCH_CDS_BODY      file holding the JSON request body (empty: a GET without body)
--   BENCH_CDS_PATH      request path, e.g. /cds-services/smr-pgx-order-select
--   BENCH_CDS_SCENARIO  name printed in the RESULT line
--   BENCH_CDS_TOKEN     bearer token sent with every request (empty: none)
--
-- No response() callback: it would make wrk parse every response in Lua and slow the load
-- generator down. Non-2xx/3xx responses are counted by wrk itself (summary.errors.status);
-- the script checks the cards of one response with curl before timing.

local body_file = os.getenv("BENCH_CDS_BODY") or ""
local body = ""
wrk.path = os.getenv("BENCH_CDS_PATH") or "/cds-services/smr-pgx-order-select"
wrk.headers["Accept"] = "application/json"
local token = os.getenv("BENCH_CDS_TOKEN") or ""
if token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
end
if body_file ~= "" then
    local f = assert(io.open(body_file, "rb"))
    body = f:read("*a")
    f:close()
    wrk.method = "POST"
    wrk.body = body
    wrk.headers["Content-Type"] = "application/json"
else
    wrk.method = "GET"
end

local scenario = os.getenv("BENCH_CDS_SCENARIO") or "order-select"

function done(summary, latency, requests)
    local e = summary.errors
    local socket_errors = e.connect + e.read + e.write + e.timeout
    local secs = summary.duration / 1e6
    io.write(string.format(
        "RESULT %s requests=%d req/s=%.0f p50=%.3fms p90=%.3fms p99=%.3fms p99.9=%.3fms max=%.3fms " ..
        "non2xx=%d socket_errors=%d (connect=%d read=%d write=%d timeout=%d) body=%dB\n",
        scenario, summary.requests, summary.requests / secs,
        latency:percentile(50) / 1000, latency:percentile(90) / 1000,
        latency:percentile(99) / 1000, latency:percentile(99.9) / 1000, latency.max / 1000,
        e.status, socket_errors, e.connect, e.read, e.write, e.timeout, #body))
end
