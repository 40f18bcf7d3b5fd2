#!/bin/sh
# tests/tools/test_trace_fulldisk.sh DEVP2PD: devp2pd --trace with its
# datadir on a file system without room for the trace segment (a 32 MiB
# tmpfs in a private mount namespace, unshare -m: needs root, else skipped
# with 77).  The segment's blocks are reserved at start, so the node
# refuses to start: exit status 1, one line on stderr naming the file, its
# size and "No space left on device", and no trace.ring left behind;
# without --trace the same datadir starts (the node itself fits).
set -u
N=$1
. "$(dirname "$0")/lib_check.sh"

if ! unshare -m true 2>/dev/null; then
    echo "SKIP: no private mount namespace (unshare -m): needs root / CAP_SYS_ADMIN"
    exit 77
fi

mkdir "$T/small"
# everything that needs the small file system runs in one namespace
unshare -m sh -c '
    mount -t tmpfs -o size=32m,mode=0700 tmpfs "$1/small" || exit 90
    timeout 20 "$2" --datadir "$1/small/dd" --port 0 --nodiscover --nodial --trace \
        >"$1/out" 2>"$1/err"
    echo $? >"$1/rc"
    ls -A "$1/small/dd" >"$1/left" 2>&1
    # the node itself fits: it starts without --trace (stopped by the timeout)
    timeout -s TERM 3 "$2" --datadir "$1/small/dd" --port 0 --nodiscover --nodial \
        >"$1/out2" 2>"$1/err2"
    echo $? >"$1/rc2"
' sh "$T" "$N"
[ $? -eq 0 ] && ok || bad "cannot mount a tmpfs in a private mount namespace"

rc=$(cat "$T/rc" 2>/dev/null)
[ "$rc" = 1 ] && ok || bad "devp2pd --trace on a full disk exited '$rc', want 1: $(cat "$T/err")"
[ "$(wc -l <"$T/err")" -eq 1 ] && ok || bad "want one stderr line: $(cat "$T/err")"
grep -q "^devp2pd: cannot create trace file $T/small/dd/trace.ring ([0-9]* bytes, [0-9]* MiB): No space left on device\$" "$T/err" &&
    ok || bad "stderr: $(cat "$T/err")"
! grep -q 'trace.ring' "$T/left" && ok || bad "trace.ring left behind: $(cat "$T/left")"
rc2=$(cat "$T/rc2" 2>/dev/null)
[ "$rc2" = 124 ] && grep -q '^enr: ' "$T/out2" && ok ||
    bad "devp2pd without --trace on the same file system: exit '$rc2': $(cat "$T/err2")"

echo "test_trace_fulldisk: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
