#!/bin/sh
# tests/tools/test_devp2pd_resolve.sh DEVP2PD DEVP2P: static nodes known by
# their ID alone are found through discovery (geth's Resolve).  R is a
# discovery rendezvous that takes no peers (--maxpeers 0); C and D know
# only R and do not dial.  B starts with --bootnodes R and
# --staticnodes enode://<C's key> (no address): it looks C up, dials it as
# a static peer, and lists it with C's address; the same for D in the
# same list.  admin_addPeer enode://<E's key> on the running B takes the
# ID alone, and B connects to E.  Without
# discovery an address-less static node is refused, with a sentence that
# says why: --staticnodes (usage error) and admin_addPeer (error -32000).
set -u
N=$1 D=$2
. "$(dirname "$0")/lib_check.sh"
# wait_peer DIR PUB SECONDS: until DIR's node lists PUB as a static peer
wait_peer() {
    i=0
    while [ $i -lt $(($3 * 5)) ]; do
        "$D" attach "$1" admin_peers >"$T/peers" 2>/dev/null && python3 - "$T/peers" "$2" <<'PY' && return 0
import json, sys
ps = [p for p in json.load(open(sys.argv[1])) if sys.argv[2] in p["enode"]]
sys.exit(0 if ps and ps[0]["network"]["static"] else 1)
PY
        sleep 0.2; i=$((i + 1))
    done
    return 1
}

node_start r --datadir "$T/r" --maxpeers 0
R=$ENODE
[ -n "$R" ] && ok || { bad "R did not start: $(cat "$T/r.err")"; exit 1; }
# a node that refuses us: rlpx ping prints its reason and exits 1
timeout 20 "$D" rlpx ping "$R" >"$T/ping" 2>&1
[ $? -eq 1 ] && grep -q '^disconnect: too many peers' "$T/ping" && ok || bad "rlpx ping of a full node: $(cat "$T/ping")"
node_start c --datadir "$T/c" --bootnodes "$R" --nodial
C=$ENODE C_PUB=$(pub_of "$ENODE")
node_start d --datadir "$T/d" --bootnodes "$R" --nodial
DN=$ENODE D_PUB=$(pub_of "$ENODE")
[ -n "$C" ] && [ -n "$DN" ] && ok || { bad "C or D did not start"; exit 1; }
# R holds C and D as verified (live) entries once they bonded with it:
# only those go into its findnode answers
live_at_r() {
    "$D" attach "$T/r" discv4_table >"$T/rtab" 2>/dev/null && python3 - "$T/rtab" "$C_PUB" "$D_PUB" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
live = [e["enode"] for b in t["buckets"] for e in b if e["live"]]
sys.exit(0 if all(any(k in e for e in live) for k in sys.argv[2:]) else 1)
PY
}
i=0
while [ $i -lt 150 ] && ! live_at_r; do sleep 0.2; i=$((i + 1)); done
live_at_r && ok || bad "R's table lacks C or D as live entries: $(cat "$T/rtab")"

node_start b --datadir "$T/b" --bootnodes "$R" --staticnodes "enode://$C_PUB,enode://$D_PUB"
[ -n "$ENODE" ] && ok || { bad "B did not start: $(cat "$T/b.err")"; exit 1; }
C_ADDR=${C#*@}; C_ADDR=${C_ADDR%%\?*}
if wait_peer "$T/b" "$C_PUB" 30; then ok; else bad "B did not connect to C (static, by ID): $(cat "$T/peers")"; fi
grep -q "\"remoteAddress\": \"$C_ADDR\"" "$T/peers" && ok || bad "C's address not the one it listens on ($C_ADDR): $(cat "$T/peers")"
if wait_peer "$T/b" "$D_PUB" 30; then ok; else bad "B did not connect to D (static, by ID): $(cat "$T/peers")"; fi

# admin_addPeer takes an ID alone on a node with discovery (E may also
# reach B as a dynamic peer first: only the connection is checked)
node_start e --datadir "$T/e" --bootnodes "$R" --nodial
E_PUB=$(pub_of "$ENODE")
"$D" attach "$T/b" admin_addPeer "enode://$E_PUB" >"$T/add" 2>&1 && grep -q true "$T/add" && ok ||
    bad "admin_addPeer by ID: $(cat "$T/add")"
i=0
while [ $i -lt 150 ]; do
    "$D" attach "$T/b" admin_peers >"$T/peers" 2>/dev/null && grep -q "$E_PUB" "$T/peers" && break
    sleep 0.2; i=$((i + 1))
done
grep -q "$E_PUB" "$T/peers" && ok || bad "B did not connect to E (admin_addPeer by ID): $(cat "$T/peers")"

# without discovery: refused, saying why
"$D" attach "$T/c" admin_addPeer "enode://$D_PUB" >"$T/add" 2>&1
[ $? -eq 1 ] && grep -q 'error -32000: .*discovery' "$T/add" && ok || bad "addPeer by ID with --nodial: $(cat "$T/add")"
timeout 10 "$N" --datadir "$T/f" --port 0 --nodiscover --staticnodes "enode://$C_PUB" >/dev/null 2>"$T/f.err"
[ $? -eq 2 ] && grep -q 'no IP address.*discovery' "$T/f.err" && [ ! -e "$T/f" ] && ok ||
    bad "--staticnodes by ID with --nodiscover: $(cat "$T/f.err")"

for p in $pids; do term_wait "$p" 20 "node"; [ "$rc" -eq 0 ] && ok || bad "a node exited $rc on SIGTERM"; done
pids=
echo "test_devp2pd_resolve: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
