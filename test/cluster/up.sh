#!/usr/bin/env bash
# Start (or restart) the socketfleet test control plane: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok-controller as local
# processes (kwokctl --runtime binary), plus fake nodes managed by kwok.
# Builds the binaries first if they are not cached (see build.sh).
#
# Env:
#   SOCKETFLEET_CACHE         cache root (default ~/.cache/socketfleet)
#   SOCKETFLEET_CLUSTER_NAME  cluster name (default socketfleet-test)
#   SOCKETFLEET_NODES         number of fake nodes (default 3)
#   SOCKETFLEET_NODE_PODS     pods each fake node holds (default 110, the kubelet's default)
#   SOCKETFLEET_SERVICE_CIDR  service ClusterIP range (default: kwokctl's, a /24 that fills at
#                             about 125 RealtimeClusters; the operator-scale bench sets a /16)
#
# Prints `export KUBECONFIG=...` lines on stdout; the kubeconfig lives at
#   $SOCKETFLEET_CACHE/kwok/clusters/<name>/kubeconfig.yaml
# and the apiserver audit log (JSON lines, Metadata level) at
#   $SOCKETFLEET_CACHE/kwok/clusters/<name>/logs/audit.log
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$HERE/env.sh"

log() { echo "[cluster-up $(date -u +%H:%M:%S)] $*" >&2; }

start=$(date +%s)
"$HERE/build.sh" >/dev/null
log "binaries ready in $BIN ($(($(date +%s) - start))s)"

# Always start from a clean cluster: delete a leftover one of the same name.
"$HERE/down.sh" >&2 || true

mkdir -p "$KWOK_WORKDIR" "$CLUSTER_STATE"
cat >"$CLUSTER_STATE/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  # Reads are not recorded; every write is, at Metadata level, so tests can
  # count write requests per user (e.g. the operator's client).
  - level: None
    verbs: ["get", "list", "watch"]
  # Heartbeats of the control plane and of kwok's fake nodes (all components
  # share the kwok-admin identity, so filter by namespace/resource instead).
  - level: None
    resources:
      - group: coordination.k8s.io
        resources: ["leases"]
    namespaces: ["kube-system", "kube-node-lease"]
  - level: None
    resources:
      - group: ""
        resources: ["nodes/status"]
  - level: Metadata
EOF

create_args=(
  create cluster
  --name "$CLUSTER_NAME"
  --runtime binary
  --kubeconfig= # do not touch ~/.kube/config
  --etcd-binary "$BIN/etcd"
  --kube-apiserver-binary "$BIN/kube-apiserver"
  --kube-controller-manager-binary "$BIN/kube-controller-manager"
  --kube-scheduler-binary "$BIN/kube-scheduler"
  --kwok-controller-binary "$BIN/kwok"
  --kube-audit-policy "$CLUSTER_STATE/audit-policy.yaml"
  --kube-authorization
  --disable-qps-limits
  --extra-args "kube-apiserver=advertise-address=127.0.0.1"
  # As on OpenShift: setting blockOwnerDeletion needs update on the owner's finalizers.
  --extra-args "kube-apiserver=enable-admission-plugins=OwnerReferencesPermissionEnforcement"
  --wait 2m
  --timeout 5m
)
if [[ -n "${SOCKETFLEET_SERVICE_CIDR:-}" ]]; then
  create_args+=(
    --extra-args "kube-apiserver=service-cluster-ip-range=$SOCKETFLEET_SERVICE_CIDR"
    --extra-args "kube-controller-manager=service-cluster-ip-range=$SOCKETFLEET_SERVICE_CIDR"
  )
fi

log "kwokctl ${create_args[*]}"
if ! kwokctl "${create_args[@]}" >&2; then
  log "kwokctl create cluster failed; logs in $KWOK_WORKDIR/clusters/$CLUSTER_NAME/logs"
  for f in "$KWOK_WORKDIR/clusters/$CLUSTER_NAME"/logs/*.log; do
    [[ -f "$f" && "$f" != *audit.log ]] && {
      echo "--- $f" >&2
      tail -n 30 "$f" >&2
    }
  done
  "$HERE/down.sh" >&2 || true
  exit 1
fi

export KUBECONFIG="$KUBECONFIG_PATH"

nodes=""
for i in $(seq 1 "${SOCKETFLEET_NODES:-3}"); do
  nodes+="---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: \"0\"
  labels:
    type: kwok
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: \"\"
    topology.kubernetes.io/zone: zone-$(((i - 1) % 3 + 1))
status:
  capacity: {cpu: \"32\", memory: 256Gi, pods: \"${SOCKETFLEET_NODE_PODS:-110}\"}
  allocatable: {cpu: \"32\", memory: 256Gi, pods: \"${SOCKETFLEET_NODE_PODS:-110}\"}
  nodeInfo:
    architecture: amd64
    operatingSystem: linux
    kubeletVersion: fake
    kubeProxyVersion: fake
"
done
echo "$nodes" | kubectl apply -f - >&2
kubectl wait --for=condition=Ready node --all --timeout=120s >&2
# The default ServiceAccount is created asynchronously by the controller-manager;
# pods cannot be created in a namespace before it exists.
for _ in $(seq 1 60); do
  kubectl -n default get serviceaccount default >/dev/null 2>&1 && break
  sleep 1
done

log "cluster $CLUSTER_NAME up in $(($(date +%s) - start))s"
log "kubeconfig: $KUBECONFIG_PATH"
log "audit log:  $AUDIT_LOG"
echo "export KUBECONFIG=$KUBECONFIG_PATH"
echo "export SOCKETFLEET_KUBECONFIG=$KUBECONFIG_PATH"
echo "export SOCKETFLEET_AUDIT_LOG=$AUDIT_LOG"
echo "export PATH=$BIN:\$PATH"
