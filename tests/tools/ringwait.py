#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""ringwait.py FILE N: N processes, all on CPU 0, wait in flock(LOCK_EX)
for a holder on CPU 0, which then unlocks.  Over FUSE io_uring every wait
holds one of CPU 0's ring entries: overpass gives the queue another for
each (src/uring.c), so the unlock gets through.  Prints how many waits
failed and with what; a stall is the caller's timeout."""
import fcntl, os, sys, time
p = sys.argv[1]; n = int(sys.argv[2])
os.sched_setaffinity(0, {0})
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
kids = []
for i in range(n):
    pid = os.fork()
    if pid == 0:
        os.sched_setaffinity(0, {0})
        f = os.open(p, os.O_RDWR)
        try:
            fcntl.flock(f, fcntl.LOCK_EX)
            fcntl.flock(f, fcntl.LOCK_UN)
            os._exit(0)
        except OSError as e:
            print("child", os.strerror(e.errno), flush=True); os._exit(1)
    kids.append(pid)
time.sleep(1)
t = time.time()
fcntl.flock(fd, fcntl.LOCK_UN)
print("unlocked after", round(time.time() - t, 2), flush=True)
bad = sum(os.waitstatus_to_exitcode(os.waitpid(k, 0)[1]) != 0 for k in kids)
print("children failed", bad, "total", round(time.time() - t, 2))
