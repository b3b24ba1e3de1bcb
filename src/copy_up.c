// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copy-up: give a lower inode an upper copy, parents first.  The copy is
 * built in workdir (data, then xattrs, owner, mode, times) and linked or
 * renamed into place in one step, so a crash never leaves a half-copied
 * file visible in the upper layer.  Data is cloned with FICLONE where the
 * filesystem can, else copied with copy_file_range segment by segment
 * (SEEK_DATA/SEEK_HOLE), so holes stay holes.
 */
#include "config.h"

#include "overlay.h"

#include <attr/libattr.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

struct ovl_cu_ctx;
static int set_origin_ino(struct ovl_cu_ctx *c, int dst);

/* One copy-up in flight. */
struct ovl_cu_ctx {
	struct ovl_fs *fs;
	struct ovl_inode *inode;
	struct stat st;		/* the source's attributes */
	int src;		/* the source, opened for reading (regular) */
	int updir;		/* upper parent directory fd */
	const char *name;	/* name in the upper parent */
	char tmp[64];		/* temporary name in workdir, "" if none */
	int tmpfd;		/* the object being built */
	bool skip_data;		/* O_TRUNC: the data would be thrown away */
	bool meta_only;		/* metacopy: metadata now, data when written */
	bool origin;		/* overlay.origin was recorded */
};

/* A fresh name in workdir for an object being built. */
void ovl_work_name(struct ovl_fs *fs, char *buf, size_t size)
{
	static atomic_uint_fast64_t counter;

	snprintf(buf, size, "#ovp.%d.%llu", getpid(),
		 (unsigned long long)atomic_fetch_add(&counter, 1));
}

/*
 * Copy up to @len bytes at @pos from @src to the same offset of @dst:
 * copy_file_range, which shares extents where the filesystem can; between
 * two filesystems it may refuse (EXDEV), and then pread and pwrite do it.
 */
static ssize_t copy_range(int src, int dst, off_t pos, size_t len)
{
	static const size_t chunk = 1 << 20;
	loff_t in = pos, out = pos;
	ssize_t n, w;
	char *buf;

	n = copy_file_range(src, &in, dst, &out, len, 0);
	if (n >= 0)
		return n;
	if (errno != EXDEV && errno != EINVAL && errno != EOPNOTSUPP &&
	    errno != ENOSYS)
		return -errno;
	buf = malloc(chunk);
	if (!buf)
		return -ENOMEM;
	n = pread(src, buf, len < chunk ? len : chunk, pos);
	if (n < 0)
		n = -errno;
	for (ssize_t done = 0; n > 0 && done < n; done += w) {
		w = pwrite(dst, buf + done, (size_t)(n - done), pos + done);
		if (w <= 0) {
			n = w < 0 ? -errno : -EIO;
			break;
		}
	}
	free(buf);
	return n;
}

static int copy_data(struct ovl_cu_ctx *c)
{
	off_t pos = 0, end, size = c->st.st_size;

	if (c->skip_data || size == 0)
		return 0;
	if (ioctl(c->tmpfd, FICLONE, c->src) == 0)
		return 0;
	while (pos < size) {
		pos = lseek(c->src, pos, SEEK_DATA);
		if (pos < 0)
			return errno == ENXIO ? 0 : -errno;
		end = lseek(c->src, pos, SEEK_HOLE);
		if (end < 0)
			return -errno;
		while (pos < end) {
			ssize_t n = copy_range(c->src, c->tmpfd, pos, end - pos);

			if (n < 0)
				return (int)n;
			if (n == 0)
				return -EIO;
			pos += n;
		}
	}
	return 0;
}

/* Every xattr but the overlay's own; POSIX ACLs are copied as their
 * system.posix_acl_* values, before chmod sets the matching mask. */
static int xattr_filter(const char *name, struct error_context *ctx)
{
	/* a recorded owner and mode (xattr_permissions) travels along */
	return !ovl_is_private_xattr(name) || !strcmp(name, OVL_OVERRIDE_USER) ||
	       !strcmp(name, OVL_OVERRIDE_CONTAINERS) ||
	       !strcmp(name, OVL_OVERRIDE_PRIVILEGED);
}

static int chmod_any(int fd, mode_t mode)
{
	char proc[64];

	if (fchmod(fd, mode) == 0)
		return 0;
	if (errno != EBADF)
		return -errno;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return chmod(proc, mode) < 0 ? -errno : 0;
}

/*
 * Data, owner, xattrs and ACLs, then mode and times, in that order: a data
 * write and a chown each clear security.capability, and chown clears
 * setuid (the kernel's own copy-up changes the owner without those side
 * effects).
 */
static int copy_xattrs(struct ovl_cu_ctx *c, int dst)
{
	if (c->src < 0)
		return 0;
	if (attr_copy_fd(NULL, c->src, NULL, dst, xattr_filter, NULL) < 0 &&
	    errno != ENOTSUP)
		return -errno;
	return set_origin_ino(c, dst);
}

/*
 * The copy gets the source's owner.  Under xattr_permissions a file or
 * directory records it in the upper's override xattr instead (a rootless
 * daemon cannot give files away), and with a squash option, or for other
 * types under xattr_permissions, a chown the daemon may not do is skipped:
 * fuse-overlayfs does both.
 */
static int copy_owner(struct ovl_cu_ctx *c, int dst)
{
	const struct ovl_layer *up = c->fs->upper;
	struct stat st = c->st;

	if (up->override && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
		ovl_override_stat(c->fs, c->inode->layer, c->inode->fd, &st);
		return ovl_override_set(c->fs, dst, st.st_uid, st.st_gid,
					st.st_mode);
	}
	if (fchownat(dst, "", st.st_uid, st.st_gid,
		     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 &&
	    !up->override && !ovl_squashing(c->fs->p))
		return -errno;
	return 0;
}

/* chattr +a and +i of the lower file go with the copy as the kernel
 * records them (overlay.protattr): the copy keeps refusing what they
 * forbid. */
static int copy_protattr(struct ovl_cu_ctx *c, int dst)
{
	unsigned prot = ovl_protection(c->fs, c->inode);
	char v[2];
	size_t n = 0;

	if (!prot)
		return 0;
	if (prot & OVL_PROT_APPEND)
		v[n++] = 'a';
	if (prot & OVL_PROT_IMMUTABLE)
		v[n++] = 'i';
	return ovl_fsetxattr(dst, OVL_XNAME(c->fs, "overlay.protattr"), v, n, 0);
}

/* Mode, times and chattr flags, last.  Under xattr_permissions the real
 * mode of a file never keeps setuid or setgid: the override record holds
 * the mode shown. */
static int copy_meta(struct ovl_cu_ctx *c, int dst)
{
	const struct timespec ts[2] = { c->st.st_atim, c->st.st_mtim };
	mode_t mode = c->st.st_mode;
	int err;

	err = copy_protattr(c, dst);
	if (err)
		return err;

	if (c->fs->upper->override)
		mode = ovl_override_real_mode(mode);
	if (!S_ISLNK(mode)) {
		err = chmod_any(dst, mode & 07777);
		if (err)
			return err;
	}
	if (utimensat(dst, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 &&
	    !S_ISLNK(c->st.st_mode))
		return -errno;
	return 0;
}

/* No room for one more xattr on the copy, or none of its namespace on
 * this kind of file (user.* on a symlink or special file: EPERM). */
static bool xattr_refused(int err)
{
	return err == -ENOSPC || err == -EDQUOT || err == -E2BIG ||
	       err == -EPERM || err == -ENOTSUP;
}

/*
 * Record where the copy came from, as kernel overlayfs does: overlay.origin,
 * the origin's file handle in kernel format.  A filesystem that cannot
 * make handles gets none, and, as the kernel's ovl_set_origin_fh(), an
 * upper without xattrs or a file that takes no user.* xattrs (EPERM)
 * goes without; any other failure fails the copy-up, as there.
 * Then overpass.ino, the st_ino shown before the copy-up, so that it
 * survives remount: only where the handle does not carry that number
 * (ovl_fb_ino()), and only if there is room.  The kernel writes nothing
 * more, so a lower file whose xattrs nearly fill the upper's xattr space
 * is copied up as the kernel copies it; without the record, its st_ino
 * after the inode is looked up again is what the origin handle gives, or
 * the copy's own.
 */
static int set_origin_ino(struct ovl_cu_ctx *c, int dst)
{
	unsigned char fb[OVL_FH_MAX];
	size_t len;
	char v[32];
	int n, err;

	if (ovl_origin_fh(c->fs, c->inode->layer, c->inode->fd, fb, &len) == 0) {
		err = ovl_fsetxattr(dst, OVL_XNAME(c->fs, "overlay.origin"), fb,
				    len, 0);
		if (err && err != -ENOTSUP && err != -EPERM)
			return err;
		c->origin = !err;
		if (c->origin && ovl_fb_ino(c->fs, fb, len) == c->inode->ino)
			return 0;
	}
	n = snprintf(v, sizeof(v), "%llu", (unsigned long long)c->inode->ino);
	err = ovl_fsetxattr(dst, OVL_XNAME(c->fs, "overpass.ino"), v, n, 0);
	if (err && xattr_refused(err)) {
		ovl_debug("copy-up of %s: no overpass.ino (%s): its st_ino is kept while it stays looked up",
			  c->name, strerror(-err));
		return 0;
	}
	return err;
}

/*
 * Mark an upper directory "impure", as kernel overlayfs does before it puts
 * an entry with an origin into it: its readdir then knows to look up the
 * origins for d_ino.  @dirfd may be O_PATH.
 */
int ovl_set_impure(struct ovl_fs *fs, int dirfd)
{
	const char *name = OVL_XNAME(fs, "overlay.impure");
	char v;
	int err;

	if (ovl_fgetxattr(dirfd, name, &v, 1) >= 0)
		return 0;
	err = ovl_fsetxattr(dirfd, name, "y", 1, 0);
	return err == -ENOTSUP ? 0 : err;
}

/*
 * A file with more links in its lower layer goes to workdir/index first,
 * named by its origin handle, then is linked to its path: its other names,
 * looked up later, find it there (kernel index=on).  Another name may have
 * indexed it meanwhile; that copy wins and this one is dropped.
 */
static int link_indexed(struct ovl_cu_ctx *c, const char *proc)
{
	char name[2 * OVL_FH_MAX + 1];
	int err, idx;

	err = ovl_index_name(c->fs, c->inode->layer, c->inode->fd, name,
			     sizeof(name));
	if (err)
		return err;
	if (linkat(AT_FDCWD, proc, c->fs->index_fd, name, AT_SYMLINK_FOLLOW) < 0 &&
	    errno != EEXIST)
		return -errno;
	if (linkat(c->fs->index_fd, name, c->updir, c->name, 0) < 0)
		return -errno;
	idx = ovl_openat_name(c->fs->index_fd, name, O_PATH);
	if (idx < 0)
		return idx;
	err = ovl_index_set_nlink(c->fs, idx, (long)c->st.st_nlink);
	close(idx);
	c->inode->indexed = true;
	return err;
}

/*
 * The file a regular copy is built in: unnamed (O_TMPFILE) in workdir, or
 * where the upper refuses that, a fresh name there (@c->tmp), which the
 * copy is renamed from, or removed at the end.
 */
static int open_tmp_regular(struct ovl_cu_ctx *c)
{
	int work = c->fs->work_fd;

	if (!c->fs->no_tmpfile) {
		c->tmpfd = openat(work, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		return c->tmpfd < 0 ? -errno : 0;
	}
	ovl_work_name(c->fs, c->tmp, sizeof(c->tmp));
	c->tmpfd = openat(work, c->tmp,
			  O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (c->tmpfd < 0) {
		c->tmp[0] = '\0';
		return -errno;
	}
	return 0;
}

static int build_regular(struct ovl_cu_ctx *c)
{
	char proc[64];
	int err;

	c->src = ovl_reopen(c->inode->fd, O_RDONLY);
	if (c->src < 0)
		return c->src;
	err = open_tmp_regular(c);
	if (err)
		return err;
	err = c->meta_only ? 0 : copy_data(c);
	if (!err && !c->skip_data && ftruncate(c->tmpfd, c->st.st_size) < 0)
		err = -errno;
	if (!err)
		err = copy_owner(c, c->tmpfd);
	if (!err)
		err = copy_xattrs(c, c->tmpfd);
	if (!err && c->meta_only &&
	    fsetxattr(c->tmpfd, OVL_XNAME(c->fs, "overlay.metacopy"), "", 0, 0) < 0)
		err = -errno;
	/* as the kernel: the data is on disk before the name points at it,
	 * so a crash cannot leave a named file with missing blocks */
	if (!err && c->fs->p->fsync && !c->meta_only && fsync(c->tmpfd) < 0)
		err = -errno;
	if (!err)
		err = copy_meta(c, c->tmpfd);
	if (err)
		return err;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", c->tmpfd);
	if (ovl_index_wanted(c->fs, &c->st))
		return link_indexed(c, proc);
	if (c->tmp[0]) {
		if (renameat2(c->fs->work_fd, c->tmp, c->updir, c->name,
			      RENAME_NOREPLACE) < 0)
			return -errno;
		c->tmp[0] = '\0';
		return 0;
	}
	if (linkat(AT_FDCWD, proc, c->updir, c->name, AT_SYMLINK_FOLLOW) < 0)
		return -errno;
	return 0;
}

/* Directories, symlinks and special files: made under a temporary name in
 * workdir, then renamed into place. */
static int build_other(struct ovl_cu_ctx *c)
{
	int fs_work = c->fs->work_fd, err;
	mode_t type = c->st.st_mode & S_IFMT;

	ovl_work_name(c->fs, c->tmp, sizeof(c->tmp));
	if (type == S_IFDIR) {
		err = mkdirat(fs_work, c->tmp, 0700);
	} else if (type == S_IFLNK) {
		char target[PATH_MAX + 1];
		ssize_t n = readlinkat(c->inode->fd, "", target, PATH_MAX);

		if (n < 0)
			return -errno;
		target[n] = '\0';
		err = symlinkat(target, fs_work, c->tmp);
	} else {
		err = mknodat(fs_work, c->tmp, c->st.st_mode, c->st.st_rdev);
	}
	if (err < 0) {
		c->tmp[0] = '\0';
		return -errno;
	}
	if (type == S_IFDIR)
		c->src = ovl_reopen(c->inode->fd, O_RDONLY | O_DIRECTORY);
	c->tmpfd = openat(fs_work, c->tmp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (c->tmpfd < 0)
		return -errno;
	err = copy_owner(c, c->tmpfd);
	if (err)
		return err;
	if (type == S_IFDIR) {
		/* xattrs, mode and times through an fd that takes fchmod
		 * (the O_PATH one refuses it: EBADF, then a chmod by path) */
		int dfd = ovl_reopen(c->tmpfd, O_RDONLY | O_DIRECTORY);

		if (dfd < 0)
			return dfd;
		err = copy_xattrs(c, dfd);
		if (!err)
			err = copy_meta(c, dfd);
		close(dfd);
	} else {
		/* symlinks and special files record their origin too */
		err = set_origin_ino(c, c->tmpfd);
		if (!err)
			err = copy_meta(c, c->tmpfd);
	}
	if (err)
		return err;
	if (renameat2(fs_work, c->tmp, c->updir, c->name, RENAME_NOREPLACE) < 0)
		return -errno;
	c->tmp[0] = '\0';
	return 0;
}

/*
 * Switch @inode to its new upper file: lock held.  A @superseded inode
 * (its lower file is some open's backing file) takes the upper file too,
 * so every metadata request through its node id acts on the file as it is
 * now, but leaves the table: the next lookup makes a new inode.
 */
static int switch_to_upper(struct ovl_cu_ctx *c, bool superseded)
{
	struct ovl_inode *inode = c->inode;
	struct stat st;
	int fd;

	fd = ovl_openat_name(c->updir, c->name, O_PATH);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -errno;
	}
	if (inode->dirs) {
		struct ovl_dirstack *old = inode->dirs, *ds;
		int dfd = ovl_reopen(fd, O_RDONLY | O_DIRECTORY);

		close(fd);
		if (dfd < 0)
			return dfd;
		ds = malloc(sizeof(*ds) + (old->n + 1) * sizeof(ds->d[0]));
		if (!ds) {
			close(dfd);
			return -ENOMEM;
		}
		ds->n = old->n + 1;
		ds->d[0] = (struct ovl_dirlayer){ .layer = 0, .fd = dfd };
		for (int i = 0; i < old->n; i++) {
			ds->d[i + 1] = old->d[i];
			ds->d[i + 1].fd = dup(old->d[i].fd);
		}
		inode->old_dirs = old;
		inode->origin_fd = inode->fd;
		inode->dirs = ds;
		inode->merged = true;
		inode->fd = dfd;
	} else if (c->meta_only) {
		inode->data_fd = inode->fd; /* the data stays below */
		inode->fd = fd;
	} else {
		inode->origin_fd = inode->fd;
		inode->fd = fd;
	}
	inode->layer = 0;
	/* its locks, and any that come through the new inode, meet */
	ovl_locks_moved(c->fs, inode, st.st_dev, st.st_ino);
	if (superseded) {
		inode->superseded = true;
		ovl_inode_unhash(c->fs, inode);
		return 0;
	}
	ovl_inode_rekey(c->fs, inode, st.st_dev, st.st_ino);
	return 0;
}

/*
 * A copy-up is no change of its parent directory: as the kernel does, the
 * upper parent's atime and mtime are put back once the new name is there
 * (best effort, as the kernel's).
 */
static void restore_parent_times(int updir, const struct stat *before)
{
	struct timespec ts[2] = { before->st_atim, before->st_mtim };

	futimens(updir, ts);
}

static int copy_up_locked(struct ovl_cu_ctx *c)
{
	struct ovl_inode *parent = c->inode->parent;
	struct stat pst;
	int err;

	if (fstatat(c->inode->fd, "", &c->st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	c->updir = parent->dirs->d[0].fd;
	c->name = c->inode->name;
	if (fstat(c->updir, &pst) < 0)
		return -errno;
	if (S_ISREG(c->st.st_mode))
		err = build_regular(c);
	else
		err = build_other(c);
	if (err)
		return err;
	if (c->origin)
		err = ovl_set_impure(c->fs, c->updir);
	restore_parent_times(c->updir, &pst);
	if (err)
		return err;
	atomic_fetch_add(&c->fs->stats.copy_ups, 1);
	/*
	 * The kernel keeps the lower file as this inode's backing file while
	 * it is open through passthrough, and would give it to any new open:
	 * leave this inode to those readers (its metadata follows the upper
	 * copy), and let the next lookup find the upper copy as a new inode.
	 */
	if (c->inode->backing_id && !c->meta_only) {
		err = switch_to_upper(c, true);
		return err ? err : -ESTALE;
	}
	return switch_to_upper(c, false);
}

/*
 * A metacopy file is written to: its data comes up into the upper file in
 * place, and only then does overlay.metacopy go, so a crash leaves either
 * the metacopy or the whole file.  When the lower data is some open's
 * backing file, the kernel would hand it to the new open too: this inode
 * is left to those readers and the next lookup makes a new one.
 */
static int fill_metacopy(struct ovl_cu_ctx *c)
{
	struct ovl_inode *inode = c->inode;
	char cap[64];		/* a vfs_ns_cap_data is 24 bytes */
	ssize_t caplen;
	int err = 0;

	if (fstatat(inode->fd, "", &c->st, AT_EMPTY_PATH) < 0)
		return -errno;
	c->tmpfd = ovl_reopen(inode->fd, O_WRONLY);
	if (c->tmpfd < 0)
		return c->tmpfd;
	/* writing the data clears a file capability: put it back after */
	caplen = fgetxattr(c->tmpfd, "security.capability", cap, sizeof(cap));
	if (!c->skip_data) {
		c->src = ovl_reopen(inode->data_fd, O_RDONLY);
		if (c->src < 0)
			return c->src;
		err = copy_data(c);
		if (!err && ftruncate(c->tmpfd, c->st.st_size) < 0)
			err = -errno;
		if (!err && c->fs->p->fsync && fsync(c->tmpfd) < 0)
			err = -errno;
	}
	if (!err && caplen > 0 &&
	    fsetxattr(c->tmpfd, "security.capability", cap, (size_t)caplen, 0) < 0)
		err = -errno;
	if (!err && fremovexattr(c->tmpfd, OVL_XNAME(c->fs, "overlay.metacopy")) < 0)
		err = -errno;
	if (err)
		return err;
	atomic_fetch_add(&c->fs->stats.copy_ups, 1);
	if (inode->backing_id) {
		/* the lower file stays open (origin_fd) for fds still using it */
		if (inode->origin_fd < 0) {
			inode->origin_fd = inode->data_fd;
			inode->data_fd = -1;
		}
		inode->superseded = true;
		ovl_inode_unhash(c->fs, inode);
		return -ESTALE;
	}
	close(inode->data_fd);
	inode->data_fd = -1;
	return 0;
}

static int copy_up_inode(struct ovl_cu_ctx *c)
{
	if (c->inode->superseded)
		return -ESTALE;
	if (!ovl_is_upper(c->fs, c->inode))
		return c->inode->removed ? -ESTALE : copy_up_locked(c);
	if (c->inode->data_fd >= 0 && !c->meta_only)
		return fill_metacopy(c);
	return 0;
}

/*
 * A copy-up changed what stat shows of @inode (the copy's ctime) and of its
 * parent (ctime): drop the kernel's cached attributes of both, which kernel
 * overlayfs shows at once.  Attributes only (offset -1): no cached page of
 * the file goes, and no lock of the kernel's is taken.
 */
static void inval_attrs(struct ovl_fs *fs, struct ovl_inode *inode)
{
	if (!fs->se)
		return;
	fuse_lowlevel_notify_inval_inode(fs->se, ovl_nodeid(fs, inode), -1, 0);
	if (inode->parent)
		fuse_lowlevel_notify_inval_inode(fs->se, ovl_nodeid(fs, inode->parent),
						 -1, 0);
}

static int copy_up(struct ovl_fs *fs, struct ovl_inode *inode, bool skip_data,
		   bool meta_only)
{
	struct ovl_cu_ctx c = { .fs = fs, .inode = inode, .src = -1,
				.tmpfd = -1, .skip_data = skip_data,
				.meta_only = meta_only };
	int err;

	if (ovl_is_upper(fs, inode) && (inode->data_fd < 0 || meta_only))
		return 0;
	if (!fs->upper || fs->p->read_only)
		return -EROFS;
	if (!inode->parent)
		return -EIO;
	err = ovl_copy_up(fs, inode->parent, false);
	if (err)
		return err;
	pthread_mutex_lock(&inode->lock);
	err = copy_up_inode(&c);
	pthread_mutex_unlock(&inode->lock);
	if (!err || err == -ESTALE)
		inval_attrs(fs, inode);
	if (c.src >= 0)
		close(c.src);
	if (c.tmpfd >= 0)
		close(c.tmpfd);
	if (c.tmp[0]) {
		if (unlinkat(fs->work_fd, c.tmp, 0) < 0 && errno == EISDIR)
			unlinkat(fs->work_fd, c.tmp, AT_REMOVEDIR);
	}
	return err;
}

int ovl_copy_up(struct ovl_fs *fs, struct ovl_inode *inode, bool skip_data)
{
	return copy_up(fs, inode, skip_data, false);
}

/*
 * Before a change of metadata only (chmod, chown, utimes, xattrs): with
 * metacopy=on a regular file comes up without its data, as kernel
 * overlayfs's metacopy does; a file with several links comes up whole, as
 * the kernel's does with index=on.
 */
int ovl_copy_up_meta(struct ovl_fs *fs, struct ovl_inode *inode)
{
	struct stat st;
	bool meta;

	if (ovl_is_upper(fs, inode))
		return 0;
	meta = fs->p->metacopy && S_ISREG(inode->type) &&
	       fstatat(inode->fd, "", &st, AT_EMPTY_PATH) == 0 &&
	       st.st_nlink == 1 && st.st_size > 0;
	return copy_up(fs, inode, false, meta);
}
