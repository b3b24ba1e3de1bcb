// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * restart=on: node ids that outlive the worker that handed them out.
 *
 * Every node id a worker gives the kernel gets a slot in a table the
 * supervisor maps before forking its first worker (shared, so that it
 * survives each worker): the id, its parent's id as the kernel knows it,
 * its name there, its type, the kernel's lookup count, the identity of
 * the real file it stood for (file handle, device and inode number: what
 * proves it is the same object, not only the same name) and how its open
 * files reached their data (a backing id, or through the daemon).  The
 * worker keeps the slot current under itable_lock (ovl_nodetab_track()).
 *
 * A worker that takes over indexes the slots it found by (parent, name)
 * (ovl_nodetab_takeover()).  The kernel keeps using those ids: nothing is
 * invalidated, so no dentry goes stale and nothing mounted below the
 * overlay is detached.  When a lookup of this worker finds a real file at
 * the (parent, name) of an old id and it is the very object the id named,
 * the inode is bound to the old id (ovl_nodetab_bind()): entries name it
 * by that id again (ovl_nodeid()), and requests naming the id act on it.
 * A request naming an old id not bound yet looks its name up from the
 * parent's id down from the root (resolve()); an id whose name leads
 * nowhere, or to another object, gets ESTALE, never another file.
 */
#include "config.h"

#include "overlay.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define NT_MIN_SLOTS 65536
#define NT_MAX_SLOTS (4u << 20)
#define NT_MAX_DEPTH 4096	/* parents followed at most */
#define NT_LOCKS (1u << 20)	/* lock records (pages are used only as
				 * records are) */
#define NT_LOCKS_SHRINK 256	/* records (4 pages) that, all free, are
				 * given back (locks_shrink()) */

#define NT_HANDLE_MAX 64	/* file handle bytes kept (ext4, xfs, btrfs and
				 * tmpfs handles are 8 to 40) */

/* What proves a real file is the one an id named. */
struct nt_ident {
	uint64_t dev;		/* st_dev, 0: proves nothing (never matches) */
	uint64_t ino;		/* st_ino */
	int32_t htype;		/* file handle type, or -1: none (the
				 * filesystem gives none) */
	uint32_t hlen;		/* its bytes in handle[] */
	unsigned char handle[NT_HANDLE_MAX]; /* ino and generation, so a
				 * reused inode number is another object */
};

/* One node id the kernel holds (shared memory). */
struct nt_slot {
	_Atomic uint64_t id;	/* the node id, 0: free; written last */
	uint64_t parent;	/* the parent's node id as the kernel knows it,
				 * 0 if unknown */
	uint64_t nlookup;	/* the kernel's lookup count of id */
	uint32_t type;		/* S_IFMT bits */
	int32_t backing;	/* its open files' data: a backing id (> 0),
				 * through the daemon (-1), none open (0) */
	struct nt_ident ident;	/* the real file it stands for */
	uint32_t namelen;
	char name[NAME_MAX + 1];
};

/* One lock held (lock.c), as the kernel names its owner and file handle. */
struct nt_lockrec {
	uint64_t dev;		/* the real file it is on (lock.c's key) */
	uint64_t ino;
	uint64_t owner;
	uint64_t fh;
	int64_t start, end;
	int32_t pid;
	uint32_t uid;		/* counted against */
	int16_t type;
	uint8_t flock;
	_Atomic uint8_t used;	/* written last */
};

struct nt_shared {
	uint64_t nslots;	/* capacity of slot[] and of backing[] */
	_Atomic uint64_t used;	/* slots ever handed out (high-water mark) */
	uint64_t backing_off;	/* offset of backing[] from the start */
	uint64_t nlocks;	/* capacity of the lock records */
	uint64_t locks_off;	/* their offset from the start */
	_Atomic uint64_t locks_used; /* records ever handed out */
	struct nt_slot slot[];
};

/* The passthrough backing ids registered now: an open-addressing set in
 * the shared mapping after the slots (0 empty, UINT32_MAX removed). */
#define NT_BK_TOMB UINT32_MAX

/* An id a dead worker handed out, and what it now stands for. */
struct nt_old {
	uint64_t id;		/* 0: empty; NT_TOMB: removed */
	uint32_t slot;
	struct ovl_inode *inode; /* bound (ovl_nodetab_bind()), with an nref
				 * on it, or NULL; itable_lock */
	struct nt_old *bynext;	/* same (parent, name) hash chain */
};

#define NT_TOMB UINT64_MAX

struct ovl_nodetab {
	int fd;			/* the memfd holding it (kept across exec) */
	struct nt_shared *sh;	/* the shared table */
	_Atomic uint32_t *backing; /* the set of backing ids, in sh */
	pthread_mutex_t backing_lock;
	size_t maplen;
	/* this worker's free slots; itable_lock */
	uint32_t *free;
	size_t nfree, freecap;
	/* the locks held: records in sh, free ones listed here; under the
	 * lock table's lock (lock.c) */
	struct nt_lockrec *locks;
	uint32_t *lfree;
	size_t nlfree, lfreecap;
	bool taking_over;	/* ovl_nodetab_locks_each() runs */
	/* the ids of dead workers: the table changes under lock (taken
	 * before itable_lock), bindings under itable_lock */
	pthread_mutex_t lock;
	struct nt_old *old;
	size_t oldcap;		/* power of two, or 0 */
	struct nt_old **byname;	/* oldcap chains by (parent, name) */
	size_t unbound;		/* old ids not bound yet; itable_lock */
	struct nt_old *by_handle; /* the nameless old id resolve_nameless()
				 * is binding, or NULL; itable_lock */
};

static size_t old_hash(uint64_t id, size_t cap)
{
	id *= 0x9e3779b97f4a7c15ull;
	return (size_t)(id >> 17) & (cap - 1);
}

static int nodetab_map(struct ovl_fs *fs, int fd, size_t len, uint64_t nslots)
{
	struct ovl_nodetab *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->fd = fd;
	t->maplen = len;
	/* pages are used only as slots are: no reservation for the rest */
	t->sh = mmap(NULL, len, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (t->sh == MAP_FAILED) {
		int err = -errno;

		free(t);
		return err;
	}
	if (nslots) {
		t->sh->nslots = nslots;
		t->sh->backing_off = sizeof(struct nt_shared) +
				     nslots * sizeof(struct nt_slot);
		t->sh->locks_off = t->sh->backing_off + nslots * sizeof(uint32_t);
		t->sh->locks_off = (t->sh->locks_off + 63) & ~63ull;
		t->sh->nlocks = NT_LOCKS;
	}
	t->backing = (void *)((char *)t->sh + t->sh->backing_off);
	t->locks = (void *)((char *)t->sh + t->sh->locks_off);
	if (pthread_mutex_init(&t->lock, NULL) ||
	    pthread_mutex_init(&t->backing_lock, NULL)) {
		munmap(t->sh, len);
		free(t);
		return -ENOMEM;
	}
	fs->nodetab = t;
	return 0;
}

/* Supervisor, before the first worker: the table, in a memfd that a
 * worker of a new binary maps again (ovl_nodetab_attach()). */
int ovl_nodetab_create(struct ovl_fs *fs)
{
	struct rlimit rl;
	uint64_t n = NT_MIN_SLOTS;
	size_t len;
	int fd, err;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur + 4096 > n)
		n = rl.rlim_cur + 4096;
	if (n > NT_MAX_SLOTS)
		n = NT_MAX_SLOTS;
	len = sizeof(struct nt_shared) + n * sizeof(struct nt_slot) +
	      n * sizeof(uint32_t) + 64 + NT_LOCKS * sizeof(struct nt_lockrec);
	fd = memfd_create("overpass-nodes", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	err = nodetab_map(fs, fd, len, n);
	if (err)
		close(fd);
	return err;
}

/* A worker started from a new binary: the supervisor's table in @fd. */
int ovl_nodetab_attach(struct ovl_fs *fs, int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if ((size_t)st.st_size < sizeof(struct nt_shared))
		return -EINVAL;
	return nodetab_map(fs, fd, (size_t)st.st_size, 0);
}

/* The supervisor, at the end of the mount. */
void ovl_nodetab_free(struct ovl_fs *fs)
{
	struct ovl_nodetab *t = fs->nodetab;

	if (!t)
		return;
	munmap(t->sh, t->maplen);
	close(t->fd);
	free(t->free);
	free(t->lfree);
	free(t->old);
	free(t->byname);
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->backing_lock);
	free(t);
	fs->nodetab = NULL;
}

int ovl_nodetab_fd(struct ovl_fs *fs)
{
	return fs->nodetab ? fs->nodetab->fd : -1;
}

/* ---- this worker's own ids (itable_lock held) ---- */

static int slot_alloc(struct ovl_nodetab *t)
{
	uint64_t used;

	if (t->nfree)
		return (int)t->free[--t->nfree];
	used = atomic_load(&t->sh->used);
	if (used >= t->sh->nslots)
		return -1;
	atomic_store(&t->sh->used, used + 1);
	return (int)used;
}

static void slot_free(struct ovl_nodetab *t, uint32_t s)
{
	atomic_store(&t->sh->slot[s].id, 0);
	if (t->nfree == t->freecap) {
		size_t cap = t->freecap ? t->freecap * 2 : 1024;
		uint32_t *f = realloc(t->free, cap * sizeof(*f));

		if (!f)
			return; /* the slot stays unused until the next takeover */
		t->free = f;
		t->freecap = cap;
	}
	t->free[t->nfree++] = s;
}

/* The id by which the kernel knows @dir, as a slot records it, or 0. */
static uint64_t kernel_id(struct ovl_fs *fs, struct ovl_inode *dir)
{
	struct ovl_nodetab *t = fs->nodetab;

	if (!dir)
		return 0;
	if (dir == fs->root)
		return FUSE_ROOT_ID;
	if (dir->oldslot >= 0)
		return atomic_load(&t->sh->slot[dir->oldslot].id);
	if (dir->slot >= 0)
		return atomic_load(&t->sh->slot[dir->slot].id);
	return 0;
}

/* The identity of @inode's real file: the device and inode number it is
 * keyed by, and its file handle (one system call). */
static void ident_of(const struct ovl_inode *inode, struct nt_ident *id)
{
	union {
		struct file_handle fh;
		unsigned char buf[sizeof(struct file_handle) + NT_HANDLE_MAX];
	} h;
	int mnt;

	memset(id, 0, sizeof(*id));
	id->htype = -1;
	h.fh.handle_bytes = NT_HANDLE_MAX;
	if (name_to_handle_at(inode->fd, "", &h.fh, &mnt, AT_EMPTY_PATH) == 0) {
		id->htype = h.fh.handle_type;
		id->hlen = h.fh.handle_bytes;
		memcpy(id->handle, h.fh.f_handle, id->hlen);
	}
	id->ino = inode->key_ino;
	id->dev = inode->key_dev;
}

static bool ident_same(const struct nt_ident *a, const struct nt_ident *b)
{
	return a->dev && a->dev == b->dev && a->ino == b->ino &&
	       a->htype == b->htype && a->hlen == b->hlen &&
	       !memcmp(a->handle, b->handle, a->hlen);
}

static void slot_name(struct nt_slot *s, struct ovl_fs *fs,
		      struct ovl_inode *inode)
{
	size_t len = inode->name ? strlen(inode->name) : 0;

	if (len > NAME_MAX)
		len = 0;
	s->parent = kernel_id(fs, inode->parent);
	s->type = inode->type;
	s->namelen = (uint32_t)len;
	memcpy(s->name, inode->name ? inode->name : "", len);
	s->name[len] = '\0';
}

/*
 * Record what the kernel now holds of @inode's node id: its lookup count,
 * parent and name.  An inode bound to a dead worker's id keeps that slot
 * current instead (the kernel's count of it is what the dead worker left
 * plus what this one handed out).  itable_lock held.
 */
void ovl_nodetab_track(struct ovl_fs *fs, struct ovl_inode *inode)
{
	struct ovl_nodetab *t = fs->nodetab;
	struct nt_slot *s;

	if (!t || inode == fs->root)
		return;
	if (inode->oldslot >= 0) {
		s = &t->sh->slot[inode->oldslot];
		s->nlookup = inode->olddead + inode->nlookup;
		slot_name(s, fs, inode);
		return;
	}
	if (!inode->nlookup) {
		if (inode->slot >= 0)
			slot_free(t, (uint32_t)inode->slot);
		inode->slot = -1;
		return;
	}
	if (inode->slot < 0) {
		inode->slot = slot_alloc(t);
		if (inode->slot < 0)
			return; /* full: this id will not outlive the worker */
		s = &t->sh->slot[inode->slot];
		ident_of(inode, &s->ident);
		s->backing = 0;
	}
	s = &t->sh->slot[inode->slot];
	s->nlookup = inode->nlookup;
	slot_name(s, fs, inode);
	atomic_store(&s->id, ovl_nodeid(fs, inode));
}

/* @inode's real file changed (a copy-up), or it left the table (@gone:
 * superseded, its id stands for a file no lookup finds).  itable_lock
 * held. */
void ovl_nodetab_rekeyed(struct ovl_fs *fs, struct ovl_inode *inode, bool gone)
{
	struct ovl_nodetab *t = fs->nodetab;
	int slots[2] = { inode->slot, inode->oldslot };

	if (!t)
		return;
	for (int i = 0; i < 2; i++) {
		struct nt_ident *id;

		if (slots[i] < 0)
			continue;
		id = &t->sh->slot[slots[i]].ident;
		if (gone)
			memset(id, 0, sizeof(*id));
		else
			ident_of(inode, id);
	}
}

/* How @inode's open files reach their data now (passthrough.c, inode
 * lock held). */
void ovl_nodetab_data(struct ovl_fs *fs, struct ovl_inode *inode)
{
	struct ovl_nodetab *t = fs->nodetab;
	int32_t v;

	if (!t)
		return;
	v = inode->backing_id ? inode->backing_id :
	    inode->fallback_users ? -1 : 0;
	pthread_mutex_lock(&fs->itable_lock);
	if (inode->slot >= 0)
		t->sh->slot[inode->slot].backing = v;
	if (inode->oldslot >= 0)
		t->sh->slot[inode->oldslot].backing = v;
	pthread_mutex_unlock(&fs->itable_lock);
}

/* The node id slot @s holds (0 once free). */
uint64_t ovl_nodetab_slot_id(struct ovl_fs *fs, int s)
{
	return atomic_load(&fs->nodetab->sh->slot[s].id);
}

/* ---- a worker taking over: the ids of dead workers ---- */

static struct nt_old *old_find(struct ovl_nodetab *t, uint64_t id)
{
	if (!t->oldcap || !id || id == NT_TOMB)
		return NULL;
	for (size_t i = old_hash(id, t->oldcap), k = 0; k < t->oldcap;
	     i = (i + 1) & (t->oldcap - 1), k++) {
		if (t->old[i].id == id)
			return &t->old[i];
		if (!t->old[i].id)
			return NULL;
	}
	return NULL;
}

static size_t name_hash(uint64_t parent, const char *name, size_t len,
			size_t cap)
{
	uint64_t h = parent * 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * 0x100000001b3ull;
	return (size_t)(h >> 17) & (cap - 1);
}

/*
 * Index the slots the dead workers left: every id in use becomes an old
 * id, every free slot this worker's.  Backing ids no slot's open files
 * use are closed (open files keep their own reference).  Before any
 * request is served.
 */
int ovl_nodetab_takeover(struct ovl_fs *fs)
{
	struct ovl_nodetab *t = fs->nodetab;
	uint64_t used = atomic_load(&t->sh->used);
	size_t n = 0, cap = 16;

	for (uint64_t s = 0; s < used; s++)
		n += atomic_load(&t->sh->slot[s].id) != 0;
	while (cap < 2 * n)
		cap *= 2;
	t->old = calloc(cap, sizeof(*t->old));
	t->byname = calloc(cap, sizeof(*t->byname));
	if (!t->old || !t->byname)
		return -ENOMEM;
	t->oldcap = cap;
	for (uint64_t s = 0; s < used; s++) {
		struct nt_slot *sl = &t->sh->slot[s];
		uint64_t id = atomic_load(&sl->id);
		size_t i, h;

		if (!id) {
			slot_free(t, (uint32_t)s);
			continue;
		}
		for (i = old_hash(id, cap); t->old[i].id; i = (i + 1) & (cap - 1))
			;
		t->old[i] = (struct nt_old){ .id = id, .slot = (uint32_t)s };
		h = name_hash(sl->parent, sl->name, sl->namelen, cap);
		t->old[i].bynext = t->byname[h];
		t->byname[h] = &t->old[i];
		t->unbound++;
	}
	return 0;
}

/*
 * A lookup of this worker found @inode at @name in @parent: the old id,
 * not bound yet, that named that very file there, or NULL.  itable_lock
 * held.
 */
static struct nt_old *old_match(struct ovl_fs *fs, struct ovl_inode *parent,
				const char *name, const struct ovl_inode *inode)
{
	struct ovl_nodetab *t = fs->nodetab;
	uint64_t pid = kernel_id(fs, parent);
	size_t len = strlen(name);
	struct nt_ident id;
	bool have_id = false;

	if (!pid || len > NAME_MAX)
		return NULL;
	for (struct nt_old *o = t->byname[name_hash(pid, name, len, t->oldcap)];
	     o; o = o->bynext) {
		struct nt_slot *s = &t->sh->slot[o->slot];

		if (o->inode || o->id == NT_TOMB || s->parent != pid ||
		    s->namelen != len || memcmp(s->name, name, len))
			continue;
		if (!have_id) {
			ident_of(inode, &id);
			have_id = true;
		}
		if (ident_same(&s->ident, &id))
			return o;
	}
	return NULL;
}

/*
 * @inode, made without a name, is the file resolve_nameless() opened by
 * its handle: that old id if the identity is the same, or NULL.
 * itable_lock held.
 */
static struct nt_old *handle_match(struct ovl_fs *fs,
				   const struct ovl_inode *inode)
{
	struct ovl_nodetab *t = fs->nodetab;
	struct nt_old *o = t->by_handle;
	struct nt_ident id;

	if (!o || o->inode || o->id == NT_TOMB)
		return NULL;
	ident_of(inode, &id);
	return ident_same(&t->sh->slot[o->slot].ident, &id) ? o : NULL;
}

/*
 * @inode was just found at @name in @parent (kernel lookup count already
 * raised): if a dead worker's id named that very file there, bind them,
 * so the kernel keeps that id.  The dead worker's open files of it pin
 * how its data was reached (the kernel refuses an open that replies with
 * another backing id while they are open).  itable_lock held.
 */
void ovl_nodetab_bind(struct ovl_fs *fs, struct ovl_inode *inode,
		      struct ovl_inode *parent, const char *name)
{
	struct ovl_nodetab *t = fs->nodetab;
	struct nt_old *o;
	struct nt_slot *s;

	if (!t || !t->unbound || inode->oldslot >= 0 || inode->slot >= 0)
		return;
	if (parent && name)
		o = old_match(fs, parent, name, inode);
	else
		o = handle_match(fs, inode);
	if (!o)
		return;
	s = &t->sh->slot[o->slot];
	o->inode = inode;
	t->unbound--;
	inode->oldslot = (int)o->slot;
	inode->kernel_pages = true;	/* the dead worker's opens made them */
	inode->olddead = s->nlookup;
	inode->nref++;
	/* lookups this worker counted so far count for the old id */
	s->nlookup = inode->olddead + inode->nlookup;
	if (s->backing > 0 && !inode->backing_id) {
		inode->backing_id = s->backing;
		inode->backing_users++;
		inode->pinned = 1;
	} else if (s->backing < 0) {
		inode->fallback_users++;
		inode->pinned = -1;
	}
}

/*
 * An old id of a file the kernel knows by no name: an O_TMPFILE file not
 * linked yet (a link records its name, ovl_inode_named(), unless the
 * worker died between the two).  Its file
 * handle finds it in the upper layer, where the daemon may open by handle
 * (CAP_DAC_READ_SEARCH: not in a user namespace) and while something keeps
 * it (a passthrough open's backing file; the dead worker's descriptor of an
 * unlinked file is gone); it must be the very file, device, inode number
 * and handle.  NULL otherwise.  t->lock held.
 */
static struct ovl_inode *resolve_nameless(struct ovl_fs *fs, struct nt_old *o)
{
	struct ovl_nodetab *t = fs->nodetab;
	const struct nt_ident *id = &t->sh->slot[o->slot].ident;
	union {
		struct file_handle fh;
		unsigned char buf[sizeof(struct file_handle) + NT_HANDLE_MAX];
	} h;
	struct ovl_found f = { .layer = 0, .data_fd = -1 };
	struct ovl_inode *inode, *bound;
	int mnt;

	if (!fs->upper || !id->dev || id->dev != fs->upper->dev ||
	    id->htype < 0 || id->hlen > NT_HANDLE_MAX)
		return NULL;
	h.fh.handle_bytes = id->hlen;
	h.fh.handle_type = id->htype;
	memcpy(h.fh.f_handle, id->handle, id->hlen);
	/* the mount's descriptor may not be an O_PATH one */
	mnt = openat(fs->upper->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mnt < 0)
		return NULL;
	f.fd = open_by_handle_at(mnt, &h.fh, O_PATH | O_CLOEXEC);
	close(mnt);
	if (f.fd < 0)
		return NULL;
	if (fstat(f.fd, &f.st) < 0 || f.st.st_dev != id->dev ||
	    f.st.st_ino != id->ino || !S_ISREG(f.st.st_mode)) {
		close(f.fd);
		return NULL;
	}
	pthread_mutex_lock(&fs->itable_lock);
	t->by_handle = o;
	pthread_mutex_unlock(&fs->itable_lock);
	/* made here, as do_tmpfile() made it: no origin, no metacopy */
	inode = ovl_inode_get_found(fs, &f, NULL, NULL);
	pthread_mutex_lock(&fs->itable_lock);
	t->by_handle = NULL;
	bound = o->inode;
	pthread_mutex_unlock(&fs->itable_lock);
	if (!inode)
		return NULL;
	ovl_inode_forget(fs, inode, 1);
	return bound == inode ? inode : NULL;
}

/* The inode an old id stands for, looked up again if need be; lock
 * held.  NULL when its name leads nowhere or to another object. */
static struct ovl_inode *resolve(struct ovl_fs *fs, struct nt_old *o, int depth)
{
	struct ovl_nodetab *t = fs->nodetab;
	struct nt_slot *s = &t->sh->slot[o->slot];
	struct ovl_inode *parent = NULL, *inode = NULL, *bound;
	char name[NAME_MAX + 1];

	pthread_mutex_lock(&fs->itable_lock);
	bound = o->inode;
	pthread_mutex_unlock(&fs->itable_lock);
	if (bound)
		return bound;
	if (!s->namelen)
		return resolve_nameless(fs, o);
	if (depth > NT_MAX_DEPTH || s->namelen > NAME_MAX)
		return NULL;
	if (s->parent == FUSE_ROOT_ID) {
		parent = fs->root;
	} else {
		struct nt_old *po = old_find(t, s->parent);

		parent = po ? resolve(fs, po, depth + 1) : NULL;
	}
	if (!parent)
		return NULL;
	memcpy(name, s->name, s->namelen);
	name[s->namelen] = '\0';
	/* the lookup binds the inode found if it is the same file */
	if (ovl_lookup_name(fs, parent, name, &inode))
		return NULL;
	pthread_mutex_lock(&fs->itable_lock);
	bound = o->inode;
	pthread_mutex_unlock(&fs->itable_lock);
	ovl_inode_forget(fs, inode, 1);
	return bound == inode ? inode : NULL;
}

bool ovl_nodetab_is_old(struct ovl_fs *fs, uint64_t id)
{
	return fs->nodetab && ovl_nodeid_stale(fs, id);
}

/*
 * The inode a dead worker's @id stands for, looking its name up again the
 * first time; NULL when it stands for nothing any more.
 */
struct ovl_inode *ovl_nodetab_current(struct ovl_fs *fs, uint64_t id)
{
	struct ovl_nodetab *t = fs->nodetab;
	struct ovl_inode *inode = NULL;
	struct nt_old *o;

	if (!t)
		return NULL;
	pthread_mutex_lock(&t->lock);
	o = old_find(t, id);
	if (o)
		inode = resolve(fs, o, 0);
	pthread_mutex_unlock(&t->lock);
	return inode;
}

/*
 * The kernel forgot @n lookups of a dead worker's @id: first those the
 * dead workers counted, then this one's.  At none left the id is free,
 * and so is what the dead worker's open files pinned.
 */
void ovl_nodetab_forget(struct ovl_fs *fs, uint64_t id, uint64_t n)
{
	struct ovl_nodetab *t = fs->nodetab;
	struct ovl_inode *inode = NULL;
	struct nt_old *o;
	int pinned = 0;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	o = old_find(t, id);
	pthread_mutex_lock(&fs->itable_lock);
	if (o) {
		struct nt_slot *s = &t->sh->slot[o->slot];
		struct ovl_inode *b = o->inode;
		uint64_t d;

		if (b) {
			d = n < b->olddead ? n : b->olddead;
			b->olddead -= d;
			n -= d;
			b->nlookup = n >= b->nlookup ? 0 : b->nlookup - n;
			s->nlookup = b->olddead + b->nlookup;
		} else {
			s->nlookup = n >= s->nlookup ? 0 : s->nlookup - n;
		}
		if (!s->nlookup) {
			if (b) {
				b->oldslot = -1;
				pinned = b->pinned;
				b->pinned = 0;
				inode = b;
			} else {
				t->unbound--;
			}
			slot_free(t, o->slot);
			o->id = NT_TOMB;
			o->inode = NULL;
		}
	}
	pthread_mutex_unlock(&fs->itable_lock);
	pthread_mutex_unlock(&t->lock);
	if (!inode)
		return;
	if (pinned)
		ovl_pt_release(fs, NULL, inode, pinned > 0);
	ovl_inode_unref(fs, inode);
}

/* ---- passthrough backing ids, which belong to the connection ---- */

static size_t bk_hash(uint32_t id, size_t cap)
{
	return (size_t)(id * 2654435761u) % cap;
}

/* A backing id was registered (@add) or closed. */
void ovl_nodetab_backing(struct ovl_fs *fs, int id, bool add)
{
	struct ovl_nodetab *t = fs->nodetab;
	size_t cap, i;

	if (!t || id <= 0)
		return;
	cap = t->sh->nslots;
	pthread_mutex_lock(&t->backing_lock);
	for (i = bk_hash((uint32_t)id, cap);; i = (i + 1) % cap) {
		uint32_t v = atomic_load(&t->backing[i]);

		if (add && (v == 0 || v == NT_BK_TOMB)) {
			atomic_store(&t->backing[i], (uint32_t)id);
			break;
		}
		if (!add && v == (uint32_t)id) {
			atomic_store(&t->backing[i], NT_BK_TOMB);
			break;
		}
		if (v == 0) /* not there (or no room: it leaks) */
			break;
	}
	pthread_mutex_unlock(&t->backing_lock);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The backing ids the open files of live slots use, sorted, in a new
 * array (*@n of them); a worker binding such a slot takes its id over
 * (ovl_nodetab_bind()). */
static uint32_t *backing_in_use(struct ovl_nodetab *t, size_t *n)
{
	uint64_t used = atomic_load(&t->sh->used);
	uint32_t *ids = malloc((used + 1) * sizeof(*ids));

	*n = 0;
	if (!ids)
		return NULL;
	for (uint64_t s = 0; s < used; s++)
		if (atomic_load(&t->sh->slot[s].id) && t->sh->slot[s].backing > 0)
			ids[(*n)++] = (uint32_t)t->sh->slot[s].backing;
	qsort(ids, *n, sizeof(*ids), cmp_u32);
	return ids;
}

/*
 * A worker taking over: close the backing ids its predecessors left.  Files
 * opened with them keep their own reference; only new opens would use an
 * id, and the ids of this worker are new.  Returns how many were closed.
 */
unsigned ovl_nodetab_close_backing(struct ovl_fs *fs, int devfd)
{
	struct ovl_nodetab *t = fs->nodetab;
	unsigned n = 0;
	size_t nkeep;
	uint32_t *keep;

	if (!t)
		return 0;
	keep = backing_in_use(t, &nkeep);
	for (size_t i = 0; i < t->sh->nslots; i++) {
		uint32_t v = atomic_load(&t->backing[i]);

		if (v == 0 || v == NT_BK_TOMB)
			continue;
		if (keep && bsearch(&v, keep, nkeep, sizeof(v), cmp_u32))
			continue;
		if (!ovl_backing_close(devfd, v))
			n++;
		atomic_store(&t->backing[i], 0);
	}
	free(keep);
	return n;
}

/* ---- the locks held, which outlive their worker (lock.c) ---- */

/*
 * Record a lock in record @rec (or a new one when @rec < 0): its index,
 * or -ENOLCK when every record is taken.  Lock table's lock held.
 */
int ovl_nodetab_lock_put(struct ovl_fs *fs, int rec,
			 const struct ovl_lockrec *l)
{
	struct ovl_nodetab *t = fs->nodetab;
	struct nt_lockrec *r;

	if (!t)
		return -1;
	if (rec < 0) {
		uint64_t used = atomic_load(&t->sh->locks_used);

		if (t->nlfree) {
			rec = (int)t->lfree[--t->nlfree];
		} else if (used < t->sh->nlocks) {
			rec = (int)used;
			atomic_store(&t->sh->locks_used, used + 1);
		} else {
			return -ENOLCK;
		}
	}
	r = &t->locks[rec];
	atomic_store(&r->used, 0);
	r->dev = l->dev;
	r->ino = l->ino;
	r->owner = l->owner;
	r->fh = l->fh;
	r->start = l->start;
	r->end = l->end;
	r->pid = l->pid;
	r->uid = (uint32_t)l->uid;
	r->type = (int16_t)l->type;
	r->flock = l->flock;
	atomic_store(&r->used, 1);
	return rec;
}

/*
 * Once every lock record is free again, and there were many: their pages
 * go back to the system (a hole in the memfd, which every mapping sees),
 * and records are handed out from the first again.
 */
static void locks_shrink(struct ovl_nodetab *t)
{
	uint64_t used = atomic_load(&t->sh->locks_used);

	if (t->nlfree != used || used < NT_LOCKS_SHRINK)
		return;
	atomic_store(&t->sh->locks_used, 0);
	fallocate(t->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		  (off_t)t->sh->locks_off,
		  (off_t)(used * sizeof(struct nt_lockrec)));
	free(t->lfree);
	t->lfree = NULL;
	t->nlfree = t->lfreecap = 0;
}

/* Lock record @rec is free again.  Lock table's lock held. */
void ovl_nodetab_lock_del(struct ovl_fs *fs, int rec)
{
	struct ovl_nodetab *t = fs->nodetab;

	if (!t || rec < 0)
		return;
	atomic_store(&t->locks[rec].used, 0);
	if (t->nlfree == t->lfreecap) {
		size_t cap = t->lfreecap ? t->lfreecap * 2 : 256;
		uint32_t *f = realloc(t->lfree, cap * sizeof(*f));

		if (!f)
			return; /* unused until the next takeover */
		t->lfree = f;
		t->lfreecap = cap;
	}
	t->lfree[t->nlfree++] = (uint32_t)rec;
	if (!t->taking_over)
		locks_shrink(t);
}

/*
 * A worker taking over: call @fn for each lock its predecessors held, with
 * the record's index; free records become this worker's.
 */
int ovl_nodetab_locks_each(struct ovl_fs *fs,
			   int (*fn)(struct ovl_fs *fs, int rec,
				     const struct ovl_lockrec *r))
{
	struct ovl_nodetab *t = fs->nodetab;
	uint64_t used;
	int err = 0;

	if (!t)
		return 0;
	used = atomic_load(&t->sh->locks_used);
	t->taking_over = true;
	for (uint64_t i = used; i-- > 0;) {
		struct nt_lockrec *r = &t->locks[i];
		struct ovl_lockrec l;

		if (!atomic_load(&r->used)) {
			ovl_nodetab_lock_del(fs, (int)i);
			continue;
		}
		l = (struct ovl_lockrec){ .dev = r->dev, .ino = r->ino,
					  .owner = r->owner, .fh = r->fh,
					  .start = r->start, .end = r->end,
					  .pid = r->pid, .uid = r->uid,
					  .type = r->type, .flock = r->flock };
		if (!err)
			err = fn(fs, (int)i, &l);
	}
	t->taking_over = false;
	locks_shrink(t);
	return err;
}
