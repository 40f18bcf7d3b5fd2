#!/bin/sh
# tests/tools/test_stress_refused.sh DEVP2P: `devp2p stress` against a
# loopback port that refuses connections (bound by this test, never
# listening) for 2 s in churn, adversarial and hold modes: every mode
# pauses after a failed connect, so the attempts stay few (< 100: the
# first --peers 32, then about 10 a second) and the harness does not busy
# a core (CPU time < 1 s of the 2 s; about 0.1 s alone, more when loopback
# traffic of other processes is charged to it; a spinning harness makes
# about 60,000 attempts and 2 s).  Each run exits 1 (its attempts failed)
# with "refused" failures.  About 10 s.  Port: the first free one in
# 44900-44999 on 127.0.0.1.
set -u
D=$1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
python3 - "$D" "$T" <<'PY'
import json, os, resource, socket, subprocess, sys
tool, tmp = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
port = None
for p in range(44900, 45000):
    try:
        s.bind(("127.0.0.1", p))
        port = p
        break
    except OSError:
        pass
assert port, "no free port in 44900-44999"
enode = subprocess.run([tool, "key", "to-enode", "--ip", "127.0.0.1", "--tcp", str(port),
                        "--udp", str(port), "11" * 32], check=True, capture_output=True,
                       text=True, timeout=10).stdout.strip()
fails = 0
for mode in ("churn", "adversarial", "hold"):
    out = os.path.join(tmp, mode + ".json")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(["timeout", "-k", "5", "30", tool, "stress", "--target", enode, "--mode",
                        mode, "--peers", "32", "--duration", "2", "--out", out],
                       capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    d = json.load(open(out))
    why = d["failures_by_reason"]
    print("%s: %d attempts, %.2f s CPU, exit %d, failures %s" % (mode, d["attempts"], cpu,
                                                                r.returncode, why))
    checks = [
        (r.returncode == 1, "exit %d (want 1)" % r.returncode),
        (0 < d["attempts"] < 100, "attempts %d (want 1..99)" % d["attempts"]),
        (cpu < 1.0, "CPU %.2f s (want < 1.0)" % cpu),
        (d["successes"] == 0 and d["failures"] == d["attempts"], "accounting"),
        (all("refused" in k for k in why), "reasons %s" % why),
    ]
    for good, msg in checks:
        if not good:
            fails += 1
            print("FAIL: %s: %s\n%s" % (mode, msg, r.stdout), file=sys.stderr)
s.close()
sys.exit(1 if fails else 0)
PY
