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
import time

from bench_workloads import ACTIVE, log, mount_points

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

    def __init__(self, system, program, root, mnt, upper, work, n):
        self.system = system
        self.program = program
        self.mnt = mnt
        self.upper = upper
        self.work = work
        self.lowers = [f"{root}/{i}" for i in range(n)]
        self.n = n
        self.pid = None
        self.pidfd = None
        self.known = set()  # our children before the mount

    def fresh_dirs(self):
        for d in (self.upper, self.work):
            if os.path.exists(d):
                shutil.rmtree(d)
            os.makedirs(d)
        os.makedirs(self.mnt, exist_ok=True)
        if self.mnt in mount_points():
            raise RuntimeError(f"{self.mnt} is already a mount point")

    def mount(self):
        """Mount, stat the probe: seconds from start to the stat's return."""
        self.fresh_dirs()
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
        pid = os.posix_spawn(self.program, [self.program, "-o", opts, self.mnt], os.environ)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{self.program} exited {os.waitstatus_to_exitcode(status)}")

    def adopt(self):
        """The detached daemon, now our child (we are its subreaper)."""
        name = os.path.basename(self.program)[:15]
        new = [p for p in children() - self.known if comm(p) == name]
        if len(new) > 1:
            raise RuntimeError(f"found {len(new)} new {name} children after mounting")
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
        finally:
            if self in ACTIVE:
                ACTIVE.remove(self)
            for d in (self.upper, self.work):
                shutil.rmtree(d, ignore_errors=True)

    def reap(self):
        if self.pid is None and self.system != "kernel" and self.known:
            self.adopt()  # stopped before mount() found it
        if self.pid is None:
            return
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                log(f"note: {self.system} (pid {self.pid}) outlived its unmount; {sig.name}")
                os.kill(self.pid, sig)
            if select.select([self.pidfd], [], [], 10)[0]:
                break
        os.waitpid(self.pid, 0)
        os.close(self.pidfd)
        self.pid = self.pidfd = None
