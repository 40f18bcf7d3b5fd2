# tests/tools/lib_actors.sh: sourced by the trace and gdb tests.  Sources
# lib_wait.sh (wait_until, has_line, gone).
# actors_start OUT ARGS...: runs trace_actors ($A) with ARGS, its stdout to
# OUT, sets pid, appends it to pids (lib_check.sh: killed on exit), and
# waits (at most 10 s) for its "ready" line in OUT.
. "$(dirname "$0")/lib_wait.sh"
actors_start() {
    as_out=$1; shift
    "$A" "$@" >"$as_out" &
    pid=$!
    pids="$pids $pid"
    wait_until 100 has_line "$as_out" ready
}
