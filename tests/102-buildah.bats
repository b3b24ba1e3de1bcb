#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# Real buildah (Debian's) with overpass as containers-storage's
# mount_program: `buildah bud` of a base image from a root filesystem
# tarball, then of a multi-step Containerfile (write, rm, chmod, deep
# mkdir, hard link, rename of a lower directory, a setuid program), a
# container of the result run as a non-root user, mount, rm, rmi; no
# daemon or mount left.

load engines.bash

teardown() {
	if [ -n "${B:-}" ] && [ -d "$B" ]; then
		CONTAINERS_STORAGE_CONF=$B/conf/storage.conf buildah rm -a >/dev/null 2>&1
		CONTAINERS_STORAGE_CONF=$B/conf/storage.conf buildah rmi -a -f >/dev/null 2>&1
		engine_cleanup "$B"
	fi
	ovp_teardown
}

# Where cgroups are hybrid, runc (crun refuses them); chroot isolation
# otherwise needs nothing more.
buildah_isolation() {
	if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
		echo "--isolation oci"
	else
		echo "--isolation oci --runtime runc"
	fi
}

@test "buildah bud with overpass as mount_program: multi-step build, setuid, run, mount, rm, rmi" {
	need_ovp
	need_init_root
	need_cmd buildah cc
	need_static_busybox
	# storage below a short path of its own: runroot sockets
	B=$(mktemp -d /tmp/ovpb.XXXXXX)
	mk_engine_image "$B"
	mkdir -p "$B/base"
	mv "$B/image.tar" "$B/base/"
	printf '%s\n' 'FROM scratch' 'ADD image.tar /' 'CMD ["/bin/sh"]' >"$B/base/Containerfile"
	write_storage_conf "$B/conf" "$B/graph" "$B/run"
	export CONTAINERS_STORAGE_CONF=$B/conf/storage.conf
	export CONTAINERS_CONF=$B/conf/containers.conf
	local iso
	iso=$(buildah_isolation)
	step buildah bud-base 0 buildah bud -q $iso --network none -t localhost/ovp-base "$B/base"
	write_containerfile "$B/build" localhost/ovp-base
	step buildah bud 0 buildah bud -q $iso --network none -t localhost/ovp-built "$B/build"
	run_cmd 0 buildah from --name w localhost/ovp-built
	step buildah setuid 0 buildah run $iso --network none --user 65534 w -- sh -c "$built_check_cmd"
	assert_equal "$built_check_expect" "$output"
	step buildah mount 0 buildah mount w
	local m=$output
	assert_equal "low
more" "$(cat "$m/opt/renamed/sub/f")"
	assert_equal "4755" "$(stat -c %a "$m/bin/showeuid")"
	run_cmd 0 buildah umount w
	step buildah rm 0 buildah rm w
	step buildah rmi 0 buildah rmi -a
	run_cmd 0 buildah images -q
	assert_equal "" "$output"
	assert_nothing_left "$B"
	rm -rf "$B"
}
