#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Mount latency and the real workloads of contrib/bench.py.

mount: the time a container start pays for its root filesystem, mount plus
the first lookup, over 1 to 500 lower layers, and the time from umount to
the daemon's exit.  FUSE daemons are started the way container engines
start them (detaching), with this process as child subreaper so that the
detached daemon is our child: its exit is seen through a pidfd (a zombie
counts as exited) and it is reaped with waitpid.  Kernel overlayfs is
mounted with the new mount API (fsopen, fsconfig lowerdir+=, fsmount,
move_mount), in process as a container engine does, since one mount(2)
option string (a page) cannot hold 500 layer paths.

real: a configure and make -j2 of overpass's own source tree kept in a
lower layer, dpkg -i of a set of packages into a debootstrap minbase
rootfs in a lower layer, and git status and git checkout in a 50,000-file
repository in a lower layer.  Their inputs are made once and cached in the
work directory.
"""

import ctypes
import os
import select
import shutil
import signal
import subprocess
import time

from bench_workloads import (ACTIVE, Workload, fresh_mount_dirs, log, mount_points, run_group,
                             run_quiet)

MOUNT_LAYERS = [1, 16, 64, 128, 500]  # 500 is kernel overlayfs's stack limit

# ---------------------------------------------------------------------------
# System calls Python's os module lacks.  The new mount API's numbers are
# the same on every architecture (generic table, Linux 5.2).

SYS_MOVE_MOUNT, SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 429, 430, 431, 432
FSCONFIG_SET_STRING, FSCONFIG_CMD_CREATE = 1, 6
MOVE_MOUNT_F_EMPTY_PATH = 4
AT_FDCWD = -100
PR_SET_CHILD_SUBREAPER = 36

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _check(r, what):
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")
    return r


def _syscall(nr, *args):
    return _check(_libc.syscall(ctypes.c_long(nr), *args), f"syscall {nr}")


def _bytes(s):
    return ctypes.c_char_p(os.fsencode(s)) if s is not None else None


def kernel_mount(mnt, lowers, upper, work, extra=(("redirect_dir", "on"), ("index", "on"))):
    """Kernel overlayfs on mnt, one fsconfig lowerdir+ per layer."""
    fs = _syscall(SYS_FSOPEN, _bytes("overlay"), ctypes.c_uint(1))  # FSOPEN_CLOEXEC
    try:
        def conf(key, value):
            _syscall(SYS_FSCONFIG, ctypes.c_int(fs), ctypes.c_uint(FSCONFIG_SET_STRING),
                     _bytes(key), _bytes(value), ctypes.c_int(0))
        for layer in lowers:
            conf("lowerdir+", layer)
        conf("upperdir", upper)
        conf("workdir", work)
        for k, v in extra:
            conf(k, v)
        _syscall(SYS_FSCONFIG, ctypes.c_int(fs), ctypes.c_uint(FSCONFIG_CMD_CREATE),
                 None, None, ctypes.c_int(0))
        mfd = _syscall(SYS_FSMOUNT, ctypes.c_int(fs), ctypes.c_uint(1), ctypes.c_uint(0))
    finally:
        os.close(fs)
    try:
        _syscall(SYS_MOVE_MOUNT, ctypes.c_int(mfd), _bytes(""), ctypes.c_int(AT_FDCWD),
                 _bytes(mnt), ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH))
    finally:
        os.close(mfd)


def umount(mnt, flags=0):
    _check(_libc.umount2(_bytes(mnt), ctypes.c_int(flags)), f"umount {mnt}")


def set_subreaper(on):
    _check(_libc.prctl(ctypes.c_int(PR_SET_CHILD_SUBREAPER), ctypes.c_ulong(1 if on else 0),
                       ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)), "prctl")


def children():
    """Pids of this process's children (adopted ones included)."""
    pids = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                pids.update(int(p) for p in f.read().split())
        except FileNotFoundError:
            pass
    return pids


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


# ---------------------------------------------------------------------------
# Layers: MOUNT_LAYERS[-1] small layers; layer i holds d/fI and its own
# directory own/I, so the first lookup, of d/fN-1 with N layers, merges d/
# over all N and finds the file in the bottom one.


def make_mount_layers(root, n=MOUNT_LAYERS[-1]):
    for i in range(n):
        layer = f"{root}/{i}"
        os.makedirs(f"{layer}/d")
        os.makedirs(f"{layer}/own/{i}")
        with open(f"{layer}/d/f{i}", "w") as f:
            f.write(f"layer {i}\n")


def probe_name(n):
    return f"d/f{n - 1}"


class LatencyMount:
    """One mount with n lower layers for the mount row; .stop() takes it
    down (by its path, and only the daemon this process adopted)."""

    def __init__(self, system, program, root, mnt, upper, work, n, log_path):
        self.system = system
        self.log_path = log_path  # the daemon's stdout and stderr
        self.program = program
        self.mnt = mnt
        self.upper = upper
        self.work = work
        self.lowers = [f"{root}/{i}" for i in range(n)]
        self.n = n
        self.pid = None
        self.pidfd = None
        self.known = set()  # our children before the mount
        self.starter = None  # pid of the command starting the daemon, while it runs

    def mount(self):
        """Mount, stat the probe: seconds from start to the stat's return."""
        fresh_mount_dirs(self.upper, self.work, self.mnt)
        self.known = children()
        ACTIVE.append(self)
        t0 = time.monotonic()
        if self.system == "kernel":
            kernel_mount(self.mnt, self.lowers, self.upper, self.work)
            os.stat(f"{self.mnt}/{probe_name(self.n)}")
            return time.monotonic() - t0
        try:
            self.fuse_mount()
            os.stat(f"{self.mnt}/{probe_name(self.n)}")
            return time.monotonic() - t0
        finally:
            self.adopt()

    def fuse_mount(self):
        opts = f"lowerdir={':'.join(self.lowers)},upperdir={self.upper},workdir={self.work}"
        out = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
               (os.POSIX_SPAWN_DUP2, 1, 2)]
        pid = os.posix_spawn(self.program, [self.program, "-o", opts, self.mnt], os.environ,
                             file_actions=out)
        self.starter = pid
        _, status = os.waitpid(pid, 0)
        self.starter = None
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{self.program} exited {os.waitstatus_to_exitcode(status)}")

    def new_children(self):
        """Our children of the program's name that were not before the mount."""
        name = os.path.basename(self.program)[:15]
        return [p for p in children() - self.known if comm(p) == name]

    def adopt(self):
        """The detached daemon, now our child (we are its subreaper)."""
        new = self.new_children()
        if len(new) > 1:
            raise RuntimeError(f"found {len(new)} new {self.system} children after mounting")
        if new:
            self.pid = new[0]
            self.pidfd = os.pidfd_open(self.pid)

    def unmount(self):
        """umount2, then wait for the daemon's exit: seconds in all."""
        t0 = time.monotonic()
        umount(self.mnt)
        if self.system != "kernel":
            if self.pidfd is None:
                raise RuntimeError(f"no {self.system} daemon was found to wait for")
            p = select.poll()
            p.register(self.pidfd, select.POLLIN)
            if not p.poll(30000):
                raise RuntimeError(f"{self.system} (pid {self.pid}) still running 30 s after umount")
        return time.monotonic() - t0

    def stop(self):
        try:
            if self.mnt in mount_points():
                umount(self.mnt)
            self.reap()
            if self.mnt in mount_points():  # made while we stopped: detach it
                umount(self.mnt, 2)  # MNT_DETACH
        finally:
            if self in ACTIVE:
                ACTIVE.remove(self)
            for d in (self.upper, self.work):
                shutil.rmtree(d, ignore_errors=True)

    def reap(self):
        """Wait for the daemon; when stopped while the command starting it
        ran, wait for that command first, then unmount what it made."""
        if self.starter is not None:
            self.wait_exit(self.starter, os.pidfd_open(self.starter))
            self.starter = None
            self.adopt()
            if self.mnt in mount_points():
                umount(self.mnt)
        if self.pid is not None:
            self.wait_exit(self.pid, self.pidfd)
            self.pid = self.pidfd = None

    def wait_exit(self, pid, pidfd):
        """Reap our child pid; SIGTERM, then SIGKILL, if it is slow to go."""
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                log(f"note: {self.system} (pid {pid}) still running after unmount; {sig.name}")
                os.kill(pid, sig)
            if select.select([pidfd], [], [], 10)[0]:
                break
        os.waitpid(pid, 0)
        os.close(pidfd)


# ---------------------------------------------------------------------------
# Real workloads' inputs, each a lower layer made once and cached.

GIT_ENV = dict(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null", GIT_AUTHOR_NAME="bench",
               GIT_AUTHOR_EMAIL="bench@localhost", GIT_COMMITTER_NAME="bench",
               GIT_COMMITTER_EMAIL="bench@localhost", GIT_AUTHOR_DATE="1700000000 +0000",
               GIT_COMMITTER_DATE="1700000000 +0000",
               GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="gc.auto", GIT_CONFIG_VALUE_0="0")


def check_run(cmd, what, **kw):
    r = run_quiet(cmd, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{what} exited {r.returncode}: {(r.stderr or r.stdout).strip()[-2000:]}")
    return r


def git(repo, *args):
    return check_run(["git", "-C", repo] + list(args), f"git {args[0]}",
                     env=dict(os.environ, **GIT_ENV))


def src_tree_key(top):
    """What the source layer depends on: the committed tree of the project."""
    return run_quiet(["git", "-C", top, "rev-parse", "HEAD^{tree}"]).stdout.strip()


def make_src_tree(root, top):
    """The project's committed tree, with configure generated in it."""
    p = subprocess.Popen(["git", "-C", top, "archive", "HEAD"], stdout=subprocess.PIPE)
    r = subprocess.run(["tar", "-x", "-C", root], stdin=p.stdout)
    if p.wait() != 0 or r.returncode != 0:
        raise RuntimeError("git archive HEAD | tar -x failed")
    check_run(["./autogen.sh"], "autogen.sh", cwd=root)


def git_file(i):
    body = f"file {i}\n" + "".join(f"line {j} of file {i}\n" for j in range(5 + i % 40))
    return f"d{i // 100:03d}/f{i % 100:02d}.txt", body


def make_git_repo(root, nfiles):
    """root/repo: a repository of nfiles files in 100-file directories,
    packed; branch `other` changes every tenth file, the work tree is at
    `main`."""
    root += "/repo"
    os.mkdir(root)
    git(root, "init", "-q", "-b", "main")
    for i in range(nfiles):
        rel, body = git_file(i)
        os.makedirs(os.path.dirname(f"{root}/{rel}"), exist_ok=True)
        with open(f"{root}/{rel}", "w") as f:
            f.write(body)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    git(root, "checkout", "-q", "-b", "other")
    for i in range(0, nfiles, 10):
        rel, body = git_file(i)
        with open(f"{root}/{rel}", "a") as f:
            f.write("changed on other\n")
    git(root, "commit", "-q", "-a", "-m", "other")
    git(root, "checkout", "-q", "main")
    git(root, "gc", "-q")
    # an index written well after the files' mtimes, as in a checkout some
    # time ago: not racily clean, so git status trusts the stat data
    for i in range(nfiles):
        os.utime(f"{root}/{git_file(i)[0]}", (1700000000, 1700000000))
    git(root, "update-index", "-q", "--really-refresh")


def host_codename():
    with open("/etc/os-release") as f:
        for line in f:
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    raise RuntimeError("no VERSION_CODENAME in /etc/os-release")


def apt_mirror(codename):
    """The first archive URI apt's sources give for codename."""
    d = "/etc/apt/sources.list.d"
    files = ["/etc/apt/sources.list"] + [f"{d}/{n}" for n in sorted(os.listdir(d))]
    for path in files:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        if path.endswith(".sources"):
            for stanza in text.split("\n\n"):
                fields = dict(l.split(":", 1) for l in stanza.splitlines()
                              if ":" in l and not l.startswith("#"))
                if codename in fields.get("Suites", "").split():
                    return fields["URIs"].split()[0]
        elif path.endswith(".list"):
            for line in text.splitlines():
                f = line.split()
                if len(f) >= 3 and f[0] == "deb" and f[2] == codename:
                    return f[1]
    raise RuntimeError(f"apt's sources name no archive for {codename}")


def make_rootfs(root):
    """debootstrap --variant=minbase of the host's release into root/rootfs."""
    codename = host_codename()
    check_run(["debootstrap", "--variant=minbase", codename, f"{root}/rootfs",
               apt_mirror(codename)], "debootstrap")


def make_debs(root, rootfs, pkgs):
    """pkgs and what they need beyond rootfs's packages, as .deb files:
    resolved by the host's apt against the rootfs's dpkg status."""
    os.makedirs(f"{root}/partial")
    check_run(["apt-get", "-q", "-y", "--download-only", "--no-install-recommends",
               "-o", f"Dir::Cache::archives={root}",
               "-o", f"Dir::State::status={rootfs}/var/lib/dpkg/status",
               "install"] + pkgs, "apt-get --download-only")
    os.rmdir(f"{root}/partial")
    if not any(n.endswith(".deb") for n in os.listdir(root)):
        raise RuntimeError(f"apt-get downloaded nothing for {' '.join(pkgs)}")


# ---------------------------------------------------------------------------
# Real workloads: run in this process as root, on a fresh mount.


def timed(cmd, what, **kw):
    t0 = time.monotonic()
    r = run_group(cmd, **kw)
    dt = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{what} exited {r.returncode}: {(r.stderr or r.stdout).strip()[-2000:]}")
    return dt, r


def wl_make(ctx):
    sc = ctx["scale"]
    script = ('mkdir _build && cd _build && ../configure -q PKG_CONFIG_PATH="$1" '
              '&& shift && make -s -j2 "$@"')
    dt, _ = timed(["sh", "-c", script, "make", ctx["pkg_config_path"]] + sc["make_targets"],
                  "configure && make", cwd=ctx["mnt"])
    return dt, {}


def wl_git_status(ctx):
    dt, r = timed(["git", "-C", ctx["mnt"], "status", "--porcelain"], "git status",
                  env=dict(os.environ, **GIT_ENV))
    if r.stdout.strip():
        raise RuntimeError(f"git status: the tree is not clean: {r.stdout[:500].strip()}")
    return dt, {}


def wl_git_checkout(ctx):
    dt, _ = timed(["git", "-C", ctx["mnt"], "checkout", "-q", "other"], "git checkout",
                  env=dict(os.environ, **GIT_ENV))
    return dt, {}


# dpkg in a mount namespace of its own, gone with it: /dev and /proc bound
# into the root it installs to, for the maintainer scripts
DPKG_NS = r"""
set -e
mount --rbind /dev "$1/dev"
mount -t proc proc "$1/proc"
exec dpkg --root="$1" --force-unsafe-io -i "$2"/*.deb
"""


def wl_dpkg(ctx):
    dt, _ = timed(["unshare", "-m", "--propagation", "private", "sh", "-c", DPKG_NS, "dpkg",
                   ctx["mnt"], ctx["debs"]], "dpkg -i", env=dict(os.environ, PATH=SAFE_PATH))
    return dt, {}


SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


REAL = [
    Workload("make-j2", "real", "s", "lower", wl_make, lowers=lambda b: [b.real["src"]],
             desc="configure and make -j2 of overpass, its tree in a lower layer, "
             "building into _build/ through the mount"),
    Workload("dpkg-install", "real", "s", "lower", wl_dpkg,
             lowers=lambda b: [b.real["rootfs"] + "/rootfs"],
             desc="dpkg -i of a set of packages into a debootstrap minbase rootfs in a lower layer"),
    Workload("git-status", "real", "s", "lower", wl_git_status,
             lowers=lambda b: [b.real["git"] + "/repo"],
             desc="git status in a 50,000-file repository in a lower layer"),
    Workload("git-checkout", "real", "s", "lower", wl_git_checkout,
             lowers=lambda b: [b.real["git"] + "/repo"],
             desc="git checkout of a branch changing 5,000 of its files"),
]
REAL_SCALE_KEYS = ("make_targets", "git_files", "dpkg_pkgs")  # not in the layers' stamp
REAL_INPUT = {"make-j2": "src", "dpkg-install": "rootfs", "git-status": "git",
              "git-checkout": "git"}
