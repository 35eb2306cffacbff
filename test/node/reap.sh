#!/usr/bin/env bash
# Tears down every real-node run whose owner process is gone (a test run that
# was killed before its teardown). A run is stale only if its recorded owner
# PID no longer is the same process (pid and start time both compared).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$HERE/env.sh"
[[ -d "$NODE_RUNS" ]] || exit 0
for dir in "$NODE_RUNS"/*/; do
  [[ -d "$dir" ]] || continue
  name="$(basename "$dir")"
  owner_pid="" owner_start=""
  [[ -f "$dir/owner" ]] && read -r owner_pid owner_start <"$dir/owner"
  if alive_as "$owner_pid" "$owner_start"; then continue; fi
  echo "[node-reap] run $name: owner ${owner_pid:-unknown} is gone; tearing it down" >&2
  bash "$HERE/down.sh" "$name"
done
