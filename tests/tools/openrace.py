#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""openrace.py DIR N: opens for append race an unlink, and a rename over,
of the same lower files.  DIR/u0..u{N-1} are unlinked while opened with
O_CREAT|O_APPEND; DIR/r0.. are renamed over by DIR/s0.. while opened so.
Such an open may find the file gone (ENOENT) but nothing else, and each
name ends up holding what one order of the calls gives.  Prints the other
errors and wrong contents as NAME=count, or "no errors"."""
import errno
import multiprocessing as mp
import os
import sys


def opener(args):
    d, prefix, n = args
    bad = {}
    for i in range(n):
        try:
            with open(f"{d}/{prefix}{i}", "ab") as f:
                f.write(b"x")
        except OSError as e:
            if e.errno != errno.ENOENT:
                k = errno.errorcode.get(e.errno, str(e.errno))
                bad[k] = bad.get(k, 0) + 1
    return bad


def remover(args):
    d, how, n = args
    for i in range(n):
        try:
            if how == "unlink":
                os.unlink(f"{d}/u{i}")
            else:
                os.rename(f"{d}/s{i}", f"{d}/r{i}")
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise
    return {}


def main():
    d, n = sys.argv[1], int(sys.argv[2])
    total = {}
    with mp.Pool(4) as pool:
        res = pool.map_async(opener, [(d, "u", n), (d, "r", n)])
        rem = pool.map_async(remover, [(d, "unlink", n), (d, "rename", n)])
        rem.get()
        for bad in res.get():
            for k, v in bad.items():
                total[k] = total.get(k, 0) + v
    # an unlinked name is gone, or made anew by the open; the renamed
    # one holds what was renamed there, written to or not
    for i in range(n):
        try:
            with open(f"{d}/u{i}", "rb") as f:
                u = f.read()
        except FileNotFoundError:
            u = b"x"
        with open(f"{d}/r{i}", "rb") as f:
            r = f.read()
        if u != b"x":
            total[f"u{i}={u!r}"] = 1
        if r not in (f"s{i}\n".encode(), f"s{i}\nx".encode()):
            total[f"r{i}={r!r}"] = 1
    print(" ".join(f"{k}={v}" for k, v in sorted(total.items())) or "no errors")


if __name__ == "__main__":
    main()
