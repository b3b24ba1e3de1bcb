/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Small utilities: logging, cleanup attributes, openat2 with a fallback,
 * xattr access on O_PATH fds, and reopening an O_PATH fd with real flags.
 */
#ifndef OVL_UTIL_H
#define OVL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

extern bool ovl_debug_enabled;
/* detached: ovl_log() goes to syslog, stderr being /dev/null */
extern bool ovl_log_syslog;

void ovl_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* as ovl_log(), for what is not an error (syslog's LOG_INFO) */
void ovl_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define ovl_debug(...)                                                         \
	do {                                                                   \
		if (ovl_debug_enabled)                                         \
			ovl_log(__VA_ARGS__);                                  \
	} while (0)

static inline void ovl_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
static inline void ovl_freep(void *p)
{
	free(*(void **)p);
}
#define cleanup_fd __attribute__((cleanup(ovl_closep)))
#define cleanup_free __attribute__((cleanup(ovl_freep)))

/* Open @path below @dirfd without ever leaving it (RESOLVE_BENEATH, no
 * magic links); falls back to a component-by-component O_NOFOLLOW walk
 * when openat2 is missing. */
int ovl_openat_beneath(int dirfd, const char *path, int flags, mode_t mode);

/* Open a single name in @dirfd without following a final symlink. */
int ovl_openat_name(int dirfd, const char *name, int flags);

/* Reopen an O_PATH fd with real open flags (through /proc/self/fd). */
int ovl_reopen(int fd, int flags);

/* Mount attributes (linux/mount.h values, which glibc 2.36 lacks). */
#define OVL_MOUNT_ATTR_RDONLY 0x00000001ULL
#define OVL_MOUNT_ATTR__ATIME 0x00000070ULL
#define OVL_MOUNT_ATTR_STRICTATIME 0x00000020ULL

/* mount_setattr(2) setting @set and clearing @clr; 0 or -errno. */
int ovl_mount_setattr(int dirfd, const char *path, unsigned flags,
		      unsigned long long set, unsigned long long clr);

/* xattrs of the object an fd (O_PATH allowed) refers to, symlinks included;
 * results as for getxattr(2), errors as negative errno. */
ssize_t ovl_fgetxattr(int fd, const char *name, void *buf, size_t size);
ssize_t ovl_flistxattr(int fd, char *buf, size_t size);
int ovl_fsetxattr(int fd, const char *name, const void *value, size_t size,
		  int flags);
int ovl_fremovexattr(int fd, const char *name);

/* true when the kernel serves the *xattrat() calls on O_PATH fds. */
bool ovl_probe_xattrat(int fd);

/* getdents64(2), for reading directories without a DIR stream. */
struct ovl_linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};
long getdents_raw(int fd, void *buf, size_t size);

/* Remove @name below @dirfd and, if a directory, all it holds; symlinks
 * are removed, never followed.  0 or -errno. */
int ovl_rmtree_at(int dirfd, const char *name);

/* Empty the directory @dirfd (an fd that can be read); 0 or -errno. */
int ovl_empty_dir(int dirfd);

/* true when we run in the initial user namespace with CAP_SYS_ADMIN: the
 * daemon of a root mount, which may use trusted.* xattrs and passthrough. */
bool ovl_have_init_cap_sys_admin(void);

/* Parse an unsigned number; -EINVAL when @s is not one. */
int ovl_parse_u64(const char *s, unsigned long long *out);

#endif
