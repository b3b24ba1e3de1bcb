// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of id mapping, ACL and file capability arithmetic (acl.c), as
 * TAP.
 */
#include "config.h"

#include "overlay.h"

#include <endian.h>
#include <stdarg.h>
#include <string.h>

static int ntest, nfail;

static void ok(bool cond, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", cond ? "" : "not ", ++ntest);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!cond)
		nfail++;
}

/* An ACL xattr value from (tag, perm, id) triples. */
static size_t mkacl(unsigned char *buf, int n, const unsigned *t)
{
	uint32_t v = htole32(2);

	memcpy(buf, &v, 4);
	for (int i = 0; i < n; i++) {
		uint16_t tag = htole16(t[3 * i]), perm = htole16(t[3 * i + 1]);
		uint32_t id = htole32(t[3 * i + 2]);

		memcpy(buf + 4 + 8 * i, &tag, 2);
		memcpy(buf + 6 + 8 * i, &perm, 2);
		memcpy(buf + 8 + 8 * i, &id, 4);
	}
	return 4 + 8 * n;
}

static unsigned perm_at(const unsigned char *buf, int i)
{
	uint16_t p;

	memcpy(&p, buf + 6 + 8 * i, 2);
	return le16toh(p);
}

static unsigned id_at(const unsigned char *buf, int i)
{
	uint32_t id;

	memcpy(&id, buf + 8 + 8 * i, 4);
	return le32toh(id);
}

static void test_idmap(void)
{
	struct ovl_idmap m[2] = { { 0, 100000, 1000 }, { 5000, 2000, 10 } };

	ok(ovl_idmap_apply(m, 0, 42, true) == 42, "no mapping: ids unchanged");
	ok(ovl_idmap_apply(m, 2, 0, true) == 100000, "0 -> 100000 on disk");
	ok(ovl_idmap_apply(m, 2, 999, true) == 100999, "last id of a range");
	ok(ovl_idmap_apply(m, 2, 1000, true) == OVL_OVERFLOW_ID, "outside: overflow id");
	ok(ovl_idmap_apply(m, 2, 100005, false) == 5, "100005 on disk shows as 5");
	ok(ovl_idmap_apply(m, 2, 2009, false) == 5009, "second range back");
	ok(ovl_idmap_apply(m, 2, 7, false) == OVL_OVERFLOW_ID, "unmapped disk id");
}

static void test_acl_map(void)
{
	struct ovl_idmap u = { 0, 100000, 65536 }, g = { 0, 200000, 65536 };
	struct ovl_params p = { .uidmap = &u, .nuidmap = 1, .gidmap = &g,
				.ngidmap = 1 };
	const unsigned t[] = { 1, 6, 0, 2, 4, 7, 4, 4, 0, 8, 4, 9, 16, 7, 0, 32, 0, 0 };
	unsigned char b[64];
	size_t n = mkacl(b, 6, t);

	ok(ovl_acl_map_ids(&p, b, n, true) == 0, "map an ACL to disk");
	ok(id_at(b, 1) == 100007 && id_at(b, 3) == 200009, "named user and group mapped");
	ok(id_at(b, 0) == 0 && id_at(b, 2) == 0, "owner entries untouched");
	ok(ovl_acl_map_ids(&p, b, n, false) == 0 && id_at(b, 1) == 7 &&
	   id_at(b, 3) == 9, "and back");
	ok(ovl_acl_map_ids(&p, b, n - 3, true) < 0, "a truncated value is refused");
}

static void test_fcap_map(void)
{
	struct ovl_idmap u = { .inner = 100000, .outer = 0, .count = 65536 };
	struct ovl_params p = { .uidmap = &u, .nuidmap = 1 };
	uint32_t v3[6] = { htole32(0x03000001), htole32(1 << 13), 0, 0, 0,
			   htole32(5) };
	uint32_t v2[5] = { htole32(0x02000001), htole32(1 << 13), 0, 0, 0 };

	ok(ovl_fcap_map_rootid(&p, v3, sizeof(v3), false) == 0 &&
	   le32toh(v3[5]) == 100005, "v3 root id 5 on disk shows as 100005");
	ok(ovl_fcap_map_rootid(&p, v3, sizeof(v3), true) == 0 &&
	   le32toh(v3[5]) == 5, "and goes back to disk as 5");
	ok(ovl_fcap_map_rootid(&p, v2, sizeof(v2), false) == 0 &&
	   le32toh(v2[1]) == 1 << 13, "v2 carries no id: unchanged");
	ok(ovl_fcap_map_rootid(&p, v3, sizeof(v3) - 4, false) < 0,
	   "a short v3 value is refused");
}

static void test_create_masq(void)
{
	/* default ACL u::rwx u:1000:rwx g::r-x m::rwx o::r-x, mode 0666 */
	const unsigned t[] = { 1, 7, 0, 2, 7, 1000, 4, 5, 0, 16, 7, 0, 32, 5, 0 };
	const unsigned base[] = { 1, 7, 0, 4, 5, 0, 32, 0, 0 };
	unsigned char b[64];
	size_t n = mkacl(b, 5, t);
	mode_t mode = 0100666;

	ok(ovl_acl_create_masq(b, n, &mode) == 1, "named entry: an access ACL is needed");
	ok(mode == 0100664, "mode 0666 masked to 0664 (other r-x), got %o", (unsigned)mode);
	ok(perm_at(b, 0) == 6 && perm_at(b, 3) == 6 && perm_at(b, 4) == 4,
	   "owner rw-, mask rw-, other r--");
	n = mkacl(b, 3, base);
	mode = 040777;
	ok(ovl_acl_create_masq(b, n, &mode) == 0, "base entries only: the mode says it all");
	ok(mode == 040750, "mode 0777 masked to 0750, got %o", (unsigned)mode);
}

int main(void)
{
	test_idmap();
	test_acl_map();
	test_fcap_map();
	test_create_masq();
	printf("1..%d\n", ntest);
	return nfail ? 1 : 0;
}
