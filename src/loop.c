// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The request loop over /dev/fuse, in every mode (beside uring.c's rings
 * when FUSE over io_uring is used, for what still comes this way): a pool
 * of threads that each read a request into memory and dispatch it.
 * Threads are started when none is free, up to LOOP_MAX_THREADS, and never
 * ended per request; no descriptor is cloned (a clone only a dead worker
 * held would end its requests with ECONNABORTED, doc/restart.md) and no
 * splice pipe is made.  With restart=on each request is shown to
 * takeover.c first.
 */
#include "config.h"

#include "overlay.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_THREADS 16	/* request threads at most */
#define LOOP_DRAIN_S 1		/* seconds requests in progress get to end
				 * when the loop stops */
#define LOOP_MAX_REQ_PAGES 256	/* the largest request's payload, in pages:
				 * libfuse asks for max_write <= 256 pages */
#define LOOP_HEADER_ROOM 4096	/* room for a request's headers */

/* The threads of the loop. */
struct ovl_pool {
	struct ovl_fs *fs;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	int max;		/* threads allowed */
	int started;		/* threads started (tids[0..started)) */
	int running;		/* threads not yet returned */
	atomic_int idle;	/* threads waiting for a request: atomic, so
				 * that a request takes no lock of the pool */
	int error;		/* first receive error, negative errno */
	pthread_t tids[LOOP_MAX_THREADS];
};

static void *loop_thread(void *arg);

/* Wait 100 ms at most for a thread to end; pool->lock held. */
static void pool_wait(struct ovl_pool *pool)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_nsec += 100 * 1000 * 1000;
	if (t.tv_nsec >= 1000000000) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&pool->changed, &pool->lock, &t);
}

/* Start one more thread; pool->lock held. */
static void pool_grow(struct ovl_pool *pool)
{
	if (pool->started >= pool->max)
		return;
	if (pthread_create(&pool->tids[pool->started], NULL, loop_thread, pool)) {
		ovl_log("cannot start a request thread: %s", strerror(errno));
		return;
	}
	pool->started++;
	pool->running++;
	atomic_fetch_add(&pool->idle, 1);
}

/*
 * A thread's receive buffer, with restart=on: every page present and
 * writable from the start.  The kernel copies a request into the reader's
 * memory after taking it off its queue; when a page is missing it faults
 * it in, which fails for a thread of a worker being killed (a fatal signal
 * pending), and the kernel then ends the request with EIO instead of
 * leaving it to be resent: a write-back of dirty pages lost, a caller's
 * EIO.  Present pages are copied to without a fault.  Otherwise libfuse's
 * malloc'd buffer, whose pages come as requests first reach them.  The
 * size is more than libfuse reads at most, so it never overruns.
 */
static int recv_buf_map(struct ovl_pool *pool, struct fuse_buf *buf)
{
	size_t size = LOOP_MAX_REQ_PAGES * (size_t)sysconf(_SC_PAGESIZE) +
		      LOOP_HEADER_ROOM;
	void *mem;

	if (!pool->fs->nodetab)
		return 0;
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	buf->mem = mem;
	buf->mem_size = size;
	return 0;
}

/* @mapped: recv_buf_map() gave it (else libfuse's malloc did) */
static void recv_buf_free(struct fuse_buf *buf, bool mapped)
{
	if (mapped)
		munmap(buf->mem, buf->mem_size);
	else
		free(buf->mem);
	buf->mem = NULL;
}

static void *loop_thread(void *arg)
{
	struct ovl_pool *pool = arg;
	struct fuse_session *se = pool->fs->se;
	struct fuse_buf buf = { 0 };
	struct ovl_resent resent;
	int r = recv_buf_map(pool, &buf);
	bool mapped = buf.mem != NULL;

	if (r < 0)
		ovl_log("request thread: no prefaulted buffer: %s", strerror(-r));
	while (!fuse_session_exited(se)) {
		r = fuse_session_receive_buf(se, &buf);
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r <= 0) {
			pthread_mutex_lock(&pool->lock);
			if (r < 0 && !pool->error)
				pool->error = r;
			pthread_mutex_unlock(&pool->lock);
			fuse_session_exit(se);
			break;
		}
		if (pool->fs->nodetab &&
		    ovl_takeover_filter(pool->fs, &buf, &resent))
			continue;
		if (atomic_fetch_sub(&pool->idle, 1) == 1 &&
		    pool->max > 1) {
			pthread_mutex_lock(&pool->lock);
			pool_grow(pool);
			pthread_mutex_unlock(&pool->lock);
		}
		if (pool->fs->journal && buf.size >= sizeof(struct fuse_in_header))
			ovl_journal_begin(pool->fs,
				((struct fuse_in_header *)buf.mem)->unique);
		fuse_session_process_buf(se, &buf);
		if (pool->fs->journal)
			ovl_journal_end();
		if (pool->fs->nodetab)
			ovl_takeover_done(pool->fs, &resent);
		atomic_fetch_add(&pool->idle, 1);
	}
	recv_buf_free(&buf, mapped);
	pthread_mutex_lock(&pool->lock);
	pool->running--;
	atomic_fetch_sub(&pool->idle, 1);
	pthread_cond_signal(&pool->changed);
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/*
 * Serve until the session ends (unmount, or a signal's handler from
 * fuse_set_signal_handlers()): 0, or a negative errno.  The worker exits
 * right after: threads may still be waiting for a request.
 */
int ovl_loop(struct ovl_fs *fs)
{
	/* on the heap, and never freed: threads waiting for a request when
	 * this returns keep it until the worker exits (_exit) */
	struct ovl_pool *pool = calloc(1, sizeof(*pool));
	struct fuse_session *se = fs->se;
	int err;

	if (!pool || pthread_mutex_init(&pool->lock, NULL) ||
	    pthread_cond_init(&pool->changed, NULL)) {
		free(pool);
		return -ENOMEM;
	}
	pool->fs = fs;
	fs->pool = pool;
	pool->max = fs->p->threaded ? LOOP_MAX_THREADS : 1;
	ovl_uring_run(fs); /* the rings register their entries now */
	pthread_mutex_lock(&pool->lock);
	pool_grow(pool);
	if (pool->max > 1)
		pool_grow(pool);
	/* a signal handler cannot wake a condition: look every 100 ms */
	while (pool->running > 0 && !fuse_session_exited(se))
		pool_wait(pool);
	fuse_session_exit(se);
	/*
	 * Requests in progress end, for up to LOOP_DRAIN_S: one that waits
	 * longer (a lock wait) ends with the process, and the next worker
	 * gets it again (FUSE_NOTIFY_RESEND), as it gets one that a thread
	 * still waiting in read() takes meanwhile.  Those threads are not
	 * stopped: the worker exits next.
	 */
	for (int i = 0; pool->running > atomic_load(&pool->idle) &&
			i < LOOP_DRAIN_S * 10; i++)
		pool_wait(pool);
	err = pool->started ? pool->error : -EAGAIN;
	pthread_mutex_unlock(&pool->lock);
	ovl_uring_stop(fs); /* its threads, once the connection is gone */
	return err;
}


/*
 * Once unmounted: wait (2 s at most) for every thread to return, as their
 * reads end with the connection, and free the pool.  False when some
 * still run (a file still open on a lazily unmounted mount keeps the
 * connection): then nothing they may use must be freed before the process
 * exits.
 */
bool ovl_loop_quiet(struct ovl_fs *fs)
{
	struct ovl_pool *pool = fs->pool;
	bool quiet;

	if (!pool)
		return true;
	pthread_mutex_lock(&pool->lock);
	for (int i = 0; pool->running > 0 && i < 20; i++)
		pool_wait(pool);
	quiet = pool->running == 0;
	pthread_mutex_unlock(&pool->lock);
	if (!quiet)
		return false;
	for (int i = 0; i < pool->started; i++)
		pthread_join(pool->tids[i], NULL);
	pthread_cond_destroy(&pool->changed);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
	fs->pool = NULL;
	return true;
}
