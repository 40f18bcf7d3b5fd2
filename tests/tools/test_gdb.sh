#!/bin/sh
# tests/tools/test_gdb.sh GDB_PY TRACE_ACTORS [core|live-only]: the gdb extension
# (tools/gdb/devp2p.py) in batch mode on a live actor process and on a core
# file written from it: devp2p-actors lists the thread names and their
# mailboxes, devp2p-mailboxes the depths (the "idle" mailbox holds 1),
# devp2p-trace the latest records of each ring.  live-only (sanitizer
# builds, whose shadow memory makes cores huge) skips the core file.
set -u
PY=$1 A=$2 MODE=${3:-core}
T=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
command -v gdb >/dev/null || { echo "FAIL: gdb not installed (tools/setup.sh)" >&2; exit 1; }

"$A" "$T" 30 >"$T/ready" &
pid=$!
i=0
while ! grep -q ready "$T/ready" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
grep -q ready "$T/ready" && ok || { bad "trace_actors did not start"; exit 1; }
sleep 0.2

check() { # check FILE LABEL
    for want in "3 p2p threads" "  p2p-run " "  peer-aabbccdd " "  peer-11223344 " \
        "mailbox posthandshake    depth " "idle             id 4   depth 1/8" "consumer p2p-run" \
        "trace segment: 16 rings" "pop   mailbox=" "event kind=tick peer="; do
        grep -qF -- "$want" "$1" && ok || bad "$2: gdb output lacks '$want'"
    done
    grep -qE '^ring [0-9]+  p2p-run  owner lwp [0-9]+  [0-9]+ records' "$1" && ok || bad "$2: no p2p-run ring"
}

if [ "$MODE" = core ]; then set -- -ex "gcore $T/core"; else set --; fi
timeout 60 gdb -nx -batch -p "$pid" -ex "source $PY" -ex devp2p-actors -ex devp2p-mailboxes \
    -ex "devp2p-trace 3" "$@" >"$T/live" 2>&1
check "$T/live" live
kill -0 "$pid" 2>/dev/null && ok || bad "process died under gdb"
kill "$pid"; wait "$pid" 2>/dev/null; pid=

if [ "$MODE" != core ]; then
    :
elif [ -s "$T/core" ]; then
    timeout 60 gdb -nx -batch "$A" "$T/core" -ex "source $PY" -ex devp2p-actors \
        -ex devp2p-mailboxes -ex "devp2p-trace 3" >"$T/corelog" 2>&1
    check "$T/corelog" core
else
    bad "gcore wrote no core file: $(tail -3 "$T/live")"
fi

echo "test_gdb: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
