#!/usr/bin/env bash
# `make run`'s build: says what it is doing and roughly how long, since a
# first build compiles ~440 crates and looks hung to anyone who has not
# seen one.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-release}
target=${CARGO_TARGET_DIR:-target}
cores=$(nproc 2>/dev/null || echo 2)
if [ -x "$target/$profile/vigil" ]; then
  echo "==> building vigil ($profile): only what changed is rebuilt: seconds if nothing did, minutes after editing the sources"
else
  # Measured cold: 10 min 09 s on 2 cores, 20 CPU-minutes, nearly all of
  # it in parallel (docs/contributing.md, "Build time"): 20/cores + 1.
  minutes=$(( 20 / cores + 1 ))
  echo "==> first build of vigil ($profile profile, $cores cores): about $minutes minutes; later builds rebuild only what changed"
  echo "    (the release page's binary and the container image skip this: see the README)"
fi
start=$(date +%s)
${CARGO:-cargo} build --profile "$profile" -p vigil-bin --bin vigil
echo "==> vigil built in $(( $(date +%s) - start )) s: $target/$profile/vigil"
