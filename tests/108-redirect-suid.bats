#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# redirect_dir=on|follow|off|nofollow against kernel overlayfs (renaming a
# lower directory: a redirect or EXDEV; reading a redirect: followed or
# EPERM), going back to fuse-overlayfs after each default, and the suid
# and dev defaults of a root mount.

load helpers.bash

teardown() {
	local m
	if [ -n "${S:-}" ] && [ -d "$S" ]; then
		for m in $(mounts_below "$S"); do
			fusermount3 -u "$m" 2>/dev/null || umount -l "$m"
		done
		rm -rf "$S"
	fi
	ovp_teardown
}

# rename_result MNT: how renaming the lower directory a ends
rename_result() {
	python3 -c "import os, sys
try:
    os.rename(sys.argv[1] + '/a', sys.argv[1] + '/a2'); print('ok')
except OSError as e:
    print(os.strerror(e.errno))" "$1"
}

@test "redirect_dir: each mode renames and reads redirects as kernel overlayfs does" {
	need_ovp
	need_kovl
	need_trusted
	local mode opt i=0
	mkdir -p "$T/src"
	for mode in default on follow off nofollow; do
		i=$((i + 1))
		opt=
		[ "$mode" = default ] || opt=",redirect_dir=$mode"
		mkdir -p "$T/$i"/{l/a,u,w,ku,kw}
		echo x >"$T/$i/l/a/f"
		run_ovp 0 -o "lowerdir=$T/$i/l,upperdir=$T/$i/u,workdir=$T/$i/w$opt" "$MNT"
		run_cmd 0 mount -t overlay overlay -o "lowerdir=$T/$i/l,upperdir=$T/$i/ku,workdir=$T/$i/kw$opt" "$KMNT"
		assert_equal "$(rename_result "$KMNT")" "$(rename_result "$MNT")" "rename, $mode"
		run_cmd 0 fusermount3 -u "$MNT"
		run_cmd 0 umount "$KMNT"
	done
	# written only with on (i=2), as the kernel
	assert_equal a "$(getfattr --only-values -n trusted.overlay.redirect "$T/2/u/a2")"
	assert_equal a "$(getfattr --only-values -n trusted.overlay.redirect "$T/2/ku/a2")"
	cp -a "$T/2/l" "$T/2/ku" "$T/src/"
	assert_equal "" "$(find "$T/1/u" "$T/3/u" "$T/4/u" "$T/5/u" -mindepth 1)" "nothing written but with on"
	# an upper the kernel wrote with redirect_dir=on, read under each mode
	i=0
	for mode in default on follow off nofollow; do
		i=$((i + 1))
		opt=
		[ "$mode" = default ] || opt=",redirect_dir=$mode"
		rm -rf "$T/$i/u" "$T/$i/ku" "$T/$i/w" "$T/$i/kw"
		cp -a "$T/src/ku" "$T/$i/u"
		cp -a "$T/src/ku" "$T/$i/ku"
		mkdir -p "$T/$i/w" "$T/$i/kw"
		run_ovp 0 -o "lowerdir=$T/src/l,upperdir=$T/$i/u,workdir=$T/$i/w$opt" "$MNT"
		run_cmd 0 mount -t overlay overlay -o "lowerdir=$T/src/l,upperdir=$T/$i/ku,workdir=$T/$i/kw$opt" "$KMNT"
		run_cmd '?' ls "$KMNT/a2"
		local k=$output
		run_cmd '?' ls "$MNT/a2"
		assert_equal "${k//$KMNT/M}" "${output//$MNT/M}" "reading a redirect, $mode"
		case $mode in
		nofollow) assert_contains "Operation not permitted" "$output" ;;
		*) assert_equal f "$output" ;;
		esac
		run_cmd 0 fusermount3 -u "$MNT"
		run_cmd 0 umount "$KMNT"
	done
}

# fo_umount: unmount fuse-overlayfs from $MNT and wait for it to end
fo_umount() {
	local p
	run_cmd 0 fusermount3 -u "$MNT"
	for p in $(pgrep -f -- "$(re_escape "workdir=$T/fw")"); do
		wait_gone "$p" 5
	done
}

@test "redirect_dir: the default leaves an upper fuse-overlayfs reads the same; redirect_dir=on does not" {
	need_ovp
	need_cmd fuse-overlayfs
	mkdir -p "$LOWER/a/sub"
	echo x >"$LOWER/a/sub/f"
	ovp_mount
	run_cmd 0 mv "$MNT/a" "$MNT/a2"
	ovp_umount
	mkdir -p "$T/fw"
	run_cmd 0 fuse-overlayfs -o "lowerdir=$LOWER,upperdir=$UPPER,workdir=$T/fw" "$MNT" </dev/null
	assert_equal x "$(cat "$MNT/a2/sub/f")" "fuse-overlayfs after the default"
	fo_umount
	# with redirect_dir=on, fuse-overlayfs shows the renamed directory empty
	rm -rf "$UPPER" "$WORK" "$T/fw"
	mkdir -p "$UPPER" "$WORK" "$T/fw"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" redirect_dir=on
	run_cmd 0 mv "$MNT/a" "$MNT/a2"
	ovp_umount
	run_cmd 0 fuse-overlayfs -o "lowerdir=$LOWER,upperdir=$UPPER,workdir=$T/fw" "$MNT" </dev/null
	assert_equal "" "$(ls -A "$MNT/a2")" "fuse-overlayfs does not follow redirects"
	fo_umount
}

# mount_flags MNT: the per-mount flags of MNT
mount_flags() {
	awk -v m="$1" '$5 == m {print $6}' /proc/self/mountinfo
}

@test "a root mount is suid,dev by default (a setuid program runs as its owner); nosuid and nodev are honoured" {
	need_ovp
	need_init_root
	need_cmd setpriv
	cp /usr/bin/id "$LOWER/suid-id"
	chmod 4755 "$LOWER/suid-id"
	ovp_mount
	local f
	f=$(mount_flags "$MNT")
	[[ ",$f," != *,nosuid,* ]] || { echo "# flags: $f" >&2; false; }
	[[ ",$f," != *,nodev,* ]] || { echo "# flags: $f" >&2; false; }
	run_cmd 0 setpriv --reuid=65534 --regid=65534 --clear-groups "$MNT/suid-id" -u
	assert_equal 0 "$output"
	ovp_umount
	# a user cannot make a setuid file of her own run as root (a mount
	# where she can reach it: the test's directory is root's alone)
	S=$(mktemp -d /tmp/ovp-suid.XXXXXX)
	chmod 755 "$S"
	mkdir -p "$S/l" "$S/u" "$S/w" "$S/m"
	ovp_mount -m "$S/m" "lowerdir=$S/l" "upperdir=$S/u" "workdir=$S/w"
	chmod 1777 "$S/m"
	run_cmd 0 setpriv --reuid=65534 --regid=65534 --clear-groups sh -c \
		"cp /usr/bin/id '$S/m/mine' && chmod 4755 '$S/m/mine' && stat -c '%u %a' '$S/m/mine'"
	assert_equal "65534 4755" "$output"
	run_cmd 0 setpriv --reuid=4711 --regid=4711 --clear-groups "$S/m/mine" -u
	assert_equal 65534 "$output"
	ovp_umount "$S/m"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" nosuid nodev
	f=$(mount_flags "$MNT")
	[[ ",$f," == *,nosuid,* && ",$f," == *,nodev,* ]] || { echo "# flags: $f" >&2; false; }
	run_cmd 0 setpriv --reuid=65534 --regid=65534 --clear-groups "$MNT/suid-id" -u
	assert_equal 65534 "$output"
	ovp_umount
}

# The kernel makes every mount in a user namespace nodev on its superblock
# (SB_I_NODEV), which mountinfo does not show.
@test "a mount in a user namespace is not nosuid" {
	need_ovp
	need_unshare
	run_cmd 0 unshare -Urm sh -c "
		'$OVERPASS' -o 'lowerdir=$LOWER,upperdir=$UPPER,workdir=$WORK' '$MNT' </dev/null &&
		awk -v m='$MNT' '\$5 == m {print \$6}' /proc/self/mountinfo;
		fusermount3 -u '$MNT' || umount '$MNT'"
	[[ ",$output," != *,nosuid,* && ",$output," == *,rw,* ]] || { echo "# flags: $output" >&2; false; }
}
