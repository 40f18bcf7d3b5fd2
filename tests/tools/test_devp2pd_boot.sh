#!/bin/sh
# tests/tools/test_devp2pd_boot.sh DEVP2PD DEVP2P: two daemons on loopback,
# B started with A as its only bootnode (no static nodes): discovery offers
# A to B's dialer (and B, once verified, to A's), so within 30 s both list
# the other in admin_peers as a dynamic peer (one connection, dialed by
# either side).  Prints the time to connect.  Then C and D on ::1: D takes
# C's IPv6 URL as bootnode and from a JSON static-nodes file, and peers.
set -u
N=$1 D=$2
. "$(dirname "$0")/lib_check.sh"
now_ms() { echo $(($(date +%s%N) / 1000000)); }

node_start a --datadir "$T/a"
[ -n "$ENODE" ] && ok || { bad "node a did not start: $(cat "$T/a.err")"; exit 1; }
A_ENODE=$ENODE A_PUB=$(pub_of "$ENODE")
t0=$(now_ms)
node_start b --datadir "$T/b" --bootnodes "$A_ENODE"
[ -n "$ENODE" ] && ok || { bad "node b did not start: $(cat "$T/b.err")"; exit 1; }
B_PUB=$(pub_of "$ENODE")

wait_until 300 lists_peer "$T/b" "$A_PUB" "$T/bpeers"
st=$?
t1=$(now_ms)
[ $st -eq 0 ] && ok || bad "B did not connect to its bootnode A within 30 s: $(cat "$T/bpeers")"
echo "B connected to its bootnode A in $((t1 - t0)) ms (from B's start)"
python3 - "$T/bpeers" "$A_PUB" <<'PY' && ok || bad "B's admin_peers: $(cat "$T/bpeers")"
import json, sys
d = json.load(open(sys.argv[1]))
p = [x for x in d if sys.argv[2] in x["enode"]]
assert len(p) == 1, d
assert p[0]["network"]["static"] is False, p
PY
"$D" attach "$T/a" admin_peers >"$T/apeers" 2>&1
python3 - "$T/apeers" "$B_PUB" "$T/bpeers" <<'PY' && ok || bad "A's admin_peers: $(cat "$T/apeers")"
import json, sys
d = json.load(open(sys.argv[1]))
p = [x for x in d if sys.argv[2] in x["enode"]]
assert len(p) == 1 and p[0]["network"]["static"] is False, d
# one connection: inbound on one side, outbound on the other
b = json.load(open(sys.argv[3]))
assert len(b) == 1 and b[0]["network"]["inbound"] != p[0]["network"]["inbound"], (d, b)
PY
# admin_metrics: the counts agree with the listings (inbound + outbound = peers)
"$D" attach "$T/a" admin_metrics >"$T/amet" 2>&1
"$D" attach "$T/b" admin_metrics >"$T/bmet" 2>&1
python3 - "$T/amet" "$T/bmet" "$T/apeers" "$T/bpeers" <<'PY' && ok || bad "admin_metrics: $(cat "$T/amet" "$T/bmet")"
import json, sys
for met, peers in ((sys.argv[1], sys.argv[3]), (sys.argv[2], sys.argv[4])):
    s = json.load(open(met))["server"]
    l = json.load(open(peers))
    assert s["peers"] == 1 and s["inbound"] + s["outbound"] == s["peers"], s
    assert s["inbound"] == sum(1 for p in l if p["network"]["inbound"]), (s, l)
PY

# IPv6: C and D on ::1, D with C's URL ("@[::1]:port") as its bootnode
# and in a static-nodes file written as a JSON array (geth's
# static-nodes.json): the brackets of the address are not the array's
node_start c --datadir "$T/c" --addr ::1
C_ENODE=$ENODE C_PUB=$(pub_of "$ENODE")
case "$C_ENODE" in *"@[::1]:"*) ok ;; *) bad "node c's URL is not on [::1]: $C_ENODE $(cat "$T/c.err")" ;; esac
printf '[\n  "%s"\n]\n' "$C_ENODE" >"$T/static.json"
node_start d --datadir "$T/d" --addr ::1 --bootnodes "$C_ENODE" --staticnodes "$T/static.json"
[ -n "$ENODE" ] && ok || bad "node d did not take C's IPv6 URL: $(cat "$T/d.err")"
[ -n "$ENODE" ] && wait_until 100 lists_peer "$T/d" "$C_PUB" "$T/dpeers"
python3 - "$T/dpeers" "$C_PUB" <<'PY' && ok || bad "D's admin_peers over IPv6: $(cat "$T/dpeers")"
import json, sys
d = json.load(open(sys.argv[1]))
p = [x for x in d if sys.argv[2] in x["enode"]]
assert len(p) == 1 and p[0]["network"]["static"] is True, d
assert p[0]["network"]["remoteAddress"].startswith("[::1]:"), p
PY
# the devp2p tool reaches C over IPv6 without --addr (its socket takes
# both families); an IPv4 --addr is told why it cannot, and so is a
# specific IPv6 --addr sent to A's IPv4 address
C_ENR=$(sed -n 's/^enr: //p' "$T/c.out")
timeout 20 "$D" discv4 ping "$C_ENODE" >"$T/pong6" 2>"$T/err6" && ok || bad "ping over IPv6: $(cat "$T/err6")"
grep -q '^  to:         ::1 ' "$T/pong6" && ok || bad "ping over IPv6: $(cat "$T/pong6")"
timeout 20 "$D" discv4 requestenr "$C_ENODE" >"$T/enr6" 2>"$T/err6" && ok || bad "requestenr over IPv6: $(cat "$T/err6")"
[ "$(head -1 "$T/enr6")" = "$C_ENR" ] && ok || bad "requestenr over IPv6 printed '$(head -1 "$T/enr6")', want '$C_ENR'"
timeout 20 "$D" discv4 ping --addr 127.0.0.1 "$C_ENODE" >/dev/null 2>"$T/err6"
[ $? -ne 0 ] && grep -q 'address family' "$T/err6" && ok || bad "IPv4 --addr to an IPv6 node: $(cat "$T/err6")"
timeout 20 "$D" discv4 ping --addr ::1 "$A_ENODE" >/dev/null 2>"$T/err4"
[ $? -ne 0 ] && grep -q 'address family' "$T/err4" && ok || bad "IPv6 --addr to an IPv4 node: $(cat "$T/err4")"

echo "test_devp2pd_boot: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
