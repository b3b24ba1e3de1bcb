#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""idmount.py SRC DST FROM:TO:COUNT

An idmapped bind mount of SRC on DST (open_tree, mount_setattr with
MOUNT_ATTR_IDMAP, move_mount): uids and gids FROM..FROM+COUNT-1 on disk
show as TO.. through it.  util-linux before 2.39 has no X-mount.idmap.
Needs root.  Exit 0, or 1 with "idmount: CALL: ERRNO-NAME" on stderr.
"""
import ctypes
import errno
import os
import sys

SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
SYS_MOUNT_SETATTR = 442
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOUNT_ATTR_IDMAP = 0x00100000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
CLONE_NEWUSER = 0x10000000

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def fail(call):
    err = ctypes.get_errno()
    sys.stderr.write("idmount: %s: %s\n" % (call, errno.errorcode.get(err, str(err))))
    sys.exit(1)


def userns_fd(mapping):
    """A user namespace with MAPPING as its uid and gid map, as an fd: a
    child makes it and waits while the parent writes the maps."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        os.close(done_w)
        ok = libc.unshare(CLONE_NEWUSER) == 0
        os.write(ready_w, b"1" if ok else b"0")
        os.read(done_r, 1)
        os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"1":
            sys.stderr.write("idmount: unshare(CLONE_NEWUSER) failed\n")
            sys.exit(1)
        for m in ("uid_map", "gid_map"):
            with open("/proc/%d/%s" % (pid, m), "w") as f:
                f.write(mapping + "\n")
        return os.open("/proc/%d/ns/user" % pid, os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(done_w)
        os.waitpid(pid, 0)


def main():
    if len(sys.argv) != 4:
        sys.stderr.write(__doc__)
        sys.exit(2)
    src, dst, spec = sys.argv[1:]
    frm, to, count = spec.split(":")
    ns = userns_fd("%s %s %s" % (frm, to, count))
    fd = libc.syscall(SYS_OPEN_TREE, AT_FDCWD, src.encode(),
                      OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)
    if fd < 0:
        fail("open_tree")
    attr = MountAttr(MOUNT_ATTR_IDMAP, 0, 0, ns)
    if libc.syscall(SYS_MOUNT_SETATTR, fd, b"", AT_EMPTY_PATH,
                    ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))) < 0:
        fail("mount_setattr")
    if libc.syscall(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, dst.encode(),
                    MOVE_MOUNT_F_EMPTY_PATH) < 0:
        fail("move_mount")


if __name__ == "__main__":
    main()
