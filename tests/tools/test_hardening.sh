#!/bin/sh
# tests/tools/test_hardening.sh READELF FORTIFY BINARY...: the installed
# programs carry the exploit mitigations meson.build asks for (option
# `hardening`, registered only when it is on and no sanitizer is):
#   - a position-independent executable (ELF type DYN, FLAGS_1 PIE);
#   - full RELRO: a GNU_RELRO segment and BIND_NOW;
#   - a non-executable stack (GNU_STACK without E);
#   - the stack protector (a reference to __stack_chk_fail);
#   - with FORTIFY = 1 (an optimizing build): _FORTIFY_SOURCE's checked
#     string and stdio functions (__memcpy_chk and __snprintf_chk, which
#     every program here uses).
set -u
R=$1 F=$2
shift 2
fails=0 checks=0
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
for b in "$@"; do
    n=$(basename "$b")
    h=$("$R" -hW "$b") || { bad "$n: readelf -h failed"; continue; }
    d=$("$R" -dW "$b")
    l=$("$R" -lW "$b")
    s=$("$R" --dyn-syms -W "$b")
    if echo "$h" | grep -q 'Type:[[:space:]]*DYN' && echo "$d" | grep -q 'FLAGS_1.*PIE'; then ok; else bad "$n: not a PIE"; fi
    if echo "$l" | grep -q 'GNU_RELRO'; then ok; else bad "$n: no GNU_RELRO segment"; fi
    if echo "$d" | grep -Eq '\(FLAGS\).*BIND_NOW|FLAGS_1.*NOW'; then ok; else bad "$n: no BIND_NOW (partial RELRO)"; fi
    st=$(echo "$l" | grep 'GNU_STACK')
    if [ -n "$st" ] && ! echo "$st" | grep -q 'RWE'; then ok; else bad "$n: executable or unmarked stack: $st"; fi
    if echo "$s" | grep -q '__stack_chk_fail'; then ok; else bad "$n: no stack protector (__stack_chk_fail)"; fi
    if [ "$F" = 1 ]; then
        for f in __memcpy_chk __snprintf_chk; do
            if echo "$s" | grep -q "$f"; then ok; else bad "$n: no $f (_FORTIFY_SOURCE off?)"; fi
        done
    fi
done
echo "hardening: $checks checks, $fails failed"
[ "$checks" -gt 0 ] && [ "$fails" -eq 0 ]
