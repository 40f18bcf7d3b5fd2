#!/bin/sh
# tests/tools/test_devp2pd_startup.sh DEVP2PD DEVP2P: devp2pd start-up on
# loopback: every flag value is checked before the data directory is
# touched (usage errors exit 2 with one stderr line and create nothing,
# with or without --bootnode; --identity over 256 bytes is one, as is an
# address no socket serves or no node reaches: a multicast or link-local
# IPv6 --addr or --metrics.addr, an unspecified --nat extip); more bootnodes than discovery keeps (32) is
# a usage error naming the limit, as is a 1025th --staticnodes or
# --trustednodes entry (1024 of each start); a dangling nodekey symlink is refused
# (exit 1, the link kept, no new key); with umask 002 and a 0755 datadir
# the admin socket and trace ring are 0600 and a warning names the
# datadir's mode; --trace sizes its rings from --maxpeers, --maxpendpeers
# and the trusted nodes (512 at least; too many is a usage error); a UDP port in use is named in the error; with --bootnode
# admin_nodeInfo's listenAddr has port 0; the key given with --nodekeyhex
# is not left in /proc/PID/cmdline; SIGTERM during start-up still stops the
# node cleanly (exit 0, no nodekey.tmp left); SIGHUP stops it, unless it
# was ignored when the node started (nohup).
set -u
N=$1 D=$2
. "$(dirname "$0")/lib_check.sh"
usage() { # usage CMD...: exit 2, exactly one stderr line, $T/fresh not created
    timeout 20 "$@" >"$T/rout" 2>"$T/rerr"
    rc=$?
    if [ $rc -eq 2 ] && [ "$(wc -l <"$T/rerr")" -eq 1 ] && grep -q '^devp2pd: ' "$T/rerr" &&
        [ ! -e "$T/fresh" ]; then ok; else
        bad "$* exited $rc: $(cat "$T/rerr") (created: $(ls "$T/fresh" 2>&1))"
    fi
    rm -rf "$T/fresh"
}

KEY=b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291
printf '%s\n' "$KEY" >"$T/key"
PUB=$("$D" key to-enode "$T/key" 2>/dev/null)
PUB=${PUB#enode://}; PUB=${PUB%%@*}
[ ${#PUB} -eq 128 ] && ok || bad "key to-enode: '$PUB'"

F=$T/fresh
usage "$N" --datadir "" --port 0
usage "$N" --datadir "$F" --port 0 --maxpeers abc
usage "$N" --datadir "$F" --port 0 --maxpendpeers -1
usage "$N" --datadir "$F" --port 0 --caps snap/1,eth/68,snap/1
grep -q 'lists snap/1 twice' "$T/rerr" && ok || bad "--caps snap/1 twice: $(cat "$T/rerr")"
usage "$N" --datadir "$F" --port 0 --bootnode --maxpeers abc
usage "$N" --datadir "$F" --port 0 --bootnode --nodiscover
# a boolean flag takes =true or =false (as geth's do), nothing else
usage "$N" --datadir "$F" --port 0 --bootnode --nodiscover=true
usage "$N" --datadir "$F" --port 0 --nodiscover=yes
grep -q 'flag --nodiscover takes no value (or =true, =false)' "$T/rerr" && ok || bad "--nodiscover=yes: $(cat "$T/rerr")"
usage "$N" --datadir "$F" --port 0 --nodekey "$T/key" --nodekeyhex "$KEY"
usage "$N" --datadir "$F" --port 0 --nodekeyhex 1234
usage "$N" --datadir "$F" --port 0 --bootnodes enode://nothex@127.0.0.1:1
usage "$N" --datadir "$F" --port 0 --nat any
# a node list file that is not there: named, with the reason
usage "$N" --datadir "$F" --port 0 --staticnodes "$T/missing/static-nodes.json"
grep -q "cannot read $T/missing/static-nodes.json: No such file" "$T/rerr" && ok || bad "missing list file: $(cat "$T/rerr")"
# a data directory whose admin socket path would not fit a sockaddr_un
LONG=$F/$(printf 'd%.0s' $(seq 100))
usage "$N" --datadir "$LONG" --port 0
grep -q 'too long for the admin socket' "$T/rerr" && ok || bad "long datadir: $(cat "$T/rerr")"
# an --addr that is not the machine's: the failure names it
timeout 20 "$N" --datadir "$T/addr" --addr 192.0.2.1 --port 0 >/dev/null 2>"$T/aerr"
[ $? -eq 1 ] && grep -q 'cannot listen on 192.0.2.1 TCP port 0: .*--addr' "$T/aerr" && ok ||
    bad "--addr 192.0.2.1: $(cat "$T/aerr")"
usage "$N" --datadir "$F" --port 0 --nat extip:nonsense
# the error quotes the option as given, not only its IP part
usage "$N" --datadir "$F" --port 0 --nat extip:1.2.3.4x
grep -q "^devp2pd: invalid --nat 'extip:1.2.3.4x': '1.2.3.4x' is not an IP address$" "$T/rerr" && ok ||
    bad "--nat extip:1.2.3.4x: $(cat "$T/rerr")"
# addresses no socket can serve and no node can reach: a multicast
# --addr (TCP binds it, nothing connects), an IPv6 link-local one (it needs
# a zone, which neither sockets nor records carry: bind said EINVAL, "system
# call failed"), an unspecified or multicast --nat extip (the node advertised
# enode://...@[::]:PORT)
for a in 224.0.0.1 ff02::1 fe80::1 fe80::1%lo; do
    usage "$N" --datadir "$F" --port 0 --addr "$a"
    usage "$N" --datadir "$F" --port 0 --metrics.addr "$a"
done
grep -q "^devp2pd: invalid --metrics.addr 'fe80::1%lo': link-local or zoned IPv6" "$T/rerr" && ok ||
    bad "--metrics.addr fe80::1%lo: $(cat "$T/rerr")"
for x in :: 0.0.0.0 ::ffff:0.0.0.0 239.1.2.3 ff0e::1 fe80::7; do
    usage "$N" --datadir "$F" --port 0 --nat "extip:$x"
done
grep -q "^devp2pd: invalid --nat 'extip:fe80::7': 'fe80::7' is link-local" "$T/rerr" && ok ||
    bad "--nat extip:fe80::7: $(cat "$T/rerr")"
usage "$N" --datadir "$F" --port 0 --verbosity 9
# --identity over 256 bytes (2000 would not even fit the 2048-byte Hello)
ID256=$(printf 'a%.0s' $(seq 256))
usage "$N" --datadir "$F" --port 0 --identity "${ID256}b"
usage "$N" --datadir "$F" --port 0 --identity "$(printf 'a%.0s' $(seq 2000))"

# 33 bootnodes: one more than discovery keeps
list= i=1
while [ $i -le 33 ]; do list="$list${list:+,}enode://$PUB@127.0.0.1:$((40000 + i))"; i=$((i + 1)); done
usage "$N" --datadir "$F" --port 0 --bootnodes "$list"
grep -q '32' "$T/rerr" && ok || bad "33 bootnodes: message does not name the limit: $(cat "$T/rerr")"
printf '%s\n' "$list" | tr ',' '\n' >"$T/boot33"
usage "$N" --datadir "$F" --port 0 --bootnode --bootnodes "$T/boot33"

# --staticnodes and --trustednodes take as many nodes as the server's sets
# hold (1024 each, P2P_SERVER_MAX_STATIC / _TRUSTED); one more is a usage
# error naming that limit
i=1
while [ $i -le 1025 ]; do echo "enode://$PUB@127.0.0.1:$((20000 + i))"; i=$((i + 1)); done >"$T/list1025"
head -n 1024 "$T/list1025" >"$T/list1024"
for flag in --staticnodes --trustednodes; do
    usage "$N" --datadir "$F" --port 0 --nodiscover --nodial $flag "$T/list1025"
    grep -q "^devp2pd: $flag: more than 1024 nodes" "$T/rerr" && ok || bad "$flag 1025: $(cat "$T/rerr")"
done
rm -rf "$T/big"
"$N" --datadir "$T/big" --port 0 --addr 127.0.0.1 --nodiscover --nodial --verbosity 2 \
    --staticnodes "$T/list1024" --trustednodes "$T/list1024" >"$T/big.out" 2>"$T/big.err" &
pid=$!
pids="$pids $pid"
wait_until 300 has_line "$T/big.out" '^enr: ' && ok || bad "1024 static and trusted nodes: $(cat "$T/big.err")"
term_wait "$pid" 20 "node with 1024 static and trusted nodes"
[ $rc -eq 0 ] && ok || bad "1024 static and trusted nodes: exit $rc: $(tail -3 "$T/big.err")"

# a dangling nodekey symlink: refused, the link kept, no key written
mkdir -m 700 "$T/dl"
ln -s "$T/dl/missing/key" "$T/dl/nodekey"
timeout -k 5 20 "$N" --datadir "$T/dl" --port 0 --nodiscover >"$T/rout" 2>"$T/rerr"
rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$T/rerr")" -eq 1 ] && grep -q 'symlink' "$T/rerr" && ok ||
    bad "dangling symlink: exit $rc: $(cat "$T/rerr")"
[ -L "$T/dl/nodekey" ] && [ "$(readlink "$T/dl/nodekey")" = "$T/dl/missing/key" ] &&
    [ ! -e "$T/dl/missing" ] && [ ! -e "$T/dl/nodekey.tmp" ] && ok || bad "symlink replaced: $(ls -l "$T/dl")"

# permissions: umask 002, a 0755 datadir
mkdir -m 755 "$T/perm"
(umask 002; exec "$N" --datadir "$T/perm" --port 0 --addr 127.0.0.1 --verbosity 2 --trace \
    >"$T/perm.out" 2>"$T/perm.err") &
pid=$!
pids="$pids $pid"
wait_until 300 has_line "$T/perm.out" '^enr: ' && ok || bad "node did not start: $(cat "$T/perm.err")"
[ "$(stat -c %a "$T/perm/devp2pd.ipc")" = 600 ] && ok || bad "admin socket mode $(stat -c %a "$T/perm/devp2pd.ipc")"
[ "$(stat -c %a "$T/perm/trace.ring")" = 600 ] && ok || bad "trace ring mode $(stat -c %a "$T/perm/trace.ring")"
# the default limits (50 + 50): the minimum of 512 rings (ring_count at byte 20 of the header)
rings=$(od -An -t u4 -j 20 -N 4 "$T/perm/trace.ring" | tr -d ' ')
[ "$rings" = 512 ] && ok || bad "default --trace: $rings rings, want 512"
[ "$(grep -c 'accessible to group or others' "$T/perm.err")" -eq 1 ] && grep -q 'mode=755' "$T/perm.err" &&
    ok || bad "no datadir mode warning: $(cat "$T/perm.err")"
"$D" attach "$T/perm" admin_nodeInfo >/dev/null 2>"$T/err" && ok || bad "attach: $(cat "$T/err")"
# its UDP port in use: the message names the port
UDP=$(sed -n 's/^enode: .*discport=\([0-9]*\).*/\1/p' "$T/perm.out")
[ -n "$UDP" ] && ok || bad "no discport in $(cat "$T/perm.out")"
mkdir -m 700 "$T/udp"
timeout -k 5 20 "$N" --datadir "$T/udp" --port 0 --addr 127.0.0.1 --verbosity 2 --discovery.port "$UDP" \
    >"$T/rout" 2>"$T/rerr"
rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$T/rerr")" -eq 1 ] && grep -q "^devp2pd: cannot listen on UDP port $UDP: " "$T/rerr" &&
    ok || bad "UDP port in use: exit $rc: $(cat "$T/rerr")"
term_wait "$pid" 20 "node"
[ $rc -eq 0 ] && ok || bad "SIGTERM: exit $rc"
# a 0700 datadir: no warning
mkdir -m 700 "$T/priv"
timeout 20 "$N" --datadir "$T/priv" --port 0 --addr 127.0.0.1 --nodiscover --verbosity 2 \
    >"$T/priv.out" 2>"$T/priv.err" &
pid=$!
pids="$pids $pid"
wait_until 300 has_line "$T/priv.out" '^enr: '
term_wait "$pid" 20 "node (0700 datadir)"
[ $rc -eq 0 ] && ! grep -q 'accessible to group' "$T/priv.err" && ok || bad "0700 datadir: exit $rc: $(cat "$T/priv.err")"

# --trace sizes its rings from the limits: a thread per peer, pending
# handshake, dial in flight (--maxpendpeers bounds those too) and trusted
# node, + 80 (parked threads, fixed threads, margin), so no thread finds
# them all taken; the file's blocks are
# reserved (allocated, not sparse)
mkdir -m 700 "$T/rings"
printf 'enode://%s@127.0.0.1:43999\n' "$PUB" >"$T/trusted1"
timeout 20 "$N" --datadir "$T/rings" --port 0 --addr 127.0.0.1 --nodiscover --nodial --verbosity 2 \
    --trace --maxpeers 1000 --maxpendpeers 70 --trustednodes "$T/trusted1" >"$T/rings.out" 2>"$T/rings.err" &
pid=$!
pids="$pids $pid"
wait_until 300 has_line "$T/rings.out" '^enr: '
rings=$(od -An -t u4 -j 20 -N 4 "$T/rings/trace.ring" | tr -d ' ')
[ "$rings" = 1221 ] && ok || bad "--maxpeers 1000 --maxpendpeers 70, 1 trusted: $rings rings, want 1221"
size=$(stat -c %s "$T/rings/trace.ring") blocks=$(stat -c %b "$T/rings/trace.ring")
[ "$size" -gt 393000000 ] && [ $((blocks * 512)) -ge "$size" ] && ok ||
    bad "trace.ring: $size bytes, $blocks blocks allocated"
term_wait "$pid" 20 "node (--maxpeers 1000 --trace)"
[ $rc -eq 0 ] && ok || bad "--maxpeers 1000 --trace: exit $rc: $(cat "$T/rings.err")"
rm -f "$T/rings/trace.ring"
# more than the 65536 rings a segment can have: a usage error
usage "$N" --datadir "$F" --port 0 --trace --maxpeers 70000
grep -q 'trace rings, at most 65536' "$T/rerr" && ok || bad "--trace --maxpeers 70000: $(cat "$T/rerr")"

# --bootnode: no TCP listener, so admin_nodeInfo's listenAddr has port 0
mkdir -m 700 "$T/bn"
"$N" --datadir "$T/bn" --port 0 --addr 127.0.0.1 --bootnode --nodiscover=false --verbosity 2 \
    >"$T/bn.out" 2>"$T/bn.err" &
pid=$!
pids="$pids $pid"
wait_until 300 has_line "$T/bn.out" '^enr: '
"$D" attach "$T/bn" admin_nodeInfo >"$T/bninfo" 2>"$T/err"
python3 - "$T/bninfo" <<'PY' && ok || bad "bootnode nodeInfo: $(cat "$T/bninfo" "$T/err")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["listenAddr"] == "127.0.0.1:0" and d["ports"]["listener"] == 0, d
assert d["ports"]["discovery"] > 0, d
PY
term_wait "$pid" 20 "bootnode"
[ $rc -eq 0 ] && ok || bad "bootnode SIGTERM: exit $rc"

# --nodekeyhex: the key is used, and once the node runs it is no longer in
# /proc/PID/cmdline (for both spellings of the flag)
for form in sep eq; do
    rm -rf "$T/hex" "$T/hex.out" "$T/hex.err" # no earlier enr: line to find
    if [ $form = sep ]; then set -- --nodekeyhex "$KEY"; else set -- "--nodekeyhex=$KEY"; fi
    "$N" --datadir "$T/hex" --port 0 --addr 127.0.0.1 --nodiscover --verbosity 2 --identity "$ID256" "$@" \
        >"$T/hex.out" 2>"$T/hex.err" &
    pid=$!
    pids="$pids $pid"
    wait_until 300 has_line "$T/hex.out" '^enr: '
    grep -q "^enode: enode://$PUB@" "$T/hex.out" && ok || bad "--nodekeyhex ($form) not used: $(cat "$T/hex.out" "$T/hex.err")"
    "$D" attach "$T/hex" admin_nodeInfo 2>&1 | grep -q "\"name\": *\"$ID256\"" && ok ||
        bad "a 256-byte --identity is not the node's name"
    tr '\0' ' ' <"/proc/$pid/cmdline" >"$T/cmdline"
    grep -q -- '--datadir' "$T/cmdline" && ! grep -q "$KEY" "$T/cmdline" && ok ||
        bad "--nodekeyhex ($form) left in /proc/$pid/cmdline: $(cat "$T/cmdline")"
    term_wait "$pid" 20 "node (--nodekeyhex)"
    [ $rc -eq 0 ] && ok || bad "--nodekeyhex node SIGTERM: exit $rc"
done

# SIGTERM during start-up (before the key and database exist, or while they
# are written): a clean stop, exit 0, never a half-written key.  The signal
# is sent once main has blocked SIGINT/SIGTERM (SigBlk in /proc: before
# that a signal would kill the process before main runs, as for any
# program), at once and after 20, 50 and 200 ms.
blocked() { # blocked PID: SIGINT (bit 2) and SIGTERM (bit 15) blocked in PID's main thread
    b=$(sed -n 's/^SigBlk:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null)
    [ -n "$b" ] && [ $((0x$b & 0x4002)) -eq $((0x4002)) ]
}
for d in 0 0.02 0.05 0.2; do
    rm -rf "$T/sig"
    "$N" --datadir "$T/sig" --port 0 --addr 127.0.0.1 --trace >"$T/sig.out" 2>"$T/sig.err" &
    pid=$!
    i=0
    while ! blocked "$pid" && [ $i -lt 5000 ]; do i=$((i + 1)); done
    [ "$d" = 0 ] || sleep "$d"
    term_wait "$pid" 20 "node (SIGTERM after ${d}s)"
    [ $rc -eq 0 ] && grep -q 'Stopped' "$T/sig.err" && [ ! -e "$T/sig/nodekey.tmp" ] && ok ||
        bad "SIGTERM after ${d}s: exit $rc: $(cat "$T/sig.err") $(ls "$T/sig" 2>&1)"
    if [ -e "$T/sig/nodekey" ]; then
        "$D" key to-id "$T/sig/nodekey" >/dev/null 2>&1 && ok || bad "key after SIGTERM at ${d}s unreadable"
    fi
done
# without waiting for the block: either the signal came before main (killed,
# nothing created) or the node stopped cleanly; never killed with files made
for d in 0.005 0.01 0.015 0.02 0.03 0.04; do
    rm -rf "$T/sig"
    "$N" --datadir "$T/sig" --port 0 --addr 127.0.0.1 --trace >"$T/sig.out" 2>"$T/sig.err" &
    pid=$!
    sleep "$d"
    term_wait "$pid" 20 "node (SIGTERM after ${d}s)"
    if [ $rc -eq 0 ] && grep -q 'Stopped' "$T/sig.err"; then ok
    elif [ $rc -eq 143 ] && [ ! -e "$T/sig" ]; then ok
    else bad "early SIGTERM after ${d}s: exit $rc: $(cat "$T/sig.err") $(ls "$T/sig" 2>&1)"; fi
    [ ! -e "$T/sig/nodekey.tmp" ] && ok || bad "nodekey.tmp left after SIGTERM at ${d}s"
done

# bootnodes the node can never use get a warning each, before its enode
# line: an IPv4 one for an IPv6-only socket, one outside --netrestrict
warned() { # warned WANT ARGS...: starts a node, waits for its enode line, checks stderr
    want=$1; shift
    rm -rf "$T/bw" "$T/bw.out" "$T/bw.err" # no earlier enode: line to find
    "$N" --datadir "$T/bw" --port 0 "$@" >"$T/bw.out" 2>"$T/bw.err" &
    bpid=$!
    wait_until 300 has_line "$T/bw.out" '^enode: '
    grep -q "$want" "$T/bw.err" && ok || bad "no '$want' for $*: $(cat "$T/bw.err")"
    term_wait "$bpid" 20 "node (bootnode warning)"
}
warned 'Bootnode unreachable from our discovery socket bootnode=127.0.0.1 socket=IPv6 only' \
    --addr ::1 --bootnodes "enode://$PUB@127.0.0.1:30303"
warned 'Bootnode outside --netrestrict' --addr 127.0.0.1 --netrestrict 10.0.0.0/8 \
    --bootnodes "enode://$PUB@127.0.0.1:30303"

# a running node ignores SIGUSR1, SIGUSR2 and SIGALRM (default: killed
# without its shutdown) and stops cleanly on SIGHUP (its terminal closed):
# exit 0, its admin socket file removed.  Started with SIGHUP at its
# default whatever this script inherited (under nohup the node keeps
# ignoring it, below)
rm -rf "$T/hup"
env --default-signal=HUP "$N" --datadir "$T/hup" --port 0 --addr 127.0.0.1 >"$T/hup.out" \
    2>"$T/hup.err" &
pid=$!
wait_until 300 has_line "$T/hup.out" '^enr: '
for s in USR1 USR2 ALRM; do kill -s $s "$pid" 2>/dev/null; done
sleep 0.3
"$D" attach --timeout 5 "$T/hup" admin_nodeInfo >/dev/null 2>&1 && ok ||
    bad "node gone after SIGUSR1/SIGUSR2/SIGALRM: $(tail -3 "$T/hup.err")"
kill -s HUP "$pid"
# bounded: a node that did not stop is reported and killed, not waited for
wait_until 100 gone "$pid" || { bad "SIGHUP: still running 10 s after it"; kill -9 "$pid"; }
wait "$pid"
rc=$?
[ $rc -eq 0 ] && grep -q 'Stopped' "$T/hup.err" && [ ! -e "$T/hup/devp2pd.ipc" ] && ok ||
    bad "SIGHUP: exit $rc: $(tail -3 "$T/hup.err") $(ls "$T/hup")"

# started with SIGHUP ignored (nohup): the hang-up stays ignored, the node
# runs on, and SIGTERM still stops it
(trap '' HUP; exec "$N" --datadir "$T/nohup" --port 0 --addr 127.0.0.1 --nodiscover \
    >"$T/nohup.out" 2>"$T/nohup.err") &
pid=$!
wait_until 300 has_line "$T/nohup.out" '^enr: '
kill -s HUP "$pid"
sleep 0.5
"$D" attach --timeout 5 "$T/nohup" admin_nodeInfo >/dev/null 2>&1 && ok ||
    bad "SIGHUP ignored at start (nohup): the node stopped on it: $(tail -3 "$T/nohup.err")"
kill -TERM "$pid" 2>/dev/null
wait_until 100 gone "$pid" || { bad "nohup: still running 10 s after SIGTERM"; kill -9 "$pid"; }
wait "$pid"
rc=$?
[ $rc -eq 0 ] && ok || bad "nohup: exit $rc after SIGTERM: $(tail -3 "$T/nohup.err")"

echo "$checks checks, $fails failures"
[ $fails -eq 0 ]
