// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Lookup of one name through the layers of its parent directory, top down:
 * whiteouts (every encoding) stop the search, a non-directory hides what is
 * below it, directories merge until an opaque one, and a redirect xattr
 * moves the search for lower layers (a single name in the same parent, or
 * an absolute path resolved from each lower layer's root, as kernel
 * overlayfs does).
 */
#include "config.h"

#include "overlay.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

/* Where the search stands while walking down the layers. */
struct lookup_ctx {
	struct ovl_fs *fs;
	const char *name;	/* name in the parent, or the relative redirect */
	char *abs;		/* absolute redirect (owned), or NULL */
	char *relname;		/* relative redirect (owned), or NULL */
	bool stop;		/* nothing below may be merged */
	struct ovl_found *f;	/* the result being built */
	int nstack;		/* directory layers collected */
	struct ovl_dirlayer *stack; /* fs->nlayers entries */
	int from;		/* the topmost lower layer that may hold the
				 * name (a listing's word), or -1 */
	bool made;		/* the upper entry is one this request just
				 * made: no marker, no origin, not metacopy */
};

/* Open @path of one layer: a single name in @dirfd, or a confined path. */
static int open_in_layer(struct lookup_ctx *c, int dirfd, struct stat *st)
{
	int fd;

	if (c->abs)
		fd = ovl_openat_beneath(dirfd, c->abs + 1, O_PATH | O_NOFOLLOW, 0);
	else
		fd = ovl_openat_name(dirfd, c->name, O_PATH);
	if (fd < 0)
		return fd;
	if (fstat(fd, st) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* The st_ino a copied-up file showed before its copy-up, or 0. */
static uint64_t origin_ino(struct ovl_fs *fs, int fd)
{
	char v[32];
	ssize_t n = ovl_fgetxattr(fd, OVL_XNAME(fs, "overpass.ino"), v,
				  sizeof(v) - 1);
	unsigned long long ino;

	if (n <= 0)
		return ovl_origin_fh_ino(fs, fd);
	v[n] = '\0';
	return ovl_parse_u64(v, &ino) ? 0 : ino;
}

/* Add a found directory to the stack, reading its markers and redirect. */
static int add_dir(struct lookup_ctx *c, int layer, int pathfd)
{
	bool opaque, xwh;
	char *redirect = NULL;
	int fd, err;

	fd = ovl_reopen(pathfd, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	err = ovl_dir_markers(c->fs, fd, &opaque, &xwh,
			      layer + 1 < c->fs->nlayers ? &redirect : NULL);
	if (err) {
		close(fd);
		return err;
	}
	if (redirect && c->fs->p->redirect == OVL_REDIRECT_NOFOLLOW) {
		/* as the kernel's "refusing to follow redirect" */
		ovl_debug("redirect_dir=nofollow: refusing redirect \"%s\"",
			  redirect);
		free(redirect);
		close(fd);
		return -EPERM;
	}
	c->stack[c->nstack++] = (struct ovl_dirlayer){ .layer = layer, .fd = fd,
						       .xwhiteouts = xwh };
	c->stop = opaque;
	if (redirect && redirect[0] == '/') {
		free(c->abs);
		c->abs = redirect;
	} else if (redirect && c->abs) {
		free(redirect); /* a name below an absolute redirect: kept */
	} else if (redirect) {
		/* relative: the same parent, another name */
		free(c->relname);
		c->relname = redirect;
		c->name = redirect;
	}
	return 0;
}

/*
 * A lower file with several links may have been copied up through another
 * of its names: then the index holds the copy, which this name shows too.
 */
static int found_indexed(struct lookup_ctx *c, int layer)
{
	struct stat st;
	int idx = ovl_index_open(c->fs, layer, c->f->fd);

	if (idx == -ENOENT)
		return 0;
	if (idx < 0)
		return idx;
	if (fstat(idx, &st) < 0) {
		int err = -errno;

		close(idx);
		return err;
	}
	if ((st.st_mode & S_IFMT) != (c->f->st.st_mode & S_IFMT)) {
		close(idx); /* a whiteout or a stale entry: not a copy */
		return 0;
	}
	c->f->ino = origin_ino(c->fs, idx);
	if (!c->f->ino) /* indexed by the kernel */
		c->f->ino = ovl_layer_map_ino(c->fs, layer, c->f->st.st_ino);
	close(c->f->fd);
	c->f->fd = idx;
	c->f->layer = 0;
	c->f->st = st;
	c->f->indexed = true;
	return 0;
}

/*
 * The upper entry of a lookup right after making it (ovl_lookup_made()):
 * made without xattrs but an ACL and, for a directory, opaque, so neither
 * an xattr whiteout nor an origin nor a metacopy to look for.
 */
static bool made_here(const struct lookup_ctx *c, int layer)
{
	return c->made && layer == 0;
}

/*
 * Look at one layer.  Returns 1 to go on to lower layers, 0 to stop,
 * negative errno on error.
 */
static int lookup_layer(struct lookup_ctx *c, int layer, int dirfd)
{
	struct stat st;
	int fd, err;

	fd = open_in_layer(c, dirfd, &st);
	/* a redirect leading through a symlink or out of the layer stops
	 * there, as the kernel's lookup stops at a non-directory */
	if (c->abs && (fd == -EXDEV || fd == -ELOOP))
		return 0;
	if (fd == -ENOENT || fd == -ENOTDIR || fd == -ENAMETOOLONG) {
		int wh = c->abs ? 0 : ovl_aufs_whiteout_at(dirfd, c->name);

		if (wh > 0)
			return 0;
		/* an error reading it counts as none, but not as seen */
		if (layer == 0 && fd == -ENOENT && wh == 0)
			c->f->upper_none = true;
		return 1;
	}
	if (fd < 0)
		return fd;
	/* as kernel lookup, an xattr whiteout counts whatever the parent's
	 * marker (readdir only looks for them in directories marked "x") */
	if (ovl_is_whiteout_st(&st) ||
	    (!c->abs && !made_here(c, layer) &&
	     ovl_is_xwhiteout_fd(c->fs, fd, &st))) {
		close(fd);
		return 0;
	}
	if (c->f->fd < 0) {
		c->f->fd = fd;
		c->f->layer = layer;
		c->f->st = st;
		c->f->made = made_here(c, layer);
		if (c->f->made)
			c->f->ino = 0;
		else if (c->fs->upper && layer == 0)
			c->f->ino = origin_ino(c->fs, fd);
		else if (ovl_index_wanted(c->fs, &st))
			return found_indexed(c, layer);
		/* a metacopy file's data is the same name further down */
		if (c->fs->upper && layer == 0 && !made_here(c, layer) &&
		    S_ISREG(st.st_mode) && ovl_is_metacopy(c->fs, fd))
			return 1;
		if (!S_ISDIR(st.st_mode))
			return 0;
	} else if (!S_ISDIR(c->f->st.st_mode)) {
		if (S_ISREG(st.st_mode))
			c->f->data_fd = fd; /* the metacopy's data */
		else
			close(fd);
		return 0;
	} else if (!S_ISDIR(st.st_mode)) {
		close(fd); /* a non-directory below a directory is hidden */
		return 0;
	}
	err = add_dir(c, layer, fd);
	if (fd != c->f->fd)
		close(fd);
	if (err)
		return err;
	return c->stop ? 0 : 1;
}

/*
 * Lower layers above c->from are skipped: a listing read them and found
 * neither the name nor a whiteout of it, and lower layers do not change
 * while mounted.  The upper layer is always looked at.
 */
static bool layer_skipped(const struct lookup_ctx *c, int layer)
{
	return layer != 0 && c->from > 0 && layer < c->from;
}

static int lookup_walk(struct lookup_ctx *c, struct ovl_dirstack *pds)
{
	int k, r = 1, last = -1;

	for (k = 0; r > 0 && k < pds->n; k++) {
		if (c->abs)
			break;
		last = pds->d[k].layer;
		if (layer_skipped(c, last))
			continue;
		r = lookup_layer(c, last, pds->d[k].fd);
	}
	/* an absolute redirect continues from each lower layer's root */
	for (int l = last + 1; r > 0 && c->abs && l < c->fs->nlayers; l++)
		r = lookup_layer(c, l, c->fs->layers[l].root_fd);
	return r < 0 ? r : 0;
}

/* The highest fd @f holds. */
static int found_top_fd(const struct ovl_found *f)
{
	int top = f->fd > f->data_fd ? f->fd : f->data_fd;

	for (int i = 0; f->dirs && i < f->dirs->n; i++)
		if (f->dirs->d[i].fd > top)
			top = f->dirs->d[i].fd;
	return top;
}

static int lookup_found(struct ovl_fs *fs, struct ovl_inode *dir,
			const char *name, int from, bool made,
			struct ovl_found *f)
{
	struct ovl_dirlayer stack[fs->nlayers];
	struct lookup_ctx c = { .fs = fs, .name = name, .f = f, .stack = stack,
				.from = from, .made = made };
	int err;

	*f = (struct ovl_found){ .fd = -1, .data_fd = -1 };
	if (!dir->dirs)
		return -ENOTDIR;
	if (strlen(name) > fs->namelen)
		return -ENAMETOOLONG;
	if (ovl_name_reserved(name))
		return -ENOENT;
	err = lookup_walk(&c, dir->dirs);
	free(c.relname);
	free(c.abs);
	if (!err && f->fd < 0)
		err = -ENOENT;
	if (!err && c.nstack) {
		f->dirs = malloc(sizeof(*f->dirs) + c.nstack * sizeof(stack[0]));
		if (!f->dirs) {
			err = -ENOMEM;
		} else {
			f->dirs->n = c.nstack;
			memcpy(f->dirs->d, stack, c.nstack * sizeof(stack[0]));
			close(f->fd); /* the O_PATH fd; use the stack's own */
			f->fd = stack[0].fd;
			c.nstack = 0;
		}
	}
	for (int i = 0; i < c.nstack; i++)
		close(stack[i].fd);
	if (err) {
		if (f->fd >= 0 && !f->dirs)
			close(f->fd);
		f->fd = -1;
	} else if (ovl_fd_high(fs, found_top_fd(f))) {
		ovl_found_release(f);
		err = ovl_fd_refuse(fs);
	}
	return err;
}

static int lookup_inode(struct ovl_fs *fs, struct ovl_inode *dir,
			const char *name, bool made, struct ovl_inode **out,
			bool *upper_none)
{
	struct ovl_found f;
	int err, tries = 0;

	do
		err = lookup_found(fs, dir, name, -1, made, &f);
	while (ovl_fd_retry_bounded(fs, err, &tries));
	if (upper_none)
		*upper_none = err == -ENOENT && f.upper_none;
	if (err)
		return err;
	*out = ovl_inode_get_found(fs, &f, dir, name);
	return *out ? 0 : -ENOMEM;
}

int ovl_lookup_name(struct ovl_fs *fs, struct ovl_inode *dir, const char *name,
		    struct ovl_inode **out)
{
	return lookup_inode(fs, dir, name, false, out, NULL);
}

/*
 * ovl_lookup_name() before making @name in @dir: with -ENOENT,
 * *@upper_none says whether the upper directory was seen to hold nothing
 * at @name, neither a whiteout nor an AUFS one (what the maker would
 * otherwise look at again).
 */
int ovl_lookup_new(struct ovl_fs *fs, struct ovl_inode *dir, const char *name,
		   struct ovl_inode **out, bool *upper_none)
{
	return lookup_inode(fs, dir, name, false, out, upper_none);
}

/*
 * ovl_lookup_name() of an upper entry the caller has just made in @dir's
 * upper directory, xattrs but an ACL and opaque not yet set: none of the
 * markers an upper file may carry is read (the kernel's ovl_create_upper()
 * likewise instantiates what it made without a lookup).
 */
int ovl_lookup_made(struct ovl_fs *fs, struct ovl_inode *dir, const char *name,
		    struct ovl_inode **out)
{
	return lookup_inode(fs, dir, name, true, out, NULL);
}

/* @e for a reply about @inode, from @st, the stat of its real file. */
static void entry_from_stat(struct ovl_fs *fs, struct ovl_inode *inode,
			    const struct stat *st, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->attr = *st;
	ovl_inode_stat_fill(fs, inode, &e->attr);
	e->ino = ovl_nodeid(fs, inode);
	e->attr_timeout = ovl_attr_timeout(fs, inode);
	e->entry_timeout = e->attr_timeout;
}

/*
 * Look @name up and fill @e for the reply, with the attributes the lookup
 * read (one fstat fewer).  @from: the layer a listing found the name in
 * (lower layers above it are not looked at), or -1.
 */
int ovl_lookup_entry(struct ovl_fs *fs, struct ovl_inode *dir,
		     const char *name, int from, struct ovl_inode **out,
		     struct fuse_entry_param *e)
{
	struct ovl_found f;
	struct stat st;
	int err;

	err = lookup_found(fs, dir, name, from, false, &f);
	if (err)
		return err;
	st = f.st;
	*out = ovl_inode_get_found(fs, &f, dir, name);
	if (!*out)
		return -ENOMEM;
	entry_from_stat(fs, *out, &st, e);
	return 0;
}

int ovl_fill_entry(struct ovl_fs *fs, struct ovl_inode *inode,
		   struct fuse_entry_param *e)
{
	struct stat st;

	if (fstatat(inode->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	entry_from_stat(fs, inode, &st, e);
	return 0;
}

/*
 * Reply to a request that made or found @inode (holding one lookup
 * reference for the reply), or failed with @err.
 */
void ovl_reply_entry(fuse_req_t req, struct ovl_inode *inode, int err)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct fuse_entry_param e;

	if (!err) {
		err = ovl_fill_entry(fs, inode, &e);
		if (err)
			ovl_inode_forget(fs, inode, 1);
	}
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_entry(req, &e);
}

/* The root: every layer's root directory, merged. */
int ovl_lookup_root(struct ovl_fs *fs)
{
	struct ovl_found f = { .fd = -1, .layer = 0, .data_fd = -1 };
	int err = -ENOMEM;

	f.dirs = calloc(1, sizeof(*f.dirs) + fs->nlayers * sizeof(f.dirs->d[0]));
	if (!f.dirs)
		return err;
	for (int l = 0; l < fs->nlayers; l++) {
		bool opaque;
		struct ovl_dirlayer *d = &f.dirs->d[l];
		int fd = ovl_reopen(fs->layers[l].root_fd, O_RDONLY | O_DIRECTORY);

		if (fd < 0) {
			err = fd;
			goto out;
		}
		*d = (struct ovl_dirlayer){ .layer = l, .fd = fd };
		f.dirs->n++;
		err = ovl_dir_markers(fs, fd, &opaque, &d->xwhiteouts, NULL);
		if (err)
			goto out;
	}
	f.fd = f.dirs->d[0].fd;
	if (fstat(f.fd, &f.st) < 0) {
		err = -errno;
		goto out;
	}
	return ovl_inode_make_root(fs, &f);
out:
	ovl_found_release(&f);
	return err;
}

void ovl_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct fuse_entry_param e;
	struct ovl_inode *inode = NULL;
	int err, tries = 0;

	ovl_stat_op(fs, OVL_OP_LOOKUP);
	do
		err = ovl_lookup_entry(fs, ovl_inode_of(fs, parent), name, -1,
				       &inode, &e);
	while (ovl_fd_retry(fs, err, &tries));
	if (err == -ENOENT) {
		/* cache the negative entry: only the daemon changes the upper */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs->p->timeout;
	}
	if (err && err != -ENOENT)
		fuse_reply_err(req, -err);
	else
		fuse_reply_entry(req, &e);
}
