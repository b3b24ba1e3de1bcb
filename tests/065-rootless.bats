#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# Rootless and containers: uppers that refuse whiteout devices (.wh.
# files), a user namespace and a real non-root user (user.overlay.*
# markers, no passthrough), the squash options, xino, ino32_t and
# static_nlink.  Kernel overlayfs and fuse-overlayfs are the oracles.

load helpers.bash

teardown() {
	# the real-user test works in a directory of its own
	if [ -n "${RL_DIR:-}" ]; then
		fusermount3 -u "$RL_DIR/m" 2>/dev/null || true
		rm -rf "$RL_DIR"
	fi
	ovp_teardown
}

# A tree with lower names to remove, rename and make again.
mk_lower() {
	mkdir -p "$LOWER/d/sub" "$LOWER/e" "$LOWER/g" "$LOWER/tmp"
	echo f >"$LOWER/f"
	echo h >"$LOWER/h"
	echo i >"$LOWER/i"
	echo g1 >"$LOWER/d/g1"
	echo g2 >"$LOWER/d/sub/g2"
	echo x >"$LOWER/e/x"
	echo x >"$LOWER/g/x"
	echo y >"$LOWER/g/y"
	chmod 1777 "$LOWER/tmp"
}

# wh_ops MNT [MV-DIR]: removals and renames of lower names, then new
# objects over some of them.  MV-DIR=0 leaves out renaming a lower
# directory (an overlay without redirect_dir answers EXDEV to that).
wh_ops() {
	local m=$1
	rm "$m/f"
	rm -r "$m/d"
	mv "$m/h" "$m/h2"
	[ "${2:-1}" = 0 ] || mv "$m/e" "$m/e2"
	rm "$m/g/x"
	mkdir "$m/d"
	echo new >"$m/d/new"
	echo again >"$m/f"
	ln "$m/h2" "$m/h"
	rm "$m/i"
	mv "$m/h2" "$m/i"
	# a directory over a merged one holding whiteouts only
	rm "$m/g/y"
	mv -T "$m/d" "$m/g"
}

# An upper directory on kernel overlayfs, which refuses to make whiteout
# devices (mknod c 0 0 gives EPERM, RENAME_WHITEOUT EINVAL), as in a
# container whose root is overlayfs: $T/base/up and $T/base/wk.
mk_overlay_upper() {
	mkdir -p "$T/bl" "$T/bu" "$T/bw" "$T/base"
	run_cmd 0 mount -t overlay overlay -o "lowerdir=$T/bl,upperdir=$T/bu,workdir=$T/bw" "$T/base"
	mkdir "$T/base/up" "$T/base/wk"
	run_cmd 1 mknod "$T/base/probe" c 0 0
}

@test "an upper on overlayfs refuses whiteout devices: .wh. files are written and read back" {
	need_ovp
	need_kovl
	mk_lower
	mk_overlay_upper
	ovp_mount "lowerdir=$LOWER" "upperdir=$T/base/up" "workdir=$T/base/wk"
	kovl_mount "lowerdir=$LOWER" "upperdir=$KUPPER" "workdir=$KWORK" redirect_dir=on
	wh_ops "$MNT"
	wh_ops "$KMNT"
	tree_dump --owner "$KMNT" >"$T/kernel"
	tree_dump --owner "$MNT" >"$T/ovp"
	assert_files_equal "$T/kernel" "$T/ovp" "merged view"
	assert_equal "" "$(find "$T/base/up" -type c)" "whiteout devices in the upper"
	# overlayfs takes trusted.overlay.* xattrs of its files from Linux 6.7
	# (it stores them escaped); before, opaque directories are marked by
	# .wh..wh..opq files, and a lower directory is not renamed but copied
	# (EXDEV), as kernel overlayfs does on an upper without overlay xattrs
	local wh="./.wh.d ./.wh.e"
	kernel_ge 6.7 || wh+=" ./e2/.wh..wh..opq ./g/.wh..wh..opq"
	assert_equal "$wh" "$(cd "$T/base/up" && find . -name '.wh.*' | sort | xargs)" \
		".wh. files (those of names made again are gone)"
	ovp_umount
	# read back: remounted, and as a lower layer
	ovp_mount "lowerdir=$LOWER" "upperdir=$T/base/up" "workdir=$T/base/wk"
	tree_dump --owner "$MNT" >"$T/ovp2"
	assert_files_equal "$T/kernel" "$T/ovp2" "after remount"
	ovp_umount
	mkdir "$T/m2"
	ovp_mount -m "$T/m2" "lowerdir=$T/base/up:$LOWER"
	tree_dump --owner "$T/m2" >"$T/ovp3"
	ovp_umount "$T/m2"
	assert_files_equal "$T/kernel" "$T/ovp3" "the upper as a lower layer"
	kovl_umount
	run_cmd 0 umount "$T/base"
}

# try_tmpfile DIR: "ok" when DIR makes an O_TMPFILE file, else the errno name
try_tmpfile() {
	python3 - "$1" <<'PY'
import errno, os, sys
try:
    os.close(os.open(sys.argv[1], os.O_TMPFILE | os.O_RDWR, 0o600))
    print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
PY
}

# Copy-ups of every kind: data, metadata, a file below a lower directory,
# a truncate, one of two hard links, times.
cu_ops() {
	local m=$1
	echo more >>"$m/f"
	chmod 600 "$m/h"
	echo more >>"$m/d/g1"
	truncate -s 1 "$m/i"
	echo more >>"$m/l1"
	touch -m -d @1000000000 "$m/e/x"
}

# Kernel overlayfs builds a copy in an O_TMPFILE file when the upper makes
# them, else under a name in workdir that it renames into place: an upper
# where O_TMPFILE fails (overlayfs before Linux 6.6, a FUSE server without
# tmpfile) takes copy-ups all the same, and leaves no name behind.  Here a
# seccomp filter on the daemon makes O_TMPFILE fail as such an upper does
# (EOPNOTSUPP); the 6.1 VM runs the first test of this file on an upper on
# overlayfs, which refuses it for real.
@test "an upper that refuses O_TMPFILE: copy-up builds under a name in workdir, as kernel overlayfs" {
	need_ovp
	need_kovl
	mk_lower
	echo linked >"$LOWER/l1"
	ln "$LOWER/l1" "$LOWER/l2"
	local nt=$BATS_TEST_DIRNAME/tools/no-tmpfile.py
	[ "$(python3 "$nt" bash -c "$(declare -f try_tmpfile); try_tmpfile $T")" = ENOTSUP ] ||
		skip "no-tmpfile.py cannot refuse O_TMPFILE here (x86-64 seccomp)"
	printf '#!/bin/sh\nexec python3 %q %q "$@"\n' "$nt" "$OVERPASS" >"$T/overpass"
	chmod 755 "$T/overpass"
	OVERPASS=$T/overpass ovp_mount
	kovl_mount "lowerdir=$LOWER" "upperdir=$KUPPER" "workdir=$KWORK" index=on redirect_dir=on
	local m
	for m in "$MNT" "$KMNT"; do
		cu_ops "$m"
		mv "$m/d/sub/g2" "$m/g2"
	done
	tree_dump --owner "$KMNT" >"$T/kernel"
	tree_dump --owner "$MNT" >"$T/ovp"
	assert_files_equal "$T/kernel" "$T/ovp" "merged view"
	assert_equal "linked more" "$(xargs <"$MNT/l2")" "the other link's data"
	assert_equal "$(stat -c %i "$MNT/l1")" "$(stat -c %i "$MNT/l2")" "one inode for both links"
	assert_equal 1000000000 "$(stat -c %Y "$MNT/e/x")" "times copied up"
	assert_equal "more" "$(tail -n1 "$UPPER/f")" "copied data in the upper"
	assert_equal "" "$(ls -A "$WORK/work")" "names left in workdir/work"
	# a user's O_TMPFILE fails as the upper's does
	assert_equal ENOTSUP "$(try_tmpfile "$MNT/e")" "O_TMPFILE through the mount"
	OVERPASS=$T/overpass ovp_umount
	ovp_mount
	tree_dump --owner "$MNT" >"$T/ovp2"
	ovp_umount
	assert_files_equal "$T/kernel" "$T/ovp2" "after remount"
	kovl_umount
}

# An upper that takes no overlay xattrs (ramfs has none; overlayfs before
# Linux 6.7 refuses trusted.overlay.*): kernel overlayfs, on the same
# upper, falls back to index=off, metacopy=off and no redirects, so a
# copy-up breaks a lower file's hard links, a metadata change copies the
# data, and a lower directory is not renamed (EXDEV: mv(1) copies it).
@test "an upper without overlay xattrs (ramfs): index, metacopy and redirects off, as kernel overlayfs there" {
	need_ovp
	need_kovl
	mk_lower
	echo linked >"$LOWER/l1"
	ln "$LOWER/l1" "$LOWER/l2"
	mkdir "$T/ram"
	run_cmd 0 mount -t ramfs ramfs "$T/ram"
	mkdir "$T/ram/up" "$T/ram/wk" "$T/ram/kup" "$T/ram/kwk"
	local o=(index=on metacopy=on redirect_dir=on)
	ovp_mount "lowerdir=$LOWER" "upperdir=$T/ram/up" "workdir=$T/ram/wk" "${o[@]}"
	kovl_mount "lowerdir=$LOWER" "upperdir=$T/ram/kup" "workdir=$T/ram/kwk" "${o[@]}"
	local m
	for m in "$MNT" "$KMNT"; do
		cu_ops "$m"
		chmod 640 "$m/i"
		python3 -c 'import os, sys; os.rename(sys.argv[1], sys.argv[2])' \
			"$m/g" "$m/gmoved" 2>"$T/mv.${m##*/}" || true
	done
	assert_contains "Invalid cross-device link" "$(cat "$T/mv.kmerged")" "kernel: rename of a lower directory"
	assert_contains "Invalid cross-device link" "$(cat "$T/mv.merged")" "rename of a lower directory"
	tree_dump --owner "$KMNT" >"$T/kernel"
	tree_dump --owner "$MNT" >"$T/ovp"
	assert_files_equal "$T/kernel" "$T/ovp" "merged view"
	assert_equal "linked" "$(cat "$MNT/l2")" "the other link's data (index off)"
	assert_equal "" "$(ls -A "$T/ram/wk/index" 2>/dev/null)" "index entries"
	# the refused rename copied nothing up (redirect_dir=nofollow there)
	assert_equal "$(cd "$T/ram/kup" && find . | sort | xargs)" \
		"$(cd "$T/ram/up" && find . | sort | xargs)" "what is in the upper"
	ovp_umount
	kovl_umount
	run_cmd 0 umount "$T/ram"
}

@test "FUSE_OVERLAYFS_DISABLE_OVL_WHITEOUT: .wh. files on any upper, which fuse-overlayfs reads alike" {
	need_ovp
	need_kovl
	mk_lower
	FUSE_OVERLAYFS_DISABLE_OVL_WHITEOUT=1 ovp_mount
	kovl_mount
	wh_ops "$MNT" 0
	wh_ops "$KMNT" 0
	tree_dump --owner "$KMNT" >"$T/kernel"
	tree_dump --owner "$MNT" >"$T/ovp"
	ovp_umount
	kovl_umount
	assert_files_equal "$T/kernel" "$T/ovp" "merged view"
	assert_equal "" "$(find "$UPPER" -type c)" "whiteout devices in the upper"
	assert_equal "./.wh.d" "$(cd "$UPPER" && find . -name '.wh.*' | xargs)" ".wh. files"
	command -v fuse-overlayfs >/dev/null || skip "no fuse-overlayfs to read the upper"
	mkdir -p "$T/fwork" "$T/fmerged"
	run_cmd 0 fuse-overlayfs -o "lowerdir=$LOWER,upperdir=$UPPER,workdir=$T/fwork" "$T/fmerged" </dev/null
	tree_dump --owner "$T/fmerged" >"$T/fovl"
	run_cmd 0 fusermount3 -u "$T/fmerged"
	assert_files_equal "$T/kernel" "$T/fovl" "fuse-overlayfs on the upper"
}

@test "an upper without xattrs or RENAME_WHITEOUT (ramfs): whiteout devices, .wh..wh..opq" {
	need_ovp
	need_kovl
	mk_lower
	mkdir "$T/ram"
	run_cmd 0 mount -t ramfs ramfs "$T/ram"
	mkdir "$T/ram/up" "$T/ram/wk"
	ovp_mount "lowerdir=$LOWER" "upperdir=$T/ram/up" "workdir=$T/ram/wk"
	kovl_mount
	# a lower directory cannot get a redirect: EXDEV, and mv copies it
	wh_ops "$MNT"
	wh_ops "$KMNT"
	tree_dump --owner "$KMNT" >"$T/kernel"
	tree_dump --owner "$MNT" >"$T/ovp"
	assert_files_equal "$T/kernel" "$T/ovp" "merged view"
	# d made again over a whiteout, then moved to g; e2 made by mv(1)
	assert_equal "./e2/.wh..wh..opq ./g/.wh..wh..opq" \
		"$(cd "$T/ram/up" && find . -name '.wh.*' | sort | xargs)" "opaque markers"
	assert_equal "character special file 0:0" "$(stat -c '%F %t:%T' "$T/ram/up/e")" \
		"a whiteout device for the renamed directory"
	ovp_umount
	ovp_mount "lowerdir=$LOWER" "upperdir=$T/ram/up" "workdir=$T/ram/wk"
	tree_dump --owner "$MNT" >"$T/ovp2"
	ovp_umount
	assert_files_equal "$T/kernel" "$T/ovp2" "after remount"
	kovl_umount
	run_cmd 0 umount "$T/ram"
}

# inos MNT [files]: "path st_ino d_ino" of every entry below MNT, or with
# "files" "path st_ino" of the regular files
inos() {
	python3 - "$@" <<'PY'
import os, stat, sys
top = sys.argv[1]
for d, dirs, files in sorted(os.walk(top)):
    for e in sorted(os.scandir(d), key=lambda e: e.name):
        st = os.lstat(e.path)
        if len(sys.argv) < 3:
            print(os.path.relpath(e.path, top), st.st_ino, e.inode())
        elif stat.S_ISREG(st.st_mode):
            print(os.path.relpath(e.path, top), st.st_ino)
PY
}

@test "xino=auto|on|off: inode numbers as kernel overlayfs gives them, layers on two filesystems" {
	need_ovp
	need_kovl
	tmpfs_mount "$T/tl"
	mkdir -p "$T/tl/dir" "$LOWER/dir" "$LOWER/ext4dir"
	echo a >"$T/tl/a"
	echo b >"$T/tl/dir/b"
	echo c >"$LOWER/c"
	echo d >"$LOWER/dir/d"
	local x sel
	for x in auto on off; do
		rm -rf "$UPPER" "$WORK" "$KUPPER" "$KWORK"
		mkdir "$UPPER" "$WORK" "$KUPPER" "$KWORK"
		echo u >"$UPPER/u"
		cp -a "$UPPER/u" "$KUPPER/u"
		ovp_mount "lowerdir=$T/tl:$LOWER" "upperdir=$UPPER" "workdir=$WORK" "xino=$x"
		kovl_mount "lowerdir=$T/tl:$LOWER" "upperdir=$KUPPER" "workdir=$KWORK" "xino=$x"
		# a copy-up keeps the number
		echo more >>"$MNT/a"
		echo more >>"$KMNT/a"
		# xino=off: the kernel numbers directories itself, for the
		# moment, and reports real ones in readdir; files only
		sel=
		[ "$x" != off ] || sel=files
		inos "$MNT" $sel | grep -v '^u ' >"$T/ovp.$x"
		inos "$KMNT" $sel | grep -v '^u ' >"$T/kernel.$x"
		ovp_umount
		kovl_umount
		assert_files_equal "$T/kernel.$x" "$T/ovp.$x" "xino=$x: st_ino and d_ino"
	done
	# xino=on with every layer on one filesystem changes nothing
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" xino=on
	assert_equal "$(stat -c %i "$LOWER/c")" "$(stat -c %i "$MNT/c")" "one filesystem, xino=on"
	ovp_umount
	run_cmd 0 umount "$T/tl"
}

@test "ino32_t: inode numbers fit in 32 bits, stay distinct and survive remount" {
	need_ovp
	tmpfs_mount "$T/tl"
	local i
	for i in 1 2 3 4 5; do
		echo "$i" >"$T/tl/t$i"
		echo "$i" >"$LOWER/e$i"
	done
	ovp_mount "lowerdir=$T/tl:$LOWER" "upperdir=$UPPER" "workdir=$WORK" ino32_t xino=on
	echo more >>"$MNT/t1"
	touch "$MNT/new"
	stat -c '%n %i' "$MNT"/* >"$T/inos"
	ovp_umount
	run_cmd 0 awk '$2 >= 4294967296 {print; bad = 1} END {exit bad}' "$T/inos"
	assert_equal 11 "$(awk '{print $2}' "$T/inos" | sort -u | wc -l)" "distinct numbers"
	# without ino32_t the tmpfs layer's numbers carry the xino bits
	ovp_mount "lowerdir=$T/tl:$LOWER" "upperdir=$UPPER" "workdir=$WORK" xino=on
	run_cmd 0 python3 -c 'import sys; sys.exit(int(sys.argv[1]) < 2**32)' "$(stat -c %i "$MNT/t2")"
	ovp_umount
	ovp_mount "lowerdir=$T/tl:$LOWER" "upperdir=$UPPER" "workdir=$WORK" ino32_t xino=on
	stat -c '%n %i' "$MNT"/* >"$T/inos2"
	ovp_umount
	assert_files_equal "$T/inos" "$T/inos2" "after remount"
	run_cmd 0 umount "$T/tl"
}

@test "static_nlink: every directory shows one link; files keep their count" {
	need_ovp
	mkdir -p "$UPPER/up/a" "$UPPER/up/b" "$LOWER/merged/x" "$UPPER/merged"
	echo f >"$LOWER/f"
	ln "$LOWER/f" "$LOWER/f2"
	ovp_mount
	assert_equal "4 1 2" "$(stat -c %h "$MNT/up" "$MNT/merged" "$MNT/f" | xargs)" "without"
	ovp_umount
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" static_nlink
	assert_equal "1 1 1 2" "$(stat -c %h "$MNT/up" "$MNT/up/a" "$MNT/merged" "$MNT/f" | xargs)" \
		"with static_nlink"
	ovp_umount
}

# squash_ops MNT: owner changes and new files under a squash option
squash_ops() {
	chown 7:8 "$1/f"
	chown 9:10 "$1/d"
	(cd "$1/tmp" && setpriv --reuid=1000 --regid=1001 --clear-groups \
		sh -c 'echo x >new && mkdir newdir')
	echo more >>"$1/h"
}

@test "squash_to_root, squash_to_uid, squash_to_gid: stat shows them, disk keeps real ids, as fuse-overlayfs" {
	need_ovp
	need_cmd setpriv
	mk_lower
	chown 3:4 "$LOWER/h"
	local o fo
	for o in squash_to_root "squash_to_uid=123 squash_to_gid=456" squash_to_gid=456; do
		rm -rf "$UPPER" "$WORK" "$T/fupper" "$T/fwork"
		mkdir -p "$UPPER" "$WORK" "$T/fupper" "$T/fwork" "$T/fmerged"
		# shellcheck disable=SC2086
		ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" $o
		squash_ops "$MNT"
		(cd "$MNT" && find . | sort | xargs stat -c '%n %u:%g') >"$T/ovp-view"
		ovp_umount
		(cd "$UPPER" && find . -mindepth 1 -not -name '.wh.*' | sort |
			xargs stat -c '%n %u:%g') >"$T/ovp-disk"
		case $o in
		squash_to_root) assert_equal 0:0 "$(awk '{print $2}' "$T/ovp-view" | sort -u)" ;;
		squash_to_uid*) assert_equal 123:456 "$(awk '{print $2}' "$T/ovp-view" | sort -u)" ;;
		squash_to_gid*) assert_equal "./f 7:456" "$(grep '^./f ' "$T/ovp-view")" ;;
		esac
		assert_contains "./f 7:8" "$(cat "$T/ovp-disk")" "chown lands on disk ($o)"
		assert_contains "./tmp/new 1000:1001" "$(cat "$T/ovp-disk")" "a new file ($o)"
		assert_contains "./h 3:4" "$(cat "$T/ovp-disk")" "a copy-up keeps the owner ($o)"
		command -v fuse-overlayfs >/dev/null || continue
		fo=$(echo "$o" | tr ' ' ,)
		run_cmd 0 fuse-overlayfs -o "lowerdir=$LOWER,upperdir=$T/fupper,workdir=$T/fwork,$fo" \
			"$T/fmerged" </dev/null
		squash_ops "$T/fmerged"
		(cd "$T/fmerged" && find . | sort | xargs stat -c '%n %u:%g') >"$T/fovl-view"
		run_cmd 0 fusermount3 -u "$T/fmerged"
		# (fuse-overlayfs 1.10 also leaves .wh. markers in new directories)
		(cd "$T/fupper" && find . -mindepth 1 -not -name '.wh.*' | sort |
			xargs stat -c '%n %u:%g') >"$T/fovl-disk"
		assert_files_equal "$T/fovl-view" "$T/ovp-view" "view vs fuse-overlayfs ($o)"
		assert_files_equal "$T/fovl-disk" "$T/ovp-disk" "upper vs fuse-overlayfs ($o)"
	done
}

@test "squash_to_root in a user namespace: a copy-up skips the chown to an unmapped owner" {
	need_binary
	need_fuse
	need_root
	need_unshare
	echo low >"$LOWER/f"
	chown 5000:5000 "$LOWER/f"
	mkdir "$LOWER/d"
	chown 5000:5000 "$LOWER/d"
	local o
	for o in "" ,squash_to_root; do
		rm -rf "$UPPER" "$WORK"
		mkdir "$UPPER" "$WORK"
		run_cmd '?' unshare -Urm bash -c "
			'$OVERPASS' -o 'lowerdir=$LOWER,upperdir=$UPPER,workdir=$WORK$o' '$MNT' </dev/null || exit 9
			stat -c '%u:%g' '$MNT/f'
			echo more >>'$MNT/f' && echo appended
			touch '$MNT/d/new' && echo created
			chown 0:0 '$MNT/f' && echo chowned
			fusermount3 -u '$MNT'"
		if [ -z "$o" ]; then
			# as fuse-overlayfs: the copy cannot be given its owner
			assert_equal "65534:65534" "${lines[0]}"
			assert_contains "Invalid argument" "$output" "the copy-up fails"
			[[ "$output" != *appended* ]] || { echo "# appended" >&2; false; }
			assert_equal "" "$(ls "$UPPER")" "nothing copied up"
		else
			assert_equal "0:0
appended
created
chowned" "$output"
			assert_equal "low
more" "$(cat "$UPPER/f")"
			# the copies belong to the namespace's root
			assert_equal "0:0 0:0" "$(stat -c %u:%g "$UPPER/f" "$UPPER/d/new" | xargs)"
		fi
	done
	assert_equal "5000:5000 low" "$(stat -c %u:%g "$LOWER/f") $(cat "$LOWER/f")" "the lower file"
}

@test "unshare -Urm: user.overlay.* markers, whiteout devices, no passthrough; kernel userxattr reads the upper" {
	need_binary
	need_fuse
	need_unshare
	need_kovl
	mk_lower
	chown -R 0:0 "$LOWER"
	run_cmd 0 unshare -Urm bash -c "
		set -e
		'$OVERPASS' -o 'lowerdir=$LOWER,upperdir=$UPPER,workdir=$WORK,redirect_dir=on' '$MNT' </dev/null
		cd '$MNT'
		rm f; rm -r d; mkdir d; echo new >d/new; echo more >>h; mv e e2; rm g/x
		'$OVERPASS' --stats . | grep ^passthrough
		cd /
		python3 '$BATS_TEST_DIRNAME/tree-dump' '$MNT' >'$T/ovp'
		fusermount3 -u '$MNT'
		'$OVERPASS' -o 'lowerdir=$LOWER,upperdir=$UPPER,workdir=$WORK,redirect_dir=follow' '$MNT' </dev/null
		python3 '$BATS_TEST_DIRNAME/tree-dump' '$MNT' >'$T/ovp2'
		fusermount3 -u '$MNT'
		# kernel overlayfs in the namespace reads the upper (without the
		# renamed directory: userxattr mounts do not follow redirects)
		mv '$UPPER/e2' '$T/e2'
		mount -t overlay overlay -o 'userxattr,lowerdir=$LOWER,upperdir=$UPPER,workdir=$KWORK' '$KMNT'
		python3 '$BATS_TEST_DIRNAME/tree-dump' '$KMNT' >'$T/kernel'
		umount '$KMNT'
		mv '$T/e2' '$UPPER/e2'"
	assert_contains "passthrough.active 0" "$output"
	assert_contains "passthrough.reason no_cap_sys_admin" "$output"
	assert_files_equal "$T/ovp" "$T/ovp2" "after remount"
	grep -v '^e\( \|2\)' "$T/ovp" | grep -v '^e2/' >"$T/ovp-noe"
	grep -v '^e ' "$T/kernel" >"$T/kernel-noe"
	assert_files_equal "$T/kernel-noe" "$T/ovp-noe" "kernel overlayfs (userxattr) on the upper"
	assert_equal "y" "$(getfattr --only-values -n user.overlay.opaque "$UPPER/d")" "opaque"
	assert_equal "e" "$(getfattr --only-values -n user.overlay.redirect "$UPPER/e2")" "redirect"
	run_cmd 0 getfattr -n user.overlay.origin "$UPPER/h"
	assert_equal "" "$(getfattr -d -m '^trusted\.' -R "$UPPER" 2>/dev/null)" "no trusted.* xattrs"
	assert_equal "0:0 0:0" "$(stat -c '%t:%T' "$UPPER/f" "$UPPER/g/x" | xargs)" "whiteout devices"
}

@test "in a user namespace a user.overlay.redirect is not followed unless redirect_dir= asks: EPERM, as kernel overlayfs with userxattr" {
	need_binary
	need_fuse
	need_unshare
	need_kovl
	mkdir -p "$LOWER/a" "$UPPER/b" "$KUPPER/b"
	echo x >"$LOWER/a/f"
	setfattr -n user.overlay.redirect -v a "$UPPER/b"
	setfattr -n user.overlay.redirect -v a "$KUPPER/b"
	# the listing, or the error it gives
	cat >"$T/ls.py" <<'PY'
import os, sys
try:
    print(' '.join(sorted(os.listdir(sys.argv[1]))))
except OSError as e:
    print(os.strerror(e.errno))
PY
	run_cmd 0 unshare -Urm bash -c "
		set -e
		mount -t overlay overlay -o 'userxattr,lowerdir=$LOWER,upperdir=$KUPPER,workdir=$KWORK' '$KMNT'
		echo \"kernel: \$(python3 '$T/ls.py' '$KMNT/b')\"
		umount '$KMNT'
		for o in '' ,redirect_dir=follow ,redirect_dir=on ,redirect_dir=nofollow; do
			'$OVERPASS' -o \"lowerdir=$LOWER,upperdir=$UPPER,workdir=$WORK\$o\" '$MNT' </dev/null
			echo \"overpass\$o: \$(python3 '$T/ls.py' '$MNT/b')\"
			fusermount3 -u '$MNT'
		done"
	assert_equal "kernel: Operation not permitted
overpass: Operation not permitted
overpass,redirect_dir=follow: f
overpass,redirect_dir=on: f
overpass,redirect_dir=nofollow: Operation not permitted" "$output"
}

@test "in a user namespace lower symlinks and fifos are copied up (user.* xattrs refused on them), as kernel overlayfs with userxattr" {
	need_binary
	need_fuse
	need_unshare
	need_kovl
	ln -s target "$LOWER/s"
	ln -s target "$LOWER/s2"
	mkfifo "$LOWER/p"
	# rename and chown -h copy them up; the result, or the error
	cat >"$T/ops.sh" <<'SH'
cd "$1" || exit 1
for op in "mv s s.new" "mv p p.new" "chown -h 0:0 s2"; do
	if out=$($op 2>&1); then echo "$op: ok"; else echo "$op: ${out##*: }"; fi
done
echo "$(ls | xargs)"
SH
	run_cmd 0 unshare -Urm bash -c "
		set -e
		mount -t overlay overlay -o 'userxattr,lowerdir=$LOWER,upperdir=$KUPPER,workdir=$KWORK' '$KMNT'
		bash '$T/ops.sh' '$KMNT' >'$T/kernel'
		umount '$KMNT'
		'$OVERPASS' -o 'lowerdir=$LOWER,upperdir=$UPPER,workdir=$WORK' '$MNT' </dev/null
		bash '$T/ops.sh' '$MNT' >'$T/ovp'
		fusermount3 -u '$MNT'"
	assert_equal "mv s s.new: ok
mv p p.new: ok
chown -h 0:0 s2: ok
p.new s.new s2" "$(cat "$T/kernel")" "kernel overlayfs"
	assert_files_equal "$T/kernel" "$T/ovp" "overpass"
	assert_equal target "$(readlink "$UPPER/s.new")"
}

@test "a real non-root user: mount, change, whiteouts and markers, no passthrough, fusermount3 -u" {
	need_binary
	need_fuse
	need_root
	[ -u "$(command -v fusermount3)" ] || skip "fusermount3 is not setuid"
	local u=ovptest uid gid D
	if ! id "$u" >/dev/null 2>&1; then
		run_cmd 0 useradd -m -s /bin/sh "$u"
	fi
	uid=$(id -u "$u")
	gid=$(id -g "$u")
	# the user's own directory (the test's is root's alone)
	D=$(mktemp -d /tmp/ovp-rootless.XXXXXX)
	RL_DIR=$D
	chmod 755 "$D"
	mkdir -p "$D/l/d" "$D/l/e" "$D/l/tmp" "$D/u" "$D/w" "$D/m" "$D/u2" "$D/w2" "$D/u3" "$D/w3"
	echo f >"$D/l/f"
	echo h >"$D/l/h"
	echo x >"$D/l/d/x"
	echo y >"$D/l/e/y"
	chmod 1777 "$D/l/tmp"
	chown "$u:" "$D/l/f" "$D/l/h" "$D/l/d" "$D/l/d/x" "$D/l/e" "$D/l/e/y"
	chown -R "$u:" "$D/u" "$D/w" "$D/m" "$D/u2" "$D/w2" "$D/u3" "$D/w3"
	local ovp
	ovp=$(overpass_for_user "$D")
	local OVERPASS=$ovp
	run_cmd 0 runuser -u "$u" -- bash -c "
		set -e
		cd '$D'
		'$OVERPASS' -o lowerdir=l,upperdir=u,workdir=w,redirect_dir=on m </dev/null
		echo more >>m/h; rm m/f; rm -r m/d; mkdir m/d; mv m/e m/e2; echo n >m/new
		cat m/h m/new; echo \$(ls m) / \$(ls m/e2)
		'$OVERPASS' --stats m | grep ^passthrough
		fusermount3 -u m"
	assert_equal "h
more
n
d e2 h new tmp / y" "$(printf '%s\n' "${lines[@]:0:4}")"
	assert_contains "passthrough.active 0" "$output"
	assert_contains "passthrough.reason no_cap_sys_admin" "$output"
	assert_equal "0:0" "$(stat -c '%t:%T' "$D/u/f")" "a whiteout device (mknod 0/0 is allowed)"
	assert_equal "y" "$(getfattr --only-values -n user.overlay.opaque "$D/u/d")"
	assert_equal "e" "$(getfattr --only-values -n user.overlay.redirect "$D/u/e2")"
	assert_equal "$uid" "$(stat -c %u "$D/u/new")"
	assert_equal "f" "$(cat "$D/l/f")" "the lower layer"
	# root-owned lower files: squash_to_uid shows them as the user's, and
	# the copy-up skips the chown it may not do
	run_cmd 0 runuser -u "$u" -- bash -c "
		cd '$D'
		'$OVERPASS' -o lowerdir=l,upperdir=u2,workdir=w2,squash_to_uid=$uid,squash_to_gid=$gid m </dev/null
		stat -c %u m/tmp; touch m/tmp/t && echo ok
		fusermount3 -u m"
	assert_equal "$uid
ok" "$output"
	assert_equal "$uid" "$(stat -c %u "$D/u2/tmp")" "the copied-up directory"
	# xattr_permissions=2: the copy-up records root's ownership instead
	run_cmd 0 runuser -u "$u" -- bash -c "
		cd '$D'
		'$OVERPASS' -o lowerdir=l,upperdir=u3,workdir=w3,xattr_permissions=2 m </dev/null
		touch m/tmp/t && stat -c '%u:%g %a' m/tmp m/tmp/t
		fusermount3 -u m"
	assert_equal "0:0 1777
$uid:$gid 644" "$output"
	assert_equal "0:0:1777" "$(getfattr --only-values -n user.fuseoverlayfs.override_stat "$D/u3/tmp")"
}

@test "SELinux context options are accepted and change nothing, as podman passes them" {
	need_ovp
	echo a >"$LOWER/a"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" \
		"context=\"system_u:object_r:container_file_t:s0:c1,c2\"" \
		fscontext=system_u:object_r:container_file_t:s0 \
		defcontext=system_u:object_r:container_file_t:s0 \
		rootcontext=system_u:object_r:container_file_t:s0
	echo b >>"$MNT/a"
	assert_equal "a
b" "$(cat "$MNT/a")"
	ovp_umount
	assert_equal "a
b" "$(cat "$UPPER/a")"
}
