#!/bin/sh
# tests/tools/test_devp2pd_family.sh DEVP2PD DEVP2P RESPONDER: node records
# that name an IPv4 and an IPv6 address, given to a node whose sockets
# reach one family.  Two disc_responders publish such records: R6 serves
# ::1 and its record also names 127.0.0.1 (which wins geth's rule: a tie of
# loopbacks goes to ip), R4 serves 127.0.0.1 and its record also names
# 2001:db8::1 (the more global one).  A node on --addr ::1 given R6's
# enr: as its bootnode, and one on --addr 127.0.0.1 given R4's, take the
# address their socket reaches: no "Bootnode unreachable" warning, and the
# responder answers their pings (discovery.core.rx_pong).  The devp2p
# tool's discv4 commands do the same with --addr ::1 / --addr 127.0.0.1.
# Last, --nat extip of a family the sockets do not serve (IPv6 on
# 127.0.0.1, IPv4 on ::1) is advertised with a warning naming both
# families; one they serve (or on ::) gets none.
set -u
N=$1 D=$2 R=$3
. "$(dirname "$0")/lib_check.sh"

for r in 6 4; do
    if [ $r = 6 ]; then arg=::1+127.0.0.1; else arg=127.0.0.1+2001:db8::1; fi
    "$R" 60 "$arg" >"$T/r$r.out" 2>&1 &
    pids="$pids $!"
    wait_until 100 has_line "$T/r$r.out" '^ready' ||
        { bad "responder $r did not start: $(cat "$T/r$r.out")"; exit 1; }
done
E6=$(sed -n 's/^enr //p' "$T/r6.out") E4=$(sed -n 's/^enr //p' "$T/r4.out")
"$D" enrdump "$E6" >"$T/d6" 2>&1
grep -q '^  ip: *127.0.0.1$' "$T/d6" && grep -q '^  ip6: *::1$' "$T/d6" && ok ||
    bad "R6's record: $(cat "$T/d6")"

# the devp2p tool: a socket of one family pings the address of that family
timeout 20 "$D" discv4 ping --addr ::1 "$E6" >"$T/p6" 2>"$T/p6.err" && ok ||
    bad "discv4 ping --addr ::1 to R6's record: $(cat "$T/p6.err")"
grep -q '^  to:         ::1 ' "$T/p6" && ok || bad "ping over IPv6: $(cat "$T/p6")"
timeout 20 "$D" discv4 ping --addr 127.0.0.1 "$E4" >"$T/p4" 2>"$T/p4.err" && ok ||
    bad "discv4 ping --addr 127.0.0.1 to R4's record: $(cat "$T/p4.err")"
grep -q '^  to:         127.0.0.1 ' "$T/p4" && ok || bad "ping over IPv4: $(cat "$T/p4")"
timeout 20 "$D" discv4 requestenr --addr ::1 "$E6" >"$T/q6" 2>"$T/q6.err" && ok ||
    bad "discv4 requestenr --addr ::1 to R6's record: $(cat "$T/q6.err")"
[ "$(head -1 "$T/q6")" = "$E6" ] && ok || bad "requestenr printed '$(head -1 "$T/q6")', want '$E6'"

# rx_pong of a node's discovery, 0 until it answers
pongs() {
    "$D" attach "$1" admin_metrics 2>/dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["discovery"]["core"]["rx_pong"])' 2>/dev/null ||
        echo 0
}
ponged() { [ "$(pongs "$1")" != 0 ]; }
for r in 6 4; do
    if [ $r = 6 ]; then addr=::1 rec=$E6; else addr=127.0.0.1 rec=$E4; fi
    node_start "n$r" --datadir "$T/n$r" --addr "$addr" --bootnodes "$rec" --verbosity 3
    [ -n "$ENODE" ] && ok || { bad "node on $addr did not start: $(cat "$T/n$r.err")"; continue; }
    grep -q 'Bootnode unreachable' "$T/n$r.err" && bad "node on $addr: $(grep 'Bootnode unreachable' "$T/n$r.err")" || ok
    wait_until 100 ponged "$T/n$r" && ok || bad "node on $addr: no pong from its bootnode within 10 s"
    term_wait "$pid" 10
    [ "$rc" -eq 0 ] && ok || bad "node on $addr exited $rc: $(tail -5 "$T/n$r.err")"
done

# --nat extip:IP of the other family: advertised, and said once
for c in "127.0.0.1 2001:db8::7 IPv6 IPv4" "::1 192.0.2.7 IPv4 IPv6" "127.0.0.1 192.0.2.7 -" \
    ":: 2001:db8::7 -" "::1 2001:db8::7 -"; do
    set -- $c
    node_start x --datadir "$T/x" --addr "$1" --nat "extip:$2" --nodiscover
    [ -n "$ENODE" ] && ok || { bad "node on $1 with extip $2 did not start: $(cat "$T/x.err")"; continue; }
    case "$ENODE" in *"@$2:"* | *"@[$2]:"*) ok ;; *) bad "node on $1 advertises $ENODE, want $2" ;; esac
    term_wait "$pid" 10
    w=$(grep 'External IP (--nat extip) is not of the family' "$T/x.err")
    if [ "$3" = - ]; then
        [ -z "$w" ] && ok || bad "node on $1 with extip $2 warned: $w"
    else
        case "$w" in *"extip=$2 family=$3 "*"sockets=\"$4 only\""*) ok ;;
        *) bad "node on $1 with extip $2: no warning naming $3 and $4: $(cat "$T/x.err")" ;; esac
    fi
    rm -rf "$T/x"
done

echo "devp2pd-family: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
