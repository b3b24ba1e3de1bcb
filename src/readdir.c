// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Merged directory listings.  A listing is built when a reader starts at
 * offset 0: the layers of the directory's stack are read top down with
 * getdents64, each name is kept once (a hash set, so 100,000 entries cost
 * linear time), whiteouts of every encoding hide the name in the layers
 * below them.  The directory inode keeps the last listing built, for the
 * reads that continue it, until a reader reaches its end.
 *
 * There is no OPENDIR: the daemon answers it ENOSYS, so the kernel sends
 * neither OPENDIR nor RELEASEDIR again, two round trips fewer per
 * directory listed, and reads carry no handle.  The offset of an entry is
 * therefore a cookie derived from its name, as ext4's hash order does:
 * entries are listed in cookie order and a read at offset c continues with
 * the first cookie above c, whichever listing it finds.  A name present
 * during the whole listing is listed once, however the directory changes
 * meanwhile; telldir/seekdir positions stay valid.  readdirplus looks every
 * entry up in the same pass, starting at the layer the listing found it in.
 */
#include "config.h"

#include "overlay.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* One name of the merged listing. */
struct ovl_dirent {
	uint64_t cookie;	/* offset of the entry after it; from the name */
	size_t name;		/* offset of the name in names */
	uint64_t ino;		/* st_ino to report */
	int layer;		/* the topmost layer holding the name */
	unsigned char type;	/* DT_* */
	bool hidden;		/* a whiteout: listed nowhere, hides lower names */
};

/*
 * A merged listing.  While built it holds whiteouts too (they hide names
 * of lower layers); once built only visible entries, in cookie order.
 * Shared by the readers of one directory: refs counts the directory's own
 * reference (ovl_inode.listing) and each reader's, under the directory's
 * lock.
 */
struct ovl_listing {
	unsigned refs;		/* references; the directory's lock */
	struct ovl_dirent *ents; /* entries */
	size_t n;		/* entries used */
	size_t cap;		/* entries allocated */
	char *names;		/* NUL-separated names */
	size_t names_len;	/* bytes used in names */
	size_t names_cap;	/* bytes allocated */
	uint32_t *set;		/* while built: hash set, index + 1 into ents,
				 * 0 = empty */
	size_t set_size;	/* slots (power of two) */
};

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static const char *ent_name(const struct ovl_listing *d, size_t i)
{
	return d->names + d->ents[i].name;
}

/* Slot of @name in the set: holding it, or the empty one to use. */
static size_t set_slot(const struct ovl_listing *d, const char *name)
{
	size_t mask = d->set_size - 1, s = name_hash(name) & mask;

	while (d->set[s] && strcmp(ent_name(d, d->set[s] - 1), name))
		s = (s + 1) & mask;
	return s;
}

static int set_grow(struct ovl_listing *d)
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
static int listing_add(struct ovl_listing *d, const char *name, uint64_t ino,
		       int layer, unsigned char type, bool hidden)
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
					     .layer = layer, .type = type,
					     .hidden = hidden };
	d->names_len += len;
	d->set[s] = (uint32_t)++d->n;
	return 1;
}

static void listing_free(struct ovl_listing *l)
{
	if (!l)
		return;
	free(l->ents);
	free(l->names);
	free(l->set);
	free(l);
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

static int read_layer(struct ovl_fs *fs, struct ovl_listing *d,
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
				r = listing_add(d, name,
					     ovl_layer_map_ino(fs, dl->layer, de->d_ino),
					     dl->layer, type, r == 0);
			if (r < 0)
				err = r;
		}
	}
	if (!err && n < 0)
		err = (int)n;
	for (size_t i = 0; i < wh.n; i++) {
		if (!err && listing_add(d, wh.v[i], 0, dl->layer, DT_UNKNOWN, true) < 0)
			err = -ENOMEM;
		free(wh.v[i]);
	}
	free(wh.v);
	close(fd);
	return err;
}

/*
 * The offset cookie of a name: FNV-1a, its bits mixed (MurmurHash3's
 * finaliser), in [3, 2^62 + 2]: 1 and 2 are the offsets after "." and "..".
 * Fixed, not keyed: a restarted daemon continues a listing where the kernel
 * left it.
 */
static uint64_t name_cookie(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return (h >> 2) + 3;
}

static int cookie_cmp(const void *a, const void *b, void *names)
{
	const struct ovl_dirent *x = a, *y = b;

	if (x->cookie != y->cookie)
		return x->cookie < y->cookie ? -1 : 1;
	return strcmp((char *)names + x->name, (char *)names + y->name);
}

/*
 * Drop whiteouts and put the entries in cookie order.  Two names with one
 * hash (about 1 in 10^9 for a directory of 100,000 names) get consecutive
 * cookies, the second one bumped by one.
 */
static void listing_order(struct ovl_listing *l)
{
	size_t n = 0;

	for (size_t i = 0; i < l->n; i++) {
		if (l->ents[i].hidden)
			continue;
		l->ents[n] = l->ents[i];
		l->ents[n].cookie = name_cookie(l->names + l->ents[n].name);
		n++;
	}
	l->n = n;
	if (n < 2)
		return; /* an empty listing has no array to sort */
	qsort_r(l->ents, n, sizeof(*l->ents), cookie_cmp, l->names);
	for (size_t i = 1; i < n; i++)
		if (l->ents[i].cookie <= l->ents[i - 1].cookie)
			l->ents[i].cookie = l->ents[i - 1].cookie + 1;
}

/* The merged listing of @inode as it is now, whiteouts still in. */
static int listing_build(struct ovl_fs *fs, struct ovl_inode *inode,
			 struct ovl_listing **out)
{
	struct ovl_listing *l = calloc(1, sizeof(*l));
	int err = 0;

	if (!l)
		return -ENOMEM;
	for (int i = 0; !err && i < inode->dirs->n; i++)
		err = read_layer(fs, l, &inode->dirs->d[i]);
	if (err) {
		listing_free(l);
		return err;
	}
	/* the set is only needed while merging */
	free(l->set);
	l->set = NULL;
	*out = l;
	return 0;
}

/* true when the merged directory lists nothing (whiteouts aside). */
bool ovl_dir_is_empty(struct ovl_fs *fs, struct ovl_inode *inode)
{
	struct ovl_listing *l;
	bool empty = true;

	if (listing_build(fs, inode, &l))
		return false;
	for (size_t i = 0; i < l->n && empty; i++)
		empty = l->ents[i].hidden;
	listing_free(l);
	return empty;
}

/*
 * ENOSYS: the kernel then opens directories without asking (with
 * FOPEN_KEEP_CACHE and FOPEN_CACHE_DIR, as this daemon answered before:
 * lower layers are immutable and the upper changes only through the
 * daemon, and the kernel drops a cached listing when a request of ours
 * changes the directory) and sends no RELEASEDIR.
 */
void ovl_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	ovl_stat_op(ovl_fs_of(req), OVL_OP_OPENDIR);
	fuse_reply_err(req, ENOSYS);
}

/* Drop one reference; called with the directory's lock held. */
static struct ovl_listing *listing_unref_locked(struct ovl_listing *l)
{
	return l && --l->refs == 0 ? l : NULL;
}

static void listing_put(struct ovl_inode *dir, struct ovl_listing *l)
{
	pthread_mutex_lock(&dir->lock);
	l = listing_unref_locked(l);
	pthread_mutex_unlock(&dir->lock);
	listing_free(l);
}

/*
 * The listing a read at @off uses, with a reference for the caller: a
 * fresh one at offset 0 (rewinddir() must see the directory as it is now),
 * else the directory's current one, built anew when there is none.
 */
static int listing_get(struct ovl_fs *fs, struct ovl_inode *dir, off_t off,
		       struct ovl_listing **out)
{
	struct ovl_listing *l = NULL, *old;
	int err, tries = 0;

	if (off != 0) {
		pthread_mutex_lock(&dir->lock);
		l = dir->listing;
		if (l)
			l->refs++;
		pthread_mutex_unlock(&dir->lock);
		if (l) {
			*out = l;
			return 0;
		}
	}
	do
		err = listing_build(fs, dir, &l);
	while (ovl_fd_retry(fs, err, &tries));
	if (err)
		return err;
	listing_order(l);
	l->refs = 2;
	pthread_mutex_lock(&dir->lock);
	old = listing_unref_locked(dir->listing);
	dir->listing = l;
	pthread_mutex_unlock(&dir->lock);
	listing_free(old);
	*out = l;
	return 0;
}

/* A reader reached the end: the directory stops keeping @l. */
static void listing_done(struct ovl_inode *dir, struct ovl_listing *l)
{
	struct ovl_listing *drop = NULL;

	pthread_mutex_lock(&dir->lock);
	if (dir->listing == l) {
		dir->listing = NULL;
		drop = listing_unref_locked(l);
	}
	pthread_mutex_unlock(&dir->lock);
	listing_free(drop);
}

/* At the inode's end. */
void ovl_listing_release(struct ovl_inode *dir)
{
	listing_free(listing_unref_locked(dir->listing));
	dir->listing = NULL;
}

/* Index of the first entry listed after offset @off. */
static size_t listing_seek(const struct ovl_listing *l, off_t off)
{
	size_t lo = 0, hi = l->n;

	if (off < 2)
		return 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->ents[mid].cookie <= (uint64_t)off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Offsets: 1 is after ".", 2 after "..", an entry's cookie after it. */
static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       bool plus)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_inode *dir = ovl_inode_of(fs, ino);
	struct ovl_listing *l;
	char *buf, *p;
	size_t rem = size, i;
	int err;
	bool pressure;

	if (!dir->dirs) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	buf = p = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	err = listing_get(fs, dir, off, &l);
	if (err) {
		free(buf);
		fuse_reply_err(req, -err);
		return;
	}
	/* short of fds: names only, the kernel looks up what it uses */
	pressure = plus && ovl_reclaim_pressure(fs);
	i = listing_seek(l, off);
	for (off_t o = off < 2 ? off : 2; !err; o++) {
		struct fuse_entry_param e = { 0 };
		struct ovl_inode *child = NULL;
		const char *name;
		off_t next;
		size_t len;
		int from = -1;

		if (o == 0 || o == 1) {
			name = o == 0 ? "." : "..";
			next = o + 1;
			e.attr.st_ino = dir->ino; /* d_ino 0 would hide ".." */
			e.attr.st_mode = S_IFDIR;
		} else if (i < l->n) {
			struct ovl_dirent *de = &l->ents[i++];

			name = l->names + de->name;
			next = (off_t)de->cookie;
			from = de->layer;
			e.attr.st_ino = de->ino;
			e.attr.st_mode = DTTOIF(de->type);
		} else {
			break;
		}
		if (plus && o >= 2 && !pressure) {
			int r = ovl_lookup_entry(fs, dir, name, from, &child, &e);

			if (r == -ENOENT)
				continue;
			if (r == -EMFILE || r == -ENFILE) {
				/* out of fds meanwhile: names only from here on,
				 * as under pressure (an error would fail the
				 * listing when this entry comes first) */
				pressure = true;
				memset(&e, 0, sizeof(e));
				e.attr.st_ino = l->ents[i - 1].ino;
				e.attr.st_mode = DTTOIF(l->ents[i - 1].type);
				ovl_reclaim_now(fs);
			} else if (r) {
				err = r;
				break;
			}
		}
		len = plus ? fuse_add_direntry_plus(req, p, rem, name, &e, next) :
			     fuse_add_direntry(req, p, rem, name, &e.attr, next);
		if (len > rem) {
			if (child)
				ovl_inode_forget(fs, child, 1);
			break;
		}
		p += len;
		rem -= len;
	}
	if (!err && p == buf)
		listing_done(dir, l);
	listing_put(dir, l);
	if (err && p == buf)
		fuse_reply_err(req, -err);
	else
		fuse_reply_buf(req, buf, size - rem);
	free(buf);
}

void ovl_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		 struct fuse_file_info *fi)
{
	(void)fi;
	ovl_stat_op(ovl_fs_of(req), OVL_OP_READDIR);
	do_readdir(req, ino, size, off, false);
}

void ovl_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)fi;
	ovl_stat_op(ovl_fs_of(req), OVL_OP_READDIRPLUS);
	do_readdir(req, ino, size, off, true);
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
