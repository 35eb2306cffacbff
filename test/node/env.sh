# Shared settings of the real-node harness (sourced, not executed).
# shellcheck shell=bash
#
# One run = one name. Everything of a run lives under $NODE_WORK/<name>:
# its network namespace has the same name, its cgroups live under
# /sys/fs/cgroup/<controller>/<name>, and `owner` records the process (pid and
# start time) whose death makes the run stale (see reap.sh).
K8S_VERSION="${SOCKETFLEET_K8S_VERSION:-v1.36.3}"
SOCKETFLEET_CACHE="${SOCKETFLEET_CACHE:-$HOME/.cache/socketfleet}"
BIN="$SOCKETFLEET_CACHE/k8s/$K8S_VERSION/bin"
NODE_RUNS="$SOCKETFLEET_CACHE/k8s-node/runs"
# containerd's root (content, unpacked image layers) is kept between runs so a warm run
# imports no image twice; one run at a time holds it (flock), another gets a fresh one.
SHARED_CONTAINERD_ROOT="$SOCKETFLEET_CACHE/k8s-node/containerd-root"
export SOCKETFLEET_CACHE

# Addresses. They exist only inside the run's network namespace, so every run
# can use the same ones and fixed ports.
NODE_IP=10.213.0.1          # on sfnode0, a dead-end ifb device; the API server, kubelet, CoreDNS listen here
NODE_NET=10.213.0.0/24      # the rest of this /24 are client source addresses for forwarders
POD_CIDR=10.214.0.0/24      # the only pod range (the node's spec.podCIDR)
SERVICE_CIDR=10.215.0.0/24
API_SERVICE_IP=10.215.0.1   # first service IP: the `kubernetes` Service
DNS_IP=10.215.0.10
CLUSTER_DOMAIN=cluster.local
NODE_NAME=socketfleet-node
BRIDGE=sfbr0
DUMMY=sfnode0

# run_dir NAME: the work dir of a run.
run_dir() { echo "$NODE_RUNS/$1"; }

# proc_start PID: the process's start time in clock ticks since boot (field 22
# of /proc/PID/stat), so a recycled PID is never mistaken for ours.
proc_start() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }" # the command name may hold spaces and parentheses
  # shellcheck disable=SC2086
  set -- $stat
  echo "${20}"
}

# alive_as PID START: true while PID is the very process that started at START.
alive_as() {
  [[ -n "$1" && -n "$2" && "$(proc_start "$1")" == "$2" ]]
}

# The host-wide sysctls the node's components change (kubelet: vm.*, kernel.*;
# the bridge plugin: ip_forward, which is per network namespace on current
# kernels but recorded anyway). up.sh records them, down.sh restores them.
HOST_SYSCTLS=(
  vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward
)
