#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# O_TMPFILE, copy_file_range, flock and POSIX locks, SEEK_DATA/SEEK_HOLE:
# the same results as kernel overlayfs on the same layers.

load helpers.bash

@test "tmpfile, copy_file_range, locks and SEEK_DATA/HOLE as kernel overlayfs" {
	need_ovp
	need_kovl
	mkdir "$LOWER/sub"
	printf abc >"$LOWER/lower"
	ovp_mount
	kovl_mount
	python3 "$BATS_TEST_DIRNAME/tools/fileops.py" "$KMNT" >"$T/kernel.out"
	python3 "$BATS_TEST_DIRNAME/tools/fileops.py" "$MNT" >"$T/ovp.out"
	run_cmd 0 diff -u "$T/kernel.out" "$T/ovp.out"
	grep -q "^tmpfile: mode=0o100640 nlink0=0 nlink=1 data=b'anonymous'" "$T/ovp.out"
	# the daemon answered them itself (no fallback in the kernel or libc)
	assert_ge 2 "$(stat_value "$MNT" requests.TMPFILE)" "TMPFILE requests"
	assert_ge 2 "$(stat_value "$MNT" requests.COPY_FILE_RANGE)" "COPY_FILE_RANGE requests"
	ovp_umount
	kovl_umount
	assert_equal anonymous "$(cat "$UPPER/sub/named")"
	assert_equal "" "$(ls -A "$WORK/work")" "workdir/work"
}
