#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""fileops.py DIR: O_TMPFILE, copy_file_range, flock, POSIX locks and
SEEK_DATA/SEEK_HOLE in DIR (a mount), printing one line per step with the
result or the errno name, so two mounts can be compared line by line.
DIR holds "lower" (a lower file of 3 bytes "abc") and "sub/" (a lower dir).
"""
import ctypes
import errno
import fcntl
import os
import sys

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
AT_SYMLINK_FOLLOW = 0x400


def link_fd(fd, path):
    # os.link() does not follow /proc/self/fd/N: name the file itself
    if libc.linkat(AT_FDCWD, f"/proc/self/fd/{fd}".encode(), AT_FDCWD,
                   os.fsencode(path), AT_SYMLINK_FOLLOW) < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)


def step(what, fn):
    try:
        r = fn()
        print(f"{what}: {r}")
    except OSError as e:
        print(f"{what}: {errno.errorcode.get(e.errno, e.errno)}")


def tmpfile(d):
    fd = os.open(os.path.join(d, "sub"), os.O_TMPFILE | os.O_RDWR, 0o640)
    os.write(fd, b"anonymous")
    st = os.fstat(fd)
    link_fd(fd, os.path.join(d, "sub", "named"))
    os.close(fd)
    st2 = os.lstat(os.path.join(d, "sub", "named"))
    with open(os.path.join(d, "sub", "named"), "rb") as f:
        data = f.read()
    return f"mode={oct(st.st_mode)} nlink0={st.st_nlink} nlink={st2.st_nlink} data={data!r}"


def tmpfile_unlinked(d):
    fd = os.open(d, os.O_TMPFILE | os.O_RDWR | os.O_EXCL, 0o600)
    os.write(fd, b"x" * 10)
    n = os.fstat(fd).st_size
    os.close(fd)
    return f"size={n} entries={sorted(os.listdir(d))}"


def cfr(d):
    src = os.open(os.path.join(d, "lower"), os.O_RDONLY)
    dst = os.open(os.path.join(d, "copy"), os.O_CREAT | os.O_WRONLY, 0o644)
    n = os.copy_file_range(src, dst, 3, 0, 0)
    n2 = os.copy_file_range(src, dst, 2, 1, 10)
    os.close(src)
    os.close(dst)
    with open(os.path.join(d, "copy"), "rb") as f:
        return f"{n} {n2} {f.read()!r}"


def flock(d):
    p = os.path.join(d, "lower")
    a = os.open(p, os.O_RDONLY)
    b = os.open(p, os.O_RDONLY)
    fcntl.flock(a, fcntl.LOCK_EX)
    try:
        fcntl.flock(b, fcntl.LOCK_EX | fcntl.LOCK_NB)
        r = "second lock granted"
    except OSError as e:
        r = "second lock " + errno.errorcode[e.errno]
    fcntl.flock(a, fcntl.LOCK_UN)
    fcntl.flock(b, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(a)
    os.close(b)
    return r + ", then granted"


def posix_lock(d):
    p = os.path.join(d, "copy")
    fd = os.open(p, os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX, 1, 0)
    pid = os.fork()
    if pid == 0:
        c = os.open(p, os.O_RDWR)
        try:
            fcntl.lockf(c, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
            os._exit(0)
        except OSError as e:
            os._exit(e.errno)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return errno.errorcode.get(os.waitstatus_to_exitcode(status), "granted")


def seek_hole(d):
    p = os.path.join(d, "sparse")
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    os.pwrite(fd, b"x", 1 << 20)
    r = (os.lseek(fd, 0, os.SEEK_DATA), os.lseek(fd, 0, os.SEEK_HOLE),
         os.lseek(fd, 4096, os.SEEK_DATA), os.lseek(fd, 1 << 20, os.SEEK_HOLE))
    os.close(fd)
    return r


d = sys.argv[1]
step("tmpfile", lambda: tmpfile(d))
step("tmpfile-unlinked", lambda: tmpfile_unlinked(d))
step("copy_file_range", lambda: cfr(d))
step("flock", lambda: flock(d))
step("posix lock", lambda: posix_lock(d))
step("seek data/hole", lambda: seek_hole(d))
