-- wrk script for scripts/bench.sh: adds the headers a run needs, taken from the environment
-- (so that keys never appear on a command line), and prints one machine-readable line at the end.
--   BENCH_AUTHORIZATION  value of the Authorization header ("Bearer …"); unset: none
--   BENCH_HOST           value of the Host header (the amoCRM account host); unset: wrk's default
local authorization = os.getenv("BENCH_AUTHORIZATION")
local host = os.getenv("BENCH_HOST")
if authorization and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end
if host and host ~= "" then
  wrk.headers["Host"] = host
end

-- Latencies are in microseconds. non2xx counts answers outside 2xx/3xx; socket_errors counts
-- connect, read, write errors and requests that got no answer within wrk's timeout.
function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "BENCH requests=%d seconds=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "non2xx=%d socket_errors=%d bytes=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout, summary.bytes))
end
