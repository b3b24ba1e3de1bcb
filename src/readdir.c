// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Merged directory listings.  opendir builds the whole list once: the
 * layers of the directory's stack are read top down with getdents64, each
 * name is kept once (a hash set, so 100,000 entries cost linear time),
 * whiteouts of every encoding hide the name in the layers below them.  The
 * offset of an entry is its index in that list, stable for the life of the
 * handle.  readdirplus looks every entry up in the same pass.
 */
#include "config.h"

#include "overlay.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* One name of the merged listing. */
struct ovl_dirent {
	size_t name;		/* offset of the name in names */
	uint64_t ino;		/* st_ino to report */
	unsigned char type;	/* DT_* */
	bool hidden;		/* a whiteout: listed nowhere, hides lower names */
};

/* An open directory: the list built at opendir. */
struct ovl_dirh {
	struct ovl_handle h;	/* in fs->handles while open; first member */
	struct ovl_dirent *ents; /* entries, in listing order */
	size_t n;		/* entries used */
	size_t cap;		/* entries allocated */
	char *names;		/* NUL-separated names */
	size_t names_len;	/* bytes used in names */
	size_t names_cap;	/* bytes allocated */
	uint32_t *set;		/* hash set: index + 1 into ents, 0 = empty */
	size_t set_size;	/* slots (power of two) */
	bool read;		/* a readdir has used this listing */
};

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static const char *ent_name(const struct ovl_dirh *d, size_t i)
{
	return d->names + d->ents[i].name;
}

/* Slot of @name in the set: holding it, or the empty one to use. */
static size_t set_slot(const struct ovl_dirh *d, const char *name)
{
	size_t mask = d->set_size - 1, s = name_hash(name) & mask;

	while (d->set[s] && strcmp(ent_name(d, d->set[s] - 1), name))
		s = (s + 1) & mask;
	return s;
}

static int set_grow(struct ovl_dirh *d)
{
	size_t nsize = d->set_size ? d->set_size * 2 : 256;
	uint32_t *old = d->set;
	size_t osize = d->set_size;

	d->set = calloc(nsize, sizeof(*d->set));
	if (!d->set) {
		d->set = old;
		return -ENOMEM;
	}
	d->set_size = nsize;
	for (size_t i = 0; i < osize; i++)
		if (old[i])
			d->set[set_slot(d, ent_name(d, old[i] - 1))] = old[i];
	free(old);
	return 0;
}

/* Add @name unless present; returns 1 if added, 0 if present, -errno. */
static int dirh_add(struct ovl_dirh *d, const char *name, uint64_t ino,
		    unsigned char type, bool hidden)
{
	size_t len = strlen(name) + 1, s;

	if ((d->n + 1) * 2 > d->set_size && set_grow(d))
		return -ENOMEM;
	s = set_slot(d, name);
	if (d->set[s])
		return 0;
	if (d->n == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 64;
		struct ovl_dirent *ne = realloc(d->ents, ncap * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		d->ents = ne;
		d->cap = ncap;
	}
	if (d->names_len + len > d->names_cap) {
		size_t ncap = d->names_cap ? d->names_cap * 2 : 4096;
		char *nn;

		while (ncap < d->names_len + len)
			ncap *= 2;
		nn = realloc(d->names, ncap);
		if (!nn)
			return -ENOMEM;
		d->names = nn;
		d->names_cap = ncap;
	}
	memcpy(d->names + d->names_len, name, len);
	d->ents[d->n] = (struct ovl_dirent){ .name = d->names_len, .ino = ino,
					     .type = type, .hidden = hidden };
	d->names_len += len;
	d->set[s] = (uint32_t)++d->n;
	return 1;
}

static void dirh_free(struct ovl_dirh *d)
{
	if (!d)
		return;
	free(d->ents);
	free(d->names);
	free(d->set);
	free(d);
}

static void dirh_close_at_exit(struct ovl_fs *fs, struct ovl_handle *h)
{
	dirh_free((struct ovl_dirh *)h);
}

/* Classify one entry of a layer: 1 visible, 0 whiteout, -errno. */
static int classify(struct ovl_fs *fs, const struct ovl_dirlayer *dl,
		    const char *name, unsigned char *type)
{
	struct stat st;

	if (*type != DT_CHR && *type != DT_UNKNOWN &&
	    !(dl->xwhiteouts && *type == DT_REG))
		return 1;
	if (fstatat(dl->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	*type = IFTODT(st.st_mode);
	if (ovl_is_whiteout_st(&st))
		return 0;
	if (dl->xwhiteouts && ovl_is_xwhiteout(fs, dl->fd, name, &st))
		return 0;
	return 1;
}

/* Names hidden by ".wh.NAME" files of one layer apply below it only. */
struct pending {
	char **v;
	size_t n, cap;
};

static int pending_add(struct pending *p, const char *name)
{
	if (p->n == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 16;
		char **nv = realloc(p->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		p->v = nv;
		p->cap = ncap;
	}
	p->v[p->n] = strdup(name);
	return p->v[p->n++] ? 0 : -ENOMEM;
}

static int read_layer(struct ovl_fs *fs, struct ovl_dirh *d,
		      const struct ovl_dirlayer *dl)
{
	char buf[65536] __attribute__((aligned(8)));
	struct pending wh = { 0 };
	int fd, err = 0;
	long n;

	fd = openat(dl->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (!err && (n = getdents_raw(fd, buf, sizeof(buf))) > 0) {
		for (long off = 0; !err && off < n;) {
			struct ovl_linux_dirent64 *de = (void *)(buf + off);
			const char *name = de->d_name;
			unsigned char type = de->d_type;
			int r;

			off += de->d_reclen;
			if (!strcmp(name, ".") || !strcmp(name, "..") ||
			    !strcmp(name, OVL_AUFS_OPQ))
				continue;
			if (!strncmp(name, OVL_AUFS_WH, 4)) {
				err = pending_add(&wh, name + 4);
				continue;
			}
			r = classify(fs, dl, name, &type);
			if (r < 0)
				err = r;
			else
				r = dirh_add(d, name,
					     ovl_layer_map_ino(fs, dl->layer, de->d_ino),
					     type, r == 0);
			if (r < 0)
				err = r;
		}
	}
	if (!err && n < 0)
		err = (int)n;
	for (size_t i = 0; i < wh.n; i++) {
		if (!err && dirh_add(d, wh.v[i], 0, DT_UNKNOWN, true) < 0)
			err = -ENOMEM;
		free(wh.v[i]);
	}
	free(wh.v);
	close(fd);
	return err;
}

static int dirh_build(struct ovl_fs *fs, struct ovl_inode *inode,
		      struct ovl_dirh **out)
{
	struct ovl_dirh *d = calloc(1, sizeof(*d));
	int err = 0;

	if (!d)
		return -ENOMEM;
	for (int i = 0; !err && i < inode->dirs->n; i++)
		err = read_layer(fs, d, &inode->dirs->d[i]);
	if (err) {
		dirh_free(d);
		return err;
	}
	/* the set is only needed while merging */
	free(d->set);
	d->set = NULL;
	*out = d;
	return 0;
}

/* true when the merged directory lists nothing (whiteouts aside). */
bool ovl_dir_is_empty(struct ovl_fs *fs, struct ovl_inode *inode)
{
	struct ovl_dirh *d;
	bool empty = true;

	if (dirh_build(fs, inode, &d))
		return false;
	for (size_t i = 0; i < d->n && empty; i++)
		empty = d->ents[i].hidden;
	dirh_free(d);
	return empty;
}

void ovl_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_inode *inode = ovl_inode_of(fs, ino);
	struct ovl_dirh *d;
	int err;

	ovl_stat_op(fs, OVL_OP_OPENDIR);
	if (!inode->dirs) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	err = dirh_build(fs, inode, &d);
	for (int i = 0; i < 40 && (err == -EMFILE || err == -ENFILE); i++) {
		ovl_reclaim_wait(fs);
		err = dirh_build(fs, inode, &d);
	}
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	fi->fh = (uintptr_t)d;
	/* Lower layers are immutable and the upper changes only through the
	 * daemon; the kernel drops a cached listing when a request of ours
	 * changes the directory, so it may cache listings. */
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	ovl_handle_add(fs, &d->h, dirh_close_at_exit);
	if (fuse_reply_open(req, fi) == -ENOENT) {
		ovl_handle_del(fs, &d->h);
		dirh_free(d);
	}
}

/*
 * rewinddir() asks for offset 0 again: it must see the directory as it is
 * now, so a listing already read from is built anew (the kernel serializes
 * readdir on one open directory).
 */
static int dirh_rewind(struct ovl_fs *fs, struct ovl_inode *inode,
		       struct ovl_dirh *d)
{
	struct ovl_dirh *fresh, tmp;
	int err;

	if (!d->read)
		return 0;
	err = dirh_build(fs, inode, &fresh);
	if (err)
		return err;
	/* swap the listings; the handle stays where it is linked */
	fresh->h = d->h;
	tmp = *d;
	*d = *fresh;
	*fresh = tmp;
	dirh_free(fresh);
	return 0;
}

/* Offsets: 1 is ".", 2 is "..", 3 + i is entry i. */
static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_inode *dir = ovl_inode_of(fs, ino);
	struct ovl_dirh *d = (struct ovl_dirh *)(uintptr_t)fi->fh;
	char *buf = malloc(size), *p = buf;
	size_t rem = size;
	int err = 0;
	bool pressure;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (off == 0)
		err = dirh_rewind(fs, dir, d);
	if (err) {
		free(buf);
		fuse_reply_err(req, -err);
		return;
	}
	d->read = true;
	/* short of fds: names only, the kernel looks up what it uses */
	pressure = plus && ovl_reclaim_pressure(fs);
	for (off_t o = off; !err; o++) {
		struct fuse_entry_param e = { 0 };
		struct ovl_inode *child = NULL;
		const char *name;
		size_t len;

		if (o == 0 || o == 1) {
			name = o == 0 ? "." : "..";
			e.attr.st_ino = dir->ino; /* d_ino 0 would hide ".." */
			e.attr.st_mode = S_IFDIR;
		} else if ((size_t)(o - 2) < d->n) {
			struct ovl_dirent *de = &d->ents[o - 2];

			if (de->hidden)
				continue;
			name = d->names + de->name;
			e.attr.st_ino = de->ino;
			e.attr.st_mode = DTTOIF(de->type);
		} else {
			break;
		}
		if (plus && o >= 2 && !pressure) {
			int r = ovl_lookup_name(fs, dir, name, &child);

			if (r == -ENOENT)
				continue;
			if (!r) {
				r = ovl_fill_entry(fs, child, &e);
				if (r)
					ovl_inode_forget(fs, child, 1);
			}
			if (r) {
				err = r;
				break;
			}
		}
		len = plus ? fuse_add_direntry_plus(req, p, rem, name, &e, o + 1) :
			     fuse_add_direntry(req, p, rem, name, &e.attr, o + 1);
		if (len > rem) {
			if (child)
				ovl_inode_forget(fs, child, 1);
			break;
		}
		p += len;
		rem -= len;
	}
	if (err && p == buf)
		fuse_reply_err(req, -err);
	else
		fuse_reply_buf(req, buf, size - rem);
	free(buf);
}

void ovl_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		 struct fuse_file_info *fi)
{
	ovl_stat_op(ovl_fs_of(req), OVL_OP_READDIR);
	do_readdir(req, ino, size, off, fi, false);
}

void ovl_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	ovl_stat_op(ovl_fs_of(req), OVL_OP_READDIRPLUS);
	do_readdir(req, ino, size, off, fi, true);
}

void ovl_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ovl_dirh *d = (struct ovl_dirh *)(uintptr_t)fi->fh;

	ovl_stat_op(ovl_fs_of(req), OVL_OP_RELEASEDIR);
	ovl_handle_del(ovl_fs_of(req), &d->h);
	dirh_free(d);
	fuse_reply_err(req, 0);
}

void ovl_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		  struct fuse_file_info *fi)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_inode *inode = ovl_inode_of(fs, ino);
	int err = 0;

	ovl_stat_op(fs, OVL_OP_FSYNCDIR);
	if (fs->p->fsync && ovl_is_upper(fs, inode) &&
	    (datasync ? fdatasync(inode->fd) : fsync(inode->fd)) < 0)
		err = errno;
	fuse_reply_err(req, err);
}
