#!/usr/bin/env bash
# Proves that a backup restores, end to end, with the real binary:
#   1. starts `vigil serve` on a database and data folder of its own;
#   2. registers a user and uploads the portrait (one face: a detection,
#      its two images and an alarm);
#   3. takes `vigil backup` while that server runs;
#   4. restores it with `vigil restore` into a new database name and a new
#      data folder, and starts `vigil serve` there;
#   5. checks the user logs in, the detection is the same and its image has
#      the same bytes.
# Usage: scripts/restore-check.sh [VIGIL_BINARY]  (default target/debug/vigil)
# MEDIA_STORE=gridfs checks the GridFS store instead of the folder store.
# Without MONGODB_URI it runs itself under scripts/with-database.sh
# --ephemeral (a throwaway database); with one, it uses that server and
# drops the two databases it made when it ends. The last line is
# `restore-check: ok …` or the reason it failed.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${MONGODB_URI:-}" ]; then
  exec "$here/scripts/with-database.sh" --ephemeral -- "$0" "$@"
fi

vigil=${1:-$here/target/debug/vigil}
[ -x "$vigil" ] || { echo "restore-check: no vigil binary at $vigil (build it first)" >&2; exit 2; }
models=${VIGIL_MODELS_DIR:-$here/models}
portrait="$models/test-assets/astronaut.png"
[ -f "$portrait" ] || { echo "restore-check: $portrait is missing: run 'make models'" >&2; exit 2; }
media_store=${MEDIA_STORE:-fs}

# The developer's own VIGIL_* settings must not leak into the two servers.
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^VIGIL_' || true)

work=$(mktemp -d "${TMPDIR:-/tmp}/vigil-restore-check.XXXXXX")
suffix=$(basename "$work" | tr -c 'a-zA-Z0-9\n' _)
source_db="restore_check_src_$suffix"
restored_db="restore_check_dst_$suffix"
secret=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')
server_pid=

fail() { echo "restore-check: FAILED: $*" >&2; exit 1; }

stop_server() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}

cleanup() {
  stop_server
  if [ -x "$here/.venv/bin/python" ]; then
    "$here/.venv/bin/python" - "$MONGODB_URI" "$source_db" "$restored_db" <<'PY' 2>/dev/null || true
import sys, pymongo
client = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=3000)
for name in sys.argv[2:]:
    client.drop_database(name)
PY
  fi
  rm -rf "$work"
}
trap cleanup EXIT

json() { python3 -c 'import json, sys; v = json.load(sys.stdin)
for k in sys.argv[1].split("."): v = v[k]
print(v)' "$1"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_server DATABASE DATA_DIR: serves on a free port, sets $base and $server_pid.
start_server() {
  local port log
  port=$(free_port)
  log="$work/serve-$1.log"
  "$vigil" serve --mongodb-uri "$MONGODB_URI" --database "$1" --data-dir "$2" \
    --models-dir "$models" --media-store "$media_store" --jwt-secret "$secret" \
    --bind "127.0.0.1:$port" --workers 2 --shutdown-timeout-secs 2 2>"$log" &
  server_pid=$!
  base="http://127.0.0.1:$port"
  for _ in $(seq 1 300); do
    if curl -fsS "$base/readyz" >/dev/null 2>&1; then return 0; fi
    kill -0 "$server_pid" 2>/dev/null || { tail -n 20 "$log" >&2; fail "vigil serve on $1 exited"; }
    sleep 0.2
  done
  tail -n 20 "$log" >&2
  fail "vigil serve on $1 was not ready within 60 s"
}

login() {
  curl -fsS "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"login\":\"checker\",\"password\":\"correct horse battery\"}" | json access_token
}

echo "restore-check: serving $source_db ($media_store store)" >&2
start_server "$source_db" "$work/source-data"
curl -fsS "$base/api/v1/auth/register" -H 'content-type: application/json' \
  -d '{"user_name":"checker","email":"checker@example.org","password":"correct horse battery"}' >/dev/null \
  || fail "register"
token=$(login) || fail "login on the source server"
curl -fsS "$base/api/v1/detections" -H "authorization: Bearer $token" \
  -H 'content-type: image/png' --data-binary "@$portrait" >"$work/detection.json" || fail "upload"
detection=$(json id <"$work/detection.json")
faces=$(json face_count <"$work/detection.json")
[ "$faces" -ge 1 ] || fail "the portrait gave $faces faces"
curl -fsS "$base$(json image_url <"$work/detection.json")" -o "$work/image.before" || fail "image before"

echo "restore-check: backing up while the server runs" >&2
"$vigil" backup --out "$work/backup" --mongodb-uri "$MONGODB_URI" --database "$source_db" \
  --data-dir "$work/source-data" --media-store "$media_store" || fail "vigil backup"
stop_server

echo "restore-check: restoring into $restored_db" >&2
"$vigil" restore --from "$work/backup" --mongodb-uri "$MONGODB_URI" --database "$restored_db" \
  --data-dir "$work/restored-data" --media-store "$media_store" || fail "vigil restore"

start_server "$restored_db" "$work/restored-data"
token=$(login) || fail "the user cannot log in on the restored server"
curl -fsS "$base/api/v1/detections/$detection" -H "authorization: Bearer $token" \
  >"$work/restored.json" || fail "detection $detection is not on the restored server"
[ "$(json id <"$work/restored.json")" = "$detection" ] || fail "another detection came back"
[ "$(json face_count <"$work/restored.json")" = "$faces" ] || fail "the face count changed"
curl -fsS "$base$(json image_url <"$work/restored.json")" -o "$work/image.after" || fail "image after"
cmp -s "$work/image.before" "$work/image.after" || fail "the image's bytes differ"
stop_server

echo "restore-check: ok detection=$detection faces=$faces image_bytes=$(wc -c <"$work/image.after") media_store=$media_store"
