# SPDX-License-Identifier: GPL-2.0-or-later
# Shared set-up for the bats suites: layer directories per test, mounting
# overpass and kernel overlayfs, and a teardown that fails when a mount or
# a daemon the test started is left behind.

OVERPASS=${OVERPASS:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)/src/overpass}
TOP_SRCDIR=${TOP_SRCDIR:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}

setup() {
	T=$BATS_TEST_TMPDIR
	mkdir -p "$T/l1" "$T/l2" "$T/u" "$T/w" "$T/m" "$T/kl1" "$T/ku" "$T/kw" "$T/k"
	OVP_PIDS=()
}

# Every mount below $T, deepest first.
mounts_below() {
	awk -v t="$T/" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r
}

teardown() {
	local left m p
	left=$(mounts_below)
	for m in $left; do
		fusermount3 -u "$m" 2>/dev/null || umount "$m" 2>/dev/null || umount -l "$m"
	done
	for p in "${OVP_PIDS[@]}"; do
		wait_gone "$p" 10 || { kill -9 "$p" 2>/dev/null; left="$left daemon:$p"; }
	done
	if [ -n "$left" ]; then
		echo "left behind: $left" >&2
		return 1
	fi
}

need_root() {
	[ "$(id -u)" = 0 ] || skip "needs root"
	[ -c /dev/fuse ] || skip "needs /dev/fuse"
}

wait_gone() { # pid seconds
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.05
	done
	return 1
}

# The pid of the daemon serving mountpoint $1.
daemon_pid() {
	pgrep -f -- "overpass .*$1\$" | head -n 1
}

# ovp_mount OPTS [MOUNTPOINT]: mount detached, remember the daemon's pid.
ovp_mount() {
	local mnt=${2:-$T/m} pid
	run_cmd timeout 30 "$OVERPASS" -o "$1" "$mnt"
	[ "$status" -eq 0 ] || { echo "mount failed: $output" >&2; return 1; }
	pid=$(daemon_pid "$mnt")
	[ -n "$pid" ] || { echo "no daemon for $mnt" >&2; return 1; }
	OVP_PIDS+=("$pid")
	LAST_PID=$pid
}

ovp_umount() {
	local mnt=${1:-$T/m}
	fusermount3 -u "$mnt"
	[ -z "${LAST_PID:-}" ] || wait_gone "$LAST_PID" 10
}

kovl_mount() { # OPTS MOUNTPOINT
	mount -t overlay overlay -o "$1" "$2"
}

# run_cmd [-N] CMD...: like bats' run, logs the command and its output;
# with -N, the exit status must be N.
run_cmd() {
	local expect=""
	if [[ "${1:-}" =~ ^-[0-9]+$ ]]; then
		expect=${1#-}
		shift
	fi
	echo "\$ $*"
	run "$@"
	echo "$output"
	if [ -n "$expect" ] && [ "$status" -ne "$expect" ]; then
		echo "expected exit $expect, got $status: $*" >&2
		return 1
	fi
}

assert_equal() { # expected actual [what]
	if [ "$1" != "$2" ]; then
		printf 'expected: %s\n  actual: %s\n' "$1" "$2" >&2
		[ -z "${3:-}" ] || echo "  ($3)" >&2
		return 1
	fi
}

assert_files_equal() { # expected-file actual-file
	diff -u "$1" "$2" >&2
}

# stat_value MOUNTPOINT KEY: a value from overpass --stats.
stat_value() {
	"$OVERPASS" --stats "$1" | awk -v k="$2" '$1 == k {print $2}'
}

# tree_dump DIR: canonical description of a tree (names, types, modes,
# sizes, contents, link targets, devices, user xattrs).
tree_dump() {
	python3 "$TOP_SRCDIR/tests/tree-dump" "$1"
}
