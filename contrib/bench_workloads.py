#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The synthetic layers and workloads of contrib/bench.py: the data and
namespace groups, shared helpers (logging, running commands), and the
Workload record every group's rows are made of.  Imported by bench.py, in
the main process and in the worker it starts inside a user namespace.
"""

import io
import json
import mmap
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import time
import zlib

# Bump when the generated layers change, so cached ones are rebuilt.
LAYER_FORMAT = 1

SCALES = {
    "full": dict(
        data_bytes=1 << 30,  # the large file: reads, mmap, copy-up
        write_bytes=1 << 30,  # sequential write
        groups=20,  # tree/gGG/dDD: groups x dirs leaf directories
        dirs=50,
        files=20,  # names per leaf directory, split over two layers
        bigdir=10000,  # entries of bigdir/, split over two layers
        creates=10000,  # files created and removed
        renames=1000,  # lower files renamed (one per leaf directory)
        units=500,  # compile-mix translation units
        list_reps=20,  # listings of bigdir/ per measurement
        fio_runtime=5,  # seconds per random-read run
        mem_dirs=1000,  # memory tree: mem_dirs x mem_files inodes
        mem_files=1000,
        make_targets=[],  # real: make's targets (all)
        git_files=50000,  # real: files of the git repository
        dpkg_pkgs=["perl", "less", "file", "bzip2", "patch", "make"],  # real: dpkg -i these
    ),
    "small": dict(
        data_bytes=10 << 20,
        write_bytes=10 << 20,
        groups=2,
        dirs=5,
        files=20,
        bigdir=100,
        creates=100,
        renames=10,
        units=5,
        list_reps=20,
        fio_runtime=1,
        mem_dirs=100,
        mem_files=100,
        make_targets=["src/util.o"],
        git_files=500,
        dpkg_pkgs=["less"],
    ),
}

MIB = 1 << 20
WORKER_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def die(msg):
    log(f"bench.py: error: {msg}")
    sys.exit(1)


# ---------------------------------------------------------------------------
# Layers: generated once per scale, cached under the workdir with a stamp.


def tree_dirs(sc):
    return [f"tree/g{g:02d}/d{d:02d}" for g in range(sc["groups"]) for d in range(sc["dirs"])]


def tree_file_layers(i, nfiles):
    """Which layers hold name number i: the bottom holds the first 60%,
    the top the last 60%, so the middle 20% of names are shadowed."""
    layers = []
    if i >= nfiles * 2 // 5:
        layers.append("top")
    if i < nfiles * 3 // 5:
        layers.append("bottom")
    return layers


def file_content(rel, layer):
    size = 64 + zlib.crc32(rel.encode()) % 4032
    line = f"{layer} {rel}\n".encode()
    return (line * (size // len(line) + 1))[:size]


def write_file(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def data_chunk(i):
    """1 MiB chunk i of the large file: random bytes, numbered."""
    if not hasattr(data_chunk, "base"):
        data_chunk.base = bytearray(random.Random(1).randbytes(MIB))
    data_chunk.base[:8] = i.to_bytes(8, "little")
    return data_chunk.base


def read_stamp(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def make_layers(root, sc):
    """top/ and bottom/ lower layers plus tree.tar (the merged tree)."""
    top, bottom = f"{root}/top", f"{root}/bottom"
    for d in tree_dirs(sc):
        os.makedirs(f"{top}/{d}")
        os.makedirs(f"{bottom}/{d}")
        for i in range(sc["files"]):
            rel = f"{d}/f{i:02d}"
            for layer in tree_file_layers(i, sc["files"]):
                write_file(f"{root}/{layer}/{rel}", file_content(rel, layer))
    for layer in ("top", "bottom"):
        os.makedirs(f"{root}/{layer}/bigdir")
    half = sc["bigdir"] // 2
    for i in range(sc["bigdir"]):
        layer = bottom if i < half else top
        os.mknod(f"{layer}/bigdir/e{i:05d}", 0o100644)
    os.makedirs(f"{bottom}/data")
    fd = os.open(f"{bottom}/data/big.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for i in range(sc["data_bytes"] // MIB):
            os.write(fd, data_chunk(i))
        os.fsync(fd)
    finally:
        os.close(fd)
    # the merged view of tree/, for the untar workload
    with tarfile.open(f"{root}/tree.tar", "w", format=tarfile.GNU_FORMAT) as tar:
        seen = set()
        for d in tree_dirs(sc):
            parts = d.split("/")
            for n in range(1, len(parts) + 1):
                p = "/".join(parts[:n])
                if p not in seen:
                    seen.add(p)
                    tar.addfile(tar_info(p, tarfile.DIRTYPE, 0o755, 0))
            for i in range(sc["files"]):
                rel = f"{d}/f{i:02d}"
                data = file_content(rel, tree_file_layers(i, sc["files"])[0])
                tar.addfile(tar_info(rel, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))


def tar_info(name, kind, mode, size):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.size = size
    ti.mtime = 1700000000
    ti.uname = ti.gname = "root"
    return ti


def make_mem_tree(root, sc):
    """mem_dirs directories of mem_files empty files, all distinct inodes."""
    lower = f"{root}/lower"
    os.makedirs(lower)
    for d in range(sc["mem_dirs"]):
        path = f"{lower}/d{d:04d}"
        os.mkdir(path)
        dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for i in range(sc["mem_files"]):
                os.mknod(f"f{i:04d}", 0o100644, dir_fd=dfd)
        finally:
            os.close(dfd)


def cached(root, what, params, build):
    """Build root with build(root) unless its stamp matches params."""
    stamp = json.dumps(dict(format=LAYER_FORMAT, what=what, **params), sort_keys=True)
    if read_stamp(f"{root}/.stamp") == stamp:
        return False
    if os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(root)
    t0 = time.monotonic()
    log(f"generating {what} in {root} ...")
    build(root)
    os.sync()
    with open(f"{root}/.stamp", "w") as f:
        f.write(stamp)
    log(f"generated {what} in {time.monotonic() - t0:.1f} s")
    return True


# ---------------------------------------------------------------------------
# Workloads.  Each takes a context dict (mount point, layer paths, scale),
# does its untimed set-up, times its operation with time.monotonic and
# returns (value, extra).  They run in this process, or for the rootless
# group in a worker process started inside the user namespace.


def read_all(path, bufsize=MIB):
    buf = bytearray(bufsize)
    fd = os.open(path, os.O_RDONLY)
    total = 0
    try:
        while True:
            n = os.readv(fd, [buf])
            if n == 0:
                return total
            total += n
    finally:
        os.close(fd)


def read_small(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            b = os.read(fd, 4096)
            if not b:
                return b"".join(chunks)
            chunks.append(b)
    finally:
        os.close(fd)


def big_file(ctx):
    return f"{ctx['mnt']}/data/big.bin"


def wl_seqread(ctx, warm):
    path = big_file(ctx)
    if warm:
        read_all(path)
    t0 = time.monotonic()
    n = read_all(path)
    dt = time.monotonic() - t0
    if n != ctx["scale"]["data_bytes"]:
        raise RuntimeError(f"read {n} bytes of {path}")
    return n / MIB / dt, {}


def wl_randread(ctx, jobs):
    path = big_file(ctx)
    read_all(path)
    cmd = [
        "fio", "--name=randread", "--thread", f"--filename={path}", "--readonly",
        "--rw=randread", "--bs=4k", "--ioengine=psync", "--invalidate=0",
        "--fadvise_hint=0", "--disk_util=0", "--time_based=1",
        f"--runtime={ctx['scale']['fio_runtime']}",
        f"--size={ctx['scale']['data_bytes']}", f"--numjobs={jobs}",
        "--group_reporting=1", "--output-format=json",
    ]
    r = run_group(cmd)
    if r.returncode != 0:
        raise RuntimeError(f"fio exited {r.returncode}: {r.stderr.strip()[-1000:]}")
    res = json.loads(r.stdout[r.stdout.index("{"):])
    return float(res["jobs"][0]["read"]["iops"]), {}


def timed_write(ctx, name, size, bs):
    """Write a new file of size bytes in bs-byte writes, fsync, close:
    MiB/s, from the open to the close."""
    chunk = bytes(data_chunk(7))[:bs]
    path = f"{ctx['mnt']}/{name}"
    os.sync()
    t0 = time.monotonic()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for _ in range(size // bs):
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    dt = time.monotonic() - t0
    return size / MIB / dt, {}


def wl_seqwrite(ctx):
    return timed_write(ctx, "seqwrite.bin", ctx["scale"]["write_bytes"], MIB)


def wl_smallwrite(ctx):
    """64 MiB in 4 KiB writes: a write(2) that asks the daemon anything
    (security.capability, before KILLPRIV_V2) shows here, where 1 MiB
    writes hide it."""
    return timed_write(ctx, "smallwrite.bin", 64 * MIB, 4096)


def wl_mmap(ctx):
    path = big_file(ctx)
    read_all(path)
    size = ctx["scale"]["data_bytes"]
    buf = bytearray(MIB)
    t0 = time.monotonic()
    fd = os.open(path, os.O_RDONLY)
    try:
        mm = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        dst, src = memoryview(buf), memoryview(mm)
        for off in range(0, size, MIB):
            n = min(MIB, size - off)
            dst[:n] = src[off:off + n]
        dst.release()
        src.release()
        mm.close()
    finally:
        os.close(fd)
    dt = time.monotonic() - t0
    return size / MIB / dt, {}


def wl_append(ctx):
    """Copy-up latency of a large lower file: open O_APPEND, 1 byte, close.
    The lower file is in the page cache (read from the layer directly)."""
    lower = f"{ctx['lower_bottom']}/data/big.bin"
    path = big_file(ctx)
    read_all(lower)
    size = os.stat(lower).st_size
    os.sync()
    t0 = time.monotonic()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    os.write(fd, b"x")
    os.close(fd)
    dt = time.monotonic() - t0
    if os.stat(lower).st_size != size:
        raise RuntimeError(f"the LOWER file {lower} changed size: written through")
    if os.stat(path).st_size != size + 1:
        raise RuntimeError(f"{path} has size {os.stat(path).st_size}, not {size + 1}")
    return dt, {}


def walk_stat(top):
    n = 0
    stack = [top]
    while stack:
        d = stack.pop()
        with os.scandir(d) as it:
            for e in it:
                st = os.lstat(e.path)
                n += 1
                if stat.S_ISDIR(st.st_mode):
                    stack.append(e.path)
    return n


def tree_entries(sc):
    ndirs = sc["groups"] * sc["dirs"]
    return sc["groups"] + ndirs + ndirs * sc["files"]


def wl_stat_tree(ctx):
    t0 = time.monotonic()
    n = walk_stat(f"{ctx['mnt']}/tree")
    dt = time.monotonic() - t0
    if n != tree_entries(ctx["scale"]):
        raise RuntimeError(f"walked {n} entries, expected {tree_entries(ctx['scale'])}")
    return dt, {"entries": n}


def wl_list_dir(ctx):
    path = f"{ctx['mnt']}/bigdir"
    want = ctx["scale"]["bigdir"]
    t0 = time.monotonic()
    for _ in range(ctx["scale"]["list_reps"]):
        with os.scandir(path) as it:
            n = sum(1 for _ in it)
        if n != want:
            raise RuntimeError(f"listed {n} entries of {path}, expected {want}")
    return time.monotonic() - t0, {}


def wl_create_remove(ctx):
    d = f"{ctx['mnt']}/created"
    data = b"c" * 1024
    names = [f"{d}/n{i:05d}" for i in range(ctx["scale"]["creates"])]
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    t0 = time.monotonic()
    os.mkdir(d)
    for p in names:
        fd = os.open(p, flags, 0o644)
        os.write(fd, data)
        os.close(fd)
    for p in names:
        os.unlink(p)
    os.rmdir(d)
    return time.monotonic() - t0, {}


def wl_tar(ctx):
    t0 = time.monotonic()
    # through a pipe: GNU tar skips reading file data when writing /dev/null
    p = subprocess.Popen(["tar", "-C", ctx["mnt"], "-cf", "-", "tree"], stdout=subprocess.PIPE)
    total = 0
    while True:
        b = p.stdout.read(MIB)
        if not b:
            break
        total += len(b)
    if p.wait() != 0:
        raise RuntimeError(f"tar exited {p.returncode}")
    return time.monotonic() - t0, {"bytes": total}


def wl_untar(ctx):
    d = f"{ctx['mnt']}/untar"
    t0 = time.monotonic()
    os.mkdir(d)
    subprocess.run(["tar", "-C", d, "-xf", ctx["tar"]], check=True)
    return time.monotonic() - t0, {}


def wl_chmod(ctx):
    t0 = time.monotonic()
    subprocess.run(["chmod", "-R", "g+w", f"{ctx['mnt']}/tree"], check=True)
    return time.monotonic() - t0, {}


def wl_rename(ctx):
    mnt = ctx["mnt"]
    paths = [f"{mnt}/{d}/f00" for d in tree_dirs(ctx["scale"])[: ctx["scale"]["renames"]]]
    t0 = time.monotonic()
    for p in paths:
        os.rename(p, p + ".renamed")
    return time.monotonic() - t0, {}


def wl_compile(ctx):
    """make + cc, roughly: read a source, look headers up along an include
    path where the first two directories lack them, read them, write an
    object through a temporary name, stat it; then read all objects and
    write the program."""
    mnt, sc = ctx["mnt"], ctx["scale"]
    dirs = [f"{mnt}/{d}" for d in tree_dirs(sc)]
    nd, nf = len(dirs), sc["files"]
    path_misses = [f"{mnt}/tree/include", f"{mnt}/tree/g00/sys"]
    obj = f"{mnt}/obj"
    out = bytes(data_chunk(3)[:8192])
    wflags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    t0 = time.monotonic()
    os.mkdir(obj)
    targets = []
    for u in range(sc["units"]):
        read_small(f"{dirs[u % nd]}/f{u % nf:02d}")
        for h in range(12):
            name = f"f{(u * 3 + h) % nf:02d}"
            for cand in path_misses + [dirs[(u * 7 + h * 13) % nd]]:
                try:
                    os.stat(f"{cand}/{name}")
                except FileNotFoundError:
                    continue
                read_small(f"{cand}/{name}")
                break
            else:
                raise RuntimeError(f"header {name} not found")
        target = f"{obj}/u{u:05d}.o"
        try:
            os.stat(target)
        except FileNotFoundError:
            pass
        fd = os.open(target + ".tmp", wflags, 0o644)
        os.write(fd, out[:4096])
        os.write(fd, out[4096:])
        os.close(fd)
        os.rename(target + ".tmp", target)
        os.stat(target)
        targets.append(target)
    fd = os.open(f"{obj}/a.out", wflags, 0o644)
    for t in targets:
        os.write(fd, read_small(t))
    os.close(fd)
    os.chmod(f"{obj}/a.out", 0o755)
    return time.monotonic() - t0, {}


def run_group(cmd, **kw):
    """subprocess.run in a session of its own, so that when we are stopped
    its whole process group is stopped with it (SIGTERM, then SIGKILL)."""
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)
    try:
        out, err = p.communicate()
    except BaseException:
        for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, None)):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                break
            try:
                p.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                pass
        raise
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def run_quiet(cmd, **kw):
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, **kw)


class Workload:
    def __init__(self, name, group, unit, better, fn, drop=None, desc="", lowers=None):
        self.name = name
        self.group = group
        self.unit = unit
        self.better = better  # "higher" or "lower"
        self.fn = fn
        self.drop = drop  # drop_caches level written just before it runs
        self.desc = desc
        self.lowers = lowers  # lowers(bench): its lower layers, if not top/bottom


DATA = [
    Workload("seqread-warm", "data", "MiB/s", "higher", lambda c: wl_seqread(c, True),
             desc="read the 1 GiB lower file, 1 MiB reads, after reading it once"),
    Workload("seqread-cold", "data", "MiB/s", "higher", lambda c: wl_seqread(c, False), drop=3,
             desc="the same after sync; echo 3 >/proc/sys/vm/drop_caches"),
    Workload("randread-4k-1job", "data", "IOPS", "higher", lambda c: wl_randread(c, 1),
             desc="fio 4k randread, psync, invalidate=0, warm, time-based"),
    Workload("randread-4k-4jobs", "data", "IOPS", "higher", lambda c: wl_randread(c, 4),
             desc="the same with 4 jobs"),
    Workload("seqwrite-fsync", "data", "MiB/s", "higher", wl_seqwrite,
             desc="write a new 1 GiB file, 1 MiB writes, fsync, close"),
    Workload("smallwrite-4k", "data", "MiB/s", "higher", wl_smallwrite,
             desc="write a new 64 MiB file, 4 KiB writes, fsync, close"),
    Workload("mmap-read", "data", "MiB/s", "higher", wl_mmap,
             desc="mmap the 1 GiB lower file and copy it out 1 MiB at a time, warm"),
    Workload("append-copyup", "data", "s", "lower", wl_append,
             desc="open the 1 GiB lower file O_APPEND, write 1 byte, close (copy-up)"),
]
NAMESPACE = [
    Workload("stat-tree", "namespace", "s", "lower", wl_stat_tree,
             desc="lstat every entry of tree/ (20,000 files, 1,020 dirs, 2 layers)"),
    Workload("list-bigdir", "namespace", "s", "lower", wl_list_dir,
             desc="list bigdir/ (10,000 entries over 2 layers) 20 times"),
    Workload("create-remove", "namespace", "s", "lower", wl_create_remove,
             desc="create and write 1 KiB to 10,000 files, then remove them"),
    Workload("tar-tree", "namespace", "s", "lower", wl_tar,
             desc="tar -cf - tree (read through a pipe)"),
    Workload("untar-tree", "namespace", "s", "lower", wl_untar,
             desc="tar -xf of the merged tree into a new directory"),
    Workload("chmod-R", "namespace", "s", "lower", wl_chmod,
             desc="chmod -R g+w tree (copy-up of every lower file and dir)"),
    Workload("rename-1000", "namespace", "s", "lower", wl_rename,
             desc="rename 1,000 lower files (one per directory)"),
    Workload("compile-mix", "namespace", "s", "lower", wl_compile,
             desc="500 units: include-path misses, small reads, object writes, link"),
]


# Every mount and process the run starts is registered here and taken down
# by bench.py's cleanup(), also on exceptions and signals: each has .mnt and
# .stop(), which unmounts only that mount point and signals only its pid.
ACTIVE = []

_OCTAL = re.compile(r"\\([0-7]{3})")


def mount_points(pid="self"):
    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            return [_OCTAL.sub(lambda m: chr(int(m.group(1), 8)), line.split()[4]) for line in f]
    except (FileNotFoundError, ProcessLookupError):
        return []


def fresh_mount_dirs(upper, work, mnt):
    """An empty upper and work directory, and a mount point not in use."""
    for d in (upper, work):
        if os.path.exists(d):
            shutil.rmtree(d)
        os.makedirs(d)
    os.makedirs(mnt, exist_ok=True)
    if mnt in mount_points():
        raise RuntimeError(f"{mnt} is already a mount point")
