#!/bin/sh
# tests/tools/test_stress_sanitized.sh DEVP2PD DEVP2P SANITIZE: the stress
# harness against this build's node daemon (so under ASan+UBSan in
# build-asan and TSan in build-tsan; SANITIZE is the build's b_sanitize
# value and scales the load down when it is not "none").  Starts devp2pd on
# loopback with a temporary datadir, records its thread and descriptor
# counts from /proc, then runs `devp2p stress` in modes hold (many live
# peers), churn, adversarial (garbage, slow handshakes, bad MACs beside
# legitimate peers), flood (live peers sending messages) and discv4 (ping
# and findnode floods on the UDP port), each for a few seconds, then hold,
# churn, adversarial and discv4 at once, while admin RPC and the metrics
# endpoint are polled.  Checks: every stress run exits 0 with sane figures
# (hold: every peer live, none dropped; churn, flood and discv4: no
# failure; adversarial: >= 95% legitimate handshakes and every misbehaving
# connection closed by the node); after each run the node's threads and
# descriptors return to the baseline; no sanitizer report in the node's or
# the tool's stderr; SIGTERM while peers are held stops the node with
# status 0, each peer getting Disconnect(client quitting), and the tool,
# sent SIGINT then, exits by itself and prints its summary.
set -u
N=$1 D=$2 SAN=${3:-none}
. "$(dirname "$0")/lib_devp2pd.sh"

if [ "$SAN" = none ]; then
    HOLD=200 CHURN=64 ADV=32 DUR=5 SETTLE=30
else
    HOLD=100 CHURN=16 ADV=16 DUR=4 SETTLE=90
fi
REPORTS='ERROR: AddressSanitizer|WARNING: ThreadSanitizer|runtime error:|LeakSanitizer|ERROR: ThreadSanitizer'

start_node --maxpeers $((HOLD * 2)) --maxpendpeers 50

sleep 1
BASE_T=$(threads) BASE_F=$(fds)
[ -n "$BASE_T" ] && [ "$BASE_T" -ge 3 ] && [ "$BASE_F" -ge 3 ] && ok || bad "baseline threads=$BASE_T fds=$BASE_F"

# idle connection threads the server keeps parked for reuse (at most 16, no
# descriptor each, from its metrics); each exits after 1 s unused, so the
# thread count returns to the baseline.  The gauge is read after the count:
# a parked thread leaves the gauge before it exits.
parked() {
    python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
        "$MURL" 2>/dev/null | awk '/^devp2p_conn_threads_parked / { print $2 }'
}
at_baseline() { t=$(threads) f=$(fds); [ -n "$t" ] && [ "$t" -le "$BASE_T" ] && [ "$f" -le "$BASE_F" ]; }
settle() { # settle WHAT: threads and fds back to the baseline within SETTLE s
    wait_until $((SETTLE * 10)) at_baseline
    t=$(threads) f=$(fds) p=$(parked)
    [ -n "$t" ] && [ "$p" = 0 ] && [ "$t" -le "$BASE_T" ] && [ "$f" -le "$BASE_F" ] && ok ||
        bad "$1: threads $t ($p parked) fds $f after the load (baseline $BASE_T / $BASE_F)"
}

alive() { kill -0 "$npid" 2>/dev/null && ok || bad "node died during $1: $(tail -30 "$T/node.err")"; }

poll_node() { # poll_node PID: reads the node's state from other threads while PID runs (at most 150 s)
    pn_end=$(($(date +%s) + 150))
    while kill -0 "$1" 2>/dev/null && [ "$(date +%s)" -lt $pn_end ]; do
        timeout 10 "$D" attach "$T/node" admin_peers >/dev/null 2>&1
        timeout 10 "$D" attach "$T/node" admin_metrics >/dev/null 2>&1
        python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5).read()' \
            "$MURL" >/dev/null 2>&1
        sleep 0.2
    done
}

stress() { # stress MODE ARGS...: runs the tool (the node polled meanwhile), JSON in $T/MODE.json
    m=$1; shift
    timeout -k 5 120 "$D" stress --target "$ENODE" --mode "$m" --sources 8 --out "$T/$m.json" "$@" \
        >"$T/$m.txt" 2>"$T/$m.err" &
    spid=$!
    tpids="$tpids $spid"
    poll_node $spid
    wait $spid
    rc=$?
    tpids=${tpids% $spid}
    [ $rc -eq 0 ] && ok || bad "stress $m exited $rc: $(cat "$T/$m.txt" "$T/$m.err" | tail -20)"
    alive "$m"
}

# hold: HOLD live peers, pings every second, none dropped
stress hold --peers $HOLD --duration $((DUR + 2)) --ping-interval 1 --concurrency 32
python3 - "$T/hold.json" "$HOLD" <<'PY' && ok || bad "hold figures: $(cat "$T/hold.txt")"
import json, sys
d = json.load(open(sys.argv[1])); n = int(sys.argv[2])
assert d["successes"] >= n and d["failures"] == 0, d
assert d["peak_live"] == n and d["drops"] == 0, d
assert d["pongs_received"] > 0 and d["pongs_received"] == d["pings_sent"], d
PY
settle hold

# churn: CHURN handshakes in flight, each ends with Disconnect(requested)
stress churn --peers $CHURN --duration $DUR
python3 - "$T/churn.json" <<'PY' && ok || bad "churn figures: $(cat "$T/churn.txt")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["successes"] >= 20 and d["failures"] == 0 and d["attempts"] >= d["successes"], d
assert d["handshake_latency"]["n"] == d["successes"], d
PY
settle churn

# adversarial: garbage, slow handshakes and bad MACs beside legitimate churn
stress adversarial --peers $ADV --duration $DUR
python3 - "$T/adversarial.json" <<'PY' && ok || bad "adversarial figures: $(cat "$T/adversarial.txt")"
import json, sys
d = json.load(open(sys.argv[1]))
ok, fail = d["successes"], d["failures"]
assert ok >= 20 and ok >= 0.95 * (ok + fail), d
a = d["adversarial"]
assert a["started"] >= 9 and a["still_open"] == 0 and a["closed_by_target"] == a["started"], a
PY
grep -q 'legitimate success ratio: ' "$T/adversarial.txt" && ok || bad "no ratio line: $(cat "$T/adversarial.txt")"
settle adversarial

# flood: live peers sending subprotocol messages the node has no handler for
stress flood --peers $((CHURN / 2)) --duration $DUR --window 0 --msg-size 200
python3 - "$T/flood.json" <<'PY' && ok || bad "flood figures: $(cat "$T/flood.txt")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["failures"] == 0 and d["drops"] == 0 and d["msgs_sent"] >= 100, d
assert d["bytes_sent"] == 200 * d["msgs_sent"], d  # --msg-size is the payload's size
PY
settle flood

# discv4: ping and findnode floods from many keys against the UDP port
stress discv4 --peers $((CHURN / 2)) --duration $DUR
python3 - "$T/discv4.json" <<'PY' && ok || bad "discv4 figures: $(cat "$T/discv4.txt")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["failures"] == 0 and d["successes"] >= 100 and d["msgs_received"] >= d["successes"], d
PY
settle discv4

# mixed: hold, churn, adversarial and discv4 at the same time (the
# heaviest load of the script: a held peer's pong may take longer than 1 s
# in a sanitizer build on a busy 2-core machine, so pings every 2 s here)
timeout -k 5 120 "$D" stress --target "$ENODE" --mode hold --peers $((HOLD / 2)) --duration $DUR --ping-interval 2 \
    --concurrency 16 >"$T/mix-hold.txt" 2>"$T/mix-hold.err" &
m1=$!
tpids="$tpids $m1"
timeout -k 5 120 "$D" stress --target "$ENODE" --mode churn --peers $((CHURN / 2)) --duration $DUR \
    >"$T/mix-churn.txt" 2>"$T/mix-churn.err" &
m2=$!
tpids="$tpids $m2"
timeout -k 5 120 "$D" stress --target "$ENODE" --mode adversarial --peers $((ADV / 2)) --duration $DUR \
    >"$T/mix-adv.txt" 2>"$T/mix-adv.err" &
m3=$!
tpids="$tpids $m3"
timeout -k 5 120 "$D" stress --target "$ENODE" --mode discv4 --peers $((CHURN / 4)) --duration $DUR \
    >"$T/mix-d4.txt" 2>"$T/mix-d4.err" &
m4=$!
tpids="$tpids $m4"
poll_node $m1
for p in $m1 $m2 $m3 $m4; do
    wait $p && ok || bad "mixed stress run $p failed: $(tail -n 8 "$T"/mix-*.txt "$T"/mix-*.err)"
done
tpids=${tpids% $m1 $m2 $m3 $m4}
alive mixed
settle mixed

# clean stop under load: SIGTERM while live peers are held and handshakes
# are in flight; every peer gets Disconnect(client quitting) (the tool has
# 30 s to drain and print its summary after the SIGINT below).
# --foreground: timeout passes the SIGINT to the tool alone.  Without it,
# timeout then sends SIGCONT to the tool and to its group; one that comes
# late (timeout descheduled on a busy machine) while an ASan build of the
# tool is in LeakSanitizer's check at exit discards the SIGSTOP the
# check's ptrace attach queued, and the check waits for that stop forever:
# the tool hung there, its summary still in its stdio buffer, until the
# SIGKILL 30 s later.
timeout --foreground -k 30 120 "$D" stress --target "$ENODE" --mode hold --peers $((HOLD / 2)) --duration 60 --sources 8 \
    --ping-interval 1 >"$T/last.txt" 2>"$T/last.err" &
spid=$!
tpids="$tpids $spid"
loaded() { t=$(threads); [ -n "$t" ] && [ "$t" -ge $((BASE_T + HOLD / 4)) ]; }
wait_until 300 loaded && ok || bad "no load before the stop: $(threads) threads"
stop_node 60
kill -INT $spid 2>/dev/null # the tool stops, drains and prints its summary
wait $spid
rc=$?
tpids=${tpids% $spid}
# 124 and up: timeout ended it (137: the SIGKILL)
[ $rc -lt 124 ] && ok || bad "stress tool did not exit after the SIGINT (status $rc)"
grep -q 'client quitting' "$T/last.txt" && ok ||
    bad "no Disconnect(client quitting) (tool status $rc): output: $(tail -n 20 "$T/last.txt")
stderr: $(tail -n 20 "$T/last.err")"

for f in "$T/node.err" "$T/hold.err" "$T/churn.err" "$T/adversarial.err" "$T/flood.err" \
    "$T/discv4.err" "$T/last.err" "$T"/mix-*.err; do
    if grep -Eq "$REPORTS" "$f"; then
        bad "sanitizer report in $(basename "$f"):"
        grep -E -A25 "$REPORTS" "$f" | head -80 >&2
    else
        ok
    fi
done

for m in hold churn adversarial flood discv4 last; do sed -n '1,12p' "$T/$m.txt"; done
echo "stress-sanitized ($SAN): $checks checks, $fails failed"
[ "$fails" -eq 0 ]
