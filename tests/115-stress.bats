#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# Load: parallel random operations on lower, upper and shared files for a
# bounded time (tests/tools/stress.py, seeded, checked against a model),
# and stress-ng's filesystem stressors.  No crash, no deadlock, no fd leak,
# bounded memory, and every worker's tree as its operations imply.

load helpers.bash

# daemon_fds PID / daemon_rss_kb PID
daemon_fds() { ls "/proc/$1/fd" | wc -l; }
# resident memory from the page tables (smaps_rollup): before Linux 6.2
# VmRSS of a threaded process lags its threads' faults
daemon_rss_kb() {
	awk '/^Rss:/ {print $2; f = 1} END {exit !f}' "/proc/$1/smaps_rollup" 2>/dev/null ||
		awk '/^VmRSS/ {print $2}' "/proc/$1/status"
}

@test "parallel seeded stress (${OVERPASS_STRESS_SECONDS:-20} s, 8 workers): model holds, fds and memory bounded" {
	need_ovp
	local seed=${OVERPASS_STRESS_SEED:-$RANDOM} fds0 fds1 rss srv rss_max=102400
	# AddressSanitizer keeps up to 256 MiB of freed memory in quarantine
	# plus its shadow: the bound for a sanitizer build is that much higher
	if ldd "$OVERPASS" 2>/dev/null | grep -q libasan; then
		rss_max=$((102400 + 300 * 1024))
	fi
	python3 "$BATS_TEST_DIRNAME/tools/stress.py" --prepare --workers 8 "$LOWER"
	ovp_mount
	srv=$(server_pid)  # the worker under a supervisor: it must not die
	fds0=$(daemon_fds "$srv")
	run_cmd 0 timeout 300 python3 "$BATS_TEST_DIRNAME/tools/stress.py" "$MNT" \
		--workers 8 --seconds "${OVERPASS_STRESS_SECONDS:-20}" --seed "$seed"
	assert_contains ", ok" "$output"
	echo "# $output" >&3
	kill -0 "$srv"
	# once the kernel forgets, only the session's fds are left (one
	# /dev/fuse clone and a splice pipe per request thread, at most 16)
	sync
	echo 2 >/proc/sys/vm/drop_caches
	sleep 1
	fds1=$(daemon_fds "$srv")
	rss=$(daemon_rss_kb "$srv")
	echo "# daemon fds: $fds0 before, $fds1 after; RSS ${rss} kB" >&3
	[ "$fds1" -le $((fds0 + 16 * 3 + 8)) ] || { echo "# fds: $fds0 -> $fds1" >&2; false; }
	[ "$rss" -lt "$rss_max" ] || { echo "# RSS ${rss} kB" >&2; false; }
	assert_equal 1 "$(stat_value "$MNT" inodes)" "inodes left after the kernel forgot"
	ovp_umount
}

@test "stress-ng filesystem stressors on the mount: no crash, mount still right" {
	need_ovp
	need_cmd stress-ng
	mkdir "$LOWER/sng"
	echo keep >"$LOWER/keep"
	ovp_mount
	srv=$(server_pid)
	# the fallocate stressor's default file is 1 GiB: on a disk with
	# less free, every stressor fails with ENOSPC (stress-ng 0.15's
	# xattr stressor then reports values it never set), which says
	# nothing about the mount; 64 MiB keeps the test to what it checks
	echo "# free on the test's filesystem: $(df -h --output=avail "$T" | tail -1)" >&3
	run_cmd 0 --timeout 300 stress-ng --temp-path "$MNT/sng" --timeout 10s \
		--dentry 2 --dir 2 --filename 2 --rename 2 --link 2 --symlink 2 \
		--xattr 2 --fallocate 1 --fallocate-bytes 64m --seek 1 \
		--seek-size 16m --metrics-brief ||
		{ df -h "$T" >&2; false; }
	kill -0 "$srv"
	assert_equal keep "$(cat "$MNT/keep")"
	run_cmd 0 rm -rf "$MNT/sng"
	assert_equal "keep" "$(ls "$MNT")"
	ovp_umount
	assert_equal "" "$(ls -A "$WORK/work")" "workdir/work"
}

# An open for writing copies a lower file up while another caller unlinks
# it or renames a file over it.  Before, the copy-up could find the
# whiteout or the other file at the name (EEXIST from open(O_CREAT)
# without O_EXCL, hundreds of 2,000; ENXIO once the whiteout became the
# open file) or the unlink's whiteout could land on the fresh copy.  The
# removal now waits for the copy-up; a copy-up of a removed file sends the
# kernel back to look the path up (ESTALE), where O_CREAT makes it anew.
@test "opens for writing race unlinks and renames over the same lower files: each call as in some order" {
	need_ovp
	local i
	mkdir "$LOWER/d"
	for i in $(seq 0 1999); do
		echo "u$i" >"$LOWER/d/u$i"
		echo "r$i" >"$LOWER/d/r$i"
		echo "s$i" >"$LOWER/d/s$i"
	done
	ovp_mount
	ls "$MNT/d" >/dev/null
	run_cmd 0 timeout 300 python3 "$BATS_TEST_DIRNAME/tools/openrace.py" "$MNT/d" 2000
	assert_equal "no errors" "$output"
	ovp_umount
	assert_equal "" "$(ls -A "$WORK/work")" "workdir/work"
}
