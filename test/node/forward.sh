#!/usr/bin/env bash
# Starts a loopback forwarder into a run's network namespace:
#   127.0.0.1:<free port> (host)  ->  HOST:PORT inside namespace NAME
# optionally from source address SRC (one of the node's spare addresses), so a
# server behind it sees that address as the client. Records the listener as
# $W/pids/fwd-<TAG>; prints the port.
# Usage: forward.sh NAME TAG HOST PORT [SRC]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$HERE/env.sh"
NAME="$1" TAG="$2" HOST="$3" PORT="$4" SRC="${5:-}"
W="$(run_dir "$NAME")"
[[ -d "$W/pids" ]] || {
  echo "no run $NAME" >&2
  exit 2
}
for _ in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 40000))
  # Each accepted connection runs connect.sh: socat inside the namespace.
  setsid socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork,backlog=512" \
    "EXEC:bash $HERE/connect.sh $NAME $HOST $PORT $SRC" </dev/null >>"$W/logs/fwd-$TAG.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 50); do
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$pid $(proc_start "$pid")" >"$W/pids/fwd-$TAG"
      echo "$port"
      exit 0
    fi
    sleep 0.05
  done
  kill "$pid" 2>/dev/null || true # the port was taken: try another
done
echo "could not start a forwarder for $HOST:$PORT" >&2
exit 1
