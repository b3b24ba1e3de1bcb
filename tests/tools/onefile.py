#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""One file across copy-up (tests/125-one-file.bats).

    onefile.py prepare LOWER        the lower files every case uses
    onefile.py run MERGED CASE...   run cases on a mount, one line a step

Each case opens a lower file before its first write (a passthrough open
on overpass, so the write copies it up to a new FUSE inode) and then uses
it through the descriptors and names it holds: locks (flock, POSIX, OFD;
blocking, EDEADLK, interruption), the other name of a hard link, metadata
calls on the old descriptor.  The lines are compared between kernel
overlayfs and overpass, so they hold results, never pids or times.
"""
import errno
import fcntl
import os
import signal
import struct
import sys
import time

F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 36, 37, 38


def out(case, step, what):
    print(f"{case}: {step}: {what}", flush=True)


def err_name(e):
    if e.errno == errno.EDEADLK:
        return "EDEADLK"
    return errno.errorcode.get(e.errno, str(e.errno))


def attempt(fn):
    try:
        r = fn()
        return "ok" if r is None else r
    except OSError as e:
        return err_name(e)


def lk(fd, cmd, typ, start=0, length=0):
    """fcntl record lock; returns (type, start, len) for GETLK."""
    b = struct.pack("hhqqi", typ, os.SEEK_SET, start, length, 0)
    r = fcntl.fcntl(fd, cmd, b)
    t, _, s, n, _ = struct.unpack("hhqqi", r)
    return t, s, n


def child(fn):
    """Run fn in a child process; its exit status is fn's return value."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = fn() or 0
        finally:
            os._exit(code)
    return pid


def wait(pid):
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def pipe_wait(r):
    """Block until the other side writes a byte."""
    return os.read(r, 1)


def prepare(lower):
    for n in ("fl", "fl2", "px", "px2", "ofd", "dl", "in", "meta", "big"):
        with open(os.path.join(lower, n), "w") as f:
            f.write(f"{n} old data\n")
    with open(os.path.join(lower, "a"), "w") as f:
        f.write("old\n")
    os.link(os.path.join(lower, "a"), os.path.join(lower, "b"))
    os.chmod(os.path.join(lower, "meta"), 0o644)


def c_flock(d):
    p = f"{d}/fl"
    ro = os.open(p, os.O_RDONLY)
    os.read(ro, 1)  # a passthrough open on overpass
    fcntl.flock(ro, fcntl.LOCK_SH)
    out("flock", "shared through a reader", "ok")

    def writer():
        w = os.open(p, os.O_WRONLY | os.O_APPEND)  # copies up
        r = attempt(lambda: fcntl.flock(w, fcntl.LOCK_EX | fcntl.LOCK_NB))
        out("flock", "exclusive through an append open", r)
        r = attempt(lambda: fcntl.flock(w, fcntl.LOCK_SH | fcntl.LOCK_NB))
        out("flock", "shared through the append open", r)
        fcntl.flock(w, fcntl.LOCK_UN)
        return 0
    wait(child(writer))
    # the old descriptor still excludes a new one, and the other way round
    n = os.open(p, os.O_RDWR)
    out("flock", "exclusive through a new open", attempt(
        lambda: fcntl.flock(n, fcntl.LOCK_EX | fcntl.LOCK_NB)))
    fcntl.flock(ro, fcntl.LOCK_UN)
    out("flock", "exclusive once the reader unlocked", attempt(
        lambda: fcntl.flock(n, fcntl.LOCK_EX | fcntl.LOCK_NB)))
    out("flock", "shared through the old reader", attempt(
        lambda: fcntl.flock(ro, fcntl.LOCK_SH | fcntl.LOCK_NB)))
    # blocking: a waiter gets the lock when the holder closes
    r, w = os.pipe()

    def waiter():
        os.close(n)  # inherited: the flock lives while any copy does
        os.close(ro)
        x = os.open(p, os.O_RDONLY)
        os.write(w, b"1")
        fcntl.flock(x, fcntl.LOCK_SH)
        out("flock", "blocking shared after the holder closed", "ok")
        return 0
    pid = child(waiter)
    pipe_wait(r)
    time.sleep(0.3)
    out("flock", "waiter still waiting", "yes" if os.waitpid(pid, os.WNOHANG)[0] == 0 else "no")
    os.close(n)
    out("flock", "waiter status", wait(pid))
    os.close(ro)
    # a closed descriptor's flock is gone
    x = os.open(f"{d}/fl2", os.O_RDONLY)
    os.read(x, 1)
    fcntl.flock(x, fcntl.LOCK_EX)
    os.close(x)
    y = os.open(f"{d}/fl2", os.O_WRONLY | os.O_APPEND)
    # blocking: the release that drops it reaches the daemon just after
    # the close (doc/copy-up.md), a non-blocking try could come first
    out("flock", "after close", attempt(lambda: fcntl.flock(y, fcntl.LOCK_EX)))
    os.close(y)


def posix_case(d, name, setlk, setlkw, getlk):
    p = f"{d}/{name}"
    case = "ofd" if setlk == F_OFD_SETLK else "posix"
    r_, w_ = os.pipe()
    r2, w2 = os.pipe()

    def reader():
        fd = os.open(p, os.O_RDONLY)  # before the first write
        os.read(fd, 1)
        lk(fd, setlk, fcntl.F_RDLCK, 0, 10)
        os.write(w_, b"1")
        pipe_wait(r2)  # hold until told
        lk(fd, setlk, fcntl.F_UNLCK, 0, 10)
        os.write(w_, b"2")
        pipe_wait(r2)
        os.close(fd)
        return 0
    pid = child(reader)
    pipe_wait(r_)
    w = os.open(p, os.O_RDWR | os.O_APPEND)  # copies up
    out(case, "write lock over the reader's range", attempt(
        lambda: lk(w, setlk, fcntl.F_WRLCK, 5, 10)))
    out(case, "write lock beside it", attempt(
        lambda: lk(w, setlk, fcntl.F_WRLCK, 10, 10)))
    t, s, n = lk(w, getlk, fcntl.F_WRLCK, 0, 0)
    out(case, "getlk", f"type={t} start={s} len={n}")
    out(case, "read lock over the reader's range", attempt(
        lambda: lk(w, setlk, fcntl.F_RDLCK, 0, 5)))
    os.write(w2, b"1")
    pipe_wait(r_)
    out(case, "write lock once the reader unlocked", attempt(
        lambda: lk(w, setlk, fcntl.F_WRLCK, 0, 10)))
    lk(w, setlk, fcntl.F_UNLCK, 0, 0)
    # blocking: the writer waits for a reader that opened before it
    os.write(w2, b"2")
    wait(pid)
    rr, ww = os.pipe()

    def holder():
        fd = os.open(p, os.O_RDONLY)
        lk(fd, setlk, fcntl.F_RDLCK, 0, 0)
        os.write(ww, b"1")
        time.sleep(0.5)
        os.close(fd)  # drops the lock (POSIX: any close; OFD: last close)
        return 0
    pid = child(holder)
    pipe_wait(rr)
    out(case, "blocking write lock", attempt(lambda: lk(w, setlkw, fcntl.F_WRLCK, 0, 0)))
    out(case, "holder status", wait(pid))
    lk(w, setlk, fcntl.F_UNLCK, 0, 0)
    os.close(w)


def c_posix(d):
    posix_case(d, "px", fcntl.F_SETLK, fcntl.F_SETLKW, fcntl.F_GETLK)
    # POSIX locks go with any close by their process
    p = f"{d}/px2"
    a = os.open(p, os.O_RDONLY)
    b = os.open(p, os.O_RDONLY)
    lk(a, fcntl.F_SETLK, fcntl.F_RDLCK)
    os.close(b)

    def other():
        w = os.open(p, os.O_WRONLY | os.O_APPEND)
        out("posix", "after another close of the holder", attempt(
            lambda: lk(w, fcntl.F_SETLK, fcntl.F_WRLCK)))
        return 0
    wait(child(other))
    os.close(a)


def c_ofd(d):
    posix_case(d, "ofd", F_OFD_SETLK, F_OFD_SETLKW, F_OFD_GETLK)


def c_deadlock(d):
    p = f"{d}/dl"
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    r3, w3 = os.pipe()
    old = os.open(p, os.O_RDONLY)  # before the copy-up
    os.read(old, 1)
    lk(old, fcntl.F_SETLK, fcntl.F_RDLCK, 0, 1)

    def second():
        fd = os.open(p, os.O_RDWR)  # copies up
        lk(fd, fcntl.F_SETLK, fcntl.F_WRLCK, 1, 1)
        os.write(w1, b"1")
        pipe_wait(r2)
        time.sleep(0.3)  # let the first block on us
        r = attempt(lambda: lk(fd, fcntl.F_SETLKW, fcntl.F_WRLCK, 0, 1))
        os.write(w3, b"D" if r == "EDEADLK" else b"k")
        os.close(fd)
        return 0
    pid = child(second)
    pipe_wait(r1)
    os.write(w2, b"1")
    r = attempt(lambda: lk(old, fcntl.F_SETLKW, fcntl.F_RDLCK, 1, 1))
    # one of the two gets EDEADLK, whichever closes the cycle
    mine = "EDEADLK" if r == "EDEADLK" else "ok"
    if r == "EDEADLK":
        lk(old, fcntl.F_SETLK, fcntl.F_UNLCK, 0, 0)
    theirs = "EDEADLK" if pipe_wait(r3) == b"D" else "ok"
    wait(pid)
    out("deadlock", "outcomes", sorted([mine, theirs]))
    os.close(old)


class Alarm(Exception):
    pass


def c_intr(d):
    p = f"{d}/in"
    old = os.open(p, os.O_RDONLY)
    os.read(old, 1)
    lk(old, fcntl.F_SETLK, fcntl.F_RDLCK)

    def waiter():
        def on_alarm(sig, frame):
            raise Alarm()
        signal.signal(signal.SIGALRM, on_alarm)
        fd = os.open(p, os.O_RDWR)  # copies up
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        try:
            lk(fd, fcntl.F_SETLKW, fcntl.F_WRLCK)
            out("intr", "blocking write lock", "acquired")
        except Alarm:
            out("intr", "blocking write lock", "interrupted")
        out("intr", "write lock after the interruption", attempt(
            lambda: lk(fd, fcntl.F_SETLK, fcntl.F_WRLCK)))
        return 0
    wait(child(waiter))
    # a process killed while it waits ends (the kernel waits for the
    # answer to a request the server has read)
    r, w = os.pipe()

    def victim():
        fd = os.open(p, os.O_RDWR)
        os.write(w, b"1")
        lk(fd, fcntl.F_SETLKW, fcntl.F_WRLCK)
        return 0
    pid = child(victim)
    pipe_wait(r)
    time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    out("intr", "killed waiter", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    # the interrupted request left no lock behind
    lk(old, fcntl.F_SETLK, fcntl.F_UNLCK)
    fd = os.open(p, os.O_RDWR)
    out("intr", "write lock once the reader unlocked", attempt(
        lambda: lk(fd, fcntl.F_SETLK, fcntl.F_WRLCK)))
    os.close(fd)
    os.close(old)


def c_hardlink(d):
    def rd(n):
        with open(f"{d}/{n}") as f:
            return f.read()
    out("hardlink", "read a, b", repr((rd("a"), rd("b"))))
    held = os.open(f"{d}/a", os.O_RDONLY)
    os.read(held, 1)
    with open(f"{d}/b", "w") as f:
        f.write("new data\n")
    os.close(held)
    out("hardlink", "read a", repr(rd("a")))
    out("hardlink", "read b", repr(rd("b")))
    sa, sb = os.stat(f"{d}/a"), os.stat(f"{d}/b")
    out("hardlink", "sizes", f"a={sa.st_size} b={sb.st_size}")
    out("hardlink", "nlink", f"a={sa.st_nlink} b={sb.st_nlink}")
    out("hardlink", "same ino", sa.st_ino == sb.st_ino)


def c_meta(d):
    p = f"{d}/meta"
    fd = os.open(p, os.O_RDONLY)
    os.read(fd, 1)
    with open(p, "a") as f:
        f.write("appended\n")
    size = os.stat(p).st_size
    out("meta", "fstat size is the current", os.fstat(fd).st_size == size)
    out("meta", "fchmod", attempt(lambda: os.fchmod(fd, 0o600)))
    out("meta", "mode by name", oct(os.stat(p).st_mode & 0o7777))
    out("meta", "mode by fstat", oct(os.fstat(fd).st_mode & 0o7777))
    out("meta", "fchown", attempt(lambda: os.fchown(fd, 1000, 1000)))
    st = os.stat(p)
    out("meta", "owner by name", f"{st.st_uid}:{st.st_gid}")
    out("meta", "futimens", attempt(lambda: os.utime(fd, ns=(1000, 2000))))
    out("meta", "times by name", (os.stat(p).st_atime_ns, os.stat(p).st_mtime_ns))
    out("meta", "fsetxattr", attempt(lambda: os.setxattr(fd, "user.k", b"v")))
    out("meta", "getxattr by name", attempt(lambda: os.getxattr(p, "user.k")))
    out("meta", "fgetxattr", attempt(lambda: os.getxattr(fd, "user.k")))
    out("meta", "flistxattr", attempt(lambda: "user.k" in os.listxattr(fd)))
    out("meta", "fremovexattr", attempt(lambda: os.removexattr(fd, "user.k")))
    out("meta", "getxattr by name after", attempt(lambda: os.getxattr(p, "user.k")))
    out("meta", "fsync", attempt(lambda: os.fsync(fd)))
    out("meta", "fdatasync", attempt(lambda: os.fdatasync(fd)))
    out("meta", "fallocate read-only", attempt(lambda: os.posix_fallocate(fd, 0, 10)))
    os.close(fd)


def c_olddata(d):
    """What a descriptor opened before the copy-up reads afterwards (kernel
    overlayfs: the new data; overpass: the same when the daemon serves the
    descriptor, the lower data when it is a passthrough open)."""
    p = f"{d}/big"
    fd = os.open(p, os.O_RDONLY)
    out("olddata", "read before", repr(os.pread(fd, 3, 0)))
    with open(p, "r+") as f:
        f.write("NEW")
        f.seek(0, os.SEEK_END)
        f.write("appended\n")
    out("olddata", "read after", repr(os.pread(fd, 100, 0)))
    out("olddata", "fstat size", os.fstat(fd).st_size)
    os.close(fd)


CASES = {"flock": c_flock, "posix": c_posix, "ofd": c_ofd,
         "deadlock": c_deadlock, "intr": c_intr, "hardlink": c_hardlink,
         "meta": c_meta, "olddata": c_olddata}

if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2])
    else:
        for c in sys.argv[3:] or [c for c in CASES if c != "olddata"]:
            CASES[c](sys.argv[2])
