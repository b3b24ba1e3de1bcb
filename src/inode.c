// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Overlay inodes: the table keyed by (st_dev, st_ino) of the topmost real
 * file, FUSE node ids, the kernel's lookup count kept apart from our own
 * references, forget, and the attribute requests (getattr, setattr,
 * readlink, access, statfs).
 */
#include "config.h"

#include "overlay.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>

static size_t hash_key(dev_t dev, ino_t ino, size_t size)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev;

	h ^= h >> 29;
	return (size_t)h & (size - 1);
}

int ovl_itable_init(struct ovl_fs *fs)
{
	fs->itable_size = 1024;
	fs->itable = calloc(fs->itable_size, sizeof(*fs->itable));
	if (!fs->itable)
		return -ENOMEM;
	fs->handles.prev = fs->handles.next = &fs->handles;
	fs->reclaim_soft = (size_t)-1;
	if (pthread_cond_init(&fs->reclaim_cond, NULL))
		return -ENOMEM;
	if (pthread_mutex_init(&fs->handles_lock, NULL))
		return -ENOMEM;
	return pthread_mutex_init(&fs->itable_lock, NULL) ? -ENOMEM : 0;
}

void ovl_handle_add(struct ovl_fs *fs, struct ovl_handle *h,
		    void (*close)(struct ovl_fs *fs, struct ovl_handle *h))
{
	h->close = close;
	pthread_mutex_lock(&fs->handles_lock);
	h->next = &fs->handles;
	h->prev = fs->handles.prev;
	h->prev->next = h;
	fs->handles.prev = h;
	pthread_mutex_unlock(&fs->handles_lock);
}

void ovl_handle_del(struct ovl_fs *fs, struct ovl_handle *h)
{
	pthread_mutex_lock(&fs->handles_lock);
	h->prev->next = h->next;
	h->next->prev = h->prev;
	h->prev = h->next = h;
	pthread_mutex_unlock(&fs->handles_lock);
}

/* At exit, once no request runs: close what the kernel never released. */
void ovl_handles_close_all(struct ovl_fs *fs)
{
	while (fs->handles.next != &fs->handles) {
		struct ovl_handle *h = fs->handles.next;

		ovl_handle_del(fs, h);
		h->close(fs, h);
	}
}

void ovl_dirstack_free(struct ovl_dirstack *ds)
{
	if (!ds)
		return;
	for (int i = 0; i < ds->n; i++)
		close(ds->d[i].fd);
	free(ds);
}

/* A directory's fd is its stack's topmost entry and is closed with it. */
void ovl_found_release(struct ovl_found *f)
{
	if (f->fd >= 0 && !f->dirs)
		close(f->fd);
	f->fd = -1;
	if (f->data_fd >= 0)
		close(f->data_fd);
	f->data_fd = -1;
	ovl_dirstack_free(f->dirs);
	f->dirs = NULL;
}

static void inode_free(struct ovl_fs *fs, struct ovl_inode *inode)
{
	if (!inode->dirs)
		close(inode->fd);
	if (inode->origin_fd >= 0 && !inode->old_dirs)
		close(inode->origin_fd);
	if (inode->data_fd >= 0)
		close(inode->data_fd);
	ovl_listing_release(inode);
	ovl_dirstack_free(inode->dirs);
	ovl_dirstack_free(inode->old_dirs);
	free(inode->name);
	pthread_mutex_destroy(&inode->lock);
	free(inode);
	atomic_fetch_sub(&fs->stats.inodes, 1);
}

void ovl_itable_destroy(struct ovl_fs *fs)
{
	for (size_t b = 0; b < fs->itable_size; b++) {
		struct ovl_inode *i = fs->itable[b], *next;

		for (; i; i = next) {
			next = i->hnext;
			inode_free(fs, i);
		}
	}
	free(fs->itable);
	fs->itable = NULL;
	pthread_mutex_destroy(&fs->itable_lock);
	pthread_mutex_destroy(&fs->handles_lock);
	pthread_cond_destroy(&fs->reclaim_cond);
}

/* Double the bucket array; called with itable_lock held. */
static void itable_grow(struct ovl_fs *fs)
{
	size_t nsize = fs->itable_size * 2;
	struct ovl_inode **nt = calloc(nsize, sizeof(*nt));

	if (!nt)
		return; /* keep the longer chains */
	for (size_t b = 0; b < fs->itable_size; b++) {
		struct ovl_inode *i = fs->itable[b], *next;

		for (; i; i = next) {
			size_t h = hash_key(i->key_dev, i->key_ino, nsize);

			next = i->hnext;
			i->hnext = nt[h];
			nt[h] = i;
		}
	}
	free(fs->itable);
	fs->itable = nt;
	fs->itable_size = nsize;
}

/*
 * The inode of (@dev, @ino); one found "by name" only for the name it was
 * made for (@parent, @name).  itable_lock held.
 */
static struct ovl_inode *itable_find(struct ovl_fs *fs, dev_t dev, ino_t ino,
				     struct ovl_inode *parent, const char *name)
{
	struct ovl_inode *i = fs->itable[hash_key(dev, ino, fs->itable_size)];

	for (; i; i = i->hnext) {
		if (i->key_dev != dev || i->key_ino != ino)
			continue;
		if (i->byname && (i->parent != parent || !name || !i->name ||
				  strcmp(i->name, name)))
			continue;
		return i;
	}
	return NULL;
}

/*
 * Without an index, a copy-up breaks a lower hard link: each name of a
 * lower file with several links is then its own inode from the start, as
 * kernel overlayfs does with index=off (ovl_hash_bylower), so what a name
 * shows never depends on which lookups the kernel happened to cache.
 */
static bool found_byname(const struct ovl_fs *fs, const struct ovl_found *f)
{
	return fs->upper && fs->index_fd < 0 && f->layer > 0 && !f->dirs &&
	       !S_ISDIR(f->st.st_mode) && f->st.st_nlink > 1;
}

static void itable_remove(struct ovl_fs *fs, struct ovl_inode *inode)
{
	struct ovl_inode **pp;

	pp = &fs->itable[hash_key(inode->key_dev, inode->key_ino,
				  fs->itable_size)];
	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == inode) {
			*pp = inode->hnext;
			fs->itable_count--;
			return;
		}
	}
}

static struct ovl_inode *inode_new(struct ovl_fs *fs, struct ovl_found *f,
				   struct ovl_inode *parent, const char *name)
{
	struct ovl_inode *inode = calloc(1, sizeof(*inode));

	if (!inode)
		return NULL;
	inode->name = name ? strdup(name) : NULL;
	if (name && !inode->name) {
		free(inode);
		return NULL;
	}
	if (pthread_mutex_init(&inode->lock, NULL)) {
		free(inode);
		return NULL;
	}
	inode->key_dev = f->st.st_dev;
	inode->key_ino = f->st.st_ino;
	inode->lock_dev = f->st.st_dev;
	inode->lock_ino = f->st.st_ino;
	inode->type = f->st.st_mode & S_IFMT;
	inode->layer = f->layer;
	inode->fd = f->fd;
	inode->dirs = f->dirs;
	inode->merged = f->dirs && f->dirs->n > 1;
	inode->indexed = f->indexed ||
			 (f->layer == 0 && !f->dirs && f->st.st_nlink > 1);
	inode->ino = f->ino ? f->ino : ovl_layer_map_ino(fs, f->layer, f->st.st_ino);
	inode->origin_fd = -1;
	inode->slot = -1;
	inode->oldslot = -1;
	/* what the request has just made carries no protattr record */
	atomic_init(&inode->prot, f->made ? 0 : -1);
	/* nor a file capability (xattr.c) */
	atomic_init(&inode->fcap, f->made ? 1 : 0);
	inode->data_fd = f->data_fd;
	inode->byname = found_byname(fs, f);
	inode->parent = parent;
	f->fd = -1;
	f->data_fd = -1;
	f->dirs = NULL;
	atomic_fetch_add(&fs->stats.inodes, 1);
	return inode;
}

/*
 * The inode for what a lookup of @name in @parent found, with one more
 * kernel lookup reference.  An inode already in the table keeps its fds and
 * its first name; @f is released.
 */
struct ovl_inode *ovl_inode_get_found(struct ovl_fs *fs, struct ovl_found *f,
				      struct ovl_inode *parent, const char *name)
{
	struct ovl_inode *inode;

	pthread_mutex_lock(&fs->itable_lock);
	inode = itable_find(fs, f->st.st_dev, f->st.st_ino, parent, name);
	if (!inode) {
		inode = inode_new(fs, f, parent, name);
		if (inode) {
			if (parent)
				parent->nref++;
			size_t h;

			if (fs->itable_count >= fs->itable_size)
				itable_grow(fs);
			h = hash_key(inode->key_dev, inode->key_ino,
				     fs->itable_size);
			inode->hnext = fs->itable[h];
			fs->itable[h] = inode;
			fs->itable_count++;
			if (fs->itable_count > fs->reclaim_soft)
				ovl_reclaim_kick(fs);
		}
	}
	if (inode) {
		inode->nlookup++;
		ovl_nodetab_bind(fs, inode, parent, name);
		ovl_nodetab_track(fs, inode);
		ovl_inode_lru_touch(fs, inode);
	}
	pthread_mutex_unlock(&fs->itable_lock);
	ovl_found_release(f);
	return inode;
}

int ovl_inode_make_root(struct ovl_fs *fs, struct ovl_found *f)
{
	fs->root = ovl_inode_get_found(fs, f, NULL, NULL);
	if (!fs->root)
		return -ENOMEM;
	fs->root->nref = 1; /* never freed while mounted */
	return 0;
}

/*
 * A node id is the inode's address, with restart=on the worker's
 * generation in its top bits; requests naming another generation's ids
 * never get here (takeover.c answers them).
 */
struct ovl_inode *ovl_inode_of(struct ovl_fs *fs, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return fs->root;
	return (struct ovl_inode *)(uintptr_t)(ino & ~OVL_GEN_MASK);
}

/* The id the kernel knows @inode by: a dead worker's it is bound to
 * (nodetab.c), else this worker's own. */
fuse_ino_t ovl_nodeid(struct ovl_fs *fs, struct ovl_inode *inode)
{
	int old = inode->oldslot;

	if (old >= 0 && inode != fs->root) {
		fuse_ino_t id = ovl_nodetab_slot_id(fs, old);

		if (id)
			return id;
	}
	return ovl_nodeid_own(fs, inode);
}

/* This worker's own id of @inode, which ovl_inode_of() reads. */
fuse_ino_t ovl_nodeid_own(struct ovl_fs *fs, struct ovl_inode *inode)
{
	if (inode == fs->root)
		return FUSE_ROOT_ID;
	return (fuse_ino_t)(uintptr_t)inode | fs->gen_tag;
}

/* The LRU list of reclaim.c; itable_lock held. */
static void lru_del(struct ovl_fs *fs, struct ovl_inode *inode)
{
	if (inode->lru_prev)
		inode->lru_prev->lru_next = inode->lru_next;
	else if (fs->lru_head == inode)
		fs->lru_head = inode->lru_next;
	if (inode->lru_next)
		inode->lru_next->lru_prev = inode->lru_prev;
	else if (fs->lru_tail == inode)
		fs->lru_tail = inode->lru_prev;
	inode->lru_prev = inode->lru_next = NULL;
}

void ovl_inode_lru_touch(struct ovl_fs *fs, struct ovl_inode *inode)
{
	if (fs->lru_tail == inode)
		return;
	lru_del(fs, inode);
	inode->lru_prev = fs->lru_tail;
	if (fs->lru_tail)
		fs->lru_tail->lru_next = inode;
	else
		fs->lru_head = inode;
	fs->lru_tail = inode;
}

/*
 * Take @inode out of the table once neither count keeps it, then its
 * parent likewise; itable_lock held.  What is taken out is chained on
 * *@dead (through hnext, free once out of the table) for free_dead() to
 * close and free after the lock is dropped: closing fds under it held up
 * every lookup during a FORGET batch (perf of a tree walk that the reclaim
 * thread trims).
 */
static void maybe_free_locked(struct ovl_fs *fs, struct ovl_inode *inode,
			      struct ovl_inode **dead)
{
	while (inode && !inode->nlookup && !inode->nref) {
		struct ovl_inode *parent = inode->parent;

		lru_del(fs, inode);
		itable_remove(fs, inode);
		fs->inodes_freed++;
		inode->hnext = *dead;
		*dead = inode;
		if (parent)
			parent->nref--;
		inode = parent;
	}
}

/* Free what maybe_free_locked() took out; itable_lock not held. */
static void free_dead(struct ovl_fs *fs, struct ovl_inode *dead)
{
	while (dead) {
		struct ovl_inode *next = dead->hnext;

		inode_free(fs, dead);
		dead = next;
	}
}

/* After a rename: @inode's name is now @newname in @newdir. */
void ovl_inode_moved(struct ovl_fs *fs, struct ovl_inode *inode,
		     struct ovl_inode *newdir, const char *newname)
{
	char *n = strdup(newname);
	struct ovl_inode *old, *dead = NULL;

	if (!n)
		return; /* keeps the old name: only a later copy-up uses it */
	pthread_mutex_lock(&fs->itable_lock);
	old = inode->parent;
	newdir->nref++;
	inode->parent = newdir;
	free(inode->name);
	inode->name = n;
	if (inode->nlookup)
		ovl_nodetab_track(fs, inode);
	if (old)
		old->nref--;
	maybe_free_locked(fs, old, &dead);
	pthread_mutex_unlock(&fs->itable_lock);
	free_dead(fs, dead);
}

/* @inode, made without a name (O_TMPFILE), got one by a link: it is
 * known by it from now on, to a copy-up and to a restart's lookup. */
void ovl_inode_named(struct ovl_fs *fs, struct ovl_inode *inode,
		     struct ovl_inode *dir, const char *name)
{
	bool nameless;

	pthread_mutex_lock(&fs->itable_lock);
	nameless = !inode->name;
	pthread_mutex_unlock(&fs->itable_lock);
	if (nameless)
		ovl_inode_moved(fs, inode, dir, name);
}

/* Move @inode to a new table key (after copy-up); itable_lock not held. */
void ovl_inode_rekey(struct ovl_fs *fs, struct ovl_inode *inode, dev_t dev,
		     ino_t ino)
{
	pthread_mutex_lock(&fs->itable_lock);
	itable_remove(fs, inode);
	fs->itable_count++;
	inode->key_dev = dev;
	inode->key_ino = ino;
	inode->byname = false;
	ovl_nodetab_rekeyed(fs, inode, dev == 0);
	{
		size_t h = hash_key(dev, ino, fs->itable_size);

		inode->hnext = fs->itable[h];
		fs->itable[h] = inode;
	}
	pthread_mutex_unlock(&fs->itable_lock);
}

/*
 * Take a superseded @inode out of lookups: its key becomes one no real
 * file has (device 0), so the next lookup of its file makes a new inode.
 */
void ovl_inode_unhash(struct ovl_fs *fs, struct ovl_inode *inode)
{
	ovl_inode_rekey(fs, inode, 0, (ino_t)(uintptr_t)inode);
}

/* The kernel dropped @n lookups of @inode; itable_lock held. */
static void forget_locked(struct ovl_fs *fs, struct ovl_inode *inode,
			  uint64_t n, struct ovl_inode **dead)
{
	inode->nlookup = n > inode->nlookup ? 0 : inode->nlookup - n;
	ovl_nodetab_track(fs, inode);
	maybe_free_locked(fs, inode, dead);
}

void ovl_inode_forget(struct ovl_fs *fs, struct ovl_inode *inode, uint64_t n)
{
	struct ovl_inode *dead = NULL;

	pthread_mutex_lock(&fs->itable_lock);
	forget_locked(fs, inode, n, &dead);
	pthread_mutex_unlock(&fs->itable_lock);
	free_dead(fs, dead);
}

void ovl_inode_ref(struct ovl_fs *fs, struct ovl_inode *inode)
{
	pthread_mutex_lock(&fs->itable_lock);
	inode->nref++;
	pthread_mutex_unlock(&fs->itable_lock);
}

void ovl_inode_unref(struct ovl_fs *fs, struct ovl_inode *inode)
{
	struct ovl_inode *dead = NULL;

	pthread_mutex_lock(&fs->itable_lock);
	inode->nref--;
	maybe_free_locked(fs, inode, &dead);
	pthread_mutex_unlock(&fs->itable_lock);
	free_dead(fs, dead);
}

bool ovl_is_upper(const struct ovl_fs *fs, const struct ovl_inode *inode)
{
	return fs->upper && inode->layer == 0;
}

/*
 * "a", "i" or "ai" as kernel overlayfs keeps chattr +a and +i of a lower
 * file on its copy (overlay.protattr), as OVL_PROT_* flags.
 */
unsigned ovl_protattr_parse(const char *v, size_t n)
{
	unsigned prot = 0;

	for (size_t i = 0; i < n; i++) {
		if (v[i] == 'a')
			prot |= OVL_PROT_APPEND;
		else if (v[i] == 'i')
			prot |= OVL_PROT_IMMUTABLE;
	}
	return prot;
}

static unsigned read_protection(struct ovl_fs *fs, struct ovl_inode *inode)
{
	struct statx stx;
	unsigned prot = 0;
	char v[8];
	ssize_t n;

	if (ovl_is_upper(fs, inode)) {
		n = ovl_fgetxattr(inode->fd, OVL_XNAME(fs, "overlay.protattr"), v,
				  sizeof(v));
		return n > 0 ? ovl_protattr_parse(v, (size_t)n) : 0;
	}
	if (statx(inode->fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, 0, &stx) < 0)
		return 0;
	if (stx.stx_attributes & STATX_ATTR_APPEND)
		prot |= OVL_PROT_APPEND;
	if (stx.stx_attributes & STATX_ATTR_IMMUTABLE)
		prot |= OVL_PROT_IMMUTABLE;
	return prot;
}

/*
 * chattr +a and +i of the file or directory @inode shows: a lower file's
 * own flags, or on its copy in the upper the overlay.protattr record
 * copy-up leaves, as kernel overlayfs.  FUSE cannot show the flags, but
 * they hold through the mount as on the layer: the callers refuse what
 * the kernel's VFS refuses.
 */
unsigned ovl_protection(struct ovl_fs *fs, struct ovl_inode *inode)
{
	int prot = atomic_load(&inode->prot);

	if (prot < 0) {
		prot = (int)read_protection(fs, inode);
		atomic_store(&inode->prot, prot);
	}
	return (unsigned)prot;
}

void ovl_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct ovl_fs *fs = ovl_fs_of(req);

	ovl_stat_op(fs, OVL_OP_FORGET);
	ovl_inode_forget(fs, ovl_inode_of(fs, ino), nlookup);
	fuse_reply_none(req);
}

void ovl_forget_multi(fuse_req_t req, size_t count,
		      struct fuse_forget_data *forgets)
{
	struct ovl_fs *fs = ovl_fs_of(req);

	struct ovl_inode *dead = NULL;

	ovl_stat_op(fs, OVL_OP_FORGET);
	/* the whole batch under one hold of the lock, and nothing closed
	 * under it */
	pthread_mutex_lock(&fs->itable_lock);
	for (size_t i = 0; i < count; i++)
		forget_locked(fs, ovl_inode_of(fs, forgets[i].ino),
			      forgets[i].nlookup, &dead);
	pthread_mutex_unlock(&fs->itable_lock);
	free_dead(fs, dead);
	fuse_reply_none(req);
}

/* Map an on-disk owner to what the mount shows (squash options). */
static void map_owner(struct ovl_fs *fs, struct stat *st)
{
	struct ovl_params *p = fs->p;

	st->st_uid = ovl_idmap_apply(p->uidmap, p->nuidmap, st->st_uid, false);
	st->st_gid = ovl_idmap_apply(p->gidmap, p->ngidmap, st->st_gid, false);
	if (p->squash_to_root)
		st->st_uid = st->st_gid = 0;
	if (p->squash_uid >= 0)
		st->st_uid = (uid_t)p->squash_uid;
	if (p->squash_gid >= 0)
		st->st_gid = (gid_t)p->squash_gid;
}

int ovl_inode_stat(struct ovl_fs *fs, struct ovl_inode *inode, struct stat *st)
{
	if (fstatat(inode->fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	ovl_inode_stat_fill(fs, inode, st);
	return 0;
}

/* What the mount shows of @inode, from @st, the stat of its real file. */
void ovl_inode_stat_fill(struct ovl_fs *fs, struct ovl_inode *inode,
			 struct stat *st)
{
	ovl_override_stat(fs, inode->layer, inode->fd, st);
	st->st_ino = inode->ino;
	if (inode->data_fd >= 0) {
		struct stat dst;

		/* as the kernel: the blocks are the lower file's */
		if (fstatat(inode->data_fd, "", &dst, AT_EMPTY_PATH) == 0)
			st->st_blocks = dst.st_blocks;
	}
	if (inode->indexed)
		st->st_nlink = ovl_index_nlink(fs, inode->fd, st);
	/* as kernel overlayfs: counting subdirectories across layers is not
	 * worth it, and nlink 1 tells find(1) not to rely on it */
	if (S_ISDIR(st->st_mode) && (inode->merged || fs->p->static_nlink))
		st->st_nlink = 1;
	map_owner(fs, st);
}

/*
 * How long the kernel may keep @inode's attributes: a superseded inode
 * shares its upper file with the inode that replaced it, whose writes
 * (passed through) the daemon never sees, so its attributes are asked for
 * each time.
 */
double ovl_attr_timeout(struct ovl_fs *fs, struct ovl_inode *inode)
{
	return inode->superseded ? 0 : fs->p->timeout;
}

/*
 * The metadata of @inode changed through its node id: when it is a
 * superseded inode, the inode that replaced it (same upper file, keyed by
 * it) has attributes in the kernel's cache that are now old.  Attributes
 * only, so no lock of the kernel's is taken (see inval_attrs in
 * copy_up.c).
 */
void ovl_inode_changed(struct ovl_fs *fs, struct ovl_inode *inode)
{
	struct ovl_inode *peer;
	fuse_ino_t id = 0;
	struct stat st;

	if (!inode->superseded || !fs->se ||
	    fstatat(inode->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return;
	pthread_mutex_lock(&fs->itable_lock);
	peer = itable_find(fs, st.st_dev, st.st_ino, NULL, NULL);
	if (peer && peer != inode)
		id = ovl_nodeid(fs, peer);
	pthread_mutex_unlock(&fs->itable_lock);
	/* a node id the kernel forgot meanwhile is answered ENOENT: harmless */
	if (id)
		fuse_lowlevel_notify_inval_inode(fs->se, id, -1, 0);
}

void ovl_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_inode *inode;
	struct stat st;
	int err;

	ovl_stat_op(fs, OVL_OP_GETATTR);
	if (ino == FUSE_ROOT_ID)
		ovl_stats_transport(fs, req);
	inode = ovl_inode_of(fs, ino);
	err = ovl_inode_stat(fs, inode, &st);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_attr(req, &st, ovl_attr_timeout(fs, inode));
}

/*
 * xattr_permissions: chmod and chown of a file or directory change the
 * owner and mode recorded in the upper's override xattr, not the real ones
 * (a rootless daemon cannot give files other owners).
 */
static int setattr_override(struct ovl_fs *fs, struct ovl_inode *inode,
			    const struct stat *attr, int to_set)
{
	struct ovl_params *p = fs->p;
	struct stat st;

	if (fstatat(inode->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	ovl_override_stat(fs, 0, inode->fd, &st);
	if (to_set & FUSE_SET_ATTR_MODE)
		st.st_mode = (st.st_mode & S_IFMT) | (attr->st_mode & 07777);
	if (to_set & FUSE_SET_ATTR_UID)
		st.st_uid = ovl_idmap_apply(p->uidmap, p->nuidmap, attr->st_uid, true);
	if (to_set & FUSE_SET_ATTR_GID)
		st.st_gid = ovl_idmap_apply(p->gidmap, p->ngidmap, attr->st_gid, true);
	return ovl_override_set(fs, inode->fd, st.st_uid, st.st_gid, st.st_mode);
}

/* The setattr bits that change something besides the ctime. */
#define OVL_SET_ATTR_CHANGES (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | \
			      FUSE_SET_ATTR_GID | FUSE_SET_ATTR_SIZE | \
			      FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)

/*
 * chattr +a and +i (ovl_protection) forbid what the kernel's
 * notify_change() refuses: every change of an immutable file; of an
 * append-only one all but setting its times to now.
 */
static int may_setattr(struct ovl_fs *fs, struct ovl_inode *inode, int to_set)
{
	unsigned prot = ovl_protection(fs, inode);

	if (!prot)
		return 0;
	if ((prot & OVL_PROT_IMMUTABLE) ||
	    (to_set & (FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_MODE |
		       FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		return -EPERM;
	if ((to_set & FUSE_SET_ATTR_ATIME) && !(to_set & FUSE_SET_ATTR_ATIME_NOW))
		return -EPERM;
	if ((to_set & FUSE_SET_ATTR_MTIME) && !(to_set & FUSE_SET_ATTR_MTIME_NOW))
		return -EPERM;
	return 0;
}

static int do_setattr(struct ovl_fs *fs, struct ovl_inode *inode,
		      struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	char proc[64];

	int err;

	if (fs->p->read_only)
		return -EROFS;
	err = may_setattr(fs, inode, to_set);
	if (err)
		return err;
	if (to_set & FUSE_SET_ATTR_SIZE)
		err = ovl_copy_up(fs, inode, attr->st_size == 0);
	else
		err = ovl_copy_up_meta(fs, inode);
	if (err)
		return err;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", inode->fd);
	if ((to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) &&
	    fs->upper && fs->upper->override &&
	    (S_ISREG(inode->type) || S_ISDIR(inode->type))) {
		err = setattr_override(fs, inode, attr, to_set);
		if (err)
			return err;
		to_set &= ~(FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID);
	}
	if (to_set & FUSE_SET_ATTR_MODE) {
		if (S_ISLNK(inode->type))
			return -EOPNOTSUPP;
		if (chmod(proc, attr->st_mode & 07777) < 0)
			return -errno;
	}
	if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		struct ovl_params *p = fs->p;
		uid_t u = (to_set & FUSE_SET_ATTR_UID) ?
			ovl_idmap_apply(p->uidmap, p->nuidmap, attr->st_uid, true) :
			(uid_t)-1;
		gid_t g = (to_set & FUSE_SET_ATTR_GID) ?
			ovl_idmap_apply(p->gidmap, p->ngidmap, attr->st_gid, true) :
			(gid_t)-1;

		/* squash options: a chown the daemon may not do is skipped
		 * (what stat shows does not change), as fuse-overlayfs */
		if (fchownat(inode->fd, "", u, g,
			     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 &&
		    !ovl_squashing(p))
			return -errno;
	}
	if (!(to_set & OVL_SET_ATTR_CHANGES)) {
		/* chown(f, -1, -1): only the ctime changes, on the upper file
		 * (libfuse keeps no bit for the kernel's FATTR_CTIME) */
		if (fchownat(inode->fd, "", (uid_t)-1, (gid_t)-1,
			     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		int r = fi ? ftruncate(ovl_file_of(fi)->fd,
				       attr->st_size) :
			     truncate(proc, attr->st_size);
		if (r < 0)
			return -errno;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec tv[2] = { { .tv_nsec = UTIME_OMIT },
					  { .tv_nsec = UTIME_OMIT } };

		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			tv[0].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_ATIME)
			tv[0] = attr->st_atim;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			tv[1].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_MTIME)
			tv[1] = attr->st_mtim;
		if (S_ISLNK(inode->type)) {
			if (utimensat(inode->fd, "", tv, AT_EMPTY_PATH) < 0)
				return -errno;
		} else if (utimensat(AT_FDCWD, proc, tv, 0) < 0) {
			return -errno;
		}
	}
	return 0;
}

/*
 * FUSE_CAP_HANDLE_KILLPRIV_V2 (main.c): the kernel leaves to the daemon
 * what the VFS does when a caller without CAP_FSETID writes or truncates a
 * file, and on every chown of what is not a directory: setuid goes, and
 * setgid where the group may execute (FUSE's rule; the VFS also drops a
 * setgid without group execute, which grants nothing, when the caller is
 * not in the group).  In the mode users see, wherever it is kept
 * (xattr_permissions).  Directories and symlinks keep theirs.
 */
int ovl_kill_sxid(struct ovl_fs *fs, struct ovl_inode *inode)
{
	struct stat st, a = { .st_mode = 0 };
	mode_t m;
	int err;

	if (S_ISDIR(inode->type) || S_ISLNK(inode->type))
		return 0;
	err = ovl_inode_stat(fs, inode, &st);
	if (err)
		return err;
	m = st.st_mode & 07777;
	a.st_mode = m & ~S_ISUID;
	if ((m & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
		a.st_mode &= ~S_ISGID;
	if (a.st_mode == m)
		return 0;
	return do_setattr(fs, inode, &a, FUSE_SET_ATTR_MODE, NULL);
}

/*
 * What the kernel asks to kill with a setattr: FATTR_KILL_SUIDGID (libfuse
 * passes it as FUSE_SET_ATTR_KILL_SUID) with a chown, or with a truncate by
 * a caller without CAP_FSETID; and a setattr of nothing, which comes from
 * the VFS's file_remove_privs() before a write that must drop them (a
 * passthrough write, which never reaches the daemon; a fallocate, a
 * copy_file_range) and from chown(f, -1, -1), which drops them too.
 */
static bool kills_sxid(int to_set)
{
	return (to_set & FUSE_SET_ATTR_KILL_SUID) ||
	       !(to_set & OVL_SET_ATTR_CHANGES);
}

void ovl_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		 struct fuse_file_info *fi)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_inode *inode = ovl_inode_of(fs, ino);
	struct stat st;
	int err;

	ovl_stat_op(fs, OVL_OP_SETATTR);
	err = do_setattr(fs, inode, attr, to_set, fi);
	if (!err && kills_sxid(to_set))
		err = ovl_kill_sxid(fs, inode);
	if (!err) {
		ovl_inode_changed(fs, inode);
		err = ovl_inode_stat(fs, inode, &st);
	}
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_attr(req, &st, ovl_attr_timeout(fs, inode));
}

void ovl_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_inode *inode = ovl_inode_of(fs, ino);
	char buf[PATH_MAX + 1];
	ssize_t n;

	ovl_stat_op(fs, OVL_OP_READLINK);
	n = readlinkat(inode->fd, "", buf, sizeof(buf));
	if (n < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	if ((size_t)n >= sizeof(buf)) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

static bool in_groups(fuse_req_t req, gid_t gid)
{
	gid_t groups[64];
	int n = fuse_req_getgroups(req, 64, groups);

	for (int i = 0; i < n && i < 64; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

/* generic_permission() on the overlay attributes, for mounts without
 * default_permissions (with it the kernel never asks). */
void ovl_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_inode *inode = ovl_inode_of(fs, ino);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct stat st;
	mode_t bits;
	int err;

	ovl_stat_op(fs, OVL_OP_ACCESS);
	err = ovl_inode_stat(fs, inode, &st);
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	if ((mask & W_OK) && fs->p->read_only) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (ctx->uid == 0) {
		bool x_ok = !(mask & X_OK) || S_ISDIR(st.st_mode) ||
			    (st.st_mode & 0111);
		fuse_reply_err(req, x_ok ? 0 : EACCES);
		return;
	}
	if (ctx->uid == st.st_uid)
		bits = (st.st_mode >> 6) & 7;
	else if (ctx->gid == st.st_gid || in_groups(req, st.st_gid))
		bits = (st.st_mode >> 3) & 7;
	else
		bits = st.st_mode & 7;
	fuse_reply_err(req, (mask & ~bits & 7) ? EACCES : 0);
}

void ovl_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct statvfs sv;

	ovl_stat_op(fs, OVL_OP_STATFS);
	if (fstatvfs(fs->layers[0].root_fd, &sv) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	sv.f_namemax = fs->namelen;
	fuse_reply_statfs(req, &sv);
}
