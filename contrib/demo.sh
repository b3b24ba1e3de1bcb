#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build overpass, make sample layers in a temporary directory, mount them,
# and show what overpass does with them:
#   - two lower layers and an upper layer;
#   - a whiteout (character device 0/0) in the upper hiding a lower file;
#   - an opaque directory (trusted.overlay.opaque=y) in the upper hiding the
#     lower contents of that directory;
#   - a lower file shadowed by the upper, one shadowed by the upper lower;
#   - a symlink;
# then the merged view, the statistics after reading a file (with
# passthrough, no READ reaches the daemon), a write (copy-up) and a delete
# (a new whiteout), and the unmount.  Everything is removed at the end,
# and the mount is taken down even when a step fails.
#
# Runs as root (making a 0/0 whiteout and trusted.* xattrs needs it); runs
# itself through sudo when started by another user.
# Environment: OVERPASS_BUILDDIR (default _build, shared with test.sh).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null || { echo "demo.sh: run me as root" >&2; exit 1; }
	exec sudo env OVERPASS_BUILDDIR="${OVERPASS_BUILDDIR:-}" "$0" "$@"
fi
bdir=${OVERPASS_BUILDDIR:-$top/_build}
OVERPASS_BUILDDIR=$bdir "$top/contrib/build.sh"
ovp=$(cd "$bdir" && pwd)/src/overpass

d=$(mktemp -d /tmp/overpass-demo.XXXXXX)
mnt=$d/merged

cleanup() {
	local rc=$?
	trap - EXIT
	if mountpoint -q "$mnt" 2>/dev/null; then
		fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null ||
			umount -l "$mnt"
	fi
	if mountpoint -q "$mnt" 2>/dev/null; then
		echo "demo.sh: $mnt is still mounted; leaving $d" >&2
	else
		rm -rf --one-file-system "$d"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

step() { printf '\n== %s\n' "$*"; }
show_tree() { # DIR: every entry with its type (f d l c) and link target
	(cd "$1" && find . -mindepth 1 \( -type l -printf 'l %p -> %l\n' \) -o \
		\( -type c -exec stat -c 'c %n (character device %t/%T)' {} \; \) -o \
		-printf '%y %p\n' | sort -k2)
}

mkdir -p "$d"/{lower1,lower2,upper,work,merged}

# lower2: the bottom layer
mkdir -p "$d/lower2/etc" "$d/lower2/cache"
echo "base config" >"$d/lower2/etc/config"
echo "to be deleted" >"$d/lower2/etc/obsolete"
echo "old cache entry" >"$d/lower2/cache/old"
echo "hello from lower2" >"$d/lower2/hello"
echo "motd from lower2" >"$d/lower2/motd"
# lower1: above lower2
echo "app config from lower1" >"$d/lower1/app.conf"
echo "hello from lower1 (shadows lower2)" >"$d/lower1/hello"
ln -s hello "$d/lower1/greeting"
# upper: a whiteout, an opaque directory, a file shadowing a lower one
mkdir -p "$d/upper/etc" "$d/upper/cache"
mknod "$d/upper/etc/obsolete" c 0 0
setfattr -n trusted.overlay.opaque -v y "$d/upper/cache"
echo "fresh cache entry" >"$d/upper/cache/new"
echo "motd from upper (shadows lower2)" >"$d/upper/motd"

for l in lower2 lower1 upper; do
	step "layer $l (f file, d directory, l symlink, c character device)"
	show_tree "$d/$l"
done
echo "(upper/cache has trusted.overlay.opaque=$(getfattr --absolute-names --only-values -n trusted.overlay.opaque "$d/upper/cache"))"

step "mount"
echo "\$ overpass -o lowerdir=lower1:lower2,upperdir=upper,workdir=work merged"
"$ovp" -o "lowerdir=$d/lower1:$d/lower2,upperdir=$d/upper,workdir=$d/work" "$mnt"
grep " $mnt " /proc/mounts

step "merged view: find . | sort"
(cd "$mnt" && find . | sort)

step "cat hello greeting motd etc/config cache/new"
for f in hello greeting motd etc/config cache/new; do
	printf '%-11s %s\n' "$f:" "$(cat "$mnt/$f")"
done
step "hidden: etc/obsolete (whiteout) and cache/old (opaque directory)"
(cd "$mnt" && ls etc/obsolete cache/old 2>&1) || true

step "statistics after reading a file (overpass --stats merged)"
cat "$mnt/app.conf" >/dev/null
"$ovp" --stats "$mnt"

step "writing: append to a lower file (copy-up), remove another (whiteout)"
echo "appended through the mount" >>"$mnt/etc/config"
rm "$mnt/hello"
echo "etc/config: $(tr '\n' '|' <"$mnt/etc/config")"
echo "hello:      $( (cd "$mnt" && cat hello) 2>&1)"
echo "upper layer now:"
show_tree "$d/upper"
echo "lower2/etc/config is unchanged: $(cat "$d/lower2/etc/config")"
"$ovp" --stats "$mnt" | grep -E '^(copy_ups|passthrough\.|requests\.(READ|WRITE) )'

step "unmount (fusermount3 -u merged)"
fusermount3 -u "$mnt"
mountpoint -q "$mnt" || echo "unmounted"
