#!/usr/bin/env bash
# Sets up the machine (tools/setup.sh) and runs the whole test suite:
#   1. the release-style build (build/): unit, vector, fuzz-replay, interop
#      tests, plus the clang-format check;
#   2. the same suite under ASan+UBSan (build-asan/);
#   3. the same suite under TSan (build-tsan/);
#   4. a libFuzzer smoke run of every fuzz target (build-fuzz/, clang).
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

passed=0 failed=0
jobs=$(nproc)

count() { # count BUILDDIR: adds the results of its last meson test run
    local p f
    read -r p f < <(python3 - "$1/meson-logs/testlog.json" <<'PY'
import json, sys
ok = bad = 0
try:
    for line in open(sys.argv[1]):
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"): ok += 1
        elif r != "SKIP": bad += 1
except FileNotFoundError:
    bad = 1
print(ok, bad)
PY
)
    passed=$((passed + p)); failed=$((failed + f))
    echo "== $1: $p passed, $f failed"
}

suite() { # suite BUILDDIR MESON-SETUP-ARGS...
    local dir=$1; shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || {
            cat "$dir.setup.log"; failed=$((failed + 1)); return; }
    fi
    if ! ninja -C "$dir" >"$dir.build.log" 2>&1; then
        tail -50 "$dir.build.log"; echo "== $dir: build failed"; failed=$((failed + 1)); return
    fi
    local listed
    listed=$(meson test -C "$dir" --list "${TEST_ARGS[@]}" 2>/dev/null | grep -v -e "^ninja:" -e "No suitable tests")
    if [ -z "$listed" ]; then
        echo "== $dir: no tests selected"; return
    fi
    meson test -C "$dir" --print-errorlogs --num-processes "$jobs" "${TEST_ARGS[@]}" \
        >"$dir.test.log" 2>&1
    grep -E '^ *[0-9]+/[0-9]+ ' "$dir.test.log" | grep -vE ' OK | SKIP ' || true
    count "$dir"
}

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
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
