#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Kill the worker of a restart=on mount at random points of a seeded
workload, and check what every caller saw.

usage: restart-chaos.py MOUNT SEED KILLS

The workload (one thread, so its model is exact) appends and reads through
descriptors held across the kills, opens, creates, renames, removes, lists
and stats, relative to a working directory inside the mount and by
absolute paths, and copies lower files up.  Meanwhile the main thread
SIGKILLs the worker KILLS times, at random moments, and measures from each
kill to the first request answered again (a getxattr of the mount root,
which always reaches the daemon).

Every call must answer exactly once, as a local filesystem would: a
request the killed worker had carried out before its reply was lost is
answered as done (journal.c), never with EEXIST or ENOENT, nor ENOTCONN,
ECONNABORTED or ESTALE.  Besides the model of the tree, a second process
holds a record lock and a flock on two files for the whole run, and the
workload checks that they are still held after the kills (a try from
another process is refused).  At the end the tree must equal the model.
Prints the latencies (median, max) and the operations done; exits 1 on
any failure.
"""
import ctypes
import errno
import fcntl
import os
import subprocess
import random
import signal
import statistics
import sys
import threading
import time
import traceback

MNT, SEED, KILLS = os.path.abspath(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
WD = f"work{SEED}"  # the workload's directory, one per seed
rng = random.Random(SEED)
failures = []
ops = {}
stop = threading.Event()


RENAME_EXCHANGE = 2
libc = ctypes.CDLL(None, use_errno=True)

# a process holding a record lock on base/b8 and a flock on base/b9
HOLDER = r"""
import fcntl, os, sys, time
f = os.open(sys.argv[1] + "/base/b8", os.O_RDWR)
g = os.open(sys.argv[1] + "/base/b9", os.O_RDONLY)
fcntl.lockf(f, fcntl.LOCK_EX, 10, 0)
fcntl.flock(g, fcntl.LOCK_SH)
print("held", flush=True)
sys.stdin.read()
"""
TRY = r"""
import errno, fcntl, os, sys
f = os.open(sys.argv[1] + "/base/b8", os.O_RDWR)
g = os.open(sys.argv[1] + "/base/b9", os.O_RDONLY)
got = []
for fd, fn in ((f, lambda fd: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 5, 2)),
               (g, lambda fd: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB))):
    try:
        fn(fd)
        got.append("free")
    except BlockingIOError:
        got.append("held")
    except OSError as e:
        got.append(errno.errorcode.get(e.errno, str(e.errno)))
print(" ".join(got))
"""


def fail(msg):
    failures.append(msg)
    stop.set()


def overpass_of(mnt):
    """{pid: parent pid} of the overpass processes with MOUNT as argument"""
    procs = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{p}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if os.path.basename(argv[0]).endswith(b"overpass") and mnt.encode() in argv:
            procs[int(p)] = ppid
    return procs


def supervisor_of(mnt):
    procs = overpass_of(mnt)
    sups = [p for p, pp in procs.items() if pp not in procs]
    if len(sups) != 1:
        sys.exit(f"restart-chaos: {len(sups)} supervisors for {mnt}: {procs}")
    return sups[0]


def worker_of(sup):
    try:
        with open(f"/proc/{sup}/task/{sup}/children") as f:
            kids = f.read().split()
    except OSError:
        return None
    return int(kids[0]) if kids else None


def read_tree(root):
    """{relative path: bytes or None for a directory}"""
    tree = {}
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        for n in dirs:
            tree[os.path.normpath(os.path.join(rel, n))] = None
        for n in files:
            with open(os.path.join(d, n), "rb") as f:
                tree[os.path.normpath(os.path.join(rel, n))] = f.read()
    return tree


class Workload:
    def __init__(self):
        self.model = read_tree(MNT)
        os.mkdir(f"{MNT}/{WD}")
        self.model[WD] = None
        os.chdir(f"{MNT}/{WD}")
        base = sorted(p for p, v in self.model.items()
                      if v is not None and p.startswith("base/"))
        self.appenders = {p: open(f"{MNT}/{p}", "ab") for p in base[:4]}
        self.readers = {p: open(f"{MNT}/{p}", "rb") for p in base[4:8]}
        self.n = 0

    def files(self, prefix=""):
        return sorted(p for p, v in self.model.items()
                      if v is not None and p.startswith(prefix))

    def dirs(self, prefix):
        return sorted(p for p, v in self.model.items()
                      if v is None and p.startswith(prefix) and p != prefix.rstrip("/"))

    def work_names(self):
        pre = WD + "/"
        return sorted(p[len(pre):] for p in self.model
                      if p.startswith(pre) and "/" not in p[len(pre):])

    # each operation: (name, function); a function raises on a wrong result
    def op_append_held(self):
        p = rng.choice(sorted(self.appenders))
        line = f"held {self.n}\n".encode()
        f = self.appenders[p]
        f.write(line)
        f.flush()
        self.model[p] += line
        st = os.fstat(f.fileno())
        if st.st_size != len(self.model[p]):
            raise AssertionError(f"fstat {p}: {st.st_size} != {len(self.model[p])}")

    def op_read_held(self):
        p = rng.choice(sorted(self.readers))
        f = self.readers[p]
        f.seek(0)
        if f.read() != self.model[p]:
            raise AssertionError(f"held read of {p} differs")

    def op_read_path(self):
        p = rng.choice(self.files())
        with open(f"{MNT}/{p}", "rb") as f:
            if f.read() != self.model[p]:
                raise AssertionError(f"read of {p} differs")

    def op_copy_up(self):
        cands = [p for p in self.files("base/") if p not in self.appenders
                 and p not in self.readers]
        if not cands:
            return
        p = rng.choice(cands)
        line = f"path {self.n}\n".encode()
        with open(f"{MNT}/{p}", "ab") as f:
            f.write(line)
        self.model[p] += line

    def op_create(self):
        name = f"n{self.n}"
        data = f"created {self.n}\n".encode()
        fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        self.model[f"{WD}/{name}"] = data

    def op_copy_range(self):
        # copy_file_range between two open files: both handles are the
        # worker's, and a resent copy brings a dead worker's
        src = rng.choice(sorted(self.readers))
        name = f"c{self.n}"
        data = self.model[src]
        fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        try:
            f = self.readers[src]
            done = 0
            while done < len(data):
                n = os.copy_file_range(f.fileno(), fd, len(data) - done,
                                       done, done)
                if n <= 0:
                    raise AssertionError(f"copy_file_range of {src}: {n}")
                done += n
        finally:
            os.close(fd)
        self.model[f"{WD}/{name}"] = data
        with open(name, "rb") as f:
            if f.read() != data:
                raise AssertionError(f"copy of {src} differs")

    def op_rename(self):
        names = [n for n in self.work_names() if self.model[f"{WD}/{n}"] is not None]
        if not names:
            return
        src, dst = rng.choice(names), f"r{self.n}"
        os.rename(src, dst)
        self.model[f"{WD}/{dst}"] = self.model.pop(f"{WD}/{src}")

    def op_exchange(self):
        names = [n for n in self.work_names() if self.model[f"{WD}/{n}"] is not None]
        if len(names) < 2:
            return
        a, b = rng.sample(names, 2)
        if libc.renameat2(-100, a.encode(), -100, b.encode(), RENAME_EXCHANGE):
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e), a, b)
        ka, kb = f"{WD}/{a}", f"{WD}/{b}"
        self.model[ka], self.model[kb] = self.model[kb], self.model[ka]

    def op_append_path(self):
        names = [n for n in self.work_names() if self.model[f"{WD}/{n}"] is not None]
        if not names:
            return
        n = rng.choice(names)
        line = f"appended {self.n}\n".encode()
        fd = os.open(n, os.O_WRONLY | os.O_APPEND)
        try:
            if os.write(fd, line) != len(line):
                raise AssertionError(f"short append to {n}")
        finally:
            os.close(fd)
        self.model[f"{WD}/{n}"] += line

    def op_locks_held(self):
        r = subprocess.run([sys.executable, "-c", TRY, MNT], capture_output=True,
                           text=True)
        if r.stdout.strip() != "held held":
            raise AssertionError(f"the holder's locks: {r.stdout.strip()!r} "
                                 f"{r.stderr.strip()[-300:]!r}")

    def remove(self, is_dir, fn):
        names = [n for n in self.work_names()
                 if (self.model[f"{WD}/{n}"] is None) == is_dir]
        if not names:
            return
        n = rng.choice(names)
        fn(n)
        del self.model[f"{WD}/{n}"]

    def op_unlink(self):
        self.remove(False, os.unlink)

    def op_mkdir(self):
        n = f"d{self.n}"
        os.mkdir(n)
        self.model[f"{WD}/{n}"] = None

    def op_rmdir(self):
        self.remove(True, os.rmdir)

    def op_list(self):
        got, want = set(os.listdir(".")), set(self.work_names())
        if got != want:
            raise AssertionError(f"listing of {WD}: extra {sorted(got - want)[:10]}, "
                                 f"missing {sorted(want - got)[:10]}")

    def op_stat_relative(self):
        names = [n for n in self.work_names() if self.model[f"{WD}/{n}"] is not None]
        if not names:
            return
        n = rng.choice(names)
        if os.stat(n).st_size != len(self.model[f"{WD}/{n}"]):
            raise AssertionError(f"stat of work/{n}")

    def run(self):
        table = [(self.op_append_held, 3), (self.op_read_held, 2),
                 (self.op_read_path, 2), (self.op_copy_up, 1),
                 (self.op_create, 3), (self.op_rename, 2), (self.op_unlink, 1),
                 (self.op_mkdir, 1), (self.op_rmdir, 1), (self.op_list, 1),
                 (self.op_stat_relative, 2), (self.op_exchange, 1),
                 (self.op_append_path, 2), (self.op_locks_held, 1),
                 (self.op_copy_range, 2)]
        choices = [fn for fn, w in table for _ in range(w)]
        while not stop.is_set():
            fn = rng.choice(choices)
            self.n += 1
            try:
                fn()
            except OSError as e:
                tb = traceback.extract_tb(e.__traceback__)[-1]
                fail(f"{fn.__name__} (op {self.n}, line {tb.lineno}): "
                     f"{errno.errorcode.get(e.errno, e.errno)} {e}")
                return
            except AssertionError as e:
                fail(f"{fn.__name__} (op {self.n}): {e}")
                return
            ops[fn.__name__] = ops.get(fn.__name__, 0) + 1

    def close(self):
        for f in list(self.appenders.values()) + list(self.readers.values()):
            f.close()
        os.chdir("/")


def main():
    global SUP
    SUP = supervisor_of(MNT)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, MNT],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if holder.stdout.readline().strip() != "held":
        sys.exit("restart-chaos: the lock holder did not start")
    w = Workload()
    t = threading.Thread(target=w.run)
    t.start()
    latencies = []
    for k in range(KILLS):
        if stop.is_set():
            break
        # a worker dead within 0.5 s of its start makes the next restart
        # wait (a crash loop must not spin): kill each one after that
        time.sleep(rng.uniform(0.55, 0.8))
        pid = worker_of(SUP)
        if not pid:
            fail(f"kill {k + 1}: no worker")
            break
        os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        try:
            os.getxattr(MNT, "user.overpass.chaos-probe")
        except OSError as e:
            if e.errno != errno.ENODATA:
                fail(f"probe after kill {k + 1}: {errno.errorcode.get(e.errno)}")
                break
        latencies.append(time.monotonic() - t0)
    time.sleep(0.2)
    stop.set()
    t.join(60)
    if t.is_alive():
        fail("the workload did not finish")
    w.close()
    holder.stdin.close()
    holder.wait()
    if not failures:
        tree = read_tree(MNT)
        if tree != w.model:
            extra = sorted(set(tree) - set(w.model))
            missing = sorted(set(w.model) - set(tree))
            differ = sorted(p for p in set(tree) & set(w.model) if tree[p] != w.model[p])
            fail(f"tree differs: extra {extra[:5]}, missing {missing[:5]}, differ {differ[:5]}")
    if latencies:
        ms = [x * 1000 for x in latencies]
        print(f"kills {len(ms)}: kill to first request served: median {statistics.median(ms):.2f} ms, "
              f"max {max(ms):.2f} ms")
    print("operations: " + ", ".join(f"{k} {v}" for k, v in sorted(ops.items())))
    for f in failures:
        print(f"FAIL: {f}")
    return 1 if failures else 0


sys.exit(main())
