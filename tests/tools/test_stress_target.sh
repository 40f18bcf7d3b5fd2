#!/bin/sh
# tests/tools/test_stress_target.sh DEVPD DEVP2P: `devp2p stress` samples
# the process it loads.  Two devp2pd listen on one port (TCP and UDP) on
# different loopback addresses, 127.0.0.2 and 127.0.0.3: a churn run
# (the TCP listener) and a discv4 run (the UDP socket) against each one,
# without --pid, report that node's pid, not the other's (the lookup
# matches the address as well as the port).  Then the first node's
# address with another node's key in --target (a wrong key): the churn and
# discv4 runs fail, status 1 and no success (discv4 checked nothing but the
# reply's hash: every pong and Neighbors counted, status 0).  And churn
# with a capability the node does not run (--caps foo/1): the node answers
# each Hello with Disconnect(useless peer), and the run fails, each session
# "refused after the Hello" (they were all successes, status 0).  About 14 s.
# Port: the first in 44800-44899 free on both addresses.
set -u
N=$1 D=$2
. "$(dirname "$0")/lib_check.sh"
P=$(python3 - <<'PY'
import socket
for p in range(44800, 44900):
    socks = []
    try:
        for a in ("127.0.0.2", "127.0.0.3"):
            for k in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                s = socket.socket(socket.AF_INET, k)
                socks.append(s)
                s.bind((a, p))
        print(p)
        break
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
PY
)
[ -n "$P" ] && ok || { bad "no free port in 44800-44899"; exit 1; }
start_on() { # start_on NAME ADDR: sets $ENODE and $pid
    rm -f "$T/$1.out"
    "$N" --datadir "$T/$1" --port "$P" --addr "$2" --nodial --caps snap/1 --verbosity 2 \
        >"$T/$1.out" 2>"$T/$1.err" &
    pid=$!
    pids="$pids $pid"
    wait_until 300 has_line "$T/$1.out" '^enr: '
    ENODE=$(sed -n 's/^enode: //p' "$T/$1.out")
    [ -n "$ENODE" ] && ok || { bad "$1 did not start on $2:$P: $(cat "$T/$1.err")"; exit 1; }
}
start_on a 127.0.0.2
EA=$ENODE PA=$pid
start_on b 127.0.0.3
EB=$ENODE PB=$pid
sampled() { # sampled MODE ENODE: the target pid the stress run reports
    timeout -k 5 30 "$D" stress --target "$2" --mode "$1" --peers 4 --duration 1 \
        --out "$T/run.json" >"$T/run.txt" 2>&1
    python3 -c 'import json, sys; p = json.load(open(sys.argv[1]))["target_proc"]; print(p["pid"] if p else 0)' \
        "$T/run.json" 2>/dev/null || echo none
}
for mode in churn discv4; do
    got=$(sampled $mode "$EA")
    [ "$got" = "$PA" ] && ok || bad "$mode against 127.0.0.2: sampled pid $got, want $PA (other $PB)"
    got=$(sampled $mode "$EB")
    [ "$got" = "$PB" ] && ok || bad "$mode against 127.0.0.3: sampled pid $got, want $PB (other $PA)"
done
WRONG=$("$D" key to-enode --ip 127.0.0.2 --tcp "$P" --udp "$P" \
    2222222222222222222222222222222222222222222222222222222222222222)
for mode in churn discv4; do
    timeout -k 5 30 "$D" stress --target "$WRONG" --mode $mode --peers 4 --duration 1 \
        --out "$T/wrong.json" >"$T/wrong.txt" 2>&1
    rc=$?
    [ $rc -eq 1 ] && python3 - "$T/wrong.json" $mode <<'PY' && ok || bad "$mode with a wrong key: exit $rc: $(cat "$T/wrong.txt")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["successes"] == 0 and d["failures"] > 0, d
if sys.argv[2] == "discv4":
    why = d["failures_by_reason"]
    assert why.get("ping: pong signed by another key", 0) > 0, why
    assert d["pongs_received"] == 0 and d["findnodes_answered"] == 0, d
PY
done
timeout -k 5 30 "$D" stress --target "$EA" --mode churn --caps foo/1 --peers 4 --duration 1 \
    --out "$T/useless.json" >"$T/useless.txt" 2>&1
rc=$?
[ $rc -eq 1 ] && python3 - "$T/useless.json" <<'PY' && ok || bad "churn refused after the Hello: exit $rc: $(cat "$T/useless.txt")"
import json, sys
d = json.load(open(sys.argv[1]))
n = d["refused_after_hello"]
assert n > 0 and d["attempts"] == d["successes"] + d["handshake_failures"], d
assert d["failures_by_reason"].get("refused after the Hello: useless peer") == n, d
PY
echo "stress-target: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
