#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build overpass from a fresh checkout on Debian 12: install the dependencies
# (contrib/setup-deps.sh, which also builds libfuse >= 3.17 into a private
# prefix when the system's is older), run autogen.sh and configure when
# they are missing or stale, then make.  Idempotent: a second run with
# nothing changed only runs make, which has nothing to do.
#
# Usage: contrib/build.sh [--self-contained] [CONFIGURE-ARGS...]
#   Arguments go to ./configure (e.g. --enable-sanitizers); configure runs
#   again whenever they differ from the previous run's.
#   --self-contained  build one binary for other machines: libfuse (static,
#                     from setup-deps.sh --static), liburing, libnuma,
#                     libattr and libacl linked in, glibc shared; by default
#                     in _build-static/.  It is checked to need no other
#                     shared library and no glibc newer than Debian 12's
#                     2.36; it runs fusermount3 from /usr/bin (the fuse3
#                     package) for a plain user's mounts.
#
# Environment:
#   OVERPASS_BUILDDIR   build directory (default: the source tree, or
#                       _build-static with --self-contained).  Out of
#                       tree, the binary is $OVERPASS_BUILDDIR/src/overpass.
#                       automake refuses an out-of-tree build while the
#                       source tree itself is configured, so that in-tree
#                       build is removed first (make distclean), with a note.
#   OVERPASS_DEPS_PREFIX, OVERPASS_STATIC_PREFIX, OVERPASS_FUSE_SUITE,
#   OVERPASS_NO_APT     passed on to contrib/setup-deps.sh.
#
# Quiet when all goes well; the output of a failing step is shown.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
log() { printf 'build.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

self_contained=0
if [ "${1:-}" = --self-contained ]; then
	self_contained=1
	shift
	set -- --enable-self-contained "$@"
	: "${OVERPASS_BUILDDIR:=$top/_build-static}"
fi
deps_args=()
[ "$self_contained" = 0 ] || deps_args=(--static)

# run_logged WHAT CMD...: run quietly, show the output if it fails.
run_logged() {
	local what=$1 out
	shift
	out=$(mktemp /tmp/overpass-build.XXXXXX)
	if ! "$@" >"$out" 2>&1; then
		cat "$out" >&2
		rm -f "$out"
		die "$what failed"
	fi
	rm -f "$out"
}

# 1. dependencies; setup-deps.sh prints only the PKG_CONFIG_PATH line on
# stdout (its progress goes to stderr).
deps() {
	local line
	if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then
		# sudo drops the caller's environment: hand the settings on
		line=$(sudo env OVERPASS_DEPS_PREFIX="${OVERPASS_DEPS_PREFIX:-}" \
			OVERPASS_STATIC_PREFIX="${OVERPASS_STATIC_PREFIX:-}" \
			OVERPASS_FUSE_SUITE="${OVERPASS_FUSE_SUITE:-}" \
			OVERPASS_NO_APT="${OVERPASS_NO_APT:-0}" \
			"$top/contrib/setup-deps.sh" "${deps_args[@]}" | tail -n 1)
	else
		line=$("$top/contrib/setup-deps.sh" "${deps_args[@]}" | tail -n 1)
	fi
	case $line in
	PKG_CONFIG_PATH=*) export PKG_CONFIG_PATH="${line#PKG_CONFIG_PATH=}" ;;
	*) die "contrib/setup-deps.sh did not print a PKG_CONFIG_PATH=... line" ;;
	esac
}
# an empty value given to setup-deps.sh through sudo means "default"
[ -n "${OVERPASS_DEPS_PREFIX:-}" ] || unset OVERPASS_DEPS_PREFIX
[ -n "${OVERPASS_STATIC_PREFIX:-}" ] || unset OVERPASS_STATIC_PREFIX
[ -n "${OVERPASS_FUSE_SUITE:-}" ] || unset OVERPASS_FUSE_SUITE
deps

bdir=${OVERPASS_BUILDDIR:-$top}
mkdir -p "$bdir"
bdir=$(cd "$bdir" && pwd)

# One build at a time in a build directory (demo.sh and test.sh share one).
exec 9>"$bdir/.overpass-build.lock"
flock 9

# 2. autogen.sh when configure is missing or older than its inputs.
cd "$top"
if [ ! -x configure ] || [ configure.ac -nt configure ] ||
	[ Makefile.am -nt configure ] || [ ! -f Makefile.in ]; then
	log "running autogen.sh"
	run_logged autogen.sh ./autogen.sh
fi

# 3. configure when there is no Makefile or its settings changed.
if [ "$bdir" != "$top" ] && [ -f "$top/config.status" ]; then
	log "the source tree holds an in-tree build; removing it (make distclean)" \
		"so that $bdir can be configured"
	run_logged "make distclean in $top" make -C "$top" distclean
	rm -f "$top/.overpass-configure-args"
fi
cd "$bdir"
stamp="PKG_CONFIG_PATH=$PKG_CONFIG_PATH $*"
old_stamp=$(cat .overpass-configure-args 2>/dev/null || true)
if [ ! -f Makefile ] || [ ! -f config.status ] || [ "$old_stamp" != "$stamp" ] ||
	[ "$top/configure" -nt config.status ]; then
	# objects do not depend on the compiler flags: when the settings
	# change (e.g. --enable-sanitizers), start from clean objects
	if [ -f Makefile ] && [ "$old_stamp" != "$stamp" ]; then
		log "configure arguments changed: make clean"
		make -s clean >/dev/null 2>&1 || true
	fi
	log "configuring${*:+ with $*}${OVERPASS_BUILDDIR:+ in $bdir}"
	rm -f .overpass-configure-args
	run_logged configure "$top/configure" "$@"
	printf '%s' "$stamp" >.overpass-configure-args
fi

# 4. make; compiler warnings and errors stay visible.
make -s -j"$(nproc)" 9>&-

# 5. a self-contained binary: no shared library but glibc's, no glibc
# symbol newer than Debian 12's.  (tests/003-self-contained.bats checks
# the same, and that it mounts, on the machine it runs on.)
check_self_contained() {
	local bin=$1 lib glibc
	for lib in $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
		case $lib in
		libc.so.6 | libm.so.6 | ld-linux-*.so.*) ;;
		*) die "$bin needs $lib: it is not self-contained" ;;
		esac
	done
	readelf -d "$bin" | grep -qE '\((RPATH|RUNPATH)\)' &&
		die "$bin has an rpath: $(readelf -d "$bin" | grep -E 'R(UN)?PATH')"
	glibc=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' |
		sort -uV | tail -n 1)
	[ "$(printf '%s\n' "$glibc" 2.36 | sort -V | tail -n 1)" = 2.36 ] ||
		die "$bin needs glibc $glibc; Debian 12 has 2.36"
	log "self-contained: needs $(readelf -d "$bin" |
		sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | paste -sd ' '), glibc >= $glibc"
}
[ "$self_contained" = 0 ] || check_self_contained "$bdir/src/overpass"
log "built $bdir/src/overpass"
