// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What the kernel gave: the FUSE protocol minor and the flags of its INIT
 * request, kept once it is read (by the supervisor, or by the request loop
 * with restart=off), said in the mount's first log line and shown by
 * --stats as kernel.*.  The flags are the kernel's offer, whatever overpass
 * then takes of it: passthrough.*, restart.* and io_uring.offered say
 * what it took, and why not.
 */
#include "config.h"

#include "overlay.h"

#include <linux/fuse.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

/* Keep the protocol minor and the flags of the INIT request @init (@len
 * bytes, header included). */
void ovl_kernel_init(struct ovl_fs *fs, const void *init, size_t len)
{
	const size_t at = sizeof(struct fuse_in_header);
	struct fuse_init_in in = { 0 };

	if (len <= at)
		return;
	memcpy(&in, (const char *)init + at,
	       len - at < sizeof(in) ? len - at : sizeof(in));
	fs->kernel_minor = in.minor;
	fs->kernel_flags = in.flags;
	if (in.flags & OVL_INIT_EXT)
		fs->kernel_flags |= (uint64_t)in.flags2 << 32;
}

bool ovl_kernel_has(const struct ovl_fs *fs, uint64_t flag)
{
	return (fs->kernel_flags & flag) != 0;
}

static void say_passthrough(const struct ovl_fs *fs, char *out, size_t n)
{
	if (!ovl_kernel_has(fs, OVL_INIT_PASSTHROUGH))
		snprintf(out, n, "no passthrough (data through the daemon)");
	else if (fs->pt_reason != OVL_PT_OK)
		snprintf(out, n, "passthrough (unused: %s; data through the daemon)",
			 ovl_pt_reason_name(fs->pt_reason));
	else
		snprintf(out, n, "passthrough");
}

static const char *say_resend(const struct ovl_fs *fs)
{
	if (!ovl_kernel_has(fs, OVL_INIT_HAS_RESEND))
		return "no resend (restart off)";
	if (fs->restart_on)
		return "resend (restart on)";
	if (fs->restart_reason == OVL_RR_IO_URING)
		return "resend (restart off: io_uring)";
	return "resend (restart off: restart=off)";
}

/* Why FUSE over io_uring, offered, is not used; NULL when it is. */
static const char *uring_unused(const struct ovl_fs *fs)
{
#ifdef HAVE_LIBURING
	if (fs->p->restart == OVL_RESTART_ON) /* it turns io_uring off */
		return "restart=on";
	if (!fs->p->io_uring)
		return "io_uring=off";
	if (!fs->p->threaded)
		return "threaded=0";
	return NULL;
#else
	(void)fs;
	return "built without liburing";
#endif
}

static void say_uring(const struct ovl_fs *fs, char *out, size_t n)
{
	const char *why = uring_unused(fs);

	if (!ovl_kernel_has(fs, OVL_INIT_OVER_IO_URING))
		/* 7.42 (6.14) has it, offered only with fuse.enable_uring */
		snprintf(out, n, "no io_uring (%srequests through /dev/fuse)",
			 fs->kernel_minor >= 42 ? "fuse.enable_uring off: " : "");
	else if (why)
		snprintf(out, n, "io_uring (unused: %s; requests through /dev/fuse)",
			 why);
	else
		snprintf(out, n, "io_uring");
}

/*
 * The mount's first log line, once INIT is read and restart decided:
 * the kernel, what its INIT offers, and what overpass does instead of
 * what it does not offer or overpass does not use, as
 *
 *   kernel 6.1.0-50-amd64 (FUSE 7.38): no passthrough (data through the
 *   daemon), no resend (restart off), no io_uring (requests through
 *   /dev/fuse), no idmap
 *
 * overpass never allows idmapped mounts of itself (FUSE_ALLOW_IDMAP):
 * "idmap (not used)" where the kernel would.
 */
void ovl_kernel_say(struct ovl_fs *fs)
{
	char pt[96], ur[96];
	struct utsname u;

	if (uname(&u) < 0)
		strcpy(u.release, "?");
	say_passthrough(fs, pt, sizeof(pt));
	say_uring(fs, ur, sizeof(ur));
	ovl_info("kernel %s (FUSE 7.%u): %s, %s, %s, %s", u.release,
		 fs->kernel_minor, pt, say_resend(fs), ur,
		 ovl_kernel_has(fs, OVL_INIT_ALLOW_IDMAP) ? "idmap (not used)" :
							    "no idmap");
}
