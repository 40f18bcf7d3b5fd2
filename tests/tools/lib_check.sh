# tests/tools/lib_check.sh: the prelude of the tools-* scripts that start
# their own processes.  Provides T (a scratch directory, removed on exit),
# pids (processes to kill on exit: append to it), ok/bad (counted in
# checks/fails; bad prints its reason), term_wait PID SECONDS (lib_stop.sh:
# SIGTERM, bounded wait, SIGKILL if still running; sets rc).
. "$(dirname "$0")/lib_stop.sh"
T=$(mktemp -d)
pids=
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
