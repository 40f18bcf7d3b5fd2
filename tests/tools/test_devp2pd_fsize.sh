#!/bin/sh
# tests/tools/test_devp2pd_fsize.sh DEVP2PD DEVP2P: devp2pd under a file
# size limit (ulimit -f, no privileges needed) reached at run time: its
# log (stderr to a file, --verbosity 5) fills the 1 KiB limit after start
# while RLPx pings come in.  The node must not die of SIGXFSZ: it keeps
# answering pings, admin_metrics counts the lost log lines
# (process.logLinesLost > 0), and SIGTERM still stops it with status 0.
# Loopback only; every wait is bounded.
set -u
N=$1 D=$2
. "$(dirname "$0")/lib_check.sh"

mkdir -m 700 "$T/dd"
"$D" key generate "$T/dd/nodekey" >/dev/null && ok || bad "key generate"
# 2 blocks of 512 bytes: the start-up lines fit (stdout about 370 bytes,
# stderr about 770), the lines of a few connections do not
sh -c 'ulimit -f 2 || exit 90; exec "$0" "$@"' "$N" --datadir "$T/dd" --port 0 --addr 127.0.0.1 \
    --nodiscover --nodial --verbosity 5 >"$T/n.out" 2>"$T/n.err" &
pid=$!
pids="$pids $pid"
started_or_gone() { has_line "$T/n.out" '^enr: ' || gone "$pid"; }
wait_until 300 started_or_gone
ENODE=$(sed -n 's/^enode: //p' "$T/n.out")
[ -n "$ENODE" ] && ok || bad "devp2pd did not start: $(cat "$T/n.err")"

pinged=0
i=0
while [ $i -lt 10 ] && [ -n "$ENODE" ]; do
    timeout 20 "$D" rlpx ping "$ENODE" >/dev/null 2>"$T/err" && pinged=$((pinged + 1))
    i=$((i + 1))
done
[ "$pinged" = 10 ] && ok || bad "$pinged of 10 pings answered: $(cat "$T/err")"
[ "$(wc -c <"$T/n.err")" = 1024 ] && ok || bad "the log did not reach the limit: $(wc -c <"$T/n.err") bytes"
kill -0 $pid 2>/dev/null && ok || bad "devp2pd died under the file size limit"
timeout 20 "$D" attach "$T/dd/devp2pd.ipc" admin_metrics >"$T/m" 2>"$T/err" && ok ||
    bad "admin_metrics: $(cat "$T/err")"
lost=$(tr -d ' \n' <"$T/m" | sed -n 's/.*"logLinesLost":\([0-9]*\).*/\1/p')
[ -n "$lost" ] && [ "$lost" -gt 0 ] && ok || bad "logLinesLost '$lost': $(cat "$T/m")"
term_wait $pid 10 devp2pd
[ "$rc" = 0 ] && ok || bad "devp2pd exited $rc after SIGTERM, want 0"

echo "test_devp2pd_fsize: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
