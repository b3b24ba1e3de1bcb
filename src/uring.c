// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * FUSE over io_uring, served by overpass's own rings (Linux 6.14 and
 * later, with the kernel's fuse.enable_uring=Y and restart off).
 *
 * The kernel keeps a queue per CPU and hands a request made on a CPU to one
 * of the entries the daemon registered on that CPU's queue; the entry is
 * the daemon's until it commits the answer (COMMIT_AND_FETCH, which also
 * makes it ready for the next request).  A request answered later, a lock
 * wait, keeps its entry all that time, and requests on a queue with no
 * free entry wait in the kernel: with a fixed number of entries, as
 * libfuse's rings have, waits on one CPU could take them all and stop
 * every request made there, the unlock that would end them included.
 * So here a queue gets one more entry whenever fewer than OVL_RING_SPARE
 * are free after a request is served: however many requests wait, others
 * still come in.  Entries are never given back (the kernel has no command
 * for it); each costs its header and an address range for the largest
 * request, of which only what requests wrote is resident.
 *
 * Each queue has a thread, on its CPU where it may be, that takes what the
 * kernel put in an entry, lays it out as /dev/fuse would have given it
 * and hands it to fuse_session_process_buf().  Answers come back through
 * the session's custom io: libfuse writes every answer with writev(), and
 * ring_writev() puts an answer to a ring request into its entry; the
 * queue's thread commits it, at once when it answered itself, else when
 * the answering thread (a lock granted by another request, a wait ended by
 * a signal) wakes it through its eventfd.  Only the queue's thread submits
 * to its ring: the kernel delivers the next request of an entry as work of
 * the task that committed it, which must outlive it.  Everything else
 * (answers to /dev/fuse requests, notifications) goes to /dev/fuse.
 *
 * Start: once INIT is read, ovl_uring_prepare() installs the custom io.
 * Its answer is where the ring is asked for (FUSE_OVER_IO_URING), and only
 * when every queue's ring, entries and thread are ready: from that answer
 * on, the kernel holds every new request until each CPU's queue has a
 * registered entry, so nothing may fail after it.  The threads register
 * their entries when the loop starts (ovl_uring_run()), with the rest of
 * the daemon ready.
 */
#include "config.h"

#include "overlay.h"

#include <errno.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef HAVE_LIBURING
#include <liburing.h>

/* The kernel's FUSE io_uring ABI (include/uapi/linux/fuse.h, 7.42). */
#define RING_HDR_IN_OUT 128
#define RING_HDR_OP 128
#define RING_CMD_REGISTER 1
#define RING_CMD_COMMIT_AND_FETCH 2
#define RING_MIN_PAYLOAD 8192	/* the kernel's FUSE_MIN_READ_BUFFER */

struct ring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;
	uint32_t payload_sz;
	uint32_t padding;
	uint64_t reserved;
};

struct ring_req_header {
	char in_out[RING_HDR_IN_OUT];	/* fuse_in_header / fuse_out_header */
	char op_in[RING_HDR_OP];	/* the request's first argument */
	struct ring_ent_in_out ent;
};

struct ring_cmd_req {			/* in the SQE's command area */
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

#define OVL_RING_DEPTH 8	/* entries a queue starts with */
#define OVL_RING_SPARE 2	/* free entries a queue keeps */
#define OVL_RING_SQ 128		/* SQ slots: submitted before they run out */
#define OVL_RING_CQ 4096	/* CQ slots (the kernel keeps overflow) */
#define OVL_RING_ROOM 4096	/* room before the payload for the headers,
				 * so that a request is one buffer */
#define OVL_RING_MAP 256	/* buckets of the answer map */

struct ovl_ring_queue;

/* One registered entry. */
struct ovl_ring_ent {
	struct ovl_ring_queue *q;
	struct ring_req_header *hdr;
	char *mem;		/* OVL_RING_ROOM, then the payload buffer */
	struct iovec iov[2];	/* header, payload: what the kernel fills */
	uint64_t commit_id;
	uint32_t last_cmd;	/* the command last submitted for it */
	uint64_t unique;	/* the request it holds, 0 if none; map lock */
	struct ovl_ring_ent *hnext; /* answer map chain; map lock */
	struct ovl_ring_ent *pnext; /* q->pending chain; q->lock */
	struct ovl_ring_ent *next; /* the queue's entries */
};

struct ovl_ring_queue {
	struct ovl_uring *u;
	int qid;
	struct io_uring ring;
	bool ring_up;
	pthread_mutex_t lock;	/* the SQ, and the fields below */
	pthread_t tid;
	bool started;		/* the thread was created */
	bool stopping;		/* ovl_uring_stop() asks the thread to end */
	bool dead;		/* the thread ended: answers are dropped */
	int free;		/* registered entries holding no request */
	int total;
	struct ovl_ring_ent *ents;
	struct ovl_ring_ent *pending; /* answers other threads put in their
				 * entries, for the thread to commit */
	int efd;		/* eventfd: pending answers, or stop */
	uint64_t efd_val;
};

struct ovl_uring {
	struct ovl_fs *fs;
	int devfd;
	int nq;
	size_t payload;		/* payload buffer size of every entry */
	_Atomic uint64_t init_unique; /* the INIT request, answered through
				 * us; 0 once answered */
	pthread_mutex_t run_lock;
	pthread_cond_t run_cond;
	int run;		/* 0 until ovl_uring_run(), 1 then, -1 when
				 * the rings are given up; run_lock */
	atomic_bool up;		/* the INIT answer asked for the ring */
	pthread_mutex_t map_lock;
	struct ovl_ring_ent *map[OVL_RING_MAP]; /* entries holding a request,
				 * by unique */
	struct ovl_ring_queue q[];
};

/* The rings of the mount: kept reachable for the process's life, since
 * another thread may answer through them until it exits. */
static struct ovl_uring *volatile uring_kept;

/* The queue whose thread this is, or NULL. */
static __thread struct ovl_ring_queue *cur_queue;
static __thread bool cur_is_ring;

bool ovl_uring_current(void)
{
	return cur_is_ring;
}

static size_t map_bucket(uint64_t unique)
{
	return (size_t)((unique * 0x9e3779b97f4a7c15ull) >> 56) % OVL_RING_MAP;
}

static void map_add(struct ovl_uring *u, struct ovl_ring_ent *e, uint64_t unique)
{
	size_t b = map_bucket(unique);

	pthread_mutex_lock(&u->map_lock);
	e->unique = unique;
	e->hnext = u->map[b];
	u->map[b] = e;
	pthread_mutex_unlock(&u->map_lock);
}

/* The entry holding request @unique, taken out of the map, or NULL. */
static struct ovl_ring_ent *map_take(struct ovl_uring *u, uint64_t unique)
{
	struct ovl_ring_ent **pp, *e = NULL;

	if (!unique)
		return NULL;
	pthread_mutex_lock(&u->map_lock);
	for (pp = &u->map[map_bucket(unique)]; *pp; pp = &(*pp)->hnext) {
		if ((*pp)->unique == unique) {
			e = *pp;
			*pp = e->hnext;
			e->unique = 0;
			break;
		}
	}
	pthread_mutex_unlock(&u->map_lock);
	return e;
}

/* Submit what is queued on @q's SQ, trying again while the kernel is
 * busy; q->lock held, the queue's thread. */
static int queue_submit(struct ovl_ring_queue *q)
{
	int r;

	for (int tries = 0; tries < 1000; tries++) {
		r = io_uring_submit(&q->ring);
		if (r >= 0 || (r != -EINTR && r != -EAGAIN && r != -EBUSY))
			return r < 0 ? r : 0;
		sched_yield();
	}
	return r;
}

/* An SQE of @q, submitting what is queued when the SQ is full; q->lock
 * held, the queue's thread. */
static struct io_uring_sqe *queue_sqe(struct ovl_ring_queue *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

	if (!sqe && queue_submit(q) == 0)
		sqe = io_uring_get_sqe(&q->ring);
	if (!sqe)
		ovl_log("io_uring: queue %d: no SQE", q->qid);
	return sqe;
}

static void sqe_cmd(struct io_uring_sqe *sqe, struct ovl_ring_ent *e,
		    uint32_t op, uint64_t commit_id)
{
	struct ring_cmd_req *c = (void *)sqe->cmd;

	memset(sqe, 0, 128);
	e->last_cmd = op;
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->flags = IOSQE_FIXED_FILE;
	sqe->fd = 0;
	sqe->cmd_op = op;
	io_uring_sqe_set_data(sqe, e);
	c->qid = (uint16_t)e->q->qid;
	c->commit_id = commit_id;
	if (op == RING_CMD_REGISTER) {
		sqe->addr = (uint64_t)(uintptr_t)e->iov;
		sqe->len = 2;
	}
}

/* Queue @e's command again (after EINTR or EAGAIN, or registering);
 * q->lock held, the queue's thread. */
static void ent_submit(struct ovl_ring_ent *e, uint32_t op)
{
	struct io_uring_sqe *sqe = queue_sqe(e->q);

	if (sqe)
		sqe_cmd(sqe, e, op, op == RING_CMD_REGISTER ? 0 : e->commit_id);
}

/* One more entry for @q, not registered yet; q->lock held. */
static struct ovl_ring_ent *ent_new(struct ovl_ring_queue *q)
{
	struct ovl_uring *u = q->u;
	struct ovl_ring_ent *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->q = q;
	e->hdr = calloc(1, sizeof(*e->hdr));
	e->mem = mmap(NULL, OVL_RING_ROOM + u->payload, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!e->hdr || e->mem == MAP_FAILED) {
		if (e->mem != MAP_FAILED)
			munmap(e->mem, OVL_RING_ROOM + u->payload);
		free(e->hdr);
		free(e);
		return NULL;
	}
	e->iov[0] = (struct iovec){ e->hdr, sizeof(*e->hdr) };
	e->iov[1] = (struct iovec){ e->mem + OVL_RING_ROOM, u->payload };
	e->next = q->ents;
	q->ents = e;
	q->total++;
	return e;
}

/* Register one more entry on @q; q->lock held, the queue's thread. */
static int queue_grow(struct ovl_ring_queue *q)
{
	struct ovl_ring_ent *e = ent_new(q);

	if (!e)
		return -ENOMEM;
	ent_submit(e, RING_CMD_REGISTER);
	q->free++;
	return 0;
}

/* The eventfd read that wakes the thread; q->lock held. */
static void queue_arm_efd(struct ovl_ring_queue *q)
{
	struct io_uring_sqe *sqe = queue_sqe(q);

	if (!sqe)
		return;
	io_uring_prep_read(sqe, q->efd, &q->efd_val, sizeof(q->efd_val), 0);
	io_uring_sqe_set_data(sqe, &q->efd);
}

/*
 * Commit the answer in @e's buffers: the queue's own thread queues the
 * command (submitted after the request it serves); another thread hands
 * the entry to it.
 */
static void ent_commit(struct ovl_ring_ent *e)
{
	struct ovl_ring_queue *q = e->q;
	uint64_t one = 1;
	bool wake = false;

	pthread_mutex_lock(&q->lock);
	if (q->dead) {
		/* the mount is ending, or the queue failed: nobody takes it */
	} else if (cur_queue == q) {
		ent_submit(e, RING_CMD_COMMIT_AND_FETCH);
		q->free++;
	} else {
		e->pnext = q->pending;
		q->pending = e;
		q->free++;
		wake = true;
	}
	pthread_mutex_unlock(&q->lock);
	if (wake && write(q->efd, &one, sizeof(one)) < 0)
		ovl_log("io_uring: cannot wake queue %d: %s", q->qid, strerror(errno));
}

/* Put the answer @iov (fuse_out_header first, as libfuse writes it) into
 * @e and commit it. */
static ssize_t ent_answer(struct ovl_ring_ent *e, const struct iovec *iov,
			  int count)
{
	struct ovl_uring *u = e->q->u;
	struct fuse_out_header out;
	size_t total = 0, pay = 0;
	char *dst = e->mem + OVL_RING_ROOM;

	memcpy(&out, iov[0].iov_base, sizeof(out));
	for (int i = 0; i < count; i++)
		total += iov[i].iov_len;
	if (total - sizeof(out) > u->payload) {
		/* never: the kernel sized requests, and so answers, to it */
		ovl_log("io_uring: an answer of %zu bytes does not fit", total);
		out.error = -EIO;
		out.len = sizeof(out);
		total = sizeof(out);
	} else {
		for (int i = 0; i < count; i++) {
			const char *p = iov[i].iov_base;
			size_t n = iov[i].iov_len;

			if (i == 0) {
				p += sizeof(out);
				n -= sizeof(out);
			}
			memcpy(dst + pay, p, n);
			pay += n;
		}
	}
	memcpy(e->hdr->in_out, &out, sizeof(out));
	e->hdr->ent.payload_sz = (uint32_t)pay;
	ent_commit(e);
	return (ssize_t)total;
}

static int uring_setup(struct ovl_uring *u);
static void uring_give_up(struct ovl_uring *u);

/*
 * The INIT answer: the payload size comes from it, then the rings are set
 * up, and only if all of that worked does the answer ask for the ring.
 */
static ssize_t init_answer(struct ovl_uring *u, int fd, struct iovec *iov,
			   int count)
{
	struct fuse_out_header *out = iov[0].iov_base;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct fuse_init_out init;
	struct iovec v[2];
	int err;

	if (count != 2 || out->error || iov[1].iov_len != sizeof(init))
		return writev(fd, iov, count);
	memcpy(&init, iov[1].iov_base, sizeof(init));
	if (!(init.flags & FUSE_INIT_EXT))
		return writev(fd, iov, count);
	/* what the kernel sizes its ring's payload by */
	u->payload = RING_MIN_PAYLOAD;
	if (init.max_write > u->payload)
		u->payload = init.max_write;
	if ((size_t)init.max_pages * page > u->payload)
		u->payload = (size_t)init.max_pages * page;
	err = uring_setup(u);
	if (err) {
		ovl_log("io_uring: cannot set the rings up (%s): requests through /dev/fuse",
			strerror(-err));
		uring_give_up(u);
		return writev(fd, iov, count);
	}
	init.flags2 |= (uint32_t)(OVL_INIT_OVER_IO_URING >> 32);
	v[0] = iov[0];
	v[1] = (struct iovec){ &init, sizeof(init) };
	atomic_store(&u->up, true);
	return writev(fd, v, 2);
}

static ssize_t ring_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct ovl_fs *fs = userdata;
	struct ovl_uring *u = fs->uring;
	struct fuse_out_header *out = iov[0].iov_base;
	struct ovl_ring_ent *e;

	if (u && count > 0 && iov[0].iov_len >= sizeof(*out)) {
		uint64_t init = atomic_load(&u->init_unique);

		if (init && out->unique == init) {
			atomic_store(&u->init_unique, 0);
			return init_answer(u, fd, iov, count);
		}
		e = map_take(u, out->unique);
		if (e)
			return ent_answer(e, iov, count);
	}
	return writev(fd, iov, count);
}

static ssize_t ring_read(int fd, void *buf, size_t len, void *userdata)
{
	(void)userdata;
	return read(fd, buf, len);
}

/*
 * Serve the request the kernel put in @e: the in header, the first
 * argument (op_in) and the rest (payload) laid out as one buffer, in the
 * room before the payload.
 */
static void ent_serve(struct ovl_ring_ent *e)
{
	struct ovl_uring *u = e->q->u;
	struct fuse_in_header in;
	size_t pay = e->hdr->ent.payload_sz, arg0;
	struct fuse_buf buf = { 0 };
	char *start;

	memcpy(&in, e->hdr->in_out, sizeof(in));
	e->commit_id = e->hdr->ent.commit_id;
	if (in.len < sizeof(in) + pay || pay > u->payload ||
	    (arg0 = in.len - sizeof(in) - pay) > RING_HDR_OP) {
		struct fuse_out_header out = { .len = sizeof(out),
					       .error = -EIO,
					       .unique = in.unique };
		struct iovec v = { &out, sizeof(out) };

		ovl_log("io_uring: malformed request (opcode %u, len %u, payload %zu)",
			in.opcode, in.len, pay);
		ent_answer(e, &v, 1);
		return;
	}
	start = e->mem + OVL_RING_ROOM - arg0 - sizeof(in);
	memcpy(start, &in, sizeof(in));
	memcpy(start + sizeof(in), e->hdr->op_in, arg0);
	buf.mem = start;
	buf.size = in.len;
	map_add(u, e, in.unique);
	cur_is_ring = true;
	fuse_session_process_buf(u->fs->se, &buf);
	cur_is_ring = false;
}

/* The answers other threads left for @q: queue their commits; q->lock
 * held. */
static void queue_take_pending(struct ovl_ring_queue *q)
{
	while (q->pending) {
		struct ovl_ring_ent *e = q->pending;

		q->pending = e->pnext;
		ent_submit(e, RING_CMD_COMMIT_AND_FETCH);
	}
}

/* Wait for ovl_uring_run(): true to serve, false when given up. */
static bool queue_wait_run(struct ovl_uring *u)
{
	int run;

	pthread_mutex_lock(&u->run_lock);
	while (!u->run)
		pthread_cond_wait(&u->run_cond, &u->run_lock);
	run = u->run;
	pthread_mutex_unlock(&u->run_lock);
	return run > 0;
}

/* One batch of completions; false once the thread must end. */
static bool queue_reap(struct ovl_ring_queue *q, bool *failed)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	bool go_on = true;

	io_uring_for_each_cqe(&q->ring, head, cqe) {
		void *data = io_uring_cqe_get_data(cqe);
		struct ovl_ring_ent *e = data;
		int res = cqe->res;

		n++;
		if (data == &q->efd) {
			pthread_mutex_lock(&q->lock);
			if (q->stopping)
				go_on = false;
			else
				queue_arm_efd(q);
			queue_take_pending(q);
			pthread_mutex_unlock(&q->lock);
			continue;
		}
		if (res == -EINTR || res == -EAGAIN) {
			pthread_mutex_lock(&q->lock);
			ent_submit(e, e->last_cmd);	/* not taken: again */
			pthread_mutex_unlock(&q->lock);
			continue;
		}
		if (res < 0) {
			/* ENOTCONN: unmounted, the entry is gone */
			pthread_mutex_lock(&q->lock);
			q->free--;
			q->total--;
			if (q->total <= 0 && !q->stopping) {
				go_on = false;
				*failed = res != -ENOTCONN && res != -ECONNABORTED;
			}
			pthread_mutex_unlock(&q->lock);
			if (res != -ENOTCONN && res != -ECONNABORTED)
				ovl_log("io_uring: queue %d: an entry ended: %s",
					q->qid, strerror(-res));
			continue;
		}
		pthread_mutex_lock(&q->lock);
		q->free--;
		pthread_mutex_unlock(&q->lock);
		ent_serve(e);
		/* answered at once: out now, not after the batch; answered
		 * later (a lock wait): another entry takes its place */
		pthread_mutex_lock(&q->lock);
		while (q->free < OVL_RING_SPARE && queue_grow(q) == 0)
			;
		queue_submit(q);
		pthread_mutex_unlock(&q->lock);
	}
	io_uring_cq_advance(&q->ring, n);
	return go_on;
}

static void *queue_main(void *arg)
{
	struct ovl_ring_queue *q = arg;
	bool failed = false;
	cpu_set_t cpus;
	int r = 0;

	CPU_ZERO(&cpus);
	CPU_SET(q->qid, &cpus);
	/* best effort: a cpuset may leave this CPU out */
	(void)pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
	cur_queue = q;
	if (!queue_wait_run(q->u))
		goto out;
	pthread_mutex_lock(&q->lock);
	for (struct ovl_ring_ent *e = q->ents; e; e = e->next)
		ent_submit(e, RING_CMD_REGISTER);
	q->free = q->total;
	queue_arm_efd(q);
	pthread_mutex_unlock(&q->lock);
	for (;;) {
		struct io_uring_cqe *cqe;

		pthread_mutex_lock(&q->lock);
		r = queue_submit(q);
		pthread_mutex_unlock(&q->lock);
		if (r < 0) {
			failed = true;
			break;
		}
		r = io_uring_wait_cqe(&q->ring, &cqe);
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r < 0) {
			failed = true;
			break;
		}
		if (!queue_reap(q, &failed))
			break;
	}
out:
	pthread_mutex_lock(&q->lock);
	if (q->ring_up)
		queue_submit(q);	/* what the last batch answered */
	q->dead = true;
	pthread_mutex_unlock(&q->lock);
	if (failed) {
		/* the kernel keeps this CPU's requests for a ring nobody
		 * serves: end the mount rather than hang its callers */
		ovl_log("io_uring: queue %d failed (%s): ending the mount",
			q->qid, r < 0 ? strerror(-r) : "no entry left");
		fuse_session_exit(q->u->fs->se);
	}
	cur_queue = NULL;
	return NULL;
}

/* Everything @q needs but the registration, which its thread does. */
static int queue_setup(struct ovl_uring *u, struct ovl_ring_queue *q)
{
	struct io_uring_params p = { 0 };
	int r;

	q->efd = eventfd(0, EFD_CLOEXEC);
	if (q->efd < 0)
		return -errno;
	p.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE;
	p.cq_entries = OVL_RING_CQ;
	r = io_uring_queue_init_params(OVL_RING_SQ, &q->ring, &p);
	if (r < 0)
		return r;
	q->ring_up = true;
	r = io_uring_register_files(&q->ring, &u->devfd, 1);
	if (r < 0)
		return r;
	for (int i = 0; i < OVL_RING_DEPTH; i++)
		if (!ent_new(q))
			return -ENOMEM;
	r = -pthread_create(&q->tid, NULL, queue_main, q);
	q->started = r == 0;
	return r;
}

/* Every queue ready to register; a negative errno when one is not (then
 * the threads started are told to end, uring_give_up()). */
static int uring_setup(struct ovl_uring *u)
{
	int r = 0;

	for (int i = 0; i < u->nq && r == 0; i++)
		r = queue_setup(u, &u->q[i]);
	return r;
}

/* No ring: the threads waiting to register end without doing it. */
static void uring_give_up(struct ovl_uring *u)
{
	pthread_mutex_lock(&u->run_lock);
	u->run = -1;
	pthread_cond_broadcast(&u->run_cond);
	pthread_mutex_unlock(&u->run_lock);
	for (int i = 0; i < u->nq; i++) {
		struct ovl_ring_queue *q = &u->q[i];

		if (q->started)
			pthread_join(q->tid, NULL);
		q->started = false;
		if (q->ring_up)
			io_uring_queue_exit(&q->ring);
		q->ring_up = false;
	}
}

/* Offered, and the options let overpass serve it (restart off, which
 * restart=auto chooses when this is true: supervisor.c). */
bool ovl_uring_wanted(const struct ovl_fs *fs)
{
	return fs->p->io_uring && fs->p->threaded &&
	       ovl_kernel_has(fs, OVL_INIT_OVER_IO_URING);
}

/*
 * The INIT request @unique was read and the rings are wanted: answers go
 * through ring_writev() from now on.  0, or a negative errno (then
 * /dev/fuse only).
 */
int ovl_uring_prepare(struct ovl_fs *fs, uint64_t unique)
{
	static const struct fuse_custom_io io = {
		.writev = ring_writev,
		.read = ring_read,
	};
	int nq = get_nprocs_conf();
	struct ovl_uring *u;

	if (nq <= 0)
		return -EINVAL;
	u = calloc(1, sizeof(*u) + (size_t)nq * sizeof(u->q[0]));
	if (!u)
		return -ENOMEM;
	u->fs = fs;
	u->nq = nq;
	u->devfd = fuse_session_fd(fs->se);
	u->init_unique = unique;
	pthread_mutex_init(&u->map_lock, NULL);
	pthread_mutex_init(&u->run_lock, NULL);
	pthread_cond_init(&u->run_cond, NULL);
	for (int i = 0; i < nq; i++) {
		u->q[i].u = u;
		u->q[i].qid = i;
		u->q[i].efd = -1;
		pthread_mutex_init(&u->q[i].lock, NULL);
	}
	if (fuse_session_custom_io(fs->se, &io, sizeof(io), u->devfd) < 0) {
		free(u);
		return -ENOTSUP;
	}
	fs->uring = u;
	uring_kept = u;
	return 0;
}

/* The loop starts: the queue threads register their entries. */
void ovl_uring_run(struct ovl_fs *fs)
{
	struct ovl_uring *u = fs->uring;

	if (!u || !atomic_load(&u->up))
		return;
	pthread_mutex_lock(&u->run_lock);
	if (!u->run)
		u->run = 1;
	pthread_cond_broadcast(&u->run_cond);
	pthread_mutex_unlock(&u->run_lock);
}

/*
 * Once unmounted (or the loop ends): end the queue threads.  Nothing is
 * freed: another thread may still be answering through an entry, which
 * then finds its queue dead, until the process exits.
 */
void ovl_uring_stop(struct ovl_fs *fs)
{
	struct ovl_uring *u = fs->uring;

	if (!u)
		return;
	pthread_mutex_lock(&u->run_lock);
	if (!u->run)
		u->run = -1;
	pthread_cond_broadcast(&u->run_cond);
	pthread_mutex_unlock(&u->run_lock);
	for (int i = 0; i < u->nq; i++) {
		struct ovl_ring_queue *q = &u->q[i];
		uint64_t one = 1;

		if (!q->started)
			continue;
		pthread_mutex_lock(&q->lock);
		q->stopping = true;
		pthread_mutex_unlock(&q->lock);
		if (write(q->efd, &one, sizeof(one)) < 0)
			ovl_log("io_uring: cannot stop queue %d: %s", q->qid,
				strerror(errno));
		pthread_join(q->tid, NULL);
		q->started = false;
	}
}

#else /* !HAVE_LIBURING */

bool ovl_uring_current(void)
{
	return false;
}

bool ovl_uring_wanted(const struct ovl_fs *fs)
{
	(void)fs;
	return false;
}

int ovl_uring_prepare(struct ovl_fs *fs, uint64_t unique)
{
	(void)fs;
	(void)unique;
	return -ENOSYS;
}

void ovl_uring_run(struct ovl_fs *fs)
{
	(void)fs;
}

void ovl_uring_stop(struct ovl_fs *fs)
{
	(void)fs;
}

#endif
