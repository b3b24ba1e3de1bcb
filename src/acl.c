// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Owners and POSIX ACLs between the mount's view and the disk: the
 * uidmapping=/gidmapping= translation of ids (fuse-overlayfs's meaning: a
 * range "disk:shown:count" shows on-disk id disk+i as shown+i), the same
 * translation inside system.posix_acl_* values and of the root id of a
 * version 3 file capability, and the access ACL a new object inherits from
 * its parent's default ACL (the kernel's posix_acl_create), since overpass
 * builds new objects in workdir where the parent's default ACL cannot act.
 *
 * ACL values are the kernel's xattr format: a little-endian u32 version
 * (2), then entries of u16 tag, u16 perm, u32 id.
 */
#include "config.h"

#include "overlay.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#define ACL_VERSION 2
#define ACL_HEADER 4
#define ACL_ENTRY 8
#define TAG_USER_OBJ 0x01
#define TAG_USER 0x02
#define TAG_GROUP_OBJ 0x04
#define TAG_GROUP 0x08
#define TAG_MASK 0x10
#define TAG_OTHER 0x20

uint32_t ovl_idmap_apply(const struct ovl_idmap *m, int n, uint32_t id,
			 bool to_disk)
{
	if (n == 0)
		return id;
	for (int i = 0; i < n; i++) {
		uint32_t from = to_disk ? m[i].inner : m[i].outer;
		uint32_t to = to_disk ? m[i].outer : m[i].inner;

		if (id >= from && id - from < m[i].count)
			return to + (id - from);
	}
	return OVL_OVERFLOW_ID;
}

static bool acl_valid(const void *value, size_t len)
{
	uint32_t version;

	if (len < ACL_HEADER || (len - ACL_HEADER) % ACL_ENTRY)
		return false;
	memcpy(&version, value, sizeof(version));
	return le32toh(version) == ACL_VERSION;
}

static uint16_t entry_tag(const unsigned char *e)
{
	uint16_t v;

	memcpy(&v, e, sizeof(v));
	return le16toh(v);
}

static uint16_t entry_perm(const unsigned char *e)
{
	uint16_t v;

	memcpy(&v, e + 2, sizeof(v));
	return le16toh(v);
}

static void entry_set_perm(unsigned char *e, uint16_t perm)
{
	uint16_t v = htole16(perm);

	memcpy(e + 2, &v, sizeof(v));
}

int ovl_acl_map_ids(const struct ovl_params *p, void *value, size_t len,
		    bool to_disk)
{
	unsigned char *e = value;

	if (!p->nuidmap && !p->ngidmap)
		return 0;
	if (!acl_valid(value, len))
		return -EINVAL;
	for (size_t off = ACL_HEADER; off < len; off += ACL_ENTRY) {
		uint16_t tag = entry_tag(e + off);
		uint32_t id;

		if (tag != TAG_USER && tag != TAG_GROUP)
			continue;
		memcpy(&id, e + off + 4, sizeof(id));
		id = le32toh(id);
		id = tag == TAG_USER ?
			ovl_idmap_apply(p->uidmap, p->nuidmap, id, to_disk) :
			ovl_idmap_apply(p->gidmap, p->ngidmap, id, to_disk);
		id = htole32(id);
		memcpy(e + off + 4, &id, sizeof(id));
	}
	return 0;
}

/*
 * A version 3 file capability (security.capability, struct
 * vfs_ns_cap_data: u32 magic_etc, two u32 pairs, u32 rootid) holds the
 * root id of the user namespace it is good in, mapped as an owner is;
 * versions 1 and 2 hold no id.  0, or -EINVAL for a malformed value.
 */
int ovl_fcap_map_rootid(const struct ovl_params *p, void *value, size_t len,
			bool to_disk)
{
	const uint32_t rev3 = 0x03000000, rev_mask = 0xff000000;
	unsigned char *v = value;
	uint32_t magic, id;

	if (!p->nuidmap)
		return 0;
	if (len < sizeof(magic))
		return -EINVAL;
	memcpy(&magic, v, sizeof(magic));
	if ((le32toh(magic) & rev_mask) != rev3)
		return 0;
	if (len != 24)
		return -EINVAL;
	memcpy(&id, v + 20, sizeof(id));
	id = htole32(ovl_idmap_apply(p->uidmap, p->nuidmap, le32toh(id), to_disk));
	memcpy(v + 20, &id, sizeof(id));
	return 0;
}

/*
 * posix_acl_create: mask the default ACL @acl (modified in place) by the
 * requested @mode and the mode by it.  Returns 1 when the result needs an
 * access ACL (it has named entries or a mask), 0 when the mode says it
 * all, -EINVAL for a malformed value.
 */
int ovl_acl_create_masq(void *acl, size_t len, mode_t *mode)
{
	unsigned char *e = acl, *group_obj = NULL, *mask = NULL;
	mode_t m = *mode & 0777;
	int not_equiv = 0;

	if (!acl_valid(acl, len))
		return -EINVAL;
	for (size_t off = ACL_HEADER; off < len; off += ACL_ENTRY) {
		unsigned char *pa = e + off;
		uint16_t perm = entry_perm(pa);

		switch (entry_tag(pa)) {
		case TAG_USER_OBJ:
			perm &= (m >> 6) & 7;
			entry_set_perm(pa, perm);
			m &= (mode_t)(perm << 6) | ~(mode_t)0700;
			break;
		case TAG_USER:
		case TAG_GROUP:
			not_equiv = 1;
			break;
		case TAG_GROUP_OBJ:
			group_obj = pa;
			break;
		case TAG_OTHER:
			perm &= m & 7;
			entry_set_perm(pa, perm);
			m &= perm | ~(mode_t)07;
			break;
		case TAG_MASK:
			mask = pa;
			not_equiv = 1;
			break;
		default:
			return -EINVAL;
		}
	}
	if (!mask)
		mask = group_obj;
	if (!mask)
		return -EINVAL;
	entry_set_perm(mask, entry_perm(mask) & ((m >> 3) & 7));
	m &= (mode_t)(entry_perm(mask) << 3) | ~(mode_t)070;
	*mode = (*mode & ~(mode_t)0777) | m;
	return not_equiv;
}

/*
 * "uid:gid:mode" (mode in octal, file type bits ignored) into @st; 0 or
 * -EINVAL.
 */
int ovl_override_parse(const char *v, size_t len, struct stat *st)
{
	char buf[64], *end;
	unsigned long uid, gid, mode;

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, v, len);
	buf[len] = '\0';
	uid = strtoul(buf, &end, 10);
	if (*end != ':' || end == buf)
		return -EINVAL;
	gid = strtoul(end + 1, &end, 10);
	if (*end != ':')
		return -EINVAL;
	mode = strtoul(end + 1, &end, 8);
	if (*end || uid > 0xffffffffUL || gid > 0xffffffffUL)
		return -EINVAL;
	st->st_uid = (uid_t)uid;
	st->st_gid = (gid_t)gid;
	st->st_mode = (st->st_mode & S_IFMT) | (mode & 07777);
	return 0;
}

/* Owner and mode of a file or directory of @layer kept in an xattr. */
void ovl_override_stat(struct ovl_fs *fs, int layer, int fd, struct stat *st)
{
	const char *name = fs->layers[layer].override;
	char v[64];
	ssize_t n;

	if (!name || !(S_ISREG(st->st_mode) || S_ISDIR(st->st_mode)))
		return;
	n = ovl_fgetxattr(fd, name, v, sizeof(v));
	if (n > 0)
		ovl_override_parse(v, (size_t)n, st);
}

/*
 * The real mode of an upper file whose owner and mode live in an override
 * record: without setuid and setgid, since the real owner is the daemon's
 * (root on a root mount) and the bits would let anyone who reaches the
 * upper run the file as that owner.
 */
mode_t ovl_override_real_mode(mode_t mode)
{
	return S_ISREG(mode) ? mode & ~(mode_t)(S_ISUID | S_ISGID) : mode;
}

/*
 * xattr_permissions: record owner and mode on @fd (O_PATH) of the upper,
 * and take setuid and setgid off the real file.
 */
int ovl_override_set(struct ovl_fs *fs, int fd, uid_t uid, gid_t gid,
		     mode_t mode)
{
	char v[64];
	int n = snprintf(v, sizeof(v), "%u:%u:%o", (unsigned)uid,
			 (unsigned)gid, (unsigned)(mode & 07777));
	int rfd = ovl_reopen(fd, O_RDONLY | (S_ISDIR(mode) ? O_DIRECTORY : 0));
	struct stat st;
	int err = 0;

	if (rfd < 0)
		return rfd;
	if (fstat(rfd, &st) < 0)
		err = -errno;
	else if (ovl_override_real_mode(st.st_mode) != st.st_mode &&
		 fchmod(rfd, ovl_override_real_mode(st.st_mode) & 07777) < 0)
		err = -errno;
	if (!err && fsetxattr(rfd, fs->upper->override, v, (size_t)n, 0) < 0)
		err = -errno;
	close(rfd);
	return err;
}
