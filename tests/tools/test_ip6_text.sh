#!/bin/sh
# tests/tools/test_ip6_text.sh DEVP2PD DEVP2P: an IPv6 endpoint in the
# tools' messages and reports is written [addr]:port, as in enode URLs:
# "::1:1" reads as an address, not as ::1 port 1.  `devp2p rlpx ping`'s
# connect error, `devp2p stress`'s report (text and JSON target), and
# `devp2p discv4 crawl --verbose`'s packet lines, against a devp2pd on
# ::1.  Loopback only (::1); every wait is bounded.
set -u
N=$1 D=$2
. "$(dirname "$0")/lib_check.sh"

KEY=$("$D" key generate 2>/dev/null)
# a port nothing listens on: one the kernel just gave a socket, closed
DEAD=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0)); print(s.getsockname()[1])')
PUB=$("$D" key to-enode --hex "$KEY" | sed 's|^enode://||; s|@.*||')
URL="enode://$PUB@[::1]:$DEAD"

# 1. rlpx ping: the connect error names [::1]:PORT
timeout 20 "$D" rlpx ping --timeout 2 "$URL" >"$T/ping.out" 2>"$T/ping.err"
rc=$?
[ "$rc" = 1 ] && ok || bad "rlpx ping of a closed port: exit $rc, want 1"
grep -q "^devp2p: cannot connect to \[::1\]:$DEAD: " "$T/ping.err" && ok ||
    bad "rlpx ping: connect error: $(cat "$T/ping.err")"

# 2. stress against a devp2pd on ::1: the report's target is [::1]:PORT
mkdir -m 700 "$T/dd"
node_start n --datadir "$T/dd" --addr ::1 --nodial
[ -n "$ENODE" ] && ok || bad "devp2pd --addr ::1 did not start: $(cat "$T/n.err")"
PORT=$(echo "$ENODE" | sed -n 's|.*@\[::1\]:\([0-9]*\).*|\1|p')
timeout 30 "$D" stress --target "$ENODE" --mode hold --peers 1 --duration 1 --out "$T/s.json" \
    >"$T/s.out" 2>"$T/s.err" && ok || bad "stress: $(cat "$T/s.err")"
grep -q "^stress hold against \[::1\]:$PORT: " "$T/s.out" && ok || bad "stress report: $(head -1 "$T/s.out")"
python3 -c 'import json, sys; t = json.load(open(sys.argv[1]))["target"]; sys.exit(t != sys.argv[2])' \
    "$T/s.json" "[::1]:$PORT" && ok || bad "stress JSON target: $(grep -o '"target": *"[^"]*"' "$T/s.json")"

# 3. crawl --verbose: packets from [::1]:UDP-PORT
UPORT=$(echo "$ENODE" | sed -n 's|.*?discport=\([0-9]*\).*|\1|p')
timeout 30 "$D" discv4 crawl --bootnodes "$ENODE" --timeout 3 --verbose >/dev/null 2>"$T/c.err"
grep -q " from \[::1\]:${UPORT:-$PORT} " "$T/c.err" && ok || bad "crawl --verbose: $(head -3 "$T/c.err")"

term_wait $pid 10 devp2pd
[ "$rc" = 0 ] && ok || bad "devp2pd exited $rc after SIGTERM, want 0"

echo "test_ip6_text: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
