#!/bin/sh
# tests/tools/test_hostile_local.sh DEVP2PD: hostile clients of devp2pd's
# local endpoints (SECURITY.md matrix).  Admin JSON-RPC (<datadir>/devp2pd.ipc):
# malformed JSON gets a -32700 parse error and that connection is closed,
# also when the input ends inside a value or with a stray byte;
# more than 1 MiB of input without a complete JSON value gets a -32600
# error naming the limit and closes that connection; notifications (no "id") get no reply, an empty batch a
# -32600 error, a batch of more than 100 requests too; 100 requests sent
# at once, then a half-close, get 100; a client that does not read its
# answers does not delay another client's
# replies; with 16 idle clients held a 17th is answered (the longest-idle
# one is closed for it); afterwards a fresh client is answered; 1100
# admin_addPeer and admin_addTrustedPeer calls fill each set to its limit
# of 1024 and the rest are refused, naming it.  Prometheus endpoint:
# a request head over 4096 bytes gets 400; HEAD gets the head of the GET
# response and no body, other methods 405 with Allow: GET, HEAD; a client
# that sends more than its head and reads slowly gets the whole response
# (trailing input); an idle client is cut off after
# its 2 s head deadline and a scrape meanwhile is served at once, also
# beside 8 idle connections; a head with a NUL byte gets 400.  The datadir is mode 0700 and the
# node key 0600.  Remote peers whose Hello carries a client name or a
# capability name that is not UTF-8 (bytes ff fe), or a 100-byte name of
# two-byte characters (cut at 63 bytes), are listed by admin_peers with
# '?' for each invalid byte and the name cut on a character boundary.
# Ends with SIGTERM: status 0, no sanitizer report.
set -u
N=$1
T=$(mktemp -d)
npid= hpids=
cleanup() {
    [ -n "$npid" ] && kill -9 "$npid" 2>/dev/null
    for p in $hpids; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
. "$(dirname "$0")/lib_stop.sh"

"$N" --datadir "$T/node" --port 0 --addr 127.0.0.1 --nodiscover --nodial --caps snap/1 \
    --metrics.addr 127.0.0.1 --metrics.port 0 --verbosity 2 >"$T/out" 2>"$T/err" &
npid=$!
wait_until 300 has_line "$T/out" '^enr: ' && ok || { bad "node did not start: $(cat "$T/err")"; exit 1; }
MURL=$(sed -n 's/^metrics: //p' "$T/out")
ENODE=$(sed -n 's/^enode: //p' "$T/out")
[ "$(stat -c %a "$T/node")" = 700 ] && ok || bad "datadir mode $(stat -c %a "$T/node")"
[ "$(stat -c %a "$T/node/nodekey")" = 600 ] && ok || bad "nodekey mode $(stat -c %a "$T/node/nodekey")"

python3 - "$T/node/devp2pd.ipc" <<'PY' && ok || bad "admin RPC hostile clients"
import json, socket, sys, time
path = sys.argv[1]

def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s

def reply(s):
    buf = b""
    dec = json.JSONDecoder()
    while True:
        chunk = s.recv(65536)
        assert chunk, "closed before a reply"
        buf += chunk
        try:
            obj, _ = dec.raw_decode(buf.decode())
            return obj
        except ValueError:
            continue

def read_to_eof(s):
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            return data
        data += d

def closed(s, within):
    s.settimeout(within)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False

# malformed JSON: a parse error, then that connection is closed (the
# stream cannot be resynchronised); a new connection is served
s = conn()
s.sendall(b'{"jsonrpc": "2.0", "id": 1, "method": ]\n')
r = reply(s)
assert r["error"]["code"] == -32700, r
assert closed(s, 5), "not closed after a parse error"
s.close()
# malformed at the very end of the input (an unfinished value, a stray
# byte after a request), then a half-close: the parse error is still
# answered before the connection is closed
for tail in (b'{"jsonrpc": "2.0", "id": 1, "method": "admin_pe', b'{"id": 1, "method": "admin_peers"}]'):
    s = conn()
    s.sendall(tail)
    s.shutdown(socket.SHUT_WR)
    data = read_to_eof(s)
    s.close()
    codes = [json.loads(l).get("error", {}).get("code") for l in data.split(b"\n") if l]
    assert codes and codes[-1] == -32700, "truncated input %r: %r" % (tail[-8:], data)
s = conn()
s.sendall(b'{"jsonrpc":"2.0","id":2,"method":"admin_nodeInfo","params":[]}\n')
r = reply(s)
assert r["id"] == 2 and r["result"]["enode"].startswith("enode://"), r
s.close()

# an unterminated string of more than 1 MiB: a -32600 error that says
# why (oversized input), then the connection is closed
s = conn()
try:
    s.sendall(b'{"jsonrpc": "2.0", "method": "' + b"a" * (1 << 20) + b"a" * 65536)
except (BrokenPipeError, ConnectionResetError):
    pass
data = b""
try:
    while len(data) < 4096:
        d = s.recv(4096)
        if not d:
            break
        data += d
except (ConnectionResetError, BrokenPipeError):
    pass
assert data.startswith(b"{") and json.loads(data.split(b"\n")[0])["error"]["code"] == -32600 \
    and b"1048576" in data, ("oversized input: no error", data[:300])
assert closed(s, 10), "oversized input not closed"
s.close()

# JSON-RPC 2.0: a notification (no "id") gets no reply, not even in a
# batch (a batch of notifications gets nothing at all); an empty batch is
# one -32600 error object
s = conn()
s.sendall(b'{"jsonrpc":"2.0","method":"admin_nodeInfo"}'
          b'[{"jsonrpc":"2.0","method":"admin_peers"}]'
          b'[{"jsonrpc":"2.0","method":"admin_peers"},{"jsonrpc":"2.0","id":4,"method":"admin_peers"}]'
          b'{"jsonrpc":"2.0","id":5,"method":"admin_peers"}')
r = reply(s)
assert r == [{"jsonrpc": "2.0", "id": 4, "result": []}], "notification answered: %r" % r
s.close()
s = conn()
s.sendall(b'{"jsonrpc":"2.0","method":"admin_nodeInfo"}{"jsonrpc":"2.0","id":5,"method":"admin_peers"}')
r = reply(s)
assert r.get("id") == 5, "notification answered: %r" % r
s.sendall(b'[]')
r = reply(s)
assert isinstance(r, dict) and r["error"]["code"] == -32600 and r["id"] is None, "empty batch: %r" % r
s.close()

# a batch of ADMIN_RPC_BATCH_MAX (100) requests is answered whole; one of
# 101 is refused with one -32600 error and none of it runs (a 1 MiB batch
# would otherwise build ~30000 answers, hundreds of MiB, in one go)
s = conn()
s.sendall(b"[" + b",".join(b'{"jsonrpc":"2.0","id":%d,"method":"admin_nodeInfo"}' % i
                           for i in range(100)) + b"]")
r = reply(s)
assert isinstance(r, list) and [x["id"] for x in r] == list(range(100)), "batch of 100: %r" % r[:2]
s.sendall(b"[" + b",".join(b'{"jsonrpc":"2.0","id":%d,"method":"admin_nodeInfo"}' % i
                           for i in range(101)) + b"]")
r = reply(s)
assert isinstance(r, dict) and r["error"]["code"] == -32600 and r["id"] is None, \
    "batch of 101: %r" % (r[:2] if isinstance(r, list) else r)
s.sendall(b'{"jsonrpc":"2.0","id":7,"method":"admin_peers"}')
r = reply(s)
assert r["id"] == 7 and r["result"] == [], "after a refused batch: %r" % r
s.close()

# a client that sends requests but does not read the answers holds
# nobody else up: another client is answered at once, and the first one
# gets every answer once it reads
a = conn()
a.setblocking(False)
req = b"".join(b'{"jsonrpc":"2.0","id":%d,"method":"admin_nodeInfo"}' % i for i in range(3000))
sent, t0 = 0, time.time()
while sent < len(req) and time.time() - t0 < 3:
    try:
        sent += a.send(req[sent:])
    except BlockingIOError:
        time.sleep(0.01)
time.sleep(0.3)
b = conn()
t0 = time.time()
b.sendall(b'{"jsonrpc":"2.0","id":8,"method":"admin_peers"}')
r = reply(b)
took = time.time() - t0
assert r["id"] == 8 and took < 2, "beside a client that does not read: %.2f s" % took
b.close()
a.setblocking(True)
a.settimeout(10)
data = b""
while data.count(b"\n") < 3000:
    d = a.recv(1 << 20)
    assert d, "non-reading client closed after %d answers" % data.count(b"\n")
    data += d
ids = [json.loads(l)["id"] for l in data.split(b"\n") if l]
assert ids == list(range(3000)), "non-reading client: %d answers" % len(ids)
a.close()

# 100 requests in one send, then a half-close: all 100 are answered (the
# serve budget per wake-up does not strand buffered requests), then closed
s = conn()
s.sendall(b"".join(b'{"jsonrpc":"2.0","id":%d,"method":"admin_nodeInfo"}' % i
                   for i in range(100)))
s.shutdown(socket.SHUT_WR)
data = read_to_eof(s)
s.close()
ids = [json.loads(l)["id"] for l in data.split(b"\n") if l]
assert ids == list(range(100)), "half-closed client: %d replies" % len(ids)

# 16 idle clients (leaked connections) cannot lock users out: a 17th is
# served, and the longest-idle one is closed to make room
held = []
for _ in range(16):
    held.append(conn())
    time.sleep(0.05)
time.sleep(0.5)
extra = conn()
extra.sendall(b'{"jsonrpc":"2.0","id":17,"method":"admin_nodeInfo"}')
r = reply(extra)
assert r["id"] == 17 and "result" in r, "17th client: %r" % r
assert closed(held[0], 5), "the longest-idle client was not closed"
extra.close()
for h in held[1:]:
    h.sendall(b'{"jsonrpc":"2.0","id":1,"method":"admin_peers"}')
    assert reply(h)["id"] == 1, "a held client was closed"
for h in held:
    h.close()
# the eviction is counted where an operator looks: admin_metrics
s = conn()
s.sendall(b'{"jsonrpc":"2.0","id":4,"method":"admin_metrics"}')
ep = reply(s)["result"]["endpoints"]
assert ep["adminEvictions"] == 1 and ep["adminAcceptPauses"] == 0, ep
assert ep["metricsAcceptPauses"] == 0, ep
s.close()
s = conn()
s.sendall(b'{"jsonrpc":"2.0","id":3,"method":"admin_peers","params":[]}')
r = reply(s)
assert r["id"] == 3 and r["result"] == [], r
s.close()

# admin_addPeer and admin_addTrustedPeer past the sets' limit (1024 nodes
# each; 1100 distinct valid nodes, 11 batches): the rest are refused with
# an error naming the limit (or, queued while the set filled, dropped and
# counted); each set holds exactly 1024 and counts 76 refused
PRIME = 2**256 - 2**32 - 977
GX = 0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798
GY = 0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8

def ec_add(a, b):
    if a == b:
        l = 3 * a[0] * a[0] * pow(2 * a[1], PRIME - 2, PRIME) % PRIME
    else:
        l = (b[1] - a[1]) * pow(b[0] - a[0], PRIME - 2, PRIME) % PRIME
    x = (l * l - a[0] - b[0]) % PRIME
    return (x, (l * (a[0] - x) - a[1]) % PRIME)

urls, pt = [], (GX, GY)
for _ in range(1101):
    urls.append("enode://%064x%064x@127.0.0.1:9" % pt)
    pt = ec_add(pt, (GX, GY))
s = conn()
for method, gauge, counter in (("admin_addPeer", "staticNodes", "staticFull"),
                               ("admin_addTrustedPeer", "trustedNodes", "trustedFull")):
    res = []
    for lo in range(0, 1100, 100):
        s.sendall(json.dumps([{"jsonrpc": "2.0", "id": i, "method": method, "params": [urls[i]]}
                              for i in range(lo, lo + 100)]).encode())
        res += reply(s)
    added = sum(1 for x in res if x.get("result") is True)
    errs = [x["error"]["message"] for x in res if "error" in x]
    assert added + len(errs) == 1100 and added >= 1024, "%s: %d added, %d errors" % (
        method, added, len(errs))
    assert all("set full (1024 nodes)" in e for e in errs), "%s: %r" % (method, errs[:3])
    for _ in range(100):
        s.sendall(b'{"jsonrpc":"2.0","id":9,"method":"admin_metrics"}')
        srv = reply(s)["result"]["server"]
        if srv[gauge] == 1024 and srv[counter] == 76:
            break
        time.sleep(0.05)
    assert srv[gauge] == 1024 and srv[counter] == 76, "%s: %r" % (method, srv)
    s.sendall(json.dumps({"jsonrpc": "2.0", "id": 5, "method": method,
                          "params": [urls[1100]]}).encode())
    r = reply(s)
    assert "set full (1024 nodes)" in r["error"]["message"], "%s past the limit: %r" % (method, r)
s.close()
PY

python3 - "$MURL" <<'PY' && ok || bad "metrics hostile clients"
import socket, sys, time, urllib.parse, urllib.request
u = urllib.parse.urlparse(sys.argv[1])
addr = (u.hostname, u.port)

def exchange(raw, rcvbuf=0, pause=0.0):
    """Sends raw, reads to the end: the response, "<reset>" after it if
    the connection was reset."""
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(addr)
    try:
        s.sendall(raw)
    except (BrokenPipeError, ConnectionResetError):
        pass
    time.sleep(pause)
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except ConnectionResetError:
        data += b"<reset>"
    s.close()
    return data

def status(raw):
    return exchange(raw).split(b"\r\n", 1)[0]

# a head over 4096 bytes without its end
assert status(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 5000) .startswith(b"HTTP/1.1 400"), "oversized head"
# a NUL byte in the head
assert status(b"GET /metrics\x00 HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400"), "NUL in head"

def response(raw, rcvbuf=0, pause=0.0):
    head, _, body = exchange(raw, rcvbuf, pause).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    fields = dict(l.split(b": ", 1) for l in lines[1:] if b": " in l)
    return lines[0], fields, body

# HEAD (RFC 9110 9.1, 9.3.2): the head of the GET response, no body
st, f, body = response(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
assert st == b"HTTP/1.1 200 OK" and int(f[b"Content-Length"]) > 1000 and body == b"", ("HEAD", st, f, body[:100])
st, f, body = response(b"HEAD /nope HTTP/1.1\r\n\r\n")
assert st.startswith(b"HTTP/1.1 404") and body == b"", ("HEAD 404", st, body[:100])
# other methods: 405 naming the allowed ones (RFC 9110 15.5.6)
st, f, body = response(b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
assert st.startswith(b"HTTP/1.1 405") and f.get(b"Allow") == b"GET, HEAD", ("405 Allow", st, f)
# trailing input: a client that sends more than its head (a pipelined
# request, a body) and reads slowly gets the whole response, not a reset
# that drops its end
for extra in (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 8000 + b"\r\n\r\n",
              b"x" * 100000):
    st, f, body = response(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" + extra, rcvbuf=4096, pause=0.5)
    assert st == b"HTTP/1.1 200 OK" and len(body) == int(f[b"Content-Length"]), \
        ("trailing input", st, f, len(body), body[-40:])
# an idle client is cut off at its 2 s head deadline and does not delay
# a scrape
idle = socket.create_connection(addr, timeout=10)
t0 = time.monotonic()
body = urllib.request.urlopen(sys.argv[1], timeout=10).read()
el = time.monotonic() - t0
assert b"devp2p_peers" in body, body[:200]
assert el < 5, el
# and in the scrape, with the endpoints' other counters
for line in (b"devp2p_admin_evictions_total 1\n", b"devp2p_admin_accept_pauses_total 0\n",
             b"devp2p_metrics_accept_pauses_total 0\n"):
    assert line in body, (line, body[-600:])
idle.settimeout(5)
assert idle.recv(100) == b"", "idle client not closed"
idle.close()
# 8 idle connections open at once do not delay a scrape: it is served
# within 3 s (each idle one would hold a one-at-a-time server for 2 s)
idles = [socket.create_connection(addr, timeout=10) for _ in range(8)]
time.sleep(0.2)
t0 = time.monotonic()
body = urllib.request.urlopen(sys.argv[1], timeout=3).read()
assert b"devp2p_peers" in body, body[:200]
print("scrape beside 8 idle connections: %.2f s" % (time.monotonic() - t0))
for i in idles:
    i.settimeout(5)
    assert i.recv(100) == b"", "idle connection not closed at its deadline"
    i.close()
PY

# peers with hostile names dial the node (it lists every peer it counts)
BADNAME=$(printf '\377\376')
LONGNAME=$(printf '\303\251%.0s' $(seq 50)) # 50 x U+00E9: 100 bytes
"$N" --datadir "$T/h1" --port 0 --addr 127.0.0.1 --nodiscover --staticnodes "$ENODE" \
    --identity "$BADNAME" --caps "$BADNAME/1,snap/1" --verbosity 2 >"$T/h1.out" 2>"$T/h1.err" &
hpids="$hpids $!"
"$N" --datadir "$T/h2" --port 0 --addr 127.0.0.1 --nodiscover --staticnodes "$ENODE" \
    --identity "$LONGNAME" --caps snap/1 --verbosity 2 >"$T/h2.out" 2>"$T/h2.err" &
hpids="$hpids $!"
python3 - "$T/node/devp2pd.ipc" <<'PY' && ok || bad "admin_peers with hostile peer names"
import json, socket, sys, time
path = sys.argv[1]

def call(method):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    s.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method}).encode())
    buf = b""
    dec = json.JSONDecoder()
    while True:
        chunk = s.recv(65536)
        assert chunk, "closed before a reply"
        buf += chunk
        try:
            obj, _ = dec.raw_decode(buf.decode())
            s.close()
            return obj
        except ValueError:
            continue

deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    if call("admin_metrics")["result"]["server"]["peers"] == 2:
        break
    time.sleep(0.2)
else:
    sys.exit("the hostile peers did not connect")
r = call("admin_peers")
peers = r.get("result")
assert isinstance(peers, list) and len(peers) == 2, r
names = sorted(p["name"] for p in peers)
long_name = "\u00e9" * 50
assert names[0] == "??", names
assert long_name.startswith(names[1]) and len(names[1].encode()) == 62, names
bad = [p for p in peers if p["name"] == "??"][0]
assert sorted(bad["caps"]) == ["??/1", "snap/1"], bad["caps"]
PY

for p in $hpids; do
    term_wait "$p" 30 "hostile-name peer"
    [ $rc -eq 0 ] && ok || bad "hostile-name peer exited $rc after SIGTERM"
done
hpids=
grep -Eq 'ERROR: AddressSanitizer|WARNING: ThreadSanitizer|runtime error:|LeakSanitizer' "$T/h1.err" "$T/h2.err" &&
    bad "sanitizer report (hostile-name peers): $(head -40 "$T/h1.err" "$T/h2.err")" || ok
term_wait "$npid" 30 "node"
npid=
[ $rc -eq 0 ] && ok || bad "node exited $rc after SIGTERM: $(tail -20 "$T/err")"
grep -Eq 'ERROR: AddressSanitizer|WARNING: ThreadSanitizer|runtime error:|LeakSanitizer' "$T/err" &&
    bad "sanitizer report: $(head -40 "$T/err")" || ok
echo "hostile-local: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
