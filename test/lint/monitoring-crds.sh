#!/usr/bin/env bash
# Print the directory holding the Prometheus Operator CRDs (ServiceMonitor,
# PrometheusRule), taken from the prometheus-operator Go module on the module
# proxy, so the chart's optional monitoring objects can be checked against the
# real schemas by the API server without GitHub downloads.
set -euo pipefail
VERSION="${SOCKETFLEET_PROMETHEUS_OPERATOR_VERSION:-v0.85.0}"
export GOWORK=off GOFLAGS=-mod=mod
dir="$(cd "${TMPDIR:-/tmp}" && go mod download -json "github.com/prometheus-operator/prometheus-operator@$VERSION" |
  sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')"
crds="$dir/example/prometheus-operator-crd"
[[ -f "$crds/monitoring.coreos.com_servicemonitors.yaml" ]] || {
  echo "prometheus-operator $VERSION has no CRDs under example/prometheus-operator-crd" >&2
  exit 1
}
echo "$crds"
