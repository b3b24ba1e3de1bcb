// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Namespace changes: create, mkdir, mknod, symlink, unlink, rmdir.
 *
 * The parent is copied up first.  A new object is built in workdir (owner,
 * mode, and for a directory over a whiteout the opaque marker) and then
 * renamed or linked into place, so it appears whole or not at all.  A name
 * that a lower layer still holds is removed by putting a whiteout (char
 * device 0/0) in its place with one rename; on an upper that refuses those
 * (overlayfs), a ".wh.NAME" file beside it hides the lower name instead.
 */
#include "config.h"

#include "overlay.h"

#include <dirent.h>
#include <errno.h>
#include <linux/fuse.h>
#include <linux/limits.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

/* What the upper parent holds at a name. */
enum upper_state {
	UPPER_NONE,
	UPPER_WHITEOUT,
	UPPER_ENTRY,
};

static int upper_state(int updir, const char *name, enum upper_state *out,
		       struct stat *st)
{
	if (fstatat(updir, name, st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT)
			return -errno;
		*out = UPPER_NONE;
		return 0;
	}
	*out = ovl_is_whiteout_st(st) ? UPPER_WHITEOUT : UPPER_ENTRY;
	return 0;
}

/* true when a lower layer of @dir has anything (even hidden) at @name. */
static bool lower_has_name(struct ovl_inode *dir, const char *name)
{
	struct stat st;

	for (int i = 1; i < dir->dirs->n; i++)
		if (fstatat(dir->dirs->d[i].fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    !ovl_is_whiteout_st(&st))
			return true;
	return false;
}

/* ".wh.NAME", the AUFS whiteout of @name, in @buf (NAME_MAX + 1 bytes). */
static int aufs_name(const char *name, char *buf, size_t size)
{
	if ((size_t)snprintf(buf, size, OVL_AUFS_WH "%s", name) >= size)
		return -ENAMETOOLONG;
	return 0;
}

/* An empty AUFS marker file @wh in @dirfd, unless one is there. */
static int aufs_marker_make(int dirfd, const char *wh)
{
	struct stat st;
	int fd, err;

	fd = openat(dirfd, wh, O_CREAT | O_WRONLY | O_NOFOLLOW | O_NONBLOCK |
		    O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	err = -errno;
	return fstatat(dirfd, wh, &st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : err;
}

/*
 * Hide the lower layers' @name with a ".wh.NAME" file in @updir, as
 * fuse-overlayfs does where whiteout devices are refused.  It hides only
 * what is below the upper layer, so it is made before an upper entry of
 * the same name goes.
 */
static int aufs_whiteout_make(int updir, const char *name)
{
	char wh[NAME_MAX + 1];
	int err = aufs_name(name, wh, sizeof(wh));

	return err ? err : aufs_marker_make(updir, wh);
}

/* A name made in @updir replaces its ".wh.NAME" whiteout there, if any. */
static void aufs_whiteout_drop(int updir, const char *name)
{
	char wh[NAME_MAX + 1];

	if (aufs_name(name, wh, sizeof(wh)) == 0 && unlinkat(updir, wh, 0) < 0 &&
	    errno != ENOENT)
		ovl_log("cannot remove whiteout %s: %s", wh, strerror(errno));
}

/* Owner of a new object: the caller, or the parent's group under setgid;
 * ids as they go on disk (uidmapping=, gidmapping=). */
static void new_owner(fuse_req_t req, const struct stat *pst, uid_t *uid,
		      gid_t *gid)
{
	const struct ovl_params *p = ovl_fs_of(req)->p;
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	*uid = ovl_idmap_apply(p->uidmap, p->nuidmap, ctx->uid, true);
	*gid = (pst->st_mode & S_ISGID) ? pst->st_gid :
		ovl_idmap_apply(p->gidmap, p->ngidmap, ctx->gid, true);
}

/* Give a new object its owner.  With a squash option a chown the daemon
 * may not do is skipped, as fuse-overlayfs does. */
static int set_owner(int fd, fuse_req_t req, const struct stat *pst)
{
	const struct ovl_params *p = ovl_fs_of(req)->p;
	struct stat st;
	uid_t uid;
	gid_t gid;

	new_owner(req, pst, &uid, &gid);
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	/* xattr_permissions: the owner goes in the override xattr */
	if (ovl_fs_of(req)->upper->override &&
	    (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
		return ovl_override_set(ovl_fs_of(req), fd, uid, gid, st.st_mode);
	if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 &&
	    !ovl_squashing(p))
		return -errno;
	return 0;
}

/* ACLs a new object gets from its parent's default ACL. */
struct ovl_new_acl {
	char *access;		/* system.posix_acl_access value, or NULL */
	ssize_t access_len;
	char *dflt;		/* system.posix_acl_default (directories) */
	ssize_t dflt_len;
	bool inherited;		/* the parent has a default ACL */
};

static void new_acl_free(struct ovl_new_acl *a)
{
	free(a->access);
	free(a->dflt);
}

/*
 * The permissions of a new object, as the kernel gives them: the caller's
 * umask applies unless the parent has a default ACL, which then masks the
 * mode and becomes the object's own ACL (the mode arrives unmasked:
 * FUSE_CAP_DONT_MASK).
 */
static int new_mode(fuse_req_t req, int updir, mode_t *mode,
		    struct ovl_new_acl *a)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	ssize_t n = -ENODATA;
	int r;

	memset(a, 0, sizeof(*a));
	if (!fs->p->noacl && !S_ISLNK(*mode)) {
		char *v = malloc(XATTR_SIZE_MAX);

		if (!v)
			return -ENOMEM;
		n = ovl_fgetxattr(updir, "system.posix_acl_default", v,
				  XATTR_SIZE_MAX);
		if (n > 0 && S_ISDIR(*mode)) {
			a->dflt = malloc(n);
			if (!a->dflt) {
				free(v);
				return -ENOMEM;
			}
			memcpy(a->dflt, v, n);
			a->dflt_len = n;
		}
		a->inherited = n > 0;
		r = n > 0 ? ovl_acl_create_masq(v, n, mode) : 0;
		if (r == 1 && (S_ISREG(*mode) || S_ISDIR(*mode))) {
			a->access = v;
			a->access_len = n;
		} else {
			free(v);
		}
		if (r < 0) {
			new_acl_free(a);
			return r;
		}
	}
	if (n <= 0 && !S_ISLNK(*mode))
		*mode &= ~(mode_t)fuse_req_ctx(req)->umask;
	return 0;
}

/* Put the inherited ACLs on @fd (O_PATH) of a new file or directory. */
static int set_new_acl(int fd, mode_t mode, const struct ovl_new_acl *a)
{
	int rfd, err = 0;

	if (!a->access && !a->dflt)
		return 0;
	rfd = ovl_reopen(fd, O_RDONLY | (S_ISDIR(mode) ? O_DIRECTORY : 0));
	if (rfd < 0)
		return rfd;
	if (a->access && fsetxattr(rfd, "system.posix_acl_access", a->access,
				   a->access_len, 0) < 0)
		err = -errno;
	if (!err && a->dflt && fsetxattr(rfd, "system.posix_acl_default",
					 a->dflt, a->dflt_len, 0) < 0)
		err = -errno;
	close(rfd);
	return err;
}

/* What to make. */
struct ovl_new {
	mode_t mode;		/* type and permissions */
	dev_t rdev;		/* devices */
	const char *link;	/* symlink target */
};

/* Make @n at @name in @dirfd, failing with EEXIST if anything is there. */
static int make_at(int dirfd, const char *name, const struct ovl_new *n)
{
	int err, fd;

	switch (n->mode & S_IFMT) {
	case S_IFDIR:
		err = mkdirat(dirfd, name, n->mode & 07777);
		break;
	case S_IFLNK:
		err = symlinkat(n->link, dirfd, name);
		break;
	case S_IFREG:
		fd = openat(dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC,
			    n->mode & 07777);
		err = fd < 0 ? -1 : close(fd);
		break;
	default:
		err = mknodat(dirfd, name, n->mode, n->rdev);
		break;
	}
	return err < 0 ? -errno : 0;
}

static void work_remove(struct ovl_fs *fs, const char *tmp)
{
	if (tmp[0] && unlinkat(fs->work_fd, tmp, 0) < 0 && errno == EISDIR)
		unlinkat(fs->work_fd, tmp, AT_REMOVEDIR);
}

/* Make @n in workdir under @tmp; returns an O_PATH fd of it. */
static int make_in_work(struct ovl_fs *fs, const struct ovl_new *n, char *tmp,
			size_t tmplen)
{
	int err, fd;

	ovl_work_name(fs, tmp, tmplen);
	err = make_at(fs->work_fd, tmp, n);
	if (err < 0) {
		tmp[0] = '\0';
		return err;
	}
	fd = openat(fs->work_fd, tmp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		work_remove(fs, tmp);
		tmp[0] = '\0';
		return err;
	}
	return fd;
}

/*
 * Whether a new object made by the daemon in @pst (the upper parent) is
 * already as set_owner() would leave it: owned by the caller's ids on
 * disk, which are the daemon's own, no setgid parent, no override xattr.
 */
static bool owner_is_ours(fuse_req_t req, const struct stat *pst)
{
	uid_t uid;
	gid_t gid;

	if (ovl_fs_of(req)->upper->override || (pst->st_mode & S_ISGID))
		return false;
	new_owner(req, pst, &uid, &gid);
	return uid == geteuid() && gid == getegid();
}


/* Mark a directory opaque: overlay.opaque=y, or on an upper without
 * xattrs a ".wh..wh..opq" entry in it (AUFS, as fuse-overlayfs). */
static int set_opaque(struct ovl_fs *fs, int pathfd)
{
	int fd = ovl_reopen(pathfd, O_RDONLY | O_DIRECTORY), err = 0;

	if (fd < 0)
		return fd;
	if (fsetxattr(fd, OVL_XNAME(fs, "overlay.opaque"), "y", 1, 0) < 0) {
		err = -errno;
		if (err == -EOPNOTSUPP || err == -EPERM)
			err = aufs_marker_make(fd, OVL_AUFS_OPQ);
	}
	close(fd);
	return err;
}

/*
 * chattr +a or +i (ovl_protection) holds through the mount: such a file or
 * directory cannot be removed or replaced, nor can an entry of such a
 * directory (the kernel's may_delete()).
 */
static int may_delete(struct ovl_fs *fs, struct ovl_inode *dir,
		      struct ovl_inode *victim)
{
	return ovl_protection(fs, dir) || ovl_protection(fs, victim) ?
		-EPERM : 0;
}

/*
 * A new entry in a directory marked immutable: EEXIST when the name is
 * taken (the kernel looks that up first), else EPERM.
 */
static int may_create(struct ovl_fs *fs, struct ovl_inode *dir,
		      const char *name)
{
	struct ovl_inode *exists;
	int err;

	if (!(ovl_protection(fs, dir) & OVL_PROT_IMMUTABLE))
		return 0;
	err = ovl_lookup_name(fs, dir, name, &exists);
	if (!err) {
		ovl_inode_forget(fs, exists, 1);
		return -EEXIST;
	}
	return err == -ENOENT ? -EPERM : err;
}

/*
 * restart=on: a request sent again after its worker died (journal.c).  The
 * kernel keeps the directories of a create, remove or rename locked until
 * the request is answered, resent or not, so nothing but the dead worker
 * changed their names meanwhile: what the names hold now tells whether it
 * carried the request out.  Each once_*() returns 1 to carry it out, else
 * its outcome.
 */

/* A create, mkdir, mknod, symlink or link of @name: the dead worker
 * recorded the name free; made now, the entry goes in *@out. */
static int once_new(struct ovl_fs *fs, struct ovl_inode *dir,
		    const char *name, struct ovl_inode **out)
{
	const struct ovl_jrec *r = ovl_journal_resent(fs);
	int err;

	if (!r)
		return 1;
	if (r->state == OVL_J_DONE && r->result < 0)
		return (int)r->result;
	err = ovl_lookup_name(fs, dir, name, out);
	if (err == -ENOENT && r->state == OVL_J_INTENT)
		return 1;
	if (!err)
		atomic_fetch_add(&fs->stats.once, 1);
	return err;
}

/* An unlink or rmdir of @name: the dead worker found it there. */
static int once_remove(struct ovl_fs *fs, struct ovl_inode *dir,
		       const char *name)
{
	const struct ovl_jrec *r = ovl_journal_resent(fs);
	struct ovl_inode *now;
	int err;

	if (!r)
		return 1;
	if (r->state == OVL_J_DONE)
		return (int)r->result;
	err = ovl_lookup_name(fs, dir, name, &now);
	if (err == -ENOENT) {
		atomic_fetch_add(&fs->stats.once, 1);
		return 0;
	}
	if (!err)
		ovl_inode_forget(fs, now, 1);
	return 1;
}

/* The st_ino shown of what @name in @dir holds, 0 if nothing. */
static uint64_t name_ino(struct ovl_fs *fs, struct ovl_inode *dir,
			 const char *name)
{
	struct ovl_inode *inode;
	uint64_t ino;

	if (ovl_lookup_name(fs, dir, name, &inode))
		return 0;
	ino = inode->ino;
	ovl_inode_forget(fs, inode, 1);
	return ino;
}

/* A rename: the dead worker recorded what both names held.  Done if the
 * object left the old name for the new one, or if an exchange swapped
 * them. */
static int once_rename(struct ovl_fs *fs, struct ovl_inode *olddir,
		       const char *oldname, struct ovl_inode *newdir,
		       const char *newname, unsigned flags)
{
	const struct ovl_jrec *r = ovl_journal_resent(fs);
	uint64_t at_old, at_new;
	bool done;

	if (!r)
		return 1;
	if (r->state == OVL_J_DONE)
		return (int)r->result;
	at_old = name_ino(fs, olddir, oldname);
	at_new = name_ino(fs, newdir, newname);
	if (flags & RENAME_EXCHANGE)
		done = at_old == r->pre[1] && at_new == r->pre[0];
	else
		done = at_old == 0 && at_new == r->pre[0];
	if (!done)
		return 1;
	atomic_fetch_add(&fs->stats.once, 1);
	return 0;
}

/*
 * Create @name in @dir: EEXIST if the merged view has it; over a whiteout
 * the new object replaces it (a directory then becomes opaque).
 */
static int do_new(fuse_req_t req, struct ovl_inode *dir, const char *name,
		  const struct ovl_new *n, struct ovl_inode **out)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	enum upper_state us;
	struct stat st, pst;
	char tmp[64] = "";
	int updir, fd, err;
	struct ovl_inode *exists;
	struct ovl_new nn;
	struct ovl_new_acl acl;
	bool upper_none;

	if (fs->p->read_only)
		return -EROFS;
	if (ovl_name_reserved(name))
		return -EINVAL;
	err = may_create(fs, dir, name);
	if (!err)
		err = ovl_copy_up(fs, dir, false);
	if (err)
		return err;
	err = ovl_lookup_new(fs, dir, name, &exists, &upper_none);
	if (!err) {
		ovl_inode_forget(fs, exists, 1);
		return -EEXIST;
	}
	if (err != -ENOENT)
		return err;
	updir = dir->dirs->d[0].fd;
	if (fstat(updir, &pst) < 0)
		return -errno;
	/* when the lookup saw nothing there (upper_none), neither look
	 * again nor drop a .wh. file below */
	us = UPPER_NONE;
	err = upper_none ? 0 : upper_state(updir, name, &us, &st);
	if (err)
		return err;
	if (us == UPPER_ENTRY)
		return -EEXIST; /* hidden by nothing, yet not found: a race */
	nn = *n;
	err = new_mode(req, updir, &nn.mode, &acl);
	if (err)
		return err;
	if (S_ISDIR(nn.mode) && (pst.st_mode & S_ISGID))
		nn.mode |= S_ISGID;
	/* nothing to set after making it (owner, ACL, opaque) and nothing to
	 * replace: made in place, complete from the start, as the kernel's
	 * ovl_create_upper() does */
	ovl_journal_intent(fs, FUSE_MKNOD, 0, 0); /* any create */
	if (us == UPPER_NONE && !acl.inherited &&
	    !(S_ISDIR(nn.mode) && dir->dirs->n > 1) && owner_is_ours(req, &pst)) {
		err = make_at(updir, name, &nn);
		ovl_journal_result(fs, err);
		if (err)
			return err;
		if (!upper_none)
			aufs_whiteout_drop(updir, name);
		return ovl_lookup_made(fs, dir, name, out);
	}
	fd = make_in_work(fs, &nn, tmp, sizeof(tmp));
	if (fd < 0) {
		new_acl_free(&acl);
		return fd;
	}
	err = set_owner(fd, req, &pst);
	if (!err)
		err = set_new_acl(fd, nn.mode, &acl);
	new_acl_free(&acl);
	/* as the kernel: a new directory in a merged parent is opaque, so
	 * its lookups never go down the layers */
	if (!err && S_ISDIR(nn.mode) && (us == UPPER_WHITEOUT || dir->dirs->n > 1))
		err = set_opaque(fs, fd);
	/* chown cleared setuid and setgid: set them again */
	if (!err && (nn.mode & (S_ISUID | S_ISGID)) && !S_ISLNK(nn.mode)) {
		char proc[64];

		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		if (chmod(proc, nn.mode & 07777) < 0)
			err = -errno;
	}
	close(fd);
	/* over a whiteout: swap them (a directory cannot be renamed over a
	 * non-directory), then drop the whiteout now in workdir */
	if (!err && renameat2(fs->work_fd, tmp, updir, name,
			      us == UPPER_WHITEOUT ? RENAME_EXCHANGE :
						     RENAME_NOREPLACE) < 0)
		err = -errno;
	ovl_journal_result(fs, err);
	if (err) {
		work_remove(fs, tmp);
		return err;
	}
	if (us == UPPER_WHITEOUT && unlinkat(fs->work_fd, tmp, 0) < 0) {
		ovl_log("cannot remove whiteout %s from workdir: %s", tmp,
			strerror(errno));
	}
	if (!upper_none)
		aufs_whiteout_drop(updir, name);
	return ovl_lookup_made(fs, dir, name, out);
}

static void reply_new(fuse_req_t req, struct ovl_inode *dir, const char *name,
		      const struct ovl_new *n)
{
	struct ovl_inode *inode = NULL;
	int err;

	err = once_new(ovl_fs_of(req), dir, name, &inode);
	if (err == 1)
		err = do_new(req, dir, name, n, &inode);
	ovl_reply_entry(req, inode, err);
}

void ovl_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_new n = { .mode = S_IFDIR | (mode & 07777) };

	ovl_stat_op(fs, OVL_OP_MKDIR);
	reply_new(req, ovl_inode_of(fs, parent), name, &n);
}

void ovl_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
	       mode_t mode, dev_t rdev)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_new n = { .mode = mode, .rdev = rdev };

	ovl_stat_op(fs, OVL_OP_MKNOD);
	if (S_ISCHR(mode) && rdev == makedev(0, 0)) {
		fuse_reply_err(req, EPERM); /* would read back as a whiteout */
		return;
	}
	reply_new(req, ovl_inode_of(fs, parent), name, &n);
}

void ovl_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		 const char *name)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_new n = { .mode = S_IFLNK | 0777, .link = link };

	ovl_stat_op(fs, OVL_OP_SYMLINK);
	reply_new(req, ovl_inode_of(fs, parent), name, &n);
}

void ovl_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		mode_t mode, struct fuse_file_info *fi)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_new n = { .mode = S_IFREG | (mode & 07777) };
	struct fuse_entry_param e;
	struct ovl_inode *inode;
	int err, tries = 0;

	ovl_stat_op(fs, OVL_OP_CREATE);
	err = once_new(fs, ovl_inode_of(fs, parent), name, &inode);
	if (err == 1)
		err = do_new(req, ovl_inode_of(fs, parent), name, &n, &inode);
	/* a file made now: its O_TRUNC empties nothing, and the VFS clears
	 * no setuid of a file the open itself made */
	if (!err)
		fi->kill_suidgid = 0;
	if (err == -EEXIST && !(fi->flags & O_EXCL)) {
		/* a racing creator won: open what is there, as open(2) does */
		err = ovl_lookup_name(fs, ovl_inode_of(fs, parent), name, &inode);
	}
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	/* the entry after the open, which may clear setuid */
	do
		err = ovl_open_inode(fs, req, inode, fi);
	while (ovl_fd_retry_bounded(fs, err, &tries));
	if (!err) {
		err = ovl_fill_entry(fs, inode, &e);
		if (err)
			ovl_release_file(fs, req, fi);
	}
	if (err) {
		ovl_inode_forget(fs, inode, 1);
		fuse_reply_err(req, -err);
		return;
	}
	if (fuse_reply_create(req, &e, fi) == -ENOENT)
		ovl_release_file(fs, req, fi);
}

/* Whether @name in @fd is a whiteout the upper may hold: a char device
 * 0/0, or a .wh. file where the upper refuses those. */
static bool upper_whiteout(int fd, const char *name, unsigned char type)
{
	struct stat st;

	if (!strncmp(name, OVL_AUFS_WH, strlen(OVL_AUFS_WH)))
		return true;
	if (type != DT_CHR && type != DT_UNKNOWN)
		return false;
	return fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       ovl_is_whiteout_st(&st);
}

/*
 * Remove every entry of an upper directory that holds only whiteouts.
 * Anything else found there fails with ENOTEMPTY and is left alone, so
 * a wrong emptiness check can never cost data.
 */
static int clear_whiteouts(int dirfd)
{
	char buf[8192] __attribute__((aligned(8)));
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = 0;
	long n;

	if (fd < 0)
		return -errno;
	while (!err && (n = getdents_raw(fd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n;) {
			struct ovl_linux_dirent64 *de = (void *)(buf + off);

			off += de->d_reclen;
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (!upper_whiteout(fd, de->d_name, de->d_type)) {
				err = -ENOTEMPTY;
				break;
			}
			if (unlinkat(fd, de->d_name, 0) < 0) {
				err = -errno;
				break;
			}
		}
	}
	close(fd);
	return err;
}

/* Remove directory @tmp, moved into workdir with nothing but whiteouts
 * left in it; a failure leaves it there for the next mount to clean. */
static void work_rmdir(struct ovl_fs *fs, const char *tmp)
{
	int dfd = ovl_openat_name(fs->work_fd, tmp, O_RDONLY | O_DIRECTORY);

	if (dfd >= 0) {
		clear_whiteouts(dfd);
		close(dfd);
	}
	if (unlinkat(fs->work_fd, tmp, AT_REMOVEDIR) < 0)
		ovl_log("cannot remove %s from workdir: %s", tmp, strerror(errno));
}

/*
 * Remove @name from @dir: delete the upper entry, or where a lower layer
 * still holds the name, put a whiteout in its place with one rename.
 */
static int remove_entry(struct ovl_fs *fs, struct ovl_inode *dir,
			const char *name, bool is_dir);

/*
 * A name of an indexed file is gone (@fd: its upper inode).  A name that
 * was only lower leaves the upper link count as it was, so the merged count
 * stored beside it drops; with no name left, the index entry goes too.
 */
static void index_unlinked(struct ovl_fs *fs, int fd, bool upper_had)
{
	struct stat st;

	if (fstatat(fd, "", &st, AT_EMPTY_PATH) < 0)
		return;
	if (!upper_had)
		ovl_index_adjust(fs, fd, -1);
	if (fstatat(fd, "", &st, AT_EMPTY_PATH) == 0 && st.st_nlink > 0 &&
	    ovl_index_nlink(fs, fd, &st) == 0)
		ovl_index_cleanup(fs, fd);
}

/*
 * A lower hard link about to lose a name (unlink, or a rename over it)
 * comes up into the index first, as the kernel's does with index=on, so
 * that the merged link count has a place to be kept.  *@victim is looked
 * up again when the copy-up superseded it (it was open through
 * passthrough).
 */
static int index_before_remove(struct ovl_fs *fs, struct ovl_inode *dir,
			       const char *name, struct ovl_inode **victim)
{
	struct stat st;
	int err;

	if (fs->index_fd < 0 || S_ISDIR((*victim)->type) ||
	    ovl_is_upper(fs, *victim))
		return 0;
	if (fstatat((*victim)->fd, "", &st, AT_EMPTY_PATH) < 0)
		return -errno;
	if (!ovl_index_wanted(fs, &st))
		return 0;
	err = ovl_copy_up(fs, *victim, false);
	if (err != -ESTALE)
		return err;
	ovl_inode_forget(fs, *victim, 1);
	*victim = NULL;
	return ovl_lookup_name(fs, dir, name, victim);
}

/*
 * @victim's name went (an unlink, or a rename over it), its lock held:
 * while it is lower only, its copy-up has no name to go to any more.
 */
static void name_gone(struct ovl_fs *fs, struct ovl_inode *victim)
{
	if (ovl_is_upper(fs, victim))
		return;
	victim->removed = true;
	/* another name of it (a lower hard link) is a new inode */
	ovl_inode_unhash(fs, victim);
}

/*
 * remove_entry() of @victim's name, under its lock, which a copy-up of it
 * holds throughout: an open for writing racing with the unlink either
 * copied it up first (the whiteout then replaces the copy, which the open
 * keeps, as an unlinked file) or finds it removed (ESTALE, and the kernel
 * looks the path up again), never a copy put back over the whiteout or
 * the whiteout taken for the copy.
 */
static int remove_locked(struct ovl_fs *fs, struct ovl_inode *dir,
			 const char *name, struct ovl_inode *victim, bool is_dir)
{
	int err;

	pthread_mutex_lock(&victim->lock);
	err = remove_entry(fs, dir, name, is_dir);
	if (!err)
		name_gone(fs, victim);
	pthread_mutex_unlock(&victim->lock);
	return err;
}

static int do_remove(fuse_req_t req, struct ovl_inode *dir, const char *name,
		     bool is_dir)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_inode *victim;
	enum upper_state us = UPPER_NONE;
	struct stat st;
	int err, indexed = -1;
	bool upper_had = false;
	uint64_t ino;

	if (fs->p->read_only)
		return -EROFS;
	err = once_remove(fs, dir, name);
	if (err != 1)
		return err;
	err = ovl_lookup_name(fs, dir, name, &victim);
	if (err)
		return err;
	err = may_delete(fs, dir, victim);
	if (!err && is_dir == S_ISDIR(victim->type))
		err = index_before_remove(fs, dir, name, &victim);
	if (err) {
		if (victim)
			ovl_inode_forget(fs, victim, 1);
		return err;
	}
	if (ovl_is_upper(fs, dir) &&
	    upper_state(dir->dirs->d[0].fd, name, &us, &st) == 0)
		upper_had = us == UPPER_ENTRY;
	if (is_dir != S_ISDIR(victim->type))
		err = is_dir ? -ENOTDIR : -EISDIR;
	if (!err && is_dir)
		err = ovl_dir_is_empty(fs, victim) ? 0 : -ENOTEMPTY;
	if (!err && victim->indexed)
		indexed = dup(victim->fd);
	ino = victim->ino;
	if (!err)
		err = ovl_copy_up(fs, dir, false);
	if (!err) {
		ovl_journal_intent(fs, is_dir ? FUSE_RMDIR : FUSE_UNLINK, ino, 0);
		err = remove_locked(fs, dir, name, victim, is_dir);
		ovl_journal_result(fs, err);
	}
	ovl_inode_forget(fs, victim, 1);
	if (indexed >= 0) {
		if (!err)
			index_unlinked(fs, indexed, upper_had);
		close(indexed);
	}
	return err;
}

/*
 * Remove @name from @updir leaving a ".wh.NAME" whiteout: the whiteout
 * first, then the upper entry if there is one (@had); a directory moves to
 * workdir in one rename and is emptied there.
 */
static int remove_aufs(struct ovl_fs *fs, int updir, const char *name,
		       bool had, bool is_dir)
{
	char tmp[64], wh[NAME_MAX + 1];
	int err = aufs_whiteout_make(updir, name);

	if (err || !had)
		return err;
	if (!is_dir) {
		if (unlinkat(updir, name, 0) < 0)
			err = -errno;
	} else {
		ovl_work_name(fs, tmp, sizeof(tmp));
		if (renameat(updir, name, fs->work_fd, tmp) < 0)
			err = -errno;
		else
			work_rmdir(fs, tmp);
	}
	if (err && aufs_name(name, wh, sizeof(wh)) == 0)
		unlinkat(updir, wh, 0);
	return err;
}

/* Remove @name, which exists in the merged view of @dir (copied up). */
static int remove_entry(struct ovl_fs *fs, struct ovl_inode *dir,
			const char *name, bool is_dir)
{
	enum upper_state us = UPPER_NONE;
	struct stat st;
	char tmp[64] = "";
	int updir, err = 0;
	bool need_whiteout;

	updir = dir->dirs->d[0].fd;
	err = upper_state(updir, name, &us, &st);
	if (err)
		return err;
	need_whiteout = lower_has_name(dir, name);
	if (!need_whiteout) {
		if (us != UPPER_ENTRY)
			return -ENOENT;
		if (is_dir) {
			int dfd = ovl_openat_name(updir, name, O_RDONLY | O_DIRECTORY);

			if (dfd < 0)
				return dfd;
			err = clear_whiteouts(dfd);
			close(dfd);
			if (err)
				return err;
		}
		return unlinkat(updir, name, is_dir ? AT_REMOVEDIR : 0) < 0 ? -errno : 0;
	}
	if (fs->aufs_whiteouts)
		return remove_aufs(fs, updir, name, us == UPPER_ENTRY, is_dir);
	ovl_work_name(fs, tmp, sizeof(tmp));
	if (mknodat(fs->work_fd, tmp, S_IFCHR, makedev(0, 0)) < 0) {
		if (errno == EPERM || errno == EOPNOTSUPP)
			return remove_aufs(fs, updir, name, us == UPPER_ENTRY, is_dir);
		return -errno;
	}
	if (us == UPPER_ENTRY && is_dir) {
		/* swap the directory out, then drop it with its whiteouts */
		if (renameat2(fs->work_fd, tmp, updir, name, RENAME_EXCHANGE) < 0) {
			err = -errno;
		} else {
			work_rmdir(fs, tmp);
			return 0;
		}
	} else if (renameat(fs->work_fd, tmp, updir, name) < 0) {
		err = -errno;
	}
	if (err)
		unlinkat(fs->work_fd, tmp, 0);
	return err;
}

void ovl_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct ovl_fs *fs = ovl_fs_of(req);

	ovl_stat_op(fs, OVL_OP_UNLINK);
	fuse_reply_err(req, -do_remove(req, ovl_inode_of(fs, parent), name, false));
}

void ovl_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct ovl_fs *fs = ovl_fs_of(req);

	ovl_stat_op(fs, OVL_OP_RMDIR);
	fuse_reply_err(req, -do_remove(req, ovl_inode_of(fs, parent), name, true));
}

/* Longest absolute redirect kernel overlayfs writes (its redirect_max). */
#define OVL_REDIRECT_MAX 256

/*
 * The redirect a directory needs before it moves from @olddir: where its
 * lower part is, as kernel redirect_dir writes it (a name when it stays in
 * the same parent, else the absolute path in the layer).  NULL in *out
 * when it has no lower part.  An absolute path longer than the kernel
 * writes gives EXDEV, as the kernel's rename does.
 */
static int dir_redirect(struct ovl_fs *fs, struct ovl_inode *inode,
			bool samedir, char **out)
{
	struct ovl_dirstack *ds = inode->dirs;
	char *cur = NULL;
	int err;

	*out = NULL;
	if (ds->n < 2 || ds->d[0].layer != 0)
		return 0;
	err = ovl_get_redirect(fs, ds->d[0].fd, &cur);
	if (err)
		return err;
	if (cur && (cur[0] == '/' || samedir)) {
		*out = cur; /* already points at its lower part */
		return 0;
	}
	free(cur);
	if (samedir) {
		*out = strdup(inode->name);
		return *out ? 0 : -ENOMEM;
	}
	*out = ovl_layer_relpath(fs, ds->d[1].layer, ds->d[1].fd);
	if (!*out)
		return -EIO;
	if (strlen(*out) > OVL_REDIRECT_MAX) {
		/* as the kernel: mv(1) copies the directory instead */
		free(*out);
		*out = NULL;
		return -EXDEV;
	}
	return 0;
}

static int set_redirect(struct ovl_fs *fs, int dirfd, const char *redirect)
{
	if (fsetxattr(dirfd, OVL_XNAME(fs, "overlay.redirect"), redirect,
		      strlen(redirect), 0) < 0)
		return -errno;
	return 0;
}

static bool pure_upper_dir(const struct ovl_fs *fs, const struct ovl_inode *d)
{
	return S_ISDIR(d->type) && d->dirs->n == 1 && ovl_is_upper(fs, d);
}

/*
 * Whether @d may move: with redirect_dir other than on, a merged or lower
 * directory cannot (its lower part would need a redirect), and rename
 * fails with EXDEV before anything is copied up, as the kernel's
 * ovl_can_move(); mv(1) then copies the directory.
 */
static int may_move(struct ovl_fs *fs, struct ovl_inode *d)
{
	if (!S_ISDIR(d->type) || fs->p->redirect == OVL_REDIRECT_ON)
		return 0;
	return pure_upper_dir(fs, d) ? 0 : -EXDEV;
}

/* Checks of rename(2) on the merged view: 0 or the errno to return. */
static int rename_check(struct ovl_fs *fs, struct ovl_inode *src,
			struct ovl_inode *dst, unsigned flags)
{
	int err;

	if (!dst)
		return (flags & RENAME_EXCHANGE) ? -ENOENT : may_move(fs, src);
	if (src == dst)
		return 1; /* same file: nothing to do */
	if (flags & RENAME_NOREPLACE)
		return -EEXIST;
	if (flags & RENAME_EXCHANGE) {
		err = may_move(fs, src);
		return err ? err : may_move(fs, dst);
	}
	if (S_ISDIR(src->type) && !S_ISDIR(dst->type))
		return -ENOTDIR;
	if (!S_ISDIR(src->type) && S_ISDIR(dst->type))
		return -EISDIR;
	/* the kernel's order: EXDEV before ENOTEMPTY */
	err = may_move(fs, src);
	if (err)
		return err;
	/* a target only in upper is left to rename(2) itself, as the kernel
	 * does, after the source's markers are set (they stay if it fails) */
	if (S_ISDIR(dst->type) && !pure_upper_dir(fs, dst) &&
	    !ovl_dir_is_empty(fs, dst))
		return -ENOTEMPTY;
	return 0;
}

/* Give a directory about to move its redirect (it keeps its lower part). */
static int prepare_dir_move(struct ovl_fs *fs, struct ovl_inode *d, bool samedir)
{
	char *redirect;
	int err;

	err = dir_redirect(fs, d, samedir, &redirect);
	if (err || !redirect)
		return err;
	err = set_redirect(fs, d->dirs->d[0].fd, redirect);
	free(redirect);
	/* an upper that refuses this xattr: as kernel overlayfs without
	 * redirect_dir, EXDEV, and mv(1) copies the directory instead */
	return err == -EOPNOTSUPP ? -EXDEV : err;
}

/*
 * @inode, shown at @name in @dir through the index, gets that name in the
 * upper layer too (before a rename moves it): one more upper link, the
 * same merged count.
 */
static int link_up(struct ovl_fs *fs, struct ovl_inode *dir, const char *name,
		   struct ovl_inode *inode)
{
	enum upper_state us;
	struct stat st;
	char proc[64];
	int updir = dir->dirs->d[0].fd, err;

	if (!inode->indexed || S_ISDIR(inode->type))
		return 0;
	err = upper_state(updir, name, &us, &st);
	if (err || us != UPPER_NONE)
		return err;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", inode->fd);
	if (linkat(AT_FDCWD, proc, updir, name, AT_SYMLINK_FOLLOW) < 0)
		return -errno;
	return ovl_index_adjust(fs, inode->fd, -1);
}

/*
 * Rename leaving a whiteout at the old name: RENAME_WHITEOUT, else (an
 * upper on overlayfs or ramfs refuses the flag) a whiteout made in workdir
 * swapped with the source, which then moves on from workdir, else (mknod
 * refused too) a ".wh.OLDNAME" file and a plain rename.
 */
static int rename_whiteout(struct ovl_fs *fs, int oldfd, const char *oldname,
			   int newfd, const char *newname)
{
	char tmp[64], wh[NAME_MAX + 1];
	int err;

	if (!fs->aufs_whiteouts) {
		if (renameat2(oldfd, oldname, newfd, newname, RENAME_WHITEOUT) == 0)
			return 0;
		if (errno != EINVAL && errno != EPERM && errno != EOPNOTSUPP)
			return -errno;
		ovl_work_name(fs, tmp, sizeof(tmp));
		if (mknodat(fs->work_fd, tmp, S_IFCHR, makedev(0, 0)) == 0) {
			if (renameat2(fs->work_fd, tmp, oldfd, oldname,
				      RENAME_EXCHANGE) < 0) {
				err = -errno;
				unlinkat(fs->work_fd, tmp, 0);
				return err;
			}
			if (renameat(fs->work_fd, tmp, newfd, newname) == 0)
				return 0;
			err = -errno;
			/* put the source back where it was */
			renameat2(fs->work_fd, tmp, oldfd, oldname, RENAME_EXCHANGE);
			unlinkat(fs->work_fd, tmp, 0);
			return err;
		}
		if (errno != EPERM && errno != EOPNOTSUPP)
			return -errno;
	}
	err = aufs_whiteout_make(oldfd, oldname);
	if (err)
		return err;
	if (renameat(oldfd, oldname, newfd, newname) < 0) {
		err = -errno;
		if (aufs_name(oldname, wh, sizeof(wh)) == 0)
			unlinkat(oldfd, wh, 0);
	}
	return err;
}

/*
 * A pure-upper directory moving into a merged directory becomes opaque,
 * as the kernel makes it, so no lower name below can ever show through
 * (whatever layers the upper is later stacked on).
 */
static int opaque_if_merged(struct ovl_fs *fs, struct ovl_inode *d,
			    struct ovl_inode *newparent)
{
	if (!S_ISDIR(d->type) || d->dirs->n != 1 || newparent->dirs->n < 2)
		return 0;
	return set_opaque(fs, d->dirs->d[0].fd);
}

/* An entry with an origin moved into @dir: @dir becomes impure, as the
 * kernel marks it. */
static int impure_if_origin(struct ovl_fs *fs, struct ovl_inode *moved,
			    struct ovl_inode *dir)
{
	int fd = S_ISDIR(moved->type) ? moved->dirs->d[0].fd : moved->fd;
	char b[1];

	/* a merged directory has an origin for the kernel, which records
	 * one on it at lookup when missing */
	if (!(S_ISDIR(moved->type) && moved->dirs->n > 1) &&
	    ovl_fgetxattr(fd, OVL_XNAME(fs, "overlay.origin"), b, 0) < 0)
		return 0;
	return ovl_set_impure(fs, dir->dirs->d[0].fd);
}

/*
 * A rename that failed on disk may still have changed the directories: the
 * upper filesystem's own rename (ext4's with RENAME_WHITEOUT, refused with
 * ENOTEMPTY, sets the source directory's times), whiteouts cleared in the
 * target.  The kernel keeps their attributes after a failed RENAME, and
 * kernel overlayfs shows the new times: drop them (attributes only, no
 * lock of the kernel's taken).
 */
static void rename_failed(struct ovl_fs *fs, struct ovl_inode *olddir,
			  struct ovl_inode *newdir, struct ovl_inode *dst)
{
	if (!fs->se)
		return;
	fuse_lowlevel_notify_inval_inode(fs->se, ovl_nodeid(fs, olddir), -1, 0);
	if (newdir != olddir)
		fuse_lowlevel_notify_inval_inode(fs->se, ovl_nodeid(fs, newdir),
						 -1, 0);
	if (dst && S_ISDIR(dst->type))
		fuse_lowlevel_notify_inval_inode(fs->se, ovl_nodeid(fs, dst), -1, 0);
}

/*
 * The move of a rename that is no exchange: @src's name in @oldfd goes to
 * @newname in @newfd over @dst (NULL if none; @us: what the upper parent
 * holds there), leaving a whiteout where a lower layer has the old name.
 */
static int rename_over(struct ovl_fs *fs, struct ovl_inode *src,
		       struct ovl_inode *dst, enum upper_state us, int oldfd,
		       const char *oldname, int newfd, const char *newname,
		       struct ovl_inode *olddir, struct ovl_inode *newdir)
{
	bool old_needs_wh, new_is_wh;
	int err = 0;

	if (dst && S_ISDIR(dst->type) && !pure_upper_dir(fs, dst) &&
	    us == UPPER_ENTRY) {
		/* the empty merged target may still hold whiteouts */
		int dfd = ovl_openat_name(newfd, newname, O_RDONLY | O_DIRECTORY);

		if (dfd >= 0) {
			err = clear_whiteouts(dfd);
			close(dfd);
		}
		if (err)
			return err;
	}
	new_is_wh = us == UPPER_WHITEOUT;
	old_needs_wh = lower_has_name(olddir, oldname);
	if (new_is_wh && S_ISDIR(src->type)) {
		/* a directory cannot replace a whiteout: swap them */
		if (renameat2(oldfd, oldname, newfd, newname, RENAME_EXCHANGE) < 0)
			err = -errno;
		else if (!old_needs_wh && unlinkat(oldfd, oldname, 0) < 0)
			err = -errno;
	} else if (old_needs_wh) {
		err = rename_whiteout(fs, oldfd, oldname, newfd, newname);
	} else if (renameat(oldfd, oldname, newfd, newname) < 0) {
		err = -errno;
	}
	if (!err) {
		aufs_whiteout_drop(newfd, newname);
		ovl_inode_moved(fs, src, newdir, newname);
		if (dst && dst->indexed)
			index_unlinked(fs, dst->fd, us == UPPER_ENTRY);
	}
	return err;
}

static int do_rename(fuse_req_t req, struct ovl_inode *olddir, const char *oldname,
		     struct ovl_inode *newdir, const char *newname, unsigned flags)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_inode *src = NULL, *dst = NULL;
	bool samedir = olddir == newdir, journaled = false;
	enum upper_state us = UPPER_NONE;
	struct stat st;
	int oldfd, newfd, err;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL; /* RENAME_WHITEOUT is ours to use, not users' */
	if (fs->p->read_only)
		return -EROFS;
	if (ovl_name_reserved(newname))
		return -EINVAL;
	err = once_rename(fs, olddir, oldname, newdir, newname, flags);
	if (err != 1)
		return err;
	err = ovl_lookup_name(fs, olddir, oldname, &src);
	if (err)
		return err;
	err = ovl_lookup_name(fs, newdir, newname, &dst);
	if (err == -ENOENT)
		err = 0, dst = NULL;
	if (!err)
		err = rename_check(fs, src, dst, flags);
	if (!err)
		err = may_delete(fs, olddir, src);
	if (!err && dst)
		err = may_delete(fs, newdir, dst);
	if (!err && !dst)
		err = may_create(fs, newdir, newname);
	if (!err && dst && !(flags & RENAME_EXCHANGE))
		err = index_before_remove(fs, newdir, newname, &dst);
	if (!err)
		err = ovl_copy_up(fs, src, false);
	if (!err && dst && (flags & RENAME_EXCHANGE))
		err = ovl_copy_up(fs, dst, false);
	if (!err)
		err = ovl_copy_up(fs, newdir, false);
	if (!err)
		err = ovl_copy_up(fs, olddir, false);
	if (!err)
		err = link_up(fs, olddir, oldname, src);
	if (!err && dst && (flags & RENAME_EXCHANGE))
		err = link_up(fs, newdir, newname, dst);
	if (!err && S_ISDIR(src->type))
		err = prepare_dir_move(fs, src, samedir);
	if (!err && dst && (flags & RENAME_EXCHANGE) && S_ISDIR(dst->type))
		err = prepare_dir_move(fs, dst, samedir);
	if (err)
		goto out;
	oldfd = olddir->dirs->d[0].fd;
	newfd = newdir->dirs->d[0].fd;
	err = upper_state(newfd, newname, &us, &st);
	if (err)
		goto out;
	err = opaque_if_merged(fs, src, newdir);
	if (!err && dst && (flags & RENAME_EXCHANGE))
		err = opaque_if_merged(fs, dst, olddir);
	/* before the move, as the kernel: a crash never leaves an entry
	 * with an origin in a directory not marked for it */
	if (!err && !samedir)
		err = impure_if_origin(fs, src, newdir);
	if (!err && !samedir && dst && (flags & RENAME_EXCHANGE))
		err = impure_if_origin(fs, dst, olddir);
	if (err)
		goto out;
	/* what both names hold, for a successor (once_rename()) */
	ovl_journal_intent(fs, FUSE_RENAME2, src->ino, dst ? dst->ino : 0);
	journaled = true;
	if (flags & RENAME_EXCHANGE) {
		if (renameat2(oldfd, oldname, newfd, newname, RENAME_EXCHANGE) < 0) {
			err = -errno;
		} else {
			/* each now has the other's name (restart=on's table
			 * and a later copy-up go by them) */
			ovl_inode_moved(fs, src, newdir, newname);
			ovl_inode_moved(fs, dst, olddir, oldname);
		}
		goto out;
	}
	/* the target's name goes under its lock, as in remove_locked() */
	if (dst)
		pthread_mutex_lock(&dst->lock);
	err = rename_over(fs, src, dst, us, oldfd, oldname, newfd, newname,
			  olddir, newdir);
	if (dst) {
		if (!err)
			name_gone(fs, dst);
		pthread_mutex_unlock(&dst->lock);
	}
out:
	if (err == 1)
		err = 0;
	if (journaled)
		ovl_journal_result(fs, err);
	if (err && journaled)
		rename_failed(fs, olddir, newdir, dst);
	ovl_inode_forget(fs, src, 1);
	if (dst)
		ovl_inode_forget(fs, dst, 1);
	return err;
}

void ovl_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct ovl_fs *fs = ovl_fs_of(req);

	ovl_stat_op(fs, OVL_OP_RENAME);
	fuse_reply_err(req, -do_rename(req, ovl_inode_of(fs, parent), name,
				       ovl_inode_of(fs, newparent), newname,
				       flags));
}

/* A hard link: the source is copied up, then linked in the upper layer. */
static int do_link(fuse_req_t req, struct ovl_inode *inode,
		   struct ovl_inode *newdir, const char *newname,
		   struct ovl_inode **out)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	enum upper_state us = UPPER_NONE;
	struct stat st;
	int err, newfd;

	if (fs->p->read_only)
		return -EROFS;
	if (ovl_name_reserved(newname))
		return -EINVAL;
	/* a file marked append-only or immutable gets no new name */
	err = ovl_protection(fs, inode) ? -EPERM : 0;
	if (!err)
		err = may_create(fs, newdir, newname);
	if (!err)
		err = ovl_copy_up(fs, inode, false);
	if (!err)
		err = ovl_copy_up(fs, newdir, false);
	if (err)
		return err;
	newfd = newdir->dirs->d[0].fd;
	err = upper_state(newfd, newname, &us, &st);
	if (err)
		return err;
	if (us == UPPER_ENTRY)
		return -EEXIST;
	ovl_journal_intent(fs, FUSE_LINK, inode->ino, 0);
	if (us == UPPER_WHITEOUT) {
		char tmp[64], proc[64];

		/* link in workdir, then rename over the whiteout */
		ovl_work_name(fs, tmp, sizeof(tmp));
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", inode->fd);
		if (linkat(AT_FDCWD, proc, fs->work_fd, tmp, AT_SYMLINK_FOLLOW) < 0)
			return -errno;
		if (renameat(fs->work_fd, tmp, newfd, newname) < 0) {
			err = -errno;
			unlinkat(fs->work_fd, tmp, 0);
			return err;
		}
	} else {
		char proc[64];

		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", inode->fd);
		if (linkat(AT_FDCWD, proc, newfd, newname, AT_SYMLINK_FOLLOW) < 0)
			return -errno;
	}
	aufs_whiteout_drop(newfd, newname);
	err = impure_if_origin(fs, inode, newdir);
	if (err)
		return err;
	ovl_inode_named(fs, inode, newdir, newname);
	return ovl_lookup_name(fs, newdir, newname, out);
}

void ovl_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
	      const char *newname)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_inode *inode = NULL;
	int err;

	ovl_stat_op(fs, OVL_OP_LINK);
	err = once_new(fs, ovl_inode_of(fs, newparent), newname, &inode);
	if (err == 1)
		err = do_link(req, ovl_inode_of(fs, ino),
			      ovl_inode_of(fs, newparent), newname, &inode);
	ovl_reply_entry(req, inode, err);
}

/*
 * O_TMPFILE: an unnamed file in the parent's upper directory (copied up
 * first), as kernel overlayfs makes it; linkat() can name it later.
 */
static int do_tmpfile(fuse_req_t req, struct ovl_inode *dir, mode_t mode,
		      struct fuse_file_info *fi, struct ovl_inode **out)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_found f = { .layer = 0, .data_fd = -1 };
	struct stat pst;
	char proc[64];
	int fd, err;

	if (fs->p->read_only)
		return -EROFS;
	err = ovl_protection(fs, dir) & OVL_PROT_IMMUTABLE ? -EPERM : 0;
	if (!err)
		err = ovl_copy_up(fs, dir, false);
	if (err)
		return err;
	/* made in its real parent, whose default ACL the kernel applies */
	if (fs->p->noacl || ovl_fgetxattr(dir->dirs->d[0].fd,
					  "system.posix_acl_default", NULL, 0) <= 0)
		mode &= ~(mode_t)fuse_req_ctx(req)->umask;
	fd = openat(dir->dirs->d[0].fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC,
		    mode & 07777);
	if (fd < 0)
		return -errno;
	err = fstat(dir->dirs->d[0].fd, &pst) < 0 ? -errno : 0;
	if (!err)
		err = set_owner(fd, req, &pst);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	f.fd = err ? -1 : open(proc, O_PATH | O_CLOEXEC);
	if (!err && (f.fd < 0 || fstat(f.fd, &f.st) < 0))
		err = -errno;
	close(fd);
	if (err) {
		if (f.fd >= 0)
			close(f.fd);
		return err;
	}
	*out = ovl_inode_get_found(fs, &f, NULL, NULL);
	if (!*out)
		return -ENOMEM;
	fi->flags &= ~(O_TMPFILE | O_CREAT | O_EXCL | O_TRUNC);
	return 0;
}

void ovl_tmpfile(fuse_req_t req, fuse_ino_t parent, mode_t mode,
		 struct fuse_file_info *fi)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct fuse_entry_param e;
	struct ovl_inode *inode = NULL;
	int err, tries = 0;

	ovl_stat_op(fs, OVL_OP_TMPFILE);
	err = do_tmpfile(req, ovl_inode_of(fs, parent), mode, fi, &inode);
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	fi->kill_suidgid = 0; /* made now, as a create's */
	err = ovl_fill_entry(fs, inode, &e);
	if (!err) {
		do
			err = ovl_open_inode(fs, req, inode, fi);
		while (ovl_fd_retry_bounded(fs, err, &tries));
	}
	if (err) {
		ovl_inode_forget(fs, inode, 1);
		fuse_reply_err(req, -err);
		return;
	}
	if (fuse_reply_create(req, &e, fi) == -ENOENT)
		ovl_release_file(fs, req, fi);
}
