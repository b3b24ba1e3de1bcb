#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Build overpass, mount a demo overlay of sample layers (a whiteout, an
# opaque directory, a shadowed file, a symlink), show the merged view and
# the statistics, write through it, and unmount.  Runs as root.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || exec sudo "$0" "$@"
"$top/contrib/build.sh"
ovp=$top/src/overpass
d=$(mktemp -d /tmp/overpass-demo.XXXXXX)
cleanup() {
	mountpoint -q "$d/merged" && fusermount3 -u "$d/merged"
	rm -rf "$d"
}
trap cleanup EXIT

mkdir -p "$d"/{base,app,upper,work,merged}
# base layer (bottom)
mkdir -p "$d/base/etc" "$d/base/cache"
echo "base config" > "$d/base/etc/config"
echo "to be deleted" > "$d/base/etc/obsolete"
echo "old cache entry" > "$d/base/cache/old"
echo "hello from the base layer" > "$d/base/hello"
# app layer (above base)
echo "app config" > "$d/app/etc-app.conf"
echo "app shadows base" > "$d/app/hello"
ln -s hello "$d/app/greeting"
# upper layer: a whiteout hiding etc/obsolete, an opaque cache directory
mkdir -p "$d/upper/etc" "$d/upper/cache"
mknod "$d/upper/etc/obsolete" c 0 0
setfattr -n trusted.overlay.opaque -v y "$d/upper/cache"
echo "fresh cache" > "$d/upper/cache/new"

"$ovp" -o "lowerdir=$d/app:$d/base,upperdir=$d/upper,workdir=$d/work" "$d/merged"
echo "== merged view ($d/merged)"
(cd "$d/merged" && find . | sort)
echo "== cat hello greeting etc/config cache/new"
cat "$d/merged/hello" "$d/merged/greeting" "$d/merged/etc/config" "$d/merged/cache/new"
echo "== etc/obsolete is whited out:"
ls "$d/merged/etc/obsolete" 2>&1 || true
echo "== writing: append to a lower file (copy-up), then remove one"
echo "appended" >> "$d/merged/etc/config"
rm "$d/merged/hello"
echo "upper now holds:"
(cd "$d/upper" && find . | sort)
echo "== statistics (overpass --stats)"
"$ovp" --stats "$d/merged"
fusermount3 -u "$d/merged"
echo "== unmounted"
