#!/bin/sh
# tests/tools/test_devp2pd_netrestrict.sh DEVP2PD DEVP2P: --netrestrict
# values that name no network.  "" is no restriction (as geth): the node
# takes peers.  A value with no CIDR in it (",", " ") is a usage error
# (exit 2, one line, nothing created), not a list that refuses every peer
# and every discovery node.
set -u
N=$1 D=$2
. "$(dirname "$0")/lib_devp2pd.sh"

for v in ',' ' ' ' , '; do
    timeout 20 "$N" --datadir "$T/fresh" --port 0 --netrestrict "$v" >"$T/rout" 2>"$T/rerr"
    rc=$?
    [ $rc -eq 2 ] && [ "$(wc -l <"$T/rerr")" -eq 1 ] && [ ! -e "$T/fresh" ] && ok ||
        bad "--netrestrict '$v' exited $rc: $(cat "$T/rerr") (created: $(ls "$T/fresh" 2>&1))"
    rm -rf "$T/fresh"
done

start_node --nodiscover --netrestrict ""
timeout 20 "$D" rlpx ping --timeout 10 "$ENODE" >"$T/ping.out" 2>"$T/ping.err" && ok ||
    bad "--netrestrict \"\": rlpx ping refused: $(cat "$T/ping.err")"
stop_node 10

echo "$checks checks, $fails failures"
[ $fails -eq 0 ]
