#!/bin/sh
# tools/check-security-matrix.sh [BUILDDIR [SRCDIR]]: checks SECURITY.md's
# matrix of hostile inputs against the test suite, so it cannot rot.
#
# Every table row after the "## Matrix" heading must have three cells
# (input or fault, outcome, test) with a non-empty outcome, and its test
# cell must read `NAME` `FILE` `SYMBOL`: NAME a test in BUILDDIR's meson
# test list (meson-info/intro-tests.json, written by meson setup), FILE an
# existing file under SRCDIR, SYMBOL a string found in FILE (the function
# or the line that sends the input).  At least 40 rows.  Prints the row
# count; exits 1 listing every broken row.  BUILDDIR defaults to build,
# SRCDIR to the repository root.  Also run as the suite test
# 'security-matrix'.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$here/build}
S=${2:-$here}
exec python3 - "$B" "$S" <<'PY'
import json, os, re, sys
build, src = sys.argv[1], sys.argv[2]
intro = os.path.join(build, "meson-info", "intro-tests.json")
try:
    names = {t["name"] for t in json.load(open(intro))}
except (OSError, ValueError) as e:
    sys.exit("check-security-matrix: cannot read %s (%s): run meson setup first" % (intro, e))
doc = os.path.join(src, "SECURITY.md")
lines = open(doc, encoding="utf-8").read().split("\n")
bad, rows, in_matrix = [], 0, False
for no, line in enumerate(lines, 1):
    if line.startswith("## "):
        in_matrix = line.startswith("## Matrix")
        continue
    if not in_matrix or not line.startswith("|"):
        continue
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if cells and (cells[0] == "input or fault" or set(cells[0]) <= set("-: ")):
        continue  # header or separator
    rows += 1
    where = "SECURITY.md:%d" % no
    if len(cells) != 3 or not cells[0] or not cells[1]:
        bad.append("%s: want 3 non-empty cells: %s" % (where, line))
        continue
    ticks = re.findall(r"`([^`]+)`", cells[2])
    if len(ticks) != 3:
        bad.append("%s: test cell must be `NAME` `FILE` `SYMBOL`: %s" % (where, cells[2]))
        continue
    name, path, sym = ticks
    if name not in names:
        bad.append("%s: no test named '%s' in %s" % (where, name, intro))
    full = os.path.join(src, path)
    if not os.path.isfile(full):
        bad.append("%s: no file %s" % (where, path))
    elif sym not in open(full, encoding="utf-8", errors="replace").read():
        bad.append("%s: '%s' not found in %s" % (where, sym, path))
for b in bad:
    print(b, file=sys.stderr)
if rows < 40:
    print("SECURITY.md: %d matrix rows, want at least 40" % rows, file=sys.stderr)
    bad.append("rows")
print("security matrix: %d rows, %d broken" % (rows, len(bad) - (rows < 40)))
sys.exit(1 if bad else 0)
PY
