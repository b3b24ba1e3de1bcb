// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Utilities shared by every file: logging, confined opens, xattrs on O_PATH
 * fds (getxattrat() where the kernel takes an O_PATH fd with AT_EMPTY_PATH,
 * /proc/self/fd otherwise: 6.18, measured, has getxattrat() but refuses
 * O_PATH fds there with EBADF, so ovl_probe_xattrat() turns it off) and
 * number parsing.
 */
#include "config.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <syslog.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#ifdef HAVE_LINUX_OPENAT2_H
#include <linux/capability.h>
#include <linux/openat2.h>
#endif

bool ovl_debug_enabled;

bool ovl_log_syslog;

static void ovl_vlog(int prio, const char *fmt, va_list ap)
{
	if (ovl_log_syslog) {
		vsyslog(prio, fmt, ap);
	} else {
		fputs("overpass: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
}

void ovl_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ovl_vlog(LOG_ERR, fmt, ap);
	va_end(ap);
}

void ovl_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ovl_vlog(LOG_INFO, fmt, ap);
	va_end(ap);
}

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef RESOLVE_BENEATH
struct open_how {
	unsigned long long flags;
	unsigned long long mode;
	unsigned long long resolve;
};
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_BENEATH 0x08
#endif

/* Walk @path one component at a time with O_NOFOLLOW, refusing "..". */
static int openat_walk(int dirfd, const char *path, int flags, mode_t mode)
{
	char *copy = strdup(path), *save = NULL, *c, *next;
	int cur = dirfd, fd, err;

	if (!copy)
		return -ENOMEM;
	c = strtok_r(copy, "/", &save);
	if (!c) {
		free(copy);
		return openat(dirfd, ".", flags, mode) < 0 ? -errno : -EINVAL;
	}
	for (;; c = next) {
		next = strtok_r(NULL, "/", &save);
		if (strcmp(c, "..") == 0) {
			err = -EXDEV;
			break;
		}
		if (!next) {
			fd = openat(cur, c, flags | O_NOFOLLOW, mode);
			err = fd < 0 ? -errno : fd;
			break;
		}
		fd = openat(cur, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			err = -errno;
			break;
		}
		if (cur != dirfd)
			close(cur);
		cur = fd;
	}
	if (cur != dirfd)
		close(cur);
	free(copy);
	return err;
}

int ovl_openat_beneath(int dirfd, const char *path, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (unsigned long long)flags | O_CLOEXEC,
		.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long fd;

	fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	if (fd >= 0)
		return (int)fd;
	if (errno != ENOSYS)
		return -errno;
	return openat_walk(dirfd, path, flags | O_CLOEXEC, mode);
}

int ovl_openat_name(int dirfd, const char *name, int flags)
{
	int fd;

	if (!*name || strchr(name, '/') || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return -EINVAL;
	fd = openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int ovl_reopen(int fd, int flags)
{
	char proc[64];
	int nfd;

	flags = (flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC;
	if (flags & O_DIRECTORY) {
		/* no magic link to resolve; it needs search permission,
		 * which the proc path does not */
		nfd = openat(fd, ".", flags);
		if (nfd >= 0 || errno != EACCES)
			return nfd < 0 ? -errno : nfd;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	nfd = open(proc, flags);
	return nfd < 0 ? -errno : nfd;
}

#ifndef SYS_getxattrat
#define SYS_getxattrat 464
#endif
#ifndef SYS_listxattrat
#define SYS_listxattrat 465
#endif
#ifndef SYS_setxattrat
#define SYS_setxattrat 463
#endif
#ifndef SYS_removexattrat
#define SYS_removexattrat 466
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

struct ovl_xattr_args {
	unsigned long long value;
	unsigned int size;
	unsigned int flags;
};

static bool use_xattrat = true;

bool ovl_probe_xattrat(int fd)
{
	char b[1];
	struct ovl_xattr_args args = { .value = (unsigned long)b, .size = 0 };
	long r;

	r = syscall(SYS_getxattrat, fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW,
		    "user.overpass.probe", &args, sizeof(args));
	use_xattrat = r >= 0 || (errno != ENOSYS && errno != EBADF &&
				 errno != EINVAL);
	return use_xattrat;
}

ssize_t ovl_fgetxattr(int fd, const char *name, void *buf, size_t size)
{
	char proc[64];
	ssize_t r;

	if (use_xattrat) {
		struct ovl_xattr_args args = {
			.value = (unsigned long)buf,
			.size = (unsigned int)size,
		};
		r = syscall(SYS_getxattrat, fd, "",
			    AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, name, &args,
			    sizeof(args));
		return r < 0 ? -errno : r;
	}
	/* a real fd (a directory's, an open file's) needs no path; an
	 * O_PATH one gives EBADF and goes through its magic link */
	r = fgetxattr(fd, name, buf, size);
	if (r >= 0 || errno != EBADF)
		return r < 0 ? -errno : r;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	r = getxattr(proc, name, buf, size);
	return r < 0 ? -errno : r;
}

ssize_t ovl_flistxattr(int fd, char *buf, size_t size)
{
	char proc[64];
	ssize_t r;

	if (use_xattrat) {
		r = syscall(SYS_listxattrat, fd, "",
			    AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, buf, size);
		return r < 0 ? -errno : r;
	}
	r = flistxattr(fd, buf, size);
	if (r >= 0 || errno != EBADF)
		return r < 0 ? -errno : r;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	r = listxattr(proc, buf, size);
	return r < 0 ? -errno : r;
}

int ovl_fsetxattr(int fd, const char *name, const void *value, size_t size,
		  int flags)
{
	char proc[64];
	long r;

	if (use_xattrat) {
		struct ovl_xattr_args args = {
			.value = (unsigned long)value,
			.size = (unsigned int)size,
			.flags = (unsigned int)flags,
		};
		r = syscall(SYS_setxattrat, fd, "",
			    AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, name, &args,
			    sizeof(args));
		return r < 0 ? -errno : 0;
	}
	r = fsetxattr(fd, name, value, size, flags);
	if (r >= 0 || errno != EBADF)
		return r < 0 ? -errno : 0;
	/* the magic link leads to the object itself, a symlink included */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	r = setxattr(proc, name, value, size, flags);
	return r < 0 ? -errno : 0;
}

int ovl_fremovexattr(int fd, const char *name)
{
	char proc[64];
	long r;

	if (use_xattrat) {
		r = syscall(SYS_removexattrat, fd, "",
			    AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, name);
		return r < 0 ? -errno : 0;
	}
	r = fremovexattr(fd, name);
	if (r >= 0 || errno != EBADF)
		return r < 0 ? -errno : 0;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	r = removexattr(proc, name);
	return r < 0 ? -errno : 0;
}

int ovl_parse_u64(const char *s, unsigned long long *out)
{
	char *end;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	return 0;
}

long getdents_raw(int fd, void *buf, size_t size)
{
	long n = syscall(SYS_getdents64, fd, buf, size);

	return n < 0 ? -errno : n;
}

int ovl_mount_setattr(int dirfd, const char *path, unsigned flags,
		      unsigned long long set, unsigned long long clr)
{
	struct {
		unsigned long long attr_set;
		unsigned long long attr_clr;
		unsigned long long propagation;
		unsigned long long userns_fd;
	} attr = { .attr_set = set, .attr_clr = clr };

	if (syscall(SYS_mount_setattr, dirfd, path, flags, &attr,
		    sizeof(attr)) < 0)
		return -errno;
	return 0;
}

int ovl_empty_dir(int dirfd)
{
	char buf[8192] __attribute__((aligned(8)));
	int fd, err = 0;
	long n;

	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* each pass removes what it read; read again from the start until
	 * only "." and ".." are left */
	for (bool again = true; again && !err;) {
		again = false;
		if (lseek(fd, 0, SEEK_SET) < 0) {
			err = -errno;
			break;
		}
		while (!err && (n = getdents_raw(fd, buf, sizeof(buf))) > 0) {
			for (long off = 0; off < n && !err;) {
				struct ovl_linux_dirent64 *de = (void *)(buf + off);

				off += de->d_reclen;
				if (!strcmp(de->d_name, ".") ||
				    !strcmp(de->d_name, ".."))
					continue;
				err = ovl_rmtree_at(fd, de->d_name);
				again = true;
			}
		}
		if (n < 0 && !err)
			err = (int)n;
	}
	close(fd);
	return err;
}

int ovl_rmtree_at(int dirfd, const char *name)
{
	int fd, err;

	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR)
		return -errno;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = ovl_empty_dir(fd);
	close(fd);
	if (!err && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		err = -errno;
	return err;
}

/* true when we run in the initial user namespace with CAP_SYS_ADMIN. */
bool ovl_have_init_cap_sys_admin(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = { 0 };
	unsigned long a, b, c;
	FILE *f;
	bool init_ns = false;

	f = fopen("/proc/self/uid_map", "re");
	if (f) {
		init_ns = fscanf(f, "%lu %lu %lu", &a, &b, &c) == 3 && a == 0 &&
			  b == 0 && c == 4294967295ul && fgetc(f) == '\n' &&
			  fgetc(f) == EOF;
		fclose(f);
	}
	if (!init_ns)
		return false;
	if (syscall(SYS_capget, &hdr, data) < 0)
		return false;
	return data[CAP_SYS_ADMIN / 32].effective & (1u << (CAP_SYS_ADMIN % 32));
}
