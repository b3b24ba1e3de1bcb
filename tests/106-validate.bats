#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# A configuration overpass refuses leaves every directory as it was: each
# refused set of layers is tried on a fixture whose state (entries, types,
# modes, owners, sizes, times, checksums, xattrs) is compared before and
# after, and kernel overlayfs, given the same options on a copy of the
# fixture, says which error it would give.  Also: lowerdir escapes as the
# kernel reads them, and where the statistics file is written.

load helpers.bash

# mk_fixture DIR: layers with content, and the leftovers of a crashed mount
# in the work directories (a refused mount must not clean them up)
mk_fixture() {
	local d=$1
	mkdir -p "$d"/{L/inner,L/work/junk,L2,u/work,u/w,w/work/old,w/index,w/u,m}
	echo lower >"$d/L/f"
	echo inner >"$d/L/inner/g"
	echo junk >"$d/L/work/junk/x"
	echo lower2 >"$d/L2/h"
	echo upper >"$d/u/f"
	echo kept >"$d/u/work/keep"
	echo old >"$d/w/work/old/y"
	ln -s f "$d/L/link"
	chmod 0751 "$d/L/inner"
	setfattr -n user.tag -v lower "$d/L/f"
	setfattr -n user.tag -v upper "$d/u"
}

# tree_state DIR: everything a refused mount could have changed below DIR
tree_state() {
	find "$1" -printf '%p %y %m %u %g %s %T@ %C@\n' | sort
	find "$1" -type f -print0 | sort -z | xargs -0 -r sha256sum
	getfattr -h -d -m - -R "$1" 2>/dev/null
}

# kernel_says OPTS: the errno name kernel overlayfs's mount(2) fails with
# on the copy of the fixture in $T/k (options relative to it), or OK
kernel_says() {
	(cd "$T/k" && python3 - "$1" <<'EOF'
import ctypes, errno, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.mount(b"overlay", b"m", b"overlay", 0, sys.argv[1].encode()) == 0:
    libc.umount2(b"m", 0)
    print("OK")
else:
    print(errno.errorcode[ctypes.get_errno()])
EOF
	)
}

setup() {
	# the default layout, plus the fixture twice: $T/o for overpass,
	# $T/k for the kernel
	T=$BATS_TEST_TMPDIR
	LOWER=$T/lower LOWER2=$T/lower2 LOWER3=$T/lower3
	UPPER=$T/upper WORK=$T/work MNT=$T/merged
	KUPPER=$T/kupper KWORK=$T/kwork KMNT=$T/kmerged
	mkdir -p "$LOWER" "$LOWER2" "$UPPER" "$WORK" "$MNT" "$KUPPER" "$KWORK" "$KMNT"
	OVP_PIDS=()
	OVP_FG_PIDS=()
	declare -gA OVP_PID_OF=()
	OVP_SEQ=0
	mk_fixture "$T/o"
	mk_fixture "$T/k"
}

# refused OPTS ERRNO KERNEL: overpass, run in $T/o with -o OPTS, exits 1
# with one line naming ERRNO, mounts nothing and changes nothing; kernel
# overlayfs answers KERNEL (its errno name, or OK where overpass is
# stricter)
refused() {
	local opts=$1 want=$2 kernel=$3
	tree_state "$T/o" >"$T/before"
	cd "$T/o"
	run_ovp 1 -o "$opts" m
	cd "$T"
	assert_equal 1 "${#lines[@]}" "one line of error"
	assert_match "^overpass: (lowerdir|upperdir|workdir) " "$output"
	assert_contains "($want)" "$output" "the error for $opts"
	assert_not_mounted "$T/o/m"
	tree_state "$T/o" >"$T/after"
	assert_files_equal "$T/before" "$T/after" "$T/o after refusing $opts"
	assert_equal "$kernel" "$(kernel_says "$opts")" "kernel overlayfs with $opts"
}

@test "workdir equal to upperdir: refused (EINVAL), nothing changed" {
	need_ovp
	need_kovl
	refused "lowerdir=L,upperdir=u,workdir=u" EINVAL EINVAL
	assert_contains "workdir and upperdir must be separate subtrees" "$output"
	assert_equal kept "$(cat "$T/o/u/work/keep")"
}

@test "workdir equal to a lower layer: refused (ELOOP), the lower layer's work/ kept" {
	need_ovp
	need_kovl
	refused "lowerdir=L,upperdir=u,workdir=L" ELOOP ELOOP
	assert_contains "workdir L: conflicting path" "$output"
	assert_equal junk "$(cat "$T/o/L/work/junk/x")"
	[ ! -e "$T/o/L/index" ]
}

@test "workdir inside upperdir: refused (EINVAL)" {
	need_ovp
	need_kovl
	refused "lowerdir=L,upperdir=u,workdir=u/w" EINVAL EINVAL
}

@test "upperdir inside workdir: refused (EINVAL)" {
	need_ovp
	need_kovl
	refused "lowerdir=L2,upperdir=w/u,workdir=w" EINVAL EINVAL
	assert_equal old "$(cat "$T/o/w/work/old/y")"
}

@test "workdir inside a lower layer: refused (ELOOP; the kernel lets it through)" {
	need_ovp
	need_kovl
	refused "lowerdir=L,upperdir=u,workdir=L/inner" ELOOP OK
	assert_contains "inside lowerdir L" "$output"
}

@test "upperdir inside a lower layer: refused (ELOOP; the kernel lets it through)" {
	need_ovp
	need_kovl
	refused "lowerdir=L,upperdir=L/inner,workdir=w" ELOOP OK
	assert_contains "upperdir L/inner: overlapping path" "$output"
}

@test "a lower layer inside upperdir, or upperdir as a lower layer: refused (ELOOP)" {
	need_ovp
	need_kovl
	refused "lowerdir=u/w,upperdir=u,workdir=w" ELOOP ELOOP
	refused "lowerdir=L:u,upperdir=u,workdir=w" ELOOP ELOOP
}

@test "nested or repeated lower layers: refused (ELOOP), as the kernel does" {
	need_ovp
	need_kovl
	refused "lowerdir=L:L/inner" ELOOP ELOOP
	assert_contains "lowerdir L/inner: overlapping path: inside lowerdir L" "$output"
	refused "lowerdir=L/inner:L" ELOOP ELOOP
	assert_contains "lowerdir L: overlapping path: contains lowerdir L/inner" "$output"
	refused "lowerdir=L2:L/inner:L,upperdir=u,workdir=w" ELOOP ELOOP
	refused "lowerdir=L:L2:L" ELOOP ELOOP
	assert_contains "conflicting path" "$output"
}

@test "workdir on another filesystem: refused (EINVAL) before work/ is made" {
	need_ovp
	need_kovl
	tmpfs_mount "$T/o/t"
	tmpfs_mount "$T/k/t"
	mkdir "$T/o/t/w" "$T/k/t/w"
	refused "lowerdir=L,upperdir=u,workdir=t/w" EINVAL EINVAL
	assert_contains "not on the same mount as upperdir u" "$output"
	run_cmd 0 umount "$T/o/t"
	run_cmd 0 umount "$T/k/t"
}

@test "workdir on another mount of the upper's filesystem: refused (EINVAL)" {
	need_ovp
	need_kovl
	mkdir "$T/o/bw" "$T/k/bw"
	run_cmd 0 mount --bind "$T/o/w" "$T/o/bw"
	run_cmd 0 mount --bind "$T/k/w" "$T/k/bw"
	refused "lowerdir=L,upperdir=u,workdir=bw" EINVAL EINVAL
	run_cmd 0 umount "$T/o/bw"
	run_cmd 0 umount "$T/k/bw"
}

@test "a mount libfuse refuses leaves the workdir as it was" {
	need_ovp
	tree_state "$T/o" >"$T/before"
	cd "$T/o"
	# blksize is for fuseblk mounts: the kernel refuses it here
	run_ovp 2 -o lowerdir=L,upperdir=u,workdir=w,blksize=4096 m
	cd "$T"
	assert_not_mounted "$T/o/m"
	tree_state "$T/o" >"$T/after"
	assert_files_equal "$T/before" "$T/after" "$T/o after a refused mount"
}

@test "a workdir refused once the mount is made: unmounted, index/ not made" {
	need_ovp
	rm -rf "$T/o/w/work" "$T/o/w/index"
	echo "not a directory" >"$T/o/w/work"
	tree_state "$T/o" >"$T/before"
	cd "$T/o"
	run_ovp 1 -o lowerdir=L2,upperdir=u,workdir=w m
	cd "$T"
	assert_contains "workdir w: Not a directory" "$output"
	assert_not_mounted "$T/o/m"
	tree_state "$T/o" >"$T/after"
	assert_files_equal "$T/before" "$T/after" "$T/o after a refused mount"
}

@test "an accepted mount makes work/ and index/ and empties work/" {
	need_ovp
	rmdir "$T/o/w/index"
	ovp_mount -m "$T/o/m" "lowerdir=$T/o/L2" "upperdir=$T/o/u" "workdir=$T/o/w"
	assert_equal "h" "$(ls "$T/o/m" | grep h)"
	ovp_umount "$T/o/m"
	[ -d "$T/o/w/index" ]
	assert_equal "" "$(ls -A "$T/o/w/work")" "work/ after a mount"
}

@test "lowerdir escapes: read once, as kernel overlayfs reads them" {
	need_ovp
	need_kovl
	mkdir -p "$T/x/e\\" "$T/x/f" "$T/x/e:f" "$T/x/a,b" "$T/x/g"
	echo 1 >"$T/x/e\\/in-e-backslash"
	echo 2 >"$T/x/f/in-f"
	echo 3 >"$T/x/e:f/in-e-colon-f"
	echo 4 >"$T/x/a,b/in-a-comma-b"
	echo 5 >"$T/x/g/in-g"
	local o want
	# relative layers, so that every layer of the list is in $T/x
	cd "$T/x"
	for o in 'e\\:f' 'e\:f:g' 'a\,b:e\:f' '\g:e\\:f'; do
		kovl_mount "lowerdir=$o"
		want=$(echo $(ls "$KMNT"))
		kovl_umount
		ovp_mount "lowerdir=$o"
		assert_equal "$want" "$(echo $(ls "$MNT"))" "merged view of lowerdir=$o"
		ovp_umount
		# e\\:f is the layers "e\" and "f", as the man page says
		[ "$o" != 'e\\:f' ] || assert_equal "in-e-backslash in-f" "$want"
	done
	cd "$T"
}

@test "a relative statsfile is written in the directory overpass was started in" {
	need_ovp
	local name=stats-$BATS_ROOT_PID-$RANDOM.txt
	mkdir "$T/start"
	cd "$T/start"
	ovp_mount "lowerdir=$LOWER" "statsfile=$name"
	cd "$T"
	ls "$MNT" >/dev/null
	ovp_umount
	[ -f "$T/start/$name" ] || { echo "# no $T/start/$name" >&2; false; }
	assert_contains "requests." "$(cat "$T/start/$name")"
	[ ! -e "/$name" ] || { rm -f "/$name"; echo "# written to /$name" >&2; false; }
}

@test "a symlink planted at the statsfile path is not followed" {
	need_ovp
	echo untouched >"$T/target"
	ln -s "$T/target" "$T/stats.txt"
	ln -s "$T/absent" "$T/stats2.txt"
	ovp_mount -f "lowerdir=$LOWER" "statsfile=$T/stats.txt"
	local log=$OVP_LOG
	ovp_umount
	assert_equal untouched "$(cat "$T/target")" "the symlink's target"
	[ -L "$T/stats.txt" ]
	assert_contains "statsfile $T/stats.txt: cannot write the statistics: Too many levels of symbolic links" \
		"$(cat "$log")"
	ovp_mount -f "lowerdir=$LOWER" "statsfile=$T/stats2.txt"
	ovp_umount
	[ ! -e "$T/absent" ] || { echo "# $T/absent made through the symlink" >&2; false; }
}
