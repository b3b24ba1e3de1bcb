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
 * ring_writev() puts an answer to a ring request into its entry and
 * commits it, from whichever thread answers; everything else (answers to
 * /dev/fuse requests: FORGET-free INTERRUPTs, notifications) goes to
 * /dev/fuse.  The INIT answer is where the ring is asked for
 * (FUSE_OVER_IO_URING); once the kernel has taken it, the entries are
 * registered.  Requests reach the rings once every CPU's queue has one.
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
#define OVL_RING_SQ 64		/* SQ slots: submitted before they run out */
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
	struct ovl_ring_ent *next; /* the queue's entries */
};

struct ovl_ring_queue {
	struct ovl_uring *u;
	int qid;
	struct io_uring ring;
	bool ring_up;
	pthread_mutex_t lock;	/* the SQ, free and ents */
	pthread_t tid;
	bool started;
	int free;		/* registered entries holding no request */
	int total;
	struct ovl_ring_ent *ents;
	int efd;		/* eventfd that ends the thread */
	uint64_t efd_val;
};

struct ovl_uring {
	struct ovl_fs *fs;
	int devfd;
	int nq;
	size_t payload;		/* payload buffer size of every entry */
	_Atomic uint64_t init_unique; /* the INIT request, answered through
				 * us; 0 once answered */
	atomic_bool up;		/* the queues run */
	pthread_mutex_t map_lock;
	struct ovl_ring_ent *map[OVL_RING_MAP]; /* entries holding a request,
				 * by unique */
	struct ovl_ring_queue q[];
};

/* The rings of the mount, once stopped (ovl_uring_stop()). */
static struct ovl_uring *volatile uring_kept;

/* The queue whose thread this is (so its commits wait for its own
 * submit), or NULL. */
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

/* An SQE of @q, submitting what is queued when the SQ is full; q->lock
 * held. */
static struct io_uring_sqe *queue_sqe(struct ovl_ring_queue *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

	if (!sqe) {
		io_uring_submit(&q->ring);
		sqe = io_uring_get_sqe(&q->ring);
	}
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

/* Register one more entry on @q; q->lock held. */
static int queue_grow(struct ovl_ring_queue *q)
{
	struct ovl_uring *u = q->u;
	struct ovl_ring_ent *e = calloc(1, sizeof(*e));
	struct io_uring_sqe *sqe;

	if (!e)
		return -ENOMEM;
	e->q = q;
	e->hdr = calloc(1, sizeof(*e->hdr));
	e->mem = mmap(NULL, OVL_RING_ROOM + u->payload, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	sqe = e->hdr && e->mem != MAP_FAILED ? queue_sqe(q) : NULL;
	if (!sqe) {
		if (e->mem != MAP_FAILED && e->mem)
			munmap(e->mem, OVL_RING_ROOM + u->payload);
		free(e->hdr);
		free(e);
		return -ENOMEM;
	}
	e->iov[0] = (struct iovec){ e->hdr, sizeof(*e->hdr) };
	e->iov[1] = (struct iovec){ e->mem + OVL_RING_ROOM, u->payload };
	sqe_cmd(sqe, e, RING_CMD_REGISTER, 0);
	e->next = q->ents;
	q->ents = e;
	q->free++;
	q->total++;
	return 0;
}

/*
 * Commit the answer in @e's buffers.  The queue's own thread leaves the
 * submit to its next wait (one system call for both); any other thread
 * submits at once.
 */
static void ent_commit(struct ovl_ring_ent *e)
{
	struct ovl_ring_queue *q = e->q;
	struct io_uring_sqe *sqe;

	pthread_mutex_lock(&q->lock);
	sqe = queue_sqe(q);
	if (sqe) {
		sqe_cmd(sqe, e, RING_CMD_COMMIT_AND_FETCH, e->commit_id);
		q->free++;
		if (cur_queue != q)
			io_uring_submit(&q->ring);
	} else {
		ovl_log("io_uring: no SQE to commit an answer on queue %d", q->qid);
	}
	pthread_mutex_unlock(&q->lock);
}

/* Put the answer @iov (fuse_out_header first) into @e and commit it. */
static ssize_t ent_answer(struct ovl_ring_ent *e, const struct iovec *iov,
			  int count)
{
	struct ovl_uring *u = e->q->u;
	struct fuse_out_header out;
	size_t total = 0, pay = 0;
	char *dst = e->mem + OVL_RING_ROOM;

	for (int i = 0; i < count; i++)
		total += iov[i].iov_len;
	if (iov[0].iov_len < sizeof(out) || total - sizeof(out) > u->payload) {
		/* never: libfuse's header comes first, answers fit */
		memset(&out, 0, sizeof(out));
		out.error = -EIO;
		out.len = sizeof(out);
		memcpy(&out.unique, &((struct fuse_out_header *)iov[0].iov_base)->unique,
		       sizeof(out.unique));
		total = sizeof(out);
	} else {
		memcpy(&out, iov[0].iov_base, sizeof(out));
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

static void uring_start(struct ovl_uring *u);

/* The INIT answer asks for the rings; once the kernel took it, start
 * them. */
static ssize_t init_answer(struct ovl_uring *u, int fd, struct iovec *iov,
			   int count)
{
	struct fuse_out_header *out = iov[0].iov_base;
	struct fuse_init_out init;
	struct iovec v[2];
	ssize_t r;

	if (count != 2 || out->error || iov[1].iov_len < sizeof(init) ||
	    iov[1].iov_len > sizeof(init))
		return writev(fd, iov, count);
	memcpy(&init, iov[1].iov_base, sizeof(init));
	if (!(init.flags & FUSE_INIT_EXT))
		return writev(fd, iov, count);
	init.flags2 |= (uint32_t)(OVL_INIT_OVER_IO_URING >> 32);
	v[0] = iov[0];
	v[1] = (struct iovec){ &init, iov[1].iov_len };
	r = writev(fd, v, 2);
	if (r >= 0)
		uring_start(u);
	return r;
}

static ssize_t ring_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct ovl_fs *fs = userdata;
	struct ovl_uring *u = fs->uring;
	struct fuse_out_header *out = iov[0].iov_base;
	struct ovl_ring_ent *e;

	if (u && iov[0].iov_len >= sizeof(*out)) {
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

static int queue_wait_efd(struct ovl_ring_queue *q)
{
	struct io_uring_sqe *sqe = queue_sqe(q);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_read(sqe, q->efd, &q->efd_val, sizeof(q->efd_val), 0);
	io_uring_sqe_set_data(sqe, NULL);
	return 0;
}

static void *queue_main(void *arg)
{
	struct ovl_ring_queue *q = arg;
	bool stop = false;
	cpu_set_t cpus;

	CPU_ZERO(&cpus);
	CPU_SET(q->qid, &cpus);
	/* best effort: a cpuset may leave this CPU out */
	(void)pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
	cur_queue = q;
	while (!stop) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		int r;

		pthread_mutex_lock(&q->lock);
		r = io_uring_submit(&q->ring);
		pthread_mutex_unlock(&q->lock);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			ovl_log("io_uring: queue %d: submit: %s", q->qid, strerror(-r));
			break;
		}
		r = io_uring_wait_cqe(&q->ring, &cqe);
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r < 0) {
			ovl_log("io_uring: queue %d: %s", q->qid, strerror(-r));
			break;
		}
		io_uring_for_each_cqe(&q->ring, head, cqe) {
			struct ovl_ring_ent *e = io_uring_cqe_get_data(cqe);

			n++;
			if (!e) {		/* the eventfd: stop */
				stop = true;
				continue;
			}
			if (cqe->res == -EINTR || cqe->res == -EAGAIN) {
				struct io_uring_sqe *sqe;

				/* not taken: the same command again */
				pthread_mutex_lock(&q->lock);
				sqe = queue_sqe(q);
				if (sqe)
					sqe_cmd(sqe, e, e->last_cmd, e->commit_id);
				pthread_mutex_unlock(&q->lock);
				continue;
			}
			if (cqe->res < 0) {
				/* ENOTCONN: unmounted; the entry is gone */
				pthread_mutex_lock(&q->lock);
				q->free--;
				q->total--;
				pthread_mutex_unlock(&q->lock);
				if (cqe->res != -ENOTCONN && cqe->res != -ECANCELED)
					ovl_log("io_uring: queue %d: entry ended: %s",
						q->qid, strerror(-cqe->res));
				continue;
			}
			pthread_mutex_lock(&q->lock);
			q->free--;
			pthread_mutex_unlock(&q->lock);
			ent_serve(e);
			/* answered later (a lock wait): another entry takes
			 * its place */
			pthread_mutex_lock(&q->lock);
			while (q->free < OVL_RING_SPARE && queue_grow(q) == 0)
				;
			pthread_mutex_unlock(&q->lock);
		}
		io_uring_cq_advance(&q->ring, n);
		if (!stop && q->total <= 0 && atomic_load(&q->u->up)) {
			/* every entry ended: the connection is gone */
			break;
		}
	}
	cur_queue = NULL;
	return NULL;
}

static int queue_setup(struct ovl_uring *u, struct ovl_ring_queue *q)
{
	struct io_uring_params p = { 0 };
	int r;

	q->u = u;
	q->efd = eventfd(0, EFD_CLOEXEC);
	if (q->efd < 0)
		return -errno;
	p.flags = IORING_SETUP_SQE128 | IORING_SETUP_SUBMIT_ALL |
		  IORING_SETUP_CQSIZE;
	p.cq_entries = 4096;	/* more than entries a queue will have */
	r = io_uring_queue_init_params(OVL_RING_SQ, &q->ring, &p);
	if (r < 0)
		return r;
	q->ring_up = true;
	r = io_uring_register_files(&q->ring, &u->devfd, 1);
	if (r < 0)
		return r;
	pthread_mutex_lock(&q->lock);
	for (int i = 0; i < OVL_RING_DEPTH && r == 0; i++)
		r = queue_grow(q);
	if (r == 0)
		r = queue_wait_efd(q);
	/* registered before INIT's caller goes on, as libfuse's rings are */
	if (r == 0 && (r = io_uring_submit(&q->ring)) > 0)
		r = 0;
	pthread_mutex_unlock(&q->lock);
	return r;
}

/* After the kernel took the INIT answer: every queue with its entries and
 * its thread.  A failure leaves requests on /dev/fuse. */
static void uring_start(struct ovl_uring *u)
{
	int r = 0, qid;

	for (qid = 0; qid < u->nq && r == 0; qid++)
		r = queue_setup(u, &u->q[qid]);
	for (int i = 0; i < u->nq && r == 0; i++) {
		struct ovl_ring_queue *q = &u->q[i];

		r = -pthread_create(&q->tid, NULL, queue_main, q);
		q->started = r == 0;
	}
	if (r < 0) {
		ovl_log("io_uring: cannot start the rings (%s): requests through /dev/fuse",
			strerror(-r));
		return;
	}
	atomic_store(&u->up, true);
}

bool ovl_uring_wanted(const struct ovl_fs *fs)
{
	return fs->p->io_uring && fs->p->threaded &&
	       !fs->restart_on &&
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
	/* the largest request or answer: max_write, or max_pages pages */
	u->payload = 256 * (size_t)sysconf(_SC_PAGESIZE);
	u->init_unique = unique;
	pthread_mutex_init(&u->map_lock, NULL);
	for (int i = 0; i < nq; i++) {
		u->q[i].qid = i;
		u->q[i].efd = -1;
		pthread_mutex_init(&u->q[i].lock, NULL);
	}
	fs->uring = u;
	if (fuse_session_custom_io(fs->se, &io, sizeof(io), u->devfd) < 0) {
		fs->uring = NULL;
		free(u);
		return -EIO;
	}
	return 0;
}

bool ovl_uring_up(const struct ovl_fs *fs)
{
	return fs->uring && atomic_load(&fs->uring->up);
}

/* Once unmounted: end the queue threads and the rings. */
void ovl_uring_stop(struct ovl_fs *fs)
{
	struct ovl_uring *u = fs->uring;

	if (!u)
		return;
	for (int i = 0; i < u->nq; i++) {
		struct ovl_ring_queue *q = &u->q[i];
		uint64_t one = 1;

		if (q->started) {
			if (write(q->efd, &one, sizeof(one)) < 0)
				ovl_log("io_uring: cannot stop queue %d: %s",
					q->qid, strerror(errno));
			pthread_join(q->tid, NULL);
		}
	}
	/* answers still to come (lock waits ended at exit) go to /dev/fuse,
	 * which refuses them: the map forgets every entry */
	pthread_mutex_lock(&u->map_lock);
	memset(u->map, 0, sizeof(u->map));
	pthread_mutex_unlock(&u->map_lock);
	for (int i = 0; i < u->nq; i++) {
		struct ovl_ring_queue *q = &u->q[i];

		if (q->ring_up)
			io_uring_queue_exit(&q->ring);
		if (q->efd >= 0)
			close(q->efd);
		for (struct ovl_ring_ent *e = q->ents, *next; e; e = next) {
			next = e->next;
			munmap(e->mem, OVL_RING_ROOM + u->payload);
			free(e->hdr);
			free(e);
		}
		q->ents = NULL;
		q->ring_up = false;
		q->started = false;
		q->efd = -1;
	}
	/*
	 * u itself stays until the process ends: another thread (the reclaim
	 * thread's notifications, an answer to a lock wait ended at exit) may
	 * still be in ring_writev(), which finds no entry and writes to
	 * /dev/fuse.  Kept reachable, it is not a leak.
	 */
	uring_kept = u;
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

bool ovl_uring_up(const struct ovl_fs *fs)
{
	(void)fs;
	return false;
}

void ovl_uring_stop(struct ovl_fs *fs)
{
	(void)fs;
}

#endif
