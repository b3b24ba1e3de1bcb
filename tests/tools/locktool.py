#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""locktool.py: lock scenarios for tests/140-locks.bats and 085-io-uring.bats.

  locktool.py apart A B
      A flock and a POSIX write lock on A, held; then, from other owners,
      a non-blocking flock and POSIX write lock on B.  Prints what B got:
      two different files must not share locks.
  locktool.py bound FILE MAX UID
      A process of UID takes OFD write locks on every other byte of FILE,
      until one fails or MAX are held, and prints how many and the error,
      then what one more open file of hers gets; while she holds them, a
      root process takes a lock far past them.  Descriptors are opened
      before dropping to UID (the test's directory is not hers).
  locktool.py ringfair MNT UID [N]
      Over FUSE io_uring: a holder on CPU 1 holds flocks on MNT/a and
      MNT/b; N processes (6 by default) on CPU 0, of the four users UID to
      UID+3 in turn, wait for MNT/a; then root, on CPU 0, waits for MNT/b.
      The holder lets b go, then a.  Prints what root's wait got, and how
      the others ended.
"""
import errno
import fcntl
import os
import struct
import sys
import time


def lk(typ, start, length):
    return struct.pack("hhqqi", typ, os.SEEK_SET, start, length, 0)


def result(fn):
    try:
        fn()
        return "granted"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def apart(a, b):
    fa = os.open(a, os.O_RDWR)
    fcntl.flock(fa, fcntl.LOCK_EX)
    fcntl.fcntl(fa, fcntl.F_SETLK, lk(fcntl.F_WRLCK, 0, 0))
    fb = os.open(b, os.O_RDWR)
    print("flock on the other file:",
          result(lambda: fcntl.flock(fb, fcntl.LOCK_EX | fcntl.LOCK_NB)))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        f = os.open(b, os.O_RDWR)
        os.write(w, result(lambda: fcntl.fcntl(
            f, fcntl.F_SETLK, lk(fcntl.F_WRLCK, 0, 0))).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    print("POSIX lock on the other file:", os.read(r, 100).decode())


def bound(path, most, uid):
    r, w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        fd = os.open(path, os.O_RDWR)
        other = os.open(path, os.O_RDWR)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        n, err = 0, "none"
        while n < most:
            try:
                fcntl.fcntl(fd, fcntl.F_OFD_SETLK,
                            lk(fcntl.F_WRLCK, 2 * n, 1))
            except OSError as e:
                err = errno.errorcode.get(e.errno, str(e.errno))
                break
            n += 1
        mine = result(lambda: fcntl.fcntl(
            other, fcntl.F_OFD_SETLK, lk(fcntl.F_WRLCK, 2 * most + 10, 1)))
        os.write(w, f"user held {n} then {err}\nuser's other open file: {mine}\n".encode())
        os.read(go_r, 1)
        os._exit(0)
    os.close(w)
    out = b""
    while not out.endswith(b"\n") or out.count(b"\n") < 2:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        out += chunk
    print(out.decode(), end="", flush=True)
    fd = os.open(path, os.O_RDWR)
    print("root's open file:", result(lambda: fcntl.fcntl(
        fd, fcntl.F_OFD_SETLK, lk(fcntl.F_WRLCK, 2 * most + 20, 1))))
    os.write(go_w, b"x")
    os.waitpid(pid, 0)


def ringfair(mnt, uid, n):
    a, b = os.path.join(mnt, "a"), os.path.join(mnt, "b")
    os.sched_setaffinity(0, {1})
    ha, hb = os.open(a, os.O_RDWR), os.open(b, os.O_RDWR)
    fcntl.flock(ha, fcntl.LOCK_EX)
    fcntl.flock(hb, fcntl.LOCK_EX)
    r, w = os.pipe()
    kids = []
    for i in range(n):
        pid = os.fork()
        if pid == 0:
            os.sched_setaffinity(0, {0})
            f = os.open(a, os.O_RDWR)
            os.setgroups([])
            os.setgid(uid + i % 4)
            os.setuid(uid + i % 4)
            res = result(lambda: fcntl.flock(f, fcntl.LOCK_EX))
            os.write(w, ("user: " + res + "\n").encode())
            os._exit(0)
        kids.append(pid)
    time.sleep(1)
    pid = os.fork()
    if pid == 0:
        os.sched_setaffinity(0, {0})
        f = os.open(b, os.O_RDWR)
        os.write(w, ("root: " + result(
            lambda: fcntl.flock(f, fcntl.LOCK_EX)) + "\n").encode())
        os._exit(0)
    time.sleep(1)
    fcntl.flock(hb, fcntl.LOCK_UN)
    os.waitpid(pid, 0)
    fcntl.flock(ha, fcntl.LOCK_UN)
    for k in kids:
        os.waitpid(k, 0)
    os.close(w)
    out = b""
    while True:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        out += chunk
    lines = out.decode().split("\n")
    print(next(l for l in lines if l.startswith("root: ")))
    users = sorted(l for l in lines if l.startswith("user: "))
    for v in sorted(set(users)):
        print(v, users.count(v))


def main():
    cmd = sys.argv[1]
    if cmd == "apart":
        apart(sys.argv[2], sys.argv[3])
    elif cmd == "bound":
        bound(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "ringfair":
        ringfair(sys.argv[2], int(sys.argv[3]),
                 int(sys.argv[4]) if len(sys.argv) > 4 else 6)
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
