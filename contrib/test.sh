#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build overpass and run the whole test suite (bats suites and C unit tests)
# through `make check`, twice, then part of it on two older kernels:
#   1. a plain build in _build/, with FUSE requests on /dev/fuse (the
#      kernel's fuse.enable_uring=N, its default);
#   2. a build with ASan and UBSan (configure --enable-sanitizers) in
#      _build-asan/, with FUSE over io_uring (fuse.enable_uring=Y), so each
#      transport runs the whole suite;
#   3. the files that exercise kernel-dependent paths (VM_FILES_* below) on
#      Debian 12's Linux 6.1 and Debian 13's 6.12, each booted under qemu
#      by contrib/vm-test.sh with _build's binary (without KVM, qemu
#      emulates the CPU: 1.6 to 3 times slower than here for these
#      files, up to 7 times for CPU-bound ones), then the self-contained
#      binary (contrib/build.sh --self-contained) with the basic files on
#      6.1, /opt/overpass-deps hidden.  Measured on 2 CPUs without KVM,
#      boot included, tests/040 with OVERPASS_DIFF_OPS=300 (not 3000), from
#      a clone in /tmp:
#        6.1, VM_FILES_61:  799 s (55 passed, 26 skipped: restart needs 6.9)
#        6.12, VM_FILES_612: 516 s (50 passed)
#        6.1 self-contained, BINARY_FILES: 403 s (34 passed, 1 skipped)
#      so the pass adds about 28 minutes to the two above (about 40).
#      The kernels are downloaded once into /var/cache/overpass-vm.
# The kernel's switch is put back as it was at exit.  Before them, the
# self-contained binary is built in _build-static/ (contrib/build.sh
# --self-contained), which tests/003 checks in both passes.
# Both are out-of-tree builds (contrib/build.sh with OVERPASS_BUILDDIR),
# so an in-tree build is removed first (automake refuses both at once).
#
# On failure the log of every failing test is printed.  The last line is
#   N passed, N failed, N skipped
# summed over every pass (the tests' .trs files, the VMs' TAP lines); a
# build that fails, or a pass that runs no test or ends without its
# counts, is one failed test.  Exit status: 0 when nothing failed.
#
# Environment:
#   OVERPASS_SKIP_ASAN=1  skip the sanitizer pass
#   OVERPASS_SKIP_VM=1    skip the VM pass
#   OVERPASS_VM_KERNELS   kernels of the VM pass (default "6.1 6.12")
#   OVERPASS_VM_CACHE, OVERPASS_VM_TIMEOUT, OVERPASS_NO_APT
#                         passed on to contrib/vm-test.sh
#   OVERPASS_SKIP_STATIC=1
#                         do not build the self-contained binary (tests/003
#                         then skips)
#   OVERPASS_TEST_BUDGET
#                         seconds the whole run may take (.ci/run: 5100, CI
#                         stops at 5400); each VM run is bounded by what is
#                         left, and one that cannot start with 5 minutes
#                         left counts as a failure, so a slow run ends with
#                         its counts and logs rather than being cut off
#   OVERPASS_TEST_URING=keep
#                         leave fuse.enable_uring as it is for both passes
#   ASAN_OPTIONS, UBSAN_OPTIONS
#                         for the sanitizer pass (defaults: ASan's own, with
#                         leak checking; UBSan print_stacktrace=1).  Every
#                         report is written under _build-asan/sanitizer/ -
#                         a detached daemon's stderr is /dev/null - and any
#                         report fails the run.  The daemon forks to detach;
#                         the parent leaves with _exit(), so only the
#                         daemon's own exit is leak-checked.  Where
#                         LeakSanitizer cannot run (under ptrace or in some
#                         sandboxes) use ASAN_OPTIONS=detect_leaks=0.
#   Runs as root for the full suite; as another user the tests that need
#   root or /dev/fuse are skipped.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
budget=${OVERPASS_TEST_BUDGET:-}
pass=0 fail=0 skip=0 rc=0

note() { printf 'test.sh: %s\n' "$*" >&2; }

# Results of one build directory's .trs files: "pass fail skip".  The TAP
# driver adds an ERROR for a suite exiting non-zero, which a failing bats
# test always causes: an ERROR counts only in a file with no FAIL.
count_trs() {
	local trs
	mapfile -d '' trs < <(find "$1/tests" -name '*.trs' -print0 2>/dev/null)
	[ "${#trs[@]}" -gt 0 ] || { echo "0 0 0"; return; }
	awk 'function flush() { f += bad ? bad : err; bad = err = 0 }
		FNR == 1 { flush() }
		$1 == ":test-result:" {
			if ($2 == "PASS" || $2 == "XFAIL") p++
			else if ($2 == "SKIP") s++
			else if ($2 == "ERROR") err++
			else bad++ # FAIL, XPASS
		}
		END { flush(); printf "%d %d %d\n", p, f, s }' "${trs[@]}"
}

# Print the log of every test whose .trs records a failure.
show_failures() {
	local trs shown=0
	while IFS= read -r -d '' trs; do
		grep -Eq '^:test-result: (FAIL|XPASS|ERROR)' "$trs" || continue
		echo "======== ${trs%.trs}.log"
		cat "${trs%.trs}.log"
		shown=1
	done < <(find "$1/tests" -name '*.trs' -print0 2>/dev/null)
	if [ "$shown" = 0 ] && [ -f "$1/test-suite.log" ]; then
		echo "======== $1/test-suite.log"
		cat "$1/test-suite.log"
	fi
}

# run_pass NAME BUILDDIR [CONFIGURE-ARGS...]
run_pass() {
	local name=$1 bdir=$2 p f s checkrc=0
	shift 2
	note "$name pass: building in $bdir"
	if ! OVERPASS_BUILDDIR=$bdir "$top/contrib/build.sh" "$@"; then
		note "$name pass: build failed"
		fail=$((fail + 1))
		rc=1
		return
	fi
	find "$bdir/tests" -name '*.trs' -delete 2>/dev/null
	note "$name pass: make check"
	make -C "$bdir" -s check || checkrc=$?
	read -r p f s < <(count_trs "$bdir")
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	if [ $((p + f + s)) = 0 ]; then
		note "$name pass: no test ran"
		fail=$((fail + 1))
		rc=1
	elif [ "$checkrc" != 0 ] || [ "$f" != 0 ]; then
		rc=1
		show_failures "$bdir"
		if [ "$f" = 0 ]; then
			note "$name pass: make check failed before any test failed"
			fail=$((fail + 1))
		fi
	fi
	note "$name pass: $p passed, $f failed, $s skipped"
}

uring_param=/sys/module/fuse/parameters/enable_uring
uring_saved=

# set_transport Y|N: FUSE over io_uring for the mounts of the next pass.
set_transport() {
	[ "${OVERPASS_TEST_URING:-}" = keep ] && return
	if [ ! -w "$uring_param" ]; then
		note "no writable $uring_param: every pass uses /dev/fuse"
		return
	fi
	[ -n "$uring_saved" ] || uring_saved=$(cat "$uring_param")
	echo "$1" >"$uring_param"
	note "fuse.enable_uring=$1"
}

restore_transport() {
	[ -z "$uring_saved" ] || echo "$uring_saved" >"$uring_param"
}
trap restore_transport EXIT

# About 25 s on 2 cores, 30 s more the first time (the static libfuse).
if [ "${OVERPASS_SKIP_STATIC:-0}" != 1 ]; then
	note "self-contained build in $top/_build-static"
	if ! OVERPASS_BUILDDIR=$top/_build-static "$top/contrib/build.sh" --self-contained; then
		note "self-contained build failed"
		fail=$((fail + 1))
		rc=1
	fi
fi

set_transport N
run_pass plain "$top/_build"

if [ "${OVERPASS_SKIP_ASAN:-0}" != 1 ]; then
	san=$top/_build-asan/sanitizer
	mkdir -p "$san"
	rm -f "$san"/*
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$san/asan"
	export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}:log_path=$san/ubsan"
	set_transport Y
	run_pass sanitizer "$top/_build-asan" --enable-sanitizers
	for r in "$san"/*; do
		[ -s "$r" ] || continue
		echo "======== sanitizer report $r"
		cat "$r"
		fail=$((fail + 1))
		rc=1
	done
else
	note "sanitizer pass skipped (OVERPASS_SKIP_ASAN=1)"
fi

# The files of the VM pass on 6.1, which has none of passthrough,
# resend and io_uring: passthrough's fallback, restart (off there: 131
# and 132 skip), locks, copy-up, modes and the clearing of setuid
# (KILLPRIV_V2), rootless, the differential test against kernel overlayfs
# and the kernel's features.
VM_FILES_61=(tests/030-write.bats tests/035-file-ops.bats tests/036-writeback.bats tests/040-differential.bats
	tests/060-owner-acl.bats tests/065-rootless.bats tests/080-passthrough.bats tests/130-restart.bats
	tests/131-restart-kept.bats tests/132-restart-once.bats tests/140-locks.bats
	tests/150-kernel.bats)
# On 6.12, which has passthrough and resend but no io_uring (the paths of
# 6.18 with fuse.enable_uring=N, the first pass), the files whose paths
# depend on the kernel beyond that: passthrough, restart, the clearing of
# setuid before a passthrough write, rootless (idmapped layers) and the
# kernel's features, and the open-file bound without FUSE_NOTIFY_PRUNE
# (095, which hung there once).  Before 060 was in both lists, all of VM_FILES_61 passed
# there too (73 of 73, 859 s).
VM_FILES_612=(tests/060-owner-acl.bats tests/065-rootless.bats tests/080-passthrough.bats tests/130-restart.bats
	tests/131-restart-kept.bats tests/150-kernel.bats tests/095-limits.bats)
# The basic files, run with the self-contained binary on 6.1 (030 and
# 035 run there in VM_FILES_61 with the usual build; with them too, 41
# passed and 1 skipped in 491 s).
BINARY_FILES=(tests/003-self-contained.bats tests/001-mount.bats
	tests/010-merged-view.bats)
# Each VM run's bound: a hung VM fails its run, and the VM pass cannot
# take more than about 40 minutes whatever happens.
VM_TIMEOUT_FILES=${OVERPASS_VM_TIMEOUT:-1200}
VM_TIMEOUT_BINARY=${OVERPASS_VM_TIMEOUT:-600}

# vm_bound [VAR=VALUE...] MAX: the OVERPASS_VM_TIMEOUT among the
# variables, at most MAX
vm_bound() {
	local t=1200 max=${!#} a
	for a in "${@:1:$#-1}"; do
		case "$a" in OVERPASS_VM_TIMEOUT=*) t=${a#*=} ;; esac
	done
	echo $((t < max ? t : max))
}

# run_vm NAME KERNEL [VAR=VALUE...] -- FILES...: FILES on KERNEL, with
# the variables given to contrib/vm-test.sh; its counts are added to the
# totals, a run that ends without them counts as one failure.
run_vm() {
	local name=$1 k=$2 log=$top/_build/vm-$1.log vrc=0 line p f s left
	local -a env=()
	shift 2
	while [ "$1" != -- ]; do
		env+=("$1")
		shift
	done
	shift
	if [ -n "$budget" ]; then
		left=$((budget - SECONDS))
		if [ "$left" -lt 300 ]; then
			note "vm pass $name: Linux $k: not run, ${left} s left of OVERPASS_TEST_BUDGET=$budget"
			fail=$((fail + 1))
			rc=1
			return
		fi
		# the VM's own bound (the last VAR=VALUE wins) within what is left
		env+=("OVERPASS_VM_TIMEOUT=$(vm_bound "${env[@]}" "$((left - 60))")")
	fi
	note "vm pass $name: Linux $k: ${*##*/}"
	env OVERPASS_DIFF_OPS="${OVERPASS_DIFF_OPS:-300}" "${env[@]}" \
		"$top/contrib/vm-test.sh" "$k" "${@/#/$top/}" </dev/null >"$log" 2>&1 ||
		vrc=$?
	# not anchored at the start: a console line cut without its newline
	# may precede it
	line=$(grep -oE '[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -n1)
	if [ -z "$line" ]; then
		echo "======== $log"
		tail -n 40 "$log"
		note "vm pass $name: Linux $k: no result (vm-test.sh exit $vrc)"
		fail=$((fail + 1))
		rc=1
		return
	fi
	read -r p _ f _ s _ <<<"$line"
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	if [ $((p + f + s)) = 0 ] || [ "$f" != 0 ] || [ "$vrc" != 0 ]; then
		rc=1
		echo "======== $log"
		tr -cd '\11\12\40-\176' <"$log"
		if [ "$f" = 0 ]; then
			fail=$((fail + 1))
		fi
	else
		grep -E '^ok .*# skip' "$log" || true
	fi
	note "vm pass $name: Linux $k: $p passed, $f failed, $s skipped"
}

if [ "${OVERPASS_SKIP_VM:-0}" = 1 ]; then
	note "VM pass skipped (OVERPASS_SKIP_VM=1)"
elif [ ! -x "$top/_build/src/overpass" ]; then
	note "VM pass: no _build/src/overpass (the plain build failed)"
	fail=$((fail + 1))
	rc=1
else
	for k in ${OVERPASS_VM_KERNELS:-6.1 6.12}; do
		if [ "$k" = 6.1 ]; then
			files=("${VM_FILES_61[@]}")
		else
			files=("${VM_FILES_612[@]}")
		fi
		run_vm "$k" "$k" OVERPASS="$top/_build/src/overpass" \
			OVERPASS_VM_TIMEOUT="$VM_TIMEOUT_FILES" -- "${files[@]}"
	done
	# the self-contained binary on Debian 12's kernel, installed as a user
	# would, without /opt/overpass-deps
	if [ -x "$top/_build-static/src/overpass" ]; then
		run_vm 6.1-self-contained 6.1 OVERPASS_VM_TIMEOUT="$VM_TIMEOUT_BINARY" \
			OVERPASS_VM_BINARY="$top/_build-static/src/overpass" -- "${BINARY_FILES[@]}"
	fi
fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ] || rc=1
exit "$rc"
