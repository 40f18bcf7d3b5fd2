#!/bin/sh
# tests/tools/test_discv4.sh DEVP2P RESPONDER: `devp2p discv4 ping`,
# `requestenr` and `resolve` against a strict loopback responder
# (disc_responder.c: answers ENRRequest and Findnode only after the bond).
set -u
D=$1 R=$2
. "$(dirname "$0")/lib_check.sh"

"$R" 40 >"$T/r" &
pid=$!
pids="$pids $pid"
wait_until 100 has_line "$T/r" ready
ENODE=$(sed -n 's/^enode //p' "$T/r")
ENR=$(sed -n 's/^enr //p' "$T/r")
TARGET=$(sed -n 's/^target //p' "$T/r")
[ -n "$ENODE" ] && [ -n "$TARGET" ] && ok || { bad "responder did not start"; exit 1; }

timeout 20 "$D" discv4 ping "$ENODE" >"$T/pong" 2>"$T/err" && ok || bad "ping: $(cat "$T/err")"
grep -q '^  enr seq:    7$' "$T/pong" && ok || bad "pong lacks enr seq 7: $(cat "$T/pong")"
grep -q "^pong from $ENODE" "$T/pong" && ok || bad "pong line: $(head -1 "$T/pong")"

timeout 20 "$D" discv4 requestenr "$ENODE" >"$T/enr" 2>"$T/err" && ok || bad "requestenr: $(cat "$T/err")"
[ "$(head -1 "$T/enr")" = "$ENR" ] && ok || bad "requestenr printed '$(head -1 "$T/enr")', want '$ENR'"
grep -q '^seq:       7$' "$T/enr" && grep -q '^signature: valid' "$T/enr" && ok || bad "requestenr dump: $(cat "$T/enr")"

# the responder itself: asked directly at the URL given, and by its ID
# with its record as the bootnode; printed from its record (ip, udp: no
# tcp port)
PUB=${ENODE#enode://}
PUB=${PUB%%@*}
UDP=${ENODE##*:}
REC="enode://$PUB@127.0.0.1:0?discport=$UDP"
timeout 20 "$D" discv4 resolve --bootnodes "$TARGET" "$ENODE" >"$T/res" 2>"$T/err" && ok || bad "resolve: $(cat "$T/err")"
[ "$(cat "$T/res")" = "$REC" ] && ok || bad "resolve printed '$(cat "$T/res")', want '$REC'"
timeout 20 "$D" discv4 resolve --bootnodes "$ENR" "$PUB" >"$T/res2" 2>"$T/err" && ok || bad "resolve by id: $(cat "$T/err")"
[ "$(cat "$T/res2")" = "$REC" ] && ok || bad "resolve by id printed '$(cat "$T/res2")'"
# a node listed (the responder's first fake node) but not there: the
# lookup finds it, the ping goes unanswered
timeout 20 "$D" discv4 resolve --bootnodes "$ENODE" "$TARGET" >"$T/res4" 2>"$T/err"
[ $? -eq 1 ] && [ ! -s "$T/res4" ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q 'not found' "$T/err" && ok ||
    bad "resolve of a listed node that does not answer: '$(cat "$T/res4")' $(cat "$T/err")"
# a node nobody knows: one line, non-zero
OTHER=$("$D" key to-enode --hex "$(printf '%064x' 7)")
timeout 20 "$D" discv4 resolve --timeout 3 --bootnodes "$ENODE" "$OTHER" >"$T/res3" 2>"$T/err"
[ $? -ne 0 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q 'not found' "$T/err" && ok || bad "unknown node resolve: $(cat "$T/err")"
# nothing listening: ping times out with one line
DEAD=$("$D" key to-enode --tcp 9 "$(printf '%064x' 5)")
timeout 20 "$D" discv4 ping --timeout 0.5 "$DEAD" >/dev/null 2>"$T/err"
[ $? -ne 0 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q 'no pong' "$T/err" && ok || bad "dead ping: $(cat "$T/err")"
# the timeout it names is in seconds, however it was given
timeout 20 "$D" discv4 ping --timeout 500ms "$DEAD" >/dev/null 2>"$T/err"
[ $? -eq 1 ] && grep -q 'no pong from .* within 0\.5 s$' "$T/err" && ok || bad "dead ping, 500ms: $(cat "$T/err")"

kill "$pid"; wait "$pid" 2>/dev/null; pids=
grep -q '^served [1-9]' "$T/r" && ok || bad "responder served nothing: $(tail -1 "$T/r")"

# a node whose packets are all expired (a replay, or a clock 20 s or more
# behind): its Pong is not taken (PROTOCOL.md: reject if past) and its
# Ping, which it sends back at once, is not answered
DISC_RESPONDER_STALE=1 "$R" 20 >"$T/s" &
pid=$!
pids="$pids $pid"
wait_until 100 has_line "$T/s" ready
SENODE=$(sed -n 's/^enode //p' "$T/s")
timeout 20 "$D" discv4 ping --timeout 1 "$SENODE" >"$T/spong" 2>"$T/err"
[ $? -eq 1 ] && [ ! -s "$T/spong" ] && grep -q 'no pong .*; dropped 0 invalid and [1-9][0-9]* expired' "$T/err" && ok ||
    bad "ping took an expired pong: $(cat "$T/spong" "$T/err")"
# requestenr waits for the Ping that follows the Pong, to answer it
timeout 20 "$D" discv4 requestenr --timeout 2 "$SENODE" >"$T/senr" 2>"$T/err"
[ $? -eq 1 ] && [ ! -s "$T/senr" ] && grep -q 'no pong' "$T/err" && ok ||
    bad "requestenr took an expired pong: $(cat "$T/senr" "$T/err")"
kill "$pid"; wait "$pid" 2>/dev/null; pids=
grep -q '^served 0 refused 0 pongs 0$' "$T/s" && ok || bad "an expired ping was answered: $(tail -1 "$T/s")"

echo "test_discv4: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
