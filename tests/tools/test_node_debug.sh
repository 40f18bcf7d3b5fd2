#!/bin/sh
# tests/tools/test_node_debug.sh DEVP2PD DEVP2P GDB_PY: the debugging tools
# on a real node under load.  devp2pd --trace runs on loopback while
# `devp2p stress` holds live peers and churns handshakes against it;
# meanwhile
#   - `devp2p trace --follow` is attached to the node's trace rings and must
#     see the run loop's posthandshake, addpeer and delpeer mailboxes pushed
#     by connection threads and popped by p2p-run, with connection threads
#     renamed peer-<id> after their handshake;
#   - gdb in batch mode attaches to the live node and the extension
#     (tools/gdb/devp2p.py) lists the actors with their mailboxes, the
#     mailbox depths and the latest trace records, and the node keeps
#     serving afterwards;
#   - the Chrome export of the node's rings is valid JSON with one track per
#     actor and push->pop flows into p2p-run.
# The node must then stop cleanly on SIGTERM.  Every wait is bounded.
set -u
NODE=$1 D=$2 PY=$3
T=$(mktemp -d)
pid= fpid= hpid= cpid=
cleanup() {
    for p in $fpid $hpid $cpid $pid; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    [ -n "${KEEP:-}" ] && echo "kept $T" >&2 || rm -rf "$T"
}
trap cleanup EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
. "$(dirname "$0")/lib_stop.sh"
command -v gdb >/dev/null || { echo "FAIL: gdb not installed (tools/setup.sh)" >&2; exit 1; }

"$NODE" --datadir "$T/node" --port 0 --addr 127.0.0.1 --nodiscover --nodial --trace \
    --maxpeers 200 --maxpendpeers 64 --verbosity 2 >"$T/out" 2>"$T/err" &
pid=$!
wait_until 200 has_line "$T/out" '^enode: '
E=$(sed -n 's/^enode: \(enode:[^?]*\).*/\1/p' "$T/out" | head -1)
[ -n "$E" ] && ok || { bad "node did not print its enode: $(cat "$T/err")"; exit 1; }

# the trace reader, attached live for the whole load
timeout -k 5 60 "$D" trace --datadir "$T/node" --follow --new --duration 12 >"$T/follow" 2>"$T/follow.err" &
fpid=$!
sleep 0.5

# load: 20 held peers for 9 s, then handshake churn beside them (the held
# peers do not ping: gdb stops the node while it reads, which would make
# their pongs late)
timeout -k 5 60 "$D" stress --target "$E" --mode hold --peers 20 --duration 9 \
    --out "$T/hold.json" >"$T/hold" 2>&1 &
hpid=$!
twenty_threads() { [ "$(ls /proc/$pid/task 2>/dev/null | wc -l)" -ge 20 ]; }
wait_until 300 twenty_threads
timeout -k 5 60 "$D" stress --target "$E" --mode churn --peers 4 --duration 3 >"$T/churn" 2>&1 &
cpid=$!
sleep 1

# gdb on the live node, under load
timeout 90 gdb -nx -batch -p "$pid" -ex "source $PY" -ex devp2p-actors -ex devp2p-mailboxes \
    -ex "devp2p-trace 3" >"$T/gdb" 2>&1
for want in "  p2p-run " "  p2p-listen " "  p2p-dial " "mailbox posthandshake " \
    "mailbox addpeer " "mailbox delpeer " "mailbox peerop " "consumer p2p-run" \
    "trace segment: " "push  mailbox=" "pop   mailbox="; do
    grep -qF -- "$want" "$T/gdb" && ok || bad "gdb output lacks '$want'"
done
np=$(grep -cE '^  peer-[0-9a-f]{8} +id [0-9]+ ' "$T/gdb")
[ "$np" -ge 10 ] && ok || bad "gdb listed $np peer-<id> actors, want >= 10: $(grep -E '^  [a-z]' "$T/gdb" | head -5)"
grep -qE '^[0-9]+ p2p threads' "$T/gdb" && ok || bad "no thread count in gdb output"
kill -0 "$pid" 2>/dev/null && ok || bad "node died under gdb"

# --peer with a node as admin_peers shows it (its enode URL): the records of
# that peer, every one carrying the first 16 hex digits of its node id
"$D" attach --timeout 10 "$T/node" admin_peers >"$T/peers" 2>&1
PE=$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(p[0]["enode"], p[0]["id"])' "$T/peers" 2>/dev/null)
PURL=${PE% *} PID=${PE#* }
if [ -n "$PE" ]; then
    "$D" trace --datadir "$T/node" --peer "$PURL" >"$T/bypeer" 2>"$T/bypeer.err" && ok ||
        bad "trace --peer ENODE: $(cat "$T/bypeer.err")"
    pid16=$(printf %.16s "$PID")
    n=$(grep -c " peer=$pid16" "$T/bypeer")
    [ "$n" -gt 0 ] && ! grep -v " peer=$pid16" "$T/bypeer" | grep -q . && ok ||
        bad "trace --peer ENODE: $n records of $pid16, others: $(grep -v " peer=$pid16" "$T/bypeer" | head -2)"
else
    bad "admin_peers listed no peer: $(head -c 300 "$T/peers")"
fi

wait "$cpid"; crc=$?; cpid=
[ "$crc" -eq 0 ] && ok || bad "churn exited $crc: $(tail -5 "$T/churn")"
s=$(sed -n 's/^  successes: *\([0-9]*\).*/\1/p' "$T/churn")
[ "${s:-0}" -gt 0 ] && ok || bad "churn had no successful handshake after gdb detached: $(cat "$T/churn")"
wait "$hpid"; hrc=$?; hpid=
[ "$hrc" -eq 0 ] && ok || bad "hold exited $hrc: $(tail -5 "$T/hold")"
python3 - "$T/hold.json" <<'PY' && ok || bad "hold results: $(tail -8 "$T/hold")"
import json, sys
d = json.load(open(sys.argv[1]))
s = d.get("summary", d)
def find(o, k):
    if isinstance(o, dict):
        if k in o: return o[k]
        for v in o.values():
            r = find(v, k)
            if r is not None: return r
    return None
succ = find(s, "successes")
assert succ is not None and succ >= 20, ("successes", succ)
PY
wait "$fpid"; frc=$?; fpid=
[ "$frc" -eq 0 ] && ok || bad "trace --follow exited $frc: $(cat "$T/follow.err")"

# what the live reader saw
for mb in posthandshake addpeer delpeer; do
    grep -qE " peer-[0-9a-f]{8} +push  mailbox=$mb " "$T/follow" && ok ||
        bad "follow: no push to $mb from a peer thread"
    grep -qE " p2p-run +pop   mailbox=$mb " "$T/follow" && ok || bad "follow: no pop of $mb by p2p-run"
done
# records carry the peer: a peer thread's posthandshake/addpeer/delpeer
# name its own node id, and p2p-run's pops name the same ids
awk '$2 ~ /^peer-/ && $3 == "push" && $4 ~ /^mailbox=(posthandshake|addpeer|delpeer)$/ {
        n++; if ("peer-" substr($5, 6, 8) != $2) bad++ }
     END { exit !(n > 0 && bad == 0) }' "$T/follow" && ok ||
    bad "follow: pushes to the run loop do not carry the pushing peer's id"
grep -qE ' p2p-run +pop   mailbox=delpeer peer=[0-9a-f]{16} ' "$T/follow" && ok ||
    bad "follow: delpeer pops carry no peer id"
grep -qE ' (conn-in|peer-[0-9a-f]{8}) +push  mailbox=slots' "$T/follow" && ok || bad "follow: no slot returned by a conn-in thread"
grep -qE ' peer-[0-9a-f]{8} +start ' "$T/follow" && ok || bad "follow: no start record under a peer-<id> name"
# message kinds: the run loop's peer-state changes are named (as are
# peerop's operations and the events' types, which devp2pd does not use),
# and --kind selects them
for k in peer-added peer-removed; do
    grep -qE " mailbox=[a-z]+ .*kind=$k( |$)" "$T/follow" && ok || bad "follow: no record of kind $k"
done
"$D" trace --datadir "$T/node" --kind 'peer-*' >"$T/kinds" 2>"$T/kinds.err"
n=$(wc -l <"$T/kinds")
[ "$n" -gt 0 ] && ok || bad "--kind 'peer-*' selected nothing: $(cat "$T/kinds.err")"
grep -vqE ' kind=peer-(added|removed|inbound-pending|inbound-done)( |$)' "$T/kinds" &&
    bad "--kind 'peer-*' let other kinds through: $(grep -vE ' kind=peer-' "$T/kinds" | head -2)" || ok
n=$(wc -l <"$T/follow")
[ "$n" -gt 200 ] && ok || bad "follow printed only $n lines"
# in time order, except records marked late (written more than the reader's
# grace after their timestamp: a writer descheduled in between)
awk '!/ late$/ { if (n++ && $1 < prev) bad = 1; prev = $1 } END { exit bad }' "$T/follow" && ok ||
    bad "follow output not in time order"
late=$(grep -c ' late$' "$T/follow")
[ "$late" -lt 20 ] && ok || bad "follow printed $late records late"

# Chrome export of the node's rings
"$D" trace --datadir "$T/node" --export chrome "$T/chrome.json" 2>"$T/exp.err" && ok ||
    bad "export: $(cat "$T/exp.err")"
python3 - "$T/chrome.json" <<'PY' && ok || bad "chrome JSON check failed"
import json, re, sys
d = json.load(open(sys.argv[1]))
ev = d["traceEvents"]
names = {}
for e in ev:
    if e.get("ph") == "M" and e["name"] == "thread_name":
        names.setdefault(e["args"]["name"], set()).add(e["tid"])
for want in ("p2p-run", "p2p-listen", "p2p-dial"):
    assert want in names, ("no track", want, sorted(names))
assert any(re.fullmatch(r"peer-[0-9a-f]{8}", n) for n in names), sorted(names)
tids = [t for ts in names.values() for t in ts]
assert len(tids) == len(set(tids)), "tracks share a tid"
x = [e for e in ev if e["ph"] == "X"]
assert len(x) > 100 and all(e["tid"] in tids for e in x), len(x)
run = names["p2p-run"]
starts = {e["id"]: e for e in ev if e["ph"] == "s"}
fins = {e["id"]: e for e in ev if e["ph"] == "f"}
assert set(starts) == set(fins) and len(starts) > 50, (len(starts), len(fins))
into_run = [i for i, f in fins.items() if f["tid"] in run]
assert len(into_run) > 20, len(into_run)
for i, s in starts.items():
    assert fins[i]["ts"] >= s["ts"], "flow goes back in time"
mbs = {starts[i]["name"] for i in into_run}
for want in ("posthandshake", "addpeer", "delpeer"):
    assert any(want in m for m in mbs), ("no flow into p2p-run for", want, sorted(mbs))
print("chrome: %d tracks, %d events, %d flows" % (len(tids), len(x), len(starts)))
PY

# debug_trace pauses the recording: the rings keep what they hold, and a
# handshake while paused leaves them exactly as they were; resumed, the
# next handshake is recorded (found by its peer id, which no ring
# wrap-around can hide)
rec() { "$D" attach --timeout 10 "$T/node" debug_trace "$@" 2>&1 | tr -d ' \n'; }
"$D" key generate "$T/k1" >/dev/null && "$D" key generate "$T/k2" >/dev/null && ok || bad "key generate"
ID1=$("$D" key to-id "$T/k1" | cut -c1-16) ID2=$("$D" key to-id "$T/k2" | cut -c1-16)
[ "$(rec)" = '{"file":"'"$T/node"'/trace.ring","recording":true}' ] && ok || bad "debug_trace: $(rec)"
[ "$(rec false)" = '{"file":"'"$T/node"'/trace.ring","recording":false}' ] && ok || bad "debug_trace false: $(rec)"
"$D" trace --datadir "$T/node" >"$T/p1" 2>&1
timeout 20 "$D" rlpx ping --nodekey "$T/k1" "$E" >/dev/null 2>&1 && ok || bad "rlpx ping while paused"
"$D" trace --datadir "$T/node" >"$T/p2" 2>&1
[ -s "$T/p1" ] && cmp -s "$T/p1" "$T/p2" && ok || bad "records written while paused: $(diff "$T/p1" "$T/p2" | head -5)"
case "$(rec true)" in *'"recording":true}') ok ;; *) bad "debug_trace true: $(rec)" ;; esac
timeout 20 "$D" rlpx ping --nodekey "$T/k2" "$E" >/dev/null 2>&1 && ok || bad "rlpx ping after resume"
"$D" trace --datadir "$T/node" >"$T/p3" 2>&1
grep -q "mailbox=posthandshake peer=$ID2" "$T/p3" && ok || bad "handshake after resume not recorded ($ID2)"
# (its connection's teardown may come after the resume, and is recorded:
# the handshake, done before rlpx ping returned, is not)
grep -q "mailbox=posthandshake peer=$ID1" "$T/p3" && bad "handshake while paused recorded ($ID1)" || ok

term_wait "$pid" 10 "node"; pid=
[ "$rc" -eq 0 ] && ok || bad "node exited $rc after SIGTERM: $(tail -3 "$T/err")"

echo "test_node_debug: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
