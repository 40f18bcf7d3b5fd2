# tests/tools/lib_stop.sh: sourced by the tools-* scripts to stop a process
# they started, with ok/bad defined by the script.  Sources lib_wait.sh
# (wait_until, has_line, gone).  Provides term_wait PID SECONDS [WHAT]:
# SIGTERM, then polls until PID has exited or SECONDS have passed; a
# process still running then is reported with bad and killed with SIGKILL,
# so the wait that follows cannot block.  Sets rc to PID's exit status (137
# after the SIGKILL).
. "$(dirname "$0")/lib_wait.sh"
term_wait() {
    kill -TERM "$1" 2>/dev/null
    if ! wait_until $(($2 * 10)) gone "$1"; then
        bad "${3:-process $1} still running $2 s after SIGTERM"
        kill -9 "$1" 2>/dev/null
    fi
    wait "$1"
    rc=$?
}
