#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The cost of file locks and closes on overlay mounts (doc/copy-up.md).

    lockbench.py [--n N] [--stats OVERPASS] NAME=DIR...
    lockbench.py --held 10,100,1000,10000,40000 [--n N] [--pid PID] NAME=DIR...

For each mount DIR (a file named lockbench.f is made in it): the time of
N flock(LOCK_EX)+flock(LOCK_UN) pairs, N fcntl F_SETLK write lock+unlock
pairs, and N open+close of a read-only descriptor, each per operation in
microseconds; with --stats, the FUSE requests the overpass daemon of each
overpass mount counted for them (round trips per lock).  A measurement,
not a test: the figures depend on the machine.

With --held: for each count H, another open file of lockbench.f first
holds H OFD write locks on every other byte (so none merge), then N
F_SETLK lock+unlock pairs of one byte past them, and N flock pairs, are
timed (per pair, in microseconds), as is taking the H locks and giving
them back (per lock).  With --pid (the daemon serving DIR; for overpass
`overpass --stats DIR` names it, restart.worker_pid), the CPU time its
threads spent per pair (schedstat: what a busy machine does not blur),
and its resident memory before the H locks, with them, and once they
are given back.
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


def rss_kb(pid):
    """The daemon's resident memory in kB, counted from its page tables
    (smaps_rollup).  VmRSS is not used: before Linux 6.2 each thread
    batches its page-fault counts, so a threaded daemon's VmRSS could be
    megabytes off (the 6.1 VM showed 256 kB for the whole daemon)."""
    if not pid:
        return None
    for name, key in (("smaps_rollup", "Rss:"), ("status", "VmRSS:")):
        try:
            with open(f"/proc/{pid}/{name}") as f:
                for line in f:
                    if line.startswith(key):
                        return int(line.split()[1])
        except OSError:
            continue
    return None


def threads(pid):
    """The daemon's thread count, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, TypeError):
        pass
    return None


def cpu_ns(pid):
    """CPU time the daemon's threads used so far, in ns (schedstat)."""
    if not pid:
        return None
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def timed_cpu(n, fn, pid):
    c = cpu_ns(pid)
    us = timed(n, fn)
    return us, (cpu_ns(pid) - c) / n / 1e3 if c is not None else None


def ofd(fd, typ, start, length=1, wait=False):
    fcntl.fcntl(fd, fcntl.F_OFD_SETLKW if wait else fcntl.F_OFD_SETLK,
                struct.pack("hhqqi", typ, os.SEEK_SET, start, length, 0))


def held(name, d, counts, n, pid):
    p = os.path.join(d, "lockbench.f")
    with open(p, "w") as f:
        f.write("x")
    fd = os.open(p, os.O_RDWR)
    holder = os.open(p, os.O_RDWR)
    for h in counts:
        before = rss_kb(pid)
        tb = threads(pid)
        t = time.perf_counter()
        for i in range(h):
            ofd(holder, fcntl.F_WRLCK, 2 * i)
        take = (time.perf_counter() - t) / h * 1e6
        during = rss_kb(pid)
        far = 2 * h + 10
        wr = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, far, 1, 0)
        un = struct.pack("hhqqi", fcntl.F_UNLCK, os.SEEK_SET, far, 1, 0)
        posix, pcpu = timed_cpu(n, lambda: (
            fcntl.fcntl(fd, fcntl.F_SETLK, wr),
            fcntl.fcntl(fd, fcntl.F_SETLK, un)), pid)
        fl, fcpu = timed_cpu(n, lambda: (fcntl.flock(fd, fcntl.LOCK_EX),
                                         fcntl.flock(fd, fcntl.LOCK_UN)), pid)
        t = time.perf_counter()
        for i in range(h):
            ofd(holder, fcntl.F_UNLCK, 2 * i)
        give = (time.perf_counter() - t) / h * 1e6
        time.sleep(0.2)
        after = rss_kb(pid)
        ta = threads(pid)
        line = (f"{name} held {h}: posix pair {posix:.2f} us, flock pair "
                f"{fl:.2f} us, take {take:.2f} us/lock, give back "
                f"{give:.2f} us/lock")
        if pcpu is not None:
            line += (f"; daemon CPU per pair: posix {pcpu:.2f} us, "
                     f"flock {fcpu:.2f} us")
        if before is not None:
            line += f"; daemon RSS {before} kB, {during} kB held, {after} kB after"
        if tb is not None and ta is not None:
            line += f"; daemon threads {tb} before, {ta} after"
        print(line, flush=True)
    os.close(holder)
    os.close(fd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--stats", help="overpass binary, for --stats")
    ap.add_argument("--held", help="comma-separated counts of locks held")
    ap.add_argument("--pid", type=int, help="the daemon, for its memory")
    ap.add_argument("mounts", nargs="+")
    a = ap.parse_args()
    for m in a.mounts:
        name, d = m.split("=", 1)
        if a.held:
            held(name, d, [int(x) for x in a.held.split(",")], a.n, a.pid)
        else:
            bench(name, d, a.n, a.stats)


if __name__ == "__main__":
    main()
