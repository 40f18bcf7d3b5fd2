#!/bin/bash
# A fuzzing campaign: runs each named target, one process at a time (no
# -jobs/-workers: libFuzzer then runs in this process), for
# SECONDS each, growing a corpus in SCRATCH/corpus/<name> (seeded from the
# repo corpus, which is only read), crash artifacts in SCRATCH/artifacts/,
# and a log per target in SCRATCH/<name>.log (libFuzzer's final stats).
# SCRATCH/campaign.log gets one line per target with the wall time and the
# CPU time (user+sys) the target really had: on a shared machine, run it
# under `nice -n 19` and count CPU minutes, not wall minutes.
#
#   tests/fuzz/campaign.sh BUILD_FUZZ_DIR SCRATCH SECONDS NAME...
#
# Afterwards minimize a grown corpus into the repo with
#   BUILD_FUZZ_DIR/tests/fuzz/fuzz_<name> -merge=1 tests/fuzz/corpus/<name> SCRATCH/corpus/<name>
set -u
[ $# -ge 4 ] || { echo "usage: $0 BUILD_FUZZ_DIR SCRATCH SECONDS NAME..." >&2; exit 2; }
build=$1 scratch=$2 secs=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$scratch/artifacts"
for t in "$@"; do
    mkdir -p "$scratch/corpus/$t"
    start=$(date +%s)
    echo "== $t: start $(date -u +%H:%M:%S) for ${secs}s" >>"$scratch/campaign.log"
    TIMEFORMAT='%U %S'
    cpu=$( { time "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout="${FUZZ_TIMEOUT:-10}" \
        -print_final_stats=1 -artifact_prefix="$scratch/artifacts/$t-" \
        "$scratch/corpus/$t" "$here/corpus/$t" >"$scratch/$t.log" 2>&1; echo "rc=$?" >"$scratch/$t.rc"; } 2>&1 )
    rc=$(sed 's/rc=//' "$scratch/$t.rc")
    cpu_s=$(echo "$cpu" | awk '{printf "%d", $1 + $2}')
    end=$(date +%s)
    echo "== $t: rc=$rc wall $(( (end - start) / 60 ))m$(( (end - start) % 60 ))s cpu $(( cpu_s / 60 ))m$(( cpu_s % 60 ))s" \
        "$(grep -E '^stat::number_of_executed_units' "$scratch/$t.log" | tail -1)" \
        >>"$scratch/campaign.log"
done
