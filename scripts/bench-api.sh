#!/usr/bin/env bash
# Starts a release vigil (quota and rate limit out of the way) on a free port
# against MONGODB_URI, runs scripts/bench_api.py at concurrency 1 and 8 (with an
# empty gallery, then with 1000 subjects x 3 faces), then 16 uploads at once of a
# 6300x6300 PNG (peak memory), stops it. VIGIL_BIN runs another build (a
# before/after comparison); other VIGIL_* settings pass through. With
# BENCH_REFERENCE=1 (`make bench-api`) the Python reference service
# (benches/reference_service.py: FastAPI, onnxruntime, motor, 2 workers) gets
# the same load, alternately, and the last lines are ratio_vs_reference@cN.
set -euo pipefail
cd "$(dirname "$0")/.."
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d)
ref_pid=
trap 'kill "$pid" $ref_pid 2>/dev/null || true; wait "$pid" $ref_pid 2>/dev/null || true; rm -rf "$work"' EXIT
ffmpeg -loglevel error -y -i models/test-assets/astronaut.png -vf scale=640:480 "$work/face-640x480.jpg"
# 39.7 megapixels (inside the default 40 Mpx limit) in ~100 KB: the face on a plain field.
ffmpeg -loglevel error -y -f lavfi -i color=c=gray:s=6300x6300 -i models/test-assets/astronaut.png \
  -filter_complex "[0][1]overlay=2800:2800" -frames:v 1 "$work/big-6300.png"
VIGIL_BIND=127.0.0.1:$port VIGIL_DATA_DIR=$work/data VIGIL_DATABASE=bench_$port \
VIGIL_DEFAULT_QUOTA=1000000 VIGIL_RATE_LIMIT_PER_SECOND=100000 RUST_LOG=warn \
  "${VIGIL_BIN:-${CARGO_TARGET_DIR:-target}/release/vigil}" serve &
pid=$!
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
reference=()
if [ "${BENCH_REFERENCE:-0}" = 1 ]; then
  ref_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  export REFERENCE_DATABASE=reference_$ref_port REFERENCE_DATA_DIR=$work/reference
  key=$(.venv/bin/python benches/reference_service.py --seed)
  .venv/bin/python -m uvicorn --app-dir benches reference_service:app --host 127.0.0.1 --port "$ref_port" \
    --workers 2 --log-level warning &
  ref_pid=$!
  for _ in $(seq 1 150); do curl -fsS "http://127.0.0.1:$ref_port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
  reference=(--reference "http://127.0.0.1:$ref_port" --reference-key "$key" --reference-pid "$ref_pid")
fi
python3 scripts/bench_api.py --server "http://127.0.0.1:$port" --image "$work/face-640x480.jpg" \
  --server-pid "$pid" --gallery "${BENCH_GALLERY:-1000}" --photos "${VIGIL_TEST_IDENTITIES_DIR:-../shared/data/identities}" \
  --big-image "$work/big-6300.png" "${reference[@]}" "$@"
