#!/bin/sh
# tests/tools/test_interop.sh DEVP2P NODE PEER_MJS: `devp2p rlpx ping` and
# `devp2p discv4 ping` against an @ethereumjs/devp2p node (peer.mjs) on
# loopback.  The peer exits by itself after --duration; we stop it first.
set -u
D=$1 NODE=$2 PEER=$3
. "$(dirname "$0")/lib_check.sh"
need_jspeer

"$NODE" "$PEER" --mode both --port 0 --caps snap/1 --duration 40 >"$T/peer.log" 2>&1 &
pids="$pids $!"
wait_until 200 has_line "$T/peer.log" '"ev":"listening"'
ENODE=$(sed -n 's/.*"ev":"listening","enode":"\([^"]*\)".*/\1/p' "$T/peer.log" | head -1)
[ -n "$ENODE" ] && ok || { bad "peer.mjs did not start: $(cat "$T/peer.log")"; exit 1; }
PUB=${ENODE#enode://}
PUB=${PUB%%@*}

if timeout 20 "$D" rlpx ping "$ENODE" >"$T/hello" 2>"$T/err"; then ok; else bad "rlpx ping: $(cat "$T/err")"; fi
grep -q '^  client:      ethereumjs-devp2p/' "$T/hello" && ok || bad "no ethereumjs client id: $(cat "$T/hello")"
grep -q '^  caps:        snap/1$' "$T/hello" && ok || bad "caps not snap/1: $(cat "$T/hello")"
grep -q '^  version:     5$' "$T/hello" && ok || bad "version not 5"
grep -q "^  id:          $PUB\$" "$T/hello" && ok || bad "id mismatch"
# the peer saw our Hello and our Disconnect(requested) and could decode it
wait_until 50 has_line "$T/peer.log" '"ev":"disconnect:in".*"reason":0'
grep -q '"ev":"hello".*"clientId":"devp2p-c' "$T/peer.log" && ok || bad "peer did not get our Hello"
grep -q '"ev":"disconnect:in".*"reason":0' "$T/peer.log" && ok || bad "peer did not read Disconnect(requested)"

# no shared capability: the peer answers with Disconnect(useless peer), and
# rlpx ping exits 1 (refused)
timeout 20 "$D" rlpx ping --caps foo/1 "$ENODE" >"$T/disc" 2>"$T/err"
[ $? -eq 1 ] && ok || bad "rlpx ping foo/1: $(cat "$T/err")"
grep -q '^disconnect: useless peer (0x03)$' "$T/disc" && ok || bad "want useless peer: $(cat "$T/disc")"

# stress churn: snap/1 succeeds; with no shared capability every session
# ends with the peer's Disconnect(useless peer) right after its Hello: the
# run fails, each one "refused after the Hello" (they were successes)
timeout -k 5 30 "$D" stress --target "$ENODE" --mode churn --peers 2 --duration 1 \
    >"$T/churn" 2>&1 && ok || bad "stress churn: $(cat "$T/churn")"
timeout -k 5 30 "$D" stress --target "$ENODE" --mode churn --caps foo/1 --peers 2 --duration 1 \
    >"$T/churn" 2>&1
[ $? -eq 1 ] && grep -q '^    refused after the Hello: useless peer ' "$T/churn" && ok ||
    bad "stress churn --caps foo/1: $(cat "$T/churn")"

if timeout 20 "$D" discv4 ping "$ENODE" >"$T/pong" 2>"$T/err"; then ok; else bad "discv4 ping: $(cat "$T/err")"; fi
grep -q "^pong from enode://$PUB@127.0.0.1" "$T/pong" && ok || bad "no pong: $(cat "$T/pong")"
grep -q '^  rtt:  ' "$T/pong" && ok || bad "no rtt"

echo "test_interop: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
