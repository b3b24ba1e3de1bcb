#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# Real podman with overpass as containers-storage's mount_program, as root
# and as a rootless user: import a locally built image, run containers that
# read, write and delete lower files, diff, commit, and build.

load helpers.bash

teardown() {
	local m
	if [ -n "${U:-}" ]; then
		end_user_procs ovptest || true
	fi
	# the rootless test's directory lives outside $T
	if [ -n "${U:-}" ] && [ -d "$U" ]; then
		cd /
		for m in $(mounts_below "$U"); do
			fusermount3 -u "$m" 2>/dev/null || umount -l "$m"
		done
		rm -rf "$U"
	fi
	ovp_teardown
}

# The podman command line for this machine.  A sandbox whose cgroups are
# hybrid (v1 controllers plus an empty v2) makes crun refuse to start
# containers: runc with cgroupfs works there.
podman_args() {
	if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
		echo ""
	else
		echo "--runtime runc --cgroup-manager cgroupfs"
	fi
}

need_podman() {
	need_ovp
	need_cmd podman
	[ -x /bin/busybox ] || skip "busybox-static is not installed"
	file -L /bin/busybox 2>/dev/null | grep -q "statically linked" ||
		ldd /bin/busybox 2>&1 | grep -q "not a dynamic" ||
		skip "/bin/busybox is not static"
	if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
		need_cmd runc
	fi
}

# write_config DIR GRAPHROOT RUNROOT: storage.conf with overpass as the
# mount program, and containers.conf without default ulimits (setting the
# containers' 1048576 open files needs CAP_SYS_RESOURCE, which CI may lack)
write_config() {
	mkdir -p "$1"
	cat >"$1/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$2"
runroot = "$3"
[storage.options.overlay]
mount_program = "$OVERPASS"
EOF
	printf '[containers]\ndefault_ulimits = []\n' >"$1/containers.conf"
}

# mk_image_tar TAR: a busybox root filesystem with /etc/motd
mk_image_tar() {
	local r=$T/rootfs c
	mkdir -p "$r/bin" "$r/etc" "$r/tmp"
	cp /bin/busybox "$r/bin/"
	for c in sh ls cat echo rm mkdir touch chmod stat id tail; do
		ln -s busybox "$r/bin/$c"
	done
	echo "root:x:0:0:root:/root:/bin/sh" >"$r/etc/passwd"
	echo "hello from the image" >"$r/etc/motd"
	tar -C "$r" -cf "$1" .
	chmod 644 "$1"
}

# podman_flow DIR RUNAS...: the whole flow, with "RUNAS podman ..." (RUNAS
# may be empty), the image in DIR/image.tar and DIR/build for podman build;
# outputs checked as they come
podman_flow() {
	local D=$1
	shift
	local P="$* podman $(podman_args)"
	run_cmd 0 $P import -q "$D/image.tar" localhost/ovp-test
	run_cmd 0 $P run --name c1 --network none localhost/ovp-test sh -c \
		'cat /etc/motd; echo new >/etc/new; rm /etc/motd; echo appended >>/etc/passwd; ls /etc'
	assert_contains "hello from the image" "$output"
	assert_contains "new" "$output"
	run_cmd 0 $P diff c1
	assert_equal "A /etc/new
C /etc
C /etc/passwd
D /etc/motd" "$(echo "$output" | grep -v '^$' | LC_ALL=C sort)"
	run_cmd 0 $P commit -q c1 localhost/ovp-test2
	run_cmd 0 $P run --rm --network none localhost/ovp-test2 sh -c \
		'cat /etc/new; tail -n 1 /etc/passwd; cat /etc/motd 2>&1; true'
	assert_equal "new
appended
cat: can't open '/etc/motd': No such file or directory" "$output"
	printf '%s\n' 'FROM localhost/ovp-test' 'RUN echo step1 >/s1' \
		'RUN rm /etc/motd && mkdir /d && echo x >/d/x' \
		'RUN cat /s1 /d/x >/both && chmod 600 /both' >"$D/build/Containerfile"
	run_cmd 0 $P build -q -t localhost/ovp-test3 "$D/build"
	run_cmd 0 $P run --rm --network none localhost/ovp-test3 sh -c \
		'cat /both; stat -c %a /both; ls /etc/motd 2>&1; true'
	assert_equal "step1
x
600
ls: /etc/motd: No such file or directory" "$output"
	run_cmd 0 $P rm -a -f
	run_cmd 0 $P rmi -a -f
}

@test "podman as root with overpass as mount_program: run, diff, commit, build" {
	need_podman
	need_init_root
	mkdir -p "$T/build"
	mk_image_tar "$T/image.tar"
	write_config "$T/conf" "$T/graph" "$T/run"
	export CONTAINERS_STORAGE_CONF=$T/conf/storage.conf
	export CONTAINERS_CONF=$T/conf/containers.conf
	podman_flow "$T"
	run_cmd 0 podman $(podman_args) system reset -f
	# podman started the daemons; none may be left
	assert_equal "" "$(pgrep -f -- "upperdir=$T/" || true)" "overpass daemons left"
}

@test "rootless podman (a real non-root user) with overpass: run, diff, commit, build" {
	need_podman
	need_root
	need_cmd newuidmap
	local u=ovptest home
	if ! id "$u" >/dev/null 2>&1; then
		run_cmd 0 useradd -m -s /bin/sh "$u"
	fi
	grep -q "^$u:" /etc/subuid || echo "$u:300000:65536" >>/etc/subuid
	grep -q "^$u:" /etc/subgid || echo "$u:300000:65536" >>/etc/subgid
	end_user_procs "$u"
	home=$(getent passwd "$u" | cut -d: -f6)
	# the user's own directory (the test's is root's alone)
	U=$(mktemp -d /tmp/ovp-podman.XXXXXX)
	chmod 755 "$U"
	mkdir -p "$U/build"
	mk_image_tar "$U/image.tar"
	local ovp
	ovp=$(overpass_for_user "$U")
	local OVERPASS=$ovp
	write_config "$U/conf" "$U/graph" "$U/run"
	chown -R "$u:" "$U"
	# podman goes back to its working directory in the user namespace
	cd "$U"
	local R="runuser -u $u -- env HOME=$home XDG_RUNTIME_DIR=$U/xdg CONTAINERS_STORAGE_CONF=$U/conf/storage.conf CONTAINERS_CONF=$U/conf/containers.conf"
	runuser -u "$u" -- mkdir -m 700 "$U/xdg"
	podman_flow "$U" $R
	# the daemon ran rootless: no passthrough, data through the daemon
	run_cmd 0 $R podman $(podman_args) system reset -f
	assert_equal "" "$(pgrep -f -- "upperdir=$U/" || true)" "overpass daemons left"
	end_user_procs "$u"
	cd /
	rm -rf "$U"
}
