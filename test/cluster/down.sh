#!/usr/bin/env bash
# Tear down the socketfleet test cluster: `kwokctl delete cluster`, then kill
# any of its processes that survived (matched by pid files and by the
# binaries), then remove its state.
# Safe to run when no cluster exists. Always exits 0 unless cleanup failed.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$HERE/env.sh"

log() { echo "[cluster-down $(date -u +%H:%M:%S)] $*" >&2; }

existed=0
[[ -d "$CLUSTER_STATE" ]] && existed=1
if [[ $existed -eq 1 && -x "$BIN/kwokctl" ]]; then
  # kwokctl removes the cluster's context from --kubeconfig; give it a scratch
  # file so ~/.kube/config is never touched (an empty value is rejected).
  scratch="$CLUSTER_STATE/.scratch-kubeconfig"
  touch "$scratch"
  timeout 60 "$BIN/kwokctl" delete cluster --name "$CLUSTER_NAME" --kubeconfig "$scratch" >&2 || log "kwokctl delete cluster failed; killing leftovers"
fi

# Leftovers: processes whose pid file lives in the cluster dir, or whose
# argv[0] is one of the cluster's binaries (kwokctl links them into
# $CLUSTER_STATE/bin). Other processes that merely use the cluster's
# kubeconfig (e.g. an operator under test) are left to their owners.
pids=()
if [[ -d "$CLUSTER_STATE/pids" ]]; then
  for f in "$CLUSTER_STATE"/pids/*.pid; do
    [[ -f "$f" ]] && pids+=("$(cat "$f")")
  done
fi
for p in /proc/[0-9]*; do
  # argv[0]: kwokctl runs the components through symlinks in $CLUSTER_STATE/bin.
  argv0=""
  { IFS= read -r -d '' argv0 <"$p/cmdline"; } 2>/dev/null || true
  [[ "$argv0" == "$CLUSTER_STATE/bin/"* ]] && pids+=("${p#/proc/}")
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
if [[ $existed -eq 1 || ${#live[@]} -gt 0 ]]; then
  log "cluster $CLUSTER_NAME deleted"
else
  log "no cluster $CLUSTER_NAME"
fi
