#!/usr/bin/env bash
# Starts the node's processes. up.sh runs this inside the run's network
# namespace and inside a private mount namespace of its own:
#   nsenter --net=/run/netns/NAME unshare --mount --propagation slave start.sh NAME
# so the mounts kubelet and containerd make (volumes, pod network namespaces,
# overlay snapshots) are never visible on the host and vanish with the last of
# these processes; every daemon started here shares that mount namespace, which
# kubelet and containerd need (they must see each other's mounts).
#
# Each daemon's "pid start-time" goes to $W/pids/<name>; down.sh stops exactly
# those processes.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$HERE/env.sh"

NAME="$1"
W="$(run_dir "$NAME")"
P="$W/pki"
LOGS="$W/logs"
log() { echo "[node-start $(date -u +%H:%M:%S)] $*" >&2; }

readlink /proc/self/ns/mnt >"$W/mntns"

# /run and /var of this mount namespace are directories of the run: pod
# network namespaces (/run/netns), the shims' sockets (/run/containerd), CNI
# state (/var/lib/cni), pod and container logs (/var/log) stay in $W.
mkdir -p "$W/root/run" "$W/root/var/lib" "$W/root/var/log" "$W/root/var/tmp"
ln -sfn /run "$W/root/var/run"
mount --bind "$W/root/run" /run
mount --bind "$W/root/var" /var

# Pods on the same bridge reach each other through Service IPs only if bridged
# traffic passes iptables (per network namespace on this kernel).
sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1

# daemon NAME CMD...: starts CMD in its own session, logs to $LOGS/NAME.log.
daemon() {
  local name="$1"
  shift
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid $(proc_start "$pid")" >"$W/pids/$name"
}

# wait_for WHAT SECONDS CMD...: polls CMD until it succeeds.
wait_for() {
  local what="$1" secs="$2"
  shift 2
  local deadline=$(($(date +%s) + secs))
  until "$@" >/dev/null 2>&1; do
    if (($(date +%s) > deadline)); then
      log "timed out after ${secs}s waiting for $what"
      return 1
    fi
    sleep 0.2
  done
}

export KUBECONFIG="$P/admin.kubeconfig"
k() { "$BIN/kubectl" "$@"; }
t0=$(date +%s%N)
elapsed() {
  local ms=$((($(date +%s%N) - t0) / 1000000))
  printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100))
}

daemon etcd "$BIN/etcd" --name node --data-dir "$W/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster node=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
  --unsafe-no-fsync --quota-backend-bytes 1073741824
daemon containerd containerd --config "$W/containerd.toml"

wait_for etcd 30 curl -sf http://127.0.0.1:2381/health
daemon kube-apiserver "$BIN/kube-apiserver" \
  --etcd-servers http://127.0.0.1:2379 \
  --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port 6443 \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --client-ca-file "$P/ca.crt" --tls-cert-file "$P/apiserver.crt" --tls-private-key-file "$P/apiserver.key" \
  --kubelet-client-certificate "$P/apiserver-kubelet-client.crt" --kubelet-client-key "$P/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$P/ca.crt" \
  --kubelet-preferred-address-types InternalIP \
  --authorization-mode Node,RBAC \
  --enable-admission-plugins NodeRestriction,OwnerReferencesPermissionEnforcement \
  --allow-privileged=true \
  --service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
  --service-account-key-file "$P/sa.pub" --service-account-signing-key-file "$P/sa.key" \
  --audit-policy-file "$W/audit-policy.yaml" --audit-log-path "$LOGS/audit.log" \
  --audit-log-format json --audit-log-mode blocking \
  --profiling=false

wait_for containerd 30 ctr --address "$W/containerd.sock" version
wait_for "the API server" 60 curl -sf --cacert "$P/ca.crt" --cert "$P/admin.crt" --key "$P/admin.key" "https://$NODE_IP:6443/readyz"
log "API server ready after $(elapsed)"

daemon kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig "$P/kube-controller-manager.kubeconfig" \
  --authentication-kubeconfig "$P/kube-controller-manager.kubeconfig" \
  --authorization-kubeconfig "$P/kube-controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 10257 --leader-elect=false \
  --use-service-account-credentials=true \
  --service-account-private-key-file "$P/sa.key" --root-ca-file "$P/ca.crt" \
  --allocate-node-cidrs=true --cluster-cidr "$POD_CIDR" --node-cidr-mask-size "${POD_CIDR#*/}" \
  --service-cluster-ip-range "$SERVICE_CIDR" --profiling=false
daemon kube-scheduler "$BIN/kube-scheduler" \
  --kubeconfig "$P/kube-scheduler.kubeconfig" \
  --authentication-kubeconfig "$P/kube-scheduler.kubeconfig" \
  --authorization-kubeconfig "$P/kube-scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 10259 --leader-elect=false --profiling=false

# Containers recorded by an earlier run in the shared store are not this run's.
ctr --address "$W/containerd.sock" -n k8s.io containers ls -q | xargs -r \
  ctr --address "$W/containerd.sock" -n k8s.io containers rm >/dev/null 2>&1 || true

# The sandbox image must exist before the first pod.
IFS=$'\t' read -r pause_ref pause_tar <"$W/pause-image"
ctr --address "$W/containerd.sock" -n k8s.io images import "$pause_tar" >/dev/null
ctr --address "$W/containerd.sock" -n k8s.io images ls -q | grep -xF "$pause_ref" >/dev/null || {
  log "importing $pause_tar did not create $pause_ref"
  exit 1
}

daemon kubelet "$BIN/kubelet" --config "$W/kubelet.yaml" --kubeconfig "$P/kubelet.kubeconfig" \
  --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --root-dir "$W/kubelet" --v 1

# Cluster add-ons the harness provides as node processes: RBAC for their
# identities, the kube-dns Service (no selector: its EndpointSlice points at
# CoreDNS on the node address).
wait_for "the kube-system namespace" 30 k get namespace kube-system
wait_for "the add-on objects" 30 k apply -f "$W/addons.yaml"
wait_for "node registration" 60 k get node "$NODE_NAME"
# kube-router needs the node's spec.podCIDR (set by the controller-manager).
wait_for "the node's pod CIDR" 60 sh -c "[ -n \"\$('$BIN/kubectl' get node $NODE_NAME -o jsonpath='{.spec.podCIDR}')\" ]"

daemon kube-proxy "$BIN/kube-proxy" --kubeconfig "$P/kube-proxy.kubeconfig" \
  --hostname-override "$NODE_NAME" --proxy-mode iptables \
  --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 \
  --iptables-localhost-nodeports=false \
  --metrics-bind-address 127.0.0.1:10249 --healthz-bind-address 127.0.0.1:10256
daemon coredns "$BIN/coredns" -conf "$W/Corefile"
daemon kube-router "$BIN/kube-router" --kubeconfig "$P/kube-router.kubeconfig" \
  --hostname-override "$NODE_NAME" \
  --run-firewall=true --run-router=false --run-service-proxy=false --enable-cni=false \
  --service-cluster-ip-range "$SERVICE_CIDR" --health-port 20244 --metrics-port 0

wait_for "node Ready" 120 k wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s
wait_for "CoreDNS" 60 curl -sf http://127.0.0.1:8181/ready
wait_for "kube-router" 60 curl -sf http://127.0.0.1:20244/healthz
wait_for "kube-proxy" 60 curl -sf http://127.0.0.1:10256/healthz
# Pods cannot be created in a namespace before its default ServiceAccount exists.
wait_for "the default ServiceAccount" 60 k -n default get serviceaccount default
log "node $NODE_NAME Ready with DNS, kube-proxy and kube-router after $(elapsed)"
