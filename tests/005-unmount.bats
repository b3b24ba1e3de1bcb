#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# Every way of ending a mount ends the daemon and leaves no mount; the
# command returns only once the mount is usable.

load helpers


mount_one() {
	echo a > "$T/l1/a"
	ovp_mount "lowerdir=$T/l1,upperdir=$T/u,workdir=$T/w"
}

gone() {
	wait_gone "$LAST_PID" 10
	! grep -q " $T/m " /proc/self/mounts
}

@test "umount ends the daemon" {
	need_root
	mount_one
	umount "$T/m"
	gone
}

@test "fusermount3 -u ends the daemon" {
	need_root
	mount_one
	fusermount3 -u "$T/m"
	gone
}

@test "SIGTERM unmounts and ends the daemon" {
	need_root
	mount_one
	kill -TERM "$LAST_PID"
	gone
}

@test "SIGINT unmounts and ends the daemon" {
	need_root
	mount_one
	kill -INT "$LAST_PID"
	gone
}

@test "the mount is usable as soon as the command returns" {
	need_root
	for i in $(seq 1 50); do echo "$i" > "$T/l1/f$i"; done
	for round in 1 2 3 4 5; do
		ovp_mount "lowerdir=$T/l1"
		assert_equal 50 "$(ls "$T/m" | wc -l)"
		assert_equal 7 "$(cat "$T/m/f7")"
		ovp_umount
	done
}

@test "foreground -f prints statistics at exit and exits 0" {
	need_root
	echo a > "$T/l1/a"
	"$OVERPASS" -f -o "lowerdir=$T/l1,statsfile=$T/stats" "$T/m" 3>&- 2>"$T/err" &
	pid=$!
	OVP_PIDS+=("$pid")
	for i in $(seq 1 100); do grep -q " $T/m " /proc/self/mounts && break; sleep 0.05; done
	cat "$T/m/a"
	fusermount3 -u "$T/m"
	wait "$pid"
	grep -q "^requests.LOOKUP [1-9]" "$T/stats"
}
