#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# Data never crosses the daemon with passthrough; rootless mounts serve it
# themselves; a lower file open through passthrough and then written.

load helpers

@test "reading 256 MiB causes no READ in the daemon and gives the same bytes" {
	need_root
	head -c 256M /dev/urandom > "$T/l2/big"
	ovp_mount "lowerdir=$T/l1:$T/l2"
	cmp "$T/l2/big" "$T/m/big"
	python3 -c "
import mmap, sys
with open('$T/m/big', 'rb') as f, open('$T/l2/big', 'rb') as g:
    m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    assert m[:1 << 20] == g.read(1 << 20) and m[-4096:] == (g.seek(-4096, 2), g.read())[1]
"
	assert_equal 1 "$(stat_value "$T/m" passthrough.active)"
	assert_equal 0 "$(stat_value "$T/m" requests.READ)"
	[ "$(stat_value "$T/m" passthrough.opens)" -ge 1 ]
	assert_equal 0 "$(stat_value "$T/m" passthrough.backing_ids)" "closed on last release"
	ovp_umount
}

@test "rootless (unshare -Urm): data through the daemon, and the reason" {
	need_root
	head -c 64M /dev/urandom > "$T/l2/big"
	chmod -R a+rwX "$T"
	run_cmd -0 unshare -Urm bash -c "
		set -e
		'$OVERPASS' -o lowerdir=$T/l1:$T/l2,upperdir=$T/u,workdir=$T/w $T/m
		cmp $T/l2/big $T/m/big
		echo new > $T/m/created
		'$OVERPASS' --stats $T/m
		fusermount3 -u $T/m 2>/dev/null || umount $T/m
	"
	[[ "$output" == *"passthrough.active 0"* ]]
	[[ "$output" == *"passthrough.reason no_cap_sys_admin"* ]]
	[[ "$output" == *"fallback.no_cap_sys_admin"* ]]
	reads=$(printf '%s\n' "$output" | awk '$1 == "requests.READ" {print $2}')
	[ "$reads" -gt 0 ]
	assert_equal new "$(cat "$T/u/created")"
}

@test "50 processes read one file at once" {
	need_root
	head -c 8M /dev/urandom > "$T/l1/f"
	ovp_mount "lowerdir=$T/l1"
	for i in $(seq 1 50); do cmp "$T/l1/f" "$T/m/f" & done
	wait
	assert_equal 0 "$(stat_value "$T/m" requests.READ)"
	ovp_umount
}

@test "hard case: lower file open through passthrough, then written and mmapped" {
	need_root
	echo old-data > "$T/l1/f"
	ovp_mount "lowerdir=$T/l1,upperdir=$T/u,workdir=$T/w"
	exec 7< "$T/m/f"
	run_cmd -0 sh -c "echo new-data > '$T/m/f'"
	assert_equal new-data "$(cat "$T/m/f")"
	assert_equal old-data "$(cat <&7)" "a descriptor opened before copy-up"
	python3 -c "
import mmap, os
fd = os.open('$T/m/f', os.O_RDWR)
m = mmap.mmap(fd, 0)
m[0:3] = b'MAP'
m.flush(); m.close(); os.close(fd)
"
	exec 7<&-
	assert_equal MAP-data "$(cat "$T/m/f")"
	assert_equal MAP-data "$(cat "$T/u/f")"
	assert_equal old-data "$(cat "$T/l1/f")" "the lower layer is untouched"
	assert_equal 0 "$(stat_value "$T/m" requests.WRITE)"
	ovp_umount
}
