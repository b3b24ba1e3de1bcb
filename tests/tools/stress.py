#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""stress.py MOUNT --workers N --seconds S --seed SEED

Parallel load on an overlay mount.  Each worker process owns the lower
directory w<i>/ (prepared with --prepare LOWER) and keeps a model of what
it should hold: it creates, writes, appends, truncates, renames, unlinks,
makes and removes directories, sets xattrs, lists and reads back, checking
every read against the model, and at the end compares the whole directory
with the model.  All workers also hammer a shared directory (shared/) with
racing creates, renames and unlinks, where only crashes and unexpected
errors count.  Prints the seed, the operations done and "ok", or the first
mismatch, and exits 1 on a mismatch.
"""
import argparse
import errno
import multiprocessing
import os
import random
import sys
import time

FILES = 20  # lower files per worker directory


def prepare(lower, workers):
    for w in range(workers):
        d = os.path.join(lower, f"w{w}")
        os.makedirs(os.path.join(d, "sub"), exist_ok=True)
        for i in range(FILES):
            with open(os.path.join(d, f"f{i}"), "wb") as f:
                f.write(f"lower {w} {i}\n".encode())
    os.makedirs(os.path.join(lower, "shared"), exist_ok=True)
    for i in range(FILES):
        with open(os.path.join(lower, "shared", f"s{i}"), "wb") as f:
            f.write(b"shared\n")


class Mismatch(Exception):
    pass


def worker(args):
    mnt, w, seconds, seed, workers = args
    rnd = random.Random(seed * 1000 + w)
    base = os.path.join(mnt, f"w{w}")
    model = {f"f{i}": f"lower {w} {i}\n".encode() for i in range(FILES)}
    dirs = {"sub"}
    xattrs = {}
    ops = 0
    end = time.monotonic() + seconds

    def path(n):
        return os.path.join(base, n)

    def check(name):
        with open(path(name), "rb") as f:
            got = f.read()
        if got != model[name]:
            raise Mismatch(f"w{w}: {name}: read {got[:40]!r}, expected {model[name][:40]!r}")

    while time.monotonic() < end:
        ops += 1
        op = rnd.randrange(12)
        names = sorted(model)
        name = rnd.choice(names) if names else None
        if op == 0 or not names:
            n = f"n{rnd.randrange(100)}"
            data = os.urandom(rnd.randrange(1, 5000))
            with open(path(n), "wb") as f:
                f.write(data)
            model[n] = data
        elif op == 1:
            data = os.urandom(rnd.randrange(1, 3000))
            with open(path(name), "ab") as f:
                f.write(data)
            model[name] += data
        elif op == 2:
            size = rnd.randrange(0, len(model[name]) + 10)
            os.truncate(path(name), size)
            model[name] = model[name][:size] + b"\0" * max(0, size - len(model[name]))
        elif op == 3:
            new = f"r{rnd.randrange(100)}"
            if new in dirs:
                continue
            os.rename(path(name), path(new))
            model[new] = model.pop(name)
        elif op == 4:
            os.unlink(path(name))
            del model[name]
        elif op == 5:
            d = f"d{rnd.randrange(10)}"
            if d in dirs or d in model:
                continue
            os.mkdir(path(d))
            dirs.add(d)
        elif op == 6:
            empty = [d for d in dirs if not os.listdir(path(d))]
            if empty:
                d = rnd.choice(sorted(empty))
                os.rmdir(path(d))
                dirs.discard(d)
        elif op == 7:
            v = os.urandom(rnd.randrange(1, 64))
            os.setxattr(path(name), "user.stress", v)
            xattrs[name] = v
        elif op == 8:
            got = sorted(os.listdir(base))
            want = sorted(list(model) + list(dirs))
            if got != want:
                raise Mismatch(f"w{w}: listing {got} != {want}")
        elif op == 9:
            check(name)
        elif op == 10:
            # the shared directory: races with every other worker
            s = os.path.join(mnt, "shared", f"s{rnd.randrange(FILES * 2)}")
            t = os.path.join(mnt, "shared", f"s{rnd.randrange(FILES * 2)}")
            try:
                kind = rnd.randrange(4)
                if kind == 0:
                    with open(s, "ab") as f:
                        f.write(b"x")
                elif kind == 1:
                    os.rename(s, t)
                elif kind == 2:
                    os.unlink(s)
                else:
                    os.listdir(os.path.dirname(s))
            except OSError as e:
                if e.errno not in (errno.ENOENT, errno.EEXIST):
                    raise
        else:
            os.stat(path(name))
        # xattrs follow renames and unlinks of their file
        xattrs = {k: v for k, v in xattrs.items() if k in model}
    # final comparison of the whole directory
    got = sorted(os.listdir(base))
    want = sorted(list(model) + list(dirs))
    if got != want:
        raise Mismatch(f"w{w}: final listing {got} != {want}")
    for n in model:
        check(n)
    return ops


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--prepare", action="store_true")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    if a.prepare:
        prepare(a.dir, a.workers)
        return 0
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    print(f"seed {seed}, {a.workers} workers, {a.seconds} s", flush=True)
    with multiprocessing.Pool(a.workers) as pool:
        try:
            counts = pool.map(worker, [(a.dir, w, a.seconds, seed, a.workers)
                                       for w in range(a.workers)])
        except Mismatch as e:
            print(f"MISMATCH (seed {seed}): {e}")
            return 1
    print(f"{sum(counts)} operations, ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
