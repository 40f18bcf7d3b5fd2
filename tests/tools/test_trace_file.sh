#!/bin/sh
# tests/tools/test_trace_file.sh DEVP2P TRACE_CRAFT: `devp2p trace` on a
# crafted trace file (trace_craft.c): pushes and pops stamped at equal
# times on two rings are all paired by the Chrome export (no unmatched
# pop); names that are not valid UTF-8 are exported with U+FFFD and no
# record is left out of the export; record types beyond the known ones
# never pass a --type filter; --max-records keeps the oldest records by
# time across the rings; a filtered export keeps the owners of a reused
# ring on separate tracks; names with control characters are printed
# escaped; a follower lapped across a ring's owner change names the new
# owner's records after it, not after the owner it saw before the gap, and
# exports them on a track of their own; a file whose writer exited is
# said to be stale even when its pid now names another process.
set -u
D=$1 C=$2
T=$(mktemp -d)
lpid= fpid= xpid=
trap 'for p in $lpid $fpid $xpid; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"' EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }

"$C" "$T/trace.ring" && ok || { bad "trace_craft failed"; exit 1; }

# text: every record, the unknown types shown as '?'
timeout 30 "$D" trace --file "$T/trace.ring" >"$T/all" 2>"$T/err" && ok || bad "trace: $(cat "$T/err")"
n=$(grep -c ' push  mailbox=' "$T/all"); [ "$n" = 100 ] && ok || bad "text: $n pushes, want 100"
n=$(grep -c ' pop   mailbox=' "$T/all"); [ "$n" = 100 ] && ok || bad "text: $n pops, want 100"
n=$(grep -c ' ?  ' "$T/all"); [ "$n" = 2 ] && ok || bad "text: $n records of unknown type, want 2"

# --type: a type of 32 or more matches no list (33 is 1 mod 32, push's bit)
timeout 30 "$D" trace --file "$T/trace.ring" --type push >"$T/push" 2>"$T/err" && ok ||
    bad "trace --type push: $(cat "$T/err")"
n=$(wc -l <"$T/push"); [ "$n" = 100 ] && ok || bad "--type push printed $n lines, want 100"
! grep -q ' ?  ' "$T/push" && ok || bad "--type push let through: $(grep ' ?  ' "$T/push")"
timeout 30 "$D" trace --file "$T/trace.ring" --type pop,start,stop,full,block,event >"$T/rest" \
    2>"$T/err" && ok || bad "trace --type rest: $(cat "$T/err")"
! grep -q ' ?  ' "$T/rest" && ok || bad "--type list let through: $(grep ' ?  ' "$T/rest")"
# a --type list that names no type is a usage error (exit 2, one line),
# not a filter that lets every record through
for ty in "" ","; do
    timeout 30 "$D" trace --file "$T/trace.ring" --type "$ty" >"$T/out" 2>"$T/err"
    rc=$?
    [ $rc -eq 2 ] && [ ! -s "$T/out" ] && [ "$(wc -l <"$T/err")" -eq 1 ] && ok ||
        bad "trace --type '$ty' exited $rc, $(wc -l <"$T/out") records: $(cat "$T/err")"
done

# Chrome export
timeout 30 "$D" trace --file "$T/trace.ring" --export chrome "$T/chrome.json" 2>"$T/err" && ok ||
    bad "export: $(cat "$T/err")"
grep -q '^trace: exported 207 records, 100 flows, 0 overwritten while read, to ' "$T/err" && ok ||
    bad "export summary: $(cat "$T/err")"
! grep -q 'not exported' "$T/err" && ok || bad "export left records out: $(cat "$T/err")"
python3 - "$T/chrome.json" <<'PY' && ok || bad "chrome JSON check failed"
import json, sys
raw = open(sys.argv[1], "rb").read()
d = json.loads(raw.decode("utf-8", errors="strict"))
o = d["otherData"]
# 2 STARTs + 2 STOPs + 1 event + 100 pushes + 100 pops + 2 of unknown type
assert o["records"] == 207 and o["exported"] == 207, o
assert o["unmatched_pops"] == 0 and o["flows"] == 100 and o["failed_events"] == 0, o
ev = d["traceEvents"]
x = [e for e in ev if e["ph"] == "X"]
assert len(x) == 207, len(x)
names = {e["args"]["name"] for e in ev if e.get("ph") == "M" and e["name"] == "thread_name"}
assert names == {"p2p-run", "peer-\ufffd\ufffd"}, names
boxes = [e for e in x if e["args"]["type"] in ("push", "pop")]
assert len(boxes) == 200, len(boxes)
for e in boxes:
    assert e["args"]["mailbox_name"] == "box\ufffd\ufffd", e
    assert e["args"]["kind"] == "kind\ufffd(", e
    assert e["name"] == e["args"]["type"] + " box\ufffd\ufffd kind\ufffd(", e
starts = {e["id"]: e for e in ev if e["ph"] == "s"}
fins = {e["id"]: e for e in ev if e["ph"] == "f"}
assert len(starts) == 100 and set(starts) == set(fins), (len(starts), len(fins))
for i, s in starts.items():
    f = fins[i]
    assert f["ts"] == s["ts"] and s["tid"] != f["tid"] and s["name"] == "box\ufffd\ufffd", (s, f)
assert sum(1 for e in x if e["args"]["type"] == "?") == 2
print("chrome: %d events, %d flows" % (len(x), len(starts)))
PY

# --max-records N keeps the N oldest records by time across the rings,
# not the first N read (ring 0's pops): the first 25 pushes (ring 1) and
# their pops (ring 0), paired
timeout 30 "$D" trace --file "$T/trace.ring" --type push,pop --max-records 50 --export chrome \
    "$T/max.json" 2>"$T/err" && ok || bad "export --max-records: $(cat "$T/err")"
grep -q '^trace: exported 50 records, 25 flows, ' "$T/err" && grep -q ', 150 over --max-records$' "$T/err" &&
    ok || bad "export --max-records 50: $(cat "$T/err")"
python3 - "$T/max.json" <<'PY' && ok || bad "--max-records kept the wrong records"
import json, sys
x = [e for e in json.load(open(sys.argv[1]))["traceEvents"] if e["ph"] == "X"]
args = sorted(int(e["args"]["arg"]) for e in x if e["args"]["type"] in ("push", "pop"))
assert len(x) == 50 and args == sorted(list(range(25)) * 2), (len(x), args)
PY

# a reused ring (peer-aaaa, then peer-bbbb on ring 1): a filtered export
# (no START records in it) still puts each owner's records on its own,
# rightly named track
"$C" "$T/reuse.ring" reuse && ok || bad "trace_craft reuse failed"
for filt in "--type push" "--type push,pop" "--peer 0000000000000abc --type push" "--mailbox box --type push" ""; do
    # shellcheck disable=SC2086
    timeout 30 "$D" trace --file "$T/reuse.ring" $filt --export chrome "$T/reuse.json" 2>"$T/err" &&
        ok || bad "export $filt: $(cat "$T/err")"
    python3 - "$T/reuse.json" <<'PY' && ok || bad "export $filt: owners of a reused ring share a track"
import json, sys
ev = json.load(open(sys.argv[1]))["traceEvents"]
names = {e["tid"]: e["args"]["name"] for e in ev if e.get("ph") == "M" and e["name"] == "thread_name"}
push = [e for e in ev if e["ph"] == "X" and e["args"]["type"] == "push"]
assert len(push) == 6, len(push)
for e in push:
    want = "peer-aaaa" if int(e["args"]["arg"]) < 10 else "peer-bbbb"
    assert names[e["tid"]] == want, (e["args"]["arg"], names[e["tid"]], names)
PY
done

# a ring handed over after its first owner overwrote its own START:
# peer-old's 8188 events left in the ring (more than one read batch used
# to hold) are all named by its STOP, never by the ring's next owner
"$C" "$T/hand.ring" handover && ok || bad "trace_craft handover failed"
timeout 30 "$D" trace --file "$T/hand.ring" --type event >"$T/hand" 2>"$T/err" && ok ||
    bad "trace handover: $(cat "$T/err")"
n=$(grep -c ' peer-old  *event ' "$T/hand"); [ "$n" = 8188 ] && ok || bad "handover: $n peer-old events, want 8188"
n=$(grep -c ' peer-new  *event .* arg=99999$' "$T/hand"); m=$(grep -c ' peer-new ' "$T/hand")
[ "$n" = 1 ] && [ "$m" = 1 ] && ok || bad "handover: $m records named peer-new, want 1: $(grep -m2 ' peer-new ' "$T/hand")"
timeout 30 "$D" trace --file "$T/hand.ring" --thread peer-old --export chrome "$T/hand.json" \
    2>"$T/err" && ok || bad "export handover: $(cat "$T/err")"
python3 - "$T/hand.json" <<'PY' && ok || bad "export handover: peer-old's records on a peer-new track"
import json, sys
ev = json.load(open(sys.argv[1]))["traceEvents"]
names = {e["tid"]: e["args"]["name"] for e in ev if e.get("ph") == "M" and e["name"] == "thread_name"}
x = [e for e in ev if e["ph"] == "X"]
assert len(x) == 8189 and set(names.values()) == {"peer-old"}, (len(x), names)
PY

# names that would drive a terminal (ESC sequences, BEL, DEL, the C1
# controls CSI and NEL, bytes that are not UTF-8): the text output shows
# them as \xNN, valid UTF-8 with no control byte but the line ends
"$C" "$T/ctl.ring" ctl && ok || bad "trace_craft ctl failed"
timeout 30 "$D" trace --file "$T/ctl.ring" >"$T/ctl" 2>"$T/err" && ok || bad "trace ctl: $(cat "$T/err")"
python3 - "$T/ctl" <<'PY' && ok || bad "text output passes control bytes or non-UTF-8 through: $(od -c "$T/ctl" | head -5)"
import sys
raw = open(sys.argv[1], "rb").read()
text = raw.decode("utf-8", errors="strict")
bad = [c for c in text if c != "\n" and (ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0)]
assert not bad, bad
want = ("p\\x1b[2J\\xc2\\x9b1m push  mailbox=mb\\x1b]0;t\\x07\\xff "
        "kind=k\\xc2\\x85x\\x7f peer=0000000000000abc arg=1")
assert want in text, text
PY

# a follower lapped across an owner change: it saw peer-aaaa's records,
# then peer-aaaa left ring 0 and peer-bbbb took it and wrapped it (2 x 8
# records) before the next poll, so the ring keeps none of the handover.
# peer-bbbb's records are named after the ring's owner, never after the
# owner the follower saw before the gap; the Chrome export of such a
# follower puts them on a track named peer-bbbb, not on peer-aaaa's.
. "$(dirname "$0")/lib_wait.sh"
"$C" "$T/lap.ring" lap "$T/go" >"$T/lap.out" 2>&1 &
lpid=$!
wait_until 300 has_line "$T/lap.out" '^ready' && ok || bad "trace_craft lap: $(cat "$T/lap.out")"
timeout -k 5 60 "$D" trace --file "$T/lap.ring" --follow --duration 30 >"$T/lap" 2>"$T/lap.err" &
fpid=$!
timeout -k 5 60 "$D" trace --file "$T/lap.ring" --follow --duration 30 --export chrome "$T/lap.json" \
    >/dev/null 2>"$T/lapx.err" &
xpid=$!
wait_until 300 has_line "$T/lap" ' arg=3$' && ok || bad "follow did not show peer-aaaa: $(cat "$T/lap.err")"
sleep 0.5 # the exporting follower (polled every 50 ms) has read peer-aaaa's records too
touch "$T/go"
wait_until 300 has_line "$T/lap.out" '^done' && ok || bad "trace_craft lap: $(cat "$T/lap.out")"
wait_until 300 has_line "$T/lap" ' arg=1099$' && ok || bad "follow did not show peer-bbbb: $(cat "$T/lap.err")"
sleep 0.5 # and peer-bbbb's
kill "$fpid" "$xpid" 2>/dev/null; wait "$fpid"; fpid=
wait "$xpid" && ok || bad "follow --export: $(cat "$T/lapx.err")"; xpid=
rm -f "$T/go"
wait "$lpid" && ok || bad "trace_craft lap failed: $(cat "$T/lap.out")"; lpid=
n=$(grep -c ' arg=10[0-9][0-9]$' "$T/lap"); m=$(grep -c '^ *[0-9.]* peer-bbbb  *event .* arg=10[0-9][0-9]$' "$T/lap")
[ "$n" -gt 0 ] && [ "$n" = "$m" ] && ok ||
    bad "lapped follow: $m of $n records of peer-bbbb named so: $(grep ' arg=10[0-9][0-9]$' "$T/lap" | head -3)"
grep -q 'records lost to overwrites' "$T/lap.err" && ok || bad "lapped follow reported no loss: $(cat "$T/lap.err")"
python3 - "$T/lap.json" <<'PY' && ok || bad "lapped follow export: peer-bbbb's records not on a track of their own"
import json, sys
ev = json.load(open(sys.argv[1]))["traceEvents"]
names = {e["tid"]: e["args"]["name"] for e in ev if e.get("ph") == "M" and e["name"] == "thread_name"}
x = [e for e in ev if e["ph"] == "X"]
a = {names[e["tid"]] for e in x if int(e["args"]["arg"]) < 1000}
b = {names[e["tid"]] for e in x if int(e["args"]["arg"]) >= 1000}
assert a == {"peer-aaaa"} and b == {"peer-bbbb"}, (a, b)
PY

# the writer's pid reused (a reboot, a container restarted, pids wrapped):
# the file left by trace_craft, its header's pid made that of a live
# process that never mapped it (this shell), is still what an exited node
# left: the warning, and --follow stops at once instead of following a
# file nobody writes
python3 - "$T/trace.ring" $$ <<'PY' && ok || bad "cannot set the pid of $T/trace.ring"
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(44)  # p2p_trace_file_hdr_t.pid
    f.write(struct.pack("<i", int(sys.argv[2])))
PY
timeout 30 "$D" trace --file "$T/trace.ring" --type push >/dev/null 2>"$T/err" && ok || bad "trace (pid reused): $(cat "$T/err")"
grep -qx "trace: the node that wrote this trace (pid $$) is not running: showing what it left" "$T/err" &&
    ok || bad "no stale-trace warning when the pid was reused: $(cat "$T/err")"
timeout 30 "$D" trace --file "$T/trace.ring" --follow --duration 20 >/dev/null 2>"$T/err"
rc=$?
[ $rc -eq 0 ] && grep -q "trace: the node (pid $$) exited; stopped following" "$T/err" && ok ||
    bad "follow (pid reused): exit $rc: $(cat "$T/err")"

echo "test_trace_file: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
