#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# The supervisor stays the supervisor: the statistics name the process that
# supervises the mount, never the parent an orphaned worker got; a worker
# whose supervisor was killed unmounts and ends, leaving no dead mount;
# overpass --restart signals only a process that is this mount's
# supervisor, never a foreign one (here a subreaper that SIGUSR2 would
# kill).  And restart=auto, the default: what it chose, and why.

load helpers.bash

# workers are killed here on purpose (ovp_umount)
OVP_EXPECT_RESTARTS=1

# wait_worker SUPERVISOR: the pid of its worker, once there (5 s at most)
wait_worker() {
	local i w
	for ((i = 0; i < 100; i++)); do
		w=$(worker_of "$1")
		[ -n "$w" ] && { echo "$w"; return 0; }
		sleep 0.05
	done
	return 1
}

# wait_unmounted MOUNTPOINT SECONDS
wait_unmounted() {
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		is_mounted "$1" || return 0
		sleep 0.05
	done
	return 1
}

# start_subreaper CMD...: run CMD under a python process that is a child
# subreaper (PR_SET_CHILD_SUBREAPER, so orphans below it become its
# children) and dies of SIGUSR2 (the default action); $REAPER is its pid.
start_subreaper() {
	local py
	# the interpreter itself, not a wrapper script (pyenv) in front of it
	py=$(python3 -c 'import sys; print(sys.executable)')
	"$py" -c '
import ctypes, os, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)   # PR_SET_CHILD_SUBREAPER
if os.fork() == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.1)
' "$@" </dev/null >"$T/reaper.log" 2>&1 3>&- &
	REAPER=$!
}

stop_subreaper() {
	kill -KILL "$REAPER" 2>/dev/null || true
	wait "$REAPER" 2>/dev/null || true
}

# kernel_resends: the kernel has FUSE_HAS_RESEND (Linux 6.9 and later)
kernel_resends() {
	[ "$(printf '6.9\n%s\n' "$(uname -r)" | sort -V | head -1)" = 6.9 ]
}

@test "restart: the statistics name the supervisor and its worker" {
	need_ovp
	need_resend
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=on
	w=$(wait_worker "$OVP_PID")
	assert_equal "$OVP_PID" "$(stat_value "$MNT" restart.supervisor_pid)"
	assert_equal "$w" "$(stat_value "$MNT" restart.worker_pid)"
	assert_equal on "$(stat_value "$MNT" restart.mode)"
	assert_equal option "$(stat_value "$MNT" restart.reason)"
	ovp_umount
}

@test "restart: kill -9 of the supervisor: the worker unmounts and ends within a few seconds" {
	need_ovp
	need_resend
	echo data >"$LOWER/f"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=on
	w=$(wait_worker "$OVP_PID")
	[ -n "$w" ]
	run_cmd 0 cat "$MNT/f"
	kill -KILL "$OVP_PID"
	wait_gone "$w" 5 || { echo "# worker $w still runs 5 s after its supervisor died" >&2; false; }
	wait_unmounted "$MNT" 5 || { echo "# $MNT still mounted" >&2; false; }
	assert_no_daemon "$MNT"
}

@test "restart: after an upgrade, the exec'd worker also unmounts and ends when its supervisor is killed" {
	need_ovp
	need_resend
	echo data >"$LOWER/f"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=on
	run_ovp 0 --restart "$MNT"
	assert_equal 2 "$(stat_value "$MNT" restart.generation)"
	w=$(stat_value "$MNT" restart.worker_pid)
	assert_equal "$OVP_PID" "$(awk '{print $4}' "/proc/$w/stat")"
	run_cmd 0 cat "$MNT/f"
	kill -KILL "$OVP_PID"
	wait_gone "$w" 5 || { echo "# worker $w still runs 5 s after its supervisor died" >&2; false; }
	wait_unmounted "$MNT" 5 || { echo "# $MNT still mounted" >&2; false; }
}

@test "restart: kill -9 of the supervisor under a subreaper; --restart then signals nobody" {
	need_ovp
	need_resend
	start_subreaper "$OVERPASS" -o "lowerdir=$LOWER,upperdir=$UPPER,workdir=$WORK,restart=on" "$MNT"
	wait_mounted "$MNT" 10 || { cat "$T/reaper.log" >&2; stop_subreaper; false; }
	sup=$(stat_value "$MNT" restart.supervisor_pid)
	w=$(stat_value "$MNT" restart.worker_pid)
	# the supervisor is the subreaper's child, after the detach
	assert_equal "$REAPER" "$(awk '{print $4}' "/proc/$sup/stat")"
	kill -KILL "$sup"
	wait_gone "$w" 5 || true
	run_ovp '!' --restart "$MNT"
	sleep 0.5
	if ! kill -0 "$REAPER" 2>/dev/null; then
		echo "# the subreaper $REAPER was signalled by overpass --restart" >&2
		wait "$REAPER" || true
		false
	fi
	wait_unmounted "$MNT" 5 || { echo "# $MNT still mounted" >&2; stop_subreaper; false; }
	stop_subreaper
}

# fake_stats DIR SUP WORKER: statistics on a plain directory that name SUP
# as the supervisor and WORKER as its worker
fake_stats() {
	setfattr -n user.overpass.stats -v "restart.supervisor_pid $2
restart.worker_pid $3
restart.generation 1
" "$1" 2>/dev/null || skip "needs user.* xattrs on $1"
}

@test "--restart refuses statistics naming a process that is not this mount's supervisor" {
	need_binary
	start_subreaper sleep 1000
	for ((i = 0; i < 100; i++)); do
		child=$(pgrep -P "$REAPER" | head -1)
		[ -z "$child" ] || [ "$(cat "/proc/$child/comm")" != sleep ] || break
		sleep 0.05
	done
	[ -n "$child" ]
	mkdir "$T/fake"
	# its "worker" is no child of it
	fake_stats "$T/fake" "$REAPER" "$$"
	run_ovp '!' --restart "$T/fake"
	assert_contains "not the supervisor" "$output"
	# its worker is its child, but it runs no overpass
	fake_stats "$T/fake" "$REAPER" "$child"
	run_ovp '!' --restart "$T/fake"
	assert_contains "does not run overpass" "$output"
	kill -0 "$REAPER" || { echo "# the subreaper was signalled" >&2; false; }
	stop_subreaper
}

@test "restart=auto is the default: on where the kernel can resend, over /dev/fuse" {
	need_ovp
	kernel_resends || skip "the kernel has no FUSE_HAS_RESEND (Linux < 6.9)"
	ovp_mount
	if [ "$(stat_value "$MNT" io_uring.offered)" = 1 ]; then
		assert_equal off "$(stat_value "$MNT" restart.mode)"
		assert_equal io_uring "$(stat_value "$MNT" restart.reason)"
	else
		assert_equal on "$(stat_value "$MNT" restart.mode)"
		assert_equal auto "$(stat_value "$MNT" restart.reason)"
		assert_equal "$OVP_PID" "$(stat_value "$MNT" restart.supervisor_pid)"
		w=$(wait_worker "$OVP_PID")
		assert_equal "$w" "$(stat_value "$MNT" restart.worker_pid)"
	fi
	ovp_umount
	# read-only too
	ovp_mount "lowerdir=$LOWER:$LOWER2"
	assert_equal "$(stat_value "$MNT" io_uring.offered | sed 's/1/off/;s/0/on/')" \
		"$(stat_value "$MNT" restart.mode)"
	ovp_umount
}

@test "restart=off: the daemon serves the mount itself" {
	need_ovp
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=off
	assert_equal off "$(stat_value "$MNT" restart.mode)"
	assert_equal option "$(stat_value "$MNT" restart.reason)"
	assert_equal "" "$(worker_of "$OVP_PID")"
	ovp_umount
}

@test "restart=auto, rootless (unshare -Urm): on, and a killed worker is replaced" {
	need_ovp
	need_unshare
	kernel_resends || skip "the kernel has no FUSE_HAS_RESEND (Linux < 6.9)"
	echo data >"$LOWER/f"
	run_cmd 0 unshare -Urm bash -c "
		set -e
		'$OVERPASS' -o 'lowerdir=$LOWER,upperdir=$UPPER,workdir=$WORK,io_uring=off' '$MNT'
		'$OVERPASS' --stats '$MNT' | grep '^restart\.'
		w=\$('$OVERPASS' --stats '$MNT' | awk '\$1 == \"restart.worker_pid\" {print \$2}')
		kill -KILL \$w
		cat '$MNT/f'
		'$OVERPASS' --stats '$MNT' | grep -x 'restart.restarts 1'
		umount '$MNT'
	"
	assert_contains "restart.mode on" "$output"
	assert_contains "data" "$output"
}
