#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Build overpass and run the whole test suite (bats suites and C unit tests)
# through `make check`, then again in a build with ASan and UBSan.
# Ends with one line "N passed, N failed, N skipped"; exits non-zero when
# any test fails.  OVERPASS_SKIP_ASAN=1 skips the sanitizer pass.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
pass=0 fail=0 skip=0 rc=0

count() { # builddir
	local f
	for f in $(find "$1/tests" -name '*.trs' 2>/dev/null); do
		pass=$((pass + $(grep -c '^:test-result: PASS' "$f")))
		fail=$((fail + $(grep -c '^:test-result: \(FAIL\|XPASS\|ERROR\)' "$f")))
		skip=$((skip + $(grep -c '^:test-result: SKIP' "$f")))
	done
	return 0 # grep -c exits 1 when it counts nothing
}

run_check() { # builddir [configure args...]
	local bdir=$1
	shift
	OVERPASS_BUILDDIR=$bdir "$top/contrib/build.sh" "$@" || return 2
	find "$bdir/tests" -name '*.trs' -delete 2>/dev/null
	if ! make -C "$bdir" -s check VERBOSE=1; then
		rc=1
	fi
	count "$bdir"
	[ "$rc" -eq 0 ]
}

# both passes build out of tree; an in-tree build (demo.sh, build.sh)
# would stop configure there, so it is cleaned first
[ ! -f "$top/Makefile" ] || make -C "$top" -s distclean >/dev/null 2>&1 || true
run_check "$top/_build" || rc=1
if [ "${OVERPASS_SKIP_ASAN:-0}" != 1 ]; then
	# the daemon forks to detach; leak checking of the exiting parent is noise
	export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	run_check "$top/_build-asan" --enable-sanitizers || rc=1
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] || rc=1
exit "$rc"
