# Sourced by test/lint/build.sh and build-promql.sh: what both Go tool builds
# share. The caller sets DIR (the tool's cache directory), BIN (the binary in
# it) and STAMP (what the binary is built from: version, source hash).

log() { echo "[lint-build $(date -u +%H:%M:%S)] $*" >&2; }

# A binary built from the same STAMP is reused: prints its path and exits.
reuse_if_built() {
  if [[ -x "$BIN" && -f "$DIR/.version" && "$(cat "$DIR/.version")" == "$STAMP" ]]; then
    echo "$BIN"
    exit 0
  fi
}

# Go in module mode only, no cgo (static binaries), and the Go that is
# installed: a toolchain download would need more than the module proxy.
use_go() {
  command -v go >/dev/null || {
    log "go is not installed: install Go >= $1 with access to the Go module proxy"
    exit 1
  }
  export GOWORK=off
  export GOFLAGS="-mod=mod"
  export CGO_ENABLED=0
  export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
}

# Moves a finished build ($1, started at epoch second $2) into place, records
# its stamp and prints the binary path as the last line of stdout.
install_built() {
  mv -f "$1" "$BIN"
  echo "$STAMP" >"$DIR/.version"
  log "built $(basename "$BIN") in $(($(date +%s) - $2))s"
  echo "$BIN"
}
