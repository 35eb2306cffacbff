#!/usr/bin/env bash
# Tear down the socketfleet test cluster: `kwokctl delete cluster`, then kill
# any of its processes that survived (matched by pid files and by the
# cluster's working directory on their command line), then remove its state.
# Safe to run when no cluster exists. Always exits 0 unless cleanup failed.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$HERE/env.sh"

log() { echo "[cluster-down $(date -u +%H:%M:%S)] $*" >&2; }

if [[ ! -d "$CLUSTER_STATE" ]]; then
  log "no cluster $CLUSTER_NAME"
  exit 0
fi

if [[ -x "$BIN/kwokctl" ]]; then
  timeout 60 "$BIN/kwokctl" delete cluster --name "$CLUSTER_NAME" --kubeconfig= >&2 || log "kwokctl delete cluster failed; killing leftovers"
fi

# Leftovers: processes whose pid file lives in the cluster dir, or whose
# command line mentions the cluster dir (every component's flags do).
pids=()
if [[ -d "$CLUSTER_STATE/pids" ]]; then
  for f in "$CLUSTER_STATE"/pids/*.pid; do
    [[ -f "$f" ]] && pids+=("$(cat "$f")")
  done
fi
for p in /proc/[0-9]*; do
  pid="${p#/proc/}"
  [[ "$pid" == "$$" ]] && continue
  if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "$CLUSTER_STATE/"; then
    pids+=("$pid")
  fi
done
live=()
for pid in "${pids[@]}"; do
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && live+=("$pid")
done
if [[ ${#live[@]} -gt 0 ]]; then
  log "killing leftover processes ${live[*]}"
  kill -TERM "${live[@]}" 2>/dev/null || true
  sleep 2
  kill -KILL "${live[@]}" 2>/dev/null || true
fi

rm -rf "$CLUSTER_STATE"
log "cluster $CLUSTER_NAME deleted"
