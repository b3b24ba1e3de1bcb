// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Origin file handles and the hard-link index, in kernel overlayfs's
 * format (index=on), so that either can read what the other wrote.
 *
 * A copied-up file records where it came from in overlay.origin: the
 * lower file's handle (name_to_handle_at) wrapped in the kernel's struct
 * ovl_fb.  A lower file with more than one link is copied up into
 * workdir/index/<hex of that handle> and linked from there to its path,
 * so every other name of the lower inode, looked up later, finds the
 * copy through the index and shows the same data: links survive
 * copy-up.  overlay.nlink keeps the merged link count, relative to the
 * upper inode's own ("U+1", "U-2"), as the kernel writes it.
 */
#include "config.h"

#include "overlay.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

/* struct ovl_fb: version 0, magic 0xfb, len, flags, type, uuid, fid. */
#define FB_HEADER 21
#define FB_MAGIC 0xfb

int ovl_origin_fh(struct ovl_fs *fs, int layer, int fd, unsigned char *fb,
		  size_t *len)
{
	struct {
		struct file_handle h;
		unsigned char fid[MAX_HANDLE_SZ];
	} buf;
	int mnt;

	buf.h.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(fd, "", &buf.h, &mnt, AT_EMPTY_PATH) < 0)
		return -errno;
	if (FB_HEADER + buf.h.handle_bytes > OVL_FH_MAX)
		return -EOVERFLOW;
	fb[0] = 0;
	fb[1] = FB_MAGIC;
	fb[2] = (unsigned char)(FB_HEADER + buf.h.handle_bytes);
	fb[3] = 0; /* little-endian fid */
	fb[4] = (unsigned char)buf.h.handle_type;
	memcpy(fb + 5, fs->layers[layer].uuid, 16);
	memcpy(fb + FB_HEADER, buf.h.f_handle, buf.h.handle_bytes);
	*len = FB_HEADER + buf.h.handle_bytes;
	return 0;
}

int ovl_index_name(struct ovl_fs *fs, int layer, int fd, char *name,
		   size_t size)
{
	unsigned char fb[OVL_FH_MAX];
	size_t len;
	int err;

	err = ovl_origin_fh(fs, layer, fd, fb, &len);
	if (err)
		return err;
	if (size < 2 * len + 1)
		return -ENAMETOOLONG;
	for (size_t i = 0; i < len; i++)
		snprintf(name + 2 * i, 3, "%02x", fb[i]);
	return 0;
}

bool ovl_index_wanted(const struct ovl_fs *fs, const struct stat *st)
{
	return fs->index_fd >= 0 && !S_ISDIR(st->st_mode) && st->st_nlink > 1;
}

int ovl_index_open(struct ovl_fs *fs, int layer, int lowerfd)
{
	char name[2 * OVL_FH_MAX + 1];
	int err;

	err = ovl_index_name(fs, layer, lowerfd, name, sizeof(name));
	if (err)
		return err == -EOPNOTSUPP || err == -EOVERFLOW ? -ENOENT : err;
	return ovl_openat_name(fs->index_fd, name, O_PATH);
}

/* The merged link count stored on an indexed upper inode, or -ENODATA. */
static int nlink_delta(struct ovl_fs *fs, int fd, long *delta)
{
	char v[32];
	ssize_t n = ovl_fgetxattr(fd, OVL_XNAME(fs, "overlay.nlink"), v,
				  sizeof(v) - 1);

	if (n < 0)
		return (int)n;
	return ovl_nlink_parse(v, (size_t)n, delta);
}

/*
 * An overlay.nlink value, "U+N" or "U-N": the merged link count relative
 * to the upper inode's.  ("L" values, relative to the lower inode, are not
 * written by the kernel for copied-up files and are refused.)
 */
int ovl_nlink_parse(const char *v, size_t n, long *delta)
{
	char buf[32], *end;

	if (n < 3 || n >= sizeof(buf) || v[0] != 'U' || (v[1] != '+' && v[1] != '-'))
		return -EINVAL;
	memcpy(buf, v, n);
	buf[n] = '\0';
	if (buf[2] < '0' || buf[2] > '9')
		return -EINVAL;
	errno = 0;
	*delta = strtol(buf + 1, &end, 10);
	return *end || errno ? -EINVAL : 0;
}

/*
 * The merged link count of the upper file @fd (@st its stat): its own,
 * corrected by the overlay.nlink an indexed file carries.
 */
nlink_t ovl_index_nlink(struct ovl_fs *fs, int fd, const struct stat *st)
{
	long d = 0;

	if (S_ISDIR(st->st_mode) || nlink_delta(fs, fd, &d))
		return st->st_nlink;
	if ((long)st->st_nlink + d < 0)
		return 0;
	return (nlink_t)((long)st->st_nlink + d);
}

int ovl_index_set_nlink(struct ovl_fs *fs, int fd, long merged)
{
	struct stat st;
	char v[32];
	int n, wfd;

	if (fstatat(fd, "", &st, AT_EMPTY_PATH) < 0)
		return -errno;
	n = snprintf(v, sizeof(v), "U%+ld", merged - (long)st.st_nlink);
	wfd = ovl_reopen(fd, O_RDONLY);
	if (wfd < 0)
		return wfd;
	if (fsetxattr(wfd, OVL_XNAME(fs, "overlay.nlink"), v, n, 0) < 0) {
		n = -errno;
		close(wfd);
		return n;
	}
	close(wfd);
	return 0;
}

/* Merged link count of the indexed file @fd after a change by @d. */
int ovl_index_adjust(struct ovl_fs *fs, int fd, long d)
{
	struct stat st;
	long merged;

	if (fstatat(fd, "", &st, AT_EMPTY_PATH) < 0)
		return -errno;
	merged = (long)ovl_index_nlink(fs, fd, &st) + d;
	return ovl_index_set_nlink(fs, fd, merged < 0 ? 0 : merged);
}

/*
 * The last name of an indexed file is gone: remove its index entry, found
 * through the origin handle recorded on @fd, if it is still @fd's inode.
 */
int ovl_index_cleanup(struct ovl_fs *fs, int fd)
{
	unsigned char fb[OVL_FH_MAX];
	char name[2 * OVL_FH_MAX + 1];
	struct stat a, b;
	ssize_t n;

	n = ovl_fgetxattr(fd, OVL_XNAME(fs, "overlay.origin"), fb, sizeof(fb));
	if (n < FB_HEADER || fb[1] != FB_MAGIC)
		return n < 0 ? (int)n : -EINVAL;
	for (ssize_t i = 0; i < n; i++)
		snprintf(name + 2 * i, 3, "%02x", fb[i]);
	if (fstatat(fd, "", &a, AT_EMPTY_PATH) < 0 ||
	    fstatat(fs->index_fd, name, &b, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return 0;
	return unlinkat(fs->index_fd, name, 0) < 0 ? -errno : 0;
}

/*
 * The st_ino to show for a copied-up file from its origin handle @fb (@n
 * bytes), as kernel overlayfs would: the lower inode number, where the
 * handle carries it in the clear (FILEID_INO32_GEN and _PARENT of 8 and 16
 * bytes, as ext2/3/4 and most local filesystems make; tmpfs's 12-byte
 * FILEID_INO32_GEN starts with the generation), mapped as a file of the
 * first lower layer whose filesystem UUID matches.  0 otherwise.
 */
uint64_t ovl_fb_ino(struct ovl_fs *fs, const unsigned char *fb, size_t n)
{
	uint32_t ino;

	if (!fs->upper || n < FB_HEADER || fb[0] != 0 || fb[1] != FB_MAGIC ||
	    fb[2] != n || !((fb[4] == 1 && n == FB_HEADER + 8) ||
			    (fb[4] == 2 && n == FB_HEADER + 16)))
		return 0;
	memcpy(&ino, fb + FB_HEADER, sizeof(ino));
	for (int l = 1; l < fs->nlayers; l++)
		if (!memcmp(fs->layers[l].uuid, fb + 5, 16))
			return ovl_layer_map_ino(fs, l, le32toh(ino));
	return 0;
}

/* The same for upper file @fd, from its overlay.origin: what kernel
 * overlayfs, which records no inode number, shows. */
uint64_t ovl_origin_fh_ino(struct ovl_fs *fs, int fd)
{
	unsigned char fb[OVL_FH_MAX];
	ssize_t n;

	if (!fs->upper)
		return 0;
	n = ovl_fgetxattr(fd, OVL_XNAME(fs, "overlay.origin"), fb, sizeof(fb));
	return n > 0 ? ovl_fb_ino(fs, fb, (size_t)n) : 0;
}
