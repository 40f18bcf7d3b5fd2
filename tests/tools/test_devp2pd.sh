#!/bin/sh
# tests/tools/test_devp2pd.sh DEVP2PD DEVP2P: the node daemon on loopback:
# first run creates the datadir and key and prints its enode and ENR (the
# same node), with one warning when discovery has no bootnodes; the key is
# reused on restart; the admin JSON-RPC methods answer over the IPC socket
# (addPeer connects, removePeer disconnects); `devp2p rlpx ping` gets its
# Hello; a second node bootstrapped from it is found by `devp2p discv4
# crawl`; addPeer/removePeer with a third node that runs without discovery;
# rlpx ping escapes a remote's control bytes in its client and cap names;
# SIGTERM stops it cleanly; bad input (unknown flag, malformed
# bootnode, a second node on the same datadir, TCP port in use,
# unreadable datadir, bad --metrics.addr/--metrics.port, metrics port in
# use) is one line on stderr and a non-zero exit; --metrics.addr serves
# Prometheus text on /metrics (404 elsewhere, 400 for malformed requests);
# a static node that does not become a peer is logged with the reason,
# one that can never be dialled (self, port 0, outside --netrestrict) too;
# at --verbosity 5 the discovery table's changes and lookups are logged.
set -u
N=$1 D=$2
. "$(dirname "$0")/lib_check.sh"
start() { # start NAME ARGS...: node_start, and $ENR too
    node_start "$@"
    ENR=$(sed -n 's/^enr: //p' "$T/$name.out")
}
reject() { # reject CMD...: non-zero (not the timeout's 124) and exactly one stderr line
    timeout -k 5 10 "$@" >"$T/rout" 2>"$T/rerr"
    rc=$?
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ "$(wc -l <"$T/rerr")" -eq 1 ] && grep -q '^devp2pd: ' "$T/rerr"; then ok; else
        bad "$* exited $rc: $(cat "$T/rerr")"
    fi
}

start a --datadir "$T/a" --metrics.addr 127.0.0.1 --metrics.port 0
[ -n "$ENODE" ] && [ -n "$ENR" ] && ok || { bad "node a did not start: $(cat "$T/a.err")"; exit 1; }
A_ENODE=$ENODE A_PID=$pid
# no --bootnodes: one warning that says how to join a network
[ "$(grep -c 'No bootnodes: .*--bootnodes' "$T/a.err")" = 1 ] && ok || bad "no bootnodes warning: $(cat "$T/a.err")"
[ -f "$T/a/nodekey" ] && [ "$(stat -c %a "$T/a/nodekey")" = 600 ] && ok || bad "no nodekey"
ID=$("$D" key to-id "$T/a/nodekey")
"$D" enrdump "$ENR" >"$T/dump" && grep -q "^node id:   $ID" "$T/dump" && ok || bad "ENR is not our node: $(cat "$T/dump")"
PUB=${ENODE#enode://}; PUB=${PUB%%@*}
grep -q "^enode:     enode://$PUB@127.0.0.1:" "$T/dump" && ok || bad "ENR endpoint: $(cat "$T/dump")"

timeout 20 "$D" rlpx ping "$ENODE" >"$T/hello" 2>"$T/err" && ok || bad "rlpx ping: $(cat "$T/err")"
grep -q '^  client:      devp2p-c/' "$T/hello" && ok || bad "hello: $(cat "$T/hello")"
timeout 20 "$D" discv4 ping "$ENODE" >/dev/null 2>"$T/err" && ok || bad "discv4 ping: $(cat "$T/err")"
# debug_trace needs --trace, and says so
timeout 20 "$D" attach "$T/a" debug_trace false >/dev/null 2>"$T/err"
[ $? -eq 1 ] && grep -q 'error -32000: .*--trace' "$T/err" && ok || bad "debug_trace without --trace: $(cat "$T/err")"

reject "$N" --datadir "$T/a" --port 0
TCP=${ENODE##*:}; TCP=${TCP%%\?*}
reject "$N" --datadir "$T/c" --port "$TCP"
reject "$N" --datadir "$T/d" --bogus
reject "$N" --datadir "$T/d" --port 0 --bootnodes enode://nothex@127.0.0.1:1
reject "$N" --datadir "$T/d" --port 0 --nodekeyhex 1234
printf 'x' >"$T/file"
reject "$N" --datadir "$T/file/sub" --port 0

start b --datadir "$T/b" --bootnodes "$A_ENODE" --verbosity 5
[ -n "$ENODE" ] && ok || bad "node b did not start: $(cat "$T/b.err")"
! grep -q 'No bootnodes' "$T/b.err" && ok || bad "bootnodes warning with --bootnodes: $(cat "$T/b.err")"
B_PUB=${ENODE#enode://}; B_PUB=${B_PUB%%@*}
# at trace level the discovery table's changes are logged: a's node entered
# (waited for: the first lookup ends about 1 s after the start, later on a
# loaded machine)
A8=$(echo "$ID" | cut -c1-8)
table_logged() {
    grep -q "Added node to the discovery table *id=$A8 dist=[0-9]* ip=127.0.0.1 udp=[1-9]" "$T/b.err" &&
        grep -q "Discovery lookup done *lookup=[0-9]* results=[1-9]" "$T/b.err"
}
wait_until 150 table_logged && ok ||
    bad "no discovery table log lines at --verbosity 5: $(grep -v DEBUG "$T/b.err" | head -20)"
timeout 30 "$D" discv4 crawl --bootnodes "$A_ENODE" --timeout 15 >"$T/crawl" 2>"$T/err" && ok || bad "crawl: $(cat "$T/err")"
grep -q "$B_PUB" "$T/crawl" && grep -q "$PUB" "$T/crawl" && ok || bad "crawl did not find both nodes: $(cat "$T/crawl")"
timeout 30 "$D" discv4 crawl --bootnodes "$A_ENODE" --timeout 4 --json >"$T/crawl.json" 2>"$T/err" && ok || bad "crawl --json: $(cat "$T/err")"
python3 - "$T/crawl.json" "$PUB" "$B_PUB" <<'PY' && ok || bad "crawl --json output: $(cat "$T/crawl.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["discovered"] == len(d["nodes"]) >= 2 and d["alive"] >= 2, d
for pub in sys.argv[2:]:
    n = [x for x in d["nodes"] if pub in x["enode"]]
    assert len(n) == 1 and n[0]["alive"] is True and isinstance(n[0]["found"], int), d
PY

# addPeer/removePeer against C, a node without discovery (A and B find and
# dial each other by themselves, so B would already be a dynamic peer of A)
start c --datadir "$T/e" --nodiscover
[ -n "$ENODE" ] && ok || bad "node c did not start: $(cat "$T/c.err")"
! grep -q 'No bootnodes' "$T/c.err" && ok || bad "bootnodes warning with --nodiscover: $(cat "$T/c.err")"
C_PUB=${ENODE#enode://}; C_PUB=${C_PUB%%@*}

# admin JSON-RPC over <datadir>/devp2pd.ipc (geth's shapes)
"$D" attach "$T/a" admin_nodeInfo >"$T/info" 2>"$T/err" && ok || bad "admin_nodeInfo: $(cat "$T/err")"
python3 - "$T/info" "$ID" "$A_ENODE" <<'PY' && ok || bad "nodeInfo: $(cat "$T/info")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["id"] == sys.argv[2] and d["enode"] == sys.argv[3], d
assert d["enr"].startswith("enr:") and d["ports"]["listener"] > 0 and d["ports"]["discovery"] > 0
assert d["name"].startswith("devp2p-c/") and "listenAddr" in d and "protocols" in d
PY
"$D" attach "$T/a" admin_addPeer "$ENODE" >"$T/add" 2>"$T/err" && grep -qx true "$T/add" && ok || bad "admin_addPeer: $(cat "$T/err")"
wait_until 100 lists_peer "$T/a" "$C_PUB" "$T/peers"
"$D" attach "$T/a" admin_peers >"$T/peers" 2>&1
python3 - "$T/peers" "$C_PUB" <<'PY' && ok || bad "admin_peers after addPeer: $(cat "$T/peers")"
import json, sys
d = json.load(open(sys.argv[1]))
p = [x for x in d if sys.argv[2] in x["enode"]]
assert len(p) == 1, d
n = p[0]["network"]
assert n["static"] is True and n["inbound"] is False and n["remoteAddress"].startswith("127.0.0.1:")
assert p[0]["name"].startswith("devp2p-c/") and "caps" in p[0] and "id" in p[0]
PY
"$D" attach "$T/a" admin_removePeer "$ENODE" >/dev/null 2>"$T/err" && ok || bad "admin_removePeer: $(cat "$T/err")"
c_unlisted() { ! lists_peer "$T/a" "$C_PUB" "$T/peers"; }
wait_until 100 c_unlisted && ok || bad "peer still connected after removePeer"
"$D" attach "$T/a" admin_addTrustedPeer "$ENODE" >/dev/null 2>&1 && ok || bad "admin_addTrustedPeer"
"$D" attach "$T/a" admin_removeTrustedPeer "$ENODE" >/dev/null 2>&1 && ok || bad "admin_removeTrustedPeer"
"$D" attach "$T/a" discv4_table >"$T/table" 2>&1 && grep -q '"buckets"' "$T/table" && ok || bad "discv4_table: $(head -3 "$T/table")"
"$D" attach "$T/a" admin_metrics >"$T/metrics" 2>&1 && grep -q '"peersAdded": [1-9]' "$T/metrics" && ok || bad "admin_metrics: $(cat "$T/metrics")"
# Prometheus endpoint (--metrics.addr, port 0: printed as "metrics: URL")
MURL=$(sed -n 's/^metrics: //p' "$T/a.out")
# admin_metrics carries every server, discovery-core, endpoint and resolver
# counter of the Prometheus text (camelCase keys), at most the value read
# just after it, and the disconnects by reason name (removePeer above sent
# one)
"$D" attach "$T/a" admin_metrics >"$T/metrics" 2>&1
python3 - "$MURL" "$T/metrics" <<'PY' && ok || bad "admin_metrics against /metrics: $(cat "$T/metrics")"
import json, re, sys, urllib.request
adm = json.load(open(sys.argv[2]))
body = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode()
prom = dict(re.findall(r"^devp2p_([a-z0-9_]+)_total ([0-9]+)$", body, re.M))
camel = lambda n: re.sub(r"_([a-z])", lambda m: m.group(1).upper(), n)
srv, core, ep, res = adm["server"], adm["discovery"]["core"], adm["endpoints"], adm["resolver"]
nsrv = ncore = nep = nres = 0
for name, v in prom.items():
    if name.startswith("discovery_core_"):
        k = name[len("discovery_core_"):]
        assert k in core and core[k] <= int(v), (name, core.get(k), v)
        ncore += 1
    elif name.startswith(("admin_", "metrics_")):
        k = camel(name)
        assert k in ep and ep[k] <= int(v), (name, k, ep.get(k), v)
        nep += 1
    elif name.startswith("resolver_"):
        k = camel(name)
        assert k in res and res[k] <= int(v), (name, k, res.get(k), v)
        nres += 1
    elif not name.startswith(("discovery_", "mailbox_", "process_")):
        k = {"send_toobig": "sendTooBig"}.get(name, camel(name))
        assert k in srv and srv[k] <= int(v), (name, k, srv.get(k), v)
        nsrv += 1
assert nsrv >= 30 and ncore >= 40 and nep == 3 and nres == 5, (nsrv, ncore, nep, nres)
assert srv["disconnectsSent"].get("disconnect requested", 0) >= 1, srv
assert "inboundRestricted" in srv and "findnode_partial" in core and "tableLen" in adm["discovery"]
by = srv["candidatesSkippedBy"]
assert isinstance(by, dict) and all(isinstance(v, int) and v > 0 for v in by.values()), by
for reason, v in by.items():
    line = 'devp2p_candidates_skipped_by_reason_total{reason="%s"} ' % reason
    assert line in body and int(body.split(line)[1].split()[0]) >= v, (reason, v)
PY
python3 - "$MURL" <<'PY' && ok || bad "metrics endpoint $MURL"
import re, socket, sys, urllib.error, urllib.request
url = sys.argv[1]
for path in ("/metrics", "/debug/metrics/prometheus"):
    r = urllib.request.urlopen(url.replace("/metrics", path), timeout=10)
    assert r.status == 200, r.status
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
    body = r.read().decode()
    vals = dict(re.findall(r"^(devp2p_[a-z0-9_]+) ([0-9.e+]+)$", body, re.M))
    for name in ("devp2p_peers", "devp2p_process_resident_memory_bytes", "devp2p_process_threads",
                 "devp2p_process_open_fds", "devp2p_dials_total", "devp2p_discovery_rx_datagrams_total"):
        assert name in vals, (name, body[:300])
    assert float(vals["devp2p_peers_added_total"]) >= 1 and float(vals["devp2p_process_threads"]) >= 4, vals
    assert "# TYPE devp2p_peers gauge" in body and "# HELP devp2p_peers " in body
    assert re.search(r'^devp2p_mailbox_pushed_total\{mailbox="[^"]+"\} [0-9]+$', body, re.M)
try:
    urllib.request.urlopen(url.replace("/metrics", "/nope"), timeout=10)
    raise SystemExit("no 404")
except urllib.error.HTTPError as e:
    assert e.code == 404, e.code
host, port = url.split("/")[2].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=10)
s.sendall(b"garbage\r\n\r\n")
resp = s.recv(4096)
assert resp.startswith(b"HTTP/1.1 400 "), resp
s = socket.create_connection((host, int(port)), timeout=10)
s.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 5000 + b"\r\n\r\n")
resp = s.recv(4096)
assert resp.startswith(b"HTTP/1.1 400 "), resp
PY
MPORT=${MURL##*:}; MPORT=${MPORT%%/*}
reject "$N" --datadir "$T/m" --port 0 --verbosity 2 --metrics.addr 127.0.0.1 --metrics.port "$MPORT"
reject "$N" --datadir "$T/m" --port 0 --verbosity 2 --metrics.addr 300.1.2.3
reject "$N" --datadir "$T/m" --port 0 --verbosity 2 --metrics.addr 127.0.0.1 --metrics.port 70000
"$D" attach "$T/a" admin_addPeer "enode://bad" >/dev/null 2>"$T/err"
[ $? -ne 0 ] && grep -q 'error -32602' "$T/err" && ok || bad "bad addPeer: $(cat "$T/err")"
"$D" attach "$T/a" admin_nosuch >/dev/null 2>"$T/err"
[ $? -ne 0 ] && grep -q 'error -32601' "$T/err" && ok || bad "unknown method: $(cat "$T/err")"

# rlpx ping prints a remote's client and capability names with control
# and non-ASCII bytes escaped (\xNN), never raw to the terminal
start h --datadir "$T/h" --nodiscover --addr 127.0.0.1 --identity "$(printf 'x\033[2Jy')" \
    --caps "$(printf 'z\033[2J\377')/1,snap/1"
timeout 20 "$D" rlpx ping "$ENODE" >"$T/hhello" 2>"$T/err" && ok || bad "rlpx ping h: $(cat "$T/err")"
grep -qF '  client:      x\x1b[2Jy' "$T/hhello" && grep -q '^  caps:  .*z\\x1b\[2J\\xff/1' "$T/hhello" &&
    ! LC_ALL=C grep -q "$(printf '[\033\377]')" "$T/hhello" && ok ||
    bad "remote names not escaped: $(od -c "$T/hhello" | head -20)"
H_ENODE=$ENODE
term_wait "$pid" 10 "node h"

# a static node that does not become a peer says why at the default
# level: one refusing connections (node h, stopped), and one with no
# capability in common (node a, from a node that runs snap/1); the
# --staticnodes that can never be dialled as given (the node itself, TCP
# port 0, outside --netrestrict) are named when the node starts, as they
# are when admin_addPeer adds them
"$D" key generate "$T/s.key" >/dev/null
S_SELF=$("$D" key to-enode --tcp 1 "$T/s.key")
S_NOPORT=$("$D" key to-enode --hex --tcp 0 "$("$D" key generate)")
S_OUTSIDE=$("$D" key to-enode --hex --ip 10.0.0.1 "$("$D" key generate)")
"$N" --port 0 --datadir "$T/s" --nodekey "$T/s.key" --nodiscover --addr 127.0.0.1 --caps snap/1 \
    --netrestrict 127.0.0.0/8 --staticnodes "$H_ENODE,$A_ENODE,$S_SELF,$S_NOPORT,$S_OUTSIDE" \
    >"$T/s.out" 2>"$T/s.err" &
spid=$!
pids="$pids $spid"
# (read through cat: until the node's shell has created s.err, grep -c
# on it would print nothing, not a count)
two_static_lines() { [ "$(cat "$T/s.err" 2>/dev/null | grep -c 'Static peer not connected')" -ge 2 ]; }
wait_until 300 two_static_lines
grep -q 'Static peer not connected .*why="connect failed" by=network' "$T/s.err" && ok ||
    bad "no log line for the static node at a closed port: $(cat "$T/s.err")"
grep -q 'Static peer not connected .*why="useless peer" by=local' "$T/s.err" && ok ||
    bad "no log line for the useless static peer: $(cat "$T/s.err")"
for why in self no-port netrestrict; do
    grep -q "Static peer will not be dialled .*why=$why\$" "$T/s.err" && ok ||
        bad "no warning for the static node that will not be dialled ($why): $(cat "$T/s.err")"
done
term_wait "$spid" 10 "node s"

# SIGTERM: clean stop, exit 0; restart reuses the key
term_wait "$A_PID" 10 "node a"
[ $rc -eq 0 ] && ok || bad "node a exited $rc after SIGTERM: $(tail -3 "$T/a.err")"
[ ! -e "$T/a/devp2pd.ipc" ] && ok || bad "IPC socket left behind"
start a2 --datadir "$T/a"
[ "${ENODE%%@*}" = "enode://$PUB" ] && ok || bad "restart changed the node key: $ENODE"

echo "test_devp2pd: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
