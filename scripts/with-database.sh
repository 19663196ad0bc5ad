#!/usr/bin/env bash
# Runs a command with MONGODB_URI pointing at a database, starting one if needed:
#   1. MONGODB_URI already set  -> use it as is;
#   2. `mongod` on PATH         -> a single-node replica set (change streams need one);
#   3. otherwise                -> SecantusDB from the project's .venv.
# With --ephemeral the data lives in a temporary folder removed afterwards (tests);
# otherwise in $VIGIL_DATA_DIR/db with the log next to it. The database started
# here is stopped when the command ends or on Ctrl-C; the command's status is ours.
set -euo pipefail

ephemeral=0
if [ "${1:-}" = "--ephemeral" ]; then ephemeral=1; shift; fi
if [ "${1:-}" = "--" ]; then shift; fi
[ $# -gt 0 ] || { echo "usage: $0 [--ephemeral] -- COMMAND..." >&2; exit 2; }

if [ -n "${MONGODB_URI:-}" ]; then
  exec "$@"
fi

here=$(cd "$(dirname "$0")/.." && pwd)
if [ $ephemeral = 1 ]; then
  db_dir=$(mktemp -d "${TMPDIR:-/tmp}/vigil-db.XXXXXX")
  log="$db_dir.log"
else
  data_dir="${VIGIL_DATA_DIR:-./data}"
  db_dir="$data_dir/db"
  log="$data_dir/db.log"
fi
mkdir -p "$db_dir"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# The database gets its own session so that Ctrl-C in the terminal reaches only
# the command: vigil shuts down first (removing its presence rows) and the
# database is stopped after it, by the EXIT trap. (setsid does not fork here:
# a background job of a script is not a process group leader, so $! is the
# database's own pid.)
if command -v mongod >/dev/null 2>&1; then
  kind=mongod
  setsid mongod --dbpath "$db_dir" --port "$port" --bind_ip 127.0.0.1 --replSet vigil --logpath "$log" &
else
  kind=SecantusDB
  secantusd="$here/.venv/bin/secantusd-py"
  [ -x "$secantusd" ] || { echo "SecantusDB is not installed: run 'make venv' first" >&2; exit 1; }
  setsid "$secantusd" --host 127.0.0.1 --port "$port" --storage-path "$db_dir" --log-level WARNING >"$log" 2>&1 &
fi
db_pid=$!

cleanup() {
  kill "$db_pid" 2>/dev/null || true
  wait "$db_pid" 2>/dev/null || true
  if [ $ephemeral = 1 ]; then rm -rf "$db_dir" "$log"; fi
}
trap cleanup EXIT

for _ in $(seq 1 150); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  if ! kill -0 "$db_pid" 2>/dev/null; then
    echo "$kind exited during startup; its log ($log):" >&2; tail -n 20 "$log" >&2; exit 1
  fi
  sleep 0.2
done

if [ "$kind" = mongod ]; then
  "$here/.venv/bin/python" - "$port" <<'PY'
import sys, time, pymongo
client = pymongo.MongoClient(f"mongodb://127.0.0.1:{sys.argv[1]}/?directConnection=true")
try:
    client.admin.command("replSetInitiate", {"_id": "vigil", "members": [{"_id": 0, "host": f"127.0.0.1:{sys.argv[1]}"}]})
except pymongo.errors.OperationFailure as e:
    if "already initialized" not in str(e):
        raise
while not client.admin.command("hello").get("isWritablePrimary"):
    time.sleep(0.2)
PY
fi

export MONGODB_URI="mongodb://127.0.0.1:$port/"
echo "with-database: $kind on $MONGODB_URI (data: $db_dir, log: $log)" >&2

"$@" &
child=$!
# Ctrl-C reaches the whole process group; forwarding covers `kill` of this script too.
trap 'kill -TERM "$child" 2>/dev/null || true' INT TERM
status=0
wait "$child" || status=$?
# A trapped signal interrupts the first wait; wait again for the real exit status.
if kill -0 "$child" 2>/dev/null; then wait "$child" || status=$?; fi
exit "$status"
