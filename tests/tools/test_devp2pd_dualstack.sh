#!/bin/sh
# tests/tools/test_devp2pd_dualstack.sh DEVP2PD DEVP2P RESPONDER: a node on
# :: (dual-stack) whose bootnodes, ten disc_responders on ten /24s of
# 127/8 reached over IPv4 (v4-mapped on its socket), answer its pings with
# pongs naming an IPv6 endpoint for it.  Once ten networks agree the node
# re-signs its record with ip6/udp6/tcp6 next to ip/udp/tcp, and
# admin_nodeInfo serves that record (enr, enode, ip, discovery port) as
# the node answers ENRRequests with it, not the record of the start.
# A node on :: with --nat extip:IPv4 learns its IPv6 endpoint all the same
# (the static address fixes its own family only).
set -u
N=$1 D=$2 R=$3
. "$(dirname "$0")/lib_check.sh"

boots=
for i in 1 2 3 4 5 6 7 8 9 10; do
    "$R" 60 "127.0.$i.1" 2a01:4f8::34 9998 >"$T/r$i.out" 2>&1 &
    pids="$pids $!"
done
for i in 1 2 3 4 5 6 7 8 9 10; do
    wait_until 100 has_line "$T/r$i.out" '^ready'
    u=$(sed -n 's/^enode //p' "$T/r$i.out")
    [ -n "$u" ] || { bad "responder $i did not start: $(cat "$T/r$i.out")"; exit 1; }
    boots="${boots:+$boots,}$u"
done

node_start a --datadir "$T/a" --addr :: --bootnodes "$boots" --verbosity 3
[ -n "$ENODE" ] && ok || { bad "node did not start: $(cat "$T/a.err")"; exit 1; }
case "$ENODE" in *@127.0.0.1:*) ok ;; *) bad "a node on :: names itself $ENODE" ;; esac
# --port 0: TCP and UDP ports of their own (enode ...@ip:TCP?discport=UDP)
PORT=${ENODE##*:} UPORT=${ENODE##*discport=}
PORT=${PORT%%\?*}
[ "$UPORT" = "$ENODE" ] && UPORT=$PORT
START_ENR=$(sed -n 's/^enr: //p' "$T/a.out")
wait_until 300 has_line "$T/a.err" 'Discovery endpoint changed.*ip=2a01:4f8::34 udp=9998'
grep -q 'Discovery endpoint changed.*ip=2a01:4f8::34' "$T/a.err" && ok ||
    bad "no endpoint change within 30 s: $(cat "$T/a.err")"

# the record the node serves now, over discovery (reached over IPv4)
timeout 20 "$D" discv4 requestenr "$ENODE" >"$T/req" 2>"$T/req.err" && ok ||
    bad "requestenr: $(cat "$T/req.err")"
NOW_ENR=$(head -1 "$T/req")
[ "$NOW_ENR" != "$START_ENR" ] && ok || bad "the record did not change: $NOW_ENR"
"$D" enrdump "$NOW_ENR" >"$T/dump" 2>&1
for kv in "ip: *127.0.0.1" "ip6: *2a01:4f8::34" "udp: *$UPORT" "udp6: *9998" "tcp: *$PORT" "tcp6: *$PORT"; do
    grep -q "^  $kv\$" "$T/dump" && ok || bad "the record lacks '$kv': $(cat "$T/dump")"
done

"$D" attach "$T/a" admin_nodeInfo >"$T/info" 2>&1
python3 - "$T/info" "$NOW_ENR" "$PORT" <<'PY' && ok || bad "admin_nodeInfo: $(cat "$T/info")"
import json, sys
d = json.load(open(sys.argv[1]))
port = int(sys.argv[3])
assert d["enr"] == sys.argv[2], d
# the more global address of the record, as other nodes take it
assert d["ip"] == "2a01:4f8::34", d
assert d["enode"].endswith("@[2a01:4f8::34]:%d?discport=9998" % port), d
assert d["ports"] == {"discovery": 9998, "listener": port}, d
assert d["listenAddr"] == "[::]:%d" % port, d
PY

term_wait "$pid" 10
[ "$rc" -eq 0 ] && ok || bad "node exited $rc: $(tail -5 "$T/a.err")"

# --nat extip:IPv4 on :: fixes the IPv4 endpoint only: the IPv6 one is
# still learnt from the pongs (as geth's static IP fixes the endpoint of
# its family), so the record names both: before, the node never advertised
# its IPv6 address
node_start b --datadir "$T/b" --addr :: --nat extip:198.51.100.7 --bootnodes "$boots" --verbosity 3
[ -n "$ENODE" ] && ok || { bad "node b did not start: $(cat "$T/b.err")"; exit 1; }
case "$ENODE" in *@198.51.100.7:*) ok ;; *) bad "node b names itself $ENODE" ;; esac
PORT=${ENODE##*:} UPORT=${ENODE##*discport=}
PORT=${PORT%%\?*}
[ "$UPORT" = "$ENODE" ] && UPORT=$PORT
wait_until 300 has_line "$T/b.err" 'Discovery endpoint changed.*ip=2a01:4f8::34 udp=9998'
grep -q 'Discovery endpoint changed.*ip=2a01:4f8::34' "$T/b.err" && ok ||
    bad "node b: no IPv6 endpoint within 30 s: $(cat "$T/b.err")"
"$D" attach "$T/b" admin_nodeInfo >"$T/binfo" 2>&1
ENR_B=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["enr"])' "$T/binfo")
"$D" enrdump "$ENR_B" >"$T/bdump" 2>&1
for kv in "ip: *198.51.100.7" "ip6: *2a01:4f8::34" "udp: *$UPORT" "udp6: *9998" "tcp: *$PORT" "tcp6: *$PORT"; do
    grep -q "^  $kv\$" "$T/bdump" && ok || bad "node b's record lacks '$kv': $(cat "$T/bdump")"
done
term_wait "$pid" 10
[ "$rc" -eq 0 ] && ok || bad "node b exited $rc: $(tail -5 "$T/b.err")"
echo "devp2pd-dualstack: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
