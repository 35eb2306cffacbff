#!/bin/sh
# Entrypoint of the socketfleet server image, and of the data-plane tests, which start servers
# exactly this way. Raises the soft open-file limit (every WebSocket is a file descriptor) to
# min($SOCKETFLEET_NOFILE, hard limit), then replaces itself with node so signals reach it.
# Node 20+ also raises its soft limit to the hard limit at startup, so a lower
# SOCKETFLEET_NOFILE cannot cap node; the raise here keeps the shell and any wrapper honest.
set -eu

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
hard=$(ulimit -Hn)
want=${SOCKETFLEET_NOFILE:-$hard}
if [ "$hard" != "unlimited" ] && [ "$want" != "unlimited" ] && [ "$want" -gt "$hard" ]; then
  want=$hard
fi
if ! ulimit -Sn "$want" 2>/dev/null; then
  echo "entrypoint: cannot raise the open-file limit to $want (hard limit $hard); continuing with $(ulimit -Sn)" >&2
fi

# An image built FROM this one runs its own app through the same entrypoint: SOCKETFLEET_APP names
# its main file (default: the relay).
exec node ${SOCKETFLEET_NODE_OPTIONS:-} "${SOCKETFLEET_APP:-$here/bin/socketfleet-server.js}" "$@"
