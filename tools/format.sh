#!/bin/sh
# Formats (or with --check, verifies the format of) every C source in the tree.
set -eu
cd "${MESON_SOURCE_ROOT:-$(dirname "$0")/..}"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find core crypto wire actors tools tests -name '*.[ch]')
[ -n "$files" ] || exit 0
if [ "${1:-}" = "--check" ]; then
    # shellcheck disable=SC2086
    clang-format --dry-run --Werror $files
    echo "format-check: $(echo "$files" | wc -w) files clean"
else
    # shellcheck disable=SC2086
    clang-format -i $files
fi
