#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, run and test
# devp2p-c: the compiler toolchain, meson/ninja, the libraries
# (libsecp256k1, Nettle, Berkeley DB, snappy, jansson), clang for libFuzzer,
# gdb and valgrind for the debug tools, and Node.js packages for interop
# tests.  Idempotent: installs only what is missing.
# Option: --no-interop skips Node.js and the interop peers (running the node
# needs only the C toolchain and libraries).
#
# The interop peers (@ethereumjs/devp2p 10 and its @noble dependencies) need
# Node.js >= 20.19; Debian 12's own nodejs is 18.  When the node on PATH is
# older, the official Node.js build is fetched from the npm registry (package
# node-linux-<arch>, checked against the registry's integrity hash) into
# .cache/node; tools/test.sh puts .cache/node/bin first on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
interop=1
[ "${1:-}" != "--no-interop" ] || interop=0

pkgs=(build-essential pkg-config meson ninja-build python3
      libsecp256k1-dev nettle-dev libdb-dev libsnappy-dev libjansson-dev
      clang libclang-rt-14-dev clang-format gdb valgrind iproute2 procps
      nodejs npm)
[ "$interop" = 1 ] || pkgs=("${pkgs[@]/nodejs/}") pkgs=("${pkgs[@]/npm/}")
read -r -a pkgs <<<"${pkgs[*]}"
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# A machine that already has node and npm from elsewhere needs no Debian ones.
if command -v node >/dev/null && command -v npm >/dev/null; then
    missing=("${missing[@]/nodejs/}"); missing=("${missing[@]/npm/}")
fi
read -r -a missing <<<"${missing[*]}"
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

NODE_VERSION=20.20.2
node_ok() { # node_ok BIN: BIN runs and is Node.js >= 20.19
    "$1" -e 'const [a, b] = process.versions.node.split(".").map(Number);
             process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' 2>/dev/null
}
if [ "$interop" = 1 ] && ! node_ok node && ! node_ok .cache/node/bin/node; then
    case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) echo "setup: Node.js >= 20.19 is needed for the interop tests; install it" >&2; exit 1 ;;
    esac
    echo "setup: node $(node --version 2>/dev/null || echo missing) is older than 20.19;" \
        "fetching Node.js $NODE_VERSION (npm package node-linux-$arch) into .cache/node"
    rm -rf .cache/node .cache/node-pack && mkdir -p .cache/node .cache/node-pack
    # --loglevel=error, not --silent: a failure (registry unreachable, TLS)
    # says why instead of ending test.sh with a bare "0 passed, 1 failed"
    (cd .cache/node-pack && npm pack --loglevel=error "node-linux-$arch@$NODE_VERSION" >/dev/null) || {
        echo "setup: npm pack node-linux-$arch@$NODE_VERSION failed; install Node.js >= 20.19 or retry" >&2
        exit 1
    }
    tar xzf ".cache/node-pack/node-linux-$arch-$NODE_VERSION.tgz" -C .cache/node --strip-components=1
    rm -rf .cache/node-pack
    node_ok .cache/node/bin/node || { echo "setup: .cache/node/bin/node does not run" >&2; exit 1; }
fi
[ ! -x .cache/node/bin/node ] || export PATH="$PWD/.cache/node/bin:$PATH"

if [ "$interop" = 1 ] && [ -f tests/interop/package-lock.json ] && [ ! -d tests/interop/node_modules/@ethereumjs/devp2p ]; then
    echo "setup: installing interop peers (npm ci in tests/interop)"
    (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)
fi
