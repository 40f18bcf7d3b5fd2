#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, run and test
# devp2p-c: the compiler toolchain, meson/ninja, the libraries
# (libsecp256k1, Nettle, Berkeley DB, snappy, jansson), clang for libFuzzer,
# gdb and valgrind for the debug tools, and Node.js packages for interop
# tests.  Idempotent: installs only what is missing.
# Option: --no-interop skips the Node.js interop peers (running the node
# needs only the C toolchain and libraries).
set -euo pipefail
cd "$(dirname "$0")/.."
interop=1
[ "${1:-}" != "--no-interop" ] || interop=0

pkgs=(build-essential pkg-config meson ninja-build python3
      libsecp256k1-dev nettle-dev libdb-dev libsnappy-dev libjansson-dev
      clang libclang-rt-14-dev clang-format gdb valgrind iproute2 procps
      nodejs npm)
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

if [ "$interop" = 1 ] && [ -f tests/interop/package-lock.json ] && [ ! -d tests/interop/node_modules/@ethereumjs/devp2p ]; then
    echo "setup: installing interop peers (npm ci in tests/interop)"
    (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)
fi
