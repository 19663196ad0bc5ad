#!/usr/bin/env bash
# Videos analysed on the server (issue 19): a 60-second 640x480 clip with a
# face, sampled at fps 2 (120 frames), through POST /api/v1/videos.
#   1. one instance, one video: wall time and frames/s;
#   2. one instance, BENCH_VIDEOS videos at once (default 2);
#   3. two instances on one database (GridFS, so either reads every video),
#      the same videos submitted alternately to each: the queue is shared.
# Also the server's CPU seconds per frame (from /proc). Release binary,
# against MONGODB_URI (make bench-videos starts a throwaway database).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/release/vigil"
videos=${BENCH_VIDEOS:-2}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

ffmpeg -loglevel error -y -loop 1 -t 60 -i models/test-assets/astronaut.png \
  -vf "scale=480:480,pad=640:480:80:0,fps=25,setsar=1" -c:v libx264 -pix_fmt yuv420p "$work/clip.mp4"

start() { # NAME DATABASE STORE; sets $server to PORT:PID
  local port pid
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  VIGIL_BIND=127.0.0.1:$port VIGIL_DATA_DIR=$work/$1 VIGIL_DATABASE=$2 VIGIL_MEDIA_STORE=$3 \
  VIGIL_JWT_SECRET=bench-secret-bench-secret-bench-secret \
  VIGIL_DEFAULT_QUOTA=1000000 VIGIL_RATE_LIMIT_PER_SECOND=100000 RUST_LOG=warn "$bin" serve &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 150); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
  server="$port:$pid"
}

run() { # LABEL COUNT "PORT PID"...
  local label=$1 count=$2
  shift 2
  python3 scripts/bench_videos.py --label "$label" --clip "$work/clip.mp4" --fps 2 --videos "$count" "$@"
}

start one "bench_videos_one_$$" fs
one=$server
run "one instance, 1 video" 1 "$one"
run "one instance, $videos videos" "$videos" "$one"
kill "${one#*:}"; wait "${one#*:}" 2>/dev/null || true

start a "bench_videos_two_$$" gridfs
a=$server
start b "bench_videos_two_$$" gridfs
run "two instances, $videos videos" "$videos" "$a" "$server"
