#!/usr/bin/env bash
# `make run`'s build: says what it is doing and roughly how long, since a
# first build compiles ~400 crates and looks hung to anyone who has not
# seen one (figures: README, "A first build").
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-release}
target=${CARGO_TARGET_DIR:-target}
cores=$(nproc 2>/dev/null || echo 2)
if [ -x "$target/$profile/vigil" ]; then
  echo "==> building vigil ($profile): incremental, usually well under a minute unless the sources changed"
else
  # ~22 CPU-minutes of compiling, most of it parallel: ~12 min on 2 cores.
  minutes=$(( (22 + cores - 1) / cores + 1 ))
  echo "==> first build of vigil ($profile profile, $cores cores): about $minutes minutes; later builds are incremental"
  echo "    (a prebuilt binary and a container image skip this: see the README's \"Installing without compiling\")"
fi
start=$(date +%s)
${CARGO:-cargo} build --profile "$profile" -p vigil-bin --bin vigil
echo "==> vigil built in $(( $(date +%s) - start )) s: $target/$profile/vigil"
