#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# Real Docker (Debian's docker.io) with its fuse-overlayfs storage driver
# running overpass: dockerd started privately (data and exec roots and
# socket in the test's directory, no network, no iptables), with a PATH
# where "fuse-overlayfs" is overpass, as doc/containers.md sets it up.
# Import, run, diff, commit, build with RUN steps (a setuid program run
# by a non-root user), cp, rm, rmi; no daemon or mount left.

load engines.bash

teardown() {
	if [ -n "${D:-}" ] && [ -d "$D" ]; then
		[ -f "$D/docker.pid" ] && kill -TERM "$(cat "$D/docker.pid")" 2>/dev/null
		[ -f "$D/docker.pid" ] && wait_gone "$(cat "$D/docker.pid")" 20
		engine_cleanup "$D"
	fi
	ovp_teardown
}

need_docker() {
	need_ovp
	need_init_root
	need_cmd dockerd containerd runc cc
	[ -x /usr/bin/docker ] || skip "needs the docker client (docker.io)"
	need_static_busybox
}

# dockerd on its own: everything below $D (a short path: unix sockets),
# the compatibility name first in its PATH.
start_dockerd() {
	D=$(mktemp -d /tmp/ovpd.XXXXXX)
	mkdir -p "$D/bin"
	ln -s "$(readlink -f "$(mount_program)")" "$D/bin/fuse-overlayfs"
	DK="/usr/bin/docker -H unix://$D/docker.sock"
	echo "\$ dockerd (log: $D/dockerd.log)"
	PATH=$D/bin:/usr/sbin:/usr/bin:/sbin:/bin setsid dockerd \
		--data-root "$D/data" --exec-root "$D/exec" \
		--pidfile "$D/docker.pid" -H "unix://$D/docker.sock" \
		--bridge=none --iptables=false --ip-masq=false --ip6tables=false \
		--userland-proxy=false --storage-driver fuse-overlayfs \
		--exec-opt native.cgroupdriver=cgroupfs \
		</dev/null >"$D/dockerd.log" 2>&1 3>&- &
	local i
	for ((i = 0; i < 120; i++)); do
		$DK version >/dev/null 2>&1 && return 0
		sleep 0.25
	done
	tail -n 30 "$D/dockerd.log"
	echo "# dockerd did not answer within 30 s" >&2
	return 1
}

stop_dockerd() {
	local pid
	pid=$(cat "$D/docker.pid")
	kill -TERM "$pid"
	wait_gone "$pid" 30 || { echo "# dockerd still running" >&2; return 1; }
}

@test "docker (fuse-overlayfs driver running overpass): import, run, diff, commit, build with setuid, cp, rm, rmi" {
	need_docker
	mk_engine_image "$T"
	start_dockerd
	run_cmd 0 $DK info --format '{{.Driver}}'
	assert_equal fuse-overlayfs "$output"
	step docker import 0 $DK import "$T/image.tar" localhost/ovp-test
	step docker run 0 $DK run --name c1 --network none localhost/ovp-test sh -c \
		'cat /etc/motd; echo new >/etc/new; rm /etc/motd; mv /opt/lowdir /opt/moved; cat /opt/moved/sub/f'
	assert_equal "hello from the image
low" "$output"
	# the container's daemon runs the mount program under test
	step docker diff 0 $DK diff c1
	assert_equal "A /etc/new
A /opt/moved
A /opt/moved/sub
A /opt/moved/sub/f
C /etc
C /opt
D /etc/motd
D /opt/lowdir" "$(echo "$output" | LC_ALL=C sort)"
	step docker commit 0 $DK commit c1 localhost/ovp-test2
	step docker run-committed 0 $DK run --rm --network none localhost/ovp-test2 sh -c \
		'cat /etc/new /opt/moved/sub/f; ls /opt; cat /etc/motd 2>&1; true'
	assert_equal "new
low
moved
cat: can't open '/etc/motd': No such file or directory" "$output"
	write_containerfile "$T/build" localhost/ovp-test
	step docker build 0 env DOCKER_BUILDKIT=0 $DK build -q --network none \
		-f "$T/build/Containerfile" -t localhost/ovp-built "$T/build"
	# a setuid-root program run by uid 65534 gets euid 0: the mount is suid
	step docker setuid 0 $DK run --rm --user 65534 --network none localhost/ovp-built \
		sh -c "$built_check_cmd"
	assert_equal "$built_check_expect" "$output"
	# cp out of and into a container
	run_cmd 0 $DK create --name c2 --network none localhost/ovp-built cat /tmp/in /s1link
	echo copied-in >"$T/in"
	step docker cp-in 0 $DK cp "$T/in" c2:/tmp/in
	step docker cp-out 0 $DK cp c2:/s1 "$T/s1.out"
	assert_equal step1 "$(cat "$T/s1.out")"
	step docker start 0 $DK start -a c2
	assert_equal "copied-in
step1" "$output"
	step docker rm 0 $DK rm -f c1 c2
	step docker rmi 0 $DK rmi localhost/ovp-built localhost/ovp-test2 localhost/ovp-test
	run_cmd 0 $DK images -q
	assert_equal "" "$output"
	run_cmd 0 $DK ps -aq
	assert_equal "" "$output"
	stop_dockerd
	assert_nothing_left "$D"
	rm -rf "$D"
}
