#!/bin/sh
# tests/bench/test_bench_args.sh BENCH_DIR: the benchmarks' command lines.
# A mistyped argument (not a number, out of range, an unknown word, one
# argument too many) ends the program at once with exit status 2, one
# line naming the argument and the usage line on stderr, and nothing on
# stdout: no benchmark runs other than the one asked for.  A valid
# command line runs.
set -u
B=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0 checks=0
bad() { fails=$((fails + 1)); echo "FAIL: $*" >&2; }

refused() { # refused 'PATTERN' BENCH ARGS...: exit 2, PATTERN and usage on stderr
    pat=$1; shift
    checks=$((checks + 1))
    timeout 20 "$B/$@" >"$T/out" 2>"$T/err"
    rc=$?
    if [ $rc -ne 2 ] || [ -s "$T/out" ] || ! grep -q -- "$pat" "$T/err" ||
        ! grep -q "^usage: .*$1 " "$T/err"; then
        bad "$*: exit $rc, stdout '$(head -c 200 "$T/out")', stderr '$(cat "$T/err")'"
    fi
}
refused "seconds per load phase must be a number from 0.1 to 600, not 'abc'" bench_server abc
refused "the second argument must be one of hs|all, not 'hsx'" bench_server 3 hsx
refused "rounds must be a whole number from 1 to 21, not 'x'" bench_server 3 hs x
refused "rounds must be a whole number from 1 to 21, not '0'" bench_server 3 hs 0
refused "too many arguments (at most 3)" bench_server 3 hs 5 x
refused "seconds per measurement must be a number from 0.001 to 600, not '-1'" bench_rlpx -1
refused "not '0.3s'" bench_rlpx 0.3s
refused "not 'nan'" bench_crypto nan
refused "readers must be a whole number from 0 to 2, not '3'" bench_discv4 1 3
refused "dpt must be a whole number from 0 to 1, not 'yes'" bench_discv4 1 0 yes
refused "MSG bytes must be a whole number from 1 to 4096, not '1.5'" bench_bounds 1.5
refused "MSG bytes must be a whole number from 1 to 4096, not '4097'" bench_bounds 4097
refused "messages per round must be a whole number from 1000 to 1e+10, not '10x'" bench_mailbox 10x
refused "the part to run must be one of all|tp|rt|rowN..., not 'bogus'" bench_mailbox 1000 bogus
refused "not 'row5'" bench_mailbox 1000 row5
refused "not 'row'" bench_mailbox 1000 row
refused "pairs must be a whole number from 1 to 64, not '0'" bench_mailbox 1000 row1 0

# a valid command line: row 1 only, one pair of rounds
checks=$((checks + 1))
timeout 60 "$B/bench_mailbox" 1000 row1 1 >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -ne 0 ] || ! grep -q '1->1 cap 1024' "$T/out" || grep -q '4->1' "$T/out"; then
    bad "bench_mailbox 1000 row1 1: exit $rc: $(cat "$T/out" "$T/err")"
fi

echo "bench-args: $checks checks, $fails failed"
[ $fails -eq 0 ]
