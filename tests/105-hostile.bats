#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# Hostile layers: symlinks in every position, redirects that try to leave
# the layers, markers in odd places, odd names, device nodes and setuid
# files.  A canary directory next to the layers is watched with inotify
# while the whole merged tree is walked, read, copied up, renamed and
# removed without following symlinks: the daemon must never touch it.

load helpers.bash

# mk_hostile: layers aimed at $CANARY; prints nothing
mk_hostile() {
	local L=$LOWER L2=$LOWER2 L3=$LOWER3 long
	# symlinks: at the root, as directory components, relative and absolute
	ln -s "$CANARY" "$L/abs"
	ln -s ../canary "$L/rel"
	mkdir -p "$L/d/e"
	ln -s ../../../canary "$L/d/e/up"
	ln -s "$CANARY/secret" "$L/d/file-link"
	ln -s . "$L/d/loop"
	# redirects: climbing, absolute to the canary's path, through a symlink
	mkdir "$L/r1" "$L/r2" "$L/r3" "$L/r4" "$L/r5"
	setfattr -n trusted.overlay.redirect -v "/../canary" "$L/r1"
	setfattr -n trusted.overlay.redirect -v "$CANARY" "$L/r2"
	setfattr -n trusted.overlay.redirect -v "/sym/inside" "$L/r3"
	setfattr -n trusted.overlay.redirect -v "../canary" "$L/r4"
	setfattr -n trusted.overlay.redirect -v "/abs" "$L/r5"
	ln -s "$CANARY" "$L2/sym"
	mkdir -p "$L3/sym/inside" "$L3/r2" "$L3/abs"
	echo "lower3 data" >"$L3/sym/inside/f"
	# markers in odd places
	echo data >"$L/opaque-file"
	setfattr -n trusted.overlay.opaque -v y "$L/opaque-file"
	mkdir "$L/m"
	mkdir "$L/m/.wh..wh..opq"
	mknod "$L/m/wh" c 0 0
	: >"$L/m/.wh."
	: >"$L/m/.wh..."
	setfattr -n trusted.overlay.redirect -v "/d" "$L/opaque-file"
	setfattr -n trusted.overlay.metacopy -v "" "$L/opaque-file"
	setfattr -n trusted.overlay.origin -v 0sAAAA "$L/d/e"
	# odd names, devices, setuid
	long=$(printf 'n%.0s' {1..255})
	echo long >"$L/$long"
	echo nl >"$L/with
newline"
	mknod "$L/mem" c 1 1
	mknod "$L/null" c 1 3
	cp /usr/bin/id "$L/suid-id"
	chmod 4755 "$L/suid-id"
	# the layers below see the canary's name too
	mkdir -p "$L2/canary" "$L3/d/e"
}

@test "hostile layers never make the daemon touch anything outside them" {
	need_ovp
	need_cmd inotifywait
	need_cmd setpriv
	CANARY=$T/canary
	mkdir -p "$CANARY/dir"
	echo secret >"$CANARY/secret"
	mk_hostile
	inotifywait -m -r -q -e access,open,modify,attrib,create,delete,move \
		--format '%e %w%f' "$CANARY" >"$T/events" 2>"$T/inotify.err" &
	local watcher=$!
	sleep 1 # inotifywait sets up its watches
	# the watcher sees an access: a read of the canary shows up
	cat "$CANARY/secret" >/dev/null
	sleep 0.5
	assert_contains "OPEN $CANARY/secret" "$(cat "$T/events")" "the watcher works"
	: >"$T/events"
	ovp_mount "lowerdir=$LOWER:$LOWER2:$LOWER3" "upperdir=$UPPER" "workdir=$WORK" redirect_dir=on nosuid nodev
	# walk and read everything, never following a symlink
	# (r1 and r4 refuse their redirects with EACCES and EINVAL)
	(cd "$MNT" && find . -xdev -print0 | xargs -0 stat -c '%n %F' >/dev/null 2>&1) || true
	(cd "$MNT" && find . -xdev -type l -print0 | xargs -0 readlink >/dev/null 2>&1) || true
	(cd "$MNT" && find . -xdev -type f -print0 | xargs -0 cat >/dev/null 2>&1) || true
	(cd "$MNT" && getfattr -h -R -d -m - . >/dev/null 2>&1) || true
	# what the redirects show: never the canary
	run_cmd 0 ls -A "$MNT/r2" "$MNT/r3" "$MNT/r5"
	[[ "$output" != *secret* ]]
	run_cmd '!' ls -A "$MNT/r1" "$MNT/r4"
	# devices and setuid: mounted nodev and nosuid (root mounts are suid,dev
	# by default, as kernel overlayfs; untrusted layers get these)
	run_cmd '!' head -c 1 "$MNT/mem"
	run_cmd 0 setpriv --reuid=65534 --regid=65534 --clear-groups "$MNT/suid-id" -u
	assert_equal 65534 "$output"
	# copy everything up (chown -h never follows), rename, then remove all
	(cd "$MNT" && find . -xdev -mindepth 1 -print0 | xargs -0 chown -h 0:0) 2>/dev/null || true
	(cd "$MNT" && find . -xdev -type f -print0 | xargs -0 touch -h) 2>/dev/null || true
	mv "$MNT/d" "$MNT/d-moved" || true
	mv "$MNT/r3" "$MNT/r3-moved" || true
	rm -rf "$MNT"/* 2>/dev/null || true
	(cd "$MNT" && find . -xdev -mindepth 1 -delete) 2>/dev/null || true
	ovp_umount
	sleep 0.5
	kill "$watcher"
	wait "$watcher" || true
	assert_equal "" "$(cat "$T/events")" "events in the canary directory"
	assert_equal secret "$(cat "$CANARY/secret")"
	# the lower layers are untouched too
	assert_equal "lower3 data" "$(cat "$LOWER3/sym/inside/f")"
	[ -c "$LOWER/mem" ] && [ -L "$LOWER/abs" ]
}

@test "refused redirects give the kernel's errors; names of 255 bytes and with newlines work" {
	need_ovp
	CANARY=$T/canary
	mkdir -p "$CANARY"
	mk_hostile
	ovp_mount "lowerdir=$LOWER:$LOWER2:$LOWER3"
	run_cmd '!' stat "$MNT/r1/."
	assert_contains "Permission denied" "$output"
	run_cmd '!' stat "$MNT/r4/."
	assert_contains "Invalid argument" "$output"
	local long
	long=$(printf 'n%.0s' {1..255})
	assert_equal long "$(cat "$MNT/$long")"
	assert_equal nl "$(cat "$MNT/with
newline")"
	run_cmd '!' stat "$MNT/${long}x"
	assert_contains "File name too long" "$output"
	# the AUFS markers and the xattr whiteout are hidden
	assert_equal "" "$(ls -A "$MNT/m")" "m/ lists nothing"
	ovp_umount
}
