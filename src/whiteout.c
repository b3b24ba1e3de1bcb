// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Whiteouts and directory markers, in every encoding overpass reads:
 * char device 0/0 (kernel), zero-size file with overlay.whiteout xattr in a
 * directory marked opaque "x" (kernel xattr whiteouts), ".wh.NAME" files
 * (AUFS/OCI); opaque directories by overlay.opaque=y, ".wh..wh..opq" or
 * user.fuseoverlayfs.opaque; redirect xattrs, checked before use.
 *
 * Every marker xattr passes one trust rule, ovl_marker_trusted(): a marker
 * counts only in a namespace that nobody but the mount's owner could have
 * written, so a user who owns a directory in a layer cannot forge one.
 */
#include "config.h"

#include "overlay.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

bool ovl_is_whiteout_st(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

/* An owner and mode record: fuse-overlayfs's and containers-storage's
 * override_stat, whatever the namespace. */
static bool is_override_name(const char *name)
{
	static const char sfx[] = ".override_stat";
	size_t n = strlen(name);

	return n >= sizeof(sfx) - 1 && !strcmp(name + n - (sizeof(sfx) - 1), sfx);
}

/*
 * The trust rule.  trusted.* only on a root mount (only CAP_SYS_ADMIN in the
 * initial user namespace writes it); user.* only on a mount in a user
 * namespace or of a plain user, whose files are its owner's, or with
 * userxattr, which asks for it; security.* always (a name an LSM does not
 * own takes CAP_SYS_ADMIN over the layer's filesystem to write).  The
 * override_stat records fuse-overlayfs and containers-storage write in
 * user.* are read on a root mount too with xattr_permissions=2, which names
 * them.
 */
bool ovl_marker_trusted(const struct ovl_fs *fs, const char *name)
{
	if (!strncmp(name, "trusted.", 8))
		return fs->xns == OVL_XNS_TRUSTED;
	if (!strncmp(name, "security.", 9))
		return true;
	if (strncmp(name, "user.", 5))
		return false;
	if (fs->xns == OVL_XNS_USER)
		return true;
	return fs->p->xattr_permissions == 2 && is_override_name(name);
}

/* A marker xattr @name that passes the trust rule is on @fd. */
static bool has_marker(const struct ovl_fs *fs, int fd, const char *name)
{
	return ovl_marker_trusted(fs, name) &&
	       ovl_fgetxattr(fd, name, NULL, 0) >= 0;
}

/* ovl_is_xwhiteout() of the object @fd (O_PATH will do) whose stat is @st. */
bool ovl_is_xwhiteout_fd(struct ovl_fs *fs, int fd, const struct stat *st)
{
	if (!S_ISREG(st->st_mode) || st->st_size != 0)
		return false;
	return has_marker(fs, fd, OVL_XATTR_TRUSTED "whiteout") ||
	       has_marker(fs, fd, OVL_XATTR_USER "whiteout");
}

bool ovl_is_xwhiteout(struct ovl_fs *fs, int dirfd, const char *name,
		      const struct stat *st)
{
	bool wh;
	int fd;

	if (!S_ISREG(st->st_mode) || st->st_size != 0)
		return false;
	fd = ovl_openat_name(dirfd, name, O_PATH);
	if (fd < 0)
		return false;
	wh = ovl_is_xwhiteout_fd(fs, fd, st);
	close(fd);
	return wh;
}

/* Whether @dirfd holds ".wh.@name", an AUFS whiteout: 1, 0 (none there),
 * or negative errno when it cannot be told. */
int ovl_aufs_whiteout_at(int dirfd, const char *name)
{
	char wh[NAME_MAX + 8];
	struct stat st;

	if (strlen(name) + sizeof(OVL_AUFS_WH) > NAME_MAX + 1)
		return 0; /* no such name can exist */
	snprintf(wh, sizeof(wh), OVL_AUFS_WH "%s", name);
	if (fstatat(dirfd, wh, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 1;
	return errno == ENOENT ? 0 : -errno;
}

/* Value of a one-character marker xattr ("y", "x"), or 0 when absent or
 * not to be trusted. */
static char marker(const struct ovl_fs *fs, int fd, const char *name)
{
	char v[8];
	ssize_t n;

	if (!ovl_marker_trusted(fs, name))
		return 0;
	n = ovl_fgetxattr(fd, name, v, sizeof(v));

	return n >= 1 ? v[0] : 0;
}

/*
 * Opaque and xattr-whiteout markers of a layer directory, and its redirect
 * when @redirect is not NULL.  One listxattr first: most directories have
 * no xattrs and cost nothing more.
 */
int ovl_dir_markers(struct ovl_fs *fs, int dirfd, bool *opaque,
		    bool *xwhiteouts, char **redirect)
{
	char list[4096];
	ssize_t n;
	struct stat st;
	int err = 0;

	*opaque = *xwhiteouts = false;
	if (redirect)
		*redirect = NULL;
	n = ovl_flistxattr(dirfd, list, sizeof(list));
	if (n == -ERANGE)
		n = 1; /* many xattrs: look the markers up one by one */
	else if (n < 0 && n != -ENOTSUP)
		return (int)n;
	if (n > 0) {
		static const char *const names[] = {
			OVL_XATTR_TRUSTED "opaque", OVL_XATTR_USER "opaque",
			"user.fuseoverlayfs.opaque",
		};
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			char c = marker(fs, dirfd, names[i]);

			*opaque |= c == 'y';
			*xwhiteouts |= c == 'x';
		}
	}
	if (!*opaque && fstatat(dirfd, OVL_AUFS_OPQ, &st, AT_SYMLINK_NOFOLLOW) == 0)
		*opaque = true;
	if (n > 0 && !*opaque && redirect)
		err = ovl_get_redirect(fs, dirfd, redirect);
	return err;
}

/*
 * A redirect as kernel overlayfs writes it: an absolute path from the layer
 * root, or a single name in the same parent.  Anything else is refused with
 * the kernel's errors (EINVAL for a malformed value, EACCES for a "." or
 * ".." component), so an untrusted layer cannot point outside the layers;
 * openat2(RESOLVE_BENEATH) confines the lookup again.
 */
int ovl_get_redirect(struct ovl_fs *fs, int dirfd, char **redirect)
{
	static const char *const names[] = { OVL_XATTR_TRUSTED "redirect",
					     OVL_XATTR_USER "redirect" };
	char buf[PATH_MAX];
	ssize_t n = -ENODATA;
	int err;

	*redirect = NULL;
	for (size_t i = 0; i < 2 && (n == -ENODATA || n == -ENOTSUP); i++) {
		if (ovl_marker_trusted(fs, names[i]))
			n = ovl_fgetxattr(dirfd, names[i], buf, sizeof(buf) - 1);
	}
	if (n == -ENODATA || n == -ENOTSUP)
		return 0;
	if (n < 0)
		return (int)n;
	buf[n] = '\0';
	err = ovl_redirect_check(buf, (size_t)n);
	if (err) {
		ovl_log("refusing redirect \"%.*s\"", (int)n, buf);
		return err;
	}
	*redirect = strdup(buf);
	return *redirect ? 0 : -ENOMEM;
}

/*
 * The value of a redirect xattr, @n bytes at @buf (NUL-terminated): 0 when
 * kernel overlayfs would follow it, -EINVAL when malformed, -EACCES for a
 * "." or ".." component.
 */
int ovl_redirect_check(const char *buf, size_t n)
{
	if (n == 0 || strlen(buf) != n)
		return -EINVAL;
	if (buf[0] != '/') {
		if (strchr(buf, '/'))
			return -EINVAL;
		if (!strcmp(buf, ".") || !strcmp(buf, ".."))
			return -EACCES;
		return 0;
	}
	for (const char *c = buf + 1;;) {
		const char *e = strchrnul(c, '/');
		size_t len = (size_t)(e - c);

		if (len == 0)
			return -EINVAL;
		if ((len == 1 && c[0] == '.') ||
		    (len == 2 && c[0] == '.' && c[1] == '.'))
			return -EACCES;
		if (!*e)
			return 0;
		c = e + 1;
	}
}

/*
 * Names the overlay keeps for itself: markers (ours, the kernel's and
 * fuse-overlayfs's) and owner records (override_stat, containers-storage's
 * user.containers.*).  They are never shown through the mount, and setting
 * or removing one fails with EPERM, as fuse-overlayfs refuses them.
 */
bool ovl_is_private_xattr(const char *name)
{
	static const char *const prefixes[] = {
		OVL_XATTR_TRUSTED, OVL_XATTR_USER, "trusted.overpass.",
		"user.overpass.", "user.fuseoverlayfs.",
		"security.fuseoverlayfs.", "user.containers.",
	};
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (!strncmp(name, prefixes[i], strlen(prefixes[i])))
			return true;
	return is_override_name(name);
}

/*
 * Names starting ".wh." are AUFS markers in a layer, never entries of the
 * merged view: they cannot be looked up, and making one through the mount
 * would hide a lower file of the same name on the next mount.
 */
bool ovl_name_reserved(const char *name)
{
	return !strncmp(name, OVL_AUFS_WH, sizeof(OVL_AUFS_WH) - 1);
}

/* An upper file holding only metadata; its data is in a lower layer. */
bool ovl_is_metacopy(struct ovl_fs *fs, int fd)
{
	return ovl_fgetxattr(fd, OVL_XNAME(fs, "overlay.metacopy"), NULL, 0) >= 0;
}
