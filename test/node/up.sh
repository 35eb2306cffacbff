#!/usr/bin/env bash
# Starts one real Kubernetes node run NAME, contained in a network namespace of
# the same name: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# containerd (+ runc, CNI bridge), kubelet, kube-proxy, CoreDNS and kube-router.
# Every address (node, bridge, pods, services, DNS) exists only in that
# namespace; its default route is a dummy interface, so nothing is routed out.
# The host reaches the API server through a loopback forwarder (forward.sh).
#
# Usage: up.sh NAME OWNER_PID
#   OWNER_PID: the process whose death makes this run stale (reap.sh then
#   tears it down). On any failure up.sh tears the run down itself.
# Prints shell `export` lines (KUBECONFIG for the host, the work dir, ...).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$HERE/env.sh"
log() { echo "[node-up $(date -u +%H:%M:%S)] $*" >&2; }

NAME="${1:?usage: up.sh NAME OWNER_PID}"
OWNER="${2:?usage: up.sh NAME OWNER_PID}"
[[ "$NAME" =~ ^[a-z0-9][a-z0-9-]{0,30}$ ]] || {
  log "run name must be 1-31 lowercase letters, digits or dashes: $NAME"
  exit 2
}
W="$(run_dir "$NAME")"
case "$W" in
/run/* | /var/*)
  log "SOCKETFLEET_CACHE must not be under /run or /var: the node mounts its own there"
  exit 2
  ;;
esac
[[ -e "$W" ]] && {
  log "run $NAME already exists in $W; stop it with down.sh $NAME first"
  exit 2
}
ip netns list | grep -E "^$NAME( |\$)" >/dev/null && {
  log "network namespace $NAME already exists"
  exit 2
}
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy coredns kube-router; do
  [[ -x "$BIN/$b" ]] || {
    log "$BIN/$b is missing: run test/cluster/build.sh all"
    exit 2
  }
done
for c in containerd ctr runc socat iptables ipset nsenter unshare openssl curl; do
  command -v "$c" >/dev/null || {
    log "$c is not installed (see .ci/run for the Debian packages)"
    exit 2
  }
done
[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local ]] || {
  log "the CNI plugins are missing in /usr/lib/cni (Debian package containernetworking-plugins)"
  exit 2
}

start=$(date +%s)
mkdir -p "$W/pids" "$W/logs"
echo "$OWNER $(proc_start "$OWNER")" >"$W/owner"
failed() {
  log "start failed; logs of $NAME:"
  for f in "$W"/logs/*.log; do
    [[ -f "$f" && "$f" != *audit.log ]] || continue
    echo "--- $f" >&2
    tail -n 15 "$f" >&2
  done
  bash "$HERE/down.sh" "$NAME" >&2 || true
}
trap failed ERR
trap 'failed; exit 130' INT TERM

# Host-wide sysctls, recorded before anything can change them.
for s in "${HOST_SYSCTLS[@]}"; do
  echo "$s=$(sysctl -n "$s")"
done >"$W/sysctls"

ip netns add "$NAME"
ip -n "$NAME" link set lo up
# An ifb device is a dead end: what is routed to it without a tc redirect is dropped
# (this kernel has no dummy interfaces).
ip -n "$NAME" link add "$DUMMY" type ifb
ip -n "$NAME" addr add "$NODE_IP/24" dev "$DUMMY"
# Source addresses for loopback forwarders, so the gateway sees distinct clients.
for i in $(seq 11 42); do ip -n "$NAME" addr add "${NODE_IP%.*}.$i/32" dev "$DUMMY"; done
ip -n "$NAME" link set "$DUMMY" up
ip -n "$NAME" route add default dev "$DUMMY"

# The run's cgroup root in every v1 hierarchy (kubelet's cgroupRoot).
for h in /sys/fs/cgroup/*/; do
  [[ -f "$h/cgroup.procs" ]] || continue
  mkdir -p "$h$NAME"
  # On cgroup v1 every runnable host process weighs 1024 against this whole group, so on a busy
  # shared host the node's pods would get a sliver of a CPU (server pods took 30 s to listen at
  # a load average of 25). Weigh the node like the 8 CPUs' worth of processes it stands in for.
  if [[ -f "$h/cpu.shares" ]]; then echo 8192 >"$h$NAME/cpu.shares"; fi
  if [[ -f "$h/cpuset.cpus" ]]; then
    cat "$h/cpuset.cpus" >"$h$NAME/cpuset.cpus"
    cat "$h/cpuset.mems" >"$h$NAME/cpuset.mems"
  fi
done

# The shared image store, if no other run holds it. The lock (fd 8) is inherited by
# every daemon start.sh launches, so it is released when the run's last process ends.
mkdir -p "$SHARED_CONTAINERD_ROOT"
exec 8>"$SHARED_CONTAINERD_ROOT.lock"
if flock -n 8; then
  echo "$SHARED_CONTAINERD_ROOT" >"$W/containerd-root"
  # Containers of an earlier run are not this run's: only images and layers are kept.
  rm -rf "$SHARED_CONTAINERD_ROOT/io.containerd.grpc.v1.cri/sandboxes" \
    "$SHARED_CONTAINERD_ROOT/io.containerd.grpc.v1.cri/containers"
else
  log "another run holds the shared image store; this one imports into its own"
  exec 8>&-
  echo "$W/containerd/root" >"$W/containerd-root"
fi

bash "$HERE/pki.sh" "$W/pki"
bash "$HERE/pause-image.sh" | tail -n 1 >"$W/pause-image"
bash "$HERE/config.sh" "$NAME"

nsenter --net="/run/netns/$NAME" -- unshare --mount --propagation slave -- \
  bash "$HERE/start.sh" "$NAME"

# The host's way in: a loopback forwarder to the API server.
exec 8>&-
api_port="$(bash "$HERE/forward.sh" "$NAME" apiserver "$NODE_IP" 6443)"
sed "s#https://$NODE_IP:6443#https://127.0.0.1:$api_port#" "$W/pki/admin.kubeconfig" >"$W/kubeconfig"
"$BIN/kubectl" --kubeconfig "$W/kubeconfig" get --raw /readyz >/dev/null

trap - ERR INT TERM
log "node run $NAME up in $(($(date +%s) - start))s (work dir $W)"
echo "export KUBECONFIG=$W/kubeconfig"
echo "export SOCKETFLEET_NODE_RUN=$NAME"
echo "export SOCKETFLEET_NODE_DIR=$W"
echo "export SOCKETFLEET_AUDIT_LOG=$W/logs/audit.log"
echo "export PATH=$BIN:\$PATH"
