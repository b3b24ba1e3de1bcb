// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Extended attributes: read from the topmost real file, with the overlay's
 * private names (trusted.overlay.*, user.overlay.*, our own and
 * fuse-overlayfs's, owner records) hidden and refused; trusted.* names
 * listed only to callers who could read them; the statistics report served
 * as the virtual user.overpass.stats of the mount root, to the mount's
 * owner and root only.
 */
#include "config.h"

#include "overlay.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <linux/limits.h>
#include <sys/xattr.h>

static void reply_value(fuse_req_t req, const char *val, size_t len,
			size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, val, len);
}

/* The statistics tell what every user of the mount did: for root and the
 * user who runs the daemon (the mount's owner) only. */
static void get_stats(fuse_req_t req, struct ovl_fs *fs, size_t size)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	char *text;

	if (ctx->uid != 0 && ctx->uid != geteuid()) {
		fuse_reply_err(req, EACCES);
		return;
	}
	text = ovl_stats_format(fs);

	if (!text) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	reply_value(req, text, strlen(text), size);
	free(text);
}

static bool is_acl(const char *name)
{
	return !strcmp(name, "system.posix_acl_access") ||
	       !strcmp(name, "system.posix_acl_default");
}

#define FCAP_XATTR "security.capability"

/* Ids in an xattr value between the disk and the mount's view: POSIX ACL
 * entries and a file capability's root id (uidmapping=, gidmapping=). */
static int map_value_ids(const struct ovl_params *p, const char *name,
			 void *value, size_t len, bool to_disk)
{
	if (is_acl(name))
		return ovl_acl_map_ids(p, value, len, to_disk);
	if (!strcmp(name, FCAP_XATTR))
		return ovl_fcap_map_rootid(p, value, len, to_disk);
	return 0;
}

/*
 * The kernel asks for security.capability before every write through
 * passthrough (file_remove_privs() on the FUSE file), and before a chown
 * or truncate: that it is absent is kept in the inode, so the answer makes
 * no system call.  Only a setxattr through the mount makes it present (a
 * copy-up copies it, a write, chown or truncate only removes it), and
 * do_setxattr() counts each such change before and after it, so a read
 * that raced one is not kept.
 */
static bool fcap_absent(struct ovl_inode *inode, unsigned *seen)
{
	*seen = atomic_load(&inode->fcap);
	return *seen & 1;
}

static void fcap_found_absent(struct ovl_inode *inode, unsigned seen)
{
	atomic_compare_exchange_strong(&inode->fcap, &seen, seen | 1);
}

static void fcap_changing(struct ovl_inode *inode)
{
	unsigned s = atomic_load(&inode->fcap);

	while (!atomic_compare_exchange_weak(&inode->fcap, &s, (s & ~1u) + 2))
		;
}

void ovl_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		  size_t size)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_inode *inode = ovl_inode_of(fs, ino);
	bool fcap = !strcmp(name, FCAP_XATTR);
	unsigned seen = 0;
	char *buf = NULL;
	ssize_t n;

	ovl_stat_op(fs, OVL_OP_GETXATTR);
	if (inode == fs->root && !strcmp(name, OVL_STATS_XATTR)) {
		ovl_stats_transport(fs, req);
		get_stats(req, fs, size);
		return;
	}
	if (fs->p->noxattrs) {
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	if (fs->p->noacl && is_acl(name)) {
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	if (ovl_is_private_xattr(name)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	if (fcap && fcap_absent(inode, &seen)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	if (size && !(buf = malloc(size))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = ovl_fgetxattr(inode->fd, name, buf, size);
	if (fcap && n == -ENODATA)
		fcap_found_absent(inode, seen);
	if (n > 0 && size && map_value_ids(fs->p, name, buf, (size_t)n, false) < 0)
		n = -EIO;
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

/* Its effective capabilities hold CAP_SYS_ADMIN ("CapEff:" of
 * /proc/PID/status). */
static bool pid_has_cap_sys_admin(pid_t pid)
{
	char path[64], line[256];
	unsigned long long caps = 0;
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "CapEff: %llx", &caps) == 1;
	fclose(f);
	return found && (caps & (1ull << 21)); /* CAP_SYS_ADMIN */
}

/*
 * The caller may see trusted.* names: as the kernel lists them, only to
 * CAP_SYS_ADMIN in the initial user namespace, which is ours whenever a
 * layer shows us trusted.* names at all.
 */
static bool caller_sees_trusted(fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	char path[64];
	struct stat ours, theirs;

	if (ctx->pid <= 0 || !pid_has_cap_sys_admin(ctx->pid))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)ctx->pid);
	return stat("/proc/self/ns/user", &ours) == 0 &&
	       stat(path, &theirs) == 0 && ours.st_ino == theirs.st_ino &&
	       ours.st_dev == theirs.st_dev;
}

/*
 * Remove from a listxattr result, in place, the private names and the
 * trusted.* ones the caller may not see; new length.
 */
static size_t filter_list(fuse_req_t req, char *list, size_t len)
{
	size_t out = 0;
	int trusted_ok = -1; /* not asked yet */

	for (size_t i = 0; i < len;) {
		size_t l = strnlen(list + i, len - i) + 1;
		bool show = !ovl_is_private_xattr(list + i);

		if (show && !strncmp(list + i, "trusted.", 8)) {
			if (trusted_ok < 0)
				trusted_ok = caller_sees_trusted(req);
			show = trusted_ok;
		}
		if (show) {
			memmove(list + out, list + i, l);
			out += l;
		}
		i += l;
	}
	return out;
}

void ovl_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_inode *inode = ovl_inode_of(fs, ino);
	char *buf;
	ssize_t n;

	ovl_stat_op(fs, OVL_OP_LISTXATTR);
	if (fs->p->noxattrs) {
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	/* the full list is needed to filter it, whatever size was asked */
	for (size_t cap = 4096;; cap *= 2) {
		buf = malloc(cap);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		n = ovl_flistxattr(inode->fd, buf, cap);
		if (n != -ERANGE || cap >= XATTR_LIST_MAX * 2)
			break;
		free(buf);
	}
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		reply_value(req, buf, filter_list(req, buf, (size_t)n), size);
	free(buf);
}

/*
 * restart=on, a setxattr with XATTR_CREATE or a removexattr (a plain or
 * XATTR_REPLACE set leaves the same attribute when done twice): whether
 * the name existed goes in the journal, so that the next worker, given
 * the request again, can tell that the dead one did it (the kernel holds
 * the inode locked across the request).  1 to carry it out, else its
 * outcome.
 */
static int once_xattr(struct ovl_fs *fs, struct ovl_inode *inode,
		      const char *name, int flags, bool remove)
{
	const struct ovl_jrec *r;
	bool exists;

	if (!fs->journal || !(remove || (flags & XATTR_CREATE)))
		return 1;
	r = ovl_journal_resent(fs);
	if (r && r->state == OVL_J_DONE)
		return (int)r->result;
	exists = ovl_fgetxattr(inode->fd, name, NULL, 0) >= 0;
	if (r && (r->pre[0] != 0) == remove && exists != remove) {
		atomic_fetch_add(&fs->stats.once, 1);
		return 0;
	}
	ovl_journal_intent(fs, remove ? FUSE_REMOVEXATTR : FUSE_SETXATTR,
			   exists, 0);
	return 1;
}

static int do_setxattr(struct ovl_fs *fs, struct ovl_inode *inode,
		       const char *name, const char *value, size_t size,
		       int flags, bool remove)
{
	char *mapped = NULL;
	int err = 0;

	if (fs->p->noxattrs || (fs->p->noacl && is_acl(name)))
		return -ENOTSUP;
	if (ovl_is_private_xattr(name))
		return -EPERM;
	if (fs->p->read_only)
		return -EROFS;
	if (ovl_protection(fs, inode))
		return -EPERM; /* chattr +a or +i */
	if (remove && !ovl_is_upper(fs, inode)) {
		/* as the kernel: removing a name the lower file lacks fails
		 * with ENODATA before any copy-up */
		ssize_t n = ovl_fgetxattr(inode->fd, name, NULL, 0);

		if (n < 0)
			return (int)n;
	}
	err = ovl_copy_up_meta(fs, inode);
	if (err)
		return err;
	if (!remove && (is_acl(name) || !strcmp(name, FCAP_XATTR)) &&
	    (fs->p->nuidmap || fs->p->ngidmap)) {
		/* the ids in an ACL or a file capability go on disk as the
		 * owner's do */
		mapped = malloc(size ? size : 1);
		if (!mapped)
			return -ENOMEM;
		memcpy(mapped, value, size);
		err = map_value_ids(fs->p, name, mapped, size, true);
		value = mapped;
	}
	/* on the object itself, whatever its type: the upper filesystem
	 * decides, as under kernel overlayfs (user.* only on files and
	 * directories, trusted.* and security.* on symlinks and devices too) */
	if (!err)
		err = once_xattr(fs, inode, name, flags, remove);
	if (err == 1) {
		bool fcap = !strcmp(name, FCAP_XATTR);

		if (fcap)
			fcap_changing(inode);
		err = remove ? ovl_fremovexattr(inode->fd, name) :
			       ovl_fsetxattr(inode->fd, name, value, size, flags);
		if (fcap)
			fcap_changing(inode);
		ovl_journal_result(fs, err);
	}
	if (!err)
		ovl_inode_changed(fs, inode); /* an ACL changes the mode */
	free(mapped);
	return err;
}

void ovl_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		  const char *value, size_t size, int flags)
{
	struct ovl_fs *fs = ovl_fs_of(req);

	ovl_stat_op(fs, OVL_OP_SETXATTR);
	fuse_reply_err(req, -do_setxattr(fs, ovl_inode_of(fs, ino), name, value,
					 size, flags, false));
}

void ovl_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct ovl_fs *fs = ovl_fs_of(req);

	ovl_stat_op(fs, OVL_OP_REMOVEXATTR);
	fuse_reply_err(req, -do_setxattr(fs, ovl_inode_of(fs, ino), name, NULL,
					 0, 0, true));
}
