#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# A real Debian userland on overpass: a root filesystem made by
# `debootstrap --variant=minbase` (cached outside the tree by
# tests/tools/debian-image.sh, skipped when the Debian archive cannot be
# reached) imported into podman, in which `dpkg -i` of packages fetched
# with `apt-get download` runs in a container on overpass, root and
# rootless, and `dpkg --verify` is clean.

load engines.bash

teardown() {
	if [ -n "${U:-}" ] && [ -d "$U" ]; then
		engine_cleanup "$U"
	fi
	ovp_teardown
}

# dpkg_flow DIR RUNAS...: import, install the packages in a container,
# verify every package, remove it all
dpkg_flow() {
	local D=$1 who=$2
	shift 2
	local P="$* podman $(engine_runtime_args)"
	step "podman-$who" debian-import 0 --timeout 300 $P import -q "$D/rootfs.tar" localhost/ovp-debian
	step "podman-$who" dpkg-install 0 --timeout 300 $P run --rm --network none \
		-v "$D/debs:/debs:ro" localhost/ovp-debian sh -c \
		'dpkg -i /debs/*.deb >/dev/null && hello && tree -d /usr/share/doc/tree &&
		 dpkg --verify && echo verified && dpkg-query -W hello tree less | wc -l'
	assert_contains "Hello, world!" "$output"
	assert_equal verified "${lines[-2]}"
	assert_equal 3 "${lines[-1]}"
	run_cmd 0 $P rm -a -f
	run_cmd 0 $P rmi -a -f
}

@test "debootstrap minbase rootfs, podman as root on overpass: dpkg -i, dpkg --verify clean" {
	need_ovp
	need_init_root
	need_cmd podman
	need_debian_image
	local D=$T
	ln -s "$ROOTFS" "$D/rootfs.tar"
	cp -r "$DEBS" "$D/debs"
	write_storage_conf "$D/conf" "$D/graph" "$D/run"
	export CONTAINERS_STORAGE_CONF=$D/conf/storage.conf
	export CONTAINERS_CONF=$D/conf/containers.conf
	dpkg_flow "$D" root
	run_cmd 0 podman $(engine_runtime_args) system reset -f
	assert_equal "" "$(pgrep -f -- "upperdir=$D/" || true)" "daemons left"
}

@test "debootstrap minbase rootfs, rootless podman on overpass: dpkg -i, dpkg --verify clean" {
	need_ovp
	need_root
	need_cmd podman newuidmap
	need_debian_image
	local u=ovptest home
	if ! id "$u" >/dev/null 2>&1; then
		run_cmd 0 useradd -m -s /bin/sh "$u"
	fi
	grep -q "^$u:" /etc/subuid || echo "$u:300000:65536" >>/etc/subuid
	grep -q "^$u:" /etc/subgid || echo "$u:300000:65536" >>/etc/subgid
	home=$(getent passwd "$u" | cut -d: -f6)
	U=$(mktemp -d /tmp/ovp-deb.XXXXXX)
	chmod 755 "$U"
	cp "$ROOTFS" "$U/rootfs.tar"
	cp -r "$DEBS" "$U/debs"
	local ovp
	ovp=$(overpass_for_user "$U")
	OVP_MOUNT_PROGRAM=${OVP_MOUNT_PROGRAM:-$ovp} write_storage_conf "$U/conf" "$U/graph" "$U/run"
	chown -R "$u:" "$U"
	chmod -R a+rX "$U/debs"
	cd "$U"
	local R="runuser -u $u -- env HOME=$home XDG_RUNTIME_DIR=$U/xdg CONTAINERS_STORAGE_CONF=$U/conf/storage.conf CONTAINERS_CONF=$U/conf/containers.conf"
	runuser -u "$u" -- mkdir -m 700 "$U/xdg"
	dpkg_flow "$U" rootless $R
	run_cmd 0 $R podman $(engine_runtime_args) system reset -f
	assert_equal "" "$(pgrep -f -- "upperdir=$U/" || true)" "daemons left"
	cd /
	engine_cleanup "$U"
}
