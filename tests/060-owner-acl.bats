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
	local m
	for m in "$MNT" "$KMNT"; do
		(umask 000 && touch "$m/f0" && mkdir "$m/d0" && mkfifo "$m/p0")
		(umask 077 && touch "$m/f7" && mkdir "$m/d7")
		(umask 022 && touch "$m/ldir/f2" && mkdir -m 2775 "$m/sg")
		setfacl -d -m u:1000:rwx,g::r-x,o::- "$m/d0"
		setfacl -d -m u:1000:rwx "$m/ldir"
		(umask 077 && touch "$m/d0/inherits" && mkdir "$m/d0/sub" &&
			touch "$m/ldir/inherits" && mkdir "$m/sg/in-sg")
		python3 -c 'import os,sys; os.close(os.open(sys.argv[1], os.O_TMPFILE | os.O_RDWR, 0o666))' "$m/d0"
		(umask 077 && install -m 4755 /dev/null "$m/suid")
	done
	modes "$KMNT" >"$T/kernel"
	modes "$MNT" >"$T/ovp"
	run_cmd 0 diff -u "$T/kernel" "$T/ovp"
	ovp_umount
	kovl_umount
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

@test "uidmapping and gidmapping translate stat, chown, create and ACL ids" {
	need_ovp
	need_cmd setfacl
	echo x >"$LOWER/mapped"
	chown 100000:100001 "$LOWER/mapped"
	echo y >"$LOWER/outside"
	chown 5000:5000 "$LOWER/outside"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" \
		uidmapping=0:100000:65536 gidmapping=0:100000:65536
	assert_equal "0:1" "$(stat -c %u:%g "$MNT/mapped")" "mapped ids"
	assert_equal "65534:65534" "$(stat -c %u:%g "$MNT/outside")" "ids outside the mapping"
	run_cmd 0 chown 5:6 "$MNT/mapped"
	assert_equal "5:6" "$(stat -c %u:%g "$MNT/mapped")"
	touch "$MNT/new"
	mkdir "$MNT/newdir"
	assert_equal "0:0 0:0" "$(stat -c %u:%g "$MNT/new" "$MNT/newdir" | xargs)"
	run_cmd 0 setfacl -m u:7:r,g:8:r "$MNT/new"
	assert_contains "user:7:r--" "$(getfacl -cn "$MNT/new")"
	assert_contains "group:8:r--" "$(getfacl -cn "$MNT/new")"
	ovp_umount
	assert_equal "100005:100006" "$(stat -c %u:%g "$UPPER/mapped")" "on disk"
	assert_equal "100000:100000 100000:100000" "$(stat -c %u:%g "$UPPER/new" "$UPPER/newdir" | xargs)"
	assert_contains "user:100007:r--" "$(getfacl -cn "$UPPER/new")"
	assert_contains "group:100008:r--" "$(getfacl -cn "$UPPER/new")"
	assert_equal "100000:100001" "$(stat -c %u:%g "$LOWER/mapped")" "the lower file"
}

@test "xattr_permissions=2: owner and mode live in user.fuseoverlayfs.override_stat" {
	need_ovp
	echo a >"$LOWER/f"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" xattr_permissions=2
	run_cmd 0 chown 123:456 "$MNT/f"
	run_cmd 0 chmod 4710 "$MNT/f"
	mkdir "$MNT/d"
	assert_equal "123:456 4710" "$(stat -c '%u:%g %a' "$MNT/f")"
	run_cmd 1 getfattr -n user.fuseoverlayfs.override_stat "$MNT/f" # private
	ovp_umount
	# the real file keeps its owner; the xattr has the new one
	assert_equal "0:0 644" "$(stat -c '%u:%g %a' "$UPPER/f")"
	assert_equal "123:456:4710" "$(getfattr --only-values -n user.fuseoverlayfs.override_stat "$UPPER/f")"
	getfattr -n user.fuseoverlayfs.override_stat "$UPPER/d" >/dev/null
	# the upper, used as a lower layer later, shows the same owners
	ovp_mount -m "$KMNT" "lowerdir=$UPPER:$LOWER"
	assert_equal "123:456 4710" "$(stat -c '%u:%g %a' "$KMNT/f")"
	ovp_umount "$KMNT"
}
