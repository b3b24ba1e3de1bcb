#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""restart-stress.py [--overpass BIN] [--kills N] [--opts O] [--procs P]
[--seed S] [--keep]: kill a restart=on mount's worker again and again while
processes do random, checked operations on descriptors they hold.

Makes layers in a new directory under /tmp (a lower layer with files,
directories and a 600-entry directory, a second lower layer shadowed by
the first), mounts them with BIN (default _build/src/overpass) and
"restart=on,restart_limit=0" plus --opts, starts --procs workers and
sends SIGKILL to the daemon's worker --kills times, 0.4 to 1 s apart.
Each worker keeps files open and checks every result against what it
wrote: pwrite/pread, ftruncate, fallocate, fsync, SEEK_DATA, xattrs,
flock, lockf, mmap writes, O_TMPFILE and linkat, copy_file_range, hard
links, symlinks, fifos, copy-ups and chmod of lower files, renames of
lower directories (give redirect_dir=on), a long listing, exec of a
binary from the mount.  Prints each failure and the counts; exit status
1 if a call failed or a worker did not come back.  Run as root, or inside
`unshare -Urm` for a rootless mount.  Rootless or with passthrough=off an
O_TMPFILE file still unnamed at a kill ends with the worker (ESTALE,
doc/restart.md): --skip tmpfile leaves that operation out.  Not part of `make check`: a
stress to run when restart changes (doc/restart.md).
"""
import argparse
import ctypes
import errno
import fcntl
import mmap
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

libc = ctypes.CDLL(None, use_errno=True)


def link_fd(fd, name):
    # linkat(AT_FDCWD, "/proc/self/fd/N", ..., AT_SYMLINK_FOLLOW)
    if libc.linkat(-100, f"/proc/self/fd/{fd}".encode(), -100,
                   os.fsencode(name), 0x400) < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), name)


class Ops:
    """One worker's files and the model of what they hold."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.seed = seed
        self.w = f"w{seed}"
        os.makedirs(self.w, exist_ok=True)
        self.held, self.model = {}, {}
        for i in range(6):
            p = f"{self.w}/h{i}"
            self.held[p] = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            self.model[p] = bytearray()
        self.lheld = {p: os.open(p, os.O_RDONLY) for p in
                      (f"lower/l{i}" for i in range(1, 5))}
        self.dirfd = os.open(self.w, os.O_RDONLY | os.O_DIRECTORY)
        self.many = sorted(os.listdir(f"lower/many{seed}"))
        self.n = 0

    def pick(self):
        return self.rng.choice(sorted(self.held))

    def check(self, p):
        got = os.pread(self.held[p], len(self.model[p]) + 10, 0)
        if got != bytes(self.model[p]):
            raise AssertionError(f"{p}: {len(got)} bytes read, "
                                 f"{len(self.model[p])} written, or others")

    def grow(self, p, size):
        m = self.model[p]
        if len(m) < size:
            m.extend(b"\0" * (size - len(m)))

    def op_pwrite(self):
        p = self.pick()
        off, d = self.rng.randrange(20000), os.urandom(self.rng.randrange(1, 9000))
        os.pwrite(self.held[p], d, off)
        self.grow(p, off)
        self.model[p][off:off + len(d)] = d
        self.check(p)

    def op_truncate(self):
        p = self.pick()
        size = self.rng.randrange(30000)
        os.ftruncate(self.held[p], size)
        self.grow(p, size)
        del self.model[p][size:]
        self.check(p)

    def op_fallocate(self):
        p = self.pick()
        off, length = self.rng.randrange(20000), self.rng.randrange(1, 20000)
        os.posix_fallocate(self.held[p], off, length)
        self.grow(p, off + length)
        self.check(p)

    def op_fsync(self):
        os.fsync(self.held[self.pick()])

    def op_seek(self):
        fd = self.held[self.pick()]
        try:
            os.lseek(fd, 0, os.SEEK_DATA)
            os.lseek(fd, 0, os.SEEK_HOLE)
        except OSError as e:
            if e.errno != errno.ENXIO:
                raise

    def op_xattr(self):
        fd, v = self.held[self.pick()], os.urandom(8)
        os.setxattr(fd, "user.stress", v)
        if os.getxattr(fd, "user.stress") != v:
            raise AssertionError("xattr read back differs")

    def op_locks(self):
        fd = self.held[self.pick()]
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
        fcntl.lockf(fd, fcntl.LOCK_UN, 10, 0)

    def op_mmap(self):
        p = self.pick()
        if len(self.model[p]) < 4096:
            return
        d, off = os.urandom(64), self.rng.randrange(4096 - 64)
        with mmap.mmap(self.held[p], 4096) as mm:
            mm[off:off + 64] = d
            mm.flush()
        self.model[p][off:off + 64] = d
        self.check(p)

    def op_tmpfile(self):
        fd = os.open(self.w, os.O_TMPFILE | os.O_RDWR, 0o644)
        name = f"{self.w}/t{self.n}"
        try:
            os.write(fd, b"tmp")
            link_fd(fd, name)
        finally:
            os.close(fd)
        with open(name, "rb") as f:
            if f.read() != b"tmp":
                raise AssertionError(f"{name}: linked O_TMPFILE differs")
        os.unlink(name)

    def op_listdir(self):
        got = set(os.listdir(self.dirfd))
        want = {p.split("/")[1] for p in self.held}
        if not want <= got:
            raise AssertionError(f"listing of {self.w} lacks {want - got}")

    def op_meta(self):
        fd = self.held[self.pick()]
        os.chmod(fd, 0o600 | self.rng.randrange(0o100))
        os.utime(fd, None)
        os.fstat(fd)

    def op_copy_range(self):
        a, b = self.rng.sample(sorted(self.held), 2)
        size = len(self.model[a])
        os.ftruncate(self.held[b], 0)
        done = 0
        while done < size:
            k = os.copy_file_range(self.held[a], self.held[b], size - done,
                                   done, done)
            if k <= 0:
                raise AssertionError(f"copy_file_range returned {k}")
            done += k
        self.model[b] = bytearray(self.model[a])
        self.check(b)

    def op_lower_held(self):
        p = self.rng.choice(sorted(self.lheld))
        with open(p, "rb") as f:
            want = f.read()
        if os.pread(self.lheld[p], len(want) + 1, 0) != want:
            raise AssertionError(f"{p}: held descriptor reads other data")

    def op_copy_up(self):
        if not self.many:
            return
        name = self.many.pop(self.rng.randrange(len(self.many)))
        p = f"lower/many{self.seed}/{name}"
        want = (name * 50).encode()
        if self.rng.random() < 0.5:
            with open(p, "ab") as f:
                f.write(b"+")
            want += b"+"
        else:
            os.chmod(p, 0o600)
            if os.stat(p).st_mode & 0o777 != 0o600:
                raise AssertionError(f"{p}: chmod not seen")
        with open(p, "rb") as f:
            if f.read() != want:
                raise AssertionError(f"{p}: data after copy-up differs")

    def op_rename_dir(self):
        src = f"lower/dirs{self.seed}"
        ds = sorted(os.listdir(src))
        if not ds:
            return
        d = self.rng.choice(ds)
        dst = f"{self.w}/r{self.n}"
        try:
            os.rename(f"{src}/{d}", dst)
        except OSError as e:
            if e.errno == errno.EXDEV:  # redirect_dir off
                return
            raise
        if sorted(os.listdir(dst)) != ["a", "b"]:
            raise AssertionError(f"{dst}: renamed directory lists wrong")
        with open(f"{dst}/a") as f:
            if f.read() != d:
                raise AssertionError(f"{dst}/a differs")

    def op_long_listing(self):
        names = []
        with os.scandir("lower/big") as it:
            for i, e in enumerate(it):
                names.append(e.name)
                if i % 100 == 0:
                    time.sleep(0.01)
        if len(names) != 600 or len(set(names)) != 600:
            raise AssertionError(f"lower/big: {len(names)} names, "
                                 f"{len(set(names))} distinct")

    def op_names(self):
        p, base = self.pick(), f"{self.w}/x{self.n}"
        os.link(p, base)
        if os.stat(base).st_nlink != 2:
            raise AssertionError("hard link count")
        os.unlink(base)
        os.symlink("target", base)
        if os.readlink(base) != "target":
            raise AssertionError("symlink target")
        os.unlink(base)
        os.mkfifo(base)
        os.unlink(base)

    def op_exec(self):
        subprocess.run(["./bin/true"], check=True)

    def run(self, until, skip):
        table = [getattr(self, n) for n in dir(self)
                 if n.startswith("op_") and n[3:] not in skip]
        counts, fails = {}, 0
        while time.monotonic() < until[0] and fails < 20:
            fn = self.rng.choice(table)
            self.n += 1
            try:
                fn()
                counts[fn.__name__] = counts.get(fn.__name__, 0) + 1
            except (OSError, AssertionError, subprocess.CalledProcessError) as e:
                line = traceback.extract_tb(e.__traceback__)[-1].lineno
                print(f"FAIL worker {self.seed} {fn.__name__} (op {self.n}, "
                      f"line {line}): {e!r}", flush=True)
                fails += 1
        print(f"worker {self.seed}: {self.n} operations, {fails} failed",
              flush=True)
        return fails


def worker_main(mnt, seed, skip):
    until = [float("inf")]
    signal.signal(signal.SIGTERM, lambda *a: until.__setitem__(0, 0))
    os.chdir(mnt)
    sys.exit(1 if Ops(seed).run(until, skip) else 0)


def make_layers(d, procs):
    low = f"{d}/lower"
    for sub in ("lower/big", "bin"):
        os.makedirs(f"{low}/{sub}")
    shutil.copy("/usr/bin/true", f"{low}/bin/true")
    for i in range(1, 5):
        with open(f"{low}/lower/l{i}", "wb") as f:
            f.write(os.urandom(i * 70000))
    for i in range(600):
        open(f"{low}/lower/big/entry-with-a-longer-name-{i}", "w").close()
    for s in range(1, procs + 1):
        os.makedirs(f"{low}/lower/many{s}")
        for i in range(1, 1501):
            with open(f"{low}/lower/many{s}/m{i}", "w") as f:
                f.write(f"m{i}" * 50)
        for i in range(1, 301):
            os.makedirs(f"{low}/lower/dirs{s}/d{i}")
            with open(f"{low}/lower/dirs{s}/d{i}/a", "w") as f:
                f.write(f"d{i}")
            open(f"{low}/lower/dirs{s}/d{i}/b", "w").close()
    # a second lower layer under the first: merged directories
    os.makedirs(f"{d}/lower2/lower/many1")
    for i in range(1, 201):
        with open(f"{d}/lower2/lower/many1/m{i}", "w") as f:
            f.write("shadowed")
    for sub in ("upper", "work", "mnt"):
        os.makedirs(f"{d}/{sub}")


def stat_of(binary, mnt, key):
    out = subprocess.run([binary, "--stats", mnt], capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        if line.startswith(key + " "):
            return line.split()[1]
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--overpass", default="_build/src/overpass")
    ap.add_argument("--kills", type=int, default=40)
    ap.add_argument("--opts", default="redirect_dir=on")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip", default="",
                    help="operations to leave out, comma-separated (tmpfile, ...)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the layers' directory")
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker_main(a.worker[0], int(a.worker[1]), a.skip.split(","))
    binary = os.path.abspath(a.overpass)
    rng = random.Random(a.seed)
    d = tempfile.mkdtemp(prefix="overpass-stress.")
    make_layers(d, a.procs)
    mnt = f"{d}/mnt"
    opts = (f"lowerdir={d}/lower:{d}/lower2,upperdir={d}/upper,"
            f"workdir={d}/work,restart=on,restart_limit=0"
            + (f",{a.opts}" if a.opts else ""))
    subprocess.run([binary, "-o", opts, mnt], check=True)
    bad = 0
    workers = [subprocess.Popen([sys.executable, __file__, "--skip", a.skip,
                                 "--worker", mnt, str(s)])
               for s in range(1, a.procs + 1)]
    try:
        w = stat_of(binary, mnt, "restart.worker_pid")
        for k in range(1, a.kills + 1):
            time.sleep(rng.uniform(0.4, 1.0))
            old = w
            os.kill(int(old), signal.SIGKILL)
            for _ in range(200):
                w = stat_of(binary, mnt, "restart.worker_pid")
                if w and w != "0" and w != old:
                    break
                time.sleep(0.05)
            else:
                print(f"FAIL no worker after kill {k}", flush=True)
                bad += 1
                break
    finally:
        for p in workers:
            p.send_signal(signal.SIGTERM)
        for p in workers:
            try:
                bad += p.wait(timeout=60) != 0
            except subprocess.TimeoutExpired:
                print(f"FAIL worker pid {p.pid} still waits 60 s after the "
                      "end: a request never answered", flush=True)
                p.kill()
                bad += 1
        print(f"restarts {stat_of(binary, mnt, 'restart.restarts')}")
        try:
            done = subprocess.run(["umount", mnt], timeout=30).returncode == 0
        except subprocess.TimeoutExpired:
            done = False
        if not done:
            subprocess.run(["umount", "-l", mnt])
        if a.keep:
            print(f"layers kept in {d}")
        else:
            shutil.rmtree(d, ignore_errors=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
