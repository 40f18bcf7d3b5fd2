#!/bin/sh
# tests/tools/test_trace.sh DEVP2P TRACE_ACTORS: `devp2p trace` against a
# live actor process (trace_actors.c): names, filters, --follow, and the
# Chrome export (valid JSON with one named track per thread, complete
# events, and push->pop flows); a warning when threads found no free ring,
# when the file's writer is gone, and when a followed segment is recreated.
set -u
D=$1 A=$2
. "$(dirname "$0")/lib_check.sh"
. "$(dirname "$0")/lib_actors.sh"

# maps PID FILE: process PID maps FILE (a follower has opened the segment;
# a follower that opened it only after a second writer recreated it would
# follow the new one and never see the replacement)
maps() { grep -qF -- "$(readlink -f -- "$2")" "/proc/$1/maps" 2>/dev/null; }

actors_start "$T/ready" "$T" 20
grep -q ready "$T/ready" && ok || { bad "trace_actors did not start"; exit 1; }
sleep 0.3

"$D" trace --datadir "$T" >"$T/all" 2>"$T/err" && ok || bad "trace: $(cat "$T/err")"
for want in " p2p-run  " " peer-aabbccdd " " peer-11223344 " " push  mailbox=posthandshake kind=posthandshake peer=aabbccdd00000000" \
    " pop   mailbox=addpeer kind=addpeer" " event kind=tick peer=1122334400000000" " start "; do
    grep -qF -- "$want" "$T/all" && ok || bad "trace output lacks '$want'"
done

# without --datadir or --file: the default data directory, $HOME/.devp2p-c
mkdir "$T/home" && ln -s "$T" "$T/home/.devp2p-c"
HOME="$T/home" "$D" trace --mailbox addpeer >"$T/dflt" 2>"$T/err" && ok || bad "trace (default datadir): $(cat "$T/err")"
grep -qF " pop   mailbox=addpeer kind=addpeer" "$T/dflt" && ok || bad "trace (default datadir) lacks addpeer"
HOME="$T/nohome" "$D" trace >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && grep -qF "$T/nohome/.devp2p-c/trace.ring" "$T/err" && ok || bad "trace (missing default datadir): $(cat "$T/err")"

# filters
"$D" trace --datadir "$T" --thread 'peer-*' --type push >"$T/f1" && ok || bad "trace --thread"
[ -s "$T/f1" ] && ! grep -v ' peer-[0-9a-f]* *push ' "$T/f1" | grep -q . && ok || bad "--thread/--type filter let through: $(grep -v ' push ' "$T/f1" | head -2)"
"$D" trace --datadir "$T" --mailbox delpeer >"$T/f2" && ok || bad "trace --mailbox"
[ -s "$T/f2" ] && ! grep -v 'mailbox=delpeer' "$T/f2" | grep -q . && ok || bad "--mailbox filter"
"$D" trace --datadir "$T" --peer 1122 >"$T/f3" && ok || bad "trace --peer"
[ -s "$T/f3" ] && ! grep -v 'peer=1122334400000000' "$T/f3" | grep -q . && ok || bad "--peer filter"
"$D" trace --datadir "$T" --peer 0x1122334400 >"$T/f3" && ok || bad "trace --peer 0x..."
[ -s "$T/f3" ] && ! grep -v 'peer=1122334400000000' "$T/f3" | grep -q . && ok || bad "--peer 0x filter"
# --peer takes a node id prefix, 1 to 64 hex digits, or a node (enode URL,
# enr:, 128-hex public key): anything else (a thread name, 128 hex digits
# that are not a curve point, nothing) is a usage error (exit 2, one
# line), not a filter that silently matches no record
for p in zz peer-11223344 "" 0x "$(printf '%0128d' 0)"; do
    "$D" trace --datadir "$T" --peer "$p" >"$T/out" 2>"$T/err"
    rc=$?
    [ $rc -eq 2 ] && [ ! -s "$T/out" ] && [ "$(wc -l <"$T/err")" -eq 1 ] && ok ||
        bad "trace --peer '$p' exited $rc: $(head -c 300 "$T/out") $(cat "$T/err")"
done
"$D" trace --datadir "$T" --kind tick >"$T/f4" && ok || bad "trace --kind"
[ -s "$T/f4" ] && ! grep -v ' event kind=tick ' "$T/f4" | grep -q . && ok || bad "--kind filter"
"$D" trace --datadir "$T" --mailbox 2 --type pop >"$T/f5" && ok || bad "trace --mailbox ID"
[ -s "$T/f5" ] && ! grep -v 'pop   mailbox=addpeer' "$T/f5" | grep -q . && ok || bad "--mailbox by id"

# --follow --new prints only records written after the start, in time order
"$D" trace --datadir "$T" --follow --new --duration 0.5 --thread p2p-run >"$T/fol" && ok || bad "trace --follow"
n=$(wc -l <"$T/fol")
[ "$n" -gt 10 ] && ok || bad "--follow printed $n lines"
awk '{ if (NR > 1 && $1 < prev) bad = 1; prev = $1 } END { exit bad }' "$T/fol" && ok || bad "--follow output not in time order"

# Chrome export
"$D" trace --datadir "$T" --export chrome "$T/chrome.json" 2>"$T/err" && ok || bad "export: $(cat "$T/err")"
python3 - "$T/chrome.json" <<'PY' && ok || bad "chrome JSON check failed"
import json, sys
d = json.load(open(sys.argv[1]))
ev = d["traceEvents"]
names = {e["args"]["name"]: e["tid"] for e in ev if e.get("ph") == "M" and e["name"] == "thread_name"}
for want in ("p2p-run", "peer-aabbccdd", "peer-11223344"):
    assert want in names, ("no track", want, names)
assert len(set(names.values())) == len(names), "tracks share a tid"
x = [e for e in ev if e["ph"] == "X"]
assert len(x) > 100, len(x)
assert all(e["tid"] in names.values() for e in x)
starts = {e["id"]: e for e in ev if e["ph"] == "s"}
fins = {e["id"]: e for e in ev if e["ph"] == "f"}
assert len(starts) > 50 and set(starts) == set(fins), (len(starts), len(fins))
for i, s in starts.items():
    f = fins[i]
    assert f["ts"] >= s["ts"] and f.get("bp") == "e"
    assert s["tid"] != names["p2p-run"] and f["tid"] == names["p2p-run"], "flow must go producer -> p2p-run"
    assert s["name"] == f["name"]
print("chrome: %d tracks, %d events, %d flows" % (len(names), len(x), len(starts)))
PY

# a follower whose node exits says so and stops
"$D" trace --datadir "$T" --follow --new --duration 20 >/dev/null 2>"$T/ferr" &
fpid=$!
wait_until 100 maps "$fpid" "$T/trace.ring" && ok || bad "the follower did not map $T/trace.ring"
kpid=$pid
kill "$pid"; wait "$pid" 2>/dev/null; pids=
wait_until 50 gone "$fpid"
wait "$fpid"
[ $? -eq 0 ] && grep -q "trace: the node (pid $kpid) exited; stopped following" "$T/ferr" && ok ||
    bad "follow after the node exited: $(cat "$T/ferr")"
# the file stays readable after the node exits, with a warning that it is
# what the node left (none while it ran)
"$D" trace --datadir "$T" --type stop >"$T/stop" 2>"$T/serr" && ok || bad "trace after exit"
grep -q ' p2p-run  *stop ' "$T/stop" && ok || bad "no stop record after exit: $(cat "$T/stop")"
grep -qx "trace: the node that wrote this trace (pid $kpid) is not running: showing what it left" "$T/serr" &&
    ok || bad "no stale-trace warning after exit: $(cat "$T/serr")"
! grep -q 'not running' "$T/err" && ok || bad "stale-trace warning for a live node: $(cat "$T/err")"

# a follower whose segment is recreated (a second writer, as a restarted
# node, opens the same path) says so and stops, instead of following a
# file nobody writes any more
mkdir "$T/re"
actors_start "$T/re/ready1" "$T/re" 20
"$D" trace --datadir "$T/re" --follow --new --duration 20 >/dev/null 2>"$T/re/ferr" &
fpid=$!
wait_until 100 maps "$fpid" "$T/re/trace.ring" && ok || bad "the follower did not map $T/re/trace.ring"
"$A" "$T/re" 20 >"$T/re/ready2" &
pid2=$!
wait_until 50 gone "$fpid"
kill "$fpid" 2>/dev/null
wait "$fpid"
frc=$?
[ $frc -eq 0 ] && grep -q "^trace: $T/re/trace.ring was replaced by a new trace segment .* stopped following the old one (pid $pid)" "$T/re/ferr" &&
    ok || bad "follow across a recreated segment: exit $frc: $(cat "$T/re/ferr")"
kill "$pid" "$pid2"; wait "$pid" "$pid2" 2>/dev/null; pids=

# a segment with fewer rings than recording threads: the thread without
# one is named in a warning on stderr (nothing else would show it)
mkdir "$T/few"
actors_start "$T/few/ready" "$T/few" 20 3
sleep 0.2
timeout 30 "$D" trace --datadir "$T/few" >"$T/few/out" 2>"$T/few/err" && ok || bad "trace (few rings): $(cat "$T/few/err")"
grep -qE '^trace: warning: 1 threads found no free ring and recorded nothing \([1-9][0-9]* events lost\): all 3 rings were taken; restart the node with more rings' "$T/few/err" &&
    ok || bad "no warning about the thread without a ring: $(cat "$T/few/err")"
! grep -q 'no free ring' "$T/err" && ok || bad "no_ring warning with rings to spare: $(cat "$T/err")"
kill "$pid"; wait "$pid" 2>/dev/null; pids=

echo "test_trace: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
