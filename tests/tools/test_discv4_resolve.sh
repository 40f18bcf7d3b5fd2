#!/bin/sh
# tests/tools/test_discv4_resolve.sh DEVP2PD DEVP2P DISC_NET: `devp2p discv4
# resolve` as a Kademlia resolve, on loopback.  R is a devp2pd rendezvous,
# A a devp2pd bootstrapped from R (fixed key); NET a disc_net network of
# 200 nodes that knows neither.
# - known node: A's ID through R; A's enode URL through NET (asked directly)
# - moved node: A restarted on another port with the same key, R updated;
#   given A's old URL and a bootnode that still lists A at the old
#   endpoint (a 1-node disc_net, STALE), resolve prints the new endpoint
# - unknown ID through NET: "not found" once the 16 closest nodes were
#   asked, far under --timeout, having asked a corner of the 200 nodes
set -u
N=$1 D=$2 NET=$3
. "$(dirname "$0")/lib_check.sh"
# resolve OUT ARGS...: runs resolve (bounded), stdout in OUT, stderr in
# OUT.err; sets rc and ms (wall time)
resolve() {
    out=$1; shift
    s=$(date +%s%N)
    timeout 60 "$D" discv4 resolve "$@" >"$out" 2>"$out.err"
    rc=$?
    ms=$((($(date +%s%N) - s) / 1000000))
}
# live_at_r PUB [ENDPOINT]: R's table holds PUB as a live entry (at
# ENDPOINT, "127.0.0.1:UDP", when given)
live_at_r() {
    "$D" attach "$T/r" discv4_table >"$T/rtab" 2>/dev/null && python3 - "$T/rtab" "$@" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
pub, ep = sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else ""
live = [e["enode"] for b in t["buckets"] for e in b if e["live"] and pub in e["enode"]]
sys.exit(0 if any(ep == "" or ("@" + ep) in u or ("discport=" + ep.split(":")[1]) in u for u in live) else 1)
PY
}
udp_of() { # udp_of URL: the UDP port of an enode URL
    case $1 in
    *discport=*) echo "${1##*discport=}" ;;
    *) p=${1##*:}; echo "${p%%\?*}" ;;
    esac
}

node_start r --datadir "$T/r" --addr 127.0.0.1 --nodial
R=$ENODE
KEY=$(printf '%064x' 4242)
node_start a --datadir "$T/a" --addr 127.0.0.1 --nodial --nodekeyhex "$KEY" --bootnodes "$R"
A=$ENODE apid=$pid A_PUB=$(pub_of "$ENODE")
[ -n "$R" ] && [ -n "$A" ] && ok || { bad "R or A did not start: $(cat "$T/r.err" "$T/a.err")"; exit 1; }
"$NET" 90 200 >"$T/net" &
pids="$pids $!" netpid=$!
wait_until 300 has_line "$T/net" ready
NETB=$(sed -n 's/^enode //p' "$T/net")
[ -n "$NETB" ] && ok || { bad "disc_net did not start"; exit 1; }
wait_until 150 live_at_r "$A_PUB" && ok || bad "R does not list A as live: $(cat "$T/rtab")"

# known node, by ID, through R
resolve "$T/k1" --bootnodes "$R" "$A_PUB"
[ $rc -eq 0 ] && [ "$(cat "$T/k1")" = "$A" ] && ok || bad "resolve A by ID: rc $rc '$(cat "$T/k1")' $(cat "$T/k1.err")"
echo "known node by ID through R: $ms ms"
# known node, by URL, through a network that does not know it: A itself
# answers at the endpoint given, with its record
resolve "$T/k2" --verbose --bootnodes "$NETB" "$A"
[ $rc -eq 0 ] && [ "$(cat "$T/k2")" = "$A" ] && ok || bad "resolve A by URL: rc $rc '$(cat "$T/k2")' $(tail -3 "$T/k2.err")"
grep -q "resolve: $A answered with its record" "$T/k2.err" && ok || bad "A was not asked directly: $(grep resolve: "$T/k2.err")"
echo "known node by URL, asked directly: $ms ms"

# moved node: A again with the same key on another port
term_wait "$apid" 20 A
[ $rc -eq 0 ] && ok || bad "A exited $rc"
node_start a2 --datadir "$T/a" --addr 127.0.0.1 --nodial --nodekeyhex "$KEY" --bootnodes "$R"
A2=$ENODE
[ -n "$A2" ] && [ "$A2" != "$A" ] && ok || { bad "A did not restart elsewhere: '$A2' $(cat "$T/a2.err")"; exit 1; }
wait_until 150 live_at_r "$A_PUB" "127.0.0.1:$(udp_of "$A2")" && ok || bad "R does not list A at its new endpoint: $(cat "$T/rtab")"
# STALE still lists A at its old endpoint, and R
"$NET" 60 1 "$A" "$R" >"$T/stale" &
pids="$pids $!"
wait_until 300 has_line "$T/stale" ready
STALE=$(sed -n 's/^enode //p' "$T/stale")
resolve "$T/m" --verbose --bootnodes "$STALE" "$A"
[ $rc -eq 0 ] && [ "$(cat "$T/m")" = "$A2" ] && ok || bad "resolve moved A: rc $rc '$(cat "$T/m")', want '$A2': $(grep resolve: "$T/m.err")"
grep -q "resolve: $A did not answer" "$T/m.err" && ok || bad "the old endpoint was not asked: $(grep resolve: "$T/m.err")"
echo "moved node by its old URL: $ms ms"

# unknown ID: the lookup ends once the 16 closest nodes seen were asked
# (a crawl of NET's 200 nodes would ask them all)
U=$("$D" key to-enode --hex "$(printf '%064x' 7)")
U_PUB=$(pub_of "$U")
resolve "$T/u" --verbose --timeout 30 --bootnodes "$NETB" "$U_PUB"
[ $rc -eq 1 ] && [ ! -s "$T/u" ] && tail -1 "$T/u.err" | grep -q "not found (no endpoint answered)" && ok ||
    bad "unknown ID: rc $rc '$(cat "$T/u")' $(tail -1 "$T/u.err")"
grep -q "resolve: lookup ended: the 16 closest nodes seen were asked" "$T/u.err" && ok ||
    bad "the lookup did not end by itself: $(grep resolve: "$T/u.err")"
[ $ms -lt 15000 ] && ok || bad "unknown ID took $ms ms (--timeout 30)"
echo "unknown ID through 200 nodes: $ms ms, $(grep 'lookup ended' "$T/u.err")"
term_wait "$netpid" 10 disc_net
q=$(sed -n 's/^queried \([0-9]*\) of.*/\1/p' "$T/net")
[ -n "$q" ] && [ "$q" -le 60 ] && ok || bad "the 200-node network got Findnode at $q nodes"
echo "disc_net: $(tr '\n' ' ' <"$T/net" | sed 's/.*ready //')"
# without --verbose the failure is one line
resolve "$T/u2" --timeout 30 --bootnodes "$R" "$U_PUB"
[ $rc -eq 1 ] && [ "$(wc -l <"$T/u2.err")" -eq 1 ] && grep -q 'not found' "$T/u2.err" && ok ||
    bad "unknown ID through R: rc $rc $(cat "$T/u2.err")"

echo "test_discv4_resolve: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
