#!/bin/sh
# tests/tools/test_attach.sh DEVP2P: `devp2p attach` against a small
# JSON-RPC 2.0 server on a UNIX socket (python3): one call, params forms,
# an error reply, interactive lines, a datadir argument, a reply split
# across writes, and a peer streaming replies with other ids (the call
# gives up at its --timeout), a node that does not read its requests or
# accepts no connection (the client still ends at its --timeout).
set -u
D=$1
. "$(dirname "$0")/lib_check.sh"

python3 - "$T/devp2pd.ipc" <<'PY' &
import json, os, socket, sys, threading, time
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(8)
s.settimeout(40)
def serve(c):
    buf = b""
    dec = json.JSONDecoder()
    while True:
        d = c.recv(65536)
        if not d:
            return
        buf += d
        while True:
            t = buf.decode().lstrip()
            if not t:
                buf = b""
                break
            try:
                req, end = dec.raw_decode(t)
            except ValueError:
                break
            buf = t[end:].encode()
            m = req.get("method")
            if m == "fail":
                rep = {"jsonrpc": "2.0", "id": req["id"], "error": {"code": -32601, "message": "the method fail does not exist"}}
            elif m == "utf8":
                rep = {"jsonrpc": "2.0", "id": req["id"], "result": {"name": "n\u00e9ud"}}
            else:
                rep = {"jsonrpc": "2.0", "id": req["id"], "result": {"method": m, "params": req.get("params")}}
            out = json.dumps(rep, ensure_ascii=False).encode()
            # a notification first, then the reply in two writes (utf8: the
            # first one ends inside the two bytes of U+00E9)
            cut = out.index(b"\xc3") + 1 if m == "utf8" else 7
            c.sendall(b'{"jsonrpc":"2.0","method":"note"}')
            c.sendall(out[:cut]); time.sleep(0.05); c.sendall(out[cut:] + b"\n")
end = time.time() + 40
while time.time() < end:
    try:
        c, _ = s.accept()
    except socket.timeout:
        break
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
pids="$pids $!"
wait_until 100 [ -S "$T/devp2pd.ipc" ]

out=$("$D" attach "$T/devp2pd.ipc" admin_nodeInfo 2>"$T/err") && ok || bad "attach: $(cat "$T/err")"
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d=={"method":"admin_nodeInfo","params":[]}, d' && ok || bad "result: $out"
out=$("$D" attach "$T" admin_addPeer enode://abc@127.0.0.1:1 2>"$T/err") && ok || bad "attach datadir: $(cat "$T/err")"
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["params"]==["enode://abc@127.0.0.1:1"], d' && ok || bad "string param: $out"
out=$("$D" attach "$T" m '[1, {"a": true}]' 2>&1) && ok || bad "attach json params: $out"
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["params"]==[1, {"a": True}], d' && ok || bad "json params: $out"
"$D" attach "$T" fail >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q 'error -32601: the method fail does not exist' "$T/err" && ok || bad "error reply: $(cat "$T/err")"
# a reply whose read ends inside a character is not malformed
out=$("$D" attach "$T" utf8 2>"$T/err") && ok || bad "reply cut inside a character: $(cat "$T/err")"
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d=={"name":"n\u00e9ud"}, d' && ok || bad "utf8 result: $out"
# an interactive line takes the method and up to 63 params, as said
p63=$(seq -s ' ' 1 63)
printf 'm63 %s\nm64 %s 64\n' "$p63" "$p63" | "$D" attach "$T" >"$T/out" 2>"$T/err"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["method"]=="m63" and d["params"]==list(range(1,64)), d' "$T/out" &&
    ok || bad "63 params: $(cat "$T/out" "$T/err")"
grep -q 'too many parameters (at most 63)' "$T/err" && ok || bad "64 params: $(cat "$T/err")"
# --datadir; no node argument: the default data directory, $HOME/.devp2p-c
# (a method's name is never taken for the node)
out=$("$D" attach --datadir "$T" admin_peers 2>"$T/err") && ok || bad "attach --datadir: $(cat "$T/err")"
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d=={"method":"admin_peers","params":[]}, d' && ok || bad "--datadir result: $out"
mkdir "$T/home" && ln -s "$T" "$T/home/.devp2p-c"
out=$(HOME="$T/home" "$D" attach admin_removePeer enode://abc@127.0.0.1:1 2>"$T/err") && ok || bad "attach (default datadir): $(cat "$T/err")"
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d=={"method":"admin_removePeer","params":["enode://abc@127.0.0.1:1"]}, d' && ok || bad "default datadir result: $out"
HOME="$T/nohome" "$D" attach admin_peers >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && grep -qF "cannot connect to $T/nohome/.devp2p-c/devp2pd.ipc" "$T/err" && ok || bad "attach (missing default datadir): $(cat "$T/err")"
# an argument that is not UTF-8 cannot be a JSON string: refused, nothing sent
for a in "admin_addPeer $(printf 'x\377')" "$(printf 'm\377')"; do
    # shellcheck disable=SC2086
    "$D" attach "$T" $a >"$T/out" 2>"$T/err"
    [ $? -eq 2 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q 'not valid UTF-8' "$T/err" &&
        [ ! -s "$T/out" ] && ok || bad "non-UTF-8 argument: $(cat "$T/err" "$T/out")"
done
printf 'first 1 2\n\n{"method":"raw","params":{"k":1}}\nesc "a\\\\" 5 "b\\" c"\nm x\377\nfail\nexit\nnever\n' | "$D" attach "$T" >"$T/inter" 2>"$T/err"
[ $? -eq 1 ] && ok || bad "interactive status (an error reply was in it)"
grep -q 'not valid UTF-8' "$T/err" && ok || bad "interactive non-UTF-8 line: $(cat "$T/err")"
python3 - "$T/inter" <<'PY' && ok || bad "interactive output: $(cat "$T/inter")"
import json, sys
dec = json.JSONDecoder(); t = open(sys.argv[1]).read(); out = []; i = 0
while i < len(t):
    if t[i].isspace(): i += 1; continue
    v, i = dec.raw_decode(t, i); out.append(v)
# a backslash inside quotes escapes the next character: "a\\" ends at its
# second quote, "b\" c" runs to the last one
assert out == [{"method": "first", "params": [1, 2]}, {"method": "raw", "params": {"k": 1}},
               {"method": "esc", "params": ["a\\", 5, "b\" c"]}], out
PY

# A peer that answers every request with a stream of replies bearing other
# ids (one every 20 ms, for up to 20 s) does not hold the client: one
# --timeout deadline covers the whole call.
python3 - "$T/stream.ipc" <<'PY' &
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(1)
s.settimeout(20)
try:
    c, _ = s.accept()
    c.recv(65536)
    end = time.time() + 20
    n = 1000
    while time.time() < end:
        c.sendall(json.dumps({"jsonrpc": "2.0", "id": n, "result": "stale"}).encode() + b"\n")
        n += 1
        time.sleep(0.02)
except (OSError, socket.timeout):
    pass
PY
spid=$!
wait_until 100 [ -S "$T/stream.ipc" ]
t0=$(date +%s%N)
timeout 30 "$D" attach --timeout 1 "$T/stream.ipc" admin_peers >"$T/out" 2>"$T/err"
st=$?
ms=$((($(date +%s%N) - t0) / 1000000))
kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
[ "$st" -ne 0 ] && [ "$st" -ne 124 ] && ok || bad "streamed wrong ids: exit status $st"
[ "$ms" -lt 5000 ] && ok || bad "streamed wrong ids: gave up after $ms ms (--timeout 1)"
[ "$(wc -l <"$T/err")" -eq 1 ] && grep -q 'timed out: no reply within --timeout' "$T/err" && ok ||
    bad "streamed wrong ids: error '$(cat "$T/err")'"
[ ! -s "$T/out" ] && ok || bad "streamed wrong ids printed: $(head -3 "$T/out")"

# A node that takes the connection but never reads it (stopped, hung, a
# debugger on it): a request larger than the socket buffer does not hold
# the client past --timeout (the socket was blocking: its send waited
# forever).  A node that accepts no connection at all, its listen backlog
# full, does not either (the connect waited forever).
python3 - "$T/deaf.ipc" "$T/full.ipc" <<'PY' &
import socket, sys, time
d = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
d.bind(sys.argv[1])
d.listen(1)
d.settimeout(20)
f = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
f.bind(sys.argv[2])
f.listen(0)  # one connection waits in the backlog, the next finds it full
try:
    c, _ = d.accept()
    time.sleep(20)
except (OSError, socket.timeout):
    pass
PY
dpid=$!
wait_until 100 [ -S "$T/full.ipc" ]
for k in 1 2; do # the first one fills the backlog
    t0=$(date +%s%N)
    timeout 30 "$D" attach --timeout 1 "$T/full.ipc" admin_peers >"$T/out" 2>"$T/err"
    st=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    [ "$st" -eq 1 ] && [ "$ms" -lt 5000 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && [ ! -s "$T/out" ] &&
        ok || bad "full backlog ($k): exit status $st after $ms ms (--timeout 1): $(cat "$T/err")"
done
grep -q 'accepted no connection within --timeout' "$T/err" && ok || bad "full backlog: error '$(cat "$T/err")'"
big=$(head -c 100000 /dev/zero | tr '\0' a)
t0=$(date +%s%N)
timeout 30 "$D" attach --timeout 1 "$T/deaf.ipc" admin_addPeer "$big" "$big" "$big" >"$T/out" 2>"$T/err"
st=$?
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$st" -eq 1 ] && [ "$ms" -lt 5000 ] && ok || bad "node that does not read: exit status $st after $ms ms (--timeout 1)"
[ "$(wc -l <"$T/err")" -eq 1 ] && grep -q 'cannot send the request: timed out' "$T/err" && ok ||
    bad "node that does not read: error '$(cat "$T/err")'"
[ ! -s "$T/out" ] && ok || bad "node that does not read: printed $(head -c 200 "$T/out")"
kill "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null

echo "test_attach: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
