#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""difftest.py: a seeded random differential test of two overlay mounts.

    difftest.py --prepare LOWER1 LOWER2 UPPER
        write the fixture: two lower layers (LOWER1 on top) and an upper
        with shadowed files, a whiteout, an opaque and a merged directory,
        hard links and a sparse file.  Run it once per mount, each with its
        own upper (the lowers may be shared).  Needs root (whiteouts are
        character devices, opaque markers trusted.* xattrs).

    difftest.py --tree DIR
        print the tree as the run compares it (every entry, hard-link
        groups), to compare two mounts of the same layers.

    difftest.py --seed N --ops COUNT [--check-every K] [--log FILE] A B
        run COUNT random operations, each on mount A and then on mount B
        (A is the oracle, kernel overlayfs), and compare step by step: the
        result or errno of each operation, then what lstat shows of every
        path the operation touched (type, mode, owner, size, link count,
        whether mtime still has the value the test set, whether st_ino kept
        its value across a change of data or metadata), the bytes of a
        regular file, a directory's listing.  Every K steps (and at the
        end) both whole trees are compared, with hard-link groups by st_ino.
        With --uppers UA UB, the two upper layers are compared after every
        step too: entries, bytes, whiteouts and overlay markers.
        The first difference ends the run with exit status 1, printing the
        seed, the step and the last operations.  Same seed, same operations.

Operations: create (O_EXCL or O_TRUNC), write at an offset, append,
truncate, read, mkdir, rmdir, unlink, rename (plain, RENAME_NOREPLACE,
RENAME_EXCHANGE), link, symlink, mkfifo, chmod, chown, utimensat,
setxattr, removexattr, getxattr, listxattr, readdir, open-unlink-fstat
(st_nlink of an open file after unlink, ftruncate on it), and held (a
descriptor opened before a write through the same or another name of a
hard link: flock and OFD locks across the copy-up, fstat, fchmod, reads).  One operation
in five runs as uid 1000 (no groups), so permissions are compared too:
mount overpass with allow_other,default_permissions.

With --writeback-cache (B is a FUSE mount with the kernel's writeback
cache), a truncate(2) to the size a regular file already has is made one
byte longer: the kernel then keeps the file's times (FUSE sets them only
when the size changes, fs/fuse/dir.c), where kernel overlayfs updates
them; overpass's man page says so and tests/036-writeback.bats checks it.
"""
import argparse
import ctypes
import errno
import fcntl
import hashlib
import os
import random
import stat
import struct
import sys

libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
F_OFD_SETLK = 37
FIXED_NS = 1_000_000_000 * 10**9  # the mtime the test sets: 2001-09-09

DIRS = ["", "lo", "up", "mg", "mg/in", "op", "new"]
NAMES = ["a", "b", "c", "h1", "h2", "sp"]


# --- fixture ---------------------------------------------------------------

def put(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def whiteout(path):
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def fix_times(root):
    for d, dirs, files in os.walk(root):
        for n in files + dirs:
            p = os.path.join(d, n)
            if not stat.S_ISCHR(os.lstat(p).st_mode):
                os.utime(p, ns=(FIXED_NS, FIXED_NS), follow_symlinks=False)
    os.utime(root, ns=(FIXED_NS, FIXED_NS))


def prepare(lower1, lower2, upper):
    # bottom layer
    put(f"{lower2}/a", b"bottom a\n")
    put(f"{lower2}/lo/a", b"lo a from bottom\n")
    put(f"{lower2}/mg/a", b"mg a bottom\n")
    put(f"{lower2}/mg/in/c", b"mg in c\n")
    put(f"{lower2}/op/a", b"hidden by opaque\n")
    put(f"{lower2}/up/c", b"whited out\n")
    # top lower layer
    put(f"{lower1}/a", b"top a\n", 0o640)
    put(f"{lower1}/b", b"b" * 5000)
    put(f"{lower1}/lo/b", b"lo b\n", 0o600)
    os.symlink("b", f"{lower1}/lo/c")
    put(f"{lower1}/lo/h1", b"hard linked\n")
    os.link(f"{lower1}/lo/h1", f"{lower1}/lo/h2")
    put(f"{lower1}/mg/b", b"mg b\n")
    os.makedirs(f"{lower1}/mg/in", exist_ok=True)
    put(f"{lower1}/h1", b"root hard link\n")
    os.link(f"{lower1}/h1", f"{lower1}/h2")
    with open(f"{lower1}/sp", "wb") as f:
        f.truncate(8 << 20)
        f.seek(4 << 20)
        f.write(b"middle")
    os.setxattr(f"{lower1}/a", "user.k", b"lower value")
    os.mkfifo(f"{lower1}/lo/sp")
    # upper
    put(f"{upper}/up/a", b"upper only\n")
    whiteout(f"{upper}/up/c")
    put(f"{upper}/mg/c", b"mg c upper\n")
    put(f"{upper}/b", b"shadowing b\n")
    os.makedirs(f"{upper}/op", exist_ok=True)
    put(f"{upper}/op/b", b"opaque b\n")
    os.setxattr(f"{upper}/op", "trusted.overlay.opaque", b"y")
    # for the operations run as uid 1000: a directory and files of its own,
    # a sticky world-writable one, a file anyone may write
    for p in ("lo", "lo/b", "lo/h1", "mg/b"):
        os.chown(f"{lower1}/{p}", 1000, 1000)
    os.chmod(f"{upper}/up", 0o1777)
    os.chmod(f"{lower1}/b", 0o666)
    for root in (lower2, lower1, upper):
        fix_times(root)


# Every open is O_NONBLOCK: a fifo must not block the test.

# --- observations ----------------------------------------------------------

def ename(e):
    return errno.errorcode.get(e, str(e))


def describe(path, ino_before=None):
    """What lstat and a read show of PATH, without its absolute times."""
    try:
        st = os.lstat(path)
    except OSError as e:
        return ename(e.errno)
    m = st.st_mode
    kind = {stat.S_IFDIR: "dir", stat.S_IFREG: "file", stat.S_IFLNK: "link",
            stat.S_IFIFO: "fifo", stat.S_IFCHR: "chr"}.get(stat.S_IFMT(m), "?")
    out = [kind, "%04o" % stat.S_IMODE(m), "%d:%d" % (st.st_uid, st.st_gid),
           "nlink=%d" % st.st_nlink,
           "mt=" + ("set" if st.st_mtime_ns == FIXED_NS else "new")]
    if ino_before is not None:
        out.append("ino=" + ("same" if st.st_ino == ino_before else "changed"))
    if kind == "file":
        out.append("size=%d" % st.st_size)
        try:
            with open(path, "rb") as f:
                out.append(hashlib.sha1(f.read()).hexdigest()[:12])
        except OSError as e:
            out.append("read:" + ename(e.errno))
    elif kind == "link":
        out.append("-> " + os.readlink(path))
    elif kind == "dir":
        try:
            out.append("[" + " ".join(sorted(os.listdir(path))) + "]")
        except OSError as e:
            out.append("list:" + ename(e.errno))
    return " ".join(out)


def tree(root):
    """Every entry below ROOT, and the hard-link groups by st_ino."""
    lines, by_ino = [], {}
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for n in sorted(dirs + files):
            p = os.path.join(d, n)
            rel = os.path.relpath(p, root)
            lines.append(rel + " " + describe(p))
            try:
                st = os.lstat(p)
                if not stat.S_ISDIR(st.st_mode):
                    by_ino.setdefault(st.st_ino, []).append(rel)
            except OSError:
                pass
    groups = sorted(" = ".join(sorted(g)) for g in by_ino.values() if len(g) > 1)
    return lines + ["links: " + g for g in groups]


def v_of(path, name):
    return os.getxattr(path, name, follow_symlinks=False).decode(errors="replace")


def upper_tree(root):
    """The upper layer as the kernel would read it: each entry's type, mode,
    owner, bytes, and which overlay markers it carries (whiteout, opaque,
    redirect with its value, origin, nlink)."""
    lines = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for n in sorted(dirs + files):
            p = os.path.join(d, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                lines.append(rel + " whiteout")
                continue
            desc = describe(p).split(" [")[0]  # a listing shows markers
            marks = []
            for x in sorted(os.listxattr(p, follow_symlinks=False)):
                if not x.startswith("trusted.overlay."):
                    continue
                k = x[len("trusted.overlay."):]
                if k == "origin" and stat.S_ISDIR(st.st_mode):
                    # kernel overlayfs adds it to a merged directory at
                    # lookup when missing (ovl_fix_origin): not a write
                    continue
                if k == "redirect" and v_of(p, x) == os.path.basename(rel):
                    # its own name: no redirect.  The kernel leaves one
                    # behind when a rename of the directory then fails
                    continue
                if k in ("opaque", "redirect"):
                    v = os.getxattr(p, x, follow_symlinks=False)
                    marks.append(f"{k}={v.decode(errors='replace')}")
                else:
                    marks.append(k)
            if "nlink" in marks:
                # a file of the hard-link index: FUSE's setattr names no
                # path, so overpass changes the index copy without giving
                # the alias used an upper link as the kernel does (same
                # merged view; doc/copy-up.md)
                continue
            lines.append(f"{rel} {desc} {' '.join(marks)}".rstrip())
    return lines


# --- operations ------------------------------------------------------------

def renameat2(a, b, flags):
    if libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b),
                      flags) < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def op_create(root, p, r):
    flags = os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | r["flag"]
    fd = os.open(f"{root}/{p}", flags, r["mode"])
    try:
        return os.write(fd, r["data"])
    finally:
        os.close(fd)


def op_write(root, p, r):
    fd = os.open(f"{root}/{p}", os.O_WRONLY | os.O_NONBLOCK | r["flag"])
    try:
        if r["flag"] & os.O_APPEND:
            return os.write(fd, r["data"])
        return os.pwrite(fd, r["data"], r["off"])
    finally:
        os.close(fd)


def op_read(root, p, r):
    fd = os.open(f"{root}/{p}", os.O_RDONLY | os.O_NONBLOCK)
    try:
        return hashlib.sha1(os.pread(fd, 4096, r["off"])).hexdigest()[:12]
    finally:
        os.close(fd)


def op_open_unlink(root, p, r):
    """open, unlink, then what fstat says; ftruncate and write still work."""
    fd = os.open(f"{root}/{p}", os.O_RDWR | os.O_NONBLOCK)
    try:
        os.unlink(f"{root}/{p}")
        st = os.fstat(fd)
        os.ftruncate(fd, 3)
        os.pwrite(fd, b"xyz", 0)
        st2 = os.fstat(fd)
        return f"nlink={st.st_nlink} then size={st2.st_size} nlink={st2.st_nlink}"
    finally:
        os.close(fd)


def try_op(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return ename(e.errno)


def op_held(root, p, r):
    """A descriptor opened before a write (on overpass a passthrough open,
    so the write copies up to a new FUSE inode), then the file reached
    through it and through the name written, which may be another name of
    a hard link: flock and OFD locks through both must meet, fstat and
    fchmod through the old descriptor act on the file as it is now, and a
    new open of either name reads the new data.  (What the old descriptor
    reads is the documented difference, not compared.)"""
    held = os.open(f"{root}/{p}", os.O_RDONLY | os.O_NONBLOCK)
    try:
        os.pread(held, 1, 0)
        fcntl.flock(held, fcntl.LOCK_SH)
        lk = struct.pack("hhqqi", fcntl.F_RDLCK, os.SEEK_SET, 0, 0, 0)
        fcntl.fcntl(held, F_OFD_SETLK + 1, lk)  # F_OFD_SETLKW: a released
        # open file of an earlier step may not have reached the daemon yet
        w = os.open(f"{root}/{r['to']}", os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK)
        try:
            os.write(w, r["data"])
            fl = try_op(lambda: fcntl.flock(w, fcntl.LOCK_EX | fcntl.LOCK_NB))
            wl = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
            ofd = try_op(lambda: fcntl.fcntl(w, F_OFD_SETLK, wl))
        finally:
            os.close(w)
        st = os.fstat(held)
        ch = try_op(lambda: os.fchmod(held, r["mode"]))
        mode = os.fstat(held).st_mode & 0o7777
        reads = []
        for n in (p, r["to"]):
            with open(f"{root}/{n}", "rb") as f:
                reads.append(hashlib.sha1(f.read()).hexdigest()[:12])
        return (f"flock={fl} ofd={ofd} size={st.st_size} nlink={st.st_nlink} "
                f"fchmod={ch} mode={mode:o} read={reads}")
    finally:
        os.close(held)


def op_xattr(root, p, r):
    path = f"{root}/{p}"
    kind = r["x"]
    if kind == "set":
        os.setxattr(path, r["name"], r["data"], r["xflag"], follow_symlinks=False)
        return 0
    if kind == "remove":
        os.removexattr(path, r["name"], follow_symlinks=False)
        return 0
    if kind == "get":
        return os.getxattr(path, r["name"], follow_symlinks=False).hex()
    return sorted(n for n in os.listxattr(path, follow_symlinks=False)
                  if n.startswith("user."))


OPS = {
    "create": (op_create, 1),
    "write": (op_write, 1),
    "read": (op_read, 1),
    "truncate": (lambda root, p, r: os.truncate(f"{root}/{p}", r["size"]), 1),
    "mkdir": (lambda root, p, r: os.mkdir(f"{root}/{p}", r["mode"]), 1),
    "rmdir": (lambda root, p, r: os.rmdir(f"{root}/{p}"), 1),
    "unlink": (lambda root, p, r: os.unlink(f"{root}/{p}"), 1),
    "rename": (lambda root, p, r: renameat2(f"{root}/{p}", f"{root}/{r['to']}",
                                            r["rflags"]), 2),
    "link": (lambda root, p, r: os.link(f"{root}/{p}", f"{root}/{r['to']}"), 2),
    "symlink": (lambda root, p, r: os.symlink(r["target"], f"{root}/{p}"), 1),
    "mkfifo": (lambda root, p, r: os.mkfifo(f"{root}/{p}", 0o640), 1),
    "chmod": (lambda root, p, r: os.chmod(f"{root}/{p}", r["mode"]), 1),
    "chown": (lambda root, p, r: os.chown(f"{root}/{p}", r["uid"], r["gid"],
                                          follow_symlinks=False), 1),
    "utime": (lambda root, p, r: os.utime(f"{root}/{p}", ns=(FIXED_NS, FIXED_NS),
                                          follow_symlinks=False), 1),
    "xattr": (op_xattr, 1),
    "readdir": (lambda root, p, r: sorted(os.listdir(f"{root}/{p}")), 1),
    "open_unlink": (op_open_unlink, 1),
    "held": (op_held, 2),
}
# operations that change data or metadata but not the name: st_ino stays
KEEPS_INO = {"write", "truncate", "chmod", "chown", "utime", "xattr", "held"}
WEIGHTS = {"create": 8, "write": 8, "read": 4, "truncate": 4, "mkdir": 5,
           "rmdir": 5, "unlink": 6, "rename": 12, "link": 4, "symlink": 2,
           "mkfifo": 1, "chmod": 4, "chown": 3, "utime": 4, "xattr": 6,
           "readdir": 4, "open_unlink": 2, "held": 4}


def rand_path(rng):
    d = rng.choice(DIRS)
    n = rng.choice(NAMES + DIRS[1:] if d == "" else NAMES + ["in", "x"])
    return f"{d}/{n}" if d else n


def gen_op(rng):
    name = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    p = rand_path(rng)
    r = {"data": rng.randbytes(rng.choice([0, 1, 10, 300, 5000])),
         "off": rng.choice([0, 3, 4999, 1 << 20]),
         "size": rng.choice([0, 1, 4, 4096, 9 << 20]),
         "mode": rng.choice([0o644, 0o600, 0o755, 0o4755, 0o2750, 0o1777, 0o000]),
         "uid": rng.choice([0, 1, 1000]), "gid": rng.choice([0, 2, 1000]),
         "to": rand_path(rng), # relative targets only: a symlink must never lead out of the mount
         "target": rng.choice(["a", "h1", "lo", "mg/in", "missing"]),
         "rflags": rng.choice([0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE]),
         "flag": rng.choice([os.O_EXCL, os.O_TRUNC, os.O_APPEND, 0]),
         "x": rng.choice(["set", "set", "remove", "get", "list"]),
         # overlay-private names differ by design (kernel overlayfs
         # escapes them, overpass refuses them): tests/010-merged-view.bats
         "name": rng.choice(["user.k", "user.j", "trusted.t"]),
         "xflag": rng.choice([0, 0, os.XATTR_CREATE, os.XATTR_REPLACE]),
         # one operation in five runs as another user (permissions)
         "uid_run": rng.choice([0, 0, 0, 0, 1000])}
    if name == "held":
        # the same name, or the other name of a lower hard link
        d, n = os.path.split(p)
        other = {"h1": "h2", "h2": "h1"}.get(n, n)
        r["to"] = os.path.join(d, rng.choice([n, other]))
    return name, p, r


def show_op(name, p, r):
    extra = {"create": lambda: f"flag={r['flag']:o} mode={r['mode']:o} len={len(r['data'])}",
             "write": lambda: f"flag={r['flag']:o} off={r['off']} len={len(r['data'])}",
             "read": lambda: f"off={r['off']}",
             "truncate": lambda: f"size={r['size']}",
             "mkdir": lambda: f"mode={r['mode']:o}", "chmod": lambda: f"mode={r['mode']:o}",
             "rename": lambda: f"-> {r['to']} flags={r['rflags']}",
             "held": lambda: f"write {r['to']} len={len(r['data'])} mode={r['mode']:o}",
             "link": lambda: f"-> {r['to']}", "symlink": lambda: f"target={r['target']}",
             "chown": lambda: f"{r['uid']}:{r['gid']}",
             "xattr": lambda: f"{r['x']} {r['name']} flags={r['xflag']} len={len(r['data'])}"}
    who = f" (as {r['uid_run']})" if r["uid_run"] else ""
    return f"{name} {p} " + extra.get(name, lambda: "")() + who


def as_user(uid, fn):
    """FN's result or errno, in a child running as UID:UID (no groups)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            out = "= %s" % (fn(),)
        except OSError as e:
            out = "! " + ename(e.errno)
        except BaseException as e:  # noqa: BLE001 - reported, not hidden
            out = "exception %r" % (e,)
        os.write(wfd, out.encode())
        os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    return out


def run_op(root, name, p, r):
    """Run one operation on ROOT: its result line and what it touched."""
    fn, npaths = OPS[name]
    touched = [p] + ([r["to"]] if npaths == 2 else [])
    dirs = {os.path.dirname(t) for t in touched}
    inos = {}
    if name in KEEPS_INO:
        try:
            inos[p] = os.lstat(f"{root}/{p}").st_ino
        except OSError:
            pass
    if r["uid_run"]:
        res = as_user(r["uid_run"], lambda: fn(root, p, r))
    else:
        try:
            res = "= %s" % (fn(root, p, r),)
        except OSError as e:
            res = "! " + ename(e.errno)
    obs = [f"  {t}: {describe(f'{root}/{t}', inos.get(t))}" for t in touched]
    obs += [f"  {d or '.'}/: {describe(f'{root}/{d}' if d else root)}"
            for d in sorted(dirs)]
    return [res] + obs


def compare(what, a, b, history, seed):
    if a == b:
        return True
    print(f"difftest: seed {seed}: {what} differs", file=sys.stderr)
    print("difftest: last operations:", file=sys.stderr)
    for line in history[-8:]:
        print("   " + line, file=sys.stderr)
    sa, sb = set(a), set(b)
    for line in a:
        if line not in sb:
            print("   A only: " + line, file=sys.stderr)
    for line in b:
        if line not in sa:
            print("   B only: " + line, file=sys.stderr)
    return False


def split_impure(lines):
    """Lines without the impure marker, and the paths that carry it."""
    out, impure = [], set()
    for line in lines:
        if line.endswith(" impure") or " impure " in line:
            impure.add(line.split(" ", 1)[0])
            line = line.replace(" impure", "")
        out.append(line)
    return out, impure


def compare_uppers(i, history, args):
    """The uppers hold the same entries and markers.  "impure" (a readdir
    hint: entries with origins inside) may be on more directories in B:
    overpass links a lower hard link's name before unlinking it where the
    kernel copies into the index alone; never on fewer."""
    a, ia = split_impure(upper_tree(args.uppers[0]))
    b, ib = split_impure(upper_tree(args.uppers[1]))
    if not compare(f"upper layer after step {i}", a, b, history, args.seed):
        return False
    missing = sorted(p + " impure" for p in ia - ib)
    return compare(f"impure directories after step {i}", missing, [],
                   history, args.seed)


def same_size(root, p, r):
    """Whether ROOT/P is a regular file of R's size (symlinks followed)."""
    try:
        st = os.stat(f"{root}/{p}")
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == r["size"]


def run(args):
    rng = random.Random(args.seed)
    history = []
    log = open(args.log, "w") if args.log else None
    counts = {}
    for i in range(1, args.ops + 1):
        name, p, r = gen_op(rng)
        counts[name] = counts.get(name, 0) + 1
        if args.writeback_cache and name == "truncate" and same_size(args.a, p, r):
            r = dict(r, size=r["size"] + 1)
            counts["truncate_resized"] = counts.get("truncate_resized", 0) + 1
        history.append(f"{i}: {show_op(name, p, r)}")
        ra = run_op(args.a, name, p, r)
        rb = run_op(args.b, name, p, r)
        if log:
            log.write(history[-1] + "\n" + "\n".join(ra) + "\n")
        if not compare(f"step {i}", ra, rb, history, args.seed):
            return 1
        if args.uppers and not compare_uppers(i, history, args):
            return 1
        if i % args.check_every == 0 or i == args.ops:
            if not compare(f"tree after step {i}", tree(args.a), tree(args.b),
                           history, args.seed):
                return 1
    print(f"seed {args.seed}: {args.ops} operations, same results and trees; " +
          " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prepare", nargs=3, metavar=("LOWER1", "LOWER2", "UPPER"))
    ap.add_argument("--seed", type=int)
    ap.add_argument("--ops", type=int, default=2000)
    ap.add_argument("--check-every", type=int, default=100)
    ap.add_argument("--log")
    ap.add_argument("--tree")
    ap.add_argument("--uppers", nargs=2, metavar=("UPPER_A", "UPPER_B"))
    ap.add_argument("--writeback-cache", action="store_true",
                    help="B has FUSE's writeback cache: no truncate to a file's own size")
    ap.add_argument("mounts", nargs="*")
    args = ap.parse_args()
    if args.prepare:
        prepare(*args.prepare)
        return 0
    if args.tree:
        sys.stdout.write("".join(line + "\n" for line in tree(args.tree)))
        return 0
    if len(args.mounts) != 2 or args.seed is None:
        ap.error("needs --seed and two mount points")
    args.a, args.b = args.mounts
    print(f"difftest: seed {args.seed}, {args.ops} operations", file=sys.stderr)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
