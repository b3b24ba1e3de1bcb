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
 * Node ids and file handles carry the generation of the worker that made
 * them (OVL_GEN_SHIFT).  A worker reads each request before libfuse does
 * (filter_request()): a node id of a dead worker becomes the id of the
 * inode its name leads to now (nodetab.c), and a dead worker's file handle
 * becomes a file this worker opens on that inode with the flags the
 * request tells (adopt_fh()).  Descriptors opened through passthrough keep
 * reading and writing meanwhile: that never needed the daemon.  What is
 * lost with a worker: the record locks and flocks it held, and a request
 * it had done but not answered is done again (a resent mkdir then fails
 * with EEXIST).
 *
 * A worker that keeps dying ends the mount: after restart_limit deaths
 * within SV_WINDOW seconds, or when the first worker never answered INIT,
 * the supervisor says why and unmounts.
 */
#include "config.h"

#include "overlay.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
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

#define SV_WINDOW 60		/* restart_limit deaths within this many
				 * seconds end the mount */
#define SV_QUICK 0.5		/* a worker dead this soon after its start
				 * died as it started... */
#define SV_BACKOFF_MS 100	/* ...and the next but one waits this long,
				 * doubled each time after, up to 16 times */
#define SV_MAX_THREADS 16	/* request threads of a worker */
#define SV_DRAIN_S 1		/* seconds requests in progress get to end
				 * when a worker stops */

/* ---- in a worker: requests naming what a dead worker handed out ---- */

bool ovl_nodeid_stale(const struct ovl_fs *fs, uint64_t id)
{
	return id != 0 && id != FUSE_ROOT_ID &&
	       (id & OVL_GEN_MASK) != fs->gen_tag;
}

static bool fh_stale(const struct ovl_fs *fs, uint64_t fh)
{
	return fh != 0 && (fh & OVL_GEN_MASK) != fs->gen_tag;
}

static void reply_now(struct ovl_fs *fs, const struct fuse_in_header *in,
		      int err)
{
	struct fuse_out_header out = { .len = sizeof(out), .error = err,
				       .unique = in->unique };

	/* ENOENT: the caller was interrupted meanwhile */
	if (write(fuse_session_fd(fs->se), &out, sizeof(out)) < 0 &&
	    errno != ENOENT)
		ovl_debug("restart: reply: %s", strerror(errno));
}

/* A dead worker's @id (in place) as this worker's; false if it stands for
 * nothing any more. */
static bool carry_id(struct ovl_fs *fs, uint64_t *id)
{
	uint64_t now;

	if (!ovl_nodeid_stale(fs, *id))
		return true;
	now = ovl_nodetab_current(fs, *id);
	if (!now)
		return false;
	*id = now;
	return true;
}

/* Drop the dead workers' entries of a BATCH_FORGET, telling nodetab.c;
 * true if none is left. */
static bool forget_batch(struct ovl_fs *fs, struct fuse_in_header *in,
			 size_t size)
{
	struct fuse_batch_forget_in *b = (void *)(in + 1);
	struct fuse_forget_one *one = (void *)(b + 1);
	size_t room;
	uint32_t n = 0;

	if (size < sizeof(*in) + sizeof(*b))
		return false;
	room = (size - sizeof(*in) - sizeof(*b)) / sizeof(*one);
	if (b->count < room)
		room = b->count;
	for (uint32_t i = 0; i < room; i++) {
		if (ovl_nodeid_stale(fs, one[i].nodeid))
			ovl_nodetab_forget(fs, one[i].nodeid, one[i].nlookup);
		else
			one[n++] = one[i];
	}
	b->count = n;
	return n == 0;
}

/* Where the file handle of a request is, or NULL. */
static uint64_t *request_fh(struct fuse_in_header *in, size_t size)
{
	void *body = in + 1;
	size_t len = size - sizeof(*in);

	switch (in->opcode) {
	case FUSE_GETATTR: {
		struct fuse_getattr_in *a = body;

		return len >= sizeof(*a) && (a->getattr_flags & FUSE_GETATTR_FH) ?
		       &a->fh : NULL;
	}
	case FUSE_SETATTR: {
		struct fuse_setattr_in *a = body;

		return len >= sizeof(*a) && (a->valid & FATTR_FH) ? &a->fh : NULL;
	}
	case FUSE_READ: case FUSE_READDIR: case FUSE_READDIRPLUS:
	case FUSE_WRITE: case FUSE_RELEASE: case FUSE_RELEASEDIR:
	case FUSE_FSYNC: case FUSE_FSYNCDIR: case FUSE_FLUSH:
	case FUSE_GETLK: case FUSE_SETLK: case FUSE_SETLKW:
	case FUSE_IOCTL: case FUSE_POLL: case FUSE_FALLOCATE:
	case FUSE_LSEEK: case FUSE_COPY_FILE_RANGE:
		/* the first member of each of their arguments */
		return len >= sizeof(uint64_t) ? body : NULL;
	default:
		return NULL;
	}
}

/* The second node id some requests carry in their body, or NULL. */
static uint64_t *body_nodeid(struct fuse_in_header *in, size_t size)
{
	void *body = in + 1;
	size_t len = size - sizeof(*in);

	switch (in->opcode) {
	case FUSE_RENAME:
		return len >= sizeof(struct fuse_rename_in) ?
		       &((struct fuse_rename_in *)body)->newdir : NULL;
	case FUSE_RENAME2:
		return len >= sizeof(struct fuse_rename2_in) ?
		       &((struct fuse_rename2_in *)body)->newdir : NULL;
	case FUSE_LINK:
		return len >= sizeof(struct fuse_link_in) ?
		       &((struct fuse_link_in *)body)->oldnodeid : NULL;
	case FUSE_COPY_FILE_RANGE:
		return len >= sizeof(struct fuse_copy_file_range_in) ?
		       &((struct fuse_copy_file_range_in *)body)->nodeid_out : NULL;
	default:
		return NULL;
	}
}

/*
 * A dead worker's file handles, each with the file of this worker standing
 * for it (ovl_file_adopt()), until the kernel releases it.
 */
#define SV_ADOPT_BUCKETS 256

struct sv_adopted {
	uint64_t old, now;
	struct sv_adopted *next;
};

static pthread_mutex_t adopt_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sv_adopted *adopted[SV_ADOPT_BUCKETS];

static struct sv_adopted **adopt_slot(uint64_t old)
{
	struct sv_adopted **pp = &adopted[(old >> 4) % SV_ADOPT_BUCKETS];

	while (*pp && (*pp)->old != old)
		pp = &(*pp)->next;
	return pp;
}

/*
 * Put in *@fh the handle of this worker's file standing for a dead
 * worker's handle, opened on the first READ, WRITE or FALLOCATE with the
 * open's flags (READ and WRITE carry them; FALLOCATE writes).  RELEASE
 * takes the entry out, and libfuse closes the file.  0, 1 when there is no
 * entry for a RELEASE, or a negative errno.
 */
static int adopt_fh(struct ovl_fs *fs, struct fuse_in_header *in, uint64_t *fh)
{
	const void *body = in + 1;
	struct sv_adopted **pp, *a;
	int err = 0, flags = O_RDWR;

	if (in->opcode == FUSE_READ)
		flags = (int)((const struct fuse_read_in *)body)->flags;
	else if (in->opcode == FUSE_WRITE)
		flags = (int)((const struct fuse_write_in *)body)->flags;
	pthread_mutex_lock(&adopt_lock);
	pp = adopt_slot(*fh);
	a = *pp;
	if (a) {
		*fh = a->now;
		if (in->opcode == FUSE_RELEASE) {
			*pp = a->next;
			free(a);
		}
	} else if (in->opcode == FUSE_RELEASE) {
		err = 1;
	} else {
		a = malloc(sizeof(*a));
		err = a ? ovl_file_adopt(fs, ovl_inode_of(fs, in->nodeid), flags,
					 &a->now) : -ENOMEM;
		if (err) {
			free(a);
		} else {
			a->old = *fh;
			a->next = NULL;
			*pp = a;
			*fh = a->now;
		}
	}
	pthread_mutex_unlock(&adopt_lock);
	return err;
}

/* fsync or lseek through a file of the inode's opened for this request
 * only: neither needs the open's flags.  Answers the request. */
static void serve_once(struct ovl_fs *fs, struct fuse_in_header *in)
{
	struct ovl_inode *inode = ovl_inode_of(fs, in->nodeid);
	int fd = ovl_reopen(inode->fd, S_ISDIR(inode->type) ?
			    O_RDONLY | O_DIRECTORY : O_RDONLY);
	int err = fd < 0 ? fd : 0;

	if (!err && in->opcode == FUSE_LSEEK) {
		const struct fuse_lseek_in *a = (const void *)(in + 1);
		struct {
			struct fuse_out_header h;
			struct fuse_lseek_out o;
		} out = { { sizeof(out), 0, in->unique }, { 0 } };
		off_t r = lseek(fd, (off_t)a->offset, (int)a->whence);

		close(fd);
		if (r < 0) {
			reply_now(fs, in, -errno);
			return;
		}
		out.o.offset = (uint64_t)r;
		if (write(fuse_session_fd(fs->se), &out, sizeof(out)) < 0 &&
		    errno != ENOENT)
			ovl_debug("restart: reply: %s", strerror(errno));
		return;
	}
	if (!err && fs->p->fsync &&
	    ((((const struct fuse_fsync_in *)(in + 1))->fsync_flags & 1) ?
	     fdatasync(fd) : fsync(fd)))
		err = -errno;
	if (fd >= 0)
		close(fd);
	reply_now(fs, in, err);
}

/*
 * A request with a dead worker's file handle @fh, its node ids already
 * this worker's: made to name this worker's file, or answered here.  True
 * when answered.
 */
static bool carry_fh(struct ovl_fs *fs, struct fuse_in_header *in, uint64_t *fh)
{
	int err;

	switch (in->opcode) {
	case FUSE_GETATTR:
		((struct fuse_getattr_in *)(in + 1))->getattr_flags &=
			~FUSE_GETATTR_FH;
		return false;
	case FUSE_SETATTR:
		((struct fuse_setattr_in *)(in + 1))->valid &= ~FATTR_FH;
		return false;
	case FUSE_READDIR:
	case FUSE_READDIRPLUS:
		*fh = 0; /* directories are read without handles here */
		return false;
	case FUSE_RELEASEDIR:
		reply_now(fs, in, 0);
		return true;
	case FUSE_FLUSH:
	case FUSE_GETLK:
	case FUSE_SETLK:
	case FUSE_SETLKW:
	case FUSE_IOCTL:
	case FUSE_POLL:
		/* the handle names the open file's locks; nothing reads it */
		return false;
	case FUSE_FSYNC:
	case FUSE_FSYNCDIR:
	case FUSE_LSEEK:
		serve_once(fs, in);
		return true;
	case FUSE_COPY_FILE_RANGE:
		/* the kernel copies through reads and writes instead */
		reply_now(fs, in, -EOPNOTSUPP);
		return true;
	case FUSE_RELEASE:
		/* the flocks and OFD locks it held under the old handle */
		ovl_locks_release(fs, ovl_inode_of(fs, in->nodeid), *fh);
		break;
	default:
		break;
	}
	err = adopt_fh(fs, in, fh);
	if (err == 1) { /* a release of a handle nothing was opened for */
		reply_now(fs, in, 0);
		return true;
	}
	if (err < 0) {
		atomic_fetch_add(&fs->stats.stale, 1);
		reply_now(fs, in, err);
		return true;
	}
	return false;
}

/*
 * Before libfuse sees a request: node ids and file handles a dead worker
 * handed out become this worker's.  True when the request was answered
 * here (a FORGET of a dead worker's id, ESTALE for an id whose name leads
 * nowhere now).
 */
static bool filter_request(struct ovl_fs *fs, struct fuse_buf *buf)
{
	struct fuse_in_header *in = buf->mem;
	uint64_t *fh, *id2;
	bool old_fh;

	if ((buf->flags & FUSE_BUF_IS_FD) || buf->size < sizeof(*in))
		return false;
	switch (in->opcode) {
	case FUSE_INIT:
	case FUSE_DESTROY:
	case FUSE_INTERRUPT:
		return false;
	case FUSE_FORGET:
		if (!ovl_nodeid_stale(fs, in->nodeid))
			return false;
		if (buf->size >= sizeof(*in) + sizeof(struct fuse_forget_in))
			ovl_nodetab_forget(fs, in->nodeid,
				((struct fuse_forget_in *)(in + 1))->nlookup);
		return true;
	case FUSE_BATCH_FORGET:
		return forget_batch(fs, in, buf->size);
	default:
		break;
	}
	fh = request_fh(in, buf->size);
	id2 = body_nodeid(in, buf->size);
	old_fh = fh && fh_stale(fs, *fh);
	if (in->opcode == FUSE_COPY_FILE_RANGE &&
	    fh_stale(fs, ((struct fuse_copy_file_range_in *)(in + 1))->fh_out))
		old_fh = true;
	if (!ovl_nodeid_stale(fs, in->nodeid) && !old_fh &&
	    !(id2 && ovl_nodeid_stale(fs, *id2)))
		return false;
	if (!carry_id(fs, &in->nodeid) || (id2 && !carry_id(fs, id2)))
		goto stale;
	atomic_fetch_add(&fs->stats.carried, 1);
	return old_fh && carry_fh(fs, in, fh);
stale:
	atomic_fetch_add(&fs->stats.stale, 1);
	ovl_debug("restart: stale: opcode %u, node id %#llx", in->opcode,
		  (unsigned long long)in->nodeid);
	reply_now(fs, in, -ESTALE);
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

/* Wait 100 ms at most for a thread to end; pool->lock held. */
static void pool_wait(struct sv_pool *pool)
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

/*
 * A request sent again (FUSE_NOTIFY_RESEND sets bit 63 of its unique) that
 * changes a directory may have been carried out by the dead worker, which
 * never answered: the kernel then keeps the listing it cached before, and
 * a second try that fails (EEXIST, ENOENT) does not drop it.  The
 * directories it names, as the kernel knows them, are put in @dirs (0
 * where none) to be dropped from the kernel's cache once it is answered.
 */
static void resent_dirs(const struct fuse_buf *buf, uint64_t dirs[2])
{
	const struct fuse_in_header *in = buf->mem;
	const uint64_t *id2;

	dirs[0] = dirs[1] = 0;
	if ((buf->flags & FUSE_BUF_IS_FD) || buf->size < sizeof(*in) ||
	    !(in->unique & (1ull << 63)))
		return;
	switch (in->opcode) {
	case FUSE_CREATE: case FUSE_MKNOD: case FUSE_MKDIR: case FUSE_SYMLINK:
	case FUSE_LINK: case FUSE_UNLINK: case FUSE_RMDIR: case FUSE_TMPFILE:
	case FUSE_RENAME: case FUSE_RENAME2:
		dirs[0] = in->nodeid;
		id2 = body_nodeid((struct fuse_in_header *)in, buf->size);
		if (id2 && in->opcode != FUSE_LINK)
			dirs[1] = *id2;
		break;
	default:
		break;
	}
}

static void inval_dirs(struct ovl_fs *fs, uint64_t dirs[2])
{
	for (int i = 0; i < 2; i++)
		if (dirs[i])
			fuse_lowlevel_notify_inval_inode(fs->se, dirs[i], 0, 0);
}

static void *sv_thread(void *arg)
{
	struct sv_pool *pool = arg;
	struct fuse_session *se = pool->fs->se;
	struct fuse_buf buf = { 0 };
	uint64_t dirs[2];
	int r;

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
		resent_dirs(&buf, dirs);
		if (filter_request(pool->fs, &buf)) {
			inval_dirs(pool->fs, dirs);
			continue;
		}
		pthread_mutex_lock(&pool->lock);
		if (--pool->idle == 0)
			pool_grow(pool);
		pthread_mutex_unlock(&pool->lock);
		fuse_session_process_buf(se, &buf);
		inval_dirs(pool->fs, dirs);
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
 * fuse_set_signal_handlers()): 0, or a negative errno.  The worker exits
 * right after: threads may still be waiting for a request.
 */
int ovl_sv_loop(struct ovl_fs *fs)
{
	/* on the heap, and never freed: threads waiting for a request when
	 * this returns keep it until the worker exits (_exit) */
	struct sv_pool *pool = calloc(1, sizeof(*pool));
	struct fuse_session *se = fs->se;
	int err;

	if (!pool || pthread_mutex_init(&pool->lock, NULL) ||
	    pthread_cond_init(&pool->changed, NULL)) {
		free(pool);
		return -ENOMEM;
	}
	pool->fs = fs;
	pool->max = fs->p->threaded ? SV_MAX_THREADS : 1;
	pthread_mutex_lock(&pool->lock);
	pool_grow(pool);
	if (pool->max > 1)
		pool_grow(pool);
	/* a signal handler cannot wake a condition: look every 100 ms */
	while (pool->running > 0 && !fuse_session_exited(se))
		pool_wait(pool);
	fuse_session_exit(se);
	/*
	 * Requests in progress end, for up to SV_DRAIN_S: one that waits
	 * longer (a lock wait) ends with the process, and the next worker
	 * gets it again (FUSE_NOTIFY_RESEND), as it gets one that a thread
	 * still waiting in read() takes meanwhile.  Those threads are not
	 * stopped: the worker exits next.
	 */
	for (int i = 0; pool->running > pool->idle && i < SV_DRAIN_S * 10; i++)
		pool_wait(pool);
	err = pool->started ? pool->error : -EAGAIN;
	pthread_mutex_unlock(&pool->lock);
	return err;
}

/*
 * A worker taking over a live connection: the backing ids its
 * predecessors registered are closed (open files keep their own
 * reference), requests they had read come again (before any thread of
 * ours reads, or a live thread's requests would be served twice), and the
 * names the kernel cached are looked up again as they are used, so that
 * paths get this worker's ids rather than carried ones.
 */
void ovl_sv_takeover(struct ovl_fs *fs)
{
	struct fuse_out_header oh = { .len = sizeof(oh),
				      .error = FUSE_NOTIFY_RESEND, .unique = 0 };
	int fd = fuse_session_fd(fs->se), err;
	unsigned closed = ovl_nodetab_close_backing(fs, fd);

	atomic_store(&fs->stats.backing_closed, closed);
	if (write(fd, &oh, sizeof(oh)) < 0)
		ovl_log("restart: cannot ask for pending requests again: %s",
			strerror(errno));
	err = fuse_lowlevel_notify_increment_epoch(fs->se);
	if (err)
		ovl_debug("restart: no epoch increment (%s)", strerror(-err));
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
	int init_fd;		/* a memfd with the INIT request */
	int state_fd;		/* the memfd of fs->sv */
	char exe[PATH_MAX];	/* the binary a worker of an upgrade runs */
	sigset_t waited;	/* SIGCHLD and the stop signals, blocked */
	sigset_t old;		/* the mask a worker gets back */
	bool stop;		/* a stop signal came */
	bool upgrade;		/* SIGUSR2 came: the worker is being replaced */
	bool exec_next;		/* start workers from exe, not by fork */
};

/* In a worker of generation @gen, before it serves: its tag, and the ids
 * of its predecessors.  0 or a negative errno. */
int ovl_sv_worker_init(struct ovl_fs *fs, unsigned gen)
{
	fs->gen_tag = (uint64_t)((gen - 1) % 0x7fff + 1) << OVL_GEN_SHIFT;
	atomic_store(&fs->sv->generation, gen);
	if (gen > 1 && fs->nodetab)
		return ovl_nodetab_takeover(fs);
	return 0;
}

/*
 * In the child: become a worker of the binary at c->exe (an upgrade), as
 * "EXE --sv-worker DEV STATE NODES INIT GEN ARGS...", in the directory the
 * mount was started in, so that its arguments mean what they meant.
 */
static void exec_worker(struct sv_ctx *c, unsigned gen)
{
	struct ovl_fs *fs = c->fs;
	int fds[4] = { fuse_session_fd(fs->se), c->state_fd,
		       ovl_nodetab_fd(fs), c->init_fd };
	char num[6][24];
	char **argv = calloc((size_t)fs->argc + 8, sizeof(*argv));
	int n = 0;

	if (!argv || fds[2] < 0 || (fs->cwd_fd >= 0 && fchdir(fs->cwd_fd) < 0))
		return;
	argv[n++] = c->exe;
	argv[n++] = "--sv-worker";
	for (int i = 0; i < 4; i++) {
		fcntl(fds[i], F_SETFD, 0);
		snprintf(num[i], sizeof(num[i]), "%d", fds[i]);
		argv[n++] = num[i];
	}
	snprintf(num[4], sizeof(num[4]), "%u", gen);
	argv[n++] = num[4];
	for (int i = 1; i < fs->argc; i++)
		argv[n++] = fs->argv[i];
	argv[n] = NULL;
	execv(c->exe, argv);
	ovl_log("restart: cannot run %s: %s", c->exe, strerror(errno));
}

static pid_t start_worker(struct sv_ctx *c, unsigned gen)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	sigprocmask(SIG_SETMASK, &c->old, NULL);
	if (c->exec_next) {
		exec_worker(c, gen);
		_exit(EXIT_MOUNT);
	}
	if (ovl_sv_worker_init(c->fs, gen)) {
		ovl_log("restart: no memory for the node ids of the dead worker");
		_exit(EXIT_MOUNT);
	}
	_exit(c->serve(c->fs, c->init, (size_t)c->init_len, gen > 1));
}

/* Wait for @pid to end; a stop signal is passed on to it, and so is an
 * upgrade (SIGUSR2), which ends it to start the next from c->exe. */
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
		if (sig == SIGUSR2)
			c->upgrade = true;
		else
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

	for (int i = 0; i < OVL_RESTART_LIMIT_MAX; i++)
		n += deaths[i] && now - deaths[i] < SV_WINDOW;
	return n;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int supervise_loop(struct sv_ctx *c)
{
	struct ovl_svstate *sv = c->fs->sv;
	int limit = c->fs->p->restart_limit, quick = 0;
	time_t deaths[OVL_RESTART_LIMIT_MAX] = { 0 };
	unsigned ndeaths = 0;

	for (unsigned gen = 1;; gen++) {
		double started = now_s();
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
		if (c->upgrade && !c->stop) {
			c->upgrade = false;
			c->exec_next = true;
			snprintf(sv->last_cause, sizeof(sv->last_cause),
				 "replaced by %.60s", c->exe);
			ovl_log("restart: worker %d ended for an upgrade; starting %s",
				(int)pid, c->exe);
			continue;
		}
		if (c->stop || (WIFEXITED(status) && WEXITSTATUS(status) == 0))
			return WIFEXITED(status) ? WEXITSTATUS(status) : 0;
		if (connection_gone(fuse_session_fd(c->fs->se)))
			return 0;
		describe_end(status, cause, sizeof(cause));
		memcpy(sv->last_cause, cause, sizeof(cause));
		if (c->exec_next && atomic_load(&sv->ready_gen) != gen) {
			/* a new binary that does not start: keep the old */
			ovl_log("restart: the worker from %s %s before serving; starting workers of the running binary again",
				c->exe, cause);
			c->exec_next = false;
		}
		if (!atomic_load(&sv->served)) {
			ovl_log("restart: the first worker %s before the mount was up; not restarting",
				cause);
			return EXIT_MOUNT;
		}
		now = time(NULL);
		deaths[ndeaths++ % OVL_RESTART_LIMIT_MAX] = now;
		recent = recent_deaths(deaths, now);
		if (limit && recent >= limit) {
			ovl_log("restart: the worker died %d times within %d s (last: %s); giving up and unmounting %s",
				recent, SV_WINDOW, cause, c->fs->p->mountpoint);
			return EXIT_MOUNT;
		}
		ovl_log("restart: worker %d %s; starting another", (int)pid, cause);
		/* a worker that lived SV_QUICK s or more is replaced at once;
		 * after one that did not, the next waits, longer each time
		 * (a worker that dies as it starts must not spin) */
		quick = now_s() - started < SV_QUICK ? quick + 1 : 0;
		if (quick > 1 &&
		    pause_ms(c, SV_BACKOFF_MS << (quick - 2 < 4 ? quick - 2 : 4)))
			return 0;
	}
}

/*
 * Run as the supervisor of the mounted session fs->se until the mount ends:
 * returns the exit status.  @serve runs in each worker (a forked copy of
 * this process, before any thread) with the saved INIT.
 */
/* A memfd of @len bytes, mapped shared at *@map; its fd, or -errno. */
static int shared_memfd(const char *name, size_t len, void **map)
{
	int fd = memfd_create(name, MFD_CLOEXEC), err;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len) < 0)
		goto fail;
	*map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (*map != MAP_FAILED)
		return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

/* The path of the running binary, which an upgrade replaces. */
static void own_exe(char *out, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", out, size - 1);
	const char *del = " (deleted)";
	size_t dl = strlen(del);

	out[n > 0 ? n : 0] = '\0';
	if (n > (ssize_t)dl && !strcmp(out + n - dl, del))
		out[n - dl] = '\0';
}

/*
 * Run as the supervisor of the mounted session fs->se until the mount ends:
 * returns the exit status.  @serve runs in each worker (a forked copy of
 * this process, before any thread) with the saved INIT.
 */
int ovl_supervise(struct ovl_fs *fs, ovl_serve_fn serve)
{
	struct sv_ctx c = { .fs = fs, .serve = serve, .init_fd = -1 };
	void *map;
	int status;

	c.state_fd = shared_memfd("overpass-state", sizeof(*fs->sv), &map);
	if (c.state_fd < 0) {
		ovl_log("restart: cannot map the shared state: %s",
			strerror(-c.state_fd));
		return EXIT_MOUNT;
	}
	fs->sv = map;
	if (ovl_nodetab_create(fs))
		ovl_log("restart: cannot map the node id table: node ids will not outlive their worker");
	own_exe(c.exe, sizeof(c.exe));
	c.init = malloc(OVL_SV_INIT_MAX);
	if (!c.init)
		return EXIT_MOUNT;
	c.init_len = read_init(fuse_session_fd(fs->se), c.init, OVL_SV_INIT_MAX);
	if (c.init_len < 0) {
		ovl_log("restart: cannot read INIT: %s", strerror(-c.init_len));
		free(c.init);
		ovl_nodetab_free(fs);
		return EXIT_MOUNT;
	}
	c.init_fd = memfd_create("overpass-init", MFD_CLOEXEC);
	if (c.init_fd < 0 || write(c.init_fd, c.init, (size_t)c.init_len) != c.init_len)
		ovl_log("restart: cannot keep INIT for an upgrade: upgrades will fail");
	sigemptyset(&c.waited);
	sigaddset(&c.waited, SIGCHLD);
	sigaddset(&c.waited, SIGTERM);
	sigaddset(&c.waited, SIGINT);
	sigaddset(&c.waited, SIGHUP);
	sigaddset(&c.waited, SIGUSR2);
	sigprocmask(SIG_BLOCK, &c.waited, &c.old);
	status = supervise_loop(&c);
	sigprocmask(SIG_SETMASK, &c.old, NULL);
	free(c.init);
	if (c.init_fd >= 0)
		close(c.init_fd);
	ovl_nodetab_free(fs);
	munmap(fs->sv, sizeof(*fs->sv));
	fs->sv = NULL;
	close(c.state_fd);
	return status;
}
