#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The cost of file locks and closes on overlay mounts (doc/copy-up.md).

    lockbench.py [--n N] [--stats OVERPASS] NAME=DIR...

For each mount DIR (a file named lockbench.f is made in it): the time of
N flock(LOCK_EX)+flock(LOCK_UN) pairs, N fcntl F_SETLK write lock+unlock
pairs, and N open+close of a read-only descriptor, each per operation in
microseconds; with --stats, the FUSE requests the overpass daemon of each
overpass mount counted for them (round trips per lock).  A measurement,
not a test: the figures depend on the machine.
"""
import argparse
import fcntl
import os
import struct
import subprocess
import time


def stats(ovp, mnt):
    try:
        out = subprocess.run([ovp, "--stats", mnt], capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return {k: int(v) for k, v in (l.split()[:2] for l in out.splitlines()
                                   if l.startswith("requests."))}


def timed(n, fn):
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n * 1e6


def bench(name, d, n, ovp):
    p = os.path.join(d, "lockbench.f")
    with open(p, "w") as f:
        f.write("x")
    fd = os.open(p, os.O_RDWR)
    wr = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
    un = struct.pack("hhqqi", fcntl.F_UNLCK, os.SEEK_SET, 0, 0, 0)
    res = {}
    for what, fn in (
            ("flock", lambda: (fcntl.flock(fd, fcntl.LOCK_EX),
                               fcntl.flock(fd, fcntl.LOCK_UN))),
            ("posix", lambda: (fcntl.fcntl(fd, fcntl.F_SETLK, wr),
                               fcntl.fcntl(fd, fcntl.F_SETLK, un))),
            ("open_close", lambda: os.close(os.open(p, os.O_RDONLY)))):
        before = stats(ovp, d) if ovp else None
        us = timed(n, fn)
        after = stats(ovp, d) if ovp else None
        line = f"{name} {what}: {us:.2f} us per pair" if what != "open_close" \
            else f"{name} {what}: {us:.2f} us per open+close"
        if before and after:
            diff = {k: after[k] - before.get(k, 0) for k in after
                    if after[k] - before.get(k, 0) > 0 and k != "requests.GETXATTR"}
            line += " (requests per pair: " + ", ".join(
                f"{k[9:]} {v / n:.2f}" for k, v in sorted(diff.items())) + ")"
        print(line, flush=True)
        res[what] = us
    os.close(fd)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--stats", help="overpass binary, for --stats")
    ap.add_argument("mounts", nargs="+")
    a = ap.parse_args()
    for m in a.mounts:
        name, d = m.split("=", 1)
        bench(name, d, a.n, a.stats)


if __name__ == "__main__":
    main()
