#!/bin/sh
# tests/tools/test_cli.sh DEVP2P VECTORS_DIR: the devp2p tool's key and ENR
# commands against tests/vectors/enr.txt, --help/--version, and bad input:
# every bad-input case must exit non-zero with exactly one line on stderr;
# --nodekeyhex is wiped from the process's arguments once read.
set -u
D=$1
V=$2/enr.txt
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
. "$(dirname "$0")/lib_wait.sh"
vec() { sed -n "s/^$1 = //p" "$V"; }
KEY=$(vec key)
ID=$(vec node_id)
TEXT=$(vec text)

# expect OUTPUT-PATTERN CMD...: exit 0 and stdout contains the fixed string
expect() {
    pat=$1; shift
    if out=$("$@" 2>"$T/err"); then
        case "$out" in *"$pat"*) ok ;; *) bad "$* printed '$out', want '$pat'" ;; esac
    else
        bad "$* exited $?: $(cat "$T/err")"
    fi
}
# reject CMD...: non-zero exit (WANT_RC if set) and exactly one stderr line
# starting "devp2p: "
reject() {
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    lines=$(wc -l <"$T/err")
    if [ "$rc" -eq 0 ]; then
        bad "$* succeeded, want an error"
    elif [ -n "${WANT_RC:-}" ] && [ "$rc" -ne "$WANT_RC" ]; then
        bad "$* exited $rc, want $WANT_RC: $(cat "$T/err")"
    elif [ "$lines" -ne 1 ] || ! grep -q '^devp2p: ' "$T/err"; then
        bad "$* stderr has $lines lines: $(cat "$T/err")"
    else
        ok
    fi
}
# usage_reject CMD...: as reject, with exit status 2 (a bad argument)
usage_reject() { WANT_RC=2 reject "$@"; }

expect "$ID" "$D" key to-id "$KEY"
expect "$ID" "$D" key to-id --hex "0x$KEY"
printf '%s\n' "$KEY" >"$T/key"
expect "$ID" "$D" key to-id "$T/key"
out=$("$D" key to-enr --ip 127.0.0.1 --udp 30303 --seq 1 "$KEY")
[ "$out" = "$TEXT" ] && ok || bad "to-enr gave '$out', want '$TEXT'"
expect "$TEXT" "$D" key to-enr --ip=127.0.0.1 --udp=30303 "$T/key"
expect "@127.0.0.1:30303" "$D" key to-enode "$T/key"
expect "@10.0.0.1:1234?discport=5678" "$D" key to-enode --ip 10.0.0.1 --tcp 1234 --udp 5678 "$KEY"

"$D" enrdump "$TEXT" >"$T/dump" 2>&1 && ok || bad "enrdump failed: $(cat "$T/dump")"
for want in "node id:   $ID" "seq:       1" "signature: valid" "ip:          127.0.0.1" \
    "udp:         30303" "id:          v4" "enode:     enode://"; do
    grep -qF "$want" "$T/dump" && ok || bad "enrdump output lacks '$want'"
done
printf '%s\n' "$TEXT" >"$T/enr"
expect "node id:   $ID" "$D" enrdump "$T/enr"

# key generate: a 64-hex + newline file, mode 0600, usable by to-id
expect "" "$D" key generate "$T/new"
[ "$(wc -c <"$T/new")" -eq 65 ] && grep -qE '^[0-9a-f]{64}$' "$T/new" && ok || bad "generated key file format"
[ "$(stat -c %a "$T/new")" = 600 ] && ok || bad "generated key mode $(stat -c %a "$T/new")"
gid=$("$D" key to-id "$T/new")
[ ${#gid} -eq 64 ] && ok || bad "to-id of a generated key: '$gid'"
[ "$("$D" key generate | wc -c)" -eq 65 ] && ok || bad "key generate without FILE"

expect "devp2p 0." "$D" --version
for c in "key to-id" "key to-enr" "key to-enode" "key generate" "enrdump" "rlpx ping" \
    "discv4 ping" "discv4 requestenr" "discv4 resolve" "discv4 crawl" "trace" "attach"; do
    # shellcheck disable=SC2086
    expect "usage: devp2p $c" "$D" $c --help
done
expect "commands:" "$D" --help
# every discv4 command names its own --timeout default (the deadline it
# applies when the flag is left out)
expect "overall deadline in seconds (default 3)" "$D" discv4 ping --help
expect "overall deadline in seconds (default 5)" "$D" discv4 requestenr --help
expect "overall deadline in seconds (default 10)" "$D" discv4 resolve --help
expect "overall deadline in seconds (default 30)" "$D" discv4 crawl --help
expect "to-enr" "$D" key --help

# bad input: one line, non-zero
reject "$D"
reject "$D" frobnicate
reject "$D" key
reject "$D" key explode
reject "$D" key to-id
reject "$D" key to-id --bogus "$KEY"
reject "$D" key to-id "$T/missing-file"
reject "$D" key to-id --hex "${KEY}00"
reject "$D" key to-id --hex "zz${KEY#??}"
reject "$D" key to-id "$KEY" extra
printf 'nothex\n' >"$T/badkey"
reject "$D" key to-id "$T/badkey"
reject "$D" key to-enr --ip 1.2.3 "$KEY"
reject "$D" key to-enr --udp 70000 "$KEY"
reject "$D" key to-enr --seq x "$KEY"
reject "$D" key to-enode --tcp "$KEY"
reject "$D" key generate "$T/new"
reject "$D" enrdump "enr:@@@"
reject "$D" enrdump "enr:-IS4QHCY"
reject "$D" enrdump "$T/missing-file"
reject "$D" enrdump "$T/key"
# a directory: the line names the reason ("read error" said nothing)
reject "$D" enrdump "$T"
grep -q 'Is a directory' "$T/err" && ok || bad "enrdump of a directory: $(cat "$T/err")"
# a flipped signature byte: decoded, shown as INVALID, exit status 1
# the text without its "enr:" prefix reaches the flag parser (it starts
# with "-"): a usage error that names the prefix
usage_reject "$D" enrdump "${TEXT#enr:}"
grep -q "unknown flag '-IS4Q.*starts with 'enr:'" "$T/err" && ok || bad "enrdump without enr:: $(cat "$T/err")"
BADSIG=$(printf '%s' "$TEXT" | sed 's/enr:-IS4QHCY/enr:-IS4QHCZ/')
"$D" enrdump "$BADSIG" >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && grep -q "signature: INVALID" "$T/out" && ok || bad "enrdump of a bad signature"
# "ip" holding 16 bytes and "ip6" holding 4 (the vector's key, a dummy
# signature): neither is an address of its key (EIP-778: ip is 4 bytes,
# ip6 16), so both are shown as raw RLP, not as an IPv6 / IPv4 address
WRONGIP=enr:-JK4QBEREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREREBgmlkgnY0gmlwkCABDbgAAAAAAAAAAAAAAAGDaXA2hAoAAAGJc2VjcDI1NmsxoQPKY0yuDUmstAHYpMa2_oxVtw0RW_QAdpzBQA8yWM0xOA
"$D" enrdump "$WRONGIP" >"$T/out" 2>"$T/err"
[ $? -eq 1 ] && grep -q '^  ip:  *9020010db8000000000000000000000001 (raw RLP)$' "$T/out" &&
    grep -q '^  ip6:  *840a000001 (raw RLP)$' "$T/out" && ok ||
    bad "enrdump of ip with 16 bytes, ip6 with 4: $(grep '^  ip' "$T/out")"
usage_reject "$D" rlpx ping "enode://1234@127.0.0.1:1"
usage_reject "$D" rlpx ping "enode://$(printf '%0128d' 0)@127.0.0.1:1"
usage_reject "$D" rlpx ping "enr:AAAA"
usage_reject "$D" rlpx ping "notanode"
reject "$D" rlpx ping --caps "snap" "$TEXT"
# an --identity that cannot fit a Hello (over 2048 bytes, or with the rest
# of the Hello) is a usage error found before any connection (it was cut
# to 2048 bytes, then failed after the connect and the handshake, exit 1)
for n in 2000 2049 100000; do
    usage_reject "$D" rlpx ping --timeout 2 --identity "$(head -c $n /dev/zero | tr '\0' a)" \
        "$("$D" key to-enode --tcp 1 "$KEY")"
    grep -q -- '--identity' "$T/err" && ok || bad "rlpx ping --identity of $n bytes: $(cat "$T/err")"
done
reject "$D" discv4 ping --timeout abc "$TEXT"
reject "$D" discv4 ping --timeout 0 "$TEXT"
reject "$D" attach --timeout 0 "$T" admin_nodeInfo
reject "$D" discv4 ping --addr 999.1.1.1 "$TEXT"
reject "$D" discv4 crawl
# a crawl nobody answers fails as every command does: one line on stderr
# and nothing on stdout, --json too (it printed the unanswered nodes as
# JSON, and a summary line before the error)
for j in "" --json; do
    # shellcheck disable=SC2086
    reject "$D" discv4 crawl $j --timeout 0.3 --bootnodes "$("$D" key to-enode --tcp 1 --udp 9 "$KEY")"
    [ ! -s "$T/out" ] && grep -q '^devp2p: no node answered (1 nodes discovered' "$T/err" && ok ||
        bad "crawl $j nobody answered: stdout '$(head -c 200 "$T/out")', stderr '$(cat "$T/err")'"
done
usage_reject "$D" discv4 crawl --bootnodes "enode://xyz"
# a reply timeout of 0 would count every node dead at once ("no node
# answered" in a few ms): refused as --timeout 0 is
usage_reject "$D" discv4 crawl --resp-timeout 0 --bootnodes "$TEXT"
usage_reject "$D" discv4 crawl --resp-timeout 0.0000001 --bootnodes "$TEXT"
usage_reject "$D" discv4 resolve --bootnodes "$TEXT" "nothex"
reject "$D" trace
reject "$D" trace --datadir "$T/no-such-dir"
reject "$D" trace --file "$T/key"
reject "$D" trace --datadir "$T" --export json "$T/x.json"
reject "$D" attach "$T/no-such.ipc" admin_nodeInfo
# hold against a port nobody listens on: failed connects pause new ones
# (100 ms), not a tight retry loop (it made ~55,000 attempts a second)
timeout 20 "$D" stress --target "$("$D" key to-enode --tcp 1 "$KEY")" --mode hold --peers 10 \
    --duration 1 --out "$T/dead.json" >/dev/null 2>&1
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if 0 < d['attempts'] <= 300 and d['successes'] == 0 else 1)" \
    "$T/dead.json" && ok || bad "stress hold against a closed port: $(cat "$T/dead.json" 2>&1 | head -c 300)"
# the summary is on stdout when the run ends, not only at exit: a FIFO as
# --out holds the tool after it, and the summary is there meanwhile (stdout
# to a file was written at exit, so a tool held up after its drain, or
# killed then, had shown nothing)
mkfifo "$T/held.json"
timeout -k 5 20 "$D" stress --target "$("$D" key to-enode --tcp 1 "$KEY")" --mode hold --peers 2 \
    --duration 0.2 --out "$T/held.json" >"$T/held.out" 2>"$T/held.err" &
hpid=$!
wait_until 100 has_line "$T/held.out" '^stress hold against' && ok ||
    bad "no summary while stress waits to write --out: $(cat "$T/held.out" "$T/held.err")"
timeout 10 cat "$T/held.json" >/dev/null # it writes its results and exits
wait $hpid
rc=$?
[ $rc -eq 1 ] && ok || bad "stress with a FIFO as --out exited $rc: $(cat "$T/held.err")"
# a --peers whose descriptors do not fit: the message names the --peers
# given (100), not the harness's internal total (with the adversarial
# connections and the margin)
(ulimit -n 150 && exec timeout 20 "$D" stress --target "$("$D" key to-enode --tcp 1 "$KEY")" \
    --mode adversarial --peers 100 --duration 1) >"$T/nofile.out" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q -- '--peers 100 needs 280 descriptors' "$T/nofile.out" && ok ||
    bad "stress --peers above the descriptor limit (exit $rc): $(cat "$T/nofile.out")"
# stress arguments out of range or malformed: a usage error before any
# load (a zero --duration ran nothing and exited 1 with no failure; a NaN
# or empty --adv-ratio, a --requests with other words in it and a --pid of
# no process were taken), in every mode, also for an option the mode does
# not use (churn and adversarial took any --concurrency or --requests,
# discv4 any --msg-size, --msg-code, --adv-ratio, --ping-interval or --caps)
DEAD=$("$D" key to-enode --tcp 1 --udp 1 "$KEY")
NOPID=$(cat /proc/sys/kernel/pid_max) # pids are below it
for bad_args in "--duration 0" "--duration 0ms" "--mode discv4 --duration 0" \
    "--adv-ratio nan" "--adv-ratio=" "--adv-ratio 0x10" "--adv-ratio 101" \
    "--mode discv4 --requests pings" "--mode discv4 --requests ping,bogus" \
    "--mode discv4 --requests ping," "--pid $NOPID" "--mode discv4 --pid $NOPID" \
    "--concurrency 0" "--concurrency abc" "--mode churn --concurrency 100001" \
    "--requests bogus" "--mode discv4 --msg-size 5" "--mode discv4 --msg-code x" \
    "--mode discv4 --adv-ratio nan" "--mode discv4 --ping-interval 0" \
    "--mode discv4 --caps snap"; do
    # shellcheck disable=SC2086
    usage_reject timeout 20 "$D" stress --target "$DEAD" --mode adversarial --duration 0.2 $bad_args
done
# the same forms, valid: taken (the load then fails against the closed port)
for good_args in "--adv-ratio 0.5" "--mode discv4 --requests findnode,ping" "--pid $$"; do
    # shellcheck disable=SC2086
    timeout 20 "$D" stress --target "$DEAD" --mode adversarial --duration 0.2 $good_args \
        >"$T/out" 2>"$T/err"
    rc=$?
    [ $rc -eq 1 ] && grep -q '^  attempts:' "$T/out" && ok ||
        bad "stress $good_args exited $rc: $(cat "$T/err")"
done
# stress result files whose directory is missing, that are directories
# themselves (the CSV summary's too) or empty: refused before any load
# (nothing on stdout: no summary of a run; a directory was found only
# after the load, its results lost)
mkdir "$T/r.json" "$T/s.summary.csv"
for bad_file in "--out $T/no-such-dir/r.json" "--plot $T/no-such-dir/p.svg" "--out $T" \
    "--out $T/r.json" "--plot $T/r.json" "--out $T/s.csv" "--out $T/s" "--out="; do
    # shellcheck disable=SC2086
    usage_reject timeout 20 "$D" stress --target "$DEAD" --duration 0.2 $bad_file
    [ ! -s "$T/out" ] && ok || bad "stress $bad_file ran: $(cat "$T/out")"
done
rmdir "$T/r.json" "$T/s.summary.csv"
# an RLPx ping to a closed port: a clean one-line failure
reject "$D" rlpx ping --timeout 2 "$("$D" key to-enode --tcp 1 "$KEY")"

# --nodekeyhex (both spellings) is wiped from the arguments once read: a
# discv4 ping to a silent port runs 2 s, /proc/PID/cmdline is read meanwhile
EN=$("$D" key to-enode --tcp 1 "$KEY")
for form in sep eq; do
    if [ $form = sep ]; then set -- --nodekeyhex "$KEY"; else set -- "--nodekeyhex=$KEY"; fi
    "$D" discv4 ping --timeout 2 "$@" "$EN" >"$T/ping.out" 2>&1 &
    pid=$!
    i=0 seen=
    while [ $i -lt 40 ]; do # the key is read at start: up to 2 s for --timeout to show
        seen=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)
        case "$seen" in *"--timeout"*) case "$seen" in *"$KEY"*) ;; *) break ;; esac ;; esac
        sleep 0.05; i=$((i + 1))
    done
    case "$seen" in
    *"$KEY"*) bad "--nodekeyhex ($form) left in /proc/$pid/cmdline: $seen" ;;
    *"--timeout"*) ok ;;
    *) bad "no command line read for the discv4 ping ($form): '$seen'" ;;
    esac
    wait "$pid"
    rc=$?
    [ $rc -eq 1 ] && grep -q "no pong" "$T/ping.out" && ok || bad "discv4 ping ($form): exit $rc, $(cat "$T/ping.out")"
done

echo "test_cli: $checks checks, $fails failed"
[ "$fails" -eq 0 ] && [ "$checks" -gt 0 ]
