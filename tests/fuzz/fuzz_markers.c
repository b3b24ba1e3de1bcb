// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer harness of the readers of on-disk markers a hostile layer
 * controls: redirect values, overlay.nlink, override_stat owners, POSIX
 * ACL values (id mapping and inheritance), file capabilities (root id
 * mapping), uid/gid mapping options, and the trust rule that decides
 * which marker xattrs count (ovl_marker_trusted).
 * The first input byte picks the reader.
 */
#include "config.h"

#include "overlay.h"

#include <stdlib.h>
#include <string.h>

static void redirect(const unsigned char *d, size_t n)
{
	char *buf = malloc(n + 1);
	int r;

	if (!buf)
		return;
	memcpy(buf, d, n);
	buf[n] = '\0';
	r = ovl_redirect_check(buf, n);
	/* what is accepted never climbs out: no ".." component */
	if (r == 0 && n == strlen(buf)) {
		for (char *c = buf; (c = strstr(c, "..")); c++)
			if ((c == buf || c[-1] == '/') && (c[2] == '/' || !c[2]))
				abort();
	}
	free(buf);
}

static void acl(const unsigned char *d, size_t n)
{
	struct ovl_idmap m = { 0, 100000, 65536 };
	struct ovl_params p = { .uidmap = &m, .nuidmap = 1, .gidmap = &m,
				.ngidmap = 1 };
	unsigned char *v = malloc(n ? n : 1);
	mode_t mode = 0100666;

	if (!v)
		return;
	memcpy(v, d, n);
	ovl_acl_map_ids(&p, v, n, true);
	ovl_acl_map_ids(&p, v, n, false);
	/* the same bytes as a file capability (its root id is mapped) */
	memcpy(v, d, n);
	ovl_fcap_map_rootid(&p, v, n, false);
	memcpy(v, d, n);
	if (ovl_acl_create_masq(v, n, &mode) >= 0 && (mode & ~0100777))
		abort(); /* inheritance only ever removes permission bits */
	free(v);
}

static void text(const unsigned char *d, size_t n, int which)
{
	char *buf = malloc(n + 1);
	struct stat st = { .st_mode = 0100644 };
	struct ovl_idmap *m = NULL;
	long delta;
	int nm;

	if (!buf)
		return;
	memcpy(buf, d, n);
	buf[n] = '\0';
	if (which == 0)
		ovl_override_parse(buf, n, &st);
	else if (which == 1)
		ovl_nlink_parse(buf, n, &delta);
	else if (ovl_idmap_parse("uidmapping", buf, &m, &nm) == 0)
		free(m);
	free(buf);
}

static bool has_prefix(const char *s, const char *p)
{
	return !strncmp(s, p, strlen(p));
}

static bool has_suffix(const char *s, const char *x)
{
	size_t n = strlen(s), m = strlen(x);

	return n >= m && !strcmp(s + n - m, x);
}

/*
 * The trust rule against a name and a mount configuration from the input:
 * a root mount trusts no user.* marker but the override records it asked
 * for with xattr_permissions=2, a user-namespace mount no trusted.* one,
 * and no name outside trusted., security. and user. counts; every name
 * of the form of a marker is one the mount's users can neither set nor
 * read.
 */
static void trust(const unsigned char *d, size_t n)
{
	struct ovl_params p = { 0 };
	struct ovl_fs fs = { .p = &p };
	char *name;
	bool t;

	if (n < 1)
		return;
	fs.xns = d[0] & 1 ? OVL_XNS_USER : OVL_XNS_TRUSTED;
	p.xattr_permissions = (d[0] >> 1) % 3;
	name = malloc(n);
	if (!name)
		return;
	memcpy(name, d + 1, n - 1);
	name[n - 1] = '\0';
	t = ovl_marker_trusted(&fs, name);
	if (t && fs.xns == OVL_XNS_TRUSTED && has_prefix(name, "user.") &&
	    !(p.xattr_permissions == 2 && has_suffix(name, ".override_stat")))
		abort();
	if (t && fs.xns == OVL_XNS_USER && has_prefix(name, "trusted."))
		abort();
	if (t && !has_prefix(name, "trusted.") && !has_prefix(name, "user.") &&
	    !has_prefix(name, "security."))
		abort();
	if ((has_prefix(name, "trusted.overlay.") || has_prefix(name, "user.overlay.") ||
	     has_prefix(name, "user.fuseoverlayfs.") || has_prefix(name, "user.containers.") ||
	     has_suffix(name, ".override_stat")) && !ovl_is_private_xattr(name))
		abort();
	free(name);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] >= 250) {
		trust(data + 1, size - 1);
		return 0;
	}
	switch (data[0] % 5) {
	case 0:
		redirect(data + 1, size - 1);
		break;
	case 1:
		acl(data + 1, size - 1);
		break;
	default:
		text(data + 1, size - 1, data[0] % 5 - 2);
		break;
	}
	return 0;
}
