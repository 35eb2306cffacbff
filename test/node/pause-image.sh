#!/usr/bin/env bash
# Builds (or reuses) the pod sandbox image: pause.c compiled static, packed as
# a one-layer OCI archive named localhost/socketfleet-pause:<hash of pause.c>.
# Cached by content under $SOCKETFLEET_CACHE/k8s-node/images.
# Prints "<image-ref>\t<archive>" as the last line.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$HERE/env.sh"

hash="$(cat "$HERE/pause.c" "$HERE/pause-image.sh" | sha256sum | cut -c1-12)"
ref="localhost/socketfleet-pause:$hash"
out="$SOCKETFLEET_CACHE/k8s-node/images/pause-$hash.tar"
if [[ -f "$out" ]]; then
  printf '%s\t%s\n' "$ref" "$out"
  exit 0
fi
mkdir -p "$(dirname "$out")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/rootfs" "$tmp/oci/blobs/sha256"
gcc -static -Os -s -o "$tmp/rootfs/pause" "$HERE/pause.c"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$tmp/rootfs" -cf "$tmp/layer.tar" pause

blob() { # blob FILE -> "digest size", and stores FILE as a blob
  local d s
  d="$(sha256sum "$1" | cut -d' ' -f1)"
  s="$(stat -c %s "$1")"
  cp "$1" "$tmp/oci/blobs/sha256/$d"
  echo "$d $s"
}
read -r layer_d layer_s < <(blob "$tmp/layer.tar")
printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/pause"],"User":"65535:65535"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$layer_d" >"$tmp/config.json"
read -r config_d config_s < <(blob "$tmp/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
  "$config_d" "$config_s" "$layer_d" "$layer_s" >"$tmp/manifest.json"
read -r manifest_d manifest_s < <(blob "$tmp/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
  "$manifest_d" "$manifest_s" "$ref" "$hash" >"$tmp/oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$tmp/oci/oci-layout"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$tmp/oci" -cf "$out.tmp.$$" oci-layout index.json blobs
mv -f "$out.tmp.$$" "$out"
printf '%s\t%s\n' "$ref" "$out"
