// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * restart: the supervisor, the process that holds the mount.
 *
 * Once mounted, the daemon reads the kernel's INIT request once and keeps
 * it.  With restart=auto it then decides: the kernel must be able to
 * resend (FUSE_HAS_RESEND) and the requests must come through /dev/fuse
 * (not FUSE over io_uring, whose requests no resend covers); otherwise the
 * daemon serves the mount itself, as without restart.  When restart is on,
 * the daemon becomes a supervisor and forks a worker, which replays that
 * INIT into its libfuse session and serves the requests (takeover.c).  The
 * supervisor holds the /dev/fuse descriptor, so the connection stays up
 * when a worker dies: callers wait, nobody gets ENOTCONN.  It starts a new
 * worker at once.  It serves no request itself.
 *
 * A worker that keeps dying ends the mount: after restart_limit deaths
 * within SV_WINDOW seconds, or when the first worker never answered INIT,
 * the supervisor says why and unmounts.
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
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SV_WINDOW 60		/* restart_limit deaths within this many
				 * seconds end the mount */
#define SV_QUICK 0.5		/* a worker dead this soon after its start
				 * died as it started... */
#define SV_BACKOFF_MS 100	/* ...and the next but one waits this long,
				 * doubled each time after, up to 16 times */

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

static const char *const reason_text[] = {
	[OVL_RR_OPTION] = "as the restart option says",
	[OVL_RR_AUTO] = "the kernel can resend requests",
	[OVL_RR_NO_RESEND] = "the kernel cannot resend requests (FUSE_HAS_RESEND, Linux 6.9)",
	[OVL_RR_IO_URING] = "FUSE over io_uring is offered and wanted, and no resend covers its requests (io_uring=off to have restart)",
};

/*
 * restart=auto: on when the kernel can resend the requests of a dead worker
 * and they come through /dev/fuse; restart=on too, but never where the
 * kernel cannot resend.  The kernel's line (ovl_kernel_say()) says the
 * outcome; a refused restart=on is said again after it.
 */
static void restart_choose(struct ovl_fs *fs)
{
	enum ovl_restart_mode mode = fs->p->restart;
	bool resend = ovl_kernel_has(fs, OVL_INIT_HAS_RESEND);
	bool uring = ovl_uring_wanted(fs);

	fs->restart_on = mode == OVL_RESTART_ON;
	fs->restart_reason = OVL_RR_OPTION;
	if (mode == OVL_RESTART_ON && !resend) {
		/* a request the dead worker had read would never be answered:
		 * its caller would wait for ever, whatever the option says */
		fs->restart_on = false;
		fs->restart_reason = OVL_RR_NO_RESEND;
	} else if (mode == OVL_RESTART_AUTO) {
		fs->restart_reason = !resend ? OVL_RR_NO_RESEND :
				     uring ? OVL_RR_IO_URING : OVL_RR_AUTO;
		fs->restart_on = fs->restart_reason == OVL_RR_AUTO;
	}
	ovl_debug("restart: %s: %s", fs->restart_on ? "on" : "off",
		  reason_text[fs->restart_reason]);
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
	char **args;		/* its mount arguments (worker_args()), or
				 * NULL: upgrades fail; the array is owned */
	char *paths;		/* the paths option in args (owned) */
	sigset_t waited;	/* SIGCHLD and the stop signals, blocked */
	sigset_t old;		/* the mask a worker gets back */
	bool stop;		/* a stop signal came */
	bool upgrade;		/* SIGUSR2 came: the worker is being replaced */
	bool exec_next;		/* start workers from exe, not by fork */
};

/*
 * The mount arguments a worker of an upgrade parses, wherever it starts:
 * the command line's flags and -o lists as given, then "-o" with the
 * absolute paths the layers, the workdir and the statsfile were opened at
 * (later values win over relative ones), and the absolute mountpoint, in
 * place of the positional arguments.  So nothing needs to keep the
 * directory the mount was started in (that would keep its filesystem from
 * being unmounted).  Sets c->args and c->paths: 0 or -ENOMEM.
 */
static int worker_args(struct sv_ctx *c)
{
	struct ovl_fs *fs = c->fs;
	int n;

	c->args = calloc((size_t)fs->argc + 3, sizeof(*c->args));
	c->paths = ovl_layers_paths_opt(fs);
	if (!c->args || !c->paths) {
		free(c->args);
		free(c->paths);
		c->args = NULL;
		c->paths = NULL;
		return -ENOMEM;
	}
	n = ovl_params_options_only(fs->argc, fs->argv, c->args);
	c->args[n++] = "-o";
	c->args[n++] = c->paths;
	c->args[n++] = fs->p->mountpoint;
	c->args[n] = NULL;
	return 0;
}

/*
 * In the child: become a worker of the binary at c->exe (an upgrade), as
 * "EXE --sv-worker DEV STATE NODES INIT GEN [--sv-journal=FD] ARGS...",
 * ARGS from worker_args().  The journal's fd is optional: a worker of this
 * binary started by an older supervisor runs without it (a binary older
 * than the journal would take it for a mount option: no upgrade backwards
 * across it).
 */
static void exec_worker(struct sv_ctx *c, unsigned gen)
{
	struct ovl_fs *fs = c->fs;
	int fds[4] = { fuse_session_fd(fs->se), c->state_fd,
		       ovl_nodetab_fd(fs), c->init_fd };
	char num[6][24];
	char **argv = calloc((size_t)fs->argc + 12, sizeof(*argv));
	int n = 0;

	if (!argv || fds[2] < 0 || !c->args)
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
	if (ovl_journal_fd(fs) >= 0) {
		fcntl(ovl_journal_fd(fs), F_SETFD, 0);
		snprintf(num[5], sizeof(num[5]), "--sv-journal=%d",
			 ovl_journal_fd(fs));
		argv[n++] = num[5];
	}
	for (int i = 0; c->args[i]; i++)
		argv[n++] = c->args[i];
	argv[n] = NULL;
	execv(c->exe, argv);
	ovl_log("restart: cannot run %s: %s", c->exe, strerror(errno));
}

static pid_t start_worker(struct sv_ctx *c, unsigned gen)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	/* a worker outliving us unmounts and ends (main.c), also when we
	 * died before this line: it compares getppid() with ours */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (c->exec_next) {
		/* our signals stay blocked across the exec, until the new
		 * binary's handlers are in place (main.c) */
		exec_worker(c, gen);
		_exit(EXIT_MOUNT);
	}
	sigprocmask(SIG_SETMASK, &c->old, NULL);
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

/* Supervise with the INIT in @c until the mount ends: the exit status. */
static int supervise(struct sv_ctx *c)
{
	struct ovl_fs *fs = c->fs;
	void *map;
	int status;

	c->state_fd = shared_memfd("overpass-state", sizeof(*fs->sv), &map);
	if (c->state_fd < 0) {
		ovl_log("restart: cannot map the shared state: %s",
			strerror(-c->state_fd));
		return EXIT_MOUNT;
	}
	fs->sv = map;
	fs->sv->supervisor_pid = getpid();
	if (ovl_nodetab_create(fs))
		ovl_log("restart: cannot map the node id table: node ids will not outlive their worker");
	if (ovl_journal_create(fs))
		ovl_log("restart: cannot map the journal: requests a dead worker did not answer may be done twice");
	own_exe(c->exe, sizeof(c->exe));
	if (worker_args(c))
		ovl_log("restart: no memory for the arguments of an upgrade: upgrades will fail");
	c->init_fd = memfd_create("overpass-init", MFD_CLOEXEC);
	if (c->init_fd < 0 ||
	    write(c->init_fd, c->init, (size_t)c->init_len) != c->init_len)
		ovl_log("restart: cannot keep INIT for an upgrade: upgrades will fail");
	sigemptyset(&c->waited);
	sigaddset(&c->waited, SIGCHLD);
	sigaddset(&c->waited, SIGTERM);
	sigaddset(&c->waited, SIGINT);
	sigaddset(&c->waited, SIGHUP);
	sigaddset(&c->waited, SIGUSR2);
	sigprocmask(SIG_BLOCK, &c->waited, &c->old);
	status = supervise_loop(c);
	sigprocmask(SIG_SETMASK, &c->old, NULL);
	if (c->init_fd >= 0)
		close(c->init_fd);
	free(c->args);
	free(c->paths);
	ovl_nodetab_free(fs);
	ovl_journal_free(fs);
	munmap(fs->sv, sizeof(*fs->sv));
	fs->sv = NULL;
	close(c->state_fd);
	return status;
}

/*
 * Read the kernel's INIT, decide whether restart is on (restart_choose()),
 * and serve the mounted session fs->se until the mount ends: supervised,
 * @serve running in each worker (a forked copy of this process, before any
 * thread) with the saved INIT, or else @serve run here.  Returns the exit
 * status.
 */
int ovl_supervise(struct ovl_fs *fs, ovl_serve_fn serve)
{
	struct sv_ctx c = { .fs = fs, .serve = serve, .init_fd = -1 };
	int status;

	c.init = malloc(OVL_SV_INIT_MAX);
	if (!c.init)
		return EXIT_MOUNT;
	c.init_len = read_init(fuse_session_fd(fs->se), c.init, OVL_SV_INIT_MAX);
	if (c.init_len < 0) {
		ovl_log("restart: cannot read INIT: %s", strerror(-c.init_len));
		free(c.init);
		return EXIT_MOUNT;
	}
	ovl_kernel_init(fs, c.init, (size_t)c.init_len);
	restart_choose(fs);
	ovl_kernel_say(fs);
	if (fs->p->restart == OVL_RESTART_ON && !fs->restart_on)
		ovl_log("restart: off: %s", reason_text[fs->restart_reason]);
	if (fs->restart_on)
		status = supervise(&c);
	else
		status = serve(fs, c.init, (size_t)c.init_len, false);
	free(c.init);
	return status;
}
