#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Container engine figures for doc/containers.md, overpass against
# fuse-overlayfs (not a test: it prints numbers):
#   idle      N idle podman containers (root), threads and RSS per daemon
#   layers40  rootless podman, a 40-layer image: `podman run --rm IMG true`,
#             median of 10, with each mount program on the same storage
#
# Usage: contrib/engine-bench.sh [idle N | layers40 USER] [PROGRAM...]
#   PROGRAMs default to _build/src/overpass and /usr/bin/fuse-overlayfs.
#   layers40 needs USER to have /etc/subuid and /etc/subgid entries.
#   Run as root; needs podman, runc, busybox-static.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-idle}
arg=${2:-}
shift 2 || true
progs=("$@")
[ "${#progs[@]}" -gt 0 ] || progs=("$top/_build/src/overpass" /usr/bin/fuse-overlayfs)
P="podman --runtime runc --cgroup-manager cgroupfs"
[ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] && P=podman

# conf DIR PROGRAM: storage.conf and containers.conf in DIR/conf
conf() {
	mkdir -p "$1/conf"
	cat >"$1/conf/storage.conf" <<EOC
[storage]
driver = "overlay"
graphroot = "$1/graph"
runroot = "$1/run"
[storage.options.overlay]
mount_program = "$2"
EOC
	printf '[containers]\ndefault_ulimits = []\n' >"$1/conf/containers.conf"
}

rootfs_tar() { # DIR TAR
	local c
	mkdir -p "$1/bin"
	cp /bin/busybox "$1/bin/"
	for c in sh sleep ls true; do ln -sf busybox "$1/bin/$c"; done
	tar -C "$1" -cf "$2" .
}

idle() { # N PROGRAM
	local n=$1 prog=$2 B p t r tt=0 rss=0 c=0
	B=$(mktemp -d /tmp/ovpm.XXXXXX)
	conf "$B" "$prog"
	export CONTAINERS_STORAGE_CONF=$B/conf/storage.conf CONTAINERS_CONF=$B/conf/containers.conf
	rootfs_tar "$B/r" "$B/img.tar"
	$P import -q "$B/img.tar" localhost/idle >/dev/null
	for ((i = 0; i < n; i++)); do
		$P run -d --network none localhost/idle sh -c 'ls -R / >/dev/null; sleep 1000' >/dev/null
	done
	sleep 3
	for p in $(pgrep -f -- "upperdir=$B/"); do
		t=$(ls "/proc/$p/task" | wc -l)
		r=$(awk '/VmRSS/ {print $2}' "/proc/$p/status")
		tt=$((tt + t)) rss=$((rss + r)) c=$((c + 1))
	done
	echo "$prog: $c daemons; per daemon $(awk -v a=$tt -v c=$c 'BEGIN {printf "%.1f", a / c}') threads, $((rss / c)) kB RSS; total $tt threads, $((rss / 1024)) MB"
	$P rm -a -f -t 0 >/dev/null
	$P system reset -f >/dev/null 2>&1
	rm -rf "$B"
}

layers40() { # USER
	local u=$1 home U R prog ts s e i
	home=$(getent passwd "$u" | cut -d: -f6)
	U=$(mktemp -d /tmp/ovpl.XXXXXX)
	chmod 755 "$U"
	mkdir -p "$U/ctx" "$U/bin"
	rootfs_tar "$U/r" "$U/ctx/rootfs.tar"
	{
		echo "FROM scratch"
		echo "ADD rootfs.tar /"
		for i in $(seq 39); do
			echo "l$i" >"$U/ctx/f$i"
			echo "COPY f$i /f$i"
		done
	} >"$U/ctx/Containerfile"
	for prog in "${progs[@]}"; do install -m 755 "$prog" "$U/bin/$(basename "$prog")"; done
	conf "$U" "$U/bin/$(basename "${progs[0]}")"
	chown -R "$u:" "$U"
	runuser -u "$u" -- mkdir -m 700 "$U/xdg"
	cd "$U"
	R="runuser -u $u -- env HOME=$home XDG_RUNTIME_DIR=$U/xdg CONTAINERS_STORAGE_CONF=$U/conf/storage.conf CONTAINERS_CONF=$U/conf/containers.conf $P"
	$R build -q -t localhost/l40 ctx >/dev/null
	echo "layers: $($R image inspect --format '{{len .RootFS.Layers}}' localhost/l40)"
	for prog in "${progs[@]}"; do
		conf "$U" "$U/bin/$(basename "$prog")"
		chown "$u:" "$U/conf/storage.conf"
		$R run --rm --network none localhost/l40 true
		ts=()
		for i in $(seq 10); do
			s=$(date +%s%N)
			$R run --rm --network none localhost/l40 true
			e=$(date +%s%N)
			ts+=($(((e - s) / 1000000)))
		done
		echo "$(basename "$prog"): ms ${ts[*]}; median $(printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR] = $1} END {print (a[5] + a[6]) / 2}')"
	done
	$R system reset -f >/dev/null 2>&1
	cd /
	rm -rf "$U"
}

case $what in
idle) for prog in "${progs[@]}"; do idle "${arg:-10}" "$prog"; done ;;
layers40) layers40 "${arg:?layers40 needs a user name}" ;;
*) echo "usage: $0 [idle N | layers40 USER] [PROGRAM...]" >&2; exit 1 ;;
esac
