#!/bin/sh
# tests/tools/test_gdb.sh GDB_PY TRACE_ACTORS [core|live-only]: the gdb extension
# (tools/gdb/devp2p.py) in batch mode on a live actor process and on a core
# file written from it: devp2p-actors lists the thread names and their
# mailboxes, devp2p-mailboxes the depths (the "idle" mailbox holds 1),
# devp2p-trace the latest records of each ring (and a warning when threads
# found no free ring; a kind beyond the name table is shown as its number,
# not as bytes read past the table); on a core without the
# file-backed trace mapping, devp2p-trace says so.  live-only (sanitizer
# builds, whose shadow memory makes cores huge) skips the core file.
set -u
PY=$1 A=$2 MODE=${3:-core}
. "$(dirname "$0")/lib_check.sh"
. "$(dirname "$0")/lib_actors.sh"
command -v gdb >/dev/null || { echo "FAIL: gdb not installed (tools/setup.sh)" >&2; exit 1; }

actors_start "$T/ready" "$T" 30
grep -q ready "$T/ready" && ok || { bad "trace_actors did not start"; exit 1; }
sleep 0.2

check() { # check FILE LABEL
    for want in "3 p2p threads" "  p2p-run " "  peer-aabbccdd " "  peer-11223344 " \
        "mailbox posthandshake    depth " "idle             id 4   depth 1/8" "consumer p2p-run" \
        "trace segment: 16 rings" "pop   mailbox=" "event kind=tick peer=" "event kind=256 arg=256"; do
        grep -qF -- "$want" "$1" && ok || bad "$2: gdb output lacks '$want'"
    done
    grep -qE '^ring [0-9]+  p2p-run  owner lwp [0-9]+  [0-9]+ records written, the last [0-9]+ kept' "$1" && ok ||
        bad "$2: no p2p-run ring"
}

if [ "$MODE" = core ]; then set -- -ex "gcore $T/core"; else set --; fi
timeout 60 gdb -nx -batch -p "$pid" -ex "source $PY" -ex devp2p-actors -ex devp2p-mailboxes \
    -ex "devp2p-trace 3" "$@" >"$T/live" 2>&1
check "$T/live" live
kill -0 "$pid" 2>/dev/null && ok || bad "process died under gdb"
if [ "$MODE" = core ]; then
    # a second core without file-backed shared mappings (coredump_filter
    # bit 3 cleared, the trace file gone when it is read): devp2p-trace
    # says so instead of failing on the header
    if echo 0x33 >"/proc/$pid/coredump_filter"; then
        timeout 60 gdb -nx -batch -p "$pid" -ex "gcore $T/core2" >"$T/live2" 2>&1
    fi
    [ -s "$T/core2" ] && ok || bad "gcore wrote no second core: $(tail -3 "$T/live2")"
fi
kill "$pid"; wait "$pid" 2>/dev/null; pids=

if [ "$MODE" != core ]; then
    :
elif [ -s "$T/core" ]; then
    timeout 60 gdb -nx -batch "$A" "$T/core" -ex "source $PY" -ex devp2p-actors \
        -ex devp2p-mailboxes -ex "devp2p-trace 3" >"$T/corelog" 2>&1
    check "$T/corelog" core
    mv "$T/trace.ring" "$T/trace.ring.away" # gdb would read the mapping from the file
    timeout 60 gdb -nx -batch "$A" "$T/core2" -ex "source $PY" -ex "devp2p-trace 3" \
        -ex devp2p-actors >"$T/core2log" 2>&1
    grep -qF "trace rings are not in this memory image" "$T/core2log" && ok ||
        bad "core without the rings: $(grep -i -m3 -e error -e exception "$T/core2log")"
    ! grep -q "Error occurred in Python" "$T/core2log" && ok || bad "python error on core2"
    grep -qF "  p2p-run " "$T/core2log" && ok || bad "core2: devp2p-actors after devp2p-trace"
else
    bad "gcore wrote no core file: $(tail -3 "$T/live")"
fi

# a segment with fewer rings than recording threads: devp2p-trace says
# how many threads recorded nothing
mkdir "$T/few"
actors_start "$T/few/ready" "$T/few" 20 3
sleep 0.2
timeout 60 gdb -nx -batch -p "$pid" -ex "source $PY" -ex "devp2p-trace 1" >"$T/few/log" 2>&1
grep -qE '^warning: 1 threads found no free ring and recorded nothing \([1-9][0-9]* events lost\): all 3 rings were taken' "$T/few/log" &&
    ok || bad "gdb: no warning about the thread without a ring: $(grep -m3 -e trace -e rror "$T/few/log")"
! grep -q 'no free ring' "$T/live" && ok || bad "gdb: no_ring warning with rings to spare"
kill "$pid"; wait "$pid" 2>/dev/null; pids=

echo "test_gdb: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
