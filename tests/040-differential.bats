#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# Differential tests against kernel overlayfs (redirect_dir=on,index=on):
# thousands of seeded random operations compared step by step
# (tests/tools/difftest.py), each upper read by the other implementation,
# a sparse 1 GiB copy-up, and an upper written by the kernel read by us.

load helpers

DIFFTEST=$BATS_TEST_DIRNAME/tools/difftest.py
KOPTS=redirect_dir=on,index=on

# Overlay markers of an upper, one line each: whiteouts, opaque dirs,
# redirects (values), origins and link counts kept beside indexed files.
markers() { # upper
	(
		cd "$1" || exit 1
		find . -type c -printf '%p whiteout %D\n' | sort
		getfattr -R -h --absolute-names -m 'trusted\.overlay\.(opaque|redirect)' -d . 2>/dev/null |
			grep -v '^$' || true
	)
}

# Seeded random operations (OPS of them) on both mounts, compared step by
# step, then the trees, the markers and each upper read by the other; the
# rest of the arguments are overpass's own options.
randomized() { # ops [ovp-opts...]
	local seed=${OVERPASS_DIFF_SEED:-$RANDOM} ops=$1
	shift
	echo "# difftest seed $seed (rerun: OVERPASS_DIFF_SEED=$seed)" >&3
	# another user must reach the mounts for the permission checks
	chmod 755 "$T"
	python3 "$DIFFTEST" --prepare "$LOWER" "$LOWER2" "$UPPER"
	python3 "$DIFFTEST" --prepare "$T/kl1" "$T/kl2" "$KUPPER"
	kovl_mount "lowerdir=$T/kl1:$T/kl2,upperdir=$KUPPER,workdir=$KWORK,$KOPTS"
	ovp_mount "lowerdir=$LOWER:$LOWER2" "upperdir=$UPPER" "workdir=$WORK" \
		allow_other default_permissions redirect_dir=on "$@"
	run_cmd 0 --timeout 900 python3 "$DIFFTEST" --seed "$seed" --ops "$ops" \
		${DIFF_ARGS:-} --uppers "$KUPPER" "$UPPER" --check-every 50 "$KMNT" "$MNT"
	echo "# ${lines[-1]}" >&3
	# a statistic the mount must show, as NAME=VALUE
	[ -z "${DIFF_EXPECT_STAT:-}" ] ||
		assert_equal "$(stat_value "$MNT" "${DIFF_EXPECT_STAT%%=*}")" \
			"${DIFF_EXPECT_STAT#*=}" "$DIFF_EXPECT_STAT"
	python3 "$DIFFTEST" --tree "$KMNT" >"$T/k.tree"
	python3 "$DIFFTEST" --tree "$MNT" >"$T/m.tree"
	assert_files_equal "$T/k.tree" "$T/m.tree"
	ovp_umount
	kovl_umount
	# the same markers on disk: whiteouts, opaque directories, redirects
	markers "$KUPPER" >"$T/k.markers"
	markers "$UPPER" >"$T/m.markers"
	assert_files_equal "$T/k.markers" "$T/m.markers"
	# kernel overlayfs reads the upper we wrote, index and all ...
	mkdir -p "$T/k2"
	kovl_mount -m "$T/k2" "lowerdir=$LOWER:$LOWER2,upperdir=$UPPER,workdir=$WORK,$KOPTS"
	python3 "$DIFFTEST" --tree "$T/k2" >"$T/k2.tree"
	kovl_umount "$T/k2"
	assert_files_equal "$T/m.tree" "$T/k2.tree" "kernel overlayfs on overpass's upper"
	# ... and we read the kernel's
	mkdir -p "$T/m2"
	ovp_mount -m "$T/m2" "lowerdir=$T/kl1:$T/kl2" "upperdir=$KUPPER" "workdir=$KWORK"
	python3 "$DIFFTEST" --tree "$T/m2" >"$T/m2.tree"
	ovp_umount "$T/m2"
	assert_files_equal "$T/k.tree" "$T/m2.tree" "overpass on kernel overlayfs's upper"
}

@test "randomized: ${OVERPASS_DIFF_OPS:-3000} seeded operations, step by step, as kernel overlayfs" {
	need_ovp
	need_kovl
	need_trusted
	randomized "${OVERPASS_DIFF_OPS:-3000}"
}

@test "randomized, data through the daemon and the kernel's writeback cache (passthrough=off,writeback=1): seeded operations as kernel overlayfs" {
	need_ovp
	need_kovl
	need_trusted
	# a truncate to a file's own size keeps its times there (the man
	# page, tests/036): difftest leaves that one out
	DIFF_EXPECT_STAT=writeback.active=1 DIFF_ARGS=--writeback-cache \
		randomized "${OVERPASS_DIFF_OPS:-1500}" passthrough=off writeback=1
}

# Data segments of a file as "offset+length" (SEEK_DATA/SEEK_HOLE).
segments() {
	python3 - "$1" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
end, pos, out = os.fstat(fd).st_size, 0, []
while pos < end:
    try:
        d = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        break
    h = os.lseek(fd, d, os.SEEK_HOLE)
    out.append(f"{d}+{h - d}")
    pos = h
print(" ".join(out), end)
EOF
}

@test "copy-up of a sparse 1 GiB file keeps its holes, bytes and st_ino, as the kernel's" {
	need_ovp
	need_kovl
	# 1 GiB with three 1 MiB data extents, the last at the very end
	python3 - "$LOWER/big" <<'EOF'
import os, sys
with open(sys.argv[1], "wb") as f:
    f.truncate(1 << 30)
    for off in (0, 300 << 20, (1 << 30) - (1 << 20)):
        f.seek(off)
        f.write(os.urandom(1 << 20))
EOF
	local lower_segs ino
	lower_segs=$(segments "$LOWER/big")
	kovl_mount "lowerdir=$LOWER,upperdir=$KUPPER,workdir=$KWORK,$KOPTS"
	ovp_mount
	ino=$(stat -c %i "$MNT/big")
	echo tail >>"$KMNT/big"
	echo tail >>"$MNT/big"
	assert_equal "$ino" "$(stat -c %i "$MNT/big")" "st_ino after copy-up"
	assert_equal "$(cmp "$KMNT/big" "$MNT/big" && echo same)" same
	ovp_umount
	kovl_umount
	# the upper copies: same data map as the lower plus the appended tail,
	# under 4 MiB on disk each
	[ "$(du -k "$UPPER/big" | cut -f1)" -lt 4096 ] || { du -k "$UPPER/big" >&2; false; }
	[ "$(du -k "$KUPPER/big" | cut -f1)" -lt 4096 ]
	assert_equal "$(segments "$KUPPER/big")" "$(segments "$UPPER/big")" "data segments vs kernel"
	assert_match "^0\+1048576 314572800\+1048576 " "$(segments "$UPPER/big")"
	ovp_mount
	assert_equal "$ino" "$(stat -c %i "$MNT/big")" "st_ino after remount"
	ovp_umount
}

# Steps kernel overlayfs takes on its upper: every marker kind it writes.
kernel_steps() { # mountpoint
	cd "$1"
	mv dir dir2                      # redirect (a merged dir moves)
	mkdir -p deep/er && mv dir2/sub deep/er/moved   # absolute redirect
	rm a                             # whiteout
	rm -r emptyd && mkdir emptyd && touch emptyd/n  # opaque dir
	echo more >>h1                   # copy-up of a hard link: index
	chmod 600 b && chown 7:8 b       # metadata copy-up, origin
	ln h2 h3                         # a third link through the index
	touch deep/er/moved/new
	cd /
}

@test "an upper written by kernel overlayfs (redirects, whiteouts, opaque, index) reads the same through overpass" {
	need_ovp
	need_kovl
	need_trusted
	mkdir -p "$LOWER/dir/sub" "$LOWER/emptyd"
	echo a >"$LOWER/a"; echo b >"$LOWER/b"; echo s >"$LOWER/dir/sub/s"
	echo x >"$LOWER/dir/x"; echo o >"$LOWER/emptyd/o"
	echo h >"$LOWER/h1"; ln "$LOWER/h1" "$LOWER/h2"
	kovl_mount "lowerdir=$LOWER,upperdir=$KUPPER,workdir=$KWORK,$KOPTS"
	kernel_steps "$KMNT"
	tree_dump --owner "$KMNT" >"$T/k.txt"
	stat -c '%n %i %h' "$KMNT"/{b,h1,h2,h3} "$KMNT/dir2/x" "$KMNT/deep/er/moved/s" |
		sed "s|$KMNT||" >"$T/k.ino"
	kovl_umount
	# what we read depends on the markers being there
	[ "$(getfattr --only-values -n trusted.overlay.redirect "$KUPPER/deep/er/moved")" = /dir/sub ]
	[ -n "$(ls "$KWORK/index")" ]
	ovp_mount "lowerdir=$LOWER" "upperdir=$KUPPER" "workdir=$KWORK"
	tree_dump --owner "$MNT" >"$T/m.txt"
	stat -c '%n %i %h' "$MNT"/{b,h1,h2,h3} "$MNT/dir2/x" "$MNT/deep/er/moved/s" |
		sed "s|$MNT||" >"$T/m.ino"
	assert_files_equal "$T/k.txt" "$T/m.txt"
	assert_files_equal "$T/k.ino" "$T/m.ino" "st_ino and link counts"
	# and keeps writing it as the kernel would read it
	rm "$MNT/h3"
	mv "$MNT/deep/er/moved" "$MNT/back"
	ovp_umount
	kovl_mount "lowerdir=$LOWER,upperdir=$KUPPER,workdir=$KWORK,$KOPTS"
	assert_equal "s" "$(cat "$KMNT/back/s")"
	assert_equal "2" "$(stat -c %h "$KMNT/h1")" "link count after unlink through overpass"
	assert_equal "h
more" "$(cat "$KMNT/h2")"
	kovl_umount
}
