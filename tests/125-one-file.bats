#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# One file across copy-up (doc/copy-up.md): a lower file open through
# passthrough and then written gets a new FUSE inode, yet locks, the other
# names of a hard link and descriptors opened before the copy-up all act on
# the one file, as with kernel overlayfs.  Each case runs
# tests/tools/onefile.py on kernel overlayfs and on overpass over the same
# layers and compares the lines.

load helpers

ONEFILE=$TOP_SRCDIR/tests/tools/onefile.py

# onefile [-o OPT] CASE...: the cases on both mounts (overpass with OPT
# too), outputs compared.
onefile() {
	local opts=() pt=1
	if [ "$1" = -o ]; then
		opts=("lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" "$2")
		pt=0
		shift 2
	fi
	run_cmd 0 python3 "$ONEFILE" prepare "$LOWER"
	kovl_mount "lowerdir=$LOWER" "upperdir=$KUPPER" "workdir=$KWORK" index=on
	ovp_mount "${opts[@]}"
	run_cmd 0 python3 "$ONEFILE" run "$KMNT" "$@"
	echo "$output" >"$T/kernel"
	run_cmd 0 python3 "$ONEFILE" run "$MNT" "$@"
	echo "$output" >"$T/ovp"
	assert_equal "$pt" "$(stat_value "$MNT" passthrough.active)" "passthrough.active"
	ovp_umount
	kovl_umount
	assert_files_equal "$T/kernel" "$T/ovp" "kernel overlayfs vs overpass"
}

@test "flock: a lock through an open from before a copy-up excludes one through an open after it" {
	need_ovp
	need_kovl
	need_init_root
	onefile flock
}

@test "POSIX record locks: a reader's F_RDLCK from before the first write blocks the writer's F_WRLCK" {
	need_ovp
	need_kovl
	need_init_root
	onefile posix
}

@test "OFD locks across a copy-up" {
	need_ovp
	need_kovl
	need_init_root
	onefile ofd
}

@test "POSIX locks across a copy-up: EDEADLK, and a blocked F_SETLKW interrupted by a signal" {
	need_ovp
	need_kovl
	need_init_root
	onefile deadlock intr
}

@test "hard links: the other name shows the copied-up data once the old reader closed" {
	need_ovp
	need_kovl
	need_init_root
	onefile hardlink
}

@test "a descriptor from before a copy-up: fstat, fchmod, fchown, futimens, xattrs, fsync act on the file" {
	need_ovp
	need_kovl
	need_init_root
	onefile meta
}

@test "served by the daemon (passthrough=off), a descriptor from before a copy-up reads the new data" {
	need_ovp
	need_kovl
	onefile -o passthrough=off olddata meta hardlink flock posix
}

@test "sqlite: readers open a lower database before the first writer; thousands of transactions, integrity_check and row counts" {
	need_ovp
	need_init_root
	python3 -c 'import sqlite3' 2>/dev/null || skip "needs Python's sqlite3"
	run_cmd 0 python3 "$TOP_SRCDIR/tests/tools/sqlitetest.py" prepare "$LOWER"
	ovp_mount
	# 4 readers (2 read-only: passthrough opens of the lower file, which
	# the read-write ones copy up), 3 writers of 700 transactions each
	run_cmd 0 --timeout 600 python3 "$TOP_SRCDIR/tests/tools/sqlitetest.py" run \
		"$MNT/db.sqlite" --writers 3 --txns 700 --readers 4
	echo "# ${lines[0]}" >&3
	assert_contains "integrity=ok rows=3100 want=3100 counter=2100 failed=0" "$output"
	assert_ge 1 "$(stat_value "$MNT" requests.SETLK)" "requests.SETLK"
	ovp_umount
	# what landed in the upper layer is the whole database
	run_cmd 0 python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(db.execute("PRAGMA integrity_check").fetchone()[0], db.execute("SELECT count(*) FROM t").fetchone()[0])' "$UPPER/db.sqlite"
	assert_equal "ok 3100" "$output" "the upper copy"
}
