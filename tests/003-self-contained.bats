#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# The self-contained binary (contrib/build.sh --self-contained), for
# machines without /opt/overpass-deps: it needs no shared library but
# glibc's, no glibc newer than Debian 12's, runs the distribution's
# /usr/bin/fusermount3, and mounts, as root and as a plain user.  The
# binary is $OVERPASS_SELF_CONTAINED, by default _build-static/src/overpass;
# every test skips when it has not been built.  OVERPASS_VM_BINARY=FILE
# contrib/vm-test.sh runs this file on FILE with /opt/overpass-deps hidden.

load helpers

SC=${OVERPASS_SELF_CONTAINED:-$TOP_SRCDIR/_build-static/src/overpass}

teardown() {
	# the plain user's test works in a directory of its own
	if [ -n "${SC_DIR:-}" ]; then
		fusermount3 -u "$SC_DIR/m" 2>/dev/null || true
		rm -rf "$SC_DIR"
	fi
	ovp_teardown
}

need_sc() {
	[ -x "$SC" ] || skip "no self-contained binary at $SC (contrib/build.sh --self-contained)"
	need_cmd readelf objdump ldd
}

# The shared libraries $SC names (ELF NEEDED entries), one a line.
sc_needed() {
	readelf -d "$SC" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
}

@test "self-contained: needs no shared library but glibc's, and no rpath" {
	need_sc
	local lib
	for lib in $(sc_needed); do
		case $lib in
		libc.so.6 | libm.so.6 | ld-linux-*.so.*) ;;
		*) assert_equal "libc, libm or ld-linux" "$lib" "a shared library $SC needs" ;;
		esac
	done
	run_cmd 0 readelf -d "$SC"
	assert_equal "" "$(grep -E '\((RPATH|RUNPATH)\)' <<<"$output")" "rpath"
	# ldd resolves on this machine: nothing missing, nothing of libfuse's
	run_cmd 0 ldd "$SC"
	[[ "$output" != *"not found"* ]] || assert_equal "" "$output" "ldd: a library not found"
	[[ ! "$output" =~ lib(fuse|uring|numa|attr|acl) ]] ||
		assert_equal "libc and the loader only" "$output" "ldd $SC"
}

@test "self-contained: no glibc symbol newer than Debian 12's 2.36" {
	need_sc
	local newest
	newest=$(objdump -T "$SC" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' |
		sort -uV | tail -n 1)
	assert_match '^2\.[0-9]+' "$newest" "the newest GLIBC_ version $SC needs"
	assert_equal 2.36 "$(printf '%s\n' "$newest" 2.36 | sort -V | tail -n 1)" \
		"glibc $newest needed"
}

@test "self-contained: runs /usr/bin/fusermount3, looks in no build prefix" {
	need_sc
	# libfuse spawns FUSERMOUNT_DIR/fusermount3, then fusermount3 from
	# PATH; the strings of the program (not its debug information)
	run_cmd 0 readelf -p .rodata "$SC"
	assert_contains "/usr/bin/fusermount3" "$output" "libfuse's FUSERMOUNT_DIR"
	[[ "$output" != */opt/* ]] ||
		assert_equal "" "$(grep /opt/ <<<"$output")" "a path in /opt in $SC"
}

@test "self-contained: as root, mounts, reads, copies up, unmounts" {
	need_sc
	local OVERPASS=$SC
	need_ovp
	echo lower >"$LOWER/f"
	mkdir "$LOWER/d"
	echo x >"$LOWER/d/x"
	ovp_mount
	assert_equal "fuse.overpass" "$(fstype_of "$MNT")"
	assert_equal lower "$(cat "$MNT/f")"
	echo more >>"$MNT/f"
	rm "$MNT/d/x"
	assert_equal "lower
more" "$(cat "$UPPER/f")" "the copied-up file"
	assert_equal "0:0" "$(stat -c '%t:%T' "$UPPER/d/x")" "a whiteout"
	assert_equal lower "$(cat "$LOWER/f")" "the lower file"
	ovp_umount
}

@test "self-contained: a plain user mounts through the distribution's fusermount3" {
	need_sc
	need_root
	need_fuse
	need_cmd setpriv
	[ -u "$(command -v fusermount3)" ] || skip "fusermount3 is not setuid"
	local D pid
	# the user's own directory (the test's is root's alone)
	D=$(mktemp -d /tmp/ovp-sc.XXXXXX)
	SC_DIR=$D
	chmod 755 "$D"
	mkdir -p "$D/l" "$D/u" "$D/w" "$D/m"
	echo lower >"$D/l/f"
	chown 65534:65534 "$D/u" "$D/w" "$D/m"
	local OVERPASS=$SC
	OVERPASS=$(overpass_for_user "$D")
	run_cmd 0 setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$OVERPASS" -o "lowerdir=$D/l,upperdir=$D/u,workdir=$D/w" "$D/m" </dev/null
	is_mounted "$D/m" || assert_equal "mounted" "not mounted" "$D/m"
	pid=$(daemon_pid "$D/m")
	# fusermount3 made it: a plain user's mount carries user_id
	assert_match '(^|,)user_id=65534(,|$)' "$(findmnt -no FS-OPTIONS "$D/m")" \
		"the mount's options"
	run_cmd 0 setpriv --reuid=65534 --regid=65534 --clear-groups \
		sh -c "cat '$D/m/f' && echo new >'$D/m/g'"
	assert_equal lower "$output"
	assert_equal "65534 new" "$(stat -c %u "$D/u/g") $(cat "$D/u/g")"
	run_cmd 0 setpriv --reuid=65534 --regid=65534 --clear-groups fusermount3 -u "$D/m"
	wait_gone "$pid" 10
	! is_mounted "$D/m" || assert_equal "unmounted" "mounted" "$D/m"
}
