#!/bin/sh
# tests/tools/test_devp2pd_lookups.sh DEVP2PD DEVP2P: discovery looks for
# dial candidates only while the dialer has a free slot, as geth's dialer
# reads its node iterator only then.  A (--nodial) and B (--maxpeers 3: one
# dialled peer) on 127.0.0.x; B takes A as bootnode and dials it, which uses
# B's one dial slot: from then on B starts no lookup (its lookups_started
# stays put for 6 s; before, an idle node with its peers ran one lookup a
# second for ever).  A stops: B's slot is free again and its lookups
# resume within 6 s.  Bounds: start 30 s each, connect 30 s, the first
# refresh 30 s, the two windows 1 + 6 + 6 s.
set -u
N=$1 D=$2
. "$(dirname "$0")/lib_check.sh"

lookups() { # lookups DIR: discovery.core.lookups_started of that node, or -1
    "$D" attach "$1" admin_metrics 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["discovery"]["core"]["lookups_started"])' 2>/dev/null ||
        echo -1
}

node_start a --datadir "$T/a" --addr 127.0.0.31 --nodial
[ -n "$ENODE" ] && ok || { bad "node a did not start: $(cat "$T/a.err")"; exit 1; }
A_ENODE=$ENODE A_PID=$pid A_PUB=$(pub_of "$ENODE")
node_start b --datadir "$T/b" --addr 127.0.0.32 --maxpeers 3 --bootnodes "$A_ENODE"
[ -n "$ENODE" ] && ok || { bad "node b did not start: $(cat "$T/b.err")"; exit 1; }

wait_until 300 lists_peer "$T/b" "$A_PUB" "$T/bpeers" && ok ||
    { bad "B did not dial A within 30 s: $(cat "$T/bpeers")"; exit 1; }

# the start's refresh (a self lookup and 3 random ones) ends first
init_done() { "$D" attach "$T/b" discv4_table 2>/dev/null | grep -q '"initDone": true'; }
wait_until 300 init_done && ok || bad "B's first refresh did not end within 30 s"
sleep 1
l1=$(lookups "$T/b")
sleep 6
l2=$(lookups "$T/b")
echo "B, its one dial slot used: lookups_started $l1 -> $l2 in 6 s"
[ "$l1" -ge 0 ] && [ "$l2" -eq "$l1" ] && ok ||
    bad "B started $((l2 - l1)) lookups in 6 s with no free dial slot ($l1 -> $l2)"

term_wait "$A_PID" 10 "node a"
l3=$(lookups "$T/b")
lookup_started() { l4=$(lookups "$T/b"); [ "$l4" -gt "$l3" ]; }
wait_until 60 lookup_started
echo "B, its dial slot free again: lookups_started $l3 -> $l4 in $((wu_tenths / 10)).$((wu_tenths % 10)) s"
[ "$l4" -gt "$l3" ] && ok || bad "B started no lookup within 6 s of losing its dialled peer ($l3)"

term_wait "$pid" 10 "node b"
[ $rc -eq 0 ] && ok || bad "node b exited $rc: $(tail -5 "$T/b.err")"
echo "$checks checks, $fails failed"
[ $fails -eq 0 ]
