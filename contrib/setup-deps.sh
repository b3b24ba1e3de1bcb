#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Install everything overpass needs to build, run and test on Debian 12, and
# build libfuse from the Debian source package of a newer release into a
# private prefix when the installed libfuse is older than 3.18.3: 3.17 has
# the FUSE passthrough API overpass needs; overpass serves FUSE over
# io_uring itself (liburing) and needs libfuse's custom io for it, which
# this build turns on.  Idempotent: a second run with everything present
# takes seconds.
#
# Usage: contrib/setup-deps.sh [--static]
#   --static  build libfuse as a static library only, into its own prefix,
#             for a self-contained overpass (contrib/build.sh
#             --self-contained), whatever the system's libfuse is.  Its
#             fusermount3 path is /usr/bin/fusermount3, the distributions'.
#
# Environment:
#   OVERPASS_DEPS_PREFIX   where libfuse goes (default /opt/overpass-deps)
#   OVERPASS_STATIC_PREFIX where --static puts it
#                          (default /opt/overpass-deps-static)
#   OVERPASS_FUSE_SUITE    Debian suites to look for the fuse3 source in; the
#                          newest version found is built ("forky sid trixie")
#   OVERPASS_NO_APT=1      do not run apt-get (you installed packages yourself)
#
# Prints nothing on stdout but the final "PKG_CONFIG_PATH=..." line, so a
# caller may eval it.
set -euo pipefail

static=0
case ${1:-} in
--static) static=1 ;;
"") ;;
*) echo "usage: $0 [--static]" >&2; exit 2 ;;
esac
prefix=${OVERPASS_DEPS_PREFIX:-/opt/overpass-deps}
stamp=$prefix/.overpass-deps-v3
# libfuse runs fusermount3 for a plain user's mount and unmount: first
# FUSERMOUNT_DIR/fusermount3, FUSERMOUNT_DIR being the bindir it was built
# with, then fusermount3 from PATH.  The shared build installs no
# fusermount3 (-Dutils=false), so the system's is found in PATH; the static
# one is built for other machines, where the fusermount3 to run is the
# distribution's, in /usr/bin: that becomes its bindir (nothing is
# installed there).
meson_args=()
if [ "$static" = 1 ]; then
	prefix=${OVERPASS_STATIC_PREFIX:-/opt/overpass-deps-static}
	stamp=$prefix/.overpass-deps-static-v2
	meson_args=(-Ddefault_library=static -Dbindir=/usr/bin)
fi
suites=${OVERPASS_FUSE_SUITE:-forky sid trixie}
need_fuse=3.17.0 # the passthrough API: configure refuses anything older
want_fuse=3.18.3 # io_uring, with the fixes it needs: what we build

log() { printf 'setup-deps: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

packages=(
	build-essential autoconf automake libtool pkg-config
	libattr1-dev libacl1-dev attr acl liburing-dev libnuma-dev
	fuse3 bats util-linux procps psmisc
	meson ninja-build dpkg-dev devscripts udev
	fio fuse-overlayfs python3 e2fsprogs
	podman runc crun uidmap busybox-static clang stress-ng inotify-tools
	docker.io containerd buildah debootstrap file
)

have_all_packages() {
	local p
	for p in "${packages[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' || return 1
	done
}

run_apt() {
	[ "${OVERPASS_NO_APT:-0}" = 1 ] && return 0
	have_all_packages && return 0
	[ "$(id -u)" = 0 ] || die "packages missing and not root: run as root or install: ${packages[*]}"
	log "installing packages with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends "${packages[@]}" >&2
}

version_ge() { # a >= b
	[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]
}

# The archive URI the machine already uses for Debian, so that the deb-src
# line we add points at the same mirror without naming a host here.
debian_uri() {
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		uri=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}' "$f")
		[ -n "$uri" ] && { echo "$uri"; return; }
	done
	uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
		/etc/apt/sources.list 2>/dev/null || true)
	[ -n "$uri" ] || die "cannot find the Debian archive URI in /etc/apt"
	echo "$uri"
}

add_source_suites() {
	local list=/etc/apt/sources.list.d/overpass-fuse-src.sources want
	want=$(cat <<EOT
# Added by overpass contrib/setup-deps.sh: source packages only, to build a
# newer libfuse into a private prefix. Binary packages still come from the
# installed release; no upgrade happens through this file.
Types: deb-src
URIs: $(debian_uri)
Suites: $suites
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOT
)
	if [ "$(cat "$list" 2>/dev/null)" != "$want" ]; then
		log "adding deb-src for $suites (source packages only; nothing is upgraded)"
		printf '%s\n' "$want" >"$list"
		apt-get update -qq >&2
	fi
}

# The newest fuse3 source version apt knows of.
newest_fuse_source() {
	apt-cache showsrc fuse3 2>/dev/null | awk '/^Version:/ {print $2}' |
		sort -V | tail -n1
}

fuse_in_prefix_ok() {
	[ -f "$stamp" ] || return 1
	PKG_CONFIG_PATH=$(prefix_pcdir) pkg-config --atleast-version=$need_fuse fuse3 2>/dev/null
}

prefix_pcdir() {
	local d
	for d in "$prefix"/lib/*/pkgconfig "$prefix"/lib/pkgconfig "$prefix"/lib64/pkgconfig; do
		[ -f "$d/fuse3.pc" ] && { echo "$d"; return; }
	done
	echo "$prefix/lib/pkgconfig"
}

build_libfuse() {
	local version
	[ "$(id -u)" = 0 ] || die "libfuse >= $want_fuse missing and not root"
	add_source_suites
	version=$(newest_fuse_source)
	[ -n "$version" ] || die "no fuse3 source package in $suites"
	version_ge "${version%%-*}" "$need_fuse" ||
		die "the newest fuse3 source in $suites is $version; overpass needs >= $need_fuse"
	version_ge "${version%%-*}" "$want_fuse" ||
		log "note: fuse3 $version has no usable FUSE over io_uring (>= $want_fuse); building it anyway"
	src=$(mktemp -d /tmp/overpass-libfuse.XXXXXX)
	trap 'rm -rf "$src"' EXIT
	log "fetching the fuse3 $version source package"
	(cd "$src" && apt-get source -qq --download-only "fuse3=$version" >&2 &&
		dpkg-source -x --no-check ./fuse3_*.dsc fuse3 >&2) ||
		die "apt-get source fuse3=$version failed"
	# overpass serves FUSE over io_uring with its own rings, which take
	# libfuse's answers through fuse_session_custom_io() (src/uring.c):
	# 3.18 builds that only when asked
	if grep -q "'enable-custom-io'" "$src/fuse3/meson_options.txt"; then
		meson_args+=(-Denable-custom-io=true)
	fi
	log "building libfuse${meson_args[*]:+ (${meson_args[*]})} into $prefix"
	(cd "$src/fuse3" &&
		meson setup build --prefix="$prefix" --buildtype=release \
			-Dexamples=false -Dtests=false -Dutils=false \
			-Duseroot=false -Dinitscriptdir= "${meson_args[@]}" >&2 &&
		ninja -C build >&2 && ninja -C build install >&2) ||
		die "building libfuse failed (see the meson output above)"
	touch "$stamp"
}

main() {
	run_apt
	if [ "$static" = 0 ] && pkg-config --atleast-version=$want_fuse fuse3 2>/dev/null; then
		log "system libfuse $(pkg-config --modversion fuse3) is new enough"
		echo "PKG_CONFIG_PATH=${PKG_CONFIG_PATH:-}"
		return
	fi
	if [ "$static" = 0 ] && [ "$(id -u)" != 0 ] && ! fuse_in_prefix_ok &&
		pkg-config --atleast-version=$need_fuse fuse3 2>/dev/null; then
		log "system libfuse $(pkg-config --modversion fuse3) has passthrough but not io_uring ($want_fuse); run as root to build $want_fuse"
		echo "PKG_CONFIG_PATH=${PKG_CONFIG_PATH:-}"
		return
	fi
	fuse_in_prefix_ok || build_libfuse
	log "libfuse $(PKG_CONFIG_PATH=$(prefix_pcdir) pkg-config --modversion fuse3) in $prefix"
	echo "PKG_CONFIG_PATH=$(prefix_pcdir)${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
}

main "$@"
