#!/bin/sh
# The README's first command: installs what `socketfleet up` needs from npm (once, or when the
# lock file changed) and runs a RealtimeCluster on this machine. Arguments go to `socketfleet up`;
# with none it runs examples/local.yaml.
set -eu
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null 2>&1; then
  echo "socketfleet: Node.js 20.19 or newer is required; install it with: apt-get install -y nodejs npm" >&2
  exit 1
fi
stamp=node_modules/.socketfleet-installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ ! -f dist/operator/cli/main.js ]; then
  echo "socketfleet: installing npm dependencies (npm ci) ..."
  npm ci --no-audit --no-fund
  touch "$stamp"
fi
if [ $# -eq 0 ]; then
  set -- -f examples/local.yaml
fi
exec node bin/socketfleet.js up "$@"
