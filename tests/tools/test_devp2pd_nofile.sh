#!/bin/sh
# tests/tools/test_devp2pd_nofile.sh DEVP2PD DEVP2P: devp2pd started with
# a descriptor limit (soft and hard, so it cannot raise it; as root with
# CAP_SYS_RESOURCE dropped by setpriv) just around what start-up needs,
# 7 to 20, on a data directory whose node DB holds the local record.
# Each start either runs (SIGTERM stops it with status 0) or fails within
# 10 s with status 1 and one "devp2pd: " line naming the cause (Too many
# open files), never a bare "cannot start p2p-udp".  Running out of
# descriptors is no damage: the node DB is never wiped (no "Node database
# wiped" line, and the ENR sequence number of a last, normal start is
# still the first run's plus at most one per start in between, not a
# fresh Unix-ms value).  Berkeley DB's 2 + 4 + 6 s retries of an open failing with
# EMFILE made such a start take up to a minute, deaf to SIGTERM, and took
# the failed recovery for damage.  Loopback only; every wait is bounded.
set -u
N=$1 D=$2
. "$(dirname "$0")/lib_check.sh"

if ! command -v prlimit >/dev/null 2>&1; then
    echo "test_devp2pd_nofile: no prlimit, skipped"
    exit 77
fi
DROP=
if [ "$(id -u)" = 0 ]; then
    # root could raise the hard limit again (check_limits does)
    if ! command -v setpriv >/dev/null 2>&1 || ! setpriv --bounding-set=-sys_resource true 2>/dev/null; then
        echo "test_devp2pd_nofile: root without setpriv's bounding set, skipped"
        exit 77
    fi
    DROP="setpriv --bounding-set=-sys_resource"
fi

seq_of() { "$D" enrdump "$(sed -n 's/^enr: //p' "$1")" 2>/dev/null | sed -n 's/^seq: *//p'; }
started_or_gone() { has_line "$T/n.out" '^enr: ' || gone "$pid"; }

mkdir -m 700 "$T/dd"
"$N" --datadir "$T/dd" --port 0 --addr 127.0.0.1 --nodial >"$T/n.out" 2>"$T/n.err" &
pid=$!
pids="$pids $pid"
wait_until 300 started_or_gone
SEQ0=$(seq_of "$T/n.out")
[ -n "$SEQ0" ] && ok || bad "devp2pd did not start: $(cat "$T/n.err")"
term_wait $pid 10 devp2pd
[ "$rc" = 0 ] && ok || bad "first run exited $rc"

starts=0
n=7
while [ $n -le 20 ]; do
    rm -f "$T/n.out"
    # ASan builds: no leak report at these exits.  libdb 5.3 panics its
    # environment at whichever file open fails, and the closes after a
    # panic return early, leaving the environment's handles and regions
    # allocated (the starts without the limit keep the leak check)
    # shellcheck disable=SC2086
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        prlimit --nofile=$n:$n $DROP "$N" --datadir "$T/dd" --port 0 --addr 127.0.0.1 --nodial \
        >"$T/n.out" 2>"$T/n.err" &
    pid=$!
    pids="$pids $pid"
    wait_until 100 started_or_gone
    if has_line "$T/n.out" '^enr: '; then
        starts=$((starts + 1))
        term_wait $pid 10 "devp2pd (nofile $n)"
        [ "$rc" = 0 ] && ok || bad "nofile $n: exited $rc after SIGTERM, want 0"
    elif gone $pid; then
        wait $pid
        rc=$?
        last=$(tail -n 1 "$T/n.err")
        [ "$rc" = 1 ] && ok || bad "nofile $n: exited $rc, want 1: $last"
        case "$last" in
        "devp2pd: "*"Too many open files"*) ok ;;
        *) bad "nofile $n: the error names no cause: $last" ;;
        esac
    else
        bad "nofile $n: neither started nor failed within 10 s"
        kill -9 $pid 2>/dev/null
        wait $pid
    fi
    grep -q 'Node database wiped' "$T/n.err" &&
        bad "nofile $n: node DB wiped: $(grep -E 'Berkeley|database' "$T/n.err" | head -5)" || ok
    n=$((n + 1))
done

# a normal start: the local record's sequence number came from the DB
rm -f "$T/n.out"
"$N" --datadir "$T/dd" --port 0 --addr 127.0.0.1 --nodial >"$T/n.out" 2>"$T/n.err" &
pid=$!
pids="$pids $pid"
wait_until 300 started_or_gone
SEQ=$(seq_of "$T/n.out")
if [ -n "$SEQ" ] && [ -n "$SEQ0" ] && [ "$SEQ" -gt "$SEQ0" ] &&
    [ "$SEQ" -le $((SEQ0 + 100)) ]; then ok; else
    bad "ENR seq $SEQ after $starts starts from $SEQ0: not loaded from the node DB"
fi
term_wait $pid 10 devp2pd
[ "$rc" = 0 ] && ok || bad "last run exited $rc"

echo "test_devp2pd_nofile: $checks checks, $fails failed ($starts starts under the limit)"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
