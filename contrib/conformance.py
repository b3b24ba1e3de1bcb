#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""conformance.py: POSIX edge cases on a mounted overlay, one canonical
line per check, so that two mounts of the same layers (overpass and kernel
overlayfs, or either and a plain filesystem) can be compared with diff.

    conformance.py --prepare LOWER UPPER [UPPER...] [--user UID:GID]
    conformance.py --prepare-plain DIR [--user UID:GID]
    conformance.py [--as-user UID:GID] [--subdir BASE]... [--group G]... DIR
    conformance.py --list

--prepare writes the fixture: the same lower layer and one or more
identical upper layers (kernel overlayfs and overpass must not share an
upper).  --prepare-plain writes the merged view those layers give into one
plain directory.  Every check owns its objects, named CHECK.KIND..., in
each of three bases: the root of the tree ("."), "lodir" (a directory only
in the lower layer) and "mdir" (a directory in both layers, merged).
KIND says where an object lives: "lo" only in the lower layer, "up" only
in the upper, "both" in both (a shadowed file, a merged directory);
lodir holds "lo" objects only.  Files and directories are owned by root,
by the user (--user, default 1000:1000) or by "other" (2000:2000), and
carry old fixed timestamps.

A run changes into DIR (as root), drops to --as-user's ids (setgroups,
setgid, setuid) when given, and runs every check of the chosen groups
(default all) in the chosen bases (default all three), printing

    BASE GROUP.CHECK[KIND] STEP: RESULT

where RESULT is what a call returned ("ok", a value, or selected stat
fields) or the errno name.  Only deterministic fields are printed: no
inode or device numbers (identity shows as "same"/"different"), no
absolute times (times are printed "changed"/"same" relative to a stat
taken just before the step, after a short sleep), except times set
explicitly.  A run changes the tree: prepare fresh layers for each run.
Exit status 0 unless the arguments are wrong.
"""
import ctypes
import errno
import fcntl
import os
import shutil
import stat
import sys
import time

GROUPS = ("names", "types", "perms", "sticky", "suid", "open", "times",
          "unlinked", "links")
BASES = {".": ("lo", "up", "both"), "lodir": ("lo",), "mdir": ("lo", "up", "both")}
ROOT = (0, 0)
OTHER = (2000, 2000)
USER = [1000, 1000]          # --user / --as-user
T0 = 1000000000 * 10**9      # fixture atime/mtime (2001-09-09)
TICK = 0.03                  # longer than the kernel's timestamp granularity
PATH_MAX = 4096

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _raise(path):
    e = ctypes.get_errno()
    raise OSError(e, os.strerror(e), path)


def utimensat(path, atime, mtime, flags=0):
    """atime/mtime: (sec, nsec), or UTIME_NOW / UTIME_OMIT."""
    ts = (Timespec * 2)()
    for i, t in enumerate((atime, mtime)):
        ts[i] = Timespec(0, t) if isinstance(t, int) else Timespec(*t)
    if libc.utimensat(AT_FDCWD, os.fsencode(path), ts, flags) < 0:
        _raise(path)


def renameat2(old, new, flags):
    if libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new),
                      ctypes.c_uint(flags)) < 0:
        _raise(old)


# --- fixture writer --------------------------------------------------------


class Writer:
    """Writes objects of a kind into the layers of one base.  lower: the
    base in the lower layer; uppers: the base in each upper layer (none
    for lodir).  In plain mode lower is None and uppers is [DIR]: what
    the upper holds overwrites what the lower holds, whiteouts and opaque
    directories remove it.  Paths inside a layer can pass PATH_MAX with
    the layer's own path in front: every call is relative to the parent
    directory's descriptor."""

    def __init__(self, lower, uppers, plain=False):
        self.lower = lower
        self.uppers = uppers
        self.plain = plain
        self.created = []

    def _layers(self, kind):
        if kind in ("up", "both") and not self.uppers:
            raise ValueError(f"fixture bug: a {kind} object in a lower-only base")
        if self.plain:
            return [("lower" if kind != "up" else "upper", self.uppers[0])] + \
                ([("upper", self.uppers[0])] if kind == "both" else [])
        out = []
        if kind in ("lo", "both"):
            out.append(("lower", self.lower))
        if kind in ("up", "both"):
            out += [("upper", u) for u in self.uppers]
        return out

    def _each(self, kind, rel, fn, record=True):
        """fn(tag, dirfd, name) for rel in each layer of kind."""
        for tag, top in self._layers(kind):
            d, name = _parent(top, rel)
            try:
                fn(tag, d, name)
            finally:
                os.close(d)
            if record:
                self.created.append((top, rel))

    def file(self, kind, rel, mode=0o644, owner=ROOT, data=None):
        def mk(tag, d, name):
            _clear(d, name, keep_dir=False)
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600, dir_fd=d)
            with os.fdopen(fd, "w") as f:
                f.write(data if data is not None else f"{tag}:{name[:16]}\n")
            _own(d, name, owner, mode)
        self._each(kind, rel, mk)

    def dir(self, kind, rel, mode=0o755, owner=ROOT):
        def mk(tag, d, name):
            if not _isdir(d, name):
                _clear(d, name, keep_dir=False)
                os.mkdir(name, 0o700, dir_fd=d)
            _own(d, name, owner, mode)
        self._each(kind, rel, mk)

    def symlink(self, kind, rel, target, owner=ROOT):
        def mk(tag, d, name):
            _clear(d, name, keep_dir=False)
            os.symlink(target, name, dir_fd=d)
            _own(d, name, owner, None)
        self._each(kind, rel, mk)

    def link(self, kind, src, dst):
        for _, top in self._layers(kind):
            sd, sname = _parent(top, src)
            dd, dname = _parent(top, dst)
            try:
                _clear(dd, dname, keep_dir=False)
                os.link(sname, dname, src_dir_fd=sd, dst_dir_fd=dd,
                        follow_symlinks=False)
            finally:
                os.close(sd)
                os.close(dd)

    def whiteout(self, rel):
        """rel is gone from the merged view (a lower object below it)."""
        def mk(tag, d, name):
            _clear(d, name, keep_dir=False)
            if self.plain:
                return
            try:
                os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=d)
            except PermissionError:
                # an upper on overlayfs refuses whiteout devices: the
                # AUFS form, which overpass and fuse-overlayfs read
                os.close(os.open(".wh." + name, os.O_WRONLY | os.O_CREAT, 0o600,
                                 dir_fd=d))
        self._each("up", rel, mk, record=not self.plain)

    def opaque(self, rel, mode=0o755, owner=ROOT):
        """An upper directory hiding the lower one of the same name."""
        def mk(tag, d, name):
            _clear(d, name, keep_dir=False)
            os.mkdir(name, 0o700, dir_fd=d)
            if not self.plain:
                os.setxattr(f"/proc/self/fd/{d}/{name}", "trusted.overlay.opaque", b"y",
                            follow_symlinks=False)
            _own(d, name, owner, mode)
        self._each("up", rel, mk)

    def settle(self):
        """Old fixed times on everything written (parents last)."""
        for top, rel in sorted(set(self.created), key=lambda c: len(c[1]), reverse=True):
            d, name = _parent(top, rel)
            try:
                os.utime(name, ns=(T0, T0), dir_fd=d, follow_symlinks=False)
            except FileNotFoundError:
                pass
            finally:
                os.close(d)


def _parent(top, rel):
    """A descriptor of the directory holding top/rel, and the last name."""
    parts = [c for c in rel.split("/") if c not in ("", ".")]
    d = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    if not parts:
        parent = os.open("..", os.O_RDONLY | os.O_DIRECTORY, dir_fd=d)
        os.close(d)
        return parent, os.path.basename(os.path.abspath(top))
    for c in parts[:-1]:
        n = os.open(c, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=d)
        os.close(d)
        d = n
    return d, parts[-1]


def _isdir(d, name):
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=d, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _clear(d, name, keep_dir):
    """Remove what is at name (plain mode overwrites the lower's view)."""
    try:
        st = os.stat(name, dir_fd=d, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if not keep_dir:
            shutil.rmtree(name, dir_fd=d)
    else:
        os.unlink(name, dir_fd=d)


def _own(d, name, owner, mode):
    os.chown(name, *owner, dir_fd=d, follow_symlinks=False)
    if mode is not None:
        os.chmod(name, mode, dir_fd=d)


# --- results ----------------------------------------------------------------


class Stop(Exception):
    """A step a check depends on failed; its error is already printed."""


def ename(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def short(name):
    """Long generated names print as their first letter and length."""
    return name if len(name) <= 24 else f"{name[0]}*{len(name)}"


TYPES = {stat.S_IFREG: "reg", stat.S_IFDIR: "dir", stat.S_IFLNK: "lnk",
         stat.S_IFCHR: "chr", stat.S_IFIFO: "fifo", stat.S_IFSOCK: "sock",
         stat.S_IFBLK: "blk"}


def fmt_st(st, fields="tmugsn"):
    """Deterministic stat fields: t type, m mode, u uid, g gid, s size (not
    for directories), n nlink."""
    out = []
    for c in fields:
        if c == "t":
            out.append(TYPES.get(stat.S_IFMT(st.st_mode), "?"))
        elif c == "m":
            out.append(f"mode={stat.S_IMODE(st.st_mode):04o}")
        elif c == "u":
            out.append(f"uid={st.st_uid}")
        elif c == "g":
            out.append(f"gid={st.st_gid}")
        elif c == "s" and not stat.S_ISDIR(st.st_mode):
            out.append(f"size={st.st_size}")
        elif c == "n":
            out.append(f"nlink={st.st_nlink}")
    return " ".join(out)


def tdiff(before, after, which="amc"):
    """Which of atime, mtime, ctime changed between two stats."""
    names = {"a": "atime", "m": "mtime", "c": "ctime"}
    out = []
    for c in which:
        attr = f"st_{names[c]}_ns"
        same = getattr(before, attr) == getattr(after, attr)
        out.append(f"{names[c]}={'same' if same else 'changed'}")
    return " ".join(out)


def fmt(v):
    if v is None:
        return "ok"
    if isinstance(v, os.stat_result):
        return fmt_st(v)
    if isinstance(v, bytes):
        return repr(v) if len(v) <= 40 else f"bytes*{len(v)}"
    if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
        return "[" + " ".join(short(x) for x in v) + "]"
    return str(v)


class Rec:
    """Prints the steps of one check."""

    def __init__(self, head):
        self.head = head
        self.n = 0

    def put(self, step, value):
        self.n += 1
        print(f"{self.head} {step}: {value}", flush=True)

    def op(self, step, fn):
        """Print what fn returned, or its errno; return it, or None."""
        try:
            v = fn()
        except OSError as e:
            self.put(step, ename(e))
            return None
        self.put(step, fmt(v))
        return v

    def must(self, step, fn, show=True):
        """As op, but a failure ends the check; show=False prints "ok"
        for a value that is not deterministic (a descriptor)."""
        try:
            v = fn()
        except OSError as e:
            self.put(step, ename(e))
            raise Stop() from e
        self.put(step, fmt(v) if show else "ok")
        return v

    def timed(self, step, path, fn, which="mc", follow=True, after=None):
        """Run fn after a tick; print its result (or errno) and which of
        the times of path changed.  path may be a list of paths; after, the
        same objects' paths once fn has run (a rename moves them)."""
        paths = path if isinstance(path, (list, tuple)) else [path]
        later = after if after is not None else paths
        before = [os.stat(p, follow_symlinks=follow) for p in paths]
        time.sleep(TICK)
        try:
            v = fmt(fn())
        except OSError as e:
            v = ename(e)
        now = [os.stat(p, follow_symlinks=follow) for p in later]
        rel = [tdiff(b, a, which) for b, a in zip(before, now)]
        self.put(step, v + " " + " | ".join(rel))


def lstat(p):
    return os.lstat(p)


def fstat_of(fd, fields="tmugsn"):
    return fmt_st(os.fstat(fd), fields)


def fstat_path(p, flags):
    fd = os.open(p, flags)
    try:
        return fstat_of(fd)
    finally:
        os.close(fd)


def read(p):
    with open(p, "rb") as f:
        return f.read()


def write(p, data, flags=os.O_WRONLY):
    fd = os.open(p, flags)
    try:
        return os.write(fd, data)
    finally:
        os.close(fd)


def create(p, mode=0o644, flags=os.O_WRONLY | os.O_CREAT | os.O_EXCL):
    os.close(os.open(p, flags, mode))


def close_open(p, flags, mode=0o644):
    os.close(os.open(p, flags, mode))


def listing(p):
    return sorted(os.listdir(p))


def fixed_times(st, which="am"):
    """atime and mtime when set explicitly (before 2000), else "now"."""
    return " ".join(f"{n}={v if v < 946684800 * 10**9 else 'now'}"
                    for n, v in (("atime", st.st_atime_ns), ("mtime", st.st_mtime_ns))
                    if n[0] in which)


def same_ino(a, b):
    return "same" if os.lstat(a).st_ino == os.lstat(b).st_ino else "different"


# --- checks -----------------------------------------------------------------

CHECKS = []


def check(group, name, prep, kinds=("lo", "up", "both")):
    """Register fn(rec, kind, prefix) with prep(writer, kind, prefix)."""
    def deco(fn):
        CHECKS.append((group, name, prep, kinds, fn))
        return fn
    return deco


# names: ENAMETOOLONG for a 256-byte component; 255 works ----------------

def prep_namemax(W, k, p):
    W.dir(k, p)
    W.file(k, f"{p}/f")
    W.file(k, f"{p}/" + "L" * 255)
    W.file(k, f"{p}/" + "K" * 255)
    W.dir(k, f"{p}/" + "M" * 255)
    W.file(k, f"{p}/" + "M" * 255 + "/g")


@check("names", "name-max", prep_namemax)
def c_namemax(r, k, p):
    n256 = f"{p}/" + "a" * 256
    r.op("stat 256", lambda: lstat(n256))
    r.op("creat 256", lambda: create(n256))
    r.op("mkdir 256", lambda: os.mkdir(n256))
    r.op("symlink 256", lambda: os.symlink("f", n256))
    r.op("symlink target with a 256 component",
         lambda: os.symlink("b" * 256, f"{p}/s"))
    r.op("stat through it", lambda: os.stat(f"{p}/s"))
    r.op("link 256", lambda: os.link(f"{p}/f", n256))
    r.op("rename to 256", lambda: os.rename(f"{p}/f", n256))
    r.op("mkfifo 256", lambda: os.mkfifo(n256))
    r.op("unlink 256", lambda: os.unlink(n256))
    r.op("rmdir 256", lambda: os.rmdir(n256))
    r.op("stat 255 absent", lambda: lstat(f"{p}/" + "a" * 255))
    r.op("creat 255", lambda: create(f"{p}/" + "a" * 255))
    r.op("stat 255 created", lambda: lstat(f"{p}/" + "a" * 255))
    r.op("read 255 existing", lambda: read(f"{p}/" + "L" * 255))
    r.op("rename 255 to short", lambda: os.rename(f"{p}/" + "L" * 255, f"{p}/l"))
    r.op("read renamed", lambda: read(f"{p}/l"))
    r.op("rename short to 255", lambda: os.rename(f"{p}/f", f"{p}/" + "F" * 255))
    r.op("rename dir 255", lambda: os.rename(f"{p}/" + "M" * 255, f"{p}/m"))
    r.op("read in renamed dir", lambda: read(f"{p}/m/g"))
    r.op("mkdir 255", lambda: os.mkdir(f"{p}/" + "N" * 255))
    r.op("unlink 255", lambda: os.unlink(f"{p}/" + "a" * 255))
    r.op("unlink 255 existing", lambda: os.unlink(f"{p}/" + "K" * 255))
    r.op("listing", lambda: listing(p))


# names: paths at PATH_MAX -----------------------------------------------------

def deep_dirs(p):
    """Directories below p of 250-byte names, deep enough that a file
    name of 1 to 255 bytes at the bottom makes a 4095-byte path."""
    comps = []
    path = p
    while PATH_MAX - 1 - (len(path) + 1) > 255:
        comps.append("D" * 250)
        path += "/" + comps[-1]
    return path


def deep_file(p, letter="F"):
    d = deep_dirs(p)
    return d + "/" + letter * (PATH_MAX - 1 - len(d) - 1)


LONG_TARGET = ("t" * 200 + "/") * 20


def prep_pathmax(W, k, p):
    W.dir(k, p)
    d = p
    while d != deep_dirs(p):
        d += "/" + "D" * 250
        W.dir(k, d)
    W.file(k, deep_file(p))
    W.file(k, f"{p}/short")
    W.symlink(k, f"{p}/longlink", LONG_TARGET[:PATH_MAX - 1])


@check("names", "path-max", prep_pathmax)
def c_pathmax(r, k, p):
    deep = deep_file(p)
    r.put("path length", len(deep))
    r.op("stat 4095", lambda: lstat(deep))
    r.op("stat 4096", lambda: lstat(deep + "x"))
    r.op("stat 4096 with slash", lambda: lstat(deep + "/"))
    rem = PATH_MAX - 1 - len(f"{p}/short")
    padded = (".//" + "./" * ((rem - 3) // 2) if rem % 2 else "./" * (rem // 2)) + f"{p}/short"
    r.put("padded length", len(padded))
    r.op("stat padded 4095", lambda: lstat(padded))
    r.op("stat padded 4096", lambda: lstat("/" + padded))
    r.op("read 4095", lambda: read(deep))
    r.op("append 4095", lambda: write(deep, b"+", os.O_WRONLY | os.O_APPEND))
    r.op("read after append", lambda: read(deep))
    new = deep_file(p, "G")
    r.op("creat 4095", lambda: create(new))
    r.op("stat created", lambda: lstat(new))
    r.op("creat 4096", lambda: create(new + "x"))
    r.op("rename 4095 to short", lambda: os.rename(deep, f"{p}/moved"))
    r.op("read moved", lambda: read(f"{p}/moved"))
    r.op("rename short to 4095", lambda: os.rename(f"{p}/moved", deep))
    r.op("read moved back", lambda: read(deep))
    r.op("unlink 4095", lambda: os.unlink(new))
    r.op("mkdir 4095", lambda: os.mkdir(deep_file(p, "H")))
    r.op("rmdir 4095", lambda: os.rmdir(deep_file(p, "H")))
    r.op("symlink target 4095", lambda: os.symlink(LONG_TARGET[:4095], f"{p}/l4095"))
    r.op("readlink length", lambda: len(os.readlink(f"{p}/l4095")))
    r.op("symlink target 4096", lambda: os.symlink(LONG_TARGET[:4096], f"{p}/l4096"))
    r.op("readlink fixture 4095", lambda: os.readlink(f"{p}/longlink") == LONG_TARGET[:4095])
    # a metadata change copies a lower symlink up
    r.op("lutimes fixture", lambda: utimensat(f"{p}/longlink", (5, 0), (6, 0),
                                              AT_SYMLINK_NOFOLLOW))
    r.op("readlink after", lambda: os.readlink(f"{p}/longlink") == LONG_TARGET[:4095])
    r.op("lstat after", lambda: fmt_st(lstat(f"{p}/longlink")) + " " +
         fixed_times(lstat(f"{p}/longlink"), "m"))


# types: ENOTDIR, EISDIR ----------------------------------------------------

def prep_filedir(W, k, p):
    W.dir(k, p)
    W.file(k, f"{p}/f")
    W.file(k, f"{p}/f2")
    W.dir(k, f"{p}/d")
    W.file(k, f"{p}/d/x")
    W.dir(k, f"{p}/e")
    W.symlink(k, f"{p}/lf", "f")
    W.symlink(k, f"{p}/ld", "d")


@check("types", "enotdir", prep_filedir)
def c_enotdir(r, k, p):
    f, d, e = f"{p}/f", f"{p}/d", f"{p}/e"
    r.op("stat file/x", lambda: lstat(f + "/x"))
    r.op("stat file/", lambda: lstat(f + "/"))
    r.op("open file/ O_CREAT", lambda: close_open(f + "/", os.O_CREAT | os.O_WRONLY))
    r.op("open file O_DIRECTORY", lambda: close_open(f, os.O_RDONLY | os.O_DIRECTORY))
    r.op("open symlink-to-file O_DIRECTORY",
         lambda: close_open(f"{p}/lf", os.O_RDONLY | os.O_DIRECTORY))
    r.op("listdir file", lambda: os.listdir(f))
    r.op("chdir file", lambda: os.chdir(f))
    r.op("rmdir file", lambda: os.rmdir(f))
    r.op("rmdir symlink-to-dir", lambda: os.rmdir(f"{p}/ld"))
    r.op("mkdir file/x", lambda: os.mkdir(f + "/x"))
    r.op("creat file/x", lambda: create(f + "/x"))
    r.op("rename dir over file", lambda: os.rename(e, f))
    r.op("rename file to file/", lambda: os.rename(f, f"{p}/f2/"))
    r.op("rename file/ to new", lambda: os.rename(f + "/", f"{p}/n"))
    r.op("link file to file/x", lambda: os.link(f, f + "/x"))
    r.op("symlink at file/x", lambda: os.symlink("f", f + "/x"))
    r.op("unlink file/x", lambda: os.unlink(f + "/x"))
    r.op("stat dir", lambda: fmt_st(lstat(d), "tmug"))
    r.op("stat file", lambda: lstat(f))


@check("types", "eisdir", prep_filedir)
def c_eisdir(r, k, p):
    f, d, e = f"{p}/f", f"{p}/d", f"{p}/e"
    r.op("open dir O_WRONLY", lambda: close_open(d, os.O_WRONLY))
    r.op("open dir O_RDWR", lambda: close_open(d, os.O_RDWR))
    r.op("open dir O_CREAT", lambda: close_open(d, os.O_RDONLY | os.O_CREAT))
    r.op("open dir O_TRUNC", lambda: close_open(d, os.O_RDONLY | os.O_TRUNC))
    r.op("open dir O_RDONLY", lambda: close_open(d, os.O_RDONLY))
    r.op("open dir/ O_CREAT new", lambda: close_open(f"{p}/new/", os.O_WRONLY | os.O_CREAT))
    r.op("unlink dir", lambda: os.unlink(d))
    r.op("unlink empty dir", lambda: os.unlink(e))
    r.op("rename file over dir", lambda: os.rename(f, e))
    r.op("truncate dir", lambda: os.truncate(d, 0))
    r.op("read dir", lambda: read(d))
    r.op("link dir", lambda: os.link(d, f"{p}/dl"))
    r.op("listing", lambda: listing(p))
    r.op("listing dir", lambda: listing(d))


# types: ELOOP ----------------------------------------------------------------

def prep_loop(W, k, p):
    W.dir(k, p)
    W.file(k, f"{p}/f")
    W.symlink(k, f"{p}/l1", "l2")
    W.symlink(k, f"{p}/l2", "l1")
    W.symlink(k, f"{p}/self", "self")
    W.symlink(k, f"{p}/lf", "f")
    W.symlink(k, f"{p}/dangling", "newtarget")
    for i in range(1, 41):
        W.symlink(k, f"{p}/c{i}", f"c{i + 1}")
    W.symlink(k, f"{p}/c41", "f")


@check("types", "eloop", prep_loop)
def c_eloop(r, k, p):
    r.op("stat loop", lambda: os.stat(f"{p}/l1"))
    r.op("lstat loop", lambda: lstat(f"{p}/l1"))
    r.op("stat self", lambda: os.stat(f"{p}/self"))
    r.op("stat loop/x", lambda: lstat(f"{p}/l1/x"))
    r.op("open loop O_CREAT", lambda: close_open(f"{p}/l1", os.O_WRONLY | os.O_CREAT))
    r.op("mkdir loop", lambda: os.mkdir(f"{p}/l1"))
    r.op("open symlink O_NOFOLLOW", lambda: close_open(f"{p}/lf", os.O_RDONLY | os.O_NOFOLLOW))
    r.op("open symlink O_NOFOLLOW|O_PATH",
         lambda: fstat_path(f"{p}/lf", os.O_PATH | os.O_NOFOLLOW))
    r.op("chain of 40", lambda: read(f"{p}/c2"))
    r.op("chain of 41", lambda: read(f"{p}/c1"))
    r.op("chmod loop", lambda: os.chmod(f"{p}/l1", 0o600))
    r.op("truncate loop", lambda: os.truncate(f"{p}/l1", 0))
    r.op("open dangling O_CREAT|O_EXCL",
         lambda: close_open(f"{p}/dangling", os.O_WRONLY | os.O_CREAT | os.O_EXCL))
    r.op("open dangling O_CREAT",
         lambda: write(f"{p}/dangling", b"via link", os.O_WRONLY | os.O_CREAT))
    r.op("read target", lambda: read(f"{p}/newtarget"))
    r.op("stat target", lambda: lstat(f"{p}/newtarget"))
    r.op("rename loop", lambda: os.rename(f"{p}/l1", f"{p}/l3"))
    r.op("stat renamed loop", lambda: os.stat(f"{p}/l3"))
    r.op("unlink loop", lambda: os.unlink(f"{p}/l2"))
    r.op("stat after unlink", lambda: os.stat(f"{p}/l3"))


# types: EEXIST --------------------------------------------------------------

def prep_eexist(W, k, p):
    prep_filedir(W, k, p)
    W.file(k, f"{p}/gone")


@check("types", "eexist", prep_eexist)
def c_eexist(r, k, p):
    f, d = f"{p}/f", f"{p}/d"
    r.op("mkdir on file", lambda: os.mkdir(f))
    r.op("mkdir on dir", lambda: os.mkdir(d))
    r.op("mkdir on symlink", lambda: os.mkdir(f"{p}/ld"))
    r.op("creat O_EXCL on file", lambda: create(f))
    r.op("creat O_EXCL on dir", lambda: create(d))
    r.op("creat O_EXCL on symlink", lambda: create(f"{p}/lf"))
    r.op("open O_EXCL without O_CREAT", lambda: close_open(f, os.O_RDONLY | os.O_EXCL))
    r.op("link on file", lambda: os.link(f, f"{p}/f2"))
    r.op("link on dir", lambda: os.link(f, d))
    r.op("symlink on file", lambda: os.symlink("x", f))
    r.op("symlink on dir", lambda: os.symlink("x", d))
    r.op("mkfifo on file", lambda: os.mkfifo(f))
    r.op("rename NOREPLACE on file", lambda: renameat2(f, f"{p}/f2", RENAME_NOREPLACE))
    r.op("rename NOREPLACE on dir", lambda: renameat2(f"{p}/e", d, RENAME_NOREPLACE))
    r.op("rename NOREPLACE to new", lambda: renameat2(f"{p}/f2", f"{p}/f3", RENAME_NOREPLACE))
    r.op("rename EXCHANGE file dir", lambda: renameat2(f, d, RENAME_EXCHANGE))
    r.op("stat after exchange", lambda: (fmt_st(lstat(f), "t"), fmt_st(lstat(d), "t")))
    r.op("read exchanged", lambda: read(f"{p}/d"))
    r.op("rename EXCHANGE with missing",
         lambda: renameat2(f"{p}/f3", f"{p}/nope", RENAME_EXCHANGE))
    r.op("unlink", lambda: os.unlink(f"{p}/gone"))
    r.op("creat O_EXCL over removed", lambda: create(f"{p}/gone"))
    r.op("read recreated", lambda: read(f"{p}/gone"))
    r.op("listing", lambda: listing(p))


# types: ENOTEMPTY -----------------------------------------------------------

def prep_notempty(W, k, p):
    W.dir(k, p)
    W.dir(k, f"{p}/full")
    W.file(k, f"{p}/full/x")
    W.dir(k, f"{p}/empty")
    W.dir(k, f"{p}/emptied")
    W.file(k, f"{p}/emptied/a")
    W.file(k, f"{p}/emptied/b")
    W.dir(k, f"{p}/deep")
    W.dir(k, f"{p}/deep/sub")
    if k == "both":
        # merged: an entry from each layer; whiteouts hiding everything;
        # an opaque directory hiding a full lower one
        W.dir("both", f"{p}/mixed")
        W.file("lo", f"{p}/mixed/lo")
        W.file("up", f"{p}/mixed/up")
        W.dir("both", f"{p}/whited")
        W.file("lo", f"{p}/whited/a")
        W.whiteout(f"{p}/whited/a")
        W.dir("lo", f"{p}/opq")
        W.file("lo", f"{p}/opq/hidden")
        W.opaque(f"{p}/opq")


@check("types", "enotempty", prep_notempty)
def c_notempty(r, k, p):
    r.op("rmdir full", lambda: os.rmdir(f"{p}/full"))
    r.op("rmdir with subdir", lambda: os.rmdir(f"{p}/deep"))
    r.op("rename empty over full", lambda: os.rename(f"{p}/empty", f"{p}/full"))
    r.op("rename full over empty", lambda: os.rename(f"{p}/full", f"{p}/empty"))
    r.op("listing moved", lambda: listing(f"{p}/empty"))
    r.op("unlink children", lambda: [os.unlink(f"{p}/emptied/{n}") for n in "ab"] and None)
    r.op("listing emptied", lambda: listing(f"{p}/emptied"))
    r.op("rename dir over emptied", lambda: os.rename(f"{p}/deep/sub", f"{p}/emptied"))
    r.op("rmdir emptied", lambda: os.rmdir(f"{p}/emptied"))
    r.op("rmdir deep", lambda: os.rmdir(f"{p}/deep"))
    if k == "both":
        r.op("rmdir mixed", lambda: os.rmdir(f"{p}/mixed"))
        r.op("unlink lower entry", lambda: os.unlink(f"{p}/mixed/lo"))
        r.op("rmdir mixed with upper entry", lambda: os.rmdir(f"{p}/mixed"))
        r.op("unlink upper entry", lambda: os.unlink(f"{p}/mixed/up"))
        r.op("rmdir mixed emptied", lambda: os.rmdir(f"{p}/mixed"))
        r.op("listing whited", lambda: listing(f"{p}/whited"))
        r.op("rmdir whited", lambda: os.rmdir(f"{p}/whited"))
        r.op("listing opaque", lambda: listing(f"{p}/opq"))
        r.op("rmdir opaque", lambda: os.rmdir(f"{p}/opq"))
    r.op("mkdir over removed", lambda: os.mkdir(f"{p}/emptied"))
    r.op("listing recreated", lambda: listing(f"{p}/emptied"))
    r.op("listing", lambda: listing(p))


# types: EXDEV (kernel overlayfs: a directory redirect longer than its
# redirect_max, 256 bytes) -----------------------------------------------

EXDEV_DIR = "/".join(["E" * 100] * 3)


def prep_exdev(W, k, p):
    W.dir(k, p)
    d = p
    for c in EXDEV_DIR.split("/"):
        d += "/" + c
        W.dir(k, d)
    W.file(k, f"{d}/f")
    W.dir(k, f"{p}/small")
    W.file(k, f"{p}/small/f")
    W.dir(k, f"{p}/to")


@check("types", "exdev", prep_exdev)
def c_exdev(r, k, p):
    deep = f"{p}/{EXDEV_DIR}"
    r.op("rename long-path dir to another dir", lambda: os.rename(deep, f"{p}/to/moved"))
    r.op("rename long-path dir in its dir", lambda: os.rename(deep, deep + "2"))
    r.op("read", lambda: read(deep + "2/f"))
    r.op("rename short-path dir to another dir", lambda: os.rename(f"{p}/small", f"{p}/to/small"))
    r.op("read", lambda: read(f"{p}/to/small/f"))
    r.op("rename it to a long path", lambda: os.rename(f"{p}/to/small", deep + "2/small"))
    r.op("read", lambda: read(deep + "2/small/f"))
    r.op("rename file from long path", lambda: os.rename(deep + "2/f", f"{p}/to/f"))
    r.op("link file to long path", lambda: os.link(f"{p}/to/f", deep + "2/g"))
    r.op("listing", lambda: listing(f"{p}/to"))


# perms: another user's files (EACCES, EPERM) -------------------------------

def prep_perms(W, k, p):
    u = tuple(USER)
    W.dir(k, p, 0o755)
    W.file(k, f"{p}/r600", 0o600)
    W.file(k, f"{p}/r644", 0o644)
    W.file(k, f"{p}/r666", 0o666)
    W.file(k, f"{p}/r666b", 0o666)
    W.file(k, f"{p}/u644", 0o644, owner=u)
    W.file(k, f"{p}/u000", 0o000, owner=u)
    W.dir(k, f"{p}/d755", 0o755)
    W.file(k, f"{p}/d755/f")
    W.dir(k, f"{p}/d700", 0o700)
    W.file(k, f"{p}/d700/f")
    W.dir(k, f"{p}/d711", 0o711)
    W.file(k, f"{p}/d711/f")
    W.dir(k, f"{p}/d777", 0o777)
    W.file(k, f"{p}/d777/f")
    W.dir(k, f"{p}/ud", 0o755, owner=u)
    W.file(k, f"{p}/ud/rootfile", 0o644)


@check("perms", "eacces", prep_perms)
def c_eacces(r, k, p):
    r.op("read r600", lambda: read(f"{p}/r600"))
    r.op("access r600 R_OK", lambda: os.access(f"{p}/r600", os.R_OK))
    r.op("open r644 O_WRONLY", lambda: close_open(f"{p}/r644", os.O_WRONLY))
    r.op("open r644 O_RDONLY|O_TRUNC", lambda: close_open(f"{p}/r644", os.O_RDONLY | os.O_TRUNC))
    r.op("truncate r644", lambda: os.truncate(f"{p}/r644", 0))
    r.op("stat r644", lambda: lstat(f"{p}/r644"))
    r.op("write r666", lambda: write(f"{p}/r666", b"W"))
    r.op("stat r666", lambda: lstat(f"{p}/r666"))
    r.op("read u000 (owner)", lambda: read(f"{p}/u000"))
    r.op("creat in d755", lambda: create(f"{p}/d755/new"))
    r.op("unlink in d755", lambda: os.unlink(f"{p}/d755/f"))
    r.op("rename in d755", lambda: os.rename(f"{p}/d755/f", f"{p}/d755/g"))
    r.op("rename out of d755", lambda: os.rename(f"{p}/d755/f", f"{p}/d777/g"))
    r.op("mkdir in d755", lambda: os.mkdir(f"{p}/d755/sub"))
    r.op("rmdir d755", lambda: os.rmdir(f"{p}/d755"))
    r.op("listdir d700", lambda: listing(f"{p}/d700"))
    r.op("stat d700/f", lambda: lstat(f"{p}/d700/f"))
    r.op("listdir d711", lambda: listing(f"{p}/d711"))
    r.op("stat d711/f", lambda: lstat(f"{p}/d711/f"))
    r.op("creat in d777", lambda: create(f"{p}/d777/new"))
    r.op("stat created", lambda: lstat(f"{p}/d777/new"))
    r.op("mkdir in d777", lambda: os.mkdir(f"{p}/d777/sub"))
    r.op("stat made", lambda: fmt_st(lstat(f"{p}/d777/sub"), "tmug"))
    r.op("unlink root's file in d777", lambda: os.unlink(f"{p}/d777/f"))
    r.op("unlink root's file in own dir", lambda: os.unlink(f"{p}/ud/rootfile"))
    r.op("link r600", lambda: os.link(f"{p}/r600", f"{p}/d777/l600"))
    r.op("link r666", lambda: os.link(f"{p}/r666b", f"{p}/d777/l666"))
    r.op("setxattr user. on r644", lambda: os.setxattr(f"{p}/r644", "user.k", b"v"))
    r.op("setxattr user. on u644", lambda: os.setxattr(f"{p}/u644", "user.k", b"v"))
    r.op("getxattr", lambda: os.getxattr(f"{p}/u644", "user.k"))


@check("perms", "eperm", prep_perms)
def c_eperm(r, k, p):
    g = USER[1]
    r.op("chmod r644", lambda: os.chmod(f"{p}/r644", 0o666))
    r.op("chmod u644 (owner)", lambda: os.chmod(f"{p}/u644", 0o640))
    r.op("chown r644 to self", lambda: os.chown(f"{p}/r644", USER[0], -1))
    r.op("chown u644 to root", lambda: os.chown(f"{p}/u644", 0, -1))
    r.op("chgrp u644 to own group", lambda: os.chown(f"{p}/u644", -1, g))
    r.op("chgrp u644 to other group", lambda: os.chown(f"{p}/u644", -1, OTHER[1]))
    r.op("chown -1 -1 r644", lambda: os.chown(f"{p}/r644", -1, -1))
    r.op("stat u644", lambda: lstat(f"{p}/u644"))
    r.op("utimes explicit r666", lambda: utimensat(f"{p}/r666", (7, 0), (8, 0)))
    r.op("utimes NOW r666 (writable)", lambda: utimensat(f"{p}/r666", UTIME_NOW, UTIME_NOW))
    r.op("utimes NOW r644", lambda: utimensat(f"{p}/r644", UTIME_NOW, UTIME_NOW))
    r.op("utimes NOW,OMIT r644", lambda: utimensat(f"{p}/r644", UTIME_NOW, UTIME_OMIT))
    r.op("utimes explicit u644 (owner)", lambda: utimensat(f"{p}/u644", (7, 0), (8, 0)))
    r.op("times u644", lambda: fixed_times(lstat(f"{p}/u644")))
    r.op("setxattr trusted.", lambda: os.setxattr(f"{p}/u644", "trusted.k", b"v"))
    r.op("mknod chr", lambda: os.mknod(f"{p}/d777/chr", stat.S_IFCHR | 0o600, os.makedev(1, 3)))
    r.op("mknod whiteout", lambda: os.mknod(f"{p}/d777/wh", stat.S_IFCHR | 0o600, 0))
    r.op("stat r644", lambda: lstat(f"{p}/r644"))


# sticky directories ---------------------------------------------------------

def prep_sticky(W, k, p):
    u = tuple(USER)
    W.dir(k, p, 0o1777)
    for who, owner in (("root", ROOT), ("user", u), ("other", OTHER)):
        for n in ("a", "b", "c"):
            W.file(k, f"{p}/{who}-{n}", 0o666, owner=owner)
        W.dir(k, f"{p}/{who}-d", 0o777, owner=owner)
    W.dir(k, f"{p}/ud", 0o1777, owner=u)
    W.file(k, f"{p}/ud/root-a", 0o666)


@check("sticky", "sticky", prep_sticky)
def c_sticky(r, k, p):
    for who in ("root", "user", "other"):
        r.op(f"unlink {who}'s", lambda: os.unlink(f"{p}/{who}-a"))
        r.op(f"rename {who}'s", lambda: os.rename(f"{p}/{who}-b", f"{p}/{who}-moved"))
        r.op(f"rmdir {who}'s", lambda: os.rmdir(f"{p}/{who}-d"))
        r.op(f"write {who}'s", lambda: write(f"{p}/{who}-c", b"w"))
    r.op("rename own over root's", lambda: os.rename(f"{p}/user-c", f"{p}/root-c"))
    r.op("rename own over other's", lambda: os.rename(f"{p}/user-c", f"{p}/other-c"))
    r.op("rename root's over own", lambda: os.rename(f"{p}/root-c", f"{p}/user-moved"))
    r.op("unlink root's in dir owned by user", lambda: os.unlink(f"{p}/ud/root-a"))
    r.op("creat", lambda: create(f"{p}/new"))
    r.op("stat created", lambda: lstat(f"{p}/new"))
    r.op("open O_CREAT other's existing",
         lambda: close_open(f"{p}/other-c", os.O_WRONLY | os.O_CREAT))
    r.op("listing", lambda: listing(p))


# setuid and setgid bits ---------------------------------------------------

def prep_suid(W, k, p):
    u = tuple(USER)
    W.dir(k, p, 0o777)
    for n in ("write", "trunc", "ftrunc", "pwrite", "chmodw"):
        W.file(k, f"{p}/u6777-{n}", 0o6777, owner=u)
        W.file(k, f"{p}/r6777-{n}", 0o6777)
    W.file(k, f"{p}/r2666-write", 0o2666)
    W.file(k, f"{p}/r2666-trunc", 0o2666)
    for n in ("chown-same", "chown-none", "chgrp", "chown-root"):
        W.file(k, f"{p}/u6755-{n}", 0o6755, owner=u)
    W.file(k, f"{p}/u2644-chown", 0o2644, owner=u)
    W.file(k, f"{p}/u2644-chown-none", 0o2644, owner=u)
    W.file(k, f"{p}/u2644-g0-chown-none", 0o2644, owner=(u[0], 0))
    W.dir(k, f"{p}/u6755-dir-chown", 0o6755, owner=u)
    W.file(k, f"{p}/u0755-setgid", 0o755, owner=(u[0], 0))
    W.dir(k, f"{p}/sgid", 0o2777, owner=OTHER)
    W.dir(k, f"{p}/sgid/sub", 0o2777, owner=OTHER)


@check("suid", "suid", prep_suid)
def c_suid(r, k, p):
    def step(label, n, fn):
        """fn's result or errno, then the mode of n after it."""
        try:
            v = fmt(fn())
        except OSError as e:
            v = ename(e)
        r.put(label, f"{v} mode={stat.S_IMODE(lstat(f'{p}/{n}').st_mode):04o}")

    def ftrunc(n):
        fd = os.open(f"{p}/{n}", os.O_WRONLY)
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)

    for who in ("u6777", "r6777"):
        step(f"write {who}", f"{who}-write", lambda: write(f"{p}/{who}-write", b"x"))
        step(f"append {who}", f"{who}-pwrite",
             lambda: write(f"{p}/{who}-pwrite", b"x", os.O_WRONLY | os.O_APPEND))
        step(f"truncate {who}", f"{who}-trunc", lambda: os.truncate(f"{p}/{who}-trunc", 1))
        step(f"ftruncate {who}", f"{who}-ftrunc", lambda: ftrunc(f"{who}-ftrunc"))
        step(f"chmod 6777 {who}", f"{who}-chmodw",
             lambda: os.chmod(f"{p}/{who}-chmodw", 0o6777))
        step(f"then write {who}", f"{who}-chmodw", lambda: write(f"{p}/{who}-chmodw", b"y"))
    step("write r2666 (setgid, no group exec)", "r2666-write",
         lambda: write(f"{p}/r2666-write", b"x"))
    step("truncate r2666 (setgid, no group exec)", "r2666-trunc",
         lambda: os.truncate(f"{p}/r2666-trunc", 0))
    step("chown to same owner", "u6755-chown-same",
         lambda: os.chown(f"{p}/u6755-chown-same", USER[0], -1))
    step("chown -1 -1", "u6755-chown-none", lambda: os.chown(f"{p}/u6755-chown-none", -1, -1))
    step("chgrp to own group", "u6755-chgrp", lambda: os.chown(f"{p}/u6755-chgrp", -1, USER[1]))
    step("chown to root", "u6755-chown-root", lambda: os.chown(f"{p}/u6755-chown-root", 0, 0))
    step("chown setgid without group exec", "u2644-chown",
         lambda: os.chown(f"{p}/u2644-chown", USER[0], -1))
    step("chown -1 -1 setgid without group exec", "u2644-chown-none",
         lambda: os.chown(f"{p}/u2644-chown-none", -1, -1))
    step("chown -1 -1 setgid without group exec, not in group", "u2644-g0-chown-none",
         lambda: os.chown(f"{p}/u2644-g0-chown-none", -1, -1))
    step("chown dir", "u6755-dir-chown", lambda: os.chown(f"{p}/u6755-dir-chown", USER[0], -1))
    step("chmod g+s, not in group", "u0755-setgid",
         lambda: os.chmod(f"{p}/u0755-setgid", 0o2755))
    r.op("creat in setgid dir", lambda: create(f"{p}/sgid/f", 0o2755))
    r.op("stat created", lambda: lstat(f"{p}/sgid/f"))
    r.op("mkdir in setgid dir", lambda: os.mkdir(f"{p}/sgid/d", 0o755))
    r.op("stat made", lambda: fmt_st(lstat(f"{p}/sgid/d"), "tmug"))
    r.op("creat in setgid subdir", lambda: create(f"{p}/sgid/sub/f"))
    r.op("stat created", lambda: lstat(f"{p}/sgid/sub/f"))


# open flags: O_APPEND, O_TRUNC, O_NOATIME and friends -----------------------

def prep_open(W, k, p):
    u = tuple(USER)
    W.dir(k, p, 0o777)
    for n in ("app", "app-pwrite", "trunc", "trunc-ro", "creat", "rw", "rdonly",
              "wronly"):
        W.file(k, f"{p}/{n}", 0o666)
    W.file(k, f"{p}/empty", 0o666, data="")
    W.file(k, f"{p}/r-noatime", 0o644)
    W.file(k, f"{p}/u-noatime", 0o644, owner=u)
    W.dir(k, f"{p}/dir", 0o755)


@check("open", "flags", prep_open)
def c_open(r, k, p):
    def app():
        fd = os.open(f"{p}/app", os.O_WRONLY | os.O_APPEND)
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, b"A1")
            pos = os.lseek(fd, 0, os.SEEK_CUR)
            os.write(fd, b"A2")
            return pos
        finally:
            os.close(fd)
    r.op("O_APPEND write, offset after", app)
    r.op("read", lambda: read(f"{p}/app"))

    def app_pwrite():
        fd = os.open(f"{p}/app-pwrite", os.O_RDWR | os.O_APPEND)
        try:
            os.pwrite(fd, b"P", 0)
            return os.pread(fd, 100, 0)
        finally:
            os.close(fd)
    r.op("O_APPEND pwrite at 0", app_pwrite)
    r.timed("O_TRUNC", f"{p}/trunc", lambda: close_open(f"{p}/trunc", os.O_WRONLY | os.O_TRUNC))
    r.op("size", lambda: lstat(f"{p}/trunc").st_size)
    r.timed("O_RDONLY|O_TRUNC", f"{p}/trunc-ro",
            lambda: close_open(f"{p}/trunc-ro", os.O_RDONLY | os.O_TRUNC))
    r.op("size", lambda: lstat(f"{p}/trunc-ro").st_size)
    r.timed("O_TRUNC on empty", f"{p}/empty",
            lambda: close_open(f"{p}/empty", os.O_WRONLY | os.O_TRUNC))
    r.timed("O_CREAT on existing", f"{p}/creat",
            lambda: close_open(f"{p}/creat", os.O_WRONLY | os.O_CREAT))
    r.op("read", lambda: read(f"{p}/creat"))
    r.timed("O_RDWR open and close", f"{p}/rw", lambda: close_open(f"{p}/rw", os.O_RDWR))
    r.timed("O_RDONLY open and close", f"{p}/rdonly",
            lambda: close_open(f"{p}/rdonly", os.O_RDONLY), which="mc")

    def two_fds():
        w = os.open(f"{p}/wronly", os.O_WRONLY)
        rd = os.open(f"{p}/wronly", os.O_RDONLY)
        try:
            os.write(w, b"NEW")
            return os.pread(rd, 100, 0)
        finally:
            os.close(w)
            os.close(rd)
    r.op("write one fd, read another", two_fds)
    r.op("O_NOATIME root's file", lambda: close_open(f"{p}/r-noatime", os.O_RDONLY | os.O_NOATIME))
    r.op("O_NOATIME user's file", lambda: close_open(f"{p}/u-noatime", os.O_RDONLY | os.O_NOATIME))
    r.op("O_NOATIME dir", lambda: close_open(f"{p}/dir", os.O_RDONLY | os.O_NOATIME))

    def setfl_noatime():
        fd = os.open(f"{p}/r-noatime", os.O_RDONLY)
        try:
            fcntl.fcntl(fd, fcntl.F_SETFL, os.O_NOATIME)
            return "set" if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NOATIME else "not set"
        finally:
            os.close(fd)
    r.op("F_SETFL O_NOATIME root's file", setfl_noatime)
    r.op("O_DIRECTORY|O_CREAT",
         lambda: close_open(f"{p}/dc", os.O_RDONLY | os.O_DIRECTORY | os.O_CREAT))

    def creat_mode0():
        fd = os.open(f"{p}/mode0", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0)
        try:
            return os.write(fd, b"x")
        finally:
            os.close(fd)
    r.op("O_CREAT mode 0, write", creat_mode0)
    r.op("stat", lambda: lstat(f"{p}/mode0"))
    r.op("open O_PATH, fstat", lambda: fstat_path(f"{p}/rw", os.O_PATH))


# times: utimensat, and ctime/mtime on namespace and metadata changes --------

def prep_times(W, k, p):
    W.dir(k, p, 0o777)
    for n in ("now-omit", "omit-now", "omit-omit", "explicit", "null", "chmod",
              "chown", "trunc", "trunc-same", "ftrunc", "write", "xattr", "link",
              "rename", "unlink-a", "unlink-b", "rename-over", "target"):
        W.file(k, f"{p}/{n}", 0o666)
    W.link(k, f"{p}/unlink-a", f"{p}/unlink-b2")
    W.symlink(k, f"{p}/sym", "explicit")
    W.dir(k, f"{p}/d", 0o777)
    W.dir(k, f"{p}/d2", 0o777)
    W.file(k, f"{p}/d/f", 0o666)
    W.file(k, f"{p}/d/g", 0o666)
    W.dir(k, f"{p}/d/sub", 0o777)
    if k != "up":
        W.file("lo", f"{p}/lofile", 0o666)
    if k == "both":
        W.dir(k, f"{p}/m", 0o777)
        W.file("lo", f"{p}/m/lofile", 0o666)


@check("times", "utimensat", prep_times)
def c_utimensat(r, k, p):
    r.timed("UTIME_NOW,UTIME_OMIT", f"{p}/now-omit",
            lambda: utimensat(f"{p}/now-omit", UTIME_NOW, UTIME_OMIT), "amc")
    r.timed("UTIME_OMIT,UTIME_NOW", f"{p}/omit-now",
            lambda: utimensat(f"{p}/omit-now", UTIME_OMIT, UTIME_NOW), "amc")
    r.timed("UTIME_OMIT,UTIME_OMIT", f"{p}/omit-omit",
            lambda: utimensat(f"{p}/omit-omit", UTIME_OMIT, UTIME_OMIT), "amc")
    r.timed("explicit", f"{p}/explicit",
            lambda: utimensat(f"{p}/explicit", (1234567890, 123456789), (1234567891, 5)), "c")
    r.op("values", lambda: fixed_times(lstat(f"{p}/explicit")))
    r.timed("explicit,UTIME_OMIT", f"{p}/explicit",
            lambda: utimensat(f"{p}/explicit", (1000, 1), UTIME_OMIT), "amc")
    r.op("values", lambda: fixed_times(lstat(f"{p}/explicit")))
    r.timed("NULL times", f"{p}/null", lambda: os.utime(f"{p}/null"), "amc")
    r.timed("symlink, AT_SYMLINK_NOFOLLOW", f"{p}/sym",
            lambda: utimensat(f"{p}/sym", (5, 6), (7, 8), AT_SYMLINK_NOFOLLOW), "c", follow=False)
    r.op("symlink values", lambda: fixed_times(lstat(f"{p}/sym")))
    r.op("target untouched", lambda: fixed_times(lstat(f"{p}/explicit")))
    r.timed("dir explicit", f"{p}/d", lambda: utimensat(f"{p}/d", (9, 0), (10, 0)), "c")
    r.op("dir values", lambda: fixed_times(lstat(f"{p}/d")))


@check("times", "ctime-mtime", prep_times)
def c_ctime(r, k, p):
    r.timed("chmod", f"{p}/chmod", lambda: os.chmod(f"{p}/chmod", 0o640), "mc")
    r.timed("chown to same", f"{p}/chown", lambda: os.chown(f"{p}/chown", -1, -1), "mc")
    r.timed("truncate", f"{p}/trunc", lambda: os.truncate(f"{p}/trunc", 2), "mc")
    size = lstat(f"{p}/trunc-same").st_size
    r.timed("truncate to same size", f"{p}/trunc-same",
            lambda: os.truncate(f"{p}/trunc-same", size), "mc")

    def ftrunc():
        fd = os.open(f"{p}/ftrunc", os.O_WRONLY)
        try:
            time.sleep(TICK)
            before = os.fstat(fd)
            time.sleep(TICK)
            os.ftruncate(fd, 1)
            return tdiff(before, os.fstat(fd), "mc")
        finally:
            os.close(fd)
    r.op("ftruncate (fstat)", ftrunc)
    r.timed("write", f"{p}/write", lambda: write(f"{p}/write", b"w"), "mc")
    r.timed("setxattr", f"{p}/xattr", lambda: os.setxattr(f"{p}/xattr", "user.t", b"1"), "mc")
    r.timed("link: file | dir", [f"{p}/link", p], lambda: os.link(f"{p}/link", f"{p}/link2"), "mc")
    r.op("same file", lambda: same_ino(f"{p}/link", f"{p}/link2"))
    r.timed("rename in dir: file | dir", [f"{p}/rename", p],
            lambda: os.rename(f"{p}/rename", f"{p}/renamed"), "mc",
            after=[f"{p}/renamed", p])
    r.timed("rename to other dir: file | from | to", [f"{p}/d/f", f"{p}/d", f"{p}/d2"],
            lambda: os.rename(f"{p}/d/f", f"{p}/d2/f"), "mc",
            after=[f"{p}/d2/f", f"{p}/d", f"{p}/d2"])
    r.timed("rename dir to other dir: dir | from | to", [f"{p}/d/sub", f"{p}/d", f"{p}/d2"],
            lambda: os.rename(f"{p}/d/sub", f"{p}/d2/sub"), "mc",
            after=[f"{p}/d2/sub", f"{p}/d", f"{p}/d2"])
    r.timed("rename over: file | dir", [f"{p}/rename-over", p],
            lambda: os.rename(f"{p}/rename-over", f"{p}/target"), "mc",
            after=[f"{p}/target", p])
    r.timed("unlink one of two links: other name | dir", [f"{p}/unlink-b2", p],
            lambda: os.unlink(f"{p}/unlink-b"), "mc")
    r.op("nlink after", lambda: lstat(f"{p}/unlink-b2").st_nlink)
    r.timed("unlink: dir", p, lambda: os.unlink(f"{p}/unlink-a"), "mc")
    r.timed("creat: dir", f"{p}/d", lambda: create(f"{p}/d/new"), "mc")
    r.timed("mkdir: dir", f"{p}/d", lambda: os.mkdir(f"{p}/d/newd"), "mc")
    r.timed("rmdir: dir", f"{p}/d", lambda: os.rmdir(f"{p}/d/newd"), "mc")
    r.timed("symlink: dir", f"{p}/d", lambda: os.symlink("x", f"{p}/d/sl"), "mc")
    r.timed("chmod dir", f"{p}/d", lambda: os.chmod(f"{p}/d", 0o775), "mc")
    r.timed("write in dir: dir", f"{p}/d", lambda: write(f"{p}/d/g", b"g"), "mc")
    if k != "up":
        r.timed("copy-up by open: file", f"{p}/lofile",
                lambda: close_open(f"{p}/lofile", os.O_RDWR), "mc")
    if k == "both":
        r.timed("copy-up of a lower file into a merged dir: dir", f"{p}/m",
                lambda: os.chmod(f"{p}/m/lofile", 0o640), "amc")


# open files that were unlinked ---------------------------------------------

def prep_unlinked(W, k, p):
    W.dir(k, p, 0o777)
    u = tuple(USER)
    for n in ("rw", "ro", "two", "over", "src"):
        W.file(k, f"{p}/{n}", 0o666, owner=u)
    W.file(k, f"{p}/hl", 0o666, owner=u)
    W.link(k, f"{p}/hl", f"{p}/hl2")
    W.dir(k, f"{p}/dir", 0o777)


@check("unlinked", "open-unlinked", prep_unlinked)
def c_unlinked(r, k, p):
    fd = r.must("rw: open O_RDWR", lambda: os.open(f"{p}/rw", os.O_RDWR), show=False)
    try:
        r.must("rw: unlink", lambda: os.unlink(f"{p}/rw"))
        r.op("rw: fstat", lambda: fstat_of(fd))
        r.op("rw: stat name", lambda: lstat(f"{p}/rw"))
        r.op("rw: listed", lambda: "rw" in os.listdir(p))
        r.op("rw: write", lambda: os.pwrite(fd, b"more", 100))
        r.op("rw: fstat after write", lambda: fstat_of(fd))
        r.op("rw: ftruncate", lambda: os.ftruncate(fd, 3))
        r.op("rw: fstat after ftruncate", lambda: fstat_of(fd))
        r.op("rw: read", lambda: os.pread(fd, 100, 0))
        r.op("rw: fchmod", lambda: os.fchmod(fd, 0o600))
        r.op("rw: fstat after fchmod", lambda: fstat_of(fd))
        r.op("rw: futimens", lambda: os.utime(fd, ns=(1000, 2000)))
        r.op("rw: fstat times", lambda: fixed_times(os.fstat(fd)))
        r.op("rw: fsetxattr", lambda: os.setxattr(fd, "user.u", b"1"))
        r.op("rw: fgetxattr", lambda: os.getxattr(fd, "user.u"))
        r.op("rw: creat same name", lambda: create(f"{p}/rw"))
        r.op("rw: new file", lambda: lstat(f"{p}/rw"))
        r.op("rw: fstat old", lambda: fstat_of(fd))
    finally:
        os.close(fd)

    fd = r.must("ro: open O_RDONLY", lambda: os.open(f"{p}/ro", os.O_RDONLY), show=False)
    try:
        r.must("ro: unlink", lambda: os.unlink(f"{p}/ro"))
        r.op("ro: fstat", lambda: fstat_of(fd))
        r.op("ro: read", lambda: os.pread(fd, 100, 0))
        r.op("ro: ftruncate on read-only fd", lambda: os.ftruncate(fd, 0))
    finally:
        os.close(fd)

    a = r.must("two: open twice", lambda: os.open(f"{p}/two", os.O_RDWR), show=False)
    b = os.open(f"{p}/two", os.O_RDONLY)
    try:
        r.must("two: unlink", lambda: os.unlink(f"{p}/two"))
        r.op("two: write first", lambda: os.pwrite(a, b"XY", 0))
        r.op("two: read second", lambda: os.pread(b, 100, 0))
        r.op("two: fstat second", lambda: fstat_of(b))
    finally:
        os.close(a)
        os.close(b)

    fd = r.must("over: open target of rename",
                lambda: os.open(f"{p}/over", os.O_RDONLY), show=False)
    try:
        r.must("over: rename over it", lambda: os.rename(f"{p}/src", f"{p}/over"))
        r.op("over: fstat", lambda: fstat_of(fd))
        r.op("over: read", lambda: os.pread(fd, 100, 0))
        r.op("over: read name", lambda: read(f"{p}/over"))
    finally:
        os.close(fd)

    fd = r.must("hl: open one of two links", lambda: os.open(f"{p}/hl", os.O_RDWR), show=False)
    try:
        r.must("hl: unlink it", lambda: os.unlink(f"{p}/hl"))
        r.op("hl: fstat", lambda: fstat_of(fd))
        r.op("hl: write", lambda: os.pwrite(fd, b"HL", 0))
        r.op("hl: read other name", lambda: read(f"{p}/hl2"))
        r.op("hl: stat other name", lambda: lstat(f"{p}/hl2"))
    finally:
        os.close(fd)

    fd = r.must("dir: open dir",
                lambda: os.open(f"{p}/dir", os.O_RDONLY | os.O_DIRECTORY), show=False)
    try:
        r.must("dir: rmdir", lambda: os.rmdir(f"{p}/dir"))
        r.op("dir: fstat", lambda: fstat_of(fd, "tmugn"))
        r.op("dir: creat in it",
             lambda: os.close(os.open("x", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)))
        r.op("dir: list it", lambda: os.listdir(fd))
    finally:
        os.close(fd)


# hard links -------------------------------------------------------------------

def prep_links(W, k, p):
    W.dir(k, p, 0o777)
    W.file(k, f"{p}/a", 0o666)
    W.link(k, f"{p}/a", f"{p}/b")
    W.file(k, f"{p}/x", 0o666)
    W.link(k, f"{p}/x", f"{p}/y")
    W.file(k, f"{p}/single", 0o666)
    W.file(k, f"{p}/three", 0o666)
    W.link(k, f"{p}/three", f"{p}/three2")
    W.link(k, f"{p}/three", f"{p}/three3")
    W.symlink(k, f"{p}/sym", "single")
    W.dir(k, f"{p}/d", 0o777)
    W.dir(k, f"{p}/d/s1", 0o777)
    W.dir(k, f"{p}/d/s2", 0o777)
    W.file(k, f"{p}/d/f", 0o666)
    W.dir(k, f"{p}/e", 0o777)
    for n in ("ro", "ru"):
        W.file(k, f"{p}/{n}1", 0o666)
        W.link(k, f"{p}/{n}1", f"{p}/{n}2")
        W.file(k, f"{p}/{n}-src", 0o666)
    W.file(k, f"{p}/ul1", 0o666)
    W.link(k, f"{p}/ul1", f"{p}/ul2")


@check("links", "hardlinks", prep_links)
def c_links(r, k, p):
    def nl(*names):
        return " ".join(f"{n}={lstat(f'{p}/{n}').st_nlink}" for n in names)

    r.op("nlink", lambda: nl("a", "b", "three", "three2", "single"))
    r.op("a and b", lambda: same_ino(f"{p}/a", f"{p}/b"))
    r.op("link a c", lambda: os.link(f"{p}/a", f"{p}/c"))
    r.op("nlink", lambda: nl("a", "b", "c"))
    r.op("a and c, b and c", lambda: (same_ino(f"{p}/a", f"{p}/c"), same_ino(f"{p}/b", f"{p}/c")))
    r.op("write through b", lambda: write(f"{p}/b", b"B"))
    r.op("read a, c", lambda: (read(f"{p}/a"), read(f"{p}/c")))
    r.op("chmod through c", lambda: os.chmod(f"{p}/c", 0o640))
    r.op("stat a", lambda: lstat(f"{p}/a"))
    r.op("unlink b", lambda: os.unlink(f"{p}/b"))
    r.op("nlink", lambda: nl("a", "c"))
    r.op("rename a over c (same file)", lambda: os.rename(f"{p}/a", f"{p}/c"))
    r.op("listing", lambda: listing(p))
    r.op("nlink", lambda: nl("a", "c"))
    r.op("rename x over y (same file, untouched)", lambda: os.rename(f"{p}/x", f"{p}/y"))
    r.op("nlink", lambda: nl("x", "y"))
    r.op("link single", lambda: os.link(f"{p}/single", f"{p}/single2"))
    r.op("nlink", lambda: nl("single", "single2"))
    r.op("single and single2", lambda: same_ino(f"{p}/single", f"{p}/single2"))
    r.op("unlink three", lambda: os.unlink(f"{p}/three"))
    r.op("unlink three2", lambda: os.unlink(f"{p}/three2"))
    r.op("nlink", lambda: nl("three3"))
    r.op("link symlink", lambda: os.link(f"{p}/sym", f"{p}/sym2", follow_symlinks=False))
    r.op("stat symlink", lambda: lstat(f"{p}/sym2"))
    r.op("link dir", lambda: os.link(f"{p}/d", f"{p}/d-link"))
    r.op("dir nlink", lambda: nl("d", "e"))
    r.op("mkdir in d", lambda: os.mkdir(f"{p}/d/s3"))
    r.op("rmdir in d", lambda: os.rmdir(f"{p}/d/s1"))
    r.op("dir nlink", lambda: nl("d"))
    r.op("rename subdir to e", lambda: os.rename(f"{p}/d/s2", f"{p}/e/s2"))
    r.op("dir nlink", lambda: nl("d", "e"))
    r.op("link into other dir", lambda: os.link(f"{p}/d/f", f"{p}/e/f"))
    r.op("nlink", lambda: nl("d/f", "e/f"))
    r.op("rename over a link", lambda: os.rename(f"{p}/ro-src", f"{p}/ro2"))
    r.op("nlink", lambda: nl("ro1", "ro2"))
    r.op("write one name", lambda: write(f"{p}/ru1", b"U"))
    r.op("rename over the other", lambda: os.rename(f"{p}/ru-src", f"{p}/ru2"))
    r.op("nlink", lambda: nl("ru1", "ru2"))
    r.op("read", lambda: (read(f"{p}/ru1"), read(f"{p}/ru2")))
    r.op("write one name", lambda: write(f"{p}/ul1", b"U"))
    r.op("unlink the other", lambda: os.unlink(f"{p}/ul2"))
    r.op("nlink", lambda: nl("ul1"))


# --- driver ------------------------------------------------------------------


def checks_for(groups):
    return [c for c in CHECKS if c[0] in groups]


def prepare(lower, uppers, groups, plain=False):
    """The fixture in every base: '.' and 'mdir' in the lower and every
    upper, 'lodir' in the lower only."""
    writers = []
    for base, kinds in BASES.items():
        if plain:
            top = os.path.join(uppers[0], base)
            os.makedirs(top, exist_ok=True)
            W = Writer(None, [top], plain=True)
        else:
            lo = os.path.join(lower, base)
            ups = [os.path.join(u, base) for u in uppers] if "up" in kinds else []
            for d in [lo] + ups:
                os.makedirs(d, exist_ok=True)
            W = Writer(lo, ups)
            if ups:
                W.dir("both", ".", 0o755)
            else:
                W.dir("lo", ".", 0o755)
        for group, name, prep, ckinds, _ in checks_for(groups):
            for k in ckinds:
                if k in kinds:
                    prep(W, k, f"{name}.{k}")
        writers.append(W)
    for W in writers:
        W.settle()


def run(top, bases, groups):
    os.chdir(top)
    total = 0
    for base in bases:
        kinds = BASES[base]
        for group, name, _, ckinds, fn in checks_for(groups):
            for k in ckinds:
                if k not in kinds:
                    continue
                p = f"{base}/{name}.{k}" if base != "." else f"{name}.{k}"
                rec = Rec(f"{base} {group}.{name}[{k}]")
                # back by descriptor: another user may not search the
                # directories above the mount
                cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.chdir(os.path.dirname(p) or ".")
                    fn(rec, k, os.path.basename(p))
                except Stop:
                    pass
                except OSError as e:
                    rec.put("unexpected", f"{ename(e)} {e.filename or ''}")
                finally:
                    os.fchdir(cwd)
                    os.close(cwd)
                total += rec.n
    print(f"# {total} steps", file=sys.stderr)


def ids(s):
    u, _, g = s.partition(":")
    return [int(u), int(g or u)]


def usage():
    sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
    sys.exit(2)


def main(argv):
    groups, bases, as_user = [], [], None
    mode, rest = "run", []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--prepare", "--prepare-plain", "--list"):
            mode = a[2:]
        elif a in ("--user", "--as-user", "--group", "--subdir"):
            if i + 1 >= len(argv):
                usage()
            v = argv[i + 1]
            i += 1
            if a == "--user":
                USER[:] = ids(v)
            elif a == "--as-user":
                USER[:] = ids(v)
                as_user = USER[:]
            elif a == "--group":
                if v not in GROUPS:
                    sys.exit(f"conformance.py: unknown group {v}; groups: {' '.join(GROUPS)}")
                groups.append(v)
            else:
                if v.strip("/") not in BASES and v != ".":
                    sys.exit(f"conformance.py: unknown base {v}; bases: {' '.join(BASES)}")
                bases.append(v.strip("/") or ".")
        elif a.startswith("-"):
            usage()
        else:
            rest.append(a)
        i += 1
    groups = groups or list(GROUPS)
    bases = bases or list(BASES)
    os.umask(0o022)
    if mode == "list":
        for group, name, _, kinds, _ in CHECKS:
            print(f"{group}.{name} {','.join(kinds)}")
        return 0
    if mode == "prepare":
        if len(rest) < 2:
            usage()
        prepare(rest[0], rest[1:], groups)
        return 0
    if mode == "prepare-plain":
        if len(rest) != 1:
            usage()
        prepare(None, rest, groups, plain=True)
        return 0
    if len(rest) != 1:
        usage()
    top = os.path.abspath(rest[0])
    os.chdir(top)
    if as_user is not None:
        os.setgroups([])
        os.setgid(as_user[1])
        os.setuid(as_user[0])
    run(".", bases, groups)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
