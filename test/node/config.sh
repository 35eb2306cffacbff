#!/usr/bin/env bash
# Writes the configuration files of one real-node run into its work dir W:
# containerd, CNI, kubelet, CoreDNS, the audit policy and the add-on objects.
# Usage: config.sh NAME   (sourced settings from env.sh; $W/pause-image must exist)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$HERE/env.sh"
NAME="$1"
W="$(run_dir "$NAME")"
P="$W/pki"
IFS=$'\t' read -r pause_ref _ <"$W/pause-image"
mkdir -p "$W/cni/net.d" "$W/containerd" "$W/kubelet"

# restrict_oom_score_adj: the machine's capability bounding set lacks
# CAP_SYS_RESOURCE, so runc cannot lower oom_score_adj and would fail every
# sandbox. runc's state (Root) and everything else stay under $W.
cat >"$W/containerd.toml" <<TOML
version = 2
root = "$(cat "$W/containerd-root")"
state = "$W/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$W/containerd.sock"

[ttrpc]
  address = "$W/containerd.sock.ttrpc"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$W/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_ref"
  restrict_oom_score_adj = true
  enable_selinux = false
  max_container_log_line_size = 16384
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$W/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$W/cni/net.d"
    max_conf_num = 1
TOML

# One bridge and the node's pod range; isGateway gives pods a default route
# into the node's namespace, whose own default route is a dead end (sfnode0).
cat >"$W/cni/net.d/10-socketfleet.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "socketfleet-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$POD_CIDR" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$W/cni/ipam"
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
JSON

# Kubelet on cgroup v1 (the hosts' only cgroup version), its pods under the
# run's own cgroup root so teardown finds every container process.
cat >"$W/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $P/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $P/kubelet-serving.crt
tlsPrivateKeyFile: $P/kubelet-serving.key
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$NAME
containerRuntimeEndpoint: unix://$W/containerd.sock
clusterDNS: [$DNS_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: ""
failSwapOn: false
protectKernelDefaults: false
serializeImagePulls: false
syncFrequency: 10s
fileCheckFrequency: 10s
maxPods: 110
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
allowedUnsafeSysctls: ["net.core.somaxconn"]
shutdownGracePeriod: 0s
volumePluginDir: $W/kubelet/volume-plugins
YAML

cat >"$W/Corefile" <<COREFILE
.:53 {
    bind $NODE_IP
    errors
    health 127.0.0.1:8080
    ready 127.0.0.1:8181
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $P/coredns.kubeconfig coredns
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
}
COREFILE

# Metadata for every request (reads too, so a forbidden list or watch shows),
# except the node's and control plane's heartbeats.
cat >"$W/audit-policy.yaml" <<'YAML'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    resources:
      - group: coordination.k8s.io
        resources: ["leases"]
    namespaces: ["kube-system", "kube-node-lease"]
  - level: None
    resources:
      - group: ""
        resources: ["nodes/status"]
  - level: None
    users: ["system:kube-scheduler", "system:kube-controller-manager", "system:kube-proxy"]
    verbs: ["get", "list", "watch"]
  - level: Metadata
YAML

cat >"$W/addons.yaml" <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "socketfleet-node:addons"}
rules:
  - apiGroups: [""]
    resources: [endpoints, services, pods, namespaces, nodes]
    verbs: [get, list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [get, list, watch]
  - apiGroups: [networking.k8s.io]
    resources: [networkpolicies]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "socketfleet-node:addons"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "socketfleet-node:addons"}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: "socketfleet-node:coredns"}
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: "socketfleet-node:kube-router"}
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS}
spec:
  clusterIP: $DNS_IP
  ports:
    - {name: dns, port: 53, protocol: UDP, targetPort: 53}
    - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-node
  namespace: kube-system
  labels:
    kubernetes.io/service-name: kube-dns
    endpointslice.kubernetes.io/managed-by: socketfleet-node-harness
addressType: IPv4
endpoints:
  - addresses: ["$NODE_IP"]
    conditions: {ready: true}
ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
YAML
