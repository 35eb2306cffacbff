# Sourced by test/lint/build.sh and build-promql.sh: the Go set-up both tool
# builds share. Needs log() and TOOL_GO_MIN (the Go version the tool needs).

command -v go >/dev/null || {
  log "go is not installed: install Go >= $TOOL_GO_MIN with access to the Go module proxy"
  exit 1
}

# Module mode only, no cgo (static binaries), and the Go that is installed:
# a toolchain download would need more than the module proxy.
export GOWORK=off
export GOFLAGS="-mod=mod"
export CGO_ENABLED=0
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
