#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# restart=on: a request the killed worker carried out but did not answer
# is sent again to the next worker (FUSE_NOTIFY_RESEND); it must not be
# carried out twice.  strace holds the worker 2 s right after the system
# call that does it (delay_exit), the worker is killed in that delay, and
# the caller must see what a local filesystem gives: one append, one
# exchange, 0 from a mkdir, an exclusive create, an unlink, an rmdir, a
# rename, a link, a symlink, an exclusive setxattr, a removexattr that
# took effect.

load helpers.bash

# workers are killed on purpose here
OVP_EXPECT_RESTARTS=1

# One call, as a local program makes it: prints what it returned, or the
# errno's name, and exits 0 on success.
OP_PY='
import ctypes, errno, os, sys
op, a = sys.argv[1], sys.argv[2:]
try:
    if op == "append":
        fd = os.open(a[0], os.O_WRONLY | os.O_APPEND)
        print(os.write(fd, a[1].encode() + b"\n"))
    elif op == "create":
        os.close(os.open(a[0], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        print(0)
    elif op == "mkdir":
        os.mkdir(a[0])
        print(0)
    elif op == "unlink":
        os.unlink(a[0])
        print(0)
    elif op == "rmdir":
        os.rmdir(a[0])
        print(0)
    elif op == "rename":
        os.rename(a[0], a[1])
        print(0)
    elif op == "link":
        os.link(a[0], a[1])
        print(0)
    elif op == "symlink":
        os.symlink(a[0], a[1])
        print(0)
    elif op == "setxattr-create":
        os.setxattr(a[0], "user.once", b"v", os.XATTR_CREATE)
        print(0)
    elif op == "removexattr":
        os.removexattr(a[0], "user.once")
        print(0)
    elif op == "copy":
        src = os.open(a[0], os.O_RDONLY)
        dst = os.open(a[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        print(os.copy_file_range(src, dst, int(a[2])))
    elif op == "exchange":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.renameat2(-100, a[0].encode(), -100, a[1].encode(), 2):
            raise OSError(ctypes.get_errno(), "renameat2")
        print(0)
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
    sys.exit(1)
'

# kill_after SYSCALL OP ARGS...: run the call OP in the background while
# every SYSCALL of the worker is held 2 s once made, kill the worker once
# strace shows the call made and held (not after a fixed sleep: a loaded
# machine may take longer than that to get there), and wait for the call:
# its exit status in $status, what it printed in $output.  What strace
# and the call printed go to the test's output, for a failure's sake.
kill_after() {
	local sys=$1 w st pid i held=0 d=$BATS_TEST_TMPDIR
	shift
	w=$(worker_of "$OVP_PID")
	[ -n "$w" ]
	: >"$d/strace.out"
	strace -f -p "$w" -e trace="$sys" \
		-e inject="$sys":delay_exit=2000000 -o "$d/strace.out" \
		2>"$d/strace.err" 3>&- &
	st=$!
	for ((i = 0; i < 200; i++)); do
		grep -q attached "$d/strace.err" && break
		sleep 0.05
	done
	grep -q attached "$d/strace.err"
	# the call gets 120 s to be answered: a request never answered
	# fails the test instead of hanging it
	timeout -s KILL 120 python3 -c "$OP_PY" "$@" >"$d/op.out" 2>&1 3>&- &
	pid=$!
	# strace writes the call's line, "= ... (DELAYED)", when the call
	# has returned in the worker and is being held; where another thread
	# made a call meanwhile the line is "<... SYSCALL resumed> ..."
	for ((i = 0; i < 600; i++)); do
		grep -Eq "(^[0-9]* *$sys\(|<\.\.\. $sys resumed>).*\(DELAYED\)" \
			"$d/strace.out" && held=1 && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if [ "$held" = 1 ] && kill -0 "$pid" 2>/dev/null; then
		kill -9 "$w"
	else
		# nothing to kill: strace lets go of the live worker
		held=0
		kill -INT "$st" 2>/dev/null
	fi
	status=0
	wait "$pid" || status=$?
	output=$(cat "$d/op.out")
	echo "# $sys: $* -> $status: $output (worker $w, held $held)" >&2
	sed 's/^/#   strace: /' "$d/strace.out" "$d/strace.err" >&2
	wait "$st" || true
	[ "$status" != 137 ] || { echo "# $sys: no answer in 120 s" >&2; return 1; }
	[ "$held" = 1 ] || { echo "# $sys: the call was not held" >&2; return 1; }
	next_worker "$OVP_PID" "$w" >/dev/null
}

setup_once() {
	need_ovp
	need_resend
	need_cmd strace
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" \
		restart=on "$@"
}

# After kill_after's append of "line2" to a holding "line1": the caller
# was told 6 bytes, and "line2" is there once, through the mount and, once
# it is gone, in the upper.
appended_once() {
	assert_equal "0 6" "$status $output"
	assert_equal "line1
line2" "$(cat "$MNT/a")"
	ovp_umount
	assert_equal "line1
line2" "$(cat "$UPPER/a")"
}

@test "restart=on once: an O_APPEND write served by the daemon lands once" {
	setup_once passthrough=off
	echo line1 >"$MNT/a"
	kill_after pwrite64 append "$MNT/a" line2
	appended_once
}

@test "restart=on once, writeback=1: an append to an append-only file (chattr +a, past the cache) lands once" {
	need_cmd chattr
	need_resend
	printf 'line1\n' >"$LOWER/a"
	set_flags +a "$LOWER/a" || skip "the layers' filesystem has no chattr +a"
	setup_once passthrough=off writeback=1
	assert_equal 1 "$(stat_value "$MNT" writeback.active)" "writeback.active"
	kill_after pwrite64 append "$MNT/a" line2
	# copied up by now: the lower file's flag is no longer read, and the
	# test directory stays removable whatever fails next
	chattr -a "$LOWER/a"
	appended_once
}

@test "restart=on once: RENAME_EXCHANGE is done once" {
	setup_once
	echo A >"$MNT/a"
	echo B >"$MNT/b"
	kill_after renameat2 exchange "$MNT/a" "$MNT/b"
	assert_equal "0 0" "$status $output"
	assert_equal "B A" "$(cat "$MNT/a") $(cat "$MNT/b")"
	ovp_umount
	assert_equal "B A" "$(cat "$UPPER/a") $(cat "$UPPER/b")"
}

@test "restart=on once: an O_EXCL create that took effect succeeds" {
	setup_once
	# once the file is made, the create asks for its handle (the inode's
	# identity across restarts) before it replies; there it is held
	kill_after name_to_handle_at create "$MNT/e"
	assert_equal "0 0" "$status $output"
	[ -f "$MNT/e" ]
	assert_equal "e" "$(ls "$MNT")"
	ovp_umount
}

@test "restart=on once: a mkdir that took effect returns 0" {
	setup_once
	# the root is merged: the directory is made in workdir, renamed in
	# (a symlink, not a directory, is made in place)
	kill_after renameat2 mkdir "$MNT/d"
	assert_equal "0 0" "$status $output"
	[ -d "$MNT/d" ]
	assert_equal "d" "$(ls "$MNT")"
	ovp_umount
	[ -d "$UPPER/d" ]
	assert_equal "" "$(ls -A "$WORK/work" 2>/dev/null)"
}

@test "restart=on once: an unlink that took effect returns 0" {
	setup_once
	echo x >"$MNT/x"
	echo y >"$MNT/y"
	kill_after unlinkat unlink "$MNT/x"
	assert_equal "0 0" "$status $output"
	assert_equal "y" "$(ls "$MNT")"
	ovp_umount
	assert_equal "y" "$(ls "$UPPER")"
}

@test "restart=on once: an rmdir that took effect returns 0" {
	setup_once
	mkdir "$MNT/d" "$MNT/k"
	kill_after unlinkat rmdir "$MNT/d"
	assert_equal "0 0" "$status $output"
	assert_equal "k" "$(ls "$MNT")"
	ovp_umount
	assert_equal "k" "$(ls "$UPPER")"
}

@test "restart=on once: a rename that took effect returns 0" {
	setup_once
	echo y >"$MNT/y"
	kill_after renameat rename "$MNT/y" "$MNT/z"
	assert_equal "0 0" "$status $output"
	assert_equal "z" "$(ls "$MNT")"
	assert_equal "y" "$(cat "$MNT/z")"
	ovp_umount
	assert_equal "z" "$(ls "$UPPER")"
}

@test "restart=on once: a link that took effect returns 0" {
	setup_once
	echo f >"$MNT/f"
	kill_after linkat link "$MNT/f" "$MNT/g"
	assert_equal "0 0" "$status $output"
	assert_equal "f g" "$(ls "$MNT" | xargs)"
	assert_equal "2" "$(stat -c %h "$MNT/g")"
	ovp_umount
	assert_equal "2" "$(stat -c %h "$UPPER/f")"
}

@test "restart=on once: a symlink that took effect returns 0" {
	setup_once
	kill_after symlinkat symlink target "$MNT/s"
	assert_equal "0 0" "$status $output"
	assert_equal "target" "$(readlink "$MNT/s")"
	ovp_umount
}

@test "restart=on once: an XATTR_CREATE setxattr and a removexattr that took effect return 0" {
	setup_once
	echo f >"$MNT/f"
	setfattr -n user.probe -v 1 "$MNT/f" 2>/dev/null ||
		skip "the upper layer takes no user.* xattrs"
	kill_after setxattr setxattr-create "$MNT/f"
	assert_equal "0 0" "$status $output"
	assert_equal "v" "$(getfattr --only-values -n user.once "$MNT/f")"
	kill_after removexattr removexattr "$MNT/f"
	assert_equal "0 0" "$status $output"
	run getfattr -n user.once "$MNT/f"
	[ "$status" -ne 0 ]
	ovp_umount
}

@test "restart=on once: a copy_file_range between two open files, made again by the next worker, copies" {
	setup_once
	head -c 65536 /dev/urandom >"$LOWER/src"
	# the kernel sends COPY_FILE_RANGE_64 (6.18) or COPY_FILE_RANGE with
	# the dead worker's handles of both files: the next worker crashed
	# on every try of the first (a mount that never answered again)
	kill_after copy_file_range copy "$MNT/src" "$MNT/dst" 65536
	assert_equal "0 65536" "$status $output"
	cmp "$LOWER/src" "$MNT/dst"
	assert_equal 1 "$(stat_value "$MNT" restart.restarts)"
	ovp_umount
	cmp "$LOWER/src" "$UPPER/dst"
}
