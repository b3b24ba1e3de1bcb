#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# metacopy=on: chmod, chown, utimes and xattrs on a lower file bring up
# its metadata only, in kernel overlayfs's metacopy format.

load helpers.bash

mk_big() {
	dd if=/dev/urandom of="$LOWER/big" bs=1M count=64 status=none
	echo small >"$LOWER/small"
}

# blocks FILE: 512-byte blocks allocated
blocks() { stat -c %b "$1"; }

@test "metacopy=on: metadata changes leave the data below until a write" {
	need_ovp
	mk_big
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" metacopy=on
	local ino
	ino=$(stat -c %i "$MNT/big")
	run_cmd 0 chmod 600 "$MNT/big"
	run_cmd 0 chown 1234:5678 "$MNT/big"
	run_cmd 0 touch -h -d @1000000000 "$MNT/big" # -h: utimensat, no open
	run_cmd 0 setfattr -n user.tag -v blue "$MNT/big"
	# the upper copy holds no data, the merged file still all of it
	[ "$(blocks "$UPPER/big")" -lt 64 ] || { echo "# upper/big has $(blocks "$UPPER/big") blocks" >&2; false; }
	getfattr -n trusted.overlay.metacopy "$UPPER/big" >/dev/null
	run_cmd 0 cmp "$LOWER/big" "$MNT/big"
	assert_equal "600 1234:5678 1000000000 $ino 67108864" \
		"$(stat -c '%a %u:%g %Y %i %s' "$MNT/big")"
	[ "$(blocks "$MNT/big")" -ge 131072 ] # the data's blocks, as the kernel shows
	assert_equal blue "$(getfattr --only-values -n user.tag "$MNT/big")"
	ovp_umount

	# after remount, still metadata only; then a write brings the data up
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" metacopy=on
	run_cmd 0 cmp "$LOWER/big" "$MNT/big"
	echo tail >>"$MNT/big"
	assert_equal "$(($(stat -c %s "$LOWER/big") + 5))" "$(stat -c %s "$MNT/big")"
	ovp_umount
	run_cmd 1 getfattr -n trusted.overlay.metacopy "$UPPER/big"
	run_cmd 0 cmp -n 67108864 "$LOWER/big" "$UPPER/big"
	assert_equal tail "$(tail -c 5 "$UPPER/big")"
	assert_equal "600 1234:5678 $ino" "$(stat -c '%a %u:%g' "$UPPER/big") $ino"
}

@test "metacopy=on: kernel overlayfs reads overpass's metacopy files, and the reverse" {
	need_ovp
	need_kovl
	mk_big
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" metacopy=on
	run_cmd 0 chmod 640 "$MNT/big"
	ovp_umount
	kovl_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" metacopy=on redirect_dir=on
	run_cmd 0 cmp "$LOWER/big" "$KMNT/big"
	assert_equal 640 "$(stat -c %a "$KMNT/big")"
	kovl_umount

	# the kernel's own metacopy, read by overpass (metacopy off or on)
	kovl_mount "lowerdir=$LOWER" "upperdir=$KUPPER" "workdir=$KWORK" metacopy=on redirect_dir=on
	run_cmd 0 chmod 604 "$KMNT/small"
	kovl_umount
	getfattr -n trusted.overlay.metacopy "$KUPPER/small" >/dev/null
	ovp_mount "lowerdir=$LOWER" "upperdir=$KUPPER" "workdir=$KWORK"
	assert_equal small "$(cat "$MNT/small")"
	assert_equal 604 "$(stat -c %a "$MNT/small")"
	echo more >>"$MNT/small"
	ovp_umount
	assert_equal "small
more" "$(cat "$KUPPER/small")"
}

@test "metacopy=on: a reader open through passthrough keeps working across chmod and a write" {
	need_ovp
	need_init_root
	mk_big
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" metacopy=on
	exec 5<"$MNT/big"
	run_cmd 0 chmod 600 "$MNT/big"
	run_cmd 0 cmp - "$LOWER/big" <&5
	exec 5<"$MNT/big"
	echo tail >>"$MNT/big"
	assert_equal tail "$(tail -c 5 "$MNT/big")"
	head -c 1000 <&5 | cmp - <(head -c 1000 "$LOWER/big")
	exec 5<&-
	assert_equal 0 "$(stat_value "$MNT" requests.WRITE)" "WRITE requests"
	ovp_umount
	run_cmd 0 cmp -n 67108864 "$LOWER/big" "$UPPER/big"
	assert_equal 67108864 "$(stat -c %s "$LOWER/big")" "the lower file"
}

@test "metacopy is off by default: chmod copies the data" {
	need_ovp
	mk_big
	ovp_mount
	run_cmd 0 chmod 600 "$MNT/big"
	ovp_umount
	run_cmd 1 getfattr -n trusted.overlay.metacopy "$UPPER/big"
	run_cmd 0 cmp "$LOWER/big" "$UPPER/big"
}
