// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * FUSE passthrough backing ids.  The kernel keeps one backing file per FUSE
 * inode and refuses an open whose reply names another one (or none) while
 * the inode has passthrough opens, so an inode registers its backing file
 * on the first open, every further open reuses that id, and the last
 * release closes it.  When the kernel or our privileges do not allow
 * passthrough, or one registration fails, the open is served through the
 * daemon and the statistics say why.
 *
 * Stacking: max_backing_stack_depth 0 (kernel depth 1) by default, so a
 * kernel overlayfs can be stacked over an overpass mount; 1 when a layer
 * itself lives on overlayfs or FUSE (containers in containers), where depth
 * 0 would refuse every backing file.
 */
#include "config.h"

#include "overlay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

/* Before mounting: what our options and privileges allow. */
enum ovl_pt_reason ovl_passthrough_precheck(struct ovl_fs *fs)
{
	if (fs->p->passthrough == OVL_PASSTHROUGH_OFF)
		return OVL_PT_DISABLED_BY_OPTION;
	if (!ovl_have_init_cap_sys_admin())
		return OVL_PT_NO_CAP_SYS_ADMIN;
	return OVL_PT_OK;
}

/* At INIT: what the kernel allows. */
void ovl_passthrough_init(struct ovl_fs *fs, struct fuse_conn_info *conn)
{
	fs->passthrough = false;
	if (fs->pt_reason != OVL_PT_OK)
		return;
	if (!fuse_get_feature_flag(conn, FUSE_CAP_PASSTHROUGH) &&
	    !(conn->capable & FUSE_CAP_PASSTHROUGH)) {
		fs->pt_reason = OVL_PT_KERNEL_UNSUPPORTED;
		return;
	}
	if (!fuse_set_feature_flag(conn, FUSE_CAP_PASSTHROUGH)) {
		fs->pt_reason = OVL_PT_KERNEL_UNSUPPORTED;
		return;
	}
	/* passthrough and writeback cache exclude each other */
	fuse_unset_feature_flag(conn, FUSE_CAP_WRITEBACK_CACHE);
	conn->max_backing_stack_depth = fs->any_stacked ?
		FUSE_BACKING_STACKED_OVER : FUSE_BACKING_STACKED_UNDER;
	fs->passthrough = true;
}

/*
 * Whether an open with @flags of a file whose data is @fd goes through the
 * page cache by choice: read-only, a regular file smaller than
 * passthrough_min, and no strictatime (reads the page cache serves never
 * reach the real file).  Its size when it does, else -1.
 */
static off_t small_file(struct ovl_fs *fs, int fd, int flags)
{
	struct stat st;

	if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) ||
	    fs->p->atime == OVL_ATIME_STRICTATIME)
		return -1;
	if (fs->p->passthrough_min == 0 || fstat(fd, &st) < 0 ||
	    !S_ISREG(st.st_mode))
		return -1;
	return (uint64_t)st.st_size < fs->p->passthrough_min ? st.st_size : -1;
}

/*
 * The first open of a new inode through the page cache, read-only, of a
 * file below passthrough_min (small_file()): hand the kernel the file's data
 * with the open (FUSE_NOTIFY_STORE), so the reads that follow find it
 * cached and make no READ, and no READ makes the kernel drop the cached
 * atime, whose next stat(2) would ask us (a small file read cold then
 * costs OPEN and FLUSH, not OPEN, READ, GETATTR and FLUSH).  Called with
 * inode->lock held and no other open of the inode: no read or write of it
 * is in flight, and none can start until the data is stored, so the
 * pages hold what the file holds.  True when the whole file was stored
 * (the open may then keep the cache).
 */
static bool pt_prefill(struct ovl_fs *fs, struct ovl_inode *inode, int fd,
		       int flags)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(0);
	off_t size;
	ssize_t n;
	char *buf;
	int err;

	if (inode->kernel_pages || inode->fallback_users != 1 ||
	    inode->backing_users || (flags & O_DIRECT))
		return false;
	size = small_file(fs, fd, flags);
	if (size <= 0)
		return false;
	buf = malloc(size);
	if (!buf)
		return false;
	n = pread(fd, buf, size, 0);
	/* a file that changed size since: the pages of the kernel's size */
	if (n != size) {
		free(buf);
		return false;
	}
	bv.buf[0].mem = buf;
	bv.buf[0].size = n;
	/*
	 * Written with writev, never spliced: from two pages up libfuse
	 * would vmsplice through a pipe of the calling thread's, made for
	 * this alone and, on a thread libfuse did not start, never freed.
	 */
	err = fuse_lowlevel_notify_store(fs->se, ovl_nodeid(fs, inode), 0, &bv,
					 FUSE_BUF_NO_SPLICE);
	free(buf);
	if (err)
		return false;
	atomic_fetch_add(&fs->stats.prefills, 1);
	return true;
}

/*
 * Attach an open with @flags to @inode: with the inode's backing id,
 * registering @fd (a file of the inode's topmost layer) on the first
 * passthrough open; or through the daemon and the page cache.  The two
 * never mix on one inode, as the kernel would fail the open with EIO.
 * Returns 0 and the id, or the reason (> 0) why this open is served
 * through the daemon, with in @keep_cache whether the kernel's pages of
 * the inode may be kept; or -EAGAIN when the inode's data moved (a
 * copy-up) since @fd was opened from layer @layer: @fd is not its file any
 * more.
 */
int ovl_pt_open(struct ovl_fs *fs, fuse_req_t req, struct ovl_inode *inode,
		int fd, int layer, int flags, int *backing_id, bool *keep_cache)
{
	enum ovl_pt_reason why = fs->pt_reason;
	bool small = fs->passthrough && small_file(fs, fd, flags) >= 0;
	int id;

	pthread_mutex_lock(&inode->lock);
	if (ovl_data_layer(inode) != layer) {
		pthread_mutex_unlock(&inode->lock);
		return -EAGAIN;
	}
	if (fs->passthrough && inode->fallback_users)
		why = OVL_PT_INODE_CACHED; /* stay in the inode's mode */
	else if (small && !inode->backing_id)
		why = OVL_PT_SMALL_FILE;
	else if (fs->passthrough && !inode->backing_id) {
		id = fuse_passthrough_open(req, fd);
		if (id > 0) {
			inode->backing_id = id;
			ovl_nodetab_backing(fs, id, true);
			atomic_fetch_add(&fs->stats.pt_ids, 1);
		} else {
			why = errno == ELOOP ? OVL_PT_STACKING_DEPTH :
					       OVL_PT_REGISTER_FAILED;
			ovl_debug("passthrough registration failed: %s",
				  strerror(errno));
		}
	}
	if (inode->backing_id) {
		inode->backing_users++;
		*backing_id = inode->backing_id;
		why = OVL_PT_OK;
		if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC))
			inode->cache_valid = false;
	} else {
		inode->fallback_users++;
		/* kept unless a writable passthrough open came since the
		 * last open through the page cache */
		*keep_cache = inode->cache_valid ||
			      pt_prefill(fs, inode, fd, flags);
		inode->cache_valid = true;
	}
	inode->kernel_pages = true;
	ovl_nodetab_data(fs, inode);
	pthread_mutex_unlock(&inode->lock);
	if (why == OVL_PT_OK)
		atomic_fetch_add(&fs->stats.pt_opens, 1);
	else
		ovl_stats_fallback(fs, why);
	return why;
}

#ifndef FUSE_DEV_IOC_BACKING_CLOSE
#define FUSE_DEV_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)
#endif

/* Close backing id @id of the connection on @devfd: 0 or -errno. */
int ovl_backing_close(int devfd, uint32_t id)
{
	return ioctl(devfd, FUSE_DEV_IOC_BACKING_CLOSE, &id) < 0 ? -errno : 0;
}

/*
 * One user less of @inode's backing id (@passthrough) or of the daemon's
 * data path; the last one closes the id.  @req may be NULL (restart=on:
 * the open files of a dead worker, which pinned the inode's data path,
 * are all closed).
 */
void ovl_pt_release(struct ovl_fs *fs, fuse_req_t req, struct ovl_inode *inode,
		    bool passthrough)
{
	int id, err;

	(void)req;
	pthread_mutex_lock(&inode->lock);
	if (!passthrough) {
		inode->fallback_users--;
	} else if (--inode->backing_users == 0) {
		id = inode->backing_id;
		inode->backing_id = 0;
		/* closed under the lock: a concurrent open registers anew
		 * and never meets a closed id */
		err = ovl_backing_close(fuse_session_fd(fs->se), (uint32_t)id);
		if (err)
			ovl_log("closing backing id %d: %s", id, strerror(-err));
		ovl_nodetab_backing(fs, id, false);
		atomic_fetch_sub(&fs->stats.pt_ids, 1);
	}
	ovl_nodetab_data(fs, inode);
	pthread_mutex_unlock(&inode->lock);
}
