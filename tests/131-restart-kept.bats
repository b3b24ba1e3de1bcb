#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# restart=on: after a worker dies, a node id or file handle the kernel
# holds means the very object it named, never whatever now has its name
# (else ESTALE); the kernel keeps its node ids, so no dentry goes stale
# and nothing mounted below the overlay is detached.  Kernel overlayfs,
# which never restarts, keeps the old file: a descriptor held across a
# replacement reads what it read before.

load helpers.bash

# workers are killed on purpose here
OVP_EXPECT_RESTARTS=1

# a plain user's way into the test directory
open_tmpdir() {
	local d=$T
	while [ "$d" != / ]; do
		chmod o+x "$d"
		d=$(dirname "$d")
	done
}

@test "restart: a descriptor held on a file replaced by rename never reads the new file's data" {
	need_ovp
	need_resend
	need_cmd setpriv
	open_tmpdir
	echo public >"$UPPER/F"
	chmod 644 "$UPPER/F"
	echo secret >"$UPPER/S"
	chmod 600 "$UPPER/S"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=on passthrough=off
	chmod 755 "$MNT"
	# the user opens F (world-readable) and waits; root replaces it with S
	setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 - "$MNT/F" "$T/go" >"$T/out" 2>&1 3>&- <<'PY' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
try:
    print("read:", os.read(fd, 100).decode().strip())
except OSError as e:
    print("error:", os.strerror(e.errno))
PY
	user=$!
	sleep 0.5
	run_cmd 0 mv "$MNT/S" "$MNT/F"
	kill_worker
	touch "$T/go"
	wait "$user"
	out=$(cat "$T/out")
	echo "# user's descriptor: $out"
	[[ "$out" != *secret* ]]
	[[ "$out" == "read: public" || "$out" == "error: Stale file handle" ]]
	assert_equal secret "$(cat "$MNT/F")"
	ovp_umount
}

@test "restart: fchmod through a descriptor of an unlinked file never reaches the file now at its name" {
	need_ovp
	need_resend
	need_cmd setpriv
	open_tmpdir
	mkdir -m 1777 "$UPPER/tmp"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=on
	chmod 755 "$MNT"
	setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 - "$MNT/tmp/x" "$T/go" >"$T/out" 2>&1 3>&- <<'PY' &
import os, sys, time
a = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
b = os.open(sys.argv[1], os.O_RDWR)
os.unlink(sys.argv[1])
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
for what, call in (("fchmod", lambda: os.fchmod(a, 0o4777)),
                   ("ftruncate", lambda: os.ftruncate(b, 0))):
    try:
        call()
        print(what, "ok")
    except OSError as e:
        print(what, os.strerror(e.errno))
PY
	user=$!
	for ((i = 0; i < 100; i++)); do grep -q ready "$T/out" && break; sleep 0.05; done
	printf '#!/bin/sh\necho root program\n' >"$MNT/tmp/x"
	chmod 755 "$MNT/tmp/x"
	kill_worker
	touch "$T/go"
	rc=0
	wait "$user" || rc=$?
	cat "$T/out"
	assert_equal 0 "$rc" "the user's script"
	# root's file keeps its mode, owner and data
	assert_equal "755 0" "$(stat -c '%a %u' "$MNT/tmp/x")"
	assert_equal "755 0" "$(stat -c '%a %u' "$UPPER/tmp/x")"
	assert_equal "root program" "$("$MNT/tmp/x")"
	ovp_umount
}

@test "restart: after RENAME_EXCHANGE a held descriptor reads its own file" {
	need_ovp
	need_resend
	echo A >"$UPPER/a"
	echo B >"$UPPER/b"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=on passthrough=off
	run_cmd 0 python3 - "$MNT" "$OVP_PID" <<'PY'
import ctypes, os, signal, subprocess, sys, time
m, sup = sys.argv[1], int(sys.argv[2])
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(f"{m}/a", os.O_RDONLY)
RENAME_EXCHANGE = 2
if libc.renameat2(-100, f"{m}/a".encode(), -100, f"{m}/b".encode(), RENAME_EXCHANGE):
    sys.exit("renameat2: " + os.strerror(ctypes.get_errno()))
w = int(subprocess.check_output(["pgrep", "-P", str(sup)]).split()[0])
os.kill(w, signal.SIGKILL)
data = os.read(fd, 10)
assert data == b"A\n", data
assert open(f"{m}/a").read() == "B\n"
assert open(f"{m}/b").read() == "A\n"
PY
	ovp_umount
}

# mount_below_survives TIMEOUT-OPTION: a directory and a file bind-mounted
# inside the overlay stay mounted across a worker's death, as a container's
# /proc, /dev and /etc/resolv.conf are
mount_below_survives() {
	need_ovp
	need_resend
	mkdir -p "$LOWER/etc" "$LOWER/sub" "$T/other"
	echo lower >"$LOWER/etc/resolv.conf"
	echo other >"$T/other/o"
	echo bound >"$T/file"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=on "$@"
	run_cmd 0 mount --bind "$T/other" "$MNT/sub"
	run_cmd 0 mount --bind "$T/file" "$MNT/etc/resolv.conf"
	before=$(mounts_below "$MNT")
	kill_worker
	ls -lR "$MNT" >/dev/null
	kill_worker
	assert_equal other "$(cat "$MNT/sub/o")"
	assert_equal bound "$(cat "$MNT/etc/resolv.conf")"
	assert_equal "$before" "$(mounts_below "$MNT")" "mounts below the overlay"
	run_cmd 0 umount "$MNT/sub"
	run_cmd 0 umount "$MNT/etc/resolv.conf"
	assert_equal lower "$(cat "$MNT/etc/resolv.conf")"
	ovp_umount
}

@test "restart: mounts below the overlay stay mounted across two worker deaths" {
	mount_below_survives
}

@test "restart: mounts below the overlay stay, with names looked up again on every use (timeout=0)" {
	mount_below_survives timeout=0
}

@test "restart: a file open through passthrough when its worker died opens again, also through /proc/self/fd" {
	need_ovp
	need_resend
	echo lower >"$LOWER/f"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=on
	run_cmd 0 python3 - "$MNT" "$OVP_PID" <<'PY'
import os, signal, subprocess, sys
m, sup = sys.argv[1], int(sys.argv[2])
r = os.open(f"{m}/f", os.O_RDONLY)
w = int(subprocess.check_output(["pgrep", "-P", str(sup)]).split()[0])
os.kill(w, signal.SIGKILL)
assert os.read(r, 100) == b"lower\n"
for path in (f"{m}/f", f"/proc/self/fd/{r}"):
    with open(path) as f:
        assert f.read() == "lower\n", path
# a writer copies it up; new opens see the new data
with open(f"{m}/f", "a") as f:
    f.write("more\n")
assert open(f"{m}/f").read() == "lower\nmore\n"
os.close(r)
PY
	ovp_umount
	assert_equal "lower
more" "$(cat "$UPPER/f")"
}

# tmpfile_restart MNT SUPERVISOR [linked]: O_TMPFILE files across worker
# deaths; with "linked" only one linked before the death (found by its
# name), else also one still unnamed (found by its file handle)
TMPFILE_PY='
import ctypes, os, signal, subprocess, sys, time
m, sup = sys.argv[1], int(sys.argv[2])
linked_only = sys.argv[3:] == ["linked"]
libc = ctypes.CDLL(None, use_errno=True)
def link(fd, name):
    if libc.linkat(-100, f"/proc/self/fd/{fd}".encode(), -100,
                   name.encode(), 0x400) < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), name)
def kill_worker():
    w = int(subprocess.check_output(["pgrep", "-P", str(sup)]).split()[0])
    os.kill(w, signal.SIGKILL)
    for _ in range(200):
        out = subprocess.run(["pgrep", "-P", str(sup)], capture_output=True,
                             text=True).stdout.split()
        if out and int(out[0]) != w:
            return
        time.sleep(0.05)
    sys.exit("no new worker")
if not linked_only:
    # unnamed when the worker dies: written, stat-ed, linked by the next
    a = os.open(f"{m}/d", os.O_TMPFILE | os.O_RDWR, 0o640)
    os.write(a, b"one\n")
    kill_worker()
    os.write(a, b"two\n")
    assert os.fstat(a).st_size == 8, os.fstat(a)
    os.fchmod(a, 0o600)
    link(a, f"{m}/d/a")
    assert open(f"{m}/d/a").read() == "one\ntwo\n"
    assert oct(os.stat(f"{m}/d/a").st_mode & 0o777) == "0o600"
    os.close(a)
# linked before the worker died: the id its entry gave keeps it
b = os.open(f"{m}/d", os.O_TMPFILE | os.O_RDWR, 0o644)
os.write(b, b"bee\n")
link(b, f"{m}/d/b")
kill_worker()
os.write(b, b"more\n")
assert os.fstat(b).st_nlink == 1
assert open(f"{m}/d/b").read() == "bee\nmore\n"
os.close(b)
'

@test "restart: an O_TMPFILE file open when its worker died is written, stat'ed and linked after it" {
	need_ovp
	need_resend
	need_init_root # the next worker finds it by its handle (open_by_handle_at)
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=on
	# what keeps a file without a name once its worker is gone is the
	# kernel's backing file of a passthrough open
	[ "$(stat_value "$MNT" passthrough.active)" = 1 ] ||
		skip "passthrough is not active: nothing keeps the unnamed file"
	mkdir "$MNT/d"
	run_cmd 0 python3 -c "$TMPFILE_PY" "$MNT" "$OVP_PID"
	ovp_umount
	assert_equal "one
two" "$(cat "$UPPER/d/a")"
	assert_equal "bee
more" "$(cat "$UPPER/d/b")"
}

@test "restart, passthrough=off: an O_TMPFILE file linked before its worker died is found by its name" {
	need_ovp
	need_resend
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=on passthrough=off
	mkdir "$MNT/d"
	run_cmd 0 python3 -c "$TMPFILE_PY" "$MNT" "$OVP_PID" linked
	ovp_umount
	assert_equal "bee
more" "$(cat "$UPPER/d/b")"
}

@test "restart: record locks, OFD locks and flocks held when the worker dies are held after it" {
	need_ovp
	need_resend
	echo data >"$LOWER/f"
	echo data >"$LOWER/g"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=on
	run_cmd 0 python3 - "$MNT" "$OVP_PID" <<'PY'
import fcntl, os, signal, struct, subprocess, sys, time
m, sup = sys.argv[1], int(sys.argv[2])
F_OFD_SETLK = 37

def other(code):
    """a separate process's try, non-blocking: 'locked' or 'busy'"""
    return subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True).stdout.strip()

try_posix = f"""
import fcntl, os
fd = os.open("{m}/f", os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 100, 10)
    print("locked")
except OSError:
    print("busy")
"""
try_flock = f"""
import fcntl, os
fd = os.open("{m}/g", os.O_RDONLY)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("locked")
except OSError:
    print("busy")
"""
try_ofd = f"""
import fcntl, os, struct
fd = os.open("{m}/f", os.O_RDWR)
try:
    fcntl.fcntl(fd, 37, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 500, 10, 0))
    print("locked")
except OSError:
    print("busy")
"""
f = os.open(f"{m}/f", os.O_RDWR)
g = os.open(f"{m}/g", os.O_RDONLY)
o = os.open(f"{m}/f", os.O_RDWR)
fcntl.lockf(f, fcntl.LOCK_EX, 50, 50)                 # bytes 50..99
fcntl.flock(g, fcntl.LOCK_SH)
fcntl.fcntl(o, F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 505, 1, 0))
got = (other(try_posix), other(try_flock), other(try_ofd))
assert got == ("busy",) * 3, got
for i in range(2):
    w = int(subprocess.check_output(["pgrep", "-P", str(sup)]).split()[0])
    os.kill(w, signal.SIGKILL)
    for _ in range(200):
        n = subprocess.run(["pgrep", "-P", str(sup)], capture_output=True,
                           text=True).stdout.split()
        if n and int(n[0]) != w:
            break
        time.sleep(0.05)
    got = (other(try_posix), other(try_flock), other(try_ofd))
    assert got == ("busy",) * 3, (i, got)
# let go: the others get them
fcntl.lockf(f, fcntl.LOCK_UN, 50, 50)
os.close(g)
os.close(o)
assert (other(try_posix), other(try_flock), other(try_ofd)) == ("locked",) * 3
os.close(f)
PY
	ovp_umount
}
