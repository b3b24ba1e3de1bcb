// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * File locks (flock, POSIX and OFD record locks), served by the daemon.
 *
 * A lower file open through passthrough and then written is copied up to a
 * new FUSE inode (doc/copy-up.md), and the kernel keeps the locks of a FUSE
 * filesystem that does not serve them per FUSE inode: locks taken through
 * the old node id and the new one would never meet.  So the daemon keeps
 * them, in one table keyed by the overlay file (the st_ino users see, which
 * a copy-up keeps), whatever node id or descriptor they come through.
 *
 * Owners are the kernel's: a POSIX lock's is the process's file table, an
 * OFD lock's and a flock's the open file.  POSIX locks go at any close by
 * their owner (FLUSH carries it), flocks and OFD locks when their open file
 * is released (RELEASE; every lock remembers the file handle it came
 * through).  A blocking request never blocks a thread (with FUSE over
 * io_uring one thread serves a CPU's requests): it waits in the table and
 * is answered by whichever request frees its range, or with EINTR by the
 * thread that receives the kernel's FUSE_INTERRUPT.  A POSIX wait that would
 * close a cycle of owners waiting for each other fails with EDEADLK, as the
 * kernel's posix_locks_deadlock() does.
 */
#include "config.h"

#include "overlay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define OVL_OFFSET_MAX INT64_MAX
#define OVL_LOCK_BUCKETS 256
#define OVL_DEADLK_STEPS 10	/* as the kernel's MAX_DEADLK_ITERATIONS */
/*
 * FUSE over io_uring: a request holds one of its CPU queue's ring entries
 * until it is answered (libfuse's default depth is 8), and the kernel
 * queues a CPU's requests on that CPU's ring only.  Were all of them lock
 * waits, the unlock that would end them could never reach us from that CPU.
 * So at most this many waits are kept per queue; one more gets ENOLCK
 * ("no lock records left"), which fcntl(2) and flock(2) both document.
 */
#define OVL_RING_WAITERS 6

/* One lock held. */
struct ovl_lock {
	struct ovl_lock *next;
	uint64_t owner;		/* the kernel's lock owner */
	uint64_t fh;		/* file handle it came through */
	pid_t pid;		/* holder, for F_GETLK */
	short type;		/* F_RDLCK or F_WRLCK */
	bool flock;		/* flock(2) rather than a record lock */
	int64_t start;		/* first byte */
	int64_t end;		/* last byte, OVL_OFFSET_MAX: to the end */
	int rec;		/* restart=on: its record in the shared table
				 * (nodetab.c), which a new worker takes the
				 * locks from; -1 none */
};

enum ovl_waiter_state {
	OVL_WAIT_NEW,		/* interrupt callback set, not queued yet */
	OVL_WAIT_QUEUED,	/* in the file's waiter list */
	OVL_WAIT_DONE,		/* taken off the list by whoever answers */
};

/* A blocking request waiting for a range. */
struct ovl_waiter {
	struct ovl_waiter *next;
	fuse_req_t req;
	struct ovl_lockfile *lf;
	struct ovl_lock want;	/* what it asks for */
	uint64_t blocked_on;	/* owner of the first lock in its way */
	enum ovl_waiter_state state; /* under the table lock */
	int ring;		/* io_uring queue (the caller's CPU), or -1 */
	bool interrupted;	/* FUSE_INTERRUPT came while NEW */
};

/* The locks of one overlay file. */
struct ovl_lockfile {
	struct ovl_lockfile *hnext;
	uint64_t ino;		/* st_ino shown: the same across copy-up */
	struct ovl_lock *locks;
	struct ovl_waiter *waiters; /* oldest first */
};

/* The table; every field under lock. */
struct ovl_locks {
	pthread_mutex_t lock;
	struct ovl_lockfile *bucket[OVL_LOCK_BUCKETS];
	unsigned nwaiters;	/* requests waiting, in every file */
	pthread_cond_t wake;	/* the watcher: there are waiters, or stop */
	pthread_t watcher;	/* see watch_signals() */
	struct ovl_fs *fs;	/* for the watcher, once started */
	bool started;		/* ovl_locks_start() ran: the watcher may start */
	bool watching;		/* the watcher runs */
	bool stop;		/* tells it to end */
};

static void *watch_signals(void *arg);

int ovl_locks_init(struct ovl_fs *fs)
{
	struct ovl_locks *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	if (pthread_mutex_init(&t->lock, NULL)) {
		free(t);
		return -ENOMEM;
	}
	if (pthread_cond_init(&t->wake, NULL)) {
		pthread_mutex_destroy(&t->lock);
		free(t);
		return -ENOMEM;
	}
	t->fs = fs;
	fs->locks = t;
	return 0;
}

/* After detaching (a fork keeps no thread): start the watcher. */
/*
 * Allow the watcher: it starts with the first request that waits, so an
 * idle daemon, and one whose files are never locked, keeps no thread for
 * it (after detaching: threads do not survive the fork).
 */
int ovl_locks_start(struct ovl_fs *fs)
{
	struct ovl_locks *t = fs->locks;

	pthread_mutex_lock(&t->lock);
	t->fs = fs;
	t->started = true;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

/* A request is about to wait: start the watcher if it is not running;
 * table lock held. */
static void watcher_need(struct ovl_locks *t)
{
	if (t->watching || !t->started || t->stop)
		return;
	t->watching = pthread_create(&t->watcher, NULL, watch_signals, t->fs) == 0;
	if (!t->watching)
		ovl_log("cannot start the lock watcher: over io_uring a signal cannot end a lock wait");
}

/* At exit: the connection is gone, and waiting requests with it. */
void ovl_locks_destroy(struct ovl_fs *fs)
{
	struct ovl_locks *t = fs->locks;

	bool watching;

	if (!t)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true; /* no watcher starts from now on */
	watching = t->watching;
	pthread_cond_signal(&t->wake);
	pthread_mutex_unlock(&t->lock);
	if (watching)
		pthread_join(t->watcher, NULL);
	for (int b = 0; b < OVL_LOCK_BUCKETS; b++) {
		struct ovl_lockfile *lf, *nlf;

		for (lf = t->bucket[b]; lf; lf = nlf) {
			nlf = lf->hnext;
			for (struct ovl_lock *l = lf->locks, *n; l; l = n) {
				n = l->next;
				free(l);
			}
			for (struct ovl_waiter *w = lf->waiters, *n; w; w = n) {
				n = w->next;
				free(w);
			}
			free(lf);
		}
	}
	pthread_cond_destroy(&t->wake);
	pthread_mutex_destroy(&t->lock);
	free(t);
	fs->locks = NULL;
}

static struct ovl_lockfile **lockfile_slot(struct ovl_locks *t, uint64_t ino)
{
	struct ovl_lockfile **pp = &t->bucket[(ino * 0x9e3779b97f4a7c15ull) >> 56];

	while (*pp && (*pp)->ino != ino)
		pp = &(*pp)->hnext;
	return pp;
}

/* The entry of @ino, made when @create; table lock held. */
static struct ovl_lockfile *lockfile_get(struct ovl_locks *t, uint64_t ino,
					 bool create)
{
	struct ovl_lockfile **pp = lockfile_slot(t, ino);

	if (!*pp && create) {
		*pp = calloc(1, sizeof(**pp));
		if (*pp)
			(*pp)->ino = ino;
	}
	return *pp;
}

/* Drop @lf once nothing is held or awaited in it; table lock held. */
static void lockfile_put(struct ovl_locks *t, struct ovl_lockfile *lf)
{
	struct ovl_lockfile **pp;

	if (!lf || lf->locks || lf->waiters)
		return;
	pp = lockfile_slot(t, lf->ino);
	*pp = lf->hnext;
	free(lf);
}

static bool overlaps(const struct ovl_lock *a, const struct ovl_lock *b)
{
	return a->start <= b->end && b->start <= a->end;
}

/* Would @l, wanted by its owner, have to wait for @held? */
static bool conflicts(const struct ovl_lock *held, const struct ovl_lock *l)
{
	/* flocks and record locks never meet, as on a local filesystem */
	if (held->flock != l->flock || held->owner == l->owner)
		return false;
	if (held->type != F_WRLCK && l->type != F_WRLCK)
		return false;
	return overlaps(held, l);
}

static struct ovl_lock *first_conflict(struct ovl_lockfile *lf,
				       const struct ovl_lock *l)
{
	for (struct ovl_lock *h = lf->locks; h; h = h->next)
		if (conflicts(h, l))
			return h;
	return NULL;
}

/* restart=on: record @l, held on @ino, where a new worker finds it:
 * 0, or -ENOLCK when no record is left. */
static int rec_put(struct ovl_locks *t, uint64_t ino, struct ovl_lock *l)
{
	int rec;

	if (!t->fs->nodetab)
		return 0;
	rec = ovl_nodetab_lock_put(t->fs, l->rec, ino, l->owner, l->fh,
				   l->start, l->end, l->pid, l->type, l->flock);
	if (rec < 0)
		return -ENOLCK;
	l->rec = rec;
	return 0;
}

/* @l is no longer held: free it and its record. */
static void lock_free(struct ovl_locks *t, struct ovl_lock *l)
{
	ovl_nodetab_lock_del(t->fs, l->rec);
	free(l);
}

/*
 * Take the range of @l away from the locks its owner holds (of its kind),
 * splitting one that covers it on both sides.  Returns -ENOMEM when that
 * split cannot be made (nothing changed then).
 */
static int cut_range(struct ovl_locks *t, struct ovl_lockfile *lf,
		     const struct ovl_lock *l)
{
	struct ovl_lock **pp = &lf->locks, *h;

	while ((h = *pp)) {
		if (h->owner != l->owner || h->flock != l->flock ||
		    !overlaps(h, l)) {
			pp = &h->next;
			continue;
		}
		if (h->start < l->start && h->end > l->end) {
			struct ovl_lock *tail = malloc(sizeof(*tail));

			if (!tail)
				return -ENOMEM;
			*tail = *h;
			tail->rec = -1;
			tail->start = l->end + 1;
			if (rec_put(t, lf->ino, tail)) {
				free(tail);
				return -ENOLCK;
			}
			h->end = l->start - 1;
			rec_put(t, lf->ino, h);
			tail->next = h->next;
			h->next = tail;
			return 0;
		}
		if (h->start < l->start) {
			h->end = l->start - 1;
		} else if (h->end > l->end) {
			h->start = l->end + 1;
		} else {
			*pp = h->next;
			lock_free(t, h);
			continue;
		}
		rec_put(t, lf->ino, h); /* its record exists: cannot fail */
		pp = &h->next;
	}
	return 0;
}

/*
 * Give @l to its owner (no conflict checked here): its range is cut from
 * what the owner held, then the new lock merges with the owner's adjacent
 * locks of the same type, as the kernel's posix_lock_inode() does.
 */
static int apply_lock(struct ovl_locks *t, struct ovl_lockfile *lf,
		      const struct ovl_lock *l)
{
	struct ovl_lock *n, **pp, *h;
	int err;

	n = malloc(sizeof(*n));
	if (!n)
		return -ENOMEM;
	*n = *l;
	n->rec = -1;
	err = rec_put(t, lf->ino, n); /* its record first: nothing to undo */
	if (!err)
		err = cut_range(t, lf, l);
	if (err) {
		lock_free(t, n);
		return err;
	}
	for (pp = &lf->locks; (h = *pp);) {
		bool touch = h->owner == n->owner && h->flock == n->flock &&
			     h->type == n->type &&
			     (h->end == OVL_OFFSET_MAX || h->end + 1 >= n->start) &&
			     (n->end == OVL_OFFSET_MAX || n->end + 1 >= h->start);

		if (!touch) {
			pp = &h->next;
			continue;
		}
		if (h->start < n->start)
			n->start = h->start;
		if (h->end > n->end)
			n->end = h->end;
		*pp = h->next;
		lock_free(t, h);
	}
	rec_put(t, lf->ino, n);
	n->next = lf->locks;
	lf->locks = n;
	return 0;
}

/* The owner the owner of @held waits for, or 0. */
static uint64_t waits_for(struct ovl_locks *t, uint64_t owner)
{
	for (int b = 0; b < OVL_LOCK_BUCKETS; b++)
		for (struct ovl_lockfile *lf = t->bucket[b]; lf; lf = lf->hnext)
			for (struct ovl_waiter *w = lf->waiters; w; w = w->next)
				if (w->want.owner == owner && !w->want.flock)
					return w->blocked_on;
	return 0;
}

/* Would @owner waiting for @blocker close a cycle?  Table lock held. */
static bool would_deadlock(struct ovl_locks *t, uint64_t owner,
			   uint64_t blocker)
{
	for (int i = 0; blocker && i < OVL_DEADLK_STEPS; i++) {
		if (blocker == owner)
			return true;
		blocker = waits_for(t, blocker);
	}
	return false;
}

/*
 * The io_uring queue a request from @tid came through: the kernel picks the
 * queue of the CPU the caller runs on, and a caller asleep in the request
 * stays on it.  -1 if it cannot be read.
 */
static int ring_of(pid_t tid)
{
	char path[64], buf[1024], *p;
	int cpu = -1, n;
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return -1;
	buf[len] = '\0';
	p = strrchr(buf, ')');
	/* "processor" is field 39, the 37th after the command name */
	for (n = 0; p && n < 37; n++)
		p = strchr(p + 1, ' ');
	if (p)
		cpu = atoi(p + 1);
	return cpu;
}

/* Lock waits held on io_uring queue @ring; table lock held. */
static int ring_waiters(struct ovl_locks *t, int ring)
{
	int n = 0;

	for (int b = 0; b < OVL_LOCK_BUCKETS; b++)
		for (struct ovl_lockfile *lf = t->bucket[b]; lf; lf = lf->hnext)
			for (struct ovl_waiter *w = lf->waiters; w; w = w->next)
				n += w->ring == ring;
	return n;
}

/* Answer a waiter taken off its list: after the table lock is dropped. */
static void waiter_answer(struct ovl_waiter *w, int err)
{
	/* waits for an interrupt callback running now, stops later ones */
	fuse_req_interrupt_func(w->req, NULL, NULL);
	fuse_reply_err(w->req, err);
	free(w);
}

/*
 * Grant what waiters of @lf can have now, oldest first; they are moved to
 * *@done, answered once the table lock is dropped.  Table lock held.
 */
static void wake_waiters(struct ovl_locks *t, struct ovl_lockfile *lf,
			 struct ovl_waiter **done)
{
	struct ovl_waiter **pp = &lf->waiters, *w;

	while ((w = *pp)) {
		struct ovl_lock *c = first_conflict(lf, &w->want);

		if (c) {
			w->blocked_on = c->owner;
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		t->nwaiters--;
		w->state = OVL_WAIT_DONE;
		/* a failed allocation answers ENOLCK rather than wait on */
		w->interrupted = apply_lock(t, lf, &w->want) != 0;
		w->next = *done;
		*done = w;
	}
}

static void answer_all(struct ovl_waiter *done)
{
	while (done) {
		struct ovl_waiter *w = done;

		done = w->next;
		waiter_answer(w, w->interrupted ? ENOLCK : 0);
	}
}

/*
 * Whether the thread @tid has a signal pending that it does not block: the
 * kernel then has sent, or would send, FUSE_INTERRUPT for its request.  A
 * thread that is gone counts as interrupted.
 */
static bool signal_pending(pid_t tid)
{
	char path[64], line[128];
	unsigned long long pnd = 0, shd = 0, blk = 0, v;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return true;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "SigPnd: %llx", &v) == 1)
			pnd = v;
		else if (sscanf(line, "ShdPnd: %llx", &v) == 1)
			shd = v;
		else if (sscanf(line, "SigBlk: %llx", &v) == 1)
			blk = v;
	}
	fclose(f);
	/* SIGKILL cannot be blocked */
	return ((pnd | shd) & ~blk) || ((pnd | shd) & (1ull << (SIGKILL - 1)));
}

/*
 * The watcher: while requests wait, look every 50 ms whether their callers
 * got a signal, and end those waits with EINTR.  FUSE over io_uring never
 * hands libfuse the kernel's FUSE_INTERRUPT for a request that came through
 * a ring (libfuse 3.18 matches interrupts only against /dev/fuse requests),
 * so without this a blocked F_SETLKW or flock could not be interrupted,
 * nor its process killed (the kernel waits for the answer of a request the
 * server has read).  Over /dev/fuse, FUSE_INTERRUPT usually comes first.
 */
static void *watch_signals(void *arg)
{
	struct ovl_fs *fs = arg;
	struct ovl_locks *t = fs->locks;

	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		struct ovl_waiter *done = NULL;
		struct timespec ts;

		if (!t->nwaiters) {
			pthread_cond_wait(&t->wake, &t->lock);
			continue;
		}
		for (int b = 0; b < OVL_LOCK_BUCKETS; b++) {
			struct ovl_lockfile *lf, *nlf;

			for (lf = t->bucket[b]; lf; lf = nlf) {
				struct ovl_waiter **pp = &lf->waiters, *w;

				nlf = lf->hnext;
				while ((w = *pp)) {
					if (!signal_pending(fuse_req_ctx(w->req)->pid)) {
						pp = &w->next;
						continue;
					}
					*pp = w->next;
					t->nwaiters--;
					w->state = OVL_WAIT_DONE;
					w->next = done;
					done = w;
				}
				lockfile_put(t, lf);
			}
		}
		pthread_mutex_unlock(&t->lock);
		while (done) {
			struct ovl_waiter *w = done;

			done = w->next;
			waiter_answer(w, EINTR);
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&t->lock);
		if (!t->stop)
			pthread_cond_timedwait(&t->wake, &t->lock, &ts);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

/* FUSE_INTERRUPT for a waiting request: it ends with EINTR. */
static void waiter_interrupted(fuse_req_t req, void *data)
{
	struct ovl_waiter *w = data;
	struct ovl_locks *t = ovl_fs_of(req)->locks;
	struct ovl_waiter **pp;
	bool mine = false;

	pthread_mutex_lock(&t->lock);
	if (w->state == OVL_WAIT_NEW) {
		w->interrupted = true; /* the handler answers */
	} else if (w->state == OVL_WAIT_QUEUED) {
		for (pp = &w->lf->waiters; *pp != w; pp = &(*pp)->next)
			;
		*pp = w->next;
		t->nwaiters--;
		w->state = OVL_WAIT_DONE;
		mine = true;
		lockfile_put(t, w->lf);
	}
	pthread_mutex_unlock(&t->lock);
	if (mine) {
		/* called under the request's own lock: reply, no unregister */
		fuse_reply_err(req, EINTR);
		free(w);
	}
}

/*
 * Ask for @l on the file of @ino: 0 when granted, -EAGAIN when another
 * owner holds part of it and @sleep is false, -EDEADLK, or 1 when the
 * request now waits in the table (answered later, never here).
 */
static int lock_set(struct ovl_fs *fs, fuse_req_t req, uint64_t ino,
		    const struct ovl_lock *l, bool sleep)
{
	struct ovl_locks *t = fs->locks;
	struct ovl_lockfile *lf;
	struct ovl_waiter *w = NULL, *done = NULL;
	struct ovl_lock *c;
	int err = 0;

	if (sleep) {
		w = calloc(1, sizeof(*w));
		if (!w)
			return -ENOLCK;
		w->req = req;
		w->want = *l;
		w->ring = -1;
		if (fuse_req_is_uring(req)) {
			w->ring = ring_of(fuse_req_ctx(req)->pid);
			if (w->ring < 0)
				w->ring = 0; /* unknown: counted together */
		}
		/* may call back at once (already interrupted): sets the flag */
		fuse_req_interrupt_func(req, waiter_interrupted, w);
	}
	pthread_mutex_lock(&t->lock);
	lf = lockfile_get(t, ino, l->type != F_UNLCK);
	if (!lf) {
		/* unlocking what nobody holds, or no memory */
		err = l->type == F_UNLCK ? 0 : -ENOLCK;
		goto out_unlock;
	}
	if (l->type == F_UNLCK) {
		err = cut_range(t, lf, l);
		wake_waiters(t, lf, &done);
		goto out_put;
	}
	if (l->flock) {
		/* a flock changes type by unlocking first, as flock(2) */
		struct ovl_lock un = *l;

		un.type = F_UNLCK;
		cut_range(t, lf, &un);
		wake_waiters(t, lf, &done);
	}
	c = first_conflict(lf, l);
	if (!c) {
		err = apply_lock(t, lf, l) ? -ENOLCK : 0;
	} else if (!w) {
		err = -EAGAIN;
	} else if (!l->flock && would_deadlock(t, l->owner, c->owner)) {
		err = -EDEADLK;
	} else if (w->interrupted) {
		err = -EINTR;
	} else if (w->ring >= 0 && ring_waiters(t, w->ring) >= OVL_RING_WAITERS) {
		err = -ENOLCK;
	} else {
		w->lf = lf;
		w->blocked_on = c->owner;
		w->state = OVL_WAIT_QUEUED;
		w->next = NULL;
		struct ovl_waiter **pp = &lf->waiters;

		while (*pp)
			pp = &(*pp)->next;
		*pp = w;
		watcher_need(t);
		if (t->nwaiters++ == 0)
			pthread_cond_signal(&t->wake);
		w = NULL; /* the table's now: no touching it after unlock */
		err = 1;
	}
out_put:
	lockfile_put(t, lf);
out_unlock:
	if (w)
		w->state = OVL_WAIT_DONE;
	pthread_mutex_unlock(&t->lock);
	if (w) {
		fuse_req_interrupt_func(req, NULL, NULL);
		free(w);
	}
	answer_all(done);
	return err;
}

/* Drop what @fh holds (RELEASE), or what @owner's record locks hold (FLUSH). */
static void lock_drop(struct ovl_fs *fs, uint64_t ino, bool by_fh, uint64_t id)
{
	struct ovl_locks *t = fs->locks;
	struct ovl_lockfile *lf;
	struct ovl_waiter *done = NULL;

	pthread_mutex_lock(&t->lock);
	lf = lockfile_get(t, ino, false);
	if (lf) {
		struct ovl_lock **pp = &lf->locks, *h;
		bool dropped = false;

		while ((h = *pp)) {
			if (by_fh ? h->fh == id : (h->owner == id && !h->flock)) {
				*pp = h->next;
				lock_free(t, h);
				dropped = true;
			} else {
				pp = &h->next;
			}
		}
		if (dropped)
			wake_waiters(t, lf, &done);
		lockfile_put(t, lf);
	}
	pthread_mutex_unlock(&t->lock);
	answer_all(done);
}

static void lock_from_flock(struct ovl_lock *l, const struct flock *fl,
			    struct fuse_file_info *fi, fuse_req_t req)
{
	memset(l, 0, sizeof(*l));
	l->owner = fi->lock_owner;
	l->fh = fi->fh;
	l->pid = fl->l_pid ? fl->l_pid : fuse_req_ctx(req)->pid;
	l->type = fl->l_type;
	l->start = fl->l_start;
	l->end = fl->l_len == 0 ? OVL_OFFSET_MAX : fl->l_start + fl->l_len - 1;
}

void ovl_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	       struct flock *fl)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_locks *t = fs->locks;
	struct ovl_lockfile *lf;
	struct ovl_lock l, *c = NULL;
	struct flock out = { .l_type = F_UNLCK, .l_whence = SEEK_SET };

	ovl_stat_op(fs, OVL_OP_GETLK);
	lock_from_flock(&l, fl, fi, req);
	pthread_mutex_lock(&t->lock);
	lf = lockfile_get(t, ovl_inode_of(fs, ino)->ino, false);
	if (lf)
		c = first_conflict(lf, &l);
	if (c) {
		out.l_type = c->type;
		out.l_start = c->start;
		out.l_len = c->end == OVL_OFFSET_MAX ? 0 : c->end - c->start + 1;
		out.l_pid = c->pid;
	}
	pthread_mutex_unlock(&t->lock);
	fuse_reply_lock(req, &out);
}

void ovl_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	       struct flock *fl, int sleep)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_lock l;
	int err;

	ovl_stat_op(fs, OVL_OP_SETLK);
	lock_from_flock(&l, fl, fi, req);
	if (l.type != F_RDLCK && l.type != F_WRLCK && l.type != F_UNLCK) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	err = lock_set(fs, req, ovl_inode_of(fs, ino)->ino, &l, sleep != 0);
	if (err <= 0)
		fuse_reply_err(req, -err);
}

void ovl_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	       int op)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_lock l = { .owner = fi->lock_owner, .fh = fi->fh,
			      .pid = fuse_req_ctx(req)->pid, .flock = true,
			      .start = 0, .end = OVL_OFFSET_MAX };
	int err;

	ovl_stat_op(fs, OVL_OP_SETLK);
	switch (op & ~LOCK_NB) {
	case LOCK_SH:
		l.type = F_RDLCK;
		break;
	case LOCK_EX:
		l.type = F_WRLCK;
		break;
	case LOCK_UN:
		l.type = F_UNLCK;
		break;
	default:
		fuse_reply_err(req, EINVAL);
		return;
	}
	err = lock_set(fs, req, ovl_inode_of(fs, ino)->ino, &l, !(op & LOCK_NB));
	if (err <= 0)
		fuse_reply_err(req, err == -EAGAIN ? EWOULDBLOCK : -err);
}

/* Every close: the closing process's record locks on the file go. */
void ovl_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ovl_fs *fs = ovl_fs_of(req);

	ovl_stat_op(fs, OVL_OP_FLUSH);
	lock_drop(fs, ovl_inode_of(fs, ino)->ino, false, fi->lock_owner);
	fuse_reply_err(req, 0);
}

/* The last close of an open file: its flocks and OFD locks go. */
void ovl_locks_release(struct ovl_fs *fs, struct ovl_inode *inode, uint64_t fh)
{
	lock_drop(fs, inode->ino, true, fh);
}

/* One lock a dead worker held, into this worker's table. */
static int lock_adopt(struct ovl_fs *fs, int rec, uint64_t ino, uint64_t owner,
		      uint64_t fh, int64_t start, int64_t end, int pid,
		      int type, bool flock)
{
	struct ovl_locks *t = fs->locks;
	struct ovl_lockfile *lf = lockfile_get(t, ino, true);
	struct ovl_lock *l = malloc(sizeof(*l));

	if (!lf || !l) {
		free(l);
		return -ENOMEM;
	}
	*l = (struct ovl_lock){ .owner = owner, .fh = fh, .pid = pid,
				.type = (short)type, .flock = flock,
				.start = start, .end = end, .rec = rec,
				.next = lf->locks };
	lf->locks = l;
	return 0;
}

/*
 * restart=on, a worker taking over: the locks its predecessors held are
 * held still (their owners and file handles are the kernel's, the same
 * for every worker).  Before any request is served.
 */
int ovl_locks_takeover(struct ovl_fs *fs)
{
	struct ovl_locks *t = fs->locks;
	int err;

	pthread_mutex_lock(&t->lock);
	err = ovl_nodetab_locks_each(fs, lock_adopt);
	pthread_mutex_unlock(&t->lock);
	return err;
}
