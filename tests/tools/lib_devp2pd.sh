# tests/tools/lib_devp2pd.sh: sourced by the tools-* scripts that run one
# devp2pd on loopback and check it after a load.  Needs N (devp2pd's path)
# set before it is sourced.  Provides: T (a scratch directory, removed on
# exit with the node killed and every tool in tpids stopped), tpids (the
# pids of tools the script started: append to it; SIGTERM on exit, so run
# them under `timeout -k` to bound that too), ok/bad (counted in checks/fails), start_node
# ARGS... (starts the node with a data directory in T, discovery and
# metrics on loopback, no dialing, snap/1; sets npid, ENODE and MURL),
# threads/fds (the node's counts from /proc), stop_node SECONDS (SIGTERM,
# bounded wait, exit status 0 checked) and, from lib_wait.sh, wait_until,
# has_line and gone.
. "$(dirname "$0")/lib_wait.sh"
T=$(mktemp -d)
npid= tpids=
cleanup() {
    [ -n "$npid" ] && kill -9 "$npid" 2>/dev/null
    for p in $tpids; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }

start_node() {
    rm -f "$T/node.out" # a second node's wait must not read the first one's lines
    "$N" --datadir "$T/node" --port 0 --addr 127.0.0.1 --nodial --caps snap/1 \
        --metrics.addr 127.0.0.1 --metrics.port 0 --verbosity 2 "$@" \
        >"$T/node.out" 2>"$T/node.err" &
    npid=$!
    wait_until 300 has_line "$T/node.out" '^enr: '
    ENODE=$(sed -n 's/^enode: //p' "$T/node.out")
    MURL=$(sed -n 's/^metrics: //p' "$T/node.out")
    [ -n "$ENODE" ] && ok || { bad "node did not start: $(cat "$T/node.err")"; exit 1; }
}

threads() { awk '/^Threads:/ { print $2 }' "/proc/$npid/status" 2>/dev/null; }
fds() { ls "/proc/$npid/fd" 2>/dev/null | wc -l; }

stop_node() { # stop_node SECONDS
    kill -TERM "$npid"
    if ! wait_until $(($1 * 10)) gone "$npid"; then
        bad "node still running $1 s after SIGTERM"
    else
        wait "$npid"
        rc=$?
        npid=
        [ $rc -eq 0 ] && ok || bad "node exited $rc after SIGTERM: $(tail -30 "$T/node.err")"
    fi
}
