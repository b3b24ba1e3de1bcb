/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Shared structures of overpass: the mounted filesystem (struct ovl_fs), its
 * layers, overlay inodes, directory layer stacks and open file handles.
 *
 * Lock order (outer first): ovl_inode.lock, then ovl_fs.itable_lock.
 * Statistics counters are atomics and take no lock.
 */
#ifndef OVL_TYPES_H
#define OVL_TYPES_H

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Which xattr prefix carries the overlay markers we write. */
enum ovl_xattr_ns {
	OVL_XNS_TRUSTED, /* trusted.overlay.* (privileged, kernel default) */
	OVL_XNS_USER,	 /* user.overlay.* (kernel "userxattr") */
};

/* Why an open is not passed through (statistics and man page). */
enum ovl_pt_reason {
	OVL_PT_OK,
	OVL_PT_DISABLED_BY_OPTION,
	OVL_PT_NO_CAP_SYS_ADMIN,
	OVL_PT_KERNEL_UNSUPPORTED,
	OVL_PT_STACKING_DEPTH,
	OVL_PT_REGISTER_FAILED,
	OVL_PT_SMALL_FILE,	/* read-only, below passthrough_min (by choice) */
	OVL_PT_INODE_CACHED,	/* another open of the inode uses the page
				 * cache (the kernel allows one mode at once) */
	OVL_PT_NR,
};

/*
 * passthrough_min's default: a read-only open of a smaller file uses the
 * page cache (one READ, the kernel's readahead window, when cold; none when
 * warm) rather than a backing id, whose reads make the kernel drop the
 * cached atime, so the next stat(2) asks the daemon (doc/performance.md).
 */
#define OVL_PASSTHROUGH_MIN (128 * 1024)

enum ovl_passthrough_mode {
	OVL_PASSTHROUGH_AUTO,
	OVL_PASSTHROUGH_ON,
	OVL_PASSTHROUGH_OFF,
};

/* One id-mapping range of uidmapping=/gidmapping=. */
struct ovl_idmap {
	uint32_t inner; /* first id seen through the mount */
	uint32_t outer; /* first id on disk */
	uint32_t count; /* length of the range */
};

/* Access time policy of the mount, applied as mount attributes. */
enum ovl_atime {
	OVL_ATIME_DEFAULT,	/* none given: the kernel's default (relatime) */
	OVL_ATIME_NOATIME,	/* noatime */
	OVL_ATIME_RELATIME,	/* relatime, atime, norelatime */
	OVL_ATIME_STRICTATIME,	/* strictatime */
};

/* restart=: whether a supervisor keeps the mount (supervisor.c) */
enum ovl_restart_mode {
	OVL_RESTART_AUTO,	/* auto (default): where the kernel can resend
				 * and the transport is /dev/fuse */
	OVL_RESTART_ON,		/* on: always, io_uring off */
	OVL_RESTART_OFF,	/* off: the daemon serves the mount itself */
};

/* Why restart is on or off, for the log and --stats (restart.reason). */
enum ovl_restart_reason {
	OVL_RR_OPTION,		/* restart=on or restart=off said so */
	OVL_RR_AUTO,		/* auto: the kernel can resend, /dev/fuse */
	OVL_RR_NO_RESEND,	/* auto: the kernel's INIT lacks FUSE_HAS_RESEND */
	OVL_RR_IO_URING,	/* auto: FUSE over io_uring is offered and wanted */
};

/*
 * redirect_dir=, with the kernel's meanings: whether renaming a merged or
 * lower directory writes a redirect (else EXDEV, and mv(1) copies), and
 * whether redirects found in the layers are followed (else a lookup
 * meeting one fails with EPERM).  "off" is "follow", as on a kernel with
 * redirect_always_follow (its default).
 */
enum ovl_redirect_mode {
	OVL_REDIRECT_FOLLOW,	/* follow, never write (default) */
	OVL_REDIRECT_NOFOLLOW,	/* neither follow nor write */
	OVL_REDIRECT_ON,	/* follow and write */
};

/* Parsed mount options; owned by struct ovl_fs, freed by ovl_params_free. */
struct ovl_params {
	char **lowerdirs;	/* lower layer paths, topmost first */
	int nlower;		/* number of lowerdirs */
	char *upperdir;		/* upper layer path or NULL (read-only mount) */
	char *workdir;		/* work directory path or NULL */
	char *mountpoint;	/* where to mount */
	char *statsfile;	/* where to write statistics at exit, or NULL */
	char *fuse_opts;	/* comma list handed to libfuse's mount code */
	bool foreground;	/* -f or -d */
	bool debug;		/* -d: trace each request */
	bool read_only;		/* ro given, or no upperdir */
	double timeout;		/* entry/attr cache timeout in seconds */
	bool threaded;		/* multi-threaded request loop */
	bool fsync;		/* honour fsync (off with fsync=0 or volatile) */
	bool writeback;		/* writeback=: ask for the kernel's writeback
				 * cache when passthrough is not in use */
	int noxattrs;		/* 0: xattrs served; 1 or 2: every xattr request
				 * fails with ENOTSUP (fuse-overlayfs's meaning) */
	unsigned max_read;	/* max_read=: largest READ request, 0 = default */
	uint64_t passthrough_min; /* passthrough_min=: a read-only open of a
				 * smaller file is served from the page cache */
	enum ovl_atime atime;	/* last of atime/noatime/relatime/strictatime */
	int diratime;		/* -1 nodiratime, 1 diratime, 0 not given */
	bool metacopy;		/* metacopy=on: metadata-only copy-up */
	enum ovl_redirect_mode redirect; /* redirect_dir= */
	bool redirect_given;	/* redirect_dir= was given */
	int xino;		/* -1 auto, 0 off, 1 on */
	bool ino32;		/* ino32_t: fold inode numbers into 32 bits */
	bool static_nlink;	/* report st_nlink 1 for directories */
	bool noacl;		/* POSIX ACLs not supported */
	bool userxattr;		/* userxattr: overlay markers in user.overlay.*
				 * even on a root mount (kernel meaning) */
	int xattr_permissions;	/* fuse-overlayfs xattr_permissions= (0,1,2) */
	bool squash_to_root;	/* every file appears owned by root */
	long squash_uid;	/* -1 or uid every file appears owned by */
	long squash_gid;	/* -1 or gid every file appears owned by */
	struct ovl_idmap *uidmap; /* uidmapping= ranges */
	int nuidmap;		/* number of uidmap ranges */
	struct ovl_idmap *gidmap; /* gidmapping= ranges */
	int ngidmap;		/* number of gidmap ranges */
	enum ovl_passthrough_mode passthrough; /* passthrough= */
	bool io_uring;		/* io_uring=auto: take FUSE over io_uring
				 * when the kernel offers it */
	enum ovl_restart_mode restart; /* restart=: a supervisor keeps the
				 * mount and restarts a worker that dies
				 * (supervisor.c); /dev/fuse only */
	int restart_limit;	/* deaths within a minute that end the mount,
				 * 0 = never */
	bool allow_other_given;	/* user asked for allow_other/allow_root */
	bool default_permissions_given; /* user asked for default_permissions */
	int suid;		/* 1 suid, 0 nosuid (the last one given), -1
				 * neither: main.c adds its default */
	int nsuid;		/* how many times suid was given */
	bool suid_last;		/* the last option read was suid */
	bool nodev_given;	/* nodev or dev given: no default added */
};

/* One layer: its root directory, held open for the life of the mount. */
struct ovl_layer {
	int idx;		/* 0 = topmost (upper if present) */
	bool is_upper;		/* the writable layer */
	const char *path;	/* path given on the command line (for messages) */
	char *canon;		/* its canonical path (owned) */
	char *clone_rel;	/* its path below a read-only clone shared with
				 * the other layers on its mount ("/" for the
				 * mount's root), or NULL (owned) */
	int root_fd;		/* O_PATH|O_DIRECTORY fd of the root (possibly on a
				 * private read-only clone of the mount) */
	bool ro_mount;		/* root_fd lives on a read-only detached mount */
	dev_t dev;		/* st_dev of the root */
	unsigned fsid;		/* its filesystem: 0 the upper's, then 1, 2... (xino) */
	bool stacked;		/* lives on overlayfs or FUSE */
	unsigned char uuid[16];	/* its filesystem's UUID, zeros if none (as
				 * the kernel puts in origin file handles) */
	const char *override;	/* xattr holding "uid:gid:mode" of its files
				 * and directories (fuse-overlayfs
				 * override_stat), or NULL */
};

/* The layers a directory merges, topmost first, stopping at an opaque one. */
struct ovl_listing; /* readdir.c */

struct ovl_dirstack {
	int n;			/* entries used */
	struct ovl_dirlayer {
		int layer;	/* layer index */
		int fd;		/* O_RDONLY|O_DIRECTORY fd of that layer's dir */
		bool xwhiteouts; /* opaque "x": may hold xattr whiteouts */
	} d[];
};

/*
 * An overlay inode: what one name resolves to across the layers.  Keyed in
 * the inode table by (dev, ino) of its topmost real file.
 *
 * layer, fd and dirs change once, when a copy-up moves the inode to the
 * upper layer (under lock); a reader that still sees the old value uses an
 * fd that stays open until the inode is freed (origin_fd, old_dirs).
 */
struct ovl_inode {
	dev_t key_dev;		/* table key: st_dev of the topmost real file */
	ino_t key_ino;		/* table key: st_ino of the topmost real file */
	mode_t type;		/* S_IFMT bits (immutable) */
	uint64_t ino;		/* st_ino shown to users (immutable) */
	uint64_t lock_dev;	/* its locks' key (lock.c): st_dev and st_ino */
	uint64_t lock_ino;	/* of its topmost real file, moved by a
				 * copy-up; under the lock table's lock */
	int layer;		/* layer index of the topmost real file */
	int fd;			/* O_PATH fd of the topmost real file; for a
				 * directory the O_RDONLY fd dirs->d[0].fd */
	struct ovl_dirstack *dirs; /* directories: merged layer stack */
	bool merged;		/* directory with more than one layer */
	bool byname;		/* found only by the name it was made for (a
				 * lower hard link without an index); itable_lock */
	bool indexed;		/* its upper file is in workdir/index (a lower
				 * file with several links, copied up) */
	int data_fd;		/* metacopy: O_PATH fd of the lower file that
				 * holds the data (fd holds only metadata), or
				 * -1; guarded by lock */
	int origin_fd;		/* after copy-up: the former topmost fd, or -1 */
	struct ovl_dirstack *old_dirs; /* stack replaced by a copy-up, or NULL */

	struct ovl_inode *parent; /* directory of the name it was found by
				   * (holds an nref on it); itable_lock */
	char *name;		/* that name; itable_lock */

	uint64_t nlookup;	/* kernel lookup count; itable_lock */
	uint64_t nref;		/* our own references (open files, children);
				 * itable_lock */
	struct ovl_inode *hnext; /* hash chain; itable_lock */
	struct ovl_inode *lru_prev; /* least recently looked up first, for */
	struct ovl_inode *lru_next; /* reclaim.c; itable_lock */

	pthread_mutex_t lock;	/* copy-up and the fields below */
	int backing_id;		/* passthrough backing id, 0 if none */
	unsigned backing_users;	/* opens using backing_id */
	unsigned fallback_users; /* opens served through the daemon */
	bool cache_valid;	/* the kernel's page cache of it holds its data:
				 * false when new (restart=on: a dead worker's
				 * id may have pages), and after a writable
				 * passthrough open, which writes the backing
				 * file beside that cache */
	bool kernel_pages;	/* the kernel may hold pages of it: it was
				 * opened, or bound to a dead worker's id;
				 * false for a new inode (no page to be
				 * stale, so the first open may fill the
				 * page cache, ovl_pt_prefill) */
	bool removed;		/* its name went while it was lower only: a
				 * copy-up has no name to go to (ESTALE: the
				 * kernel looks the path up again); lock */
	bool superseded;	/* copied up into a new inode while its lower
				 * file was open through passthrough: out of
				 * the table, fd is the upper file (metadata
				 * requests act on it), the lower file is
				 * origin_fd, opens get ESTALE while the lower
				 * backing id lives */
	struct ovl_listing *listing; /* directories: the merged listing the
				 * reads continuing from an offset use
				 * (readdir.c), or NULL */
	int slot;		/* restart=on: its node id's slot in the table
				 * of nodetab.c, or -1; itable_lock */
	int oldslot;		/* restart=on: the slot of a dead worker's id
				 * it is bound to (the id the kernel knows it
				 * by, nodetab.c), or -1; itable_lock */
	uint64_t olddead;	/* restart=on: that id's lookups the dead
				 * workers counted, not forgotten yet;
				 * itable_lock */
	int pinned;		/* restart=on: the dead worker's open files
				 * hold a backing user (1) or a fallback user
				 * (-1) of it until the old id is forgotten */
	atomic_int prot;	/* OVL_PROT_* flags it carries, -1 until first
				 * asked (ovl_protection), 0 from the start
				 * for what a request made; they never change
				 * while mounted, copy-up included */
	atomic_uint fcap;	/* security.capability: bit 0 set when known
				 * absent, the other bits count its changes
				 * (xattr.c) */
};

/* chattr flags that hold through the mount (chattr +a, +i). */
#define OVL_PROT_APPEND 1
#define OVL_PROT_IMMUTABLE 2

/* How an open file's data travels. */
enum ovl_file_mode {
	OVL_FILE_PASSTHROUGH,	/* the kernel reads the backing file itself */
	OVL_FILE_CACHED,	/* through the daemon, page cache kept */
};

/* A handle for an open regular file. */
struct ovl_fs;
struct ovl_nodetab;
struct ovl_journal;
struct ovl_pool;
struct ovl_uring;

/*
 * An open file or directory, linked into ovl_fs.handles while the kernel
 * holds it, so that what the kernel never released (the daemon was told to
 * stop) is freed at exit.
 */
struct ovl_handle {
	struct ovl_handle *prev; /* list neighbours, under fs->handles_lock */
	struct ovl_handle *next;
	void (*close)(struct ovl_fs *fs, struct ovl_handle *h); /* at exit */
};

struct ovl_file {
	struct ovl_handle h;	/* in fs->handles; first member */
	struct ovl_inode *inode; /* holds an nref on it */
	int fd;			/* real file opened with the caller's flags */
	int layer;		/* the inode's layer when fd was opened (-1:
				 * a metacopy's lower data) */
	_Atomic int upper_fd;	/* served through the daemon and opened before
				 * a copy-up: the upper file, opened for reads
				 * on first use (-1 until then) */
	enum ovl_file_mode mode; /* data path */
	bool adopted;		/* restart=on: stands for a dead worker's
				 * handle (ovl_file_adopt()) */
	bool appends;		/* fd was opened O_APPEND: a write given
				 * again after a restart must not append
				 * twice (file.c: write_append_once()) */
};

/* Statistics; every counter is atomic. */
struct ovl_stats {
	atomic_uint_fast64_t op[64];	/* requests per FUSE opcode (index < 64) */
	atomic_uint_fast64_t op_other;	/* opcodes >= 64 */
	atomic_uint_fast64_t pt_opens;	/* opens answered with a backing id */
	atomic_uint_fast64_t pt_ids;	/* backing ids registered now */
	atomic_uint_fast64_t prefills;	/* first opens that gave the kernel
					 * the file's data (ovl_pt_prefill) */
	atomic_uint_fast64_t fb_opens;	/* opens served through the daemon */
	atomic_uint_fast64_t fb_reason[OVL_PT_NR]; /* fallbacks by reason */
	atomic_uint_fast64_t inodes;	/* overlay inodes alive */
	atomic_uint_fast64_t copy_ups;	/* copy-ups done */
	atomic_uint_fast64_t reclaimed;	/* entries the kernel was asked to
					 * forget to bound our fds */
	atomic_uint_fast64_t stale;	/* restart=on: requests naming what a
					 * dead worker handed out, answered
					 * ESTALE */
	atomic_uint_fast64_t carried;	/* restart=on: requests naming a dead
					 * worker's node id, served */
	atomic_uint_fast64_t once;	/* restart=on: resent requests the
					 * dead worker had carried out,
					 * answered without doing them again */
	atomic_uint_fast64_t backing_closed; /* restart=on: backing ids of
					 * dead workers closed at takeover */
};

/* The mounted filesystem. */
struct ovl_fs {
	struct ovl_params *p;	/* options */
	struct ovl_layer *layers; /* nlayers entries, topmost first */
	int nlayers;		/* upper (if any) + lowers */
	struct ovl_layer *upper; /* &layers[0] when there is an upper, else NULL */
	int workdir_fd;		/* O_PATH fd of the workdir itself, from the
				 * checks until work/ and index/ are made;
				 * -1 otherwise */
	char *workdir_canon;	/* canonical path of the workdir (owned), or
				 * NULL without upper */
	int work_fd;		/* O_PATH fd of workdir/work, where copies and
				 * new entries are built; -1 without upper */
	int index_fd;		/* O_PATH fd of workdir/index (hard links
				 * copied up, kernel index=on); -1 without */
	enum ovl_xattr_ns xns;	/* which overlay xattr prefix we write */
	bool aufs_whiteouts;	/* the upper refuses char device whiteouts
				 * (mknod 0/0 fails: an upper on overlayfs):
				 * ".wh.NAME" files are written instead */
	bool no_xattr;		/* the upper takes no overlay.* xattrs of
				 * our namespace (ramfs; overlayfs before
				 * Linux 6.7 and fuse-overlayfs refuse
				 * trusted.overlay.*): no index, metacopy
				 * or redirects, as kernel overlayfs */
	bool no_tmpfile;	/* the upper refuses O_TMPFILE (overlayfs
				 * before Linux 6.6, a FUSE server without
				 * it): copies are built under a name in
				 * work/ and renamed into place */
	int xino_bits;		/* high bits of st_ino used for the fsid, 0 = off */
	bool has_xattrat;	/* kernel has getxattrat() on O_PATH fds */
	bool has_openat2;	/* kernel has openat2() */
	bool any_stacked;	/* a layer lives on overlayfs or FUSE */
	size_t namelen;		/* longest name the layers take (the largest
				 * f_namelen, as kernel overlayfs) */

	enum ovl_pt_reason pt_reason; /* OVL_PT_OK when passthrough may be used */
	bool passthrough;	/* negotiated at INIT */
	bool writeback_cache;	/* negotiated at INIT: the kernel caches
				 * writes, size and times of regular files
				 * (file.c: data_flags()) */
	atomic_bool uring_seen;	/* a request came through io_uring */
	uint32_t kernel_minor;	/* FUSE protocol minor of the kernel's INIT,
				 * 0 before it (kernel.c) */
	uint64_t kernel_flags;	/* the INIT's flags, flags2 in bits 32..63 */

	struct fuse_session *se; /* the session, for notifications */
	struct ovl_inode *root;	/* the root inode (nodeid FUSE_ROOT_ID) */

	pthread_mutex_t itable_lock; /* guards the inode table and counts */
	struct ovl_inode **itable; /* hash buckets */
	size_t itable_size;	/* number of buckets (power of two) */
	size_t itable_count;	/* inodes in the table */
	struct ovl_inode *lru_head; /* oldest looked-up inode; itable_lock */
	struct ovl_inode *lru_tail; /* newest */

	pthread_cond_t reclaim_cond; /* wakes the reclaim thread (with
				 * itable_lock) */
	pthread_t reclaim_thread; /* asks the kernel to forget old entries */
	bool reclaim_enabled;	/* ovl_reclaim_start() ran: the thread may
				 * be started, on first need; itable_lock */
	bool reclaim_running;	/* the thread was started; itable_lock */
	bool reclaim_stop;	/* tells it to end; itable_lock */
	size_t reclaim_soft;	/* itable_count above which it checks fds */
	size_t inodes_freed;	/* inodes taken out of the table; itable_lock */
	atomic_int fd_waiters;	/* requests waiting for fds (reclaim.c) */
	long fd_limit;		/* RLIMIT_NOFILE soft limit at start */
	int fd_ceiling;		/* fds an inode or open file keeps are below
				 * this number (reclaim.c); 0: no bound */

	pthread_mutex_t handles_lock; /* guards the handles list */
	struct ovl_handle handles; /* head of the open files and dirs list */

	struct ovl_locks *locks; /* lock.c: flock and record locks, keyed by
				  * overlay file */

	struct ovl_stats stats;	/* counters */
	struct ovl_pool *pool;	/* loop.c: the request threads, or NULL */
	struct ovl_uring *uring; /* uring.c: FUSE over io_uring, or NULL */
	int ready_fd;		/* pipe to the waiting parent, -1 once told */

	uint64_t gen_tag;	/* restart=on: this worker's generation in the
				 * top bits of every node id it hands out
				 * (OVL_GEN_SHIFT), 0 otherwise */
	struct ovl_svstate *sv;	/* restart=on: state shared with the
				 * supervisor (supervisor.c), or NULL */
	struct ovl_nodetab *nodetab; /* restart=on: node ids that outlive
				 * their worker (nodetab.c), or NULL */
	struct ovl_journal *journal; /* restart=on: requests done once
				 * across a worker's death (journal.c), or
				 * NULL */
	int argc;		/* the command line, for a worker started */
	char **argv;		/* from a new binary (supervisor.c) */
	bool restart_on;	/* a supervisor holds the mount: decided
				 * once INIT is read (supervisor.c) */
	enum ovl_restart_reason restart_reason; /* why, for --stats */
};

/*
 * restart=on: node ids carry the generation of the worker that made them
 * in bits 48..62 (user-space addresses stay below 2^47 unless a mapping
 * asks for more, which malloc does not), so that a new
 * worker knows the ids of a dead one (ovl_nodeid_stale()).
 */
#define OVL_GEN_SHIFT 48
#define OVL_GEN_MASK (0x7fffull << OVL_GEN_SHIFT)

/* What the supervisor and its workers share (one MAP_SHARED page). */
struct ovl_svstate {
	pid_t supervisor_pid;	/* the supervisor, set before any worker */
	atomic_uint restarts;	/* workers started after the first */
	atomic_uint generation;	/* the running worker's generation */
	atomic_bool served;	/* the first worker answered INIT */
	atomic_uint ready_gen;	/* the last generation that began serving */
	char last_cause[96];	/* how the last worker ended, for --stats */
};

#endif
