#!/bin/sh
# tests/tools/test_stress_accounting.sh DEVP2PD DEVP2P SANITIZE: the stress
# harness counts what it could not do.
#   hold, node frozen: devp2pd is stopped (SIGSTOP) once it has admitted 16
#   held peers (answered the Ping each sends after its Hello, as
#   admin_metrics' pongsSent shows), before their first pings: every ping
#   sent after the freeze is a failure ("pong missing at the end"), status 1.
#   Its rates are per second of the load (4 s), not of the load and the
#   10 s drain.
#   hold, node thawed in the drain: the same freeze, lifted (SIGCONT) 1 s
#   after the load stopped: the drain waits for the pongs, so every ping is
#   answered and the run succeeds.
#   hold, node stalled mid-run: stopped 2.5 s once the peers are pinging,
#   then resumed: no failure, every ping answered, latency >= the stall
#   less one ping interval (the pings due meanwhile are skipped as late).
#   discv4 out of memory: under `ulimit -v`, --peers keys that do not fit
#   end with "out of memory" and status 1, not a crash (normal builds only:
#   a sanitizer's shadow memory does not fit under ulimit -v).
# About 35 s: the frozen run waits out the drain's 10 s reply bound.
set -u
N=$1 D=$2 SAN=${3:-none}
. "$(dirname "$0")/lib_devp2pd.sh"

# --- hold against a node frozen once the peers are admitted (pings at
# 1.5-4.5 s after each Hello; the load stops at 4 s)
PEERS=16
pongs() { # the node's pongs sent so far (0 if it cannot say)
    "$D" attach "$T/node" admin_metrics 2>/dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["server"]["pongsSent"])' 2>/dev/null ||
        echo 0
}
hold_frozen() { # hold_frozen NAME THAW: THAW 1: SIGCONT 1 s after the load stopped
    start_node --maxpeers 64
    base=$(threads)
    t0=$(date +%s%N)
    timeout 60 "$D" stress --target "$ENODE" --mode hold --peers $PEERS --duration 4 \
        --ping-interval 6 --sources 4 --out "$T/$1.json" >"$T/$1.txt" 2>"$T/$1.err" &
    spid=$!
    i=0 # a peer thread per session: wait for the sessions, then their Hellos
    while [ $i -lt 100 ] && [ "$(threads)" -lt $((base + PEERS)) ]; do sleep 0.05; i=$((i + 1)); done
    i=0 # every peer admitted: the node has answered each one's Ping after the Hello
    while [ $i -lt 200 ] && [ "$(pongs)" -lt $PEERS ]; do sleep 0.05; i=$((i + 1)); done
    kill -STOP "$npid"
    if [ "$2" = 1 ]; then
        sleep "$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { d = 5 - (b - a) / 1e9; print (d > 0 ? d : 0) }')"
        kill -CONT "$npid"
    fi
    wait $spid
    hrc=$? # (stop_node sets rc)
    kill -CONT "$npid"
    stop_node 30
}

hold_frozen frozen 0
[ $hrc -eq 1 ] && ok || bad "frozen: stress exited $hrc (want 1): $(cat "$T/frozen.txt" "$T/frozen.err")"
python3 - "$T/frozen.json" $PEERS <<'PY' && ok || bad "frozen figures: $(cat "$T/frozen.txt")"
import json, sys
d = json.load(open(sys.argv[1])); n = int(sys.argv[2])
assert d["peak_live"] == n and d["drops"] == 0 and d["handshake_failures"] == 0, d
miss = d["replies_missing"]
assert miss >= 1 and d["failures"] == miss, d
assert d["failures_by_reason"] == {"pong missing at the end": miss}, d
assert d["pongs_received"] + miss == d["pings_sent"], d
assert d["success_ratio"] < 1, d
# rates over the 4 s of load, not over the load and the 10 s drain
assert 3.9 <= d["load_s"] <= 4.5 and d["drain_s"] >= 9.5, d
assert abs(d["elapsed_s"] - d["load_s"] - d["drain_s"]) < 0.01, d
assert abs(d["success_rate_per_s"] - d["successes"] / d["load_s"]) < 0.01, d
PY
grep -q 'pong missing at the end' "$T/frozen.txt" && ok || bad "no reason line: $(cat "$T/frozen.txt")"

hold_frozen thawed 1
[ $hrc -eq 0 ] && ok || bad "thawed: stress exited $hrc (want 0): $(cat "$T/thawed.txt" "$T/thawed.err")"
python3 - "$T/thawed.json" $PEERS <<'PY' && ok || bad "thawed figures: $(cat "$T/thawed.txt")"
import json, sys
d = json.load(open(sys.argv[1])); n = int(sys.argv[2])
assert d["peak_live"] == n and d["drops"] == 0 and d["failures"] == 0, d
assert d["pings_sent"] >= 1 and d["pongs_received"] == d["pings_sent"], d
assert d["replies_missing"] == 0, d
# the pongs of the pings sent while frozen came after the thaw
assert d["reply_latency"]["max_ms"] >= 500, d
PY

# --- hold against a node that stalls and then answers everything: 20
# peers ping every 0.5 s; once every peer is admitted the node is stopped
# for 2.5 s, then resumed long before the load ends.  One ping per peer is
# outstanding at most (the ones due meanwhile are skipped as late), each
# pong times the ping it answers: no failure, every ping answered, and the
# latency shows the stall (at least the stall less one interval).
SPEERS=20
start_node --maxpeers 64
timeout 60 "$D" stress --target "$ENODE" --mode hold --peers $SPEERS --duration 7 \
    --ping-interval 0.5 --sources 4 --out "$T/stall.json" >"$T/stall.txt" 2>"$T/stall.err" &
spid=$!
i=0
while [ $i -lt 200 ] && [ "$(pongs)" -lt $SPEERS ]; do sleep 0.05; i=$((i + 1)); done
sleep 1 # the peers' own pings are under way
kill -STOP "$npid"
sleep 2.5
kill -CONT "$npid"
wait $spid
src=$?
stop_node 30
[ $src -eq 0 ] && ok || bad "stall: stress exited $src (want 0): $(cat "$T/stall.txt" "$T/stall.err")"
python3 - "$T/stall.json" $SPEERS <<'PY' && ok || bad "stall figures: $(cat "$T/stall.txt")"
import json, sys
d = json.load(open(sys.argv[1])); n = int(sys.argv[2])
assert d["peak_live"] == n and d["drops"] == 0 and d["failures"] == 0, d
assert d["pings_sent"] >= 4 * n and d["pongs_received"] == d["pings_sent"], d
assert d["replies_missing"] == 0, d
# the pings due during the stall were skipped, one per interval per peer
assert d["pings_late"] >= 2 * n, d
# pongs timed against the pings they answer: the stall shows
assert d["reply_latency"]["max_ms"] >= 2000, d
print("stall: max latency %.0f ms, %d pings late" % (d["reply_latency"]["max_ms"], d["pings_late"]))
PY

# --- discv4: the key table does not fit (8000 keys, about 76 MiB, under a
# 60 MiB address-space limit); needs 8000 + 80 descriptors
if [ "$SAN" != none ]; then
    echo "discv4 out of memory: skipped under $SAN"
elif [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt 8100 ]; then
    echo "discv4 out of memory: skipped (hard descriptor limit $(ulimit -Hn) < 8100)"
else
    EN=$("$D" key to-enode --ip 127.0.0.1 --tcp 1 --udp 9 \
        1111111111111111111111111111111111111111111111111111111111111111)
    (ulimit -v 60000 && exec timeout 30 "$D" stress --target "$EN" --mode discv4 --peers 8000 \
        --duration 1) >"$T/oom.out" 2>"$T/oom.err"
    rc=$?
    [ $rc -eq 1 ] && ok || bad "discv4 under ulimit -v exited $rc (want 1): $(cat "$T/oom.err")"
    grep -q 'out of memory' "$T/oom.err" && ok || bad "no 'out of memory': $(cat "$T/oom.err")"
fi

echo "stress-accounting ($SAN): $checks checks, $fails failed"
[ "$fails" -eq 0 ]
