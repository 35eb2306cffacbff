#!/usr/bin/env bash
# Tears down real-node run NAME and restores what its components changed on the
# host. Safe to repeat, and safe after a crash at any point of up.sh:
#   1. stop the forwarders, kube-router, kube-proxy and kubelet (by recorded PID and
#      start time: TERM, KILL after 2 s);
#   2. kill every process left in the run's cgroups (the containers);
#   3. stop CoreDNS, the control plane and containerd, in that order;
#   4. kill what remains in the run's mount or network namespace (the shims,
#      forwarded connections): matched by namespace identity, never by name;
#   5. kube-proxy --cleanup, then flush the namespace's iptables tables and ipsets;
#   6. delete the bridge and the namespace, the cgroup dirs, restore the sysctls;
#   7. keep the logs in $SOCKETFLEET_CACHE/k8s-node/last-logs/NAME, remove the work dir.
# Usage: down.sh NAME
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$HERE/env.sh"
log() { echo "[node-down $(date -u +%H:%M:%S)] $*" >&2; }
t0=$(date +%s%N)
took() { echo "$((($(date +%s%N) - t0) / 1000000)) ms"; }

NAME="${1:?usage: down.sh NAME}"
W="$(run_dir "$NAME")"
NETNS="/run/netns/$NAME"

# stop TAG...: TERM to every recorded process among TAGs that still is the process
# we started (same PID and start time), KILL to those alive 2 s later.
stop() {
  local tag pid st live=()
  for tag in "$@"; do
    [[ -f "$W/pids/$tag" ]] || continue
    read -r pid st <"$W/pids/$tag"
    if alive_as "$pid" "$st"; then
      kill -TERM "$pid" 2>/dev/null
      live+=("$pid $st")
    fi
    rm -f "$W/pids/$tag"
  done
  local i entry any
  for i in $(seq 1 20); do
    any=0
    for entry in "${live[@]}"; do
      # shellcheck disable=SC2086
      alive_as $entry && any=1
    done
    [[ $any -eq 1 ]] || return 0
    sleep 0.1
  done
  for entry in "${live[@]}"; do
    # shellcheck disable=SC2086
    alive_as $entry && kill -KILL "${entry%% *}" 2>/dev/null
  done
  return 0
}

# ns_members FILE KIND: PIDs whose namespace of KIND (mnt, net) is FILE's.
ns_members() {
  local pattern
  pattern="$(printf '%s' "$1" | sed 's/[][*?\\]/\\&/g')" # find -lname takes a glob
  find /proc/[0-9]*/ns/ -maxdepth 1 -name "$2" -lname "$pattern" 2>/dev/null | cut -d/ -f3
}

kill_cgroup_procs() {
  local round pids
  for round in $(seq 1 50); do
    pids="$(find /sys/fs/cgroup/*/"$NAME" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)"
    [[ -n "$pids" ]] || return 0
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null
    sleep 0.1
  done
  log "processes remain in the cgroups of $NAME: $pids"
}

if [[ ! -d "$W" && ! -e "$NETNS" ]]; then
  log "no run $NAME"
  exit 0
fi

if [[ -d "$W/pids" ]]; then
  fwd=()
  for f in "$W"/pids/fwd-*; do [[ -f "$f" ]] && fwd+=("$(basename "$f")"); done
  stop "${fwd[@]}" kube-router kube-proxy kubelet
fi
log "node agents stopped after $(took)"
kill_cgroup_procs
log "containers killed after $(took)"
# The image store may be shared with the next run: leave it no containers.
if [[ -S "$W/containerd.sock" ]]; then
  ctr --address "$W/containerd.sock" -n k8s.io containers ls -q 2>/dev/null | xargs -r \
    timeout 30 ctr --address "$W/containerd.sock" -n k8s.io containers rm >/dev/null 2>&1
fi
if [[ -d "$W/pids" ]]; then
  stop coredns kube-controller-manager kube-scheduler kube-apiserver etcd containerd
fi
log "control plane and containerd stopped after $(took)"

# Whatever still lives in the run's namespaces was started by the run.
net_id=""
[[ -e "$NETNS" ]] && net_id="net:[$(stat -L -c %i "$NETNS")]"
mnt_id="$(cat "$W/mntns" 2>/dev/null)"
for round in 1 2 3; do
  left=()
  [[ -n "$mnt_id" ]] && mapfile -t -O "${#left[@]}" left < <(ns_members "$mnt_id" mnt)
  [[ -n "$net_id" ]] && mapfile -t -O "${#left[@]}" left < <(ns_members "$net_id" net)
  [[ ${#left[@]} -gt 0 ]] || break
  [[ $round -gt 1 ]] || log "killing ${#left[@]} leftover processes of $NAME's namespaces"
  kill -KILL "${left[@]}" 2>/dev/null
  sleep 0.2
done

if [[ -e "$NETNS" ]]; then
  inns() { nsenter --net="$NETNS" -- "$@"; }
  [[ -x "$BIN/kube-proxy" ]] && inns "$BIN/kube-proxy" --cleanup >/dev/null 2>&1
  # kube-router's --cleanup-config panics; whatever either left is in this namespace's
  # own tables, which hold nothing but the node's rules: flush them all.
  for table in filter nat mangle raw; do
    inns iptables -t "$table" -F 2>/dev/null
    inns iptables -t "$table" -X 2>/dev/null
  done
  inns ipset destroy 2>/dev/null
  ip -n "$NAME" link del "$BRIDGE" 2>/dev/null
  ip netns del "$NAME" || log "could not delete network namespace $NAME"
fi

# Mounts can only exist in the run's own mount namespace, which died with its
# last process; anything under $W visible here would be a harness bug.
grep -F " $W/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do
  log "unmounting leftover $m"
  umount -l "$m"
done

for h in /sys/fs/cgroup/*/"$NAME"; do
  [[ -d "$h" ]] && find "$h" -depth -type d -exec rmdir {} + 2>/dev/null
  [[ -d "$h" ]] && log "could not remove cgroup $h"
done

if [[ -f "$W/sysctls" ]]; then
  while IFS='=' read -r key value; do
    [[ "$(sysctl -n "$key" 2>/dev/null)" == "$value" ]] || sysctl -qw "$key=$value" || log "could not restore $key=$value"
  done <"$W/sysctls"
fi

if [[ -d "$W" ]]; then
  if [[ -d "$W/logs" ]]; then
    keep="$SOCKETFLEET_CACHE/k8s-node/last-logs/$NAME"
    rm -rf "$keep"
    mkdir -p "$(dirname "$keep")"
    cp -r "$W/logs" "$keep"
  fi
  rm -rf "$W"
fi
log "run $NAME torn down in $(took)"
