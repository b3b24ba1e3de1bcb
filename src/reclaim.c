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
 */
#include "config.h"

#include "overlay.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define RECLAIM_BATCH 1024	/* entries invalidated per pass at most */

/* Open fds of this process. */
static long count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	long n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 3; /* ".", ".." and the directory itself */
}

/* One entry to invalidate: its parent pinned (nref) while we do it. */
struct victim {
	struct ovl_inode *parent;
	char *name;
};

/* Pick up to @want least recently used entries; itable_lock held. */
static size_t pick(struct ovl_fs *fs, struct victim *v, size_t want)
{
	struct ovl_inode *i = fs->lru_head;
	size_t n = 0, seen = 0, total = fs->itable_count;

	while (i && n < want && seen++ < total) {
		struct ovl_inode *next = i->lru_next;

		if (i != fs->root && i->parent && i->name && i->nlookup &&
		    !i->superseded) {
			v[n].name = strdup(i->name);
			if (v[n].name) {
				v[n].parent = i->parent;
				i->parent->nref++;
				n++;
			}
			/* next passes look further */
			ovl_inode_lru_touch(fs, i);
		}
		i = next;
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
	long high = fs->fd_limit * 60 / 100, low = fs->fd_limit * 45 / 100;
	struct victim *v = calloc(RECLAIM_BATCH, sizeof(*v));

	if (!v)
		return NULL;
	pthread_mutex_lock(&fs->itable_lock);
	while (!fs->reclaim_stop) {
		long fds;
		size_t n = 0;

		if (fs->itable_count <= fs->reclaim_soft) {
			pthread_cond_wait(&fs->reclaim_cond, &fs->itable_lock);
			continue;
		}
		pthread_mutex_unlock(&fs->itable_lock);
		fds = count_fds();
		pthread_mutex_lock(&fs->itable_lock);
		if (fds > high) {
			size_t want = (size_t)(fds - low);

			n = pick(fs, v, want < RECLAIM_BATCH ? want : RECLAIM_BATCH);
		} else {
			/* look again once this many more inodes came */
			fs->reclaim_soft = fs->itable_count + (size_t)(high - fds) / 4 + 1;
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
	free(v);
	return NULL;
}

int ovl_reclaim_start(struct ovl_fs *fs)
{
	struct rlimit rl;
	int err;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -errno;
	fs->fd_limit = rl.rlim_cur == RLIM_INFINITY ? 1L << 20 : (long)rl.rlim_cur;
	/* inodes hold one fd or more: start counting at a third of the limit */
	pthread_mutex_lock(&fs->itable_lock);
	fs->reclaim_soft = (size_t)fs->fd_limit / 3;
	fs->reclaim_stop = false;
	pthread_mutex_unlock(&fs->itable_lock);
	err = pthread_create(&fs->reclaim_thread, NULL, reclaim_main, fs);
	if (err)
		return -err;
	fs->reclaim_running = true;
	return 0;
}

void ovl_reclaim_stop(struct ovl_fs *fs)
{
	if (!fs->reclaim_running)
		return;
	pthread_mutex_lock(&fs->itable_lock);
	fs->reclaim_stop = true;
	pthread_cond_signal(&fs->reclaim_cond);
	pthread_mutex_unlock(&fs->itable_lock);
	pthread_join(fs->reclaim_thread, NULL);
	fs->reclaim_running = false;
}

/* Under fd pressure: readdirplus then lists names without looking them up. */
bool ovl_reclaim_pressure(struct ovl_fs *fs)
{
	return fs->fd_limit && fs->itable_count > (size_t)fs->fd_limit / 2;
}

/*
 * A request ran out of fds: have the reclaim thread act now and give the
 * kernel's FORGETs a moment to arrive before the caller tries again.
 */
void ovl_reclaim_wait(struct ovl_fs *fs)
{
	struct timespec pause = { 0, 50 * 1000 * 1000 };

	if (!fs->reclaim_running)
		return;
	pthread_mutex_lock(&fs->itable_lock);
	fs->reclaim_soft = 0;
	pthread_cond_signal(&fs->reclaim_cond);
	pthread_mutex_unlock(&fs->itable_lock);
	nanosleep(&pause, NULL);
}
