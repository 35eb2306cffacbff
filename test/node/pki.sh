#!/usr/bin/env bash
# Makes the PKI of one real-node run under DIR: a CA, the API server's serving
# certificate, one client certificate per component (its CN/O is the identity
# RBAC sees), the kubelet's serving certificate and the service-account key
# pair; plus a kubeconfig per component. Keys are P-256 ECDSA: a whole set
# takes well under a second.
#
# Usage: pki.sh DIR
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$HERE/env.sh"

DIR="$1"
mkdir -p "$DIR"
cd "$DIR"
umask 077

key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null; }

key ca
openssl req -x509 -new -key ca.key -sha256 -days 30 -subj "/CN=socketfleet-node-ca" -out ca.crt

# cert NAME SUBJECT USAGE [SANS]
cert() {
  local name="$1" subject="$2" usage="$3" sans="${4:-}"
  key "$name"
  openssl req -new -key "$name.key" -subj "$subject" -out "$name.csr"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [[ -n "$sans" ]] && echo "subjectAltName=$sans"
  } >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 30 \
    -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

cert apiserver "/CN=kube-apiserver" serverAuth \
  "IP:$NODE_IP,IP:$API_SERVICE_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN"
cert kubelet-serving "/CN=$NODE_NAME" serverAuth "IP:$NODE_IP,DNS:$NODE_NAME"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
cert admin "/O=system:masters/CN=socketfleet-node-admin" clientAuth
cert kube-controller-manager "/CN=system:kube-controller-manager" clientAuth
cert kube-scheduler "/CN=system:kube-scheduler" clientAuth
cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
cert kube-proxy "/CN=system:kube-proxy" clientAuth
# CoreDNS and kube-router stand in for cluster add-ons that would run as pods
# with their own ServiceAccounts; here they are node processes of the harness.
cert coredns "/CN=socketfleet-node:coredns" clientAuth
cert kube-router "/CN=socketfleet-node:kube-router" clientAuth

key sa
openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null

# kubeconfig NAME SERVER: a kubeconfig for NAME's client certificate.
kubeconfig() {
  local name="$1" server="$2"
  cat <<KC
apiVersion: v1
kind: Config
clusters:
  - name: socketfleet-node
    cluster:
      server: $server
      certificate-authority: $DIR/ca.crt
users:
  - name: $name
    user:
      client-certificate: $DIR/$name.crt
      client-key: $DIR/$name.key
contexts:
  - name: $name
    context: {cluster: socketfleet-node, user: $name}
current-context: $name
KC
}
for c in admin kube-controller-manager kube-scheduler kubelet kube-proxy coredns kube-router; do
  kubeconfig "$c" "https://$NODE_IP:6443" >"$c.kubeconfig"
done
rm -f ca.srl
