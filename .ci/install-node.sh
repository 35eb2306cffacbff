#!/usr/bin/env bash
# Installs the Debian packages of the real node (test/node) when they are missing:
# containerd, runc and the CNI plugins; iptables, ipset and conntrack for kube-proxy and
# kube-router; socat for the loopback forwarders; iproute2, procps and util-linux for the
# namespaces and sysctls; gcc for the static pause image. Like install-debian.sh, a
# policy-rc.d we create (and remove) keeps apt from starting containerd's own service:
# the tests run their own containerd inside the node's namespaces.
set -uo pipefail

policy=${SOCKETFLEET_POLICY_RC_D:-/usr/sbin/policy-rc.d}
missing=()
for p in containerd runc containernetworking-plugins iptables ipset conntrack socat iproute2 procps util-linux curl openssl gcc libc6-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# written by socketfleet .ci/install-node.sh for the duration of one apt-get install\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  created_policy=1
fi
remove_policy() {
  if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi
}
trap remove_policy EXIT

apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
