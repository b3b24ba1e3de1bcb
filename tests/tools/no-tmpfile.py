#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""no-tmpfile.py CMD [ARGS...]: run CMD where openat() with O_TMPFILE fails
with EOPNOTSUPP, as on a filesystem without tmpfile (overlayfs before Linux
6.6, a FUSE server without it), through a seccomp filter that CMD and its
children inherit.  Other calls are untouched.  x86-64 only: elsewhere the
filter lets everything through, and a test checking that O_TMPFILE fails
under it skips.
"""
import ctypes
import os
import struct
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
AUDIT_ARCH_X86_64 = 0xC000003E
NR_OPENAT = 257
O_TMPFILE_BIT = 0o20000000  # __O_TMPFILE, without O_DIRECTORY
EOPNOTSUPP = 95
LD_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
JSET = 0x45  # BPF_JMP | BPF_JSET | BPF_K
RET = 0x06  # BPF_RET | BPF_K
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000

# struct seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8 i (low word
# first on x86-64)
PROG = [
    (LD_ABS, 0, 0, 4),
    (JEQ, 0, 5, AUDIT_ARCH_X86_64),
    (LD_ABS, 0, 0, 0),
    (JEQ, 0, 3, NR_OPENAT),
    (LD_ABS, 0, 0, 16 + 8 * 2),
    (JSET, 0, 1, O_TMPFILE_BIT),
    (RET, 0, 0, RET_ERRNO | EOPNOTSUPP),
    (RET, 0, 0, RET_ALLOW),
]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    code = b"".join(struct.pack("HBBI", *insn) for insn in PROG)
    buf = ctypes.create_string_buffer(code)
    # struct sock_fprog: unsigned short len, then a pointer (aligned)
    fprog = struct.pack("HxxxxxxP", len(PROG), ctypes.addressof(buf))
    fbuf = ctypes.create_string_buffer(fprog)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
            libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER,
                       ctypes.addressof(fbuf), 0, 0) != 0:
        e = ctypes.get_errno()
        sys.exit(f"no-tmpfile.py: seccomp: {os.strerror(e)}")
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
