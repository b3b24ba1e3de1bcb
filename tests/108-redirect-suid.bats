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

# squash_run OPT...: mount $S/l with the options, add to $S/out the mount's
# suid flag and what user 4711's setgid and setuid copy of id(1) runs as
squash_run() {
	local f o
	o=$(IFS=,; echo "$*")
	ovp_mount -m "$S/m" "lowerdir=$S/l" "upperdir=$S/u" "workdir=$S/w" "$@" || return 1
	f=$(mount_flags "$S/m")
	[[ ",$f," == *,nosuid,* ]] && f=nosuid || f=suid
	echo "$o: $f $(setpriv --reuid=4711 --regid=4711 --clear-groups "$S/m/her-id" -u) $(
		setpriv --reuid=4711 --regid=4711 --clear-groups "$S/m/her-id" -g)" >>"$S/out"
	ovp_umount "$S/m" || return 1
	rm -rf "$S/u" "$S/w"
	mkdir "$S/u" "$S/w"
}

@test "options that show a user's files as root's mount nosuid unless suid is given: her setuid file runs as her, as on kernel overlayfs" {
	need_ovp
	need_kovl
	need_init_root
	need_cmd setpriv
	S=$(mktemp -d /tmp/ovp-suid.XXXXXX)
	chmod 755 "$S"
	mkdir -p "$S/l" "$S/u" "$S/w" "$S/m"
	# a user's own setuid and setgid program in a layer
	cp /usr/bin/id "$S/l/her-id"
	chown 4711:4711 "$S/l/her-id"
	chmod 6755 "$S/l/her-id"
	# the kernel (no squash option): it runs as its owner
	mkdir -p "$S/ku" "$S/kw" "$S/km"
	kovl_mount -m "$S/km" "lowerdir=$S/l" "upperdir=$S/ku" "workdir=$S/kw"
	local k
	k="$(setpriv --reuid=4711 --regid=4711 --clear-groups "$S/km/her-id" -u) $(
		setpriv --reuid=4711 --regid=4711 --clear-groups "$S/km/her-id" -g)"
	kovl_umount "$S/km"
	assert_equal "4711 4711" "$k" "kernel overlayfs"
	local o
	for o in squash_to_root squash_to_uid=0 squash_to_gid=0 \
		uidmapping=4711:0:1 gidmapping=4711:0:1 \
		"uidmapping=0:0:1:4711:0:1 gidmapping=0:0:1:4711:0:1" \
		"squash_to_root squash_to_uid=4711 squash_to_gid=4711"; do
		# shellcheck disable=SC2086
		squash_run $o
	done
	assert_equal "squash_to_root: nosuid $k
squash_to_uid=0: nosuid $k
squash_to_gid=0: nosuid $k
uidmapping=4711:0:1: nosuid $k
gidmapping=4711:0:1: nosuid $k
uidmapping=0:0:1:4711:0:1,gidmapping=0:0:1:4711:0:1: nosuid $k
squash_to_root,squash_to_uid=4711,squash_to_gid=4711: suid $k" "$(cat "$S/out")" "each option"
	# no user's file shows as root's: suid as before (a container's ids
	# shown as the host's, container root's setuid file runs as that)
	cp -a "$S/l/her-id" "$S/l/root-id"
	chown 0:0 "$S/l/root-id"
	chmod 6755 "$S/l/root-id"
	ovp_mount -m "$S/m" "lowerdir=$S/l" "upperdir=$S/u" "workdir=$S/w" \
		uidmapping=0:100000:65536 gidmapping=0:100000:65536
	assert_equal "suid" "$( [[ ",$(mount_flags "$S/m")," == *,nosuid,* ]] && echo nosuid || echo suid)"
	run_cmd 0 setpriv --reuid=4711 --regid=4711 --clear-groups "$S/m/root-id" -u
	assert_equal 100000 "$output" "container root's setuid file"
	ovp_umount "$S/m"
	rm -rf "$S/u" "$S/w" "$S/out"
	mkdir "$S/u" "$S/w"
	# suid given: the administrator's word
	squash_run squash_to_root suid
	squash_run uidmapping=4711:0:1 nosuid
	assert_equal "squash_to_root,suid: suid 0 0
uidmapping=4711:0:1,nosuid: nosuid $k" "$(cat "$S/out")" "suid or nosuid given"
	# mount(8) keeps a suid word to itself and mount.fuse3 appends one
	# unless nosuid is given: neither is the administrator's word, so the
	# mount is nosuid; remount,bind,suid makes it suid
	command -v mount.fuse3 >/dev/null || return 0
	local f
	for o in squash_to_root squash_to_root,suid; do
		run_cmd 0 mount -t fuse "$OVERPASS#overpass" "$S/m" \
			-o "lowerdir=$S/l,upperdir=$S/u,workdir=$S/w,$o"
		OVP_PID_OF[$S/m]=$(daemon_pid "$S/m")
		OVP_PIDS+=("${OVP_PID_OF[$S/m]}")
		[ "$o" = squash_to_root ] || run_cmd 0 mount -o remount,bind,suid "$S/m"
		f=$(mount_flags "$S/m")
		[[ ",$f," == *,nosuid,* ]] && f=nosuid || f=suid
		echo "mount(8) $o: $f $(setpriv --reuid=4711 --regid=4711 --clear-groups "$S/m/her-id" -u)" >>"$S/out8"
		run_cmd 0 umount "$S/m"
		ovp_wait_exit "$S/m"
	done
	assert_equal "mount(8) squash_to_root: nosuid 4711
mount(8) squash_to_root,suid: suid 0" "$(cat "$S/out8")" "through mount(8)"
}
