#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A real Debian userland for the engine tests, cached outside the source
# tree: a root filesystem made by `debootstrap --variant=minbase` for the
# host's release, as a tar, and a few packages that are not in it, fetched
# with `apt-get download`.  Made once; later runs only print the paths.
#
# Usage: tests/tools/debian-image.sh
#   Prints two lines on success:
#     rootfs=CACHE/SUITE-minbase.tar
#     debs=CACHE/SUITE-debs
#   Exit status 77 (and a reason on stderr) when it cannot be made: not
#   root, debootstrap missing, or the Debian archive unreachable.
#
# Environment:
#   OVERPASS_TEST_CACHE  the cache directory (default /var/cache/overpass-tests)
set -euo pipefail

cache=${OVERPASS_TEST_CACHE:-/var/cache/overpass-tests}
# small packages whose dependencies minbase has
packages=(hello tree less)

skip() { printf 'debian-image: %s\n' "$*" >&2; exit 77; }

# The archive URI the machine already uses for Debian (as
# contrib/setup-deps.sh finds it), so no host is named here.
debian_uri() {
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		uri=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}' "$f")
		[ -n "$uri" ] && { echo "$uri"; return; }
	done
	awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
		/etc/apt/sources.list 2>/dev/null || true
}

[ "$(id -u)" = 0 ] || skip "needs root (debootstrap)"
command -v debootstrap >/dev/null || skip "debootstrap is not installed"
. /etc/os-release
suite=${VERSION_CODENAME:-}
[ -n "$suite" ] || skip "no VERSION_CODENAME in /etc/os-release"
rootfs=$cache/$suite-minbase.tar
debs=$cache/$suite-debs
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

if [ ! -s "$rootfs" ]; then
	uri=$(debian_uri)
	[ -n "$uri" ] || skip "no Debian archive in /etc/apt"
	tmp=$(mktemp -d "$cache/rootfs.XXXXXX")
	trap 'umount -R "$tmp/proc" "$tmp/sys" 2>/dev/null || true; rm -rf "$tmp"' EXIT
	if ! timeout 900 debootstrap --variant=minbase "$suite" "$tmp" "$uri" \
		>"$cache/debootstrap.log" 2>&1; then
		tail -n 5 "$cache/debootstrap.log" >&2
		skip "debootstrap $suite from $uri failed (archive unreachable?); see $cache/debootstrap.log"
	fi
	rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*_Packages
	tar --numeric-owner --xattrs -C "$tmp" -cf "$rootfs.new" .
	mv "$rootfs.new" "$rootfs"
	rm -rf "$tmp"
	trap - EXIT
fi

if [ ! -f "$debs/.done" ]; then
	rm -rf "$debs"
	mkdir -p "$debs"
	# apt-get download runs as _apt where it can: a directory it may write
	chown _apt "$debs" 2>/dev/null || true
	if ! (cd "$debs" && timeout 300 apt-get download -q "${packages[@]}") \
		>"$cache/download.log" 2>&1; then
		tail -n 5 "$cache/download.log" >&2
		skip "apt-get download ${packages[*]} failed (archive unreachable, or apt-get update never ran)"
	fi
	chown -R root: "$debs"
	touch "$debs/.done"
fi
echo "rootfs=$rootfs"
echo "debs=$debs"
