# Shared settings for the test control plane scripts (sourced, not executed).
# shellcheck shell=bash
K8S_VERSION="${SOCKETFLEET_K8S_VERSION:-v1.36.3}"
SOCKETFLEET_CACHE="${SOCKETFLEET_CACHE:-$HOME/.cache/socketfleet}"
BIN="$SOCKETFLEET_CACHE/k8s/$K8S_VERSION/bin"
CLUSTER_NAME="${SOCKETFLEET_CLUSTER_NAME:-socketfleet-test}"
# kwokctl keeps each cluster's state (pki, logs, pids, kubeconfig) under
# $KWOK_WORKDIR/clusters/<name>; keep it inside our cache.
export KWOK_WORKDIR="$SOCKETFLEET_CACHE/kwok"
# Never let kwokctl fall back to a kubectl other than ours.
export KWOK_KUBECTL_BINARY="$BIN/kubectl"
export PATH="$BIN:$PATH"
export KWOK_KUBE_VERSION="$K8S_VERSION"
CLUSTER_STATE="$KWOK_WORKDIR/clusters/$CLUSTER_NAME"
KUBECONFIG_PATH="$CLUSTER_STATE/kubeconfig.yaml"
AUDIT_LOG="$CLUSTER_STATE/logs/audit.log"
export SOCKETFLEET_CACHE
