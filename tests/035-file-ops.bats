#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# O_TMPFILE, copy_file_range, flock and POSIX locks, SEEK_DATA/SEEK_HOLE:
# the same results as kernel overlayfs on the same layers.

load helpers.bash

# fileops.py on both mounts, compared; the arguments are overpass's options
# besides the layers.
file_ops() { # [ovp-opts...]
	mkdir "$LOWER/sub"
	printf abc >"$LOWER/lower"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" "$@"
	kovl_mount
	python3 "$BATS_TEST_DIRNAME/tools/fileops.py" "$KMNT" >"$T/kernel.out"
	python3 "$BATS_TEST_DIRNAME/tools/fileops.py" "$MNT" >"$T/ovp.out"
	if ! kernel_ge 6.6; then
		# kernel overlayfs has O_TMPFILE from 6.6 on; overpass has it on
		# every kernel: compare the rest, assert overpass's tmpfile lines
		grep -q "^tmpfile: ENOTSUP" "$T/kernel.out"
		grep -q "^tmpfile-unlinked: size=10 " "$T/ovp.out"
		sed -i '/^tmpfile/d' "$T/kernel.out"
		grep -v '^tmpfile' "$T/ovp.out" >"$T/ovp.cmp"
	else
		cp "$T/ovp.out" "$T/ovp.cmp"
	fi
	if [ "$(stat_value "$MNT" writeback.active)" = 1 ]; then
		# the kernel's writeback cache (no passthrough) holds written
		# pages the real file lacks and does not write them before
		# LSEEK: the kernel answers, the whole file as data
		grep -q "^seek data/hole: (1048576, 0, 1048576, 1048577)$" "$T/kernel.out"
		sed -i 's|^seek data/hole: .*|seek data/hole: (0, 1048577, 4096, 1048577)|' \
			"$T/kernel.out"
	fi
	run_cmd 0 diff -u "$T/kernel.out" "$T/ovp.cmp"
	grep -q "^tmpfile: mode=0o100640 nlink0=0 nlink=1 data=b'anonymous'" "$T/ovp.out"
	# the daemon answered them itself (no fallback in the kernel or libc)
	assert_ge 2 "$(stat_value "$MNT" requests.TMPFILE)" "TMPFILE requests"
	assert_ge 2 "$(stat_value "$MNT" requests.COPY_FILE_RANGE)" "COPY_FILE_RANGE requests"
	ovp_umount
	kovl_umount
	assert_equal anonymous "$(cat "$UPPER/sub/named")"
	assert_equal "" "$(ls -A "$WORK/work")" "workdir/work"
}

@test "tmpfile, copy_file_range, locks and SEEK_DATA/HOLE as kernel overlayfs" {
	need_ovp
	need_kovl
	file_ops
}

@test "the same with the writeback cache (passthrough=off,writeback=1): SEEK_DATA/HOLE answered by the kernel" {
	need_ovp
	need_kovl
	file_ops passthrough=off writeback=1
	grep -q "^seek data/hole: (0, 1048577, 4096, 1048577)$" "$T/ovp.out"
}

@test "copy-up from a lower on another filesystem (copy_file_range refuses): data and holes kept" {
	need_ovp
	tmpfs_mount "$T/tmp"
	mkdir "$T/tmp/upper" "$T/tmp/work"
	head -c 3000000 /dev/urandom >"$LOWER/f"
	truncate -s 64M "$LOWER/sparse"
	printf end | dd of="$LOWER/sparse" bs=1 seek=$((64 * 1048576 - 3)) conv=notrunc status=none
	ovp_mount "lowerdir=$LOWER" "upperdir=$T/tmp/upper" "workdir=$T/tmp/work"
	echo x >>"$MNT/f"
	echo y >>"$MNT/sparse"
	run_cmd 0 cmp -n 3000000 "$LOWER/f" "$MNT/f"
	assert_equal 3000002 "$(stat -c %s "$T/tmp/upper/f")"
	run_cmd 0 cmp -n $((64 * 1048576)) "$LOWER/sparse" "$T/tmp/upper/sparse"
	[ "$(stat -c %b "$T/tmp/upper/sparse")" -lt 1024 ] ||
		{ echo "# the sparse copy has $(stat -c %b "$T/tmp/upper/sparse") blocks" >&2; false; }
	ovp_umount
	run_cmd 0 umount "$T/tmp"
}
