#!/bin/sh
# Short libFuzzer run of one target: fuzz_<name> SEED_DIR SECONDS.
# New inputs go to a scratch directory, never into the checked-in corpus.
set -eu
bin=$1 seeds=$2 secs=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    "$scratch" "$seeds"
