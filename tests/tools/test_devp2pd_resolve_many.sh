#!/bin/sh
# tests/tools/test_devp2pd_resolve_many.sh DEVP2PD DEVP2P: many static nodes
# given by key alone, on a node whose discovery table is empty (no
# bootnodes): every lookup finds nothing, and takes its retry (2 s).  The
# dialer gives the resolver one request per dial slot and waits 60 s for
# each answer, so the lookups must run side by side: 40 nodes added with
# admin_addPeer are all answered (resolvesFailed) within 45 s (4 at a time
# take about 20 s; one at a time takes 80 s, and leaves the dialer's later
# requests unanswered past its 60 s).  Then on a second node C: 40 such nodes added, and
# removed with admin_removePeer while most of their lookups still wait;
# those are not run any more: every request is answered within 8 s of
# the last removal (the 4 lookups running end within 2 s; the 32 waiting
# would take 16 s more, 2 s each, 4 at a time).
set -u
N=$1 D=$2
. "$(dirname "$0")/lib_check.sh"
NKEYS=40
# metric NAME [NODE]: NODE's (default b) admin_metrics value NAME (empty
# if unreadable)
metric() {
    "$D" attach "$T/${2:-b}" admin_metrics >"$T/m" 2>/dev/null && python3 - "$T/m" "$1" <<'PY'
import json, sys
def walk(d):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from walk(v)
        else:
            yield k, v
m = dict(walk(json.load(open(sys.argv[1]))))
print(m.get(sys.argv[2], ""))
PY
}

# keys: NKEYS fresh public keys into $T/keys
: >"$T/keys"
i=0
while [ $i -lt $NKEYS ]; do
    k=$("$D" key generate) && p=$("$D" key to-enode "$k") || { bad "key $i"; break; }
    p=${p#enode://}
    echo "${p%%@*}" >>"$T/keys"
    i=$((i + 1))
done
[ $i -eq $NKEYS ] && ok
# rpc NODE METHOD: METHOD (admin_addPeer, admin_removePeer) for every key
rpc() {
    n=0
    while read -r p; do
        "$D" attach "$T/$1" "$2" "enode://$p" >"$T/rpc" 2>&1 && grep -q true "$T/rpc" ||
            { bad "$2: $(cat "$T/rpc")"; return; }
        n=$((n + 1))
    done <"$T/keys"
    [ $n -eq $NKEYS ] && ok
}

node_start b --datadir "$T/b"
[ -n "$ENODE" ] && ok || { bad "B did not start: $(cat "$T/b.err")"; exit 1; }
rpc b admin_addPeer
# answered: every static node once (the next resolution waits 60 s); the
# clock bounds the wait, not a count of polls (each one takes a while)
answered() { f=$(metric resolvesFailed) && [ -n "$f" ] && [ "$f" -ge $NKEYS ]; }
end=$(($(date +%s) + 45))
while ! answered && [ "$(date +%s)" -lt $end ]; do sleep 0.5; done
answered && ok || bad "$(metric resolvesFailed) of $NKEYS static nodes answered in 45 s"
[ "$(metric resolvesTimedOut)" = 0 ] && ok || bad "resolutions not answered: $(metric resolvesTimedOut)"
# the resolver's own counters: every request looked up, none found
r=$(metric resolverRequests) m=$(metric resolverMissed)
[ -n "$r" ] && [ "$r" -ge $NKEYS ] && [ -n "$m" ] && [ "$m" -ge $NKEYS ] &&
    [ "$(metric resolverFound)" = 0 ] && ok || bad "resolver counters: requests '$r' missed '$m'"

node_start c --datadir "$T/c"
[ -n "$ENODE" ] && ok || { bad "C did not start: $(cat "$T/c.err")"; exit 1; }
rpc c admin_addPeer
# the dialer has handed out its requests (one per dial slot)
started() { s=$(metric resolves c) && [ -n "$s" ] && [ "$s" -ge 24 ]; }
wait_until 100 started && ok || bad "C started $(metric resolves c) resolutions"
rpc c admin_removePeer
# all answered: as many failed as started (and none started since)
settled() {
    s=$(metric resolves c) f=$(metric resolvesFailed c) && [ -n "$s" ] && [ "$s" = "$f" ]
}
end=$(($(date +%s) + 8))
while ! settled && [ "$(date +%s)" -lt $end ]; do sleep 0.2; done
settled && ok || bad "8 s after the removal, $(metric resolvesFailed c) of $(metric resolves c) answered"
# the requests answered without their lookup are counted
dr=$(metric resolverDropped c)
[ -n "$dr" ] && [ "$dr" -gt 0 ] && ok || bad "resolverDropped '$dr' after the removals"

for p in $pids; do term_wait "$p" 20 "node"; [ "$rc" -eq 0 ] && ok || bad "a node exited $rc on SIGTERM"; done
pids=
echo "test_devp2pd_resolve_many: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
