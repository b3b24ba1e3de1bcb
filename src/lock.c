// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * File locks (flock, POSIX and OFD record locks), served by the daemon.
 *
 * A lower file open through passthrough and then written is copied up to a
 * new FUSE inode (doc/copy-up.md), and the kernel keeps the locks of a FUSE
 * filesystem that does not serve them per FUSE inode: locks taken through
 * the old node id and the new one would never meet.  So the daemon keeps
 * them, in one table keyed by the real file (st_dev and st_ino of the
 * topmost real file, which no two files share; a copy-up moves the key to
 * the upper file), whatever node id or descriptor they come through.
 * What is held, and how it is found fast, is lockset.c's.
 *
 * Owners are the kernel's: a POSIX lock's is the process's file table, an
 * OFD lock's and a flock's the open file.  POSIX locks go at any close by
 * their owner (FLUSH carries it), flocks and OFD locks when their open file
 * is released (RELEASE).  A blocking request never blocks a thread (with
 * FUSE over io_uring one thread serves a CPU's requests, and uring.c gives
 * the CPU's queue another entry for each request left waiting): it waits
 * in the table and is answered by whichever request frees its range, or
 * with EINTR by the thread that receives the kernel's FUSE_INTERRUPT.  A POSIX
 * wait that would close a cycle of owners waiting for each other fails
 * with EDEADLK, as the kernel's posix_locks_deadlock() does.
 */
#include "config.h"

#include "lockset.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define OVL_DEADLK_STEPS 10	/* as the kernel's MAX_DEADLK_ITERATIONS */
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
	t->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull | 1;
	t->fs = fs;
	fs->locks = t;
	return 0;
}

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
		ovl_log("cannot start the lock watcher: a lock wait ends on a signal only through FUSE_INTERRUPT");
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
	for (struct ovl_waiter *w = t->all, *n; w; w = n) {
		n = w->anext;
		free(w);
	}
	ovl_lockset_free_all(t);
	pthread_cond_destroy(&t->wake);
	pthread_mutex_destroy(&t->lock);
	free(t);
	fs->locks = NULL;
}

/* The owner the owner of @held waits for, or 0. */
static uint64_t waits_for(struct ovl_locks *t, uint64_t owner)
{
	for (struct ovl_waiter *w = t->all; w; w = w->anext)
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

/* Take @w, queued, out of its file's list and the table's. */
static void waiter_unqueue(struct ovl_locks *t, struct ovl_waiter *w)
{
	struct ovl_lockfile *lf = w->lf;
	struct ovl_waiter **pp = &lf->waiters, *prev = NULL;

	while (*pp != w) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	*pp = w->next;
	if (lf->wtail == &w->next)
		lf->wtail = prev ? &prev->next : &lf->waiters;
	*w->aprev = w->anext;
	if (w->anext)
		w->anext->aprev = w->aprev;
	t->nwaiters--;
	w->state = OVL_WAIT_DONE;
	if (w->u) {
		ovl_lockuser_less(t, w->u);
		ovl_lockuser_idle(t, w->u);
		w->u = NULL;
	}
}

static void waiter_queue(struct ovl_locks *t, struct ovl_lockfile *lf,
			 struct ovl_waiter *w)
{
	w->lf = lf;
	w->state = OVL_WAIT_QUEUED;
	w->next = NULL;
	*lf->wtail = w;
	lf->wtail = &w->next;
	w->anext = t->all;
	w->aprev = &t->all;
	if (t->all)
		t->all->aprev = &w->anext;
	t->all = w;
	watcher_need(t);
	if (t->nwaiters++ == 0)
		pthread_cond_signal(&t->wake);
}

/* Answer a waiter taken off its list: after the table lock is dropped. */
static void waiter_answer(struct ovl_waiter *w)
{
	/* waits for an interrupt callback running now, stops later ones */
	fuse_req_interrupt_func(w->req, NULL, NULL);
	fuse_reply_err(w->req, w->err);
	free(w);
}

/*
 * Grant what waiters of @lf can have now, oldest first; they are moved to
 * *@done, answered once the table lock is dropped.  Table lock held.
 */
static void wake_waiters(struct ovl_locks *t, struct ovl_lockfile *lf,
			 struct ovl_waiter **done)
{
	struct ovl_waiter *w, *next;

	for (w = lf->waiters; w; w = next) {
		struct ovl_lock *c = ovl_lockset_conflict(lf, &w->want);

		next = w->next;
		if (c) {
			w->blocked_on = c->o->owner;
			continue;
		}
		waiter_unqueue(t, w);
		/* a failed allocation answers ENOLCK rather than wait on */
		w->err = ovl_lockset_apply(t, lf, &w->want) ? ENOLCK : 0;
		w->next = *done;
		*done = w;
	}
}

static void answer_all(struct ovl_waiter *done)
{
	while (done) {
		struct ovl_waiter *w = done;

		done = w->next;
		waiter_answer(w);
	}
}

/* After locks went: memory back to the system now and then. */
static void unlock_trim(struct ovl_locks *t, bool trim)
{
	(void)t;
	if (trim)
		malloc_trim(0);
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
 * got a signal, and end those waits with EINTR.  The kernel's
 * FUSE_INTERRUPT, which libfuse matches with every request it was handed
 * (through /dev/fuse or uring.c's rings), usually comes first; this one
 * ends a wait whose interrupt was lost or never sent, so that a blocked
 * F_SETLKW or flock can always be interrupted and its process killed (the
 * kernel waits for the answer of a request the server has read).
 */
static void *watch_signals(void *arg)
{
	struct ovl_fs *fs = arg;
	struct ovl_locks *t = fs->locks;

	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		struct ovl_waiter *done = NULL, *w, *next;
		struct timespec ts;

		if (!t->nwaiters) {
			pthread_cond_wait(&t->wake, &t->lock);
			continue;
		}
		for (w = t->all; w; w = next) {
			struct ovl_lockfile *lf = w->lf;

			next = w->anext;
			if (!signal_pending(fuse_req_ctx(w->req)->pid))
				continue;
			waiter_unqueue(t, w);
			ovl_lockfile_put(t, lf);
			w->err = EINTR;
			w->next = done;
			done = w;
		}
		pthread_mutex_unlock(&t->lock);
		answer_all(done);
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
	bool mine = false;

	pthread_mutex_lock(&t->lock);
	if (w->state == OVL_WAIT_NEW) {
		w->interrupted = true; /* the handler answers */
	} else if (w->state == OVL_WAIT_QUEUED) {
		struct ovl_lockfile *lf = w->lf;

		waiter_unqueue(t, w);
		ovl_lockfile_put(t, lf);
		mine = true;
	}
	pthread_mutex_unlock(&t->lock);
	if (mine) {
		/* called under the request's own lock: reply, no unregister */
		fuse_reply_err(req, EINTR);
		free(w);
	}
}

/* A waiter for @req asking for @r, its interrupt callback set. */
static struct ovl_waiter *waiter_new(fuse_req_t req,
				     const struct ovl_lockreq *r)
{
	struct ovl_waiter *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->req = req;
	w->want = *r;
	/* may call back at once (already interrupted): sets the flag */
	fuse_req_interrupt_func(req, waiter_interrupted, w);
	return w;
}

/* Whether @w, which must wait for @c's owner, may: 0 (queued), or why
 * not.  Table lock held. */
static int waiter_park(struct ovl_locks *t, struct ovl_lockfile *lf,
		       struct ovl_waiter *w, struct ovl_lock *c)
{
	if (!w->want.flock && would_deadlock(t, w->want.owner, c->o->owner))
		return -EDEADLK;
	if (w->interrupted)
		return -EINTR;
	w->u = ovl_lockuser_get(t, w->want.uid);
	if (!w->u || !ovl_lockuser_more(w->u)) {
		ovl_lockuser_idle(t, w->u);
		w->u = NULL;
		return -ENOLCK;
	}
	w->blocked_on = c->o->owner;
	waiter_queue(t, lf, w);
	return 0;
}

/* The file @inode's locks are kept under; table lock held. */
static struct ovl_lockfile *lockfile_of(struct ovl_locks *t,
					struct ovl_inode *inode, bool create)
{
	return ovl_lockfile_get(t, inode->lock_dev, inode->lock_ino, create);
}

/*
 * Ask for @l on the file of @inode: 0 when granted, -EAGAIN when another
 * owner holds part of it and @sleep is false, -EDEADLK, -ENOLCK, or 1 when
 * the request now waits in the table (answered later, never here).
 */
static int lock_set(struct ovl_fs *fs, fuse_req_t req, struct ovl_inode *inode,
		    const struct ovl_lockreq *l, bool sleep)
{
	struct ovl_locks *t = fs->locks;
	struct ovl_lockfile *lf;
	struct ovl_waiter *w = NULL, *done = NULL;
	struct ovl_lock *c;
	bool trim = false;
	int err = 0;

	if (sleep && l->type != F_UNLCK) {
		w = waiter_new(req, l);
		if (!w)
			return -ENOLCK;
	}
	pthread_mutex_lock(&t->lock);
	lf = lockfile_of(t, inode, l->type != F_UNLCK);
	if (!lf) {
		/* unlocking what nobody holds, or no memory */
		err = l->type == F_UNLCK ? 0 : -ENOLCK;
		goto out_unlock;
	}
	if (l->type == F_UNLCK) {
		err = ovl_lockset_cut(t, lf, l);
		wake_waiters(t, lf, &done);
		goto out_put;
	}
	if (l->flock) {
		/* a flock changes type by unlocking first, as flock(2) */
		struct ovl_lockreq un = *l;

		un.type = F_UNLCK;
		ovl_lockset_cut(t, lf, &un);
		wake_waiters(t, lf, &done);
	}
	c = ovl_lockset_conflict(lf, l);
	if (!c)
		err = ovl_lockset_apply(t, lf, l);
	else if (!w)
		err = -EAGAIN;
	else
		err = waiter_park(t, lf, w, c);
	if (c && !err) {
		w = NULL; /* the table's now: no touching it after unlock */
		err = 1;
	}
out_put:
	ovl_lockfile_put(t, lf);
out_unlock:
	if (w)
		w->state = OVL_WAIT_DONE;
	trim = ovl_lockset_want_trim(t);
	pthread_mutex_unlock(&t->lock);
	if (w) {
		fuse_req_interrupt_func(req, NULL, NULL);
		free(w);
	}
	answer_all(done);
	unlock_trim(t, trim);
	return err;
}

/* Drop what @fh holds (RELEASE), or what @owner's record locks hold (FLUSH). */
static void lock_drop(struct ovl_fs *fs, struct ovl_inode *inode, bool by_fh,
		      uint64_t id)
{
	struct ovl_locks *t = fs->locks;
	struct ovl_lockfile *lf;
	struct ovl_waiter *done = NULL;
	bool trim;

	pthread_mutex_lock(&t->lock);
	lf = lockfile_of(t, inode, false);
	if (lf) {
		if (ovl_lockset_drop(t, lf, by_fh, id))
			wake_waiters(t, lf, &done);
		ovl_lockfile_put(t, lf);
	}
	trim = ovl_lockset_want_trim(t);
	pthread_mutex_unlock(&t->lock);
	answer_all(done);
	unlock_trim(t, trim);
}

static void lock_from_flock(struct ovl_lockreq *l, const struct flock *fl,
			    struct fuse_file_info *fi, fuse_req_t req)
{
	memset(l, 0, sizeof(*l));
	l->owner = fi->lock_owner;
	l->fh = fi->fh;
	l->pid = fl->l_pid ? fl->l_pid : fuse_req_ctx(req)->pid;
	l->uid = fuse_req_ctx(req)->uid;
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
	struct ovl_lockreq l;
	struct ovl_lock *c = NULL;
	struct flock out = { .l_type = F_UNLCK, .l_whence = SEEK_SET };

	ovl_stat_op(fs, OVL_OP_GETLK);
	lock_from_flock(&l, fl, fi, req);
	pthread_mutex_lock(&t->lock);
	lf = lockfile_of(t, ovl_inode_of(fs, ino), false);
	if (lf)
		c = ovl_lockset_conflict(lf, &l);
	if (c) {
		out.l_type = c->type;
		out.l_start = c->byfile.start;
		out.l_len = c->byfile.end == OVL_OFFSET_MAX ? 0 :
			    c->byfile.end - c->byfile.start + 1;
		out.l_pid = c->pid;
	}
	pthread_mutex_unlock(&t->lock);
	fuse_reply_lock(req, &out);
}

void ovl_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	       struct flock *fl, int sleep)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_lockreq l;
	int err;

	ovl_stat_op(fs, OVL_OP_SETLK);
	lock_from_flock(&l, fl, fi, req);
	if (l.type != F_RDLCK && l.type != F_WRLCK && l.type != F_UNLCK) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	err = lock_set(fs, req, ovl_inode_of(fs, ino), &l, sleep != 0);
	if (err <= 0)
		fuse_reply_err(req, -err);
}

void ovl_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	       int op)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_lockreq l = { .owner = fi->lock_owner, .fh = fi->fh,
				 .pid = fuse_req_ctx(req)->pid,
				 .uid = fuse_req_ctx(req)->uid, .flock = true,
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
	err = lock_set(fs, req, ovl_inode_of(fs, ino), &l, !(op & LOCK_NB));
	if (err <= 0)
		fuse_reply_err(req, err == -EAGAIN ? EWOULDBLOCK : -err);
}

/* Every close: the closing process's record locks on the file go. */
void ovl_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ovl_fs *fs = ovl_fs_of(req);

	ovl_stat_op(fs, OVL_OP_FLUSH);
	lock_drop(fs, ovl_inode_of(fs, ino), false, fi->lock_owner);
	fuse_reply_err(req, 0);
}

/* The last close of an open file: its flocks and OFD locks go. */
void ovl_locks_release(struct ovl_fs *fs, struct ovl_inode *inode, uint64_t fh)
{
	lock_drop(fs, inode, true, fh);
}

/*
 * A copy-up gave @inode a new topmost real file, (@dev, @ino): the locks
 * held on it, and those its waiters ask for, are kept under that key from
 * now on, where the inode a later lookup makes for the upper file finds
 * them.
 */
void ovl_locks_moved(struct ovl_fs *fs, struct ovl_inode *inode, dev_t dev,
		     ino_t ino)
{
	struct ovl_locks *t = fs->locks;
	struct ovl_lockfile *lf;
	struct ovl_waiter *done = NULL;

	pthread_mutex_lock(&t->lock);
	lf = ovl_lockset_move(t, inode->lock_dev, inode->lock_ino, dev, ino);
	inode->lock_dev = dev;
	inode->lock_ino = ino;
	if (lf)
		wake_waiters(t, lf, &done);
	pthread_mutex_unlock(&t->lock);
	answer_all(done);
}

/* One lock a dead worker held, into this worker's table. */
static int lock_adopt(struct ovl_fs *fs, int rec, const struct ovl_lockrec *r)
{
	return ovl_lockset_adopt(fs->locks, rec, r);
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
