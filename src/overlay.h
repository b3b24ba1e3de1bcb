/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Cross-file prototypes, grouped by the file that defines them.
 */
#ifndef OVL_OVERLAY_H
#define OVL_OVERLAY_H

#include "ovl_types.h"
#include "util.h"

#include <fcntl.h>
#include <sys/stat.h>

/* Private xattr prefixes: never shown to, nor settable by, mount users. */
#define OVL_XATTR_TRUSTED "trusted.overlay."
#define OVL_XATTR_USER "user.overlay."
#define OVL_STATS_XATTR "user.overpass.stats"

/* Exit statuses of the mount command and the daemon. */
#define EXIT_USAGE 1		/* options or layers refused */
#define EXIT_MOUNT 2		/* the mount could not be made or kept */
/* An xattr of ours in the namespace the upper layer uses. */
#define OVL_XNAME(fs, s) ((fs)->xns == OVL_XNS_TRUSTED ? "trusted." s : "user." s)

/* params.c */
enum ovl_action {
	OVL_ACTION_MOUNT,
	OVL_ACTION_HELP,
	OVL_ACTION_VERSION,
	OVL_ACTION_STATS,
	OVL_ACTION_RESTART,	/* --restart MNT: upgrade a restart=on mount */
};
void ovl_params_init(struct ovl_params *p);
void ovl_params_free(struct ovl_params *p);
int ovl_params_parse(struct ovl_params *p, int argc, char **argv,
		     enum ovl_action *action);
int ovl_params_apply_opts(struct ovl_params *p, const char *optstr);
bool ovl_params_shows_root(const struct ovl_params *p);
int ovl_idmap_parse(const char *opt, const char *val, struct ovl_idmap **out,
		    int *nout);
void ovl_strv_free(char **v);
char *ovl_params_escape(const char *s);
int ovl_params_options_only(int argc, char **argv, char **out);

/* layers.c */
int ovl_layers_open(struct ovl_fs *fs);
int ovl_layers_prepare(struct ovl_fs *fs);
void ovl_layers_close(struct ovl_fs *fs);
uint64_t ovl_layer_map_ino(const struct ovl_fs *fs, int layer, ino_t ino);
char *ovl_layer_relpath(const struct ovl_fs *fs, int layer, int fd);
char *ovl_layers_paths_opt(const struct ovl_fs *fs);

/* stats.c */
enum ovl_op {
	OVL_OP_LOOKUP, OVL_OP_FORGET, OVL_OP_GETATTR, OVL_OP_SETATTR,
	OVL_OP_READLINK, OVL_OP_MKNOD, OVL_OP_MKDIR, OVL_OP_UNLINK,
	OVL_OP_RMDIR, OVL_OP_SYMLINK, OVL_OP_RENAME, OVL_OP_LINK,
	OVL_OP_OPEN, OVL_OP_READ, OVL_OP_WRITE, OVL_OP_STATFS,
	OVL_OP_RELEASE, OVL_OP_FSYNC, OVL_OP_SETXATTR, OVL_OP_GETXATTR,
	OVL_OP_LISTXATTR, OVL_OP_REMOVEXATTR, OVL_OP_FLUSH, OVL_OP_OPENDIR,
	OVL_OP_READDIR, OVL_OP_RELEASEDIR, OVL_OP_FSYNCDIR, OVL_OP_ACCESS,
	OVL_OP_CREATE, OVL_OP_READDIRPLUS, OVL_OP_FALLOCATE, OVL_OP_LSEEK,
	OVL_OP_COPY_FILE_RANGE, OVL_OP_INIT, OVL_OP_TMPFILE, OVL_OP_GETLK,
	OVL_OP_SETLK, OVL_OP_NR,
};
#define ovl_stat_op(fs, which) atomic_fetch_add(&(fs)->stats.op[(which)], 1)
void ovl_stats_fallback(struct ovl_fs *fs, enum ovl_pt_reason why);
void ovl_stats_transport(struct ovl_fs *fs, fuse_req_t req);
const char *ovl_pt_reason_name(enum ovl_pt_reason r);
char *ovl_stats_format(struct ovl_fs *fs);
int ovl_stats_write_file(struct ovl_fs *fs, const char *path);

/* kernel.c: INIT flags (linux/fuse.h of 6.9 and later; spelt out for
 * older headers) */
#define OVL_INIT_EXT (1ULL << 30)		/* flags2 holds bits 32..63 */
#define OVL_INIT_PASSTHROUGH (1ULL << 37)	/* FUSE_PASSTHROUGH, 6.9 */
#define OVL_INIT_HAS_RESEND (1ULL << 39)	/* FUSE_NOTIFY_RESEND works, 6.9 */
#define OVL_INIT_ALLOW_IDMAP (1ULL << 40)	/* idmapped FUSE mounts, 6.12 */
#define OVL_INIT_OVER_IO_URING (1ULL << 41)	/* FUSE over io_uring, 6.14 */
void ovl_kernel_init(struct ovl_fs *fs, const void *init, size_t len);
bool ovl_kernel_has(const struct ovl_fs *fs, uint64_t flag);
void ovl_kernel_say(struct ovl_fs *fs);

/* acl.c */
#define OVL_OVERFLOW_ID 65534u	/* shown for ids outside the mappings */
uint32_t ovl_idmap_apply(const struct ovl_idmap *m, int n, uint32_t id,
			 bool to_disk);
int ovl_acl_map_ids(const struct ovl_params *p, void *value, size_t len,
		    bool to_disk);
int ovl_acl_create_masq(void *acl, size_t len, mode_t *mode);
#define OVL_OVERRIDE_PRIVILEGED "security.fuseoverlayfs.override_stat"
#define OVL_OVERRIDE_CONTAINERS "user.containers.override_stat"
#define OVL_OVERRIDE_USER "user.fuseoverlayfs.override_stat"
int ovl_override_parse(const char *v, size_t len, struct stat *st);
void ovl_override_stat(struct ovl_fs *fs, int layer, int fd, struct stat *st);
int ovl_override_set(struct ovl_fs *fs, int fd, uid_t uid, gid_t gid,
		     mode_t mode);
mode_t ovl_override_real_mode(mode_t mode);
int ovl_fcap_map_rootid(const struct ovl_params *p, void *value, size_t len,
			bool to_disk);

/* A squash option is given: owners shown are not the real ones, and a
 * chown the daemon may not do is skipped (fuse-overlayfs). */
static inline bool ovl_squashing(const struct ovl_params *p)
{
	return p->squash_to_root || p->squash_uid >= 0 || p->squash_gid >= 0;
}

/* index.c */
#define OVL_FH_MAX (21 + MAX_HANDLE_SZ) /* largest origin handle */
int ovl_origin_fh(struct ovl_fs *fs, int layer, int fd, unsigned char *fb,
		  size_t *len);
int ovl_index_name(struct ovl_fs *fs, int layer, int fd, char *name,
		   size_t size);
bool ovl_index_wanted(const struct ovl_fs *fs, const struct stat *st);
int ovl_index_open(struct ovl_fs *fs, int layer, int lowerfd);
nlink_t ovl_index_nlink(struct ovl_fs *fs, int fd, const struct stat *st);
int ovl_index_set_nlink(struct ovl_fs *fs, int fd, long merged);
int ovl_index_adjust(struct ovl_fs *fs, int fd, long d);
int ovl_index_cleanup(struct ovl_fs *fs, int fd);
uint64_t ovl_fb_ino(struct ovl_fs *fs, const unsigned char *fb, size_t n);
uint64_t ovl_origin_fh_ino(struct ovl_fs *fs, int fd);
int ovl_nlink_parse(const char *v, size_t n, long *delta);

/* reclaim.c */
int ovl_reclaim_start(struct ovl_fs *fs);
void ovl_reclaim_stop(struct ovl_fs *fs);
void ovl_reclaim_kick(struct ovl_fs *fs);
bool ovl_reclaim_pressure(struct ovl_fs *fs);
/* A request out of fds tries again this many times, each after
 * ovl_reclaim_wait() (50 ms): 10 s for the kernel's FORGETs to free fds
 * on a busy machine before the caller gets EMFILE. */
#define OVL_RECLAIM_TRIES 200
bool ovl_reclaim_now(struct ovl_fs *fs);
void ovl_reclaim_wait(struct ovl_fs *fs);
bool ovl_fd_retry(struct ovl_fs *fs, int err, int *tries);
bool ovl_fd_retry_bounded(struct ovl_fs *fs, int err, int *tries);
bool ovl_fd_high(struct ovl_fs *fs, int fd);
int ovl_fd_refuse(struct ovl_fs *fs);
int ovl_fd_keep(struct ovl_fs *fs, int fd);

/* inode.c: open handles */
void ovl_handle_add(struct ovl_fs *fs, struct ovl_handle *h,
		    void (*close)(struct ovl_fs *fs, struct ovl_handle *h));
void ovl_handle_del(struct ovl_fs *fs, struct ovl_handle *h);
void ovl_handles_close_all(struct ovl_fs *fs);

/* inode.c */
struct ovl_found {
	int layer;		/* layer of the topmost real file */
	int fd;			/* O_PATH fd of it (ownership passes on) */
	struct stat st;		/* its stat */
	uint64_t ino;		/* st_ino to show, 0 = derive from st */
	bool indexed;		/* found through workdir/index */
	int data_fd;		/* metacopy upper file: its lower data, or -1 */
	struct ovl_dirstack *dirs; /* directories: the merged stack (owned) */
	bool made;		/* the upper entry the request has just made */
	bool upper_none;	/* the upper directory has neither the name
				 * nor its AUFS whiteout (a failed lookup) */
};
int ovl_itable_init(struct ovl_fs *fs);
void ovl_itable_destroy(struct ovl_fs *fs);
struct ovl_inode *ovl_inode_of(struct ovl_fs *fs, fuse_ino_t ino);
fuse_ino_t ovl_nodeid(struct ovl_fs *fs, struct ovl_inode *inode);
fuse_ino_t ovl_nodeid_own(struct ovl_fs *fs, struct ovl_inode *inode);
int ovl_inode_make_root(struct ovl_fs *fs, struct ovl_found *f);
struct ovl_inode *ovl_inode_get_found(struct ovl_fs *fs, struct ovl_found *f,
				      struct ovl_inode *parent, const char *name);
void ovl_inode_moved(struct ovl_fs *fs, struct ovl_inode *inode,
		     struct ovl_inode *newdir, const char *newname);
void ovl_inode_named(struct ovl_fs *fs, struct ovl_inode *inode,
		     struct ovl_inode *dir, const char *name);
void ovl_inode_lru_touch(struct ovl_fs *fs, struct ovl_inode *inode);
void ovl_inode_unhash(struct ovl_fs *fs, struct ovl_inode *inode);
void ovl_inode_rekey(struct ovl_fs *fs, struct ovl_inode *inode, dev_t dev,
		     ino_t ino);
void ovl_inode_forget(struct ovl_fs *fs, struct ovl_inode *inode, uint64_t n);
void ovl_inode_ref(struct ovl_fs *fs, struct ovl_inode *inode);
void ovl_inode_unref(struct ovl_fs *fs, struct ovl_inode *inode);
int ovl_inode_stat(struct ovl_fs *fs, struct ovl_inode *inode,
		   struct stat *st);
void ovl_inode_stat_fill(struct ovl_fs *fs, struct ovl_inode *inode,
			 struct stat *st);
double ovl_attr_timeout(struct ovl_fs *fs, struct ovl_inode *inode);
void ovl_inode_changed(struct ovl_fs *fs, struct ovl_inode *inode);
void ovl_found_release(struct ovl_found *f);
void ovl_dirstack_free(struct ovl_dirstack *ds);
bool ovl_is_upper(const struct ovl_fs *fs, const struct ovl_inode *inode);
unsigned ovl_protection(struct ovl_fs *fs, struct ovl_inode *inode);
unsigned ovl_protattr_parse(const char *v, size_t n);
int ovl_may_write(struct ovl_fs *fs, struct ovl_inode *inode, int flags);
int ovl_kill_sxid(struct ovl_fs *fs, struct ovl_inode *inode);
void ovl_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void ovl_forget_multi(fuse_req_t req, size_t count,
		      struct fuse_forget_data *forgets);
void ovl_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ovl_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		 struct fuse_file_info *fi);
void ovl_readlink(fuse_req_t req, fuse_ino_t ino);
void ovl_access(fuse_req_t req, fuse_ino_t ino, int mask);
void ovl_statfs(fuse_req_t req, fuse_ino_t ino);

/* whiteout.c */
bool ovl_is_whiteout_st(const struct stat *st);
bool ovl_is_xwhiteout(struct ovl_fs *fs, int dirfd, const char *name,
		      const struct stat *st);
bool ovl_is_xwhiteout_fd(struct ovl_fs *fs, int fd, const struct stat *st);
int ovl_aufs_whiteout_at(int dirfd, const char *name);
bool ovl_name_reserved(const char *name);
int ovl_redirect_check(const char *buf, size_t n);
bool ovl_is_metacopy(struct ovl_fs *fs, int fd);
int ovl_dir_markers(struct ovl_fs *fs, int dirfd, bool *opaque,
		    bool *xwhiteouts, char **redirect);
int ovl_get_redirect(struct ovl_fs *fs, int dirfd, char **redirect);
bool ovl_is_private_xattr(const char *name);
bool ovl_marker_trusted(const struct ovl_fs *fs, const char *name);
#define OVL_AUFS_WH ".wh."
#define OVL_AUFS_OPQ ".wh..wh..opq"

/* copy_up.c */
int ovl_copy_up(struct ovl_fs *fs, struct ovl_inode *inode, bool skip_data);
int ovl_set_impure(struct ovl_fs *fs, int dirfd);
int ovl_copy_up_meta(struct ovl_fs *fs, struct ovl_inode *inode);
void ovl_work_name(struct ovl_fs *fs, char *buf, size_t size);

/* dir.c */
void ovl_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		mode_t mode, struct fuse_file_info *fi);
void ovl_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
	       mode_t mode);
void ovl_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
	       mode_t mode, dev_t rdev);
void ovl_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		 const char *name);
void ovl_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void ovl_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void ovl_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		fuse_ino_t newparent, const char *newname, unsigned int flags);
void ovl_tmpfile(fuse_req_t req, fuse_ino_t parent, mode_t mode,
		 struct fuse_file_info *fi);
void ovl_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
	      const char *newname);

/* namei.c */
int ovl_lookup_name(struct ovl_fs *fs, struct ovl_inode *dir, const char *name,
		    struct ovl_inode **out);
int ovl_lookup_new(struct ovl_fs *fs, struct ovl_inode *dir, const char *name,
		   struct ovl_inode **out, bool *upper_none);
int ovl_lookup_made(struct ovl_fs *fs, struct ovl_inode *dir, const char *name,
		    struct ovl_inode **out);
int ovl_lookup_entry(struct ovl_fs *fs, struct ovl_inode *dir,
		     const char *name, int from, struct ovl_inode **out,
		     struct fuse_entry_param *e);
int ovl_fill_entry(struct ovl_fs *fs, struct ovl_inode *inode,
		   struct fuse_entry_param *e);
void ovl_reply_entry(fuse_req_t req, struct ovl_inode *inode, int err);
int ovl_lookup_root(struct ovl_fs *fs);
void ovl_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);

/* readdir.c */
bool ovl_dir_is_empty(struct ovl_fs *fs, struct ovl_inode *inode);
void ovl_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ovl_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		 struct fuse_file_info *fi);
void ovl_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi);
void ovl_listing_release(struct ovl_inode *dir);
void ovl_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		  struct fuse_file_info *fi);

/* passthrough.c */
void ovl_passthrough_init(struct ovl_fs *fs, struct fuse_conn_info *conn);
enum ovl_pt_reason ovl_passthrough_precheck(struct ovl_fs *fs);
int ovl_pt_open(struct ovl_fs *fs, fuse_req_t req, struct ovl_inode *inode,
		int fd, int layer, int flags, int *backing_id, bool *keep_cache);

/* The layer an open of @inode reads its data from: -1 for a metacopy
 * file's lower data; inode lock held. */
static inline int ovl_data_layer(const struct ovl_inode *inode)
{
	return inode->data_fd >= 0 ? -1 : inode->layer;
}
int ovl_backing_close(int devfd, uint32_t id);
void ovl_pt_release(struct ovl_fs *fs, fuse_req_t req, struct ovl_inode *inode,
		    bool passthrough);

/* file.c */
void ovl_writeback_init(struct ovl_fs *fs, struct fuse_conn_info *conn);
struct ovl_file *ovl_file_of(struct fuse_file_info *fi);
int ovl_file_adopt(struct ovl_fs *fs, struct ovl_inode *inode, int flags,
		   uint64_t *fh);
int ovl_open_inode(struct ovl_fs *fs, fuse_req_t req, struct ovl_inode *inode,
		   struct fuse_file_info *fi);
void ovl_release_file(struct ovl_fs *fs, fuse_req_t req,
		      struct fuse_file_info *fi);
void ovl_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ovl_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	      struct fuse_file_info *fi);
void ovl_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv,
		   off_t off, struct fuse_file_info *fi);
void ovl_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ovl_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	       struct fuse_file_info *fi);
void ovl_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
		   off_t length, struct fuse_file_info *fi);
void ovl_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			 struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			 off_t off_out, struct fuse_file_info *fi_out,
			 size_t len, int flags);
void ovl_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
	       struct fuse_file_info *fi);

/* lock.c */
int ovl_locks_init(struct ovl_fs *fs);
int ovl_locks_start(struct ovl_fs *fs);
void ovl_locks_destroy(struct ovl_fs *fs);
int ovl_locks_takeover(struct ovl_fs *fs);
void ovl_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	       struct flock *fl);
void ovl_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	       struct flock *fl, int sleep);
void ovl_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
	       int op);
void ovl_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void ovl_locks_release(struct ovl_fs *fs, struct ovl_inode *inode, uint64_t fh);
void ovl_locks_moved(struct ovl_fs *fs, struct ovl_inode *inode, dev_t dev,
		     ino_t ino);

/* nodetab.c */
int ovl_nodetab_create(struct ovl_fs *fs);
int ovl_nodetab_attach(struct ovl_fs *fs, int fd);
int ovl_nodetab_fd(struct ovl_fs *fs);
void ovl_nodetab_free(struct ovl_fs *fs);
void ovl_nodetab_track(struct ovl_fs *fs, struct ovl_inode *inode);
void ovl_nodetab_rekeyed(struct ovl_fs *fs, struct ovl_inode *inode, bool gone);
void ovl_nodetab_data(struct ovl_fs *fs, struct ovl_inode *inode);
uint64_t ovl_nodetab_slot_id(struct ovl_fs *fs, int s);
void ovl_nodetab_bind(struct ovl_fs *fs, struct ovl_inode *inode,
		      struct ovl_inode *parent, const char *name);
int ovl_nodetab_takeover(struct ovl_fs *fs);
struct ovl_inode *ovl_nodetab_current(struct ovl_fs *fs, uint64_t id);
void ovl_nodetab_forget(struct ovl_fs *fs, uint64_t id, uint64_t n);
void ovl_nodetab_backing(struct ovl_fs *fs, int id, bool add);
unsigned ovl_nodetab_close_backing(struct ovl_fs *fs, int devfd);
/* One lock as nodetab.c records it for the next worker (lock.c). */
struct ovl_lockrec {
	uint64_t dev;		/* the real file it is on: st_dev... */
	uint64_t ino;		/* ...and st_ino (lock.c's key) */
	uint64_t owner;		/* the kernel's lock owner */
	uint64_t fh;		/* the file handle it came through */
	int64_t start;		/* first byte */
	int64_t end;		/* last byte */
	int pid;		/* holder */
	uid_t uid;		/* counted against (lockset.c) */
	int type;		/* F_RDLCK or F_WRLCK */
	bool flock;		/* flock(2) */
};
int ovl_nodetab_lock_put(struct ovl_fs *fs, int rec,
			 const struct ovl_lockrec *r);
void ovl_nodetab_lock_del(struct ovl_fs *fs, int rec);
int ovl_nodetab_locks_each(struct ovl_fs *fs,
			   int (*fn)(struct ovl_fs *fs, int rec,
				     const struct ovl_lockrec *r));

/* journal.c */
enum ovl_jstate {
	OVL_J_FREE = 0,
	OVL_J_INTENT,		/* about to make the system call */
	OVL_J_DONE,		/* made it: result holds its outcome */
};

/* One request in progress that is not idempotent (shared memory). */
struct ovl_jrec {
	_Atomic uint64_t unique; /* the request's unique without bit 63;
				  * 0: free */
	_Atomic uint32_t state;	/* enum ovl_jstate, written last */
	uint32_t opcode;	/* FUSE opcode */
	int64_t result;		/* OVL_J_DONE: 0, a negative errno, or the
				 * bytes a write wrote */
	uint64_t pre[2];	/* the state before, by opcode: WRITE the
				 * file's size and the length; UNLINK, RMDIR
				 * the st_ino shown of what the name held;
				 * RENAME the st_ino shown at the old name
				 * and at the new one (0: none); creates
				 * nothing (the name was free) */
};

int ovl_journal_create(struct ovl_fs *fs);
int ovl_journal_attach(struct ovl_fs *fs, int fd);
int ovl_journal_fd(struct ovl_fs *fs);
void ovl_journal_free(struct ovl_fs *fs);
void ovl_journal_begin(struct ovl_fs *fs, uint64_t unique);
void ovl_journal_end(void);
const struct ovl_jrec *ovl_journal_resent(struct ovl_fs *fs);
void ovl_journal_intent(struct ovl_fs *fs, uint32_t op, uint64_t a, uint64_t b);
void ovl_journal_result(struct ovl_fs *fs, int64_t result);

/* supervisor.c */
#define OVL_RESTART_LIMIT_MAX 64
#define OVL_SV_INIT_MAX 16384	/* the saved INIT request's buffer
				 * (>= FUSE_MIN_READ_BUFFER) */
typedef int (*ovl_serve_fn)(struct ovl_fs *fs, const void *init, size_t len,
			    bool takeover);
int ovl_supervise(struct ovl_fs *fs, ovl_serve_fn serve);

/* takeover.c */
int ovl_sv_worker_init(struct ovl_fs *fs, unsigned gen);
void ovl_sv_takeover(struct ovl_fs *fs);
bool ovl_nodeid_stale(const struct ovl_fs *fs, uint64_t id);
/* What a resent request changed, to drop from the kernel's cache. */
struct ovl_resent {
	uint64_t dir[2];	/* directories as the kernel knows them, or 0 */
	const char *name[2];	/* a name in each, or NULL (in the request) */
};
bool ovl_takeover_filter(struct ovl_fs *fs, struct fuse_buf *buf,
			 struct ovl_resent *r);
void ovl_takeover_done(struct ovl_fs *fs, const struct ovl_resent *r);

/* loop.c */
int ovl_loop(struct ovl_fs *fs);
bool ovl_loop_quiet(struct ovl_fs *fs);

/* uring.c */
bool ovl_uring_wanted(const struct ovl_fs *fs);
int ovl_uring_prepare(struct ovl_fs *fs, uint64_t unique);
void ovl_uring_run(struct ovl_fs *fs);
bool ovl_uring_current(void);
void ovl_uring_stop(struct ovl_fs *fs);

/* xattr.c */
void ovl_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		  size_t size);
void ovl_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void ovl_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		  const char *value, size_t size, int flags);
void ovl_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

static inline struct ovl_fs *ovl_fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

#endif
