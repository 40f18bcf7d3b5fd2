#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (tools/setup.sh), builds devp2p-c and
# runs the node devp2pd with its defaults (data directory ~/.devp2p-c, TCP and
# UDP port 30303, embedded Berkeley DB).  Extra arguments go to devp2pd.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
if [ ! -x build/tools/devp2pd ]; then
    echo "run-node: devp2pd is not part of this build yet; the library and test suite are" >&2
    echo "run-node: built in build/ (run ./tools/test.sh)" >&2
    exit 1
fi
exec build/tools/devp2pd "$@"
