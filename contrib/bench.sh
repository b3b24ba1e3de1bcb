#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build overpass and benchmark it against kernel overlayfs and
# fuse-overlayfs: contrib/bench.py does the work, see its --help and
# doc/performance.md.  The build goes to _build-bench/ (never to _build/ or
# _build-asan/, which the tests use), so a benchmark can run beside them.
#
# Usage: contrib/bench.sh [bench.py options: --small, --reps N, --only ...]
# Runs as root (mounts, drop_caches); reruns itself through sudo otherwise.
# Environment: OVERPASS_BUILDDIR (default _build-bench).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null || { echo "bench.sh: run me as root" >&2; exit 1; }
	exec sudo env OVERPASS_BUILDDIR="${OVERPASS_BUILDDIR:-}" "$0" "$@"
fi
bdir=${OVERPASS_BUILDDIR:-$top/_build-bench}
OVERPASS_BUILDDIR=$bdir "$top/contrib/build.sh"
# Debian's interpreter: the script needs only the standard library
py=/usr/bin/python3
[ -x "$py" ] || py=python3
exec "$py" "$top/contrib/bench.py" --overpass "$(cd "$bdir" && pwd)/src/overpass" "$@"
