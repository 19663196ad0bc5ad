#!/usr/bin/env bash
# Starts a release vigil (rate limit out of the way) on a free port against
# MONGODB_URI and loads POST /telemetry/gps with wrk at concurrency 8, then
# GET /healthz (no database: the HTTP floor) as the reference, back to back.
# Prints requests/s, p50/p99 and the server's CPU time and memory per request.
set -euo pipefail
cd "$(dirname "$0")/.."
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d)
seconds=${BENCH_SECONDS:-20}
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
VIGIL_BIND=127.0.0.1:$port VIGIL_DATA_DIR=$work/data VIGIL_DATABASE=bench_$port \
VIGIL_RATE_LIMIT_PER_SECOND=1000000 RUST_LOG=warn \
  "${CARGO_TARGET_DIR:-target}/release/vigil" serve &
pid=$!
server=http://127.0.0.1:$port
for _ in $(seq 1 100); do curl -fsS "$server/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
name=bench$RANDOM$RANDOM
curl -fsS "$server/api/v1/auth/register" -H 'content-type: application/json' \
  -d "{\"user_name\":\"$name\",\"email\":\"$name@example.org\",\"password\":\"benchmark password\"}" >/dev/null
token=$(curl -fsS "$server/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"login\":\"$name\",\"password\":\"benchmark password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
export KEY
KEY=$(curl -fsS "$server/api/v1/api-keys" -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"name":"bench","scope":"telemetry"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
rss() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status"; }
hz=$(getconf CLK_TCK)

# label, then wrk's arguments
load() {
  local label=$1; shift
  local before out requests
  before=$(cpu)
  out=$(wrk --latency -t 2 -c 8 -d "${seconds}s" "$@")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  python3 - "$label" "$before" "$(cpu)" "$hz" "$requests" "$seconds" "$(rss)" <<PY
import re, sys
label, before, after, hz, requests, seconds, rss = sys.argv[1:]
out = """$out"""
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
def pct(p):
    m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", out, re.M)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
cpu_ms = (int(after) - int(before)) / int(hz) * 1000 / max(int(requests), 1)
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
print(f"{label:<18} concurrency=8 rps={rps:9.1f} p50_ms={pct(50):6.2f} p99_ms={pct(99):6.2f} "
      f"server_cpu_ms_per_request={cpu_ms:6.3f} server_rss_mib={rss} non_2xx={errors.group(1) if errors else 0}")
PY
}
load "healthz (floor)" "$server/healthz" >/dev/null
load "POST /telemetry/gps" -s scripts/bench-telemetry.lua "$server"
load "GET /healthz" "$server/healthz"
