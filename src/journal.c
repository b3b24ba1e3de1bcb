// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * restart=on: requests carried out exactly once across a worker's death.
 *
 * A worker killed between a system call and its reply leaves a request the
 * kernel sends again to the next worker (FUSE_NOTIFY_RESEND, bit 63 of the
 * unique set).  Doing a non-idempotent one again (an append, an exclusive
 * create, an unlink, an exchange) would do it twice or fail.  So each such
 * request leaves a record in a table in shared memory, which the
 * supervisor maps before forking its first worker (as nodetab.c's): the
 * handler records an intent with the state before (ovl_journal_intent())
 * right before the call, and the outcome (ovl_journal_result()) right
 * after; recording is memory writes only.  A worker given a resent request
 * finds the record (ovl_journal_resent()) and the handler answers from it,
 * or, with an intent only, from the state before and the state now.
 *
 * The table is a fixed hash of OVL_JOURNAL_SLOTS records keyed by the
 * unique without bit 63.  A record lives while its request is served: the
 * loop (loop.c) binds it to the thread before libfuse dispatches
 * (ovl_journal_begin()) and frees it once answered (ovl_journal_end()).
 * Only the records of requests a dead worker never answered outlive it,
 * a few per death; when the slots a unique hashes to are all taken, the
 * oldest unique among them is reused.
 */
#include "config.h"

#include "overlay.h"

#include <errno.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define OVL_JOURNAL_SLOTS 4096	/* records (a power of two) */
#define OVL_JOURNAL_PROBE 32	/* slots a unique may use */
#define OVL_UNIQUE_RESEND (1ull << 63)

struct ovl_journal {
	int fd;			/* the memfd (kept across exec) */
	struct ovl_jrec *rec;	/* OVL_JOURNAL_SLOTS records, shared */
};

/* The request this thread serves (set by the loop around dispatch). */
static __thread struct {
	uint64_t unique;	/* without bit 63; 0: none */
	bool resent;		/* bit 63 was set */
	struct ovl_jrec *rec;	/* its record, or NULL */
} cur;

static int journal_map(struct ovl_fs *fs, int fd)
{
	size_t len = OVL_JOURNAL_SLOTS * sizeof(struct ovl_jrec);
	struct ovl_journal *j = calloc(1, sizeof(*j));
	void *map;

	if (!j)
		return -ENOMEM;
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		free(j);
		return -errno;
	}
	j->fd = fd;
	j->rec = map;
	fs->journal = j;
	return 0;
}

/* The supervisor, before its first worker: 0 or a negative errno. */
int ovl_journal_create(struct ovl_fs *fs)
{
	int fd = memfd_create("overpass-journal", MFD_CLOEXEC), err;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, OVL_JOURNAL_SLOTS * sizeof(struct ovl_jrec)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	err = journal_map(fs, fd);
	if (err)
		close(fd);
	return err;
}

/* A worker started from a new binary: the supervisor's journal in @fd. */
int ovl_journal_attach(struct ovl_fs *fs, int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if ((size_t)st.st_size < OVL_JOURNAL_SLOTS * sizeof(struct ovl_jrec))
		return -EINVAL;
	return journal_map(fs, fd);
}

int ovl_journal_fd(struct ovl_fs *fs)
{
	return fs->journal ? fs->journal->fd : -1;
}

void ovl_journal_free(struct ovl_fs *fs)
{
	struct ovl_journal *j = fs->journal;

	if (!j)
		return;
	munmap(j->rec, OVL_JOURNAL_SLOTS * sizeof(struct ovl_jrec));
	close(j->fd);
	free(j);
	fs->journal = NULL;
}

static size_t slot_of(uint64_t unique, unsigned i)
{
	return ((size_t)((unique * 0x9e3779b97f4a7c15ull) >> 52) + i) &
	       (OVL_JOURNAL_SLOTS - 1);
}

static struct ovl_jrec *find(struct ovl_journal *j, uint64_t unique)
{
	for (unsigned i = 0; i < OVL_JOURNAL_PROBE; i++) {
		struct ovl_jrec *r = &j->rec[slot_of(unique, i)];

		if (atomic_load(&r->unique) == unique)
			return r;
	}
	return NULL;
}

/* A free slot for @unique, taken; else the oldest of its slots. */
static struct ovl_jrec *take(struct ovl_journal *j, uint64_t unique)
{
	struct ovl_jrec *oldest = NULL;

	for (unsigned i = 0; i < OVL_JOURNAL_PROBE; i++) {
		struct ovl_jrec *r = &j->rec[slot_of(unique, i)];
		uint64_t u = 0;

		if (atomic_compare_exchange_strong(&r->unique, &u, unique))
			return r;
		if (!oldest || u < atomic_load(&oldest->unique))
			oldest = r;
	}
	atomic_store(&oldest->unique, unique);
	return oldest;
}

/*
 * The loop, before libfuse dispatches the request @unique on this thread
 * (libfuse has no getter for it): remember it; a resent request gets the
 * record a dead worker left, if any.
 */
void ovl_journal_begin(struct ovl_fs *fs, uint64_t unique)
{
	cur.unique = unique & ~OVL_UNIQUE_RESEND;
	cur.resent = (unique & OVL_UNIQUE_RESEND) != 0;
	cur.rec = NULL;
	if (cur.resent && fs->journal)
		cur.rec = find(fs->journal, cur.unique);
}

/* The loop, once the request is answered: its record is free again. */
void ovl_journal_end(void)
{
	if (cur.rec) {
		atomic_store(&cur.rec->state, OVL_J_FREE);
		atomic_store(&cur.rec->unique, 0);
	}
	cur.unique = 0;
	cur.resent = false;
	cur.rec = NULL;
}

/*
 * What a dead worker recorded of the resent request this thread serves
 * (state OVL_J_INTENT or OVL_J_DONE), or NULL: not resent, or not
 * recorded (then it never reached its system call).
 */
const struct ovl_jrec *ovl_journal_resent(struct ovl_fs *fs)
{
	if (!fs->journal || !cur.resent || !cur.rec)
		return NULL;
	if (atomic_load(&cur.rec->state) == OVL_J_FREE)
		return NULL;
	return cur.rec;
}

/*
 * Right before the system call that carries out the request: its kind
 * (@op, a FUSE opcode) and what a successor needs to tell whether it took
 * effect (@a, @b: see struct ovl_jrec).  Nothing outside restart=on.
 */
void ovl_journal_intent(struct ovl_fs *fs, uint32_t op, uint64_t a, uint64_t b)
{
	struct ovl_jrec *r = cur.rec;

	if (!fs->journal || !cur.unique)
		return;
	if (!r)
		r = cur.rec = take(fs->journal, cur.unique);
	atomic_store(&r->state, OVL_J_FREE);
	r->opcode = op;
	r->pre[0] = a;
	r->pre[1] = b;
	r->result = 0;
	atomic_store(&r->state, OVL_J_INTENT);
}

/* Right after it: 0, a negative errno, or a byte count. */
void ovl_journal_result(struct ovl_fs *fs, int64_t result)
{
	struct ovl_jrec *r = cur.rec;

	if (!fs->journal || !r || atomic_load(&r->state) != OVL_J_INTENT)
		return;
	r->result = result;
	atomic_store(&r->state, OVL_J_DONE);
}
