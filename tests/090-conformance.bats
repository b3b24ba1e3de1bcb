#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# POSIX edge cases, contrib/conformance.py: the same layers under overpass
# and under kernel overlayfs (index=on,redirect_dir=on; overpass with
# redirect_dir=on, allow_other,default_permissions, so the kernel
# checks permissions as it does for overlayfs), the script run on both as
# root and as another user, outputs compared line by line.  The script works from the mount root, a
# lower-only and a merged directory, on objects only in the lower layer,
# only in the upper and in both.  Each run gets fresh layers (runs change
# them), and the two mounts never share an upper: --prepare writes two
# identical ones.  Where overpass differs by design, or the FUSE kernel
# module decides, the kernel's lines are rewritten to what doc/overpass.1
# says overpass does, and the comparison stays exact.  Then nested use
# (overpass on kernel overlayfs, kernel overlayfs on overpass), and where
# overlayfs itself is the question, a plain directory on ext4.

load helpers

CONF=$TOP_SRCDIR/contrib/conformance.py
OTHER=1000:1000

# conf_run DIR OUT ARGS...: conformance.py ARGS DIR >OUT, checked to have
# run: no check met an error it did not expect, and a real number of lines.
conf_run() {
	local dir=$1 out=$2
	shift 2
	echo "\$ conformance.py $* $dir >$out"
	if ! timeout 600 python3 "$CONF" "$@" "$dir" >"$out" 2>"$out.err" 3>&-; then
		cat "$out.err" >&2
		return 1
	fi
	if grep -n ' unexpected: ' "$out" >&2; then
		echo "# $out: checks met errors they did not expect (a fixture bug?)" >&2
		return 1
	fi
	assert_ge 40 "$(wc -l <"$out")" "lines in $out"
}

# conform ID GROUP [RUN-ARGS...]: fresh layers under $T/ID, overpass and
# kernel overlayfs mounted on them, conformance.py --group GROUP RUN-ARGS
# on both; outputs $T/ID.kernel and $T/ID.ovp.
conform() {
	local id=$1 group=$2 d=$T/$1
	shift 2
	mkdir -p "$d"/{lower,upper,work,mnt,kupper,kwork,kmnt}
	run_cmd 0 python3 "$CONF" --prepare "$d/lower" "$d/upper" "$d/kupper" \
		--user "$OTHER" --group "$group" || return 1
	ovp_mount -m "$d/mnt" "lowerdir=$d/lower" "upperdir=$d/upper" "workdir=$d/work" \
		allow_other default_permissions redirect_dir=on || return 1
	kovl_mount -m "$d/kmnt" "lowerdir=$d/lower" "upperdir=$d/kupper" \
		"workdir=$d/kwork" index=on redirect_dir=on || return 1
	conf_run "$d/kmnt" "$T/$id.kernel" --group "$group" "$@" || return 1
	conf_run "$d/mnt" "$T/$id.ovp" --group "$group" "$@" || return 1
	ovp_umount "$d/mnt" || return 1
	kovl_umount "$d/kmnt"
}

# conform_both GROUP: conform as root (root.*) and as $OTHER (user.*), and
# compare each pair.
conform_both() {
	conform root "$1" || return 1
	assert_files_equal "$T/root.kernel" "$T/root.ovp" "as root, kernel overlayfs vs overpass" ||
		return 1
	conform user "$1" --as-user "$OTHER" || return 1
	assert_files_equal "$T/user.kernel" "$T/user.ovp" "as uid ${OTHER%:*}, kernel overlayfs vs overpass"
}

# has_line FILE LINE...: each LINE is a line of FILE (the check did run and
# gave the answer that the comparison alone would not prove).
has_line() {
	local f=$1 l
	shift
	for l; do
		grep -qxF -- "$l" "$f" || {
			echo "# $f has no line: $l" >&2
			return 1
		}
	done
}

# The FUSE kernel module's rule (doc/overpass.1, CURRENT LIMITATIONS): a
# write, truncate or chown by a user outside the file's group clears
# S_ISGID only with group execute set; Linux clears it also without.
fuse_sgid_rule() {
	sed -E '/suid\.suid\[[a-z]+\] (write|truncate) r2666 \(setgid, no group exec\)|chown -1 -1 setgid without group exec, not in group:/ s/ mode=0([0-7]{3})$/ mode=2\1/' "$1"
}

@test "names: ENAMETOOLONG at a 256-byte name, paths at PATH_MAX, as kernel overlayfs" {
	need_ovp
	need_kovl
	conform_both names
	has_line "$T/root.ovp" \
		'. names.name-max[lo] creat 256: ENAMETOOLONG' \
		'. names.path-max[lo] stat 4095: reg mode=0644 uid=0 gid=0 size=23 nlink=1' \
		'. names.path-max[lo] stat 4096: ENAMETOOLONG' \
		'. names.path-max[lo] creat 4095: ok' \
		'mdir names.path-max[both] creat 4095: ok' \
		'lodir names.path-max[lo] readlink after: True'
}

@test "types: ENOTDIR, EISDIR, ELOOP, EEXIST, ENOTEMPTY and EXDEV where the kernel gives it" {
	need_ovp
	need_kovl
	conform_both types
	has_line "$T/root.ovp" \
		'. types.enotdir[lo] stat file/x: ENOTDIR' \
		'. types.eisdir[lo] open dir O_WRONLY: EISDIR' \
		'. types.eloop[lo] chain of 40: b'"'lower:f\\n'" \
		'. types.eloop[lo] chain of 41: ELOOP' \
		'. types.eexist[lo] mkdir on file: EEXIST' \
		'. types.enotempty[both] rmdir mixed: ENOTEMPTY' \
		'. types.enotempty[both] rmdir whited: ok' \
		'. types.exdev[lo] rename long-path dir to another dir: EXDEV' \
		'mdir types.exdev[both] rename long-path dir to another dir: EXDEV' \
		'. types.exdev[lo] rename short-path dir to another dir: ok'
}

@test "perms: another user meets EACCES and EPERM as with kernel overlayfs" {
	need_ovp
	need_kovl
	conform_both perms
	has_line "$T/user.ovp" \
		'. perms.eacces[lo] read r600: EACCES' \
		'. perms.eacces[lo] unlink in d755: EACCES' \
		'. perms.eperm[lo] chmod r644: EPERM' \
		'. perms.eperm[lo] utimes explicit r666: EPERM' \
		'. perms.eperm[lo] utimes NOW r666 (writable): ok'
	has_line "$T/root.ovp" '. perms.eacces[lo] read r600: b'"'lower:r600\\n'"
}

@test "sticky directories: another user's files cannot be unlinked or renamed" {
	need_ovp
	need_kovl
	conform_both sticky
	has_line "$T/user.ovp" \
		". sticky.sticky[lo] unlink root's: EPERM" \
		". sticky.sticky[lo] unlink other's: EPERM" \
		". sticky.sticky[lo] rename other's: EPERM" \
		". sticky.sticky[lo] unlink user's: ok" \
		"mdir sticky.sticky[both] rename own over root's: EPERM"
}

@test "setuid and setgid cleared on write, truncate and chown; the FUSE rule for setgid without group execute" {
	need_ovp
	need_kovl
	conform root suid
	assert_files_equal "$T/root.kernel" "$T/root.ovp" "as root"
	conform user suid --as-user "$OTHER"
	fuse_sgid_rule "$T/user.kernel" >"$T/user.expected"
	# the rewrite applies: the kernel did clear the bit where FUSE does not
	run_cmd '!' cmp -s "$T/user.kernel" "$T/user.expected"
	assert_files_equal "$T/user.expected" "$T/user.ovp" \
		"as uid ${OTHER%:*}, kernel overlayfs under the FUSE setgid rule vs overpass"
	has_line "$T/user.ovp" \
		'. suid.suid[lo] write u6777: 1 mode=0777' \
		'. suid.suid[lo] truncate r6777: ok mode=0777' \
		'. suid.suid[lo] write r2666 (setgid, no group exec): 1 mode=2666' \
		'. suid.suid[lo] chmod g+s, not in group: ok mode=0755'
	has_line "$T/root.ovp" '. suid.suid[lo] chown to same owner: ok mode=0755'
}

@test "open flags: O_APPEND, O_TRUNC, O_NOATIME (EPERM for non-owners)" {
	need_ovp
	need_kovl
	conform_both open
	has_line "$T/root.ovp" \
		'. open.flags[lo] O_APPEND write, offset after: 12' \
		'. open.flags[lo] O_RDONLY|O_TRUNC: ok mtime=changed ctime=changed'
	has_line "$T/user.ovp" \
		". open.flags[lo] O_NOATIME root's file: EPERM" \
		". open.flags[lo] O_NOATIME user's file: ok"
}

@test "times: utimensat with UTIME_NOW/UTIME_OMIT; ctime and mtime after rename, link, unlink, chmod, truncate, copy-up" {
	need_ovp
	need_kovl
	conform_both times
	has_line "$T/root.ovp" \
		'. times.utimensat[lo] UTIME_NOW,UTIME_OMIT: ok atime=changed mtime=same ctime=changed' \
		'. times.utimensat[up] UTIME_OMIT,UTIME_OMIT: ok atime=same mtime=same ctime=same' \
		'. times.ctime-mtime[lo] copy-up by open: file: ok mtime=same ctime=changed' \
		'. times.ctime-mtime[up] chown to same: ok mtime=same ctime=changed' \
		'mdir times.ctime-mtime[both] copy-up of a lower file into a merged dir: dir: ok atime=same mtime=same ctime=changed'
	# on disk too: a copy-up puts its upper parent's mtime back, so the
	# directories the runs did not change still carry the fixture's time
	local w
	for w in root user; do
		(cd "$T/$w/kupper" && find . -type d -printf '%p %TY\n' | sort) >"$T/$w.kdirs"
		(cd "$T/$w/upper" && find . -type d -printf '%p %TY\n' | sort) >"$T/$w.odirs"
		assert_files_equal "$T/$w.kdirs" "$T/$w.odirs" "upper directories and their mtime years ($w)"
		grep -q ' 2001$' "$T/$w.odirs"
	done
}

@test "unlinked open files: fstat, write, ftruncate, fchmod on them" {
	need_ovp
	need_kovl
	conform_both unlinked
	has_line "$T/root.ovp" \
		'. unlinked.open-unlinked[up] rw: fstat: reg mode=0666 uid=1000 gid=1000 size=9 nlink=0' \
		'. unlinked.open-unlinked[lo] rw: fstat after ftruncate: reg mode=0666 uid=1000 gid=1000 size=3 nlink=0' \
		'. unlinked.open-unlinked[lo] ro: fstat: reg mode=0666 uid=1000 gid=1000 size=9 nlink=1' \
		'. unlinked.open-unlinked[lo] ro: ftruncate on read-only fd: EINVAL'
}

@test "hard links: link counts after link, unlink and rename over, through copy-up" {
	need_ovp
	need_kovl
	conform_both links
	has_line "$T/root.ovp" \
		'. links.hardlinks[lo] nlink: a=3 b=3 c=3' \
		'. links.hardlinks[lo] nlink: three3=1' \
		'. links.hardlinks[lo] nlink: ro1=1 ro2=1' \
		'. links.hardlinks[lo] nlink: ul1=1' \
		'mdir links.hardlinks[both] dir nlink: d=1 e=1'
}

# nested: the layers under $d/outer, a kernel overlayfs mount
nested_setup() {
	local d=$1
	mkdir -p "$d"/{base/lower,oup,owork,outer,mnt,kupper,kwork,kmnt}
	run_cmd 0 mount -t overlay overlay \
		-o "lowerdir=$d/base,upperdir=$d/oup,workdir=$d/owork" "$d/outer" || return 1
	mkdir "$d/outer/upper" "$d/outer/work"
	run_cmd 0 python3 "$CONF" --prepare "$d/base/lower" "$d/outer/upper" "$d/kupper" \
		--user "$OTHER" || return 1
	ovp_mount -m "$d/mnt" "lowerdir=$d/outer/lower" "upperdir=$d/outer/upper" \
		"workdir=$d/outer/work" allow_other default_permissions redirect_dir=on || return 1
	# overpass on overlayfs has no index (its upper cannot decode file
	# handles): the oracle is kernel overlayfs without one, whose lower
	# hard links are one file per name (ovl_hash_bylower), as overpass's
	kovl_mount -m "$d/kmnt" "lowerdir=$d/base/lower" "upperdir=$d/kupper" \
		"workdir=$d/kwork" index=off redirect_dir=on
}

nested_teardown() {
	ovp_umount "$1/mnt" && kovl_umount "$1/kmnt" && run_cmd 0 umount "$1/outer"
}

# The upper on overlayfs takes .wh.NAME whiteouts (doc/overpass.1): a lower
# name too long for the prefix cannot be removed or renamed (ENAMETOOLONG).
aufs_long_names() {
	sed -E '/names\.name-max\[(lo|both)\]/ {
		s/(rename 255 to short|rename dir 255|unlink 255 existing): ok$/\1: ENAMETOOLONG/
		s/(read renamed|read in renamed dir): .*/\1: ENOENT/
		s/listing: \[F\*255 N\*255 l m s\]$/listing: [F*255 K*255 L*255 M*255 N*255 s]/
	}' "$1"
}

@test "nested: overpass with its lower and upper on kernel overlayfs (containers in containers)" {
	need_ovp
	need_kovl
	local w d groups=(--group names --group types --group perms --group sticky
		--group suid --group open --group times --group unlinked)
	for w in root user; do
		d=$T/n-$w
		nested_setup "$d"
		if [ $w = root ]; then
			conf_run "$d/kmnt" "$T/$w.kernel" "${groups[@]}"
			conf_run "$d/mnt" "$T/$w.ovp" "${groups[@]}"
			aufs_long_names "$T/$w.kernel" >"$T/$w.expected"
		else
			conf_run "$d/kmnt" "$T/$w.kernel" "${groups[@]}" --as-user "$OTHER"
			conf_run "$d/mnt" "$T/$w.ovp" "${groups[@]}" --as-user "$OTHER"
			aufs_long_names "$T/$w.kernel" | fuse_sgid_rule /dev/stdin >"$T/$w.expected"
		fi
		assert_files_equal "$T/$w.expected" "$T/$w.ovp" "$w: kernel overlayfs on plain layers vs overpass on overlayfs"
		# hard links of a lower layer on overlayfs (no file handles, so no
		# index, as the kernel's index=off): every operation works, and
		# the names are separate files once one is copied up, whatever
		# the kernel cached (tests/125-one-file.bats); overpass keeps the
		# st_ino of a copied-up link where the kernel shows the upper's
		conf_run "$d/kmnt" "$T/$w.klinks" --group links
		conf_run "$d/mnt" "$T/$w.links" --group links
		if grep -E ': (ENOTSUP|EOPNOTSUPP|EIO|ESTALE|EXDEV)$' "$T/$w.links"; then
			echo "# operations on lower hard links failed" >&2
			false
		fi
		sed -E '/hardlinks\[lo\] a and c, b and c:/ s/\[same different\]/[same same]/' \
			"$T/$w.klinks" >"$T/$w.klinks.expected"
		assert_files_equal "$T/$w.klinks.expected" "$T/$w.links" "$w: hard links without an index"
		has_line "$T/$w.links" '. links.hardlinks[lo] write through b: 1' \
			". links.hardlinks[lo] read a, c: (b'lower:a\\n', b'lower:a\\n')" \
			'. links.hardlinks[lo] unlink three: ok'
		nested_teardown "$d"
	done
	has_line "$T/root.ovp" '. names.name-max[lo] rename 255 to short: ENAMETOOLONG' \
		'mdir names.name-max[both] unlink 255 existing: ENAMETOOLONG' \
		'mdir types.enotempty[both] rmdir whited: ok'
	# the upper holds .wh. files, as fuse-overlayfs writes them
	[ -n "$(find "$T/n-root/oup/upper" -name '.wh.*' -print -quit)" ]
}

@test "nested: kernel overlayfs with an overpass mount as its lower layer" {
	need_ovp
	need_kovl
	local w d args
	for w in root user; do
		d=$T/s-$w
		args=()
		[ $w = root ] || args=(--as-user "$OTHER")
		mkdir -p "$d"/{lower,pmnt,kupper,kwork,kmnt,kupper2,kwork2,kmnt2}
		run_cmd 0 python3 "$CONF" --prepare "$d/lower" "$d/kupper" "$d/kupper2" --user "$OTHER"
		ovp_mount -m "$d/pmnt" "lowerdir=$d/lower" allow_other default_permissions redirect_dir=on
		kovl_mount -m "$d/kmnt" "lowerdir=$d/lower" "upperdir=$d/kupper" \
			"workdir=$d/kwork" index=on redirect_dir=on
		kovl_mount -m "$d/kmnt2" "lowerdir=$d/pmnt" "upperdir=$d/kupper2" \
			"workdir=$d/kwork2" index=on redirect_dir=on
		conf_run "$d/kmnt" "$T/$w.kernel" "${args[@]}"
		conf_run "$d/kmnt2" "$T/$w.stacked" "${args[@]}"
		assert_files_equal "$T/$w.kernel" "$T/$w.stacked" \
			"$w: kernel overlayfs on plain layers vs on an overpass mount"
		kovl_umount "$d/kmnt2"
		kovl_umount "$d/kmnt"
		ovp_umount "$d/pmnt"
	done
}

# Where kernel overlayfs differs from a plain filesystem (and overpass with
# it): merged directories show one link (d is merged once changed); a copy-up gives the file
# a new ctime; an unlinked file or directory open from a lower layer keeps
# its links; users cannot make whiteout devices.  (Long redirects, EXDEV,
# are compared with the kernel above.)
overlayfs_isms() {
	sed -E '
		/links\.hardlinks\[lo\] dir nlink: (d=4|d=3 e=3)$/ s/=[0-9]+/=1/g
		/links\.hardlinks\[both\] dir nlink:/ s/=[0-9]+/=1/g
		/\[lo\] (O_CREAT on existing|O_RDWR open and close|write in dir: dir):/ s/ctime=same$/ctime=changed/
		/\[(lo|both)\] copy-up (by open: file|of a lower file into a merged dir: dir):/ s/ctime=same$/ctime=changed/
		/\[lo\] (ro|over): fstat:/ s/nlink=0$/nlink=1/
		/\[lo\] dir: fstat:/ s/nlink=0$/nlink=2/
		/\[both\] dir: fstat:/ s/nlink=0$/nlink=1/
		s/(mknod whiteout): ok$/\1: EPERM/
	' "$1" | grep -v 'types\.exdev'
}

@test "against plain ext4: overpass differs only where kernel overlayfs itself does" {
	need_ovp
	local d=$T/p
	mkdir -p "$d"/{plain,lower,upper,work,mnt}
	run_cmd 0 python3 "$CONF" --prepare-plain "$d/plain" --user "$OTHER"
	run_cmd 0 python3 "$CONF" --prepare "$d/lower" "$d/upper" --user "$OTHER"
	ovp_mount -m "$d/mnt" "lowerdir=$d/lower" "upperdir=$d/upper" "workdir=$d/work" \
		allow_other default_permissions redirect_dir=on
	conf_run "$d/plain" "$T/plain.out"
	conf_run "$d/mnt" "$T/ovp.out"
	ovp_umount "$d/mnt"
	overlayfs_isms "$T/plain.out" >"$T/expected"
	grep -v 'types\.exdev' "$T/ovp.out" >"$T/ovp.filtered"
	# the rewrite applies to this many lines (they would differ from ext4)
	assert_ge 40 "$(diff "$T/plain.out" "$T/expected" | grep -c '^>')" "overlayfs-specific lines"
	assert_files_equal "$T/expected" "$T/ovp.filtered" "plain ext4 with overlayfs's differences vs overpass"
}
