#!/usr/bin/env bash
# Installs the Debian packages the tests need (redis-server, nginx, curl, openssl, and the image and
# node tools) when they are missing, without letting the packages start their services: the tests start their own
# redis-server and nginx on free loopback ports, and a service started by apt would hold 6379/80
# until someone killed it by name. policy-rc.d (exit 101 = "action forbidden") is the Debian way
# to stop maintainer scripts starting services; invoke-rc.d and deb-systemd-invoke both honour
# it. We create it only if none exists, and remove only the one we created. Nothing is killed.
set -uo pipefail

policy=${SOCKETFLEET_POLICY_RC_D:-/usr/sbin/policy-rc.d}
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v nginx >/dev/null || missing+=(nginx)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
# Image builds (test/images) and the real node (test/node).
command -v buildah >/dev/null || missing+=(buildah)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v runc >/dev/null || missing+=(runc)
command -v containerd >/dev/null || missing+=(containerd)
[ ${#missing[@]} -eq 0 ] && exit 0

created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# written by socketfleet .ci/install-debian.sh for the duration of one apt-get install\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  created_policy=1
fi
remove_policy() {
  if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi
}
trap remove_policy EXIT

apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
