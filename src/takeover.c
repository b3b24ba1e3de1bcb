// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * restart=on, in a worker: taking over a live mount from a dead worker.
 *
 * Node ids and file handles carry the generation of the worker that made
 * them (OVL_GEN_SHIFT).  The request loop (loop.c) hands each request to
 * ovl_takeover_filter() before libfuse sees it: a node id of a dead worker
 * becomes the id of the inode it stood for (nodetab.c, which proves it is
 * the same object), and a dead worker's file handle becomes a file this
 * worker opens on that inode with the flags the kernel says the open had
 * (adopt_fh()).  Descriptors opened through passthrough keep reading and
 * writing meanwhile: that never needed the daemon.
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
/* 7.45 (6.18): copy_file_range with a 64-bit result, the same arguments
 * as FUSE_COPY_FILE_RANGE; sent first where the daemon's libfuse has it */
#ifndef FUSE_COPY_FILE_RANGE_64
#define FUSE_COPY_FILE_RANGE_64 53
#endif

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
	struct ovl_inode *now;

	if (!ovl_nodeid_stale(fs, *id))
		return true;
	now = ovl_nodetab_current(fs, *id);
	if (!now)
		return false;
	*id = ovl_nodeid_own(fs, now);
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
	case FUSE_COPY_FILE_RANGE_64:
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
	case FUSE_COPY_FILE_RANGE_64:
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
	/* the writeback cache's WRITEs carry no flags: a WRITE writes */
	if (in->opcode == FUSE_WRITE && (flags & O_ACCMODE) == O_RDONLY)
		flags = (flags & ~O_ACCMODE) | O_RDWR;
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
	case FUSE_COPY_FILE_RANGE_64:
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
 * Whether this file knows where each node id and file handle of a request
 * with @opcode is (request_fh(), body_nodeid()).  An opcode a newer kernel
 * added may carry a dead worker's handle where nothing here looks: it is
 * answered ENOSYS, which makes the kernel fall back to the older request
 * (as COPY_FILE_RANGE_64 to COPY_FILE_RANGE), never handed to libfuse.
 */
static bool opcode_known(uint32_t opcode)
{
	switch (opcode) {
	case FUSE_LOOKUP: case FUSE_GETATTR: case FUSE_SETATTR:
	case FUSE_READLINK: case FUSE_SYMLINK: case FUSE_MKNOD:
	case FUSE_MKDIR: case FUSE_UNLINK: case FUSE_RMDIR:
	case FUSE_RENAME: case FUSE_RENAME2: case FUSE_LINK:
	case FUSE_OPEN: case FUSE_READ: case FUSE_WRITE: case FUSE_STATFS:
	case FUSE_RELEASE: case FUSE_FSYNC: case FUSE_SETXATTR:
	case FUSE_GETXATTR: case FUSE_LISTXATTR: case FUSE_REMOVEXATTR:
	case FUSE_FLUSH: case FUSE_OPENDIR: case FUSE_READDIR:
	case FUSE_READDIRPLUS: case FUSE_RELEASEDIR: case FUSE_FSYNCDIR:
	case FUSE_GETLK: case FUSE_SETLK: case FUSE_SETLKW:
	case FUSE_ACCESS: case FUSE_CREATE: case FUSE_TMPFILE:
	case FUSE_IOCTL: case FUSE_POLL: case FUSE_FALLOCATE:
	case FUSE_LSEEK: case FUSE_COPY_FILE_RANGE:
	case FUSE_COPY_FILE_RANGE_64: case FUSE_SYNCFS:
		return true;
	default:
		return false;
	}
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
	case FUSE_NOTIFY_REPLY: /* no answer is sent to it */
		return false;
	default:
		if (opcode_known(in->opcode))
			break;
		reply_now(fs, in, -ENOSYS);
		return true;
	}
	fh = request_fh(in, buf->size);
	id2 = body_nodeid(in, buf->size);
	old_fh = fh && fh_stale(fs, *fh);
	if ((in->opcode == FUSE_COPY_FILE_RANGE ||
	     in->opcode == FUSE_COPY_FILE_RANGE_64) &&
	    buf->size >= sizeof(*in) + sizeof(struct fuse_copy_file_range_in) &&
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

/* The name at @off of a request's body, or NULL if it runs off @size. */
static const char *body_name(const struct fuse_in_header *in, size_t size,
			     size_t off)
{
	const char *p = (const char *)(in + 1) + off;
	size_t room = size - sizeof(*in);

	if (off >= room || !memchr(p, '\0', room - off))
		return NULL;
	return p;
}

/*
 * A request sent again (FUSE_NOTIFY_RESEND sets bit 63 of its unique) that
 * changes a directory may have been carried out by the dead worker, which
 * never answered: a second try that fails (EEXIST, ENOENT) leaves the
 * kernel with the names and listing it cached before, now wrong.  The
 * directories and names it names, as the kernel knows them, are put in
 * @r, to be dropped from the kernel's cache once it is answered: only
 * those, never a wholesale invalidation (a dentry that goes stale detaches
 * what is mounted on it).
 */
static void resent_names(const struct fuse_buf *buf, struct ovl_resent *r)
{
	const struct fuse_in_header *in = buf->mem;
	const uint64_t *id2;
	const char *n0 = NULL;
	size_t off = 0;

	memset(r, 0, sizeof(*r));
	if ((buf->flags & FUSE_BUF_IS_FD) || buf->size < sizeof(*in) ||
	    !(in->unique & (1ull << 63)))
		return;
	switch (in->opcode) {
	case FUSE_CREATE: off = sizeof(struct fuse_create_in); break;
	case FUSE_MKNOD: off = sizeof(struct fuse_mknod_in); break;
	case FUSE_MKDIR: off = sizeof(struct fuse_mkdir_in); break;
	case FUSE_LINK: off = sizeof(struct fuse_link_in); break;
	case FUSE_RENAME: off = sizeof(struct fuse_rename_in); break;
	case FUSE_RENAME2: off = sizeof(struct fuse_rename2_in); break;
	case FUSE_SYMLINK: case FUSE_UNLINK: case FUSE_RMDIR: case FUSE_TMPFILE:
		break;
	default:
		return;
	}
	r->dir[0] = in->nodeid;
	if (in->opcode != FUSE_TMPFILE)
		n0 = body_name(in, buf->size, off);
	r->name[0] = n0;
	if (in->opcode != FUSE_RENAME && in->opcode != FUSE_RENAME2)
		return;
	id2 = body_nodeid((struct fuse_in_header *)in, buf->size);
	if (id2 && n0) {
		r->dir[1] = *id2;
		r->name[1] = body_name(in, buf->size, off + strlen(n0) + 1);
	}
}

/* After the reply to a resent request: what the kernel cached of the
 * directories and names it changed goes (resent_names()). */
void ovl_takeover_done(struct ovl_fs *fs, const struct ovl_resent *r)
{
	for (int i = 0; i < 2; i++) {
		if (!r->dir[i])
			continue;
		if (r->name[i])
			fuse_lowlevel_notify_inval_entry(fs->se, r->dir[i],
							 r->name[i],
							 strlen(r->name[i]));
		fuse_lowlevel_notify_inval_inode(fs->se, r->dir[i], 0, 0);
	}
}

/*
 * A worker taking over a live connection: the backing ids its
 * predecessors registered that no open file of a node id the kernel holds
 * uses are closed (open files keep their own reference), and requests
 * they had read come again (before any thread of ours reads, or a live
 * thread's requests would be served twice).  Nothing the kernel caches is
 * invalidated: it keeps its node ids, which this worker binds to the very
 * objects they named (nodetab.c), so no dentry goes stale and nothing
 * mounted below the overlay is detached.
 */
void ovl_sv_takeover(struct ovl_fs *fs)
{
	struct fuse_out_header oh = { .len = sizeof(oh),
				      .error = FUSE_NOTIFY_RESEND, .unique = 0 };
	int fd = fuse_session_fd(fs->se);
	unsigned closed = ovl_nodetab_close_backing(fs, fd);

	atomic_store(&fs->stats.backing_closed, closed);
	if (write(fd, &oh, sizeof(oh)) < 0)
		ovl_log("restart: cannot ask for pending requests again: %s",
			strerror(errno));
}

/* In a worker of generation @gen, before it serves: its tag, and the ids
 * of its predecessors.  0 or a negative errno. */
int ovl_sv_worker_init(struct ovl_fs *fs, unsigned gen)
{
	fs->gen_tag = (uint64_t)((gen - 1) % 0x7fff + 1) << OVL_GEN_SHIFT;
	atomic_store(&fs->sv->generation, gen);
	if (gen > 1 && fs->nodetab) {
		int err = ovl_nodetab_takeover(fs);

		return err ? err : ovl_locks_takeover(fs);
	}
	return 0;
}

/*
 * Before libfuse sees @buf: true when it was answered here.  @r gets the
 * directories and names to drop from the kernel's cache once it is
 * answered (ovl_takeover_done()); it points into @buf.
 */
bool ovl_takeover_filter(struct ovl_fs *fs, struct fuse_buf *buf,
			 struct ovl_resent *r)
{
	resent_names(buf, r);
	if (!filter_request(fs, buf))
		return false;
	ovl_takeover_done(fs, r);
	return true;
}
