#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# Data never crosses the daemon with FUSE passthrough (the statistics prove
# it); rootless mounts (unshare -Urm) serve data themselves and say why;
# many readers at once; descriptors stay bounded; a lower file open
# through passthrough and then written.

load helpers

# sha FILE: sha256 of a file.
sha() {
	sha256sum "$1" | cut -d' ' -f1
}

# wait_stat MOUNTPOINT KEY VALUE: the statistic reaches VALUE within 5 s
# (RELEASE reaches the daemon asynchronously after close).
wait_stat() {
	local i v
	for i in $(seq 1 50); do
		v=$(stat_value "$1" "$2")
		[ "$v" = "$3" ] && return 0
		sleep 0.1
	done
	echo "# $2 is $v, expected $3" >&2
	"$OVERPASS" --stats "$1" >&2
	return 1
}

MMAP_SHA='
import hashlib, mmap, sys
with open(sys.argv[1], "rb") as f:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    h = hashlib.sha256()
    for off in range(0, len(m), 1 << 24):
        h.update(m[off:off + (1 << 24)])
    m.close()
print(h.hexdigest())
'

# assert_kernel_fallback OP: a kernel without FUSE passthrough (before 6.9):
# the data went through the daemon (OP requests), counted as a fallback
# with the reason, as overpass promises there.
assert_kernel_fallback() {
	assert_equal 0 "$(stat_value "$MNT" passthrough.active)" "passthrough.active"
	assert_equal kernel_unsupported "$(stat_value "$MNT" passthrough.reason)" "passthrough.reason"
	assert_ge 1 "$(stat_value "$MNT" "requests.$1")" "requests.$1"
	assert_ge 1 "$(stat_value "$MNT" fallback.kernel_unsupported)" "fallback.kernel_unsupported"
}

@test "256 MiB read through passthrough: same bytes, no READ in the daemon" {
	need_ovp
	need_init_root
	head -c 256M /dev/urandom >"$LOWER2/big"
	local want
	want=$(sha "$LOWER2/big")
	ovp_mount "lowerdir=$LOWER:$LOWER2"
	run_cmd 0 cmp "$LOWER2/big" "$MNT/big"
	run_cmd 0 python3 -c "$MMAP_SHA" "$MNT/big"
	assert_equal "$want" "$output" "sha256 of an mmap read"
	run_ovp 0 --stats "$MNT"
	if kernel_ge 6.9; then
		assert_equal 1 "$(stat_value "$MNT" passthrough.active)" "passthrough.active"
		assert_equal ok "$(stat_value "$MNT" passthrough.reason)" "passthrough.reason"
		assert_equal 0 "$(stat_value "$MNT" requests.READ)" "requests.READ"
		assert_ge 1 "$(stat_value "$MNT" passthrough.opens)" "passthrough.opens"
		wait_stat "$MNT" passthrough.backing_ids 0
	else
		assert_kernel_fallback READ
	fi
	ovp_umount
	assert_equal "$want" "$(sha "$LOWER2/big")" "the lower file is unchanged"
}

@test "writes through passthrough: new files and copied-up files, no WRITE in the daemon" {
	need_ovp
	need_init_root
	head -c 32M /dev/urandom >"$LOWER/lowfile"
	local lowsha
	lowsha=$(sha "$LOWER/lowfile")
	ovp_mount
	run_cmd 0 dd if=/dev/urandom of="$MNT/new" bs=1M count=64 status=none
	run_cmd 0 cmp "$MNT/new" "$UPPER/new"
	# append to a lower file: copy-up, then the write passes through
	run_cmd 0 dd if=/dev/urandom of="$MNT/lowfile" bs=1M count=8 oflag=append conv=notrunc status=none
	assert_equal $((40 << 20)) "$(stat -c %s "$MNT/lowfile")" "size after append"
	run_cmd 0 cmp "$MNT/lowfile" "$UPPER/lowfile"
	run_cmd 0 cmp -n $((32 << 20)) "$LOWER/lowfile" "$MNT/lowfile"
	# a writable shared mapping of a new file
	run_cmd 0 python3 -c "
import mmap, os, sys
fd = os.open('$MNT/mapped', os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, 1 << 20)
m = mmap.mmap(fd, 1 << 20)
m[:] = b'x' * (1 << 20)
m.flush(); m.close(); os.close(fd)
"
	assert_equal "$(head -c 1M /dev/zero | tr '\0' x | sha256sum)" "$(sha256sum <"$UPPER/mapped")"
	if kernel_ge 6.9; then
		assert_equal 0 "$(stat_value "$MNT" requests.WRITE)" "requests.WRITE"
		assert_equal 0 "$(stat_value "$MNT" requests.READ)" "requests.READ"
		assert_ge 3 "$(stat_value "$MNT" passthrough.opens)" "passthrough.opens"
	else
		assert_kernel_fallback WRITE
	fi
	ovp_umount
	assert_equal "$lowsha" "$(sha "$LOWER/lowfile")" "the lower file is unchanged"
}

@test "writes, through passthrough or not: the kernel asks for security.capability once a file (KILLPRIV_V2), answered without a system call; a capability set later is seen and dropped as on kernel overlayfs" {
	need_init_root
	need_kovl
	need_cmd strace
	local pid m before after calls i opts st
	echo lower >"$LOWER/g"
	kovl_mount
	for opts in "" passthrough=off; do
		rm -rf "$UPPER" "$WORK"
		mkdir "$UPPER" "$WORK"
		ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" $opts
		echo x >"$MNT/f"
		pid=$(worker_of "$OVP_PID")
		[ -n "$pid" ] || pid=$OVP_PID
		before=$(stat_value "$MNT" requests.GETXATTR)
		strace -f -p "$pid" -e trace=getxattr,fgetxattr,lgetxattr \
			-o "$T/xattr.strace" 2>"$T/strace.err" 3>&- &
		st=$!
		for ((i = 0; i < 200; i++)); do
			grep -q attached "$T/strace.err" && break
			sleep 0.05
		done
		# f was made through the mount: known to have none from the
		# start; g, a lower file copied up by the first write, is read
		# once
		run_cmd 0 dd if=/dev/zero of="$MNT/f" bs=4k count=200 conv=notrunc status=none
		run_cmd 0 dd if=/dev/zero of="$MNT/g" bs=4k count=200 conv=notrunc status=none
		kill -INT "$st"
		wait "$st" || true
		after=$(stat_value "$MNT" requests.GETXATTR)
		calls=$(grep -c 'xattr(.*security.capability' "$T/xattr.strace" || true)
		sed 's/^/# strace: /' "$T/xattr.strace" | head -5 >&2
		echo "# $opts: $((after - before)) GETXATTR, $calls xattr system calls for 400 writes" >&2
		# without KILLPRIV_V2 the kernel asked before each write
		# (file_remove_privs), 400 round trips
		[ $((after - before)) -le 2 ]
		# at most the first answer for g reads the disk (an O_PATH fd:
		# fgetxattr, then its /proc/self/fd link)
		[ "$calls" -le 2 ]
		# absent was kept; a capability set through the mount is seen,
		# and the next write drops it
		for m in "$MNT" "$KMNT"; do
			echo x >"$m/h"
			echo x >>"$m/h"
			fcap_v2 "$m/h"
			run_cmd 0 getfattr -n security.capability "$m/h"
			echo y >>"$m/h"
			run_cmd 1 getfattr -n security.capability "$m/h"
		done
		ovp_umount
		run_cmd 1 getfattr -n security.capability "$UPPER/h"
	done
	kovl_umount
	run_cmd 1 getfattr -n security.capability "$KUPPER/h"
}

@test "rootless (unshare -Urm): data served by the daemon, passthrough off with the reason" {
	need_binary
	need_fuse
	need_unshare
	head -c 256M /dev/urandom >"$LOWER2/big"
	head -c 16M /dev/urandom >"$LOWER/small"
	local want
	want=$(sha "$LOWER2/big")
	run_cmd 0 --timeout 180 unshare -Urm bash -c "
		set -e
		'$OVERPASS' -o 'lowerdir=$LOWER:$LOWER2,upperdir=$UPPER,workdir=$WORK' '$MNT' </dev/null
		pid=\$(pgrep -f -- ' $MNT\$' | head -n1)
		[ -n \"\$pid\" ]
		cmp '$LOWER2/big' '$MNT/big'
		echo mmap-sha \$(python3 -c '$MMAP_SHA' '$MNT/big')
		pids=()
		for i in \$(seq 1 50); do timeout 60 cmp '$LOWER/small' '$MNT/small' & pids+=(\$!); done
		for p in \${pids[@]}; do wait \$p; done
		echo written >'$MNT/created'
		'$OVERPASS' --stats '$MNT'
		fusermount3 -u '$MNT' 2>/dev/null || umount '$MNT'
		gone() { ! kill -0 \$pid 2>/dev/null || grep -q '^State:[[:space:]]*[ZX]' /proc/\$pid/status 2>/dev/null; }
		for i in \$(seq 1 100); do gone && break; sleep 0.1; done
		if ! gone; then echo daemon still running; exit 1; fi
		echo daemon-gone
	"
	local stats=$output
	get() { printf '%s\n' "$stats" | awk -v k="$1" '$1 == k {print $2}'; }
	assert_equal "$want" "$(get mmap-sha)" "sha256 of an mmap read"
	assert_equal 0 "$(get passthrough.active)" "passthrough.active"
	assert_equal no_cap_sys_admin "$(get passthrough.reason)" "passthrough.reason"
	assert_ge 52 "$(get fallback.opens)" "fallback.opens"
	assert_ge 52 "$(get fallback.no_cap_sys_admin)" "fallback.no_cap_sys_admin"
	assert_ge 1 "$(get requests.READ)" "requests.READ"
	assert_ge 1 "$(get requests.WRITE)" "requests.WRITE"
	assert_equal 0 "$(get passthrough.opens)" "passthrough.opens"
	assert_contains daemon-gone "$stats"
	assert_equal written "$(cat "$UPPER/created")"
	assert_equal "$want" "$(sha "$LOWER2/big")" "the lower file is unchanged"
}

@test "passthrough=off: data through the daemon, reason disabled_by_option" {
	need_ovp
	head -c 8M /dev/urandom >"$LOWER/f"
	ovp_mount "lowerdir=$LOWER" passthrough=off
	run_cmd 0 cmp "$LOWER/f" "$MNT/f"
	assert_equal 0 "$(stat_value "$MNT" passthrough.active)"
	assert_equal disabled_by_option "$(stat_value "$MNT" passthrough.reason)"
	assert_ge 1 "$(stat_value "$MNT" requests.READ)" "requests.READ"
	assert_ge 1 "$(stat_value "$MNT" fallback.disabled_by_option)" "fallback.disabled_by_option"
	ovp_umount
}

@test "50 processes open and read one file at once" {
	need_ovp
	head -c 32M /dev/urandom >"$LOWER/f"
	ovp_mount "lowerdir=$LOWER"
	local pids=() p i rc=0
	for i in $(seq 1 50); do
		timeout 60 cmp "$LOWER/f" "$MNT/f" 3>&- &
		pids+=($!)
	done
	for p in "${pids[@]}"; do
		wait "$p" || rc=$?
	done
	assert_equal 0 "$rc" "a reader failed or timed out"
	if [ "$(stat_value "$MNT" passthrough.active)" = 1 ]; then
		assert_equal 0 "$(stat_value "$MNT" requests.READ)" "requests.READ"
		assert_ge 50 "$(stat_value "$MNT" passthrough.opens)" "passthrough.opens"
		wait_stat "$MNT" passthrough.backing_ids 0
	fi
	ovp_umount
}

@test "thousands of opens leave the daemon's descriptor count bounded" {
	need_ovp
	local i
	for i in $(seq 1 20); do echo "$i" >"$LOWER/f$i"; done
	ovp_mount
	ls -l "$MNT" >/dev/null
	local before after srv
	srv=$(server_pid)
	before=$(ls "/proc/$srv/fd" | wc -l)
	run_cmd 0 python3 - "$MNT" <<'PY'
import os, sys
m = sys.argv[1]
for r in range(150):
    for i in range(1, 21):
        fd = os.open(os.path.join(m, "f%d" % i), os.O_RDONLY)
        os.read(fd, 10)
        os.close(fd)
# and some writable ones (copy-up once, then the upper file)
for r in range(50):
    fd = os.open(os.path.join(m, "f1"), os.O_RDWR)
    os.close(fd)
PY
	sleep 0.5
	after=$(ls "/proc/$srv/fd" | wc -l)
	echo "# daemon fds: $before before, $after after"
	[ "$after" -le $((before + 20)) ] || { echo "# descriptor leak: $before -> $after" >&2; false; }
	if [ "$(stat_value "$MNT" passthrough.active)" = 1 ]; then
		wait_stat "$MNT" passthrough.backing_ids 0
	fi
	ovp_umount
}

@test "executing a binary from a lower layer through the mount" {
	need_ovp
	cp /bin/true /bin/echo "$LOWER/"
	ovp_mount "lowerdir=$LOWER"
	run_cmd 0 "$MNT/true"
	run_cmd 0 "$MNT/echo" hello
	assert_equal hello "$output"
	ovp_umount
}

@test "hard case: lower file open through passthrough, then written; writable opens never fail" {
	need_ovp
	echo old-data >"$LOWER/f"
	# passed through however small (passthrough_min=0)
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" passthrough_min=0
	exec 7<"$MNT/f"
	run_cmd 0 sh -c "echo new-data >'$MNT/f'"
	assert_equal new-data "$(cat "$MNT/f")"
	# documented (overpass(1)): with passthrough, a descriptor opened
	# before the copy-up keeps reading the lower data until closed; served
	# by the daemon it may see the new data, as on kernel overlayfs
	if [ "$(stat_value "$MNT" passthrough.active)" = 1 ]; then
		assert_equal old-data "$(cat <&7)" "a descriptor opened before copy-up"
	else
		assert_match '^(old|new)-data$' "$(cat <&7)" "a descriptor opened before copy-up"
	fi
	# more writable opens while the old one is still open: none fails
	run_cmd 0 python3 -c "
import os
for i in range(20):
    fd = os.open('$MNT/f', os.O_RDWR)
    os.close(fd)
fd = os.open('$MNT/f', os.O_RDONLY); os.close(fd)
"
	run_cmd 0 python3 -c "
import mmap, os
fd = os.open('$MNT/f', os.O_RDWR)
m = mmap.mmap(fd, 0)
m[0:3] = b'MAP'
m.flush(); m.close(); os.close(fd)
"
	exec 7<&-
	assert_equal MAP-data "$(cat "$MNT/f")"
	assert_equal MAP-data "$(cat "$UPPER/f")"
	assert_equal old-data "$(cat "$LOWER/f")" "the lower layer is untouched"
	if [ "$(stat_value "$MNT" passthrough.active)" = 1 ]; then
		assert_equal 0 "$(stat_value "$MNT" requests.WRITE)"
	fi
	ovp_umount
}

@test "a lower file open read-only, then opened O_RDWR by many processes at once" {
	need_ovp
	head -c 4M /dev/urandom >"$LOWER/f"
	cp "$LOWER/f" "$T/orig"
	ovp_mount
	exec 7<"$MNT/f"
	run_cmd 0 python3 - "$MNT/f" <<'PY'
import os, sys, multiprocessing as mp
def rw(i):
    fd = os.open(sys.argv[1], os.O_RDWR)
    os.pwrite(fd, b"%02d" % i, i * 2)
    os.close(fd)
    return 0
with mp.Pool(20) as p:
    assert p.map(rw, range(40)) == [0] * 40
PY
	exec 7<&-
	run_cmd 0 cmp "$T/orig" "$LOWER/f"
	run_cmd 0 python3 -c "
d = open('$MNT/f', 'rb').read(80)
assert d == b''.join(b'%02d' % i for i in range(40)), d
"
	run_cmd 0 cmp "$MNT/f" "$UPPER/f"
	ovp_umount
}

@test "kernel overlayfs stacked on an overpass mount reads the same data" {
	need_ovp
	need_kovl
	head -c 8M /dev/urandom >"$LOWER/f"
	ovp_mount "lowerdir=$LOWER"
	# an overpass mount as a lower layer of kernel overlayfs (nested
	# containers): the stacking depth must leave room for it
	kovl_mount "lowerdir=$MNT:$LOWER2"
	run_cmd 0 cmp "$LOWER/f" "$KMNT/f"
	kovl_umount
	ovp_umount
}

@test "a lower layer on kernel overlayfs: data right, passthrough or the reason why not" {
	need_ovp
	need_kovl
	mkdir -p "$T/base1" "$T/base2" "$T/ovl"
	head -c 8M /dev/urandom >"$T/base1/f"
	kovl_mount -m "$T/ovl" "lowerdir=$T/base1:$T/base2"
	ovp_mount "lowerdir=$T/ovl"
	run_cmd 0 cmp "$T/base1/f" "$MNT/f"
	if [ "$(stat_value "$MNT" passthrough.active)" = 1 ] &&
		[ "$(stat_value "$MNT" passthrough.opens)" -ge 1 ]; then
		assert_equal 0 "$(stat_value "$MNT" requests.READ)"
	else
		run_ovp 0 --stats "$MNT"
		assert_match 'fallback\.(stacking_depth|no_cap_sys_admin|kernel_unsupported|register_failed) [1-9]' \
			"$output" "a fallback counted with its reason"
	fi
	ovp_umount
	kovl_umount "$T/ovl"
}

# small_file_sequence MNT: what a reader sees of the small file s while it
# is read, rewritten in place through a writable open (then again with its
# mtime put back, which no attribute check can notice), read again, and
# read through a descriptor held open while another process appends to it.
small_file_sequence() {
	local m=$1
	cat "$m/s"
	# same size, in place: only the data changes
	printf 'NEW\n' | dd of="$m/s" conv=notrunc status=none
	cat "$m/s"
	# in place again, its mtime put back: size and mtime as before
	python3 -c '
import os, sys
st = os.stat(sys.argv[1])
fd = os.open(sys.argv[1], os.O_WRONLY)
os.write(fd, b"XYZ\n")
os.close(fd)
os.utime(sys.argv[1], ns=(st.st_atime_ns, st.st_mtime_ns))' "$m/s"
	sleep 0.5 # RELEASE of the writer reaches the daemon after close
	cat "$m/s"
	exec 8<"$m/s"
	printf 'more\n' >>"$m/s"
	cat <&8
	exec 8<&-
	cat "$m/s"
}

@test "small read-only files use the page cache: no READ when warm, no GETATTR after a read" {
	need_ovp
	need_passthrough
	printf 'small\n' >"$LOWER/s"
	head -c 1M /dev/urandom >"$LOWER/b"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK"
	[ "$(stat_value "$MNT" passthrough.active)" = 1 ] || { ovp_umount; skip "no passthrough here"; }
	run_cmd 0 cat "$MNT/s"
	stat "$MNT/s" >/dev/null
	local reads getattrs
	reads=$(stat_value "$MNT" requests.READ)
	getattrs=$(stat_value "$MNT" requests.GETATTR)
	# the first open handed the kernel the data
	assert_equal 0 "$reads" "READ after the first read"
	assert_equal 1 "$(stat_value "$MNT" fallback.prefills)" "fallback.prefills"
	for i in 1 2 3; do
		assert_equal small "$(cat "$MNT/s")"
		stat "$MNT/s" >/dev/null
	done
	assert_equal "$reads" "$(stat_value "$MNT" requests.READ)" "READ after warm reads"
	assert_equal "$getattrs" "$(stat_value "$MNT" requests.GETATTR)" "GETATTR after warm reads and stat"
	assert_ge 4 "$(stat_value "$MNT" fallback.small_file)" "fallback.small_file"
	# a large file still goes through passthrough, its data never here
	run_cmd 0 cmp "$LOWER/b" "$MNT/b"
	assert_equal "$reads" "$(stat_value "$MNT" requests.READ)" "READ after the large file"
	assert_ge 1 "$(stat_value "$MNT" passthrough.opens)" "passthrough.opens"
	ovp_umount
	# passthrough_min=0 passes every open through
	ovp_mount "lowerdir=$LOWER" passthrough_min=0
	run_cmd 0 cat "$MNT/s"
	assert_equal 0 "$(stat_value "$MNT" requests.READ)" "READ with passthrough_min=0"
	assert_equal 0 "$(stat_value "$MNT" fallback.opens)" "fallback.opens with passthrough_min=0"
	ovp_umount
}

# small_file_vs_kernel [OPTION...]: small_file_sequence of a lower file
# through kernel overlayfs, then through overpass mounted with OPTIONs
# (left mounted): the same output.
small_file_vs_kernel() {
	printf 'old\n' >"$LOWER/s"
	kovl_mount
	small_file_sequence "$KMNT" >"$T/kernel.out"
	kovl_umount
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" "$@"
	small_file_sequence "$MNT" >"$T/ovp.out"
	run_cmd 0 diff -u "$T/kernel.out" "$T/ovp.out"
}

@test "a small file written through passthrough, then read from the page cache: as kernel overlayfs" {
	need_ovp
	need_kovl
	small_file_vs_kernel
	assert_equal "XYZ
more" "$(cat "$UPPER/s")" "the upper file"
	ovp_umount
}

# prefill_files DIR: small files of awkward sizes (empty, around a page,
# just below passthrough_min's default) and one of exactly 128 KiB.
prefill_files() {
	local n
	for n in 1 4095 4096 4097 5000 131071; do
		head -c "$n" /dev/urandom >"$1/f$n"
	done
	: >"$1/empty"
	head -c 131072 /dev/urandom >"$1/at-min"
}

@test "a small file read cold: its first open hands the kernel the data, no READ and no GETATTR, with and without passthrough" {
	need_ovp
	prefill_files "$LOWER"
	local opts n getattrs now
	for opts in "" passthrough=off passthrough=off,writeback=1; do
		ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" $opts
		ls -l "$MNT" >/dev/null
		getattrs=$(stat_value "$MNT" requests.GETATTR)
		for n in 1 4095 4096 4097 5000 131071; do
			run_cmd 0 cmp "$LOWER/f$n" "$MNT/f$n"
			assert_equal "$n" "$(stat -c %s "$MNT/f$n")" "size of f$n ($opts)"
			run_cmd 0 cmp "$LOWER/f$n" "$MNT/f$n"
		done
		assert_equal "" "$(cat "$MNT/empty")"
		assert_equal 0 "$(stat_value "$MNT" requests.READ)" "READ ($opts)"
		now=$(stat_value "$MNT" requests.GETATTR)
		if [ "$(stat_value "$MNT" writeback.active)" = 0 ]; then
			assert_equal "$getattrs" "$now" "GETATTR ($opts)"
		else
			# under the writeback cache each close makes the kernel
			# forget st_blocks: the fstat after the next open asks
			# again (at most one GETATTR for each later open)
			assert_ge "$now" $((getattrs + 7)) "GETATTR ($opts, writeback)"
		fi
		assert_equal 6 "$(stat_value "$MNT" fallback.prefills)" "fallback.prefills ($opts)"
		# passthrough_min itself is not below passthrough_min
		run_cmd 0 cmp "$LOWER/at-min" "$MNT/at-min"
		assert_equal 6 "$(stat_value "$MNT" fallback.prefills)" "fallback.prefills after at-min ($opts)"
		ovp_umount
	done
	# strictatime: every read reaches the real file; passthrough_min=0:
	# nothing handed over
	for opts in strictatime passthrough_min=0,passthrough=off; do
		ovp_mount "lowerdir=$LOWER" "$opts"
		run_cmd 0 cmp "$LOWER/f5000" "$MNT/f5000"
		assert_equal 0 "$(stat_value "$MNT" fallback.prefills)" "fallback.prefills ($opts)"
		ovp_umount
	done
}

@test "rootless (unshare -Urm): a small file read cold makes no READ" {
	need_binary
	need_fuse
	need_unshare
	prefill_files "$LOWER"
	run_cmd 0 --timeout 60 unshare -Urm bash -c "
		set -e
		'$OVERPASS' -o 'lowerdir=$LOWER,upperdir=$UPPER,workdir=$WORK' '$MNT' </dev/null
		pid=\$(pgrep -f -- ' $MNT\$' | head -n1)
		[ -n \"\$pid\" ]
		for n in 1 4095 4096 4097 5000 131071; do cmp '$LOWER/f'\$n '$MNT/f'\$n; done
		'$OVERPASS' --stats '$MNT'
		fusermount3 -u '$MNT' 2>/dev/null || umount '$MNT'
		# the daemon has ended (and, under ASan, checked for leaks)
		gone() { ! kill -0 \$pid 2>/dev/null || grep -q '^State:[[:space:]]*[ZX]' /proc/\$pid/status 2>/dev/null; }
		for i in \$(seq 1 100); do gone && break; sleep 0.1; done
		if ! gone; then echo daemon still running; exit 1; fi
	"
	local stats=$output
	get() { printf '%s\n' "$stats" | awk -v k="$1" '$1 == k {print $2}'; }
	assert_equal 0 "$(get requests.READ)" "requests.READ"
	assert_equal 6 "$(get fallback.prefills)" "fallback.prefills"
}

@test "passthrough=off: a small file read, rewritten, read again: as kernel overlayfs" {
	need_ovp
	need_kovl
	small_file_vs_kernel passthrough=off
	assert_ge 1 "$(stat_value "$MNT" fallback.prefills)" "fallback.prefills"
	ovp_umount
}
