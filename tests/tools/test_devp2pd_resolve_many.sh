#!/bin/sh
# tests/tools/test_devp2pd_resolve_many.sh DEVP2PD DEVP2P: many static nodes
# given by key alone, on a node whose discovery table is empty (no
# bootnodes): every lookup finds nothing, and takes its retry (2 s).  The
# dialer gives the resolver one request per dial slot and waits 60 s for
# each answer, so the lookups must run side by side: 40 nodes added with
# admin_addPeer are all answered (resolvesFailed) within 30 s (one at a
# time takes 80 s, and leaves the dialer's later requests unanswered
# past its 60 s).
set -u
N=$1 D=$2
. "$(dirname "$0")/lib_check.sh"
NKEYS=40
# metric NAME: B's admin_metrics value NAME (empty if unreadable)
metric() {
    "$D" attach "$T/b" admin_metrics >"$T/m" 2>/dev/null && python3 - "$T/m" "$1" <<'PY'
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

node_start b --datadir "$T/b"
[ -n "$ENODE" ] && ok || { bad "B did not start: $(cat "$T/b.err")"; exit 1; }
i=0
while [ $i -lt $NKEYS ]; do
    k=$("$D" key generate) && p=$("$D" key to-enode "$k") || { bad "key $i"; break; }
    p=${p#enode://}
    "$D" attach "$T/b" admin_addPeer "enode://${p%%@*}" >"$T/add" 2>&1 && grep -q true "$T/add" ||
        { bad "admin_addPeer $i: $(cat "$T/add")"; break; }
    i=$((i + 1))
done
[ $i -eq $NKEYS ] && ok
# answered: every static node once (the next resolution waits 60 s); the
# clock bounds the wait, not a count of polls (each one takes a while)
answered() { f=$(metric resolvesFailed) && [ -n "$f" ] && [ "$f" -ge $NKEYS ]; }
end=$(($(date +%s) + 30))
while ! answered && [ "$(date +%s)" -lt $end ]; do sleep 0.5; done
answered && ok || bad "$(metric resolvesFailed) of $NKEYS static nodes answered in 30 s"
[ "$(metric resolvesTimedOut)" = 0 ] && ok || bad "resolutions not answered: $(metric resolvesTimedOut)"

for p in $pids; do term_wait "$p" 20 "node"; [ "$rc" -eq 0 ] && ok || bad "a node exited $rc on SIGTERM"; done
pids=
echo "test_devp2pd_resolve_many: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
