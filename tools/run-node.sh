#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (tools/setup.sh), builds devp2p-c and
# runs the node devp2pd with its defaults (data directory ~/.devp2p-c, TCP and
# UDP port 30303, embedded Berkeley DB).  Extra arguments go to devp2pd.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh --no-interop
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
exec build/tools/devp2pd "$@"
