// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * restart=on: the mount outlives the process that serves it.
 *
 * Once mounted, the daemon becomes a supervisor.  It reads the kernel's
 * INIT request once and keeps it, then forks a worker, which replays that
 * INIT into its libfuse session and serves the requests.  The supervisor
 * holds the /dev/fuse descriptor, so the connection stays up when a worker
 * dies: callers wait, nobody gets ENOTCONN.  It forks a new worker at
 * once, which asks the kernel to send again the requests the dead one had
 * read (FUSE_NOTIFY_RESEND) and to look every cached name up again
 * (FUSE_NOTIFY_INC_EPOCH).  The supervisor serves no request itself.
 *
 * Node ids carry the generation of the worker that made them
 * (OVL_GEN_SHIFT).  A worker reads each request before libfuse does: one
 * naming a node id of a dead worker gets ESTALE (a FORGET is dropped, a
 * FLUSH or RELEASE succeeds), since the inode it named died with that
 * worker.  Names walked again from the root, where a container's processes
 * start their paths, get fresh ids.  Descriptors opened through
 * passthrough keep reading and writing: that never needed the daemon.
 *
 * A worker that keeps dying ends the mount: after SV_BURST deaths within
 * SV_WINDOW seconds, or when the first worker never answered INIT, the
 * supervisor says why and unmounts.
 */
#include "config.h"

#include "overlay.h"

#include <errno.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef FUSE_NOTIFY_RESEND
#define FUSE_NOTIFY_RESEND 7
#endif

#define SV_BURST 5		/* deaths ... */
#define SV_WINDOW 60		/* ... within this many seconds: give up */
#define SV_BACKOFF_MS 100	/* pause before the 2nd restart of a burst,
				 * doubled each time after */
#define SV_INIT_BUF 16384	/* >= FUSE_MIN_READ_BUFFER */
#define SV_MAX_THREADS 16	/* request threads of a worker */

/* ---- in a worker: requests naming a dead worker's node ids ---- */

bool ovl_nodeid_stale(const struct ovl_fs *fs, uint64_t id)
{
	return id != 0 && id != FUSE_ROOT_ID &&
	       (id & OVL_GEN_MASK) != fs->gen_tag;
}

static void reply_now(struct ovl_fs *fs, const struct fuse_in_header *in,
		      int err)
{
	struct fuse_out_header out = { .len = sizeof(out), .error = err,
				       .unique = in->unique };

	/* ENOENT: the caller was interrupted meanwhile */
	if (write(fuse_session_fd(fs->se), &out, sizeof(out)) < 0 &&
	    errno != ENOENT)
		ovl_debug("stale reply: %s", strerror(errno));
}

/* Drop the dead generation's entries of a BATCH_FORGET; true if none is
 * left. */
static bool forget_batch(struct ovl_fs *fs, struct fuse_in_header *in,
			 size_t size)
{
	struct fuse_batch_forget_in *b = (void *)(in + 1);
	struct fuse_forget_one *one = (void *)(b + 1);
	size_t room = (size - sizeof(*in) - sizeof(*b)) / sizeof(*one);
	uint32_t n = 0;

	if (size < sizeof(*in) + sizeof(*b))
		return false;
	if (b->count < room)
		room = b->count;
	for (uint32_t i = 0; i < room; i++)
		if (!ovl_nodeid_stale(fs, one[i].nodeid))
			one[n++] = one[i];
	b->count = n;
	return n == 0;
}

/* The second node id some requests carry in their body, or 0. */
static uint64_t body_nodeid(const struct fuse_in_header *in, size_t size)
{
	const void *body = in + 1;
	size_t len = size - sizeof(*in);

	switch (in->opcode) {
	case FUSE_RENAME:
		return len >= sizeof(struct fuse_rename_in) ?
		       ((const struct fuse_rename_in *)body)->newdir : 0;
	case FUSE_RENAME2:
		return len >= sizeof(struct fuse_rename2_in) ?
		       ((const struct fuse_rename2_in *)body)->newdir : 0;
	case FUSE_LINK:
		return len >= sizeof(struct fuse_link_in) ?
		       ((const struct fuse_link_in *)body)->oldnodeid : 0;
	case FUSE_COPY_FILE_RANGE:
		return len >= sizeof(struct fuse_copy_file_range_in) ?
		       ((const struct fuse_copy_file_range_in *)body)->nodeid_out : 0;
	default:
		return 0;
	}
}

/*
 * Answer here a request that names a dead worker's node id; true when it
 * was (libfuse must not see it).
 */
static bool filter_stale(struct ovl_fs *fs, struct fuse_buf *buf)
{
	struct fuse_in_header *in = buf->mem;

	if ((buf->flags & FUSE_BUF_IS_FD) || buf->size < sizeof(*in))
		return false;
	switch (in->opcode) {
	case FUSE_INIT:
	case FUSE_DESTROY:
	case FUSE_INTERRUPT:
		return false;
	case FUSE_FORGET:
		return ovl_nodeid_stale(fs, in->nodeid);
	case FUSE_BATCH_FORGET:
		return forget_batch(fs, in, buf->size);
	default:
		break;
	}
	if (!ovl_nodeid_stale(fs, in->nodeid) &&
	    !ovl_nodeid_stale(fs, body_nodeid(in, buf->size)))
		return false;
	atomic_fetch_add(&fs->stats.stale, 1);
	ovl_debug("stale: opcode %u, node id %#llx", in->opcode,
		  (unsigned long long)in->nodeid);
	switch (in->opcode) {
	case FUSE_FLUSH:
	case FUSE_RELEASE:
	case FUSE_RELEASEDIR:
		reply_now(fs, in, 0); /* nothing of it is left to close */
		break;
	default:
		reply_now(fs, in, -ESTALE);
		break;
	}
	return true;
}

/* ---- in a worker: the request loop ---- */

/*
 * libfuse's loop reads and dispatches in one call; this one reads with
 * fuse_session_receive_buf() so that filter_stale() sees each request
 * first.  Threads come as libfuse's do: one more when none is free, up to
 * SV_MAX_THREADS, none cloning the descriptor (a clone only the dead
 * worker held would end its requests with ECONNABORTED, doc/restart.md).
 */
struct sv_pool {
	struct ovl_fs *fs;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	int max;		/* threads allowed */
	int started;		/* threads started (tids[0..started)) */
	int running;		/* threads not yet returned */
	int idle;		/* threads waiting for a request */
	int error;		/* first receive error, negative errno */
	pthread_t tids[SV_MAX_THREADS];
};

static void *sv_thread(void *arg);

/* Start one more thread; pool->lock held. */
static void pool_grow(struct sv_pool *pool)
{
	if (pool->started >= pool->max)
		return;
	if (pthread_create(&pool->tids[pool->started], NULL, sv_thread, pool)) {
		ovl_log("cannot start a request thread: %s", strerror(errno));
		return;
	}
	pool->started++;
	pool->running++;
	pool->idle++;
}

static void *sv_thread(void *arg)
{
	struct sv_pool *pool = arg;
	struct fuse_session *se = pool->fs->se;
	struct fuse_buf buf = { 0 };
	int r;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	while (!fuse_session_exited(se)) {
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		r = fuse_session_receive_buf(se, &buf);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
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
		if (filter_stale(pool->fs, &buf))
			continue;
		pthread_mutex_lock(&pool->lock);
		if (--pool->idle == 0)
			pool_grow(pool);
		pthread_mutex_unlock(&pool->lock);
		fuse_session_process_buf(se, &buf);
		pthread_mutex_lock(&pool->lock);
		pool->idle++;
		pthread_mutex_unlock(&pool->lock);
	}
	free(buf.mem);
	pthread_mutex_lock(&pool->lock);
	pool->running--;
	pool->idle--;
	pthread_cond_signal(&pool->changed);
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/*
 * Serve until the session ends (unmount, or a signal's handler from
 * fuse_set_signal_handlers()): 0, or a negative errno.
 */
int ovl_sv_loop(struct ovl_fs *fs)
{
	struct sv_pool pool = { .fs = fs, .max = fs->p->threaded ? SV_MAX_THREADS : 1 };
	struct fuse_session *se = fs->se;
	int err;

	if (pthread_mutex_init(&pool.lock, NULL) ||
	    pthread_cond_init(&pool.changed, NULL))
		return -ENOMEM;
	pthread_mutex_lock(&pool.lock);
	pool_grow(&pool);
	if (pool.max > 1)
		pool_grow(&pool);
	/* a signal handler cannot wake a condition: look every 100 ms */
	while (pool.running > 0 && !fuse_session_exited(se)) {
		struct timespec t;

		clock_gettime(CLOCK_REALTIME, &t);
		t.tv_nsec += 100 * 1000 * 1000;
		if (t.tv_nsec >= 1000000000) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&pool.changed, &pool.lock, &t);
	}
	pthread_mutex_unlock(&pool.lock);
	fuse_session_exit(se);
	for (int i = 0; i < pool.started; i++)
		pthread_cancel(pool.tids[i]); /* only while waiting for a request */
	for (int i = 0; i < pool.started; i++)
		pthread_join(pool.tids[i], NULL);
	err = pool.error;
	pthread_cond_destroy(&pool.changed);
	pthread_mutex_destroy(&pool.lock);
	return pool.started ? err : -EAGAIN;
}

/*
 * A worker taking over a live connection: requests its predecessor had
 * read come again (before any thread of ours reads, or a live thread's
 * requests would be served twice), and names cached in the kernel are
 * looked up again, from their parents down to the root.
 */
void ovl_sv_takeover(struct ovl_fs *fs)
{
	struct fuse_out_header oh = { .len = sizeof(oh),
				      .error = FUSE_NOTIFY_RESEND, .unique = 0 };
	int err;

	if (write(fuse_session_fd(fs->se), &oh, sizeof(oh)) < 0)
		ovl_log("restart: cannot ask for pending requests again: %s",
			strerror(errno));
	err = fuse_lowlevel_notify_increment_epoch(fs->se);
	if (err)
		ovl_debug("restart: no epoch increment (%s): cached names keep the old worker's ids",
			  strerror(-err));
}

/* ---- the supervisor ---- */

static int read_init(int fd, char *buf, size_t size)
{
	ssize_t n;

	do {
		n = read(fd, buf, size);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n < sizeof(struct fuse_in_header) ||
	    ((struct fuse_in_header *)buf)->opcode != FUSE_INIT)
		return -EPROTO;
	return (int)n;
}

static void describe_end(int status, char *out, size_t size)
{
	if (WIFSIGNALED(status))
		snprintf(out, size, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(out, size, "exited with status %d", WEXITSTATUS(status));
}

/* The connection is gone (unmounted, or aborted). */
static bool connection_gone(int fd)
{
	struct pollfd p = { .fd = fd, .events = 0 };

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL));
}

struct sv_ctx {
	struct ovl_fs *fs;
	ovl_serve_fn serve;
	char *init;
	int init_len;
	sigset_t waited;	/* SIGCHLD and the stop signals, blocked */
	sigset_t old;		/* the mask a worker gets back */
	bool stop;		/* a stop signal came */
};

static pid_t start_worker(struct sv_ctx *c, unsigned gen)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	sigprocmask(SIG_SETMASK, &c->old, NULL);
	c->fs->gen_tag = (uint64_t)((gen - 1) % 0x7fff + 1) << OVL_GEN_SHIFT;
	atomic_store(&c->fs->sv->generation, gen);
	_exit(c->serve(c->fs, c->init, (size_t)c->init_len, gen > 1));
}

/* Wait for @pid to end; a stop signal is passed on to it. */
static int wait_worker(struct sv_ctx *c, pid_t pid)
{
	int status;

	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&c->waited, &si);

		if (sig == SIGCHLD || sig < 0) {
			pid_t r = waitpid(pid, &status, WNOHANG);

			if (r == pid)
				return status;
			continue;
		}
		c->stop = true;
		kill(pid, SIGTERM);
	}
}

/* Sleep @ms unless a stop signal comes (true if one did). */
static bool pause_ms(struct sv_ctx *c, long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
	siginfo_t si;
	int sig;

	for (;;) {
		sig = sigtimedwait(&c->waited, &si, &t);
		if (sig < 0)
			return false;
		if (sig != SIGCHLD)
			return true;
	}
}

/* Deaths in the last SV_WINDOW seconds, @now's included. */
static int recent_deaths(const time_t *deaths, time_t now)
{
	int n = 0;

	for (int i = 0; i < SV_BURST; i++)
		n += deaths[i] && now - deaths[i] < SV_WINDOW;
	return n;
}

static int supervise_loop(struct sv_ctx *c)
{
	struct ovl_svstate *sv = c->fs->sv;
	time_t deaths[SV_BURST] = { 0 };
	unsigned ndeaths = 0;

	for (unsigned gen = 1;; gen++) {
		pid_t pid = start_worker(c, gen);
		int status, recent;
		char cause[sizeof(sv->last_cause)];
		time_t now;

		if (pid < 0) {
			ovl_log("restart: cannot start a worker: %s", strerror(errno));
			return EXIT_MOUNT;
		}
		if (gen > 1)
			atomic_fetch_add(&sv->restarts, 1);
		if (c->fs->ready_fd >= 0) {
			/* the first worker tells the waiting parent */
			close(c->fs->ready_fd);
			c->fs->ready_fd = -1;
		}
		status = wait_worker(c, pid);
		if (c->stop || (WIFEXITED(status) && WEXITSTATUS(status) == 0))
			return WIFEXITED(status) ? WEXITSTATUS(status) : 0;
		if (connection_gone(fuse_session_fd(c->fs->se)))
			return 0;
		describe_end(status, cause, sizeof(cause));
		memcpy(sv->last_cause, cause, sizeof(cause));
		if (!atomic_load(&sv->served)) {
			ovl_log("restart: the first worker %s before the mount was up; not restarting",
				cause);
			return EXIT_MOUNT;
		}
		now = time(NULL);
		deaths[ndeaths++ % SV_BURST] = now;
		recent = recent_deaths(deaths, now);
		if (recent >= SV_BURST) {
			ovl_log("restart: the worker died %d times within %d s (last: %s); giving up and unmounting %s",
				recent, SV_WINDOW, cause, c->fs->p->mountpoint);
			return EXIT_MOUNT;
		}
		ovl_log("restart: worker %d %s; starting another", (int)pid, cause);
		/* the first restart of a burst at once, then backing off */
		if (recent > 1 && pause_ms(c, SV_BACKOFF_MS << (recent - 2)))
			return 0;
	}
}

/*
 * Run as the supervisor of the mounted session fs->se until the mount ends:
 * returns the exit status.  @serve runs in each worker (a forked copy of
 * this process, before any thread) with the saved INIT.
 */
int ovl_supervise(struct ovl_fs *fs, ovl_serve_fn serve)
{
	struct sv_ctx c = { .fs = fs, .serve = serve };
	int status;

	fs->sv = mmap(NULL, sizeof(*fs->sv), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (fs->sv == MAP_FAILED) {
		fs->sv = NULL;
		ovl_log("restart: cannot map the shared state: %s", strerror(errno));
		return EXIT_MOUNT;
	}
	c.init = malloc(SV_INIT_BUF);
	if (!c.init)
		return EXIT_MOUNT;
	c.init_len = read_init(fuse_session_fd(fs->se), c.init, SV_INIT_BUF);
	if (c.init_len < 0) {
		ovl_log("restart: cannot read INIT: %s", strerror(-c.init_len));
		free(c.init);
		return EXIT_MOUNT;
	}
	sigemptyset(&c.waited);
	sigaddset(&c.waited, SIGCHLD);
	sigaddset(&c.waited, SIGTERM);
	sigaddset(&c.waited, SIGINT);
	sigaddset(&c.waited, SIGHUP);
	sigprocmask(SIG_BLOCK, &c.waited, &c.old);
	status = supervise_loop(&c);
	sigprocmask(SIG_SETMASK, &c.old, NULL);
	free(c.init);
	return status;
}
