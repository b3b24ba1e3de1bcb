#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# Merged directory listings: each name once, whiteouts hidden, a large
# directory in bounded time, the same names as kernel overlayfs, offsets
# that stay valid for the life of an open directory, d_type and d_ino.

load helpers

# A directory "big" split across $LOWER and $UPPER:
#   lower: n000000..n059999, w000000..w000999 (files)
#   upper: n050000..n099999 (files; 10,000 names in both layers),
#          whiteouts (char 0/0) for n000000..n000499 and all w* names,
#          and for x000..x099, which exist nowhere below
# Visible: 59,500 + 50,000 - 10,000 = 99,500 names.
BIG_COUNT=99500

make_big() {
	mkdir -p "$LOWER/big" "$UPPER/big"
	python3 - "$LOWER/big" "$UPPER/big" <<'PY'
import os, stat, sys
low, up = sys.argv[1], sys.argv[2]
def touch(d, n):
    os.close(os.open(os.path.join(d, n), os.O_CREAT | os.O_WRONLY, 0o644))
def wh(d, n):
    os.mknod(os.path.join(d, n), stat.S_IFCHR | 0o600, 0)
for i in range(60000):
    touch(low, "n%06d" % i)
for i in range(1000):
    touch(low, "w%06d" % i)
for i in range(50000, 100000):
    touch(up, "n%06d" % i)
for i in range(500):
    wh(up, "n%06d" % i)
for i in range(1000):
    wh(up, "w%06d" % i)
for i in range(100):
    wh(up, "x%03d" % i)
PY
}

# names DIR: the names readdir gives, without . and .., unsorted.
names() {
	ls -f "$1" | grep -vx '\.\|\.\.'
}

@test "a 100,000-entry directory split across lower and upper: each name once, as kernel overlayfs" {
	need_ovp
	need_kovl
	make_big
	# the oracle, read-only on the same two directories
	kovl_mount "lowerdir=$UPPER:$LOWER"
	names "$KMNT/big" | sort >"$T/kernel"
	kovl_umount
	assert_equal "$BIG_COUNT" "$(wc -l <"$T/kernel")" "kernel overlayfs count"

	ovp_mount "lowerdir=$LOWER" "upperdir=$UPPER" "workdir=$WORK"
	local start=$SECONDS
	run_cmd 0 --timeout 60 bash -c "ls -f '$MNT/big' >'$T/raw1'"
	echo "# listing took $((SECONDS - start))s"
	assert_equal 1 "$(grep -cx '\.' "$T/raw1")" "'.' listed once"
	assert_equal 1 "$(grep -cx '\.\.' "$T/raw1")" "'..' listed once"
	grep -vx '\.\|\.\.' "$T/raw1" | sort >"$T/ovp1"
	assert_equal "" "$(uniq -d "$T/ovp1" | head -n 5)" "names listed twice"
	assert_equal "$BIG_COUNT" "$(wc -l <"$T/ovp1")" "number of names"
	assert_files_equal "$T/kernel" "$T/ovp1" "kernel overlayfs vs overpass"
	# again, and with find, which reads with another buffer size
	names "$MNT/big" | sort >"$T/ovp2"
	assert_files_equal "$T/ovp1" "$T/ovp2" "second listing"
	run_cmd 0 --timeout 60 bash -c "find '$MNT/big' -mindepth 1 -printf '%f\n' | sort >'$T/find'"
	assert_files_equal "$T/ovp1" "$T/find" "find"
	assert_equal 0 "$(find "$MNT/big" -mindepth 1 ! -type f | wc -l)" "entries that are not files"
	# names from both layers, the upper copy winning
	assert_equal "" "$(cat "$MNT/big/n055555")"
	[ -f "$MNT/big/n000500" ]
	[ ! -e "$MNT/big/n000499" ]
	[ ! -e "$MNT/big/w000999" ]
	ovp_umount
}

# A merged directory d: 600 files in $LOWER, 600 in $LOWER2, 100 of the
# $LOWER2 ones whited out in $LOWER; with -u, $UPPER also has 200 more.
make_mid() {
	mkdir -p "$LOWER/d" "$LOWER2/d"
	local i
	for i in $(seq 1 600); do : >"$LOWER/d/a$i"; : >"$LOWER2/d/b$i"; done
	for i in $(seq 1 100); do mknod "$LOWER/d/b$i" c 0 0; done
	if [ "${1:-}" = -u ]; then
		mkdir -p "$UPPER/d"
		for i in $(seq 1 200); do : >"$UPPER/d/c$i"; done
	fi
}

@test "telldir/seekdir: a saved position leads back to the same entries" {
	need_ovp
	make_mid -u
	ovp_mount "lowerdir=$LOWER:$LOWER2" "upperdir=$UPPER" "workdir=$WORK"
	run_cmd 0 python3 - "$MNT/d" <<'PY'
import ctypes, ctypes.util, sys
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
class Dirent(ctypes.Structure):
    _fields_ = [("d_ino", ctypes.c_ulong), ("d_off", ctypes.c_long),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]
libc.opendir.restype = ctypes.c_void_p
libc.opendir.argtypes = [ctypes.c_char_p]
libc.readdir.restype = ctypes.POINTER(Dirent)
libc.readdir.argtypes = [ctypes.c_void_p]
libc.telldir.argtypes = [ctypes.c_void_p]
libc.telldir.restype = ctypes.c_long
libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
libc.rewinddir.argtypes = [ctypes.c_void_p]
libc.closedir.argtypes = [ctypes.c_void_p]

def read_all(d, marks):
    names, pos = [], {}
    while True:
        if len(names) in marks:
            pos[len(names)] = libc.telldir(d)
        e = libc.readdir(d)
        if not e:
            return names, pos
        names.append(e.contents.d_name)

d = libc.opendir(sys.argv[1].encode())
marks = {0, 1, 2, 150, 333, 500, 777, 1000, 1250}
names, pos = read_all(d, marks)
want = 2 + 600 + 500 + 200
assert len(names) == want, "%d entries, want %d" % (len(names), want)
assert len(set(names)) == len(names), "duplicates"
for m in sorted(pos, reverse=True):
    libc.seekdir(d, pos[m])
    again = []
    for _ in range(min(50, want - m)):
        e = libc.readdir(d)
        assert e, "readdir ended early after seekdir to mark %d" % m
        again.append(e.contents.d_name)
    assert again == names[m:m + len(again)], "seekdir to mark %d: %r vs %r" % (m, again[:3], names[m:m + 3])
libc.rewinddir(d)
names2, _ = read_all(d, set())
assert names2 == names, "rewinddir gave another listing"
# a second handle on the same directory, read interleaved with the first
d2 = libc.opendir(sys.argv[1].encode())
libc.rewinddir(d)
a, b = [], []
while True:
    e1 = libc.readdir(d)
    e2 = libc.readdir(d2)
    if e1: a.append(e1.contents.d_name)
    if e2: b.append(e2.contents.d_name)
    if not e1 and not e2:
        break
assert sorted(a) == sorted(names) and sorted(b) == sorted(names), "interleaved handles"
libc.closedir(d)
libc.closedir(d2)
print("ok", len(names))
PY
	ovp_umount
}

@test "getdents64 with a tiny buffer: every name once, as kernel overlayfs" {
	need_ovp
	need_kovl
	make_mid
	kovl_mount "lowerdir=$LOWER:$LOWER2"
	ovp_mount "lowerdir=$LOWER:$LOWER2"
	local m
	for m in "$KMNT" "$MNT"; do
		run_cmd 0 python3 - "$m/d" <<'PY'
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
SYS_getdents64 = 217
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
buf = ctypes.create_string_buffer(128)   # room for 2 or 3 entries a call
names, calls = [], 0
while True:
    n = libc.syscall(SYS_getdents64, fd, buf, len(buf))
    assert n >= 0, os.strerror(ctypes.get_errno())
    if n == 0:
        break
    calls += 1
    off = 0
    while off < n:
        ino, doff, reclen, typ = struct.unpack_from("QqHB", buf.raw, off)
        names.append(buf.raw[off + 19:off + reclen].split(b"\0", 1)[0].decode())
        off += reclen
os.close(fd)
assert len(names) == len(set(names)), "duplicates"
print("\n".join(sorted(names)))
PY
		echo "$output" >"$T/tiny.${m##*/}"
	done
	assert_equal 1102 "$(wc -l <"$T/tiny.merged")" "entries with . and .."
	assert_files_equal "$T/tiny.kmerged" "$T/tiny.merged"
	ovp_umount
	kovl_umount
}

@test "changing a directory while it is read: names that stay are listed once" {
	need_ovp
	make_mid -u
	ovp_mount "lowerdir=$LOWER:$LOWER2" "upperdir=$UPPER" "workdir=$WORK"
	run_cmd 0 python3 - "$MNT/d" <<'PY'
import os, sys
d = sys.argv[1]
before = set(os.listdir(d))
fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
it = os.scandir(fd)
seen = []
for _ in range(300):
    seen.append(next(it).name)
removed = set(seen[:50]) | set(sorted(before - set(seen))[:50])
for n in removed:
    os.unlink(os.path.join(d, n))
for i in range(100):
    open(os.path.join(d, "new%d" % i), "w").close()
for e in it:
    seen.append(e.name)
it.close()
dups = {n for n in seen if seen.count(n) > 1}
assert not dups, "listed twice: %s" % sorted(dups)[:5]
missing = (before - removed) - set(seen)
assert not missing, "never listed: %s" % sorted(missing)[:5]
after = set(os.listdir(d))
assert after == (before - removed) | {"new%d" % i for i in range(100)}, "listing afterwards"
print("ok", len(seen))
PY
	ovp_umount
}

@test "rewinddir sees entries created since the directory was opened" {
	need_ovp
	make_mid -u
	ovp_mount "lowerdir=$LOWER:$LOWER2" "upperdir=$UPPER" "workdir=$WORK"
	run_cmd 0 python3 - "$MNT/d" <<'PY'
import os, sys
d = sys.argv[1]
fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
first = set(os.listdir(fd))
open(os.path.join(d, "late"), "w").close()
os.unlink(os.path.join(d, "a1"))
os.lseek(fd, 0, os.SEEK_SET)          # rewinddir
second = set(os.listdir(fd))
assert "late" in second and "a1" not in second, "stale listing after rewind"
assert second == (first - {"a1"}) | {"late"}
PY
	ovp_umount
}

@test "directories list without OPENDIR or RELEASEDIR: the first gets ENOSYS" {
	need_ovp
	make_mid -u
	ovp_mount "lowerdir=$LOWER:$LOWER2" "upperdir=$UPPER" "workdir=$WORK"
	local i
	for i in 1 2 3 4 5; do
		ls "$MNT/d" >/dev/null
		ls -a "$MNT" >/dev/null
	done
	assert_equal 1 "$(stat_value "$MNT" requests.OPENDIR)" "OPENDIR requests"
	run ! stat_value "$MNT" requests.RELEASEDIR
	assert_equal 1 "$(ls -f "$MNT/d" | grep -c '^c1$')" "c1 listed once"
	ovp_umount
}

@test "two readers of one directory, one rewinding, while it changes: each lists every name that stays once" {
	need_ovp
	make_mid -u
	ovp_mount "lowerdir=$LOWER:$LOWER2" "upperdir=$UPPER" "workdir=$WORK"
	run_cmd 0 python3 - "$MNT/d" <<'PY'
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
d = sys.argv[1]
buf = ctypes.create_string_buffer(256)
def chunk(fd):
    n = libc.syscall(217, fd, buf, len(buf))
    assert n >= 0, os.strerror(ctypes.get_errno())
    names, off = [], 0
    while off < n:
        _, _, reclen, _ = struct.unpack_from("QqHB", buf.raw, off)
        names.append(buf.raw[off + 19:off + reclen].split(b"\0", 1)[0].decode())
        off += reclen
    return names, n == 0
before = set(os.listdir(d))
a = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
b = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
seen_a, seen_b, done_a, done_b, step = [], [], False, False, 0
removed, added = set(), set()
while not (done_a and done_b):
    step += 1
    if not done_a:
        names, done_a = chunk(a)
        seen_a += names
    if not done_b:
        names, done_b = chunk(b)
        seen_b += names
    if step % 7 == 0:
        victim = sorted(before - removed)[step]
        os.unlink(os.path.join(d, victim))
        removed.add(victim)
        open(os.path.join(d, "new%d" % step), "w").close()
        added.add("new%d" % step)
    if step == 40:          # b starts again from the beginning
        os.lseek(b, 0, os.SEEK_SET)
        seen_b = []
for who, seen in (("a", seen_a), ("b", seen_b)):
    real = [n for n in seen if n not in (".", "..")]
    dups = {n for n in real if real.count(n) > 1}
    assert not dups, "%s listed twice: %s" % (who, sorted(dups)[:5])
    missing = (before - removed) - set(real)
    assert not missing, "%s never listed: %s" % (who, sorted(missing)[:5])
    extra = set(real) - before - added
    assert not extra, "%s listed unknown names: %s" % (who, sorted(extra)[:5])
assert set(os.listdir(d)) == (before - removed) | added, "listing afterwards"
print("ok", len(seen_a), len(seen_b))
PY
	ovp_umount
}

@test "d_type and d_ino agree with lstat, in merged and plain directories" {
	need_ovp
	need_kovl
	need_mknod
	mkdir -p "$LOWER/d/sub" "$LOWER2/d/sub2" "$LOWER2/plain/x"
	: >"$LOWER/d/file"; ln -s file "$LOWER/d/link"; mkfifo "$LOWER/d/fifo"
	mknod "$LOWER/d/chr" c 1 3; : >"$LOWER2/d/low-file"; mkdir "$LOWER2/d/low-dir"
	: >"$LOWER2/plain/f"; ln -s x "$LOWER2/plain/l"
	: >"$LOWER2/rootfile"
	local m
	kovl_mount "lowerdir=$LOWER:$LOWER2"
	ovp_mount "lowerdir=$LOWER:$LOWER2"
	for m in "$KMNT" "$MNT"; do
		run_cmd 0 python3 - "$m" <<'PY'
import os, stat, sys
root = sys.argv[1]
out = []
for d in ("", "d", "plain", "d/sub"):
    with os.scandir(os.path.join(root, d)) as it:
        for e in it:
            st = os.lstat(e.path)
            kind = ("dir" if e.is_dir(follow_symlinks=False) else
                    "link" if e.is_symlink() else
                    "file" if e.is_file(follow_symlinks=False) else "other")
            real = ("dir" if stat.S_ISDIR(st.st_mode) else "link" if stat.S_ISLNK(st.st_mode)
                    else "file" if stat.S_ISREG(st.st_mode) else "other")
            assert kind == real, "%s: d_type says %s, lstat %s" % (e.path, kind, real)
            assert e.inode() == st.st_ino, "%s: d_ino %d, st_ino %d" % (e.path, e.inode(), st.st_ino)
            out.append("%s %s" % (os.path.join(d, e.name), kind))
print("\n".join(sorted(out)))
PY
		echo "$output" >"$T/dtype.${m##*/}"
	done
	assert_files_equal "$T/dtype.kmerged" "$T/dtype.merged"
	ovp_umount
	kovl_umount
}

@test "a merged directory whose entries are all whited out lists empty" {
	need_ovp
	mkdir -p "$LOWER/d" "$LOWER2/d"
	: >"$LOWER2/d/a"; : >"$LOWER2/d/b"
	mknod "$LOWER/d/a" c 0 0
	: >"$LOWER/d/.wh.b"
	ovp_mount "lowerdir=$LOWER:$LOWER2"
	assert_equal "" "$(ls -A "$MNT/d")"
	assert_equal ". .." "$(ls -fa "$MNT/d" | sort | tr '\n' ' ' | sed 's/ $//')"
	ovp_umount
}
