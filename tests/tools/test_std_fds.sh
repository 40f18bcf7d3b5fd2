#!/bin/sh
# tests/tools/test_std_fds.sh DEVP2PD DEVP2P: devp2pd and devp2p started
# with stdin, stdout or stderr closed.  The first file or socket a program
# opens must not take the closed descriptor's number: devp2pd's start-up
# lines would go into <datadir>/LOCK (stdout closed) or its log lines
# (stderr closed), `devp2p attach` would send its answer back to the node
# (stdout closed, exit 0 with nothing printed) or read its requests from
# the node's socket (stdin closed: it waits for ever).  A closed stdout or
# stdin is used as closed: devp2pd warns that the start-up lines cannot be
# written (EBADF) and runs on; attach fails with one line and exit 1.
# Loopback only; every wait is bounded.
set -u
N=$1 D=$2
. "$(dirname "$0")/lib_check.sh"

line_or_gone() { has_line "$2" "$1" || gone "$3"; }
wait_for() { # wait_for PATTERN FILE PID: up to 30 s for PATTERN in FILE (while PID runs)
    wait_until 300 line_or_gone "$@"
    has_line "$2" "$1"
}
# no file of the data directory holds the text (the lines went elsewhere)
clean_dd() { ! grep -rqsF "$1" "$2"; }

# 1. stdout closed: the warning, nothing written into the data directory
mkdir -m 700 "$T/d1"
"$N" --datadir "$T/d1" --port 0 --addr 127.0.0.1 --nodiscover --nodial >&- 2>"$T/d1.err" &
pid=$!
pids="$pids $pid"
wait_for 'Node started' "$T/d1.err" $pid && ok || bad "devp2pd (stdout closed) did not start: $(cat "$T/d1.err")"
grep 'Cannot write the start-up lines to stdout' "$T/d1.err" | grep -q 'Bad file descriptor' && ok ||
    bad "devp2pd (stdout closed): no warning naming EBADF: $(cat "$T/d1.err")"
clean_dd 'enode://' "$T/d1" && ok ||
    bad "devp2pd (stdout closed) wrote its start-up lines into: $(grep -rlF 'enode://' "$T/d1")"
timeout 20 "$D" attach "$T/d1" admin_nodeInfo >"$T/info" 2>"$T/err" && grep -q 'enode://' "$T/info" &&
    ok || bad "devp2pd (stdout closed): admin_nodeInfo: $(cat "$T/err")"

# 2. devp2p attach with stdout closed: exit 1 and one line
timeout 20 "$D" attach "$T/d1" admin_nodeInfo >&- 2>"$T/a.err"
rc=$?
[ "$rc" = 1 ] && ok || bad "attach (stdout closed): exit $rc, want 1: $(cat "$T/a.err")"
grep -qx 'devp2p: cannot write standard output: Bad file descriptor' "$T/a.err" && ok ||
    bad "attach (stdout closed): stderr: $(cat "$T/a.err")"

# 3. devp2p attach reading requests with stdin closed: ends at once
timeout 20 "$D" attach "$T/d1" <&- >"$T/s.out" 2>"$T/s.err"
rc=$?
[ "$rc" = 1 ] && ok || bad "attach (stdin closed): exit $rc, want 1: $(cat "$T/s.err")"
grep -qx 'devp2p: cannot read standard input: Bad file descriptor' "$T/s.err" && ok ||
    bad "attach (stdin closed): stderr: $(cat "$T/s.err")"
term_wait $pid 10 devp2pd
[ "$rc" = 0 ] && ok || bad "devp2pd (stdout closed) exited $rc after SIGTERM, want 0"

# 4. stderr closed: the start-up lines on stdout, no log line in the data
# directory, SIGTERM stops it with status 0
mkdir -m 700 "$T/d2"
"$N" --datadir "$T/d2" --port 0 --addr 127.0.0.1 --nodiscover --nodial >"$T/d2.out" 2>&- &
pid=$!
pids="$pids $pid"
wait_for '^enr: ' "$T/d2.out" $pid && ok || bad "devp2pd (stderr closed) did not start"
timeout 20 "$D" attach "$T/d2" admin_nodeInfo >/dev/null 2>"$T/err" && ok ||
    bad "devp2pd (stderr closed): admin_nodeInfo: $(cat "$T/err")"
term_wait $pid 10 devp2pd
[ "$rc" = 0 ] && ok || bad "devp2pd (stderr closed) exited $rc after SIGTERM, want 0"
clean_dd 'Started P2P networking' "$T/d2" && ok ||
    bad "devp2pd (stderr closed) wrote its log into: $(grep -rlF 'Started P2P networking' "$T/d2")"

echo "test_std_fds: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
