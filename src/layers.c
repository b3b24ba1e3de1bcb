// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Layers: open each layer root once as an fd, check upper and workdir,
 * refuse overlapping or duplicate layers, and probe kernel features once.
 *
 * Lower layers are reached through a private read-only clone of their mount
 * (open_tree + mount_setattr) when the kernel lets us make one: nothing done
 * through an fd below it, the kernel's passthrough reopen included, can
 * write to a lower layer.
 */
#include "config.h"

#include "overlay.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/openat2.h>

#ifndef OVERLAYFS_SUPER_MAGIC
#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#endif
#define FUSE_SUPER_MAGIC_ 0x65735546

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif

static int layer_err(const char *what, const char *path, int err)
{
	ovl_log("%s %s: %s", what, path, strerror(-err));
	return err;
}

/* A read-only detached clone of the mount tree at @path, or -errno. */
static int open_ro_clone(const char *path)
{
	int fd, err;

	fd = (int)syscall(SYS_open_tree, AT_FDCWD, path,
			  OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	if (fd < 0)
		return -errno;
	err = ovl_mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE,
				OVL_MOUNT_ATTR_RDONLY, 0);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* true when @inner is @outer or below it (both canonical paths). */
static bool path_within(const char *inner, const char *outer)
{
	size_t n = strlen(outer);

	if (n == 1 && outer[0] == '/')
		return true;
	return !strncmp(inner, outer, n) && (inner[n] == '/' || !inner[n]);
}

/*
 * Read-only clones of the mounts the lower layers live on, one per mount
 * and shared by its layers: container engines keep every layer on one
 * filesystem, and each clone costs a mount at start and an unmount at exit.
 * A clone is of that mount alone, not of mounts below it: kernel overlayfs
 * does not cross into a mount inside a layer either.
 */
struct ovl_clones {
	int n;			/* clones made */
	struct ovl_clone {
		uint64_t mnt_id; /* the mount cloned */
		char *root;	/* canonical path of its root */
		int fd;		/* O_PATH fd of the clone's root */
	} c[];			/* one per lower layer at most */
};

static uint64_t mnt_id_of(const char *path)
{
	struct statx stx;

	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) < 0 ||
	    !(stx.stx_mask & STATX_MNT_ID))
		return 0;
	return stx.stx_mnt_id;
}

/* The root of mount @id holding @canon: the highest ancestor still on it. */
static char *mount_root(const char *canon, uint64_t id)
{
	char *root = strdup(canon), *slash;

	while (root && (slash = strrchr(root, '/'))) {
		char keep = slash[1];

		if (slash == root) { /* the parent is "/" */
			if (mnt_id_of("/") == id)
				root[1] = '\0';
			break;
		}
		*slash = '\0';
		if (mnt_id_of(root) != id) {
			*slash = '/';
			slash[1] = keep;
			break;
		}
	}
	return root;
}

/* The clone of mount @id (made now if it is the first layer on it). */
static struct ovl_clone *clone_for(struct ovl_clones *cs, const char *canon,
				   uint64_t id)
{
	struct ovl_clone *c;
	int fd;

	for (int i = 0; i < cs->n; i++)
		if (cs->c[i].mnt_id == id)
			return &cs->c[i];
	c = &cs->c[cs->n];
	c->root = mount_root(canon, id);
	if (!c->root)
		return NULL;
	fd = (int)syscall(SYS_open_tree, AT_FDCWD, c->root,
			  OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (fd >= 0 && ovl_mount_setattr(fd, "", AT_EMPTY_PATH,
					 OVL_MOUNT_ATTR_RDONLY, 0)) {
		close(fd);
		fd = -1;
	}
	if (fd < 0) { /* a mount with locked mounts below, in a user ns */
		free(c->root);
		return NULL;
	}
	c->mnt_id = id;
	c->fd = fd;
	cs->n++;
	return c;
}

/*
 * The root of lower layer @l below a shared read-only clone of its mount,
 * or -1 when there is none to be had (the caller clones the layer alone).
 * The layer must be the same directory as seen by its path.
 */
static int open_in_clone(struct ovl_clones *cs, struct ovl_layer *l,
			 const struct stat *want)
{
	struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
					   RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV };
	char *canon = realpath(l->path, NULL);
	struct ovl_clone *c = NULL;
	const char *rel;
	struct stat st;
	uint64_t id;
	int fd = -1;

	if (canon && (id = mnt_id_of(canon)))
		c = clone_for(cs, canon, id);
	if (!c || !path_within(canon, c->root))
		goto out;
	rel = canon + (strcmp(c->root, "/") ? strlen(c->root) : 0);
	fd = (int)syscall(SYS_openat2, c->fd, *rel ? rel + 1 : ".", &how,
			  sizeof(how));
	if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_dev != want->st_dev ||
			st.st_ino != want->st_ino)) {
		close(fd);
		fd = -1;
	}
	if (fd >= 0)
		l->clone_rel = strdup(*rel ? rel : "/");
	if (fd >= 0 && !l->clone_rel) {
		close(fd);
		fd = -1;
	}
out:
	free(canon);
	return fd;
}

static void clones_close(struct ovl_clones *cs)
{
	for (int i = 0; cs && i < cs->n; i++) {
		close(cs->c[i].fd);
		free(cs->c[i].root);
	}
	free(cs);
}

static int layer_open(struct ovl_layer *l, const char *what,
		      struct ovl_clones *cs)
{
	struct statfs sfs;
	struct stat st;
	int fd = -1;

	if (stat(l->path, &st) < 0)
		return layer_err(what, l->path, -errno);
	if (!S_ISDIR(st.st_mode))
		return layer_err(what, l->path, -ENOTDIR);
	if (cs) {
		fd = open_in_clone(cs, l, &st);
		if (fd < 0)
			fd = open_ro_clone(l->path);
		l->ro_mount = fd >= 0;
	}
	if (fd < 0)
		fd = open(l->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return layer_err(what, l->path, -errno);
	if (fstat(fd, &st) < 0 || fstatfs(fd, &sfs) < 0) {
		close(fd);
		return layer_err(what, l->path, -errno);
	}
	l->root_fd = fd;
	l->dev = st.st_dev;
	l->stacked = sfs.f_type == OVERLAYFS_SUPER_MAGIC ||
		     sfs.f_type == FUSE_SUPER_MAGIC_;
	return 0;
}

/* A directory the mount is made of, for the overlap checks. */
struct ovl_dir_role {
	const char *role;	/* "lowerdir", "upperdir" or "workdir" */
	const char *path;	/* as given */
	const char *canon;	/* canonical */
};

/*
 * Refuse one pair of the mount's directories that are the same or nested,
 * with kernel overlayfs's errors: workdir and upperdir must be separate
 * subtrees (EINVAL); a lower layer may neither be, contain, nor be inside
 * another layer or the workdir (ELOOP, "conflicting" or "overlapping
 * lowerdir path").  The kernel lets an upper or a workdir inside a lower
 * layer through (the lower layer then shows the upper's files, and copies
 * being built); overpass refuses those too.
 */
static int check_pair(const struct ovl_dir_role *a, const struct ovl_dir_role *b)
{
	const char *how;

	if (!strcmp(a->canon, b->canon))
		how = "same directory as";
	else if (path_within(b->canon, a->canon))
		how = "inside";
	else if (path_within(a->canon, b->canon))
		how = "contains";
	else
		return 0;
	if (!strcmp(a->role, "upperdir") && !strcmp(b->role, "workdir")) {
		ovl_log("workdir %s: workdir and upperdir must be separate subtrees: %s upperdir %s (EINVAL)",
			b->path, how, a->path);
		return -EINVAL;
	}
	ovl_log("%s %s: %s path: %s %s %s (ELOOP)", b->role, b->path,
		strcmp(how, "same directory as") ? "overlapping" : "conflicting",
		how, a->role, a->path);
	return -ELOOP;
}

/*
 * Refuse the same directory twice and directories nested in one another;
 * each complaint names the later directory of the command line.
 */
static int check_overlaps(struct ovl_fs *fs, char **canon)
{
	struct ovl_params *p = fs->p;
	int n = 0, err = 0;
	struct ovl_dir_role *d = calloc(fs->nlayers + 1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	for (int i = fs->upper ? 1 : 0; i < fs->nlayers; i++)
		d[n++] = (struct ovl_dir_role){ "lowerdir", fs->layers[i].path,
						canon[i] };
	if (fs->upper) {
		d[n++] = (struct ovl_dir_role){ "upperdir", p->upperdir, canon[0] };
		d[n++] = (struct ovl_dir_role){ "workdir", p->workdir,
						canon[fs->nlayers] };
	}
	for (int j = 1; j < n && !err; j++)
		for (int i = 0; i < j && !err; i++)
			err = check_pair(&d[i], &d[j]);
	free(d);
	return err;
}

/* Mount id of @fd (statx STATX_MNT_ID), or 0 when unknown. */
static uint64_t mount_id(int fd)
{
#if defined(HAVE_STATX) && defined(STATX_MNT_ID)
	struct statx stx;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) == 0 &&
	    (stx.stx_mask & STATX_MNT_ID))
		return stx.stx_mnt_id;
#else
	(void)fd;
#endif
	return 0;
}

/*
 * Open the workdir itself and check what can refuse it, before anything
 * is made in it: a directory we may write in, on the upper's mount (copies
 * built there are renamed into the upper; the kernel's "workdir and
 * upperdir must reside under the same mount", EINVAL).
 */
static int workdir_open(struct ovl_fs *fs)
{
	struct ovl_params *p = fs->p;
	struct stat st;
	uint64_t wid, uid;
	int fd;

	fd = open(p->workdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return layer_err("workdir", p->workdir, -errno);
	fs->workdir_fd = fd;
	if (fstat(fd, &st) < 0)
		return layer_err("workdir", p->workdir, -errno);
	wid = mount_id(fd);
	uid = mount_id(fs->upper->root_fd);
	if (st.st_dev != fs->upper->dev || (wid && uid && wid != uid)) {
		ovl_log("workdir %s: not on the same mount as upperdir %s (EINVAL)",
			p->workdir, p->upperdir);
		return -EINVAL;
	}
	if (faccessat(AT_FDCWD, p->workdir, W_OK | X_OK, AT_EACCESS) < 0)
		return layer_err("workdir", p->workdir, -errno);
	return 0;
}

/*
 * Open workdir/@name, made when missing, as kernel overlayfs lays out its
 * workdir.  work/ holds only copies and entries being built, so what a
 * crash left there is garbage and is removed (@clean), as the kernel does.
 */
static int open_work_subdir(int root, const char *name, bool clean, int *out)
{
	int fd, err = 0;

	if (mkdirat(root, name, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = ovl_openat_name(root, name, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	if (clean)
		err = ovl_empty_dir(fd);
	if (err) {
		close(fd);
		return err;
	}
	*out = fd;
	return 0;
}

static int make_work_subdirs(struct ovl_fs *fs)
{
	int err;

	err = open_work_subdir(fs->workdir_fd, "work", true, &fs->work_fd);
	if (!err)
		err = open_work_subdir(fs->workdir_fd, "index", false,
				       &fs->index_fd);
	close(fs->workdir_fd);
	fs->workdir_fd = -1;
	if (err)
		return layer_err("workdir", fs->p->workdir, err);
	return 0;
}

/*
 * Each layer's filesystem UUID, which origin file handles carry
 * (FS_IOC_GETFSUUID, Linux 6.5; before it ext4's own EXT4_IOC_GETFSUUID,
 * 6.0, so that Debian 12's kernel reads and writes the handles kernel
 * overlayfs does); zeros where there is none, as the kernel's own s_uuid
 * then is.
 */
static void probe_uuid(int fd, unsigned char uuid[16])
{
	struct {
		unsigned char len;
		unsigned char uuid[16];
	} u = { 0 };
	struct {
		uint32_t len;
		uint32_t flags;
		unsigned char uuid[16];
	} e = { .len = 16 };
	const unsigned long getfsuuid = (2ul << 30) | (sizeof(u) << 16) |
					(0x15 << 8);
	const unsigned long ext4_getfsuuid = (2ul << 30) | (8ul << 16) |
					     ('f' << 8) | 44;

	if (ioctl(fd, getfsuuid, &u) == 0 && u.len == 16)
		memcpy(uuid, u.uuid, 16);
	else if (ioctl(fd, ext4_getfsuuid, &e) == 0 && e.len == 16)
		memcpy(uuid, e.uuid, 16);
}

static void probe_uuids(struct ovl_fs *fs)
{
	for (int i = 0; i < fs->nlayers; i++) {
		int fd = ovl_reopen(fs->layers[i].root_fd, O_RDONLY | O_DIRECTORY);

		if (fd < 0)
			continue;
		probe_uuid(fd, fs->layers[i].uuid);
		close(fd);
	}
}

/*
 * Which layers keep owners and modes in an xattr (fuse-overlayfs's
 * override_stat, marked on the layer root; containers-storage makes such
 * layers), and the upper too under xattr_permissions=1|2.  A record is
 * read only where the trust rule lets a marker be (ovl_marker_trusted):
 * on a root mount the user.* ones only with xattr_permissions=2.
 */
/* Mark the upper root, so the layer reads the same when used as a lower. */
static void mark_override_root(struct ovl_fs *fs, struct ovl_layer *l)
{
	struct stat st;

	if (ovl_fgetxattr(l->root_fd, l->override, NULL, 0) >= 0 ||
	    fstat(l->root_fd, &st) < 0)
		return;
	if (ovl_override_set(fs, l->root_fd, st.st_uid, st.st_gid, st.st_mode))
		ovl_log("upperdir %s: cannot mark it for xattr_permissions", l->path);
}

static void probe_overrides(struct ovl_fs *fs)
{
	/* in the order fuse-overlayfs 1.10 looks for them */
	static const char *const names[] = { OVL_OVERRIDE_PRIVILEGED,
					     OVL_OVERRIDE_USER,
					     OVL_OVERRIDE_CONTAINERS };

	for (int i = 0; i < fs->nlayers; i++) {
		struct ovl_layer *l = &fs->layers[i];

		for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
			if (ovl_marker_trusted(fs, names[k]) &&
			    ovl_fgetxattr(l->root_fd, names[k], NULL, 0) >= 0) {
				l->override = names[k];
				break;
			}
		}
		if (l->is_upper && fs->p->xattr_permissions) {
			l->override = fs->p->xattr_permissions == 1 ?
				OVL_OVERRIDE_PRIVILEGED : OVL_OVERRIDE_USER;
			mark_override_root(fs, l);
		}
	}
}

/*
 * The hard-link index is keyed by the lower file's handle: where a lower
 * layer cannot make handles (it lives on overlayfs without nfs_export, for
 * one), no index is used, as kernel overlayfs falls back to index=off, and
 * hard links of that layer are broken on copy-up.
 */
static void probe_index(struct ovl_fs *fs)
{
	unsigned char fb[OVL_FH_MAX];
	size_t len;

	for (int i = 0; fs->index_fd >= 0 && i < fs->nlayers; i++) {
		struct ovl_layer *l = &fs->layers[i];

		if (l->is_upper || ovl_origin_fh(fs, i, l->root_fd, fb, &len) == 0)
			continue;
		ovl_debug("lowerdir %s makes no file handles: hard links not indexed",
			  l->path);
		close(fs->index_fd);
		fs->index_fd = -1;
	}
}

/* The longest name any layer takes, as kernel overlayfs computes it. */
static void probe_namelen(struct ovl_fs *fs)
{
	fs->namelen = 0;
	for (int i = 0; i < fs->nlayers; i++) {
		struct statfs sf;

		if (fstatfs(fs->layers[i].root_fd, &sf) == 0 &&
		    (size_t)sf.f_namelen > fs->namelen)
			fs->namelen = (size_t)sf.f_namelen;
	}
	if (!fs->namelen)
		fs->namelen = NAME_MAX;
}

/*
 * Number the distinct filesystems and pick the st_ino high bits (xino), as
 * kernel overlayfs does, so that both show the same inode numbers: fsid 0
 * is the upper's filesystem (kept free without an upper), the others get
 * 1, 2... in layer order; with all layers on one filesystem, or xino=off,
 * inode numbers are the real ones.  Otherwise the fsid goes above the real
 * number, below one bit the kernel keeps for numbers that overflow.
 */
static void setup_xino(struct ovl_fs *fs)
{
	unsigned numfs = 1;

	for (int i = 0; i < fs->nlayers; i++) {
		struct ovl_layer *l = &fs->layers[i];
		int j;

		if (fs->upper && l->dev == fs->upper->dev) {
			l->fsid = 0;
			continue;
		}
		for (j = 0; j < i; j++)
			if (fs->layers[j].dev == l->dev)
				break;
		l->fsid = j < i ? fs->layers[j].fsid : numfs++;
	}
	fs->xino_bits = 0;
	if (fs->p->xino == 0 || numfs - (fs->upper ? 0 : 1) == 1)
		return;
	/* ilog2(numfs - 1) + 2 */
	while ((2u << fs->xino_bits) <= numfs - 1)
		fs->xino_bits++;
	fs->xino_bits += 2;
}

uint64_t ovl_layer_map_ino(const struct ovl_fs *fs, int layer, ino_t ino)
{
	uint64_t v = ino;

	if (fs->xino_bits)
		v |= (uint64_t)fs->layers[layer].fsid << (65 - fs->xino_bits);
	if (fs->p->ino32)
		v = (v ^ (v >> 32)) & 0xffffffffu;
	return v;
}

/*
 * Whether the upper takes kernel whiteouts, character devices 0/0.  Where
 * mknod refuses them (an upper on overlayfs, a filesystem without mknod, a
 * seccomp policy), ".wh.NAME" files are written instead, as fuse-overlayfs
 * does.
 */
static void probe_whiteouts(struct ovl_fs *fs)
{
	char name[64];

	if (!fs->upper)
		return;
	/* fuse-overlayfs's switch to its .wh. files, honoured alike */
	if (getenv("FUSE_OVERLAYFS_DISABLE_OVL_WHITEOUT")) {
		fs->aufs_whiteouts = true;
		return;
	}
	ovl_work_name(fs, name, sizeof(name));
	if (mknodat(fs->work_fd, name, S_IFCHR | 0600, makedev(0, 0)) == 0) {
		unlinkat(fs->work_fd, name, 0);
		return;
	}
	if (errno == EPERM || errno == EOPNOTSUPP) {
		fs->aufs_whiteouts = true;
		ovl_debug("upperdir %s refuses whiteout devices: writing .wh. files",
			  fs->upper->path);
	}
}

/*
 * Whether the upper takes the overlay.* xattrs we write, tried on
 * workdir/work as kernel overlayfs tries workdir.  Where it does not (no
 * xattrs, or trusted.overlay.* refused as overlayfs before Linux 6.7 and
 * fuse-overlayfs refuse them), the kernel falls back to index=off,
 * metacopy=off and redirect_dir=nofollow, and so do we: a copy-up breaks
 * the hard links of a lower file, and a lower directory is not renamed
 * (EXDEV, before anything is copied up).
 */
static void probe_xattrs(struct ovl_fs *fs)
{
	const char *name = OVL_XNAME(fs, "overlay.opaque");
	int err;

	if (!fs->upper)
		return;
	err = ovl_fsetxattr(fs->work_fd, name, "0", 1, 0);
	if (!err) {
		ovl_fremovexattr(fs->work_fd, name);
		return;
	}
	fs->no_xattr = true;
	fs->p->metacopy = false;
	fs->p->redirect = OVL_REDIRECT_NOFOLLOW;
	if (fs->index_fd >= 0) {
		close(fs->index_fd);
		fs->index_fd = -1;
	}
	ovl_log("upperdir %s takes no %s xattrs (%s): index and metacopy off, redirect_dir=nofollow",
		fs->upper->path, name, strerror(-err));
}

/*
 * Whether the upper makes O_TMPFILE files in workdir, which copy-up builds
 * its copies in.  Where it does not (EOPNOTSUPP: overlayfs before Linux
 * 6.6, FUSE servers without tmpfile), copies are built under a name in
 * work/ and renamed into place, as kernel overlayfs then does.
 */
static void probe_tmpfile(struct ovl_fs *fs)
{
	int fd;

	if (!fs->upper)
		return;
	fd = openat(fs->work_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		return;
	}
	fs->no_tmpfile = true;
	ovl_debug("upperdir %s refuses O_TMPFILE (%s): copies are built under a name",
		  fs->upper->path, strerror(errno));
}

/*
 * The trust rule for markers: which xattr namespace overlay markers are
 * read from and written to.  A root mount (CAP_SYS_ADMIN in the initial
 * user namespace) uses trusted.overlay.*, which nobody else can write; a
 * mount made in a user namespace or by a plain user uses user.overlay.*,
 * which only the owners of its files (its own users) can write.  userxattr
 * asks for user.overlay.* on a root mount too, as the kernel's option does:
 * then every user who owns a file in a layer can write markers.  An upper
 * that takes no xattrs of that namespace gets the markers that need none
 * (whiteout devices, .wh..wh..opq), as before.
 */
static void choose_xattr_ns(struct ovl_fs *fs)
{
	fs->xns = fs->p->userxattr || !ovl_have_init_cap_sys_admin() ?
		OVL_XNS_USER : OVL_XNS_TRUSTED;
	/*
	 * As kernel overlayfs, which mounts in a user namespace only with
	 * userxattr, and then follows no redirect (looking one up fails
	 * with EPERM): user.overlay.redirect is not followed unless
	 * redirect_dir= asks for it.  A mount in a user namespace or by a
	 * plain user may ask (params.c refuses it with userxattr on a root
	 * mount only): its daemon reads the layers with the credentials of
	 * whoever owns the mount, so a redirect shows nothing they could
	 * not read themselves.
	 */
	if (fs->xns == OVL_XNS_USER && !fs->p->redirect_given)
		fs->p->redirect = OVL_REDIRECT_NOFOLLOW;
}

/* Canonical paths of the layers and the workdir, checked for overlaps. */
static int layers_canon(struct ovl_fs *fs)
{
	struct ovl_params *p = fs->p;
	int n = fs->nlayers, err = 0;
	char **canon = calloc(n + 1, sizeof(*canon));

	if (!canon)
		return -ENOMEM;
	for (int k = 0; !err && k < n; k++) {
		canon[k] = realpath(fs->layers[k].path, NULL);
		if (!canon[k])
			err = layer_err(fs->layers[k].is_upper ? "upperdir" : "lowerdir",
					fs->layers[k].path, -errno);
	}
	if (!err && fs->upper) {
		canon[n] = realpath(p->workdir, NULL);
		if (!canon[n])
			err = layer_err("workdir", p->workdir, -errno);
	}
	if (!err)
		err = check_overlaps(fs, canon);
	for (int k = 0; k < n; k++)
		fs->layers[k].canon = canon[k];
	fs->workdir_canon = canon[n];
	free(canon);
	return err;
}

/*
 * Open every layer and check the whole configuration: nothing on disk is
 * made, changed or removed here, so a refused mount leaves every directory
 * as it was.  ovl_layers_prepare() then sets up the workdir.
 */
int ovl_layers_open(struct ovl_fs *fs)
{
	struct ovl_clones *clones;
	struct ovl_params *p = fs->p;
	int n = p->nlower + (p->upperdir ? 1 : 0), err = 0, i = 0;

	fs->layers = calloc(n, sizeof(*fs->layers));
	if (!fs->layers)
		return -ENOMEM;
	for (int k = 0; k < n; k++)
		fs->layers[k].root_fd = -1;
	fs->nlayers = n;
	fs->work_fd = -1;
	fs->index_fd = -1;
	fs->workdir_fd = -1;
	if (p->upperdir) {
		fs->layers[0] = (struct ovl_layer){ .idx = 0, .is_upper = true,
						    .path = p->upperdir, .root_fd = -1 };
		fs->upper = &fs->layers[0];
		err = layer_open(fs->upper, "upperdir", NULL);
		i = 1;
	}
	clones = calloc(1, sizeof(*clones) + p->nlower * sizeof(clones->c[0]));
	if (!clones && !err)
		err = -ENOMEM;
	for (int k = 0; !err && k < p->nlower; k++, i++) {
		fs->layers[i] = (struct ovl_layer){ .idx = i,
						    .path = p->lowerdirs[k], .root_fd = -1 };
		err = layer_open(&fs->layers[i], "lowerdir", clones);
	}
	clones_close(clones); /* the layers' fds keep the clones */
	if (!err && fs->upper) {
		struct stat st;

		if (stat(p->workdir, &st) < 0)
			err = layer_err("workdir", p->workdir, -errno);
		else if (!S_ISDIR(st.st_mode))
			err = layer_err("workdir", p->workdir, -ENOTDIR);
	}
	if (!err)
		err = layers_canon(fs);
	if (!err && fs->upper)
		err = workdir_open(fs);
	if (err)
		return err;
	for (int k = 0; k < n; k++)
		fs->any_stacked |= fs->layers[k].stacked;
	fs->has_xattrat = ovl_probe_xattrat(fs->layers[0].root_fd);
	setup_xino(fs);
	choose_xattr_ns(fs);
	probe_uuids(fs);
	probe_namelen(fs);
	return 0;
}

/*
 * The first step that writes: make workdir/work (emptied) and
 * workdir/index, then probe what the upper takes and mark its root.  Runs
 * once the mount exists, so a mount refused for any reason leaves the
 * workdir untouched.
 */
int ovl_layers_prepare(struct ovl_fs *fs)
{
	int err;

	if (fs->upper) {
		err = make_work_subdirs(fs);
		if (err)
			return err;
	}
	probe_whiteouts(fs);
	probe_xattrs(fs);
	probe_tmpfile(fs);
	probe_overrides(fs);
	probe_index(fs);
	return 0;
}

void ovl_layers_close(struct ovl_fs *fs)
{
	for (int i = 0; i < fs->nlayers; i++) {
		if (fs->layers[i].root_fd >= 0)
			close(fs->layers[i].root_fd);
		free(fs->layers[i].canon);
		free(fs->layers[i].clone_rel);
	}
	if (fs->workdir_fd >= 0)
		close(fs->workdir_fd);
	fs->workdir_fd = -1;
	if (fs->work_fd >= 0)
		close(fs->work_fd);
	if (fs->index_fd >= 0)
		close(fs->index_fd);
	free(fs->workdir_canon);
	fs->workdir_canon = NULL;
	free(fs->layers);
	fs->layers = NULL;
	fs->nlayers = 0;
}

/* Append @prefix and @path, escaped, to @f: 0 or -ENOMEM. */
static int put_path(FILE *f, const char *prefix, const char *path)
{
	char *e = ovl_params_escape(path);

	if (!e)
		return -ENOMEM;
	fprintf(f, "%s%s", prefix, e);
	free(e);
	return 0;
}

/*
 * The layers, the workdir and the statsfile as an option list with the
 * absolute paths they were opened at ("lowerdir=/a:/b,upperdir=/u,..."):
 * what a process that parses the command line again from elsewhere (a
 * worker of an upgrade, supervisor.c) needs to open the same layers,
 * without keeping the directory the mount was started in.  malloc'd, or
 * NULL.
 */
char *ovl_layers_paths_opt(const struct ovl_fs *fs)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);
	int first = fs->upper ? 1 : 0, err = 0;

	if (!f)
		return NULL;
	for (int k = first; !err && k < fs->nlayers; k++)
		err = put_path(f, k == first ? "lowerdir=" : ":",
			       fs->layers[k].canon);
	if (!err && fs->upper)
		err = put_path(f, ",upperdir=", fs->upper->canon);
	if (!err && fs->upper)
		err = put_path(f, ",workdir=", fs->workdir_canon);
	if (!err && fs->p->statsfile)
		err = put_path(f, ",statsfile=", fs->p->statsfile);
	if (fclose(f) || err) {
		free(s);
		return NULL;
	}
	return s;
}

/*
 * Path of a directory of layer @layer from the layer's root, as a redirect
 * records it ("/a/b"); malloc'd, or NULL.
 */
char *ovl_layer_relpath(const struct ovl_fs *fs, int layer, int fd)
{
	const struct ovl_layer *l = &fs->layers[layer];
	char proc[64], buf[PATH_MAX];
	ssize_t n;
	size_t cl = strlen(l->canon);

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, buf, sizeof(buf) - 1);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	if (l->ro_mount && l->clone_rel) {
		/* a shared clone shows paths from its mount's root */
		size_t rl = strcmp(l->clone_rel, "/") ? strlen(l->clone_rel) : 0;

		if (strncmp(buf, l->clone_rel, rl) || (buf[rl] != '/' && buf[rl]))
			return NULL;
		return strdup(buf[rl] ? buf + rl : "/");
	}
	if (l->ro_mount) /* a detached mount shows paths from its root */
		return strdup(buf);
	if (strncmp(buf, l->canon, cl) || (buf[cl] != '/' && buf[cl]))
		return NULL;
	return strdup(buf[cl] ? buf + cl : "/");
}
