#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Build overpass on a fresh Debian 12 machine: install dependencies (and
# libfuse >= 3.17 into a private prefix when needed), configure, make.
# Extra arguments go to ./configure.  OVERPASS_BUILDDIR builds out of tree.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
pcline=$($sudo "$top/contrib/setup-deps.sh" | tail -n 1)
export "${pcline?}"
cd "$top"
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
	./autogen.sh >/dev/null 2>&1 || ./autogen.sh
fi
bdir=${OVERPASS_BUILDDIR:-$top}
mkdir -p "$bdir"
cd "$bdir"
stamp="$*"
if [ ! -f Makefile ] || [ "$(cat .overpass-configure-args 2>/dev/null)" != "$stamp" ] ||
	[ "$top/configure" -nt Makefile ]; then
	"$top/configure" -q "$@"
	printf '%s' "$stamp" > .overpass-configure-args
fi
make -s -j"$(nproc)"
