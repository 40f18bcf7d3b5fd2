#!/bin/sh
# tests/tools/test_stress_accounting.sh DEVP2PD DEVP2P SANITIZE: the stress
# harness counts what it could not do.
#   discv4 out of memory: under `ulimit -v`, --peers keys that do not fit
#   end with "out of memory" and status 1, not a crash (normal builds only:
#   a sanitizer's shadow memory does not fit under ulimit -v).
set -u
N=$1 D=$2 SAN=${3:-none}
. "$(dirname "$0")/lib_devp2pd.sh"

# --- discv4: the key table does not fit (8000 keys, about 76 MiB, under a
# 60 MiB address-space limit); needs 8000 + 80 descriptors
if [ "$SAN" != none ]; then
    echo "discv4 out of memory: skipped under $SAN"
elif [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt 8100 ]; then
    echo "discv4 out of memory: skipped (hard descriptor limit $(ulimit -Hn) < 8100)"
else
    EN=$("$D" key to-enode --ip 127.0.0.1 --tcp 1 --udp 9 \
        1111111111111111111111111111111111111111111111111111111111111111)
    (ulimit -v 60000 && exec timeout 30 "$D" stress --target "$EN" --mode discv4 --peers 8000 \
        --duration 1) >"$T/oom.out" 2>"$T/oom.err"
    rc=$?
    [ $rc -eq 1 ] && ok || bad "discv4 under ulimit -v exited $rc (want 1): $(cat "$T/oom.err")"
    grep -q 'out of memory' "$T/oom.err" && ok || bad "no 'out of memory': $(cat "$T/oom.err")"
fi

echo "stress-accounting ($SAN): $checks checks, $fails failed"
[ "$fails" -eq 0 ]
