#!/usr/bin/env bash
# Tears down real-node run NAME and restores what its components changed on the
# host. Safe to repeat, and safe after a crash at any point of up.sh:
#   1. stop the forwarders, kube-router, kube-proxy and kubelet (by recorded PID);
#   2. kill every process left in the run's cgroups (the containers);
#   3. stop CoreDNS, the control plane and containerd, in that order;
#   4. kill what remains in the run's mount or network namespace (the shims,
#      forwarded connections): matched by namespace identity, never by name;
#   5. kube-proxy --cleanup and any KUBE-* chains and ipsets left in the namespace;
#   6. delete the bridge and the namespace, the cgroup dirs, restore the sysctls;
#   7. keep the logs in $SOCKETFLEET_CACHE/node/last-logs/NAME, remove the work dir.
# Usage: down.sh NAME
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$HERE/env.sh"
log() { echo "[node-down $(date -u +%H:%M:%S)] $*" >&2; }

NAME="${1:?usage: down.sh NAME}"
W="$(run_dir "$NAME")"
NETNS="/run/netns/$NAME"

# stop TAG [GRACE_SECONDS]: TERM, then KILL after the grace period; only if the
# recorded PID still is the process we started (same start time).
stop() {
  local f="$W/pids/$1" grace="${2:-3}" pid st
  [[ -f "$f" ]] || return 0
  read -r pid st <"$f"
  if alive_as "$pid" "$st"; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 $((grace * 10))); do
      alive_as "$pid" "$st" || break
      sleep 0.1
    done
    alive_as "$pid" "$st" && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$f"
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
  for f in "$W"/pids/fwd-*; do [[ -f "$f" ]] && stop "$(basename "$f")" 1; done
  for c in kube-router kube-proxy kubelet; do stop "$c"; done
fi
kill_cgroup_procs
# The image store may be shared with the next run: leave it no containers.
if [[ -S "$W/containerd.sock" ]]; then
  ctr --address "$W/containerd.sock" -n k8s.io containers ls -q 2>/dev/null | xargs -r \
    timeout 30 ctr --address "$W/containerd.sock" -n k8s.io containers rm >/dev/null 2>&1
fi
if [[ -d "$W/pids" ]]; then
  for c in coredns kube-controller-manager kube-scheduler kube-apiserver etcd containerd; do stop "$c"; done
fi

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
  # kube-router's --cleanup-config panics: remove its chains and sets directly.
  for table in filter nat mangle raw; do
    chains="$(inns iptables-save -t "$table" 2>/dev/null | sed -n 's/^:\(KUBE[-A-Za-z0-9_]*\) .*/\1/p')"
    [[ -n "$chains" ]] || continue
    inns iptables-save -t "$table" | grep -E '^-A ' | grep -E -- '-j KUBE|^-A KUBE' |
      sed 's/^-A /-D /' | while read -r rule; do
      # shellcheck disable=SC2086
      eval inns iptables -t "$table" $rule 2>/dev/null
    done
    for c in $chains; do inns iptables -t "$table" -F "$c" 2>/dev/null; done
    for c in $chains; do inns iptables -t "$table" -X "$c" 2>/dev/null; done
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
    keep="$SOCKETFLEET_CACHE/node/last-logs/$NAME"
    rm -rf "$keep"
    mkdir -p "$(dirname "$keep")"
    cp -r "$W/logs" "$keep"
  fi
  rm -rf "$W"
fi
log "run $NAME torn down"
