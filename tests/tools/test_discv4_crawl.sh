#!/bin/sh
# tests/tools/test_discv4_crawl.sh DEVP2P DISC_NET: `devp2p discv4 crawl`
# of a 200-node loopback network (disc_net: each node knows 24 others) from
# one of its nodes: every node is found and answers.  The node set grows
# well past its first allocation while Neighbors answers are handled (a
# sanitizer build checks that growth).
set -u
D=$1 NET=$2
. "$(dirname "$0")/lib_check.sh"
"$NET" 90 200 >"$T/net" &
netpid=$!
pids="$pids $netpid"
wait_until 300 has_line "$T/net" ready
B=$(sed -n 's/^enode //p' "$T/net")
[ -n "$B" ] && ok || { bad "disc_net did not start"; exit 1; }
s=$(date +%s)
timeout 75 "$D" discv4 crawl --bootnodes "$B" --timeout 60 --json >"$T/crawl.json" 2>"$T/err" &&
    ok || bad "crawl failed: $(tail -5 "$T/err")"
echo "crawl of 200 nodes: $(tail -1 "$T/err") (wall $(($(date +%s) - s)) s)"
python3 - "$T/crawl.json" <<'PY' && ok || bad "crawl did not find every node alive"
import json, sys
d = json.load(open(sys.argv[1]))
alive = sum(1 for n in d["nodes"] if n["alive"])
print("discovered %d, alive %d" % (d["discovered"], alive))
sys.exit(0 if d["discovered"] == 200 and alive == 200 else 1)
PY
term_wait "$netpid" 10 disc_net
echo "test_discv4_crawl: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
