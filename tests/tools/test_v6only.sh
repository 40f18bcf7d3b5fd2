#!/bin/sh
# tests/tools/test_v6only.sh DEVP2PD DEVP2P: on a host where
# net.ipv6.bindv6only is 1 (an IPv6 socket takes IPv6 only unless it says
# otherwise), every socket the programs bind to :: still serves IPv4 as
# well, as :: promises (--addr ":: for IPv4 and IPv6"): devp2pd's RLPx
# listener, its discovery socket and its --metrics.addr :: endpoint answer
# over 127.0.0.1 and ::1, and `devp2p discv4 ping --addr ::` reaches both.  The host is a user and network namespace
# (unshare -rn) with only its own loopback and bindv6only=1: skipped with
# 77 where unprivileged user namespaces are off or iproute2 is missing.
set -u
N=$1 D=$2
. "$(dirname "$0")/lib_check.sh"

if ! unshare -rn true 2>/dev/null || ! command -v ip >/dev/null; then
    echo "SKIP: no user and network namespace (unshare -rn) or no ip(8)"
    exit 77
fi

# everything that needs the namespace runs in it; results in $T/res
unshare -rn sh -c '
    T=$1 N=$2 D=$3
    . "$4/lib_wait.sh"
    ip link set lo up || exit 90
    echo 1 >/proc/sys/net/ipv6/bindv6only || exit 91
    [ "$(cat /proc/sys/net/ipv6/bindv6only)" = 1 ] || exit 92
    "$N" --datadir "$T/a" --addr :: --port 0 --metrics.addr :: --metrics.port 0 --nodial \
        --verbosity 2 >"$T/a.out" 2>"$T/a.err" &
    pid=$!
    wait_until 300 has_line "$T/a.out" "^enr: " &&
        echo "ok node started" || echo "bad node started: no enr line in 30 s: $(tail -1 "$T/a.err")"
    E=$(sed -n "s/^enode: //p" "$T/a.out")
    MPORT=$(sed -n "s|^metrics: http://.*:\([0-9]*\)/metrics\$|\1|p" "$T/a.out")
    K=${E%@*} P=${E##*:} # TCP port and ?discport=UDP port
    for h in 127.0.0.1 "[::1]"; do
        timeout 10 "$D" rlpx ping --timeout 3 "$K@$h:$P" >/dev/null 2>"$T/err" &&
            echo "ok rlpx $h" || echo "bad rlpx $h: $(cat "$T/err")"
        timeout 10 "$D" discv4 ping "$K@$h:$P" >/dev/null 2>"$T/err" &&
            echo "ok discv4 $h" || echo "bad discv4 $h: $(cat "$T/err")"
        timeout 10 python3 - "http://$h:$MPORT/metrics" >"$T/err" 2>&1 <<PY &&
import sys, urllib.request
body = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
sys.exit(0 if "devp2p_peers" in body else 1)
PY
            echo "ok metrics $h" || echo "bad metrics $h: $(tail -1 "$T/err")"
        # devp2p discv4 with its socket on :: (with or without a port)
        for a in :: "[::]:0"; do
            timeout 10 "$D" discv4 ping --addr "$a" "$K@$h:$P" >/dev/null 2>"$T/err" &&
                echo "ok discv4 --addr $a $h" || echo "bad discv4 --addr $a $h: $(cat "$T/err")"
        done
    done
    kill "$pid"
    wait "$pid" && echo "ok node stopped" || echo "bad node stopped: exit status $?"
' sh "$T" "$N" "$D" "$(dirname "$0")" >"$T/res" 2>"$T/res.err"
rc=$?
[ "$rc" = 0 ] && ok || bad "namespace setup failed ($rc): $(cat "$T/res.err")"
[ -s "$T/res" ] || bad "no results: $(cat "$T/res.err")"
while read -r verdict what; do
    [ "$verdict" = ok ] && ok || bad "$what"
done <"$T/res"

# the namespace's exit status, node start and stop, 5 probes for each of 2 hosts
[ "$checks" -eq 13 ] && ok || bad "$((checks - 1)) results, 12 expected"
echo "test_v6only: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
