// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * restart=on: node ids that outlive the worker that handed them out.
 *
 * Every node id a worker gives the kernel gets a slot in a table the
 * supervisor maps before forking its first worker (shared, so that it
 * survives each worker): the id, its parent's id as the kernel knows it,
 * its name there, its type and the kernel's lookup count.  The worker
 * keeps the slot current under itable_lock (ovl_nodetab_track()): filled
 * when the kernel first learns the id, updated on each lookup, forget and
 * rename, freed when the kernel forgets it.
 *
 * A worker that takes over indexes the slots it found (ovl_nodetab_takeover)
 * and, when a request names one of those ids, looks the name up again from
 * the parent's id down from the root (resolve()), keeps a reference on the
 * inode found for as long as the kernel holds the old id, and hands
 * takeover.c the id of that inode to put in the request.  An id whose name
 * no longer leads to an object of its type (removed, or replaced meanwhile)
 * gets ESTALE.
 */
#include "config.h"

#include "overlay.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#define NT_MIN_SLOTS 65536
#define NT_MAX_SLOTS (4u << 20)
#define NT_MAX_DEPTH 4096	/* parents followed at most */

/* One node id the kernel holds (shared memory). */
struct nt_slot {
	_Atomic uint64_t id;	/* the node id, 0: free; written last */
	uint64_t parent;	/* the parent's node id as the kernel knows it,
				 * 0 if unknown */
	uint64_t nlookup;	/* the kernel's lookup count of id */
	uint32_t type;		/* S_IFMT bits */
	uint32_t namelen;
	char name[NAME_MAX + 1];
};

struct nt_shared {
	uint64_t nslots;	/* capacity of slot[] and of backing[] */
	_Atomic uint64_t used;	/* slots ever handed out (high-water mark) */
	uint64_t backing_off;	/* offset of backing[] from the start */
	struct nt_slot slot[];
};

/* The passthrough backing ids registered now: an open-addressing set in
 * the shared mapping after the slots (0 empty, UINT32_MAX removed). */
#define NT_BK_TOMB UINT32_MAX

/* An id a dead worker handed out, and what it now stands for. */
struct nt_old {
	uint64_t id;		/* 0: empty; NT_TOMB: removed */
	uint32_t slot;
	struct ovl_inode *inode; /* resolved, with an nref on it, or NULL */
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
	/* the ids of dead workers; lock (taken before itable_lock) */
	pthread_mutex_t lock;
	struct nt_old *old;
	size_t oldcap;		/* power of two, or 0 */
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
	}
	t->backing = (void *)((char *)t->sh + t->sh->backing_off);
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
	      n * sizeof(uint32_t);
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
	free(t->old);
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
	if (dir->slot >= 0)
		return atomic_load(&t->sh->slot[dir->slot].id);
	if (dir->oldslot >= 0)
		return atomic_load(&t->sh->slot[dir->oldslot].id);
	return 0;
}

/*
 * Record what the kernel now holds of @inode's node id: its lookup count,
 * parent and name.  itable_lock held.
 */
void ovl_nodetab_track(struct ovl_fs *fs, struct ovl_inode *inode)
{
	struct ovl_nodetab *t = fs->nodetab;
	struct nt_slot *s;
	size_t len;

	if (!t || inode == fs->root)
		return;
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
	}
	s = &t->sh->slot[inode->slot];
	len = inode->name ? strlen(inode->name) : 0;
	if (len > NAME_MAX)
		len = 0;
	s->parent = kernel_id(fs, inode->parent);
	s->nlookup = inode->nlookup;
	s->type = inode->type;
	s->namelen = (uint32_t)len;
	memcpy(s->name, inode->name ? inode->name : "", len);
	s->name[len] = '\0';
	atomic_store(&s->id, ovl_nodeid(fs, inode));
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

/*
 * Index the slots the dead workers left: every id in use becomes an old
 * id, every free slot this worker's.  Before any request is served.
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
	if (!t->old)
		return -ENOMEM;
	t->oldcap = cap;
	for (uint64_t s = 0; s < used; s++) {
		uint64_t id = atomic_load(&t->sh->slot[s].id);
		size_t i;

		if (!id) {
			slot_free(t, (uint32_t)s);
			continue;
		}
		for (i = old_hash(id, cap); t->old[i].id; i = (i + 1) & (cap - 1))
			;
		t->old[i] = (struct nt_old){ .id = id, .slot = (uint32_t)s };
	}
	return 0;
}

/* The inode an old id now stands for, looked up again if need be; lock
 * held. */
static struct ovl_inode *resolve(struct ovl_fs *fs, struct nt_old *o, int depth)
{
	struct ovl_nodetab *t = fs->nodetab;
	struct nt_slot *s = &t->sh->slot[o->slot];
	struct ovl_inode *parent = NULL, *inode = NULL;
	char name[NAME_MAX + 1];

	if (o->inode)
		return o->inode;
	if (depth > NT_MAX_DEPTH || !s->namelen || s->namelen > NAME_MAX)
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
	if (ovl_lookup_name(fs, parent, name, &inode))
		return NULL;
	/* a kernel reference from the lookup, turned into one of ours */
	ovl_inode_ref(fs, inode);
	ovl_inode_forget(fs, inode, 1);
	if (inode->type != s->type) {
		ovl_inode_unref(fs, inode);
		return NULL;
	}
	pthread_mutex_lock(&fs->itable_lock);
	if (inode->oldslot < 0)
		inode->oldslot = (int)o->slot;
	pthread_mutex_unlock(&fs->itable_lock);
	o->inode = inode;
	return inode;
}

bool ovl_nodetab_is_old(struct ovl_fs *fs, uint64_t id)
{
	return fs->nodetab && ovl_nodeid_stale(fs, id);
}

/*
 * The node id of this worker for @id, a dead worker's, looking its name up
 * again the first time; 0 when it stands for nothing any more.
 */
uint64_t ovl_nodetab_current(struct ovl_fs *fs, uint64_t id)
{
	struct ovl_nodetab *t = fs->nodetab;
	struct ovl_inode *inode = NULL;
	struct nt_old *o;

	if (!t)
		return 0;
	pthread_mutex_lock(&t->lock);
	o = old_find(t, id);
	if (o)
		inode = resolve(fs, o, 0);
	pthread_mutex_unlock(&t->lock);
	return inode ? ovl_nodeid(fs, inode) : 0;
}

/* The kernel forgot @n lookups of a dead worker's @id. */
void ovl_nodetab_forget(struct ovl_fs *fs, uint64_t id, uint64_t n)
{
	struct ovl_nodetab *t = fs->nodetab;
	struct ovl_inode *inode = NULL;
	struct nt_old *o;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	o = old_find(t, id);
	if (o) {
		struct nt_slot *s = &t->sh->slot[o->slot];

		s->nlookup = n >= s->nlookup ? 0 : s->nlookup - n;
		if (!s->nlookup) {
			inode = o->inode;
			pthread_mutex_lock(&fs->itable_lock);
			if (inode && inode->oldslot == (int)o->slot)
				inode->oldslot = -1;
			slot_free(t, o->slot);
			pthread_mutex_unlock(&fs->itable_lock);
			o->id = NT_TOMB;
			o->inode = NULL;
		}
	}
	pthread_mutex_unlock(&t->lock);
	if (inode)
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

#ifndef FUSE_DEV_IOC_BACKING_CLOSE
#define FUSE_DEV_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)
#endif

/*
 * A worker taking over: close the backing ids its predecessors left.  Files
 * opened with them keep their own reference; only new opens would use an
 * id, and the ids of this worker are new.  Returns how many were closed.
 */
unsigned ovl_nodetab_close_backing(struct ovl_fs *fs, int devfd)
{
	struct ovl_nodetab *t = fs->nodetab;
	unsigned n = 0;

	if (!t)
		return 0;
	for (size_t i = 0; i < t->sh->nslots; i++) {
		uint32_t v = atomic_load(&t->backing[i]);

		if (v == 0 || v == NT_BK_TOMB)
			continue;
		if (ioctl(devfd, FUSE_DEV_IOC_BACKING_CLOSE, &v) == 0)
			n++;
		atomic_store(&t->backing[i], 0);
	}
	return n;
}
