// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Statistics: what the kernel offered, requests per opcode, passthrough
 * opens, fallbacks and why.
 * Read while mounted through the virtual xattr user.overpass.stats of the
 * mount root (overpass --stats MNT), and written at exit.
 */
#include "config.h"

#include "overlay.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

static const char *const op_names[OVL_OP_NR] = {
	[OVL_OP_LOOKUP] = "LOOKUP", [OVL_OP_FORGET] = "FORGET",
	[OVL_OP_GETATTR] = "GETATTR", [OVL_OP_SETATTR] = "SETATTR",
	[OVL_OP_READLINK] = "READLINK", [OVL_OP_MKNOD] = "MKNOD",
	[OVL_OP_MKDIR] = "MKDIR", [OVL_OP_UNLINK] = "UNLINK",
	[OVL_OP_RMDIR] = "RMDIR", [OVL_OP_SYMLINK] = "SYMLINK",
	[OVL_OP_RENAME] = "RENAME", [OVL_OP_LINK] = "LINK",
	[OVL_OP_OPEN] = "OPEN", [OVL_OP_READ] = "READ",
	[OVL_OP_WRITE] = "WRITE", [OVL_OP_STATFS] = "STATFS",
	[OVL_OP_RELEASE] = "RELEASE", [OVL_OP_FSYNC] = "FSYNC",
	[OVL_OP_SETXATTR] = "SETXATTR", [OVL_OP_GETXATTR] = "GETXATTR",
	[OVL_OP_LISTXATTR] = "LISTXATTR", [OVL_OP_REMOVEXATTR] = "REMOVEXATTR",
	[OVL_OP_FLUSH] = "FLUSH", [OVL_OP_OPENDIR] = "OPENDIR",
	[OVL_OP_READDIR] = "READDIR", [OVL_OP_RELEASEDIR] = "RELEASEDIR",
	[OVL_OP_FSYNCDIR] = "FSYNCDIR", [OVL_OP_ACCESS] = "ACCESS",
	[OVL_OP_CREATE] = "CREATE", [OVL_OP_READDIRPLUS] = "READDIRPLUS",
	[OVL_OP_FALLOCATE] = "FALLOCATE", [OVL_OP_LSEEK] = "LSEEK",
	[OVL_OP_COPY_FILE_RANGE] = "COPY_FILE_RANGE", [OVL_OP_INIT] = "INIT",
	[OVL_OP_TMPFILE] = "TMPFILE", [OVL_OP_GETLK] = "GETLK",
	[OVL_OP_SETLK] = "SETLK",
};

static const char *const reason_names[OVL_PT_NR] = {
	[OVL_PT_OK] = "ok",
	[OVL_PT_DISABLED_BY_OPTION] = "disabled_by_option",
	[OVL_PT_NO_CAP_SYS_ADMIN] = "no_cap_sys_admin",
	[OVL_PT_KERNEL_UNSUPPORTED] = "kernel_unsupported",
	[OVL_PT_STACKING_DEPTH] = "stacking_depth",
	[OVL_PT_REGISTER_FAILED] = "register_failed",
	[OVL_PT_SMALL_FILE] = "small_file",
	[OVL_PT_INODE_CACHED] = "inode_cached",
};

static const char *const restart_reasons[] = {
	[OVL_RR_OPTION] = "option",
	[OVL_RR_AUTO] = "auto",
	[OVL_RR_NO_RESEND] = "kernel_no_resend",
	[OVL_RR_IO_URING] = "io_uring",
};

const char *ovl_pt_reason_name(enum ovl_pt_reason r)
{
	return r < OVL_PT_NR ? reason_names[r] : "unknown";
}

void ovl_stats_fallback(struct ovl_fs *fs, enum ovl_pt_reason why)
{
	atomic_fetch_add(&fs->stats.fb_opens, 1);
	atomic_fetch_add(&fs->stats.fb_reason[why], 1);
}

/* Note whether @req came through io_uring (the report's "transport"); the
 * root's GETATTR, which the start-up check and most tools send, and the
 * statistics request itself call this. */
void ovl_stats_transport(struct ovl_fs *fs, fuse_req_t req)
{
	(void)req;
	if (!atomic_load_explicit(&fs->uring_seen, memory_order_relaxed) &&
	    ovl_uring_current())
		atomic_store(&fs->uring_seen, true);
}

static void put_count(FILE *f, const char *key, atomic_uint_fast64_t *n)
{
	fprintf(f, "%s %llu\n", key, (unsigned long long)atomic_load(n));
}

/* What the kernel's INIT offered (kernel.c), 0 or 1 each. */
static void put_kernel(FILE *f, const struct ovl_fs *fs)
{
	struct utsname u;

	fprintf(f, "kernel.release %s\n", uname(&u) == 0 ? u.release : "?");
	fprintf(f, "kernel.fuse_minor %u\n", fs->kernel_minor);
	fprintf(f, "kernel.passthrough %d\n",
		ovl_kernel_has(fs, OVL_INIT_PASSTHROUGH));
	fprintf(f, "kernel.resend %d\n", ovl_kernel_has(fs, OVL_INIT_HAS_RESEND));
	fprintf(f, "kernel.io_uring %d\n",
		ovl_kernel_has(fs, OVL_INIT_OVER_IO_URING));
	fprintf(f, "kernel.idmap %d\n", ovl_kernel_has(fs, OVL_INIT_ALLOW_IDMAP));
}

/* The report as text, "key value" per line; malloc'd, NULL on ENOMEM. */
char *ovl_stats_format(struct ovl_fs *fs)
{
	struct ovl_stats *s = &fs->stats;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	for (int i = 0; i < OVL_OP_NR; i++) {
		uint64_t n = atomic_load(&s->op[i]);

		if (n || i == OVL_OP_READ || i == OVL_OP_WRITE)
			fprintf(f, "requests.%s %llu\n", op_names[i],
				(unsigned long long)n);
	}
	put_kernel(f, fs);
	fprintf(f, "passthrough.active %d\n", fs->passthrough ? 1 : 0);
	fprintf(f, "passthrough.reason %s\n", ovl_pt_reason_name(fs->pt_reason));
	fprintf(f, "writeback.active %d\n", fs->writeback_cache ? 1 : 0);
	put_count(f, "passthrough.opens", &s->pt_opens);
	put_count(f, "passthrough.backing_ids", &s->pt_ids);
	put_count(f, "fallback.opens", &s->fb_opens);
	put_count(f, "fallback.prefills", &s->prefills);
	for (int r = 1; r < OVL_PT_NR; r++) {
		uint64_t n = atomic_load(&s->fb_reason[r]);

		if (n)
			fprintf(f, "fallback.%s %llu\n", reason_names[r],
				(unsigned long long)n);
	}
	fprintf(f, "transport %s\n",
		atomic_load(&fs->uring_seen) ? "io_uring" : "dev_fuse");
	fprintf(f, "io_uring.offered %d\n",
		ovl_kernel_has(fs, OVL_INIT_OVER_IO_URING) ? 1 : 0);
	put_count(f, "copy_ups", &s->copy_ups);
	put_count(f, "reclaimed", &s->reclaimed);
	put_count(f, "inodes", &s->inodes);
	fprintf(f, "restart.mode %s\n", fs->restart_on ? "on" : "off");
	fprintf(f, "restart.reason %s\n", restart_reasons[fs->restart_reason]);
	if (fs->sv) {
		fprintf(f, "restart.supervisor_pid %d\n", (int)fs->sv->supervisor_pid);
		fprintf(f, "restart.worker_pid %d\n", (int)getpid());
		fprintf(f, "restart.generation %u\n", atomic_load(&fs->sv->generation));
		fprintf(f, "restart.restarts %u\n", atomic_load(&fs->sv->restarts));
		fprintf(f, "restart.last_cause %s\n",
			fs->sv->last_cause[0] ? fs->sv->last_cause : "-");
		put_count(f, "restart.carried_requests", &s->carried);
		put_count(f, "restart.stale_requests", &s->stale);
		put_count(f, "restart.once_answered", &s->once);
		put_count(f, "restart.backing_ids_closed", &s->backing_closed);
	}
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

int ovl_stats_write_file(struct ovl_fs *fs, const char *path)
{
	char *text = ovl_stats_format(fs);
	int fd, err = 0;
	size_t len;

	if (!text)
		return -ENOMEM;
	len = strlen(text);
	/* never through a symlink planted at the path, nor blocking on a fifo */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK |
			O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len)
		err = -errno;
	if (fd >= 0)
		close(fd);
	free(text);
	return err;
}
