# SPDX-License-Identifier: GPL-2.0-or-later
# Shared set-up for the bats suites (load helpers): layer directories per
# test, starting and stopping overpass and kernel overlayfs (the oracle), a
# run wrapper in the manner of podman's run_podman, asserts that show both
# sides, and a teardown that fails the test when a mount or a daemon it
# started is left behind.
#
# Layout made by the default setup, all under $BATS_TEST_TMPDIR (= $T):
#   $LOWER $LOWER2 $LOWER3   lower layers (lower, lower2, lower3)
#   $UPPER $WORK $MNT        upper, work, merged: for overpass
#   $KUPPER $KWORK $KMNT     kupper, kwork, kmerged: for kernel overlayfs
#
# The binary is $OVERPASS (make check sets it), by default the tree's
# src/overpass.

TOP_SRCDIR=${TOP_SRCDIR:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)}
OVERPASS=${OVERPASS:-$TOP_SRCDIR/src/overpass}
# Seconds any one command run through run_cmd/run_ovp may take.
OVP_TIMEOUT=${OVP_TIMEOUT:-60}

setup() {
	T=$BATS_TEST_TMPDIR
	LOWER=$T/lower LOWER2=$T/lower2 LOWER3=$T/lower3
	UPPER=$T/upper WORK=$T/work MNT=$T/merged
	KUPPER=$T/kupper KWORK=$T/kwork KMNT=$T/kmerged
	mkdir -p "$LOWER" "$LOWER2" "$LOWER3" "$UPPER" "$WORK" "$MNT" \
		"$KUPPER" "$KWORK" "$KMNT"
	OVP_PIDS=()        # every daemon this test started
	OVP_FG_PIDS=()     # those started with -f/-d: children of this shell
	declare -gA OVP_PID_OF=()  # mountpoint -> daemon pid
	OVP_SEQ=0
}

teardown() {
	ovp_teardown
}

# The default teardown, for test files that define their own.
ovp_teardown() {
	local leaks="" m p i fd
	# a stand-in for an installed overpass (001-mount.bats)
	if [ -n "${OVP_TMP_LINK:-}" ]; then
		rm -f "$OVP_TMP_LINK"
		OVP_TMP_LINK=
	fi
	# descriptors the test left open into its directory keep a mount busy
	for fd in /proc/$BASHPID/fd/*; do
		fd=${fd##*/}
		[ "$fd" -gt 2 ] || continue
		[[ "$(readlink "/proc/$BASHPID/fd/$fd" 2>/dev/null)" == "$T/"* ]] || continue
		eval "exec $fd>&-"
	done
	# mounts below $T, deepest first
	for m in $(mounts_below "$T"); do
		leaks+=" mount:$m"
		fusermount3 -u "$m" 2>/dev/null || umount "$m" 2>/dev/null ||
			umount -l "$m" 2>/dev/null || true
	done
	for p in "${OVP_PIDS[@]}"; do
		[ -n "$p" ] || continue
		if ! wait_gone "$p" 10; then
			leaks+=" daemon:$p"
			kill -TERM "$p" 2>/dev/null || true
			wait_gone "$p" 3 || kill -KILL "$p" 2>/dev/null || true
		fi
	done
	# anything else still running with this test's directory on its
	# command line was started by this test (a daemon in an unshare'd
	# mount namespace, a background reader): end it; a daemon is a leak
	for p in $(pgrep -f -- "$(re_escape "$T/")" 2>/dev/null); do
		[ "$p" != "$$" ] && [ "$p" != "$BASHPID" ] || continue
		is_overpass_pid "$p" && leaks+=" stray-daemon:$p"
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $(pgrep -f -- "$(re_escape "$T/")" 2>/dev/null); do
		[ "$p" != "$$" ] && [ "$p" != "$BASHPID" ] || continue
		wait_gone "$p" 3 || kill -KILL "$p" 2>/dev/null || true
	done
	for i in "${!OVP_FG_PIDS[@]}"; do
		wait "${OVP_FG_PIDS[$i]}" 2>/dev/null || true
	done
	# flags set with set_flags (and copied up with the files) would keep
	# bats from removing the test's directory whatever the test did
	if [ -n "${OVP_FLAGS_SET:-}" ]; then
		chattr -R -ia "$T" 2>/dev/null || true
		OVP_FLAGS_SET=
	fi
	if [ -n "$leaks" ]; then
		echo "# teardown: left behind by the test:$leaks" >&2
		return 1
	fi
}

# chattr FLAGS FILE...: the flags on files of the test's directory, cleared
# again by the teardown (+i and +a files cannot be removed).  Fails, with
# nothing set, where the filesystem has no such flags.
set_flags() {
	OVP_FLAGS_SET=1
	chattr "$@" 2>/dev/null
}

# --- requirements: skip with a reason ------------------------------------

# A probe's answer cached for the whole file: probe_cached NAME CMD...
probe_cached() {
	local name=$1 f
	shift
	f=${BATS_FILE_TMPDIR:-$BATS_RUN_TMPDIR}/probe.$name
	if [ ! -e "$f" ]; then
		if "$@" >/dev/null 2>&1; then echo 0 > "$f"; else echo 1 > "$f"; fi
	fi
	return "$(cat "$f")"
}

_probe_fuse() {
	[ -c /dev/fuse ] && exec {fd}<>/dev/fuse && exec {fd}>&-
}

_probe_mount() {
	local d=${BATS_FILE_TMPDIR:-$BATS_RUN_TMPDIR}/probe-mnt
	mkdir -p "$d" && mount -t tmpfs probe "$d" && umount "$d"
}

_probe_kovl() {
	local d=${BATS_FILE_TMPDIR:-$BATS_RUN_TMPDIR}/probe-kovl
	mkdir -p "$d/l1" "$d/l2" "$d/m" &&
		mount -t overlay overlay -o "lowerdir=$d/l1:$d/l2" "$d/m" &&
		umount "$d/m"
}

need_root() {
	[ "$(id -u)" = 0 ] || skip "needs root"
}

# overpass_for_user DIR: a copy of $OVERPASS in DIR that any user may run,
# printed; the build tree may sit where only root can reach it (a clone in
# a mode-700 directory)
overpass_for_user() {
	install -m 755 "$OVERPASS" "$1/overpass" && echo "$1/overpass"
}

need_fuse() {
	probe_cached fuse _probe_fuse || skip "needs a usable /dev/fuse"
	command -v fusermount3 >/dev/null || skip "needs fusermount3"
}

# Root that can mount (not `unshare -r` without its own mount namespace).
need_mount() {
	need_root
	probe_cached mount _probe_mount || skip "needs permission to mount"
}

need_binary() {
	[ -x "$OVERPASS" ] || skip "no binary at $OVERPASS (build first)"
}

# What nearly every test needs: mount overpass as root.
need_ovp() {
	need_mount
	need_fuse
	[ -x "$OVERPASS" ] || skip "no binary at $OVERPASS (build first)"
}

need_kovl() {
	need_mount
	probe_cached kovl _probe_kovl || skip "kernel overlayfs cannot be mounted here"
}

# CAP_SYS_ADMIN in the initial user namespace (FUSE passthrough needs it).
need_init_root() {
	need_root
	[ "$(awk '{print $1, $2, $3}' /proc/self/uid_map)" = "0 0 4294967295" ] ||
		skip "needs CAP_SYS_ADMIN in the initial user namespace"
}

_probe_trusted() {
	local f=${BATS_FILE_TMPDIR:-$BATS_RUN_TMPDIR}/probe-trusted
	: >"$f" && setfattr -n trusted.overpass-probe -v 1 "$f"
}

_probe_mknod() {
	local f=${BATS_FILE_TMPDIR:-$BATS_RUN_TMPDIR}/probe-chr
	rm -f "$f" && mknod "$f" c 1 3
}

# trusted.* xattrs (kernel overlayfs's own markers) can be written.
need_trusted() {
	probe_cached trusted _probe_trusted || skip "needs trusted.* xattrs (CAP_SYS_ADMIN)"
}

# Device nodes other than the 0/0 whiteout can be made.
need_mknod() {
	probe_cached mknod _probe_mknod || skip "needs mknod of device nodes"
}

# kernel_ge 6.9: the running kernel is that version or newer.  Tests ask
# the kernel, not overpass, which features to expect, so that overpass
# wrongly turning a feature off still fails where the kernel has it.
kernel_ge() {
	local v
	v=$(uname -r | sed 's/[^0-9.].*//')
	[ "$(printf '%s\n%s\n' "$1" "$v" | sort -V | head -n1)" = "$1" ]
}

# FUSE passthrough (Linux 6.9) for a daemon with CAP_SYS_ADMIN.
need_passthrough() {
	need_init_root
	kernel_ge 6.9 || skip "FUSE passthrough needs Linux 6.9, this is $(uname -r)"
}

# A worker can take over a live mount (restart=on) only where the kernel
# resends the requests a dead worker had read: FUSE_NOTIFY_RESEND, 6.9.
need_resend() {
	kernel_ge 6.9 || skip "restart needs FUSE_NOTIFY_RESEND (Linux 6.9), this is $(uname -r)"
}

need_unshare() {
	probe_cached unshare unshare -Urm true || skip "unshare -Urm does not work here"
}

need_cmd() {
	local c
	for c; do
		command -v "$c" >/dev/null || skip "needs $c"
	done
}

# --- running commands ----------------------------------------------------

# run_cmd [EXPECT] [--timeout S] CMD...
#   Run an external command with FD 3 closed and its output in a file (a detached daemon keeping a pipe open cannot hang the
#   test), under a timeout.  Logs the command and output (bats shows them
#   on failure) and sets $status, $output and $lines.  EXPECT: an exit
#   status (default 0), '?' for any, '!' for any non-zero.  Stdin is the
#   caller's (a here-document for python3 - works).
run_cmd() {
	local expect=0 tmo=$OVP_TIMEOUT out
	case "${1:-}" in
	[0-9]|[0-9][0-9]|[0-9][0-9][0-9]|'?'|'!')
		expect=$1
		shift
		;;
	-[0-9]|-[0-9][0-9]|-[0-9][0-9][0-9])
		expect=${1#-}
		shift
		;;
	esac
	if [ "${1:-}" = --timeout ]; then
		tmo=$2
		shift 2
	fi
	out=$T/.run.$((++OVP_SEQ))
	echo "\$ $*"
	status=0
	timeout --kill-after=5 "$tmo" "$@" >"$out" 2>&1 3>&- || status=$?
	output=$(cat "$out")
	mapfile -t lines <<<"$output"
	if [ "${#lines[@]}" -gt 60 ]; then
		printf '%s\n' "${lines[@]:0:30}" "[... $((${#lines[@]} - 40)) lines ...]" "${lines[@]: -10}"
	elif [ -n "$output" ]; then
		printf '%s\n' "$output"
	fi
	[ "$status" -ne 124 ] || echo "# timed out after ${tmo}s: $*"
	case "$expect" in
	'?') return 0 ;;
	'!') [ "$status" -ne 0 ] && [ "$status" -ne 124 ] && [ "$status" -ne 137 ] && return 0 ;;
	*) [ "$status" -eq "$expect" ] && return 0 ;;
	esac
	echo "# expected exit status $expect, got $status: $*" >&2
	return 1
}

# run_ovp [EXPECT] [--timeout S] ARGS...: run_cmd "$OVERPASS" ARGS...
run_ovp() {
	local pre=()
	case "${1:-}" in
	[0-9]|[0-9][0-9]|[0-9][0-9][0-9]|'?'|'!'|-[0-9]|-[0-9][0-9]|-[0-9][0-9][0-9])
		pre+=("$1")
		shift
		;;
	esac
	if [ "${1:-}" = --timeout ]; then
		pre+=("$1" "$2")
		shift 2
	fi
	run_cmd "${pre[@]}" "$OVERPASS" "$@"
}

# --- mounts --------------------------------------------------------------

# $1 as an extended regular expression matching itself.
re_escape() {
	printf '%s' "$1" | sed 's/[][\.*^$+?(){}|]/\\&/g'
}

# Mount points below $1, deepest first.
mounts_below() {
	awk -v t="$1/" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r
}

is_mounted() {
	awk -v m="$1" '$5 == m {f = 1} END {exit !f}' /proc/self/mountinfo
}

fstype_of() {
	awk -v m="$1" '$5 == m {for (i = 7; $i != "-"; i++); t = $(i + 1)} END {print t}' \
		/proc/self/mountinfo
}

# proc_state PID: the state letter of /proc/PID/stat (R, S, D, Z...), read
# after the last ')' so that no command name can shift the fields.
proc_state() {
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	echo "${st%% *}"
}

# wait_gone PID SECONDS: the process has ended.  A zombie has: an orphaned
# daemon stays one until PID 1 reaps it, every few seconds here and later
# under load; our own children are reaped by wait later.  When it has not
# ended, what each of its threads is doing is printed.
wait_gone() { # PID SECONDS
	local i s t p
	for ((i = 0; i < $2 * 20; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		s=$(proc_state "$1") || return 0
		[ "$s" != Z ] && [ "$s" != X ] || return 0
		sleep 0.05
	done
	# and its children's: a supervisor waits for its worker
	for p in "$1" $(pgrep -P "$1"); do
		for t in /proc/"$p"/task/*; do
			echo "# pid $p thread ${t##*/}: state $(proc_state "$p/task/${t##*/}") wchan $(cat "$t/wchan" 2>/dev/null)" >&2
		done
	done
	return 1
}

wait_mounted() { # MOUNTPOINT SECONDS [PID]
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		is_mounted "$1" && return 0
		[ -z "${3:-}" ] || kill -0 "$3" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

is_overpass_pid() {
	local exe
	exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
	exe=${exe% (deleted)}
	[ "$exe" = "$(readlink -f "$OVERPASS")" ] || [ "${exe##*/}" = overpass ] ||
		[ "${exe##*/}" = lt-overpass ]
}

# The pid of the overpass daemon serving MOUNTPOINT: an overpass process
# with MOUNTPOINT as one of its arguments.
daemon_pid() {
	local p
	for p in $(pgrep -f -- "$(re_escape "$1")" 2>/dev/null); do
		is_overpass_pid "$p" || continue
		tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -qxF -- "$1" || continue
		echo "$p"
		return 0
	done
	return 1
}

# server_pid [MOUNTPOINT]: the process serving MOUNTPOINT's requests: the
# worker under a supervisor (restart on, the default where the kernel can
# resend), else the daemon itself.  For counting its threads, fds, memory.
server_pid() {
	local mnt=${1:-$MNT}
	stat_value "$mnt" restart.worker_pid 2>/dev/null || echo "${OVP_PID_OF[$mnt]}"
}

# The test user's processes (the user exists for these tests only): a
# rootless podman leaves a pause process holding its user and mount
# namespaces, which every later podman of that user joins, with the
# container state of the run that made it.  A run that ended early leaves
# it behind; end it before and after the test.
end_user_procs() {
	local i
	id "$1" >/dev/null 2>&1 || return 0
	pkill -KILL -u "$1" 2>/dev/null || true
	for i in $(seq 1 50); do
		pgrep -u "$1" >/dev/null || return 0
		sleep 0.1
	done
	echo "# processes of $1 still running: $(pgrep -u "$1" | tr '\n' ' ')" >&2
	return 1
}

# restart=on: worker_of SUPERVISOR: the pid of its worker (its only child)
worker_of() {
	pgrep -P "$1" | head -1
}

# next_worker SUPERVISOR OLD: wait (10 s at most) for a worker other than
# OLD (empty: any), and print its pid
next_worker() {
	local i w
	for ((i = 0; i < 200; i++)); do
		w=$(worker_of "$1")
		if [ -n "$w" ] && [ "$w" != "$2" ]; then
			echo "$w"
			return 0
		fi
		sleep 0.05
	done
	echo "# no new worker of $1 after $2" >&2
	return 1
}

# kill_worker: SIGKILL the worker of $OVP_PID and wait for the next one
kill_worker() {
	local w
	w=$(worker_of "$OVP_PID")
	[ -n "$w" ] || { echo "# no worker of $OVP_PID" >&2; return 1; }
	kill -KILL "$w"
	next_worker "$OVP_PID" "$w" >/dev/null
}

# ovp_mount [-m MOUNTPOINT] [-f|-d] [OPT...]
#   Mount overpass with -o OPT,OPT,... (default: lowerdir=$LOWER,
#   upperdir=$UPPER,workdir=$WORK) on MOUNTPOINT (default $MNT).  Without
#   -f/-d the command must return once the mount is there (detached mode),
#   and the daemon's pid is looked up; with -f/-d it runs in the background
#   as a child of the test, stderr to $T/ovp-<n>.log, and the mount is
#   waited for.  The pid is $OVP_PID (and OVP_PID_OF[MOUNTPOINT]).
ovp_mount() {
	local mnt=$MNT fg="" opts pid log
	while [ $# -gt 0 ]; do
		case "$1" in
		-m) mnt=$2; shift 2 ;;
		-f|-d) fg=$1; shift ;;
		*) break ;;
		esac
	done
	if [ $# -eq 0 ]; then
		set -- "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK"
	fi
	opts=$(IFS=,; echo "$*")
	if [ -z "$fg" ]; then
		run_ovp 0 -o "$opts" "$mnt" </dev/null || return 1
		is_mounted "$mnt" || { echo "# $mnt not mounted when the command returned" >&2; return 1; }
		pid=$(daemon_pid "$mnt") || { echo "# no daemon found for $mnt" >&2; return 1; }
	else
		log=$T/ovp-$((++OVP_SEQ)).log
		echo "\$ $OVERPASS $fg -o $opts $mnt &  (stderr: $log)"
		# bash starts background jobs with SIGINT ignored, and libfuse
		# leaves an ignored signal alone: restore the default
		env --default-signal=INT,QUIT "$OVERPASS" "$fg" -o "$opts" "$mnt" \
			</dev/null >"$log" 2>&1 3>&- &
		pid=$!
		OVP_FG_PIDS+=("$pid")
		OVP_LOG=$log
		if ! wait_mounted "$mnt" 20 "$pid"; then
			OVP_PIDS+=("$pid")
			echo "# $mnt not mounted by pid $pid; its output:" >&2
			cat "$log" >&2
			return 1
		fi
	fi
	OVP_PIDS+=("$pid")
	OVP_PID=$pid
	OVP_PID_OF[$mnt]=$pid
}

# ovp_umount [MOUNTPOINT]: fusermount3 -u, then the daemon must be gone
# within 10 s (and, in -f mode, have exited 0) and no mount left.
#   Under a supervisor, a worker that died during the test (and was
#   replaced, hiding the crash) fails it, unless the test file expects
#   restarts (OVP_EXPECT_RESTARTS=1).
ovp_umount() {
	local mnt=${1:-$MNT} pid rc r dev
	pid=${OVP_PID_OF[$mnt]:-}
	r=$(timeout 10 "$OVERPASS" --stats "$mnt" </dev/null 2>/dev/null 3>&- |
		awk '$1 == "restart.restarts" {print $2}')
	if [ -n "$r" ] && [ "$r" != 0 ] && [ -z "${OVP_EXPECT_RESTARTS:-}" ]; then
		echo "# $mnt: its worker died $r times during the test:" \
			"$(stat_value "$mnt" restart.last_cause)" >&2
		fusermount3 -u "$mnt" 2>/dev/null || true
		return 1
	fi
	dev=$(stat -c %d "$mnt" 2>/dev/null) || dev=
	run_cmd 0 fusermount3 -u "$mnt" || return 1
	ovp_wait_exit "$mnt" "$pid" || { fuse_conn_report "$dev"; return 1; }
}

# fcap_v2 FILE...: give each FILE a version 2 file capability
# (cap_net_raw+ep), as root
fcap_v2() {
	python3 -c 'import os, struct, sys
for f in sys.argv[1:]:
    os.setxattr(f, "security.capability",
                struct.pack("<5I", 0x02000001, 1 << 13, 0, 0, 0))' "$@"
}

# fuse_conn_report DEV: after an unmount that left its daemon serving,
# what still holds FUSE connection DEV (st_dev of the mount): its mounts
# in any mount namespace, the processes with a descriptor, a directory
# or a mapping on it, and the connection's waiting requests
fuse_conn_report() {
	local dev=$1 minor p f hit ns seen=" "
	[ -n "$dev" ] || return 0
	minor=$((dev & 0xff | (dev >> 12 & 0xfff00)))
	[ ! -r /sys/fs/fuse/connections/$minor/waiting ] ||
		echo "# connection $minor: $(cat /sys/fs/fuse/connections/$minor/waiting) requests waiting" >&2
	for p in /proc/[0-9]*; do
		ns=$(readlink "$p/ns/mnt" 2>/dev/null) || continue
		if [[ "$seen" != *" $ns "* ]]; then
			seen="$seen$ns "
			grep -q " 0:$minor " "$p/mountinfo" 2>/dev/null &&
				echo "# mounted in $ns (of ${p#/proc/}, $(cat "$p/comm" 2>/dev/null))" >&2
		fi
		hit=
		for f in "$p/cwd" "$p/root" "$p"/fd/*; do
			[ "$(stat -L -c %d "$f" 2>/dev/null)" = "$dev" ] && hit="$hit ${f##*/}"
		done
		grep -q " 00:$(printf %02x "$minor") " "$p/maps" 2>/dev/null && hit="$hit maps"
		[ -z "$hit" ] || echo "# ${p#/proc/} ($(cat "$p/comm" 2>/dev/null)) holds it:$hit" >&2
	done
	return 0
}

# ovp_wait_exit MOUNTPOINT [PID]: the daemon ends within 10 s, exits 0
# when it is our child, and the mount is gone.
ovp_wait_exit() {
	local mnt=$1 pid=${2:-${OVP_PID_OF[$1]:-}} f rc
	if [ -n "$pid" ]; then
		wait_gone "$pid" 10 || { echo "# daemon $pid still running 10s after unmount" >&2; return 1; }
		for f in "${OVP_FG_PIDS[@]}"; do
			[ "$f" = "$pid" ] || continue
			rc=0
			wait "$pid" || rc=$?
			[ "$rc" = 0 ] || { echo "# daemon $pid exited $rc" >&2; return 1; }
		done
	fi
	! is_mounted "$mnt" || { echo "# $mnt still mounted" >&2; return 1; }
}

# kovl_mount [-m MOUNTPOINT] [OPT...]: kernel overlayfs with -o OPT,...
# (default lowerdir=$LOWER,upperdir=$KUPPER,workdir=$KWORK) on MOUNTPOINT
# (default $KMNT).  A lowerdir-only option list gives a read-only mount.
kovl_mount() {
	local mnt=$KMNT opts
	if [ "${1:-}" = -m ]; then
		mnt=$2
		shift 2
	fi
	if [ $# -eq 0 ]; then
		set -- "lowerdir=$LOWER" "upperdir=$KUPPER" "workdir=$KWORK"
	fi
	opts=$(IFS=,; echo "$*")
	run_cmd 0 mount -t overlay overlay -o "$opts" "$mnt"
}

kovl_umount() {
	run_cmd 0 umount "${1:-$KMNT}"
}

# tmpfs_mount DIR: a fresh tmpfs (another filesystem) at DIR; the test
# unmounts it with umount.
tmpfs_mount() {
	mkdir -p "$1"
	run_cmd 0 mount -t tmpfs -o size=512m,mode=0755 tmpfs "$1"
}

# stat_value MOUNTPOINT KEY: one value of overpass --stats.
stat_value() {
	"$OVERPASS" --stats "$1" </dev/null 3>&- | awk -v k="$2" '$1 == k {print $2; f = 1} END {exit !f}'
}

# tree_dump [OPTIONS] DIR: see tests/tree-dump.
tree_dump() {
	python3 "$BATS_TEST_DIRNAME/tree-dump" "$@"
}

# --- asserts -------------------------------------------------------------

# assert_equal EXPECTED ACTUAL [WHAT]
assert_equal() {
	if [ "$1" != "$2" ]; then
		printf '# %s\n#   expected: %q\n#     actual: %q\n' "${3:-values differ}" "$1" "$2" >&2
		return 1
	fi
}

# assert_match PATTERN(ERE) TEXT [WHAT]
assert_match() {
	if ! [[ "$2" =~ $1 ]]; then
		printf '# %s\n#   expected to match: %s\n#               text: %q\n' \
			"${3:-no match}" "$1" "$2" >&2
		return 1
	fi
}

# assert_contains SUBSTRING TEXT [WHAT]
assert_contains() {
	if [[ "$2" != *"$1"* ]]; then
		printf '# %s\n#   expected to contain: %s\n#                  text: %q\n' \
			"${3:-substring missing}" "$1" "$2" >&2
		return 1
	fi
}

# assert_disconnected TEXT: an error of a mount whose daemon died: ENOTCONN,
# or ECONNABORTED, which the kernel gives requests that were queued on a
# FUSE io_uring while the daemon died.
assert_disconnected() {
	[[ "$1" == *"Transport endpoint is not connected"* ]] ||
		[[ "$1" == *"Software caused connection abort"* ]] && return 0
	printf '# expected ENOTCONN or ECONNABORTED, got: %q\n' "$1" >&2
	return 1
}

# assert_files_equal EXPECTED-FILE ACTUAL-FILE [WHAT]: shows the diff.
assert_files_equal() {
	if ! diff -u "$1" "$2" >"$T/.diff" 2>&1; then
		echo "# ${3:-files differ}: $1 (expected) vs $2 (actual)" >&2
		head -n 200 "$T/.diff" >&2
		return 1
	fi
}

# assert_ge MIN ACTUAL [WHAT]
assert_ge() {
	if ! [[ "$2" =~ ^[0-9]+$ ]] || [ "$2" -lt "$1" ]; then
		printf '# %s\n#   expected >= %s\n#         actual: %q\n' "${3:-too small}" "$1" "$2" >&2
		return 1
	fi
}

assert_not_mounted() {
	if is_mounted "$1"; then
		echo "# $1 is mounted" >&2
		return 1
	fi
}

assert_no_daemon() { # MOUNTPOINT
	local p
	if p=$(daemon_pid "$1"); then
		echo "# a daemon (pid $p) serves $1" >&2
		return 1
	fi
}

# assert_fails_with TEXT CMD...: CMD fails and its output names the error TEXT
# (strerror, as coreutils print it).
assert_fails_with() {
	local want=$1
	shift
	run_cmd '!' "$@" || return 1
	assert_contains "$want" "$output" "$* should fail with '$want'"
}
