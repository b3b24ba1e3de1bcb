// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * overpass: a userspace overlay filesystem on FUSE passthrough.
 *
 * main.c owns the command line actions, the FUSE session (mount, request
 * loop, signals), detaching once the mount is usable, the exit status, and
 * the table of request handlers.
 */
#include "config.h"

#include "overlay.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <syslog.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>

static void ovl_init(void *userdata, struct fuse_conn_info *conn)
{
	struct ovl_fs *fs = userdata;

	ovl_stat_op(fs, OVL_OP_INIT);
	ovl_passthrough_init(fs, conn);
	fuse_set_feature_flag(conn, FUSE_CAP_SPLICE_WRITE);
	fuse_set_feature_flag(conn, FUSE_CAP_SPLICE_MOVE);
	/* requests are read into memory (loop.c): no splice pipe per
	 * request, and restart=on looks at each first (takeover.c) */
	fuse_unset_feature_flag(conn, FUSE_CAP_SPLICE_READ);
	fuse_set_feature_flag(conn, FUSE_CAP_CACHE_SYMLINKS);
	fuse_set_feature_flag(conn, FUSE_CAP_READDIRPLUS);
	fuse_set_feature_flag(conn, FUSE_CAP_READDIRPLUS_AUTO);
	fuse_set_feature_flag(conn, FUSE_CAP_PARALLEL_DIROPS);
	fuse_set_feature_flag(conn, FUSE_CAP_ATOMIC_O_TRUNC);
	fuse_set_feature_flag(conn, FUSE_CAP_DIRECT_IO_ALLOW_MMAP);
	/* one lock table across the node ids of a copied-up file (lock.c) */
	fuse_set_feature_flag(conn, FUSE_CAP_POSIX_LOCKS);
	fuse_set_feature_flag(conn, FUSE_CAP_FLOCK_LOCKS);
	/* setuid, setgid and file capabilities are dropped here on write,
	 * truncate and chown (ovl_kill_sxid), so the kernel may remember
	 * that a file has none (SB_NOSEC): without it, every write(2), even
	 * through passthrough, first asked the daemon for
	 * security.capability */
	fuse_set_feature_flag(conn, FUSE_CAP_HANDLE_KILLPRIV_V2);
	ovl_writeback_init(fs, conn);
	/* modes arrive unmasked: new_mode() in dir.c applies the umask or
	 * the parent's default ACL, as the kernel would */
	fuse_set_feature_flag(conn, FUSE_CAP_DONT_MASK);
	if (!fs->p->noacl)
		fuse_set_feature_flag(conn, FUSE_CAP_POSIX_ACL);
	conn->time_gran = 1;
	if (fs->p->max_read)
		conn->max_read = fs->p->max_read;
}

static void ovl_destroy(void *userdata)
{
}

static const struct fuse_lowlevel_ops ovl_ops = {
	.init = ovl_init,
	.destroy = ovl_destroy,
	.lookup = ovl_lookup,
	.forget = ovl_forget,
	.forget_multi = ovl_forget_multi,
	.getattr = ovl_getattr,
	.setattr = ovl_setattr,
	.readlink = ovl_readlink,
	.access = ovl_access,
	.statfs = ovl_statfs,
	.opendir = ovl_opendir,
	.readdir = ovl_readdir,
	.readdirplus = ovl_readdirplus,
	.fsyncdir = ovl_fsyncdir,
	.create = ovl_create,
	.mkdir = ovl_mkdir,
	.mknod = ovl_mknod,
	.symlink = ovl_symlink,
	.unlink = ovl_unlink,
	.rmdir = ovl_rmdir,
	.rename = ovl_rename,
	.link = ovl_link,
	.open = ovl_open,
	.read = ovl_read,
	.write_buf = ovl_write_buf,
	/* locks are the daemon's (lock.c): a close drops the closing
	 * process's record locks, the last one its open file's flocks */
	.flush = ovl_flush,
	.getlk = ovl_getlk,
	.setlk = ovl_setlk,
	.flock = ovl_flock,
	.release = ovl_release,
	.fsync = ovl_fsync,
	.fallocate = ovl_fallocate,
	.lseek = ovl_lseek,
	.copy_file_range = ovl_copy_file_range,
	.tmpfile = ovl_tmpfile,
	.getxattr = ovl_getxattr,
	.listxattr = ovl_listxattr,
	.setxattr = ovl_setxattr,
	.removexattr = ovl_removexattr,
};

static void usage(FILE *out)
{
	fputs("usage: overpass [-f] [-d] -o lowerdir=DIR[:DIR...][,upperdir=DIR,workdir=DIR][,opts] MOUNTPOINT\n"
	      "       overpass SOURCE MOUNTPOINT -o opts\n"
	      "       overpass --stats MOUNTPOINT\n"
	      "       overpass --version | --help\n"
	      "\n"
	      "  -f          stay in the foreground\n"
	      "  -d          foreground, and trace every request on stderr\n"
	      "  -o OPTS     mount options; see overpass(1)\n",
	      out);
}

/* The statistics of the mount @mnt, NUL-terminated, in a static buffer;
 * NULL (said) when it answers none. */
static const char *read_stats(const char *mnt, bool quiet, size_t *len)
{
	static char buf[1 << 20];
	ssize_t n = getxattr(mnt, OVL_STATS_XATTR, buf, sizeof(buf) - 1);

	if (n < 0) {
		if (!quiet)
			ovl_log("%s: cannot read statistics (%s); is it an overpass mount?",
				mnt, strerror(errno));
		return NULL;
	}
	buf[n] = '\0';
	if (len)
		*len = (size_t)n;
	return buf;
}

/* The number on the line "@key N" of statistics @text, or 0. */
static unsigned long long stat_number(const char *text, const char *key)
{
	size_t kl = strlen(key);
	const char *l = text;

	while (l && *l) {
		if (!strncmp(l, key, kl) && l[kl] == ' ')
			return strtoull(l + kl + 1, NULL, 10);
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	return 0;
}

static int show_stats(const char *mnt)
{
	size_t n;
	const char *text = read_stats(mnt, false, &n);

	if (!text)
		return EXIT_USAGE;
	fwrite(text, 1, n, stdout);
	return 0;
}

/* So many open files never run the daemon out of fds. */
/*
 * Every cached inode holds an fd: allow as many as the kernel lets a
 * process have (fs.nr_open) when we may raise the hard limit, else up to
 * the hard limit.
 */
static void raise_nofile(void)
{
	struct rlimit rl;
	unsigned long nr_open = 0;
	FILE *f = fopen("/proc/sys/fs/nr_open", "re");

	if (f) {
		if (fscanf(f, "%lu", &nr_open) != 1)
			nr_open = 0;
		fclose(f);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (nr_open > rl.rlim_max) {
		struct rlimit want = { nr_open, nr_open };

		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Check the mountpoint and make its path absolute: the daemon leaves its
 * working directory, and unmounts by that path at exit. */
static int check_mountpoint(char **mntp)
{
	const char *mnt = *mntp;
	char *abs;
	struct stat st;

	if (stat(mnt, &st) < 0) {
		ovl_log("mountpoint %s: %s", mnt, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		ovl_log("mountpoint %s: %s", mnt, strerror(ENOTDIR));
		return -ENOTDIR;
	}
	abs = realpath(mnt, NULL);
	if (!abs) {
		ovl_log("mountpoint %s: %s", mnt, strerror(errno));
		return -errno;
	}
	free(*mntp);
	*mntp = abs;
	return 0;
}

/*
 * suid or nosuid: the one given last; by default, on a mount by root, suid,
 * unless an option shows a user's files as root's (squash_to_root,
 * squash_to_uid=0, squash_to_gid=0, a mapping to id 0), where her setuid
 * or setgid file would run as root.
 */
static const char *suid_opt(const struct ovl_params *p, bool root)
{
	if (p->suid >= 0)
		return p->suid ? ",suid" : ",nosuid";
	if (!root)
		return "";
	if (!ovl_params_shows_root(p))
		return ",suid";
	ovl_debug("an option shows users' files as root's: mounting nosuid (give suid to override)");
	return ",nosuid";
}

/*
 * The option string for libfuse's mount code, with our defaults.  Mounted
 * by root (in the initial namespace or a user namespace), suid and dev as
 * on kernel overlayfs: setuid programs in container images work (libfuse
 * would mount nosuid,nodev); but see suid_opt().  In a user namespace
 * the kernel still makes the mount nodev; a plain user's mount
 * (fusermount3) stays nosuid,nodev.
 */
static char *fuse_mount_opts(struct ovl_fs *fs)
{
	struct ovl_params *p = fs->p;
	char *s = NULL;
	bool root = geteuid() == 0;

	if (asprintf(&s, "fsname=overpass,subtype=overpass%s%s%s%s%s%s%s%s%s",
		     p->read_only ? ",ro" : "",
		     p->atime == OVL_ATIME_NOATIME ? ",noatime" : "",
		     p->diratime < 0 ? ",nodiratime" : "",
		     root && !p->allow_other_given ? ",allow_other" : "",
		     !p->default_permissions_given ? ",default_permissions" : "",
		     suid_opt(p, root),
		     root && !p->nodev_given ? ",dev" : "",
		     p->fuse_opts ? "," : "", p->fuse_opts ? p->fuse_opts : "") < 0)
		return NULL;
	return s;
}

/*
 * strictatime: libfuse's mount code has no word for it, so it is set on the
 * new mount directly.  Resolving the mountpoint sends no FUSE request, so
 * this works before INIT is answered.
 */
static int apply_strictatime(struct ovl_fs *fs)
{
	int err;

	if (fs->p->atime != OVL_ATIME_STRICTATIME)
		return 0;
	err = ovl_mount_setattr(AT_FDCWD, fs->p->mountpoint, 0,
				OVL_MOUNT_ATTR_STRICTATIME, OVL_MOUNT_ATTR__ATIME);
	if (err)
		ovl_log("strictatime: cannot set it on %s: %s",
			fs->p->mountpoint, strerror(-err));
	return err;
}

static struct fuse_session *session_new(struct ovl_fs *fs)
{
	char *opts = fuse_mount_opts(fs);
	char *argv[] = { "overpass", "-o", opts, fs->p->debug ? "-d" : NULL, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(fs->p->debug ? 4 : 3, argv);
	struct fuse_session *se;

	if (!opts)
		return NULL;
	se = fuse_session_new(&args, &ovl_ops, sizeof(ovl_ops), fs);
	fuse_opt_free_args(&args);
	free(opts);
	return se;
}

/*
 * Detach: the parent waits until the child has answered INIT and the mount
 * answers a stat, so a caller may use the mount as soon as we return.
 */
static int detach(struct ovl_fs *fs)
{
	int pfd[2];
	char status = 1;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		struct stat st;

		close(pfd[1]);
		if (read(pfd[0], &status, 1) != 1)
			status = 1;
		if (status == 0 && stat(fs->p->mountpoint, &st) < 0)
			status = 1;
		_exit(status ? EXIT_MOUNT : 0);
	}
	close(pfd[0]);
	fs->ready_fd = pfd[1];
	setsid();
	return 0;
}

static void stdio_to_null(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	openlog("overpass", LOG_PID, LOG_DAEMON);
	ovl_log_syslog = true;
}

/* Tell a waiting parent how the start went (0 = the mount is up). */
static void tell_parent(struct ovl_fs *fs, char status)
{
	if (fs->ready_fd < 0)
		return;
	if (write(fs->ready_fd, &status, 1) != 1)
		ovl_debug("parent gone");
	close(fs->ready_fd);
	fs->ready_fd = -1;
}

/*
 * Everything that can refuse the configuration, before anything on disk is
 * made or changed: the mountpoint, the layers, the workdir.
 */
static int fs_check(struct ovl_fs *fs)
{
	int err;

	err = check_mountpoint(&fs->p->mountpoint);
	if (!err)
		err = ovl_layers_open(fs);
	if (!err)
		fs->pt_reason = ovl_passthrough_precheck(fs);
	return err;
}

/*
 * Once the mount exists (libfuse's mount code, fusermount3 for a plain
 * user, may still refuse it): the workdir's subdirectories, the inode
 * table and the root.  Requests wait in the kernel until the loop runs.
 */
static int fs_setup(struct ovl_fs *fs)
{
	int err;

	err = ovl_layers_prepare(fs);
	if (!err)
		err = ovl_itable_init(fs);
	if (!err)
		err = ovl_locks_init(fs);
	if (!err)
		err = ovl_lookup_root(fs);
	return err;
}

/* At exit, the statistics to the statsfile, or to stderr in the foreground. */
static void stats_at_exit(struct ovl_fs *fs)
{
	int err;

	if (fs->p->statsfile) {
		err = ovl_stats_write_file(fs, fs->p->statsfile);
		if (err)
			ovl_log("statsfile %s: cannot write the statistics: %s",
				fs->p->statsfile, strerror(-err));
	} else if (fs->p->foreground) {
		char *text = ovl_stats_format(fs);

		if (text)
			fprintf(stderr, "overpass statistics:\n%s", text);
		free(text);
	}
}

/*
 * Serve the mount with @loop until it ends, the waiting parent told first:
 * 0, or EXIT_MOUNT when the loop failed.
 */
static int serve(struct ovl_fs *fs, int (*loop)(struct ovl_fs *fs))
{
	int ret;

	tell_parent(fs, 0);
	if (ovl_reclaim_start(fs) < 0)
		ovl_log("cannot read RLIMIT_NOFILE: open files are not bounded");
	ovl_locks_start(fs);
	ret = loop(fs);
	ovl_reclaim_stop(fs);
	return ret < 0 && ret != -ENODEV ? EXIT_MOUNT : 0;
}

/*
 * Unmount @mnt lazily, as libfuse's fuse_session_unmount() does: root (of
 * the user namespace that made the mount, too) with umount2(MNT_DETACH),
 * a plain user through fusermount3 -u -z.
 */
static void unmount_lazy(const char *mnt)
{
	pid_t pid;
	int status;

	if (umount2(mnt, MNT_DETACH) == 0 || errno == EINVAL)
		return;		/* EINVAL: no longer a mount point */
	pid = fork();
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "-q", "-z", "--", mnt,
		       (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		ovl_log("restart: cannot unmount %s", mnt);
}

/*
 * restart: the supervisor died (SIGKILL, say; the kernel sent us
 * PR_SET_PDEATHSIG's SIGTERM) and nobody is left to unmount: we are
 * orphaned when our parent is not the pid it recorded.
 */
static bool supervisor_gone(struct ovl_fs *fs)
{
	return fs->sv && getppid() != fs->sv->supervisor_pid;
}

static void end_orphaned(struct ovl_fs *fs)
{
	ovl_log("restart: the supervisor %d is gone; unmounting %s",
		(int)fs->sv->supervisor_pid, fs->p->mountpoint);
	unmount_lazy(fs->p->mountpoint);
}

/*
 * Serve the mount from the INIT request read by ovl_supervise(): a worker
 * of a supervisor (fs->sv set, a forked copy of the supervisor or a new
 * binary), or the daemon itself when restart is off.  It replays the INIT
 * (the kernel answers the reply of every worker after the first with
 * ENOENT, which libfuse ignores: the negotiation is the same), and serves
 * until the mount ends.  A worker never unmounts, unless its supervisor
 * died: then it ends, unmounting, so that no dead mount is left.
 */
static int serve_init(struct ovl_fs *fs, const void *init, size_t len,
		      bool takeover)
{
	struct fuse_buf b = { .size = len, .mem = (void *)init };
	int ret;

	if (supervisor_gone(fs)) {
		end_orphaned(fs);
		return 0;
	}
	if (fs->sv)
		fs->p->io_uring = false; /* no resend covers a ring */
	else if (ovl_uring_wanted(fs) && len >= sizeof(struct fuse_in_header) &&
		 ovl_uring_prepare(fs, ((const struct fuse_in_header *)init)->unique) < 0)
		ovl_log("io_uring: cannot serve it: requests through /dev/fuse");
	fuse_session_process_buf(fs->se, &b);
	if (takeover)
		ovl_sv_takeover(fs);
	if (fs->sv) {
		atomic_store(&fs->sv->served, true);
		atomic_store(&fs->sv->ready_gen,
			     atomic_load(&fs->sv->generation));
	}
	ret = serve(fs, ovl_loop);
	if (supervisor_gone(fs)) {
		end_orphaned(fs);
		ret = 0;
	}
	stats_at_exit(fs);
	return ret;
}

static int do_mount(struct ovl_fs *fs)
{
	int status = 0;
	bool quiet;

	raise_nofile();
	if (fs_check(fs))
		return EXIT_USAGE;
	fs->se = session_new(fs);
	if (!fs->se)
		return EXIT_MOUNT;
	if (fuse_set_signal_handlers(fs->se) < 0 ||
	    fuse_session_mount(fs->se, fs->p->mountpoint) < 0) {
		fuse_session_destroy(fs->se);
		return EXIT_MOUNT;
	}
	if (fs_setup(fs)) {
		status = EXIT_USAGE;
		goto out_unmount;
	}
	if (apply_strictatime(fs) < 0) {
		status = EXIT_MOUNT;
		goto out_unmount;
	}
	/* every path is resolved or absolute now: the directory we were
	 * started in is not kept, in the foreground too (it would keep its
	 * filesystem from being unmounted) */
	if (chdir("/") < 0) {
		ovl_log("cannot change to /: %s", strerror(errno));
		status = EXIT_MOUNT;
		goto out_unmount;
	}
	if (!fs->p->foreground && detach(fs) < 0) {
		ovl_log("cannot detach: %s", strerror(errno));
		status = EXIT_MOUNT;
		goto out_unmount;
	}
	/* INIT arrives first; its reply means the mount is usable */
	if (!fs->p->foreground)
		stdio_to_null();
	/* reads INIT, then serves itself (restart off), or supervises
	 * workers */
	status = ovl_supervise(fs, serve_init);
out_unmount:
	fuse_session_unmount(fs->se);
	quiet = ovl_loop_quiet(fs);
	if (!quiet)
		_exit(status); /* threads still serve a lazily unmounted mount:
				* nothing is freed under them */
	fuse_remove_signal_handlers(fs->se);
	fuse_session_destroy(fs->se);
	return status;
}

/* @mntp made absolute by the working directory, without looking at it: a
 * live mount nobody serves would not answer. */
static int mountpoint_absolute(char **mntp)
{
	char cwd[PATH_MAX], *abs;

	if (**mntp == '/')
		return 0;
	if (!getcwd(cwd, sizeof(cwd)) || asprintf(&abs, "%s/%s", cwd, *mntp) < 0)
		return -ENOMEM;
	free(*mntp);
	*mntp = abs;
	return 0;
}

/*
 * restart=on, an upgrade: run as a worker of a live mount, started by its
 * supervisor as "overpass --sv-worker DEV STATE NODES INIT GEN
 * [--sv-journal=FD] ARGS..." (supervisor.c), its paths absolute.  The
 * layers are opened and the workdir prepared as for a mount; the mount
 * itself, the INIT request, the node ids and the journal are the
 * supervisor's.
 */
static int worker_main(int argc, char **argv)
{
	struct ovl_params p;
	struct ovl_fs fs = { .p = &p, .ready_fd = -1, .workdir_fd = -1,
			      .work_fd = -1, .index_fd = -1 };
	char *args[argc], dev[32], init[OVL_SV_INIT_MAX];
	int fd[4], n = 0, first, jfd = -1;
	unsigned long long gen;
	enum ovl_action action;
	sigset_t empty;
	ssize_t len;
	void *map;

	sigemptyset(&empty);
	if (argc < 8)
		return EXIT_USAGE;
	for (int i = 0; i < 4; i++)
		fd[i] = atoi(argv[2 + i]);
	gen = strtoull(argv[6], NULL, 10);
	first = 7;
	if (!strncmp(argv[7], "--sv-journal=", 13))
		jfd = atoi(argv[first++] + 13);
	args[n++] = argv[0];
	for (int i = first; i < argc; i++)
		args[n++] = argv[i];
	ovl_params_init(&p);
	if (ovl_params_parse(&p, n, args, &action) || action != OVL_ACTION_MOUNT)
		return EXIT_USAGE;
	ovl_debug_enabled = p.debug;
	if (!p.foreground) {
		openlog("overpass", LOG_PID, LOG_DAEMON);
		ovl_log_syslog = true;
	}
	raise_nofile();
	if (ovl_layers_open(&fs) || mountpoint_absolute(&p.mountpoint))
		return EXIT_USAGE;
	fs.pt_reason = ovl_passthrough_precheck(&fs);
	fs.se = session_new(&fs);
	snprintf(dev, sizeof(dev), "/dev/fd/%d", fd[0]);
	if (!fs.se || fuse_set_signal_handlers(fs.se) < 0 ||
	    fuse_session_mount(fs.se, dev) < 0 || fs_setup(&fs) ||
	    chdir("/") < 0)
		return EXIT_MOUNT;
	/* the supervisor's blocked signals: a SIGTERM (its death, or the end
	 * of an upgrade) that came meanwhile now ends the session */
	sigprocmask(SIG_SETMASK, &empty, NULL);
	map = mmap(NULL, sizeof(*fs.sv), PROT_READ | PROT_WRITE, MAP_SHARED,
		   fd[1], 0);
	len = pread(fd[3], init, sizeof(init), 0);
	if (map == MAP_FAILED || len <= 0 || ovl_nodetab_attach(&fs, fd[2]))
		return EXIT_MOUNT;
	fs.sv = map;
	ovl_kernel_init(&fs, init, (size_t)len);
	if (jfd >= 0 && ovl_journal_attach(&fs, jfd))
		ovl_log("restart: cannot map the journal: requests the dead worker did not answer may be done twice");
	if (ovl_sv_worker_init(&fs, (unsigned)gen))
		return EXIT_MOUNT;
	fs.restart_on = true;
	fs.restart_reason = p.restart == OVL_RESTART_ON ? OVL_RR_OPTION : OVL_RR_AUTO;
	_exit(serve_init(&fs, init, (size_t)len, true));
}

/* The parent of process @pid (/proc/PID/stat), or -1. */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[1024], *p;
	int ppid = -1;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* after the last ')': no command name can shift the fields */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return -1;
	return (pid_t)ppid;
}

/* Process @pid runs an overpass binary: one named so, or this one. */
static bool runs_overpass(pid_t pid)
{
	char path[64], exe[PATH_MAX], self[PATH_MAX], *base;
	const char *del = " (deleted)";
	ssize_t n, m;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	m = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	if (n > (ssize_t)strlen(del) && !strcmp(exe + n - strlen(del), del))
		exe[n - strlen(del)] = '\0';
	base = strrchr(exe, '/');
	base = base ? base + 1 : exe;
	return !strncmp(base, "overpass", 8) || !strncmp(base, "lt-overpass", 11) ||
	       (m > 0 && (size_t)m == strlen(exe) && !memcmp(self, exe, (size_t)m));
}

/*
 * The statistics name @sup as the supervisor: believe it only when the
 * worker they name is its child and it runs overpass, so that no foreign
 * process is signalled (a supervisor that died, its pid reused).
 */
static int check_supervisor(const char *mnt, pid_t sup, pid_t worker)
{
	if (worker <= 0 || parent_of(worker) != sup) {
		ovl_log("%s: process %d is not the supervisor of this mount (its worker %d is not its child); not signalling it",
			mnt, (int)sup, (int)worker);
		return -ESRCH;
	}
	if (!runs_overpass(sup)) {
		ovl_log("%s: process %d does not run overpass; not signalling it",
			mnt, (int)sup);
		return -ESRCH;
	}
	return 0;
}

/* --restart MNT: have the supervisor of a restart=on mount replace its
 * worker with one of the binary now at its path, and wait for it. */
static int request_restart(const char *mnt)
{
	const char *text = read_stats(mnt, false, NULL);
	unsigned long long sup, gen;

	if (!text)
		return EXIT_USAGE;
	sup = stat_number(text, "restart.supervisor_pid");
	gen = stat_number(text, "restart.generation");
	if (!sup || !gen) {
		ovl_log("%s: restart is off on this mount (restart.reason in --stats): nothing can take it over",
			mnt);
		return EXIT_USAGE;
	}
	if (check_supervisor(mnt, (pid_t)sup,
			     (pid_t)stat_number(text, "restart.worker_pid")))
		return EXIT_MOUNT;
	if (kill((pid_t)sup, SIGUSR2) < 0) {
		ovl_log("%s: cannot signal its supervisor %llu: %s", mnt, sup,
			strerror(errno));
		return EXIT_MOUNT;
	}
	for (int i = 0; i < 200; i++) {
		struct timespec pause = { 0, 50 * 1000 * 1000 };
		unsigned long long now;

		nanosleep(&pause, NULL);
		text = read_stats(mnt, true, NULL);
		now = text ? stat_number(text, "restart.generation") : 0;
		if (now > gen) {
			printf("%s: worker %llu (pid %llu) took over\n", mnt, now,
			       stat_number(text, "restart.worker_pid"));
			return 0;
		}
	}
	ovl_log("%s: no new worker within 10 s", mnt);
	return EXIT_MOUNT;
}

int main(int argc, char **argv)
{
	struct ovl_params p;
	struct ovl_fs fs = { .p = &p, .ready_fd = -1, .workdir_fd = -1,
			      .work_fd = -1, .index_fd = -1 };
	enum ovl_action action;
	int status;

	umask(0); /* the modes we create with are final */
	/*
	 * No transparent huge pages (inherited by workers): with THP
	 * "always" (Debian 12's kernel) khugepaged turns each thread's stack
	 * and request buffer, a few pages used, into 2 MiB resident.
	 */
	prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
	if (argc > 1 && !strcmp(argv[1], "--sv-worker"))
		return worker_main(argc, argv);
	fs.argc = argc;
	fs.argv = argv;
	ovl_params_init(&p);
	if (ovl_params_parse(&p, argc, argv, &action)) {
		ovl_params_free(&p);
		return EXIT_USAGE;
	}
	ovl_debug_enabled = p.debug;
	switch (action) {
	case OVL_ACTION_HELP:
		usage(stdout);
		status = 0;
		break;
	case OVL_ACTION_VERSION:
#ifdef HAVE_LIBURING
		printf("overpass %s (libfuse %s, io_uring)\n", PACKAGE_VERSION,
		       fuse_pkgversion());
#else
		printf("overpass %s (libfuse %s)\n", PACKAGE_VERSION,
		       fuse_pkgversion());
#endif
		status = 0;
		break;
	case OVL_ACTION_STATS:
		status = show_stats(p.mountpoint);
		break;
	case OVL_ACTION_RESTART:
		status = request_restart(p.mountpoint);
		break;
	default:
		status = do_mount(&fs);
		if (fs.itable) {
			ovl_handles_close_all(&fs);
			ovl_itable_destroy(&fs);
			ovl_locks_destroy(&fs);
		}
		ovl_layers_close(&fs);
		break;
	}
	ovl_params_free(&p);
	return status;
}
