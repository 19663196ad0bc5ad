#!/usr/bin/env bash
# Fuzzes the HTTP API with schemathesis against a real `vigil serve`: the
# document the server itself serves (/api-docs/openapi.json) is the contract,
# every check is on, every phase runs (examples, coverage, fuzzing, stateful),
# authenticated as an admin (the first account) so that admin operations are
# reached too. Exits non-zero on any failed check.
#
#   scripts/fuzz.sh [--max-time SECONDS] [--max-examples N] [--seed N] [-- ST_RUN_ARGS...]
#
# FUZZ_MAX_TIME (default 300), FUZZ_MAX_EXAMPLES, FUZZ_SEED, FUZZ_WORKERS
# (default 2) and FUZZ_REPORT_DIR (default: a temporary folder, removed
# unless something failed) set the same from the environment. VIGIL_BIN is
# the server binary (default: the debug build), FUZZ_VENV the virtualenv
# holding schemathesis (default .venv, where `make fuzz-venv` installs it).
#
# The run happens in a network namespace of its own when `unshare` and `ip`
# can make one (root, or a kernel allowing unprivileged user namespaces): the
# fuzzer adds cameras, whose sources (RTSP and HTTP URLs, some from the
# document's examples) ffmpeg would otherwise try to reach. Without one,
# camera creation is left out of the run. A throwaway database is started
# unless MONGODB_URI is set (scripts/with-database.sh). Schemathesis keeps
# the failures it found in target/schemathesis and replays them first on
# the next run.
set -euo pipefail
cd "$(dirname "$0")/.."

max_time=${FUZZ_MAX_TIME:-300}
max_examples=${FUZZ_MAX_EXAMPLES:-}
seed=${FUZZ_SEED:-}
workers=${FUZZ_WORKERS:-2}
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --max-time) max_time=$2; shift 2 ;;
    --max-examples) max_examples=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "usage: $0 [--max-time SECONDS] [--max-examples N] [--seed N] [-- ST_RUN_ARGS...]" >&2; exit 2 ;;
  esac
done
export FUZZ_MAX_TIME=$max_time FUZZ_MAX_EXAMPLES=$max_examples FUZZ_SEED=$seed FUZZ_WORKERS=$workers

venv=${FUZZ_VENV:-.venv}
st="$venv/bin/schemathesis"
[ -x "$st" ] || { echo "fuzz: schemathesis is not installed in $venv: run 'make fuzz-venv'" >&2; exit 1; }
vigil=${VIGIL_BIN:-${CARGO_TARGET_DIR:-target}/debug/vigil}
[ -x "$vigil" ] || { echo "fuzz: no server binary at $vigil (build it, or set VIGIL_BIN)" >&2; exit 1; }
export VIGIL_BIN=$vigil

# 1. A network namespace of its own, with only loopback (the database, the
#    server and the fuzzer all live in it).
if [ -z "${FUZZ_ISOLATED:-}" ]; then
  if command -v unshare >/dev/null && command -v ip >/dev/null \
    && unshare --net ip link set lo up 2>/dev/null; then
    exec unshare --net -- env FUZZ_ISOLATED=netns bash -c 'ip link set lo up && exec "$0" -- "$@"' "$0" "${extra[@]}"
  fi
  echo "fuzz: cannot make a network namespace (unshare --net): camera creation is left out" >&2
  export FUZZ_ISOLATED=none
fi
# 2. A throwaway database.
if [ -z "${MONGODB_URI:-}" ]; then
  exec scripts/with-database.sh --ephemeral -- "$0" -- "${extra[@]}"
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d "${TMPDIR:-/tmp}/vigil-fuzz.XXXXXX")
report=${FUZZ_REPORT_DIR:-$work/report}
pid=
status=1
finish() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ "$status" != 0 ]; then
    echo "fuzz: server log: $work/vigil.log; reports: $report" >&2
  else
    rm -rf "$work"
  fi
}
trap finish EXIT

# 3. The server: quota and rate limit out of the way (they answer 429, which
#    the document lists, but would stop the fuzzer from reaching anything
#    else), tokens that outlive the run, cheap password hashing (every
#    register and login hashes; OWASP's cost would make them most of the run).
VIGIL_BIND=127.0.0.1:$port VIGIL_DATA_DIR=$work/data VIGIL_DATABASE=fuzz_$port \
VIGIL_MODELS_DIR=${VIGIL_MODELS_DIR:-$PWD/models} VIGIL_ENV=development \
VIGIL_JWT_SECRET=fuzz-secret-that-is-long-enough-for-anything \
VIGIL_DEFAULT_QUOTA=1000000000 VIGIL_RATE_LIMIT_PER_SECOND=100000 \
VIGIL_ACCESS_TOKEN_TTL_SECS=$((max_time + 3600)) \
VIGIL_ARGON2_MEMORY_KIB=1024 VIGIL_ARGON2_ITERATIONS=1 \
VIGIL_LOGIN_MAX_FAILURES=1000000 VIGIL_LOGIN_MAX_FAILURES_PER_IP=1000000 \
VIGIL_WORKERS=2 VIGIL_SHUTDOWN_TIMEOUT_SECS=1 RUST_LOG=${RUST_LOG:-warn} \
  "$vigil" serve >"$work/vigil.log" 2>&1 &
pid=$!
base=http://127.0.0.1:$port
for _ in $(seq 1 300); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "fuzz: vigil exited; its log:" >&2; tail -n 30 "$work/vigil.log" >&2; exit 1; }
  sleep 0.2
done
curl -fsS "$base/readyz" >/dev/null || { echo "fuzz: vigil is not ready after 60 s" >&2; exit 1; }

# 4. The first account (an admin) and its access token.
json() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
post() { curl -fsS -H 'Content-Type: application/json' "$@"; }
post -d '{"user_name": "fuzzer", "email": "fuzzer@example.org", "password": "fuzz password 1"}' \
  "$base/api/v1/auth/register" >/dev/null
export FUZZ_TOKEN=$(post -d '{"login": "fuzzer", "password": "fuzz password 1"}' "$base/api/v1/auth/login" | json access_token)

# 5. The fuzzer.
args=(run "$base/api-docs/openapi.json" --url "$base"
  --phases examples,coverage,fuzzing,stateful --checks all
  --max-time "$max_time" --workers "$workers" --no-color
  --report junit,ndjson --report-dir "$report"
  # A WebSocket handshake, not an HTTP API: a plain GET is 400 by design.
  --exclude-path /ws)
[ -n "$max_examples" ] && args+=(--max-examples "$max_examples")
[ -n "$seed" ] && args+=(--seed "$seed")
[ "$FUZZ_ISOLATED" = none ] && args+=(--exclude-by "method == 'POST' and path == '/api/v1/cameras'")
cat >"$work/schemathesis.toml" <<'TOML'
[auth.openapi.bearer]
bearer = "${FUZZ_TOKEN}"
TOML
cache=${CARGO_TARGET_DIR:-target}/schemathesis
case $cache in /*) ;; *) cache=$PWD/$cache ;; esac
cat >>"$work/schemathesis.toml" <<TOML

[cache]
directory = "$cache"
TOML
# Rules the server keeps that no JSON Schema can state, each documented with
# its status in the operation's responses; here the fuzzer is told that a
# schema-valid request may meet them:
# - `cursor` is an opaque token the server hands out as `next_cursor`: one
#   made up is 400 `invalid_query`, so the fuzzer sends none of its own;
# - a telemetry `timestamp` past the server's clock (+300 s) is 400
#   `invalid_reading` (the bound moves with the clock), and photos and
#   batches are bodies the document describes only in prose;
# - an image body that does not decode is 422 `invalid_image` (a
#   multipart body without the `image` field is 400 `bad_request`);
# - `loop: true` for anything but a local file is 422 `validation_failed`.
cat >>"$work/schemathesis.toml" <<'TOML'

[parameters]
"query.cursor" = ""

[[operations]]
include-path-regex = "^/telemetry/"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429", "5xx"]

[[operations]]
include-path-regex = "^/api/v1/(detections|subjects/[^/]+/faces)$"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "415", "422", "429", "5xx"]

[[operations]]
include-path = "/api/v1/cameras"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429", "5xx"]
TOML
echo "fuzz: schemathesis against $base (isolation: $FUZZ_ISOLATED, budget ${max_time}s)" >&2
set +e
"$st" --config-file "$work/schemathesis.toml" "${args[@]}" "${extra[@]}"
status=$?
set -e
# A plain closing line (operations checked), so that a log read from its
# end shows this pass's outcome rather than pytest-style warnings.
python3 - "$report" "$status" <<'PY' || true
import glob, sys
import xml.etree.ElementTree as ET

tests = failed = skipped = 0
for path in glob.glob(f"{sys.argv[1]}/junit-*.xml"):
    for suite in ET.parse(path).getroot().iter("testsuite"):
        tests += int(suite.get("tests", 0))
        failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
if tests == 0 and sys.argv[2] != "0":
    failed = 1
print(f"fuzz: {tests - failed - skipped} passed, {failed} failed, {skipped} skipped")
PY
exit "$status"
