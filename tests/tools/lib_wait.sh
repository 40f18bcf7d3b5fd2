# tests/tools/lib_wait.sh: the bounded wait of the shell tests, sourced by
# lib_stop.sh (so by lib_check.sh too), lib_actors.sh, lib_devp2pd.sh and
# the scripts that source none of them.  Defines functions only: sourcing
# it runs nothing and sets no variable.
# wait_until TENTHS CMD [ARGS...]: runs CMD until it succeeds, every 0.1 s,
#   at most TENTHS + 1 times; returns 0 once it has succeeded, 1 if it never
#   did.  Leaves in wu_tenths the tenths it slept.  CMD runs in this shell:
#   a function of the script, whose variables it may set, or a command
#   ([ -S FILE ], grep ...); a condition made of several is a function.
# has_line FILE PATTERN: FILE (which may not exist yet) has a line matching
#   the grep PATTERN.
# gone PID: process PID has exited.
wait_until() {
    wu_left=$1 wu_tenths=0
    shift
    while ! "$@"; do
        [ "$wu_left" -gt 0 ] || return 1
        sleep 0.1
        wu_left=$((wu_left - 1)) wu_tenths=$((wu_tenths + 1))
    done
    return 0
}
has_line() { grep -qs -e "$2" -- "$1"; }
gone() { ! kill -0 "$1" 2>/dev/null; }
