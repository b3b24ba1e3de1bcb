// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the option parser (params.c), as TAP.
 */
#include "config.h"

#include "overlay.h"

#include <stdarg.h>
#include <string.h>
#include <unistd.h>

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

/* Parse a command line given as one string split on spaces. */
static int parse(struct ovl_params *p, const char *line, enum ovl_action *a)
{
	char *copy = strdup(line), *argv[32], *save = NULL;
	int argc = 0, r;

	argv[argc++] = "overpass";
	for (char *t = strtok_r(copy, " ", &save); t && argc < 31;
	     t = strtok_r(NULL, " ", &save))
		argv[argc++] = t;
	argv[argc] = NULL;
	ovl_params_init(p);
	r = ovl_params_parse(p, argc, argv, a);
	free(copy);
	return r;
}

static void test_basic(void)
{
	struct ovl_params p;
	enum ovl_action a;
	int r;

	r = parse(&p, "-o lowerdir=/a:/b,upperdir=/u,workdir=/w /mnt", &a);
	ok(r == 0 && a == OVL_ACTION_MOUNT, "basic command line parses");
	ok(p.nlower == 2 && !strcmp(p.lowerdirs[0], "/a") &&
	   !strcmp(p.lowerdirs[1], "/b"), "lowerdir split, topmost first");
	ok(!strcmp(p.upperdir, "/u") && !strcmp(p.workdir, "/w") &&
	   !strcmp(p.mountpoint, "/mnt") && !p.read_only, "upper, work, mountpoint");
	ovl_params_free(&p);

	r = parse(&p, "overpass /mnt -o lowerdir=/a,rw,dev,suid", &a);
	ok(r == 0 && !strcmp(p.mountpoint, "/mnt"), "mount.fuse helper form");
	ok(p.read_only, "no upperdir means read-only");
	ok(p.fuse_opts && strstr(p.fuse_opts, "dev") && !strstr(p.fuse_opts, "rw"),
	   "mount flags handed to libfuse (%s)", p.fuse_opts ? p.fuse_opts : "");
	ovl_params_free(&p);
}

static void test_escapes(void)
{
	struct ovl_params p;
	enum ovl_action a;
	int r;

	r = parse(&p, "-o lowerdir=/a\\:b:/c\\,d /m", &a);
	ok(r == 0 && p.nlower == 2 && !strcmp(p.lowerdirs[0], "/a:b") &&
	   !strcmp(p.lowerdirs[1], "/c,d"), "\\: and \\, escapes");
	ovl_params_free(&p);

	/* escapes are read once, as kernel overlayfs reads them */
	r = parse(&p, "-o lowerdir=e\\\\:f /m", &a);
	ok(r == 0 && p.nlower == 2 && !strcmp(p.lowerdirs[0], "e\\") &&
	   !strcmp(p.lowerdirs[1], "f"), "e\\\\:f is the layers e\\ and f (%d: %s)",
	   p.nlower, p.nlower ? p.lowerdirs[0] : "");
	ovl_params_free(&p);
	r = parse(&p, "-o lowerdir=\\e\\\\\\:f:g /m", &a);
	ok(r == 0 && p.nlower == 2 && !strcmp(p.lowerdirs[0], "e\\:f") &&
	   !strcmp(p.lowerdirs[1], "g"), "any character may be escaped: \\e\\\\\\:f is e\\:f");
	ovl_params_free(&p);
	r = parse(&p, "-o lowerdir=/a,upperdir=/u\\\\x\\,y,workdir=/w\\:z /m", &a);
	ok(r == 0 && !strcmp(p.upperdir, "/u\\x,y") && !strcmp(p.workdir, "/w:z"),
	   "upperdir and workdir unescaped once (%s, %s)", p.upperdir, p.workdir);
	ovl_params_free(&p);
	r = parse(&p, "-o lowerdir=/a,fsname=x\\,y /m", &a);
	ok(r == 0 && p.fuse_opts && strstr(p.fuse_opts, "fsname=x\\,y"),
	   "escapes kept in options handed to libfuse (%s)",
	   p.fuse_opts ? p.fuse_opts : "");
	ovl_params_free(&p);
}

static void test_statsfile(void)
{
	struct ovl_params p;
	enum ovl_action a;
	char *cwd = getcwd(NULL, 0), *up, want[4096];
	int r;

	snprintf(want, sizeof(want), "%s/s.txt", cwd);
	r = parse(&p, "-o lowerdir=/a,statsfile=s.txt /m", &a);
	ok(r == 0 && !strcmp(p.statsfile, want),
	   "a relative statsfile is taken from the current directory (%s)",
	   p.statsfile ? p.statsfile : "");
	ovl_params_free(&p);
	r = parse(&p, "-o lowerdir=/a,statsfile=/x/s.txt /m", &a);
	ok(r == 0 && !strcmp(p.statsfile, "/x/s.txt"), "an absolute one is kept");
	ovl_params_free(&p);
	/* its directory resolved, so that it outlives the one it came from */
	up = realpath("..", NULL);
	snprintf(want, sizeof(want), "%s/s.txt", up && strcmp(up, "/") ? up : "");
	free(up);
	r = parse(&p, "-o lowerdir=/a,statsfile=./.././s.txt /m", &a);
	ok(r == 0 && !strcmp(p.statsfile, want),
	   "a relative statsfile's directory is resolved (%s)",
	   p.statsfile ? p.statsfile : "");
	ovl_params_free(&p);
	r = parse(&p, "-o lowerdir=/a,statsfile=no/such/dir/s.txt /m", &a);
	ok(r == 0 && p.statsfile && p.statsfile[0] == '/' &&
	   strstr(p.statsfile, "/no/such/dir/s.txt"),
	   "a statsfile in a directory not there yet is kept from the current one (%s)",
	   p.statsfile ? p.statsfile : "");
	ovl_params_free(&p);
	free(cwd);
}

static void test_errors(void)
{
	static const char *const bad[] = {
		"-o lowerdir=/a,bogus /m",
		"-o lowerdir=/a,upperdir=/u /m",
		"-o lowerdir=/a,workdir=/w /m",
		"-o upperdir=/u,workdir=/w /m",
		"-o lowerdir=/a",
		"-o lowerdir=/a: /m",
		"-o lowerdir=/a,uidmapping=0:1000 /m",
		"-o lowerdir=/a,uidmapping=0:x:1 /m",
		"-o lowerdir=/a,gidmapping=0:1:0 /m",
		"-o lowerdir=/a,timeout=abc /m",
		"-o lowerdir=/a,passthrough=maybe /m",
		"-o lowerdir=/a,io_uring=on /m",
		"-o lowerdir=/a,xattr_permissions=3 /m",
		"-o lowerdir=/a,squash_to_uid=-1 /m",
		"-o lowerdir=/a,volatile=1 /m",
		"-o lowerdir=/a --frobnicate /m",
		"-o lowerdir=/a /m /n /o",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ovl_params p;
		enum ovl_action a;

		ok(parse(&p, bad[i], &a) < 0, "refused: %s", bad[i]);
		ovl_params_free(&p);
	}
}

static void test_compat(void)
{
	struct ovl_params p;
	enum ovl_action a;
	int r;

	r = parse(&p, "-o lowerdir=/a,upperdir=/u,workdir=/w,uidmapping=0:1000:10:10:2000:5,"
		      "gidmapping=0:1000:10,squash_to_root,static_nlink,noacl,"
		      "xino=auto,ino32_t,timeout=2.5,threaded=0,fsync=0,"
		      "xattr_permissions=2,context=system_u:object_r:t:s0,"
		      "redirect_dir=on,noxattrs=1,passthrough=off,x-systemd.automount,"
		      "defaults,nofail /m",
		  &a);
	ok(r == 0, "every fuse-overlayfs option accepted");
	ok(p.nuidmap == 2 && p.uidmap[1].outer == 10 && p.uidmap[1].inner == 2000 &&
	   p.uidmap[1].count == 5, "uidmapping ranges");
	ok(p.timeout == 2.5 && !p.threaded && !p.fsync && p.noxattrs == 1 &&
	   p.passthrough == OVL_PASSTHROUGH_OFF && p.xattr_permissions == 2,
	   "values recorded");
	ovl_params_free(&p);

	/* podman quotes an SELinux context holding commas (MCS categories) */
	r = parse(&p, "-o lowerdir=/a,context=\"system_u:object_r:t:s0:c1,c2\","
		      "fscontext=\"u:r:t:s0:c3,c4\",ro /m", &a);
	ok(r == 0 && p.read_only, "a quoted context value keeps its commas");
	ovl_params_free(&p);
	r = parse(&p, "-o lowerdir=/a\"b,upperdir=/u,workdir=/w /m", &a);
	ok(r == 0 && !strcmp(p.lowerdirs[0], "/a\"b") && p.upperdir,
	   "a quote elsewhere is an ordinary character");
	ovl_params_free(&p);

	r = parse(&p, "-o lowerdir=/a /m", &a);
	ok(r == 0 && p.io_uring, "io_uring=auto by default");
	ovl_params_free(&p);
	r = parse(&p, "-o lowerdir=/a,io_uring=off /m", &a);
	ok(r == 0 && !p.io_uring, "io_uring=off");
	ovl_params_free(&p);
	r = parse(&p, "-o lowerdir=/a,io_uring=off,io_uring /m", &a);
	ok(r == 0 && p.io_uring, "a bare io_uring means auto");
	ovl_params_free(&p);

	r = parse(&p, "--stats /m", &a);
	ok(r == 0 && a == OVL_ACTION_STATS && !strcmp(p.mountpoint, "/m"),
	   "--stats MOUNTPOINT");
	ovl_params_free(&p);
}

/* Options that show a user's files as root's, and suid given or not. */
static void test_suid(void)
{
	static const struct {
		const char *opts;
		bool root;
	} cases[] = {
		{ "", false },
		{ ",squash_to_root", true },
		{ ",squash_to_uid=0", true },
		{ ",squash_to_gid=0", true },
		{ ",squash_to_uid=5", false },
		{ ",squash_to_root,squash_to_uid=5,squash_to_gid=6", false },
		{ ",squash_to_root,squash_to_uid=5", true },
		{ ",uidmapping=1000:0:1", true },
		{ ",gidmapping=1000:0:1", true },
		{ ",uidmapping=0:0:1:1000:0:1", true },
		{ ",uidmapping=0:0:65536", false },
		{ ",uidmapping=0:100000:65536,gidmapping=0:100000:65536", false },
		{ ",uidmapping=1:1:10", false },
		{ ",uidmapping=1000:0:1,squash_to_uid=7", false },
	};
	struct ovl_params p;
	enum ovl_action a;
	char line[256];
	int r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(line, sizeof(line), "-o lowerdir=/a%s /m", cases[i].opts);
		r = parse(&p, line, &a);
		ok(r == 0 && ovl_params_shows_root(&p) == cases[i].root,
		   "%s: %s", cases[i].opts[0] ? cases[i].opts + 1 : "no option",
		   cases[i].root ? "a user's file may show as root's" : "no user's file shows as root's");
		ovl_params_free(&p);
	}

	r = parse(&p, "-o lowerdir=/a /m", &a);
	ok(r == 0 && p.suid == -1, "neither suid nor nosuid: the default");
	ovl_params_free(&p);
	r = parse(&p, "-o lowerdir=/a,nosuid,suid /m", &a);
	ok(r == 0 && p.suid == 1 && (!p.fuse_opts || !strstr(p.fuse_opts, "suid")),
	   "suid, the last given, kept apart from libfuse's options");
	ovl_params_free(&p);
	r = parse(&p, "-o lowerdir=/a,suid,nosuid /m", &a);
	ok(r == 0 && p.suid == 0, "nosuid, the last given");
	ovl_params_free(&p);
	/* as mount.fuse3 calls it: its own suid last */
	r = parse(&p, "overpass /m -o rw,lowerdir=/a,squash_to_root,dev,suid", &a);
	ok(r == 0 && p.suid == -1, "the suid mount.fuse3 appends is not the user's");
	ovl_params_free(&p);
	r = parse(&p, "overpass /m -o rw,lowerdir=/a,suid,squash_to_root,dev,suid", &a);
	ok(r == 0 && p.suid == 1, "suid given through mount.fuse3");
	ovl_params_free(&p);
	r = parse(&p, "overpass /m -o rw,lowerdir=/a,nosuid,dev", &a);
	ok(r == 0 && p.suid == 0, "nosuid given through mount.fuse3");
	ovl_params_free(&p);
	r = parse(&p, "-o lowerdir=/a,squash_to_root,suid /m", &a);
	ok(r == 0 && p.suid == 1, "suid last on a plain command line is the user's");
	ovl_params_free(&p);
}

/* What an upgraded worker is given back (supervisor.c). */
static void test_worker_args(void)
{
	char *argv[] = { "overpass", "src", "-f", "-o", "lowerdir=l", "rel/m",
			 "-oupperdir=u", "-s", NULL };
	char *out[8] = { 0 }, *e;
	int n = ovl_params_options_only(8, argv, out);

	ok(n == 5 && !strcmp(out[0], "-f") && !strcmp(out[1], "-o") &&
	   !strcmp(out[2], "lowerdir=l") && !strcmp(out[3], "-oupperdir=u") &&
	   !strcmp(out[4], "-s"), "flags and -o lists kept, positionals left out");
	e = ovl_params_escape("/a:b,c\\d");
	ok(e && !strcmp(e, "/a\\:b\\,c\\\\d"), "a path escaped (%s)", e ? e : "");
	if (e) {
		struct ovl_params p;
		char *v[] = { "overpass", "-o", NULL, "/m", NULL }, opt[64];
		enum ovl_action a;

		snprintf(opt, sizeof(opt), "lowerdir=%s:/x,upperdir=%s,workdir=/w", e, e);
		v[2] = opt;
		ovl_params_init(&p);
		ok(ovl_params_parse(&p, 4, v, &a) == 0 && p.nlower == 2 &&
		   !strcmp(p.lowerdirs[0], "/a:b,c\\d") &&
		   !strcmp(p.upperdir, "/a:b,c\\d"), "and read back");
		ovl_params_free(&p);
	}
	free(e);
}

int main(void)
{
	test_basic();
	test_escapes();
	test_statsfile();
	test_errors();
	test_compat();
	test_suid();
	test_worker_args();
	printf("1..%d\n", ntest);
	return nfail ? 1 : 0;
}
