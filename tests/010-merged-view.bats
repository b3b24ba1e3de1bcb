#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# The merged view equals kernel overlayfs's on the same layers (tree-dump,
# then diff), with every whiteout and opaque encoding, read-only and with
# an upper, on one filesystem and across several.  AUFS encodings, which
# the kernel does not read, are compared with an equivalent layer set in
# kernel encodings.
#
# Kernel quirk kept out of the comparisons: in a directory that is not
# merged (it exists in one layer only) kernel overlayfs lists a whiteout
# (readdir shows it, lstat gives ENOENT).  Whiteouts here sit only in
# directories that exist in a lower layer too.

load helpers

# The three layers, top (mk_l1) to bottom (mk_l3), in kernel encodings:
# char-dev 0/0 whiteouts, trusted.overlay.opaque=y directories, xattr
# whiteouts in a directory whose trusted.overlay.opaque is "x".
mk_l3() {
	local d=$1
	mkdir -p "$d"
	cd "$d"
	echo c-file >file; echo c-only >c-only; echo hidden >wh-me
	mkdir -p dir/deep/er opq/sub xdir gone-dir/y xdir2 m/a/b/c resdir d2f/inside dir2link opqtop
	echo deep >dir/deep/er/f; echo c-dir >dir/cfile
	echo 600 >dir/perm600; chmod 600 dir/perm600
	echo lower-opq >opq/lower; echo s >opq/sub/s
	echo x1 >xdir/keep; echo x2 >xdir/wh-x
	echo gone >gone-dir/x; echo z >gone-dir/y/z
	echo x3 >xdir2/wh-top; echo x4 >xdir2/stays
	echo m3 >m/m3; echo a3 >m/a/a3; echo b3 >m/a/b/b3; echo c3 >m/a/b/c/c3
	echo old >resdir/old; echo res-old >res; echo f2d >f2d; echo i >d2f/inside/i
	echo l >dir2link/l; echo hidden >opqtop/from3
	ln -s c-only link; ln -s /etc/hostname abslink; ln -s nowhere/at/all dangling
	ln -s ../c-only dir/uplink
	mkfifo fifo; mknod chr c 1 3; mknod blk b 7 0
	echo suid >suid; chmod 4755 suid
	echo sgid >sgid; chmod 2755 sgid
	mkdir sticky; chmod 1777 sticky; echo t >sticky/t
	echo none >mode000; chmod 000 mode000
	mkdir private; chmod 700 private; echo p >private/p
	chmod 751 dir
	printf v1 >xattr-file
	setfattr -n user.color -v blue xattr-file
	setfattr -n user.bin -v 0x00ff10 xattr-file
	setfattr -n user.bottom -v 3 dir
	: >empty; truncate -s 3M sparse; echo tail >>sparse
	echo sp >"a name"; echo u >"ünï"; echo dash >-dash; echo h >.hidden
	echo hl >hl1; ln hl1 hl2
	echo owned >owned; chown 1234:5678 owned
	setfattr -n trusted.overlay.origin -v junk file
	setfattr -n trusted.overlay.foo -v bar c-only
	# many xattrs, a long name, a long link target, a deep path
	echo x >many-xattrs
	for i in $(seq 1 40); do setfattr -n "user.attr$i" -v "value-$i-$(printf '%040d' "$i")" many-xattrs; done
	echo long >"$(printf 'n%.0s' $(seq 1 255))"
	ln -s "$(printf 'abcdefghi/%.0s' $(seq 1 100))" longlink
	mkdir -p "$(printf 'deep%d/' $(seq 1 60))"
	echo bottom >"$(printf 'deep%d/' $(seq 1 60))f"
	cd /
}

mk_l2() {
	local d=$1
	mkdir -p "$d"
	cd "$d"
	mkdir -p dir opq xdir m/a/b/c
	echo b-file >file
	echo b-dir >dir/bfile; chmod 640 dir/bfile
	mknod wh-me c 0 0
	mknod gone-dir c 0 0
	mknod res c 0 0
	mknod resdir c 0 0
	mknod phantom c 0 0     # hides nothing
	setfattr -n trusted.overlay.opaque -v y opq
	echo b-opq >opq/mine
	: >xdir/wh-x
	setfattr -n trusted.overlay.whiteout -v y xdir/wh-x
	setfattr -n trusted.overlay.opaque -v x xdir
	echo b >xdir/b-new
	ln -s ../file dir/rel-link
	echo m2 >m/m2; echo a2 >m/a/a2; echo b2 >m/a/b/b2; echo c2 >m/a/b/c/c2
	echo d2f-file >d2f
	mkdir opqtop; echo hidden >opqtop/from2
	cd /
}

mk_l1() {
	local d=$1
	mkdir -p "$d"
	cd "$d"
	mkdir -p dir opq m/a/b/c xdir2 f2d resdir opqtop
	echo a-top >file
	echo a-dir >dir/afile
	mknod dir/cfile c 0 0
	setfattr -n user.top -v 1 dir
	chmod 755 dir
	echo from-top >opq/fromtop
	echo m1 >m/m1; echo a1 >m/a/a1; echo b1 >m/a/b/b1; echo c1 >m/a/b/c/c1
	mknod m/a/m3-gone c 0 0  # hides nothing (m3 is one level up)
	mknod m/a/a3 c 0 0
	: >xdir2/wh-top
	setfattr -n trusted.overlay.whiteout -v y xdir2/wh-top
	setfattr -n trusted.overlay.opaque -v x xdir2
	echo in-dir >f2d/new
	echo new >resdir/new
	echo res-new >res
	ln -s c-only dir2link
	setfattr -n trusted.overlay.opaque -v y opqtop
	echo mine >opqtop/from1
	mkdir sticky; chmod 1777 sticky; echo top-sticky >sticky/top
	cd /
}

# Names no view may show (whited-out or below an opaque directory): all
# give ENOENT.  (d2f/inside also is gone, with ENOTDIR.)
HIDDEN_NAMES=(wh-me gone-dir phantom xdir/wh-x xdir2/wh-top dir/cfile opq/lower opq/sub
	m/a/a3 m/a/m3-gone opqtop/from2 opqtop/from3 resdir/old)

# Kernel overlayfs reads xattr whiteouts (a zero-size file marked
# overlay.whiteout in a directory whose overlay.opaque is "x") from Linux
# 6.7 on; before, it lists them as empty files.  overpass hides them on
# every kernel (check_hidden says so): on an older kernel these names are
# left out of the kernel's side of a comparison.
XWH_NAMES=(xdir/wh-x xdir2/wh-top xw/gone)

# A tree dump on stdin, without the xattr whiteouts an old kernel lists.
kovl_dump_filter() {
	if kernel_ge 6.7; then
		cat
	else
		grep -vE "^($(IFS='|'; echo "${XWH_NAMES[*]}")) "
	fi
}

# dump_pair KERNEL-MNT OVERPASS-MNT NAME [tree-dump options]
dump_pair() {
	local k=$1 m=$2 name=$3
	shift 3
	tree_dump "$@" "$k" | kovl_dump_filter >"$T/$name.kernel"
	tree_dump "$@" "$m" >"$T/$name.overpass"
	assert_files_equal "$T/$name.kernel" "$T/$name.overpass" "$name: kernel overlayfs vs overpass"
}

check_hidden() { # MOUNTPOINT [kernel: the kernel's mount]
	local n
	for n in "${HIDDEN_NAMES[@]}"; do
		if [ "${2:-}" = kernel ] && ! kernel_ge 6.7 &&
			[[ " ${XWH_NAMES[*]} " == *" $n "* ]]; then
			continue
		fi
		if stat "$1/$n" >/dev/null 2>&1; then
			echo "# $1/$n should not exist" >&2
			return 1
		fi
		if ls -a "$1/$(dirname "$n")" | grep -qxF "$(basename "$n")"; then
			echo "# $n is listed" >&2
			return 1
		fi
	done
}

@test "three kernel-encoded layers, read-only: same view as kernel overlayfs" {
	need_ovp
	need_kovl
	need_trusted
	need_mknod
	mk_l1 "$LOWER"; mk_l2 "$LOWER2"; mk_l3 "$LOWER3"
	kovl_mount "lowerdir=$LOWER:$LOWER2:$LOWER3"
	ovp_mount "lowerdir=$LOWER:$LOWER2:$LOWER3"
	dump_pair "$KMNT" "$MNT" ro --owner --mtime
	check_hidden "$MNT"
	check_hidden "$KMNT" kernel
	# spot checks of what the kernel shows, in case both were wrong alike
	assert_equal a-top "$(cat "$MNT/file")"
	assert_equal res-new "$(cat "$MNT/res")"
	assert_equal "fromtop mine" "$(cd "$MNT/opq" && echo *)"
	assert_equal "a1 a2 b" "$(cd "$MNT/m/a" && echo *)"
	assert_equal "b1 b2 b3 c" "$(cd "$MNT/m/a/b" && echo *)"
	assert_equal "d2f-file" "$(cat "$MNT/d2f")"
	assert_equal "c-only" "$(readlink "$MNT/dir2link")"
	# link counts of files (directories differ by design)
	assert_equal "$(cd "$KMNT" && stat -c '%n %h' hl1 hl2 file owned)" \
		"$(cd "$MNT" && stat -c '%n %h' hl1 hl2 file owned)" "st_nlink"
	ovp_umount
	kovl_umount
}

@test "the same layers under an empty upper: same view as kernel overlayfs" {
	need_ovp
	need_kovl
	need_trusted
	need_mknod
	mk_l1 "$LOWER"; mk_l2 "$LOWER2"; mk_l3 "$LOWER3"
	kovl_mount "lowerdir=$LOWER:$LOWER2:$LOWER3" "upperdir=$KUPPER" "workdir=$KWORK"
	ovp_mount "lowerdir=$LOWER:$LOWER2:$LOWER3" "upperdir=$UPPER" "workdir=$WORK"
	dump_pair "$KMNT" "$MNT" upper --owner
	check_hidden "$MNT"
	ovp_umount
	kovl_umount
	# looking is not changing: nothing was copied up
	assert_equal "" "$(ls -A "$UPPER")" "upperdir after a read-only walk"
}

@test "the top layer as upperdir (whiteouts and opaque dirs in upper): same view" {
	need_ovp
	need_kovl
	need_trusted
	need_mknod
	mk_l1 "$UPPER"; mk_l1 "$KUPPER"; mk_l2 "$LOWER2"; mk_l3 "$LOWER3"
	# kernel overlayfs reads xattr whiteouts in lower layers only
	rm "$UPPER/xdir2/wh-top" "$KUPPER/xdir2/wh-top"
	mknod "$UPPER/xdir2/wh-top" c 0 0
	mknod "$KUPPER/xdir2/wh-top" c 0 0
	kovl_mount "lowerdir=$LOWER2:$LOWER3" "upperdir=$KUPPER" "workdir=$KWORK"
	ovp_mount "lowerdir=$LOWER2:$LOWER3" "upperdir=$UPPER" "workdir=$WORK"
	dump_pair "$KMNT" "$MNT" upper-top --owner
	check_hidden "$MNT"
	ovp_umount
	kovl_umount
}

@test "layers on three filesystems (two tmpfs): same view; one st_dev, distinct st_ino" {
	need_ovp
	need_kovl
	need_trusted
	need_mknod
	tmpfs_mount "$T/fs2"
	if ! setfattr -n user.probe -v 1 "$T/fs2" 2>/dev/null; then
		run_cmd 0 umount "$T/fs2"
		skip "tmpfs has no user.* xattrs here (Linux 6.6 added them), this is $(uname -r)"
	fi
	setfattr -x user.probe "$T/fs2"
	tmpfs_mount "$T/fs3"
	mk_l1 "$LOWER"; mk_l2 "$T/fs2/l2"; mk_l3 "$T/fs3/l3"
	kovl_mount "lowerdir=$LOWER:$T/fs2/l2:$T/fs3/l3"
	ovp_mount "lowerdir=$LOWER:$T/fs2/l2:$T/fs3/l3"
	dump_pair "$KMNT" "$MNT" fs3 --owner --mtime
	check_hidden "$MNT"
	# one st_dev; a distinct st_ino per file except hard links (hl1/hl2)
	python3 - "$MNT" <<'PY'
import os, sys
root = sys.argv[1]
devs, inos = set(), {}
paths = [root]
for dp, dns, fns in os.walk(root):
    paths += [os.path.join(dp, n) for n in dns + fns]
for p in paths:
    st = os.lstat(p)
    devs.add(st.st_dev)
    inos.setdefault(st.st_ino, []).append(os.path.relpath(p, root))
assert len(devs) == 1, "st_dev values: %s" % devs
dups = {i: ps for i, ps in inos.items() if len(ps) > 1}
assert sorted(sorted(v) for v in dups.values()) == [["hl1", "hl2"]], \
    "st_ino shared by different files (hl1, hl2 are hard links): %s" % dups
PY
	tree_dump --ino "$MNT" >"$T/ino.1"
	ovp_umount
	ovp_mount "lowerdir=$LOWER:$T/fs2/l2:$T/fs3/l3"
	tree_dump --ino "$MNT" >"$T/ino.2"
	assert_files_equal "$T/ino.1" "$T/ino.2" "st_ino across a remount"
	ovp_umount
	kovl_umount
	run_cmd 0 umount "$T/fs2"
	run_cmd 0 umount "$T/fs3"
}

@test "whited-out names give ENOENT; readlink; private xattrs are never listed" {
	need_ovp
	need_trusted
	need_mknod
	mk_l1 "$LOWER"; mk_l2 "$LOWER2"; mk_l3 "$LOWER3"
	ovp_mount "lowerdir=$LOWER:$LOWER2:$LOWER3"
	local n
	for n in "${HIDDEN_NAMES[@]}"; do
		assert_fails_with "No such file or directory" stat "$MNT/$n"
	done
	assert_fails_with "No such file or directory" cat "$MNT/opq/sub/s"
	assert_fails_with "No such file or directory" ls "$MNT/gone-dir/y"
	assert_equal c-only "$(readlink "$MNT/link")"
	assert_equal c-only "$(cat "$MNT/link")"
	assert_equal /etc/hostname "$(readlink "$MNT/abslink")"
	assert_equal nowhere/at/all "$(readlink "$MNT/dangling")"
	assert_equal ../c-only "$(readlink "$MNT/dir/uplink")"
	assert_equal c-only "$(cat "$MNT/dir/uplink")"
	# trusted.overlay.* on the lower files and dirs, user.overpass.stats
	# on the root: listed nowhere, not readable by name
	run_cmd 0 getfattr -d -m - "$MNT/file" "$MNT/c-only" "$MNT/opq" "$MNT/xdir" "$MNT/xdir2" "$MNT"
	[[ "$output" != *overlay* && "$output" != *overpass* ]] || { echo "# private xattr listed"; false; }
	run_cmd 0 python3 - "$MNT" <<'PY'
import os, sys
bad = []
for dp, dns, fns in os.walk(sys.argv[1]):
    for n in [""] + dns + fns:
        p = os.path.join(dp, n) if n else dp
        for x in os.listxattr(p, follow_symlinks=False):
            if ".overlay." in x or ".overpass." in x:
                bad.append((p, x))
assert not bad, bad
PY
	assert_fails_with "No such attribute" getfattr -n trusted.overlay.origin "$MNT/file"
	assert_fails_with "No such attribute" getfattr -n trusted.overlay.foo "$MNT/c-only"
	assert_fails_with "No such attribute" getfattr -n trusted.overlay.opaque "$MNT/opq"
	assert_fails_with "No such attribute" getfattr -n trusted.overlay.opaque "$MNT/xdir"
	# user xattrs come through, from the topmost directory of a merge
	assert_equal blue "$(getfattr --only-values -n user.color "$MNT/xattr-file")"
	assert_equal 1 "$(getfattr --only-values -n user.top "$MNT/dir")"
	assert_fails_with "No such attribute" getfattr -n user.bottom "$MNT/dir"
	ovp_umount
}

@test "private xattrs set through the mount do not become overlay markers" {
	need_ovp
	mkdir -p "$LOWER/dir" "$LOWER/dir2"
	echo low >"$LOWER/dir/low"
	echo low >"$LOWER/dir2/low"
	echo f >"$LOWER/f"
	ovp_mount
	local x
	for x in trusted.overlay.opaque user.overlay.opaque; do
		setfattr -n "$x" -v y "$MNT/dir" 2>/dev/null || true
	done
	for x in trusted.overlay.whiteout user.overlay.whiteout; do
		setfattr -n "$x" -v y "$MNT/f" 2>/dev/null || true
	done
	setfattr -n trusted.overlay.opaque -v x "$MNT" 2>/dev/null || true
	setfattr -n trusted.overlay.redirect -v /dir "$MNT/dir2" 2>/dev/null || true
	setfattr -n user.overpass.stats -v 0 "$MNT" 2>/dev/null || true
	: >"$MNT/dir/new"   # dir itself in upper now
	assert_equal "low new" "$(cd "$MNT/dir" && echo *)"
	ovp_umount
	for x in trusted.overlay.opaque user.overlay.opaque; do
		if [ "$(getfattr --only-values -n "$x" "$UPPER/dir" 2>/dev/null)" = y ]; then
			echo "# $x=y landed on upper/dir" >&2
			false
		fi
	done
	ovp_mount
	assert_equal "low new" "$(cd "$MNT/dir" && echo *)" "dir after remount"
	assert_equal low "$(cat "$MNT/dir2/low")"
	assert_equal f "$(cat "$MNT/f")"
	ovp_umount
}

@test "user.fuseoverlayfs.opaque set through the mount does not make a directory opaque" {
	need_ovp
	mkdir -p "$LOWER/dir"
	echo low >"$LOWER/dir/low"
	ovp_mount
	setfattr -n user.fuseoverlayfs.opaque -v y "$MNT/dir" 2>/dev/null || true
	: >"$MNT/dir/new"
	ovp_umount
	ovp_mount
	assert_equal "low new" "$(cd "$MNT/dir" && echo *)" "dir after remount"
	ovp_umount
}

# AUFS/OCI layers: .wh.NAME whiteouts and .wh..wh..opq opaque markers, plus
# user.fuseoverlayfs.opaque and user.overlay.* markers; mk_kernel_equiv
# builds the same layers in kernel encodings, as the oracle.
mk_aufs() { # top middle bottom
	local a=$1 b=$2 c=$3
	mkdir -p "$c/dir/sub" "$c/opq/sub" "$c/gone-dir/x" "$c/fopq" "$c/uopq" "$c/xw" "$c/deep/er/est"
	echo low >"$c/gone"; echo low >"$c/dir/gone"; echo keep >"$c/dir/keep"
	echo low >"$c/opq/low"; echo low >"$c/opq/sub/low"; echo keep >"$c/keep"
	echo low >"$c/fopq/low"; echo low >"$c/uopq/low"; echo low >"$c/xw/gone"; echo keep >"$c/xw/keep"
	echo low >"$c/deep/er/est/gone"; echo keep >"$c/deep/er/est/keep"
	echo low >"$c/mid-gone"; echo low >"$c/res"
	mkdir -p "$b/dir" "$b/opq" "$b/deep/er/est" "$b/uopq"
	echo mid >"$b/opq/mid"; : >"$b/opq/.wh..wh..opq"
	: >"$b/.wh.mid-gone"; : >"$b/dir/.wh.gone"; : >"$b/.wh.res"
	: >"$b/deep/er/est/.wh.gone"; echo mid >"$b/deep/er/est/mid"
	echo mid >"$b/uopq/mid"; setfattr -n user.overlay.opaque -v y "$b/uopq"
	mkdir -p "$a/dir" "$a/opq" "$a/fopq" "$a/xw"
	: >"$a/.wh.gone"; : >"$a/.wh.gone-dir"; : >"$a/.wh.nothing-below"
	echo top >"$a/dir/top"; echo top >"$a/opq/top"; echo top >"$a/res"
	echo mine >"$a/fopq/mine"; setfattr -n user.fuseoverlayfs.opaque -v y "$a/fopq"
	: >"$a/xw/gone"; setfattr -n user.overlay.whiteout -v y "$a/xw/gone"
	setfattr -n user.overlay.opaque -v x "$a/xw"
}

mk_kernel_equiv() { # top middle bottom
	local a=$1 b=$2 c=$3
	mk_aufs "$a" "$b" "$c"
	find "$a" "$b" -name '.wh..wh..opq' | while read -r f; do
		setfattr -n trusted.overlay.opaque -v y "$(dirname "$f")"
		rm "$f"
	done
	find "$a" "$b" -name '.wh.*' | while read -r f; do
		rm "$f"
		mknod "$(dirname "$f")/$(basename "$f" | sed 's/^\.wh\.//')" c 0 0
	done
	setfattr -n trusted.overlay.opaque -v y "$a/fopq"
	setfattr -n trusted.overlay.opaque -v y "$b/uopq"
	setfattr -x user.overlay.opaque "$b/uopq"
	setfattr -x user.overlay.whiteout "$a/xw/gone"
	setfattr -x user.overlay.opaque "$a/xw"
	setfattr -n trusted.overlay.whiteout -v y "$a/xw/gone"
	setfattr -n trusted.overlay.opaque -v x "$a/xw"
}

@test "AUFS .wh. whiteouts, .wh..wh..opq and (userxattr) user.* markers read as kernel encodings" {
	need_ovp
	need_kovl
	need_trusted
	mk_aufs "$LOWER" "$LOWER2" "$LOWER3"
	mkdir -p "$T/k1" "$T/k2" "$T/k3"
	mk_kernel_equiv "$T/k1" "$T/k2" "$T/k3"
	kovl_mount "lowerdir=$T/k1:$T/k2:$T/k3"
	# user.* markers are followed on a root mount only when it asks
	ovp_mount "lowerdir=$LOWER:$LOWER2:$LOWER3" userxattr
	tree_dump --owner "$KMNT" | sed 's/ user\.fuseoverlayfs\.opaque=79//' |
		kovl_dump_filter >"$T/aufs.kernel"
	tree_dump --owner "$MNT" | sed 's/ user\.fuseoverlayfs\.opaque=79//' >"$T/aufs.overpass"
	assert_files_equal "$T/aufs.kernel" "$T/aufs.overpass" "AUFS layers vs kernel-encoded layers"
	run_cmd 0 find "$MNT" -name '.wh.*'
	assert_equal "" "$output" "no .wh. names in the view"
	ovp_umount
	# the same with the top layer as upper (kernel overlayfs reads xattr
	# whiteouts in lower layers only: a .wh. file there instead)
	rm "$LOWER/xw/gone" "$T/k1/xw/gone"
	: >"$LOWER/xw/.wh.gone"
	mknod "$T/k1/xw/gone" c 0 0
	ovp_mount "lowerdir=$LOWER2:$LOWER3" "upperdir=$LOWER" "workdir=$WORK" userxattr
	tree_dump --owner "$MNT" | sed 's/ user\.fuseoverlayfs\.opaque=79//' >"$T/aufs.overpass.upper"
	ovp_umount
	kovl_umount
	kovl_mount "lowerdir=$T/k2:$T/k3" "upperdir=$T/k1" "workdir=$KWORK"
	tree_dump --owner "$KMNT" | sed 's/ user\.fuseoverlayfs\.opaque=79//' >"$T/aufs.kernel.upper"
	kovl_umount
	assert_files_equal "$T/aufs.kernel.upper" "$T/aufs.overpass.upper" "AUFS top layer as upperdir"
}

@test "AUFS marker names cannot be looked up, as they are not listed" {
	need_ovp
	mk_aufs "$LOWER" "$LOWER2" "$LOWER3"
	ovp_mount "lowerdir=$LOWER:$LOWER2:$LOWER3"
	local n bad=""
	for n in .wh.gone .wh.gone-dir .wh.nothing-below .wh.mid-gone opq/.wh..wh..opq dir/.wh.gone \
		deep/er/est/.wh.gone; do
		if stat "$MNT/$n" >/dev/null 2>&1; then
			bad+=" $n"
		fi
	done
	ovp_umount
	assert_equal "" "$bad" "whiteout/opaque marker files found by name (readdir hides them)"
}

@test "AUFS marker names cannot be made through the mount" {
	need_ovp
	echo keep >"$LOWER/passwd"
	mkdir "$LOWER/d"
	ovp_mount
	local bad="" n
	echo x >"$MNT/x"
	for n in ".wh.passwd" ".wh..wh..opq" "d/.wh..wh..opq"; do
		: >"$MNT/$n" 2>/dev/null && bad+=" create:$n"
		mkdir "$MNT/$n" 2>/dev/null && bad+=" mkdir:$n"
		ln -s x "$MNT/$n" 2>/dev/null && bad+=" symlink:$n"
		ln "$MNT/x" "$MNT/$n" 2>/dev/null && bad+=" link:$n"
		mv "$MNT/x" "$MNT/$n" 2>/dev/null && bad+=" rename:$n"
	done
	run_cmd 1 touch "$MNT/.wh.passwd"
	assert_contains "Invalid argument" "$output"
	assert_equal keep "$(cat "$MNT/passwd")"
	ovp_umount
	assert_equal "" "$bad" "marker names made through the mount"
	assert_equal "" "$(cd "$UPPER" && find . -name '.wh.*')" "markers in upper"
}

@test "a name hidden by an AUFS whiteout in the upper layer can be made again: the whiteout goes, a name beside it keeps its own" {
	need_ovp
	echo old >"$LOWER/gone"
	echo old >"$LOWER/gonedir"
	echo old >"$LOWER/kept"
	: >"$UPPER/.wh.gone"
	: >"$UPPER/.wh.gonedir"
	: >"$UPPER/.wh.kept"
	ovp_mount
	[ ! -e "$MNT/gone" ]
	echo new >"$MNT/gone"
	mkdir "$MNT/gonedir"
	# made where the upper had nothing at all: the whiteout of another
	# name stays
	echo other >"$MNT/fresh"
	assert_equal new "$(cat "$MNT/gone")"
	[ -d "$MNT/gonedir" ]
	[ ! -e "$MNT/kept" ]
	ovp_umount
	assert_equal "" "$(cd "$UPPER" && find . -name '.wh.gone*')" "whiteouts of names made again"
	[ -e "$UPPER/.wh.kept" ]
	ovp_mount
	assert_equal new "$(cat "$MNT/gone")"
	assert_equal "" "$(ls -A "$MNT/gonedir")"
	assert_equal other "$(cat "$MNT/fresh")"
	[ ! -e "$MNT/kept" ]
	ovp_umount
}

@test "AUFS markers in a directory of one layer only are not listed either" {
	need_ovp
	mkdir -p "$LOWER/solo" "$LOWER/solo-opq"
	: >"$LOWER/solo/.wh.x"
	echo k >"$LOWER/solo/k"
	: >"$LOWER/solo-opq/.wh..wh..opq"
	echo k >"$LOWER/solo-opq/k"
	mknod "$LOWER/solo/chr-wh" c 0 0
	ovp_mount "lowerdir=$LOWER:$LOWER2"
	assert_equal "k" "$(ls -A "$MNT/solo")"
	assert_equal "k" "$(ls -A "$MNT/solo-opq")"
	ovp_umount
}

@test "statfs of the mount: NAME_MAX 255" {
	need_ovp
	ovp_mount "lowerdir=$LOWER"
	assert_equal 255 "$(stat -f -c %l "$MNT")"
	ovp_umount
}
