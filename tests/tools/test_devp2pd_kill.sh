#!/bin/sh
# tests/tools/test_devp2pd_kill.sh DEVP2PD DEVP2P [CYCLES]: kill -9 of the
# node daemon while discovery load makes it write its node DB (every ping
# received is a committed write: ~1,500/s here), CYCLES times (default 12).
# After every kill the node must start again on the same datadir: the same
# node key (enode), no wipe and no node DB error in its log, and an ENR
# sequence number loaded from the DB (one more than the last run's, not a
# fresh unix-ms value), which shows the committed local record survived.
# (tests/actors/test_nodedb_kill checks every committed record over 100
# kill cycles at the library level.)
set -u
N=$1 D=$2 CYCLES=${3:-12}
T=$(mktemp -d)
pid= spid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; [ -n "$spid" ] && kill "$spid" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
. "$(dirname "$0")/lib_stop.sh"

start() { # start CYCLE: runs the node, sets $ENODE, $SEQ, $pid, $log (its stderr)
    log=$T/err$1
    "$N" --datadir "$T/a" --port 0 --verbosity 3 --nodial >"$T/out$1" 2>"$log" &
    pid=$!
    wait_until 200 has_line "$T/out$1" '^enr: '
    ENODE=$(sed -n 's/^enode: //p' "$T/out$1")
    ENR=$(sed -n 's/^enr: //p' "$T/out$1")
    SEQ=$("$D" enrdump "$ENR" 2>/dev/null | sed -n 's/^seq: *//p')
}

start 0
[ -n "$ENODE" ] && [ -n "$SEQ" ] && ok || { bad "node did not start: $(cat "$T/err0")"; exit 1; }
PUB0=${ENODE#enode://}; PUB0=${PUB0%%@*}
SEQ0=$SEQ PREV=$SEQ
c=1
while [ $c -le "$CYCLES" ]; do
    # --foreground: our SIGTERM reaches the tool alone, with no SIGCONT
    # after it (that SIGCONT can cancel the stop LeakSanitizer's exit check
    # waits for in an ASan build, which then hangs until the -k kill)
    timeout --foreground -k 5 10 "$D" stress --target "$ENODE" --mode discv4 --peers 32 --duration 3 >/dev/null 2>&1 &
    spid=$!
    # kill 300..1200 ms into the load
    sleep "0.$(( (c * 37) % 10 ))" 2>/dev/null; sleep 0.3
    kill -9 "$pid"; wait "$pid" 2>/dev/null
    kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; spid=
    start "$c"
    if [ -z "$ENODE" ]; then bad "cycle $c: no restart: $(tail -3 "$T/err$c")"; break; fi
    PUB=${ENODE#enode://}; PUB=${PUB%%@*}
    [ "$PUB" = "$PUB0" ] && ok || bad "cycle $c: node key changed"
    if grep -E 'Node database (wiped|error)|Berkeley DB' "$T/err$c" >/dev/null; then
        bad "cycle $c: node DB trouble: $(grep -E 'Node database|Berkeley' "$T/err$c" | head -3)"
    else ok; fi
    # the stored sequence number came back (+1 for the new port), not unix ms
    if [ -n "$SEQ" ] && [ "$SEQ" -gt "$PREV" ] && [ $((SEQ - SEQ0)) -lt 1000 ]; then ok; else
        bad "cycle $c: ENR seq $SEQ after $PREV (first $SEQ0)"
    fi
    PREV=${SEQ:-$PREV}
    c=$((c + 1))
done
# the last start: a clean stop on SIGTERM, status 0
term_wait "$pid" 20 "node"; pid=
[ $rc -eq 0 ] && ok || bad "node exited $rc after SIGTERM: $(tail -3 "$log")"
if grep -lE 'Sanitizer|runtime error' "$T"/err* >/dev/null 2>&1; then
    bad "sanitizer report: $(grep -hE 'Sanitizer|runtime error' "$T"/err* | head -3)"
else ok; fi
echo "devp2pd kill -9 under discovery load: $CYCLES cycles, ENR seq $SEQ0 -> $PREV"
echo "test_devp2pd_kill: $checks checks, $fails failed"
[ $fails -eq 0 ]
