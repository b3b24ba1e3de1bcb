#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Sizes of the page-cache folios that hold a file's first pages.

    contrib/folios.py FILE [PAGES]

Maps the first PAGES pages of FILE (default 8192: 32 MiB) read-only,
touches each page, and looks each one up in /proc/self/pagemap and
/proc/kpageflags (root only: without CAP_SYS_ADMIN the kernel hides page
frame numbers).  Prints how many folios of each size, in pages, hold
them.  Used in doc/performance.md to compare the page cache of a FUSE
file with that of the same file on kernel overlayfs: the FUSE page cache
of Linux 6.18 holds 4 KiB folios only, ext4's large ones.
"""
import collections
import ctypes
import os
import struct
import sys

PAGE = os.sysconf("SC_PAGE_SIZE")
KPF_COMPOUND_TAIL = 16
PFN_MASK = (1 << 55) - 1
PM_PRESENT = 1 << 63


def folio_sizes(path, pages):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                          ctypes.c_int, ctypes.c_int, ctypes.c_long]
    fd = os.open(path, os.O_RDONLY)
    try:
        pages = min(pages, os.fstat(fd).st_size // PAGE)
        if pages == 0:
            raise SystemExit(f"{path}: smaller than a page")
        base = libc.mmap(None, pages * PAGE, 1, 1, fd, 0)  # PROT_READ, MAP_SHARED
        if base in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap")
    finally:
        os.close(fd)
    for i in range(pages):
        ctypes.c_char.from_address(base + i * PAGE).value  # fault it in
    sizes = collections.Counter()
    run = 0
    with open("/proc/self/pagemap", "rb") as pm, open("/proc/kpageflags", "rb") as kf:
        for i in range(pages):
            pm.seek(((base // PAGE) + i) * 8)
            entry = struct.unpack("Q", pm.read(8))[0]
            pfn = entry & PFN_MASK
            if not entry & PM_PRESENT or pfn == 0:
                raise SystemExit("page frame numbers hidden: run as root")
            kf.seek(pfn * 8)
            flags = struct.unpack("Q", kf.read(8))[0]
            if flags >> KPF_COMPOUND_TAIL & 1 and run:
                run += 1
                continue
            if run:
                sizes[run] += 1
            run = 1
    sizes[run] += 1
    return pages, sizes


def main():
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__.strip().splitlines()[2].strip())
    pages, sizes = folio_sizes(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 8192)
    print(f"{sys.argv[1]}: {pages} pages in {sum(sizes.values())} folios; "
          + ", ".join(f"{n} of {s} page{'s' if s > 1 else ''}" for s, n in sorted(sizes.items())))


if __name__ == "__main__":
    main()
