#!/usr/bin/env bash
# Builds every image the real-node tests run, or reuses them, and prints as its LAST stdout line a
# directory holding one OCI archive per image and images.tsv ("<ref>\t<archive file>" per line).
# Each archive imports with `ctr -n k8s.io image import <archive>`. Progress goes to stderr.
#
# No image registry is reachable, so the bases are made here: a Debian bookworm minbase root
# filesystem (mmdebstrap), and on it the Node.js the tests run (.ci/node.sh), tagged
# localhost/node:22-bookworm-slim, which is where both Dockerfiles' `FROM node:22-bookworm-slim`
# resolves with --pull=never. buildah then builds server-image/Dockerfile and operator/Dockerfile
# as they are, the chat example's Dockerfile FROM the server image just built, and Redis, nginx, busybox and pause from Debian's packages (test/images/*.Containerfile).
#
# Cache: buildah's storage under $SOCKETFLEET_CACHE/images. Every image carries a label with the
# hash of its inputs: its recipe, its base's image ID, and for ours every file the Dockerfile may
# copy. An image with a matching key means reuse, so a warm run only hashes files and inspects
# images. Builds that no tag names any more stay until `buildah rmi --prune` (same --root).
# SOCKETFLEET_IMAGES_REBUILD=1 rebuilds the Debian base (for new Debian security updates).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/test/images"
cache="${SOCKETFLEET_CACHE:-$HOME/.cache/socketfleet}"
dir="$cache/images"
KEY_LABEL=dev.socketfleet.build-key
DEBIAN_REF=localhost/debian:bookworm-minbase
NODE_REF=localhost/node:22-bookworm-slim

# ref pods use <TAB> Containerfile (relative to the repo) <TAB> build context (relative to the repo)
IMAGES=(
  "socketfleet/server:0.1.0	server-image/Dockerfile	."
  "socketfleet/operator:0.1.0	operator/Dockerfile	."
  "socketfleet/chat:0.1.0	examples/apps/chat/Dockerfile	."
  "localhost/redis:7.0.15	test/images/redis.Containerfile	test/images"
  "localhost/nginx:1.22.1	test/images/nginx.Containerfile	test/images"
  "localhost/busybox:1.35.0	test/images/busybox.Containerfile	test/images"
  "localhost/pause:catatonit-0.1.7	test/images/pause.Containerfile	test/images"
)
# What our two Dockerfiles may COPY: any change to these rebuilds them.
OUR_INPUTS=(package.json package-lock.json tsconfig.json tsconfig.build.json .dockerignore
  bin/socketfleet.js server-image operator)

# Debian's own packages at build time; minbase like debian:bookworm-slim, without docs, man pages
# and translations (copyright files stay).
# merged-usr hook: /usr merged without the usrmerge package, which would pull in perl.
MMDEBSTRAP_ARGS=(--variant=minbase --components=main
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --customize-hook="copy-in $here/apt.conf.d/90slim-image /etc/apt/apt.conf.d/"
  --customize-hook='rm -f "$1"/var/cache/apt/*.bin'
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*'
  bookworm -
  'deb http://deb.debian.org/debian bookworm main'
  'deb http://deb.debian.org/debian bookworm-updates main'
  'deb http://deb.debian.org/debian-security bookworm-security main')

log() { echo "images: $*" >&2; }
B() { buildah --root "$dir/storage" --runroot "$dir/run" --storage-driver overlay "$@"; }
sha() { sha256sum | cut -c1-64; }

missing=()
command -v buildah >/dev/null || missing+=(buildah)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v runc >/dev/null || missing+=(runc)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

mkdir -p "$dir/archives" "$dir/out" "$dir/tmp"
exec 9>"$dir/.lock"
flock 9

node_bin=$(bash "$root/.ci/node.sh" | tail -n 1)
node_prefix=$(dirname "$node_bin")
node_version=$("$node_bin/node" --version)
node_version=${node_version#v}

label_of() {
  B inspect --type image --format "{{index .OCIv1.Config.Labels \"$KEY_LABEL\"}}" "$1" 2>/dev/null || true
}
id_of() { B inspect --type image --format '{{.FromImageID}}' "$1"; }

ensure_debian() {
  local key keyed
  # The checkout's path is not an input: worktrees with the same recipe share one base.
  key=$(printf '%s\n' debian-1 "${MMDEBSTRAP_ARGS[@]}" | sed "s|$here|test/images|g" |
    cat - "$here/apt.conf.d/90slim-image" | sha)
  keyed="localhost/socketfleet-build/localhost-debian:${key:0:24}"
  if [ "${SOCKETFLEET_IMAGES_REBUILD:-}" != 1 ] && [ "$(label_of "$keyed")" = "$key" ]; then
    [ "$(label_of "$DEBIAN_REF")" = "$key" ] || B tag "$keyed" "$DEBIAN_REF"
    return
  fi
  log "building $DEBIAN_REF with mmdebstrap"
  local tar="$dir/tmp/debian.tar" c
  mmdebstrap --quiet "${MMDEBSTRAP_ARGS[@]}" >"$tar"
  c=$(B from scratch)
  B add "$c" "$tar" / >/dev/null
  B config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd bash --label "$KEY_LABEL=$key" "$c"
  B commit --quiet --rm "$c" "$DEBIAN_REF" >/dev/null
  B tag "$DEBIAN_REF" "$keyed"
  rm -f "$tar"
}

# build REF CONTAINERFILE CONTEXT KEY [bud args...]
# Each build is also tagged by its key, so checkouts that share this cache (git worktrees on other
# branches) each find their own build and only move REF's tag, instead of rebuilding in turn.
build() {
  local ref=$1 file=$2 context=$3 key=$4 keyed
  shift 4
  keyed="localhost/socketfleet-build/$(printf '%s' "${ref%:*}" | tr '/' '-'):${key:0:24}"
  if [ "$(label_of "$keyed")" = "$key" ]; then
    [ "$(label_of "$ref")" = "$key" ] || B tag "$keyed" "$ref"
    log "reusing $ref"
    return
  fi
  if [ "$(label_of "$ref")" = "$key" ]; then
    B tag "$ref" "$keyed"
    log "reusing $ref"
    return
  fi
  log "building $ref from $file"
  B bud --quiet --pull=never --network host --layers --label "$KEY_LABEL=$key" \
    -f "$file" -t "$ref" -t "$keyed" "$@" "$context" >&2
}

# A machine whose egress re-signs TLS names its CA in NODE_EXTRA_CA_CERTS; npm inside a build
# container must trust it too. The CA list goes in as npm's global config, mounted over the
# empty /usr/local/etc of the node base during RUN only, so no image keeps it.
npm_ca_args=()
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -r "$NODE_EXTRA_CA_CERTS" ]; then
  mkdir -p "$dir/npm-etc"
  { "$node_bin/node" -p "require('tls').rootCertificates.join('\\n')"; cat "$NODE_EXTRA_CA_CERTS"; } >"$dir/npm-etc/ca.crt"
  echo 'cafile=/usr/local/etc/ca.crt' >"$dir/npm-etc/npmrc"
  npm_ca_args=(-v "$dir/npm-etc:/usr/local/etc:ro")
fi

ensure_debian
debian_id=$(id_of "$DEBIAN_REF")
build "$NODE_REF" "$here/node-base.Containerfile" "$node_prefix" \
  "$(printf '%s\n' "$debian_id" "$node_version" | cat - "$here/node-base.Containerfile" | sha)" \
  --build-arg "NODE_VERSION=$node_version"
node_id=$(id_of "$NODE_REF")

our_inputs_hash=$(cd "$root" && find "${OUR_INPUTS[@]}" -type f -print0 | sort -z | xargs -0 sha256sum | sha)

out_lines=()
for entry in "${IMAGES[@]}"; do
  IFS=$'\t' read -r ref file context <<<"$entry"
  case "$file" in
    test/images/*) key=$(printf '%s\n' "$debian_id" | cat - "$root/$file" | sha) ;;
    # An app image FROM the server image (built above): its key is that image and the app's files.
    examples/apps/*)
      key=$(printf '%s\n' "$(id_of socketfleet/server:0.1.0)" \
        "$(cd "$root" && find "$(dirname "$file")" -type f -print0 | sort -z | xargs -0 sha256sum | sha)" |
        cat - "$root/$file" | sha)
      ;;
    *) key=$(printf '%s\n' "$node_id" "$our_inputs_hash" | cat - "$root/$file" | sha) ;;
  esac
  build "$ref" "$root/$file" "$root/$context" "$key" "${npm_ca_args[@]}"
  # Kubernetes and containerd spell a Docker Hub name in full.
  case "${ref%%/*}" in
    *.* | *:* | localhost) full=$ref ;;
    *) full=docker.io/$ref ;;
  esac
  id=$(id_of "$ref")
  archive="$(printf '%s' "$ref" | tr '/:' '__')-${id:0:12}.oci.tar"
  if [ ! -f "$dir/archives/$archive" ]; then
    log "exporting $ref to $archive"
    rm -f "$dir/tmp/$archive"
    B push --quiet "$ref" "oci-archive:$dir/tmp/$archive:$full" >&2
    mv "$dir/tmp/$archive" "$dir/archives/$archive"
  fi
  out_lines+=("$ref	$archive")
done

tsv=$(printf '%s\n' "${out_lines[@]}")
out="$dir/out/$(printf '%s\n' "$tsv" | sha | cut -c1-16)"
if [ ! -f "$out/images.tsv" ]; then
  rm -rf "$out.tmp"
  mkdir -p "$out.tmp"
  for line in "${out_lines[@]}"; do
    ln -f "$dir/archives/${line#*	}" "$out.tmp/"
  done
  printf '%s\n' "$tsv" >"$out.tmp/images.tsv"
  rm -rf "$out"
  mv "$out.tmp" "$out"
fi

for line in "${out_lines[@]}"; do
  ref=${line%%	*}
  log "$(printf '%-32s %8s unpacked, %4s MB archive' "$ref" \
    "$(B images --noheading --format '{{.Size}}' "$ref" | head -n 1)" \
    "$(($(stat -c %s "$out/${line#*	}") / 1000000))")"
done
echo "$out"
