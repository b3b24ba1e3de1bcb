#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# What the running kernel gives, said by overpass: the kernel.* lines of
# --stats and the mount's first log line, checked against what the kernel
# version says it must give (uname -r, not overpass's word), and what
# overpass does with each: passthrough, resend (restart), FUSE over
# io_uring, idmapped mounts, layers on idmapped mounts.  The man page's
# KERNELS table is what these tests showed on 6.1, 6.12 and 6.18
# (contrib/vm-test.sh 6.1 tests/150-kernel.bats); each prints the kernel.*
# lines it saw.

load helpers

# The fuse module's enable_uring, Y or N (N where it does not exist).
uring_param() {
	local v
	v=$(cat /sys/module/fuse/parameters/enable_uring 2>/dev/null) || v=N
	echo "${v:0:1}"
}

# The kernel offers FUSE over io_uring: 6.14, and enable_uring=Y.  Read
# before and after a mount (another run may set it meanwhile): the test
# is skipped when the two differ.
URING_BEFORE=
uring_before() {
	URING_BEFORE=$(uring_param)
}

uring_after() {
	[ "$(uring_param)" = "$URING_BEFORE" ] ||
		skip "fuse.enable_uring changed during the test"
}

uring_expected() {
	kernel_ge 6.14 && [ "$URING_BEFORE" = Y ] && echo 1 || echo 0
}

# 1 when the running kernel is at least $1, else 0.
ge() {
	kernel_ge "$1" && echo 1 || echo 0
}

# overpass built with its FUSE over io_uring (liburing), from --version.
libfuse_uring() {
	"$OVERPASS" --version | grep -q ", io_uring)"
}

# The kernel.* lines of the statistics text $1, shown in the TAP output.
show_kernel_lines() {
	printf '%s\n' "$1" | grep '^kernel\.' | sed "s/^/# $(uname -r): /" >&3
}

# get TEXT KEY: a value of statistics text.
get() {
	printf '%s\n' "$1" | awk -v k="$2" '$1 == k {print $2; f = 1} END {exit !f}'
}

# The kernel line overpass should log first, from the kernel version:
# expected_line MINOR PT-REASON RESTART IO_URING, PT-REASON ok,
# no_cap_sys_admin or disabled_by_option, RESTART (auto, on, off) and
# IO_URING (auto, off) the options.
expected_line() {
	local minor=$1 why=$2 restart=$3 uring_opt=$4 pt rs ur id offered
	offered=$(uring_expected)
	if ! kernel_ge 6.9; then
		pt="no passthrough (data through the daemon)"
	elif [ "$why" = ok ]; then
		pt=passthrough
	else
		pt="passthrough (unused: $why; data through the daemon)"
	fi
	if ! kernel_ge 6.9; then
		rs="no resend (restart off)"
	elif [ "$restart" = off ]; then
		rs="resend (restart off: restart=off)"
	elif [ "$restart" = auto ] && [ "$offered" = 1 ] && [ "$uring_opt" = auto ] &&
		libfuse_uring; then
		rs="resend (restart off: io_uring)"
	else
		rs="resend (restart on)"
	fi
	if [ "$offered" = 0 ]; then
		if kernel_ge 6.14; then
			ur="no io_uring (fuse.enable_uring off: requests through /dev/fuse)"
		else
			ur="no io_uring (requests through /dev/fuse)"
		fi
	elif ! libfuse_uring; then
		ur="io_uring (unused: built without liburing; requests through /dev/fuse)"
	elif [ "$uring_opt" = off ]; then
		ur="io_uring (unused: io_uring=off; requests through /dev/fuse)"
	elif [ "$restart" = on ]; then
		ur="io_uring (unused: restart=on; requests through /dev/fuse)"
	else
		ur=io_uring
	fi
	kernel_ge 6.12 && id="idmap (not used)" || id="no idmap"
	echo "overpass: kernel $(uname -r) (FUSE 7.$minor): $pt, $rs, $ur, $id"
}

# check_kernel_lines STATS: the kernel.* lines are the running kernel's.
check_kernel_lines() {
	local s=$1 minor
	assert_equal "$(uname -r)" "$(get "$s" kernel.release)" kernel.release
	minor=$(get "$s" kernel.fuse_minor)
	# protocol 7.40 came with 6.9, 7.41 with 6.12, 7.42 with 6.14
	assert_equal "$(ge 6.9)" "$([ "$minor" -ge 40 ] && echo 1 || echo 0)" \
		"kernel.fuse_minor $minor >= 40 (Linux 6.9)"
	assert_equal "$(ge 6.12)" "$([ "$minor" -ge 41 ] && echo 1 || echo 0)" \
		"kernel.fuse_minor $minor >= 41 (Linux 6.12)"
	assert_equal "$(ge 6.14)" "$([ "$minor" -ge 42 ] && echo 1 || echo 0)" \
		"kernel.fuse_minor $minor >= 42 (Linux 6.14)"
	assert_ge 31 "$minor" "kernel.fuse_minor (Linux 5.4 had 7.31)"
	assert_equal "$(ge 6.9)" "$(get "$s" kernel.passthrough)" kernel.passthrough
	assert_equal "$(ge 6.9)" "$(get "$s" kernel.resend)" kernel.resend
	assert_equal "$(ge 6.12)" "$(get "$s" kernel.idmap)" kernel.idmap
	assert_equal "$(uring_expected)" "$(get "$s" kernel.io_uring)" \
		"kernel.io_uring (enable_uring=$URING_BEFORE)"
}

@test "--stats: the kernel.* lines are the running kernel's, and passthrough, restart and io_uring follow them" {
	need_ovp
	need_init_root
	echo data >"$LOWER/f"
	uring_before
	ovp_mount -f
	cat "$MNT/f" >/dev/null
	local s
	s=$("$OVERPASS" --stats "$MNT")
	ovp_umount
	uring_after
	echo "$s"
	show_kernel_lines "$s"
	check_kernel_lines "$s"
	assert_equal "$(get "$s" kernel.passthrough)" "$(get "$s" passthrough.active)" \
		"passthrough.active (root, passthrough=auto)"
	if [ "$(get "$s" kernel.passthrough)" = 0 ]; then
		assert_equal kernel_unsupported "$(get "$s" passthrough.reason)" passthrough.reason
	fi
	if [ "$(get "$s" kernel.resend)" = 0 ]; then
		assert_equal "off kernel_no_resend" \
			"$(get "$s" restart.mode) $(get "$s" restart.reason)" restart
	elif [ "$(get "$s" kernel.io_uring)" = 1 ] && libfuse_uring; then
		assert_equal "off io_uring" \
			"$(get "$s" restart.mode) $(get "$s" restart.reason)" restart
		assert_equal io_uring "$(get "$s" transport)" transport
	else
		assert_equal "on auto" \
			"$(get "$s" restart.mode) $(get "$s" restart.reason)" restart
		assert_equal dev_fuse "$(get "$s" transport)" transport
	fi
	if libfuse_uring; then
		assert_equal "$(get "$s" kernel.io_uring)" "$(get "$s" io_uring.offered)" \
			io_uring.offered
	fi
}

@test "the mount's first log line names the kernel, what it gives and what falls back" {
	need_ovp
	need_init_root
	local s line
	uring_before
	ovp_mount -f
	s=$("$OVERPASS" --stats "$MNT")
	ovp_umount
	uring_after
	line=$(head -n1 "$OVP_LOG")
	echo "# $line" >&3
	assert_equal "$(expected_line "$(get "$s" kernel.fuse_minor)" ok auto auto)" \
		"$line" "first log line"
	# the features refused by option: the kernel's offer is the same
	uring_before
	ovp_mount -f "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" \
		passthrough=off restart=off io_uring=off
	s=$("$OVERPASS" --stats "$MNT")
	ovp_umount
	uring_after
	check_kernel_lines "$s"
	assert_equal "$(expected_line "$(get "$s" kernel.fuse_minor)" disabled_by_option off off)" \
		"$(head -n1 "$OVP_LOG")" "first log line, passthrough=off,restart=off,io_uring=off"
	# restart=on: refused where the kernel cannot resend, said after it
	uring_before
	ovp_mount -f "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=on
	s=$("$OVERPASS" --stats "$MNT")
	ovp_umount
	uring_after
	assert_equal "$(expected_line "$(get "$s" kernel.fuse_minor)" ok on auto)" \
		"$(head -n1 "$OVP_LOG")" "first log line, restart=on"
	if kernel_ge 6.9; then
		assert_equal "on option" "$(get "$s" restart.mode) $(get "$s" restart.reason)" restart
	else
		assert_equal "off kernel_no_resend" \
			"$(get "$s" restart.mode) $(get "$s" restart.reason)" restart
		assert_equal "overpass: restart: off: the kernel cannot resend requests (FUSE_HAS_RESEND, Linux 6.9)" \
			"$(sed -n 2p "$OVP_LOG")" "second log line, restart=on refused"
	fi
}

@test "rootless (unshare -Urm): the kernel offers the same; passthrough unused for want of CAP_SYS_ADMIN" {
	need_binary
	need_fuse
	need_unshare
	echo data >"$LOWER/f"
	uring_before
	run_cmd 0 --timeout 60 unshare -Urm bash -c "
		set -e
		'$OVERPASS' -f -o 'lowerdir=$LOWER,upperdir=$UPPER,workdir=$WORK' '$MNT' </dev/null 2>'$T/log' &
		pid=\$!
		for i in \$(seq 1 100); do mountpoint -q '$MNT' && break; sleep 0.1; done
		cat '$MNT/f' >/dev/null
		'$OVERPASS' --stats '$MNT'
		umount '$MNT'
		wait \$pid
	"
	uring_after
	local s=$output
	show_kernel_lines "$s"
	check_kernel_lines "$s"
	assert_equal "0 no_cap_sys_admin" \
		"$(get "$s" passthrough.active) $(get "$s" passthrough.reason)" passthrough
	assert_equal "$(expected_line "$(get "$s" kernel.fuse_minor)" no_cap_sys_admin auto auto)" \
		"$(head -n1 "$T/log")" "first log line"
}

@test "a lower layer on an idmapped mount: owners as mapped, data through passthrough where the kernel has it, copy-up keeps the mapped owner; the overpass mount itself cannot be idmapped" {
	need_ovp
	need_cmd python3
	local idmount=$BATS_TEST_DIRNAME/tools/idmount.py s
	mkdir -p "$T/disk" "$T/idl" "$T/im"
	head -c 1M /dev/urandom >"$T/disk/f"
	chown 1000:1000 "$T/disk/f"
	run_cmd '?' python3 "$idmount" "$T/disk" "$T/idl" 1000:2000:1
	[ "$status" = 0 ] || skip "no idmapped mount of $(df --output=fstype "$T" | tail -n1) here: $output"
	assert_equal 2000:2000 "$(stat -c %u:%g "$T/idl/f")" "owner through the idmapped mount"
	ovp_mount "lowerdir=$T/idl" "upperdir=$UPPER" "workdir=$WORK" passthrough_min=0
	assert_equal 2000:2000 "$(stat -c %u:%g "$MNT/f")" "owner through overpass"
	cmp "$T/disk/f" "$MNT/f"
	s=$("$OVERPASS" --stats "$MNT")
	if kernel_ge 6.9 && [ "$(get "$s" passthrough.active)" = 1 ]; then
		assert_equal "0 1" "$(get "$s" requests.READ) $(get "$s" passthrough.opens)" \
			"READ requests, passthrough opens"
	else
		assert_ge 1 "$(get "$s" requests.READ)" "READ requests (no passthrough)"
	fi
	echo more >>"$MNT/f"
	assert_equal 2000:2000 "$(stat -c %u:%g "$UPPER/f")" "owner of the upper copy"
	assert_equal 1000:1000 "$(stat -c %u:%g "$T/disk/f")" "the lower file, untouched"
	# overpass does not allow idmapped mounts of itself (FUSE_ALLOW_IDMAP)
	run_cmd 1 python3 "$idmount" "$MNT" "$T/im" 0:1000:65536
	assert_contains "mount_setattr: EINVAL" "$output" "idmapping the overpass mount"
	ovp_umount
	run_cmd 0 umount "$T/idl"
}
