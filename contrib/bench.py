#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Benchmark overpass against kernel overlayfs and fuse-overlayfs.

One run mounts the same deterministic layers with each system and measures
every workload on each of them back to back, repetition after repetition
(the order of the systems rotates between repetitions), each repetition on
a fresh mount with an empty upper layer.  It prints a table of medians and
ratios and writes every measured value to a CSV file.

Groups of workloads (--only takes group or workload names):
  data       sequential read warm and cold, 4k random read (fio, 1 and 4
             jobs), sequential write with fsync, mmap read, and the copy-up
             of a 1 GiB lower file (open O_APPEND, write 1 byte, close)
  namespace  stat of a 20,000-file tree spread over two lower layers,
             listing a 10,000-entry directory, create+write and remove of
             10,000 small files, tar and untar of the tree, chmod -R of the
             lower tree, renaming 1,000 lower files, a compile-like mix
  rootless   the data workloads with every system inside `unshare -Urm`,
             so FUSE passthrough is unavailable
  rootless-namespace
             the namespace workloads inside `unshare -Urm`
  real       configure and make -j2 of overpass's tree in a lower layer,
             dpkg -i of packages into a debootstrap minbase rootfs in a
             lower layer, git status and git checkout in a 50,000-file
             repository in a lower layer (contrib/bench_real.py)
  mount      mount plus first lookup with 1, 16, 64, 128 and 500 lower
             layers, and umount to the daemon's exit
  memory     the daemon's resident memory after stat-walking a 1,000,000
             inode tree and after the kernel forgets it (drop_caches=2)

Each row is judged against its targets only when the spread of the
repetitions decides it (see decision() and doc/performance.md); an
undecided row runs --reps more times, up to --rerun times.  Before a data,
namespace or rootless row's repetitions each system runs it --warmup times
untimed: the first run after other work meets colder caches.

Needs root (mounts, drop_caches), fio, util-linux; fuse-overlayfs is
skipped with a note when it is not installed, the real workloads need
autoconf, automake, a C compiler, git and debootstrap (a row whose input
cannot be made is left out with a note).  Layers are generated once
and cached under --workdir.  Only mounts and processes this script started
are ever unmounted or signalled.  contrib/bench.sh builds overpass and runs
this script; doc/performance.md describes the method and a run's figures.
"""

import argparse
import atexit
import csv
import json
import math
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time

from bench_real import (
    MOUNT_LAYERS, REAL, REAL_INPUT, REAL_SCALE_KEYS, LatencyMount, make_debs, make_git_repo,
    make_mount_layers, make_rootfs, make_src_tree, set_subreaper, src_tree_key)
from bench_workloads import (
    ACTIVE, DATA, MIB, NAMESPACE, SCALES, WORKER_PYTHON, Workload, cached, die, fresh_mount_dirs,
    log, make_layers,
    make_mem_tree, mount_points, run_group, run_quiet, tree_entries, walk_stat)

# bench.py and the modules it imports, copied for the rootless worker
BENCH_MODULES = ["bench.py", "bench_workloads.py", "bench_real.py"]
ROOTLESS = [
    Workload("rootless-" + w.name, "rootless", w.unit, w.better, w.fn, w.drop, w.desc)
    for w in DATA
]
ROOTLESS_NS = [
    Workload("rootless-" + w.name, "rootless-namespace", w.unit, w.better, w.fn, w.drop, w.desc)
    for w in NAMESPACE
]
MEMORY_ROWS = [
    ("mem-walk", "s", "lower"),
    ("mem-rss-start", "MiB", "lower"),
    ("mem-rss-walked", "MiB", "lower"),
    ("mem-rss-peak", "MiB", "lower"),
    ("mem-rss-forgot", "MiB", "lower"),
    ("mem-bytes/inode", "B", "lower"),
    ("mem-inodes-cached", "inodes", None),
    ("mem-bytes/cached", "B", "lower"),
]
ALL_WORKLOADS = DATA + NAMESPACE + ROOTLESS + ROOTLESS_NS + REAL
WORKER_FNS = {w.name: w.fn for w in DATA + NAMESPACE + REAL}
GROUPS = ["data", "namespace", "rootless", "rootless-namespace", "mount", "real", "memory"]


def worker_main(name, ctx_json):
    # stopped by the main process: end what we started (fio) first
    signal.signal(signal.SIGTERM, on_signal)
    value, extra = WORKER_FNS[name](json.loads(ctx_json))
    print(json.dumps({"value": value, "extra": extra}))


# ---------------------------------------------------------------------------
# Mounts.  Every mount and process started here is registered in ACTIVE and
# taken down by cleanup(), also on exceptions and signals.

# Run by `unshare -Urm sh -c NS_SETUP ns-setup NSROOT WORKDIR CMD...`: a new
# root holding only /usr, /etc, /opt, a few devices, /proc and the workdir,
# and the inherited mounts detached, so that this namespace never keeps
# someone else's FUSE mount (and daemon) alive after they unmount it.
NS_SETUP = r"""
set -e
R=$1 W=$2
shift 2
mount -t tmpfs -o mode=0755 nsroot "$R"
for d in usr etc opt; do
	[ -d "/$d" ] || continue
	mkdir "$R/$d"
	mount --bind "/$d" "$R/$d"
done
for l in bin sbin lib lib32 lib64 libx32; do
	[ -L "/$l" ] && ln -s "$(readlink "/$l")" "$R/$l"
done
mkdir -p "$R/dev" "$R/proc" "$R/.old" "$R$W"
mkdir -m 1777 "$R/tmp"
for n in fuse null zero full random urandom; do
	touch "$R/dev/$n"
	mount --bind "/dev/$n" "$R/dev/$n"
done
mount --rbind /proc "$R/proc"
mount --bind "$W" "$R$W"
cd "$R"
pivot_root . .old
cd /
umount -l /.old
rmdir /.old
exec "$@"
"""

def vm_rss(pid, field="VmRSS"):
    """Resident memory in bytes.  The current figure is counted from the
    page tables (smaps_rollup): before Linux 6.2 each thread batches its
    page-fault counts, so a threaded daemon's VmRSS can be megabytes off.
    The peak (VmHWM) has no such source and keeps that error there."""
    if field == "VmRSS":
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for pid {pid}")


def workdir_fs(path):
    """The filesystem type of the mount holding path (its longest mount
    point in /proc/self/mountinfo), not the root's: in the kernels' VM the
    root is 9p and the workdir an ext4 scratch disk."""
    path = os.path.realpath(path)
    best, fstype = -1, "?"
    for line in open("/proc/self/mountinfo"):
        f = line.split()
        mnt = f[4].replace("\\040", " ")
        inside = path == mnt or path.startswith(mnt.rstrip("/") + "/")
        if inside and len(mnt) >= best:
            best, fstype = len(mnt), line.split(" - ")[1].split()[0]
    return fstype


def drop_caches(level):
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write(f"{level}\n")


class Mount:
    """One mount of a set of lower layers by one system, with a fresh upper."""

    def __init__(self, bench, system, lowers, rootless):
        self.bench = bench
        self.system = system
        self.rootless = rootless
        tag = system + ("-rootless" if rootless else "")
        run = f"{bench.workdir}/run"
        self.mnt = f"{run}/mnt-{tag}"
        self.upper = f"{run}/upper-{tag}"
        self.work = f"{run}/work-{tag}"
        self.lowers = lowers
        self.log_path = f"{bench.workdir}/logs/{tag}.log"
        self.proc = None  # daemon, or for rootless kernel the ns holder
        self.mounted = False

    def options(self):
        o = f"lowerdir={':'.join(self.lowers)},upperdir={self.upper},workdir={self.work}"
        if self.system == "kernel":
            o += ",userxattr" if self.rootless else ",redirect_dir=on,index=on"
        elif self.system == OP_OFF:
            o += ",restart=off"
        return o

    def start(self):
        fresh_mount_dirs(self.upper, self.work, self.mnt)
        ACTIVE.append(self)
        opts = self.options()
        if self.system == "kernel" and not self.rootless:
            r = run_quiet(["mount", "-t", "overlay", "overlay", "-o", opts, self.mnt])
            if r.returncode != 0:
                raise RuntimeError(f"mount -t overlay: {r.stderr.strip()}")
            self.mounted = True
            return
        if self.system == "kernel":
            cmd = ["/bin/sh", "-c", 'mount -t overlay overlay -o "$1" "$2" && exec sleep infinity',
                   "holder", opts, self.mnt]
        else:
            cmd = [self.bench.program(self.system, self.rootless), "-f", "-o", opts, self.mnt]
        if self.rootless:
            cmd = ["unshare", "-Urm", "/bin/sh", "-c", NS_SETUP, "ns-setup",
                   self.bench.nsroot, self.bench.workdir] + cmd
        with open(self.log_path, "a") as logf:
            logf.write(f"--- {time.strftime('%F %T')} {' '.join(cmd[-5:])}\n")
            logf.flush()
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=logf, start_new_session=True)
        pid = self.proc.pid if self.rootless else "self"
        deadline = time.monotonic() + 30
        while self.mnt not in mount_points(pid):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.system} exited {self.proc.returncode} before "
                                   f"mounting; see {self.log_path}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.system} did not mount {self.mnt} within 30 s")
            time.sleep(0.01)
        self.mounted = True

    def log_tail(self):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-10:])
        except OSError:
            return ""

    def nsenter(self):
        return ["nsenter", "-t", str(self.proc.pid), "-U", "-m", "-r", "-w", "--"]

    def run(self, name, ctx):
        ctx = dict(ctx, mnt=self.mnt)
        if not self.rootless:
            return WORKER_FNS[name](ctx)
        cmd = self.nsenter() + [WORKER_PYTHON, self.bench.worker_script, "--worker", name,
                                json.dumps(ctx)]
        r = run_group(cmd)
        if r.returncode != 0:
            raise RuntimeError(f"worker {name} exited {r.returncode}: {r.stderr.strip()[-2000:]}")
        res = json.loads(r.stdout.strip().splitlines()[-1])
        return res["value"], res["extra"]

    def overpass_stats(self):
        if self.system not in (OP, OP_OFF):
            return {}
        cmd = [self.bench.program("overpass", self.rootless), "--stats", self.mnt]
        if self.rootless:
            cmd = self.nsenter() + cmd
        r = run_quiet(cmd)
        stats = {}
        for line in r.stdout.splitlines():
            f = line.split()
            if len(f) == 2:
                stats[f[0]] = f[1]
        return stats

    def rss(self, field="VmRSS"):
        return vm_rss(self.proc.pid, field)

    def stop(self):
        """Unmount by path, wait for our daemon; signal only our own pid."""
        try:
            if self.mounted:
                self._unmount()
            if self.proc is not None:
                self._reap()
        finally:
            self.mounted = False
            if self in ACTIVE:
                ACTIVE.remove(self)
        for d in (self.upper, self.work):
            shutil.rmtree(d, ignore_errors=True)

    def _unmount(self):
        if self.rootless and self.system == "kernel":
            return  # goes away with the namespace when the holder ends
        if self.rootless:
            cmd = self.nsenter() + ["umount", self.mnt]
        elif self.system == "kernel":
            cmd = ["umount", self.mnt]
        else:
            cmd = ["fusermount3", "-u", self.mnt]
        for _ in range(20):
            r = run_quiet(cmd)
            if r.returncode == 0:
                return
            if self.rootless and (self.proc.poll() is not None):
                return
            time.sleep(0.25)
        log(f"note: {' '.join(cmd)} kept failing ({r.stderr.strip()}); detaching it lazily")
        if self.rootless:
            run_quiet(self.nsenter() + ["umount", "-l", self.mnt])
        else:
            run_quiet(["umount", "-l", self.mnt])

    def _reap(self):
        p = self.proc
        if self.rootless and self.system == "kernel" and p.poll() is None:
            p.terminate()
        try:
            p.wait(timeout=30)
            return
        except subprocess.TimeoutExpired:
            pass
        # e.g. a copy of the mount in someone else's mount namespace keeps
        # the FUSE connection alive after our unmount
        log(f"note: {self.system} (pid {p.pid}) still running 30 s after unmount; SIGTERM")
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


URING_PARAM = "/sys/module/fuse/parameters/enable_uring"
URING_SAVED = []  # the kernel's switch as found, while --fuse-uring changed it


def read_uring():
    try:
        with open(URING_PARAM) as f:
            return f.read().strip()
    except OSError:
        return None


def set_uring(mode):
    """--fuse-uring on|off: set the FUSE module's enable_uring for the run
    (mounts made afterwards use it); put back at exit."""
    if mode == "keep":
        return
    was = read_uring()
    if was is None:
        die(f"--fuse-uring {mode}: this kernel has no {URING_PARAM}")
    with open(URING_PARAM, "w") as f:
        f.write("Y" if mode == "on" else "N")
    URING_SAVED.append(was)


def cleanup():
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    for m in list(reversed(ACTIVE)):
        try:
            m.stop()
        except Exception as e:  # keep cleaning the others
            log(f"cleanup of {m.mnt}: {e}")
    while URING_SAVED:
        try:
            with open(URING_PARAM, "w") as f:
                f.write(URING_SAVED.pop())
        except OSError as e:
            log(f"putting back {URING_PARAM}: {e}")
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)


def on_signal(signum, frame):
    raise SystemExit(128 + signum)


# ---------------------------------------------------------------------------
# The run.


def goodness(a, b, better):
    """How many times better a is than b: >= 1 means at least as good."""
    if a is None or b is None or a <= 0 or b <= 0 or better is None:
        return None
    return a / b if better == "higher" else b / a


def fmt(v):
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def fmt_ratio(r):
    return "-" if r is None else f"{r:.2f}"


# ---------------------------------------------------------------------------
# Targets and decidability.  A target is a label, the rows it judges, and
# clauses (a, b, limit): a row meets it when one clause holds, that is when
# a is at least `limit` times as good as b (goodness of the medians).  A
# clause is decided when the interval its ratio can take, given the spread
# of the repetitions, lies wholly on one side of the limit.

OP, K, FO = "overpass", "kernel", "fuse-overlayfs"
OP_OFF = "overpass-off"  # overpass with restart=off, beside the default
BASE = "baseline"  # overpass's values in the --baseline CSV
SHORT = {OP: "op", OP_OFF: "off", K: "k", FO: "fo", BASE: "base"}
NS_VS_FO = [(OP, FO, 2), (OP, K, 1)]  # 2 x fo, or the kernel's own ratio when below 2
TARGETS = [
    ("data with passthrough >= 0.95 x kernel",
     lambda n, g: g == "data" and n != "append-copyup", [(OP, K, 0.95)]),
    ("copy-up of 1 GiB <= 1.1 x kernel time", lambda n, g: n == "append-copyup", [(OP, K, 1 / 1.1)]),
    ("namespace >= 2 x fuse-overlayfs (or >= k/fo where that is < 2)",
     lambda n, g: g == "namespace", NS_VS_FO),
    ("namespace >= 0.5 x kernel", lambda n, g: g == "namespace", [(OP, K, 0.5)]),
    ("rootless data >= 1.5 x fuse-overlayfs", lambda n, g: g == "rootless", [(OP, FO, 1.5)]),
    ("rootless namespace >= 2 x fuse-overlayfs (or >= k/fo where that is < 2)",
     lambda n, g: g == "rootless-namespace", NS_VS_FO),
    ("rootless namespace >= 0.5 x kernel", lambda n, g: g == "rootless-namespace", [(OP, K, 0.5)]),
    ("mount + first lookup time <= fuse-overlayfs, every layer count",
     lambda n, g: g == "mount" and n.startswith("mount-"), [(OP, FO, 1)]),
    ("unmount to daemon exit <= fuse-overlayfs, every layer count",
     lambda n, g: g == "mount" and n.startswith("umount-"), [(OP, FO, 1)]),
    ("real workloads >= 0.8 x kernel", lambda n, g: g == "real", [(OP, K, 0.8)]),
    ("real workloads >= 1.5 x fuse-overlayfs", lambda n, g: g == "real", [(OP, FO, 1.5)]),
    ("data, rootless data and memory no worse than --baseline (>= 0.95 x)",
     lambda n, g: g in ("data", "rootless", "memory"), [(OP, BASE, 0.95)]),
]
CONFIDENCE = 0.9  # wanted coverage of each side's median interval
MIN_VALUES = 3  # fewer values on a side leave its clauses undecided (min..max covers < 75%)


def median_coverage(n, k):
    """Probability that [x_(k), x_(n+1-k)] of n samples holds the median of
    their distribution, whatever it is: 1 - 2 P(Binomial(n, 1/2) < k)."""
    return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2 ** n


def median_interval(vals):
    """The order statistics x_(k), x_(n+1-k) with k the largest whose
    coverage is >= CONFIDENCE; min and max when even they fall short (they
    cover 75% at 3 values, 94% at 5)."""
    v = sorted(vals)
    n, k = len(v), 1
    while 2 * (k + 1) <= n + 1 and median_coverage(n, k + 1) >= CONFIDENCE:
        k += 1
    return v[k - 1], v[n - k]


def ratio_interval(avals, bvals, better):
    """(low, high) of goodness(a, b) over both sides' median intervals."""
    if not avals or not bvals or better is None:
        return None
    gs = [goodness(x, y, better) for x in median_interval(avals) for y in median_interval(bvals)]
    if None in gs:
        return None
    return min(gs), max(gs)


def clause_state(results, name, better, clause):
    """"met", "not met", "undecided", or None when a side is missing."""
    a, b, limit = clause
    avals, bvals = results.get((name, a)), results.get((name, b))
    iv = ratio_interval(avals, bvals, better)
    if iv is None:
        return None
    if min(len(avals), len(bvals)) < MIN_VALUES:
        return "undecided"
    if iv[0] >= limit:
        return "met"
    return "not met" if iv[1] < limit else "undecided"


def target_state(results, name, better, clauses):
    states = [clause_state(results, name, better, c) for c in clauses]
    states = [st for st in states if st is not None]
    if not states:
        return None
    if "met" in states:
        return "met"
    return "undecided" if "undecided" in states else "not met"


class Bench:
    def __init__(self, args):
        self.args = args
        self.workdir = os.path.abspath(args.workdir)
        self.sc = SCALES["small" if args.small else "full"]
        self.scale_name = "small" if args.small else "full"
        self.nsroot = f"{self.workdir}/nsroot"
        self.worker_script = f"{self.workdir}/bin/bench.py"
        self.results = {}  # (workload, system) -> [values]
        self.rows = []  # (workload, group, unit, better)
        self.notes = []
        self.csv_rows = []
        self.systems = []
        self.fuse_overlayfs = shutil.which("fuse-overlayfs")
        self.real = None  # input -> its cached lower layer, once prepare_real ran
        self.top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def program(self, system, rootless):
        if system in (OP, OP_OFF):
            return f"{self.workdir}/bin/overpass" if rootless else self.overpass
        return self.fuse_overlayfs

    def note(self, msg):
        log(f"note: {msg}")
        self.notes.append(msg)

    def setup(self):
        a = self.args
        self.overpass = os.path.abspath(a.overpass)
        if not os.access(self.overpass, os.X_OK):
            die(f"no overpass binary at {self.overpass} (build it: contrib/build.sh, or --overpass)")
        for s in a.systems.split(","):
            if s not in (OP, OP_OFF, K, FO):
                die(f"unknown system {s!r}")
            if s == "fuse-overlayfs" and not self.fuse_overlayfs:
                self.note("fuse-overlayfs is not installed: skipped "
                          "(bash contrib/setup-deps.sh installs it)")
                continue
            self.systems.append(s)
        if not shutil.which("fio"):
            die("fio is not installed (bash contrib/setup-deps.sh installs it)")
        names = {w.name for w in ALL_WORKLOADS} | set(GROUPS)
        self.only = set(a.only.split(",")) if a.only else set(GROUPS)
        unknown = self.only - names
        if unknown:
            die(f"unknown workload(s) {', '.join(sorted(unknown))}; known: "
                f"{', '.join(GROUPS + [w.name for w in ALL_WORKLOADS])}")
        if a.baseline:
            self.load_baseline(a.baseline)
        os.makedirs(self.workdir, exist_ok=True)
        for d in ("run", "logs", "bin", "nsroot"):
            os.makedirs(f"{self.workdir}/{d}", exist_ok=True)
        stale = [m for m in mount_points() if m == self.workdir or m.startswith(self.workdir + "/")]
        if stale:
            die(f"mounts left under {self.workdir} (from an interrupted run?): {', '.join(stale)}; "
                "unmount them first")
        # the rootless namespace sees only the workdir: copies of both there
        shutil.copy2(self.overpass, f"{self.workdir}/bin/overpass")
        here = os.path.dirname(os.path.abspath(__file__))
        for mod in BENCH_MODULES:
            shutil.copy2(f"{here}/{mod}", f"{self.workdir}/bin/{mod}")
        self.layers = f"{self.workdir}/layers-{self.scale_name}"
        self.mem = f"{self.workdir}/mem-{self.scale_name}"
        sc = self.sc
        if any(self.selected(w) for w in DATA + NAMESPACE + ROOTLESS + ROOTLESS_NS):
            cached(self.layers, "layers",
                   {k: v for k, v in sc.items() if k not in REAL_SCALE_KEYS},
                   lambda root: make_layers(root, sc))
        if any(w.group == "real" and self.selected(w) for w in REAL):
            self.prepare_real()
        if "mount" in self.only:
            self.mount_layers = f"{self.workdir}/mount-layers"
            cached(self.mount_layers, "mount layers", dict(n=MOUNT_LAYERS[-1]), make_mount_layers)
        if "memory" in self.only:
            cached(self.mem, "memory tree",
                   dict(dirs=sc["mem_dirs"], files=sc["mem_files"]),
                   lambda root: make_mem_tree(root, sc))

    def selected(self, w):
        if w.group == "real" and self.real is not None and REAL_INPUT[w.name] not in self.real:
            return False  # its input could not be made: noted
        return w.group in self.only or w.name in self.only

    def load_baseline(self, path):
        """overpass's values in a previous run's CSV, as system BASE."""
        try:
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    if row["system"] == OP and row["rep"].isdigit():
                        self.results.setdefault((row["workload"], BASE), []).append(
                            float(row["value"]))
        except (OSError, KeyError, ValueError) as e:
            die(f"--baseline {path}: {e}")

    def prepare_real(self):
        """The real workloads' lower layers, made once and cached; a row
        whose input cannot be made is left out with a note."""
        wd, sc, top = self.workdir, self.sc, self.top
        inputs = {
            "src": (f"{wd}/real-src", "source tree", dict(tree=src_tree_key(top)),
                    lambda r: make_src_tree(r, top)),
            "git": (f"{wd}/real-git-{self.scale_name}", "git repository",
                    dict(files=sc["git_files"], layout=3), lambda r: make_git_repo(r, sc["git_files"])),
            "rootfs": (f"{wd}/real-rootfs", "debootstrap minbase rootfs", {}, make_rootfs),
            "debs": (f"{wd}/real-debs-{self.scale_name}", "packages to install",
                     dict(pkgs=sc["dpkg_pkgs"]),
                     lambda r: make_debs(r, f"{wd}/real-rootfs/rootfs", sc["dpkg_pkgs"])),
        }
        wanted = {REAL_INPUT[w.name] for w in REAL if self.selected(w)}
        if "rootfs" in wanted:
            wanted.add("debs")
        self.real = {}
        for key in ("src", "git", "rootfs", "debs"):
            if key not in wanted or (key == "debs" and "rootfs" not in self.real):
                continue
            root, what, params, build = inputs[key]
            try:
                cached(root, what, params, build)
                self.real[key] = root
            except (Exception, subprocess.SubprocessError) as e:
                need = "rootfs" if key == "debs" else key
                rows = [n for n, k in REAL_INPUT.items() if k == need]
                self.note(f"cannot make the {what} ({e}): {', '.join(rows)} left out")
        if "debs" not in self.real:
            self.real.pop("rootfs", None)

    def ctx(self):
        return {
            "lower_top": f"{self.layers}/top",
            "lower_bottom": f"{self.layers}/bottom",
            "tar": f"{self.layers}/tree.tar",
            "scale": self.sc,
            "pkg_config_path": self.pkg_config_path(),
            "debs": (self.real or {}).get("debs"),
        }

    def pkg_config_path(self):
        """The one overpass was configured with (libfuse in a private prefix)."""
        try:
            with open(f"{os.path.dirname(os.path.dirname(self.overpass))}/Makefile") as f:
                for line in f:
                    if line.startswith("PKG_CONFIG_PATH = "):
                        return line.split("=", 1)[1].strip()
        except OSError:
            pass
        return os.environ.get("PKG_CONFIG_PATH", "")

    def order(self, rep):
        k = rep % len(self.systems)
        return self.systems[k:] + self.systems[:k]

    def record(self, wname, system, rep, value, unit):
        self.results.setdefault((wname, system), []).append(value)
        self.csv_rows.append([wname, system, unit, rep + 1, f"{value:.6g}"])

    def reps_label(self, rep):
        return f"rep {rep + 1}/{self.args.reps}" + (" (rerun)" if rep >= self.args.reps else "")

    def rounds(self, names, run_round):
        """run_round(reps, rows) for the first --reps repetitions, then
        again for --reps more, for the rows of names still undecided,
        --rerun times at most."""
        n = self.args.reps
        run_round(range(n), names)
        for r in range(1, self.args.rerun + 1):
            pending = [x for x in names if self.decision(x) == "undecided"]
            if not pending:
                return
            log(f"  undecided: {', '.join(pending)}; rerun {r}/{self.args.rerun}")
            run_round(range(r * n, (r + 1) * n), pending)
        for x in names:
            if self.decision(x) == "undecided":
                self.note(f"{x}: still undecided after {self.args.rerun} reruns")

    def run_workload(self, w):
        self.rows.append((w.name, w.group, w.unit, w.better))
        self.rounds([w.name], lambda reps, _: self.workload_round(w, reps))

    def workload_round(self, w, reps):
        rootless = w.group.startswith("rootless")
        base = w.name[len("rootless-"):] if rootless else w.name
        lowers = w.lowers(self) if w.lowers else [f"{self.layers}/top", f"{self.layers}/bottom"]
        if reps[0] == 0:
            # untimed: the first run after other work meets caches that
            # work (or the host's reclaim of idle pages) left cold, and it
            # would be whichever system the order puts first
            for k in range(self.args.warmup):
                for system in self.order(k):
                    v = self.workload_once(w, system, base, lowers, rootless, f"warm-up {k + 1}")
                    if v is not None:
                        log(f"  {w.name:27} warm-up {k + 1}     {system:15} {fmt(v)} {w.unit}")
        for rep in reps:
            for system in self.order(rep):
                res = self.workload_once(w, system, base, lowers, rootless,
                                         f"rep {rep + 1}", rep == 0)
                if res is None:
                    continue
                self.record(w.name, system, rep, res, w.unit)
                log(f"  {w.name:27} {self.reps_label(rep)} {system:15} {fmt(res)} {w.unit}")

    def workload_once(self, w, system, base, lowers, rootless, label, note_stats=False):
        """One run of w on a fresh mount of system: its value, or None."""
        m = Mount(self, system, lowers, rootless)
        try:
            m.start()
            if w.drop:
                drop_caches(w.drop)
            value, _ = m.run(base, self.ctx())
            if note_stats:
                self.stats_note(w, m.overpass_stats())
            return value
        except (Exception, subprocess.SubprocessError) as e:
            self.note(f"{w.name} on {system}{' (rootless)' if rootless else ''} "
                      f"{label} failed: {e}")
            return None
        finally:
            m.stop()

    def stats_note(self, w, st):
        if not st:
            return
        if w.group.endswith("namespace") or w.group == "real":
            reqs = sorted(((int(v), k[len("requests."):]) for k, v in st.items()
                           if k.startswith("requests.")), reverse=True)
            self.notes.append(
                f"overpass {w.name}: {sum(n for n, _ in reqs)} requests ("
                + ", ".join(f"{k} {n}" for n, k in reqs[:5])
                + f"), copy_ups {st.get('copy_ups')}, transport {st.get('transport')}")
        else:
            self.notes.append(
                f"overpass {w.name}: passthrough.active={st.get('passthrough.active')}"
                f" ({st.get('passthrough.reason')}), requests.READ="
                f"{st.get('requests.READ')} WRITE={st.get('requests.WRITE')}"
                f" passthrough.opens={st.get('passthrough.opens')}"
                f" fallback.opens={st.get('fallback.opens')}"
                f" transport={st.get('transport')}")

    def run_mount(self):
        names = [f"{kind}-{n}" for kind in ("mount", "umount") for n in MOUNT_LAYERS]
        for name in names:
            self.rows.append((name, "mount", "s", "lower"))
        set_subreaper(True)
        try:
            self.rounds(names, self.mount_round)
        finally:
            set_subreaper(False)

    def mount_round(self, reps, rows):
        run = f"{self.workdir}/run"
        counts = [n for n in MOUNT_LAYERS if f"mount-{n}" in rows or f"umount-{n}" in rows]
        for rep in reps:
            for n in counts:
                for system in self.order(rep):
                    m = LatencyMount(system, self.program(system, False), self.mount_layers,
                                     f"{run}/mnt-lat", f"{run}/upper-lat", f"{run}/work-lat", n,
                                     f"{self.workdir}/logs/mount-{system}.log")
                    try:
                        up = m.mount()
                        down = m.unmount()
                    except (Exception, subprocess.SubprocessError) as e:
                        self.note(f"mount of {n} layers on {system} rep {rep + 1} failed: {e}")
                        continue
                    finally:
                        m.stop()
                    self.record(f"mount-{n}", system, rep, up, "s")
                    self.record(f"umount-{n}", system, rep, down, "s")
                    log(f"  {f'mount-{n}':27} {self.reps_label(rep)} {system:15} "
                        f"{fmt(up)} s, umount {fmt(down)} s")

    def run_memory(self):
        sc = self.sc
        n_expected = sc["mem_dirs"] * (sc["mem_files"] + 1)
        for name, unit, better in MEMORY_ROWS:
            self.rows.append((name, "memory", unit, better))
        lower = f"{self.mem}/lower"
        for rep in range(self.args.mem_reps):
            for system in self.order(rep):
                walk_stat(lower)  # the lower layer's dentries and inodes cached, untimed
                m = Mount(self, system, [lower], False)
                try:
                    m.start()
                    daemon = m.proc is not None
                    rss0 = m.rss() if daemon else None
                    t0 = time.monotonic()
                    n = walk_stat(m.mnt)
                    walk = time.monotonic() - t0
                    if n != n_expected:
                        raise RuntimeError(f"walked {n} entries, expected {n_expected}")
                    rss1 = m.rss() if daemon else None
                    peak = m.rss("VmHWM") if daemon else None
                    st1 = m.overpass_stats()
                    drop_caches(2)
                    time.sleep(1)
                    rss2 = m.rss() if daemon else None
                    st2 = m.overpass_stats()
                except (Exception, subprocess.SubprocessError) as e:
                    self.note(f"memory on {system} rep {rep + 1} failed: {e}")
                    continue
                finally:
                    m.stop()
                self.record("mem-walk", system, rep, walk, "s")
                log(f"  {'mem-walk':27} rep {rep + 1}/{self.args.mem_reps} {system:15} "
                    f"{fmt(walk)} s for {n} entries")
                if daemon:
                    self.record("mem-rss-start", system, rep, rss0 / MIB, "MiB")
                    self.record("mem-rss-walked", system, rep, rss1 / MIB, "MiB")
                    self.record("mem-rss-peak", system, rep, peak / MIB, "MiB")
                    self.record("mem-rss-forgot", system, rep, rss2 / MIB, "MiB")
                    self.record("mem-bytes/inode", system, rep, (rss1 - rss0) / n, "B")
                    # the daemon's own count where it tells it: overpass
                    # bounds its inodes by its open-file limit
                    cached_n = int(st1["inodes"]) if st1.get("inodes") else None
                    if cached_n:
                        self.record("mem-inodes-cached", system, rep, cached_n, "inodes")
                        self.record("mem-bytes/cached", system, rep, (rss1 - rss0) / cached_n, "B")
                    log(f"  memory {system}: RSS {rss0 / MIB:.1f} -> {rss1 / MIB:.1f} MiB "
                        f"after the walk, {rss2 / MIB:.1f} MiB after drop_caches=2; "
                        f"{(rss1 - rss0) / n:.0f} B per inode")
                if st1 and rep == 0:
                    self.notes.append(
                        f"overpass memory: {n} entries walked; stats inodes={st1.get('inodes')} "
                        f"reclaimed={st1.get('reclaimed')} after the walk, inodes="
                        f"{st2.get('inodes')} reclaimed={st2.get('reclaimed')} after drop_caches=2")

    def row(self, name):
        return next(r for r in self.rows if r[0] == name)

    def row_targets(self, name):
        _, group, _, _ = self.row(name)
        return [(label, clauses) for label, judges, clauses in TARGETS if judges(name, group)]

    def decision(self, name):
        """"decided" when every target the row is judged against is,
        "undecided" when one is not, None when it has none measured."""
        better = self.row(name)[3]
        states = [target_state(self.results, name, better, c) for _, c in self.row_targets(name)]
        states = [st for st in states if st is not None]
        if not states:
            return None
        return "undecided" if "undecided" in states else "decided"

    def table(self):
        sysnames = self.systems
        ratio_cols = [(s, "kernel") for s in sysnames if s != "kernel" and "kernel" in sysnames]
        if "overpass" in sysnames and "fuse-overlayfs" in sysnames:
            ratio_cols.append(("overpass", "fuse-overlayfs"))
        if self.args.baseline and "overpass" in sysnames:
            ratio_cols.append(("overpass", BASE))
        if OP in sysnames and OP_OFF in sysnames:
            ratio_cols.append((OP, OP_OFF))
        head = f"{'workload':27} {'unit':6}" + "".join(f"{s:>15}" for s in sysnames)
        head += "".join(f"{SHORT[a] + '/' + SHORT[b]:>8}" for a, b in ratio_cols)
        head += f"{'spread':>8}{'n':>4} decided"
        lines = [head, "-" * len(head)]
        group = None
        medians = {}
        for name, grp, unit, better in self.rows:
            if grp != group:
                group = grp
                lines.append(f"[{grp}]")
            meds = {}
            spread = 0.0
            n = 0
            for s in sysnames:
                vals = self.results.get((name, s))
                if vals:
                    n = max(n, len(vals))
                    meds[s] = statistics.median(vals)
                    if meds[s] > 0:
                        spread = max(spread, (max(vals) - min(vals)) / meds[s])
            base = self.results.get((name, BASE))
            if base:
                meds[BASE] = statistics.median(base)
            medians[name] = meds
            line = f"{name:27} {unit:6}" + "".join(f"{fmt(meds.get(s)):>15}" for s in sysnames)
            line += "".join(f"{fmt_ratio(goodness(meds.get(a), meds.get(b), better)):>8}"
                            for a, b in ratio_cols)
            d = self.decision(name)
            line += f"{spread * 100:7.0f}%{n:4} {'yes' if d == 'decided' else d or '-'}"
            lines.append(line)
        return lines, medians

    def target_lines(self, medians, label, clauses, names):
        """One line: met, NOT met or undecided over names, with the worst
        decided row (or the worst undecided one) and its ratios."""
        states = {}
        for n in names:
            st = target_state(self.results, n, self.row(n)[3], clauses)
            if st is not None:
                states[n] = st
        if not states:
            return [f"  {label}: not measured"]

        def score(n):  # how far the row is past its best clause's limit
            meds, better = medians.get(n, {}), self.row(n)[3]
            gs = [goodness(meds.get(a), meds.get(b), better) for a, b, _ in clauses]
            return max(g / lim for g, (_, _, lim) in zip(gs, clauses) if g is not None)

        def show(n):
            meds, better = medians.get(n, {}), self.row(n)[3]
            return " or ".join(f"{SHORT[a]}/{SHORT[b]} "
                               f"{fmt_ratio(goodness(meds.get(a), meds.get(b), better))}"
                               f" (need >= {lim:.2f})" for a, b, lim in clauses)

        undecided = [n for n, st in states.items() if st == "undecided"]
        failed = [n for n, st in states.items() if st == "not met"]
        if failed:
            worst = min(failed, key=score)
            verdict = f"NOT met (worst {worst}: {show(worst)}"
        elif undecided:
            worst = min(undecided, key=score)
            verdict = f"undecided (worst {worst}: {show(worst)}"
            undecided.remove(worst)
        else:
            worst = min(states, key=score)
            verdict = f"met (worst {worst}: {show(worst)}"
        if undecided:
            verdict += f"; also undecided: {', '.join(undecided)}"
        return [f"  {label}: {verdict})"]

    def targets(self, medians):
        out = []
        for label, judges, clauses in TARGETS:
            if any(b == BASE for _, b, _ in clauses) and not self.args.baseline:
                continue
            names = [r[0] for r in self.rows if judges(r[0], r[1])]
            if names:
                out += self.target_lines(medians, label, clauses, names)
        for s in ("overpass", "fuse-overlayfs"):
            v = medians.get("mem-bytes/inode", {}).get(s)
            if v is None:
                continue
            line = f"  memory, {s}: {v:.0f} bytes per walked inode"
            n = medians.get("mem-inodes-cached", {}).get(s)
            if n is not None:
                c = medians.get("mem-bytes/cached", {}).get(s)
                line += f"; {n:.0f} inodes still cached after the walk, {c:.0f} bytes each"
            out.append(line)
        return out

    def header(self, t_start_load):
        sc = self.sc
        top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        git = run_quiet(["git", "-C", top, "describe", "--always", "--dirty"]).stdout.strip()
        changed = run_quiet(["git", "-C", top, "diff", "--name-only", "HEAD", "--", "src"]).stdout.split()
        if changed:
            git += f" (uncommitted changes to {', '.join(changed)})"
        fo = run_quiet([self.fuse_overlayfs, "--version"]).stdout.splitlines() if self.fuse_overlayfs else []
        fo_ver = next((l for l in fo if l.startswith("fuse-overlayfs")), "-")
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
        root_fs = workdir_fs(self.workdir)
        return [
            f"overpass benchmark, started {self.started}",
            f"host: Linux {os.uname().release}, {os.cpu_count()} CPUs, {mem_gib:.1f} GiB RAM, "
            f"layers on {root_fs} ({self.workdir})",
            f"load at start: {t_start_load}",
            f"RLIMIT_NOFILE hard limit {nofile} (overpass keeps an fd per cached inode and asks the "
            "kernel to forget inodes past 80% of it)",
            f"FUSE over io_uring: fuse.enable_uring={read_uring() or 'absent'}"
            + (f" (set by --fuse-uring {self.args.fuse_uring}; it was {URING_SAVED[0]})"
               if URING_SAVED else " (as found)")
            + "; overpass takes it when offered, fuse-overlayfs (libfuse 3.14) cannot",
            f"overpass {git} ({self.overpass}); {fo_ver}; kernel overlayfs with "
            "redirect_dir=on,index=on (rootless: userxattr)",
            f"scale {self.scale_name}: {sc['data_bytes'] // MIB} MiB data file, "
            f"{tree_entries(sc)}-entry tree, {sc['bigdir']}-entry dir, "
            f"{sc['mem_dirs'] * (sc['mem_files'] + 1)}-inode memory tree; "
            f"{self.args.reps} reps (memory {self.args.mem_reps}), median shown",
            "ratios a/b: how many times better a is than b -- throughput_a/throughput_b for MiB/s",
            "  and IOPS, time_b/time_a for s, size_b/size_a for memory: >= 1 means a is at least",
            "  as good as b.  op = overpass, k = kernel overlayfs, fo = fuse-overlayfs.",
            "spread: the largest (max - min)/median over the systems of that row; n: repetitions.",
            "decided: whether the spread lets each target of the row be judged: each side's median",
            f"  lies, {CONFIDENCE:.0%} distribution-free (order statistics; min..max below 5 values), in an",
            "  interval; the ratio's interval from those must lie wholly above or below the limit.",
            f"  Undecided rows ran --reps more times, up to --rerun {self.args.rerun} times.",
            f"  Each data, namespace and rootless row ran {self.args.warmup} untimed time(s) on each"
            " system first.",
            "[rootless*]: every system inside unshare -Urm (no FUSE passthrough); k there is kernel",
            "  overlayfs mounted inside that user namespace.",
            "[real]: each input alone in a lower layer (made once, cached), a fresh mount per run.",
            "[mount]: FUSE daemons started detached, as container engines do; kernel overlayfs",
            "  mounted in process with fsconfig lowerdir+= (one mount(2) option string is a page).",
        ]

    def main(self):
        t_start = time.monotonic()
        self.started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        load = run_quiet(["uptime"]).stdout.strip()
        log(f"uptime: {load}")
        self.setup()
        log(f"systems: {', '.join(self.systems)}; {self.args.reps} reps; scale {self.scale_name}")
        for w in ALL_WORKLOADS:
            if self.selected(w):
                log(f"[{w.group}] {w.name}: {w.desc} (load {os.getloadavg()[0]:.2f})")
                self.run_workload(w)
        if "mount" in self.only:
            log(f"[mount] mount + first lookup and umount to exit, {MOUNT_LAYERS} lower layers "
                f"(load {os.getloadavg()[0]:.2f})")
            self.run_mount()
        if "memory" in self.only:
            log(f"[memory] walk {self.sc['mem_dirs'] * (self.sc['mem_files'] + 1)} inodes "
                f"(load {os.getloadavg()[0]:.2f})")
            self.run_memory()
        lines, medians = self.table()
        elapsed = time.monotonic() - t_start
        out = self.header(load) + [""] + lines + ["", "targets (overpass):"] + self.targets(medians)
        if self.notes:
            out += ["", "notes:"] + [f"  {n}" for n in self.notes]
        out += ["", f"load at end: {run_quiet(['uptime']).stdout.strip()}",
                f"run time: {elapsed / 60:.1f} min"]
        text = "\n".join(out) + "\n"
        print(text, end="", flush=True)
        csv_path = os.path.abspath(self.args.csv or f"{self.workdir}/bench.csv")
        with open(csv_path, "w", newline="") as f:
            wr = csv.writer(f)
            wr.writerow(["workload", "system", "unit", "rep", "value"])
            wr.writerows(self.csv_rows)
            for name, _, unit, _ in self.rows:
                for s, v in medians.get(name, {}).items():
                    if s == BASE:
                        continue
                    wr.writerow([name, s, unit, "median", f"{v:.6g}"])
                d = self.decision(name)
                if d:
                    wr.writerow([name, "", "", "decided", "yes" if d == "decided" else "no"])
        with open(os.path.splitext(csv_path)[0] + ".txt", "w") as f:
            f.write(text)
        log(f"wrote {csv_path} and {os.path.splitext(csv_path)[0]}.txt")


def parse_args(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(
        description="Benchmark overpass against kernel overlayfs and fuse-overlayfs.",
        epilog=f"groups: {', '.join(GROUPS)}; workloads: "
        + ", ".join(w.name for w in ALL_WORKLOADS))
    p.add_argument("--only", metavar="WORKLOAD[,...]",
                   help="run only these workloads or groups (default: all)")
    p.add_argument("--systems", default="overpass,kernel,fuse-overlayfs",
                   help="systems to compare (default: %(default)s); overpass-off "
                        "is overpass with restart=off, to measure what restart costs")
    p.add_argument("--overpass", default=os.path.join(here, "..", "_build-bench", "src", "overpass"),
                   help="the overpass binary (default: _build-bench/src/overpass)")
    p.add_argument("--reps", type=int, default=3, help="repetitions per workload (default 3)")
    p.add_argument("--rerun", type=int, default=2, metavar="N",
                   help="run an undecided row --reps more times, up to N times (default 2)")
    p.add_argument("--warmup", type=int, default=1, metavar="N",
                   help="untimed runs of each system before a data, namespace or rootless "
                        "workload's repetitions (default 1)")
    p.add_argument("--baseline", metavar="CSV",
                   help="a previous run's CSV: judge overpass's data, rootless data and memory"
                   " rows against its overpass values too")
    p.add_argument("--mem-reps", type=int, default=1,
                   help="repetitions of the memory walk (default 1)")
    p.add_argument("--small", action="store_true", help="everything ~100x smaller, to try it out")
    p.add_argument("--workdir", default="/var/tmp/overpass-bench",
                   help="layers (cached), uppers, mounts, logs; on a disk (default %(default)s)")
    p.add_argument("--csv", help="CSV output (default WORKDIR/bench.csv; the table goes next to it"
                   " as .txt)")
    p.add_argument("--fuse-uring", choices=("on", "off", "keep"), default="keep",
                   help="set the kernel's fuse.enable_uring for the run, put back at exit"
                   " (default: keep it as it is)")
    p.add_argument("--worker", nargs=2, metavar=("NAME", "CTX"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.reps < 1 or a.mem_reps < 1 or a.rerun < 0 or a.warmup < 0:
        p.error("--reps and --mem-reps must be >= 1, --rerun and --warmup >= 0")
    return a


def main(argv):
    args = parse_args(argv)
    if args.worker:
        worker_main(*args.worker)
        return 0
    if os.geteuid() != 0:
        die("run as root: it mounts, and drops the page cache (contrib/bench.sh uses sudo)")
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    atexit.register(cleanup)
    try:
        set_uring(args.fuse_uring)
        Bench(args).main()
    finally:
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
