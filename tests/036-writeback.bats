#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# writeback=1 (src/file.c: ovl_writeback_init, data_flags): the kernel's
# writeback cache where passthrough is not used.  Writes reach the daemon
# as whole pages at offsets the kernel chooses, reads fill pages of
# write-only opens, and O_APPEND is the kernel's: the results must still
# be kernel overlayfs's.

load helpers.bash

# What a program sees of writes through the cache, one line per step:
# partial pages of a write-only open of a lower file, O_APPEND from two
# descriptors, truncate, a shared mmap write, fsync; then the data.
WB_OPS=$(cat <<'PY'
import hashlib, mmap, os, sys
d = sys.argv[1]
def h(p):
    with open(p, "rb") as f:
        b = f.read()
    return f"{len(b)} {hashlib.sha1(b).hexdigest()[:12]}"
p = f"{d}/lowerfile"
fd = os.open(p, os.O_WRONLY)
os.pwrite(fd, b"XY", 5)
os.pwrite(fd, b"Z" * 100, 4090)
os.pwrite(fd, b"end", 20000)
os.close(fd)
print("write-only partial pages:", h(p))
a = f"{d}/log"
fa = os.open(a, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
fb = os.open(a, os.O_WRONLY | os.O_APPEND)
for i in range(50):
    os.write(fa, b"a%03d\n" % i)
    os.write(fb, b"b%03d-" % i * 3)
os.pwrite(fa, b"!", 0)  # O_APPEND: pwrite appends on Linux
os.close(fa)
os.close(fb)
print("two appenders:", h(a))
t = f"{d}/lowertrunc"
fd = os.open(t, os.O_RDWR)
os.write(fd, b"head")
os.ftruncate(fd, 6000)
os.pwrite(fd, b"tail", 7000)
os.fsync(fd)
os.close(fd)
print("truncate and extend:", h(t))
m = f"{d}/mapped"
fd = os.open(m, os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, 8192)
mm = mmap.mmap(fd, 8192)
mm[100:105] = b"hello"
mm[5000:5003] = b"map"
mm.flush()
mm.close()
os.write(fd, b"after")
os.close(fd)
print("mmap write:", h(m))
st = os.stat(p)
print("sizes:", st.st_size, os.stat(a).st_size, os.stat(t).st_size, os.stat(m).st_size)
PY
)

@test "writeback=1: write-only partial pages, two O_APPEND writers, truncate, mmap writes and fsync as kernel overlayfs" {
	need_ovp
	need_kovl
	head -c 10000 /dev/urandom >"$LOWER/lowerfile"
	head -c 9000 /dev/urandom >"$LOWER/lowertrunc"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" passthrough=off writeback=1
	assert_equal 1 "$(stat_value "$MNT" writeback.active)" "writeback.active"
	kovl_mount
	python3 -c "$WB_OPS" "$KMNT" >"$T/kernel"
	python3 -c "$WB_OPS" "$MNT" >"$T/overpass"
	assert_files_equal "$T/kernel" "$T/overpass" "what the program saw"
	ovp_umount
	kovl_umount
	# and what reached the uppers once the mounts are gone
	for f in lowerfile log lowertrunc mapped; do
		run_cmd 0 cmp "$KUPPER/$f" "$UPPER/$f"
	done
}

@test "writeback=1: each append to an append-only file (chattr +a) lands once, as on kernel overlayfs" {
	need_ovp
	need_kovl
	need_cmd chattr
	printf 'start\n' >"$LOWER/app"
	set_flags +a "$LOWER/app" || skip "the layers' filesystem has no chattr +a"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" passthrough=off writeback=1
	kovl_mount
	for m in "$KMNT" "$MNT"; do
		printf 'line 0\n' >>"$m/app" # the copy-up, after which the
		# lower file's flag is no longer read: cleared at once, so that
		# the test directory stays removable whatever fails next
		[ "$m" = "$KMNT" ] || chattr -a "$LOWER/app"
		for i in 1 2 3; do
			printf 'line %s\n' "$i" >>"$m/app"
		done
		python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
for i in range(3):
    os.write(fd, b"x" * 3000)
os.close(fd)' "$m/app"
		run_cmd 1 truncate -s 0 "$m/app"
	done
	ovp_umount
	kovl_umount
	run_cmd 0 cmp "$KUPPER/app" "$UPPER/app"
	assert_equal $((6 + 4 * 7 + 9000)) "$(stat -c %s "$UPPER/app")" "size of the append-only file"
}

@test "writeback=1, restart: pages written before the worker died reach the file through the next worker, 8 kills" {
	need_ovp
	need_resend
	head -c 50000 /dev/urandom >"$LOWER/f"
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" restart=on restart_limit=0 passthrough=off writeback=1
	assert_equal 1 "$(stat_value "$MNT" writeback.active)" "writeback.active"
	# The write-back right after each kill is often taken by a thread of
	# the dying worker: its buffer's pages must not need a fault (loop.c
	# recv_buf_map), else the kernel ends the WRITE with EIO and close
	# fails with the data lost (about one kill in three before).  The
	# worker is found before the writes: a child that closes an inherited
	# descriptor flushes the dirty pages.
	run_cmd 0 python3 - "$MNT" "$OVP_PID" "$T/expected" <<'PY'
import os, signal, subprocess, sys, time
m, sup, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(f"{m}/f", "rb") as f:
    want = bytearray(f.read())
def worker(old):
    for _ in range(200):
        pids = subprocess.check_output(["pgrep", "-P", str(sup)]).split()
        if pids and int(pids[0]) != old:
            return int(pids[0])
        time.sleep(0.05)
    sys.exit(f"no worker after {old}")
w = 0
for i in range(8):
    w = worker(w)
    fd = os.open(f"{m}/f", os.O_WRONLY)
    for off in (0, 4096 * 3 + 7, 40000):
        os.pwrite(fd, bytes([65 + i]) * 300, off)
        want[off:off + 300] = bytes([65 + i]) * 300
    os.kill(w, signal.SIGKILL)  # the pages are dirty in the kernel
    os.pwrite(fd, b"after%d" % i, 100)
    want[100:106] = b"after%d" % i
    os.close(fd)  # writes the pages back, then FLUSH: no error
open(out, "wb").write(want)
PY
	run_cmd 0 cmp "$T/expected" "$MNT/f"
	OVP_EXPECT_RESTARTS=1 ovp_umount
	run_cmd 0 cmp "$T/expected" "$UPPER/f"
}

@test "writeback=1: truncate(2) to a file's own size keeps its times (the man page), ftruncate and O_TRUNC set them, as kernel overlayfs" {
	need_ovp
	need_kovl
	for f in same grow ftr otr; do printf x >"$LOWER/$f"; done
	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK" passthrough=off writeback=1
	kovl_mount
	# the sleep: past the timestamp granularity of kernels without
	# fine-grained ctime (6.1: a tick), else "now" equals the utime's
	local prog='import os, sys, time
T = 10**18
for name, how in (("same", "truncate 1"), ("grow", "truncate 2"),
                  ("ftr", "ftruncate 1"), ("otr", "O_TRUNC")):
    p = f"{sys.argv[1]}/{name}"
    os.utime(p, ns=(T, T))
    c = os.stat(p).st_ctime_ns
    time.sleep(0.05)
    if how.startswith("truncate"):
        os.truncate(p, int(how.split()[1]))
    elif how.startswith("ftruncate"):
        fd = os.open(p, os.O_RDWR)
        os.ftruncate(fd, 1)
        os.close(fd)
    else:
        os.close(os.open(p, os.O_WRONLY | os.O_TRUNC))
    st = os.stat(p)
    print(how, "mtime", "kept" if st.st_mtime_ns == T else "now",
          "ctime", "kept" if st.st_ctime_ns == c else "now")'
	python3 -c "$prog" "$KMNT" >"$T/kernel"
	python3 -c "$prog" "$MNT" >"$T/overpass"
	assert_files_equal - "$T/kernel" <<'OUT'
truncate 1 mtime now ctime now
truncate 2 mtime now ctime now
ftruncate 1 mtime now ctime now
O_TRUNC mtime now ctime now
OUT
	# the one difference the man page gives
	assert_files_equal - "$T/overpass" <<'OUT'
truncate 1 mtime kept ctime kept
truncate 2 mtime now ctime now
ftruncate 1 mtime now ctime now
O_TRUNC mtime now ctime now
OUT
	ovp_umount
	kovl_umount
}
