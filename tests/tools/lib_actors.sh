# tests/tools/lib_actors.sh: sourced by the trace and gdb tests.
# actors_start OUT ARGS...: runs trace_actors ($A) with ARGS, its stdout to
# OUT, sets pid, and waits (at most 10 s) for its "ready" line in OUT.
actors_start() {
    as_out=$1; shift
    "$A" "$@" >"$as_out" &
    pid=$!
    as_i=0
    while ! grep -q ready "$as_out" && [ $as_i -lt 100 ]; do sleep 0.1; as_i=$((as_i + 1)); done
}
