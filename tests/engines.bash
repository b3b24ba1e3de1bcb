# SPDX-License-Identifier: GPL-2.0-or-later
# Shared by the container engine suites (101-docker, 102-buildah,
# 103-debian): the mount program under test, a small image with a setuid
# probe, and a log of each step's result.
#
# OVP_MOUNT_PROGRAM picks the mount program the engines run (default: the
# overpass under test); set it to fuse-overlayfs's path to run the same
# steps on fuse-overlayfs.  With OVP_ENGINE_LOG=FILE each step appends
# "ENGINE STEP ok|FAIL" to FILE (the comparison table of doc/containers.md).

load helpers.bash

mount_program() {
	echo "${OVP_MOUNT_PROGRAM:-$OVERPASS}"
}

# step ENGINE STEP [EXPECT] CMD...: run_cmd, and log the outcome.
step() {
	local engine=$1 name=$2 rc=0
	shift 2
	run_cmd "$@" || rc=1
	if [ -n "${OVP_ENGINE_LOG:-}" ]; then
		echo "$engine $name $([ "$rc" = 0 ] && echo ok || echo FAIL)" >>"$OVP_ENGINE_LOG"
	fi
	return "$rc"
}

need_static_busybox() {
	[ -x /bin/busybox ] || skip "busybox-static is not installed"
	file -L /bin/busybox 2>/dev/null | grep -q "statically linked" ||
		ldd /bin/busybox 2>&1 | grep -q "not a dynamic" ||
		skip "/bin/busybox is not static"
}

# mk_engine_image DIR: DIR/image.tar, a busybox root filesystem with
# /etc/motd, a lower directory to rename (/opt/lowdir/sub/f) and
# /bin/showeuid, a static program printing its real and effective uid
# (0755 here; the builds make it setuid root)
mk_engine_image() {
	local r=$1/rootfs c
	mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/opt/lowdir/sub"
	cp /bin/busybox "$r/bin/"
	for c in sh ls cat echo rm mkdir touch chmod chown stat id tail mv ln \
		find true sleep; do
		ln -s busybox "$r/bin/$c"
	done
	printf '%s\n' '#include <stdio.h>' '#include <unistd.h>' \
		'int main(void) { printf("uid=%d euid=%d\n", (int)getuid(), (int)geteuid()); return 0; }' \
		>"$1/showeuid.c"
	cc -static -O2 -o "$r/bin/showeuid" "$1/showeuid.c" ||
		skip "cannot build a static program (cc -static)"
	chmod 755 "$r/bin/showeuid"
	echo "root:x:0:0:root:/root:/bin/sh" >"$r/etc/passwd"
	echo "nobody:x:65534:65534:nobody:/:/bin/sh" >>"$r/etc/passwd"
	echo "hello from the image" >"$r/etc/motd"
	echo low >"$r/opt/lowdir/sub/f"
	tar --numeric-owner -C "$r" -cf "$1/image.tar" .
	chmod 644 "$1/image.tar"
	rm -rf "$r"
}

# The Containerfile every engine builds on that image: RUN steps that
# write, remove, chmod, make deep directories, hard links, rename a lower
# directory, and make a setuid-root program.
write_containerfile() { # DIR BASE-IMAGE
	mkdir -p "$1"
	printf '%s\n' "FROM $2" \
		'RUN echo step1 >/s1 && mkdir -p /a/b/c/d/e/f/g/h && echo deep >/a/b/c/d/e/f/g/h/x' \
		'RUN rm /etc/motd && ln /s1 /s1link && chmod 640 /s1' \
		'RUN mv /opt/lowdir /opt/renamed && echo more >>/opt/renamed/sub/f' \
		'RUN chown 0:0 /bin/showeuid && chmod 4755 /bin/showeuid' \
		>"$1/Containerfile"
}

# What a container of the built image shows, run as uid 65534.
built_check_cmd='/bin/showeuid; cat /opt/renamed/sub/f /a/b/c/d/e/f/g/h/x; stat -c "%h %a" /s1; ls /opt; ls /etc/motd 2>&1; true'
built_check_expect="uid=65534 euid=0
low
more
deep
2 640
renamed
ls: /etc/motd: No such file or directory"

# The podman/buildah command-line for this machine: a sandbox whose
# cgroups are hybrid makes crun refuse to start containers.
engine_runtime_args() {
	if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
		echo ""
	else
		echo "--runtime runc --cgroup-manager cgroupfs"
	fi
}

# write_storage_conf DIR GRAPHROOT RUNROOT [MOUNTOPT]: storage.conf naming
# the mount program (and with MOUNTOPT, the options containers-storage adds
# to the program's -o), and containers.conf without default ulimits
write_storage_conf() {
	mkdir -p "$1"
	cat >"$1/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$2"
runroot = "$3"
[storage.options.overlay]
mount_program = "$(mount_program)"
EOF
	if [ -n "${4:-}" ]; then
		echo "mountopt = \"$4\"" >>"$1/storage.conf"
	fi
	printf '[containers]\ndefault_ulimits = []\n' >"$1/containers.conf"
}

# engine_cleanup DIR: unmount whatever is left below DIR, end every process
# with DIR on its command line, then remove DIR.
engine_cleanup() {
	local d=$1 m p
	[ -n "$d" ] && [ -d "$d" ] || return 0
	cd /
	for p in $(pgrep -f -- "$(re_escape "$d/")" 2>/dev/null); do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $(pgrep -f -- "$(re_escape "$d/")" 2>/dev/null); do
		wait_gone "$p" 5 || kill -KILL "$p" 2>/dev/null || true
	done
	for m in $(mounts_below "$d"); do
		fusermount3 -u "$m" 2>/dev/null || umount "$m" 2>/dev/null ||
			umount -l "$m" 2>/dev/null || true
	done
	rm -rf "$d"
}

# assert_nothing_left DIR: no process with DIR on its command line, no
# mount below it.
assert_nothing_left() {
	assert_equal "" "$(pgrep -af -- "$(re_escape "$1/")" || true)" "processes left"
	assert_equal "" "$(mounts_below "$1")" "mounts left"
}

# The cached image and packages: $ROOTFS and $DEBS, or skip with the reason.
need_debian_image() {
	local out rc=0
	out=$("$BATS_TEST_DIRNAME/tools/debian-image.sh" 2>"$T/debian-image.err") || rc=$?
	if [ "$rc" = 77 ]; then
		skip "$(tail -n 1 "$T/debian-image.err")"
	fi
	[ "$rc" = 0 ] || { cat "$T/debian-image.err" >&2; return 1; }
	ROOTFS=$(echo "$out" | sed -n 's/^rootfs=//p')
	DEBS=$(echo "$out" | sed -n 's/^debs=//p')
}
