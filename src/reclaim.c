// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Keep the daemon's open files bounded.  Every inode the kernel knows holds
 * an fd (directories one per layer), and the kernel forgets inodes only
 * under memory pressure, so walking a tree larger than RLIMIT_NOFILE would
 * end in EMFILE.  When the inode count passes a threshold, this thread
 * counts the fds really open and, above a high watermark, asks the kernel
 * to drop the entries looked up least recently (notify_inval_entry); the
 * kernel then sends FORGET for those not in use, and their fds close.
 *
 * It runs apart from the request threads: an invalidation waits for the
 * parent directory's lock, which a request in that directory may hold.
 * While a request waits for fds (the fds inodes keep stay below a ceiling,
 * ovl_fd_keep()), it prunes by node id instead, which takes no lock, and
 * leaves the invalidations to a thread of their own (inval_main()): the
 * request waiting may be the one holding the lock.
 * It is started the first time the threshold is passed, not at mount: most
 * mounts never get there, and an idle daemon keeps no thread for it.
 */
#include "config.h"

#include "overlay.h"

#include <fcntl.h>
#include <errno.h>
#include <limits.h>
#include <linux/fuse.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define RECLAIM_BATCH 1024	/* entries invalidated per pass at most */
#define OVL_NOTIFY_PRUNE 9	/* FUSE_NOTIFY_PRUNE (Linux 6.18, protocol
				 * 7.45), not in older headers */
#define RESERVED_FDS 16384	/* fd table sized at start (128 KiB) */
#define HEADROOM_MIN 64		/* fds kept for requests' own use, at least */
#define HEADROOM_MAX 1024	/* and at most */

/*
 * Open fds of this process, read through @dirfd, /proc/self/fd opened at
 * start: when every fd is taken, opening it would fail just when the count
 * matters.  Unknown counts as full.  Linux 6.2 and later give the count as
 * the directory's size, from the fd bitmap; listing it instead builds a
 * dentry per fd, which during a walk of a tree near the fd limit cost the
 * daemon a sixth of its time (perf, 16,000 fds listed every few hundred
 * lookups).
 */
static long count_fds(struct ovl_fs *fs, int dirfd)
{
	char buf[8192] __attribute__((aligned(8)));
	struct stat st;
	long n = 0, r;

	if (dirfd >= 0 && fstat(dirfd, &st) == 0 && st.st_size > 0)
		return (long)st.st_size;
	if (dirfd < 0 || lseek(dirfd, 0, SEEK_SET) < 0)
		return fs->fd_limit;
	while ((r = getdents_raw(dirfd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < r;) {
			struct ovl_linux_dirent64 *de = (void *)(buf + off);

			off += de->d_reclen;
			n += de->d_name[0] != '.';
		}
	}
	return r < 0 ? fs->fd_limit : n;
}

/* One entry to invalidate: its parent pinned (nref) while we do it. */
struct victim {
	struct ovl_inode *parent;
	char *name;
	uint64_t nodeid;	/* the entry's own, for a prune */
	bool dir;
};

/* Whether @i may be picked: the kernel has it under a name we know. */
static bool pickable(struct ovl_fs *fs, struct ovl_inode *i)
{
	return i != fs->root && i->parent && i->name && i->nlookup &&
	       !i->superseded;
}

/*
 * Pick up to @want entries, the least recently looked up first but for the
 * oldest half of the table, which stays; itable_lock held.  Directories
 * first: the kernel drops a directory's cached children with it, so one
 * invalidation frees many fds; then files.
 *
 * The half that stays makes a tree walked again and again (tar, find,
 * rsync of a tree larger than the fd limit allows) find part of it cached:
 * pure LRU there drops each entry just before it is wanted again, so every
 * walk would look every name up anew.  A walk done once loses nothing: its
 * entries are dropped in the order it left them, as before.
 */
static size_t pick(struct ovl_fs *fs, struct victim *v, size_t want)
{
	size_t n = 0;

	/* passes 2 and 3 take from the older half, only when the newer one
	 * held too few (its entries in use) */
	for (int pass = 0; pass < 4 && n < want; pass++) {
		struct ovl_inode *i = fs->lru_head;
		size_t seen = 0, total = fs->itable_count, half = total / 2;
		bool dirs = pass % 2 == 0;

		if (pass < 2) {
			for (; i && seen < half; seen++)
				i = i->lru_next;
		} else {
			total = half;
		}
		while (i && n < want && seen++ < total) {
			struct ovl_inode *next = i->lru_next;

			if (pickable(fs, i) && dirs == S_ISDIR(i->type)) {
				v[n].name = strdup(i->name);
				if (v[n].name) {
					v[n].parent = i->parent;
					v[n].nodeid = ovl_nodeid(fs, i);
					v[n].dir = S_ISDIR(i->type);
					i->parent->nref++;
					n++;
				}
				/* next rounds look further */
				ovl_inode_lru_touch(fs, i);
			}
			i = next;
		}
	}
	return n;
}

/*
 * Ask the kernel to drop the unused dentries of @v's inodes, by node id
 * (FUSE_NOTIFY_PRUNE, Linux 6.18): it then forgets those no one uses.
 * Unlike an entry's invalidation it takes no directory's lock, so it never
 * waits for a request in the entry's parent, which may itself be waiting
 * for the fds this frees.  A directory with cached children (negative
 * ones too) is kept: files go first, so that their directories may follow
 * in the same batch.  -EINVAL where the kernel has no such notification.
 */
static int prune(struct ovl_fs *fs, const struct victim *v, size_t n)
{
	struct {
		struct fuse_out_header h;
		struct { uint32_t count, padding; uint64_t spare; } p;
	} __attribute__((packed)) head = {
		.h = { .len = sizeof(head) + n * sizeof(uint64_t),
		       .error = OVL_NOTIFY_PRUNE },
		.p = { .count = (uint32_t)n },
	};
	uint64_t ids[RECLAIM_BATCH];
	struct iovec iov[2] = { { &head, sizeof(head) },
				{ ids, n * sizeof(uint64_t) } };
	size_t k = 0;

	for (int dirs = 0; dirs <= 1; dirs++)
		for (size_t j = 0; j < n; j++)
			if (v[j].dir == dirs)
				ids[k++] = v[j].nodeid;
	return writev(fuse_session_fd(fs->se), iov, 2) < 0 ? -errno : 0;
}

static void victim_drop(struct ovl_fs *fs, struct victim *v)
{
	ovl_inode_unref(fs, v->parent);
	free(v->name);
}

/* Invalidate @v's entry (the lock of its parent taken), then drop it. */
static void victim_inval(struct ovl_fs *fs, struct victim *v)
{
	int r = fuse_lowlevel_notify_inval_entry(fs->se, ovl_nodeid(fs, v->parent),
						 v->name, strlen(v->name));

	if (r < 0 && r != -ENOENT)
		ovl_debug("reclaim: %s in %llu: %s", v->name,
			  (unsigned long long)ovl_nodeid(fs, v->parent),
			  strerror(-r));
	victim_drop(fs, v);
}

/*
 * The entries to invalidate one by one, and the thread that does it.  An
 * invalidation takes the lock of the entry's parent, which the kernel
 * holds while a request in that directory is out (a lookup, a create):
 * when that request waits for fds, the invalidation waits for it.  Done
 * here, apart, it holds up only the entries after it, never the prunes.
 */
struct inval_queue {
	struct ovl_fs *fs;
	pthread_mutex_t lock;
	pthread_cond_t cond;	/* entries came, or stop */
	pthread_cond_t idle;	/* all were invalidated */
	bool stop, busy;
	size_t n;
	struct victim v[RECLAIM_BATCH];
};

static void *inval_main(void *arg)
{
	struct inval_queue *q = arg;
	struct victim *batch = malloc(sizeof(q->v));
	size_t n;

	pthread_mutex_lock(&q->lock);
	while (batch && !q->stop) {
		if (!q->n) {
			pthread_cond_wait(&q->cond, &q->lock);
			continue;
		}
		n = q->n;
		memcpy(batch, q->v, n * sizeof(*batch));
		q->n = 0;
		q->busy = true;
		pthread_mutex_unlock(&q->lock);
		for (size_t k = 0; k < n; k++)
			victim_inval(q->fs, &batch[k]);
		pthread_mutex_lock(&q->lock);
		q->busy = false;
		if (!q->n)
			pthread_cond_broadcast(&q->idle);
	}
	pthread_mutex_unlock(&q->lock);
	free(batch);
	return NULL;
}

/* Hand @v to the invalidating thread, or drop it when its queue is full
 * (it is stuck behind a busy directory; a later pass picks again). */
static void inval_queue_add(struct inval_queue *q, struct victim *v)
{
	bool added = false;

	pthread_mutex_lock(&q->lock);
	if (q->n < RECLAIM_BATCH) {
		q->v[q->n++] = *v;
		added = true;
		pthread_cond_signal(&q->cond);
	}
	pthread_mutex_unlock(&q->lock);
	if (!added)
		victim_drop(q->fs, v);
}

/*
 * Wait until the invalidating thread has done what it was given, 200 ms
 * at most: what the pass freed is then counted before the next pass, which
 * would otherwise drop more than it needs.  Longer, it is stuck behind a
 * busy directory, and prunes go on meanwhile.
 */
static void inval_queue_wait(struct inval_queue *q)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += 200 * 1000 * 1000;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&q->lock);
	while ((q->n || q->busy) &&
	       pthread_cond_timedwait(&q->idle, &q->lock, &until) == 0)
		;
	pthread_mutex_unlock(&q->lock);
}

/*
 * Stop the invalidating thread.  One stuck behind a directory whose
 * request will not be answered now (the loop ended) is left to end with
 * the process, its queue with it.
 */
static void inval_queue_end(struct inval_queue *q, pthread_t thread)
{
	struct timespec until;

	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 1;
	if (pthread_timedjoin_np(thread, NULL, &until)) {
		pthread_detach(thread);
		return;
	}
	for (size_t k = 0; k < q->n; k++)
		victim_drop(q->fs, &q->v[k]);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
	pthread_cond_destroy(&q->idle);
	free(q);
}

/*
 * Where the kernel cannot prune: invalidate @v's entries here, one by one,
 * as before the bound; requests never wait for fds there, but for a
 * lookup's or an open's own retries (ovl_fd_retry()).
 */
static void invalidate_now(struct ovl_fs *fs, struct victim *v, size_t n)
{
	for (size_t k = 0; k < n; k++)
		victim_inval(fs, &v[k]);
	atomic_fetch_add(&fs->stats.reclaimed, n);
}

/*
 * Drop @v's entries from the kernel's cache, where the kernel prunes
 * (reclaim_main() tells at its start).  While a request waits for fds all
 * are pruned, and only directories go on to be invalidated too: a
 * directory the prune kept, for its cached children, goes with them.
 * Otherwise, or when the prune fails, all are invalidated, which leaves
 * more of a tree walked again and again cached (tests/095).
 */
static void invalidate(struct ovl_fs *fs, struct inval_queue *q,
		       struct victim *v, size_t n)
{
	int r = atomic_load(&fs->fd_waiters) > 0 ? prune(fs, v, n) : -EAGAIN;

	if (r < 0 && r != -EAGAIN)
		ovl_debug("reclaim: prune: %s: invalidating entries", strerror(-r));
	for (size_t k = 0; k < n; k++) {
		if (r == 0 && !v[k].dir)
			victim_drop(fs, &v[k]);
		else
			inval_queue_add(q, &v[k]);
	}
	atomic_fetch_add(&fs->stats.reclaimed, n);
}

/*
 * Let the kernel's FORGETs for a pass of @n entries arrive: until half as
 * many inodes as it picked were freed since @freed, 200 ms at most (the
 * rest are in use).  The next pass counts fds only then: counted earlier,
 * while the request threads are still taking the FORGETs in, it would drop
 * more than needed, the part of the tree that stays too.
 */
static void forgets_wait(struct ovl_fs *fs, size_t freed, size_t n)
{
	struct timespec pause = { 0, 5 * 1000 * 1000 };
	size_t got = 0;

	for (int t = 0; t < 40 && got < n / 2; t++) {
		nanosleep(&pause, NULL);
		pthread_mutex_lock(&fs->itable_lock);
		got = fs->inodes_freed - freed;
		pthread_mutex_unlock(&fs->itable_lock);
	}
}

/*
 * The fd number below which an inode's or an open file's fds are kept: a
 * sixteenth of the limit (64 to 1,024 fds) is left to the fds a request
 * holds only while it runs (a copy-up's source and copy, a whiteout's
 * directory, a reopen to read xattrs).  Those are taken midway through an
 * operation, where EMFILE would leave it half done or fail a create whose
 * entry exists; the fds an inode keeps are taken where the request can
 * still wait for the reclaim thread (ovl_fd_retry()) and try again.
 */
static int fd_ceiling(long limit)
{
	long room = limit / 16;

	if (limit > INT_MAX)
		limit = INT_MAX;
	if (room < HEADROOM_MIN)
		room = HEADROOM_MIN;
	if (room > HEADROOM_MAX)
		room = HEADROOM_MAX;
	return limit > 2 * room ? (int)(limit - room) : 0;
}

/* The fd count above which reclaim_main() acts: four fifths of the
 * limit, but below the ceiling the requests wait at. */
static long watermark(const struct ovl_fs *fs)
{
	long high = fs->fd_limit * 4 / 5;

	if (fs->fd_ceiling && high > fs->fd_ceiling * 7L / 8)
		high = fs->fd_ceiling * 7L / 8;
	return high;
}

static void *reclaim_main(void *arg)
{
	struct ovl_fs *fs = arg;
	long high, low;
	struct victim *v = calloc(RECLAIM_BATCH, sizeof(*v));
	struct inval_queue *q = calloc(1, sizeof(*q));
	int fdir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	pthread_t inval_thread;
	bool can_prune;

	if (q) {
		q->fs = fs;
		pthread_mutex_init(&q->lock, NULL);
		pthread_cond_init(&q->cond, NULL);
		pthread_cond_init(&q->idle, NULL);
	}
	/* the bound holds only where waiting requests cannot block the
	 * reclaim: where the kernel prunes (an empty prune tells) */
	can_prune = v && prune(fs, v, 0) == 0;
	if (can_prune)
		__atomic_store_n(&fs->fd_ceiling, fd_ceiling(fs->fd_limit),
				 __ATOMIC_RELAXED);
	high = watermark(fs);
	low = high * 13 / 16;
	if (!v || !q || pthread_create(&inval_thread, NULL, inval_main, q)) {
		ovl_log("cannot start reclaiming: open files are not bounded");
		if (fdir >= 0)
			close(fdir);
		free(v);
		free(q);
		return NULL;
	}

	pthread_mutex_lock(&fs->itable_lock);
	while (!fs->reclaim_stop) {
		long fds;
		size_t n = 0, freed = fs->inodes_freed;

		if (fs->itable_count <= fs->reclaim_soft) {
			pthread_cond_wait(&fs->reclaim_cond, &fs->itable_lock);
			continue;
		}
		pthread_mutex_unlock(&fs->itable_lock);
		fds = count_fds(fs, fdir);
		pthread_mutex_lock(&fs->itable_lock);
		if (fds > high) {
			size_t want = (size_t)(fds - low);

			n = pick(fs, v, want < RECLAIM_BATCH ? want : RECLAIM_BATCH);
			ovl_debug("reclaim: %ld fds, %zu inodes: %zu to forget",
				  fds, fs->itable_count, n);
		} else {
			/* look again once this many more inodes came; never
			 * every few: reading /proc/self/fd costs as much as
			 * the fds it lists */
			long step = (high - fds) / 4;

			if (step < fs->fd_limit / 64)
				step = fs->fd_limit / 64;
			fs->reclaim_soft = fs->itable_count + (size_t)step + 1;
		}
		pthread_mutex_unlock(&fs->itable_lock);
		if (n && can_prune) {
			invalidate(fs, q, v, n);
			inval_queue_wait(q);
			forgets_wait(fs, freed, n);
		} else if (n) {
			struct timespec pause = { 0, 20 * 1000 * 1000 };

			invalidate_now(fs, v, n);
			nanosleep(&pause, NULL); /* let the FORGETs arrive */
		}
		pthread_mutex_lock(&fs->itable_lock);
	}
	pthread_mutex_unlock(&fs->itable_lock);
	if (fdir >= 0)
		close(fdir);
	free(v);
	inval_queue_end(q, inval_thread);
	return NULL;
}

/*
 * Size the fd table for @want fds now, while the daemon has one thread.
 * The kernel grows a process's table by doubling it, and when the table is
 * shared by several threads each growth waits for an RCU grace period
 * (expand_fdtable()): a fresh mount walking its first 16,000 inodes grew
 * it six times and its request threads slept 4 to 25 ms each time (perf
 * sched, 6.18 under a hypervisor): the walk took 0.25 s where 0.15 s
 * sufficed with the table sized.  One dup to the last fd wanted grows it once, at
 * no wait; the table (about 8 bytes an fd) is never shrunk.
 */
static void reserve_fdtable(long want)
{
	int fd = -1;

	if (want <= 64)
		return;
	/* F_DUPFD takes the lowest free fd from there: nothing is replaced */
	for (int std = 0; std <= 2 && fd < 0; std++)
		fd = fcntl(std, F_DUPFD_CLOEXEC, (int)want - 1);
	if (fd >= 0)
		close(fd);
}

/*
 * Arm reclaiming: the fd limit and the first threshold.  The thread starts
 * later, from ovl_reclaim_kick().  Called before the request threads start.
 */
int ovl_reclaim_start(struct ovl_fs *fs)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	fs->fd_limit = rl.rlim_cur == RLIM_INFINITY ? 1L << 20 : (long)rl.rlim_cur;
	reserve_fdtable(fs->fd_limit < RESERVED_FDS ? fs->fd_limit : RESERVED_FDS);
	/* inodes hold one fd or more: start counting at a quarter of it */
	pthread_mutex_lock(&fs->itable_lock);
	fs->reclaim_soft = (size_t)fs->fd_limit / 4;
	fs->reclaim_stop = false;
	fs->reclaim_enabled = true;
	pthread_mutex_unlock(&fs->itable_lock);
	return 0;
}

/*
 * The inode count passed the threshold, or a request ran out of fds:
 * wake the thread, starting it the first time; itable_lock held.
 */
void ovl_reclaim_kick(struct ovl_fs *fs)
{
	int err;

	if (!fs->reclaim_enabled || fs->reclaim_stop)
		return;
	if (fs->reclaim_running) {
		pthread_cond_signal(&fs->reclaim_cond);
		return;
	}
	err = pthread_create(&fs->reclaim_thread, NULL, reclaim_main, fs);
	if (err) {
		ovl_log("cannot start the reclaim thread: %s; open files are not bounded",
			strerror(err));
		fs->reclaim_enabled = false;
		return;
	}
	fs->reclaim_running = true;
}

void ovl_reclaim_stop(struct ovl_fs *fs)
{
	bool running;

	pthread_mutex_lock(&fs->itable_lock);
	fs->reclaim_stop = true;
	running = fs->reclaim_running;
	pthread_cond_signal(&fs->reclaim_cond);
	pthread_mutex_unlock(&fs->itable_lock);
	if (!running)
		return;
	pthread_join(fs->reclaim_thread, NULL);
	fs->reclaim_running = false;
}

/*
 * Under fd pressure: readdirplus then lists names without looking them up.
 * Past the high watermark of reclaim_main() (inodes hold an fd or more),
 * so that the thread is already freeing fds; below it, names only would
 * only trade each entry the caller uses for a LOOKUP of its own.
 */
bool ovl_reclaim_pressure(struct ovl_fs *fs)
{
	return fs->fd_limit && fs->itable_count > (size_t)fs->fd_limit * 17 / 20;
}

/* A request ran out of fds: have the reclaim thread act now.  False when
 * there is none to act. */
bool ovl_reclaim_now(struct ovl_fs *fs)
{
	bool enabled;

	pthread_mutex_lock(&fs->itable_lock);
	enabled = fs->reclaim_enabled;
	if (enabled) {
		fs->reclaim_soft = 0;
		ovl_reclaim_kick(fs);
	}
	pthread_mutex_unlock(&fs->itable_lock);
	return enabled;
}

/*
 * A request ran out of fds: have the reclaim thread act now and give the
 * kernel's FORGETs a moment to arrive before the caller tries again.
 */
void ovl_reclaim_wait(struct ovl_fs *fs)
{
	struct timespec pause = { 0, 50 * 1000 * 1000 };

	if (ovl_reclaim_now(fs)) {
		atomic_fetch_add(&fs->fd_waiters, 1);
		nanosleep(&pause, NULL);
		atomic_fetch_sub(&fs->fd_waiters, 1);
	}
}

/*
 * Whether a request that failed with @err for want of fds tries again:
 * then the reclaim thread was told to act and the kernel's FORGETs given
 * a moment.  @tries counts the tries, OVL_RECLAIM_TRIES at most.  For the
 * requests that retried before the bound too (a lookup, an open, a
 * listing): they wait where the kernel cannot prune as well.
 */
bool ovl_fd_retry(struct ovl_fs *fs, int err, int *tries)
{
	if ((err != -EMFILE && err != -ENFILE) || *tries >= OVL_RECLAIM_TRIES)
		return false;
	(*tries)++;
	ovl_reclaim_wait(fs);
	return true;
}

/* Whether the fds inodes keep are bounded (ovl_fd_high()), so that a
 * request short of fds may wait for the reclaim thread: where the kernel
 * prunes (Linux 6.18). */
static bool fd_bounded(struct ovl_fs *fs)
{
	return __atomic_load_n(&fs->fd_ceiling, __ATOMIC_RELAXED) != 0;
}

/*
 * ovl_fd_retry() for a request that waits only for the bound
 * (ovl_fd_keep()): where it holds.  Elsewhere a request there waiting
 * could hold up the reclaim that it waits for (an invalidation takes the
 * parent's lock), so EMFILE goes to the caller at once, as before.
 */
bool ovl_fd_retry_bounded(struct ovl_fs *fs, int err, int *tries)
{
	return fd_bounded(fs) && ovl_fd_retry(fs, err, tries);
}

/*
 * Whether @fd lies in the headroom above fd_ceiling().  The kernel gives
 * the lowest free number, so when it gives one there, every fd below was
 * taken.
 */
bool ovl_fd_high(struct ovl_fs *fs, int fd)
{
	int ceiling = __atomic_load_n(&fs->fd_ceiling, __ATOMIC_RELAXED);

	return ceiling && fd >= ceiling;
}

/*
 * An fd to keep came in the headroom (ovl_fd_high()): wake the reclaim
 * thread and answer -EMFILE.  The caller closes what it opened and waits
 * with ovl_fd_retry() before it tries again.
 */
int ovl_fd_refuse(struct ovl_fs *fs)
{
	ovl_reclaim_now(fs);
	return -EMFILE;
}

/* @fd, just opened for an open file to keep: itself, or -EMFILE (closed)
 * when it lies in the headroom (ovl_fd_refuse()). */
int ovl_fd_keep(struct ovl_fs *fs, int fd)
{
	if (!ovl_fd_high(fs, fd))
		return fd;
	close(fd);
	return ovl_fd_refuse(fs);
}
