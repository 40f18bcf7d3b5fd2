#!/usr/bin/env bash
# Sets up the machine (tools/setup.sh) and runs the whole test suite:
#   1. the release-style build (build/): unit, vector, fuzz-replay, interop
#      tests, plus the clang-format check;
#   2. the same suite under ASan+UBSan (build-asan/);
#   3. the same suite under TSan (build-tsan/);
#   4. a libFuzzer smoke run of every fuzz target (build-fuzz/, clang);
#   5. valgrind memcheck over suite 'valgrind' of build/ (the unit and
#      actor tests that run in seconds under it: uninitialised reads, which
#      the sanitizer builds do not see).
# Ends with one line "N passed, N failed" and exits non-zero on any failure.
#
# Options: --quick (only step 1), --no-setup (skip tools/setup.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
quick=0 setup=1
for a in "$@"; do
    case "$a" in
    --quick) quick=1 ;;
    --no-setup) setup=0 ;;
    *) echo "test.sh: unknown option $a" >&2; exit 2 ;;
    esac
done
[ "$setup" = 0 ] || tools/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
# Node.js fetched by setup.sh when the machine's is too old (see setup.sh)
[ ! -x .cache/node/bin/node ] || export PATH="$root/.cache/node/bin:$PATH"

passed=0 failed=0
jobs=$(nproc)

count() { # count BUILDDIR STATUS: adds the results of the meson test run that
    # just ended with exit status STATUS (its log, meson-logs/$TEST_LOG.json,
    # was removed before the run, so a run that wrote none counts as a
    # failure); names skipped tests
    local p f s
    { read -r p f; s=$(cat); } < <(python3 - "$1/meson-logs/$TEST_LOG.json" <<'PY'
import json, sys
ok = bad = 0
skipped = []
try:
    for line in open(sys.argv[1]):
        try:
            d = json.loads(line)
        except ValueError:
            bad += 1
            continue
        r = d.get("result")
        if r in ("OK", "EXPECTEDFAIL"): ok += 1
        elif r == "SKIP": skipped.append(d.get("name", "?"))
        else: bad += 1
except FileNotFoundError:
    bad = 1
print(ok, bad)
for n in skipped:
    print("== skipped (exit 77): " + n)
PY
)
    p=${p:-0} f=${f:-1}
    [ -z "$s" ] || printf '%s\n' "$s"
    if [ "$2" != 0 ] && [ "$f" = 0 ]; then
        echo "== $1${TEST_LOG#testlog}: meson test exited $2 with no failure in its log"; f=1
    fi
    passed=$((passed + p)); failed=$((failed + f))
    echo "== $1${TEST_LOG#testlog}: $p passed, $f failed"
}

suite() { # suite BUILDDIR MESON-SETUP-ARGS...
    local dir=$1; shift
    # An existing build directory is configured again: one set up before the
    # Node.js above was on PATH (tools/run-node.sh sets up build/ without it)
    # keeps "node not found", or Debian's older node, until meson looks again.
    local re=()
    [ ! -f "$dir/build.ninja" ] || re=(--reconfigure)
    meson setup "${re[@]}" "$dir" "$@" >"$dir.setup.log" 2>&1 || {
        cat "$dir.setup.log"; failed=$((failed + 1)); return; }
    if ! ninja -C "$dir" >"$dir.build.log" 2>&1; then
        tail -50 "$dir.build.log"; echo "== $dir: build failed"; failed=$((failed + 1)); return
    fi
    # every selection below names at least one test: an empty list (or a
    # failing --list) is a failure
    local listed lrc trc
    listed=$(meson test -C "$dir" --list "${TEST_ARGS[@]}" 2>"$dir.list.log")
    lrc=$?
    listed=$(printf '%s\n' "$listed" | grep -v -e "^ninja:" -e "No suitable tests")
    if [ "$lrc" != 0 ] || [ -z "$listed" ]; then
        tail -20 "$dir.list.log"
        echo "== $dir: no tests selected (meson test --list exited $lrc)"; failed=$((failed + 1)); return
    fi
    rm -f "$dir/meson-logs/$TEST_LOG.json"
    meson test -C "$dir" --print-errorlogs --num-processes "$jobs" "${TEST_ARGS[@]}" \
        >"$dir.$TEST_LOG.log" 2>&1
    trc=$?
    grep -E '^ *[0-9]+/[0-9]+ ' "$dir.$TEST_LOG.log" | grep -vE ' OK | SKIP ' || true
    count "$dir" "$trc"
}

TEST_LOG=testlog # meson test's log name (testlog-SETUP with --setup SETUP)
TEST_ARGS=()
suite build
if [ -x "$(command -v clang-format)" ]; then
    if tools/format.sh --check >build.format.log 2>&1; then
        passed=$((passed + 1)); echo "== format-check: clean"
    else
        failed=$((failed + 1)); echo "== format-check: FAILED"; head -30 build.format.log
    fi
fi

if [ "$quick" = 0 ]; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
    TEST_ARGS=(--no-suite interop-slow)
    suite build-asan -Db_sanitize=address,undefined -Dc_args=-fno-sanitize-recover=all \
        -Dbench=false -Dbuildtype=debug
    suite build-tsan -Db_sanitize=thread -Dbench=false
    TEST_ARGS=(--suite fuzz-smoke --num-processes 1)
    CC=clang suite build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Dbench=false \
        -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link
    TEST_LOG=testlog-valgrind TEST_ARGS=(--setup valgrind --suite valgrind)
    suite build
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
