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
 * It is started the first time the threshold is passed, not at mount: most
 * mounts never get there, and an idle daemon keeps no thread for it.
 */
#include "config.h"

#include "overlay.h"

#include <fcntl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RECLAIM_BATCH 1024	/* entries invalidated per pass at most */
#define RESERVED_FDS 16384	/* fd table sized at start (128 KiB) */

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

static void invalidate(struct ovl_fs *fs, struct victim *v, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		int r = fuse_lowlevel_notify_inval_entry(fs->se,
					ovl_nodeid(fs, v[k].parent),
					v[k].name, strlen(v[k].name));

		if (r < 0)
			ovl_debug("reclaim: %s in %llu: %s", v[k].name, (unsigned long long)ovl_nodeid(fs, v[k].parent), strerror(-r));
		ovl_inode_unref(fs, v[k].parent);
		free(v[k].name);
	}
	atomic_fetch_add(&fs->stats.reclaimed, n);
}

static void *reclaim_main(void *arg)
{
	struct ovl_fs *fs = arg;
	long high = fs->fd_limit * 4 / 5, low = fs->fd_limit * 13 / 20;
	struct victim *v = calloc(RECLAIM_BATCH, sizeof(*v));
	int fdir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (!v) {
		if (fdir >= 0)
			close(fdir);
		return NULL;
	}
	pthread_mutex_lock(&fs->itable_lock);
	while (!fs->reclaim_stop) {
		long fds;
		size_t n = 0;

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
		if (n) {
			struct timespec pause = { 0, 20 * 1000 * 1000 };

			invalidate(fs, v, n);
			nanosleep(&pause, NULL); /* let the FORGETs arrive */
		}
		pthread_mutex_lock(&fs->itable_lock);
	}
	pthread_mutex_unlock(&fs->itable_lock);
	if (fdir >= 0)
		close(fdir);
	free(v);
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

	if (ovl_reclaim_now(fs))
		nanosleep(&pause, NULL);
}
