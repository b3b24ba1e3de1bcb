// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What the lock table holds (lock.c serves the requests): for each file,
 * its locks in interval trees, one per kind (flock or record lock) and
 * type (read or write); for each owner of locks on a file, its own locks
 * in a tree of their own; for each user, how many locks and waits she has.
 *
 * A file is keyed by the real file it is (st_dev and st_ino of its
 * topmost real file), which no two files share, whatever st_ino users
 * see (xino=off shows the same number for files of two layers); a
 * copy-up moves the key to the upper file (ovl_lockset_move()).
 *
 * Taking, changing or giving back a lock costs O(log n) in the locks the
 * file holds, plus the owner's own locks it replaces; looking for a
 * conflict costs O(log n) plus the caller's own locks in the range (which
 * the lock then replaces).  The kernel walks a list of every lock on the
 * inode instead (fs/locks.c).  Every field is under ovl_locks.lock.
 */
#include "config.h"

#include "lockset.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

static struct ovl_lock *lock_of_file(struct ovl_ltnode *n)
{
	return container_of(n, struct ovl_lock, byfile);
}

static struct ovl_lock *lock_of_own(struct ovl_ltnode *n)
{
	return container_of(n, struct ovl_lock, byown);
}

/* ---- the treap ---- */

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static void lt_fix(struct ovl_ltnode *n)
{
	n->maxend = n->end;
	if (n->left)
		n->maxend = max64(n->maxend, n->left->maxend);
	if (n->right)
		n->maxend = max64(n->maxend, n->right->maxend);
}

static bool lt_less(const struct ovl_ltnode *a, const struct ovl_ltnode *b)
{
	if (a->start != b->start)
		return a->start < b->start;
	return (uintptr_t)a < (uintptr_t)b;
}

static struct ovl_ltnode *lt_rot_right(struct ovl_ltnode *t)
{
	struct ovl_ltnode *l = t->left;

	t->left = l->right;
	l->right = t;
	lt_fix(t);
	lt_fix(l);
	return l;
}

static struct ovl_ltnode *lt_rot_left(struct ovl_ltnode *t)
{
	struct ovl_ltnode *r = t->right;

	t->right = r->left;
	r->left = t;
	lt_fix(t);
	lt_fix(r);
	return r;
}

static struct ovl_ltnode *lt_insert(struct ovl_ltnode *t, struct ovl_ltnode *n)
{
	if (!t) {
		n->left = n->right = NULL;
		lt_fix(n);
		return n;
	}
	if (lt_less(n, t)) {
		t->left = lt_insert(t->left, n);
		if (t->left->prio > t->prio)
			return lt_rot_right(t);
	} else {
		t->right = lt_insert(t->right, n);
		if (t->right->prio > t->prio)
			return lt_rot_left(t);
	}
	lt_fix(t);
	return t;
}

static struct ovl_ltnode *lt_merge(struct ovl_ltnode *a, struct ovl_ltnode *b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	if (a->prio > b->prio) {
		a->right = lt_merge(a->right, b);
		lt_fix(a);
		return a;
	}
	b->left = lt_merge(a, b->left);
	lt_fix(b);
	return b;
}

/* Take @n, which is in the tree, out of it. */
static struct ovl_ltnode *lt_remove(struct ovl_ltnode *t, struct ovl_ltnode *n)
{
	if (t == n)
		return lt_merge(t->left, t->right);
	if (lt_less(n, t))
		t->left = lt_remove(t->left, n);
	else
		t->right = lt_remove(t->right, n);
	lt_fix(t);
	return t;
}

/*
 * The first node, by start, overlapping [@s, @e] for which @fn is true;
 * nodes before it are visited (those overlapping only).
 */
static struct ovl_ltnode *lt_find(struct ovl_ltnode *t, int64_t s, int64_t e,
				  bool (*fn)(struct ovl_ltnode *n, const void *arg),
				  const void *arg)
{
	struct ovl_ltnode *r;

	while (t && t->maxend >= s) {
		r = lt_find(t->left, s, e, fn, arg);
		if (r)
			return r;
		if (t->start > e)
			return NULL;
		if (t->end >= s && fn(t, arg))
			return t;
		t = t->right;
	}
	return NULL;
}

/* Call @fn on every node, children first (so @fn may free it). */
static void lt_each_post(struct ovl_ltnode *t,
			 void (*fn)(struct ovl_ltnode *n, void *arg), void *arg)
{
	if (!t)
		return;
	lt_each_post(t->left, fn, arg);
	lt_each_post(t->right, fn, arg);
	fn(t, arg);
}

static uint32_t next_prio(struct ovl_locks *t)
{
	/* xorshift64*: cheap, and good enough for a treap's balance */
	t->seed ^= t->seed >> 12;
	t->seed ^= t->seed << 25;
	t->seed ^= t->seed >> 27;
	return (uint32_t)((t->seed * 0x2545f4914f6cdd1dull) >> 32);
}

/* ---- hash tables ---- */

static uint64_t mix(uint64_t a, uint64_t b)
{
	uint64_t h = (a ^ (b * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;

	return h ^ (h >> 33);
}

static void ht_grow(struct ovl_htable *h)
{
	size_t size = h->size ? h->size * 2 : 64;
	struct ovl_hnode **b = calloc(size, sizeof(*b));

	if (!b)
		return; /* longer chains, nothing worse */
	for (size_t i = 0; i < h->size; i++) {
		struct ovl_hnode *n, *next;

		for (n = h->b[i]; n; n = next) {
			next = n->next;
			n->next = b[n->hash & (size - 1)];
			b[n->hash & (size - 1)] = n;
		}
	}
	free(h->b);
	h->b = b;
	h->size = size;
}

static void ht_add(struct ovl_htable *h, struct ovl_hnode *n, uint64_t hash)
{
	if (h->count >= h->size)
		ht_grow(h);
	if (!h->size)
		return; /* cannot happen once grown: callers check ht_ready */
	n->hash = hash;
	n->next = h->b[hash & (h->size - 1)];
	h->b[hash & (h->size - 1)] = n;
	h->count++;
}

/* Room for one more node (a first allocation may fail). */
static bool ht_ready(struct ovl_htable *h)
{
	if (!h->size)
		ht_grow(h);
	return h->size != 0;
}

static void ht_del(struct ovl_htable *h, struct ovl_hnode *n)
{
	struct ovl_hnode **pp = &h->b[n->hash & (h->size - 1)];

	while (*pp != n)
		pp = &(*pp)->next;
	*pp = n->next;
	h->count--;
}

static struct ovl_hnode *ht_first(struct ovl_htable *h, uint64_t hash)
{
	return h->size ? h->b[hash & (h->size - 1)] : NULL;
}

/* ---- users ---- */

/* The count of @uid, made (at 0) if need be; NULL without memory. */
struct ovl_lockuser *ovl_lockuser_get(struct ovl_locks *t, uid_t uid)
{
	uint64_t hash = mix(uid, 1);
	struct ovl_lockuser *u;

	for (struct ovl_hnode *n = ht_first(&t->users, hash); n; n = n->next) {
		u = container_of(n, struct ovl_lockuser, h);
		if (n->hash == hash && u->uid == uid)
			return u;
	}
	if (!ht_ready(&t->users))
		return NULL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->uid = uid;
	ht_add(&t->users, &u->h, hash);
	return u;
}

/* One more lock or wait for @u: false beyond OVL_LOCKS_PER_USER. */
bool ovl_lockuser_more(struct ovl_lockuser *u)
{
	if (u->n >= OVL_LOCKS_PER_USER)
		return false;
	u->n++;
	return true;
}

/* Forget @u if it has nothing. */
void ovl_lockuser_idle(struct ovl_locks *t, struct ovl_lockuser *u)
{
	if (!u || u->n)
		return;
	ht_del(&t->users, &u->h);
	free(u);
}

/* One lock or wait fewer for @u (forgotten by ovl_lockuser_idle(), when
 * nothing refers to it). */
void ovl_lockuser_less(struct ovl_locks *t, struct ovl_lockuser *u)
{
	(void)t;
	u->n--;
}

/* ---- files and owners ---- */

struct ovl_lockfile *ovl_lockfile_get(struct ovl_locks *t, uint64_t dev,
				      uint64_t ino, bool create)
{
	uint64_t hash = mix(dev, ino);
	struct ovl_lockfile *lf;

	for (struct ovl_hnode *n = ht_first(&t->files, hash); n; n = n->next) {
		lf = container_of(n, struct ovl_lockfile, h);
		if (n->hash == hash && lf->dev == dev && lf->ino == ino)
			return lf;
	}
	if (!create || !ht_ready(&t->files))
		return NULL;
	lf = calloc(1, sizeof(*lf));
	if (!lf)
		return NULL;
	lf->dev = dev;
	lf->ino = ino;
	lf->wtail = &lf->waiters;
	ht_add(&t->files, &lf->h, hash);
	return lf;
}

/* Drop @lf once nothing is held or awaited in it. */
void ovl_lockfile_put(struct ovl_locks *t, struct ovl_lockfile *lf)
{
	if (!lf || lf->nowners || lf->waiters)
		return;
	ht_del(&t->files, &lf->h);
	free(lf);
}

static uint64_t owner_hash(struct ovl_lockfile *lf, uint64_t owner, bool flock)
{
	return mix((uintptr_t)lf ^ flock, owner);
}

static struct ovl_lockowner *owner_find(struct ovl_locks *t,
					struct ovl_lockfile *lf,
					uint64_t owner, bool flock)
{
	uint64_t hash = owner_hash(lf, owner, flock);

	for (struct ovl_hnode *n = ht_first(&t->owners, hash); n; n = n->next) {
		struct ovl_lockowner *o = container_of(n, struct ovl_lockowner, h);

		if (n->hash == hash && o->lf == lf && o->owner == owner &&
		    o->flock == flock)
			return o;
	}
	return NULL;
}

static struct ovl_lockowner *owner_new(struct ovl_locks *t,
				       struct ovl_lockfile *lf,
				       const struct ovl_lockreq *r)
{
	struct ovl_lockuser *u = ovl_lockuser_get(t, r->uid);
	struct ovl_lockowner *o;

	if (!u || !ht_ready(&t->owners) || !ht_ready(&t->byfh)) {
		ovl_lockuser_idle(t, u);
		return NULL;
	}
	o = calloc(1, sizeof(*o));
	if (!o) {
		ovl_lockuser_idle(t, u);
		return NULL;
	}
	o->u = u;
	o->lf = lf;
	o->owner = r->owner;
	o->flock = r->flock;
	o->fh = r->fh;
	ht_add(&t->owners, &o->h, owner_hash(lf, r->owner, r->flock));
	ht_add(&t->byfh, &o->hfh, mix((uintptr_t)lf, r->fh));
	lf->nowners++;
	return o;
}

/* Forget @o once it holds nothing. */
static void owner_put(struct ovl_locks *t, struct ovl_lockowner *o)
{
	if (o->n)
		return;
	ht_del(&t->owners, &o->h);
	ht_del(&t->byfh, &o->hfh);
	o->lf->nowners--;
	ovl_lockuser_idle(t, o->u);
	free(o);
}

/* ---- locks ---- */

static struct ovl_ltnode **file_tree(struct ovl_lock *l)
{
	return &l->o->lf->held[l->o->flock][l->type == F_WRLCK];
}

static void lock_link(struct ovl_locks *t, struct ovl_lock *l)
{
	struct ovl_ltnode **ft = file_tree(l);

	l->byown.start = l->byfile.start;
	l->byown.end = l->byfile.end;
	*ft = lt_insert(*ft, &l->byfile);
	l->o->locks = lt_insert(l->o->locks, &l->byown);
	l->o->n++;
	t->nlocks++;
}

static void lock_unlink(struct ovl_locks *t, struct ovl_lock *l)
{
	struct ovl_ltnode **ft = file_tree(l);

	*ft = lt_remove(*ft, &l->byfile);
	l->o->locks = lt_remove(l->o->locks, &l->byown);
	l->o->n--;
	t->nlocks--;
}

static void lock_rec(struct ovl_locks *t, struct ovl_lock *l, int *rec)
{
	struct ovl_lockrec r = {
		.dev = l->o->lf->dev, .ino = l->o->lf->ino,
		.owner = l->o->owner, .fh = l->fh,
		.start = l->byfile.start, .end = l->byfile.end,
		.pid = l->pid, .uid = l->o->u ? l->o->u->uid : 0,
		.type = l->type, .flock = l->o->flock,
	};

	*rec = ovl_nodetab_lock_put(t->fs, *rec, &r);
}

/* A new lock (not linked) for @o, counted against its user, with its
 * record: NULL when the user has too many, or no memory or record. */
static struct ovl_lock *lock_new(struct ovl_locks *t, struct ovl_lockowner *o,
				 const struct ovl_lockreq *r, short type,
				 int64_t start, int64_t end)
{
	struct ovl_lock *l;

	if (!ovl_lockuser_more(o->u))
		return NULL;
	l = calloc(1, sizeof(*l));
	if (!l) {
		ovl_lockuser_less(t, o->u);
		return NULL;
	}
	l->o = o;
	l->fh = r->fh;
	l->pid = r->pid;
	l->type = type;
	l->byfile.start = start;
	l->byfile.end = end;
	l->byfile.prio = next_prio(t);
	l->byown.prio = next_prio(t);
	l->rec = -1;
	if (t->fs->nodetab) {
		lock_rec(t, l, &l->rec);
		if (l->rec < 0) {
			ovl_lockuser_less(t, o->u);
			free(l);
			return NULL;
		}
	}
	return l;
}

/* Free @l, which is unlinked (its owner may go next: owner_put()). */
static void lock_free(struct ovl_locks *t, struct ovl_lock *l)
{
	ovl_nodetab_lock_del(t->fs, l->rec);
	ovl_lockuser_less(t, l->o->u);
	free(l);
	t->freed++;
}

/* Give @l, linked, the range [@start, @end]. */
static void lock_reshape(struct ovl_locks *t, struct ovl_lock *l,
			 int64_t start, int64_t end)
{
	lock_unlink(t, l);
	l->byfile.start = start;
	l->byfile.end = end;
	lock_link(t, l);
	if (l->rec >= 0)
		lock_rec(t, l, &l->rec); /* its record exists: cannot fail */
}

static bool other_owner(struct ovl_ltnode *n, const void *arg)
{
	const struct ovl_lockreq *r = arg;

	return lock_of_file(n)->o->owner != r->owner;
}

/* A lock of another owner that @r would have to wait for, or NULL. */
struct ovl_lock *ovl_lockset_conflict(struct ovl_lockfile *lf,
				      const struct ovl_lockreq *r)
{
	struct ovl_ltnode *n;

	/* flocks and record locks never meet, as on a local filesystem */
	n = lt_find(lf->held[r->flock][1], r->start, r->end, other_owner, r);
	if (!n && r->type == F_WRLCK)
		n = lt_find(lf->held[r->flock][0], r->start, r->end,
			    other_owner, r);
	return n ? lock_of_file(n) : NULL;
}

static bool any(struct ovl_ltnode *n, const void *arg)
{
	(void)n;
	(void)arg;
	return true;
}

/* The lock of @o overlapping [@s, @e] that starts first, or NULL. */
static struct ovl_lock *own_first(struct ovl_lockowner *o, int64_t s, int64_t e)
{
	struct ovl_ltnode *n = lt_find(o->locks, s, e, any, NULL);

	return n ? lock_of_own(n) : NULL;
}

/*
 * Take [@r->start, @r->end] away from what @o holds, splitting a lock
 * that covers it on both sides (with @tail, made by the caller, or it
 * fails with -ENOLCK).
 */
static int cut_owner(struct ovl_locks *t, struct ovl_lockowner *o,
		     const struct ovl_lockreq *r, struct ovl_lock **tail)
{
	struct ovl_lock *h;

	while ((h = own_first(o, r->start, r->end))) {
		int64_t hs = h->byfile.start, he = h->byfile.end;

		if (hs < r->start && he > r->end) {
			struct ovl_lock *n = *tail;

			if (!n)
				return -ENOLCK;
			*tail = NULL;
			n->type = h->type;
			n->fh = h->fh;
			n->pid = h->pid;
			n->byfile.start = r->end + 1;
			n->byfile.end = he;
			lock_link(t, n);
			if (n->rec >= 0)
				lock_rec(t, n, &n->rec);
			lock_reshape(t, h, hs, r->start - 1);
			return 0;
		}
		if (hs < r->start) {
			lock_reshape(t, h, hs, r->start - 1);
		} else if (he > r->end) {
			lock_reshape(t, h, r->end + 1, he);
			return 0; /* the rest starts after the range */
		} else {
			lock_unlink(t, h);
			lock_free(t, h);
		}
	}
	return 0;
}

/* Whether one lock of @o would be split by [@s, @e]. */
static bool splits(struct ovl_lockowner *o, int64_t s, int64_t e)
{
	struct ovl_lock *h = own_first(o, s, e);

	return h && h->byfile.start < s && h->byfile.end > e;
}

/*
 * Give the lock @r asks for to its owner (no conflict checked here): its
 * range is cut from what the owner held, then it merges with the owner's
 * adjacent locks of the same type, as the kernel's posix_lock_inode()
 * does.  0, or -ENOLCK (the user has too many, or no memory): then
 * nothing changed.
 */
int ovl_lockset_apply(struct ovl_locks *t, struct ovl_lockfile *lf,
		      const struct ovl_lockreq *r)
{
	struct ovl_lockowner *o = owner_find(t, lf, r->owner, r->flock);
	struct ovl_lock *n, *h, *tail = NULL;
	int64_t s = r->start, e = r->end;

	if (!o)
		o = owner_new(t, lf, r);
	if (!o)
		return -ENOLCK;
	/* held already as asked: nothing changes */
	h = own_first(o, s, s);
	if (h && h->type == r->type && h->byfile.start <= s &&
	    h->byfile.end >= e)
		return 0;
	n = lock_new(t, o, r, r->type, s, e);
	if (n && h && h->byfile.start < s && h->byfile.end > e) {
		tail = lock_new(t, o, r, r->type, s, e);
		if (!tail) {
			lock_free(t, n);
			n = NULL;
		}
	}
	if (!n) {
		owner_put(t, o);
		return -ENOLCK;
	}
	cut_owner(t, o, r, &tail);
	if (s > 0 && (h = own_first(o, s - 1, s - 1)) && h->type == r->type) {
		n->byfile.start = h->byfile.start;
		lock_unlink(t, h);
		lock_free(t, h);
	}
	if (e < OVL_OFFSET_MAX && (h = own_first(o, e + 1, e + 1)) &&
	    h->type == r->type) {
		n->byfile.end = h->byfile.end;
		lock_unlink(t, h);
		lock_free(t, h);
	}
	lock_link(t, n);
	if (n->rec >= 0)
		lock_rec(t, n, &n->rec);
	return 0;
}

/* Unlock the range of @r: 0, or -ENOLCK when a split was needed and the
 * user has too many locks (nothing changed then). */
int ovl_lockset_cut(struct ovl_locks *t, struct ovl_lockfile *lf,
		    const struct ovl_lockreq *r)
{
	struct ovl_lockowner *o = owner_find(t, lf, r->owner, r->flock);
	struct ovl_lock *tail = NULL;
	int err;

	if (!o)
		return 0;
	if (splits(o, r->start, r->end)) {
		tail = lock_new(t, o, r, F_RDLCK, r->start, r->end);
		if (!tail)
			return -ENOLCK;
	}
	err = cut_owner(t, o, r, &tail);
	if (tail)
		lock_free(t, tail);
	owner_put(t, o);
	return err;
}

static void drop_one(struct ovl_ltnode *n, void *arg)
{
	struct ovl_locks *t = arg;
	struct ovl_lock *l = lock_of_own(n);
	struct ovl_ltnode **ft = file_tree(l);

	*ft = lt_remove(*ft, &l->byfile);
	t->nlocks--;
	l->o->n--;
	lock_free(t, l);
}

/* Everything @o holds goes, and @o with it. */
static void owner_drop(struct ovl_locks *t, struct ovl_lockowner *o)
{
	lt_each_post(o->locks, drop_one, t);
	o->locks = NULL;
	owner_put(t, o);
}

/*
 * What came through file handle @id goes (RELEASE: flocks and OFD locks,
 * whose owner is the open file), or what record-lock owner @id holds
 * (FLUSH).  Whether anything went.
 */
bool ovl_lockset_drop(struct ovl_locks *t, struct ovl_lockfile *lf,
		      bool by_fh, uint64_t id)
{
	uint64_t hash = mix((uintptr_t)lf, id);
	struct ovl_lockowner *o;
	bool dropped = false;
	struct ovl_hnode *n;

	if (!by_fh) {
		o = owner_find(t, lf, id, false);
		if (o)
			owner_drop(t, o);
		return o != NULL;
	}
again:
	for (n = ht_first(&t->byfh, hash); n; n = n->next) {
		o = container_of(n, struct ovl_lockowner, hfh);
		if (n->hash == hash && o->lf == lf && o->fh == id) {
			owner_drop(t, o);
			dropped = true;
			goto again;
		}
	}
	return dropped;
}

static void rec_again(struct ovl_ltnode *n, void *arg)
{
	struct ovl_lock *l = lock_of_file(n);

	if (l->rec >= 0)
		lock_rec(arg, l, &l->rec);
}

/* A lock of a file whose locks move to @arg's file (ovl_lockset_move()). */
struct move_ctx {
	struct ovl_locks *t;
	struct ovl_lockfile *to;
};

static void move_one(struct ovl_ltnode *n, void *arg)
{
	struct move_ctx *m = arg;
	struct ovl_locks *t = m->t;
	struct ovl_lock *l = lock_of_file(n);
	struct ovl_lockowner *old = l->o, *o;
	struct ovl_lockreq r = { .owner = old->owner, .fh = old->fh,
				 .uid = old->u->uid, .flock = old->flock };

	old->locks = lt_remove(old->locks, &l->byown);
	old->n--;
	t->nlocks--;
	o = owner_find(t, m->to, old->owner, old->flock);
	if (!o)
		o = owner_new(t, m->to, &r);
	if (!o) {
		lock_free(t, l); /* no memory: it is lost */
	} else {
		/* the user's count goes with it */
		o->u->n++;
		ovl_lockuser_less(t, old->u);
		l->o = o;
		lock_link(t, l);
		if (l->rec >= 0)
			lock_rec(t, l, &l->rec);
	}
	owner_put(t, old);
}

/*
 * A copy-up: the file keyed (@dev, @ino) is now (@ndev, @nino).  Its
 * locks, and its waiters, go with it; when locks came through the new
 * key meanwhile (a lookup of the new file raced with the copy-up) both
 * are kept.  The file after the move, or NULL if it has no locks.
 */
struct ovl_lockfile *ovl_lockset_move(struct ovl_locks *t, uint64_t dev,
				      uint64_t ino, uint64_t ndev,
				      uint64_t nino)
{
	struct ovl_lockfile *lf = ovl_lockfile_get(t, dev, ino, false), *to;
	struct move_ctx m = { .t = t };

	if (!lf || (dev == ndev && ino == nino))
		return lf;
	to = ovl_lockfile_get(t, ndev, nino, false);
	if (!to) {
		ht_del(&t->files, &lf->h);
		lf->dev = ndev;
		lf->ino = nino;
		ht_add(&t->files, &lf->h, mix(ndev, nino));
		for (int k = 0; k < 2; k++)
			for (int w = 0; w < 2; w++)
				lt_each_post(lf->held[k][w], rec_again, t);
		return lf;
	}
	m.to = to;
	for (int k = 0; k < 2; k++) {
		for (int w = 0; w < 2; w++) {
			struct ovl_ltnode *root = lf->held[k][w];

			lf->held[k][w] = NULL;
			lt_each_post(root, move_one, &m);
		}
	}
	for (struct ovl_waiter *w = lf->waiters; w; w = w->next)
		w->lf = to;
	if (lf->waiters) {
		*to->wtail = lf->waiters;
		to->wtail = lf->wtail;
		lf->waiters = NULL;
		lf->wtail = &lf->waiters;
	}
	ovl_lockfile_put(t, lf);
	return to;
}

/* restart=on: a lock a dead worker held, in record @rec, held again. */
int ovl_lockset_adopt(struct ovl_locks *t, int rec, const struct ovl_lockrec *r)
{
	struct ovl_lockfile *lf = ovl_lockfile_get(t, r->dev, r->ino, true);
	struct ovl_lockreq q = { .owner = r->owner, .fh = r->fh,
				 .uid = r->uid, .flock = r->flock };
	struct ovl_lockowner *o;
	struct ovl_lock *l;

	if (!lf)
		return -ENOMEM;
	o = owner_find(t, lf, r->owner, r->flock);
	if (!o)
		o = owner_new(t, lf, &q);
	l = o ? calloc(1, sizeof(*l)) : NULL;
	if (!l) {
		if (o)
			owner_put(t, o);
		ovl_lockfile_put(t, lf);
		return -ENOMEM;
	}
	o->u->n++; /* held already: counted whatever the bound */
	l->o = o;
	l->fh = r->fh;
	l->pid = r->pid;
	l->type = (short)r->type;
	l->rec = rec;
	l->byfile.start = r->start;
	l->byfile.end = r->end;
	l->byfile.prio = next_prio(t);
	l->byown.prio = next_prio(t);
	lock_link(t, l);
	return 0;
}

static void free_one(struct ovl_ltnode *n, void *arg)
{
	(void)arg;
	free(lock_of_file(n));
}

static void ht_free(struct ovl_htable *h, size_t off)
{
	for (size_t i = 0; i < h->size; i++) {
		struct ovl_hnode *n, *next;

		for (n = h->b[i]; n; n = next) {
			next = n->next;
			if (off != SIZE_MAX)
				free((char *)n - off);
		}
	}
	free(h->b);
	memset(h, 0, sizeof(*h));
}

/* At exit: every lock, owner, file and user count (waiters are lock.c's,
 * freed before). */
void ovl_lockset_free_all(struct ovl_locks *t)
{
	for (size_t i = 0; i < t->files.size; i++)
		for (struct ovl_hnode *n = t->files.b[i]; n; n = n->next) {
			struct ovl_lockfile *lf =
				container_of(n, struct ovl_lockfile, h);

			for (int k = 0; k < 2; k++)
				for (int w = 0; w < 2; w++)
					lt_each_post(lf->held[k][w], free_one,
						     NULL);
		}
	ht_free(&t->files, offsetof(struct ovl_lockfile, h));
	ht_free(&t->byfh, SIZE_MAX); /* the owners, freed next */
	ht_free(&t->owners, offsetof(struct ovl_lockowner, h));
	ht_free(&t->users, offsetof(struct ovl_lockuser, h));
}

/*
 * Whether enough locks were freed since the last time to hand memory
 * back to the system (malloc_trim(), by the caller once the table lock
 * is dropped): after every 4096, and when the last lock goes.
 */
bool ovl_lockset_want_trim(struct ovl_locks *t)
{
	if (t->freed < 4096 && (t->nlocks || t->freed < 256))
		return false;
	t->freed = 0;
	return true;
}
