#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# Hard links of a lower layer survive copy-up (kernel index=on), in the
# kernel's on-disk format both ways; workdir leftovers are cleaned at mount.

load helpers.bash

# links DIR NAME...: "NAME nlink ino" for each name, with the contents' sum
links() {
	local d=$1 n
	shift
	for n in "$@"; do
		printf '%s %s %s\n' "$n" "$(stat -c '%h %i' "$d/$n")" \
			"$(sha256sum <"$d/$n" | cut -c1-16)"
	done
}

mk_linked_lower() {
	mkdir -p "$LOWER/d"
	echo data >"$LOWER/a"
	ln "$LOWER/a" "$LOWER/b"
	ln "$LOWER/a" "$LOWER/d/c"
	echo single >"$LOWER/s"
}

@test "lower hard links stay links after copy-up, remount and removals; kernel agrees" {
	need_ovp
	need_kovl
	mk_linked_lower
	ovp_mount
	local ino
	ino=$(stat -c %i "$MNT/a")
	echo more >>"$MNT/a"
	assert_equal "data
more" "$(cat "$MNT/d/c")" "another name of the copied-up file"
	assert_equal "a 3 $ino
b 3 $ino
d/c 3 $ino" "$(links "$MNT" a b d/c | cut -d' ' -f1-3)"
	ovp_umount
	assert_equal data "$(cat "$LOWER/a")" "the lower file"
	assert_equal 3 "$(stat -c %h "$LOWER/a")" "the lower link count"

	ovp_mount
	assert_equal "a 3 $ino
b 3 $ino
d/c 3 $ino" "$(links "$MNT" a b d/c | cut -d' ' -f1-3)" "after remount"
	run_cmd 0 rm "$MNT/a"
	assert_equal "b 2 $ino
d/c 2 $ino" "$(links "$MNT" b d/c | cut -d' ' -f1-3)" "after rm a"
	run_cmd 0 mv "$MNT/b" "$MNT/b2"
	echo again >>"$MNT/b2"
	assert_equal "b2 2 $ino
d/c 2 $ino" "$(links "$MNT" b2 d/c | cut -d' ' -f1-3)" "after mv b b2"
	assert_equal "$(cat "$MNT/b2")" "$(cat "$MNT/d/c")"
	local want
	want=$(links "$MNT" b2 d/c s)
	ovp_umount

	# kernel overlayfs (index=on) reads the same from this upper
	kovl_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" index=on redirect_dir=on
	assert_equal "$want" "$(links "$KMNT" b2 d/c s)" "kernel overlayfs on overpass's upper"
	run_cmd 1 stat "$KMNT/a"
	run_cmd 1 stat "$KMNT/b"
	kovl_umount
}

@test "the last name of a linked file gone: its index entry goes too" {
	need_ovp
	mk_linked_lower
	ovp_mount
	echo more >>"$MNT/b"
	assert_equal 1 "$(find "$WORK/index" -type f | wc -l)" "index entries"
	run_cmd 0 rm "$MNT/a" "$MNT/b" "$MNT/d/c"
	assert_equal 0 "$(find "$WORK/index" -type f | wc -l)" "index entries"
	ovp_umount
	ovp_mount
	run_cmd 1 stat "$MNT/a"
	run_cmd 1 stat "$MNT/d/c"
	ovp_umount
}

@test "hard links copied up by kernel overlayfs (index=on) read the same" {
	need_ovp
	need_kovl
	mk_linked_lower
	kovl_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" index=on redirect_dir=on
	echo more >>"$KMNT/b"
	run_cmd 0 rm "$KMNT/d/c"
	local want
	want=$(links "$KMNT" a b s)
	kovl_umount
	ovp_mount
	assert_equal "$want" "$(links "$MNT" a b s)" "overpass on the kernel's upper"
	run_cmd 1 stat "$MNT/d/c"
	ovp_umount
}

@test "a copy-up left half done in workdir is cleaned at mount" {
	need_ovp
	echo a >"$LOWER/a"
	mkdir -p "$WORK/work/#ovp.1.1/sub" "$WORK/work/#ovp.1.2"
	echo partial >"$WORK/work/#ovp.1.1/sub/f"
	ln -s / "$WORK/work/#ovp.1.3"
	echo keep >"$UPPER/u"
	ovp_mount
	assert_equal "" "$(ls -A "$WORK/work")" "workdir/work after mount"
	assert_equal keep "$(cat "$MNT/u")"
	assert_equal a "$(cat "$MNT/a")"
	ovp_umount
	[ -d / ] # the symlink was removed, not followed
}
