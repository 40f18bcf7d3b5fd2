#!/bin/sh
# tests/tools/test_devp2pd_caps.sh DEVP2PD NODE PEER_MJS: devp2pd --caps
# gives each protocol its own number of message codes, so the codes of a
# real client (@ethereumjs/devp2p, peer.mjs, with the same lengths as
# geth: eth/68 17, eth/69 18, snap/1 8) land in the protocol they belong
# to.  With 16 codes for everything, eth/68's last code 0x10 (Receipts)
# and eth/69's 0x10-0x11 (BlockRangeUpdate) fell past eth into no
# protocol and the node dropped the peer for a breach of protocol.
# The peers exit by themselves after --duration; we stop them first.
set -u
N=$1 NODE=$2 PEER=$3
. "$(dirname "$0")/lib_check.sh"
need_jspeer

# one node and one dialling peer per case: CAPS (ours), JSCAPS (theirs),
# then the messages the peer sends as CAP:CODE; none may cost the peer
run_case() { # NAME CAPS JSCAPS MSG...
    name=$1 caps=$2 jscaps=$3
    shift 3
    node_start "$name" --datadir "$T/$name" --addr 127.0.0.1 --nodial --nodiscover \
        --caps "$caps"
    npid=$pid
    [ -n "$ENODE" ] && ok || { bad "$name: node did not start: $(cat "$T/$name.err")"; return; }
    mkfifo "$T/$name.in"
    "$NODE" "$PEER" --mode rlpx --caps "$jscaps" --dial "$ENODE" --stdin --duration 30 \
        --table-interval 0 <"$T/$name.in" >"$T/$name.js" 2>&1 &
    jpid=$!
    pids="$pids $jpid"
    exec 3>"$T/$name.in"
    if wait_until 200 has_line "$T/$name.js" '"ev":"peer:added"'; then ok; else
        bad "$name: no peer: $(cat "$T/$name.js")"
    fi
    for m in "$@"; do
        echo "send all ${m%%:*} ${m#*:} c0" >&3
    done
    # the node reads them at once; give a drop the time to show
    sleep 2
    if has_line "$T/$name.js" '"ev":"peer:removed"'; then
        bad "$name: the node dropped the peer after $*: $(grep '"peer:removed"' "$T/$name.js")"
    else
        ok
    fi
    has_line "$T/$name.js" '"ev":"error"' && bad "$name: peer error: $(grep '"error"' "$T/$name.js")" ||
        ok
    echo quit >&3
    exec 3>&-
    term_wait "$jpid" 10
    term_wait "$npid" 10
    [ "$rc" -eq 0 ] && ok || bad "$name: node exited $rc: $(tail -5 "$T/$name.err")"
}

run_case eth68 eth/68 eth/68:17 eth/68:0 eth/68:16
run_case eth69 eth/69 eth/69:18 eth/69:16 eth/69:17
run_case eth68snap eth/68,snap/1 eth/68:17,snap/1:8 eth/68:16 snap/1:0 snap/1:7

echo "test_devp2pd_caps: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
