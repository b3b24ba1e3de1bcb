/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The lock table's structures, shared by lock.c (requests, waiters) and
 * lockset.c (what is held: trees, owners, per-user counts).  Private to
 * those two files.
 *
 * Every field here is guarded by ovl_locks.lock.
 */
#ifndef OVL_LOCKSET_H
#define OVL_LOCKSET_H

#include "overlay.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define OVL_OFFSET_MAX INT64_MAX

/*
 * The most locks and lock waits one user (the uid of the request that
 * made them) may have in the daemon at once; ENOLCK beyond.  At about
 * 200 bytes each (a lock, its two tree nodes, its restart record) this
 * keeps one user below 20 MB.  The kernel instead charges each lock to
 * the caller's memory cgroup (file_lock_cache is SLAB_ACCOUNT); a FUSE
 * daemon cannot charge its memory to its callers.
 */
#define OVL_LOCKS_PER_USER 100000

/*
 * A node of a treap ordered by start (then by address), that knows the
 * greatest end in its subtree: an interval tree in which finding what
 * overlaps a range costs O(log n) plus what is found.
 */
struct ovl_ltnode {
	struct ovl_ltnode *left;
	struct ovl_ltnode *right;
	int64_t start;		/* first byte */
	int64_t end;		/* last byte, OVL_OFFSET_MAX: to the end */
	int64_t maxend;		/* greatest end in this subtree */
	uint32_t prio;		/* heap order: random */
};

/* A chained hash table of nodes carrying their hash. */
struct ovl_hnode {
	struct ovl_hnode *next;
	uint64_t hash;
};

struct ovl_htable {
	struct ovl_hnode **b;	/* buckets, a power of two of them, or NULL */
	size_t size;		/* buckets */
	size_t count;		/* nodes */
};

struct ovl_lockowner;

/* One lock held. */
struct ovl_lock {
	struct ovl_ltnode byfile; /* in its file's tree of its kind and type */
	struct ovl_ltnode byown; /* in its owner's tree */
	struct ovl_lockowner *o; /* its owner */
	uint64_t fh;		/* file handle it came through */
	pid_t pid;		/* holder, for F_GETLK */
	short type;		/* F_RDLCK or F_WRLCK */
	int rec;		/* restart=on: its record in the shared table
				 * (nodetab.c), which a new worker takes the
				 * locks from; -1 none */
};

/* The locks of one overlay file. */
struct ovl_lockfile {
	struct ovl_hnode h;	/* in ovl_locks.files, by key */
	uint64_t dev;		/* key: the real file it is (st_dev... */
	uint64_t ino;		/* ...and st_ino of its topmost real file) */
	struct ovl_ltnode *held[2][2]; /* [flock][write]: locks by start */
	size_t nowners;		/* owner records in it */
	struct ovl_waiter *waiters; /* oldest first */
	struct ovl_waiter **wtail; /* where the next waiter goes */
};

/* What one owner (of one kind) holds on one file. */
struct ovl_lockowner {
	struct ovl_hnode h;	/* in ovl_locks.owners, by (file, owner, kind) */
	struct ovl_hnode hfh;	/* in ovl_locks.byfh, by (file, fh) */
	struct ovl_lockfile *lf;
	uint64_t owner;		/* the kernel's lock owner */
	uint64_t fh;		/* the file handle of its first lock: RELEASE
				 * of it drops them all */
	bool flock;		/* flock(2) rather than record locks */
	struct ovl_lockuser *u;	/* the user it is counted against */
	struct ovl_ltnode *locks; /* its locks, disjoint, by start */
	size_t n;		/* how many */
};

/* The locks and waits of one user. */
struct ovl_lockuser {
	struct ovl_hnode h;	/* in ovl_locks.users, by uid */
	uid_t uid;
	size_t n;		/* locks held and waits, at most
				 * OVL_LOCKS_PER_USER */
};

enum ovl_waiter_state {
	OVL_WAIT_NEW,		/* interrupt callback set, not queued yet */
	OVL_WAIT_QUEUED,	/* in the file's waiter list */
	OVL_WAIT_DONE,		/* taken off the list by whoever answers */
};

/* What a lock request asks for. */
struct ovl_lockreq {
	uint64_t owner;
	uint64_t fh;
	pid_t pid;
	uid_t uid;		/* who asks: counted against */
	short type;		/* F_RDLCK, F_WRLCK or F_UNLCK */
	bool flock;
	int64_t start;
	int64_t end;
};

/* A blocking request waiting for a range. */
struct ovl_waiter {
	struct ovl_waiter *next; /* in its file's list */
	struct ovl_waiter *anext; /* in ovl_locks.all */
	struct ovl_waiter **aprev;
	fuse_req_t req;
	struct ovl_lockfile *lf;
	struct ovl_lockreq want; /* what it asks for */
	struct ovl_lockuser *u;	/* counted against, while queued */
	uint64_t blocked_on;	/* owner of the first lock in its way */
	enum ovl_waiter_state state;
	bool interrupted;	/* FUSE_INTERRUPT came while NEW */
	int err;		/* the answer, once DONE */
};

/* The table; every field under lock. */
struct ovl_locks {
	pthread_mutex_t lock;
	struct ovl_htable files;	/* ovl_lockfile by key */
	struct ovl_htable owners;	/* ovl_lockowner by (file, owner, kind) */
	struct ovl_htable byfh;		/* ovl_lockowner by (file, fh) */
	struct ovl_htable users;	/* ovl_lockuser by uid */
	struct ovl_waiter *all;		/* every waiter */
	unsigned nwaiters;	/* requests waiting, in every file */
	size_t nlocks;		/* locks held, in every file */
	size_t freed;		/* locks freed since memory was last trimmed */
	uint64_t seed;		/* treap priorities */
	pthread_cond_t wake;	/* the watcher: there are waiters, or stop */
	pthread_t watcher;	/* see watch_signals() */
	struct ovl_fs *fs;	/* for the watcher, once started */
	bool started;		/* ovl_locks_start() ran: the watcher may start */
	bool watching;		/* the watcher runs */
	bool stop;		/* tells it to end */
};

/* lockset.c */
struct ovl_lockfile *ovl_lockfile_get(struct ovl_locks *t, uint64_t dev,
				      uint64_t ino, bool create);
void ovl_lockfile_put(struct ovl_locks *t, struct ovl_lockfile *lf);
struct ovl_lock *ovl_lockset_conflict(struct ovl_lockfile *lf,
				      const struct ovl_lockreq *r);
int ovl_lockset_apply(struct ovl_locks *t, struct ovl_lockfile *lf,
		      const struct ovl_lockreq *r);
int ovl_lockset_cut(struct ovl_locks *t, struct ovl_lockfile *lf,
		    const struct ovl_lockreq *r);
bool ovl_lockset_drop(struct ovl_locks *t, struct ovl_lockfile *lf,
		      bool by_fh, uint64_t id);
struct ovl_lockfile *ovl_lockset_move(struct ovl_locks *t, uint64_t dev,
				      uint64_t ino, uint64_t ndev,
				      uint64_t nino);
int ovl_lockset_adopt(struct ovl_locks *t, int rec, const struct ovl_lockrec *r);
struct ovl_lockuser *ovl_lockuser_get(struct ovl_locks *t, uid_t uid);
bool ovl_lockuser_more(struct ovl_lockuser *u);
void ovl_lockuser_less(struct ovl_locks *t, struct ovl_lockuser *u);
void ovl_lockuser_idle(struct ovl_locks *t, struct ovl_lockuser *u);
void ovl_lockset_free_all(struct ovl_locks *t);
bool ovl_lockset_want_trim(struct ovl_locks *t);

#endif
