// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer harness of the readers of on-disk markers a hostile layer
 * controls: redirect values, overlay.nlink, override_stat owners, POSIX
 * ACL values (id mapping and inheritance), file capabilities (root id
 * mapping), and uid/gid mapping options.
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

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	if (size < 1)
		return 0;
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
