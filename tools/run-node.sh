#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (tools/setup.sh), builds the node and
# the command-line tool (build/tools/devp2pd, build/tools/devp2p, so
# `build/tools/devp2p attach` can talk to the node) and runs devp2pd with
# its defaults (data directory ~/.devp2p-c, TCP and UDP port 30303,
# embedded Berkeley DB).  Extra arguments go to devp2pd.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh --no-interop
# Build quietly; on failure show the end of the log (meson and ninja print
# their diagnostics on stdout).
build_step() {
    "$@" >build.log 2>&1 || { tail -n 50 build.log >&2; echo "run-node: '$*' failed (full log: build.log)" >&2; exit 1; }
}
[ -f build/build.ninja ] || build_step meson setup build
build_step ninja -C build tools/devp2pd tools/devp2p
exec build/tools/devp2pd "$@"
