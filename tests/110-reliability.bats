#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# Reliability: the daemon killed (mount answers ENOTCONN, umount works,
# acknowledged data survives), killed in the middle of copy-ups, renames
# and whiteouts (old or new state after remount, never a partial one), and
# a full upper filesystem (clean ENOSPC, nothing partial, mount usable).

load helpers.bash

# The kill tests are about the daemon serving the mount itself: restart=off
# (under a supervisor, 130-restart.bats and 133-restart-supervisor.bats).
ovp_mount_plain() {
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=off
}

# kill_daemon: SIGKILL the daemon of $MNT and wait for it to be gone
kill_daemon() {
	run_cmd 0 kill -KILL "$OVP_PID"
	wait_gone "$OVP_PID" 10
}

@test "daemon killed: ENOTCONN, not a hang; umount works; fsync'd data survives" {
	need_ovp
	echo lower >"$LOWER/f"
	ovp_mount_plain
	python3 - "$MNT" <<'PY'
import os, sys
fd = os.open(os.path.join(sys.argv[1], "synced"), os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b"acknowledged\n")
os.fsync(fd)
os.close(fd)
PY
	echo appended >>"$MNT/f"
	kill_daemon
	run_cmd '!' timeout 10 stat "$MNT/f"
	assert_disconnected "$output"
	run_cmd '!' timeout 10 ls "$MNT"
	assert_disconnected "$output"
	run_cmd 0 timeout 10 umount "$MNT"
	assert_not_mounted "$MNT"
	ovp_mount_plain
	assert_equal acknowledged "$(cat "$MNT/synced")"
	assert_equal "lower
appended" "$(cat "$MNT/f")"
	ovp_umount
	assert_equal "" "$(ls -A "$WORK/work")" "workdir/work"
}

# check_state WHAT: after a kill and remount, every object is whole: big is
# the lower 48 MiB or the lower plus "tail"; d2 or d (renamed dir) holds
# its file; gone is present with its data or absent
check_state() {
	local size
	size=$(stat -c %s "$MNT/big")
	case $size in
	50331648) run_cmd 0 cmp "$LOWER/big" "$MNT/big" ;;
	50331653) run_cmd 0 cmp -n 50331648 "$LOWER/big" "$MNT/big"
		assert_equal tail "$(tail -c 5 "$MNT/big")" ;;
	*) echo "# $1: big has $size bytes" >&2; return 1 ;;
	esac
	if [ -d "$MNT/d2" ]; then
		[ ! -e "$MNT/d" ] && assert_equal in-d "$(cat "$MNT/d2/x")"
	else
		assert_equal in-d "$(cat "$MNT/d/x")"
	fi
	if [ -e "$MNT/gone" ]; then
		assert_equal gone "$(cat "$MNT/gone")"
	fi
	assert_equal "" "$(ls -A "$WORK/work")" "$1: workdir/work after remount"
	[ "$(cmp "$LOWER/big" "$T/big.orig" && echo same)" = same ]
}

@test "kill -9 at random points of copy-up, rename and whiteout: old or new state" {
	need_ovp
	local seed=${OVERPASS_KILL_SEED:-$RANDOM} rounds=${OVERPASS_KILL_ROUNDS:-12} i delay w
	echo "# kill seed $seed, $rounds rounds (OVERPASS_KILL_SEED, OVERPASS_KILL_ROUNDS)" >&3
	RANDOM=$seed
	head -c 50331648 /dev/urandom >"$LOWER/big"
	cp "$LOWER/big" "$T/big.orig"
	mkdir "$LOWER/d"
	echo in-d >"$LOWER/d/x"
	echo gone >"$LOWER/gone"
	for ((i = 0; i < rounds; i++)); do
		rm -rf "$UPPER" "$WORK"
		mkdir "$UPPER" "$WORK"
		ovp_mount_plain
		delay=$((RANDOM % 400))
		( echo tail >>"$MNT/big"; mv "$MNT/d" "$MNT/d2"; rm "$MNT/gone" ) \
			>/dev/null 2>&1 &
		w=$!
		sleep "$(printf '0.%03d' "$delay")"
		kill_daemon
		# its own job only: bats' timeout watchdog is a job too
		wait "$w" || true
		run_cmd 0 umount -l "$MNT"
		ovp_mount_plain
		check_state "round $i (kill after ${delay} ms)" || return 1
		ovp_umount
	done
}

@test "full upper filesystem: ENOSPC, nothing partial, the mount keeps working" {
	need_ovp
	tmpfs_mount "$T/small"
	run_cmd 0 umount "$T/small"
	run_cmd 0 mount -t tmpfs -o size=4m tmpfs "$T/small"
	mkdir "$T/small/upper" "$T/small/work"
	head -c 8388608 /dev/urandom >"$LOWER/big"
	echo small >"$LOWER/small"
	ovp_mount "lowerdir=$LOWER" "upperdir=$T/small/upper" "workdir=$T/small/work"
	run_cmd '!' sh -c "echo x >>'$MNT/big'"
	assert_contains "No space left on device" "$output"
	run_cmd 1 stat "$T/small/upper/big"
	assert_equal "" "$(ls -A "$T/small/work/work")" "workdir/work"
	run_cmd 0 cmp "$LOWER/big" "$MNT/big"
	# filling the upper through a write: ENOSPC, and the mount still works
	run_cmd '!' dd if=/dev/zero of="$MNT/fill" bs=1M count=8 status=none
	assert_contains "No space left on device" "$output"
	run_cmd 0 rm "$MNT/fill"
	# FUSE sends RELEASE after close() returns: the space of the removed
	# file comes back once the daemon has served it, a moment later
	local i
	for ((i = 0; i < 50; i++)); do
		[ "$(df --output=used -k "$T/small" | tail -n 1)" -lt 1024 ] && break
		sleep 0.1
	done
	echo more >>"$MNT/small"
	assert_equal "small
more" "$(cat "$MNT/small")"
	ovp_umount
	run_cmd 0 umount "$T/small"
}
