#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# Trust: markers a user could forge (user.* xattrs on a root mount, owner
# records set through the mount) are never followed; files a user makes
# under xattr_permissions never carry a real setuid bit; trusted.* names,
# the statistics and chattr +i/+a hold through the mount as the kernel
# makes them hold.  Kernel overlayfs on the same layers is the oracle.

load helpers.bash

# "${AS_USER[@]}" CMD...: run CMD as the unprivileged uid/gid 4711
AS_USER=(setpriv --reuid=4711 --regid=4711 --clear-groups)

# Layers with user.* markers of every kind, as a user who owns the
# directories could write them: a redirect to a directory she cannot enter,
# opaque directories, an xattr whiteout, fuse-overlayfs's opaque marker.
# The marked directories are merged with the second lower layer, so that
# each marker has something to hide.
mk_forged() { # upper lower lower2
	local u=$1 l=$2 l2=$3 d
	mkdir -p "$l/secret/dir" "$l/tmp/mine/opq" "$l/tmp/mine/xw" "$l/tmp/mine/fopq" \
		"$u/tmp/mine/peek" "$u/tmp/mine/uopq"
	echo TOP >"$l/secret/dir/data"
	chmod 700 "$l/secret"
	chmod 1777 "$l/tmp"
	for d in opq xw fopq uopq; do
		mkdir -p "$l2/tmp/mine/$d"
		echo below >"$l2/tmp/mine/$d/below"
	done
	echo low >"$l/tmp/mine/opq/low"
	echo keep >"$l/tmp/mine/xw/keep"
	: >"$l/tmp/mine/xw/below"
	setfattr -n user.overlay.whiteout -v y "$l/tmp/mine/xw/below"
	setfattr -n user.overlay.opaque -v x "$l/tmp/mine/xw"
	setfattr -n user.overlay.opaque -v y "$l/tmp/mine/opq"
	setfattr -n user.fuseoverlayfs.opaque -v y "$l/tmp/mine/fopq"
	setfattr -n user.overlay.redirect -v /secret/dir "$u/tmp/mine/peek"
	setfattr -n user.overlay.opaque -v y "$u/tmp/mine/uopq"
	chown -R 4711:4711 "$l/tmp/mine" "$l2/tmp/mine" "$u/tmp/mine"
}

# dump_forged MNT: the tree under tmp/, without fuse-overlayfs's marker
# (kernel overlayfs shows it as a plain xattr)
dump_forged() {
	tree_dump --owner "$1/tmp" | sed 's/ user\.fuseoverlayfs\.opaque=79//'
}

@test "a root mount follows no user.overlay.* redirect, opaque or whiteout a user forged; kernel overlayfs agrees" {
	need_ovp
	need_kovl
	need_cmd setpriv
	mk_forged "$UPPER" "$LOWER" "$LOWER2"
	cp -a "$UPPER/." "$KUPPER/"
	ovp_mount "lowerdir=$LOWER:$LOWER2" "upperdir=$UPPER" "workdir=$WORK"
	kovl_mount "lowerdir=$LOWER:$LOWER2" "upperdir=$KUPPER" "workdir=$KWORK"
	local m
	for m in "$KMNT" "$MNT"; do
		cd "$m/tmp/mine" # the test's directories are root's alone
		run_cmd '!' "${AS_USER[@]}" cat peek/data
		assert_contains "No such file or directory" "$output"
		cd /
	done
	dump_forged "$KMNT" >"$T/kernel"
	dump_forged "$MNT" >"$T/overpass"
	assert_files_equal "$T/kernel" "$T/overpass" "user.* markers on a root mount"
	assert_equal "below keep" "$(ls "$MNT/tmp/mine/xw" | xargs)" "xattr whiteout ignored"
	assert_equal "below low" "$(ls "$MNT/tmp/mine/opq" | xargs)" "user.overlay.opaque ignored"
	assert_equal "below" "$(ls "$MNT/tmp/mine/uopq" | xargs)" "user.overlay.opaque in upper ignored"
	assert_equal "below" "$(ls "$MNT/tmp/mine/fopq" | xargs)" "user.fuseoverlayfs.opaque ignored"
	kovl_umount
	ovp_umount
}

@test "userxattr: a root mount reads and writes user.overlay.* markers, as kernel userxattr does" {
	need_ovp
	need_kovl
	mk_forged "$UPPER" "$LOWER" "$LOWER2"
	rm -rf "$UPPER/tmp/mine/peek" # no redirect out of a 0700 directory here
	mkdir -p "$LOWER/moved/sub"
	echo m >"$LOWER/moved/sub/f"
	echo gone >"$LOWER/gone"
	cp -a "$UPPER/." "$KUPPER/"
	ovp_mount "lowerdir=$LOWER:$LOWER2" "upperdir=$UPPER" "workdir=$WORK" userxattr
	kovl_mount "lowerdir=$LOWER:$LOWER2" "upperdir=$KUPPER" "workdir=$KWORK" userxattr
	local m
	for m in "$MNT" "$KMNT"; do
		mv "$m/moved" "$m/moved2"
		rm "$m/gone"
	done
	# fuse-overlayfs's marker is not the kernel's: compared apart
	dump_forged "$KMNT" | grep -v '^mine/fopq' >"$T/kernel"
	dump_forged "$MNT" | grep -v '^mine/fopq' >"$T/overpass"
	assert_files_equal "$T/kernel" "$T/overpass" "userxattr mounts"
	assert_equal "keep" "$(ls "$MNT/tmp/mine/xw" | xargs)" "xattr whiteout followed"
	assert_equal "low" "$(ls "$MNT/tmp/mine/opq" | xargs)" "user.overlay.opaque followed"
	assert_equal "" "$(ls "$MNT/tmp/mine/uopq" | xargs)" "user.overlay.opaque in upper followed"
	assert_equal "" "$(ls "$MNT/tmp/mine/fopq" | xargs)" "user.fuseoverlayfs.opaque followed"
	assert_equal "m" "$(cat "$MNT/moved2/sub/f")"
	kovl_umount
	ovp_umount
	# as the kernel's userxattr (redirect_dir=nofollow): no redirect
	# written, the directory was copied by mv(1)
	run_cmd '!' getfattr -n user.overlay.redirect "$UPPER/moved2"
	run_cmd '!' getfattr -n trusted.overlay.redirect "$UPPER/moved2"
	ovp_mount "lowerdir=$LOWER:$LOWER2" "upperdir=$UPPER" "workdir=$WORK" userxattr
	assert_equal m "$(cat "$MNT/moved2/sub/f")" "the copy after remount"
	ovp_umount
	# and asking for redirects with userxattr is refused, as by the kernel
	run_ovp '!' -o "lowerdir=$LOWER:$LOWER2,upperdir=$UPPER,workdir=$WORK,userxattr,redirect_dir=on" "$MNT"
	assert_contains "conflicts with userxattr" "$output"
	# the kernel reads the markers overpass wrote (it follows no redirect
	# under userxattr)
	kovl_mount "lowerdir=$LOWER:$LOWER2" "upperdir=$UPPER" "workdir=$WORK" userxattr
	[ ! -e "$KMNT/gone" ]
	assert_equal "low" "$(ls "$KMNT/tmp/mine/opq" | xargs)"
	kovl_umount
}

# make_setuid MNT: as uid 4711 in MNT/tmp, y: created 04755, truncated,
# written; z: created 0755, then chmod 04755 by its owner
make_setuid() {
	(cd "$1/tmp" && "${AS_USER[@]}" /usr/bin/python3 -c '
import os
fd = os.open("y", os.O_CREAT | os.O_WRONLY, 0o4755)
os.ftruncate(fd, 0)
os.write(fd, b"#!/bin/sh\nid -u\n")
os.close(fd)
fd = os.open("z", os.O_CREAT | os.O_WRONLY, 0o755)
os.write(fd, b"#!/bin/sh\nid -u\n")
os.close(fd)
os.chmod("z", 0o4755)
')
}

@test "xattr_permissions=1|2: no file a user makes is setuid on disk; truncate and write clear the bit in the record" {
	need_ovp
	need_cmd setpriv
	mkdir -p "$LOWER/tmp"
	chmod 1777 "$LOWER/tmp"
	echo low >"$LOWER/tmp/low"
	chmod 4755 "$LOWER/tmp/low"
	local xp x
	for xp in 1 2; do
		x=security.fuseoverlayfs.override_stat
		[ "$xp" = 1 ] || x=user.fuseoverlayfs.override_stat
		rm -rf "$UPPER" "$WORK"
		mkdir -p "$UPPER" "$WORK"
		ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" "xattr_permissions=$xp"
		make_setuid "$MNT"
		# as on a plain filesystem: the truncate took the bit off y, z
		# keeps the one its owner set
		assert_equal "755 4711:4711" "$(stat -c '%a %u:%g' "$MNT/tmp/y")" "y seen ($xp)"
		assert_equal "4755 4711:4711" "$(stat -c '%a %u:%g' "$MNT/tmp/z")" "z seen ($xp)"
		# root chowns a setuid file it copies up: the copy is not setuid
		chown 0:0 "$MNT/tmp/low"
		ovp_umount
		assert_equal "4711:4711:755" "$(getfattr --only-values -n "$x" "$UPPER/tmp/y")"
		assert_equal "4711:4711:4755" "$(getfattr --only-values -n "$x" "$UPPER/tmp/z")"
		assert_equal "755 755 755" "$(stat -c %a "$UPPER/tmp/y" "$UPPER/tmp/z" "$UPPER/tmp/low" | xargs)" \
			"real modes on disk ($xp)"
	done
}

@test "owner records and fuse-overlayfs names cannot be set, removed or read through the mount" {
	need_ovp
	mkdir -p "$LOWER/d"
	echo f >"$LOWER/d/f"
	setfattr -n user.containers.override_stat -v 0:0:4755 "$LOWER/d/f"
	setfattr -n user.fuseoverlayfs.override_stat -v 0:0:4755 "$LOWER/d/f"
	setfattr -n user.plain -v 1 "$LOWER/d/f"
	ovp_mount
	local n
	for n in user.containers.override_stat user.containers.x user.fuseoverlayfs.override_stat \
		user.fuseoverlayfs.x security.fuseoverlayfs.override_stat user.other.override_stat \
		trusted.x.override_stat; do
		run_cmd 1 setfattr -n "$n" -v 0:0:4755 "$MNT/d/f"
		assert_contains "Operation not permitted" "$output"
		run_cmd 1 setfattr -x "$n" "$MNT/d/f"
		assert_contains "Operation not permitted" "$output"
	done
	run_cmd 0 getfattr -d -m - "$MNT/d/f"
	assert_contains "user.plain" "$output"
	[[ "$output" != *override_stat* ]] || { echo "# owner records listed" >&2; false; }
	run_cmd 1 getfattr -n user.containers.override_stat "$MNT/d/f"
	assert_equal "644 0:0" "$(stat -c '%a %u:%g' "$MNT/d/f")" "records on files of a layer without a marked root"
	ovp_umount
	[ ! -e "$UPPER/d/f" ] || [ -z "$(getfattr -m . -d "$UPPER/d/f" 2>/dev/null | grep -v user.plain | grep override)" ] ||
		{ echo "# a record landed in the upper" >&2; false; }
}

@test "user.* owner records of a layer are read on a root mount only with xattr_permissions=2" {
	need_ovp
	echo f >"$LOWER/f"
	chmod 644 "$LOWER/f"
	chown 4711:4711 "$LOWER/f"
	# containers-storage marks a layer root and each file; a user who owns
	# a file could write the same record
	setfattr -n user.containers.override_stat -v 0:0:755 "$LOWER"
	setfattr -n user.containers.override_stat -v 0:0:4755 "$LOWER/f"
	ovp_mount "lowerdir=$LOWER"
	assert_equal "644 4711:4711" "$(stat -c '%a %u:%g' "$MNT/f")" "plain root mount"
	ovp_umount
	ovp_mount "lowerdir=$LOWER" "xattr_permissions=2"
	assert_equal "4755 0:0" "$(stat -c '%a %u:%g' "$MNT/f")" "xattr_permissions=2"
	ovp_umount
	# both kinds: fuse-overlayfs's own first, as fuse-overlayfs 1.10
	setfattr -n user.fuseoverlayfs.override_stat -v 0:0:755 "$LOWER"
	setfattr -n user.fuseoverlayfs.override_stat -v 2:2:600 "$LOWER/f"
	ovp_mount "lowerdir=$LOWER" "xattr_permissions=2"
	assert_equal "600 2:2" "$(stat -c '%a %u:%g' "$MNT/f")" "user.fuseoverlayfs before user.containers"
	ovp_umount
	setfattr -x user.fuseoverlayfs.override_stat "$LOWER"
	# a record only root can write is read on every mount
	setfattr -x user.containers.override_stat "$LOWER"
	setfattr -n security.fuseoverlayfs.override_stat -v 0:0:755 "$LOWER"
	setfattr -n security.fuseoverlayfs.override_stat -v 0:0:750 "$LOWER/f"
	ovp_mount "lowerdir=$LOWER"
	assert_equal "750 0:0" "$(stat -c '%a %u:%g' "$MNT/f")" "security.* record"
	ovp_umount
}

@test "trusted.* names are listed only to CAP_SYS_ADMIN, as kernel overlayfs lists them" {
	need_ovp
	need_kovl
	need_trusted
	need_cmd setpriv
	echo f >"$LOWER/f"
	setfattr -n trusted.note -v 1 "$LOWER/f"
	setfattr -n user.note -v 2 "$LOWER/f"
	ovp_mount
	kovl_mount
	local m
	for m in "$KMNT" "$MNT"; do
		cd "$m" # the test's directories are root's alone
		run_cmd 0 "${AS_USER[@]}" getfattr -d -m - f
		cd /
		[[ "$output" != *trusted.note* ]] || { echo "# $m: trusted.* listed to a user" >&2; false; }
		assert_contains "user.note" "$output"
		run_cmd 0 getfattr -d -m - "$m/f"
		assert_contains "trusted.note" "$output"
		# root without CAP_SYS_ADMIN does not see them either
		run_cmd 0 setpriv --inh-caps=-sys_admin --bounding-set=-sys_admin getfattr -d -m - "$m/f"
		[[ "$output" != *trusted.note* ]] || { echo "# $m: trusted.* listed without CAP_SYS_ADMIN" >&2; false; }
	done
	kovl_umount
	ovp_umount
}

@test "the statistics are for root and the mount's owner only" {
	need_ovp
	need_cmd setpriv
	local d ovp
	d=$(mktemp -d /tmp/ovp-stats.XXXXXX)
	chmod 755 "$d"
	ovp=$(overpass_for_user "$d")
	ovp_mount
	run_cmd 0 "$ovp" --stats "$MNT"
	assert_contains "requests.GETATTR" "$output"
	cd "$MNT"
	run_cmd '!' "${AS_USER[@]}" "$ovp" --stats .
	cd /
	rm -rf "$d"
	assert_contains "cannot read statistics (Permission denied)" "$output"
	ovp_umount
}

# chattr_ops MNT: each change the kernel refuses on chattr +i/+a files and
# directories, one line per command with its error
chattr_ops() {
	local m=$1 c
	for c in "echo x >>$m/imm" "echo x >$m/imm" "rm $m/imm" "mv $m/imm $m/imm2" "ln $m/imm $m/imml" \
		"chmod 600 $m/imm" "touch $m/imm" "setfattr -n user.x -v 1 $m/imm" \
		"echo x >>$m/app" "echo x >$m/app" "truncate -s0 $m/app" "rm $m/app" "chmod 600 $m/app" \
		"touch $m/app" "touch -d 2001-01-01 $m/app" "ln $m/app $m/appl" "setfattr -n user.x -v 1 $m/app" \
		"echo y >>$m/app" "cat $m/app" "truncate -s0 $m/app" \
		"rm $m/dimm/f" "touch $m/dimm/new" "mkdir $m/dimm/f" "rmdir $m/dimm" "chmod 700 $m/dimm" \
		"touch $m/dimm/sub/new" "rm $m/dimm/f" "mv $m/dimm/f $m/x" \
		"rm $m/dapp/f" "touch $m/dapp/new" "mv $m/dapp/f $m/dapp/g" "rm $m/dapp/new"; do
		printf '%s: %s\n' "${c//$m/M}" "$(sh -c "$c" 2>&1 | sed 's/.*: //' | tr '\n' ' ')"
	done
}

@test "chattr +i and +a of lower files and directories hold through the mount and after copy-up, as on kernel overlayfs" {
	need_ovp
	need_kovl
	need_cmd chattr
	echo data >"$LOWER/imm"
	echo data >"$LOWER/app"
	mkdir -p "$LOWER/dimm/sub" "$LOWER/dapp"
	echo x >"$LOWER/dimm/f"
	echo x >"$LOWER/dimm/sub/g"
	echo x >"$LOWER/dapp/f"
	set_flags +i "$LOWER/imm" "$LOWER/dimm" || skip "the layers' filesystem has no chattr +i"
	set_flags +a "$LOWER/app" "$LOWER/dapp"
	ovp_mount
	kovl_mount
	chattr_ops "$KMNT" >"$T/kernel"
	chattr_ops "$MNT" >"$T/overpass"
	kovl_umount
	ovp_umount
	chattr -i "$LOWER/imm" "$LOWER/dimm"
	chattr -a "$LOWER/app" "$LOWER/dapp"
	cat "$T/overpass"
	assert_files_equal "$T/kernel" "$T/overpass" "results on chattr +i/+a files"
	# the copies keep the flags the kernel's way, and the kernel reads them
	assert_equal a "$(getfattr --only-values -n trusted.overlay.protattr "$UPPER/app")"
	assert_equal i "$(getfattr --only-values -n trusted.overlay.protattr "$UPPER/dimm")"
	kovl_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK"
	run_cmd 1 truncate -s0 "$KMNT/app"
	assert_contains "Operation not permitted" "$output"
	run_cmd 1 touch "$KMNT/dimm/new2"
	assert_contains "Operation not permitted" "$output"
	kovl_umount
	ovp_mount
	run_cmd 1 truncate -s0 "$MNT/app"
	assert_contains "Operation not permitted" "$output"
	run_cmd 1 mv "$MNT/dimm/f" "$MNT/f2"
	assert_contains "Operation not permitted" "$output"
	ovp_umount
}
