#!/bin/sh
# tests/tools/test_stress_target.sh DEVPD DEVP2P: `devp2p stress` samples
# the process it loads.  Two devp2pd listen on one port (TCP and UDP) on
# different loopback addresses, 127.0.0.2 and 127.0.0.3: a churn run
# (the TCP listener) and a discv4 run (the UDP socket) against each one,
# without --pid, report that node's pid, not the other's (the lookup
# matches the address as well as the port).  About 10 s.  Port: the first
# in 44800-44899 free on both addresses.
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
    "$N" --datadir "$T/$1" --port "$P" --addr "$2" --nodial --verbosity 2 \
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
echo "stress-target: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
