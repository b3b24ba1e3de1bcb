#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# Writing through the mount: copy-up, create, remove, rename, link; the same
# steps on kernel overlayfs (redirect_dir=on) give the same view and the
# same overlay markers in upper, and kernel overlayfs reads our upper alike.

load helpers

make_lower() { # dir
	mkdir -p "$1/dir/sub" "$1/emptyd"
	echo a > "$1/a"; echo b > "$1/b"; echo x > "$1/dir/x"; echo s > "$1/dir/sub/s"
	ln -s a "$1/sym"; chmod 640 "$1/b"; setfattr -n user.k -v v "$1/a"
	truncate -s 64M "$1/sparse"; echo tail >> "$1/sparse"
	touch -d 2001-02-03 "$1/a" "$1/dir"
}

steps() { # mountpoint
	cd "$1"
	echo new > newfile; mkdir newdir; echo n2 > newdir/f
	rm a; echo again > a
	rm -r dir/sub; rm dir/x; mkdir dir/sub; touch dir/sub/t
	rmdir emptyd; mkdir emptyd
	chmod 600 b; echo app >> b; ln -s zz s2; mkfifo fifo
	rm sym; mkdir sym; echo >> sparse
	rmdir newdir 2>&1 | sed 's/.*: //'
	mv dir dir2; mv b b2; mkdir -p nd/x; mv dir2 nd/x/moved; ls nd/x/moved
	mv nd/x/moved/sub t1; ln t1/t hl
	mv emptyd nd 2>&1 | sed 's/.*: //'
	python3 -c 'import os; os.rename("newfile", "sym")' 2>&1 | tail -n1
	cd /
}

markers() { # upper
	cd "$1"
	getfattr -R -d -m 'overlay\.(opaque|redirect|whiteout)' . 2>/dev/null || true
	find . -type c -printf '%p whiteout\n' | sort
	cd /
}

@test "the same steps give the same view and upper markers as kernel overlayfs" {
	need_root
	make_lower "$T/l1"; make_lower "$T/kl1"
	kovl_mount "lowerdir=$T/kl1,upperdir=$T/ku,workdir=$T/kw,redirect_dir=on" "$T/k"
	ovp_mount "lowerdir=$T/l1,upperdir=$T/u,workdir=$T/w"
	steps "$T/k" > "$T/k.out" 2>&1
	steps "$T/m" > "$T/m.out" 2>&1
	assert_files_equal "$T/k.out" "$T/m.out"
	tree_dump "$T/k" > "$T/k.txt"
	tree_dump "$T/m" > "$T/m.txt"
	assert_files_equal "$T/k.txt" "$T/m.txt"
	assert_equal "$(stat -c %i "$T/m/t1/t")" "$(stat -c %i "$T/m/hl")" "hard link"
	ovp_umount
	umount "$T/k"
	markers "$T/ku" > "$T/km.txt"
	markers "$T/u" > "$T/mm.txt"
	assert_files_equal "$T/km.txt" "$T/mm.txt"
	# nothing reached the lower layer
	make_lower "$T/l2"
	diff -r "$T/l1" "$T/l2"
	# kernel overlayfs reads the upper we wrote the same way
	mkdir -p "$T/k2" "$T/kw2"
	kovl_mount "lowerdir=$T/l1,upperdir=$T/u,workdir=$T/kw2,redirect_dir=on" "$T/k2"
	tree_dump "$T/k2" > "$T/k2.txt"
	assert_files_equal "$T/m.txt" "$T/k2.txt"
	umount "$T/k2"
}

@test "copy-up keeps data, holes, xattrs, owner, mode, times and st_ino" {
	need_root
	make_lower "$T/l1"
	chown 1234:5678 "$T/l1/a"
	setfacl -m u:99:r "$T/l1/a"
	ovp_mount "lowerdir=$T/l1,upperdir=$T/u,workdir=$T/w"
	ino=$(stat -c %i "$T/m/a")
	before=$(stat -c '%u:%g %a %Y' "$T/m/a")
	touch -a "$T/m/a"                       # metadata change: copies up
	echo more >> "$T/m/sparse"              # data change on a sparse file
	assert_equal "$ino" "$(stat -c %i "$T/m/a")" "st_ino after copy-up"
	assert_equal "$before" "$(stat -c '%u:%g %a %Y' "$T/m/a")"
	assert_equal "v" "$(getfattr --only-values -n user.k "$T/m/a")"
	getfacl -p "$T/m/a" | grep -q "user:99:r--"
	[ -f "$T/u/a" ] && [ -f "$T/u/sparse" ]
	[ "$(du -k "$T/u/sparse" | cut -f1)" -lt 1024 ]   # still sparse
	cmp <(cat "$T/l1/sparse"; echo more) "$T/m/sparse"
	ovp_umount
	ovp_mount "lowerdir=$T/l1,upperdir=$T/u,workdir=$T/w"
	assert_equal "$ino" "$(stat -c %i "$T/m/a")" "st_ino after remount"
	ovp_umount
}

@test "errors: EEXIST, ENOTEMPTY, ENOTDIR, EISDIR, EXDEV never" {
	need_root
	make_lower "$T/l1"
	ovp_mount "lowerdir=$T/l1,upperdir=$T/u,workdir=$T/w"
	run_cmd mkdir "$T/m/dir"
	[[ "$output" == *"File exists"* ]]
	run_cmd rmdir "$T/m/dir"
	[[ "$output" == *"not empty"* ]]
	run_cmd python3 -c "import os; os.rename('$T/m/a', '$T/m/dir')"
	[[ "$output" == *"Is a directory"* ]]
	run_cmd python3 -c "import os; os.rename('$T/m/emptyd', '$T/m/a')"
	[[ "$output" == *"Not a directory"* ]]
	run_cmd -0 mv "$T/m/dir" "$T/m/emptyd/moved"
	[ -f "$T/m/emptyd/moved/sub/s" ]
	ovp_umount
}
