#!/usr/bin/env bats
# SPDX-License-Identifier: GPL-2.0-or-later
# Merged directory listings: each name once, whiteouts hidden, large
# directories in linear time, stable offsets.

load helpers

@test "a 100,000-entry directory lists each name once, as kernel overlayfs" {
	need_root
	mkdir -p "$T/l1/big" "$T/l2/big"
	python3 - "$T" <<'PY'
import os, sys
t = sys.argv[1]
for i in range(60000):
    open(os.path.join(t, "l2/big", "n%06d" % i), "w").close()
for i in range(50000, 100000):
    open(os.path.join(t, "l1/big", "n%06d" % i), "w").close()
for i in range(0, 1000):          # whiteouts in the upper layer of the pair
    os.mknod(os.path.join(t, "l1/big", "w%06d" % i), 0o600 | 0o020000, 0)
    open(os.path.join(t, "l2/big", "w%06d" % i), "w").close()
PY
	kovl_mount "lowerdir=$T/l1:$T/l2" "$T/k"
	ovp_mount "lowerdir=$T/l1:$T/l2"
	ls -f "$T/m/big" | grep -v '^\.\.\?$' | sort > "$T/m.txt"
	ls -f "$T/k/big" | grep -v '^\.\.\?$' | sort > "$T/k.txt"
	assert_equal 100000 "$(wc -l < "$T/m.txt")"
	assert_equal "" "$(uniq -d "$T/m.txt" | head -3)" "duplicates"
	assert_files_equal "$T/k.txt" "$T/m.txt"
	assert_equal 100000 "$(find "$T/m/big" -mindepth 1 | wc -l)"
	ovp_umount
	umount "$T/k"
}

@test "offsets are stable: seekdir back to a telldir position" {
	need_root
	mkdir -p "$T/l1/d" "$T/l2/d"
	for i in $(seq 1 500); do touch "$T/l1/d/a$i" "$T/l2/d/b$i"; done
	ovp_mount "lowerdir=$T/l1:$T/l2"
	python3 - "$T/m/d" <<'PY'
import ctypes, ctypes.util, sys
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
class Dirent(ctypes.Structure):
    _fields_ = [("d_ino", ctypes.c_ulong), ("d_off", ctypes.c_long),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]
libc.opendir.restype = ctypes.c_void_p
libc.readdir.restype = ctypes.POINTER(Dirent)
libc.readdir.argtypes = [ctypes.c_void_p]
libc.telldir.argtypes = [ctypes.c_void_p]
libc.telldir.restype = ctypes.c_long
libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
d = libc.opendir(sys.argv[1].encode())
names, marks = [], {}
while True:
    if len(names) == 300:
        marks[300] = libc.telldir(d)
    e = libc.readdir(d)
    if not e:
        break
    names.append(e.contents.d_name)
assert len(names) == 1002, len(names)
assert len(set(names)) == len(names)
libc.seekdir(d, marks[300])
again = [libc.readdir(d).contents.d_name for _ in range(100)]
assert again == names[300:400], "seekdir did not come back"
PY
	ovp_umount
}
