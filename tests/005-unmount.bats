#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# Every way of ending a mount (umount, fusermount3 -u, SIGTERM, SIGINT)
# ends the daemon with status 0 and leaves no mount; without -f the command
# returns only once the mount is usable.

load helpers

mount_one() { # [-f]
	echo a >"$LOWER/a"
	mkdir -p "$LOWER/dir"
	echo b >"$LOWER/dir/b"
	ovp_mount "$@" "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK"
	# some use, with a file held open while unmounting lazily is not
	# the point here: everything is closed again
	assert_equal a "$(cat "$MNT/a")"
	echo n >"$MNT/new"
}

# end_by HOW: end the mount of $MNT (daemon $OVP_PID) one way.
end_by() {
	case "$1" in
	umount) run_cmd 0 umount "$MNT" ;;
	fusermount3) run_cmd 0 fusermount3 -u "$MNT" ;;
	SIGTERM) run_cmd 0 kill -TERM "$OVP_PID" ;;
	SIGINT) run_cmd 0 kill -INT "$OVP_PID" ;;
	esac
}

# end_test HOW [-f]: mount, use, end the mount HOW; the daemon exits (0
# when in the foreground), no mount is left, the upper has the data.
end_test() {
	need_ovp
	mount_one "${@:2}"
	end_by "$1"
	ovp_wait_exit "$MNT"
	assert_equal n "$(cat "$UPPER/new")"
}

@test "umount ends a detached daemon and leaves no mount" {
	end_test umount
}

@test "umount ends a foreground (-f) daemon with exit status 0" {
	end_test umount -f
}

@test "fusermount3 -u ends a detached daemon and leaves no mount" {
	end_test fusermount3
}

@test "fusermount3 -u ends a foreground (-f) daemon with exit status 0" {
	end_test fusermount3 -f
}

@test "SIGTERM ends a detached daemon and leaves no mount" {
	end_test SIGTERM
}

@test "SIGTERM ends a foreground (-f) daemon with exit status 0" {
	end_test SIGTERM -f
}

@test "SIGINT ends a detached daemon and leaves no mount" {
	end_test SIGINT
}

@test "SIGINT ends a foreground (-f) daemon with exit status 0" {
	end_test SIGINT -f
}

@test "the command returns only once the mount is usable (10 rounds)" {
	need_ovp
	local i round
	for i in $(seq 1 200); do echo "$i" >"$LOWER/f$i"; done
	mkdir -p "$LOWER/d/e"
	echo deep >"$LOWER/d/e/x"
	ls "$LOWER" | sort >"$T/expected"
	for round in $(seq 1 10); do
		# no waiting of any kind between the command and the first use
		"$OVERPASS" -o "lowerdir=$LOWER" "$MNT" </dev/null >"$T/out" 2>&1 3>&- ||
			{ cat "$T/out"; false; }
		ls "$MNT" | sort >"$T/listed"
		assert_equal deep "$(cat "$MNT/d/e/x")" "round $round"
		OVP_PID_OF[$MNT]=$(daemon_pid "$MNT")
		OVP_PIDS+=("${OVP_PID_OF[$MNT]}")
		assert_files_equal "$T/expected" "$T/listed" "round $round: listing right after mounting"
		assert_match '^fuse' "$(fstype_of "$MNT")"
		ovp_umount
	done
}

@test "a detached daemon keeps no descriptor of the caller's stdout or stderr" {
	need_ovp
	echo a >"$LOWER/a"
	# if the daemon kept the pipe open, the pipeline would not end
	run_cmd 0 --timeout 20 bash -c "'$OVERPASS' -o 'lowerdir=$LOWER' '$MNT' 2>&1 | cat"
	OVP_PID_OF[$MNT]=$(daemon_pid "$MNT")
	OVP_PIDS+=("${OVP_PID_OF[$MNT]}")
	local fd
	for fd in 0 1 2; do
		assert_equal /dev/null "$(readlink "/proc/${OVP_PID_OF[$MNT]}/fd/$fd")" "daemon fd $fd"
	done
	assert_equal / "$(readlink "/proc/${OVP_PID_OF[$MNT]}/cwd")" "daemon working directory"
	ovp_umount
}

@test "-f prints statistics on stderr at exit; statsfile= gets them instead" {
	need_ovp
	echo a >"$LOWER/a"
	ovp_mount -f "lowerdir=$LOWER"
	cat "$MNT/a" >/dev/null
	ovp_umount
	grep -q '^requests.LOOKUP [1-9]' "$OVP_LOG" || { cat "$OVP_LOG"; false; }
	ovp_mount -f "lowerdir=$LOWER" "statsfile=$T/stats"
	cat "$MNT/a" >/dev/null
	ovp_umount
	grep -q '^requests.LOOKUP [1-9]' "$T/stats"
	grep -q '^passthrough.active [01]$' "$T/stats"
	! grep -q '^requests\.' "$OVP_LOG" || { echo "# stats also on stderr"; false; }
}

@test "unmounting while files are open: the daemon still exits, lazily" {
	need_ovp
	echo a >"$LOWER/a"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK"
	exec 5<"$MNT/a"
	run_cmd '!' fusermount3 -u "$MNT"   # busy
	is_mounted "$MNT"
	run_cmd 0 umount -l "$MNT"
	exec 5<&-
	ovp_wait_exit "$MNT"
}

@test "SIGTERM while a reader is busy in the mount still ends the daemon" {
	need_ovp
	head -c 64M /dev/zero >"$LOWER/big"
	mkdir -p "$LOWER/d"
	for i in $(seq 1 300); do : >"$LOWER/d/f$i"; done
	ovp_mount "lowerdir=$LOWER"
	(for i in $(seq 1 200); do ls -l "$MNT/d" >/dev/null 2>&1; done) 3>&- &
	local reader=$!
	sleep 0.3
	run_cmd 0 kill -TERM "$OVP_PID"
	ovp_wait_exit "$MNT"
	wait "$reader" || true
}

# start_dir_free HOW [OPT...]: mount from a directory on a filesystem of its
# own, with layer paths relative to it, then unmount that filesystem while
# the overlay is mounted: as after kernel overlayfs, nothing keeps it busy
start_dir_free() {
	local how=$1 fg=
	shift
	[ "$how" = foreground ] && fg=-f
	tmpfs_mount "$T/start"
	mkdir "$T/start/sub"
	cd "$T/start/sub"
	ovp_mount $fg "lowerdir=../../lower" "upperdir=../../upper" "workdir=../../work" "$@"
	cd /
	run_cmd 0 umount "$T/start"
	assert_equal a "$(cat "$MNT/a")" "$how: the overlay after its start directory went"
	echo more >>"$MNT/a"
	ovp_umount
	assert_equal "a
more" "$(cat "$UPPER/a")"
	rm -rf "$UPPER" "$WORK"
	mkdir "$UPPER" "$WORK"
}

@test "the directory overpass was started in stays free: its filesystem unmounts while the overlay is mounted, as with kernel overlayfs" {
	need_ovp
	need_kovl
	echo a >"$LOWER/a"
	# the oracle
	tmpfs_mount "$T/start"
	cd "$T/start"
	kovl_mount "lowerdir=$LOWER" "upperdir=$KUPPER" "workdir=$KWORK"
	cd /
	run_cmd 0 umount "$T/start"
	kovl_umount
	start_dir_free detached
	start_dir_free foreground
	start_dir_free detached restart=on
	start_dir_free detached restart=off
}
