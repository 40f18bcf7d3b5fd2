#!/bin/sh
# tests/tools/test_devp2pd_stdout.sh DEVP2PD DEVP2P: devp2pd whose
# start-up lines (metrics:, enode:, enr:) cannot be written: stdout on
# /dev/full (every write fails with ENOSPC).  The node must not die for
# it, but say so: one warning on stderr naming the error, before "Node
# started"; it then runs (admin_nodeInfo answers) and SIGTERM stops it
# with status 0.  A control with stdout to a file has the lines and no
# warning.  --version to /dev/full fails as --help does (exit 1, one
# line).  Loopback only; every wait is bounded.
set -u
N=$1 D=$2
. "$(dirname "$0")/lib_check.sh"

WARN='Cannot write the start-up lines to stdout'
mkdir -m 700 "$T/dd"
"$N" --datadir "$T/dd" --port 0 --addr 127.0.0.1 --nodiscover --nodial \
    --metrics.addr 127.0.0.1 --metrics.port 0 >/dev/full 2>"$T/n.err" &
pid=$!
pids="$pids $pid"
started_or_gone() { has_line "$T/n.err" 'Node started' || gone "$pid"; }
wait_until 300 started_or_gone
has_line "$T/n.err" 'Node started' && ok || bad "devp2pd did not start: $(cat "$T/n.err")"
grep "$WARN" "$T/n.err" | grep -q 'No space left on device' && ok ||
    bad "no warning for the lost start-up lines: $(cat "$T/n.err")"
[ "$(grep -c "$WARN" "$T/n.err")" = 1 ] && ok || bad "the warning not once: $(cat "$T/n.err")"
kill -0 $pid 2>/dev/null && ok || bad "devp2pd died with stdout on /dev/full"
timeout 20 "$D" attach "$T/dd/devp2pd.ipc" admin_nodeInfo >"$T/info" 2>"$T/err" &&
    grep -q 'enode://' "$T/info" && ok || bad "admin_nodeInfo: $(cat "$T/err")"
term_wait $pid 10 devp2pd
[ "$rc" = 0 ] && ok || bad "devp2pd exited $rc after SIGTERM, want 0"

# control: stdout to a file
node_start c --datadir "$T/dd" --addr 127.0.0.1 --nodiscover --nodial --verbosity 3 \
    --metrics.addr 127.0.0.1 --metrics.port 0
[ -n "$ENODE" ] && grep -q '^metrics: http://127.0.0.1:' "$T/c.out" && ok ||
    bad "control: start-up lines: $(cat "$T/c.out") $(cat "$T/c.err")"
! grep -q "$WARN" "$T/c.err" && ok || bad "control: a warning: $(cat "$T/c.err")"
term_wait $pid 10 devp2pd
[ "$rc" = 0 ] && ok || bad "control: devp2pd exited $rc after SIGTERM, want 0"

# --version with stdout on /dev/full
timeout 20 "$N" --version >/dev/full 2>"$T/err"
rc=$?
[ "$rc" = 1 ] && ok || bad "--version >/dev/full: exit $rc, want 1"
grep -qx 'devp2pd: cannot write standard output: No space left on device' "$T/err" && ok ||
    bad "--version >/dev/full: stderr: $(cat "$T/err")"

echo "test_devp2pd_stdout: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
