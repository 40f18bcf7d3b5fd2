# tests/tools/lib_stop.sh: sourced by the tools-* scripts to stop a process
# they started, with ok/bad defined by the script.  Provides term_wait PID
# SECONDS [WHAT]: SIGTERM, then polls until PID has exited or SECONDS have
# passed; a process still running then is reported with bad and killed with
# SIGKILL, so the wait that follows cannot block.  Sets rc to PID's exit
# status (137 after the SIGKILL).
term_wait() {
    kill -TERM "$1" 2>/dev/null
    tw_i=0
    while kill -0 "$1" 2>/dev/null && [ $tw_i -lt $(($2 * 10)) ]; do sleep 0.1; tw_i=$((tw_i + 1)); done
    if kill -0 "$1" 2>/dev/null; then
        bad "${3:-process $1} still running $2 s after SIGTERM"
        kill -9 "$1" 2>/dev/null
    fi
    wait "$1"
    rc=$?
}
