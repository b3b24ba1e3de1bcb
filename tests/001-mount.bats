#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# Mounting: layer counts with and without an upper, read-only mounts, the
# mount.fuse helper forms, accepted options, and every kind of bad input
# refused before anything is mounted (exit 1, one line naming the path or
# option, no mount, no daemon).

load helpers

@test "--version, -V, --help and -h exit 0" {
	need_binary
	run_ovp 0 --version
	assert_match '^overpass [0-9]' "${lines[0]}" "--version output"
	run_ovp 0 -V
	assert_match '^overpass [0-9]' "${lines[0]}" "-V output"
	run_ovp 0 --help
	assert_contains lowerdir "$output" "--help output"
	run_ovp 0 -h
	assert_contains lowerdir "$output" "-h output"
}

@test "no arguments, or no mountpoint: usage error, exit 1" {
	need_binary
	run_ovp 1 ""
	run_ovp 1
	run_ovp 1 -o "lowerdir=$LOWER"
	run_ovp 1 -o
}

# layers_n N: N lower layers lower-N.1 .. lower-N.N, each with its own file,
# a file all share (topmost wins), a directory all share (merged), and a
# file the next layer down also has.  Prints the lowerdir value.
layers_n() {
	local n=$1 i d lowers=""
	for ((i = 1; i <= n; i++)); do
		d=$T/lower-$n.$i
		mkdir -p "$d/shared-dir/sub"
		echo "layer $i" >"$d/f$i"
		echo "top is $i" >"$d/shared"
		echo "dir $i" >"$d/shared-dir/d$i"
		echo "sub $i" >"$d/shared-dir/sub/s"
		chmod "75$i" "$d/shared-dir"
		lowers+="${lowers:+:}$d"
	done
	echo "$lowers"
}

@test "mount with 1, 2 and 5 lower layers, with and without an upper, as kernel overlayfs" {
	need_ovp
	need_kovl
	local n lowers i
	for n in 1 2 5; do
		lowers=$(layers_n $n)
		# kernel overlayfs wants two lowerdirs at least without an upper
		mkdir -p "$T/empty"
		kovl_mount "lowerdir=$lowers:$T/empty"
		tree_dump --owner "$KMNT" >"$T/k.$n"
		kovl_umount
		for upper in no yes; do
			if [ $upper = yes ]; then
				rm -rf "$UPPER" "$WORK" && mkdir "$UPPER" "$WORK"
				ovp_mount "lowerdir=$lowers" "upperdir=$UPPER" "workdir=$WORK"
			else
				ovp_mount "lowerdir=$lowers"
			fi
			for ((i = 1; i <= n; i++)); do
				assert_equal "layer $i" "$(cat "$MNT/f$i")" "f$i, $n layers, upper: $upper"
				assert_equal "dir $i" "$(cat "$MNT/shared-dir/d$i")"
			done
			assert_equal "top is 1" "$(cat "$MNT/shared")" "the leftmost lowerdir is topmost"
			assert_equal "sub 1" "$(cat "$MNT/shared-dir/sub/s")"
			assert_equal "$((n + 2))" "$(ls -A "$MNT" | wc -l)" "entries in the root"
			tree_dump --owner "$MNT" >"$T/m.$n.$upper"
			assert_files_equal "$T/k.$n" "$T/m.$n.$upper" "$n layers, upper: $upper"
			if [ $upper = yes ]; then
				echo new >"$MNT/created"
				assert_equal new "$(cat "$UPPER/created")" "a new file lands in upperdir"
			fi
			ovp_umount
		done
	done
}

@test "100 lower layers" {
	need_ovp
	local i lowers=""
	for i in $(seq 1 100); do
		mkdir -p "$T/many/$i/d"
		echo "$i" >"$T/many/$i/f$i"
		echo "$i" >"$T/many/$i/d/top"
		lowers+="${lowers:+:}$T/many/$i"
	done
	ovp_mount "lowerdir=$lowers" "upperdir=$UPPER" "workdir=$WORK"
	assert_equal 101 "$(ls "$MNT" | wc -l)" "entries in the root"
	assert_equal 100 "$(cat "$MNT/f100")"
	assert_equal 1 "$(cat "$MNT/d/top")" "topmost layer wins"
	echo changed >"$MNT/f77"
	assert_equal changed "$(cat "$UPPER/f77")"
	assert_equal 77 "$(cat "$T/many/77/f77")"
	ovp_umount
}

@test "without upperdir the mount is read-only: every change fails with EROFS" {
	need_ovp
	mkdir -p "$LOWER/dir"
	echo a >"$LOWER/a"
	ln -s a "$LOWER/sym"
	tree_dump --owner "$LOWER" >"$T/before"
	ovp_mount "lowerdir=$LOWER"
	assert_fails_with "Read-only file system" touch "$MNT/new"
	assert_fails_with "Read-only file system" touch "$MNT/a"
	assert_fails_with "Read-only file system" sh -c "echo x >>'$MNT/a'"
	assert_fails_with "Read-only file system" sh -c "echo x >'$MNT/a'"
	assert_fails_with "Read-only file system" truncate -s 0 "$MNT/a"
	assert_fails_with "Read-only file system" mkdir "$MNT/newdir"
	assert_fails_with "Read-only file system" rm -f "$MNT/a"
	assert_fails_with "Read-only file system" rmdir "$MNT/dir"
	assert_fails_with "Read-only file system" mv "$MNT/a" "$MNT/b"
	assert_fails_with "Read-only file system" chmod 600 "$MNT/a"
	assert_fails_with "Read-only file system" ln -s x "$MNT/newlink"
	assert_fails_with "Read-only file system" ln "$MNT/a" "$MNT/hard"
	assert_fails_with "Read-only file system" mkfifo "$MNT/fifo"
	assert_fails_with "Read-only file system" setfattr -n user.x -v 1 "$MNT/a"
	run_cmd '!' python3 -c "import os; os.open('$MNT/a', os.O_RDWR)"
	assert_contains "Read-only file system" "$output"
	# reading still works
	assert_equal a "$(cat "$MNT/a")"
	assert_equal a "$(readlink "$MNT/sym")"
	assert_match '(^|,)ro(,|$)' "$(findmnt -no VFS-OPTIONS "$MNT")" "mount flags"
	ovp_umount
	tree_dump --owner "$LOWER" >"$T/after"
	assert_files_equal "$T/before" "$T/after" "the lower layer changed"
}

@test "the ro option makes a mount with an upper read-only" {
	need_ovp
	echo a >"$LOWER/a"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" ro
	assert_fails_with "Read-only file system" touch "$MNT/new"
	assert_fails_with "Read-only file system" sh -c "echo x >>'$MNT/a'"
	assert_equal a "$(cat "$MNT/a")"
	ovp_umount
	assert_equal "" "$(ls -A "$UPPER")" "upperdir stays empty"
}

@test "helper form: overpass SOURCE MOUNTPOINT -o OPTS, fstab words ignored" {
	need_ovp
	echo hello >"$LOWER/f"
	run_ovp 0 overpass "$MNT" -o "lowerdir=$LOWER,upperdir=$UPPER,workdir=$WORK,rw,dev,suid,defaults,auto,noauto,user,users,nofail,_netdev,x-systemd.automount" </dev/null
	is_mounted "$MNT"
	OVP_PID_OF[$MNT]=$(daemon_pid "$MNT")
	OVP_PIDS+=("${OVP_PID_OF[$MNT]}")
	assert_equal hello "$(cat "$MNT/f")"
	echo new >"$MNT/new"
	assert_equal new "$(cat "$UPPER/new")"
	ovp_umount
}

@test "mount(8): mount -t fuse prog#source" {
	need_ovp
	need_cmd mount.fuse3
	echo hello >"$LOWER/f"
	run_cmd 0 mount -t fuse "$OVERPASS#overpass" "$MNT" -o "lowerdir=$LOWER,upperdir=$UPPER,workdir=$WORK"
	OVP_PID_OF[$MNT]=$(daemon_pid "$MNT")
	OVP_PIDS+=("${OVP_PID_OF[$MNT]}")
	assert_equal hello "$(cat "$MNT/f")"
	run_cmd 0 umount "$MNT"
	ovp_wait_exit "$MNT"
}

@test "mount(8): mount -t fuse.overpass (overpass installed in PATH)" {
	need_ovp
	need_cmd mount.fuse3
	# mount(8) runs its helpers with the standard PATH only: when overpass
	# is not installed, this build stands in for it during the test
	if ! PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		command -v overpass >/dev/null; then
		[ -w /usr/local/bin ] || skip "overpass is not installed and /usr/local/bin is not writable"
		OVP_TMP_LINK=/usr/local/bin/overpass
		ln -s "$OVERPASS" "$OVP_TMP_LINK"
	fi
	echo hello >"$LOWER/f"
	run_cmd 0 mount -t fuse.overpass overpass "$MNT" -o "lowerdir=$LOWER,upperdir=$UPPER,workdir=$WORK"
	OVP_PID_OF[$MNT]=$(daemon_pid "$MNT")
	OVP_PIDS+=("${OVP_PID_OF[$MNT]}")
	assert_equal hello "$(cat "$MNT/f")"
	assert_equal fuse.overpass "$(fstype_of "$MNT")" "file system type"
	run_cmd 0 umount "$MNT"
	ovp_wait_exit "$MNT"
}

@test "relative layer paths and mountpoint, and an escaped colon in lowerdir" {
	need_ovp
	echo rel >"$LOWER/f"
	mkdir -p "$T/with:colon"
	echo colon >"$T/with:colon/c"
	cd "$T"
	run_ovp 0 -o "lowerdir=lower:with\\:colon,upperdir=upper,workdir=work" merged </dev/null
	cd /
	OVP_PID_OF[$MNT]=$(daemon_pid merged || daemon_pid "$MNT")
	OVP_PIDS+=("${OVP_PID_OF[$MNT]}")
	is_mounted "$MNT"
	assert_equal rel "$(cat "$MNT/f")"
	assert_equal colon "$(cat "$MNT/c")"
	echo up >"$MNT/u"
	assert_equal up "$(cat "$UPPER/u")"
	ovp_umount
}

@test "as root, allow_other and default_permissions are on by default" {
	need_ovp
	need_init_root
	need_cmd setpriv
	echo public >"$LOWER/public"
	echo secret >"$LOWER/secret"
	chmod 600 "$LOWER/secret"
	chmod 755 "$T" "$LOWER"
	ovp_mount "lowerdir=$LOWER"
	local o
	o=$(findmnt -no FS-OPTIONS "$MNT")
	assert_match '(^|,)allow_other(,|$)' "$o" "allow_other in the mount options"
	assert_match '(^|,)default_permissions(,|$)' "$o" "default_permissions in the mount options"
	# from inside the mount: the bats directories above are not searchable
	cd "$MNT"
	run_cmd 0 setpriv --reuid=65534 --regid=65534 --clear-groups cat public
	assert_equal public "$output"
	run_cmd '!' setpriv --reuid=65534 --regid=65534 --clear-groups cat secret
	assert_contains "Permission denied" "$output"
	cd /
	ovp_umount
}

# try_options OPTS: a mount with the default layers and -o OPTS works and
# reads; failures are collected in $option_failures.
try_options() {
	rm -rf "$UPPER" "$WORK" && mkdir "$UPPER" "$WORK"
	if ! ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" "$1"; then
		option_failures+=$'\n'"  -o $1: $output"
		return 1
	fi
	if [ "$(cat "$MNT/a")" != a ]; then
		option_failures+=$'\n'"  -o $1: cannot read through the mount"
	fi
}

@test "fuse-overlayfs, FUSE and mount options are accepted" {
	need_ovp
	echo a >"$LOWER/a"
	local o
	option_failures=""
	for o in "uidmapping=0:0:65536,gidmapping=0:0:65536:65536:65536:1" squash_to_root \
		squash_to_uid=0 squash_to_gid=0 static_nlink noacl xino=on xino=off xino=auto \
		ino32_t timeout=5 timeout=0 threaded=0 threaded=1 fsync=0 fsync=1 volatile \
		noxattrs=0 noxattrs=1 noxattrs=2 xattr_permissions=0 xattr_permissions=1 \
		xattr_permissions=2 context=system_u:object_r:container_file_t:s0 \
		redirect_dir=on redirect_dir=off redirect_dir=follow redirect_dir=nofollow \
		allow_other allow_root default_permissions rw dev suid exec atime relatime \
		diratime nodiratime sync async dirsync max_read=131072 \
		passthrough=auto passthrough=on passthrough=off \
		defaults auto noauto user users nofail _netdev x-systemd.automount; do
		try_options "$o" && ovp_umount
	done
	if try_options "nodev,nosuid,noexec,noatime"; then
		o=$(findmnt -no VFS-OPTIONS "$MNT")
		[[ "$o" =~ (^|,)nodev(,|$) && "$o" =~ (^|,)nosuid(,|$) && "$o" =~ (^|,)noexec(,|$) &&
			"$o" =~ (^|,)noatime(,|$) ]] ||
			option_failures+=$'\n'"  -o nodev,nosuid,noexec,noatime: mount flags are $o"
		ovp_umount
	fi
	if try_options "noatime,strictatime"; then
		o=$(findmnt -no VFS-OPTIONS "$MNT")
		[[ ! "$o" =~ (^|,)(noatime|relatime)(,|$) ]] ||
			option_failures+=$'\n'"  -o noatime,strictatime (last wins): mount flags are $o"
		ovp_umount
	fi
	if try_options "noxattrs=1"; then
		setfattr -n user.x -v 1 "$MNT/a" 2>/dev/null &&
			option_failures+=$'\n'"  -o noxattrs=1: setxattr succeeded"
		getfattr -d "$MNT/a" >/dev/null 2>&1 &&
			option_failures+=$'\n'"  -o noxattrs=1: listxattr succeeded"
		ovp_umount
		getfattr -n user.x "$UPPER/a" >/dev/null 2>&1 &&
			option_failures+=$'\n'"  -o noxattrs=1: user.x reached the upper layer"
	fi
	if try_options "fsname=myoverlay,subtype=mysub"; then
		[ "$(findmnt -no SOURCE "$MNT")" = myoverlay ] ||
			option_failures+=$'\n'"  -o fsname=myoverlay: source is $(findmnt -no SOURCE "$MNT")"
		[ "$(fstype_of "$MNT")" = fuse.mysub ] ||
			option_failures+=$'\n'"  -o subtype=mysub: type is $(fstype_of "$MNT")"
		ovp_umount
	fi
	if try_options "statsfile=$T/stats-at-exit"; then
		ovp_umount
		grep -q '^requests.LOOKUP [1-9]' "$T/stats-at-exit" ||
			option_failures+=$'\n'"  -o statsfile=: no LOOKUP count in $T/stats-at-exit"
	fi
	if [ -n "$option_failures" ]; then
		echo "# options refused or not working:$option_failures" >&2
		false
	fi
}

# --- bad input -----------------------------------------------------------

# check_refused NEEDLE ARGS...: overpass ARGS exits 1, prints one line on
# stderr starting "overpass: " and containing NEEDLE, nothing on stdout,
# and neither mounts $MNT nor leaves a daemon.  Failures are collected in
# $refusal_failures so that one run reports every case.
check_refused() {
	local needle=$1 rc=0 err out why=""
	shift
	timeout 20 "$OVERPASS" "$@" </dev/null >"$T/out" 2>"$T/err" 3>&- || rc=$?
	out=$(cat "$T/out")
	err=$(cat "$T/err")
	[ "$rc" = 1 ] || why+=" exit=$rc"
	[ "$(wc -l <"$T/err")" = 1 ] || why+=" stderr-lines=$(wc -l <"$T/err")"
	[[ "$err" == "overpass: "* ]] || why+=" not-'overpass: '"
	[[ "$err" == *"$needle"* ]] || why+=" lacks-'$needle'"
	[ -z "$out" ] || why+=" stdout-not-empty"
	if is_mounted "$MNT"; then
		why+=" MOUNTED"
		fusermount3 -u "$MNT" || umount -l "$MNT"
	fi
	if daemon_pid "$MNT" >/dev/null; then
		why+=" DAEMON-LEFT"
	fi
	printf '%-4s overpass %s\n     -> exit %s: %s\n' "$([ -z "$why" ] && echo ok || echo FAIL)" "$*" "$rc" "$err"
	if [ -n "$why" ]; then
		refusal_failures+=$'\n'"  overpass $*:$why"$'\n'"    stderr: $err"
	fi
}

@test "bad layers are refused with exit 1, one line naming the path, no mount" {
	need_binary
	local L=$LOWER U=$UPPER W=$WORK
	mkdir -p "$T/outer/up" "$T/outer/wk" "$U/inner" "$W/inner" "$L/inner"
	touch "$T/afile"
	ln -s lower "$T/lowerlink"
	refusal_failures=""
	check_refused lowerdir -o "upperdir=$U,workdir=$W" "$MNT"
	check_refused lowerdir -o "lowerdir=,upperdir=$U,workdir=$W" "$MNT"
	check_refused "$T/missing" -o "lowerdir=$T/missing" "$MNT"
	check_refused "$T/missing" -o "lowerdir=$L:$T/missing" "$MNT"
	check_refused "$T/afile" -o "lowerdir=$T/afile" "$MNT"
	check_refused "$T/afile" -o "lowerdir=$L:$T/afile" "$MNT"
	check_refused "$T/missing" -o "lowerdir=$L,upperdir=$T/missing,workdir=$W" "$MNT"
	check_refused "$T/afile" -o "lowerdir=$L,upperdir=$T/afile,workdir=$W" "$MNT"
	check_refused "$T/missing" -o "lowerdir=$L,upperdir=$U,workdir=$T/missing" "$MNT"
	check_refused "$T/afile" -o "lowerdir=$L,upperdir=$U,workdir=$T/afile" "$MNT"
	check_refused workdir -o "lowerdir=$L,upperdir=$U" "$MNT"
	# workdir and upperdir inside each other, or the same
	check_refused "$U" -o "lowerdir=$L,upperdir=$U,workdir=$U/inner" "$MNT"
	check_refused "$W" -o "lowerdir=$L,upperdir=$W/inner,workdir=$W" "$MNT"
	check_refused "$U" -o "lowerdir=$L,upperdir=$U,workdir=$U" "$MNT"
	# upperdir inside a lowerdir, a lowerdir inside upperdir
	check_refused "$T/outer" -o "lowerdir=$T/outer,upperdir=$T/outer/up,workdir=$T/outer/wk" "$MNT"
	check_refused "$U/inner" -o "lowerdir=$U/inner,upperdir=$U,workdir=$W" "$MNT"
	check_refused "$L" -o "lowerdir=$L,upperdir=$L/inner,workdir=$W" "$MNT"
	# the same directory twice, however it is spelled
	check_refused "$L" -o "lowerdir=$L:$L" "$MNT"
	check_refused "$L" -o "lowerdir=$L:$L2:$L/" "$MNT"
	check_refused "lower" -o "lowerdir=$L:$T/lowerlink" "$MNT"
	check_refused "$L" -o "lowerdir=$L,upperdir=$L,workdir=$W" "$MNT"
	check_refused "$W" -o "lowerdir=$W,upperdir=$U,workdir=$W" "$MNT"
	# the mountpoint
	check_refused "$T/no-such-mountpoint" -o "lowerdir=$L" "$T/no-such-mountpoint"
	check_refused "$T/afile" -o "lowerdir=$L" "$T/afile"
	if [ -n "$refusal_failures" ]; then
		echo "# cases not refused as the spec says:$refusal_failures" >&2
		false
	fi
}

@test "bad options are refused with exit 1, one line naming the option, no mount" {
	need_binary
	local L=$LOWER
	refusal_failures=""
	check_refused "unknown option 'foo'" -o "lowerdir=$L,foo" "$MNT"
	check_refused "unknown option 'bogus_opt'" -o "bogus_opt=1,lowerdir=$L" "$MNT"
	for m in "0:1000" "0:1000:1:5" "a:b:c" "0:1000:-1" "0:1000:" "::" "0:1000:1:" "0:1000:1x" "" "0:0:1:1:1"; do
		check_refused uidmapping -o "lowerdir=$L,uidmapping=$m" "$MNT"
		check_refused gidmapping -o "lowerdir=$L,gidmapping=$m" "$MNT"
	done
	check_refused xino -o "lowerdir=$L,xino=maybe" "$MNT"
	check_refused threaded -o "lowerdir=$L,threaded=2" "$MNT"
	check_refused fsync -o "lowerdir=$L,fsync=yes" "$MNT"
	check_refused noxattrs -o "lowerdir=$L,noxattrs=3" "$MNT"
	check_refused xattr_permissions -o "lowerdir=$L,xattr_permissions=9" "$MNT"
	check_refused timeout -o "lowerdir=$L,timeout=soon" "$MNT"
	check_refused passthrough -o "lowerdir=$L,passthrough=maybe" "$MNT"
	check_refused squash_to_uid -o "lowerdir=$L,squash_to_uid=abc" "$MNT"
	check_refused squash_to_gid -o "lowerdir=$L,squash_to_gid=-5" "$MNT"
	if [ -n "$refusal_failures" ]; then
		echo "# cases not refused as the spec says:$refusal_failures" >&2
		false
	fi
}

@test "workdir on another filesystem than upperdir is refused" {
	need_ovp
	tmpfs_mount "$T/tmpfs"
	mkdir "$T/tmpfs/w"
	refusal_failures=""
	check_refused "$T/tmpfs/w" -o "lowerdir=$LOWER,upperdir=$UPPER,workdir=$T/tmpfs/w" "$MNT"
	run_cmd 0 umount "$T/tmpfs"
	if [ -n "$refusal_failures" ]; then
		echo "# not refused as the spec says:$refusal_failures" >&2
		false
	fi
}

@test "a FUSE mount failure exits 2 and leaves nothing behind" {
	need_ovp
	need_cmd unshare
	echo a >"$LOWER/a"
	# in a private mount namespace /dev/fuse is /dev/null: the mount fails
	run_cmd 2 unshare -m --propagation private sh -c \
		"mount --bind /dev/null /dev/fuse && exec '$OVERPASS' -o 'lowerdir=$LOWER' '$MNT'"
	assert_not_mounted "$MNT"
	assert_no_daemon "$MNT"
}

@test "--stats on a directory that is not an overpass mount fails" {
	need_binary
	run_ovp '!' --stats "$T"
	assert_contains "$T" "$output"
}

@test "lower layers on one filesystem are reached through one read-only clone of its mount" {
	need_ovp
	echo a >"$LOWER/a"
	echo b >"$LOWER2/b"
	echo c >"$LOWER3/c"
	ovp_mount "lowerdir=$LOWER:$LOWER2:$LOWER3" "upperdir=$UPPER" "workdir=$WORK"
	assert_equal "a b c" "$(cd "$MNT" && echo *)"
	local fd target ids="" n=0
	for fd in /proc/$OVP_PID/fd/*; do
		target=$(readlink "$fd") || continue
		case "$target" in
		*/lower | */lower2 | */lower3) ;;
		*) continue ;;
		esac
		n=$((n + 1))
		ids+="$(awk '$1 == "mnt_id:" {print $2}' "/proc/$OVP_PID/fdinfo/${fd##*/}") "
		# the daemon's own fd cannot write the layer
		run_cmd 1 touch "$fd/probe"
		assert_contains "Read-only file system" "$output"
	done
	[ "$n" -ge 3 ] || { echo "# found $n lower layer fds" >&2; false; }
	assert_equal 1 "$(echo $ids | tr ' ' '\n' | sort -u | wc -l)" "distinct mounts of the lower fds ($ids)"
	[ ! -e "$LOWER/probe" ] && [ ! -e "$LOWER2/probe" ]
	ovp_umount
}
