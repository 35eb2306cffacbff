#!/usr/bin/env bash
# One forwarded connection (run by forward.sh's socat): stdin/stdout <-> HOST:PORT
# inside network namespace NAME, from source address SRC when given.
# Usage: connect.sh NAME HOST PORT [SRC]
exec nsenter --net="/run/netns/$1" -- socat STDIO "TCP:$2:$3${4:+,bind=$4}"
