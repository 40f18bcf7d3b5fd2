#!/bin/sh
# tools/bench.sh [BUILD_DIR] [SECONDS]: the benchmark suite, one command.
#
# Runs the same `devp2p stress` workloads against this build's devp2pd and
# against an @ethereumjs/devp2p RLPx server + DPT (tests/interop/
# bench-target.mjs), in one run, and measures the crypto bounds in the
# same run (tests/bench/bench_bounds).  For every figure it prints ours,
# ethereumjs', the ratio, the bound and ours against the bound:
#   handshakes/s   stress churn (64 in flight): connect, handshake, Hello,
#                  Disconnect.  Bound: ncpu / secp256k1 cost of a handshake
#                  pair (harness and node share the cores); CPU: the node's
#                  CPU per handshake against the recipient's secp256k1 share.
#   pongs/s        stress discv4 --requests ping (64 keys, 4 in flight
#                  each, pre-signed).  Bound: ncpu / (recover + sign); CPU:
#                  the node's CPU per pong against recover + sign.
#   messages/s     stress flood, 8 peers, 64-byte messages on snap/1, no
#                  echo (TCP backpressure paces the sender to what the node
#                  reads and decrypts).  Bound: ncpu / frame encode+decode.
#   KiB/live peer  stress hold, 300 peers (32 handshakes in flight) pinging
#                  every 2 s: RSS growth per live peer at the peak.  Floor:
#                  the RLPx session state of one peer.  (10,000 peers:
#                  see the README; ethereumjs needs minutes to get there.)
# Wall-clock figures include whatever else runs on the machine; the CPU
# figures (from /proc/PID/stat) do not.  SECONDS per workload, default 5.
# Needs node and tests/interop/node_modules (npm ci) for the ethereumjs
# column (else it prints "-").  Every process it starts is stopped by pid.
set -u
B=${1:-build}
S=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEVP2P=$B/tools/devp2p
NODED=$B/tools/devp2pd
BOUNDS=$B/tests/bench/bench_bounds
JSDIR=$ROOT/tests/interop
for f in "$DEVP2P" "$NODED" "$BOUNDS"; do
    [ -x "$f" ] || { echo "bench.sh: $f missing (build with -Dbench=true first)" >&2; exit 2; }
done
T=$(mktemp -d)
PIDS=
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
HZ=$(getconf CLK_TCK)

# jget FILE KEY.PATH: one value of a JSON file ("" if absent)
jget() {
    node -e 'let o=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));
for (const k of process.argv[2].split(".")) o = o == null ? undefined : o[k];
console.log(o == null ? "" : o)' "$1" "$2"
}
# cpu_s PID: CPU seconds (user + system) of a process so far
cpu_s() {
    awk -v hz="$HZ" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}
# calc EXPR: floating-point arithmetic ("-" when an operand is missing)
calc() {
    case "$1" in *--*|*"( "*|"") echo "-"; return ;; esac
    awk "BEGIN { x = $1; if (x != x) print \"-\"; else printf \"%.4g\", x }" 2>/dev/null || echo "-"
}

# stress NAME PID ENODE ARGS...: runs one workload, records rate and CPU
stress() {
    name=$1 pid=$2 enode=$3
    shift 3
    c0=$(cpu_s "$pid")
    "$DEVP2P" stress --target "$enode" --pid "$pid" --out "$T/$name.json" "$@" \
        >"$T/$name.txt" 2>/dev/null
    c1=$(cpu_s "$pid")
    echo "$c0 $c1" >"$T/$name.cpu"
}
cpu_of() { awk '{ print $2 - $1 }' "$T/$1.cpu"; }

run_all() { # SIDE PID ENODE HOLD_ENODE HOLD_PID
    side=$1
    # hold first, on a fresh process: its RSS growth is the peers' alone
    stress "${side}_hold" "$5" "$4" --mode hold --peers 300 --concurrency 32 --ping-interval 2 \
        --duration $((S + 25))
    stress "${side}_churn" "$2" "$3" --mode churn --peers 64 --duration "$S"
    stress "${side}_d4" "$2" "$3" --mode discv4 --requests ping --peers 64 --window 4 \
        --duration "$S"
    stress "${side}_flood" "$5" "$4" --mode flood --peers 8 --window 0 --msg-size 64 \
        --caps snap/1 --duration "$S"
}

echo "measuring the crypto bounds ..." >&2
"$BOUNDS" 64 >"$T/bounds.json" || exit 1

# ---- devp2p-c ----
echo "devp2pd ..." >&2
"$NODED" --datadir "$T/node" --port 0 --addr 127.0.0.1 --nodial --maxpeers 2000 \
    --maxpendpeers 256 --caps snap/1 --verbosity 1 >"$T/node.out" 2>"$T/node.err" &
NPID=$!
PIDS="$PIDS $NPID"
i=0
while ! grep -q '^enode:' "$T/node.out" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
OURS=$(sed -n 's/^enode: //p' "$T/node.out")
[ -n "$OURS" ] || { echo "bench.sh: devp2pd did not start: $(cat "$T/node.err")" >&2; exit 1; }
run_all ours "$NPID" "$OURS" "$OURS" "$NPID"
kill "$NPID" 2>/dev/null
wait "$NPID" 2>/dev/null

# ---- ethereumjs: one RLPx+DPT instance for churn and discv4 (peers
# dropped when added), one RLPx server keeping peers for flood and hold ----
EJS=no
if command -v node >/dev/null 2>&1 && [ -d "$JSDIR/node_modules/@ethereumjs/devp2p" ]; then
    echo "ethereumjs ..." >&2
    node "$JSDIR/bench-target.mjs" --mode both --duration 600 >"$T/ejs1.out" 2>"$T/ejs1.err" &
    J1=$!
    node "$JSDIR/bench-target.mjs" --mode rlpx --keep-peers --duration 600 >"$T/ejs2.out" \
        2>"$T/ejs2.err" &
    J2=$!
    PIDS="$PIDS $J1 $J2"
    i=0
    while { ! grep -q listening "$T/ejs1.out" || ! grep -q listening "$T/ejs2.out"; } 2>/dev/null &&
        [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    E1=$(grep -m1 listening "$T/ejs1.out" | sed 's/.*"enode":"\([^"]*\)".*/\1/')
    E2=$(grep -m1 listening "$T/ejs2.out" | sed 's/.*"enode":"\([^"]*\)".*/\1/')
    if [ -n "$E1" ] && [ -n "$E2" ]; then
        run_all ejs "$J1" "$E1" "$E2" "$J2"
        EJS=yes
    fi
    kill "$J1" "$J2" 2>/dev/null
    wait "$J1" "$J2" 2>/dev/null
fi

# ---- report ----
BF=$T/bounds.json
NCPU=$(jget "$BF" ncpu)
PAIR=$(jget "$BF" handshake_pair_us)
RECIP=$(jget "$BF" handshake_recipient_us)
PONG=$(jget "$BF" pong_us)
CODEC=$(jget "$BF" codec_msg_us)
SESS=$(jget "$BF" session_bytes)

val() { # SIDE WORKLOAD: the figure of a run
    f=$T/$1_$2.json
    [ -s "$f" ] || { echo "-"; return; }
    case $2 in
    churn) jget "$f" success_rate_per_s ;;
    d4) jget "$f" pongs_per_s ;;
    flood) calc "$(jget "$f" msgs_sent) / $(jget "$f" load_s)" ;; # sent during the load only
    hold) jget "$f" target_proc.rss_kb_per_live_peer ;;
    esac
}
count() { # SIDE WORKLOAD: operations done (for CPU per operation)
    f=$T/$1_$2.json
    [ -s "$f" ] || { echo 0; return; }
    case $2 in
    churn) jget "$f" successes ;;
    d4) jget "$f" pongs_received ;;
    flood) jget "$f" msgs_sent ;;
    esac
}
cpu_per_op() { # SIDE WORKLOAD: node CPU microseconds per operation
    n=$(count "$1" "$2")
    [ -s "$T/$1_$2.cpu" ] && [ "${n:-0}" != 0 ] || { echo "-"; return; }
    calc "$(cpu_of "$1_$2") * 1e6 / $n"
}

echo
echo "devp2p-c vs @ethereumjs/devp2p, $S s per workload, $NCPU cores shared by load generator and node"
echo "bounds (this run): handshake pair ${PAIR} us (recipient ${RECIP} us), recover+sign ${PONG} us,"
echo "  frame encode+decode of a 64-byte message ${CODEC} us, RLPx session state ${SESS} bytes"
echo
printf '%-22s %12s %12s %8s %12s %9s %14s %12s\n' figure devp2p-c ethereumjs ratio bound ours/bnd \
    "node-CPU/op" "bound-CPU/op"
row() { # NAME WORKLOAD BOUND CPU_BOUND_US
    o=$(calc "$(val ours "$2")") e=$(calc "$(val ejs "$2")")
    r=$(calc "$o / $e") ob=$(calc "$o / ($3)")
    printf '%-22s %12s %12s %8s %12s %9s %14s %12s\n' "$1" "$o" "$e" "$r" "$(calc "$3")" "$ob" \
        "$(cpu_per_op ours "$2") us" "$(calc "$4") us"
    [ "$EJS" = yes ] && printf '%-22s %12s %12s %8s %12s %9s %14s\n' "" "" "" "" "" "" \
        "ejs $(cpu_per_op ejs "$2") us"
}
row "handshakes/s (churn)" churn "$NCPU * 1e6 / $PAIR" "$RECIP"
row "discv4 pongs/s" d4 "$NCPU * 1e6 / $PONG" "$PONG"
row "messages/s (64 B)" flood "$NCPU * 1e6 / $CODEC" "$(calc "$CODEC / 2")"
o=$(calc "$(val ours hold)") e=$(calc "$(val ejs hold)")
printf '%-22s %12s %12s %8s %12s %9s\n' "KiB per live peer" "$o" "$e" "$(calc "$e / $o")" \
    "$(calc "$SESS / 1024")" "$(calc "$o * 1024 / $SESS")"
echo "(memory: ratio = ethereumjs / ours, bound = session-state floor, ours/bnd = how far above it)"
echo
for s in ours ejs; do
    for w in churn d4 flood hold; do
        f=$T/${s}_$w.json
        [ -s "$f" ] || continue
        printf '%s %s: failures %s, ' "$s" "$w" "$(jget "$f" failures)"
        case $w in
        churn) printf 'handshake p50 %s ms p99 %s ms\n' "$(jget "$f" handshake_latency.p50_ms)" \
            "$(jget "$f" handshake_latency.p99_ms)" ;;
        d4 | hold) printf 'reply p50 %s ms p99 %s ms, peak live %s\n' \
            "$(jget "$f" reply_latency.p50_ms)" "$(jget "$f" reply_latency.p99_ms)" \
            "$(jget "$f" peak_live)" ;;
        flood) printf 'bytes sent %s\n' "$(jget "$f" bytes_sent)" ;;
        esac
    done
done
