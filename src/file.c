// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Regular files: open and release, and the data path for the opens the
 * kernel does not pass through (read by splice from the real file, write
 * from the request buffer), fsync, fallocate and lseek, which the kernel
 * sends to the daemon even for passthrough opens.
 */
#include "config.h"

#include "overlay.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>

/* A handle is the file's address, with restart=on tagged as node ids are
 * (ovl_nodeid()). */
struct ovl_file *ovl_file_of(struct fuse_file_info *fi)
{
	return (struct ovl_file *)(uintptr_t)(fi->fh & ~OVL_GEN_MASK);
}

static bool open_writes(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

static void file_close(struct ovl_fs *fs, fuse_req_t req, struct ovl_file *of)
{
	if (of->upper_fd >= 0)
		close(of->upper_fd);
	ovl_handle_del(fs, &of->h);
	if (!of->adopted)
		ovl_pt_release(fs, req, of->inode,
			       of->mode == OVL_FILE_PASSTHROUGH);
	close(of->fd);
	ovl_inode_unref(fs, of->inode);
	free(of);
}

/* At exit: the connection is gone, and its backing ids with it. */
static void file_close_at_exit(struct ovl_fs *fs, struct ovl_handle *h)
{
	struct ovl_file *of = (struct ovl_file *)h;

	if (of->upper_fd >= 0)
		close(of->upper_fd);
	close(of->fd);
	ovl_inode_unref(fs, of->inode);
	free(of);
}

/*
 * chattr +a and +i hold through the mount (ovl_protection): an immutable
 * file opens for reading only, an append-only one for appending only and
 * never with O_TRUNC, as the kernel's may_open() decides.
 */
int ovl_may_write(struct ovl_fs *fs, struct ovl_inode *inode, int flags)
{
	unsigned prot = ovl_protection(fs, inode);

	if (prot & OVL_PROT_IMMUTABLE)
		return -EPERM;
	if ((prot & OVL_PROT_APPEND) && (!(flags & O_APPEND) || (flags & O_TRUNC)))
		return -EPERM;
	return 0;
}

/*
 * At INIT, once passthrough is decided: the kernel's writeback cache where
 * the page cache serves every open (no passthrough) and the mount is
 * writable, with writeback=1.  The kernel then keeps the size and times
 * of regular files, writes whole pages back at offsets it chooses, and
 * reads to fill a page a write covers in part, whatever the open's mode.
 */
void ovl_writeback_init(struct ovl_fs *fs, struct fuse_conn_info *conn)
{
	fs->writeback_cache = false;
	if (!fs->passthrough && fs->p->writeback && !fs->p->read_only)
		fs->writeback_cache =
			fuse_set_feature_flag(conn, FUSE_CAP_WRITEBACK_CACHE);
	if (!fs->writeback_cache)
		fuse_unset_feature_flag(conn, FUSE_CAP_WRITEBACK_CACHE);
}

/*
 * The flags the real file of an open is opened with.  Under the writeback
 * cache an open for writing also reads (the kernel fills partial pages
 * through it) and never appends: the kernel gives every write its offset,
 * and an O_APPEND descriptor would put a page written back twice at the
 * end twice.  An append-only file (chattr +a) keeps O_APPEND and bypasses
 * the cache (@direct: ovl_open_inode() sets direct_io), so each write
 * appends once, as on the kernel.
 */
static int data_flags(struct ovl_fs *fs, struct ovl_inode *inode, int flags,
		      bool *direct)
{
	*direct = false;
	if (!fs->writeback_cache)
		return flags;
	if (ovl_protection(fs, inode) & OVL_PROT_APPEND) {
		*direct = true;
		return flags;
	}
	if ((flags & O_ACCMODE) == O_WRONLY)
		flags = (flags & ~O_ACCMODE) | O_RDWR;
	return flags & ~O_APPEND;
}

/*
 * Reopen @fd for an open with @flags (data_flags()'s).  Where the daemon
 * may not read a file it may write (a write-only file of an owner a
 * rootless daemon cannot override), the open's own mode: pages the kernel
 * must fill first then fail to write (EIO), the other writes work.
 */
static int reopen_data(int fd, int flags, int asked)
{
	int nfd = ovl_reopen(fd, flags);

	if ((nfd == -EACCES || nfd == -EPERM) &&
	    (flags & O_ACCMODE) != (asked & O_ACCMODE))
		nfd = ovl_reopen(fd, (flags & ~O_ACCMODE) | (asked & O_ACCMODE));
	return nfd;
}

/*
 * Open @inode for the request in @fi: a writable open copies a lower file
 * up first (without its data under O_TRUNC).  The open then shares the
 * inode's backing id, or is served through the daemon.
 *
 * When the lower file is open through passthrough, the copy goes to a new
 * inode and this open fails with ESTALE: the VFS then repeats the lookup
 * (LOOKUP_REVAL), finds the upper file under a new node id and opens that.
 * So does every later open through a name still on the old node id (the
 * other names of a hard link) while its lower backing file lives; after
 * that the old node id opens the upper file like the new one.
 */
int ovl_open_inode(struct ovl_fs *fs, fuse_req_t req, struct ovl_inode *inode,
		   struct fuse_file_info *fi)
{
	struct ovl_file *of;
	int fd, err, layer, backing_id = 0;
	enum ovl_pt_reason why;
	bool stale, keep_cache = false, direct;
	int flags = data_flags(fs, inode,
			       fi->flags & ~(O_CREAT | O_EXCL | O_NOCTTY), &direct);

	/* superseded: its backing file is the lower one, for older opens;
	 * the lookup the kernel repeats finds the new inode */
	pthread_mutex_lock(&inode->lock);
	stale = inode->superseded && inode->backing_id;
	pthread_mutex_unlock(&inode->lock);
	if (stale)
		return -ESTALE;
	if (open_writes(fi->flags)) {
		if (fs->p->read_only)
			return -EROFS;
		err = ovl_may_write(fs, inode, fi->flags);
		if (!err)
			err = ovl_copy_up(fs, inode, (fi->flags & O_TRUNC) != 0);
		/* O_TRUNC by a caller without CAP_FSETID (KILLPRIV_V2): the
		 * file is emptied below, so its setuid and setgid go now */
		if (!err && fi->kill_suidgid && (fi->flags & O_TRUNC))
			err = ovl_kill_sxid(fs, inode);
		if (err)
			return err;
	}
	for (int tries = 0;; tries++) {
		/* a metacopy file not written yet reads its lower data */
		pthread_mutex_lock(&inode->lock);
		/* superseded while this open copied up or waited */
		if (inode->superseded && inode->backing_id) {
			pthread_mutex_unlock(&inode->lock);
			return -ESTALE;
		}
		fd = reopen_data(inode->data_fd >= 0 ? inode->data_fd :
				 inode->fd, flags, fi->flags);
		layer = ovl_data_layer(inode);
		pthread_mutex_unlock(&inode->lock);
		fd = ovl_fd_keep(fs, fd);
		if (fd < 0)
			return fd;
		/* a copy-up between the reopen and the registration would
		 * give the upper inode the lower file as its backing file,
		 * and every writable open of it would fail (EIO) */
		why = ovl_pt_open(fs, req, inode, fd, layer, fi->flags,
				  &backing_id, &keep_cache);
		if ((int)why >= 0)
			break;
		close(fd);
		if (tries == 3)
			return -EIO;
	}
	of = calloc(1, sizeof(*of));
	if (!of) {
		ovl_pt_release(fs, req, inode, why == OVL_PT_OK);
		close(fd);
		return -ENOMEM;
	}
	of->inode = inode;
	of->fd = fd;
	of->layer = layer;
	of->upper_fd = -1;
	of->appends = (flags & O_APPEND) != 0;
	ovl_inode_ref(fs, inode);
	if (why == OVL_PT_OK) {
		of->mode = OVL_FILE_PASSTHROUGH;
		fi->backing_id = backing_id;
		fi->keep_cache = 0; /* EIO with a backing id */
	} else {
		of->mode = OVL_FILE_CACHED;
		/* lower files never change; the upper only through us, and
		 * through the page cache but for passthrough writes */
		fi->keep_cache = keep_cache;
		if (direct)
			fi->direct_io = 1;
	}
	/* FLUSH carries the owner whose record locks a close drops */
	fi->noflush = 0;
	fi->fh = (uintptr_t)of | fs->gen_tag;
	ovl_handle_add(fs, &of->h, file_close_at_exit);
	return 0;
}

void ovl_release_file(struct ovl_fs *fs, fuse_req_t req,
		      struct fuse_file_info *fi)
{
	ovl_locks_release(fs, ovl_file_of(fi)->inode, fi->fh);
	file_close(fs, req, ovl_file_of(fi));
}

/*
 * restart=on: a file of this worker for a descriptor a dead worker opened
 * on @inode, with the open's @flags where the request tells them (READ and
 * WRITE do), O_RDONLY otherwise.  It is served through the daemon and
 * attached to no backing id: a passthrough descriptor keeps its backing
 * file in the kernel and only sends the requests that need a file here
 * (fsync, fallocate, lseek, locks).  Returns its handle in @fh.
 */
int ovl_file_adopt(struct ovl_fs *fs, struct ovl_inode *inode, int flags,
		   uint64_t *fh)
{
	struct ovl_file *of;
	int fd, err, layer, dflags;
	bool direct;

	/* an O_TMPFILE open's flags name a directory (O_DIRECTORY in it) */
	flags &= ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_TMPFILE);
	dflags = data_flags(fs, inode, flags, &direct);
	if (open_writes(flags)) {
		/* copied up when it was opened, unless the worker died in
		 * that copy-up: never write a lower layer */
		err = fs->p->read_only ? -EROFS : ovl_copy_up(fs, inode, false);
		if (err)
			return err;
	}
	pthread_mutex_lock(&inode->lock);
	fd = reopen_data(inode->data_fd >= 0 && !open_writes(flags) ?
			 inode->data_fd : inode->fd, dflags, flags);
	layer = ovl_data_layer(inode);
	pthread_mutex_unlock(&inode->lock);
	if (fd < 0)
		return fd;
	of = calloc(1, sizeof(*of));
	if (!of) {
		close(fd);
		return -ENOMEM;
	}
	ovl_inode_ref(fs, inode);
	of->inode = inode;
	of->fd = fd;
	of->layer = layer;
	of->upper_fd = -1;
	of->mode = OVL_FILE_CACHED;
	of->adopted = true;
	of->appends = (dflags & O_APPEND) != 0;
	ovl_handle_add(fs, &of->h, file_close_at_exit);
	*fh = (uintptr_t)of | fs->gen_tag;
	return 0;
}

void ovl_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	int err, tries = 0;

	ovl_stat_op(fs, OVL_OP_OPEN);
	do
		err = ovl_open_inode(fs, req, ovl_inode_of(fs, ino), fi);
	while (ovl_fd_retry(fs, err, &tries));
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	if (fuse_reply_open(req, fi) == -ENOENT)
		ovl_release_file(fs, req, fi); /* the opener was interrupted */
}

/*
 * The file a daemon-served descriptor reads: the one it opened, or, once
 * its inode was copied up (in place: no backing file pinned it), the upper
 * copy, as kernel overlayfs reads the new data through an old descriptor.
 * The copy is opened on the first read after the copy-up and kept.
 */
static int read_fd(struct ovl_file *of)
{
	struct ovl_inode *inode = of->inode;
	int fd = of->upper_fd, expected = -1;

	if (fd >= 0 || of->layer == 0 || inode->superseded)
		return fd >= 0 ? fd : of->fd;
	pthread_mutex_lock(&inode->lock);
	if (inode->layer == 0 && inode->data_fd < 0)
		fd = ovl_reopen(inode->fd, O_RDONLY);
	pthread_mutex_unlock(&inode->lock);
	if (fd < 0)
		return of->fd;
	if (!atomic_compare_exchange_strong(&of->upper_fd, &expected, fd)) {
		close(fd); /* another read opened it first */
		fd = expected;
	}
	return fd;
}

void ovl_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	      struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	ovl_stat_op(ovl_fs_of(req), OVL_OP_READ);
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = read_fd(ovl_file_of(fi));
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

/*
 * restart=on, a write through a descriptor opened O_APPEND (a write at an
 * offset is idempotent): the file's size before and the length go in the
 * journal, so that the next worker, given it again, can tell that the dead
 * one wrote it (the kernel holds the inode locked across the request: no
 * other write through the mount came between).  The bytes written, or a
 * negative errno.
 */
static ssize_t write_append_once(struct ovl_fs *fs, struct fuse_bufvec *out,
				 struct fuse_bufvec *in)
{
	const struct ovl_jrec *r = ovl_journal_resent(fs);
	size_t len = fuse_buf_size(in);
	struct stat st;
	ssize_t n;

	if (r && r->state == OVL_J_DONE) {
		atomic_fetch_add(&fs->stats.once, 1);
		return (ssize_t)r->result;
	}
	if (fstat(out->buf[0].fd, &st) < 0)
		return fuse_buf_copy(out, in, 0);
	if (r && r->pre[1] == len && (uint64_t)st.st_size == r->pre[0] + len) {
		atomic_fetch_add(&fs->stats.once, 1);
		return (ssize_t)len;
	}
	ovl_journal_intent(fs, FUSE_WRITE, (uint64_t)st.st_size, len);
	n = fuse_buf_copy(out, in, 0);
	ovl_journal_result(fs, n);
	return n;
}

void ovl_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv,
		   off_t off, struct fuse_file_info *fi)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(bufv));
	ssize_t n;

	ovl_stat_op(fs, OVL_OP_WRITE);
	/* a write by a caller without CAP_FSETID (KILLPRIV_V2; only to a
	 * file with setuid or setgid, the kernel asks no more) */
	if (fi->kill_suidgid) {
		int err = ovl_kill_sxid(fs, ovl_file_of(fi)->inode);

		if (err) {
			fuse_reply_err(req, -err);
			return;
		}
	}
	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = ovl_file_of(fi)->fd;
	out.buf[0].pos = off;
	if (fs->journal && ovl_file_of(fi)->appends)
		n = write_append_once(fs, &out, bufv);
	else
		n = fuse_buf_copy(&out, bufv, 0);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

void ovl_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ovl_fs *fs = ovl_fs_of(req);

	ovl_stat_op(fs, OVL_OP_RELEASE);
	ovl_release_file(fs, req, fi);
	fuse_reply_err(req, 0);
}

void ovl_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	       struct fuse_file_info *fi)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	struct ovl_file *of = ovl_file_of(fi);
	int fd = of->fd, err = 0;

	ovl_stat_op(fs, OVL_OP_FSYNC);
	/* opened before a copy-up: the file is the upper copy now */
	if (of->inode->superseded)
		fd = ovl_reopen(of->inode->fd, O_RDONLY);
	if (fd < 0)
		err = -fd;
	else if (fs->p->fsync && (datasync ? fdatasync(fd) : fsync(fd)) < 0)
		err = errno;
	if (fd >= 0 && fd != of->fd)
		close(fd);
	fuse_reply_err(req, err);
}

void ovl_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
		   off_t length, struct fuse_file_info *fi)
{
	int err = 0;

	ovl_stat_op(ovl_fs_of(req), OVL_OP_FALLOCATE);
	if (fallocate(ovl_file_of(fi)->fd, mode, offset, length) < 0)
		err = errno;
	fuse_reply_err(req, err);
}

/*
 * SEEK_DATA and SEEK_HOLE (the kernel answers the rest itself).  Under the
 * writeback cache the kernel may hold written pages the real file has not
 * got yet, and sends LSEEK without writing them first: the real file's
 * holes would hide that data.  ENOSYS makes the kernel answer every later
 * one itself, the whole file as data (SEEK_HOLE at its end), as on a
 * filesystem without holes.
 */
void ovl_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
	       struct fuse_file_info *fi)
{
	struct ovl_fs *fs = ovl_fs_of(req);
	off_t r;

	ovl_stat_op(fs, OVL_OP_LSEEK);
	if (fs->writeback_cache) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	r = lseek(ovl_file_of(fi)->fd, off, whence);
	if (r < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, r);
}

/*
 * copy_file_range between two open files: the real files do it, so a
 * filesystem that can share extents (or copy inside the server) does.
 */
void ovl_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			 struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			 off_t off_out, struct fuse_file_info *fi_out,
			 size_t len, int flags)
{
	loff_t in = off_in, out = off_out;
	ssize_t n;

	ovl_stat_op(ovl_fs_of(req), OVL_OP_COPY_FILE_RANGE);
	n = copy_file_range(ovl_file_of(fi_in)->fd, &in,
			    ovl_file_of(fi_out)->fd, &out, len, (unsigned)flags);
	if (n < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_write(req, (size_t)n);
}
