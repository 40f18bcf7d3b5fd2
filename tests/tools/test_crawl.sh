#!/bin/sh
# tests/tools/test_crawl.sh DEVP2P NODE PEER_MJS N: `devp2p discv4 crawl`
# finds every node of an N-node loopback network of @ethereumjs/devp2p DPT
# nodes (peer.mjs): one bootnode, N-1 nodes bootstrapped from it; the crawl
# starts from the bootnode only and must report all N nodes alive (JSON).
# Every peer exits by itself after its --duration, which outlasts the
# script's own bounds (sum 360 s, meson timeout 420 s); we stop them first.
set -u
D=$1 NODE=$2 PEER=$3 N=$4
. "$(dirname "$0")/lib_check.sh"
need_jspeer
# --mode both: each node has its own TCP port (ethereumjs' table keys nodes
# by address:tcpPort); peers re-ask their table every 5 s
start() { # start LOG [ARGS...]
    log=$1; shift
    "$NODE" "$PEER" --mode both --caps snap/1 --port 0 --duration 600 \
        --refresh-interval 5000 "$@" >"$log" 2>&1 &
    pids="$pids $!"
}
wait_listening() { # wait_listening LOG DEADLINE (epoch seconds)
    while ! grep -q '"ev":"listening"' "$1" && [ "$(date +%s)" -lt "$2" ]; do sleep 0.1; done
    sed -n 's/.*"ev":"listening","enode":"\([^"]*\)".*/\1/p' "$1" | head -1
}
t0=$(date +%s)
start "$T/boot.log" --table-interval 1
BOOT=$(wait_listening "$T/boot.log" $(($(date +%s) + 60)))
[ -n "$BOOT" ] && ok || { bad "bootnode did not start: $(cat "$T/boot.log")"; exit 1; }
k=1
while [ $k -lt "$N" ]; do
    start "$T/p$k.log" --table-interval 0 --bootnode "$BOOT"
    k=$((k + 1))
done
k=1
# one deadline for all peers: they start together
peers_due=$(($(date +%s) + 90))
while [ $k -lt "$N" ]; do
    [ -n "$(wait_listening "$T/p$k.log" "$peers_due")" ] || bad "peer $k did not start: $(tail -2 "$T/p$k.log")"
    k=$((k + 1))
done
# ids of the whole network
sed -n 's/.*"ev":"listening","enode":"enode:\/\/\([0-9a-f]*\)@.*/\1/p' "$T"/*.log | sort -u >"$T/ids"
[ "$(wc -l <"$T/ids")" -eq "$N" ] && ok || bad "$(wc -l <"$T/ids") of $N nodes listening"
# wait (bounded) until the bootnode has bonded with every other node: under
# load the ethereumjs nodes take a while to bootstrap
table_size() {
    grep '"ev":"table"' "$T/boot.log" | tail -1 | python3 -c '
import json, sys
line = sys.stdin.read().strip()
print(len(json.loads(line)["peers"]) if line else 0)'
}
i=0
while [ "$(table_size)" -lt $((N - 1)) ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
echo "bootnode table: $(table_size) of $((N - 1)) nodes after ${i}s ($(($(date +%s) - t0)) s since the bootnode started)"

start_s=$(date +%s)
# --resp-timeout 3: a ping is retried for 3+6+9+12 s before a node counts as
# dead (the default 1 s gives up after 10 s, which N busy node.js processes
# on a loaded 2-core machine have been seen to exceed)
timeout 150 "$D" discv4 crawl --bootnodes "$BOOT" --timeout 120 --json ${CRAWL_ARGS:---resp-timeout 3} >"$T/crawl.json" 2>"$T/err" &&
    ok || bad "crawl failed: $(cat "$T/err"); bootnode log tail: $(tail -c 300 "$T/boot.log")"
echo "crawl of $N nodes: $(cat "$T/err") (wall $(($(date +%s) - start_s)) s)"
python3 - "$T/crawl.json" "$T/ids" <<'PY' && ok || bad "crawl did not find every node"
import json, sys
d = json.load(open(sys.argv[1]))
want = set(open(sys.argv[2]).read().split())
got = {n["enode"][len("enode://"):].split("@")[0] for n in d["nodes"] if n["alive"]}
missing = want - got
if missing:
    print("missing %d of %d: %s" % (len(missing), len(want), sorted(missing)[:3]), file=sys.stderr)
    print("not alive: %s" % [n["enode"] for n in d["nodes"] if not n["alive"]], file=sys.stderr)
    sys.exit(1)
print("found all %d nodes alive (%d discovered)" % (len(want), d["discovered"]))
PY

echo "test_crawl: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
