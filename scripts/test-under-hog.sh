#!/usr/bin/env bash
# `npm run test:hog`: the suite under a CPU hog — a busy loop per core — because no test
# may depend on the machine's speed: they wait on events and conditions, never on fixed
# sleeps (issue 14). CI (.ci/run) runs it after `npm test`.
set -euo pipefail
cd "$(dirname "$0")/.."
hogs=()
for _ in $(seq "$(nproc)"); do
  (while :; do :; done) &
  hogs+=($!)
done
trap 'kill "${hogs[@]}" 2>/dev/null || true' EXIT
npm test
