// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Mount options: the command line (fuse-overlayfs's, and the mount.fuse
 * helper form), the -o option table, defaults, and the option string handed
 * to libfuse's mount code.  Only syntax is checked here; layers.c checks
 * the paths themselves.
 */
#include "config.h"

#include "overlay.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How an option is handled. */
enum opt_kind {
	OPT_OURS,	/* parsed into struct ovl_params */
	OPT_FUSE,	/* handed to libfuse's mount code as is */
	OPT_IGNORE,	/* accepted and ignored (fstab words, no-ops) */
};

typedef int (*opt_fn)(struct ovl_params *p, const char *val);

struct opt_desc {
	const char *name;	/* option name, without "=value" */
	enum opt_kind kind;
	int takes_value;	/* 0 no, 1 required, 2 optional */
	opt_fn fn;		/* parser for OPT_OURS */
};

static int fail(const char *opt, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int fail(const char *opt, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ovl_log("%s: %s", opt, msg);
	return -EINVAL;
}

/*
 * An SELinux context option whose value starts with a double quote, as
 * podman writes it (context="system_u:object_r:container_file_t:s0:c1,c2"):
 * the kernel reads such a value up to the closing quote, commas included.
 */
static bool lsm_quote_opens(const char *cur, size_t k, char sep)
{
	static const char *const names[] = { "context=", "fscontext=",
					     "defcontext=", "rootcontext=" };

	if (sep != ',')
		return false;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (k == strlen(names[i]) && !strncmp(cur, names[i], k))
			return true;
	return false;
}

/*
 * Split @s on unescaped @sep, as kernel overlayfs reads its options: a
 * backslash escapes the character after it, whatever it is.  The option
 * list is split on commas with the escapes kept (the kernel's
 * ovl_next_opt), and each value then unescaped once, when it is read: a
 * lowerdir split on colons (ovl_parse_param_split_lowerdirs, then
 * ovl_unescape), a path.  So "lowerdir=e\\:f" is the two layers "e\" and
 * "f", and "lowerdir=a\:b" the one layer "a:b".  Options split on commas
 * keep a quoted SELinux context value whole.
 */
static int split_escaped(const char *s, char sep, bool unescape, char ***out,
			 int *n)
{
	char **v = NULL, *cur;
	size_t len = strlen(s), k = 0;
	int cnt = 0;
	bool quoted = false;

	cur = malloc(len + 1);
	if (!cur)
		return -ENOMEM;
	for (size_t i = 0;; i++) {
		if (s[i] == '\\' && s[i + 1]) {
			if (!unescape)
				cur[k++] = s[i];
			cur[k++] = s[++i];
			continue;
		}
		if (s[i] == '"' && (quoted || lsm_quote_opens(cur, k, sep)))
			quoted = !quoted;
		if ((s[i] == sep && !quoted) || s[i] == '\0') {
			char **nv = realloc(v, (cnt + 2) * sizeof(*v));
			if (!nv)
				goto nomem;
			v = nv;
			cur[k] = '\0';
			v[cnt] = strdup(cur);
			if (!v[cnt])
				goto nomem;
			v[++cnt] = NULL;
			k = 0;
			if (s[i] == '\0')
				break;
			continue;
		}
		cur[k++] = s[i];
	}
	free(cur);
	*out = v;
	*n = cnt;
	return 0;
nomem:
	free(cur);
	ovl_strv_free(v);
	return -ENOMEM;
}

/* @s with its escapes removed ("\x" is "x"), malloc'd, or NULL. */
static char *unescape_dup(const char *s)
{
	char *d = malloc(strlen(s) + 1), *q = d;

	if (!d)
		return NULL;
	for (; *s; s++) {
		if (*s == '\\' && s[1])
			s++;
		*q++ = *s;
	}
	*q = '\0';
	return d;
}

/* @s with '\\', ',' and ':' escaped, as split_escaped() reads an option
 * value back (a lowerdir entry, a path); malloc'd, or NULL. */
char *ovl_params_escape(const char *s)
{
	char *d = malloc(2 * strlen(s) + 1), *q = d;

	if (!d)
		return NULL;
	for (; *s; s++) {
		if (*s == '\\' || *s == ',' || *s == ':')
			*q++ = '\\';
		*q++ = *s;
	}
	*q = '\0';
	return d;
}

/*
 * The arguments of the command line @argv (@argc entries, [0] the
 * program) that are not positional, as ovl_params_parse() reads them:
 * flags and -o lists, into @out (room for @argc); their number.  For a
 * process that parses the command line again from another directory
 * (supervisor.c), which gives the paths resolved instead.
 */
int ovl_params_options_only(int argc, char **argv, char **out)
{
	int n = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-o") && i + 1 < argc) {
			out[n++] = argv[i++];
			out[n++] = argv[i];
		} else if (argv[i][0] == '-' && argv[i][1]) {
			out[n++] = argv[i];
		}
	}
	return n;
}

void ovl_strv_free(char **v)
{
	if (!v)
		return;
	for (char **q = v; *q; q++)
		free(*q);
	free(v);
}

/* A path option: its value unescaped, as kernel overlayfs reads its dirs. */
static int set_path(char **dst, const char *opt, const char *val)
{
	if (!*val)
		return fail(opt, "empty value");
	free(*dst);
	*dst = unescape_dup(val);
	return *dst ? 0 : -ENOMEM;
}

static int opt_lowerdir(struct ovl_params *p, const char *val)
{
	char **v;
	int n, err;

	err = split_escaped(val, ':', true, &v, &n);
	if (err)
		return err;
	for (int i = 0; i < n; i++) {
		if (!*v[i]) {
			ovl_strv_free(v);
			return fail("lowerdir", "empty layer in '%s'", val);
		}
	}
	ovl_strv_free(p->lowerdirs);
	p->lowerdirs = v;
	p->nlower = n;
	return 0;
}

static int opt_upperdir(struct ovl_params *p, const char *val)
{
	return set_path(&p->upperdir, "upperdir", val);
}

static int opt_workdir(struct ovl_params *p, const char *val)
{
	return set_path(&p->workdir, "workdir", val);
}

static int opt_statsfile(struct ovl_params *p, const char *val)
{
	return set_path(&p->statsfile, "statsfile", val);
}

/* fuse-overlayfs's NAME=0|1 switches; NAME alone means 1. */
static int parse_bool(const char *opt, const char *val, bool *out)
{
	if (!val || !strcmp(val, "1"))
		*out = true;
	else if (!strcmp(val, "0"))
		*out = false;
	else
		return fail(opt, "expected 0 or 1, got '%s'", val);
	return 0;
}

static int parse_small(const char *opt, const char *val, int max, int *out)
{
	unsigned long long v;

	if (ovl_parse_u64(val, &v) || v > (unsigned long long)max)
		return fail(opt, "expected a number from 0 to %d, got '%s'",
			    max, val);
	*out = (int)v;
	return 0;
}

static int opt_timeout(struct ovl_params *p, const char *val)
{
	char *end;
	double t;

	errno = 0;
	t = strtod(val, &end);
	if (errno || *end || end == val || t < 0)
		return fail("timeout", "expected seconds >= 0, got '%s'", val);
	p->timeout = t;
	return 0;
}

static int opt_threaded(struct ovl_params *p, const char *val)
{
	return parse_bool("threaded", val, &p->threaded);
}

static int opt_fsync(struct ovl_params *p, const char *val)
{
	return parse_bool("fsync", val, &p->fsync);
}

/* writeback=: the kernel's writeback cache where passthrough is not in use */
static int opt_writeback(struct ovl_params *p, const char *val)
{
	return parse_bool("writeback", val, &p->writeback);
}

static int opt_volatile(struct ovl_params *p, const char *val)
{
	p->fsync = false;
	return 0;
}

static int opt_noxattrs(struct ovl_params *p, const char *val)
{
	return parse_small("noxattrs", val ? val : "1", 2, &p->noxattrs);
}

static int opt_userxattr(struct ovl_params *p, const char *val)
{
	p->userxattr = true;
	return 0;
}

static int opt_max_read(struct ovl_params *p, const char *val)
{
	unsigned long long v;

	if (ovl_parse_u64(val, &v) || v < 4096 || v > (1u << 30))
		return fail("max_read", "expected bytes from 4096 to 1073741824, got '%s'",
			    val);
	p->max_read = (unsigned)v;
	return 0;
}

/* passthrough_min=: the smallest file a read-only open passes through. */
static int opt_passthrough_min(struct ovl_params *p, const char *val)
{
	unsigned long long v;

	if (ovl_parse_u64(val, &v) || v > (1ull << 40))
		return fail("passthrough_min", "expected bytes from 0 to 1099511627776, got '%s'",
			    val);
	p->passthrough_min = v;
	return 0;
}

/*
 * Access-time options: the last one given wins.  libfuse's mount code knows
 * only the negative forms, so main.c applies the result as mount
 * attributes once the mount exists.
 */
static int opt_atime(struct ovl_params *p, const char *val)
{
	p->atime = OVL_ATIME_RELATIME;
	return 0;
}

static int opt_noatime(struct ovl_params *p, const char *val)
{
	p->atime = OVL_ATIME_NOATIME;
	return 0;
}

static int opt_strictatime(struct ovl_params *p, const char *val)
{
	p->atime = OVL_ATIME_STRICTATIME;
	return 0;
}

static int opt_diratime(struct ovl_params *p, const char *val)
{
	p->diratime = 1;
	return 0;
}

static int opt_nodiratime(struct ovl_params *p, const char *val)
{
	p->diratime = -1;
	return 0;
}

static int opt_xattr_permissions(struct ovl_params *p, const char *val)
{
	return parse_small("xattr_permissions", val, 2, &p->xattr_permissions);
}

static int opt_xino(struct ovl_params *p, const char *val)
{
	if (!val || !strcmp(val, "on"))
		p->xino = 1;
	else if (!strcmp(val, "off"))
		p->xino = 0;
	else if (!strcmp(val, "auto"))
		p->xino = -1;
	else
		return fail("xino", "expected on, off or auto, got '%s'", val);
	return 0;
}

static int opt_ino32(struct ovl_params *p, const char *val)
{
	p->ino32 = true;
	return 0;
}

static int opt_static_nlink(struct ovl_params *p, const char *val)
{
	p->static_nlink = true;
	return 0;
}

static int opt_noacl(struct ovl_params *p, const char *val)
{
	p->noacl = true;
	return 0;
}

static int opt_squash_to_root(struct ovl_params *p, const char *val)
{
	p->squash_to_root = true;
	return 0;
}

static int parse_id(const char *opt, const char *val, long *out)
{
	unsigned long long v;

	if (ovl_parse_u64(val, &v) || v >= 0xffffffffULL)
		return fail(opt, "expected a numeric id, got '%s'", val);
	*out = (long)v;
	return 0;
}

static int opt_squash_to_uid(struct ovl_params *p, const char *val)
{
	return parse_id("squash_to_uid", val, &p->squash_uid);
}

static int opt_squash_to_gid(struct ovl_params *p, const char *val)
{
	return parse_id("squash_to_gid", val, &p->squash_gid);
}

/*
 * "disk:shown:count[:disk:shown:count...]", as fuse-overlayfs reads it:
 * the on-disk id disk+i shows through the mount as shown+i.
 * containers-storage writes its ContainerID:HostID:Size here (layers hold
 * the container's ids, the mount shows the host's, the container's user
 * namespace maps them back).
 */
int ovl_idmap_parse(const char *opt, const char *val, struct ovl_idmap **out,
		    int *nout)
{
	struct ovl_idmap *m;
	char **v;
	int n, err;

	err = split_escaped(val, ':', true, &v, &n);
	if (err)
		return err;
	if (n == 0 || n % 3) {
		ovl_strv_free(v);
		return fail(opt, "expected container:host:count triples, got '%s'",
			    val);
	}
	m = calloc(n / 3, sizeof(*m));
	if (!m) {
		ovl_strv_free(v);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		unsigned long long x;
		uint32_t *f = i % 3 == 0 ? &m[i / 3].outer :
			      i % 3 == 1 ? &m[i / 3].inner : &m[i / 3].count;

		if (ovl_parse_u64(v[i], &x) || x > 0xffffffffULL ||
		    (i % 3 == 2 && x == 0)) {
			err = fail(opt, "'%s' is not a valid id or count in '%s'",
				   v[i], val);
			free(m);
			ovl_strv_free(v);
			return err;
		}
		*f = (uint32_t)x;
	}
	ovl_strv_free(v);
	*out = m;
	*nout = n / 3;
	return 0;
}

/* A range that shows an id other than 0 on disk as 0 through the mount. */
static bool idmap_shows_root(const struct ovl_idmap *m, int n)
{
	for (int i = 0; i < n; i++)
		if (m[i].inner == 0 && m[i].outer != 0)
			return true;
	return false;
}

/*
 * Whether the options may show a file that is not root's on disk as
 * root's (owner uid 0) or as root's group's (gid 0), in the order
 * map_owner() in inode.c applies them: a mapping, then squash_to_root,
 * then squash_to_uid and squash_to_gid.  A setuid or setgid file of a
 * user would then run as root: such a mount is nosuid unless suid is
 * given.
 */
bool ovl_params_shows_root(const struct ovl_params *p)
{
	bool uid0, gid0;

	uid0 = p->squash_uid >= 0 ? p->squash_uid == 0 :
	       p->squash_to_root || idmap_shows_root(p->uidmap, p->nuidmap);
	gid0 = p->squash_gid >= 0 ? p->squash_gid == 0 :
	       p->squash_to_root || idmap_shows_root(p->gidmap, p->ngidmap);
	return uid0 || gid0;
}

static int opt_uidmapping(struct ovl_params *p, const char *val)
{
	free(p->uidmap);
	p->uidmap = NULL;
	return ovl_idmap_parse("uidmapping", val, &p->uidmap, &p->nuidmap);
}

static int opt_gidmapping(struct ovl_params *p, const char *val)
{
	free(p->gidmap);
	p->gidmap = NULL;
	return ovl_idmap_parse("gidmapping", val, &p->gidmap, &p->ngidmap);
}

static int opt_passthrough(struct ovl_params *p, const char *val)
{
	if (!val || !strcmp(val, "on"))
		p->passthrough = OVL_PASSTHROUGH_ON;
	else if (!strcmp(val, "auto"))
		p->passthrough = OVL_PASSTHROUGH_AUTO;
	else if (!strcmp(val, "off"))
		p->passthrough = OVL_PASSTHROUGH_OFF;
	else
		return fail("passthrough", "expected auto, on or off, got '%s'",
			    val);
	return 0;
}

/* The kernel's words; "off" reads as "follow" (see ovl_types.h). */
static int opt_redirect_dir(struct ovl_params *p, const char *val)
{
	if (!strcmp(val, "on"))
		p->redirect = OVL_REDIRECT_ON;
	else if (!strcmp(val, "follow") || !strcmp(val, "off"))
		p->redirect = OVL_REDIRECT_FOLLOW;
	else if (!strcmp(val, "nofollow"))
		p->redirect = OVL_REDIRECT_NOFOLLOW;
	else
		return fail("redirect_dir",
			    "expected on, off, follow or nofollow, got '%s'",
			    val);
	p->redirect_given = true;
	return 0;
}

static int opt_metacopy(struct ovl_params *p, const char *val)
{
	if (strcmp(val, "on") && strcmp(val, "off"))
		return fail("metacopy", "expected on or off, got '%s'", val);
	p->metacopy = !strcmp(val, "on");
	return 0;
}

static int opt_io_uring(struct ovl_params *p, const char *val)
{
	if (!val || !strcmp(val, "auto"))
		p->io_uring = true;
	else if (!strcmp(val, "off"))
		p->io_uring = false;
	else
		return fail("io_uring", "expected auto or off, got '%s'", val);
	return 0;
}

static int opt_restart(struct ovl_params *p, const char *val)
{
	if (!val || !strcmp(val, "on"))
		p->restart = OVL_RESTART_ON;
	else if (!strcmp(val, "off"))
		p->restart = OVL_RESTART_OFF;
	else if (!strcmp(val, "auto"))
		p->restart = OVL_RESTART_AUTO;
	else
		return fail("restart", "expected auto, on or off, got '%s'", val);
	return 0;
}

static int opt_restart_limit(struct ovl_params *p, const char *val)
{
	return parse_small("restart_limit", val, OVL_RESTART_LIMIT_MAX,
			   &p->restart_limit);
}

static int opt_ro(struct ovl_params *p, const char *val)
{
	p->read_only = true;
	return 0;
}

static int opt_nop(struct ovl_params *p, const char *val)
{
	return 0;
}

static const struct opt_desc opts[] = {
	{ "lowerdir", OPT_OURS, 1, opt_lowerdir },
	{ "upperdir", OPT_OURS, 1, opt_upperdir },
	{ "workdir", OPT_OURS, 1, opt_workdir },
	{ "timeout", OPT_OURS, 1, opt_timeout },
	{ "threaded", OPT_OURS, 1, opt_threaded },
	{ "fsync", OPT_OURS, 1, opt_fsync },
	{ "volatile", OPT_OURS, 0, opt_volatile },
	{ "noxattrs", OPT_OURS, 2, opt_noxattrs },
	{ "xattr_permissions", OPT_OURS, 1, opt_xattr_permissions },
	{ "xino", OPT_OURS, 2, opt_xino },
	{ "ino32_t", OPT_OURS, 0, opt_ino32 },
	{ "static_nlink", OPT_OURS, 0, opt_static_nlink },
	{ "noacl", OPT_OURS, 0, opt_noacl },
	{ "squash_to_root", OPT_OURS, 0, opt_squash_to_root },
	{ "squash_to_uid", OPT_OURS, 1, opt_squash_to_uid },
	{ "squash_to_gid", OPT_OURS, 1, opt_squash_to_gid },
	{ "uidmapping", OPT_OURS, 1, opt_uidmapping },
	{ "gidmapping", OPT_OURS, 1, opt_gidmapping },
	{ "passthrough", OPT_OURS, 2, opt_passthrough },
	{ "passthrough_min", OPT_OURS, 1, opt_passthrough_min },
	{ "writeback", OPT_OURS, 2, opt_writeback },
	{ "statsfile", OPT_OURS, 1, opt_statsfile },
	{ "redirect_dir", OPT_OURS, 1, opt_redirect_dir },
	{ "userxattr", OPT_OURS, 0, opt_userxattr },
	{ "context", OPT_IGNORE, 1, NULL },
	{ "fscontext", OPT_IGNORE, 1, NULL },
	{ "defcontext", OPT_IGNORE, 1, NULL },
	{ "rootcontext", OPT_IGNORE, 1, NULL },
	/* fuse-overlayfs options it accepts and we treat the same way */
	{ "fast_ino", OPT_IGNORE, 1, NULL },
	{ "plugins", OPT_IGNORE, 1, NULL },
	{ "debug", OPT_IGNORE, 0, NULL },
	{ "ro", OPT_FUSE, 0, opt_ro },
	{ "rw", OPT_FUSE, 0, opt_nop },
	{ "allow_other", OPT_FUSE, 0, NULL },
	{ "allow_root", OPT_FUSE, 0, NULL },
	{ "default_permissions", OPT_FUSE, 0, NULL },
	{ "auto_unmount", OPT_FUSE, 0, NULL },
	{ "dev", OPT_FUSE, 0, NULL },
	{ "nodev", OPT_FUSE, 0, NULL },
	{ "suid", OPT_FUSE, 0, NULL },
	{ "nosuid", OPT_FUSE, 0, NULL },
	{ "exec", OPT_FUSE, 0, NULL },
	{ "noexec", OPT_FUSE, 0, NULL },
	{ "atime", OPT_OURS, 0, opt_atime },
	{ "noatime", OPT_OURS, 0, opt_noatime },
	{ "relatime", OPT_OURS, 0, opt_atime },
	{ "norelatime", OPT_OURS, 0, opt_atime },
	{ "strictatime", OPT_OURS, 0, opt_strictatime },
	{ "nostrictatime", OPT_OURS, 0, opt_atime },
	{ "diratime", OPT_OURS, 0, opt_diratime },
	{ "nodiratime", OPT_OURS, 0, opt_nodiratime },
	/* FUSE keeps no lazily written timestamps: lazytime has no effect */
	{ "lazytime", OPT_IGNORE, 0, NULL },
	{ "nolazytime", OPT_IGNORE, 0, NULL },
	{ "sync", OPT_FUSE, 0, NULL },
	{ "async", OPT_FUSE, 0, NULL },
	{ "dirsync", OPT_FUSE, 0, NULL },
	{ "fsname", OPT_FUSE, 1, NULL },
	{ "subtype", OPT_FUSE, 1, NULL },
	{ "max_read", OPT_FUSE, 1, opt_max_read },
	{ "blksize", OPT_FUSE, 1, NULL },
	/* fstab words that mount(8) may pass on */
	{ "defaults", OPT_IGNORE, 0, NULL },
	{ "auto", OPT_IGNORE, 0, NULL },
	{ "noauto", OPT_IGNORE, 0, NULL },
	{ "user", OPT_IGNORE, 2, NULL },
	{ "users", OPT_IGNORE, 0, NULL },
	{ "nouser", OPT_IGNORE, 0, NULL },
	{ "nofail", OPT_IGNORE, 0, NULL },
	{ "_netdev", OPT_IGNORE, 0, NULL },
	{ "owner", OPT_IGNORE, 0, NULL },
	{ "group", OPT_IGNORE, 0, NULL },
	{ "loop", OPT_IGNORE, 2, NULL },
	{ "index", OPT_IGNORE, 1, NULL },
	{ "metacopy", OPT_OURS, 1, opt_metacopy },
	{ "io_uring", OPT_OURS, 2, opt_io_uring },
	{ "restart", OPT_OURS, 2, opt_restart },
	{ "restart_limit", OPT_OURS, 1, opt_restart_limit },
	{ "userxattr", OPT_IGNORE, 0, NULL },
};

static const struct opt_desc *opt_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (strlen(opts[i].name) == len &&
		    !strncmp(opts[i].name, name, len))
			return &opts[i];
	return NULL;
}

/* Append ",@s" to the libfuse option string. */
static int fuse_opt_append(struct ovl_params *p, const char *s)
{
	size_t old = p->fuse_opts ? strlen(p->fuse_opts) : 0;
	char *n = realloc(p->fuse_opts, old + strlen(s) + 2);

	if (!n)
		return -ENOMEM;
	if (old)
		n[old++] = ',';
	strcpy(n + old, s);
	p->fuse_opts = n;
	return 0;
}

static int apply_one(struct ovl_params *p, const char *o)
{
	const char *eq = strchr(o, '=');
	size_t len = eq ? (size_t)(eq - o) : strlen(o);
	const char *val = eq ? eq + 1 : NULL;
	const struct opt_desc *d;
	int err = 0;

	if (!*o)
		return 0;
	if (!strncmp(o, "x-", 2))
		return 0; /* userspace mount hints, e.g. x-systemd.* */
	d = opt_find(o, len);
	if (!d) {
		ovl_log("unknown option '%.*s'", (int)len, o);
		return -EINVAL;
	}
	if (d->takes_value == 1 && !val)
		return fail(d->name, "needs a value (%s=...)", d->name);
	if (d->takes_value == 0 && val)
		return fail(d->name, "takes no value");
	if (d->fn)
		err = d->fn(p, val);
	if (err)
		return err;
	if (d->kind == OPT_FUSE) {
		if (!strcmp(d->name, "allow_other") ||
		    !strcmp(d->name, "allow_root"))
			p->allow_other_given = true;
		if (!strcmp(d->name, "default_permissions"))
			p->default_permissions_given = true;
		if (!strcmp(d->name, "dev") || !strcmp(d->name, "nodev"))
			p->nodev_given = true;
		/* suid and nosuid: main.c adds the last one given */
		if (!strcmp(d->name, "suid") || !strcmp(d->name, "nosuid")) {
			p->suid = !strcmp(d->name, "suid");
			p->nsuid += p->suid;
		} else if (strcmp(d->name, "rw")) {
			err = fuse_opt_append(p, o);
		}
	}
	p->suid_last = !strcmp(d->name, "suid");
	return err;
}

int ovl_params_apply_opts(struct ovl_params *p, const char *optstr)
{
	char **v;
	int n, err;

	err = split_escaped(optstr, ',', false, &v, &n);
	if (err)
		return err;
	for (int i = 0; i < n && !err; i++)
		err = apply_one(p, v[i]);
	ovl_strv_free(v);
	return err;
}

void ovl_params_init(struct ovl_params *p)
{
	memset(p, 0, sizeof(*p));
	p->timeout = 86400.0;
	p->threaded = true;
	p->fsync = true;
	p->writeback = false;
	p->xino = -1;
	p->squash_uid = -1;
	p->squash_gid = -1;
	p->passthrough = OVL_PASSTHROUGH_AUTO;
	p->passthrough_min = OVL_PASSTHROUGH_MIN;
	p->io_uring = true;
	p->restart_limit = 5;
	p->suid = -1;
}

void ovl_params_free(struct ovl_params *p)
{
	ovl_strv_free(p->lowerdirs);
	free(p->upperdir);
	free(p->workdir);
	free(p->mountpoint);
	free(p->statsfile);
	free(p->fuse_opts);
	free(p->uidmap);
	free(p->gidmap);
	memset(p, 0, sizeof(*p));
}

/*
 * A relative statsfile is taken from the directory the command was started
 * in: the daemon leaves it for / before it writes the file.  Its directory
 * is resolved now when it exists (the file itself may not yet), so that
 * the path still leads there once the directory it was given from is gone
 * (supervisor.c passes it on to a worker of an upgrade).
 */
static int statsfile_absolute(struct ovl_params *p)
{
	char *slash = strrchr(p->statsfile, '/'), *dir, *abs = NULL;
	const char *base = slash ? slash + 1 : p->statsfile;

	dir = slash ? strndup(p->statsfile, (size_t)(slash - p->statsfile)) :
		      strdup(".");
	abs = dir ? realpath(dir, NULL) : NULL;
	free(dir);
	if (!abs) { /* as given, from the current directory */
		base = p->statsfile;
		abs = getcwd(NULL, 0);
	}
	if (!abs)
		return fail("statsfile", "%s: cannot tell the current directory: %s",
			    p->statsfile, strerror(errno));
	dir = abs;
	if (asprintf(&abs, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", base) < 0)
		abs = NULL;
	free(dir);
	if (!abs)
		return -ENOMEM;
	free(p->statsfile);
	p->statsfile = abs;
	return 0;
}

/* Checks that need every option at once. */
static int params_check(struct ovl_params *p)
{
	if (!p->lowerdirs || p->nlower == 0)
		return fail("lowerdir", "missing: give -o lowerdir=DIR[:DIR...]");
	if (p->upperdir && !p->workdir)
		return fail("workdir", "missing: upperdir needs a workdir on the same filesystem");
	if (p->workdir && !p->upperdir)
		return fail("upperdir", "missing: workdir given without upperdir");
	if (!p->mountpoint)
		return fail("mountpoint", "missing");
	if (!p->upperdir)
		p->read_only = true;
	/*
	 * As the kernel: with userxattr, redirects are neither written nor
	 * followed (any owner of a directory can write user.* xattrs), and
	 * asking for more is an error.
	 */
	if (p->userxattr && p->redirect_given &&
	    p->redirect != OVL_REDIRECT_NOFOLLOW)
		return fail("redirect_dir",
			    "conflicts with userxattr (redirects in user.* xattrs are not trusted); use redirect_dir=nofollow or leave it out");
	if (p->userxattr)
		p->redirect = OVL_REDIRECT_NOFOLLOW;
	/* a ring's requests die with the worker that held them (no resend
	 * covers them on Linux 6.18: doc/restart.md), so /dev/fuse only;
	 * restart=auto decides once the kernel's INIT is read */
	if (p->restart == OVL_RESTART_ON)
		p->io_uring = false;
	if (p->statsfile && p->statsfile[0] != '/')
		return statsfile_absolute(p);
	return 0;
}

int ovl_params_parse(struct ovl_params *p, int argc, char **argv,
		     enum ovl_action *action)
{
	char *pos[3];
	int npos = 0, err;

	*action = OVL_ACTION_MOUNT;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			*action = OVL_ACTION_HELP;
			return 0;
		}
		if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			*action = OVL_ACTION_VERSION;
			return 0;
		}
		if (!strcmp(a, "--stats")) {
			if (i + 1 >= argc)
				return fail("--stats", "needs a mountpoint");
			*action = OVL_ACTION_STATS;
			free(p->mountpoint);
			p->mountpoint = strdup(argv[i + 1]);
			return p->mountpoint ? 0 : -ENOMEM;
		}
		if (!strcmp(a, "--restart")) {
			if (i + 1 >= argc)
				return fail("--restart", "needs a mountpoint");
			*action = OVL_ACTION_RESTART;
			free(p->mountpoint);
			p->mountpoint = strdup(argv[i + 1]);
			return p->mountpoint ? 0 : -ENOMEM;
		}
		if (!strcmp(a, "-f")) {
			p->foreground = true;
		} else if (!strcmp(a, "-d") || !strcmp(a, "--debug")) {
			p->foreground = p->debug = true;
		} else if (!strcmp(a, "-s")) {
			p->threaded = false;
		} else if (!strncmp(a, "-o", 2)) {
			const char *o = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);

			if (!o)
				return fail("-o", "needs an option list");
			err = ovl_params_apply_opts(p, o);
			if (err)
				return err;
		} else if (a[0] == '-' && a[1]) {
			return fail(a, "unknown command-line flag");
		} else {
			if (npos == 2)
				return fail(a, "too many arguments (expected [SOURCE] MOUNTPOINT)");
			pos[npos++] = argv[i];
		}
	}
	if (npos == 0)
		return fail("mountpoint", "missing (usage: overpass -o lowerdir=... MOUNTPOINT)");
	/* mount.fuse3 (mount -t fuse.overpass, fstab) runs the helper form
	 * with "suid" appended unless nosuid was given: not the user's word,
	 * unless she gave it too */
	if (npos == 2 && p->suid_last && p->nsuid == 1)
		p->suid = -1;
	p->mountpoint = strdup(pos[npos - 1]);
	if (!p->mountpoint)
		return -ENOMEM;
	return params_check(p);
}
