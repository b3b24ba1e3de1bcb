#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# FUSE over io_uring: taken when the kernel offers it (fuse.enable_uring),
# refused with io_uring=off, and everything else unchanged on it: the data
# still passes through, copy-up, rename and readdir work, rootless mounts
# work, a killed daemon leaves no hang.  The kernel's switch is put back as
# it was after each test.

load helpers

URING_PARAM=/sys/module/fuse/parameters/enable_uring

# set_uring Y|N: set the kernel's switch, remembering the first value seen.
set_uring() {
	[ -w "$URING_PARAM" ] || skip "no writable $URING_PARAM (kernel without FUSE over io_uring)"
	if [ -z "${URING_SAVED:-}" ]; then
		URING_SAVED=$(cat "$URING_PARAM")
	fi
	echo "$1" >"$URING_PARAM"
}

teardown() {
	ovp_teardown
	if [ -n "${URING_SAVED:-}" ]; then
		echo "$URING_SAVED" >"$URING_PARAM"
	fi
}

# need_uring_libfuse: overpass was built with its FUSE over io_uring
# (liburing), which --version says.
need_uring_libfuse() {
	"$OVERPASS" --version | grep -q ", io_uring)" ||
		skip "overpass is built without liburing: no FUSE over io_uring"
}

@test "io_uring offered by the kernel: requests come through the rings, data still passes through" {
	need_ovp
	need_init_root
	need_uring_libfuse
	set_uring Y
	mkdir -p "$LOWER/dir"
	for i in $(seq 1 500); do echo "$i" >"$LOWER/dir/f$i"; done
	head -c 8M /dev/urandom >"$LOWER/big"
	# every open passed through, small files too (passthrough_min=0)
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" passthrough_min=0
	run_cmd 0 stat "$MNT"
	assert_equal io_uring "$(stat_value "$MNT" transport)" "transport"
	assert_equal 1 "$(stat_value "$MNT" io_uring.offered)" "io_uring.offered"
	assert_equal 1 "$(stat_value "$MNT" passthrough.active)" "passthrough.active"
	# restart=auto gives way to the rings: no resend covers them
	assert_equal off "$(stat_value "$MNT" restart.mode)" "restart.mode"
	assert_equal io_uring "$(stat_value "$MNT" restart.reason)" "restart.reason"
	# namespace work through the rings
	run_cmd 0 ls "$MNT/dir"
	assert_equal 500 "$(ls "$MNT/dir" | wc -l)" "entries listed"
	run_cmd 0 mv "$MNT/dir/f1" "$MNT/dir/g1"
	run_cmd 0 rm "$MNT/dir/f2"
	run_cmd 0 mkdir "$MNT/new"
	run_cmd 0 cp "$MNT/dir/f3" "$MNT/new/copy"
	assert_equal 3 "$(cat "$MNT/new/copy")" "a copied file"
	# data: a copy-up, then reads and writes that never reach the daemon
	run_cmd 0 dd if=/dev/zero of="$MNT/big" bs=1M count=1 oflag=append conv=notrunc status=none
	run_cmd 0 cmp -n $((8 << 20)) "$LOWER/big" "$MNT/big"
	assert_equal $((9 << 20)) "$(stat -c %s "$UPPER/big")" "the copied-up size"
	assert_equal 0 "$(stat_value "$MNT" requests.READ)" "requests.READ"
	assert_equal 0 "$(stat_value "$MNT" requests.WRITE)" "requests.WRITE"
	assert_ge 1 "$(stat_value "$MNT" copy_ups)" "copy_ups"
	# what landed in upper is what the kernel would have written
	[ -c "$UPPER/dir/f2" ] || { echo "# no whiteout for f2" >&2; false; }
	[ -f "$UPPER/dir/g1" ] || { echo "# no upper g1" >&2; false; }
	assert_equal 1 "$(cat "$UPPER/dir/g1")" "the renamed file's data"
	ovp_umount
}

@test "io_uring=off keeps requests on /dev/fuse though the kernel offers io_uring" {
	need_ovp
	need_init_root
	need_uring_libfuse
	set_uring Y
	echo data >"$LOWER/f"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" "io_uring=off"
	run_cmd 0 cat "$MNT/f"
	assert_equal dev_fuse "$(stat_value "$MNT" transport)" "transport"
	assert_equal 1 "$(stat_value "$MNT" io_uring.offered)" "io_uring.offered"
	# without the rings, restart=auto keeps a supervisor
	assert_equal on "$(stat_value "$MNT" restart.mode)" "restart.mode"
	ovp_umount
	run_ovp 1 -o "lowerdir=$LOWER,io_uring=yes" "$MNT"
	assert_contains "io_uring" "$output"
}

@test "a kernel that does not offer io_uring: /dev/fuse, and the statistics say so" {
	need_ovp
	need_init_root
	set_uring N
	echo data >"$LOWER/f"
	ovp_mount
	run_cmd 0 cat "$MNT/f"
	assert_equal dev_fuse "$(stat_value "$MNT" transport)" "transport"
	assert_equal 0 "$(stat_value "$MNT" io_uring.offered)" "io_uring.offered"
	ovp_umount
}

@test "rootless (unshare -Urm) over io_uring: the daemon serves data itself through the rings" {
	need_ovp
	need_init_root
	need_unshare
	need_uring_libfuse
	set_uring Y
	head -c 4M /dev/urandom >"$LOWER/data"
	echo hello >"$LOWER/small"
	chmod -R a+rwX "$T"
	run_cmd 0 unshare -Urm bash -c "
		set -e
		'$OVERPASS' -o 'lowerdir=$LOWER,upperdir=$UPPER,workdir=$WORK' '$MNT'
		cmp '$LOWER/data' '$MNT/data'
		echo more >>'$MNT/small'
		cat '$MNT/small'
		stat '$MNT' >/dev/null
		'$OVERPASS' --stats '$MNT'
		fusermount3 -u '$MNT'"
	assert_contains $'\ntransport io_uring\n' "$output"
	assert_contains $'\npassthrough.active 0\n' "$output"
	assert_match $'\nrequests.WRITE [1-9]' "$output"
	assert_equal "hello
more" "$(cat "$UPPER/small")" "the upper copy"
	assert_not_mounted "$MNT"
}

@test "io_uring: a daemon killed with a request in flight: the request ends, later ones fail, umount works" {
	need_ovp
	need_init_root
	need_uring_libfuse
	set_uring Y
	mkdir "$LOWER/d"
	ovp_mount
	assert_equal io_uring "$(stat_value "$MNT" transport)" "transport"
	kill -STOP "$OVP_PID"
	stat "$MNT/d/never-looked-up" 2>"$T/stat.err" &
	local st=$!
	sleep 0.5
	kill -KILL "$OVP_PID"
	kill -CONT "$OVP_PID" 2>/dev/null || true
	local rc=0
	timeout 10 tail --pid="$st" -f /dev/null || rc=$?
	assert_equal 0 "$rc" "the waiting stat ended within 10 s"
	run_cmd '?' stat "$MNT/d/other"
	assert_disconnected "$output"
	run_cmd 0 fusermount3 -u "$MNT"
	assert_not_mounted "$MNT"
}

@test "lock waits over io_uring: a signal ends one, and 40 waiters on one CPU neither stall it nor are refused" {
	need_ovp
	need_init_root
	need_uring_libfuse
	set_uring Y
	run_cmd 0 python3 "$TOP_SRCDIR/tests/tools/onefile.py" prepare "$LOWER"
	ovp_mount
	set_uring "$URING_SAVED"
	assert_equal io_uring "$(stat_value "$MNT" transport)" "transport"
	run_cmd 0 --timeout 60 python3 "$TOP_SRCDIR/tests/tools/onefile.py" run "$MNT" intr
	assert_contains "intr: blocking write lock: interrupted" "$output"
	assert_contains "intr: killed waiter: -9" "$output"
	run_cmd 0 --timeout 60 python3 "$TOP_SRCDIR/tests/tools/ringwait.py" "$MNT/f" 4
	assert_contains "children failed 0" "$output"
	# 40 waiters on CPU 0, five times the entries its queue started with:
	# each wait gets the lock in turn, none is refused, the unlock passes
	run_cmd 0 --timeout 60 python3 "$TOP_SRCDIR/tests/tools/ringwait.py" "$MNT/f" 40
	assert_contains "unlocked after" "$output"
	assert_contains "children failed 0" "$output"
	ovp_umount
}

@test "lock waits over io_uring: 24 waits of four users on a CPU are all granted, and root's there too, as on kernel overlayfs" {
	need_ovp
	need_init_root
	need_kovl
	need_uring_libfuse
	[ "$(nproc)" -ge 2 ] || skip "needs 2 CPUs"
	touch "$LOWER/a" "$LOWER/b"
	chmod 666 "$LOWER/a" "$LOWER/b"
	set_uring Y
	ovp_mount
	set_uring "$URING_SAVED"
	assert_equal io_uring "$(stat_value "$MNT" transport)" "transport"
	# 24 waits of uids 4711 to 4714 on CPU 0, then root's wait on CPU 0:
	# every one is granted (with libfuse's rings, waits beyond 6 per
	# queue, or 4 per user, got ENOLCK)
	run_cmd 0 --timeout 60 python3 "$TOP_SRCDIR/tests/tools/locktool.py" ringfair "$MNT" 4711 24
	assert_contains "root: granted" "$output"
	assert_contains "user: granted 24" "$output"
	[[ "$output" != *ENOLCK* ]] || { echo "# a wait got ENOLCK" >&2; false; }
	kovl_mount
	run_cmd 0 --timeout 60 python3 "$TOP_SRCDIR/tests/tools/locktool.py" ringfair "$KMNT" 4711 24
	assert_contains "root: granted" "$output"
	assert_contains "user: granted 24" "$output"
	kovl_umount
	ovp_umount
}
