#!/bin/sh
# tests/tools/test_cli_write_errors.sh DEVP2P TRACE_CRAFT: the devp2p tool
# when what it writes cannot be written, without privileges:
#   - stdout on /dev/full (every write fails with ENOSPC): each command
#     exits 1 with one line "devp2p: cannot write standard output: No
#     space left on device" (a generated key printed nowhere is not a
#     success);
#   - a node key file under a file size limit (ulimit -f 0, SIGXFSZ
#     ignored: EFBIG): exit 1, a message naming the file and the error, no
#     key file nor temp file left, and with --force the old key kept;
#   - trace --export chrome FILE to /dev/full and under a file size limit
#     (ulimit -f 8: 4 KiB, the export is larger): exit 1, one line naming
#     the file and the error, and no partial export left;
#   - the export under the same limit with SIGXFSZ at its default (kill),
#     as a shell leaves it: the tool ignores the signal itself, so the
#     write fails with EFBIG as above (exit 1, the message, no partial
#     file) instead of the tool dying of the signal mid-write (not the key
#     under ulimit -f 0: a ThreadSanitizer build's runtime writes a file
#     before main, which a limit of 0 fails with the signal still at its
#     default);
#   - stress --out FILE.csv whose FILE.summary.csv is a symlink to
#     /dev/full (a short run against a closed loopback port): exit 1, one
#     line naming the summary file (not FILE.csv) and the error, and no
#     series file left;
#   - a read-only directory (skipped as root, who may write there).
# Under the limit, the tool's own stdout and stderr go to pipes (the limit
# applies to regular files only).
set -u
D=$1 C=$2
. "$(dirname "$0")/lib_check.sh"

# runs "$@" with a file size limit of $L blocks; its stdout and stderr
# (through a pipe) in $T/out, its status in $lrc
limited() {
    sh -c 'ulimit -f "$0" || exit 90; trap "" XFSZ; "$@" 2>&1; echo "exit=$?"' "$L" "$@" |
        cat >"$T/all"
    lrc=$(sed -n 's/^exit=//p' "$T/all")
    grep -v '^exit=' "$T/all" >"$T/out"
}

# the same with SIGXFSZ at its default disposition (the tool must ignore it)
limited_dfl() {
    sh -c 'ulimit -f "$0" || exit 90; trap - XFSZ; "$@" 2>&1; echo "exit=$?"' "$L" "$@" |
        cat >"$T/all"
    lrc=$(sed -n 's/^exit=//p' "$T/all")
    grep -v '^exit=' "$T/all" >"$T/out"
}

# stdout on /dev/full
full_stdout() {
    what=$1; shift
    timeout 30 "$D" "$@" >/dev/full 2>"$T/err"
    rc=$?
    [ "$rc" = 1 ] && ok || bad "$what >/dev/full: exit $rc, want 1: $(cat "$T/err")"
    grep -qx 'devp2p: cannot write standard output: No space left on device' "$T/err" && ok ||
        bad "$what >/dev/full: stderr: $(cat "$T/err")"
}
"$C" "$T/trace.ring" >/dev/null && ok || bad "trace_craft failed"
"$D" key generate "$T/key" >/dev/null && ok || bad "key generate"
full_stdout "key generate" key generate
full_stdout "key generate FILE" key generate "$T/key2"
full_stdout "key to-id" key to-id "$T/key"
full_stdout "key to-enr" key to-enr "$T/key"
full_stdout "--version" --version
full_stdout "--help" --help
full_stdout "key --help" key generate --help
full_stdout "trace --file" trace --file "$T/trace.ring"
# a control: the same commands to a file succeed
timeout 30 "$D" trace --file "$T/trace.ring" >"$T/text" 2>"$T/err" && [ -s "$T/text" ] && ok ||
    bad "trace --file to a file: $(cat "$T/err")"

# node key files under a file size limit
L=0
limited "$D" key generate "$T/k1"
[ "$lrc" = 1 ] && ok || bad "key generate under a limit: exit $lrc: $(cat "$T/out")"
grep -q "^devp2p: cannot write node key $T/k1.tmp (write): File too large\$" "$T/out" && ok ||
    bad "key generate under a limit: $(cat "$T/out")"
[ ! -e "$T/k1" ] && [ ! -e "$T/k1.tmp" ] && ok || bad "key generate under a limit left $(ls "$T")"
cp "$T/key" "$T/key.orig"
limited "$D" key generate --force "$T/key"
[ "$lrc" = 1 ] && ok || bad "key generate --force under a limit: exit $lrc"
cmp -s "$T/key" "$T/key.orig" && [ ! -e "$T/key.tmp" ] && ok ||
    bad "key generate --force under a limit: the old key not kept"

# the Chrome export
timeout 30 "$D" trace --file "$T/trace.ring" --export chrome /dev/full 2>"$T/err"
rc=$?
[ "$rc" = 1 ] && ok || bad "export to /dev/full: exit $rc, want 1: $(cat "$T/err")"
grep -qx 'devp2p: cannot write /dev/full: No space left on device' "$T/err" && ok ||
    bad "export to /dev/full: stderr: $(cat "$T/err")"
[ -c /dev/full ] && ok || bad "/dev/full is gone"
L=8
limited "$D" trace --file "$T/trace.ring" --export chrome "$T/c.json"
[ "$lrc" = 1 ] && ok || bad "export under a limit: exit $lrc: $(cat "$T/out")"
grep -qx "devp2p: cannot write $T/c.json: File too large" "$T/out" && ok ||
    bad "export under a limit: $(cat "$T/out")"
[ ! -e "$T/c.json" ] && ok || bad "export under a limit left $(wc -c <"$T/c.json") bytes"
# ... with SIGXFSZ at its default: not killed (exit 153 from the shell)
limited_dfl "$D" trace --file "$T/trace.ring" --export chrome "$T/c.json"
[ "$lrc" = 1 ] && ok || bad "export under a limit, SIGXFSZ default: exit $lrc: $(cat "$T/out")"
grep -qx "devp2p: cannot write $T/c.json: File too large" "$T/out" && ok ||
    bad "export under a limit, SIGXFSZ default: $(cat "$T/out")"
[ ! -e "$T/c.json" ] && ok ||
    bad "export under a limit, SIGXFSZ default, left $(wc -c <"$T/c.json") bytes"
# a control: without the limit the export is written whole
timeout 30 "$D" trace --file "$T/trace.ring" --export chrome "$T/c.json" 2>"$T/err" &&
    [ "$(wc -c <"$T/c.json")" -gt 4096 ] && ok || bad "export: $(cat "$T/err")"

# a stress report whose summary cannot be written (the series can)
TARGET=$("$D" key to-enode --ip 127.0.0.2 --tcp 9 "$T/key")
ln -s /dev/full "$T/s.summary.csv"
timeout 30 "$D" stress --target "$TARGET" --duration 0.2 --out "$T/s.csv" >/dev/null 2>"$T/err"
rc=$?
[ "$rc" = 1 ] && ok || bad "stress summary to /dev/full: exit $rc, want 1: $(cat "$T/err")"
grep -qx "devp2p: cannot write $T/s.summary.csv: No space left on device" "$T/err" && ok ||
    bad "stress summary to /dev/full: stderr: $(cat "$T/err")"
[ ! -e "$T/s.csv" ] && ok || bad "stress summary to /dev/full: the series file left"
rm -f "$T/s.summary.csv"

# a read-only directory
if [ "$(id -u)" != 0 ]; then
    mkdir "$T/ro" && chmod 555 "$T/ro"
    timeout 30 "$D" key generate "$T/ro/k" >/dev/null 2>"$T/err"
    rc=$?
    [ "$rc" = 1 ] && grep -q "cannot write node key $T/ro/k.tmp (create): Permission denied" "$T/err" &&
        ok || bad "key generate in a read-only directory: exit $rc: $(cat "$T/err")"
    timeout 30 "$D" trace --file "$T/trace.ring" --export chrome "$T/ro/c.json" 2>"$T/err"
    rc=$?
    [ "$rc" = 1 ] && grep -qx "devp2p: cannot write $T/ro/c.json: Permission denied" "$T/err" &&
        ok || bad "export in a read-only directory: exit $rc: $(cat "$T/err")"
    [ -z "$(ls -A "$T/ro")" ] && ok || bad "read-only directory: left $(ls -A "$T/ro")"
    chmod 755 "$T/ro"
else
    echo "read-only directory checks skipped (root may write there)"
fi

echo "test_cli_write_errors: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
