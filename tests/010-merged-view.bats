#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# The merged view equals kernel overlayfs's on the same layers, with every
# whiteout and opaque encoding.

load helpers

# Three layers in kernel encodings: char-dev whiteouts, xattr whiteouts in
# a directory marked opaque "x", opaque "y" directories.
make_layers() { # l1 l2 l3
	local a=$1 b=$2 c=$3
	mkdir -p "$c/dir/deep/er" "$c/opq/sub" "$c/xdir" "$c/gone-dir/x"
	echo c-file > "$c/file"; echo c-only > "$c/c-only"; echo hidden > "$c/wh-me"
	echo deep > "$c/dir/deep/er/f"; echo c-dir > "$c/dir/cfile"
	echo lower-opq > "$c/opq/lower"; echo s > "$c/opq/sub/s"
	echo x1 > "$c/xdir/keep"; echo x2 > "$c/xdir/wh-x"
	ln -s c-only "$c/link"; mkfifo "$c/fifo"; chmod 751 "$c/dir"
	printf '%s' v1 > "$c/xattr-file"; setfattr -n user.color -v blue "$c/xattr-file"
	truncate -s 3M "$c/sparse"
	mkdir -p "$b/dir" "$b/opq" "$b/xdir"
	echo b-file > "$b/file"; echo b-dir > "$b/dir/bfile"; chmod 600 "$b/dir/bfile"
	mknod "$b/wh-me" c 0 0; mknod "$b/gone-dir" c 0 0
	setfattr -n trusted.overlay.opaque -v y "$b/opq"; echo b-opq > "$b/opq/mine"
	touch "$b/xdir/wh-x"; setfattr -n trusted.overlay.whiteout -v y "$b/xdir/wh-x"
	setfattr -n trusted.overlay.opaque -v x "$b/xdir"; echo b > "$b/xdir/b-new"
	ln -s ../file "$b/dir/rel-link"
	mkdir -p "$a/dir"; echo a-top > "$a/file"; echo a-dir > "$a/dir/afile"
	mknod "$a/dir/cfile" c 0 0; setfattr -n user.top -v 1 "$a/dir"
	setfattr -n trusted.overlay.origin -v junk "$a/file"
}

@test "merged view equals kernel overlayfs (read-only and with an upper)" {
	need_root
	mkdir -p "$T/l3"
	make_layers "$T/l1" "$T/l2" "$T/l3"
	kovl_mount "lowerdir=$T/l1:$T/l2:$T/l3" "$T/k"
	ovp_mount "lowerdir=$T/l1:$T/l2:$T/l3"
	tree_dump "$T/k" > "$T/k.txt"
	tree_dump "$T/m" > "$T/m.txt"
	assert_files_equal "$T/k.txt" "$T/m.txt"
	grep -q "^file 644 file 6 " "$T/m.txt"   # "a-top\\n" from the topmost layer
	! grep -q "wh-me\|gone-dir\|wh-x\|opq/lower\|opq/sub" "$T/m.txt"
	ovp_umount
	umount "$T/k"
	# the same with an (empty) upper layer on top
	kovl_mount "lowerdir=$T/l1:$T/l2:$T/l3,upperdir=$T/ku,workdir=$T/kw" "$T/k"
	ovp_mount "lowerdir=$T/l1:$T/l2:$T/l3,upperdir=$T/u,workdir=$T/w"
	tree_dump "$T/k" > "$T/k.txt"
	tree_dump "$T/m" > "$T/m.txt"
	assert_files_equal "$T/k.txt" "$T/m.txt"
	ovp_umount
	umount "$T/k"
}

@test "whiteouts: lookups give ENOENT and private xattrs are hidden" {
	need_root
	mkdir -p "$T/l3"
	make_layers "$T/l1" "$T/l2" "$T/l3"
	ovp_mount "lowerdir=$T/l1:$T/l2:$T/l3"
	run_cmd stat "$T/m/wh-me"
	[[ "$output" == *"No such file"* ]]
	run_cmd stat "$T/m/xdir/wh-x"
	[[ "$output" == *"No such file"* ]]
	run_cmd cat "$T/m/opq/lower"
	[[ "$output" == *"No such file"* ]]
	assert_equal "c-only" "$(readlink "$T/m/link")"
	assert_equal "c-only" "$(cat "$T/m/link")"
	run_cmd -0 getfattr -d -m - "$T/m/file" "$T/m/opq" "$T/m/xdir"
	[[ "$output" != *overlay* ]]
	run_cmd getfattr -n trusted.overlay.origin "$T/m/file"
	[ "$status" -ne 0 ]
	ovp_umount
}

@test "AUFS .wh. files and .wh..wh..opq read like kernel whiteouts" {
	need_root
	mkdir -p "$T/a1/dir" "$T/a1/opq" "$T/a2/dir" "$T/a2/opq"
	echo low > "$T/a2/gone"; echo low > "$T/a2/dir/gone"; echo low > "$T/a2/opq/low"
	echo keep > "$T/a2/keep"; echo keep > "$T/a2/dir/keep"
	touch "$T/a1/.wh.gone" "$T/a1/dir/.wh.gone" "$T/a1/opq/.wh..wh..opq"
	echo mine > "$T/a1/opq/mine"
	# the same in kernel encoding, as the oracle
	mkdir -p "$T/k1/dir" "$T/k1/opq" "$T/k2"
	cp -a "$T/a2/." "$T/k2/"
	mknod "$T/k1/gone" c 0 0; mknod "$T/k1/dir/gone" c 0 0
	setfattr -n trusted.overlay.opaque -v y "$T/k1/opq"; echo mine > "$T/k1/opq/mine"
	kovl_mount "lowerdir=$T/k1:$T/k2" "$T/k"
	ovp_mount "lowerdir=$T/a1:$T/a2"
	tree_dump "$T/k" > "$T/k.txt"
	tree_dump "$T/m" > "$T/m.txt"
	assert_files_equal "$T/k.txt" "$T/m.txt"
	ovp_umount
	umount "$T/k"
}

@test "layers on different filesystems: st_ino distinct, st_dev one" {
	need_root
	mkdir -p "$T/t"
	mount -t tmpfs tmpfs "$T/t"
	mkdir "$T/t/low"
	for i in $(seq 1 30); do echo "$i" > "$T/t/low/t$i"; echo "$i" > "$T/l1/e$i"; done
	ovp_mount "lowerdir=$T/l1:$T/t/low"
	n=$(stat -c %i "$T/m"/* | sort -u | wc -l)
	assert_equal 60 "$n" "distinct st_ino"
	assert_equal 1 "$(stat -c %d "$T/m" "$T/m"/* | sort -u | wc -l)" "one st_dev"
	a=$(stat -c %i "$T/m/t5")
	ovp_umount
	ovp_mount "lowerdir=$T/l1:$T/t/low"
	assert_equal "$a" "$(stat -c %i "$T/m/t5")" "st_ino stable across remount"
	ovp_umount
	umount "$T/t"
}

@test "statfs reports NAME_MAX 255" {
	need_root
	ovp_mount "lowerdir=$T/l1"
	assert_equal 255 "$(stat -f -c %l "$T/m")"
	ovp_umount
}
