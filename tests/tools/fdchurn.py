#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""fdchurn.py MNT WORKERS SECONDS: each worker, in its own directory,
makes files, symlinks, hard links and directories, renames, copies lower
files up (chmod, setxattr on MNT/lower/gW/fI, which the caller made) and
removes it all again, round after round.  Prints every failed call as
call:ERRNO=count, or "no errors"; then "rounds N"."""
import errno
import multiprocessing as mp
import os
import sys
import time

FILES = 40


def work(args):
    mnt, w, secs = args
    base = os.path.join(mnt, f"w{w}")
    low = os.path.join(mnt, "lower", f"g{w}")
    errs = {}
    rounds = 0

    def call(name, f, *a):
        try:
            return f(*a)
        except OSError as e:
            k = f"{name}:{errno.errorcode.get(e.errno, e.errno)}"
            errs[k] = errs.get(k, 0) + 1
            return None

    call("mkdir", os.mkdir, base)
    end = time.monotonic() + secs
    while time.monotonic() < end:
        rounds += 1
        d = os.path.join(base, f"r{rounds}")
        call("mkdir", os.mkdir, d)
        for i in range(FILES):
            fd = call("create", os.open, f"{d}/f{i}",
                      os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            if fd is not None:
                os.close(fd)
            call("symlink", os.symlink, "t", f"{d}/s{i}")
            call("link", os.link, f"{d}/f{i}", f"{d}/l{i}")
            call("mkdir", os.mkdir, f"{d}/d{i}")
            call("rename", os.rename, f"{d}/l{i}", f"{d}/m{i}")
        for i in range(FILES):
            if rounds == 1:
                call("chmod", os.chmod, f"{low}/f{i}", 0o600)
                call("setxattr", os.setxattr, f"{low}/f{i}", "user.k", b"v")
            for n in ("f", "s", "m"):
                call("unlink", os.unlink, f"{d}/{n}{i}")
            call("rmdir", os.rmdir, f"{d}/d{i}")
        call("rmdir", os.rmdir, d)
    call("rmdir", os.rmdir, base)
    return errs, rounds


def main():
    mnt, workers, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    total, rounds = {}, 0
    with mp.Pool(workers) as pool:
        for errs, r in pool.map(work, [(mnt, w, secs) for w in range(workers)]):
            rounds += r
            for k, v in errs.items():
                total[k] = total.get(k, 0) + v
    print(" ".join(f"{k}={v}" for k, v in sorted(total.items())) or "no errors")
    print(f"rounds {rounds}")


if __name__ == "__main__":
    main()
