#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# Mounting: layer counts, read-only mounts, the helper forms, and every
# kind of bad input refused before anything is mounted.

load helpers

@test "--version and --help exit 0" {
	run_cmd -0 "$OVERPASS" --version
	[[ "$output" == overpass* ]]
	run_cmd -0 "$OVERPASS" --help
	[[ "$output" == *lowerdir* ]]
}

@test "mount with 1, 2 and 5 lower layers, with and without an upper" {
	need_root
	for n in 1 2 5; do
		lowers=""
		for i in $(seq 1 $n); do
			mkdir -p "$T/L$n.$i"
			echo "layer $i" > "$T/L$n.$i/f$i"
			echo "top $i" > "$T/L$n.$i/shared"
			lowers="${lowers:+$lowers:}$T/L$n.$i"
		done
		for upper in ",upperdir=$T/u,workdir=$T/w" ""; do
			ovp_mount "lowerdir=$lowers$upper"
			for i in $(seq 1 $n); do
				assert_equal "layer $i" "$(cat "$T/m/f$i")"
			done
			assert_equal "top 1" "$(cat "$T/m/shared")" "leftmost lowerdir is topmost"
			assert_equal "$((n + 1))" "$(ls "$T/m" | wc -l)"
			ovp_umount
		done
	done
}

@test "without upperdir the mount is read-only" {
	need_root
	echo a > "$T/l1/a"
	ovp_mount "lowerdir=$T/l1"
	run_cmd touch "$T/m/new"
	[ "$status" -ne 0 ]
	[[ "$output" == *"Read-only file system"* ]]
	run_cmd sh -c "echo x >> '$T/m/a'"
	[[ "$output" == *"Read-only file system"* ]]
	assert_equal a "$(cat "$T/l1/a")"
	grep -q " $T/m fuse.overpass ro," /proc/self/mounts
	ovp_umount
}

@test "mount.fuse helper form: SOURCE MOUNTPOINT -o opts, and mount(8)" {
	need_root
	echo hello > "$T/l1/f"
	run_cmd -0 "$OVERPASS" overpass "$T/m" -o "lowerdir=$T/l1,upperdir=$T/u,workdir=$T/w,rw,dev,suid"
	OVP_PIDS+=("$(daemon_pid "$T/m")")
	assert_equal hello "$(cat "$T/m/f")"
	fusermount3 -u "$T/m"
	# mount(8) runs helpers with a clean PATH: name the program in the
	# source ("prog#source"), which mount.fuse3 accepts for -t fuse
	run_cmd -0 mount -t fuse "$OVERPASS#overpass" "$T/m" -o "lowerdir=$T/l1"
	OVP_PIDS+=("$(pgrep -f -- "overpass.*$T/m" | head -n1)")
	assert_equal hello "$(cat "$T/m/f")"
	grep -q " $T/m fuse.overpass " /proc/self/mounts
	run_cmd -0 umount "$T/m"
}

# bad_mount EXPECTED-SUBSTRING OPTS: refused with exit 1, one line, no mount.
bad_mount() {
	run_cmd -1 "$OVERPASS" -o "$2" "$T/m"
	[[ "$output" == *"$1"* ]] || { echo "message lacks '$1'"; return 1; }
	assert_equal 1 "$(printf '%s\n' "$output" | wc -l)" "one line"
	! grep -q " $T/m " /proc/self/mounts
}

@test "bad options and layers are refused with one clear line and no mount" {
	mkdir -p "$T/u/inner" "$T/file-dir"
	touch "$T/afile"
	bad_mount "unknown option" "lowerdir=$T/l1,bogus"
	bad_mount "lowerdir" "upperdir=$T/u,workdir=$T/w"
	bad_mount "workdir" "lowerdir=$T/l1,upperdir=$T/u"
	bad_mount "upperdir" "lowerdir=$T/l1,workdir=$T/w"
	bad_mount "$T/missing" "lowerdir=$T/missing"
	bad_mount "$T/afile" "lowerdir=$T/afile"
	bad_mount "$T/missing" "lowerdir=$T/l1,upperdir=$T/missing,workdir=$T/w"
	bad_mount "$T/missing" "lowerdir=$T/l1,upperdir=$T/u,workdir=$T/missing"
	bad_mount "given twice" "lowerdir=$T/l1:$T/l1"
	bad_mount "overlaps" "lowerdir=$T/u/inner,upperdir=$T/u,workdir=$T/w"
	bad_mount "overlaps" "lowerdir=$T,upperdir=$T/u,workdir=$T/w"
	bad_mount "must not contain" "lowerdir=$T/l1,upperdir=$T/u,workdir=$T/u/inner"
	bad_mount "uidmapping" "lowerdir=$T/l1,uidmapping=0:1000"
	bad_mount "gidmapping" "lowerdir=$T/l1,gidmapping=a:b:c"
	bad_mount "timeout" "lowerdir=$T/l1,timeout=soon"
	bad_mount "passthrough" "lowerdir=$T/l1,passthrough=maybe"
	run_cmd -1 "$OVERPASS" -o "lowerdir=$T/l1" "$T/no-such-mountpoint"
	[[ "$output" == *"no-such-mountpoint"* ]]
	run_cmd -1 "$OVERPASS" -o "lowerdir=$T/l1" "$T/afile"
	[[ "$output" == *"Not a directory"* ]]
}

@test "workdir on another filesystem than upperdir is refused" {
	need_root
	mkdir -p "$T/tmpfs"
	mount -t tmpfs tmpfs "$T/tmpfs"
	mkdir "$T/tmpfs/w"
	run_cmd -1 "$OVERPASS" -o "lowerdir=$T/l1,upperdir=$T/u,workdir=$T/tmpfs/w" "$T/m"
	[[ "$output" == *"not on the same filesystem"* ]]
	! grep -q " $T/m " /proc/self/mounts
	umount "$T/tmpfs"
}

@test "fuse-overlayfs options are accepted" {
	need_root
	echo a > "$T/l1/a"
	ovp_mount "lowerdir=$T/l1,upperdir=$T/u,workdir=$T/w,squash_to_root,static_nlink,noacl,xino=auto,ino32_t,timeout=5,threaded=1,fsync=0,volatile,xattr_permissions=0,context=system_u:object_r:container_file_t:s0,redirect_dir=on,noatime,nodev,nosuid"
	assert_equal a "$(cat "$T/m/a")"
	ovp_umount
}
