#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# Modes, owners and POSIX ACLs of new and copied-up objects: the caller's
# umask, a parent's default ACL, ACLs enforced for other users, and
# uidmapping=/gidmapping= both ways (stat, chown, create, ACL entries).

load helpers.bash

# modes DIR: mode of each entry and the ACLs, comparable across mounts
modes() {
	(cd "$1" && find . -mindepth 1 | sort | while read -r f; do
		printf '%s %s\n' "$f" "$(stat -c %a "$f")"
		getfacl -cn "$f" 2>/dev/null | sed 's/^/    /'
	done)
}

@test "umask and default ACLs give new objects the kernel's modes and ACLs" {
	need_ovp
	need_kovl
	need_cmd setfacl
	mkdir -p "$LOWER/ldir"
	ovp_mount
	kovl_mount
	local m tmpfile=1
	tmpfile_in() {
		python3 -c 'import os,sys; os.close(os.open(sys.argv[1], os.O_TMPFILE | os.O_RDWR, 0o666))' "$1"
	}
	# kernel overlayfs has O_TMPFILE since 6.6
	tmpfile_in "$KMNT" 2>/dev/null || tmpfile=0
	for m in "$MNT" "$KMNT"; do
		(umask 000 && touch "$m/f0" && mkdir "$m/d0" && mkfifo "$m/p0")
		(umask 077 && touch "$m/f7" && mkdir "$m/d7")
		(umask 022 && touch "$m/ldir/f2" && mkdir -m 2775 "$m/sg")
		setfacl -d -m u:1000:rwx,g::r-x,o::- "$m/d0"
		setfacl -d -m u:1000:rwx "$m/ldir"
		(umask 077 && touch "$m/d0/inherits" && mkdir "$m/d0/sub" &&
			touch "$m/ldir/inherits" && mkdir "$m/sg/in-sg")
		[ "$tmpfile" = 0 ] || tmpfile_in "$m/d0"
		(umask 077 && install -m 4755 /dev/null "$m/suid")
	done
	modes "$KMNT" >"$T/kernel"
	modes "$MNT" >"$T/ovp"
	run_cmd 0 diff -u "$T/kernel" "$T/ovp"
	ovp_umount
	kovl_umount
}

# sxid_ops DIR: in DIR (a mount), files made setuid or setgid or given a
# file capability by root, then written, truncated or chowned by user
# 65534 or by root; prints each one's mode afterwards, and the
# capabilities left
sxid_ops() {
	local n
	(
	cd "$1" || exit 1
	nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
	for n in w-suid w-sgid t-suid o-suid pw-suid c-suid c-own r-suid w-cap r-cap; do
		echo data >"$n"
	done
	chmod 4777 w-suid t-suid o-suid pw-suid c-suid r-suid
	chmod 2777 w-sgid
	chmod 6777 c-own
	chmod 777 w-cap r-cap
	fcap_v2 w-cap r-cap
	mkdir -m 2777 d-sgid
	mkfifo p-suid
	chmod 4777 p-suid
	chown 65534 p-suid
	nobody sh -c 'echo more >>w-suid; echo more >>w-sgid; echo more >>lower-suid; echo more >>w-cap'
	nobody truncate -s 2 t-suid
	nobody sh -c ': >o-suid'
	# a file made setuid by its own O_CREAT | O_TRUNC keeps it
	mkdir -m 1777 pub
	nobody /usr/bin/python3 -c 'import os
os.umask(0o022)
os.close(os.open("pub/n-suid", os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o4755))'
	nobody /usr/bin/python3 -c 'import os; fd = os.open("pw-suid", os.O_WRONLY); os.pwrite(fd, b"x" * 4096, 8192)'
	python3 -c 'import os; os.chown("c-suid", -1, -1); os.chown("d-sgid", -1, -1)'
	chown 65534:65534 c-own
	echo more >>r-suid
	echo more >>r-cap
	stat -c '%n %a %s' -- * pub/* | sort
	getfattr -m security.capability -- w-cap r-cap 2>&1
	)
}

@test "setuid, setgid and file capabilities go when another user writes or truncates, and on chown, as on kernel overlayfs" {
	need_kovl
	need_init_root
	need_cmd setpriv
	local opts
	echo lower >"$LOWER/lower-suid"
	chmod 4777 "$LOWER/lower-suid"
	kovl_mount
	sxid_ops "$KMNT" >"$T/kernel"
	kovl_umount
	run_cmd 0 cat "$T/kernel"
	(cd "$KUPPER" && stat -c '%n %a %s' -- * pub/* | sort) >"$T/kernel-upper"
	for opts in "" passthrough=off "passthrough=off writeback=1" xattr_permissions=2; do
		rm -rf "$UPPER" "$WORK"
		mkdir "$UPPER" "$WORK"
		ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" $opts
		sxid_ops "$MNT" >"$T/ovp"
		run_cmd 0 diff -u "$T/kernel" "$T/ovp"
		ovp_umount
		# what stat showed was no cached leftover: the upper has it
		# (xattr_permissions keeps real files without setuid)
		[ "$opts" = xattr_permissions=2 ] && continue
		(cd "$UPPER" && stat -c '%n %a %s' -- * pub/* | sort) >"$T/ovp-upper"
		run_cmd 0 diff -u "$T/kernel-upper" "$T/ovp-upper"
	done
}

@test "ACLs set through the mount are enforced for other users" {
	need_ovp
	need_init_root
	need_cmd setfacl
	need_cmd setpriv
	echo secret >"$LOWER/s"
	chmod 600 "$LOWER/s"
	ovp_mount
	# from inside the mount: the bats directories above are not searchable
	cd "$MNT"
	run_cmd 1 setpriv --reuid=65534 --regid=65534 --clear-groups cat s
	run_cmd 0 setfacl -m u:65534:r s
	run_cmd 0 setpriv --reuid=65534 --regid=65534 --clear-groups cat s
	assert_equal secret "$output"
	run_cmd 0 setfacl -x u:65534 s
	run_cmd 1 setpriv --reuid=65534 --regid=65534 --clear-groups cat s
	cd /
	ovp_umount
	assert_equal "" "$(getfacl -cn --skip-base "$LOWER/s" 2>/dev/null)" "lower ACL"
}

@test "noacl: POSIX ACLs are not supported" {
	need_ovp
	need_cmd setfacl
	touch "$LOWER/f"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" noacl
	run_cmd 1 setfacl -m u:65534:r "$MNT/f"
	run_cmd 1 getfattr -n system.posix_acl_access "$MNT/f"
	ovp_umount
	run_cmd 1 getfattr -n system.posix_acl_access "$UPPER/f"
}

# fuse-overlayfs as the oracle for options kernel overlayfs lacks:
# fovl_mount OPT... mounts it on $T/fmerged over $LOWER, $T/fupper, $T/fwork.
fovl_mount() {
	mkdir -p "$T/fupper" "$T/fwork" "$T/fmerged"
	local opts
	opts=$(IFS=,; echo "lowerdir=$LOWER,upperdir=$T/fupper,workdir=$T/fwork,$*")
	run_cmd 0 fuse-overlayfs -o "$opts" "$T/fmerged" </dev/null
}

fovl_umount() {
	run_cmd 0 fusermount3 -u "$T/fmerged"
	local p
	for p in $(pgrep -f -- "$(re_escape "$T/fmerged")"); do wait_gone "$p" 10; done
}

# owners DIR: "name uid:gid" of every entry, for comparing mounts
owners() {
	(cd "$1" && find . -mindepth 1 -not -name '.wh.*' | sort |
		xargs -r stat -c '%n %u:%g')
}

# The same owner changes through a mount mapped with 0:100000:65536.
mapping_ops() {
	chown 100005:100006 "$1/mapped"
	chown 7:8 "$1/unmappable"
	touch "$1/byroot"
	# a caller whose id is in the mapping (cd: the test's directories
	# above the mount are not searchable for it)
	(cd "$1" && setpriv --reuid=100003 --regid=100004 --clear-groups \
		sh -c 'touch new && mkdir newdir')
}

@test "uidmapping and gidmapping: on-disk id D+i shows as S+i for D:S:N, as fuse-overlayfs" {
	need_ovp
	need_cmd setfacl setpriv
	echo x >"$LOWER/mapped"
	chown 0:1 "$LOWER/mapped"
	echo y >"$LOWER/outside"
	chown 100000:100000 "$LOWER/outside"
	echo z >"$LOWER/unmappable"
	chown 2:2 "$LOWER/unmappable"
	chown 3:4 "$UPPER"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" \
		uidmapping=0:100000:65536 gidmapping=0:100000:65536
	assert_equal "100000:100001" "$(stat -c %u:%g "$MNT/mapped")" "mapped ids"
	assert_equal "65534:65534" "$(stat -c %u:%g "$MNT/outside")" "ids outside the mapping"
	assert_equal "100003:100004" "$(stat -c %u:%g "$MNT")" "the root"
	mapping_ops "$MNT"
	assert_equal "100005:100006" "$(stat -c %u:%g "$MNT/mapped")"
	assert_equal "100003:100004 100003:100004" \
		"$(stat -c %u:%g "$MNT/new" "$MNT/newdir" | xargs)" "new objects"
	# ids with no place on disk are written as the overflow id
	assert_equal "165534:165534 165534:165534" \
		"$(stat -c %u:%g "$MNT/unmappable" "$MNT/byroot" | xargs)"
	run_cmd 0 setfacl -m u:100007:r,g:100008:r "$MNT/new"
	assert_contains "user:100007:r--" "$(getfacl -cn "$MNT/new")"
	assert_contains "group:100008:r--" "$(getfacl -cn "$MNT/new")"
	owners "$MNT" >"$T/ovp-view"
	ovp_umount
	assert_equal "5:6" "$(stat -c %u:%g "$UPPER/mapped")" "on disk"
	assert_equal "3:4 3:4" "$(stat -c %u:%g "$UPPER/new" "$UPPER/newdir" | xargs)"
	assert_equal "65534:65534" "$(stat -c %u:%g "$UPPER/byroot")"
	assert_contains "user:7:r--" "$(getfacl -cn "$UPPER/new")"
	assert_contains "group:8:r--" "$(getfacl -cn "$UPPER/new")"
	assert_equal "0:1" "$(stat -c %u:%g "$LOWER/mapped")" "the lower file"
	owners "$UPPER" >"$T/ovp-disk"
	# fuse-overlayfs, given the same option and changes, agrees
	command -v fuse-overlayfs >/dev/null || skip "no fuse-overlayfs to compare with"
	mkdir "$T/fupper"
	chown 3:4 "$T/fupper"
	fovl_mount uidmapping=0:100000:65536 gidmapping=0:100000:65536
	mapping_ops "$T/fmerged"
	owners "$T/fmerged" >"$T/fovl-view"
	fovl_umount
	owners "$T/fupper" >"$T/fovl-disk"
	assert_files_equal "$T/fovl-view" "$T/ovp-view" "merged view"
	assert_files_equal "$T/fovl-disk" "$T/ovp-disk" "upper layer"
}

@test "xattr_permissions=1|2: owner and mode live in security.|user.fuseoverlayfs.override_stat" {
	need_ovp
	echo a >"$LOWER/f"
	local n x
	for n in 1 2; do
		x=user.fuseoverlayfs.override_stat
		[ "$n" = 2 ] || x=security.fuseoverlayfs.override_stat
		rm -rf "$UPPER" "$WORK"
		mkdir "$UPPER" "$WORK"
		ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" "xattr_permissions=$n"
		run_cmd 0 chown 123:456 "$MNT/f"
		run_cmd 0 chmod 4710 "$MNT/f"
		mkdir "$MNT/d"
		assert_equal "123:456 4710" "$(stat -c '%u:%g %a' "$MNT/f")"
		run_cmd 1 getfattr -n "$x" "$MNT/f" # private
		ovp_umount
		# the real file keeps its owner; the xattr has the new one
		assert_equal "0:0 644" "$(stat -c '%u:%g %a' "$UPPER/f")"
		assert_equal "123:456:4710" "$(getfattr --only-values -n "$x" "$UPPER/f")"
		getfattr -n "$x" "$UPPER/d" >/dev/null
		# the upper, used as a lower layer later, shows the same owners;
		# a record in user.* only where the mount asks for such records
		# (a user who owns a file could write one)
		if [ "$n" = 2 ]; then
			ovp_mount -m "$KMNT" "lowerdir=$UPPER:$LOWER"
			assert_equal "0:0 644" "$(stat -c '%u:%g %a' "$KMNT/f")" "user.* record on a root mount"
			ovp_umount "$KMNT"
			ovp_mount -m "$KMNT" "lowerdir=$UPPER:$LOWER" xattr_permissions=2
		else
			ovp_mount -m "$KMNT" "lowerdir=$UPPER:$LOWER"
		fi
		assert_equal "123:456 4710" "$(stat -c '%u:%g %a' "$KMNT/f")" "xattr_permissions=$n"
		ovp_umount "$KMNT"
	done
}

# fcap FILE [ROOTID]: print a file's capability as "vVERSION rootid=ID",
# or with ROOTID set a version 3 capability (cap_net_raw+ep) for it.
fcap() {
	python3 - "$@" <<'PY'
import os, struct, sys
f = sys.argv[1]
if len(sys.argv) > 2:
    os.setxattr(f, "security.capability",
                struct.pack("<6I", 0x03000001, 1 << 13, 0, 0, 0, int(sys.argv[2])))
    sys.exit(0)
v = os.getxattr(f, "security.capability")
magic = struct.unpack_from("<I", v)[0]
print("v%d" % (magic >> 24) + (" rootid=%d" % struct.unpack_from("<I", v, 20) if len(v) == 24 else ""))
PY
}

@test "copy-up keeps file capabilities, also metacopy's data copy-up, as kernel overlayfs" {
	need_ovp
	need_kovl
	need_cmd setcap getcap
	cp /bin/true "$LOWER/ping"
	cp /bin/true "$LOWER/meta"
	cp /bin/true "$LOWER/moved"
	run_cmd 0 setcap cap_net_raw+ep "$LOWER/ping" cap_net_raw+ep "$LOWER/meta" \
		cap_net_raw+ep "$LOWER/moved"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" metacopy=on
	kovl_mount "lowerdir=$LOWER" "upperdir=$KUPPER" "workdir=$KWORK" metacopy=on
	local m
	for m in "$MNT" "$KMNT"; do
		chmod 711 "$m/ping" "$m/meta"
		echo >>"$m/ping"
		# data copy-up of the metacopy file, without writing
		python3 -c 'import os, sys; os.close(os.open(sys.argv[1], os.O_WRONLY))' "$m/meta"
		mv "$m/moved" "$m/renamed" # a whole copy-up
	done
	assert_equal "$(cd "$KMNT" && getcap meta renamed)" "$(cd "$MNT" && getcap meta renamed)" \
		"merged view"
	assert_equal "meta cap_net_raw=ep
renamed cap_net_raw=ep" "$(cd "$UPPER" && getcap meta renamed)" "upper layer"
	# a write drops the capability (the kernel does it, in both layers)
	assert_equal "" "$(cd "$MNT" && getcap ping)$(cd "$KMNT" && getcap ping)"
	ovp_umount
	kovl_umount
}

@test "uidmapping maps the root id of a version 3 file capability both ways" {
	need_ovp
	need_cmd setcap
	cp /bin/true "$LOWER/v3"
	fcap "$LOWER/v3" 5
	cp /bin/true "$LOWER/far"
	fcap "$LOWER/far" 70000
	cp /bin/true "$LOWER/v2"
	run_cmd 0 setcap cap_net_raw+ep "$LOWER/v2"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" \
		uidmapping=0:100000:65536 gidmapping=0:100000:65536
	assert_equal "v3 rootid=100005" "$(fcap "$MNT/v3")" "disk 5 shows as 100005"
	assert_equal "v3 rootid=65534" "$(fcap "$MNT/far")" "an unmapped root id"
	assert_equal "v2" "$(fcap "$MNT/v2")" "version 2 carries no id"
	cp /bin/true "$MNT/new"
	fcap "$MNT/new" 100007
	assert_equal "v3 rootid=100007" "$(fcap "$MNT/new")"
	ovp_umount
	assert_equal "v3 rootid=7" "$(fcap "$UPPER/new")" "on disk"
	assert_equal "v3 rootid=5" "$(fcap "$LOWER/v3")" "the lower file"
}
