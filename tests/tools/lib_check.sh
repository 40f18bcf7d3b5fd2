# tests/tools/lib_check.sh: the prelude of the tools-* scripts that start
# their own processes.  Provides T (a scratch directory, removed on exit),
# pids (processes to kill on exit: append to it), ok/bad (counted in
# checks/fails; bad prints its reason), term_wait PID SECONDS (lib_stop.sh:
# SIGTERM, bounded wait, SIGKILL if still running; sets rc), wait_until,
# has_line and gone (lib_wait.sh, through lib_stop.sh), node_start NAME
# ARGS... (runs devp2pd $N on an ephemeral port with its output in
# $T/NAME.out and .err, waits up to 30 s for its enr: line; sets $ENODE and
# $pid, appends to pids), pub_of URL (an enode URL's key) and lists_peer
# DIR PUB OUT (the node of datadir DIR lists the key PUB in admin_peers,
# asked with the devp2p tool $D, its answer saved in OUT); need_jspeer
# fails the script at once unless Node.js ($NODE) and the interop peers
# beside $PEER (tests/interop/peer.mjs) are installed.
. "$(dirname "$0")/lib_stop.sh"
T=$(mktemp -d)
pids=
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
node_start() {
    name=$1; shift
    rm -f "$T/$name.out" # a wait must not read an earlier run's lines
    "$N" --port 0 --verbosity 2 "$@" >"$T/$name.out" 2>"$T/$name.err" &
    pid=$!
    pids="$pids $pid"
    wait_until 300 has_line "$T/$name.out" '^enr: '
    ENODE=$(sed -n 's/^enode: //p' "$T/$name.out")
}
pub_of() { p=${1#enode://}; echo "${p%%@*}"; }
lists_peer() { "$D" attach "$1" admin_peers >"$3" 2>/dev/null && grep -q "$2" "$3"; }
need_jspeer() {
    if [ ! -x "$NODE" ] || [ ! -d "$(dirname "$PEER")/node_modules/@ethereumjs/devp2p" ]; then
        echo "FAIL: node or tests/interop/node_modules missing: run tools/setup.sh" >&2
        exit 1
    fi
}
