#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# restart=on: a supervisor holds the mount while a worker serves it; a
# killed worker is replaced and no caller sees ENOTCONN; a worker that
# keeps dying ends the mount, saying why; umount and SIGTERM end both.

load helpers.bash

# workers are killed here on purpose (ovp_umount)
OVP_EXPECT_RESTARTS=1

# restart_stat NAME: a value of overpass --stats for $MNT
restart_stat() {
	"$OVERPASS" --stats "$MNT" | sed -n "s/^$1 //p"
}

@test "restart=on is on where the kernel resends requests, else off with the reason" {
	need_ovp
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=on
	echo x >"$MNT/f"
	assert_equal x "$(cat "$MNT/f")"
	if kernel_ge 6.9; then
		assert_equal on "$(restart_stat restart.mode)" "restart.mode"
		assert_equal option "$(restart_stat restart.reason)" "restart.reason"
	else
		assert_equal off "$(restart_stat restart.mode)" "restart.mode"
		assert_equal kernel_no_resend "$(restart_stat restart.reason)" "restart.reason"
	fi
	ovp_umount
}

@test "restart=on: a killed worker is replaced; callers see no ENOTCONN; held files, paths and new files work" {
	need_ovp
	need_resend
	mkdir "$LOWER/d"
	echo lower >"$LOWER/d/f"
	echo data >"$LOWER/r"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=on
	w1=$(worker_of "$OVP_PID")
	[ -n "$w1" ]
	assert_equal 0 "$(restart_stat restart.restarts)"
	run_cmd 0 python3 - "$MNT" "$w1" <<'PY'
import os, signal, sys
m, w = sys.argv[1], int(sys.argv[2])
r = open(f"{m}/r", "rb")
a = open(f"{m}/d/f", "ab")           # copied up before the kill
os.chdir(f"{m}/d")                   # a working directory in the mount
os.kill(w, signal.SIGKILL)
# at once: every call answers, and none with ENOTCONN
assert r.read() == b"data\n"          # passthrough, no daemon needed
a.write(b"appended\n")
a.flush()
size = len("lower\nappended\n")
assert os.fstat(a.fileno()).st_size == size
assert os.stat("f").st_size == size   # relative to the old directory
assert sorted(os.listdir(".")) == ["f"], os.listdir(".")
assert os.stat(f"{m}/d/f").st_size == size
assert sorted(os.listdir(m)) == ["d", "r"], os.listdir(m)
with open(f"{m}/d/new", "w") as f:
    f.write("new\n")
os.rename(f"{m}/d/new", f"{m}/d/renamed")
assert open(f"{m}/d/f").read() == "lower\nappended\n"
r.close()
a.close()
os.chdir("/")
PY
	w2=$(next_worker "$OVP_PID" "$w1")
	assert_equal 1 "$(restart_stat restart.restarts)"
	assert_equal "killed by signal 9 (Killed)" "$(restart_stat restart.last_cause)"
	if [ "$(restart_stat passthrough.active)" = 1 ]; then
		# r and d/f were open through passthrough when it died: their
		# backing ids are kept, since the kernel's inodes of their node
		# ids still use them (d/f was opened again through its old id)
		assert_equal 0 "$(restart_stat restart.backing_ids_closed)"
	fi
	ovp_umount
	wait_gone "$w2" 10
	assert_equal "lower
appended" "$(cat "$UPPER/d/f")"
	assert_equal new "$(cat "$UPPER/d/renamed")"
	assert_equal "" "$(ls -A "$WORK/work")" "workdir/work"
}

@test "restart=on: requests the dead worker had read, or that came meanwhile, are answered" {
	need_ovp
	need_resend
	echo data >"$LOWER/f"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=on
	w1=$(worker_of "$OVP_PID")
	# a record lock held, and a second process waiting for it inside the
	# worker (F_SETLKW: a request read and not answered)
	python3 - "$MNT/f" "$T" <<'PY' &
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
open(sys.argv[2] + "/locked", "w").close()
time.sleep(30)
PY
	holder=$!
	for ((i = 0; i < 100; i++)); do [ -e "$T/locked" ] && break; sleep 0.05; done
	python3 - "$MNT/f" >"$T/waiter" 2>&1 <<'PY' &
import errno, fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX)
    print("locked")
except OSError as e:
    print(errno.errorcode[e.errno])
PY
	waiter=$!
	sleep 0.5
	kill -0 "$waiter"
	# stopped, the worker reads nothing more: this stat waits in the kernel
	run_cmd 0 kill -STOP "$w1"
	stat -c %s "$MNT/f" >"$T/size" 2>&1 &
	st=$!
	sleep 0.2
	run_cmd 0 kill -KILL "$w1"
	# the stat waiting meanwhile is answered by the next worker
	wait "$st"
	assert_equal 5 "$(cat "$T/size")"
	# the lock is still held, so the waiter's request, sent again to
	# the next worker (without FUSE_NOTIFY_RESEND it would wait for
	# ever), waits on; once the holder ends, it gets the lock
	sleep 0.5
	kill -0 "$waiter"
	kill "$holder"
	wait "$holder" 2>/dev/null || true
	wait_gone "$waiter" 10
	assert_equal locked "$(cat "$T/waiter")"
	next_worker "$OVP_PID" "$w1" >/dev/null
	ovp_umount
}

@test "restart=on: a worker that keeps dying ends the mount and says why" {
	need_ovp
	need_resend
	echo data >"$LOWER/f"
	ovp_mount -f "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=on
	w=$(worker_of "$OVP_PID")
	for i in 1 2 3 4; do
		run_cmd 0 kill -KILL "$w"
		w=$(next_worker "$OVP_PID" "$w")
		assert_equal data "$(cat "$MNT/f")"
	done
	run_cmd 0 kill -KILL "$w"
	wait_gone "$OVP_PID" 10
	rc=0
	wait "$OVP_PID" || rc=$?
	assert_equal 2 "$rc" "the supervisor's exit status"
	assert_not_mounted "$MNT"
	grep -q "died 5 times within 60 s (last: killed by signal 9 (Killed)); giving up and unmounting" "$OVP_LOG" ||
		{ cat "$OVP_LOG" >&2; false; }
	OVP_FG_PIDS=()
}

@test "restart=on: SIGTERM to the supervisor unmounts; both processes end" {
	need_ovp
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=on
	w=$(worker_of "$OVP_PID")
	run_cmd 0 kill -TERM "$OVP_PID"
	wait_gone "$OVP_PID" 10
	wait_gone "$w" 10
	assert_not_mounted "$MNT"
}

@test "restart=on takes /dev/fuse even where FUSE over io_uring is offered" {
	need_ovp
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=on
	ls "$MNT" >/dev/null
	assert_equal dev_fuse "$(restart_stat transport)"
	ovp_umount
}

# chaos_lower: base/b0..b9 and sub/s0..s2 in $LOWER, owned by root
chaos_lower() {
	mkdir -p "$LOWER/base" "$LOWER/sub"
	for i in 0 1 2 3 4 5 6 7 8 9; do echo "base $i" >"$LOWER/base/b$i"; done
	for i in 0 1 2; do echo "sub $i" >"$LOWER/sub/s$i"; done
	chown -R 0:0 "$LOWER"
}

@test "restart=on: 50 kills at random points of a seeded workload: every call answers as a local filesystem would, the tree matches the model" {
	need_ovp
	need_resend
	chaos_lower
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=on restart_limit=0
	fds=$(ls /proc/"$OVP_PID"/fd | wc -l)
	run_cmd 0 timeout 300 python3 "$BATS_TEST_DIRNAME/tools/restart-chaos.py" "$MNT" 1130 50
	assert_contains "kills 50:" "$output"
	assert_equal "$fds" "$(ls /proc/"$OVP_PID"/fd | wc -l)" "the supervisor's open files"
	assert_equal 50 "$(restart_stat restart.restarts)"
	ovp_umount
	assert_equal "" "$(ls -A "$WORK/work")" "workdir/work"
}

@test "restart=on, rootless (unshare -Urm, files served by the daemon): 50 kills of a seeded workload" {
	need_binary
	need_fuse
	need_unshare
	need_resend
	chaos_lower
	run_cmd 0 timeout 400 unshare -Urm bash -c "
		set -e
		'$OVERPASS' -o 'lowerdir=$LOWER,upperdir=$UPPER,workdir=$WORK,restart=on,restart_limit=0' '$MNT' </dev/null
		'$OVERPASS' --stats '$MNT' | grep ^passthrough.active
		python3 '$BATS_TEST_DIRNAME/tools/restart-chaos.py' '$MNT' 1131 50
		'$OVERPASS' --stats '$MNT' | grep ^restart.restarts
		sup=\$('$OVERPASS' --stats '$MNT' | sed -n 's/^restart.supervisor_pid //p')
		umount '$MNT'
		# the supervisor ends after its worker, within 10 s
		for i in \$(seq 100); do kill -0 \$sup 2>/dev/null || exit 0; sleep 0.1; done
		exit 1"
	assert_contains "passthrough.active 0" "$output"
	assert_contains "kills 50:" "$output"
	assert_contains "restart.restarts 50" "$output"
}

@test "overpass --restart MNT: a new binary at the same path takes over the live mount" {
	need_ovp
	need_resend
	echo data >"$LOWER/f"
	mkdir "$LOWER/d"
	echo in-d >"$LOWER/d/g"
	mkdir "$T/bin"
	cp "$OVERPASS" "$T/bin/overpass"
	local OVERPASS=$T/bin/overpass
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=on
	w1=$(worker_of "$OVP_PID")
	exec {held}<"$MNT/f"
	cd "$MNT/d"
	# a new build installed at the same path: another file, as a package
	# upgrade makes it (the running binary stays as it is)
	cp "$OVERPASS" "$T/bin/overpass.new"
	printf 'another build' >>"$T/bin/overpass.new"
	mv -f "$T/bin/overpass.new" "$OVERPASS"
	run_cmd 0 "$OVERPASS" --restart "$MNT"
	assert_contains "worker 2 (pid" "$output"
	w2=$(worker_of "$OVP_PID")
	[ -n "$w2" ] && [ "$w2" != "$w1" ]
	assert_equal "$(stat -c %i "$OVERPASS")" "$(stat -L -c %i "/proc/$w2/exe")" "the new worker's binary"
	assert_equal in-d "$(cat g)" "through the working directory"
	assert_equal data "$(cat <&"$held")" "through a descriptor held across"
	echo more >>"$MNT/f"
	assert_equal "data
more" "$(cat "$MNT/f")"
	assert_equal "replaced by $OVERPASS" "$(restart_stat restart.last_cause)"
	cd /
	exec {held}<&-
	ovp_umount
	assert_equal "data
more" "$(cat "$UPPER/f")"
}

@test "overpass --restart after the directory the mount was started in is gone: relative layer paths still lead to the layers" {
	need_ovp
	need_resend
	echo data >"$LOWER/f"
	tmpfs_mount "$T/start"
	mkdir "$T/start/sub"
	cd "$T/start/sub"
	ovp_mount "lowerdir=../../lower" "upperdir=../../upper" "workdir=../../work" \
		restart=on "statsfile=../../stats"
	cd /
	w1=$(worker_of "$OVP_PID")
	# nothing keeps it: the paths were resolved when the mount was made
	run_cmd 0 umount "$T/start"
	run_cmd 0 "$OVERPASS" --restart "$MNT"
	assert_contains "worker 2 (pid" "$output"
	w2=$(worker_of "$OVP_PID")
	[ -n "$w2" ] && [ "$w2" != "$w1" ]
	assert_equal / "$(readlink "/proc/$w2/cwd")" "the new worker's directory"
	assert_equal data "$(cat "$MNT/f")"
	echo more >>"$MNT/f"
	ovp_umount
	assert_equal "data
more" "$(cat "$UPPER/f")"
	# the statsfile, given relative, is written where it was meant
	run_cmd 0 grep -q '^requests\.' "$T/stats"
}

@test "overpass --restart refuses a mount with restart off" {
	need_ovp
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=off
	run_ovp 1 --restart "$MNT"
	assert_contains "restart is off on this mount" "$output"
	ovp_umount
}
